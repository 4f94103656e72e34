//! Writes the report of a synthetic pruning run (tests/common/report_sample.rs) to the
//! path given, for looking at the page and for `scripts/check-report.sh`:
//! `cargo run --release --example sample_report -- OUT.html`.

use std::path::PathBuf;
use std::process::ExitCode;

#[path = "../tests/common/report_sample.rs"]
mod report_sample;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: sample_report OUT.html");
        return ExitCode::from(2);
    };
    let sample = report_sample::Sample::new("white");
    let input = sample.input("SmolLM2-135M-Instruct, purchase (bicycle): synthetic sample", true);
    let html = match biasprune::report::render_html(&input) {
        Ok(html) => html,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = biasprune::fsutil::write_atomically(&out, html.as_bytes()) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("{}", out.display());
    ExitCode::SUCCESS
}
