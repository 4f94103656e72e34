#!/usr/bin/env bash
# The one prepared GPU check: run on a GPU machine with only the CUDA build of biasprune
# (scripts/build-cuda.sh) and what it generates there (no model download).
#
#   scripts/gpu-check.sh [OUT_DIR]        (default: $OUT if set, else ./gpu-check-out)
#
# Steps, each time-limited:
#   1. environment: GPU, driver, the binary's libraries (LD_LIBRARY_PATH gets PyTorch's CUDA
#      13 libraries when python3 has them);
#   2. fixtures: the tiny fixture, a Llama-3-8B-shaped BF16 checkpoint with $PARITY_LAYERS
#      layers (parity) and one with $SPEED_LAYERS layers (speed);
#   3. parity: `biasprune parity` (CPU f32 reference vs the GPU in f32 and in bf16) on both
#      small checkpoints: last-position logits and Wanda statistics within tolerance;
#   4. speed: `biasprune bench` on the 8B shape in bf16: prefill tokens/s at 32 x 128,
#      answers/s for 40 prompts x 10 samples x 16 tokens, Wanda statistics for 400 x 110,
#      with peak GPU memory sampled by nvidia-smi;
#   5. the same prefill and Wanda statistics in PyTorch + transformers when python3 has
#      them (skipped, with the reason, when not), for a speed ratio.
# Writes OUT_DIR/gpu-check.json (all figures) plus each step's raw JSON and log; exits 1
# when a parity check fails, 2 when a step could not run.
#
# Environment: BIASPRUNE (binary; default target/release/biasprune), DEVICE (cuda:0),
# WORK (scratch, default /tmp/biasprune-gpu-check), SPEED_LAYERS (32), PARITY_LAYERS (2),
# REPEATS (2), GPU_DTYPE (bf16: the speed run's and the second parity run's dtype).
set -euo pipefail
cd "$(dirname "$0")/.."

out_dir="${1:-${OUT:-$PWD/gpu-check-out}}"
bin="${BIASPRUNE:-target/release/biasprune}"
device="${DEVICE:-cuda:0}"
work="${WORK:-/tmp/biasprune-gpu-check}"
speed_layers="${SPEED_LAYERS:-32}"
parity_layers="${PARITY_LAYERS:-2}"
repeats="${REPEATS:-2}"
gpu_dtype="${GPU_DTYPE:-bf16}"
# Llama-3-8B's shape; FIXTURE_SHAPE and BENCH_SIZES exist for dry runs on small machines.
read -r -a shape <<< "${FIXTURE_SHAPE---hidden 4096 --heads 32 --kv-heads 8 --intermediate 14336 --vocab 128256}"
read -r -a bench_sizes <<< "${BENCH_SIZES:---prefill-rows 32 --prefill-len 128 --prompts 40 --prompt-len 80 --samples 10 --new-tokens 16 --wanda-sequences 400 --wanda-len 110 --wanda-batch 32}"

mkdir -p "$out_dir" "$work"
out_dir=$(cd "$out_dir" && pwd)
log="$out_dir/gpu-check.log"
: > "$log"
failed_checks=0
declare -A step_rc step_s

say() { printf '[gpu-check %s] %s\n' "$(date +%T)" "$*" | tee -a "$log" >&2; }
die() { say "error: $*"; exit 2; }

# run_step NAME LIMIT_S OUTFILE CMD...: runs CMD under `timeout`, stdout to OUTFILE (or the
# log when OUTFILE is -), stderr to the log; records exit status and seconds.
run_step() {
    local name="$1" limit="$2" outfile="$3" start rc
    shift 3
    say "step $name (limit ${limit}s): $*"
    start=$(date +%s.%N)
    set +e
    if [[ "$outfile" == - ]]; then
        timeout "$limit" "$@" >> "$log" 2>> "$log"
    else
        timeout "$limit" "$@" > "$outfile" 2>> "$log"
    fi
    rc=$?
    set -e
    step_rc[$name]=$rc
    step_s[$name]=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [[ $rc -eq 124 ]]; then
        say "step $name timed out after ${limit}s"
    elif [[ $rc -ne 0 ]]; then
        say "step $name exited with $rc (see $log)"
    fi
    return 0
}

# Prints a JSON file's content, or null when missing or empty.
json_or_null() {
    if [[ -s "$1" ]]; then cat "$1"; else printf 'null'; fi
}

find_torch_cuda_libs() {
    command -v python3 >/dev/null || return 0
    python3 - <<'EOF' 2>/dev/null || true
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
dirs = []
for root in roots:
    dirs += glob.glob(os.path.join(root, "nvidia", "cu13", "lib"))
    dirs += glob.glob(os.path.join(root, "nvidia", "*", "lib"))
    dirs += glob.glob(os.path.join(root, "torch", "lib"))
print(":".join(d for d in dirs if os.path.isdir(d)))
EOF
}

check_environment() {
    [[ -x "$bin" ]] || die "biasprune binary not found at $bin (build with scripts/build-cuda.sh, or set BIASPRUNE)"
    command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this script needs a GPU machine"
    local libs
    libs=$(find_torch_cuda_libs)
    if [[ -n "$libs" ]]; then
        export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        say "LD_LIBRARY_PATH += python's CUDA libraries ($libs)"
    fi
    ldd "$bin" > "$out_dir/ldd.txt" 2>&1 || true
    if grep -q 'not found' "$out_dir/ldd.txt"; then
        die "libraries missing for $bin: $(grep 'not found' "$out_dir/ldd.txt" | awk '{print $1}' | tr '\n' ' ')(install PyTorch with CUDA 13 or set LD_LIBRARY_PATH)"
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out_dir/gpu.txt"
    say "GPU: $(cat "$out_dir/gpu.txt")"
}

