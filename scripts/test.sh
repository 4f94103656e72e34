#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need, then runs
# every test with optimisations. Safe to rerun; each setup step is a no-op when done.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-model.sh
./scripts/setup-model-signing.sh
./scripts/setup-chromium.sh
./scripts/setup-workflow.sh
cargo test --release
