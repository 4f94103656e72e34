//! indicatif progress bars behind the library's `Progress` trait.

use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Progress, Unit};

/// Draws one progress bar at a time on stderr, under a stage line for multi-stage jobs
/// (`prune`); hidden with `--quiet` or when not a terminal.
pub struct Bars {
    multi: MultiProgress,
    stage: Mutex<Option<ProgressBar>>,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Makes the sink; `quiet` hides every bar.
    pub fn new(quiet: bool) -> Self {
        let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        Self { multi: MultiProgress::with_draw_target(target), stage: Mutex::new(None), bar: Mutex::new(None) }
    }
}

impl Progress for Bars {
    fn start(&self, label: &str, total: u64, unit: Unit) {
        let bar = self.multi.add(ProgressBar::new(total));
        let template = if unit == Unit::Bytes {
            "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg:24} [{bar:30}] {pos}/{len} {per_sec} eta {eta}"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
        bar.set_message(label.to_string());
        if let Some(old) = self.bar.lock().expect("bar lock").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, delta: u64) {
        if let Some(bar) = self.bar.lock().expect("bar lock").as_ref() {
            bar.inc(delta);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("bar lock").take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn stage(&self, index: usize, count: usize, name: &str) {
        let mut stage = self.stage.lock().expect("stage lock");
        let bar = stage.get_or_insert_with(|| {
            let bar = self.multi.insert(0, ProgressBar::new(count as u64));
            let style =
                ProgressStyle::with_template("stage {pos}/{len} [{elapsed_precise}] {msg}").expect("valid template");
            bar.set_style(style);
            bar
        });
        bar.set_length(count as u64);
        bar.set_position(index.saturating_sub(1) as u64);
        bar.set_message(name.to_string());
    }
}