# Peak GPU memory while a command runs: nvidia-smi samples every 100 ms into FILE.
start_memory_sampler() {
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$1" 2>/dev/null &
    sampler_pid=$!
}

stop_memory_sampler() {
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sort -n "$1" | tail -n 1 | tr -d ' '
}

make_fixtures() {
    [[ -f "$work/tiny/config.json" ]] || run_step fixture_tiny 60 - "$bin" fixture "$work/tiny"
    [[ -f "$work/parity-8b/config.json" ]] || run_step fixture_parity_8b 180 - \
        "$bin" fixture "$work/parity-8b" --dtype bf16 --layers "$parity_layers" "${shape[@]}"
    [[ -f "$work/speed-8b/config.json" ]] || run_step fixture_speed_8b 300 - \
        "$bin" fixture "$work/speed-8b" --dtype bf16 --layers "$speed_layers" --shards 4 "${shape[@]}"
}

run_parity() {
    local model dtype name
    for model in tiny parity-8b; do
        for dtype in f32 "$gpu_dtype"; do
            name="parity_${model//-/_}_$dtype"
            run_step "$name" 180 "$out_dir/$name.json" \
                "$bin" --quiet parity "$work/$model" --device "$device" --compute-dtype "$dtype" --rows 4 --len 64
            if [[ ${step_rc[$name]} -eq 1 ]]; then
                failed_checks=$((failed_checks + 1))
                say "PARITY FAILED: $name"
            fi
        done
    done
}

run_speed() {
    local baseline
    baseline=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1 | tr -d ' ')
    start_memory_sampler "$out_dir/memory-biasprune.txt"
    # top_p 1: random weights give nearly flat logits, whose nucleus would be most of the
    # vocabulary; sorting it per row on the CPU is a cost real models do not have.
    run_step bench_8b 420 "$out_dir/bench-8b.json" \
        "$bin" --quiet bench "$work/speed-8b" --device "$device" --compute-dtype "$gpu_dtype" \
        "${bench_sizes[@]}" --top-p 1.0 --repeats "$repeats"
    peak_biasprune=$(stop_memory_sampler "$out_dir/memory-biasprune.txt")
    memory_baseline=$baseline
}

run_torch() {
    if ! command -v python3 >/dev/null || ! python3 -c 'import torch, transformers; assert torch.cuda.is_available()' 2>> "$log"; then
        say "PyTorch with CUDA and transformers not available: skipping the PyTorch comparison"
        printf '{"available": false, "reason": "python3 lacks torch (with CUDA) or transformers"}' > "$out_dir/torch-8b.json"
        peak_torch=null
        return
    fi
    start_memory_sampler "$out_dir/memory-torch.txt"
    run_step torch_8b 300 "$out_dir/torch-8b.json" python3 scripts/gpu-check-torch.py "$work/speed-8b" "$repeats"
    peak_torch=$(stop_memory_sampler "$out_dir/memory-torch.txt")
}

steps_json() {
    local first=1 name
    printf '{'
    for name in "${!step_rc[@]}"; do
        [[ $first -eq 1 ]] || printf ', '
        first=0
        printf '"%s": {"rc": %s, "seconds": %s}' "$name" "${step_rc[$name]}" "${step_s[$name]}"
    done
    printf '}'
}

write_report() {
    local report="$out_dir/gpu-check.json" model dtype name
    {
        printf '{\n"gpu": "%s",\n"binary": "%s",\n"device": "%s",\n' "$(tr -d '"' < "$out_dir/gpu.txt")" "$bin" "$device"
        printf '"parity_failures": %s,\n"parity": {\n' "$failed_checks"
        first=1
        for model in tiny parity-8b; do
            for dtype in f32 "$gpu_dtype"; do
                name="parity_${model//-/_}_$dtype"
                [[ $first -eq 1 ]] || printf ',\n'
                first=0
                printf '"%s": %s' "$name" "$(json_or_null "$out_dir/$name.json")"
            done
        done
        printf '\n},\n"bench_8b": %s,\n"torch_8b": %s,\n' "$(json_or_null "$out_dir/bench-8b.json")" "$(json_or_null "$out_dir/torch-8b.json")"
        printf '"gpu_memory_mib": {"before": %s, "peak_biasprune": %s, "peak_torch": %s},\n' \
            "${memory_baseline:-null}" "${peak_biasprune:-null}" "${peak_torch:-null}"
        printf '"steps": %s\n}\n' "$(steps_json)"
    } > "$report"
    say "wrote $report"
    if command -v python3 >/dev/null; then
        python3 scripts/gpu-check-torch.py --summary "$report" | tee -a "$log" >&2 || say "summary failed (report kept)"
    fi
}

main() {
    check_environment
    make_fixtures
    for f in tiny parity-8b speed-8b; do
        [[ -f "$work/$f/config.json" ]] || die "fixture $f was not written (see $log)"
    done
    run_parity
    run_speed
    run_torch
    write_report
    local step
    for step in "${!step_rc[@]}"; do
        if [[ ${step_rc[$step]} -ne 0 && ${step_rc[$step]} -ne 1 ]]; then
            say "step $step did not complete (exit ${step_rc[$step]})"
            exit 2
        fi
    done
    [[ $failed_checks -eq 0 ]] || exit 1
    say "all parity checks passed"
}

main "$@"
