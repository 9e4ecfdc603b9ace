"""How well pass@K is extrapolated far beyond n, and how often the 95% intervals hold the truth.

Synthetic suites of HumanEval's size: each problem's success probability p is drawn from a known
Beta(a, b), each problem gets n samples (binomial), and pass@K for K = 1000 is predicted

- by the beta-binomial fit of pytest_passk.extrapolate (the report's estimator),
- by the least-squares fit of ``exp(a * k**-b)`` to the aggregate coverage curve (Brown et al., 2024),
- by the beta-binomial posterior at the *true* (a, b) (the oracle: the error no estimator of (a, b)
  can remove, the randomness of the suite's own p given its counts), and, for scale,
- the Cramer-Rao bound: the smallest error an unbiased estimator of the population's pass@K can
  have with this many problems and samples (delta method on the Beta-binomial's Fisher information,
  as a mean absolute error of a normal error, ``sd * sqrt(2/pi)``).

Two truths: the suite's own (the mean over its problems of ``1 - (1-p)**K``, what a user of this
suite will see), and the population's (``1 - B(a, b+K)/B(a, b)``, a problem drawn from the Beta).
Also measured: how often each 95% interval (extrapolated pass@K, observed coverage, pass@1,
pass@10) holds each truth, and how wide it is; and, over a grid of true Betas at n = 20, where the
least-squares fit wins and where it loses.

    python benchmarks/bench_extrapolation.py [--seeds 300] [--observed-seeds 2000] [--sweep-seeds 100]

Prints Markdown tables (the ones in the README). Seeds are 0..seeds-1 (numpy default_rng(seed)).
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
SWEEP_A = [0.1, 0.2, 0.3, 0.5, 0.8]
SWEEP_B = [1.0, 3.0, 10.0, 30.0]


def cramer_rao_mae(a: float, b: float, n: int, problems: int, K: int) -> float:
    """Asymptotic mean absolute error of an efficient unbiased estimator of ``1 - B(a, b+K)/B(a, b)``
    from ``problems`` Beta-binomial(n, a, b) counts: delta method on the inverse Fisher information."""
    from scipy.special import betaln, digamma
    from scipy.stats import betabinom

    c = np.arange(n + 1)
    pmf = betabinom.pmf(c, n, a, b)
    common = digamma(a + b) - digamma(a + b + n)
    score = np.stack([a * (digamma(a + c) - digamma(a) + common), b * (digamma(b + n - c) - digamma(b) + common)])
    info = problems * (score * pmf) @ score.T  # in (log a, log b)

    def q(la: float, lb: float) -> float:
        return float(-np.expm1(betaln(np.exp(la), np.exp(lb) + K) - betaln(np.exp(la), np.exp(lb))))

    h, la, lb = 1e-5, math.log(a), math.log(b)
    grad = np.array([(q(la + h, lb) - q(la - h, lb)) / (2 * h), (q(la, lb + h) - q(la, lb - h)) / (2 * h)])
    return float(np.sqrt(grad @ np.linalg.solve(info, grad)) * math.sqrt(2 / math.pi))


def _suite(seed: int, a: float, b: float, n: int, problems: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, problems)
    return p, rng.binomial(n, p)


def _true_pass(p: np.ndarray, k: float) -> float:
    return float(np.mean(-np.expm1(k * np.log1p(-p))))


def _mae(err: np.ndarray) -> tuple[float, float]:
    """Mean absolute error and its standard error over the seeds."""
    e = np.abs(err[~np.isnan(err)])
    return float(e.mean()), float(e.std(ddof=1) / math.sqrt(len(e)))


def predictions(a: float, b: float, n: int, problems: int, K: int, seeds: int, bootstrap: int) -> dict:
    population = extrapolate.population_pass_at(a, b, K)
    rows = []
    for seed in range(seeds):
        p, c = _suite(seed, a, b, n, problems)
        counts = [(n, int(x)) for x in c]
        suite = _true_pass(p, K)
        ls = stats.fit_power_law(stats.coverage_curve(counts))
        ls_value = stats.power_law(*ls, K) if ls else math.nan
        if extrapolate.why_not(counts) is not None:
            rows.append((suite, math.nan, ls_value, math.nan, math.nan, math.nan, math.nan, math.nan))
            continue
        fit = extrapolate.fit(counts, bootstrap=bootstrap, seed=seed)
        pred = fit.predict(K)
        boot = np.array([extrapolate._suite_value(ra, rb, fit.groups, w, K) for ra, rb, w in fit.replicates])
        plain_low, plain_high = np.quantile(boot, [0.025, 0.975])
        oracle = extrapolate._suite_value(a, b, fit.groups, fit.weights, K)
        rows.append((suite, pred.value, ls_value, oracle, pred.low, pred.high, plain_low, plain_high))
    r = np.array(rows, dtype=float)
    suite, bb, ls_, oracle, low, high, plow, phigh = r.T
    ok = ~np.isnan(bb)
    out = {"population": population, "no_fit": int((~ok).sum()), "ls_failed": int(np.isnan(ls_).sum()),
           "cr": cramer_rao_mae(a, b, n, problems, K)}
    for name, truth in (("suite", suite), ("pop", np.full_like(suite, population))):
        out[f"bb_{name}"] = _mae(bb - truth)
        out[f"bb_bias_{name}"] = float(np.nanmean(bb - truth))
        out[f"ls_{name}"] = _mae(ls_ - truth)
        out[f"ls_bias_{name}"] = float(np.nanmean(ls_ - truth))
        out[f"oracle_{name}"] = _mae(oracle - truth)
        both = ok & ~np.isnan(ls_)
        diff = np.abs(bb - truth)[both] - np.abs(ls_ - truth)[both]
        out[f"diff_{name}"] = (float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff))))
        out[f"closer_{name}"] = float(np.mean(diff < 0))
        out[f"held_{name}"] = float(np.mean(((low <= truth) & (truth <= high))[ok]))
        out[f"plain_{name}"] = float(np.mean(((plow <= truth) & (truth <= phigh))[ok]))
    out["width"] = float(np.mean((high - low)[ok]))
    out["plain_width"] = float(np.mean((phigh - plow)[ok]))
    out["seeds"] = int(ok.sum())
    return out


def observed(a: float, b: float, n: int, problems: int, seeds: int) -> dict:
    """How often the observed coverage, pass@1 and pass@10 intervals hold the population's and the
    suite's true values, and their mean width."""
    held = {(m, t): 0 for m in ("coverage", "pass@1", "pass@10") for t in ("pop", "suite")}
    width = {m: 0.0 for m in ("coverage", "pass@1", "pass@10")}
    for seed in range(seeds):
        p, c = _suite(10_000 + seed, a, b, n, problems)
        for name, k in (("coverage", n), ("pass@1", 1), ("pass@10", 10)):
            if name == "coverage":
                low, high = stats.mean_interval([1.0 if x else 0.0 for x in c])
            else:
                low, high = stats.mean_interval([stats.pass_at_k(n, int(x), k) for x in c], n * problems)
            held[name, "pop"] += low <= extrapolate.population_pass_at(a, b, k) <= high
            held[name, "suite"] += low <= _true_pass(p, k) <= high
            width[name] += high - low
    return {**{key: v / seeds for key, v in held.items()}, **{m: w / seeds for m, w in width.items()}}


