"""Adaptive sampling with a budget: after each round, the next samples go where they can still
change the answer (pure functions; the controller runs the rounds).

The metric is coverage: a problem counts once it has ``target`` correct samples (its ``min=``), so
a settled problem (solved, at its cap, or hopeless under its posterior) gets nothing more. Among
the rest, each round gives a problem at most as many new samples as it already has (doubling, so
a problem solved at its s-th sample costs fewer than 2s) and at most OptScale's N, the smallest N
with ``(1 - p)**N <= delta`` for its posterior success rate p. When the budget cannot pay for all
of that, the samples go one by one to the problem with the highest posterior rate, which for
unsolved problems means the fewest samples so far: every unsolved problem ends with at least the
budget's even share (up to its cap), so the policy solves every problem uniform sampling solves
on the same samples, and usually more.

Posteriors come from a Beta(a, b) prior over the suite's per-problem success rates, fit by
maximum likelihood of the Beta-binomial to every problem's ``(n, c)`` (empirical Bayes; the
stopping rule does not bias a likelihood fit, which is why pass@k is read from it and not from
the fixed-n estimator); Beta(1, 1) until the data can support a fit (at least
:data:`pytest_passk.extrapolate.MIN_PROBLEMS` problems with samples, some solved and some not).
The fit is :mod:`pytest_passk.extrapolate`'s: one Beta-binomial model for the policy, the
reported pass@k and the extrapolation.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: OptScale's delta: a problem is given enough samples for its chance of staying unsolved, at
#: its posterior success rate, to fall to this.
DELTA = 0.05
#: A problem whose posterior chance of being solved within its remaining cap is below this is
#: settled as hopeless.
HOPELESS = 0.001
#: The per-problem cap when none is given, as a multiple of the budget's even share.
CAP_SHARES = 10


class BudgetError(ValueError):
    """The budget cannot give every problem a sample."""


@dataclass(frozen=True)
class State:
    """What the policy knows of one problem after a round."""

    id: str
    n: int  #: samples drawn
    c: int  #: correct samples among them
    target: int = 1  #: correct samples that settle it
    cap: int | None = None  #: the most samples it may get (None: the policy's cap)


def fit_prior(counts: Sequence[tuple[int, int]]) -> tuple[float, float] | None:
    """The Beta(a, b) of the suite's success rates: the report's maximum-likelihood Beta-binomial
    fit (:func:`pytest_passk.extrapolate.fit`, so the policy, the reported pass@k and the
    extrapolation read one model), or None where that fit does not apply (fewer than
    :data:`pytest_passk.extrapolate.MIN_PROBLEMS` problems with samples, nothing solved, or
    everything solved)."""
    from pytest_passk import extrapolate

    try:
        fitted = extrapolate.fit(counts, bootstrap=0)
    except extrapolate.NoExtrapolation:
        return None
    return fitted.alpha, fitted.beta


def posterior_pass_at(a: float, b: float, n: int, c: int, k: float) -> float:
    """Chance that a problem with ``c`` of ``n`` correct is solved by one of ``k`` fresh samples,
    under the prior Beta(a, b) (:func:`pytest_passk.extrapolate.posterior_pass_at`)."""
    from pytest_passk import extrapolate

    return extrapolate.posterior_pass_at(a, b, n, c, k)


def optscale_n(p: float, delta: float = DELTA) -> int:
    """OptScale's rule for a binary verifier: the smallest N with ``(1 - p)**N <= delta``."""
    if p >= 1.0:
        return 1
    if p <= 0.0:
        return math.inf  # type: ignore[return-value]
    return max(1, math.ceil(math.log(delta) / math.log1p(-p)))


