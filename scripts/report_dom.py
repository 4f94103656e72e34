#!/usr/bin/env python3
"""Reads a biasprune report's HTML for scripts/check-report.sh (stdlib only).

  report_dom.py verdict DOM.html
      Prints the verdict banner's outcome class when it is the first thing after the
      page's </header> (<section class="verdict OUTCOME" id="verdict">); fails otherwise.
  report_dom.py probe REPORT.html PROBE.js OUT.html
      Writes a copy of the report with PROBE.js run at the end of its <body>.
  report_dom.py overflow DOM.html WIDTH
      Reads what the overflow probe left in Chromium's DOM of a WIDTH-pixel-wide window;
      fails with its list of offenders unless it says "ok".

Exit status 0 when the check passes, 1 with a message on stderr when it fails, 2 on bad usage.
"""

import html
import re
import sys

OUTCOMES = ("reduced", "not-reduced", "harmed", "nothing", "unjudged")


class CheckFailed(Exception):
    """A check failed; the message says what was expected and what was found."""


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def verdict(dom_path):
    dom = read(dom_path)
    if "</header>" not in dom:
        raise CheckFailed("the page has no </header>, so nothing can come first after it")
    after = dom.split("</header>", 1)[1]
    match = re.match(r'\s*<section class="verdict ([a-z-]+)" id="verdict">', after)
    if match is None:
        found = re.sub(r"\s+", " ", after.strip())[:80]
        raise CheckFailed(f'expected the verdict banner (<section class="verdict OUTCOME" id="verdict">) right after the header, found: {found}')
    if match.group(1) not in OUTCOMES:
        raise CheckFailed(f"the verdict banner's outcome class is {match.group(1)!r}, expected one of {', '.join(OUTCOMES)}")
    print(match.group(1))


def probe(report_path, script_path, out_path):
    page = read(report_path)
    if page.count("</body>") != 1:
        raise CheckFailed(f"{report_path}: expected exactly one </body>, found {page.count('</body>')}")
    with open(out_path, "w", encoding="utf-8") as out:
        out.write(page.replace("</body>", "<script>\n" + read(script_path) + "</script>\n</body>"))


def overflow(dom_path, width):
    results = re.findall(r'<pre id="overflow-result">(.*?)</pre>', read(dom_path), re.S)
    if not results:
        raise CheckFailed("the overflow probe left no result in the DOM (did Chromium run its script?)")
    found = html.unescape(results[-1])
    if found != "ok":
        raise CheckFailed(f"horizontal overflow in a {width}-pixel-wide window:\n{found}")


def main(argv):
    commands = {"verdict": (verdict, 1), "probe": (probe, 3), "overflow": (overflow, 2)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        commands[argv[1]][0](*argv[2:])
    except CheckFailed as e:
        print(f"check-report: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
