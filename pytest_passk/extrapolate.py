"""Extrapolate pass@K beyond the samples drawn, from the distribution of per-problem success rates.

Each problem has an unknown single-sample success probability ``p``; across the suite the ``p`` are
modelled as draws from Beta(a, b) (Schaeffer, Kazdan et al., ICML 2025; Levi, 2024). The Beta is fit
to every problem's ``(n, c)`` by maximum likelihood of the Beta-binomial, unsolved problems included:
they carry the left tail, which is what sets how fast coverage keeps growing. Then

- a problem drawn from the suite's distribution is solved within K samples with probability
  ``1 - B(a, b+K) / B(a, b)``; its failure probability falls as ``K**-a`` (``a`` is the power-law
  exponent);
- a problem of *this* suite with ``c`` of ``n`` correct is solved within K fresh samples with posterior
  probability ``1 - B(a+c, b+n-c+K) / B(a+c, b+n-c)``, and the suite's expected pass@K is the mean
  of those (what :func:`fit` reports as ``value``).

Intervals come from a bootstrap over problems: problems are resampled with replacement and the
Beta refit, which carries both the finite number of problems and the finite ``n`` of each (its
binomial noise travels with the problem); the interval is the replicates' 1st to 99th percentile,
which held the suite's true value in 95-100% and the population's in 94-98% of synthetic suites
(300 per setting). Pure functions; scipy is imported inside them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: The fit is searched for in this range of a and b (log-space); an optimum on the edge means
#: the data cannot pin the distribution down (all-or-nothing problems).
_LOG_BOUNDS = (math.log(1e-4), math.log(1e4))
#: Bootstrap resamples for the intervals; each is one refit over the distinct (n, c) pairs.
BOOTSTRAP = 1000
#: The intervals' level, and the percentile interval that achieves it on synthetic suites (see :func:`_interval`).
LEVEL = 0.95
WIDENED = 0.98
#: Fewer problems than this say too little about the spread of success rates to extrapolate.
MIN_PROBLEMS = 5


class NoExtrapolation(ValueError):
    """The data cannot support a fit (no problem solved, every sample correct, no samples)."""


@dataclass
class Prediction:
    """An extrapolated suite value with its interval."""

    k: int
    value: float
    low: float
    high: float
    #: ``1 - B(a, b+K)/B(a, b)`` at the fitted (a, b): a new problem from the same distribution.
    population: float = math.nan


@dataclass
class BetaFit:
    """A Beta(a, b) of per-problem success rates fit to ``counts`` by maximum likelihood."""

    alpha: float
    beta: float
    counts: list[tuple[int, int]]
    loglik: float
    #: bootstrap refits ``(a, b, weights over the distinct (n, c) pairs)``, for intervals
    replicates: list[tuple[float, float, np.ndarray]] = field(default_factory=list, repr=False)
    #: the distinct (n, c) pairs and how many problems have each
    groups: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def at_bound(self) -> bool:
        """The optimum sits on the edge of the search range: the data do not pin (a, b) down
        (e.g. every problem looks equally hard, a + b -> infinity)."""
        lo, hi = _LOG_BOUNDS
        return any(abs(math.log(x) - edge) < 1e-6 for x in (self.alpha, self.beta) for edge in (lo, hi))

    @property
    def mean(self) -> float:
        """Mean single-sample success rate under the fit (the model's pass@1)."""
        return self.alpha / (self.alpha + self.beta)

    def population_pass_at(self, k: float) -> float:
        return population_pass_at(self.alpha, self.beta, k)

    def problem_pass_at(self, n: int, c: int, k: float) -> float:
        """Posterior chance that a problem with ``c`` of ``n`` correct is solved within ``k`` fresh samples."""
        return posterior_pass_at(self.alpha, self.beta, n, c, k)

    def problem_interval(self, n: int, c: int, k: float, level: float = LEVEL) -> tuple[float, float]:
        """Central posterior interval of the problem's true pass@k, ``1 - (1-p)**k`` with
        ``p ~ Beta(a+c, b+n-c)`` (monotone in p, so the quantiles of p map across)."""
        from scipy.stats import beta as beta_dist

        lo_p, hi_p = beta_dist.ppf([(1 - level) / 2, (1 + level) / 2], self.alpha + c, self.beta + n - c)
        return _pass_of_rate(float(lo_p), k), _pass_of_rate(float(hi_p), k)

    def suite_pass_at(self, k: float) -> float:
        """The suite's expected pass@k: the mean over its problems of the posterior chance."""
        return _suite_value(self.alpha, self.beta, self.groups, self.weights, k)

    def band(self, ks: Sequence[float], level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The suite's expected pass@k at every ``k`` with pointwise bootstrap bounds (for a plot)."""
        from scipy.special import betaln

        ks = np.asarray(ks, dtype=float)
        value = np.array([self.suite_pass_at(k) for k in ks])
        if not self.replicates:
            return value, np.full_like(value, np.nan), np.full_like(value, np.nan)
        a = np.array([r[0] for r in self.replicates])[:, None, None]
        b = np.array([r[1] for r in self.replicates])[:, None, None]
        w = np.stack([r[2] for r in self.replicates])  # (R, G)
        n, c = self.groups[:, 0], self.groups[:, 1]
        k = ks[None, :, None]
        per = -np.expm1(betaln(a + c, b + n - c + k) - betaln(a + c, b + n - c))  # (R, K, G)
        boot = np.einsum("rkg,rg->rk", per, w) / w.sum(axis=1)[:, None]
        low, high = _interval(value, boot, level)
        return value, low, high

    def predict(self, k: int, level: float = LEVEL) -> Prediction:
        value = self.suite_pass_at(k)
        if self.replicates:
            boot = np.array([_suite_value(a, b, self.groups, w, k) for a, b, w in self.replicates])
            low, high = (float(x) for x in _interval(value, boot, level))
        else:
            low = high = math.nan
        return Prediction(k=k, value=value, low=low, high=high, population=self.population_pass_at(k))


def _interval(value: float | np.ndarray, boot: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap percentile interval (``boot`` holds the replicates along axis 0), taken at
    :data:`WIDENED` of the way to the tails for a ``level`` of 0.95, and never excluding ``value``.

    The plain 95% percentile interval is too narrow where extrapolating is hardest (few samples, a
    long left tail): on 300 synthetic suites from Beta(0.3, 3) it held the population's pass@1000 in
    90% (n = 10) and 91% (n = 20). The 1st-99th percentiles held it in 94-98% and the suite's own
    value in 95-100%, at ~18% more width (benchmarks/bench_extrapolation.py, results in the README);
    a BCa interval (jackknife acceleration) was no better (89% at Beta(0.3, 3), n = 10). Percentiles,
    not a normal approximation: with few problems the replicates pile up near 1 and a symmetric
    interval on any scale would reach far from where they are.
    """
    tail = (1 - WIDENED) / 2 if level == LEVEL else (1 - level) / 2
    low, high = np.quantile(boot, [tail, 1 - tail], axis=0)
    return np.minimum(low, value), np.maximum(high, value)


def population_pass_at(a: float, b: float, k: float) -> float:
    """``1 - B(a, b+k) / B(a, b)``: expected pass@k of a problem whose rate is drawn from Beta(a, b)."""
    from scipy.special import betaln

    return float(-np.expm1(betaln(a, b + k) - betaln(a, b)))


def posterior_pass_at(a: float, b: float, n: int, c: int, k: float) -> float:
    """``1 - B(a+c, b+n-c+k) / B(a+c, b+n-c)``: chance a problem with ``c`` of ``n`` correct is
    solved by at least one of ``k`` fresh samples, given the prior Beta(a, b)."""
    return population_pass_at(a + c, b + n - c, k)


def _pass_of_rate(p: float, k: float) -> float:
    return float(-np.expm1(k * np.log1p(-p))) if p < 1 else 1.0


def _suite_value(a: float, b: float, groups: np.ndarray, weights: np.ndarray, k: float) -> float:
    from scipy.special import betaln

    n, c = groups[:, 0], groups[:, 1]
    per = -np.expm1(betaln(a + c, b + n - c + k) - betaln(a + c, b + n - c))
    return float(np.dot(weights, per) / weights.sum())


def _loglik_only(theta: np.ndarray, n: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The log-likelihood of :func:`_loglik` alone (the line search needs no derivatives)."""
    from scipy.special import betaln

    a, b = np.exp(theta[:, :1]), np.exp(theta[:, 1:])  # (R, 1)
    return (w * betaln(a + c, b + n - c)).sum(axis=1) - w.sum(axis=1) * betaln(a, b)[:, 0]


def _loglik(theta: np.ndarray, n: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beta-binomial log-likelihood (without the binomial coefficients) of several fits at once, with
    gradient and Hessian in (log a, log b). ``theta`` is (R, 2), ``w`` is (R, G) problem counts per
    distinct (n, c) pair, ``n`` and ``c`` are (G,)."""
    from scipy.special import digamma, polygamma

    a, b = np.exp(theta[:, :1]), np.exp(theta[:, 1:])  # (R, 1)
    total = w.sum(axis=1, keepdims=True)
    ll = _loglik_only(theta, n, c, w)
    abn = a + b + n
    common = (w * digamma(abn)).sum(axis=1, keepdims=True) - total * digamma(a + b)
    ga = (w * digamma(a + c)).sum(axis=1, keepdims=True) - total * digamma(a) - common
    gb = (w * digamma(b + n - c)).sum(axis=1, keepdims=True) - total * digamma(b) - common
    t_common = (w * polygamma(1, abn)).sum(axis=1, keepdims=True) - total * polygamma(1, a + b)
    haa = (w * polygamma(1, a + c)).sum(axis=1, keepdims=True) - total * polygamma(1, a) - t_common
    hbb = (w * polygamma(1, b + n - c)).sum(axis=1, keepdims=True) - total * polygamma(1, b) - t_common
    hab = -t_common
    grad = np.hstack([a * ga, b * gb])
    hess = np.empty((len(theta), 2, 2))
    hess[:, 0, 0] = (a * a * haa + a * ga)[:, 0]
    hess[:, 1, 1] = (b * b * hbb + b * gb)[:, 0]
    hess[:, 0, 1] = hess[:, 1, 0] = (a * b * hab)[:, 0]
    return ll, grad, hess


def _maximise(n: np.ndarray, c: np.ndarray, w: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximise the likelihood of R fits at once by damped Newton steps in (log a, log b), from
    ``theta`` (R, 2); a step that does not raise the likelihood is halved until it does."""
    lo, hi = _LOG_BOUNDS
    theta = np.clip(theta.astype(float), lo, hi)
    ll = _loglik_only(theta, n, c, w)
    running = np.arange(len(theta))  # the fits still moving; a fit that has converged is left alone
    for _ in range(200):
        th, wr, lr = theta[running], w[running], ll[running]
        _, grad, hess = _loglik(th, n, c, wr)
        # Newton where the Hessian is negative definite, else a gradient step scaled to be modest.
        det = hess[:, 0, 0] * hess[:, 1, 1] - hess[:, 0, 1] ** 2
        newton = (hess[:, 0, 0] < 0) & (det > 0)
        step = np.empty_like(th)
        safe_det = np.where(newton, det, 1.0)
        step[:, 0] = -(hess[:, 1, 1] * grad[:, 0] - hess[:, 0, 1] * grad[:, 1]) / safe_det
        step[:, 1] = -(-hess[:, 1, 0] * grad[:, 0] + hess[:, 0, 0] * grad[:, 1]) / safe_det
        gnorm = np.linalg.norm(grad, axis=1, keepdims=True)
        step = np.where(newton[:, None], step, grad / np.maximum(gnorm, 1.0))
        step = np.clip(step, -2.0, 2.0)
        # a step that does not raise the likelihood is halved until it does
        active = np.ones(len(th), dtype=bool)
        scale = np.ones(len(th))
        new_theta, new_ll = th.copy(), lr.copy()
        for _ in range(30):
            idx = np.flatnonzero(active)
            trial = np.clip(th[idx] + scale[idx, None] * step[idx], lo, hi)
            t_ll = _loglik_only(trial, n, c, wr[idx])
            better = t_ll >= lr[idx] - 1e-12
            new_theta[idx[better]], new_ll[idx[better]] = trial[better], t_ll[better]
            active[idx[better]] = False
            scale[idx[~better]] *= 0.5
            if not active.any():
                break
        moved = np.abs(new_theta - th).max(axis=1)
        theta[running], ll[running] = new_theta, new_ll
        running = running[moved >= 1e-9]
        if not len(running):
            break
    return theta, ll


def _start(n: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Method-of-moments starting point from the per-problem rates, clipped to something sane."""
    rates = c / n
    m = float(np.clip(np.dot(w, rates) / w.sum(), 0.01, 0.99))
    v = float(np.dot(w, (rates - m) ** 2) / w.sum())
    total = m * (1 - m) / v - 1 if v > 0 else 10.0
    total = float(np.clip(total, 0.1, 1000.0))
    return np.log([m * total, (1 - m) * total])


def why_not(counts: Sequence[tuple[int, int]]) -> str | None:
    """Why no extrapolation is possible from ``counts``, or None if it is."""
    scored = [(n, c) for n, c in counts if n > 0]
    if not scored:
        return "no problem has samples"
    if all(c == 0 for _, c in scored):
        return ("no problem was solved: every sample failed, so the data say nothing about how rare "
                "success is (the fit would put all problems at rate 0); draw more samples")
    if all(c == n for n, c in scored):
        return "every sample of every problem passed: nothing is left to extrapolate"
    if len(scored) < MIN_PROBLEMS:
        return (f"{len(scored)} problem(s) with samples are too few to fit a distribution of success rates "
                f"(at least {MIN_PROBLEMS})")
    return None


def fit(counts: Sequence[tuple[int, int]], bootstrap: int = BOOTSTRAP, seed: int = 0) -> BetaFit:
    """Fit Beta(a, b) to ``(n, c)`` per problem (problems without samples are left out; n may differ
    between problems), with ``bootstrap`` refits on problems resampled with replacement.

    Raises :class:`NoExtrapolation` with the reason when the data cannot support a fit.
    """
    reason = why_not(counts)
    if reason is not None:
        raise NoExtrapolation(reason)
    scored = [(int(n), int(c)) for n, c in counts if n > 0]
    pairs, multiplicity = np.unique(np.array(scored, dtype=float), axis=0, return_counts=True)
    n, c, w = pairs[:, 0], pairs[:, 1], multiplicity.astype(float)
    starts = np.array([_start(n, c, w), np.log([0.3, 3.0]), np.log([1.0, 1.0]), np.log([0.05, 0.5])])
    thetas, lls = _maximise(n, c, np.tile(w, (len(starts), 1)), starts)
    theta = thetas[int(np.argmax(lls))]
    a, b = (float(x) for x in np.exp(theta))
    result = BetaFit(alpha=a, beta=b, counts=scored, loglik=float(lls.max()), groups=pairs, weights=w)
    if bootstrap:
        rng = np.random.default_rng(seed)
        wb = rng.multinomial(len(scored), w / w.sum(), size=bootstrap).astype(float)
        # A resample may hold only unsolved (or only perfect) problems: its MLE sits on the
        # boundary, which is the honest answer for that resample.
        tb, _ = _maximise(n, c, wb, np.tile(theta, (bootstrap, 1)))
        result.replicates = [(float(np.exp(t[0])), float(np.exp(t[1])), row) for t, row in zip(tb, wb)]
    return result


def default_ks(counts: Sequence[tuple[int, int]]) -> list[int]:
    """10x and 100x the largest n: the K predicted when ``--passk-predict`` is not given."""
    top = max((n for n, _ in counts), default=0)
    return [10 * top, 100 * top] if top else []
