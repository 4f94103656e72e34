//! The model card's YAML front matter, in the Hugging Face Hub's model-card metadata fields:
//! base model and relation, library, licence, tags and a `model-index` with the evidence.

use std::fmt::Write;

use super::{EvaluationEvidence, Manifest};

/// The Hub's `base_model_relation` for a biasprune release.
///
/// The Hub documents four values: `adapter` (weights to load on top of the base), `merge`
/// (several parents combined), `quantized` (the base at a lower precision) and `finetune`
/// (the base's weights changed by a procedure driven by data). A pruned release ships the
/// full weights (not an adapter), has one parent (not a merge) and keeps every tensor's
/// dtype (not quantized); its weights were changed where scores computed on the use case's
/// answers pointed, which is what `finetune` describes. Stating it also stops the Hub from
/// guessing the relation from the files.
const BASE_MODEL_RELATION: &str = "finetune";

/// The library that loads a release: a transformers checkpoint (config.json and safetensors).
const LIBRARY_NAME: &str = "transformers";

/// Tags every release carries.
const TAGS: [&str; 4] = ["biasprune", "pruned", "bias-mitigation", "use-case-specific"];

/// The front matter of a release's card, `---` lines included: `base_model` is the Hub id
/// when the manifest records one (else the base's directory name, with a comment saying so),
/// `license` is the base's when known, and `model-index` carries the SMD per variation and
/// the inlier ratio of the base and the pruned model on the confirmation data.
pub fn front_matter(manifest: &Manifest, out_name: &str, base_license: Option<&str>) -> String {
    let mut yaml = String::from("---\n");
    match &manifest.base.hub {
        Some(hub) => {
            let _ = writeln!(yaml, "base_model: {}", quoted(&hub.id));
        }
        None => {
            let _ = writeln!(
                yaml,
                "# The base was given as a directory: replace its name with its Hub id before uploading.\n\
                 base_model: {}",
                quoted(&manifest.base.name)
            );
        }
    }
    let _ = writeln!(yaml, "base_model_relation: {BASE_MODEL_RELATION}");
    let _ = writeln!(yaml, "library_name: {LIBRARY_NAME}");
    if let Some(license) = base_license {
        let _ = writeln!(yaml, "license: {}", quoted(license));
    }
    let _ = writeln!(yaml, "tags:");
    for tag in TAGS {
        let _ = writeln!(yaml, "- {tag}");
    }
    if let Some(evidence) = &manifest.evidence {
        write_model_index(&mut yaml, out_name, evidence.baseline.as_ref(), evidence.pruned.as_ref());
    }
    yaml.push_str("---\n");
    yaml
}

/// One `model-index` result per evaluated scenario, with the defined SMDs and the inlier
/// ratios; nothing when neither evaluation was recorded.
fn write_model_index(
    yaml: &mut String,
    out_name: &str,
    baseline: Option<&EvaluationEvidence>,
    pruned: Option<&EvaluationEvidence>,
) {
    let Some(scenario) = pruned.or(baseline).map(|e| e.scenario.as_str()) else { return };
    let _ = writeln!(yaml, "model-index:\n- name: {}\n  results:", quoted(out_name));
    let _ = writeln!(yaml, "  - task:\n      type: text-generation\n      name: {}", quoted("Name-based disparity"));
    let _ = writeln!(
        yaml,
        "    dataset:\n      type: {}\n      name: {}\n      split: confirmation",
        quoted(&format!("biasprune-{scenario}")),
        quoted(&format!("biasprune scenario {scenario}"))
    );
    let _ = writeln!(yaml, "    metrics:");
    for (model, evaluation) in [("base", baseline), ("pruned", pruned)] {
        let Some(evaluation) = evaluation else { continue };
        for (variation, figures) in &evaluation.variations {
            if let Some(smd) = figures.smd.filter(|v| v.is_finite()) {
                write_metric(yaml, "smd", &format!("SMD {variation} ({model})"), smd);
            }
        }
        write_metric(yaml, "inlier_ratio", &format!("Inlier ratio ({model})"), evaluation.inlier_ratio);
    }
}

fn write_metric(yaml: &mut String, kind: &str, name: &str, value: f64) {
    let _ = writeln!(yaml, "    - type: {kind}\n      name: {}\n      value: {}", quoted(name), round(value));
}

/// A figure rounded to 4 decimals, written as YAML reads it back (never NaN: callers skip
/// undefined figures).
fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// The licence a base's card states in its front matter (`license: ID` at the top level),
/// when it has one; the value must look like a Hub licence id (letters, digits, `.`, `-`, `_`).
pub fn card_license(card: &str) -> Option<String> {
    let body = card.strip_prefix("---\n").or_else(|| card.strip_prefix("---\r\n"))?;
    let front = &body[..body.find("\n---")?];
    let value = front.lines().find_map(|line| line.strip_prefix("license:"))?;
    license_id(value.split(" #").next().unwrap_or_default().trim().trim_matches(|c| c == '"' || c == '\''))
}

/// `value` as a Hub licence id (`apache-2.0`, `llama3`, `other`), or None when it holds
/// anything but letters, digits, `.`, `-` and `_`.
pub fn license_id(value: &str) -> Option<String> {
    let valid =
        !value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    valid.then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::card_license;

    #[test]
    fn the_license_comes_from_the_front_matter_only() {
        assert_eq!(
            card_license("---\nlibrary_name: transformers\nlicense: apache-2.0\n---\n# x"),
            Some("apache-2.0".into())
        );
        assert_eq!(card_license("---\nlicense: \"llama3\" # gated\n---\n"), Some("llama3".into()));
        assert_eq!(card_license("# no front matter\nlicense: mit\n"), None);
        assert_eq!(card_license("---\ntags:\n- x\n---\nlicense: mit\n"), None);
        assert_eq!(card_license("---\nlicense: <script>\n---\n"), None);
    }
}
