#!/usr/bin/env bash
# Shows that layer-by-layer Wanda scoring is bounded by about one layer plus activations:
# scores a generated F32 checkpoint of ~1.5 GiB while the process may allocate at most
# 800 MiB of private memory (RLIMIT_DATA: heap and anonymous mappings; the read-only mmap of
# the checkpoint does not count, its pages are page cache). Then runs SNIP, which loads the
# whole model, under the same limit: it must fail.
# Usage: scripts/score-memory.sh [BIASPRUNE_BINARY]   (default: $CARGO_TARGET_DIR or target, release)
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-target}/release/biasprune}
limit_mib=${LIMIT_MIB:-800}
size_mib=${SIZE_MIB:-1536}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" fixture "$work/big" --size-mib "$size_mib" --shards 2 >/dev/null
du -sh "$work/big"
records="$work/records.jsonl"
for name in "Jamal Washington" "Tanisha Washington"; do
  for sample in 0 1; do
    printf '{"scenario":"purchase","variation":"bicycle","context":"low","name":"%s","group":"minority","gender":"x","sample":%d,"seed":0,"raw":"$500","value":500.0,"status":"ok","inlier":true}\n' "$name" "$sample" >>"$records"
  done
done
limit=$((limit_mib * 1024 * 1024))
echo "wanda under RLIMIT_DATA = ${limit_mib} MiB:"
/usr/bin/time -f "  exit %x, peak RSS %M KiB (includes touched checkpoint pages), %e s" \
  prlimit --data="$limit" "$bin" --quiet score "$work/big" --records "$records" --group minority \
  --out "$work/scores" --json | grep -E '"(sequences|tokens|seconds)"'
ls -l "$work/scores"
echo "snip (whole model in memory) under the same limit, expected to fail:"
if /usr/bin/time -f "  exit %x, peak RSS %M KiB" prlimit --data="$limit" "$bin" --quiet score "$work/big" \
  --records "$records" --group minority --method snip --out "$work/snip" --json >/dev/null 2>"$work/snip.err"; then
  echo "  unexpectedly succeeded"; exit 1
fi
tail -2 "$work/snip.err"
