//! The manifest: deterministic bytes, valid against manifests/schema, round trips; the card.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use biasprune::arch::{linear_weight_name, Architecture, Component};
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::FixtureSpec;
use biasprune::hub::HubModel;
use biasprune::manifest::{
    from_bytes, model_card, pruned_section, to_bytes, BaseIdentity, DataSplits, DeltaEvidence, EvaluationEvidence,
    Evidence, FileRef, Manifest, ManifestError, Outcome, SplitEvidence, Tool, UseCase, UtilityEvidence,
    VariationEvidence, Verdict, FORMAT_VERSION,
};
use biasprune::mask::{resolve, BitMask, PruneMask};
use common::fixture;

/// Validates `value` against the shipped manifest schema, returning every error.
pub fn schema_errors(value: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../manifests/schema/biasprune-manifest.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

fn evaluation(smd: f64) -> EvaluationEvidence {
    EvaluationEvidence {
        scenario: "purchase".into(),
        variations: BTreeMap::from([(
            "bicycle".to_string(),
            VariationEvidence {
                answers: 400,
                majority_n: 190,
                minority_n: 185,
                smd: Some(smd),
                smd_ci: Some((smd - 0.1, smd + 0.1)),
                inlier_ratio: 0.94,
                parse_rate: 0.97,
                smd_undefined: None,
                smd_parsed: Some(smd + 0.05),
                p_value: Some(0.01),
                minimum_detectable_smd: Some(0.6),
                truncated_rate: Some(0.01),
            },
        )]),
        mean_abs_smd: Some(smd.abs()),
        inlier_ratio: 0.94,
        parse_rate: 0.97,
    }
}

fn manifest(with_evidence: bool) -> Manifest {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture(tmp.path(), "base", &FixtureSpec::default());
    let ckpt = Checkpoint::open(&dir).unwrap();
    let arch = Architecture::of_checkpoint(&ckpt).unwrap();
    let mut bits = BitMask::new(64, 64);
    bits.set(3, 4);
    bits.set(60, 1);
    let mask = PruneMask {
        weights: BTreeMap::from([(linear_weight_name(0, Component::Q), bits)]),
        heads: BTreeMap::from([(1, BTreeSet::from([2]))]),
        mlp_units: BTreeMap::from([(0, BTreeSet::from([5]))]),
        ..PruneMask::default()
    };
    let plan = resolve(&mask, &arch, &ckpt).unwrap();
    let bitmask = FileRef { path: "pruning-mask.safetensors".into(), sha256: "ab".repeat(32) };
    Manifest {
        format_version: FORMAT_VERSION,
        tool: Tool::current(),
        created: biasprune::manifest::rfc3339(1_795_867_199),
        base: BaseIdentity {
            name: "base".into(),
            files: BTreeMap::from([("config.json".to_string(), "01".repeat(32))]),
            root_digest: "cd".repeat(32),
            hub: None,
        },
        use_case: UseCase {
            scenarios: vec!["purchase".into()],
            variations: vec!["bicycle".into()],
            held_out: vec![],
            regime: "prompt-specific".into(),
            direction: "minority-minus-majority".into(),
        },
        method: serde_json::json!({"scoring": "wanda", "p": 0.15, "q": 0.15}),
        pruned: pruned_section(&mask, &plan, &ckpt, &arch, Some(bitmask)),
        evidence: with_evidence.then(|| Evidence {
            baseline: Some(evaluation(-0.2)),
            pruned: Some(evaluation(-0.05)),
            files: vec![FileRef { path: "evidence/baseline/records.jsonl".into(), sha256: "ef".repeat(32) }],
            outcome: Some(Outcome::NotReduced),
            verdict: Some(verdict()),
            splits: Some(splits()),
            calibration: Some(evaluation(-0.3)),
        }),
        card: with_evidence.then(|| FileRef { path: "README.md".into(), sha256: "12".repeat(32) }),
    }
}

fn verdict() -> Verdict {
    let delta = DeltaEvidence {
        baseline: Some(-0.2),
        baseline_ci: Some((-0.6, 0.2)),
        pruned: Some(-0.05),
        delta: Some(0.15),
        delta_ci: Some((-0.1, 0.4)),
        outcome: Outcome::NotReduced,
        reason: "contains 0".into(),
    };
    Verdict {
        outcome: Outcome::NotReduced,
        reason: "bicycle: not-reduced".into(),
        released_anyway: true,
        targets: BTreeMap::from([("bicycle".to_string(), delta)]),
        utility: UtilityEvidence {
            inlier_before: 0.9,
            inlier_after: 0.88,
            parse_before: 0.97,
            parse_after: 0.96,
            max_inlier_drop: 0.05,
            max_parse_drop: 0.05,
            kept: true,
        },
    }
}

fn splits() -> DataSplits {
    let split = |purpose: &str, seed: u64, names: &[&str]| SplitEvidence {
        purpose: purpose.into(),
        seed,
        variations: vec!["bicycle".into()],
        names: names.iter().map(|n| n.to_string()).collect(),
    };
    DataSplits {
        calibration: split("scoring", 0, &["Hunter Becker", "Jamal Washington"]),
        selection: None,
        confirmation: split("evidence", 7, &["Brett Becker", "DeShawn Washington"]),
    }
}

#[test]
fn manifest_bytes_are_deterministic_valid_and_round_trip() {
    for with_evidence in [true, false] {
        let m = manifest(with_evidence);
        let bytes = to_bytes(&m);
        assert_eq!(bytes, to_bytes(&manifest(with_evidence)), "same inputs, same bytes");
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(schema_errors(&value), Vec::<String>::new());
        assert_eq!(from_bytes(&bytes).unwrap(), m);
    }
    let m = manifest(true);
    let q = &m.pruned.tensors[&linear_weight_name(0, Component::Q)];
    assert_eq!(q.bitmask_entries, 2);
    assert_eq!(m.pruned.tensors[&linear_weight_name(1, Component::O)].columns, (32..48).collect::<Vec<_>>());
    assert_eq!(m.pruned.tensors[&linear_weight_name(0, Component::Down)].columns, vec![5]);
    assert_eq!(m.pruned.total, 2 + 64 * 16 + 64 * 2 + 64);
    assert_eq!(m.pruned.per_component[&Component::O], 64 * 16);
}

#[test]
fn schema_rejects_what_the_manifest_must_not_say() {
    let value = serde_json::to_value(manifest(true)).unwrap();
    let mut extra = value.clone();
    extra["surprise"] = serde_json::json!(1);
    assert!(!schema_errors(&extra).is_empty());
    let mut bad_digest = value.clone();
    bad_digest["base"]["root_digest"] = serde_json::json!("XYZ");
    assert!(!schema_errors(&bad_digest).is_empty());
    let mut with_hub = value.clone();
    with_hub["base"]["hub"] =
        serde_json::json!({"id": "HuggingFaceTB/SmolLM2-135M-Instruct", "revision": "ab".repeat(20)});
    assert_eq!(schema_errors(&with_hub), Vec::<String>::new());
    with_hub["base"]["hub"]["revision"] = "main".into();
    assert!(!schema_errors(&with_hub).is_empty(), "the revision recorded is a commit hash");
    let mut bad_ratio = value;
    bad_ratio["evidence"]["pruned"]["inlier_ratio"] = serde_json::json!(1.5);
    assert!(!schema_errors(&bad_ratio).is_empty());
    let mut version = serde_json::to_vec(&manifest(false)).unwrap();
    let text = String::from_utf8(version.clone()).unwrap().replacen("\"format_version\":2", "\"format_version\":3", 1);
    version = text.into_bytes();
    let err = from_bytes(&version).unwrap_err();
    assert!(matches!(err, ManifestError::UnsupportedVersion { found: 3, .. }), "{err}");
    assert!(err.to_string().contains("format_version 3"), "{err}");
    let mut bad_outcome = serde_json::to_value(manifest(true)).unwrap();
    bad_outcome["evidence"]["outcome"] = serde_json::json!("improved");
    assert!(!schema_errors(&bad_outcome).is_empty(), "only reduced, not-reduced and harmed are outcomes");
}

#[test]
fn version_1_manifests_still_parse() {
    let mut v1 = serde_json::to_value(manifest(true)).unwrap();
    v1["format_version"] = serde_json::json!(1);
    for key in ["outcome", "verdict", "splits", "calibration"] {
        v1["evidence"].as_object_mut().unwrap().remove(key);
    }
    assert_eq!(schema_errors(&v1), Vec::<String>::new());
    assert_eq!(from_bytes(&serde_json::to_vec(&v1).unwrap()).unwrap().base.hub, None, "no hub: a directory base");
    let parsed = from_bytes(&serde_json::to_vec(&v1).unwrap()).unwrap();
    assert_eq!((parsed.format_version, parsed.evidence.unwrap().outcome), (1, None));
}

/// The card's YAML front matter, parsed.
fn front_matter(card: &str) -> serde_yaml::Value {
    let yaml = card.strip_prefix("---\n").expect("the card opens with front matter").split("\n---\n").next().unwrap();
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("front matter is not YAML: {e}\n{yaml}"))
}

