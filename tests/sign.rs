//! Signing and verification through the real binary: round trips on every curve, each kind
//! of tampering caught and named with exit 1, and interoperability with `model_signing`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use biasprune::progress::NoProgress;
use biasprune::sign::{digest_directory, sign_directory, sign_payload, Bundle, SignError, Statement};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tempfile::TempDir;

const WEIGHTS: &str = "model-00001-of-00002.safetensors";

fn biasprune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().expect("run biasprune")
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// A small model directory: two weight shards, config, tokenizer, a nested evidence file.
fn model_dir(root: &Path) -> PathBuf {
    let dir = root.join("tiny-model");
    fs::create_dir_all(dir.join("evidence")).unwrap();
    fs::write(dir.join(WEIGHTS), random_bytes(1, 300_000)).unwrap();
    fs::write(dir.join("model-00002-of-00002.safetensors"), random_bytes(2, 120_000)).unwrap();
    fs::write(dir.join("config.json"), br#"{"architectures":["LlamaForCausalLM"]}"#).unwrap();
    fs::write(dir.join("tokenizer.json"), random_bytes(3, 5_000)).unwrap();
    fs::write(dir.join("evidence/records.jsonl"), random_bytes(4, 2_000)).unwrap();
    dir
}

fn keygen(root: &Path, name: &str, curve: &str) -> (String, String) {
    let prefix = root.join(name);
    let out = biasprune(&["keygen", "--out", s(&prefix), "--curve", curve]);
    assert_eq!(out.status.code(), Some(0), "keygen: {}", String::from_utf8_lossy(&out.stderr));
    (format!("{}.priv", prefix.display()), format!("{}.pub", prefix.display()))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn sign(dir: &Path, private: &str) {
    let out = biasprune(&["sign", s(dir), "--key", private]);
    assert_eq!(out.status.code(), Some(0), "sign: {}", String::from_utf8_lossy(&out.stderr));
}

fn verify(dir: &Path, public: &str) -> (i32, String) {
    let out = biasprune(&["verify", s(dir), "--public-key", public]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("exit code"), text)
}

/// Signed directory with a fresh P-256 key: (temp root, model dir, private, public).
fn signed_model() -> (TempDir, PathBuf, String, String) {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path());
    let (private, public) = keygen(root.path(), "key", "p256");
    sign(&dir, &private);
    (root, dir, private, public)
}

fn assert_fails_naming(dir: &Path, public: &str, check: &str, file: &str) {
    let (code, text) = verify(dir, public);
    assert_eq!(code, 1, "expected exit 1:\n{text}");
    let line = format!("FAIL {check} [{file}]");
    assert!(text.contains(&line), "expected a line starting {line:?}:\n{text}");
}

fn flip_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

#[test]
fn sign_then_verify_passes_on_every_curve() {
    for curve in ["p256", "p384", "p521"] {
        let root = tempfile::tempdir().unwrap();
        let dir = model_dir(root.path());
        let (private, public) = keygen(root.path(), "key", curve);
        sign(&dir, &private);
        let (code, text) = verify(&dir, &public);
        assert_eq!(code, 0, "{curve}:\n{text}");
        assert!(!text.contains("FAIL"), "{curve}:\n{text}");
        assert!(text.contains("PASS files.sha256: 5 files"), "{curve}:\n{text}");
    }
}

#[test]
fn verify_json_lists_every_named_check() {
    let (_root, dir, _private, public) = signed_model();
    let out = biasprune(&["verify", s(&dir), "--public-key", &public, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], true);
    let names: Vec<&str> = report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "signature.bundle_format",
            "signature.key_hint",
            "signature.dsse",
            "statement.shape",
            "statement.root_digest",
            "files.unsigned",
            "files.missing",
            "files.sha256",
        ]
    );
}

#[test]
fn flipped_byte_in_a_weight_file_is_named() {
    let (_root, dir, _private, public) = signed_model();
    flip_byte(&dir.join(WEIGHTS));
    assert_fails_naming(&dir, &public, "files.sha256", WEIGHTS);
}

#[test]
fn flipped_byte_in_a_nested_non_weight_file_is_named() {
    let (_root, dir, _private, public) = signed_model();
    flip_byte(&dir.join("evidence/records.jsonl"));
    assert_fails_naming(&dir, &public, "files.sha256", "evidence/records.jsonl");
}

#[test]
fn added_file_is_named_as_unsigned() {
    let (_root, dir, _private, public) = signed_model();
    fs::write(dir.join("extra.bin"), b"not signed").unwrap();
    assert_fails_naming(&dir, &public, "files.unsigned", "extra.bin");
}

