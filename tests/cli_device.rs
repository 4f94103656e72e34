//! `--device` on the model commands, and the `parity` and `bench` commands, end to end on
//! the fixture checkpoint (CPU only: CI has no GPU; scripts/gpu-check.sh covers CUDA).

use std::process::{Command, Output};

use biasprune::fixture::{write_checkpoint, FixtureSpec};

fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    write_checkpoint(&dir, &FixtureSpec::default()).unwrap();
    (root, dir)
}

fn biasprune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn generate_on_the_cpu_device_equals_the_default() {
    let (_root, dir) = fixture();
    let base = ["generate", dir.to_str().unwrap(), "--raw", "--prompt", "Hi there", "--max-new-tokens", "5", "--json"];
    let default = biasprune(&base);
    let cpu = biasprune(&[&base[..], &["--device", "cpu", "--compute-dtype", "f32"]].concat());
    assert_eq!(default.status.code(), Some(0), "{}", String::from_utf8_lossy(&default.stderr));
    assert_eq!(default.stdout, cpu.stdout);
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_in_a_cpu_build_exits_2_saying_how_to_rebuild() {
    let (_root, dir) = fixture();
    let out = biasprune(&["generate", dir.to_str().unwrap(), "--raw", "--prompt", "Hi", "--device", "cuda:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("built without CUDA support"), "{err}");
    assert!(err.contains("scripts/build-cuda.sh"), "{err}");
}

#[test]
fn an_unknown_device_exits_2_naming_it() {
    let (_root, dir) = fixture();
    let out = biasprune(&["bench", dir.to_str().unwrap(), "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device \"tpu\""));
}

#[test]
fn parity_of_identical_setups_is_exact() {
    let (_root, dir) = fixture();
    let out = biasprune(&["parity", dir.to_str().unwrap(), "--compute-dtype", "f32"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_eq!(report["logits"]["logits"]["max_abs"], 0.0);
    assert_eq!(report["wanda"]["worst"]["max_abs"], 0.0);
    assert_eq!(report["wanda"]["vectors"], 4 * FixtureSpec::default().num_layers);
    assert_eq!(report["passed"], true);
}

#[test]
fn parity_sees_half_precision_and_fails_beyond_tolerance() {
    let (_root, dir) = fixture();
    let out = biasprune(&["parity", dir.to_str().unwrap(), "--compute-dtype", "f16"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rel = json(&out)["logits"]["logits"]["max_rel"].as_f64().unwrap();
    assert!(rel > 0.0 && rel < 2e-2, "f16 vs f32 logits max_rel {rel}");
    let strict = biasprune(&["parity", dir.to_str().unwrap(), "--compute-dtype", "f16", "--max-rel-logits", "1e-9"]);
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(json(&strict)["passed"], false);
}

#[test]
fn bench_reports_every_workload() {
    let (_root, dir) = fixture();
    let sizes = "--prefill-rows 2 --prefill-len 8 --prompts 2 --prompt-len 6 --samples 3 --new-tokens 4 \
                 --wanda-sequences 5 --wanda-len 7 --wanda-batch 2 --repeats 1";
    let mut args = vec!["bench", dir.to_str().unwrap()];
    args.extend(sizes.split_whitespace());
    let out = biasprune(&args);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    let figures = &report["figures"];
    assert_eq!(figures["prefill"]["units"], 16);
    assert_eq!(figures["generation"]["units"], 6);
    assert_eq!(figures["wanda"]["units"], 5);
    for key in ["prefill", "generation", "wanda"] {
        assert!(figures[key]["per_s"].as_f64().unwrap() > 0.0, "{key}");
        assert_eq!(figures[key]["runs_s"].as_array().unwrap().len(), 1, "{key}");
    }
    assert_eq!(report["device"], "cpu");
    assert_eq!(report["dtype"], "f32");
}
