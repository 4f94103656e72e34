#!/usr/bin/env bash
# Installs headless Chromium (Debian package `chromium`) for scripts/check-report.sh and
# tests/report_browser.rs when no chromium is on PATH. Idempotent: returns at once when
# one is there. Under CI=true a failed install is an error; elsewhere (no apt-get, not
# root and no sudo) it says so and the browser tests skip, saying so.
set -euo pipefail

for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null; then
        echo "chromium already installed: $(command -v "$name")"
        exit 0
    fi
done

give_up() {
    if [ "${CI:-}" = "true" ]; then
        echo "error: $* (CI needs Chromium for tests/report_browser.rs)" >&2
        exit 1
    fi
    echo "warning: $*; tests/report_browser.rs will skip its browser checks" >&2
    exit 0
}

command -v apt-get >/dev/null || give_up "no chromium and no apt-get to install it with"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || give_up "no chromium, and installing it needs root or sudo"
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || give_up "apt-get update failed"
$sudo apt-get install -y -qq chromium >/dev/null || give_up "apt-get install chromium failed"
echo "chromium installed: $(command -v chromium)"
