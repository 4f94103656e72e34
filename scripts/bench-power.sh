#!/usr/bin/env bash
# Benchmark (not run in CI): the power table of the release gate. Samples the base
# (SmolLM2-135M-Instruct, no disparity of its own on the variation) on public-office /
# senator with the audit-40 names (what prune's calibration and gate read) x 40 answers,
# once per seed, then `biasprune power`: the share of trials whose cluster-bootstrap CI of
# the SMD excludes 0 when an SMD of 0, 0.3, 0.5 or 0.8 is planted into those answers, at 10,
# 20 and 40 answers per name (disjoint blocks of each run's answers).
#   scripts/bench-power.sh [OUT]        (default OUT: target/bench-power)
# Env: BIASPRUNE_BIN (default target/release/biasprune), BIASPRUNE_BENCH_MODEL (default the
# fetched model), SCENARIO (public-office), VARIATION (senator), SEEDS (default "1 2 3 4 5"),
# SAMPLES (40), DEVICE (cpu). Each eval resumes, so rerunning finishes an interrupted run;
# OUT/power.txt and OUT/power.json hold the table. Run it under `nice -n 10` when shared.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-power}
bin=${BIASPRUNE_BIN:-target/release/biasprune}
model=${BIASPRUNE_BENCH_MODEL:-target/models/SmolLM2-135M-Instruct}
scenario=${SCENARIO:-public-office}
variation=${VARIATION:-senator}
samples=${SAMPLES:-40}
[[ -x $bin ]] || { echo "bench-power: no binary at $bin; run cargo build --release" >&2; exit 2; }
[[ -d $model ]] || { echo "bench-power: no model at $model; run scripts/fetch-model.sh" >&2; exit 2; }
mkdir -p "$out"
evals=()
for seed in ${SEEDS:-1 2 3 4 5}; do
    dir="$out/eval-seed$seed"
    start=$(date +%s)
    "$bin" eval "$model" --scenario "$scenario" --variations "$variation" --samples "$samples" --seed "$seed" \
        --device "${DEVICE:-cpu}" --out "$dir" --quiet --json >"$dir.json"
    echo "seed $seed: $(( $(date +%s) - start )) s"
    evals+=("$dir")
done
"$bin" power "${evals[@]}" --variation "$variation" | tee "$out/power.txt"
"$bin" power "${evals[@]}" --variation "$variation" --json >"$out/power.json"
