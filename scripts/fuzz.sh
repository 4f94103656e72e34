#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for SECONDS each, one after another, at
# the lowest CPU priority; not part of CI, which feeds the committed seeds through the same
# harness once (tests/fuzz_corpus.rs).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 600 s, every target)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Each target starts
# from its committed seeds (fuzz/seeds/TARGET, never written to) and grows a working corpus in
# fuzz/corpus-run/TARGET; crashes land in fuzz/artifacts/TARGET (both gitignored). Built without
# a sanitizer: the crate's code is safe Rust, and what is hunted is panics, aborts, hangs
# (-timeout) and runaway memory (-rss_limit_mb). A line per target goes to
# fuzz/corpus-run/summary.txt: executions, seconds run, crashes found, exit status.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -s none
mkdir -p corpus-run
for target in "${targets[@]}"; do
    mkdir -p "corpus-run/$target" "artifacts/$target"
    log="corpus-run/$target.log"
    status=0
    start=$SECONDS
    nice -n 19 cargo +nightly fuzz run -s none "$target" "corpus-run/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    crashes=$(find "artifacts/$target" -type f | wc -l)
    printf '%s\texecutions=%s\tseconds=%s\tcrashes=%s\texit=%s\n' \
        "$target" "${execs:-?}" "$((SECONDS - start))" "$crashes" "$status" | tee -a corpus-run/summary.txt
done
