//! `scripts/check-report.sh` on rendered reports in headless Chromium: a page leads with
//! its verdict and nothing overflows sideways at 1280 and 800 pixels, every plot is drawn;
//! pages that overflow at either width, or bury the verdict, fail with exit 1 naming what
//! is wrong. Chromium comes from `scripts/setup-chromium.sh` (run by `scripts/test.sh`);
//! without it these tests fail under CI=true and are skipped, saying so, elsewhere.

#[path = "common/report_sample.rs"]
mod report_sample;

use std::path::Path;
use std::process::Command;

use biasprune::manifest::Outcome;
use biasprune::report::render_html;
use report_sample::Sample;

/// Whether Chromium is installed; under CI its absence is a failure, elsewhere a skip.
fn chromium_available() -> bool {
    let found = Command::new("sh")
        .args(["-c", "command -v chromium || command -v chromium-browser || command -v google-chrome"])
        .output()
        .expect("sh runs")
        .status
        .success();
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "Chromium is missing under CI: scripts/test.sh installs it with scripts/setup-chromium.sh"
        );
        eprintln!("SKIPPED: no chromium on PATH; install it with scripts/setup-chromium.sh to run the browser checks");
    }
    found
}

/// Runs check-report.sh on `html`; returns its exit code and its stdout and stderr.
fn check(dir: &Path, name: &str, html: &str) -> (i32, String) {
    let page = dir.join(name);
    std::fs::write(&page, html).unwrap();
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-report.sh"))
        .arg(&page)
        .arg(dir.join(format!("{name}.png")))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("an exit code"), text)
}

/// The longest banner (nothing to remove, then harmed, released anyway) with a sweep.
fn longest_page() -> String {
    let mut sample = Sample::new("white");
    sample.verdict = Some(sample.verdict_of(Outcome::Harmed, true));
    sample.nothing_to_remove = Some(
        "bicycle: SMD +0.047, 95% CI [-0.445, +0.528], name-permutation p = 0.900, smallest detectable |SMD| about 0.54"
            .into(),
    );
    render_html(&sample.input("SmolLM2-135M-Instruct, purchase (bicycle)", true)).unwrap()
}

#[test]
fn a_report_past_the_gate_leads_with_its_verdict_and_fits_both_widths() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = check(dir.path(), "nothing.html", &longest_page());
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("check-report: ok: verdict first (nothing), no overflow at 1280 and 800 px, 5 plots visible"),
        "{text}"
    );
}

#[test]
fn an_element_too_wide_for_either_window_fails_naming_it() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The content box is 1124 px wide at 1280 and 744 px at 800.
    for (width, window) in [(1000, 800), (1200, 1280)] {
        let wide = format!("<div id=\"too-wide\" style=\"width: {width}px\">wide</div>\n<footer>");
        let html = longest_page().replace("<footer>", &wide);
        let (code, text) = check(dir.path(), &format!("wide-{width}.html"), &html);
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains(&format!("check-report: horizontal overflow in a {window}-pixel-wide window:")),
            "{text}"
        );
        assert!(text.contains("div#too-wide \"wide\" reaches x = "), "{text}");
    }
}

#[test]
fn a_verdict_below_other_content_fails() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let html = longest_page().replacen("</header>", "</header>\n<p>Settings first.</p>", 1);
    let (code, text) = check(dir.path(), "buried.html", &html);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("expected the verdict banner (<section class=\"verdict OUTCOME\" id=\"verdict\">) right after the header, found: <p>Settings first.</p>"),
        "{text}"
    );
}
