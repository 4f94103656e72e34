//! Calibration sets and Wanda/SNIP scoring against direct computations on the generated
//! fixture; the `score` command feeding `mask`; SmolLM2 end to end.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use biasprune::arch::Component;
use biasprune::chat::ChatTemplate;
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::FixtureSpec;
use biasprune::mask::load_mask;
use biasprune::metrics::AnswerRecord;
use biasprune::model::{
    AttentionProbs, Batch, InputSite, LinearInput, LinearInputHook, Llama, LoadOptions, Logits, ModelError,
};
use biasprune::progress::NoProgress;
use biasprune::scenario::parse::ParseStatus;
use biasprune::scenario::{Catalog, ContextLevel, Scenario};
use biasprune::score::{
    build_calibration, load_scores, snip_scores, wanda_scores, wanda_scores_in_memory, CalibrationSet, CalibrationSpec,
    Group, RawScores, ScoreMatrix, ScoreOptions, TokenCount,
};
use biasprune::tokenizer::Tokenizer;
use candle_core::{DType, Tensor, D};
use common::{biasprune, fixture, stderr};
use sha2::{Digest, Sha256};

const ANSWERS: [&str; 4] = ["$500", "I would offer $350.", "1200", "Around $2,000 to $2,500"];

fn purchase() -> Scenario {
    Catalog::installed().unwrap().get("purchase").unwrap().clone()
}

/// `per_group` names of each group for each variation, `samples` answers each.
fn records(variations: &[&str], per_group: usize, samples: u32) -> Vec<AnswerRecord> {
    let scenario = purchase();
    let ids: Vec<String> = variations.iter().map(|v| v.to_string()).collect();
    let prompts = scenario.prompts(ContextLevel::Low, Some(&ids)).unwrap();
    let mut out = Vec::new();
    let mut taken: BTreeMap<(String, biasprune::scenario::Group), usize> = BTreeMap::new();
    for prompt in prompts {
        let count = taken.entry((prompt.variation.clone(), prompt.group)).or_default();
        if *count == per_group {
            continue;
        }
        *count += 1;
        for sample in 0..samples {
            let raw = ANSWERS[(out.len() + sample as usize) % ANSWERS.len()].to_string();
            out.push(AnswerRecord {
                scenario: "purchase".into(),
                variation: prompt.variation.clone(),
                context: prompt.context,
                name: prompt.name.clone(),
                group: prompt.group,
                gender: prompt.gender.clone(),
                sample,
                seed: 7,
                raw,
                value: Some(500.0),
                status: ParseStatus::Ok,
                inlier: true,
            });
        }
    }
    out
}

fn write_records(path: &Path, records: &[AnswerRecord]) {
    let text: String = records.iter().map(|r| r.to_json_line() + "\n").collect();
    std::fs::write(path, text).unwrap();
}

fn calibration(ckpt: &Path, records: &[AnswerRecord], group: Group, tokens: TokenCount) -> CalibrationSet {
    let template = ChatTemplate::from_checkpoint_dir(ckpt).unwrap();
    let tokenizer = Tokenizer::from_checkpoint_dir(ckpt).unwrap();
    let spec = CalibrationSpec { group, variations: None, tokens };
    build_calibration(records, &purchase(), &template, &tokenizer, &spec).unwrap()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ckpt: PathBuf,
}

fn small_fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let ckpt = fixture(&root, "ckpt", &FixtureSpec::default());
    Fixture { _tmp: tmp, root, ckpt }
}

fn assert_close(name: &str, found: &ScoreMatrix, expected: &[f64], rel: f64) {
    assert_eq!(found.values.len(), expected.len(), "{name}: size");
    for (i, (&f, &e)) in found.values.iter().zip(expected).enumerate() {
        let tolerance = rel * e.abs() + 1e-12;
        assert!((f as f64 - e).abs() <= tolerance, "{name}[{i}]: {f} versus {e} (tolerance {tolerance})");
    }
}

