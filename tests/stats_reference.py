#!/usr/bin/env python3
"""Independent reference for biasprune's clustered statistics (standard library only).

Reads JSON on stdin:
  {"majority": [[v or null, ...], ...], "minority": [...],   one list per name, by sample
   "resamples": 20000, "seed": 1, "confidence": 0.95}
and writes JSON on stdout with the SMD (majority minus minority, ddof 1), the exact name
permutation test, the ICC / design effect / effective size / minimum detectable SMD, and
percentile CIs of the SMD from a cluster bootstrap and a naive per-answer bootstrap
(Python's own `random` generator, so only the distributions agree with biasprune's).
"""

import itertools
import json
import math
import random
import sys


def present(cluster):
    return [v for v in cluster if v is not None]


def mean(values):
    return sum(values) / len(values)


def variance(values):
    m = mean(values)
    return sum((v - m) ** 2 for v in values) / (len(values) - 1)


def smd(a, b):
    """(mean a - mean b) / sqrt((var a + var b) / 2); None when undefined."""
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = math.sqrt((variance(a) + variance(b)) / 2)
    if pooled == 0:
        return None
    return (mean(a) - mean(b)) / pooled


def quantile(sorted_values, q):
    """numpy's default linear interpolation between order statistics."""
    position = q * (len(sorted_values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (position - below) * (sorted_values[above] - sorted_values[below])


def interval(estimates, resamples, confidence):
    if not estimates or 2 * len(estimates) < resamples:
        return None
    estimates = sorted(estimates)
    tail = (1 - confidence) / 2
    return [quantile(estimates, tail), quantile(estimates, 1 - tail)]


def permutation_test(majority, minority):
    """Exact two-sided test on the difference of means of per-name means."""
    a = [mean(present(c)) for c in majority if present(c)]
    b = [mean(present(c)) for c in minority if present(c)]
    values = a + b
    k, n = len(a), len(values)
    total = sum(values)
    observed = sum(a) / k - sum(b) / (n - k)
    count = relabelings = 0
    for chosen in itertools.combinations(values, k):
        chosen_sum = sum(chosen)
        statistic = chosen_sum / k - (total - chosen_sum) / (n - k)
        count += abs(statistic) >= abs(observed) - 1e-12
        relabelings += 1
    assert relabelings == math.comb(n, k)
    return {"statistic": observed, "p_value": count / relabelings, "permutations": relabelings}


def power(majority, minority):
    """One-way ANOVA ICC over names, pooled over groups with group means removed."""
    within = between = adjusted = 0.0
    names = values = 0
    sizes = []
    for group in (majority, minority):
        clusters = [present(c) for c in group if present(c)]
        group_values = [v for c in clusters for v in c]
        group_mean = mean(group_values)
        for c in clusters:
            m = mean(c)
            within += sum((v - m) ** 2 for v in c)
            between += len(c) * (m - group_mean) ** 2
        adjusted += len(group_values) - sum(len(c) ** 2 for c in clusters) / len(group_values)
        names += len(clusters)
        values += len(group_values)
        sizes.append(len(group_values))
    ms_within = within / (values - names)
    ms_between = between / (names - 2)
    n0 = adjusted / (names - 2)
    icc = (ms_between - ms_within) / (ms_between + (n0 - 1) * ms_within)
    icc = min(1.0, max(0.0, icc))
    design_effect = 1 + (values / names - 1) * icc
    effective = min(sizes) / design_effect
    return {
        "icc": icc,
        "design_effect": design_effect,
        "effective_per_group": effective,
        "minimum_detectable_smd": 2.8 * math.sqrt(2 / effective),
    }


def cluster_draw(rng, clusters):
    out = []
    for name in rng.choices(clusters, k=len(clusters)):
        out.extend(v for v in rng.choices(name, k=len(name)) if v is not None)
    return out


def cluster_ci(rng, majority, minority, resamples, confidence):
    estimates = []
    for _ in range(resamples):
        estimate = smd(cluster_draw(rng, majority), cluster_draw(rng, minority))
        if estimate is not None:
            estimates.append(estimate)
    return interval(estimates, resamples, confidence)


def naive_ci(rng, a, b, resamples, confidence):
    estimates = []
    for _ in range(resamples):
        estimate = smd(rng.choices(a, k=len(a)), rng.choices(b, k=len(b)))
        if estimate is not None:
            estimates.append(estimate)
    return interval(estimates, resamples, confidence)


def main():
    data = json.load(sys.stdin)
    majority, minority = data["majority"], data["minority"]
    resamples, confidence = data["resamples"], data["confidence"]
    a = [v for c in majority for v in present(c)]
    b = [v for c in minority for v in present(c)]
    rng = random.Random(data["seed"])
    result = {
        "smd": smd(a, b),
        "permutation": permutation_test(majority, minority),
        "power": power(majority, minority),
        "cluster_ci": cluster_ci(rng, majority, minority, resamples, confidence),
        "naive_ci": naive_ci(rng, a, b, resamples, confidence),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
