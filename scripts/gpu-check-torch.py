#!/usr/bin/env python3
"""PyTorch side of scripts/gpu-check.sh.

  gpu-check-torch.py CHECKPOINT_DIR REPEATS   time prefill (32 x 128) and Wanda statistics
                                              (400 x 110, batches of 32) of a randomly
                                              initialised LlamaForCausalLM with the
                                              checkpoint's config.json, bf16 on cuda:0;
                                              prints JSON (medians after one warm-up).
  gpu-check-torch.py --summary REPORT         add biasprune/PyTorch speed ratios to
                                              gpu-check.json and print a summary.

The workloads and prompt ids match `biasprune bench` (same synthetic ids, last-position
logits only, KV cache built during prefill, no cache for the Wanda passes).
"""
import inspect
import json
import os
import statistics
import sys
import tempfile
import time


def synthetic_prompts(rows, length, vocab):
    span = max(vocab - 10, 1)
    return [[(r * 7919 + i * 104_729) % span + 5 for i in range(length)] for r in range(rows)]


def timed(torch, repeats, work):
    work()
    torch.cuda.synchronize()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        torch.cuda.synchronize()
        runs.append(time.perf_counter() - start)
    return runs


def figures(runs, units, unit, tokens):
    median = statistics.median(runs)
    return {"median_s": median, "runs_s": runs, "units": units, "unit": unit,
            "per_s": units / median, "tokens_per_s": tokens / median}


def last_logits_kwargs(model):
    params = inspect.signature(model.forward).parameters
    if "logits_to_keep" in params:
        return {"logits_to_keep": 1}
    if "num_logits_to_keep" in params:
        return {"num_logits_to_keep": 1}
    return {}


def build_model(torch, checkpoint):
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig.from_pretrained(checkpoint)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda:0"):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval(), config


def wanda_hooks(model, sums):
    handles = []
    for index, layer in enumerate(model.model.layers):
        for name, module in [("qkv", layer.self_attn.q_proj), ("o", layer.self_attn.o_proj),
                             ("gate_up", layer.mlp.gate_proj), ("down", layer.mlp.down_proj)]:
            key = (index, name)

            def hook(_module, args, key=key):
                square_sum = args[0].float().pow(2).sum(dim=(0, 1))
                sums[key] = square_sum if key not in sums else sums[key] + square_sum
            handles.append(module.register_forward_pre_hook(hook))
    return handles


def bench(checkpoint, repeats):
    import torch
    import transformers
    start = time.perf_counter()
    model, config = build_model(torch, checkpoint)
    torch.cuda.synchronize()
    build_s = time.perf_counter() - start
    extra = last_logits_kwargs(model)
    vocab = config.vocab_size
    prefill_ids = torch.tensor(synthetic_prompts(32, 128, vocab), device="cuda:0")
    wanda_ids = torch.tensor(synthetic_prompts(400, 110, vocab), device="cuda:0")

    def prefill():
        model(prefill_ids, use_cache=True, **extra)

    def wanda():
        sums = {}
        handles = wanda_hooks(model, sums)
        try:
            for chunk in torch.split(wanda_ids, 32):
                model(chunk, use_cache=False, **extra)
        finally:
            for handle in handles:
                handle.remove()

    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        prefill_runs = timed(torch, repeats, prefill)
        wanda_runs = timed(torch, repeats, wanda)
    return {
        "available": True,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
        "attention": "sdpa",
        "weights": "random init (speed only)",
        "build_s": build_s,
        "prefill": figures(prefill_runs, 32 * 128, "tokens", 32 * 128),
        "wanda": figures(wanda_runs, 400, "sequences", 400 * 110),
        "max_memory_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
    }


def ratio(ours, theirs):
    if not ours or not theirs:
        return None
    return ours / theirs


def summary(path):
    with open(path) as f:
        report = json.load(f)
    bench_8b = report.get("bench_8b") or {}
    ours = bench_8b.get("figures", {})
    theirs = report.get("torch_8b") or {}
    ratios = {}
    for key in ["prefill", "wanda"]:
        if theirs.get("available") and key in ours and key in theirs:
            ratios[key] = ratio(ours[key]["per_s"], theirs[key]["per_s"])
    report["speed_ratio_biasprune_over_torch"] = ratios or None
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)))
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)

    lines = []
    for name, check in (report.get("parity") or {}).items():
        if check:
            lines.append(f"{name}: logits max_rel {check['logits']['logits']['max_rel']:.2e} "
                         f"(tol {check['max_rel_logits']:.0e}), wanda max_rel {check['wanda']['worst']['max_rel']:.2e}, "
                         f"argmax {check['logits']['argmax_agree']}/{check['logits']['rows']}, passed {check['passed']}")
        else:
            lines.append(f"{name}: no result")
    for key in ["prefill", "generation", "wanda"]:
        if key in ours:
            t = ours[key]
            line = f"biasprune {key}: {t['per_s']:.1f} {t['unit']}/s ({t['tokens_per_s']:.0f} tokens/s, median {t['median_s']:.3f}s)"
            if key in ratios and ratios[key] is not None:
                line += f"; torch {theirs[key]['per_s']:.1f} {t['unit']}/s; ratio {ratios[key]:.2f}"
            lines.append(line)
    lines.append(f"GPU memory MiB: {report.get('gpu_memory_mib')}")
    print("\n".join(lines))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        summary(sys.argv[2])
    elif len(sys.argv) == 3:
        print(json.dumps(bench(sys.argv[1], int(sys.argv[2])), indent=2))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
