//! The HTML report: deterministic bytes, self-contained, one well-formed sized SVG per
//! plot, the statistics and variation names shown, every text HTML-escaped, and errors
//! for inputs that do not fit together.

#[path = "common/report_sample.rs"]
mod report_sample;

use biasprune::report::{render_html, ReportError};
use report_sample::Sample;

const SVG_NAMESPACE: &str = "xmlns=\"http://www.w3.org/2000/svg\"";

/// The `<svg>...</svg>` fragments of `html`, in order.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg ") {
        let end = rest[start..].find("</svg>").expect("every <svg> is closed") + start + "</svg>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// Texts of the `<text>` elements of all SVGs.
fn svg_texts(html: &str) -> Vec<String> {
    svgs(html)
        .iter()
        .flat_map(|svg| {
            let doc = roxmltree::Document::parse(svg).expect("each SVG is well-formed XML");
            doc.descendants()
                .filter(|n| n.has_tag_name("text"))
                .map(|n| n.text().unwrap_or("").trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_same_input_renders_the_same_bytes() {
    let sample = Sample::new("white");
    let first = render_html(&sample.input("run", true)).unwrap();
    let again = render_html(&Sample::new("white").input("run", true)).unwrap();
    assert_eq!(first, again);
}

#[test]
fn the_page_refers_to_nothing_outside_itself() {
    let html = render_html(&Sample::new("white").input("run", true)).unwrap();
    let without_namespace = html.replace(SVG_NAMESPACE, "");
    for outside in ["http://", "https://", "<script", "<link", "<img", "<iframe", "url(", "@import"] {
        assert!(!without_namespace.contains(outside), "the page contains {outside:?}");
    }
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
}

#[test]
fn one_sized_svg_per_plot_with_and_without_a_sweep() {
    let sample = Sample::new("white");
    // SMD chart, one histogram pair per variation (bicycle, car), heatmap, sweep.
    for (with_sweep, plots) in [(true, 5), (false, 4)] {
        let html = render_html(&sample.input("run", with_sweep)).unwrap();
        let svgs = svgs(&html);
        assert_eq!(svgs.len(), plots, "sweep: {with_sweep}");
        assert_eq!(html.matches("<svg").count(), plots);
        for svg in svgs {
            let doc = roxmltree::Document::parse(svg).unwrap();
            let root = doc.root_element();
            let (w, h) = (root.attribute("width").unwrap(), root.attribute("height").unwrap());
            assert_eq!(root.attribute("viewBox"), Some(format!("0 0 {w} {h}").as_str()));
            assert!(w.parse::<u32>().unwrap() >= 600 && h.parse::<u32>().unwrap() >= 300, "{w}x{h}");
        }
        assert_eq!(html.contains("(p, q) sweep"), with_sweep);
    }
}

#[test]
fn statistics_and_variations_are_shown() {
    let sample = Sample::new("white");
    let html = render_html(&sample.input("run", true)).unwrap();
    for (id, summary) in [("bicycle", &sample.baseline), ("car", &sample.baseline), ("bicycle", &sample.pruned)] {
        let v = &summary.variations[id];
        let (smd, ci) = (v.smd.unwrap(), v.smd_ci.unwrap());
        let shown = format!("{smd:+.3} [{:+.3}, {:+.3}]", ci.low, ci.high);
        assert!(html.contains(&shown), "missing SMD {shown} of {id}");
        assert!(html.contains(&format!("{:.1}%", v.inlier_ratio * 100.0)));
    }
    let texts = svg_texts(&html);
    for want in ["bicycle", "car (held out)", "baseline", "pruned"] {
        assert!(texts.iter().any(|t| t == want), "missing {want:?} in the SVG texts");
    }
    assert!(html.contains("<h3>car<span class=\"badge held-out\">held out</span></h3>"));
    assert!(html.contains("<h3>bicycle<span class=\"badge target\">target</span></h3>"));
    let before = sample.baseline.variations["bicycle"].smd.unwrap().abs();
    let after = sample.pruned.variations["bicycle"].smd.unwrap().abs();
    assert!(html.contains(&format!("{before:.3} &rarr; {after:.3}")), "headline mean |SMD| of the target");
    assert!(html.contains("of 106,168,320 entries"));
    assert!(html.contains("Chosen point: <strong>p = 0.15, q = 0.15</strong>"));
    assert!(html.contains("3f3f3f3f"), "root digest");
}

#[test]
fn names_and_scenario_text_are_escaped() {
    let mut sample = Sample::new("white <&> \"quoted\"");
    sample.scenario.description = "<script>alert(1)</script> & co".into();
    sample.base.name = "model<&>".into();
    let html = render_html(&sample.input("title <b>&</b>", true)).unwrap();
    assert!(!html.contains("<script") && !html.contains("<b>") && !html.contains("model<&>"));
    assert!(html.contains("title &lt;b&gt;&amp;&lt;&#x2f;b&gt;"), "title escaped");
    assert!(html.contains("model&lt;&amp;&gt;"), "base name escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; co"), "scenario text escaped");
    assert!(html.contains("n white &lt;&amp;&gt; &quot;quoted&quot;"), "group name escaped in the tables");
    let texts = svg_texts(&html);
    assert!(texts.iter().any(|t| t.starts_with("white <&> \"quoted\": mean")), "group name intact in the SVG legend");
}

#[test]
fn a_target_variation_the_summaries_lack_is_an_error() {
    let mut sample = Sample::new("white");
    sample.targets = vec!["bicycle".into(), "house".into()];
    let err = render_html(&sample.input("run", false)).unwrap_err();
    assert!(matches!(err, ReportError::UnknownVariation { .. }));
    assert_eq!(
        err.to_string(),
        "target variation `house` is in neither the baseline nor the pruned summary (they have: bicycle, car)"
    );
}

#[test]
fn summaries_of_another_scenario_are_an_error() {
    let mut sample = Sample::new("white");
    sample.pruned.scenario = "chess".into();
    let err = render_html(&sample.input("run", false)).unwrap_err();
    assert_eq!(err.to_string(), "the pruned summary is of scenario `chess`, expected `purchase`");
}

#[test]
fn a_variation_without_answers_to_draw_gets_a_note_instead_of_a_plot() {
    let mut sample = Sample::new("white");
    for record in sample.pruned_records.iter_mut().chain(&mut sample.baseline_records) {
        if record.variation == "car" {
            record.inlier = false;
        }
    }
    let html = render_html(&sample.input("run", false)).unwrap();
    assert!(html.contains("No car histograms: no inlier answers for variation `car`."));
    assert_eq!(svgs(&html).len(), 3, "SMD chart, bicycle histograms, heatmap");
}

#[test]
fn the_chosen_sweep_point_is_outlined_in_both_grids() {
    let sample = Sample::new("white");
    let grid = &sample.grid;
    let plain = biasprune::sweep::sweep_svg(&sample.points, grid, grid).unwrap();
    let marked = biasprune::sweep::sweep_marked_svg(&sample.points, grid, grid, Some((0.15, 0.15))).unwrap();
    let frames =
        |svg: &str| svg.matches("<polyline fill=\"none\" opacity=\"1\" stroke=\"#000000\" stroke-width=\"3\"").count();
    assert_eq!((frames(&plain), frames(&marked)), (0, 2), "one frame per grid");
    let off_grid = biasprune::sweep::sweep_marked_svg(&sample.points, grid, grid, Some((0.2, 0.15))).unwrap();
    assert_eq!(off_grid, plain, "a point off the grid is not drawn");
}

/// The page after its header: what a reader sees first.
fn after_header(html: &str) -> &str {
    html.split_once("</header>").expect("the page has a header").1.trim_start()
}

#[test]
fn the_page_leads_with_the_verdict_for_every_outcome() {
    use biasprune::manifest::Outcome;
    let cases = [
        (Outcome::Reduced, "reduced", "Outcome: reduced", "the disparity was reduced on fresh confirmation data"),
        (Outcome::NotReduced, "not-reduced", "Outcome: not-reduced", "the disparity was NOT reduced"),
        (Outcome::Harmed, "harmed", "Outcome: harmed", "pruning HARMED the model"),
    ];
    for (outcome, class, title, headline) in cases {
        let mut sample = Sample::new("white");
        sample.verdict = Some(sample.verdict_of(outcome, outcome != Outcome::Reduced));
        let html = render_html(&sample.input("run", false)).unwrap();
        let first = after_header(&html);
        let opening =
            format!("<section class=\"verdict {class}\" id=\"verdict\">\n<div class=\"outcome\">{title}</div>");
        assert!(first.starts_with(&opening), "{outcome}: the page goes on with {:?}", &first[..200]);
        let banner = &first[..first.find("</section>").unwrap()];
        assert!(banner.contains(headline), "{outcome}: {banner}");
        assert!(banner.contains("<li><strong>bicycle</strong>: SMD "), "{outcome}: the target's paired change");
        assert_eq!(banner.contains("<strong>Released anyway</strong>"), outcome != Outcome::Reduced, "{outcome}");
        assert_eq!(html.matches("id=\"verdict\"").count(), 1);
    }
}

#[test]
fn a_job_past_the_gate_leads_with_nothing_to_remove_and_then_what_pruning_did() {
    use biasprune::manifest::Outcome;
    let mut sample = Sample::new("white");
    sample.verdict = Some(sample.verdict_of(Outcome::Harmed, true));
    sample.nothing_to_remove = Some("bicycle: SMD +0.047, 95% CI [-0.445, +0.528]".into());
    let html = render_html(&sample.input("run", false)).unwrap();
    let first = after_header(&html);
    assert!(
        first.starts_with(
            "<section class=\"verdict nothing\" id=\"verdict\">\n<div class=\"outcome\">Outcome: nothing to remove (pruned anyway: harmed)</div>"
        ),
        "{}",
        &first[..200]
    );
    let banner = &first[..first.find("</section>").unwrap()];
    for want in [
        "the base showed no significant disparity on the calibration data (bicycle: SMD +0.047, 95% CI [-0.445, +0.528]), so there was nothing to remove",
        "--allow-no-disparity",
        "pruning then gave the outcome harmed: pruning HARMED the model",
        "<strong>Released anyway</strong>",
        "<li><strong>bicycle</strong>: SMD ",
    ] {
        assert!(banner.contains(want), "missing {want:?} in {banner}");
    }
}

#[test]
fn a_page_without_a_verdict_says_so_first() {
    let mut sample = Sample::new("white");
    sample.verdict = None;
    let html = render_html(&sample.input("run", false)).unwrap();
    assert!(after_header(&html).starts_with(
        "<section class=\"verdict unjudged\" id=\"verdict\">\n<div class=\"outcome\">Outcome: not judged</div>\n<p>this report carries no verdict"
    ));
    sample.nothing_to_remove = Some("bicycle: SMD +0.047".into());
    let html = render_html(&sample.input("run", false)).unwrap();
    assert!(after_header(&html).starts_with(
        "<section class=\"verdict nothing\" id=\"verdict\">\n<div class=\"outcome\">Outcome: nothing to remove</div>"
    ));
}

#[test]
fn each_variation_lists_its_statistics_baseline_beside_pruned() {
    let sample = Sample::new("white");
    let html = render_html(&sample.input("run", false)).unwrap();
    let (before, after) = (&sample.baseline.variations["bicycle"], &sample.pruned.variations["bicycle"]);
    let row = format!(
        "<tr><th>inlier ratio</th><td class=\"num\">{:.1}%</td><td class=\"num\">{:.1}%</td></tr>",
        before.inlier_ratio * 100.0,
        after.inlier_ratio * 100.0
    );
    assert!(html.contains(&row), "missing {row}");
    assert!(html.contains(&format!("<tr><th>answers</th><td class=\"num\">{}</td>", before.answers)));
    assert_eq!(html.matches("<table class=\"stats\">\n<tr><th></th><th>baseline</th><th>pruned</th></tr>").count(), 2);
}
