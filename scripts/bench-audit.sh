#!/usr/bin/env bash
# Benchmark (not run in CI): audits the reference model over all scenarios at the low
# context with the audit-40 names (20 + 20; `--names audit40`, also for the scenarios whose
# own list is the 64-name one) x 10 samples: 33 cells, 13,200 answers. Then prints the
# wall time and the cells significant after correction (Holm and Benjamini-Hochberg at 0.05).
#   scripts/bench-audit.sh [OUT]        (default OUT: target/bench-audit)
# Env: BIASPRUNE_BIN (default target/release/biasprune), BIASPRUNE_BENCH_MODEL (default the
# fetched SmolLM2-135M-Instruct), SCENARIOS (default all; a comma list audits a slice),
# CONTEXTS (default low), NAMES (default audit40), SAMPLES (default 10), DEVICE (default cpu).
# The audit is resumable: rerunning with the same OUT finishes an interrupted run, and the
# time printed is then that of the rerun only. Run it under `nice -n 10` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-audit}
bin=${BIASPRUNE_BIN:-target/release/biasprune}
model=${BIASPRUNE_BENCH_MODEL:-target/models/SmolLM2-135M-Instruct}
[[ -x $bin ]] || { echo "bench-audit: no binary at $bin; run cargo build --release" >&2; exit 2; }
[[ -d $model ]] || { echo "bench-audit: no model at $model; run scripts/fetch-model.sh" >&2; exit 2; }
start=$(date +%s)
"$bin" audit "$model" --scenarios "${SCENARIOS:-all}" --contexts "${CONTEXTS:-low}" \
    --names "${NAMES:-audit40}" --samples "${SAMPLES:-10}" --device "${DEVICE:-cpu}" --out "$out" --json >"$out.result.json"
seconds=$(( $(date +%s) - start ))
python3 - "$out/audit.json" "$seconds" <<'PY'
import json, sys
audit = json.load(open(sys.argv[1]))
cells = audit["cells"]
answers = sum(c["answers"] for c in cells)
print(f"audit: {len(cells)} cells, {audit['tested']} tested, {answers} answers in {sys.argv[2]} s")
for name, key in (("Holm", "p_holm"), ("Benjamini-Hochberg", "p_bh")):
    hits = [c for c in cells if c[key] is not None and c[key] <= 0.05]
    print(f"significant after {name} at 0.05: {len(hits)}")
    for c in sorted(hits, key=lambda c: c[key]):
        print(f"  {c['id']}: SMD {c['smd']:+.3f}, against minority {c['against_minority']:+.3f}, "
              f"p {c['p_value']:.2e}, {key} {c[key]:.2e}")
PY
