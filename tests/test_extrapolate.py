"""The beta-binomial extrapolation: exact values of its formulas, the fit against an independent
optimiser, and its predictions and intervals on synthetic suites with a known truth."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from pytest_passk import extrapolate, stats


def exact_fail(a: Fraction, b: Fraction, k: int) -> Fraction:
    """``B(a, b+k) / B(a, b) = prod_{j<k} (b+j) / (a+b+j)``, exactly."""
    out = Fraction(1)
    for j in range(k):
        out *= (b + j) / (a + b + j)
    return out


@pytest.mark.parametrize(("a", "b", "k"), [(1, 1, 1), (1, 1, 9), (2, 3, 5), (Fraction(1, 2), 4, 30),
                                           (Fraction(3, 10), 3, 100), (5, Fraction(1, 4), 7)])
def test_population_pass_at_k_exact(a, b, k) -> None:
    expected = 1 - exact_fail(Fraction(a), Fraction(b), k)
    assert extrapolate.population_pass_at(float(a), float(b), k) == pytest.approx(float(expected), rel=1e-11)


def test_uniform_rates_have_pass_at_k_k_over_k_plus_one() -> None:
    for k in (1, 10, 1000, 10**6):
        assert extrapolate.population_pass_at(1.0, 1.0, k) == pytest.approx(k / (k + 1), rel=1e-12)


@pytest.mark.parametrize(("a", "b", "k"), [(0.3, 3.0, 50), (0.7, 1.3, 5), (2.5, 0.8, 20)])
def test_population_pass_at_k_by_quadrature(a: float, b: float, k: int) -> None:
    from scipy import integrate
    from scipy.stats import beta

    # the integrand's singularity at 0 for a < 1 is integrable; quad copes with a breakpoint there
    value, _ = integrate.quad(lambda p: (1 - (1 - p) ** k) * beta.pdf(p, a, b), 0, 1, points=[1e-6, 1e-3],
                              limit=200, epsabs=1e-12, epsrel=1e-10)
    assert extrapolate.population_pass_at(a, b, k) == pytest.approx(value, rel=1e-7)


@pytest.mark.parametrize(("n", "c", "k"), [(20, 0, 1000), (20, 3, 10), (5, 5, 2), (50, 1, 200)])
def test_posterior_pass_at_k_by_quadrature(n: int, c: int, k: int) -> None:
    from scipy import integrate
    from scipy.stats import beta

    a, b = 0.3, 3.0
    # posterior of p given c of n correct is Beta(a + c, b + n - c): integrate against prior * likelihood
    num, _ = integrate.quad(lambda p: (1 - (1 - p) ** k) * beta.pdf(p, a, b) * p**c * (1 - p) ** (n - c), 0, 1,
                            points=[1e-6, 1e-3, 0.05], limit=400, epsabs=1e-15, epsrel=1e-10)
    den, _ = integrate.quad(lambda p: beta.pdf(p, a, b) * p**c * (1 - p) ** (n - c), 0, 1,
                            points=[1e-6, 1e-3, 0.05], limit=400, epsabs=1e-15, epsrel=1e-10)
    assert extrapolate.posterior_pass_at(a, b, n, c, k) == pytest.approx(num / den, rel=1e-6)


def test_failure_falls_as_k_to_the_minus_a() -> None:
    """``a`` is the power-law exponent: 1 - pass@K ~ C * K**-a for large K."""
    a, b = 0.35, 2.0
    k1, k2 = 10**5, 10**6
    slope = math.log((1 - extrapolate.population_pass_at(a, b, k2)) / (1 - extrapolate.population_pass_at(a, b, k1)))
    assert slope / math.log(k2 / k1) == pytest.approx(-a, rel=1e-3)


def test_fit_agrees_with_an_independent_optimiser() -> None:
    from scipy.optimize import minimize
    from scipy.stats import betabinom

    rng = np.random.default_rng(7)
    ns = rng.choice([5, 10, 40], size=120)  # unequal n per problem
    cs = rng.binomial(ns, rng.beta(0.4, 2.5, size=120))
    fit = extrapolate.fit(list(zip(ns.tolist(), cs.tolist())), bootstrap=0)

    def nll(theta):
        return -betabinom.logpmf(cs, ns, math.exp(theta[0]), math.exp(theta[1])).sum()

    ref = minimize(nll, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000})
    assert math.log(fit.alpha) == pytest.approx(ref.x[0], abs=1e-4)
    assert math.log(fit.beta) == pytest.approx(ref.x[1], abs=1e-4)
    const = sum(math.log(math.comb(int(n), int(c))) for n, c in zip(ns, cs))
    assert fit.loglik + const == pytest.approx(-ref.fun, abs=1e-6)


def test_suite_value_is_the_mean_of_the_problems_posteriors() -> None:
    counts = [(10, 0), (10, 1), (10, 4), (20, 0), (20, 20), (10, 0)]
    fit = extrapolate.fit(counts, bootstrap=0)
    per = [fit.problem_pass_at(n, c, 500) for n, c in counts]
    assert fit.suite_pass_at(500) == pytest.approx(sum(per) / len(per), rel=1e-12)
    assert fit.problem_pass_at(20, 20, 500) > fit.problem_pass_at(10, 4, 500) > fit.problem_pass_at(10, 0, 500)
    low, high = fit.problem_interval(10, 1, 500)
    assert 0 <= low < fit.problem_pass_at(10, 1, 500) < high <= 1


@pytest.mark.parametrize(("counts", "says"), [
    ([], "no problem has samples"),
    ([(10, 0)] * 30, "no problem was solved"),
    ([(10, 10)] * 30, "every sample of every problem passed"),
    ([(10, 3), (10, 0), (10, 1)], "3 problem(s) with samples are too few"),
])
def test_no_extrapolation_says_why(counts, says: str) -> None:
    assert says in (extrapolate.why_not(counts) or "")
    with pytest.raises(extrapolate.NoExtrapolation, match=r"\w"):
        extrapolate.fit(counts)


def test_default_ks_are_ten_and_a_hundred_times_the_largest_n() -> None:
    assert extrapolate.default_ks([(20, 1), (50, 0)]) == [500, 5000]


def _suite(seed: int, a: float, b: float, problems: int, n: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, problems)
    return p, [(n, int(c)) for c in rng.binomial(n, p)]


@pytest.mark.parametrize(("a", "b", "beats_least_squares"), [(0.15, 1.5, True), (0.5, 20.0, True), (0.3, 3.0, False)])
def test_predicted_pass_at_1000_from_20_samples_holds_the_truth(a: float, b: float, beats_least_squares: bool) -> None:
    """Problems' rates from a known Beta, 20 samples each: the predicted pass@1000 lies in its 95%
    interval of the truth (the suite's true expected pass@1000) in ~95% of suites, and is closer
    to it than the least-squares fit of the aggregate curve, except where that curve's shape
    happens to match the truth (Beta(0.3, 3): there it is close, see the benchmark)."""
    K, seeds = 1000, 60
    held, bb_err, ls_err = 0, [], []
    for seed in range(seeds):
        p, counts = _suite(seed, a, b, 164, 20)
        truth = float(np.mean(1 - (1 - p) ** K))
        pred = extrapolate.fit(counts, bootstrap=200, seed=seed).predict(K)
        held += pred.low <= truth <= pred.high
        bb_err.append(abs(pred.value - truth))
        ls = stats.fit_power_law(stats.coverage_curve(counts))
        ls_err.append(abs(stats.power_law(*ls, K) - truth) if ls else 1.0)
    # 60 suites at 95% nominal: fewer than 52 would be a real miss (binomial p < 0.01)
    assert held >= 52, f"interval held the truth in {held}/{seeds} suites"
    if beats_least_squares:
        assert np.mean(bb_err) < 0.6 * np.mean(ls_err), (np.mean(bb_err), np.mean(ls_err))
    else:
        assert np.mean(bb_err) < 1.5 * np.mean(ls_err), (np.mean(bb_err), np.mean(ls_err))


def test_observed_intervals_hold_the_truth() -> None:
    """Coverage and pass@k intervals are over the problem sample and each problem's finite n: they
    hold the population's value (a problem drawn from the same Beta) in ~95% of suites, not more
    and not fewer, and the suite's own expected value at least as often."""
    seeds = 600
    held = {(m, t): 0 for m in ("coverage", "pass@1", "pass@5") for t in ("population", "suite")}
    for seed in range(seeds):
        p, counts = _suite(1000 + seed, 0.3, 2.0, 100, 10)
        for name, k in (("coverage", 10), ("pass@1", 1), ("pass@5", 5)):
            if name == "coverage":
                low, high = stats.mean_interval([1.0 if c else 0.0 for _, c in counts])
            else:
                low, high = stats.mean_interval([stats.pass_at_k(n, c, k) for n, c in counts], 1000)
            held[name, "suite"] += low <= float(np.mean(1 - (1 - p) ** k)) <= high
            held[name, "population"] += low <= extrapolate.population_pass_at(0.3, 2.0, k) <= high
    for (name, truth), count in held.items():
        # 600 suites at 95%: the standard error is 0.9%; 92-98% is more than 3 of them either way
        assert count >= 0.92 * seeds, f"{name}: interval held the {truth}'s value in {count}/{seeds} suites"
        if truth == "population":
            assert count <= 0.98 * seeds, f"{name}: interval held the population's value in {count}/{seeds}: too wide"


def test_the_fit_is_as_precise_as_any_unbiased_estimator_can_be() -> None:
    """The spread of the predicted population pass@1000 over synthetic suites matches the Cramer-Rao
    bound (delta method on the Fisher information of the Beta-binomial, computed here by finite
    differences of scipy's betabinom.logpmf): the maximum-likelihood fit wastes no information, so
    an estimator with a smaller error (the least-squares curve on Beta(0.3, 3)) is one whose bias
    happens to be small for that truth (benchmarks/bench_extrapolation.py, the README)."""
    from scipy.stats import betabinom

    a, b, n, problems, K = 0.3, 3.0, 20, 164, 1000
    c = np.arange(n + 1)
    h = 1e-4

    def logpmf(t: np.ndarray) -> np.ndarray:
        return betabinom.logpmf(c, n, math.exp(t[0]), math.exp(t[1]))

    t0 = np.log([a, b])
    score = np.stack([(logpmf(t0 + e) - logpmf(t0 - e)) / (2 * h) for e in np.eye(2) * h])
    info = problems * (score * betabinom.pmf(c, n, a, b)) @ score.T
    grad = np.array([(extrapolate.population_pass_at(*np.exp(t0 + e), K)
                      - extrapolate.population_pass_at(*np.exp(t0 - e), K)) / (2 * h) for e in np.eye(2) * h])
    bound = math.sqrt(grad @ np.linalg.solve(info, grad))
    values = []
    for seed in range(300):
        _, counts = _suite(5000 + seed, a, b, problems, n)
        values.append(extrapolate.fit(counts, bootstrap=0).population_pass_at(K))
    spread = float(np.std(values, ddof=1))  # its own standard error is ~4% of it with 300 suites
    assert 0.85 * bound < spread < 1.2 * bound, (spread, bound)
    assert abs(np.mean(values) - extrapolate.population_pass_at(a, b, K)) < 3 * spread / math.sqrt(300)


def test_mean_interval_edges() -> None:
    assert stats.mean_interval([]) == (math.nan, math.nan) or all(math.isnan(x) for x in stats.mean_interval([]))
    low, high = stats.mean_interval([0.0] * 50)
    assert low == 0.0 and 0 < high < 0.08  # Wilson with 50 problems: not a point
    low, high = stats.mean_interval([1.0] * 50)
    assert high == 1.0 and 0.92 < low < 1
    # one problem: its samples are the trials (the Wilson interval of 1 of 4)
    assert stats.mean_interval([0.25], 4) == pytest.approx(stats.wilson_interval(1, 4))