#[test]
fn removed_file_is_named_as_missing() {
    let (_root, dir, _private, public) = signed_model();
    fs::remove_file(dir.join("config.json")).unwrap();
    assert_fails_naming(&dir, &public, "files.missing", "config.json");
}

#[test]
fn signature_made_with_another_key_fails_hint_and_dsse() {
    let (root, dir, _private, _public) = signed_model();
    let (_other_private, other_public) = keygen(root.path(), "other", "p256");
    assert_fails_naming(&dir, &other_public, "signature.key_hint", "model.sig");
    assert_fails_naming(&dir, &other_public, "signature.dsse", "model.sig");
}

#[test]
fn truncated_signature_file_fails_bundle_format() {
    let (_root, dir, _private, public) = signed_model();
    let bytes = fs::read(dir.join("model.sig")).unwrap();
    fs::write(dir.join("model.sig"), &bytes[..bytes.len() / 2]).unwrap();
    assert_fails_naming(&dir, &public, "signature.bundle_format", "model.sig");
}

#[test]
fn non_json_signature_file_fails_bundle_format() {
    let (_root, dir, _private, public) = signed_model();
    fs::write(dir.join("model.sig"), b"\x00\x01 this is not JSON").unwrap();
    assert_fails_naming(&dir, &public, "signature.bundle_format", "model.sig");
}

#[test]
fn missing_signature_file_fails_bundle_format() {
    let (_root, dir, _private, public) = signed_model();
    fs::remove_file(dir.join("model.sig")).unwrap();
    assert_fails_naming(&dir, &public, "signature.bundle_format", "model.sig");
}

#[test]
fn validly_signed_statement_whose_root_digest_does_not_match_its_resources_fails() {
    let (_root, dir, private, public) = signed_model();
    let bundle: Bundle = serde_json::from_slice(&fs::read(dir.join("model.sig")).unwrap()).unwrap();
    let payload = STANDARD.decode(&bundle.dsse_envelope.payload).unwrap();
    let mut statement: Statement = serde_json::from_slice(&payload).unwrap();
    statement.subject[0].digest.insert("sha256".into(), "ab".repeat(32));
    let altered = serde_json::to_vec(&statement).unwrap();
    let resigned = sign_payload(&altered, &fs::read_to_string(&private).unwrap()).unwrap();
    fs::write(dir.join("model.sig"), resigned).unwrap();
    let (code, text) = verify(&dir, &public);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("PASS signature.dsse"), "the re-signed bundle is authentic:\n{text}");
    assert!(text.contains("FAIL statement.root_digest [model.sig]: subject digest is abab"), "{text}");
}

#[test]
fn unusable_public_key_exits_2_with_the_reason() {
    let (root, dir, private, public) = signed_model();
    let (code, text) = verify(&dir, &private);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("expected an ECDSA P-256, P-384 or P-521 \"PUBLIC KEY\""), "{text}");
    let (code, text) = verify(&root.path().join("no-such-dir"), &public);
    assert_eq!(code, 2, "{text}");
}

#[test]
fn keygen_writes_a_0600_private_key_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let (private, public) = keygen(root.path(), "key", "p384");
    assert_eq!(fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
    let before = fs::read(&private).unwrap();
    let out = biasprune(&["keygen", "--out", s(&root.path().join("key"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(fs::read(&private).unwrap(), before);
    assert!(fs::read_to_string(public).unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"));
}

#[test]
fn signing_refuses_a_symlink_and_names_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path());
    let (private, _public) = keygen(root.path(), "key", "p256");
    std::os::unix::fs::symlink("config.json", dir.join("alias.json")).unwrap();
    let out = biasprune(&["sign", s(&dir), "--key", &private]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alias.json") && err.contains("symbolic link"), "{err}");
    assert!(!dir.join("model.sig").exists());
}

#[test]
fn precomputed_digests_give_the_same_signature_bytes_as_hashing() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path());
    let (private, _public) = keygen(root.path(), "key", "p256");
    let pem = fs::read_to_string(&private).unwrap();
    sign_directory(&dir, &pem, None, &NoProgress).unwrap();
    let hashed = fs::read(dir.join("model.sig")).unwrap();
    let mut digests = digest_directory(&dir, &NoProgress).unwrap();
    digests.remove("config.json");
    let outcome = sign_directory(&dir, &pem, Some(&digests), &NoProgress).unwrap();
    assert_eq!((outcome.reused, outcome.files), (4, 5));
    assert_eq!(outcome.hashed_bytes, fs::metadata(dir.join("config.json")).unwrap().len());
    assert_eq!(fs::read(dir.join("model.sig")).unwrap(), hashed, "P-256 signatures are deterministic (RFC 6979)");
}

#[test]
fn stale_precomputed_digests_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = model_dir(root.path());
    let (private, _public) = keygen(root.path(), "key", "p256");
    let pem = fs::read_to_string(&private).unwrap();
    let digests = digest_directory(&dir, &NoProgress).unwrap();
    fs::write(dir.join(WEIGHTS), random_bytes(9, 1_000)).unwrap();
    let err = sign_directory(&dir, &pem, Some(&digests), &NoProgress).unwrap_err();
    assert!(
        matches!(&err, SignError::StaleDigestSize { file, expected: 300_000, found: 1_000 } if file == WEIGHTS),
        "{err}"
    );
    let mut ghost = digests.clone();
    ghost.insert("gone.bin".into(), digests[WEIGHTS]);
    fs::write(dir.join(WEIGHTS), random_bytes(1, 300_000)).unwrap();
    let err = sign_directory(&dir, &pem, Some(&ghost), &NoProgress).unwrap_err();
    assert!(matches!(&err, SignError::StaleDigestMissingFile { file } if file == "gone.bin"), "{err}");
    assert!(!dir.join("model.sig").exists());
}

// ---- interoperability with the reference tool (model-signing 1.1.1) ----

fn model_signing_venv() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/model-signing/bin");
    assert!(
        venv.join("model_signing").is_file(),
        "the interop tests need the reference tool: run scripts/setup-model-signing.sh \
         (creates {}); missing is a failure, never a skip",
        venv.display()
    );
    venv
}

