//! indicatif progress bars behind the library's `Progress` trait.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Progress, Unit};

/// Draws one progress bar at a time on stderr; hidden with `--quiet` or when not a terminal.
pub struct Bars {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Makes the sink; `quiet` hides every bar.
    pub fn new(quiet: bool) -> Self {
        Self { quiet, bar: Mutex::new(None) }
    }
}

impl Progress for Bars {
    fn start(&self, label: &str, total: u64, unit: Unit) {
        let bar = ProgressBar::with_draw_target(Some(total), draw_target(self.quiet));
        let template = if unit == Unit::Bytes {
            "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg:24} [{bar:30}] {pos}/{len} {per_sec} eta {eta}"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
        bar.set_message(label.to_string());
        *self.bar.lock().expect("bar lock") = Some(bar);
    }

    fn advance(&self, delta: u64) {
        if let Some(bar) = self.bar.lock().expect("bar lock").as_ref() {
            bar.inc(delta);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("bar lock").take() {
            bar.finish_and_clear();
        }
    }
}

fn draw_target(quiet: bool) -> ProgressDrawTarget {
    if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}
