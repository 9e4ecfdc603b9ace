"""maj@k (majority voting over samples): exact values, and agreement with brute-force enumeration."""
from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from fractions import Fraction

import pytest

from pytest_passk.select import groups_of, maj_at_k, mean_maj_at_k


def brute(labels: list, correct: dict, k: int) -> float:
    """Every k-subset, plurality wins, ties shared evenly; unlabelled samples never win."""
    total, count = Fraction(0), 0
    for comb in itertools.combinations(range(len(labels)), k):
        count += 1
        votes = Counter(labels[i] for i in comb if labels[i] is not None)
        if not votes:
            continue
        top = max(votes.values())
        tied = [g for g, v in votes.items() if v == top]
        total += Fraction(sum(correct[g] for g in tied), len(tied))
    return float(total / count)


def test_known_values() -> None:
    # k=1: the share of samples in correct groups
    assert maj_at_k([(3, True), (5, False)], 2, 1) == pytest.approx(0.3)
    # all drawn: the largest group decides; ties are shared
    assert maj_at_k([(3, True), (5, False)], 0, 8) == 0.0
    assert maj_at_k([(4, True), (4, False)], 0, 8) == 0.5
    # two samples from {A, A, B} (A correct): AA (1 way) wins, AB (2 ways) ties -> (1 + 2 * 0.5) / 3
    assert maj_at_k([(2, True), (1, False)], 0, 2) == pytest.approx(2 / 3)
    assert maj_at_k([(2, False)], 3, 2) == 0.0  # no correct group
    assert math.isnan(maj_at_k([(2, True)], 0, 3))  # n < k
    with pytest.raises(ValueError):
        maj_at_k([(2, True)], 0, 0)


def test_matches_brute_force_on_random_problems() -> None:
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 11)
        groups = rng.randint(1, 5)
        labels = [rng.choice([*range(groups), None]) for _ in range(n)]
        correct = {g: rng.random() < 0.5 for g in range(groups)}
        k = rng.randint(1, n)
        sizes = Counter(x for x in labels if x is not None)
        got = maj_at_k([(m, correct[g]) for g, m in sizes.items()], labels.count(None), k)
        assert got == pytest.approx(brute(labels, correct, k), abs=1e-9), (labels, correct, k)


def test_large_problem_is_fast_and_sane() -> None:
    groups = [(1, False)] * 300 + [(40, True), (60, False), (5, True)] + [(2, False)] * 100
    value = maj_at_k(groups, 50, 100)
    assert 0.0 < value < 0.5  # the wrong group of 60 usually outvotes the right one of 40


def test_groups_of_uses_the_majority_verdict() -> None:
    groups, abstain = groups_of(["4", "4", "5", None, "4"], [True, True, False, False, False])
    assert sorted(groups) == [(1, False), (3, True)] and abstain == 1
    assert math.isnan(mean_maj_at_k([0.5, math.nan])) and mean_maj_at_k([0.5, 1.0]) == 0.75
