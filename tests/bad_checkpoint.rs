//! Every kind of broken checkpoint is refused with exit code 2, a message naming the file
//! (and tensor), no output directory, and the input left unchanged.

mod common;

use std::path::{Path, PathBuf};

use biasprune::fixture::FixtureSpec;
use biasprune::mask::{save_mask, PruneMask};
use common::{assert_bad_input, biasprune, fixture, hash_tree};
use serde_json::{json, Value};

const SHARD1: &str = "model-00001-of-00002.safetensors";
const SHARD2: &str = "model-00002-of-00002.safetensors";

/// Writes a safetensors file from a raw header value and data bytes (no validation).
fn raw_shard(path: &Path, header: &Value, data: &[u8]) {
    let json = serde_json::to_vec(header).unwrap();
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&json);
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

fn entry(dtype: &str, shape: &[usize], start: usize, end: usize) -> Value {
    json!({"dtype": dtype, "shape": shape, "data_offsets": [start, end]})
}

fn edit_index(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("model.safetensors.index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut index);
    std::fs::write(path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();
}

struct Case {
    name: &'static str,
    breaks: fn(&Path),
    needles: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "header-beyond-file",
            breaks: |d| {
                let mut bytes = 4096u64.to_le_bytes().to_vec();
                bytes.extend_from_slice(b"{}");
                std::fs::write(d.join(SHARD1), bytes).unwrap();
            },
            needles: &[SHARD1, "beyond the end"],
        },
        Case {
            name: "header-over-100mb",
            breaks: |d| {
                let mut bytes = 100_000_001u64.to_le_bytes().to_vec();
                bytes.extend_from_slice(&[b' '; 64]);
                std::fs::write(d.join(SHARD1), bytes).unwrap();
            },
            needles: &[SHARD1, "exceeds the limit"],
        },
        Case {
            name: "bad-json",
            breaks: |d| {
                let json = b"{\"a\": {\"dtype\": \"F32\", ";
                let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
                bytes.extend_from_slice(json);
                std::fs::write(d.join(SHARD1), bytes).unwrap();
            },
            needles: &[SHARD1, "not a JSON object"],
        },
        Case {
            name: "overlap",
            breaks: |d| {
                let header = json!({"a.weight": entry("F32", &[2], 0, 8), "b.weight": entry("F32", &[2], 4, 12)});
                raw_shard(&d.join(SHARD1), &header, &[0; 12]);
            },
            needles: &[SHARD1, "b.weight", "overlap"],
        },
        Case {
            name: "gap",
            breaks: |d| {
                let header = json!({"a.weight": entry("F32", &[2], 0, 8), "b.weight": entry("F32", &[2], 12, 20)});
                raw_shard(&d.join(SHARD1), &header, &[0; 20]);
            },
            needles: &[SHARD1, "b.weight", "gap"],
        },
        Case {
            name: "out-of-range",
            breaks: |d| {
                let header = json!({"a.weight": entry("F32", &[2], 0, 8), "b.weight": entry("F32", &[2], 8, 16)});
                raw_shard(&d.join(SHARD1), &header, &[0; 12]);
            },
            needles: &[SHARD1, "b.weight", "outside"],
        },
        Case {
            name: "byte-length",
            breaks: |d| {
                let header = json!({"a.weight": entry("BF16", &[3, 2], 0, 8)});
                raw_shard(&d.join(SHARD1), &header, &[0; 8]);
            },
            needles: &[SHARD1, "a.weight", "needs 12 bytes"],
        },
        Case {
            name: "unknown-dtype",
            breaks: |d| {
                let header = json!({"a.weight": entry("Q4_K", &[2], 0, 8)});
                raw_shard(&d.join(SHARD1), &header, &[0; 8]);
            },
            needles: &[SHARD1, "a.weight", "unknown dtype \"Q4_K\""],
        },
        Case {
            name: "in-index-in-no-shard",
            breaks: |d| edit_index(d, |i| i["weight_map"]["model.extra.weight"] = json!(SHARD1)),
            needles: &["model.safetensors.index.json", "model.extra.weight", "no shard holds it"],
        },
        Case {
            name: "in-two-shards",
            breaks: |d| {
                let first = biasprune::checkpoint::Shard::open(SHARD1, &d.join(SHARD1)).unwrap();
                let second = biasprune::checkpoint::Shard::open(SHARD2, &d.join(SHARD2)).unwrap();
                let extra = &first.header().tensors()[0];
                let mut views = vec![(extra.name.clone(), view(&first, extra))];
                for info in second.header().tensors() {
                    views.push((info.name.clone(), view(&second, info)));
                }
                let bytes = safetensors::serialize(views, None).unwrap();
                drop(second);
                std::fs::write(d.join(SHARD2), bytes).unwrap();
            },
            needles: &["stored twice", SHARD1, SHARD2],
        },
        Case {
            name: "shard-absent",
            breaks: |d| std::fs::remove_file(d.join(SHARD2)).unwrap(),
            needles: &["model.safetensors.index.json", SHARD2, "does not exist"],
        },
        Case {
            name: "absolute-shard-name",
            breaks: |d| edit_index(d, |i| i["weight_map"]["lm_head.weight"] = json!("/etc/passwd")),
            needles: &["/etc/passwd", "unsafe file name"],
        },
        Case {
            name: "dotdot-shard-name",
            breaks: |d| {
                edit_index(d, |i| i["weight_map"]["lm_head.weight"] = json!("../in-dotdot-shard-name/x.safetensors"))
            },
            needles: &["../in-dotdot-shard-name/x.safetensors", "'..'"],
        },
        Case {
            name: "symlink-outside",
            breaks: |d| {
                let outside = d.parent().unwrap().join("outside-shard.safetensors");
                std::fs::rename(d.join(SHARD2), &outside).unwrap();
                std::os::unix::fs::symlink(&outside, d.join(SHARD2)).unwrap();
            },
            needles: &[SHARD2, "leads outside the checkpoint directory"],
        },
        Case {
            name: "duplicate-tensor-name",
            breaks: |d| {
                let one = r#""a.weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}"#;
                let json = format!("{{{one}, {one}}}");
                let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
                bytes.extend_from_slice(json.as_bytes());
                bytes.extend_from_slice(&[0; 8]);
                std::fs::write(d.join(SHARD1), bytes).unwrap();
            },
            needles: &[SHARD1, "tensor a.weight is listed twice"],
        },
        Case {
            name: "symlinked-directory-outside",
            breaks: |d| {
                let outside = d.parent().unwrap().join("outside-dir-of-symlinked-directory");
                std::fs::create_dir_all(&outside).unwrap();
                std::fs::rename(d.join(SHARD2), outside.join(SHARD2)).unwrap();
                std::os::unix::fs::symlink(&outside, d.join("sub")).unwrap();
                let moved = format!("sub/{SHARD2}");
                edit_index(d, |i| {
                    for shard in i["weight_map"].as_object_mut().unwrap().values_mut() {
                        if shard == SHARD2 {
                            *shard = json!(moved);
                        }
                    }
                });
            },
            needles: &["sub/model-00002-of-00002.safetensors", "leads outside the checkpoint directory"],
        },
    ]
}

