//! Score files stored as scaled F16: precision and ranking of SNIP-sized scores, files
//! written before the scales, and sidecars whose scales cannot be trusted.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::json;

use super::*;
use crate::score::stream::{ScoreFileWriter, ScoreSink};

const NAME: &str = "model.layers.0.mlp.down_proj.weight";

/// A 64 x 72 tensor of distinct SNIP-sized scores, 1e-9 to about 1e-5 in steps of 0.2%
/// (more than F16's rounding, so every pair stays ordered), shuffled; one exact zero.
fn snip_sized() -> ScoreMatrix {
    let mut values: Vec<f32> = (0..64 * 72 - 1).map(|i| (1e-9 * 1.002f64.powi(i)) as f32).collect();
    values.push(0.0);
    values.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(11));
    ScoreMatrix { rows: 64, cols: 72, values }
}

fn score_set(matrix: ScoreMatrix) -> ScoreSet {
    let info = ScoreInfo::new("snip", Group::Minority, "purchase", vec!["bicycle".into()]);
    let heads = BTreeMap::from([(0, vec![3e-7, 1e-6, 0.0, 2e-9])]);
    ScoreSet { info, weights: BTreeMap::from([(NAME.to_string(), matrix)]), heads }
}

/// Indices by descending value, ties by index.
fn order(values: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[j].total_cmp(&values[i]).then(i.cmp(&j)));
    order
}

fn assert_close_above(original: &[f32], loaded: &[f32], floor: f32) {
    for (i, (&a, &b)) in original.iter().zip(loaded).enumerate() {
        if a > floor {
            let relative = ((b - a) / a).abs();
            assert!(relative < 1e-3, "value {i}: {a} loaded as {b} (relative error {relative})");
        }
    }
}

#[test]
fn snip_sized_scores_survive_half_storage_with_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let set = score_set(snip_sized());
    let written = save_scores(dir.path(), &set, true).unwrap();
    assert_eq!((written.version, written.dtype.as_str()), (2, "F16"));
    let loaded = load_scores(dir.path()).unwrap();
    assert_eq!(loaded.info, written);
    let (original, back) = (&set.weights[NAME].values, &loaded.weights[NAME].values);
    let max = original.iter().copied().fold(0.0, f32::max);
    assert_close_above(original, back, max / 2f32.powi(20));
    assert_eq!(order(back), order(original), "the full ranking is unchanged");
    assert_eq!(back.iter().filter(|&&v| v == 0.0).count(), 1, "no score fell to zero but the zero");
    assert_close_above(&set.heads[&0], &loaded.heads[&0], 0.0);
    let scale = written.f16_scales[NAME];
    assert!((F16_MAX / 2.0..=F16_MAX).contains(&(f64::from(max) * scale)), "the maximum lands in F16's top binade");
}

#[test]
fn streamed_half_files_are_scaled_like_saved_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (saved, streamed) = (dir.path().join("saved"), dir.path().join("streamed"));
    let set = score_set(snip_sized());
    save_scores(&saved, &set, true).unwrap();
    let layout = vec![(NAME.to_string(), vec![64, 72]), (head_scores_name(0), vec![4])];
    let mut writer = ScoreFileWriter::create(&streamed, layout, true).unwrap();
    writer.matrix(NAME, set.weights[NAME].clone()).unwrap();
    writer.heads(0, set.heads[&0].clone()).unwrap();
    let written = writer.finish(&set.info).unwrap();
    assert_eq!(written.f16_scales.len(), 2);
    assert_eq!(load_scores(&streamed).unwrap(), load_scores(&saved).unwrap());
}

#[test]
fn scales_are_powers_of_two_that_put_the_maximum_just_below_f16_max() {
    for max in [1e-30f32, 3e-9, 1e-5, 0.7, 1.0, 65504.0, 65505.0, 1e6, 3e38] {
        let (bytes, scale) = encode_f16(&[max, max / 3.0]);
        assert_eq!(scale, 2f64.powi(scale.log2().round() as i32), "{max}: scale {scale}");
        let stored = f16::from_le_bytes([bytes[0], bytes[1]]).to_f64();
        assert!(stored <= F16_MAX && stored > F16_MAX / 2.0 - 32.0, "{max} stored as {stored}");
    }
    assert_eq!(encode_f16(&[0.0, 0.0]).1, 1.0);
    assert_eq!(encode_f16(&[]).1, 1.0);
}

/// Writes a version 1 directory by hand: F16 values stored unscaled, no scales.
fn write_version_1(dir: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(Dtype::F16, vec![1, values.len()], &bytes).unwrap();
    std::fs::write(dir.join(SCORES_FILE), safetensors::serialize([(NAME, view)], None).unwrap()).unwrap();
    let mut sidecar = serde_json::to_value(ScoreInfo::new("wanda", Group::Majority, "purchase", vec![])).unwrap();
    sidecar["version"] = 1.into();
    sidecar["dtype"] = "F16".into();
    std::fs::write(dir.join(SIDECAR_FILE), serde_json::to_vec(&sidecar).unwrap()).unwrap();
}

