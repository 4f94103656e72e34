#!/usr/bin/env bash
# Regenerates the committed seed corpora in fuzz/seeds/<target>/ from real files: a tiny
# `biasprune fixture` checkpoint and what the real commands write for it (eval, score, mask,
# apply with a signature), fixtures/v1-release, the installed scenarios and name lists, the
# README's pipeline file, and a tiny GGUF written by fuzz/tiny_gguf.py. Each seed is one
# harness input: files joined by the separator of fuzz/harness/mod.rs; seeds named
# rejected-* are ones the parsers must refuse (tests/fuzz_corpus.rs checks both). Needs
# target/release/biasprune (cargo build --release); SEEDS_DIR writes them elsewhere.
# Deterministic up to the ECDSA signature.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/target/release/biasprune"
seeds=${SEEDS_DIR:-$PWD/fuzz/seeds}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1767225600

sep() { printf '\n--8<--\n'; }
# join OUT FILE...: OUT gets the files' bytes joined by the separator ("-" is an empty part).
join() {
    local out=$1 first=1
    shift
    {
        for part in "$@"; do
            [ $first = 1 ] || sep
            first=0
            [ "$part" = - ] || cat "$part"
        done
    } >"$out"
}

rm -rf "$seeds"
mkdir -p "$seeds"/{safetensors,gguf,manifest,signature,mask,scores,scenario,prune_config}

tiny=(--layers 1 --hidden 16 --intermediate 32 --heads 2 --kv-heads 1 --vocab 271 --quiet)
"$bin" fixture "$work/sharded" --shards 2 --dtype bf16 "${tiny[@]}" >/dev/null
"$bin" fixture "$work/single" --shards 1 --dtype f16 "${tiny[@]}" >/dev/null
join "$seeds/safetensors/sharded" "$work/sharded/model.safetensors.index.json" \
    "$work/sharded/model-00001-of-00002.safetensors" "$work/sharded/model-00002-of-00002.safetensors"
join "$seeds/safetensors/single" - "$work/single/model.safetensors"

python3 fuzz/tiny_gguf.py "$seeds/gguf/tiny" "$seeds/gguf/rejected-header-only"

# Answers of the random model (unparsed, but they calibrate scores all the same).
"$bin" eval "$work/sharded" --scenario purchase --variations bicycle --samples 2 --max-new-tokens 4 \
    --seed 3 --out "$work/answers" --quiet >/dev/null
records="$work/answers/records.jsonl"
for group in minority majority; do
    "$bin" score "$work/sharded" --records "$records" --group $group --out "$work/$group" --quiet >/dev/null
done
"$bin" score "$work/sharded" --records "$records" --group majority --half --out "$work/half" --quiet >/dev/null
for dir in minority half; do
    join "$seeds/scores/$dir" "$work/$dir/scores.json" "$work/$dir/scores.safetensors" "$work/sharded/config.json"
done

for granularity in weight row unit head; do
    mask="$work/mask-$granularity"
    "$bin" mask --checkpoint "$work/sharded" --minority "$work/minority" --majority "$work/majority" \
        --granularity $granularity --q 0.5 --p 0.1 --out "$mask" --quiet >/dev/null
    digest=$(sha256sum "$mask/pruning-mask.safetensors" 2>/dev/null | cut -d' ' -f1 || true)
    if [ -n "$digest" ]; then
        sed "s/$digest/@BITMASK_SHA256@/" "$mask/mask.json" >"$work/mask.json"
        join "$seeds/mask/$granularity" "$work/mask.json" "$mask/pruning-mask.safetensors"
    else
        join "$seeds/mask/$granularity" "$mask/mask.json"
    fi
done

"$bin" keygen --out "$work/key" >/dev/null
"$bin" apply "$work/sharded" --mask "$work/mask-weight" --out "$work/release" --sign-key "$work/key.priv" \
    --quiet >/dev/null
"$bin" apply "$work/sharded" --mask "$work/mask-head" --out "$work/release-head" --manifest --quiet >/dev/null
cp "$work/release/biasprune-manifest.json" "$seeds/manifest/weights"
cp "$work/release-head/biasprune-manifest.json" "$seeds/manifest/heads"
cp fixtures/v1-release/biasprune-manifest.json "$seeds/manifest/v1-release"
cp "$work/release/model.sig" "$seeds/signature/release"
cp fixtures/v1-release/model.sig "$seeds/signature/v1-release"
python3 -c 'import base64, json, sys; print(base64.b64decode(json.load(sys.stdin)["dsseEnvelope"]["payload"]).decode(), end="")' \
    <fixtures/v1-release/model.sig >"$seeds/signature/statement"

for scenario in purchase hiring chess; do
    cp "manifests/scenarios/$scenario.toml" "$seeds/scenario/$scenario"
done
join "$seeds/scenario/sports-audit40" manifests/scenarios/sports.toml manifests/names/audit40.toml

sed -n '/^```toml$/,/^```$/p' README.md | sed '1d;$d' | awk '/^base = /,/^compute_dtype/' \
    | sed '/^sign_key/d; s/^device = "cuda"/device = "cpu"/' >"$seeds/prune_config/readme"
cat >"$seeds/prune_config/cross-context" <<'EOF'
base = "base"
out = "out"

[use_case]
scenario = "purchase"
variations = ["bicycle"]
regime = "cross-context"
train_scenarios = ["hiring"]

[method]
method = "snip"
tokens = "response"
granularity = "head"

[method.sweep]
p_grid = [0.05, 0.15]
q_grid = [0.15, 0.4]

[evaluation]
samples = 2
EOF
du -sh "$seeds"
