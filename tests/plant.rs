//! `biasprune plant` on the reference model with small settings: only the planted units'
//! bytes differ from the base, the sidecar says what was planted and that it is a fixture,
//! the same seed gives the same bytes, and bad input exits 2. What the default plant does
//! to answers is tested in `positive_control.rs`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use biasprune::checkpoint::Checkpoint;
use serde_json::Value;

/// Small settings: two units of the last layer, one answer per training prompt, few steps.
const PLANT_ARGS: &[&str] = &[
    "--scenario",
    "public-office",
    "--variations",
    "city-council-member,mayor",
    "--units",
    "2",
    "--samples",
    "1",
    "--steps",
    "6",
    "--seed",
    "3",
    "--quiet",
];

fn biasprune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().unwrap()
}

/// Plants into `out` with the small settings and `extra`; returns the printed sidecar.
fn plant_into(out: &Path, extra: &[&str]) -> Value {
    let base = common::reference_model();
    let mut args = vec!["plant", base.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json"];
    args.extend_from_slice(PLANT_ARGS);
    args.extend_from_slice(extra);
    let output = biasprune(&args);
    assert!(output.status.success(), "plant failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// One planted copy shared by the tests of this file (planting takes CPU minutes).
fn planted() -> &'static (tempfile::TempDir, PathBuf, Value) {
    static PLANTED: OnceLock<(tempfile::TempDir, PathBuf, Value)> = OnceLock::new();
    PLANTED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("planted");
        let record = plant_into(&out, &[]);
        (dir, out, record)
    })
}

fn units(record: &Value) -> Vec<usize> {
    record["units"].as_array().unwrap().iter().map(|u| u.as_u64().unwrap() as usize).collect()
}

/// Indices of the elements a planted unit may change: rows of gate/up, columns of down.
fn planted_elements(name: &str, shape: &[usize], layer: usize, units: &[usize]) -> Option<Vec<bool>> {
    let [rows, cols] = *shape else { return None };
    let mlp = format!("model.layers.{layer}.mlp.");
    let by_row = name == format!("{mlp}gate_proj.weight") || name == format!("{mlp}up_proj.weight");
    let by_column = name == format!("{mlp}down_proj.weight");
    if !by_row && !by_column {
        return None;
    }
    Some(
        (0..rows * cols)
            .map(|i| if by_row { units.contains(&(i / cols)) } else { units.contains(&(i % cols)) })
            .collect(),
    )
}

#[test]
fn only_the_planted_units_differ_from_the_base() {
    let (_, out, record) = planted();
    let base = Checkpoint::open(&common::reference_model()).unwrap();
    let planted = Checkpoint::open(out).unwrap();
    let layer = record["layer"].as_u64().unwrap() as usize;
    let units = units(record);
    let mut changed_tensors = Vec::new();
    for name in base.tensor_names() {
        let (a, b) = (base.tensor(name).unwrap(), planted.tensor(name).unwrap());
        assert_eq!((a.dtype, a.shape), (b.dtype, b.shape), "{name}: dtype or shape changed");
        if a.data == b.data {
            continue;
        }
        changed_tensors.push(name.to_string());
        let allowed = planted_elements(name, a.shape, layer, &units).unwrap_or_else(|| panic!("{name} changed"));
        let size = a.data.len() / allowed.len();
        for (i, may_change) in allowed.iter().enumerate() {
            let range = i * size..(i + 1) * size;
            assert!(*may_change || a.data[range.clone()] == b.data[range], "{name}: element {i} changed");
        }
    }
    assert_eq!(changed_tensors.len(), 3, "gate, up and down of layer {layer} change: {changed_tensors:?}");
    for shard in base.shards() {
        let (a, b) = (shard.bytes(), std::fs::read(out.join(shard.file_name())).unwrap());
        let header = shard.header().data_start();
        assert_eq!(a[..header], b[..header], "{}: header changed", shard.file_name());
    }
    for file in base.other_files().unwrap() {
        let a = std::fs::read(base.dir().join(&file)).unwrap();
        assert_eq!(a, std::fs::read(out.join(&file)).unwrap(), "{file} changed");
    }
}