#[test]
fn calibration_counts_answer_tokens_and_finds_names_in_a_fixed_order() {
    let fx = small_fixture();
    let recs = records(&["bicycle", "car"], 2, 2);
    let all = calibration(&fx.ckpt, &recs, Group::Minority, TokenCount::All);
    let response = calibration(&fx.ckpt, &recs, Group::Minority, TokenCount::Response);
    assert_eq!(all.sequences.len(), 8);
    assert_eq!(all.variations, vec!["bicycle".to_string(), "car".to_string()]);
    let tokenizer = Tokenizer::from_checkpoint_dir(&fx.ckpt).unwrap();
    for (a, r) in all.sequences.iter().zip(&response.sequences) {
        assert_eq!(a.ids, r.ids);
        assert_eq!(a.counted_tokens(), a.ids.len() as u64);
        assert_eq!(r.counted_tokens(), (r.ids.len() - r.response_start) as u64);
        assert!(r.counted[r.response_start] && !r.counted[r.response_start - 1]);
        let answer = tokenizer.decode(&r.ids[r.response_start..], false).unwrap();
        let record = recs.iter().find(|x| x.name == r.name && x.sample == r.sample && x.variation == r.variation);
        assert_eq!(answer, format!("{}<|im_end|>\n", record.unwrap().raw));
        let name = tokenizer.decode(&a.name_positions.iter().map(|&p| a.ids[p]).collect::<Vec<_>>(), false).unwrap();
        assert_eq!(name, a.name, "the name tokens spell exactly the name (it occurs once in purchase)");
    }
    assert!(response.counted_tokens() < all.counted_tokens());
    let mut shuffled = recs.clone();
    shuffled.reverse();
    assert_eq!(calibration(&fx.ckpt, &shuffled, Group::Minority, TokenCount::All), all, "order is fixed");
    let majority = calibration(&fx.ckpt, &recs, Group::Majority, TokenCount::All);
    assert!(majority.sequences.iter().all(|s| s.name.ends_with("Becker")), "majority names only");
}

/// Sum over counted tokens of x^2 per (layer, site), computed per sequence without padding.
struct DirectNorms {
    counted: Vec<bool>,
    sums: BTreeMap<(usize, InputSite), Vec<f64>>,
}

impl LinearInputHook for DirectNorms {
    fn observe(&mut self, input: &LinearInput<'_>) -> Result<(), ModelError> {
        let x = input.x.squeeze(0)?.to_vec2::<f32>()?;
        let sums = self.sums.entry((input.layer, input.site)).or_insert_with(|| vec![0.0; x[0].len()]);
        for (row, &counted) in x.iter().zip(&self.counted) {
            if counted {
                for (s, &v) in sums.iter_mut().zip(row) {
                    *s += (v as f64) * (v as f64);
                }
            }
        }
        Ok(())
    }
}

fn direct_wanda(model: &Llama, calib: &CalibrationSet) -> BTreeMap<String, Vec<f64>> {
    let mut hook = DirectNorms { counted: Vec::new(), sums: BTreeMap::new() };
    for seq in &calib.sequences {
        hook.counted = seq.counted.clone();
        let batch = Batch::left_padded(&[seq.ids.as_slice()], 0, &model.options().device).unwrap();
        model.forward(&batch, Some(&mut hook), Logits::Last).unwrap();
    }
    let mut out = BTreeMap::new();
    for layer in 0..model.config().num_layers {
        for p in Component::ALL {
            let w = model.projection_weight(layer, p).unwrap().to_vec2::<f32>().unwrap();
            let sums = &hook.sums[&(layer, InputSite::of(p))];
            let values = w.iter().flat_map(|row| row.iter().zip(sums).map(|(&w, &s)| (w as f64).abs() * s.sqrt()));
            out.insert(p.weight_name(layer), values.collect());
        }
    }
    out
}

fn layerwise(ckpt: &Path, calib: &CalibrationSet, batch: usize) -> RawScores {
    let opened = Checkpoint::open(ckpt).unwrap();
    let cfg = biasprune::model::config_from_json(opened.config(), opened.dir()).unwrap();
    let opts = ScoreOptions { batch, load: LoadOptions::cpu_f32() };
    wanda_scores(&opened, &cfg, calib, &opts, &NoProgress).unwrap()
}

