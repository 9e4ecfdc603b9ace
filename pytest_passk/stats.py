"""Pure statistics: unbiased pass@k, coverage, flakiness and confidence intervals."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator ``1 - C(n-c, k) / C(n, k)`` in the numerically stable product form.

    NaN when ``n < k``: there are not enough samples to say anything about k.
    """
    if n < 0 or c < 0 or k < 1 or c > n:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if n < k:
        return math.nan
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given ``(n, c)`` pairs; NaN if any problem has ``n < k`` or none."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    if not values or any(math.isnan(v) for v in values):
        return math.nan
    return float(np.mean(values))


def coverage(counts: Sequence[tuple[int, int]]) -> float:
    """Fraction of problems with at least one correct sample (problems with no sample count as unsolved)."""
    if not counts:
        return math.nan
    return sum(1 for _, c in counts if c > 0) / len(counts)


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for ``successes`` of ``total`` (a problem's pass@1)."""
    if total == 0:
        return (math.nan, math.nan)
    return wilson_score(successes / total, total, z)


def mean_interval(values: Sequence[float], samples: int | None = None, z: float = 1.96) -> tuple[float, float]:
    """Interval for the mean of per-problem values in [0, 1] (pass@k, coverage) over the problems.

    A Wilson interval at the Kish effective sample size ``p(1-p) / var(mean)``: the spread between
    problems (which also holds each problem's own binomial noise from its finite n) sets the width,
    and the Wilson form keeps the interval inside [0, 1] and non-degenerate at 0 and 1. With no
    spread at all the problems count as independent trials; ``samples`` (the total drawn) caps the
    effective size, since no estimate knows more than its samples. One problem alone: its samples
    are the trials (a Wilson interval of its own pass rate).
    """
    m = len(values)
    if m == 0 or any(math.isnan(v) for v in values):
        return (math.nan, math.nan)
    p = float(np.mean(values))
    if m == 1:  # the suite is this one problem: its samples are the trials
        return wilson_score(p, float(samples or 1), z)
    var = float(np.var(values, ddof=1)) / m
    effective = p * (1 - p) / var if var > 0 else float(m)
    effective = max(1.0, min(effective, float(samples) if samples else math.inf))
    return wilson_score(p, effective, z)


def wilson_score(p: float, total: float, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion ``p`` observed over ``total`` (possibly fractional) trials."""
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def is_flaky(verdicts: Sequence[bool]) -> bool:
    """A candidate is flaky when its runs disagree."""
    return len(set(verdicts)) > 1


def candidate_passed(verdicts: Sequence[bool], flaky_counts_as_pass: bool = False) -> bool:
    """Final verdict of one candidate from its runs: all runs pass, or any if flaky ones count."""
    if not verdicts:
        return False
    if all(verdicts):
        return True
    return flaky_counts_as_pass and any(verdicts)


def curve_ks(n_min: int) -> list[int]:
    """The k at which to sample the coverage curve: powers of two up to ``n_min``, and ``n_min``."""
    if n_min < 1:
        return []
    ks = [1]
    while ks[-1] * 2 <= n_min:
        ks.append(ks[-1] * 2)
    if ks[-1] != n_min:
        ks.append(n_min)
    return ks


def coverage_curve(counts: Sequence[tuple[int, int]]) -> list[tuple[int, float]]:
    """Expected coverage with k samples per problem (the mean pass@k) for k up to the smallest n."""
    scored = [(n, c) for n, c in counts if n > 0]
    if not scored:
        return []
    return [(k, mean_pass_at_k(scored, k)) for k in curve_ks(min(n for n, _ in scored))]


def fit_power_law(points: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
    """Fit ``coverage(k) = exp(a * k**-b)`` (Brown et al., 2024) to the curve; None when it cannot be fit.

    Needs at least three points strictly between 0 and 1. Returns ``(a, b)`` with ``a < 0``, ``b > 0``.
    """
    usable = [(k, v) for k, v in points if 0.0 < v < 1.0 and not math.isnan(v)]
    if len(usable) < 3:
        return None
    from scipy.optimize import curve_fit

    ks = np.array([k for k, _ in usable], dtype=float)
    logs = np.log(np.array([v for _, v in usable]))
    try:
        (a, b), _ = curve_fit(lambda k, a, b: a * k ** (-b), ks, logs, p0=(float(logs[0]), 0.3),
                              bounds=((-np.inf, 0.0), (0.0, 5.0)), maxfev=10000)
    except (RuntimeError, ValueError):
        return None
    return float(a), float(b)


def power_law(a: float, b: float, k: float) -> float:
    return math.exp(a * k ** (-b))