#[test]
fn files_written_before_the_scales_load_with_scale_one() {
    let dir = tempfile::tempdir().unwrap();
    write_version_1(dir.path(), &[0.5, 2.0, 1024.0]);
    let loaded = load_scores(dir.path()).unwrap();
    assert_eq!(loaded.info.version, 1);
    assert!(loaded.info.f16_scales.is_empty());
    assert_eq!(loaded.weights[NAME].values, vec![0.5, 2.0, 1024.0]);
}

/// Saves a half score directory, lets `edit` change its sidecar, and returns the load error.
fn load_error_after(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let dir = tempfile::tempdir().unwrap();
    save_scores(dir.path(), &score_set(snip_sized()), true).unwrap();
    let path = dir.path().join(SIDECAR_FILE);
    let mut sidecar: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut sidecar);
    std::fs::write(&path, serde_json::to_vec(&sidecar).unwrap()).unwrap();
    load_scores(dir.path()).unwrap_err().to_string()
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for needle in needles {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
}

#[test]
fn a_missing_scale_is_an_error_naming_the_file_and_tensor() {
    let message = load_error_after(|s| {
        s["f16_scales"].as_object_mut().unwrap().remove(NAME).unwrap();
    });
    assert_mentions(&message, &[SIDECAR_FILE, NAME, "records no scale"]);
}

#[test]
fn zero_negative_fractional_and_absurd_scales_are_errors_naming_the_file_and_tensor() {
    for scale in [json!(0.0), json!(-1024.0), json!(3.0), json!(1e300), json!(2f64.powi(300)), json!(2f64.powi(-300))] {
        let message = load_error_after(|s| s["f16_scales"][NAME] = scale.clone());
        assert_mentions(&message, &[SIDECAR_FILE, NAME, "expected an F16 scale that is a power of two", "found"]);
    }
}

#[test]
fn a_non_finite_scale_is_a_clean_error_naming_the_file_and_tensor() {
    let info =
        ScoreInfo { f16_scales: BTreeMap::from([(NAME.to_string(), f64::INFINITY)]), ..score_set(snip_sized()).info };
    let message = stored_scale(&info, NAME, Dtype::F16).unwrap_err();
    assert_mentions(&message, &[NAME, "found inf"]);
    let nan = ScoreInfo { f16_scales: BTreeMap::from([(NAME.to_string(), f64::NAN)]), ..info };
    assert_mentions(&stored_scale(&nan, NAME, Dtype::F16).unwrap_err(), &[NAME, "found NaN"]);
    let dir = tempfile::tempdir().unwrap();
    save_scores(dir.path(), &score_set(snip_sized()), true).unwrap();
    let path = dir.path().join(SIDECAR_FILE);
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    let huge = with_scale_literal(&text, "1e999");
    std::fs::write(&path, huge).unwrap();
    assert_mentions(&load_scores(dir.path()).unwrap_err().to_string(), &[SIDECAR_FILE]);
}

/// The sidecar text with the down_proj scale's number replaced by `number` (JSON cannot
/// spell infinity; an overflowing literal is the nearest a file can come).
fn with_scale_literal(text: &str, number: &str) -> String {
    let key = format!("\"{NAME}\": ");
    let start = text.find(&key).unwrap() + key.len();
    let end = start + text[start..].find([',', '\n']).unwrap();
    format!("{}{number}{}", &text[..start], &text[end..])
}

#[test]
fn scales_for_absent_or_f32_tensors_are_errors_naming_the_tensor() {
    let message = load_error_after(|s| s["f16_scales"]["model.layers.9.mlp.up_proj.weight"] = json!(1024.0));
    assert_mentions(&message, &[SIDECAR_FILE, "model.layers.9.mlp.up_proj.weight", "does not hold"]);
    let info = ScoreInfo { f16_scales: BTreeMap::from([(NAME.to_string(), 1024.0)]), ..score_set(snip_sized()).info };
    assert_mentions(&stored_scale(&info, NAME, Dtype::F32).unwrap_err(), &[NAME, "stored as F32"]);
}

#[test]
fn an_unknown_sidecar_version_is_refused() {
    let message = load_error_after(|s| s["version"] = json!(3));
    assert_mentions(&message, &[SIDECAR_FILE, "expected version 1 to 2, found 3"]);
}

#[test]
fn scores_of_another_checkpoint_are_refused_naming_both_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let mut set = score_set(snip_sized());
    set.info.checkpoint_fingerprint = "aaaa".into();
    save_scores(dir.path(), &set, false).unwrap();
    assert_eq!(load_scores_for(dir.path(), "aaaa").unwrap().info.checkpoint_fingerprint, "aaaa");
    let err = load_scores_for(dir.path(), "bbbb").unwrap_err();
    assert!(matches!(err, ScoreFileError::OtherCheckpoint { .. }), "{err}");
    assert_mentions(&err.to_string(), &["another checkpoint", "fingerprint aaaa versus bbbb"]);
}
