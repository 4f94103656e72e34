//! Batched sampling: determinism, independence from batch composition, stop tokens and
//! lengths, and greedy decoding through the KV cache against repeated full forward passes.

use biasprune::fixture::{write_checkpoint, FixtureSpec};
use biasprune::model::{
    generate, Batch, Completion, FinishReason, GenerateOptions, Llama, LoadOptions, Logits, SamplingParams,
};
use biasprune::progress::NoProgress;
use candle_core::Device;

/// A 2-layer grouped-query model (hidden 64, MLP 96) with seeded random weights.
fn model() -> (tempfile::TempDir, Llama) {
    let dir = tempfile::tempdir().unwrap();
    let spec = FixtureSpec { seed: 21, intermediate_size: 96, num_shards: 1, ..FixtureSpec::default() };
    write_checkpoint(&dir.path().join("model"), &spec).unwrap();
    let model = Llama::load_dir(&dir.path().join("model"), LoadOptions::cpu_f32()).unwrap();
    (dir, model)
}

fn prompts() -> Vec<Vec<u32>> {
    vec![vec![1, 5, 9, 33], vec![1, 70], vec![1, 8, 8, 100, 101, 102, 3], vec![1, 44, 45]]
}

fn options(seed: u64, max_rows: usize) -> GenerateOptions {
    GenerateOptions {
        samples: 5,
        max_new_tokens: 12,
        params: SamplingParams { temperature: 1.0, top_p: 0.95 },
        seed,
        stop_tokens: vec![],
        pad_id: 0,
        max_rows,
    }
}

fn tokens(out: &[Vec<Completion>]) -> Vec<Vec<Vec<u32>>> {
    out.iter().map(|p| p.iter().map(|c| c.tokens.clone()).collect()).collect()
}

#[test]
fn same_seed_same_tokens_and_other_seeds_differ() {
    let (_dir, model) = model();
    let a = generate(&model, &prompts(), &options(9, 64), &NoProgress).unwrap();
    let b = generate(&model, &prompts(), &options(9, 64), &NoProgress).unwrap();
    let c = generate(&model, &prompts(), &options(10, 64), &NoProgress).unwrap();
    assert_eq!(a, b);
    assert_ne!(tokens(&a), tokens(&c));
    assert_eq!(a.len(), 4);
    assert!(a.iter().all(|p| p.len() == 5 && p.iter().all(|c| c.tokens.len() == 12)));
    let first = &a[0];
    assert!(first.iter().any(|c| c.tokens != first[0].tokens), "samples of a prompt should differ");
}

#[test]
fn answers_do_not_depend_on_how_prompts_are_batched() {
    let (_dir, model) = model();
    let together = generate(&model, &prompts(), &options(4, 64), &NoProgress).unwrap();
    let one_by_one = generate(&model, &prompts(), &options(4, 5), &NoProgress).unwrap();
    assert_eq!(tokens(&together), tokens(&one_by_one));
}

#[test]
fn stop_tokens_end_answers_and_are_not_included() {
    let (_dir, model) = model();
    let free = generate(&model, &prompts(), &options(2, 64), &NoProgress).unwrap();
    let stop = free[0][0].tokens[3];
    let opts = GenerateOptions { stop_tokens: vec![stop], ..options(2, 64) };
    let stopped = generate(&model, &prompts(), &opts, &NoProgress).unwrap();
    for (p, (free_p, stopped_p)) in free.iter().zip(&stopped).enumerate() {
        for (s, (f, c)) in free_p.iter().zip(stopped_p).enumerate() {
            match f.tokens.iter().position(|&t| t == stop) {
                Some(at) => {
                    assert_eq!(c.tokens, f.tokens[..at], "prompt {p} sample {s}");
                    assert_eq!(c.finish, FinishReason::Stop);
                }
                None => {
                    assert_eq!(c.tokens, f.tokens);
                    assert_eq!(c.finish, FinishReason::Length);
                }
            }
        }
    }
    assert_eq!(stopped[0][0].tokens.len(), 3);
}

#[test]
fn greedy_decoding_with_the_cache_equals_repeated_full_forward_passes() {
    let (_dir, model) = model();
    let opts =
        GenerateOptions { params: SamplingParams { temperature: 0.0, top_p: 1.0 }, samples: 2, ..options(0, 64) };
    let out = generate(&model, &prompts(), &opts, &NoProgress).unwrap();
    for (prompt, answers) in prompts().iter().zip(&out) {
        let mut seq = prompt.clone();
        for _ in 0..opts.max_new_tokens {
            let batch = Batch::left_padded(&[seq.clone()], 0, &Device::Cpu).unwrap();
            let logits = model.forward(&batch, None, Logits::Last).unwrap().squeeze(0).unwrap();
            seq.push(logits.argmax(0).unwrap().to_scalar::<u32>().unwrap());
        }
        assert_eq!(answers[0].tokens, seq[prompt.len()..]);
        assert_eq!(answers[1].tokens, answers[0].tokens);
    }
}

#[test]
fn invalid_options_are_rejected() {
    let (_dir, model) = model();
    let bad_top_p = GenerateOptions { params: SamplingParams { temperature: 1.0, top_p: 0.0 }, ..options(0, 8) };
    assert!(generate(&model, &prompts(), &bad_top_p, &NoProgress).unwrap_err().to_string().contains("top_p"));
    let no_samples = GenerateOptions { samples: 0, ..options(0, 8) };
    assert!(generate(&model, &prompts(), &no_samples, &NoProgress).is_err());
}