#[test]
fn wanda_layer_by_layer_equals_a_direct_computation_and_whole_model_scoring() {
    let fx = small_fixture();
    let recs = records(&["bicycle"], 3, 2);
    let model = Llama::load_dir(&fx.ckpt, LoadOptions::cpu_f32()).unwrap();
    for tokens in [TokenCount::All, TokenCount::Response] {
        let calib = calibration(&fx.ckpt, &recs, Group::Minority, tokens);
        let expected = direct_wanda(&model, &calib);
        let scores = layerwise(&fx.ckpt, &calib, 4);
        assert_eq!(scores.weights.len(), 2 * 7);
        for (name, values) in &expected {
            assert_close(name, &scores.weights[name], values, 1e-5);
        }
        let opts = ScoreOptions { batch: 4, load: LoadOptions::cpu_f32() };
        let whole = wanda_scores_in_memory(&model, &calib, &opts, &NoProgress).unwrap();
        for (name, m) in &whole.weights {
            let reference: Vec<f64> = m.values.iter().map(|&v| v as f64).collect();
            assert_close(name, &scores.weights[name], &reference, 1e-5);
        }
        assert_eq!(whole.heads.len(), scores.heads.len());
    }
    let calib = calibration(&fx.ckpt, &recs, Group::Minority, TokenCount::All);
    assert_eq!(layerwise(&fx.ckpt, &calib, 4), layerwise(&fx.ckpt, &calib, 4), "same inputs give the same bits");
}

/// Each head's attention mass on the name keys, averaged over answer queries, per sequence.
struct DirectHeads {
    names: Vec<usize>,
    start: usize,
    sums: BTreeMap<usize, Vec<f64>>,
}

impl LinearInputHook for DirectHeads {
    fn observe(&mut self, _input: &LinearInput<'_>) -> Result<(), ModelError> {
        Ok(())
    }

    fn observe_attention(&mut self, input: &AttentionProbs<'_>) -> Result<(), ModelError> {
        let probs = input.probs.squeeze(0)?.to_vec3::<f32>()?;
        let sums = self.sums.entry(input.layer).or_insert_with(|| vec![0.0; probs.len()]);
        for (h, head) in probs.iter().enumerate() {
            let queries = &head[self.start..];
            let mass: f64 =
                queries.iter().map(|row| self.names.iter().map(|&k| row[k] as f64).sum::<f64>()).sum::<f64>();
            sums[h] += mass / queries.len() as f64;
        }
        Ok(())
    }
}

#[test]
fn head_scores_are_the_mean_attention_of_answer_tokens_to_the_name() {
    let fx = small_fixture();
    let recs = records(&["bicycle"], 2, 3);
    let calib = calibration(&fx.ckpt, &recs, Group::Majority, TokenCount::All);
    let model = Llama::load_dir(&fx.ckpt, LoadOptions::cpu_f32()).unwrap();
    let mut hook = DirectHeads { names: Vec::new(), start: 0, sums: BTreeMap::new() };
    for seq in &calib.sequences {
        hook.names = seq.name_positions.clone();
        hook.start = seq.response_start;
        let batch = Batch::left_padded(&[seq.ids.as_slice()], 0, &model.options().device).unwrap();
        model.forward(&batch, Some(&mut hook), Logits::Last).unwrap();
    }
    let scores = layerwise(&fx.ckpt, &calib, 2);
    assert_eq!(scores.heads.len(), 2);
    for (layer, sums) in &hook.sums {
        let found = &scores.heads[layer];
        assert_eq!(found.len(), 4);
        for (f, s) in found.iter().zip(sums) {
            let e = s / calib.sequences.len() as f64;
            assert!((*f as f64 - e).abs() <= 1e-5 * e.abs() + 1e-7, "layer {layer}: {f} versus {e}");
            assert!((0.0..=1.0).contains(f));
        }
    }
}

#[test]
fn snip_equals_weight_times_summed_autograd_gradients() {
    let fx = small_fixture();
    let recs = records(&["car"], 1, 2);
    let calib = calibration(&fx.ckpt, &recs, Group::Minority, TokenCount::All);
    let trainable = LoadOptions { trainable: true, ..LoadOptions::cpu_f32() };
    let model = Llama::load_dir(&fx.ckpt, trainable).unwrap();
    let scores = snip_scores(&model, &calib, &NoProgress).unwrap();
    let mut sums: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for seq in &calib.sequences {
        let batch = Batch::left_padded(&[seq.ids.as_slice()], 0, &model.options().device).unwrap();
        let logits = model.forward(&batch, None, Logits::All).unwrap().squeeze(0).unwrap();
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
        let picked: Vec<Tensor> = (seq.response_start..seq.ids.len())
            .map(|t| log_probs.get(t - 1).unwrap().get(seq.ids[t] as usize).unwrap())
            .collect();
        let loss = (Tensor::stack(&picked, 0).unwrap().mean_all().unwrap() * -1.0).unwrap();
        let grads = loss.backward().unwrap();
        for layer in 0..2 {
            for p in Component::ALL {
                let w = model.projection_weight(layer, p).unwrap();
                let g = grads.get(w).unwrap().to_dtype(DType::F64).unwrap().flatten_all().unwrap();
                let entry = sums.entry(p.weight_name(layer)).or_insert_with(|| vec![0.0; g.elem_count()]);
                for (s, v) in entry.iter_mut().zip(g.to_vec1::<f64>().unwrap()) {
                    *s += v.abs();
                }
            }
        }
    }
    assert_eq!(scores.weights.len(), sums.len());
    for (name, grad_sum) in &sums {
        let (layer, p) = (name.split('.').nth(2).unwrap().parse::<usize>().unwrap(), name);
        let proj = Component::ALL.into_iter().find(|q| q.weight_name(layer) == *p).unwrap();
        let w = model.projection_weight(layer, proj).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected: Vec<f64> = w.iter().zip(grad_sum).map(|(&w, &g)| (w as f64).abs() * g).collect();
        assert_close(name, &scores.weights[name], &expected, 1e-4);
        assert!(expected.iter().any(|&v| v > 0.0), "{name}: gradients reach the weight");
    }
}

