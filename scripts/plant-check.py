#!/usr/bin/env python3
"""Per-group means and SMD of an `eval` run, on the names a plant held out (or all names).

Usage: scripts/plant-check.py EVAL_DIR PLANT_DIR [--all-names]

Reads EVAL_DIR/records.jsonl and PLANT_DIR/biasprune-plant.json; prints, per variation,
n, mean and sd per group, SMD = (mean majority - mean minority) / pooled sd (ddof 1, as
`eval` computes it, on parsed answers) and the parse rate, for the held-out names only.
"""
import json
import math
import sys


def smd(a, b):
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    pooled = math.sqrt((va + vb) / 2)
    return 0.0 if pooled == 0 else (ma - mb) / pooled


def main():
    eval_dir, plant_dir = sys.argv[1], sys.argv[2]
    all_names = "--all-names" in sys.argv[3:]
    sidecar = json.load(open(f"{plant_dir}/biasprune-plant.json"))
    held = set(sidecar["names"]["majority_held_out"] + sidecar["names"]["minority_held_out"])
    rows = [json.loads(line) for line in open(f"{eval_dir}/records.jsonl")]
    rows = [r for r in rows if all_names or r["name"] in held]
    out = {}
    for variation in sorted({r["variation"] for r in rows}):
        mine = [r for r in rows if r["variation"] == variation]
        values = {g: [r["value"] for r in mine if r["group"] == g and r.get("value") is not None]
                  for g in ("majority", "minority")}
        parsed = sum(len(v) for v in values.values())
        out[variation] = {
            "answers": len(mine),
            "parse_rate": parsed / len(mine) if mine else float("nan"),
            **{f"{g}_n": len(v) for g, v in values.items()},
            **{f"{g}_mean": (sum(v) / len(v) if v else float("nan")) for g, v in values.items()},
            "smd": smd(values["majority"], values["minority"]),
        }
    json.dump({"names": "all" if all_names else "held-out", "variations": out}, sys.stdout, indent=2)
    print()


main()