class Policy:
    """Allocates a total ``budget`` of samples over a suite in rounds."""

    def __init__(self, budget: int, cap: int | None = None, delta: float = DELTA,
                 hopeless: float = HOPELESS) -> None:
        if budget < 1:
            raise ValueError(f"budget must be positive, got {budget}")
        self.budget = budget
        self.cap = cap
        self.delta = delta
        self.hopeless = hopeless
        self.prior: tuple[float, float] = (1.0, 1.0)
        self.rounds = 0

    def cap_for(self, state: State, problems: int) -> int:
        caps = [c for c in (state.cap, self.cap) if c is not None]
        default = max(1, CAP_SHARES * self.budget // max(1, problems))
        return min(caps) if caps else default

    def first_round(self, states: Sequence[State]) -> dict[str, int]:
        """New samples for each problem in the first round: an eighth of the even share, at least one."""
        self.rounds = 1
        share = self.budget // max(1, len(states))
        n0 = max(1, share // 8)
        out: dict[str, int] = {}
        left = self.budget - sum(s.n for s in states)
        for s in states:
            give = max(0, min(n0, self.cap_for(s, len(states))) - s.n)
            give = min(give, left)
            if give:
                out[s.id] = give
                left -= give
        return out

    def settled(self, s: State, cap: int, share: int) -> bool:
        if s.c >= s.target or s.n >= cap:
            return True
        # Hopeless only beyond the even share: below it, uniform sampling would still try.
        a, b = self.prior
        return s.n >= share and posterior_pass_at(a, b, s.n, s.c, cap - s.n) < self.hopeless

    def next_round(self, states: Sequence[State]) -> dict[str, int]:
        """New samples for each problem in the next round; empty when the run should stop."""
        left = self.budget - sum(s.n for s in states)
        if left <= 0:
            return {}
        counts = [(s.n, s.c) for s in states if s.n]
        # A handful of problems cannot pin a distribution down (3 problems, one solved at once and two
        # not, fit a -> 0: "never" for the rest): below extrapolate's MIN_PROBLEMS the prior stays flat.
        fitted = fit_prior(counts)
        self.prior = fitted or (1.0, 1.0)
        a, b = self.prior
        ceiling: dict[str, int] = {}
        for s in states:
            cap = self.cap_for(s, len(states))
            if self.settled(s, cap, self.budget // len(states)):
                continue
            p = (a + s.c) / (a + b + s.n)
            ceiling[s.id] = max(1, min(cap - s.n, max(s.n, 1), optscale_n(p, self.delta)))
        if not ceiling:
            return {}
        self.rounds += 1
        if sum(ceiling.values()) <= left:
            return ceiling
        # Not enough left for all: one sample at a time to the highest posterior rate.
        by_id = {s.id: s for s in states}
        give = dict.fromkeys(ceiling, 0)
        heap = [(-(a + by_id[i].c) / (a + b + by_id[i].n), i) for i in ceiling]
        heapq.heapify(heap)
        while left and heap:
            _, i = heapq.heappop(heap)
            give[i] += 1
            left -= 1
            s = by_id[i]
            if give[i] < ceiling[i]:
                heapq.heappush(heap, (-(a + s.c) / (a + b + s.n + give[i]), i))
        return {i: g for i, g in give.items() if g}


def simulate(policy: Policy, first_success: Sequence[Sequence[bool]], caps: Sequence[int] | None = None) -> tuple[int, int]:
    """Run ``policy`` on recorded verdicts (``first_success[i][j]``: sample j of problem i passed),
    each problem serving its samples in order; returns ``(samples drawn, problems solved)``."""
    states = [State(id=str(i), n=0, c=0, cap=(caps[i] if caps else len(v))) for i, v in enumerate(first_success)]
    ask = policy.first_round(states)
    while ask:
        states = [_extend(s, first_success[int(s.id)], ask.get(s.id, 0)) for s in states]
        ask = policy.next_round(states)
    return sum(s.n for s in states), sum(1 for s in states if s.c >= s.target)


def _extend(s: State, verdicts: Sequence[bool], more: int) -> State:
    n = min(len(verdicts), s.n + more)
    return State(id=s.id, n=n, c=sum(verdicts[:n]), target=s.target, cap=s.cap)