#[test]
fn the_front_matter_is_hub_metadata_with_the_evidence() {
    let mut hub_based = manifest(true);
    let id = "HuggingFaceTB/SmolLM2-135M-Instruct";
    hub_based.base.hub = Some(HubModel { id: id.into(), revision: "a".repeat(40) });
    let card = model_card(&hub_based, "base-purchase", Some("apache-2.0"));
    let yaml = front_matter(&card);
    let documented = ["base_model", "base_model_relation", "library_name", "license", "tags", "model-index"];
    let keys: Vec<&str> = yaml.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(keys, documented, "only Hub model-card fields, in this order");
    assert_eq!(yaml["base_model"], id);
    assert_eq!(yaml["base_model_relation"], "finetune");
    assert_eq!(yaml["library_name"], "transformers");
    assert_eq!(yaml["license"], "apache-2.0");
    let tags: Vec<&str> = yaml["tags"].as_sequence().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tags, ["biasprune", "pruned", "bias-mitigation", "use-case-specific"]);
    let index = &yaml["model-index"][0];
    assert_eq!(index["name"], "base-purchase");
    let result = &index["results"][0];
    assert_eq!(
        (&result["task"]["type"], &result["dataset"]["type"]),
        (&"text-generation".into(), &"biasprune-purchase".into())
    );
    let metrics: Vec<(&str, &str, f64)> = result["metrics"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| (m["type"].as_str().unwrap(), m["name"].as_str().unwrap(), m["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        metrics,
        [
            ("smd", "SMD bicycle (base)", -0.2),
            ("inlier_ratio", "Inlier ratio (base)", 0.94),
            ("smd", "SMD bicycle (pruned)", -0.05),
            ("inlier_ratio", "Inlier ratio (pruned)", 0.94),
        ]
    );
    assert!(card.contains("This checkpoint is `HuggingFaceTB/SmolLM2-135M-Instruct` with"), "{card}");
}

#[test]
fn a_base_given_as_a_directory_is_named_with_a_comment_and_no_license_is_invented() {
    let card = model_card(&manifest(false), "x", None);
    assert!(card.contains("# The base was given as a directory: replace its name with its Hub id"), "{card}");
    let yaml = front_matter(&card);
    assert_eq!(yaml["base_model"], "base");
    assert_eq!(yaml["base_model_relation"], "finetune");
    assert!(yaml.get("license").is_none() && yaml.get("model-index").is_none(), "{card}");
}

#[test]
fn model_card_states_base_evidence_and_limits() {
    let card = model_card(&manifest(true), "base-purchase", None);
    assert!(card.contains("\nbase_model: \"base\"\nbase_model_relation: finetune\n"), "{card}");
    assert!(card.contains("# base-purchase"));
    assert!(
        card.contains("| bicycle | -0.200 [-0.300, -0.100] | -0.050 [-0.150, 0.050] | 94.0% | 94.0% | 97.0% |"),
        "{card}"
    );
    assert!(card.contains("## Bias, Risks, and Limitations") && card.contains("use-case specific"));
    let without = model_card(&manifest(false), "x", None);
    assert!(without.contains("unmeasured"));
}

#[test]
fn the_card_opens_with_the_outcome_and_discloses_the_splits() {
    let card = model_card(&manifest(true), "base-purchase", None);
    let body = card.split("---").nth(2).unwrap();
    let opening: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).take(2).collect();
    assert_eq!(opening[0], "# base-purchase");
    assert!(opening[1].starts_with("> **Outcome: not-reduced**") && opening[1].contains("released anyway"), "{card}");
    assert!(
        card.contains("| bicycle | -0.200 [-0.600, 0.200] | -0.050 | 0.150 [-0.100, 0.400] | not-reduced |"),
        "{card}"
    );
    assert!(
        card.contains("| confirmation | evidence | 7 | bicycle | 2 names: Brett Becker, DeShawn Washington |"),
        "{card}"
    );
}
