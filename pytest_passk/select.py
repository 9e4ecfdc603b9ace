"""Selection without a verifier: majority voting over a problem's samples (maj@k).

Samples are grouped by what they do (the values a function candidate returned to the test's
calls, or the final answer an answer-style problem extracts from the text). maj@k is the chance
that, among k samples drawn without replacement from the n, the largest group is a correct one,
ties broken uniformly at random; samples without an answer take up draws but never win. The
precision gap (coverage minus maj@k) says how much a verifier is worth over voting.

Exact, by generating functions: the draw is multivariate hypergeometric, so the number of ways a
group g wins with j samples while every other group has fewer, or j (a tie, shared), is a
coefficient of a product of per-group polynomials. A tie among t others is worth 1/(t+1) =
integral of u**t over [0, 1], done by Gauss-Legendre quadrature, exact for the degrees involved.
Groups of one size share one polynomial, raised to a power. Pure functions.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np


def groups_of(keys: Sequence[Hashable | None], passed: Sequence[bool]) -> tuple[list[tuple[int, bool]], int]:
    """``(size, correct)`` for each group of samples with one key, and the number of samples
    without a key (``None``). A group is correct when most of its samples passed."""
    sizes: Counter[Hashable] = Counter()
    good: Counter[Hashable] = Counter()
    abstain = 0
    for key, ok in zip(keys, passed):
        if key is None:
            abstain += 1
            continue
        sizes[key] += 1
        good[key] += bool(ok)
    return [(m, 2 * good[key] >= m) for key, m in sizes.items()], abstain


def _log_comb(n: int, x: np.ndarray | int) -> np.ndarray:
    from scipy.special import gammaln

    x = np.asarray(x, dtype=float)
    return gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)


def _mul(p: np.ndarray, q: np.ndarray, degree: int) -> np.ndarray:
    return np.convolve(p, q)[: degree + 1]


def _power(p: np.ndarray, e: int, degree: int) -> np.ndarray:
    out = np.ones(1)
    while e:
        if e & 1:
            out = _mul(out, p, degree)
        e >>= 1
        if e:
            p = _mul(p, p, degree)
    return out


def maj_at_k(groups: Sequence[tuple[int, bool]], abstain: int, k: int) -> float:
    """maj@k of one problem: ``groups`` as ``(size, correct)``, ``abstain`` samples without an
    answer. NaN when there are fewer than k samples."""
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    n = sum(m for m, _ in groups) + abstain
    if n < k:
        return math.nan
    correct_sizes = Counter(m for m, ok in groups if ok)
    if not correct_sizes:
        return 0.0
    if k == n:  # every sample drawn: the largest group wins, ties shared
        top = max((m for m, _ in groups), default=0)
        tied = [ok for m, ok in groups if m == top]
        return sum(tied) / len(tied) if tied else 0.0
    count = Counter(m for m, _ in groups)
    # Scale z by 1/t so that the coefficient of z**k (C(n, k) in total) stays near 1.
    log_t = float(_log_comb(n, k)) / k
    xs = np.arange(k + 1)
    scale = -xs * log_t
    abst = np.exp(_log_comb(abstain, xs[: abstain + 1]) + scale[: abstain + 1]) if abstain else np.ones(1)
    total = 0.0
    for j in range(1, min(k, max(correct_sizes)) + 1):
        rest = k - j
        ties = rest // j  # at most this many other groups can also have j
        nodes, weights = np.polynomial.legendre.leggauss(ties // 2 + 1)
        nodes, weights = (nodes + 1) / 2, weights / 2
        for u, w in zip(nodes, weights):
            factors: dict[int, np.ndarray] = {}
            for m in count:
                top = min(m, j)
                coef = np.exp(_log_comb(m, xs[: top + 1]) + scale[: top + 1])
                if m >= j:
                    coef[j] *= u  # another group tying with j
                factors[m] = coef
            powers = {m: _power(factors[m], c, rest) for m, c in count.items()}
            for m, nc in correct_sizes.items():
                if m < j:
                    continue
                prod = abst[: rest + 1]
                for m2, c in count.items():
                    prod = _mul(prod, powers[m2] if m2 != m else _power(factors[m2], c - 1, rest), rest)
                if len(prod) > rest:
                    own = math.exp(float(_log_comb(m, j)) + scale[j])
                    total += w * nc * own * prod[rest]
    return float(min(1.0, max(0.0, total / math.exp(float(_log_comb(n, k)) - k * log_t))))


def mean_maj_at_k(per_problem: Sequence[float]) -> float:
    """The suite's maj@k: the mean over problems; NaN if any is undefined or there are none."""
    if not per_problem or any(math.isnan(v) for v in per_problem):
        return math.nan
    return float(np.mean(per_problem))