fn view<'a>(
    shard: &'a biasprune::checkpoint::Shard,
    info: &biasprune::checkpoint::TensorInfo,
) -> safetensors::tensor::TensorView<'a> {
    safetensors::tensor::TensorView::new(info.dtype, info.shape.clone(), shard.tensor_data(info)).unwrap()
}

fn mask_dir(root: &Path) -> PathBuf {
    let dir = root.join("mask");
    save_mask(&dir, &PruneMask::default()).unwrap();
    dir
}

#[test]
fn each_broken_input_is_refused_by_apply_and_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let mask = mask_dir(tmp.path());
    for case in cases() {
        let input = fixture(tmp.path(), &format!("in-{}", case.name), &FixtureSpec::default());
        (case.breaks)(&input);
        let before = hash_tree(&input);
        let out = tmp.path().join(format!("out-{}", case.name));
        let run = biasprune(&[
            "apply",
            input.to_str().unwrap(),
            "--mask",
            mask.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_bad_input(&run, case.needles);
        assert!(!out.exists(), "{}: no output directory", case.name);
        assert_eq!(hash_tree(&input), before, "{}: input unchanged", case.name);
        assert_bad_input(&biasprune(&["inspect", input.to_str().unwrap()]), case.needles);
    }
    let partials = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .count();
    assert_eq!(partials, 0, "no temporary directories left behind");
}

#[test]
fn missing_tensor_and_wrong_shape_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixture(tmp.path(), "in", &FixtureSpec::default());
    let mut config: Value = serde_json::from_slice(&std::fs::read(input.join("config.json")).unwrap()).unwrap();
    config["intermediate_size"] = json!(96);
    std::fs::write(input.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    assert_bad_input(
        &biasprune(&["inspect", input.to_str().unwrap()]),
        &["mlp.gate_proj.weight", "[96, 64]", "[128, 64]"],
    );
    config["num_hidden_layers"] = json!(3);
    config["intermediate_size"] = json!(128);
    std::fs::write(input.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    assert_bad_input(
        &biasprune(&["inspect", input.to_str().unwrap()]),
        &["model.layers.2.input_layernorm.weight", "missing"],
    );
}
