#!/usr/bin/env python3
"""Independent reference for biasprune's multiple-testing adjustments (standard library only).

Reads JSON on stdin: {"families": [[p, ...], ...]} and writes JSON on stdout:
{"holm": [[adjusted p, ...], ...], "bh": [[...], ...]}, each in the input order.

Computed straight from the textbook definitions, one p-value at a time (quadratic, no
running maximum or minimum), with ranks taken among the sorted values:
  Holm (1979): adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))
  Benjamini-Hochberg (1995): adj_(i) = min_{j >= i} min(1, m p_(j) / j)
"""

import json
import sys


def holm(ps):
    m = len(ps)
    ranked = sorted(ps)
    out = []
    for p in ps:
        i = ranked.index(p) + 1  # first rank of this value; ties share it
        i += ranked.count(p) - 1  # ties: the largest rank gives the same maximum
        out.append(max(min(1.0, (m - j + 1) * ranked[j - 1]) for j in range(1, i + 1)))
    return out


def bh(ps):
    m = len(ps)
    ranked = sorted(ps)
    out = []
    for p in ps:
        i = ranked.index(p) + 1  # the smallest rank of a tie gives the same minimum
        out.append(min(min(1.0, m * ranked[j - 1] / j) for j in range(i, m + 1)))
    return out


def main():
    families = json.load(sys.stdin)["families"]
    json.dump({"holm": [holm(f) for f in families], "bh": [bh(f) for f in families]}, sys.stdout)


if __name__ == "__main__":
    main()