fn run_score(ckpt: &Path, records: &Path, group: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "score",
        ckpt.to_str().unwrap(),
        "--records",
        records.to_str().unwrap(),
        "--group",
        group,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    biasprune(&args)
}

#[test]
fn the_score_command_writes_files_that_mask_accepts() {
    let fx = small_fixture();
    let records_path = fx.root.join("records.jsonl");
    write_records(&records_path, &records(&["bicycle"], 2, 2));
    let sha = hex::encode(Sha256::digest(std::fs::read(&records_path).unwrap()));
    let fingerprint = biasprune::score::checkpoint_fingerprint(&Checkpoint::open(&fx.ckpt).unwrap());
    for (group, extra) in [("minority", vec!["--tokens", "response"]), ("majority", vec!["--half", "--batch", "3"])] {
        let out = fx.root.join(group);
        let output = run_score(&fx.ckpt, &records_path, group, &out, &extra);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(summary["sequences"], 4);
        let set = load_scores(&out).unwrap();
        assert_eq!(set.info.records_sha256, sha);
        assert_eq!(set.info.checkpoint_fingerprint, fingerprint);
        assert_eq!((set.info.sequences, set.info.method.as_str()), (4, "wanda"));
        assert_eq!(summary["tokens"], set.info.tokens);
        assert_eq!(set.weights.len(), 14);
        assert_eq!(set.heads.len(), 2);
    }
    let minority = load_scores(&fx.root.join("minority")).unwrap();
    assert_eq!(minority.info.tokens_counted, "response");
    assert_eq!(load_scores(&fx.root.join("majority")).unwrap().info.dtype, "F16");
    let snip = run_score(&fx.ckpt, &records_path, "minority", &fx.root.join("snip"), &["--method", "snip"]);
    assert_eq!(snip.status.code(), Some(0), "{}", stderr(&snip));
    let snip_info = load_scores(&fx.root.join("snip")).unwrap().info;
    assert_eq!(snip_info.method, "snip");
    let answers_only = calibration(&fx.ckpt, &records(&["bicycle"], 2, 2), Group::Minority, TokenCount::Response);
    assert_eq!(
        (snip_info.tokens_counted.as_str(), snip_info.tokens),
        ("response", answers_only.counted_tokens()),
        "SNIP's loss counts the answer tokens only, and its sidecar says so"
    );
    let mask_dir = fx.root.join("mask");
    let output = biasprune(&[
        "mask",
        "--checkpoint",
        fx.ckpt.to_str().unwrap(),
        "--minority",
        fx.root.join("minority").to_str().unwrap(),
        "--majority",
        fx.root.join("majority").to_str().unwrap(),
        "--out",
        mask_dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(load_mask(&mask_dir).unwrap().weights.len(), 14);
}

#[test]
fn a_group_without_records_is_refused_with_what_the_file_holds() {
    let fx = small_fixture();
    let records_path = fx.root.join("records.jsonl");
    let recs: Vec<AnswerRecord> =
        records(&["bicycle"], 1, 1).into_iter().filter(|r| r.group == biasprune::scenario::Group::Majority).collect();
    write_records(&records_path, &recs);
    let output = run_score(&fx.ckpt, &records_path, "minority", &fx.root.join("out"), &[]);
    common::assert_bad_input(&output, &["no answer records", "minority", "purchase/bicycle/Majority"]);
    assert!(!fx.root.join("out").exists(), "nothing is written on failure");
}

#[test]
fn snip_refuses_to_count_all_tokens() {
    let fx = small_fixture();
    let records_path = fx.root.join("records.jsonl");
    write_records(&records_path, &records(&["bicycle"], 1, 1));
    let out = fx.root.join("out");
    let output = run_score(&fx.ckpt, &records_path, "minority", &out, &["--method", "snip", "--tokens", "all"]);
    common::assert_bad_input(&output, &["--tokens all", "answer tokens only", "--tokens response"]);
    assert!(!out.exists(), "nothing is written on refusal");
}

/// Flags of the top `fraction` of `values` by a full sort (ties by lower index).
fn top_set(values: &[f32], fraction: f64) -> Vec<bool> {
    let k = (fraction * values.len() as f64).floor() as usize;
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[j].total_cmp(&values[i]).then(i.cmp(&j)));
    let mut flags = vec![false; values.len()];
    for &i in &order[..k] {
        flags[i] = true;
    }
    flags
}

#[test]
fn smollm2_scores_both_groups_and_builds_a_mask() {
    let ckpt = common::reference_model();
    let tmp = tempfile::tempdir().unwrap();
    let records_path = tmp.path().join("records.jsonl");
    write_records(&records_path, &records(&["bicycle"], 2, 1));
    for group in ["minority", "majority"] {
        let output = run_score(&ckpt, &records_path, group, &tmp.path().join(group), &[]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    let minority = load_scores(&tmp.path().join("minority")).unwrap();
    let majority = load_scores(&tmp.path().join("majority")).unwrap();
    assert_eq!(minority.weights.len(), 30 * 7);
    assert_eq!(minority.heads[&0].len(), 9);
    assert!(minority.info.tokens > 2 * 60, "two sequences of a templated prompt and answer");
    let mask_dir = tmp.path().join("mask");
    let output = biasprune(&[
        "mask",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--minority",
        tmp.path().join("minority").to_str().unwrap(),
        "--majority",
        tmp.path().join("majority").to_str().unwrap(),
        "--out",
        mask_dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mask = load_mask(&mask_dir).unwrap();
    assert_eq!(mask.weights.len(), 30 * 7);
    let mut selected = 0u64;
    for name in ["model.layers.0.self_attn.k_proj.weight", "model.layers.29.mlp.down_proj.weight"] {
        let (a, b, bits) = (&minority.weights[name], &majority.weights[name], &mask.weights[name]);
        let (top_a, top_b) = (top_set(&a.values, 0.15), top_set(&b.values, 0.15));
        let expected = top_a.iter().zip(&top_b).filter(|(&x, &y)| x && !y).count() as u64;
        assert_eq!(bits.count(), expected, "{name}: exactly top-q(minority) minus top-p(majority)");
        assert!(bits.count() as f64 <= (0.15 * a.values.len() as f64).floor(), "{name}: at most q of the entries");
        for r in 0..a.rows {
            bits.for_each_in_row(r, |c| {
                let i = r * a.cols + c;
                assert!(top_a[i] && !top_b[i], "{name}[{i}] is minority-top and not majority-top");
            });
        }
        selected += bits.count();
    }
    assert!(selected > 0, "the groups' scores differ somewhere");
}

#[test]
fn streamed_score_files_equal_collected_ones() {
    let fx = small_fixture();
    let records_path = fx.root.join("records.jsonl");
    write_records(&records_path, &records(&["bicycle", "car"], 1, 2));
    let request = biasprune::score::ScoreRequest {
        checkpoint: fx.ckpt.clone(),
        records: records_path,
        scenario: None,
        scenario_dir: None,
        calibration: CalibrationSpec {
            group: Group::Minority,
            variations: Some(vec!["car".into()]),
            tokens: TokenCount::All,
        },
        method: biasprune::score::Method::Wanda,
        options: ScoreOptions { batch: 3, load: LoadOptions::cpu_f32() },
    };
    let info = biasprune::score::score_to_dir(&request, &fx.root.join("streamed"), false, &NoProgress).unwrap();
    let collected = biasprune::score::score_checkpoint(&request, &NoProgress).unwrap();
    assert_eq!(info, collected.info);
    assert_eq!(info.variations, vec!["car".to_string()]);
    biasprune::score::save_scores(&fx.root.join("collected"), &collected, false).unwrap();
    assert_eq!(load_scores(&fx.root.join("streamed")).unwrap(), load_scores(&fx.root.join("collected")).unwrap());
}
