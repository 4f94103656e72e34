#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need, then runs
# every test with optimisations. Safe to rerun; each setup step is a no-op when done.
#
# Every test target runs. The positive control (tests/positive_control.rs) plants a model
# for several CPU minutes, much of it on one core, so its executable runs beside the other
# targets rather than after them (on two cores the suite takes about a quarter less time);
# its output, with the figures its tests print (planted SMD, verdicts, recall and precision of
# the planted units, the audit's cells), is kept in target/positive-control.log and printed
# after the others'. The exit status is non-zero when any target fails.
#
# The tests are built first and the model is imported with the binary they built: a
# dev-dependency (candle-transformers, for the parity test) turns on a feature of syn, so a
# plain `cargo build --release` would compile every crate behind a proc-macro a second time
# (a clean run built for 5:05 then 6:09 minutes; now once, 7:28).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --no-run
BIASPRUNE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/biasprune" ./scripts/fetch-model.sh
./scripts/setup-model-signing.sh
./scripts/setup-chromium.sh
./scripts/setup-workflow.sh
control=$(cargo test --release --no-run --test positive_control --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("executable") and message["target"]["name"] == "positive_control":
        print(message["executable"])
')
others=()
for file in tests/*.rs; do
    name=$(basename "$file" .rs)
    [ "$name" = positive_control ] || others+=(--test "$name")
done

log=target/positive-control.log
"$control" --nocapture >"$log" 2>&1 &
control_pid=$!
trap 'kill "$control_pid" 2>/dev/null || true' EXIT

status=0
cargo test --release --lib --bins "${others[@]}" || status=$?
cargo test --release --doc || status=$?
control_status=0
wait "$control_pid" || control_status=$?
trap - EXIT
echo "     Ran tests/positive_control.rs beside the others ($control):"
cat "$log"
if [ "$control_status" -ne 0 ]; then
    echo "tests/positive_control.rs failed (exit $control_status)" >&2
    status=$control_status
fi
exit "$status"