def sweep(n: int, problems: int, K: int, seeds: int) -> dict[tuple[float, float], tuple[float, float, float, float]]:
    """Point predictions only (no bootstrap): MAE against the suite's truth for both estimators."""
    out = {}
    for a in SWEEP_A:
        for b in SWEEP_B:
            bb, ls_ = [], []
            for seed in range(seeds):
                p, c = _suite(20_000 + seed, a, b, n, problems)
                counts = [(n, int(x)) for x in c]
                truth = _true_pass(p, K)
                fit = extrapolate.fit(counts, bootstrap=0) if extrapolate.why_not(counts) is None else None
                bb.append((fit.suite_pass_at(K) if fit else math.nan) - truth)
                ls = stats.fit_power_law(stats.coverage_curve(counts))
                ls_.append((stats.power_law(*ls, K) if ls else math.nan) - truth)
            bb_a, ls_a = np.array(bb), np.array(ls_)
            out[a, b] = (_mae(bb_a)[0], _mae(ls_a)[0], float(np.nanmean(ls_a)), extrapolate.population_pass_at(a, b, K))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=300)
    ap.add_argument("--observed-seeds", type=int, default=2000)
    ap.add_argument("--sweep-seeds", type=int, default=100)
    ap.add_argument("--problems", type=int, default=164)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--bootstrap", type=int, default=extrapolate.BOOTSTRAP)
    args = ap.parse_args()
    K, t0 = args.k, time.time()
    print(f"{args.problems} problems per suite; seeds 0..{args.seeds - 1} per row; predicting pass@{K}; "
          f"{args.bootstrap} bootstrap refits per suite.")
    print()
    print(f"Prediction error against the suite's own true pass@{K} (MAE ± its standard error; bias in brackets):")
    print()
    print(f"| true Beta(a, b) | n | pass@{K} (population) | beta-binomial | least-squares | difference (bb - ls) "
          f"| beta-binomial closer | oracle (true a, b) | beta-binomial vs the population's value | least-squares vs the population's value | Cramer-Rao bound (population) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    results = {}
    for a, b in TRUTHS:
        for n in NS:
            r = results[a, b, n] = predictions(a, b, n, args.problems, K, args.seeds, args.bootstrap)
            failed = f", {r['ls_failed']} no fit" if r["ls_failed"] else ""
            print(f"| ({a:g}, {b:g}) | {n} | {r['population']:.3f} "
                  f"| {r['bb_suite'][0]:.4f} ± {r['bb_suite'][1]:.4f} ({r['bb_bias_suite']:+.3f}) "
                  f"| {r['ls_suite'][0]:.4f} ± {r['ls_suite'][1]:.4f} ({r['ls_bias_suite']:+.3f}{failed}) "
                  f"| {r['diff_suite'][0]:+.4f} ± {r['diff_suite'][1]:.4f} | {r['closer_suite']:.0%} "
                  f"| {r['oracle_suite'][0]:.4f} | {r['bb_pop'][0]:.4f} ({r['bb_bias_pop']:+.3f}) "
                  f"| {r['ls_pop'][0]:.4f} ({r['ls_bias_pop']:+.3f}) | {r['cr']:.4f} |", flush=True)
    print()
    print(f"How often the 95% interval of the predicted pass@{K} holds the truth (mean width):")
    print()
    print("| true Beta(a, b) | n | reported (1st-99th percentile): suite's truth | population's | width "
          "| plain 2.5th-97.5th: suite's truth | population's | width |")
    print("|---|---|---|---|---|---|---|---|")
    for (a, b, n), r in results.items():
        print(f"| ({a:g}, {b:g}) | {n} | {r['held_suite']:.1%} | {r['held_pop']:.1%} | {r['width']:.3f} "
              f"| {r['plain_suite']:.1%} | {r['plain_pop']:.1%} | {r['plain_width']:.3f} |", flush=True)
    print()
    print(f"Observed intervals ({args.observed_seeds} suites per row, seeds 10000..): how often they hold "
          f"the population's / the suite's true value (mean width):")
    print()
    print("| true Beta(a, b) | n | coverage | pass@1 | pass@10 |")
    print("|---|---|---|---|---|")
    for a, b in TRUTHS:
        for n in NS:
            o = observed(a, b, n, args.problems, args.observed_seeds)
            cells = " | ".join(f"{o[m, 'pop']:.1%} / {o[m, 'suite']:.1%} ({o[m]:.3f})" for m in ("coverage", "pass@1", "pass@10"))
            print(f"| ({a:g}, {b:g}) | {n} | {cells} |", flush=True)
    print()
    n = 20
    print(f"Over a grid of true Betas, n = {n}, {args.sweep_seeds} suites each (seeds 20000..): MAE against the "
          f"suite's pass@{K}, beta-binomial / least-squares (least-squares bias):")
    print()
    sw = sweep(n, args.problems, K, args.sweep_seeds)
    print("| a \\ b | " + " | ".join(f"{b:g}" for b in SWEEP_B) + " |")
    print("|---|" + "---|" * len(SWEEP_B))
    for a in SWEEP_A:
        cells = []
        for b in SWEEP_B:
            bb, ls_, bias, _ = sw[a, b]
            mark = "**" if bb < ls_ else ""
            cells.append(f"{mark}{bb:.3f}{mark} / {ls_:.3f} ({bias:+.3f})")
        print(f"| {a:g} | " + " | ".join(cells) + " |", flush=True)
    wins = sum(1 for v in sw.values() if v[0] < v[1])
    print()
    print(f"The beta-binomial has the smaller MAE in {wins} of {len(sw)} cells (bold).")
    print()
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
