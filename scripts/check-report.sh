#!/usr/bin/env bash
# Checks that a biasprune HTML report is self-contained, leads with its verdict, fits
# 1280- and 800-pixel-wide windows and renders in headless Chromium with every plot visible:
#   scripts/check-report.sh REPORT.html [SCREENSHOT.png]
# 1. the file has no scripts, stylesheets, images or URLs from outside (only the SVG
#    namespace);
# 2. Chromium's parsed DOM (--dump-dom) holds every <svg>, each with width, height and
#    viewBox;
# 3. the first thing after the header is the verdict banner (id="verdict", outcome class
#    reduced, not-reduced, harmed, nothing or unjudged);
# 4. nothing overflows sideways at 1280 and at 800 pixels: a copy of the page with
#    scripts/report_overflow.js added lists every element that sticks out of the page's
#    content box or holds content wider than its own box, and the list must be empty;
# 5. a 1280-pixel-wide screenshot is a valid PNG of that size, the page fits in it and is
#    not blank; it is written (cropped to the page) to SCREENSHOT.png;
# 6. a second screenshot with every <svg> outlined in magenta shows one box per plot, each
#    at least 300x150 pixels with drawn content inside.
# Needs chromium (Debian package `chromium`; scripts/setup-chromium.sh installs it) and
# python3. Set REPORT_HEIGHT (default 8000) for reports taller than that. Exit status: 0 ok,
# 1 a check failed, 2 bad usage or a missing tool.
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
narrow=800
height=${REPORT_HEIGHT:-8000}

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n $browser ]] || { echo "check-report: no chromium found; install it with: scripts/setup-chromium.sh (apt-get install -y chromium)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "check-report: python3 not found" >&2; exit 2; }

# 1. Self-contained: nothing fetched from elsewhere.
outside=$(sed 's#xmlns="http://www.w3.org/2000/svg"##g' -- "$report" \
    | grep -oiE 'https?://[^" <]*|<script|<link|<img|<iframe|<object|<embed|@import|url\(' | sort -u || true)
[[ -z $outside ]] || fail "$report refers to outside resources: $(echo "$outside" | tr '\n' ' ')"
expected=$(grep -o '<svg ' -- "$report" | wc -l)
(( expected > 0 )) || fail "$report has no <svg> plots"

# chrome [--window-size=W,H] ARGS...: headless Chromium, 1280 x REPORT_HEIGHT unless given.
chrome() {
    local size="--window-size=$width,$height"
    if [[ $1 == --window-size=* ]]; then size=$1; shift; fi
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --force-device-scale-factor=1 "$size" "$@" 2>"$work/chromium.log" \
        || { cat "$work/chromium.log" >&2; fail "chromium failed ($*)"; }
}

# 2. Every <svg> survives HTML parsing with its size.
chrome --dump-dom "file://$report" >"$work/dom.html"
parsed=$(grep -o '<svg ' "$work/dom.html" | wc -l)
sized=$(grep -oE '<svg width="[0-9]+" height="[0-9]+" viewBox="0 0 [0-9]+ [0-9]+"' "$work/dom.html" | wc -l)
(( parsed == expected )) || fail "the report has $expected <svg> elements but Chromium's DOM has $parsed"
(( sized == expected )) || fail "only $sized of $expected <svg> elements have width, height and viewBox"

# 3. The verdict comes first.
outcome=$(python3 "$here/report_dom.py" verdict "$work/dom.html") || exit 1

# 4. Nothing overflows sideways at either width.
python3 "$here/report_dom.py" probe "$report" "$here/report_overflow.js" "$work/probe.html" || exit 1
for w in "$width" "$narrow"; do
    chrome --window-size="$w,2000" --dump-dom "file://$work/probe.html" >"$work/probe-$w.html"
    python3 "$here/report_dom.py" overflow "$work/probe-$w.html" "$w" || exit 1
done

# 5. The page renders, fits and is not blank.
chrome --screenshot="$work/page.png" "file://$report" >/dev/null
python3 "$here/report_png.py" page "$work/page.png" "$width" "$height" "$screenshot"

# 6. Every plot is visible: outline each <svg> in a copy and find the outlines.
sed 's#</head>#<style>svg { outline: 3px solid rgb(255, 0, 255) !important; }</style></head>#' -- "$report" >"$work/marked.html"
chrome --screenshot="$work/marked.png" "file://$work/marked.html" >/dev/null
python3 "$here/report_png.py" plots "$work/marked.png" "$expected"
echo "check-report: ok: verdict first ($outcome), no overflow at $width and $narrow px, $expected plots visible; screenshot at $screenshot"
