#!/usr/bin/env bash
# Checks that a biasprune HTML report is self-contained and renders in headless Chromium
# with every plot visible:
#   scripts/check-report.sh REPORT.html [SCREENSHOT.png]
# 1. the file has no scripts, stylesheets, images or URLs from outside (only the SVG
#    namespace);
# 2. Chromium's parsed DOM (--dump-dom) holds every <svg>, each with width, height and
#    viewBox;
# 3. a 1280-pixel-wide screenshot is a valid PNG of that size, the page fits in it and is
#    not blank; it is written (cropped to the page) to SCREENSHOT.png;
# 4. a second screenshot with every <svg> outlined in magenta shows one box per plot, each
#    at least 300x150 pixels with drawn content inside.
# Needs chromium (Debian package `chromium`) and python3. Set REPORT_HEIGHT (default 8000)
# for reports taller than that. Exit status: 0 ok, 1 a check failed, 2 bad usage or a
# missing tool.
set -euo pipefail

usage() { echo "usage: $0 REPORT.html [SCREENSHOT.png]" >&2; exit 2; }
fail() { echo "check-report: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || usage
report=$(realpath -- "$1") || usage
[[ -f $report ]] || { echo "check-report: $1 is not a file" >&2; exit 2; }
here=$(cd -- "$(dirname -- "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
screenshot=${2:-$work/screenshot.png}
width=1280
height=${REPORT_HEIGHT:-8000}

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n $browser ]] || { echo "check-report: no chromium found; install it with: apt-get install -y chromium" >&2; exit 2; }
command -v python3 >/dev/null || { echo "check-report: python3 not found" >&2; exit 2; }

# 1. Self-contained: nothing fetched from elsewhere.
outside=$(sed 's#xmlns="http://www.w3.org/2000/svg"##g' -- "$report" \
    | grep -oiE 'https?://[^" <]*|<script|<link|<img|<iframe|<object|<embed|@import|url\(' | sort -u || true)
[[ -z $outside ]] || fail "$report refers to outside resources: $(echo "$outside" | tr '\n' ' ')"
expected=$(grep -o '<svg ' -- "$report" | wc -l)
(( expected > 0 )) || fail "$report has no <svg> plots"

chrome() {
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --force-device-scale-factor=1 --window-size="$width,$height" "$@" 2>"$work/chromium.log" \
        || { cat "$work/chromium.log" >&2; fail "chromium failed ($*)"; }
}

# 2. Every <svg> survives HTML parsing with its size.
chrome --dump-dom "file://$report" >"$work/dom.html"
parsed=$(grep -o '<svg ' "$work/dom.html" | wc -l)
sized=$(grep -oE '<svg width="[0-9]+" height="[0-9]+" viewBox="0 0 [0-9]+ [0-9]+"' "$work/dom.html" | wc -l)
(( parsed == expected )) || fail "the report has $expected <svg> elements but Chromium's DOM has $parsed"
(( sized == expected )) || fail "only $sized of $expected <svg> elements have width, height and viewBox"

# 3. The page renders, fits and is not blank.
chrome --screenshot="$work/page.png" "file://$report" >/dev/null
python3 "$here/report_png.py" page "$work/page.png" "$width" "$height" "$screenshot"

# 4. Every plot is visible: outline each <svg> in a copy and find the outlines.
sed 's#</head>#<style>svg { outline: 3px solid rgb(255, 0, 255) !important; }</style></head>#' -- "$report" >"$work/marked.html"
chrome --screenshot="$work/marked.png" "file://$work/marked.html" >/dev/null
python3 "$here/report_png.py" plots "$work/marked.png" "$expected"
echo "check-report: ok: $expected plots visible; screenshot at $screenshot"
