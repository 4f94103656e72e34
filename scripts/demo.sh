#!/usr/bin/env bash
# The demo, from a fresh clone: build biasprune, fetch the reference model
# SmolLM2-135M-Instruct, make a throwaway signing key, then run the same prune job twice
# (public-office: target senator, the candidate's chances of winning):
#   A. on the reference model itself. Its disparity there is small and not significant at
#      these sizes, so prune stops with exit 3 ("nothing significant to remove") before
#      scoring: the honest answer, explained below when it happens.
#   B. on a positive control: a copy of the reference model with a disparity planted on
#      purpose by `biasprune plant` (a TEST FIXTURE, never to be deployed; see the README).
#      prune should find it, remove it and release a signed model that `verify` checks
#      against the planted base; whatever the outcome, the script says what happened.
# Needs a Rust toolchain and python3 with pip.
#
# Everything goes to ${DEMO_DIR:-target/demo}; rerunning reuses what is done (the planted
# copy, and the work directories keyed by the digests of each stage's inputs). SAMPLES
# (default 10) answers per (variation, name) prompt; SEED (default 0).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DEMO=${DEMO_DIR:-$REPO/target/demo}
SAMPLES=${SAMPLES:-10}
SEED=${SEED:-0}
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/biasprune
MODEL=${BIASPRUNE_CACHE:-$REPO/target/models}/SmolLM2-135M-Instruct
JOB=(--scenario public-office --variations senator --samples "$SAMPLES" --seed "$SEED")

stamp() { date +%s; }
elapsed() { echo "$(( $(stamp) - $1 )) s"; }

# prune_case MODEL OUT: runs the job on MODEL into OUT; returns prune's exit code.
prune_case() {
    local model=$1 out=$2 status=0
    BIASPRUNE_LOG=${BIASPRUNE_LOG:-info} "$BIN" prune "$model" "${JOB[@]}" \
        --sign-key "$DEMO/key.priv" --out "$out" || status=$?
    return "$status"
}

t0=$(stamp)
echo "== 1/6 build (cargo build --release)"
cargo build --release --bin biasprune
echo "   $(elapsed "$t0")"

t=$(stamp)
echo "== 2/6 reference model (scripts/fetch-model.sh)"
./scripts/fetch-model.sh
echo "   $(elapsed "$t")"

mkdir -p "$DEMO"
if [ ! -f "$DEMO/key.priv" ]; then
    echo "== 3/6 throwaway signing key ($DEMO/key.priv, key.pub)"
    "$BIN" keygen --out "$DEMO/key"
else
    echo "== 3/6 signing key: reusing $DEMO/key.priv"
fi

t=$(stamp)
echo "== 4/6 case A: prune the reference model (public-office, target senator, $SAMPLES samples)"
status=0
prune_case "$MODEL" "$DEMO/release-base" || status=$?
echo "   $(elapsed "$t")"
case $status in
    0) echo "   case A released $DEMO/release-base (report: $DEMO/release-base/report.html)" ;;
    3) echo
       echo "   prune ran correctly and refused to release (exit 3): on the reference model the"
       echo "   baseline disparity's cluster-aware CI does not exclude 0 at these sizes, so there is"
       echo "   nothing significant to remove, or what was pruned did not reduce it on fresh data."
       echo "   The lines above give the SMD, its CI and the smallest SMD these sizes could detect;"
       echo "   the evidence is kept in $DEMO/release-base.work. No release, nothing to verify." ;;
    *) exit "$status" ;;
esac

t=$(stamp)
PLANTED=$DEMO/planted
if [ -f "$PLANTED/biasprune-plant.json" ]; then
    echo "== 5/6 positive control: reusing $PLANTED"
else
    echo "== 5/6 positive control: biasprune plant (a TEST FIXTURE with a planted disparity)"
    "$BIN" plant "$MODEL" --scenario public-office --out "$PLANTED"
fi
echo "   $(elapsed "$t")"

t=$(stamp)
echo "== 6/6 case B: the same prune job on the planted model"
status=0
prune_case "$PLANTED" "$DEMO/release-planted" || status=$?
echo "   $(elapsed "$t")"
case $status in
    0) echo "   verify: signature, files, manifest, and every byte against the planted base"
       "$BIN" verify "$DEMO/release-planted" --public-key "$DEMO/key.pub" --base "$PLANTED"
       echo "   planted units the mask covers:"
       "$BIN" analyze --checkpoint "$PLANTED" "$DEMO/release-planted.work"/mask-* | grep -A3 "planted fixture" ;;
    3) echo
       echo "   prune refused to release the planted model (exit 3): the lines above say whether"
       echo "   the disparity was not reduced on fresh confirmation data or usable answers fell;"
       echo "   the evidence is kept in $DEMO/release-planted.work." ;;
    *) exit "$status" ;;
esac

echo
echo "demo done in $(elapsed "$t0")"
for out in "$DEMO/release-base" "$DEMO/release-planted"; do
    if [ -f "$out/report.html" ]; then
        echo "report: $out/report.html"
    else
        echo "no release at $out (evidence: $out.work)"
    fi
done
