"""The adaptive policy: pure rules (OptScale's N, the Beta fit, allocation) and its promise of never
doing worse than uniform sampling at equal samples on recorded verdicts."""
from __future__ import annotations

import math
import random

import pytest

from pytest_passk.adaptive import Policy, State, fit_prior, optscale_n, posterior_pass_at, simulate


def test_optscale_rule() -> None:
    assert optscale_n(0.5, 0.05) == 5  # 0.5**5 = 0.031 <= 0.05 < 0.5**4
    assert optscale_n(0.01, 0.05) == 299
    assert optscale_n(1.0) == 1 and optscale_n(0.0) == math.inf


def test_posterior_pass_at_known_values() -> None:
    # Beta(1, 1) prior, nothing observed: E[1 - (1-p)^k] = k / (k + 1)
    assert posterior_pass_at(1, 1, 0, 0, 3) == pytest.approx(0.75)
    # 4 failures under Beta(1, 1): p ~ Beta(1, 5), E[1 - (1-p)] = 1/6
    assert posterior_pass_at(1, 1, 4, 0, 1) == pytest.approx(1 / 6)


def test_fit_recovers_a_known_beta() -> None:
    rng = random.Random(3)
    import numpy as np

    gen = np.random.default_rng(3)
    counts = [(50, int(gen.binomial(50, p))) for p in gen.beta(0.5, 2.0, size=2000)]
    a, b = fit_prior(counts)
    assert a == pytest.approx(0.5, rel=0.15) and b == pytest.approx(2.0, rel=0.15)
    assert fit_prior([(10, 0), (10, 0)]) is None and fit_prior([(3, 3), (2, 2)]) is None
    del rng


def test_settled_problems_get_nothing_and_the_budget_holds() -> None:
    policy = Policy(budget=100, cap=30)
    states = [State("solved", 4, 1), State("open", 4, 0), State("capped", 30, 0)]
    more = policy.next_round(states)
    assert set(more) == {"open"} and more["open"] == 4  # doubling
    tight = Policy(budget=10)
    more = tight.next_round([State("a", 4, 0), State("b", 2, 0), State("c", 3, 1)])
    assert sum(more.values()) <= 10 - 9 and more == {"b": 1}  # the fewest samples first


def regime(rng: random.Random, problems: int, samples: int, a: float, b: float) -> list[list[bool]]:
    import numpy as np

    gen = np.random.default_rng(rng.randrange(1 << 30))
    return [list(gen.random(samples) < p) for p in gen.beta(a, b, size=problems)]


@pytest.mark.parametrize("a,b", [(2.0, 1.0), (0.2, 5.0), (0.05, 3.0)])
def test_never_worse_than_uniform_at_equal_samples(a: float, b: float) -> None:
    rng = random.Random(11)
    for trial in range(5):
        verdicts = regime(rng, 60, 400, a, b)
        for share in (2, 5, 20, 100):
            budget = share * len(verdicts)
            uniform = sum(1 for v in verdicts if any(v[:share]))
            drawn, solved = simulate(Policy(budget), verdicts)
            assert drawn <= budget
            assert solved >= uniform, (a, b, share, solved, uniform)


def test_easy_regime_needs_far_fewer_samples() -> None:
    verdicts = regime(random.Random(5), 100, 200, 2.0, 1.0)
    share = 20
    uniform = sum(1 for v in verdicts if any(v[:share]))
    # the smallest budget at which the adaptive policy matches uniform's coverage
    need = next(b for b in range(100, 20 * 100 + 1, 50) if simulate(Policy(b), verdicts)[1] >= uniform)
    assert need * 2 <= share * 100, need
