#!/usr/bin/env bash
# The demo, from a fresh clone: build biasprune, fetch the reference model
# SmolLM2-135M-Instruct, make a throwaway signing key, run prune on the purchase scenario
# (target: bicycle; held out: car) and say what happened, whatever it is: on this small
# model the disparity is usually not significant at demo sizes, and prune then stops with
# exit 3 ("nothing significant to remove") before scoring, which is the honest answer.
# When prune does release (outcome reduced), the signed release is verified against the
# base and the report's path printed. Needs a Rust toolchain and python3 with pip.
#
# Everything goes to ${DEMO_DIR:-target/demo}; rerunning reuses what is done (the work
# directory is keyed by the digests of each stage's inputs). SAMPLES (default 20) answers
# per (variation, name) prompt; SEED (default 0).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DEMO=${DEMO_DIR:-$REPO/target/demo}
SAMPLES=${SAMPLES:-20}
SEED=${SEED:-0}
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/biasprune
MODEL=${BIASPRUNE_CACHE:-$REPO/target/models}/SmolLM2-135M-Instruct

stamp() { date +%s; }
elapsed() { echo "$(( $(stamp) - $1 )) s"; }

t0=$(stamp)
echo "== 1/5 build (cargo build --release)"
cargo build --release --bin biasprune
echo "   $(elapsed "$t0")"

t=$(stamp)
echo "== 2/5 reference model (scripts/fetch-model.sh)"
./scripts/fetch-model.sh
echo "   $(elapsed "$t")"

mkdir -p "$DEMO"
if [ ! -f "$DEMO/key.priv" ]; then
    echo "== 3/5 throwaway signing key ($DEMO/key.priv, key.pub)"
    "$BIN" keygen --out "$DEMO/key"
else
    echo "== 3/5 signing key: reusing $DEMO/key.priv"
fi

t=$(stamp)
echo "== 4/5 biasprune prune (purchase: target bicycle, held out car; $SAMPLES samples per prompt)"
status=0
BIASPRUNE_LOG=${BIASPRUNE_LOG:-info} "$BIN" prune "$MODEL" \
    --scenario purchase --variations bicycle --held-out car \
    --samples "$SAMPLES" --seed "$SEED" \
    --sign-key "$DEMO/key.priv" --out "$DEMO/release" || status=$?
echo "   $(elapsed "$t")"
if [ "$status" -eq 3 ]; then
    echo
    echo "prune ran correctly and refused to release (exit 3). Either the base shows no"
    echo "disparity on these names and samples that its cluster-aware CI can tell from noise"
    echo "(nothing significant to remove), or the pruned model's disparity on fresh"
    echo "confirmation data was not reduced. The lines above give the measured SMD, its CI,"
    echo "the smallest SMD these sizes could detect, and where the evidence is kept."
    echo "No release was written, so there is nothing to verify."
    echo
    echo "demo done in $(elapsed "$t0")"
    exit 0
elif [ "$status" -ne 0 ]; then
    exit "$status"
fi

t=$(stamp)
echo "== 5/5 biasprune verify (signature, files, manifest, and every byte against the base)"
"$BIN" verify "$DEMO/release" --public-key "$DEMO/key.pub" --base "$MODEL"
echo "   $(elapsed "$t")"

echo
echo "demo done in $(elapsed "$t0")"
echo "release: $DEMO/release"
echo "report:  $DEMO/release/report.html"
