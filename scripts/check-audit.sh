#!/usr/bin/env bash
# Checks that a biasprune audit page is self-contained, agrees with the audit.json beside
# it, and renders in headless Chromium with every heatmap visible:
#   scripts/check-audit.sh AUDIT.html [SCREENSHOT.png]
# 1. the file has no scripts, stylesheets, images or URLs from outside (only the SVG
#    namespace);
# 2. Chromium's parsed DOM (--dump-dom) holds every <svg>, each with width, height and
#    viewBox, one heatmap per context level of audit.json's cells, one ranked-table row per
#    cell, and one highlighted row and one `biasprune prune` command per flagged cell;
# 3. a 1280-pixel-wide screenshot is a valid PNG of that size, the page fits in it and is
#    not blank; it is written (cropped to the page) to SCREENSHOT.png;
# 4. a second screenshot with every <svg> outlined in magenta shows one box per heatmap,
#    each at least 300x150 pixels with drawn content inside.
# Needs chromium (Debian package `chromium`) and python3; audit.json must sit beside the
# page. Set AUDIT_HEIGHT (default 8000) for pages taller than that. Exit status: 0 ok,
# 1 a check failed, 2 bad usage or a missing tool.
set -euo pipefail

usage() { echo "usage: $0 AUDIT.html [SCREENSHOT.png]" >&2; exit 2; }
fail() { echo "check-audit: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || usage
page=$(realpath -- "$1") || usage
[[ -f $page ]] || { echo "check-audit: $1 is not a file" >&2; exit 2; }
json=$(dirname -- "$page")/audit.json
[[ -f $json ]] || { echo "check-audit: no audit.json beside $1" >&2; exit 2; }
here=$(cd -- "$(dirname -- "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
screenshot=${2:-$work/screenshot.png}
width=1280
height=${AUDIT_HEIGHT:-8000}

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n $browser ]] || { echo "check-audit: no chromium found; install it with: apt-get install -y chromium" >&2; exit 2; }
command -v python3 >/dev/null || { echo "check-audit: python3 not found" >&2; exit 2; }

# 1. Self-contained: nothing fetched from elsewhere.
outside=$(sed 's#xmlns="http://www.w3.org/2000/svg"##g' -- "$page" \
    | grep -oiE 'https?://[^" <]*|<script|<link|<img|<iframe|<object|<embed|@import|url\(' | sort -u || true)
[[ -z $outside ]] || fail "$page refers to outside resources: $(echo "$outside" | tr '\n' ' ')"

# What audit.json says the page must show: heatmaps (one per context), cells, flagged cells.
read -r panels cells flagged < <(python3 -c '
import json, sys
audit = json.load(open(sys.argv[1]))
cells = audit["cells"]
print(len({c["context"] for c in cells}), len(cells), sum(c["finding"] == "disparity" for c in cells))
' "$json") || fail "$json is not an audit.json"
(( panels > 0 )) || fail "$json has no cells"

chrome() {
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --force-device-scale-factor=1 --window-size="$width,$height" "$@" 2>"$work/chromium.log" \
        || { cat "$work/chromium.log" >&2; fail "chromium failed ($*)"; }
}

# 2. The parsed page holds the heatmaps with their sizes, the rows and the commands.
count() { grep -oE "$1" "$work/dom.html" | wc -l || true; }
chrome --dump-dom "file://$page" >"$work/dom.html"
parsed=$(count '<svg ')
sized=$(count '<svg width="[0-9]+" height="[0-9]+" viewBox="0 0 [0-9]+ [0-9]+"')
rows=$(count '<tr class="cell( disparity)?">')
marked=$(count '<tr class="cell disparity">')
commands=$(count '<pre>biasprune prune ')
(( parsed == panels )) || fail "audit.json has cells at $panels context level(s) but Chromium's DOM has $parsed heatmaps"
(( sized == panels )) || fail "only $sized of $panels heatmaps have width, height and viewBox"
(( rows == cells )) || fail "audit.json has $cells cells but the ranked table has $rows rows"
(( marked == flagged )) || fail "audit.json flags $flagged cells but the table highlights $marked"
(( commands == flagged )) || fail "audit.json flags $flagged cells but the page gives $commands prune commands"

# 3. The page renders, fits and is not blank.
chrome --screenshot="$work/page.png" "file://$page" >/dev/null
python3 "$here/report_png.py" page "$work/page.png" "$width" "$height" "$screenshot"

# 4. Every heatmap is visible: outline each <svg> in a copy and find the outlines.
sed 's#</head>#<style>svg { outline: 3px solid rgb(255, 0, 255) !important; }</style></head>#' -- "$page" >"$work/marked.html"
chrome --screenshot="$work/marked.png" "file://$work/marked.html" >/dev/null
python3 "$here/report_png.py" plots "$work/marked.png" "$panels"
echo "check-audit: ok: $panels heatmap(s) visible, $cells cells, $flagged flagged; screenshot at $screenshot"
