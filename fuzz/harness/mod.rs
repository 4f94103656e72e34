//! What each fuzz target does with one input, shared by the cargo-fuzz targets (fuzz/) and
//! by the corpus test (tests/fuzz_corpus.rs), which feeds every committed corpus file
//! through the same functions once. Every function hands the bytes to the library's real
//! parsing entry points: a clean `Err` is the expected answer to a hostile input, and a
//! panic, abort, hang or unbounded allocation is the defect found. Each returns whether the
//! input passed every parser it reached (the fuzz targets ignore it; the corpus test checks
//! that the seeds made from real files do).
//!
//! Inputs made of several files are the files' bytes joined by `SEPARATOR`, in an order
//! each function states.

use std::path::{Path, PathBuf};

use biasprune::checkpoint::{parse_header, Checkpoint};
use biasprune::gguf::{import_gguf, OutputDtype};
use biasprune::progress::NoProgress;

/// Joins the files of a multi-file input.
pub const SEPARATOR: &[u8] = b"\n--8<--\n";

/// In a mask input, replaced by the sha256 of the bitmask part, so that a mutated bitmask
/// still reaches the bitmask checks behind the digest check.
pub const BITMASK_DIGEST_PLACEHOLDER: &str = "@BITMASK_SHA256@";

/// Most files taken from one input (more parts are ignored).
const MAX_PARTS: usize = 4;

/// What one fuzz target does with one input; true when the input passed every parser it
/// reached.
pub type Target = fn(&[u8]) -> bool;

/// The fuzz targets by name, each with the function it runs.
pub const TARGETS: &[(&str, Target)] = &[
    ("safetensors", safetensors),
    ("gguf", gguf),
    ("manifest", manifest),
    ("signature", signature),
    ("mask", mask),
    ("scores", scores),
    ("scenario", scenario),
    ("prune_config", prune_config),
];

