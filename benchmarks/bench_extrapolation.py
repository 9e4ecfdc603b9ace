"""How well pass@K is extrapolated far beyond n, and how often the 95% intervals hold the truth.

Synthetic suites of HumanEval's size: each problem's success probability p is drawn from a known
Beta(a, b), each problem gets n samples (binomial), and pass@K for K = 1000 is predicted

- by the beta-binomial fit of pytest_passk.extrapolate (the report's estimator), and
- by the least-squares fit of ``exp(a * k**-b)`` to the aggregate coverage curve (Brown et al., 2024),

and compared with the truth: the suite's true expected pass@K, the mean over its problems of
``1 - (1-p)**K``. Also measured: how often each 95% interval (extrapolated pass@K, observed coverage,
pass@1, pass@10) holds the true value, both the suite's own (the mean over its problems) and the
population's (``1 - B(a, b+k)/B(a, b)``, a problem drawn from the same Beta).

    python benchmarks/bench_extrapolation.py [--seeds 200] [--problems 164] [--k 1000]

Prints a Markdown table (the one in the README).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_passk import extrapolate, stats  # noqa: E402

#: True distributions: a few hard problems with a long left tail (a < 1) to a mostly-easy suite.
TRUTHS = [(0.3, 3.0), (0.15, 1.5), (0.5, 20.0)]
NS = [10, 20, 50]


def run(a: float, b: float, n: int, problems: int, K: int, seeds: int, bootstrap: int) -> dict[str, float]:
    bb_err, ls_err, covered, covered_pop, width, plain = [], [], [], [], [], []
    obs_cov: dict[str, list[bool]] = {"coverage": [], "pass@1": [], "pass@10": []}
    obs_pop: dict[str, list[bool]] = {"coverage": [], "pass@1": [], "pass@10": []}
    population = extrapolate.population_pass_at(a, b, K)
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        p = rng.beta(a, b, problems)
        c = rng.binomial(n, p)
        counts = [(n, int(x)) for x in c]
        truth = float(np.mean(-np.expm1(K * np.log1p(-p))))
        if extrapolate.why_not(counts) is None:
            fit = extrapolate.fit(counts, bootstrap=bootstrap, seed=seed)
            pred = fit.predict(K)
            bb_err.append(pred.value - truth)
            covered.append(pred.low <= truth <= pred.high)
            boot = np.array([extrapolate._suite_value(ra, rb, fit.groups, w, K) for ra, rb, w in fit.replicates])
            plain_low, plain_high = np.quantile(boot, [0.025, 0.975])
            plain.append(plain_low <= truth <= plain_high)
            covered_pop.append(pred.low <= population <= pred.high)
            width.append(pred.high - pred.low)
        ls = stats.fit_power_law(stats.coverage_curve(counts))
        ls_err.append((stats.power_law(*ls, K) if ls else math.nan) - truth)
        # the observed metrics' intervals, against the suite's true expected values
        for name, k in (("coverage", n), ("pass@1", 1), ("pass@10", 10)):
            values = [stats.pass_at_k(n, x, k) for x in c]
            low, high = stats.mean_interval(values, n * problems) if name != "coverage" else \
                stats.mean_interval([1.0 if x else 0.0 for x in c])
            true_k = float(np.mean(-np.expm1(k * np.log1p(-p))))
            obs_cov[name].append(low <= true_k <= high)
            pop_k = extrapolate.population_pass_at(a, b, k)
            obs_pop[name].append(low <= pop_k <= high)
    bb, ls_ = np.array(bb_err), np.array(ls_err)
    return {
        "truth": population,
        "bb_mae": float(np.mean(np.abs(bb))), "bb_bias": float(np.mean(bb)),
        "ls_mae": float(np.nanmean(np.abs(ls_))), "ls_bias": float(np.nanmean(ls_)),
        "ls_failed": int(np.isnan(ls_).sum()),
        "bb_closer": float(np.mean(np.abs(bb) < np.abs(ls_[: len(bb)]))) if len(bb) == len(ls_) else math.nan,
        "covered": float(np.mean(covered)), "covered_pop": float(np.mean(covered_pop)),
        "plain": float(np.mean(plain)),
        "width": float(np.mean(width)),
        **{f"cov_{k}": float(np.mean(v)) for k, v in obs_cov.items()},
        **{f"pop_{k}": float(np.mean(v)) for k, v in obs_pop.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--problems", type=int, default=164)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--bootstrap", type=int, default=extrapolate.BOOTSTRAP)
    args = ap.parse_args()
    t0 = time.time()
    print(f"{args.problems} problems per suite, {args.seeds} suites (seeds) per row, predicting pass@{args.k}; "
          f"errors are against each suite's true expected pass@{args.k}")
    print()
    print(f"| true Beta(a, b) | n | pass@{args.k} (population) | beta-binomial MAE (bias) | least-squares MAE (bias) "
          f"| beta-binomial closer | its 95% interval holds the suite's / the population's truth (mean width) "
          f"| (the plain 2.5-97.5 percentile interval, suite's) "
          f"| coverage / pass@1 / pass@10 intervals hold the suite's truth | ... the population's |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for a, b in TRUTHS:
        for n in NS:
            r = run(a, b, n, args.problems, args.k, args.seeds, args.bootstrap)
            failed = f", {r['ls_failed']} no fit" if r["ls_failed"] else ""
            print(f"| ({a:g}, {b:g}) | {n} | {r['truth']:.3f} | {r['bb_mae']:.3f} ({r['bb_bias']:+.3f}) | "
                  f"{r['ls_mae']:.3f} ({r['ls_bias']:+.3f}{failed}) | {r['bb_closer']:.0%} | "
                  f"{r['covered']:.0%} / {r['covered_pop']:.0%} ({r['width']:.3f}) | {r['plain']:.0%} | "
                  f"{r['cov_coverage']:.0%} / {r['cov_pass@1']:.0%} / {r['cov_pass@10']:.0%} | "
                  f"{r['pop_coverage']:.0%} / {r['pop_pass@1']:.0%} / {r['pop_pass@10']:.0%} |", flush=True)
    print()
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
