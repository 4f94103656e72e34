#!/usr/bin/env bash
# Peak resident memory of `verify`, without and with --base, on a Llama-3-8B-shaped BF16
# checkpoint (32 layers, 4 shards, about 15 GiB): both must stay under 500 MB (issue 15). Not
# part of CI: verify hashes every byte of both trees, so this takes minutes.
#
# The base is written sparse (scripts/sparse_llama.py: real headers, zero data in holes), the
# release by `apply --sign-key` with a mask of heads, rows and MLP units (unit zeroing clears
# columns of down_proj, so the manifest check reads every row of it), then its shards are
# made sparse again (fallocate --dig-holes), so the whole run needs little disk. Zero pages
# are still mapped, read and hashed like any other, so the resident set is measured as for
# a real model.
#
# Usage: scripts/verify-memory.sh [BIASPRUNE_BINARY]   (default: target/release/biasprune)
# Prints the peak RSS (GNU time's "Maximum resident set size") and wall time of each run and
# exits 1 when one is at or above LIMIT_MB (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/biasprune}
limit_mb=${LIMIT_MB:-500}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 scripts/sparse_llama.py "$work/base"
mkdir "$work/mask"
cat >"$work/mask/mask.json" <<'EOF'
{
  "format": "biasprune-mask",
  "version": 1,
  "head_mode": "o_proj_columns",
  "rows": {"model.layers.3.mlp.gate_proj.weight": [0, 7, 4095, 14335]},
  "mlp_units": {"0": [1, 2, 3, 500, 14000], "31": [42]},
  "heads": {"0": [1], "17": [0, 31]}
}
EOF
"$bin" keygen --out "$work/key" >/dev/null
echo "apply --sign-key (writes about 15 GiB, then made sparse)..."
/usr/bin/time -f "apply: peak RSS %M KiB, %e s" nice -n 19 "$bin" apply "$work/base" --mask "$work/mask" \
    --out "$work/release" --sign-key "$work/key.priv" --quiet >/dev/null
for shard in "$work"/release/model-*.safetensors; do
    fallocate --dig-holes "$shard"
done
du -sh --apparent-size "$work/release"
du -sh "$work/release"

status=0
for mode in plain base; do
    extra=()
    [ $mode = base ] && extra=(--base "$work/base")
    log="$work/time-$mode.txt"
    /usr/bin/time -v -o "$log" nice -n 19 "$bin" verify "$work/release" --public-key "$work/key.pub" \
        "${extra[@]}" >"$work/verify-$mode.txt"
    kib=$(sed -n 's/^\tMaximum resident set size (kbytes): //p' "$log")
    wall=$(sed -n 's/^\tElapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")
    mb=$((kib * 1024 / 1000000))
    echo "verify ${extra[*]:-(no --base)}: peak RSS ${kib} KiB (${mb} MB), wall ${wall}"
    if [ "$mb" -ge "$limit_mb" ]; then
        echo "  at or above the limit of ${limit_mb} MB"
        status=1
    fi
done
exit $status
