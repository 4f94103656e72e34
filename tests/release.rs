//! `apply --sign-key` and `verify --base` through the real binary: the release layout, a
//! schema-valid deterministic manifest, each kind of tampering caught and named with exit 1,
//! and the reference verifier (model-signing 1.1.1) accepting the output.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use biasprune::arch::{linear_weight_name, Architecture, Component};
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::FixtureSpec;
use biasprune::manifest::{from_bytes, pruned_section, BaseIdentity};
use biasprune::mask::{load_mask, resolve, save_mask, BitMask, PruneMask};
use biasprune::progress::NoProgress;
use biasprune::release::{base_identity, base_identity_from_digests, release, ReleaseOptions};
use biasprune::sign::{sign_payload, Bundle, Statement};
use common::{biasprune, fixture};
use tempfile::TempDir;

const EPOCH: &str = "1795867199";
const MANIFEST: &str = "biasprune-manifest.json";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn gate0() -> String {
    linear_weight_name(0, Component::Gate)
}

/// Validates a manifest against the shipped schema (as tests/manifest.rs does).
fn schema_errors(value: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../manifests/schema/biasprune-manifest.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// A mask with all three granularities: bitmask entries in q_proj 0, rows 3 and 7 of
/// gate_proj 0, head 0 of layer 1.
fn write_mask(base: &Path, dir: &Path) {
    let ckpt = Checkpoint::open(base).unwrap();
    let arch = Architecture::of_checkpoint(&ckpt).unwrap();
    let [rows, cols] = arch.linear_shape(Component::Q);
    let mut bits = BitMask::new(rows, cols);
    for (r, c) in [(0, 1), (5, 9), (rows - 1, cols - 1)] {
        bits.set(r, c);
    }
    let mask = PruneMask {
        weights: BTreeMap::from([(linear_weight_name(0, Component::Q), bits)]),
        rows: BTreeMap::from([(gate0(), BTreeSet::from([3, 7]))]),
        heads: BTreeMap::from([(1, BTreeSet::from([0]))]),
        ..PruneMask::default()
    };
    save_mask(dir, &mask).unwrap();
}

struct Release {
    root: TempDir,
    base: PathBuf,
    out: PathBuf,
    private: String,
    public: String,
}

fn keygen(root: &Path, name: &str) -> (String, String) {
    let prefix = root.join(name);
    let out = biasprune(&["keygen", "--out", s(&prefix)]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    (format!("{}.priv", prefix.display()), format!("{}.pub", prefix.display()))
}

fn apply_signed(root: &Path, base: &Path, out: &Path, private: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(["apply", s(base), "--mask", s(&root.join("mask")), "--out", s(out), "--sign-key", private])
        .args(["--evidence-dir", s(&root.join("ev")), "--quiet"])
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "apply: {}", String::from_utf8_lossy(&output.stderr));
}

/// A base with a README, a mask, evidence files, a key pair, and `apply --sign-key` to
/// `ROOT/pruned`.
fn released() -> Release {
    let root = tempfile::tempdir().unwrap();
    let base = fixture(root.path(), "base", &FixtureSpec::default());
    fs::write(base.join("README.md"), "# the base model's own card\n").unwrap();
    write_mask(&base, &root.path().join("mask"));
    fs::create_dir_all(root.path().join("ev/pruned")).unwrap();
    fs::write(root.path().join("ev/baseline-records.jsonl"), "{\"answer\": \"120\"}\n").unwrap();
    fs::write(root.path().join("ev/pruned/records.jsonl"), "{\"answer\": \"115\"}\n").unwrap();
    let (private, public) = keygen(root.path(), "key");
    let out = root.path().join("pruned");
    apply_signed(root.path(), &base, &out, &private);
    Release { root, base, out, private, public }
}

fn verify(r: &Release, public: &str, base: bool) -> (i32, String) {
    let mut args = vec!["verify", s(&r.out), "--public-key", public];
    if base {
        args.extend(["--base", s(&r.base)]);
    }
    let out = biasprune(&args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("exit code"), text)
}

fn assert_fails_naming(r: &Release, base: bool, check: &str, file: &str) -> String {
    let (code, text) = verify(r, &r.public, base);
    assert_eq!(code, 1, "expected exit 1:\n{text}");
    let line = format!("FAIL {check} [{file}]");
    assert!(text.contains(&line), "expected a line starting {line:?}:\n{text}");
    text
}

fn flip_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

fn manifest(r: &Release) -> serde_json::Value {
    serde_json::from_slice(&fs::read(r.out.join(MANIFEST)).unwrap()).unwrap()
}

fn shard_of(r: &Release, tensor: &str) -> String {
    manifest(r)["pruned"]["tensors"][tensor]["file"].as_str().unwrap().to_string()
}

fn resign(r: &Release) {
    let out = biasprune(&["sign", s(&r.out), "--key", &r.private]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Rewrites the manifest's rows of gate_proj 0 (fixing the counts so they stay
/// consistent) and re-signs, so only the manifest-versus-weights checks can object.
fn redeclare_gate_rows(r: &Release, rows: &[usize]) {
    let mut m = manifest(r);
    let cols = 64u64;
    let before = m["pruned"]["tensors"][gate0()]["rows"].as_array().unwrap().len() as i64;
    let delta = (rows.len() as i64 - before) * cols as i64;
    let tensor = &mut m["pruned"]["tensors"][gate0()];
    tensor["rows"] = serde_json::json!(rows);
    tensor["zeroed"] = serde_json::json!(tensor["zeroed"].as_i64().unwrap() + delta);
    m["pruned"]["total"] = serde_json::json!(m["pruned"]["total"].as_i64().unwrap() + delta);
    let mut bytes = serde_json::to_vec_pretty(&m).unwrap();
    bytes.push(b'\n');
    fs::write(r.out.join(MANIFEST), bytes).unwrap();
    resign(r);
}

#[test]
fn signed_release_verifies_with_base_and_has_the_documented_layout() {
    let r = released();
    let (code, text) = verify(&r, &r.public, true);
    assert_eq!(code, 0, "{text}");
    for check in [
        "manifest.parse",
        "manifest.bitmask",
        "manifest.pruned_zero",
        "manifest.card",
        "manifest.evidence",
        "base.identity",
        "base.unchanged",
        "base.undeclared_zeroing",
        "base.overdeclared",
    ] {
        assert!(text.contains(&format!("PASS {check}")), "{check} missing:\n{text}");
    }
    assert_eq!(fs::read(r.out.join("README.base.md")).unwrap(), fs::read(r.base.join("README.md")).unwrap());
    assert!(fs::read_to_string(r.out.join("README.md")).unwrap().contains("## Bias, Risks, and Limitations"));
    let mask_bits = fs::read(r.root.path().join("mask/pruning-mask.safetensors")).unwrap();
    assert_eq!(fs::read(r.out.join("pruning-mask.safetensors")).unwrap(), mask_bits);
    assert_eq!(fs::read_to_string(r.out.join("evidence/pruned/records.jsonl")).unwrap(), "{\"answer\": \"115\"}\n");
    let m = manifest(&r);
    assert_eq!(schema_errors(&m), Vec::<String>::new());
    assert_eq!(m["use_case"]["regime"], "manual");
    assert_eq!(m["pruned"]["tensors"][linear_weight_name(0, Component::Q)]["bitmask_entries"], 3);
    assert_eq!(m["pruned"]["total"], 3 + 2 * 64 + 64 * 16);
    assert_eq!(m["evidence"]["files"].as_array().unwrap().len(), 2);
    assert_eq!(m["base"]["name"], "base");
    assert_eq!(m["base"]["files"].as_object().unwrap().len(), fs::read_dir(&r.base).unwrap().count());
    let bundle: Bundle = serde_json::from_slice(&fs::read(r.out.join("model.sig")).unwrap()).unwrap();
    let statement: Statement =
        serde_json::from_slice(&STANDARD.decode(&bundle.dsse_envelope.payload).unwrap()).unwrap();
    assert_eq!(statement.subject[0].name, "pruned", "the subject is OUT's name, not the temporary one");
    let leftovers: Vec<_> = fs::read_dir(r.root.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directory is left behind");
}

#[test]
fn two_runs_with_the_same_source_date_epoch_give_identical_manifests() {
    let r = released();
    let other_root = tempfile::tempdir().unwrap();
    let again = other_root.path().join("pruned");
    apply_signed(r.root.path(), &r.base, &again, &r.private);
    assert_eq!(fs::read(again.join(MANIFEST)).unwrap(), fs::read(r.out.join(MANIFEST)).unwrap());
    assert_eq!(fs::read(again.join("README.md")).unwrap(), fs::read(r.out.join("README.md")).unwrap());
    assert_eq!(fs::read(again.join("model.sig")).unwrap(), fs::read(r.out.join("model.sig")).unwrap());
}

#[test]
fn flipped_byte_in_a_shard_is_named() {
    let r = released();
    let shard = shard_of(&r, &gate0());
    flip_byte(&r.out.join(&shard));
    assert_fails_naming(&r, false, "files.sha256", &shard);
}

#[test]
fn flipped_byte_in_the_manifest_is_named() {
    let r = released();
    flip_byte(&r.out.join(MANIFEST));
    assert_fails_naming(&r, false, "files.sha256", MANIFEST);
}

#[test]
fn flipped_byte_in_the_card_is_named_by_signature_and_manifest() {
    let r = released();
    flip_byte(&r.out.join("README.md"));
    assert_fails_naming(&r, false, "files.sha256", "README.md");
    assert_fails_naming(&r, false, "manifest.card", "README.md");
}

#[test]
fn flipped_byte_in_an_evidence_file_is_named_by_signature_and_manifest() {
    let r = released();
    let file = "evidence/pruned/records.jsonl";
    flip_byte(&r.out.join(file));
    assert_fails_naming(&r, false, "files.sha256", file);
    assert_fails_naming(&r, false, "manifest.evidence", file);
}

#[test]
fn added_and_removed_files_are_named() {
    let r = released();
    fs::write(r.out.join("extra.bin"), b"not signed").unwrap();
    assert_fails_naming(&r, false, "files.unsigned", "extra.bin");
    fs::remove_file(r.out.join("extra.bin")).unwrap();
    fs::remove_file(r.out.join("tokenizer.json")).unwrap();
    assert_fails_naming(&r, false, "files.missing", "tokenizer.json");
}

#[test]
fn signature_made_with_another_key_is_refused() {
    let r = released();
    let (other_private, _) = keygen(r.root.path(), "other");
    let out = biasprune(&["sign", s(&r.out), "--key", &other_private]);
    assert_eq!(out.status.code(), Some(0));
    assert_fails_naming(&r, false, "signature.key_hint", "model.sig");
    assert_fails_naming(&r, false, "signature.dsse", "model.sig");
}

#[test]
fn truncated_or_non_json_signature_is_refused() {
    let r = released();
    let bytes = fs::read(r.out.join("model.sig")).unwrap();
    fs::write(r.out.join("model.sig"), &bytes[..bytes.len() / 3]).unwrap();
    assert_fails_naming(&r, false, "signature.bundle_format", "model.sig");
    fs::write(r.out.join("model.sig"), b"PK\x03\x04 not json").unwrap();
    assert_fails_naming(&r, false, "signature.bundle_format", "model.sig");
}

#[test]
fn statement_whose_root_digest_does_not_match_its_resources_is_refused() {
    let r = released();
    let bundle: Bundle = serde_json::from_slice(&fs::read(r.out.join("model.sig")).unwrap()).unwrap();
    let mut statement: Statement =
        serde_json::from_slice(&STANDARD.decode(&bundle.dsse_envelope.payload).unwrap()).unwrap();
    statement.subject[0].digest.insert("sha256".into(), "cd".repeat(32));
    let resigned =
        sign_payload(&serde_json::to_vec(&statement).unwrap(), &fs::read_to_string(&r.private).unwrap()).unwrap();
    fs::write(r.out.join("model.sig"), resigned).unwrap();
    let text = assert_fails_naming(&r, false, "statement.root_digest", "model.sig");
    assert!(text.contains("PASS signature.dsse"), "{text}");
}

#[test]
fn manifest_declaring_fewer_entries_than_were_zeroed_fails_against_the_base() {
    let r = released();
    let shard = shard_of(&r, &gate0());
    redeclare_gate_rows(&r, &[3]);
    let (code, text) = verify(&r, &r.public, false);
    assert_eq!(code, 0, "without --base the edited, re-signed manifest is self-consistent:\n{text}");
    let text = assert_fails_naming(&r, true, "base.undeclared_zeroing", &shard);
    assert!(text.contains(&format!("tensor {}: 64 entries are zero here but not in the base", gate0())), "{text}");
    assert!(text.contains("PASS signature.dsse") && text.contains("PASS manifest.pruned_zero"), "{text}");
}

#[test]
fn manifest_declaring_more_entries_than_were_zeroed_is_refused() {
    let r = released();
    let shard = shard_of(&r, &gate0());
    redeclare_gate_rows(&r, &[3, 7, 9]);
    let text = assert_fails_naming(&r, false, "manifest.pruned_zero", &shard);
    assert!(text.contains("PASS signature.dsse"), "{text}");
    let text = assert_fails_naming(&r, true, "base.overdeclared", &shard);
    assert!(
        text.contains(&format!("tensor {}: 64 entries the manifest declares pruned still hold", gate0())),
        "{text}"
    );
}

#[test]
fn undeclared_change_re_signed_is_caught_against_the_base() {
    let r = released();
    let shard = shard_of(&r, &gate0());
    flip_byte(&r.out.join(&shard));
    resign(&r);
    assert_fails_naming(&r, true, "base.unchanged", &shard);
}

#[test]
fn a_given_base_identity_is_recorded_as_if_hashed_and_an_inconsistent_one_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let base = fixture(root.path(), "base", &FixtureSpec::default());
    fs::write(base.join("model.sig"), "the base's own signature, not part of its identity").unwrap();
    write_mask(&base, &root.path().join("mask"));
    let hashed = base_identity(&Checkpoint::open(&base).unwrap(), &NoProgress).unwrap();
    let eval_digests = biasprune::checkpoint::file_digests(&base).unwrap();
    assert!(eval_digests.contains_key("model.sig"), "eval's identity lists every file");
    let given = base_identity_from_digests(&base, &eval_digests).unwrap();
    assert_eq!(given, hashed, "model.sig is left out as model-signing leaves it out");

    let release_with = |name: &str, base_id: Option<BaseIdentity>| {
        let options = ReleaseOptions { base: base_id, ..ReleaseOptions::default() };
        release(&base, &root.path().join("mask"), &root.path().join(name), &options, &NoProgress)
    };
    release_with("hashed", None).unwrap();
    release_with("given", Some(given.clone())).unwrap();
    let read = |name: &str| {
        let mut manifest = from_bytes(&fs::read(root.path().join(name).join(MANIFEST)).unwrap()).unwrap();
        (manifest.created, manifest.card) = (String::new(), None);
        manifest
    };
    assert_eq!(read("given"), read("hashed"));
    let ckpt = Checkpoint::open(&base).unwrap();
    let arch = Architecture::of_checkpoint(&ckpt).unwrap();
    let mask = load_mask(&root.path().join("mask")).unwrap();
    let plan = resolve(&mask, &arch, &ckpt).unwrap();
    let recorded = read("hashed").pruned;
    let recounted = pruned_section(&mask, &plan, &ckpt, &arch, recorded.bitmask_file.clone());
    assert_eq!(recorded, recounted, "surgery's per-tensor counts are the plan's");

    let mut wrong_digest = given.clone();
    wrong_digest.files.insert("config.json".into(), "00".repeat(32));
    let mut missing = given.clone();
    missing.files.remove("config.json");
    let mut extra = given.clone();
    extra.files.insert("gone.bin".into(), "11".repeat(32));
    for (identity, needle) in [
        (wrong_digest, "is not that of its files"),
        (missing, "no sha256 given for the base's file config.json"),
        (extra, "lists files the base does not have: [\"gone.bin\"]"),
    ] {
        let err = release_with("refused", Some(identity)).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
        assert!(!root.path().join("refused").exists(), "nothing is written");
    }
}

#[test]
fn a_signed_report_html_is_a_release_file_but_other_additions_are_not() {
    let r = released();
    fs::write(r.out.join("report.html"), "<!doctype html><title>report</title>\n").unwrap();
    resign(&r);
    let (code, text) = verify(&r, &r.public, true);
    assert_eq!(code, 0, "report.html belongs to a release:\n{text}");
    assert!(text.contains("PASS base.unchanged"), "{text}");
    fs::write(r.out.join("notes.html"), "<p>not declared</p>\n").unwrap();
    resign(&r);
    let text = assert_fails_naming(&r, true, "base.unchanged", "notes.html");
    assert!(text.contains("is neither in the base nor declared by the manifest"), "{text}");
}

#[test]
fn another_base_fails_the_identity_check() {
    let r = released();
    let other = fixture(r.root.path(), "other-base", &FixtureSpec { seed: 7, ..FixtureSpec::default() });
    fs::write(other.join("README.md"), "# the base model's own card\n").unwrap();
    let out = biasprune(&["verify", s(&r.out), "--public-key", &r.public, "--base", s(&other)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL base.identity [model-00001-of-00002.safetensors]"), "{text}");
    assert!(text.contains("FAIL base.identity [biasprune-manifest.json]: base root digest"), "{text}");
}

#[test]
fn verify_base_without_a_manifest_fails_and_a_missing_base_is_unusable_input() {
    let r = released();
    fs::remove_file(r.out.join(MANIFEST)).unwrap();
    assert_fails_naming(&r, true, "manifest.parse", MANIFEST);
    let out = biasprune(&["verify", s(&r.out), "--public-key", &r.public, "--base", s(&r.root.path().join("nope"))]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn reference_verifier_accepts_a_signed_release() {
    let r = released();
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/model-signing/bin/model_signing");
    assert!(tool.is_file(), "run scripts/setup-model-signing.sh first ({} is missing); never a skip", tool.display());
    let sig = r.out.join("model.sig");
    let out = Command::new(&tool)
        .args(["verify", "key", s(&r.out), "--signature", s(&sig), "--public_key", &r.public])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "model_signing verify refused:\n{text}");
    assert!(text.contains("Verification succeeded"), "{text}");
}

#[test]
fn use_case_file_is_recorded_and_a_bad_one_or_a_bad_key_leaves_no_output() {
    let r = released();
    let good = r.root.path().join("use-case.json");
    fs::write(&good, r#"{"scenarios": ["purchase"], "variations": ["bicycle"], "held_out": [], "regime": "prompt-specific", "direction": "minority-minus-majority"}"#).unwrap();
    let out = r.root.path().join("with-use-case");
    let run = |use_case: &Path, key: &str, out: &Path| {
        biasprune(&[
            "apply",
            s(&r.base),
            "--mask",
            s(&r.root.path().join("mask")),
            "--out",
            s(out),
            "--use-case-file",
            s(use_case),
            "--sign-key",
            key,
            "--quiet",
        ])
    };
    let done = run(&good, &r.private, &out);
    assert_eq!(done.status.code(), Some(0), "{}", String::from_utf8_lossy(&done.stderr));
    let m: serde_json::Value = serde_json::from_slice(&fs::read(out.join(MANIFEST)).unwrap()).unwrap();
    assert_eq!(m["use_case"]["scenarios"], serde_json::json!(["purchase"]));
    assert_eq!(m["use_case"]["regime"], "prompt-specific");
    assert_eq!(schema_errors(&m), Vec::<String>::new());
    let bad = r.root.path().join("bad-use-case.json");
    fs::write(
        &bad,
        r#"{"scenarios": [], "variations": [], "held_out": [], "regime": "whatever", "direction": "manual"}"#,
    )
    .unwrap();
    let refused = run(&bad, &r.private, &r.root.path().join("never"));
    common::assert_bad_input(&refused, &["bad-use-case.json", "regime \"whatever\""]);
    let refused = run(&good, &r.public, &r.root.path().join("never"));
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(!r.root.path().join("never").exists());
    let partial =
        fs::read_dir(r.root.path()).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with(".never"));
    assert!(!partial, "no partial directory is left");
}

#[test]
fn manifest_only_release_has_no_signature_and_keeps_the_base_card() {
    let r = released();
    let out = r.root.path().join("unsigned");
    let done = biasprune(&[
        "apply",
        s(&r.base),
        "--mask",
        s(&r.root.path().join("mask")),
        "--out",
        s(&out),
        "--manifest",
        "--quiet",
    ]);
    assert_eq!(done.status.code(), Some(0), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(!out.join("model.sig").exists());
    assert!(out.join(MANIFEST).is_file() && out.join("README.base.md").is_file());
    assert!(!out.join("evidence").exists());
    let m: serde_json::Value = serde_json::from_slice(&fs::read(out.join(MANIFEST)).unwrap()).unwrap();
    assert_eq!(m["evidence"], serde_json::Value::Null);
    assert_eq!(schema_errors(&m), Vec::<String>::new());
}

#[test]
fn manifest_declaring_pruning_in_a_sub_byte_tensor_fails_without_a_panic() {
    let r = released();
    let shard = shard_of(&r, &gate0());
    let bytes = fs::read(r.out.join(&shard)).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let gate = tensors.tensor(&gate0()).unwrap();
    let packed = vec![0u8; gate.shape().iter().product::<usize>() / 2];
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(name, view)| {
            if name == gate0() {
                let f4 = safetensors::tensor::TensorView::new(safetensors::Dtype::F4, view.shape().to_vec(), &packed);
                (name.to_string(), f4.unwrap())
            } else {
                (name.to_string(), view)
            }
        })
        .collect();
    let rewritten = safetensors::serialize(views, None).unwrap();
    fs::write(r.out.join(&shard), rewritten).unwrap();
    resign(&r);
    let text = assert_fails_naming(&r, false, "manifest.pruned_zero", &shard);
    assert!(text.contains(&format!("tensor {}: expected a dtype of whole bytes", gate0())), "{text}");
    assert!(text.contains("found F4 with 4 bits per element"), "{text}");
}

#[test]
fn files_under_ignored_paths_are_listed_and_fail_against_a_base_without_them() {
    let r = released();
    fs::create_dir_all(r.out.join(".git")).unwrap();
    fs::create_dir_all(r.out.join(".github/workflows")).unwrap();
    fs::write(r.out.join(".git/config"), "[core]\n\tfsmonitor = ./payload.sh\n").unwrap();
    fs::write(r.out.join(".github/workflows/ci.yml"), "on: push\n").unwrap();
    fs::write(r.out.join(".gitattributes"), "*.safetensors filter=lfs\n").unwrap();
    let (code, text) = verify(&r, &r.public, false);
    assert_eq!(code, 0, "without --base the unsigned VCS files are listed, not failed:\n{text}");
    assert!(
        text.contains("PASS files.ignored: 3 files are present but not signed")
            && text.contains(".git/config")
            && text.contains(".github/workflows/ci.yml"),
        "{text}"
    );
    for file in [".git/config", ".github/workflows/ci.yml", ".gitattributes"] {
        let text = assert_fails_naming(&r, true, "base.unchanged", file);
        assert!(text.contains("is not covered by the signature (an ignored path) and the base has no such file"));
    }
    fs::write(r.base.join(".gitattributes"), "*.safetensors filter=lfs\n").unwrap();
    fs::remove_dir_all(r.out.join(".git")).unwrap();
    fs::remove_dir_all(r.out.join(".github")).unwrap();
    let (code, text) = verify(&r, &r.public, true);
    assert_eq!(code, 0, "an ignored file equal to the base's passes:\n{text}");
}

#[test]
fn a_statement_that_ignores_the_manifest_cannot_vouch_for_a_forged_one() {
    let r = released();
    let mut m = manifest(&r);
    m["base"]["name"] = serde_json::json!("forged-base-name");
    fs::write(r.out.join(MANIFEST), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let mut digests = biasprune::sign::digest_directory(&r.out, &NoProgress).unwrap();
    digests.remove(MANIFEST);
    let ignore: Vec<String> = ["model.sig", MANIFEST].iter().map(|p| p.to_string()).collect();
    let statement = Statement::for_directory("pruned", &digests, &ignore);
    let bundle =
        sign_payload(&serde_json::to_vec(&statement).unwrap(), &fs::read_to_string(&r.private).unwrap()).unwrap();
    fs::write(r.out.join("model.sig"), bundle).unwrap();
    let text = assert_fails_naming(&r, false, "files.unsigned", MANIFEST);
    assert!(text.contains("is named by biasprune-manifest.json but is not a signed resource"), "{text}");
    assert!(text.contains("PASS signature.dsse") && text.contains("PASS manifest.parse"), "{text}");
}

#[test]
fn reproduce_runs_nothing_from_a_release_that_fails_verification() {
    let r = released();
    flip_byte(&r.out.join("tokenizer.json"));
    let out = biasprune(&["verify", s(&r.out), "--public-key", &r.public, "--reproduce"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL files.sha256 [tokenizer.json]"), "{text}");
    let reproduce: Vec<&str> = text.lines().filter(|l| l.contains(" reproduce.")).collect();
    assert_eq!(reproduce.len(), 1, "one reproduce line, saying it did not run:\n{text}");
    assert!(reproduce[0].starts_with("FAIL reproduce.evidence: not run: 1 earlier checks failed"), "{text}");
}