/// The input's parts: its bytes split at each `SEPARATOR`, at most `MAX_PARTS`.
pub fn parts(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < MAX_PARTS {
        match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

/// The repository root (the harness is compiled from fuzz/ and from the main crate).
fn repo_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    if dir.ends_with("fuzz") {
        dir.parent().expect("fuzz/ has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Safetensors shard headers and the shard index. Parts: the index JSON (empty for a
/// single-file checkpoint), then the shards. Each shard goes through `parse_header`, then
/// the directory through `Checkpoint::open`, and every tensor it lists is looked up.
pub fn safetensors(data: &[u8]) -> bool {
    let parts = parts(data);
    let (index, shards) = parts.split_first().expect("parts is never empty");
    let headers_ok = shards.iter().all(|shard| parse_header(Path::new("fuzz.safetensors"), shard).is_ok());
    let dir = scratch();
    write(&dir.path().join("config.json"), b"{}");
    if index.is_empty() {
        write(&dir.path().join("model.safetensors"), shards.first().copied().unwrap_or_default());
    } else {
        write(&dir.path().join("model.safetensors.index.json"), index);
        for (i, shard) in shards.iter().enumerate() {
            let name = format!("model-{:05}-of-{:05}.safetensors", i + 1, shards.len());
            write(&dir.path().join(name), shard);
        }
    }
    let Ok(ckpt) = Checkpoint::open(dir.path()) else { return false };
    let names: Vec<String> = ckpt.tensor_names().map(str::to_string).collect();
    let tensors_ok = names.iter().all(|name| ckpt.tensor(name).is_ok());
    let _ = ckpt.other_files();
    let _ = biasprune::arch::Architecture::of_checkpoint(&ckpt);
    headers_ok && tensors_ok
}

/// GGUF metadata and tensor info: the whole file through `import_gguf` (header checks,
/// candle's reader, config, tokenizer and tensor plan, then the tensors of a file that
/// passes), into a fresh output directory.
pub fn gguf(data: &[u8]) -> bool {
    let dir = scratch();
    let file = dir.path().join("model.gguf");
    write(&file, data);
    import_gguf(&file, &dir.path().join("out"), OutputDtype::F32, &NoProgress).is_ok()
}

/// The release a mutated manifest is verified in (committed, signed, format version 1).
fn v1_release() -> PathBuf {
    repo_root().join("fixtures").join("v1-release")
}

/// The pruning manifest: `manifest::from_bytes`, then the whole `verify_directory` (with and
/// without the fixture's own directory as base) on a copy of fixtures/v1-release whose
/// manifest is the input, so the manifest checks read the checkpoint it describes. Passing
/// means the manifest parses (verify passes only for the fixture's own manifest).
pub fn manifest(data: &[u8]) -> bool {
    let parsed = biasprune::manifest::from_bytes(data).is_ok();
    let release = v1_release();
    let key = std::fs::read_to_string(repo_root().join("fixtures").join("v1-release.pub")).expect("fixture key");
    let dir = scratch();
    copy_tree(&release, dir.path());
    write(&dir.path().join(biasprune::manifest::MANIFEST_FILE), data);
    let _ = biasprune::verify::verify_directory(dir.path(), &key, None, &NoProgress);
    let _ = biasprune::verify::verify_directory(dir.path(), &key, Some(&release), &NoProgress);
    parsed
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("fixture directory") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("fixture entry type").is_dir() {
            std::fs::create_dir_all(&target).expect("copy of a fixture directory");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy of a fixture file");
        }
    }
}

/// model.sig: the bundle through `parse_envelope`, its signature checked against the
/// fixture key over the DSSE PAE, and its payload (or, for input that is no bundle, the
/// input itself) through `parse_statement` and the root-digest check.
pub fn signature(data: &[u8]) -> bool {
    let payload = match biasprune::verify::parse_envelope(data) {
        Ok(envelope) => {
            let key = std::fs::read_to_string(repo_root().join("fixtures").join("v1-release.pub")).expect("key");
            let key = biasprune::sign::PublicKey::from_pem(&key).expect("the fixture key parses");
            let message = biasprune::sign::pae(biasprune::sign::PAYLOAD_TYPE, &envelope.payload);
            let _ = key.verify_der(&message, &envelope.signature);
            envelope.payload
        }
        Err(_) => data.to_vec(),
    };
    match biasprune::verify::parse_statement(&payload) {
        Ok(statement) => biasprune::verify::check_root_digest(&statement).passed,
        Err(_) => false,
    }
}

/// mask.json and the bitmask file: parts mask.json, then pruning-mask.safetensors; the
/// placeholder in mask.json becomes the bitmask part's sha256. Both go through `load_mask`.
pub fn mask(data: &[u8]) -> bool {
    use sha2::Digest;
    let parts = parts(data);
    let dir = scratch();
    let bitmask = parts.get(1).copied().unwrap_or_default();
    let digest = hex::encode(sha2::Sha256::digest(bitmask));
    let json = replace_placeholder(parts[0], BITMASK_DIGEST_PLACEHOLDER.as_bytes(), digest.as_bytes());
    write(&dir.path().join(biasprune::mask::MASK_JSON), &json);
    write(&dir.path().join(biasprune::mask::BITMASK_FILE), bitmask);
    match biasprune::mask::load_mask(dir.path()) {
        Ok(mask) => !mask.is_empty(),
        Err(_) => false,
    }
}

fn replace_placeholder(text: &[u8], placeholder: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.windows(placeholder.len()).position(|w| w == placeholder) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + placeholder.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Score sidecars: parts scores.json, scores.safetensors, then a config.json. The score
/// directory goes through `load_scores`, and scores that load through `check_scores_fit`
/// against the architecture of the config (when it parses).
pub fn scores(data: &[u8]) -> bool {
    let parts = parts(data);
    let dir = scratch();
    write(&dir.path().join(biasprune::score::SIDECAR_FILE), parts[0]);
    write(&dir.path().join(biasprune::score::SCORES_FILE), parts.get(1).copied().unwrap_or_default());
    let Ok(scores) = biasprune::score::load_scores(dir.path()) else { return false };
    let config = parts.get(2).and_then(|c| serde_json::from_slice::<serde_json::Value>(c).ok());
    match config.and_then(|c| biasprune::arch::Architecture::from_config(&c).ok()) {
        Some(arch) => biasprune::mask::check_scores_fit(&scores, &arch).is_ok(),
        None => false,
    }
}

/// Scenario and name TOML: parts a scenario manifest, then a names file. The names file
/// goes through `NameList::from_toml`; the scenario through `Scenario::from_toml`, its
/// names resolved to that file (or to a built-in list when the part is absent), and a
/// scenario that loads renders its prompts at every context level (passing: at one at least).
pub fn scenario(data: &[u8]) -> bool {
    use biasprune::scenario::{installed_names, ContextLevel, NameList, Scenario, ScenarioError};
    let parts = parts(data);
    let scenario_path = Path::new("fuzz/scenarios/fuzz.toml");
    let names_path = Path::new("fuzz/names/fuzz.toml");
    let names_text = parts.get(1).map(|p| String::from_utf8_lossy(p).into_owned());
    let names_ok = names_text.as_ref().is_none_or(|text| NameList::from_toml(text, names_path).is_ok());
    let resolve = |id: &str| match &names_text {
        Some(text) => NameList::from_toml(text, names_path),
        None => installed_names(id).unwrap_or_else(|| {
            Err(ScenarioError::NamesNotFound {
                path: scenario_path.to_path_buf(),
                names: id.to_string(),
                searched: "the built-in lists".to_string(),
                installed: String::new(),
            })
        }),
    };
    let text = String::from_utf8_lossy(parts[0]);
    let Ok(scenario) = Scenario::from_toml(&text, scenario_path, &resolve) else { return false };
    let contexts = [ContextLevel::Low, ContextLevel::High, ContextLevel::Numeric];
    let rendered = contexts.iter().filter(|&&context| scenario.prompts(context, None).is_ok()).count();
    names_ok && rendered > 0
}

/// The prune config: `PruneSpec::from_toml`, then, for a spec that reads no other file
/// (no scenarios directory, no signing key), `Plan::new`, which checks and resolves it.
pub fn prune_config(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("fuzz/prune.toml");
    let Ok(spec) = biasprune::pipeline::PruneSpec::from_toml(&text, path) else { return false };
    spec.scenarios_dir.is_some() || spec.sign_key.is_some() || biasprune::pipeline::Plan::new(&spec).is_ok()
}
