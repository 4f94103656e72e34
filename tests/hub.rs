//! Checkpoints named by Hugging Face Hub id, offline: a cache laid out in a temp dir from the
//! reference model the way huggingface_hub lays it out (refs/main, snapshots/<commit>/ with
//! relative links into blobs/), then `inspect`, `prune` and `verify --base` by id with
//! HF_HUB_OFFLINE=1 and an endpoint that refuses connections.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const ID: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";
const COMMIT: &str = "12fd25f77366fa6b3b4b768ec3050bf629380bac";
/// The base card in the cache: the license is read from its front matter.
const BASE_CARD: &str = "---\nlibrary_name: transformers\nlicense: apache-2.0\nlanguage:\n- en\n---\n\n# SmolLM2\n";

fn sha256_of(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).unwrap();
        if n == 0 {
            return hex::encode(hasher.finalize());
        }
        hasher.update(&buffer[..n]);
    }
}

/// Lays out `cache/models--HuggingFaceTB--SmolLM2-135M-Instruct` from the reference model:
/// each file becomes blobs/<sha256> (hard-linked when the file system allows, else copied)
/// and snapshots/<COMMIT>/<file> a relative link to it. Returns the per-file sha256.
fn lay_out_cache(cache: &Path) -> std::collections::BTreeMap<String, String> {
    let model = cache.join("models--HuggingFaceTB--SmolLM2-135M-Instruct");
    let snapshot = model.join("snapshots").join(COMMIT);
    for dir in [model.join("blobs"), model.join("refs"), snapshot.clone()] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(model.join("refs/main"), COMMIT).unwrap();
    let reference = common::reference_model();
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&reference)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), e.path()))
        .collect();
    let card = cache.join("README.md");
    std::fs::write(&card, BASE_CARD).unwrap();
    files.push(("README.md".into(), card));
    let mut digests = std::collections::BTreeMap::new();
    for (name, source) in files {
        let sha = sha256_of(&source);
        let blob = model.join("blobs").join(&sha);
        if std::fs::hard_link(&source, &blob).is_err() {
            std::fs::copy(&source, &blob).unwrap();
        }
        std::os::unix::fs::symlink(format!("../../blobs/{sha}"), snapshot.join(&name)).unwrap();
        digests.insert(name, sha);
    }
    digests
}

/// Runs biasprune in `cwd` offline against `cache`, with an endpoint nothing listens on.
fn offline(cache: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(args)
        .current_dir(cwd)
        .env("HF_HUB_CACHE", cache)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .unwrap()
}

fn assert_success(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{what}: {stderr}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn a_hub_id_is_inspected_pruned_and_verified_from_the_cache_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let digests = lay_out_cache(&cache);
    let cwd = tmp.path().join("work");
    std::fs::create_dir(&cwd).unwrap();

    let inspected = assert_success(&offline(&cache, &cwd, &["inspect", ID]), "inspect");
    assert!(inspected.starts_with(&format!("hub          {ID}@{COMMIT}\n")), "{inspected}");
    assert!(inspected.contains("30 layers"), "{inspected}");
    let pinned = format!("{ID}@{COMMIT}");
    assert_success(&offline(&cache, &cwd, &["inspect", &pinned, "--json"]), "inspect at a commit");

    let key = tmp.path().join("key");
    assert_success(&offline(&cache, &cwd, &["keygen", "--out", key.to_str().unwrap()]), "keygen");
    let out = tmp.path().join("release");
    let mut prune = vec!["prune", ID, "--scenario", "purchase", "--variations", "bicycle", "--samples", "2"];
    prune.extend(["--confirmation-samples", "2", "--seed", "3", "--max-new-tokens", "12"]);
    prune.extend(["--layers", "29-29", "--components", "down"]);
    prune.extend(["--allow-no-disparity", "--release-anyway", "--quiet", "--json"]);
    let key_priv = key.with_extension("priv");
    prune.extend(["--sign-key", key_priv.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_success(&offline(&cache, &cwd, &prune), "prune");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("biasprune-manifest.json")).unwrap()).unwrap();
    let base = &manifest["base"];
    assert_eq!(base["hub"], serde_json::json!({"id": ID, "revision": COMMIT}), "{base}");
    for (name, sha) in &digests {
        assert_eq!(base["files"][name], *sha, "{name}: the identity is the blob's content");
    }
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(card.strip_prefix("---\n").unwrap().split("\n---\n").next().unwrap()).unwrap();
    assert_eq!(yaml["base_model"], ID, "{card}");
    assert_eq!(yaml["license"], "apache-2.0", "the base card's license: {card}");
    assert!(yaml["model-index"][0]["results"][0]["metrics"].as_sequence().is_some_and(|m| !m.is_empty()), "{card}");
    assert_eq!(std::fs::read_to_string(out.join("README.base.md")).unwrap(), BASE_CARD);

    let public = key.with_extension("pub");
    let verify = ["verify", out.to_str().unwrap(), "--public-key", public.to_str().unwrap(), "--base", ID];
    let verified = assert_success(&offline(&cache, &cwd, &verify), "verify --base by id");
    assert!(verified.contains("PASS base.identity"), "{verified}");
}

#[test]
fn offline_a_model_missing_from_the_cache_is_refused_without_the_network() {
    let tmp = tempfile::tempdir().unwrap();
    let output = offline(&tmp.path().join("empty"), tmp.path(), &["inspect", "no-such-org/no-such-model@v1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such-org/no-such-model@v1: not in the Hugging Face cache"), "{stderr}");
    assert!(stderr.contains("HF_HUB_OFFLINE is set, so nothing was downloaded"), "{stderr}");
    assert!(!stderr.contains("127.0.0.1"), "the endpoint must not be contacted: {stderr}");
}