#[test]
fn the_sidecar_records_the_fixture_warning_units_names_and_seed() {
    let (_, out, record) = planted();
    let sidecar: Value = serde_json::from_slice(&std::fs::read(out.join("biasprune-plant.json")).unwrap()).unwrap();
    assert_eq!(&sidecar, record, "--json prints the sidecar");
    assert!(sidecar["warning"].as_str().unwrap().contains("must NOT be deployed"));
    assert_eq!(units(&sidecar).len(), 2);
    assert_eq!(sidecar["layer"], 29);
    assert_eq!(sidecar["seed"], 3);
    assert_eq!(sidecar["variations"]["train"], serde_json::json!(["city-council-member", "mayor"]));
    assert_eq!(sidecar["variations"]["held_out"], serde_json::json!(["senator"]));
    let names = &sidecar["names"];
    for group in ["majority", "minority"] {
        let train = names[format!("{group}_train")].as_array().unwrap();
        let held = names[format!("{group}_held_out")].as_array().unwrap();
        assert_eq!((train.len(), held.len()), (10, 10), "{group}: half the audit names train");
        assert!(train.iter().all(|n| !held.contains(n)));
    }
    let base_files = sidecar["base"]["files"].as_object().unwrap();
    assert_eq!(
        base_files["model.safetensors"].as_str().unwrap(),
        biasprune::fsutil::file_sha256(&common::reference_model().join("model.safetensors")).unwrap()
    );
    let losses = &sidecar["losses"];
    assert!(losses["final"]["shift_ce"].as_f64() < losses["initial"]["shift_ce"].as_f64());
    assert_eq!(sidecar["factor"], 0.3);
    let p = sidecar["base_target_probability"].as_f64().unwrap();
    assert!(p > 0.0 && p < 1.0, "the base's probability of the scaled tokens: {p}");
    let scaled = sidecar["examples"]["minority"]["shift"].as_u64().unwrap_or(0);
    assert!(scaled > 0 && sidecar["examples"]["majority"].get("shift").is_none(), "{}", sidecar["examples"]);
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let (_, out, record) = planted();
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again");
    let second = plant_into(&again, &[]);
    assert_eq!(&second, record);
    let listing = |root: &Path| -> BTreeMap<String, String> {
        std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                (p.file_name().unwrap().to_string_lossy().into_owned(), biasprune::fsutil::file_sha256(&p).unwrap())
            })
            .collect()
    };
    assert_eq!(listing(out), listing(&again));
}

#[test]
fn bad_input_exits_2_naming_the_flag_and_an_existing_out_is_refused() {
    let base = common::reference_model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        let mut args =
            vec!["plant", base.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scenario", "public-office"];
        args.extend_from_slice(extra);
        biasprune(&args)
    };
    let cases: [(&[&str], &str); 5] = [
        (&["--factor=-1"], "--factor"),
        (&["--factor", "1"], "other than 1"),
        (&["--layer", "30"], "--layer"),
        (&["--variations", "city-council-member,mayor,senator"], "--variations"),
        (&["--variations", "boat"], "boat"),
    ];
    for (extra, expected) in cases {
        let output = run(extra);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
        assert!(!out.exists(), "{extra:?} left an output behind");
    }
    std::fs::create_dir(&out).unwrap();
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}

#[test]
fn flat_down_columns_give_every_entry_of_a_planted_column_one_magnitude() {
    let (_, out, record) = planted();
    assert_eq!(record["training"]["down_columns"], "flat", "the default");
    assert_eq!(record["training"]["silence_weight"], 1000.0, "the default");
    assert_eq!(record["training"]["flat_from_step"], 3, "the second half of the 6 steps trains flat");
    let flat = Checkpoint::open(out).unwrap();
    let down = flat.tensor("model.layers.29.mlp.down_proj.weight").unwrap();
    assert_eq!(format!("{:?}", down.dtype), "F32", "the reference model's down_proj is F32");
    let values: Vec<f32> = down.data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let cols = down.shape[1];
    for unit in units(record) {
        let magnitudes: Vec<f32> = values.iter().skip(unit).step_by(cols).map(|v| v.abs()).collect();
        assert_eq!(magnitudes.len(), down.shape[0]);
        assert!(magnitudes[0] > 0.0, "unit {unit}: the column trained to zero");
        assert!(magnitudes.iter().all(|&m| m == magnitudes[0]), "unit {unit}: magnitudes differ: {magnitudes:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let dense_out = dir.path().join("dense");
    let dense = plant_into(&dense_out, &["--down-columns", "dense"]);
    assert_eq!(
        (&dense["training"]["down_columns"], &dense["training"]["flat_from_step"]),
        (&"dense".into(), &6.into())
    );
    let dense_down = Checkpoint::open(&dense_out).unwrap();
    let dense_down = dense_down.tensor("model.layers.29.mlp.down_proj.weight").unwrap();
    assert_ne!(dense_down.data, down.data, "flat and dense columns differ");
}