fn model_signing(args: &[&str]) -> (i32, String) {
    let out = Command::new(model_signing_venv().join("model_signing")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn reference_verifier_accepts_biasprune_signatures_on_every_curve() {
    for curve in ["p256", "p384", "p521"] {
        let root = tempfile::tempdir().unwrap();
        let dir = model_dir(root.path());
        let (private, public) = keygen(root.path(), "key", curve);
        sign(&dir, &private);
        let sig = dir.join("model.sig");
        let (code, text) = model_signing(&["verify", "key", s(&dir), "--signature", s(&sig), "--public_key", &public]);
        assert_eq!(code, 0, "{curve}: model_signing verify refused:\n{text}");
        assert!(text.contains("Verification succeeded"), "{curve}:\n{text}");
        flip_byte(&dir.join(WEIGHTS));
        let (code, _) = model_signing(&["verify", "key", s(&dir), "--signature", s(&sig), "--public_key", &public]);
        assert_ne!(code, 0, "{curve}: the reference verifier must also reject the tampered copy");
    }
}

/// Writes a SEC1 ("EC PRIVATE KEY") key, as `openssl ecparam -genkey` does, with the venv's
/// Python `cryptography` package, and its SPKI public key.
fn sec1_key_pair(root: &Path, curve: &str) -> (String, String) {
    let script = format!(
        "from cryptography.hazmat.primitives.asymmetric import ec\n\
         from cryptography.hazmat.primitives import serialization as s\n\
         k = ec.generate_private_key(ec.{curve}())\n\
         open('sec1.priv','wb').write(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()))\n\
         open('sec1.pub','wb').write(k.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))\n"
    );
    let out =
        Command::new(model_signing_venv().join("python")).arg("-c").arg(script).current_dir(root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (s(&root.join("sec1.priv")).to_string(), s(&root.join("sec1.pub")).to_string())
}

#[test]
fn biasprune_verifies_directories_signed_by_the_reference_tool() {
    for curve in ["SECP256R1", "SECP384R1", "SECP521R1"] {
        let root = tempfile::tempdir().unwrap();
        let dir = model_dir(root.path());
        let (private, public) = sec1_key_pair(root.path(), curve);
        assert!(fs::read_to_string(&private).unwrap().starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let sig = dir.join("model.sig");
        let (code, text) = model_signing(&["sign", "key", s(&dir), "--private_key", &private, "--signature", s(&sig)]);
        assert_eq!(code, 0, "{curve}: model_signing sign failed:\n{text}");
        let (code, text) = verify(&dir, &public);
        assert_eq!(code, 0, "{curve}: biasprune verify refused the reference signature:\n{text}");
        fs::write(dir.join("added.txt"), b"x").unwrap();
        assert_fails_naming(&dir, &public, "files.unsigned", "added.txt");
        fs::remove_file(dir.join("added.txt")).unwrap();
        fs::remove_file(&sig).unwrap();
        sign(&dir, &private);
        let (code, text) = verify(&dir, &public);
        assert_eq!(code, 0, "{curve}: biasprune sign with a SEC1 key:\n{text}");
    }
}

#[test]
fn symlink_planted_after_signing_fails_the_listing_check() {
    let (_root, dir, _private, public) = signed_model();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("planted")).unwrap();
    let (code, text) = verify(&dir, &public);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL files.listing") && text.contains("planted"), "{text}");
}
