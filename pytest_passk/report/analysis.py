"""What the suite's counts say beyond point values: 95% intervals, the extrapolation beyond n, and cost.

Computed once per run (the bootstrap behind the extrapolation's intervals is the only costly part)
and read by every output: terminal, JUnit, JSON, plot and the gate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_passk import extrapolate, stats

if TYPE_CHECKING:
    from pytest_passk.evaluation import ProblemResult, SuiteResult

Interval = tuple[float, float]


@dataclass
class Estimate:
    """A value with its 95% interval; ``extrapolated`` when it comes from the fit, not the samples."""

    value: float
    low: float
    high: float
    extrapolated: bool = False


@dataclass
class Cost:
    """What the samples cost, and what each solved problem cost.

    Tokens and engine time are measured for the samples generated in this run; when some samples
    came from the store (an earlier run) the totals are scaled up to every sample by the measured
    per-sample rate, and ``scaled`` says so. A samples file carries no token counts: ``known`` is
    False and only counts are reported.
    """

    known: bool
    samples: int
    samples_measured: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    engine_seconds: float = 0.0
    solved: int = 0
    scaled: bool = False
    price: tuple[float, float] | None = None  #: per million (prompt, generated) tokens
    note: str = ""
    problems_measured: int = 0  #: problems whose prompt was sent in this run

    @property
    def prompt_tokens_per_problem(self) -> float:
        return self.prompt_tokens / self.problems_measured if self.problems_measured else math.nan

    @property
    def factor(self) -> float:
        return self.samples / self.samples_measured if self.samples_measured else math.nan

    @property
    def total_tokens(self) -> float:
        return (self.prompt_tokens + self.generated_tokens) * self.factor

    def per_solved(self, amount: float) -> float:
        return amount / self.solved if self.solved and not math.isnan(amount) else math.nan

    @property
    def tokens_per_sample(self) -> float:
        return self.generated_tokens / self.samples_measured if self.samples_measured else math.nan

    @property
    def money(self) -> float:
        if self.price is None or not self.samples_measured:
            return math.nan
        return (self.prompt_tokens * self.price[0] + self.generated_tokens * self.price[1]) * self.factor / 1e6

    def tokens_for(self, k: float, problems: int) -> float:
        """Expected tokens to draw ``k`` samples of each of ``problems`` problems: the prompt once
        per problem and ``k`` times the measured generated tokens per sample."""
        if not self.samples_measured:
            return math.nan
        return problems * (self.prompt_tokens_per_problem + k * self.tokens_per_sample)

    def money_for(self, k: float, problems: int) -> float:
        if self.price is None or not self.samples_measured:
            return math.nan
        return problems * (self.prompt_tokens_per_problem * self.price[0]
                           + k * self.tokens_per_sample * self.price[1]) / 1e6


@dataclass
class Analysis:
    """Every number of the report beyond the point values of :class:`SuiteResult`."""

    coverage: Estimate
    pass_at: dict[int, Estimate]
    problem_pass1: dict[str, Interval]  #: by problem id: Wilson interval of c/n
    ks: list[int]  #: the K extrapolated to
    fit: extrapolate.BetaFit | None
    no_fit: str | None  #: why there is no extrapolation
    predicted: dict[int, Estimate]
    problem_predicted: dict[str, dict[int, Estimate]]  #: by problem id
    cost: Cost
    curve: list[tuple[int, Estimate]] = field(default_factory=list)  #: observed coverage curve
    counts: list[tuple[int, int]] = field(default_factory=list)  #: (n, c) of every problem the metrics are over
    #: the fraction of those problems that have samples (the fit is over them; the rest count as unsolved)
    share: float = 1.0
    problem_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  #: (n, c) by id, problems with samples
    adaptive: bool = False  #: samples were drawn adaptively: every pass@k comes from the fit

    def value_of(self, metric: str) -> Estimate | None:
        """``coverage`` or ``pass@K``: observed where every problem has K samples, else extrapolated."""
        if metric == "coverage":
            return self.coverage
        k = int(metric.split("@", 1)[1])
        if k in self.pass_at and not math.isnan(self.pass_at[k].value):
            return self.pass_at[k]
        sampled = [n for n, _ in self.counts if n]
        if sampled and k <= min(sampled) and not self.adaptive:
            return _observed(self.counts, k)
        if k in self.predicted:
            return self.predicted[k]
        if self.fit is not None:
            p = self.fit.predict(k)
            return Estimate(p.value * self.share, p.low * self.share, p.high * self.share, extrapolated=True)
        return None

    def coverage_at(self, k: int) -> Estimate | None:
        """Expected coverage with ``k`` samples per problem (observed up to the smallest n, then fit)."""
        return self.value_of(f"pass@{k}")


def analyse(suite: SuiteResult, predict: list[int] | None = None,
            price: tuple[float, float] | None = None, bootstrap: int = extrapolate.BOOTSTRAP) -> Analysis:
    scored = suite.scored  # may hold problems without samples: they count as unsolved
    every = [(p.n, p.correct) for p in scored]
    counts = [(n, c) for n, c in every if n > 0]
    share = len(counts) / len(every) if every else math.nan
    coverage = Estimate(suite.coverage, *stats.mean_interval([1.0 if c > 0 else 0.0 for _, c in every]))

    problem_pass1 = {p.problem.id: stats.wilson_interval(p.correct, p.n) for p in suite.problems}
    ks = sorted(set(predict or extrapolate.default_ks(counts)))
    fit: extrapolate.BetaFit | None = None
    no_fit = extrapolate.why_not(counts)
    if no_fit is None:
        fit = extrapolate.fit(counts, bootstrap=bootstrap)

    def fitted(k: int) -> Estimate:
        if fit is None:
            return Estimate(math.nan, math.nan, math.nan, extrapolated=True)
        p = fit.predict(k)
        # Problems without samples stay unsolved at any K, as in the observed metrics.
        return Estimate(p.value * share, p.low * share, p.high * share, extrapolated=True)

    adaptive = bool(getattr(suite, "adaptive", False))
    if adaptive:
        # Samples were drawn adaptively: the fixed-n estimator is biased and pass@k is read from
        # the fit (the suite's own value; the interval is this fit's bootstrap around it).
        def from_fit(k: int) -> Estimate:
            est, value = fitted(k), suite.pass_at(k)
            return Estimate(value, min(est.low, value), max(est.high, value), extrapolated=True)

        pass_at = {k: from_fit(k) for k in suite.ks}
        curve = [(k, from_fit(k)) for k, _ in suite.curve()]
    else:
        pass_at = {k: _observed(every, k) for k in suite.ks}
        curve = [(k, _observed(every, k)) for k, _ in stats.coverage_curve(counts)]

    predicted: dict[int, Estimate] = {}
    problem_predicted: dict[str, dict[int, Estimate]] = {}
    if fit is not None:
        for k in ks:
            predicted[k] = fitted(k)
        for res in scored:
            if res.n:
                problem_predicted[res.problem.id] = {
                    k: Estimate(fit.problem_pass_at(res.n, res.correct, k),
                                *fit.problem_interval(res.n, res.correct, k), extrapolated=True) for k in ks}
    return Analysis(coverage=coverage, pass_at=pass_at, problem_pass1=problem_pass1, ks=ks, fit=fit, no_fit=no_fit,
                    predicted=predicted, problem_predicted=problem_predicted, cost=cost_of(suite, price), curve=curve,
                    counts=every, share=share, adaptive=adaptive,
                    problem_counts={p.problem.id: (p.n, p.correct) for p in scored if p.n})


def _observed(counts: list[tuple[int, int]], k: int) -> Estimate:
    """Mean pass@k over problems (those without samples count 0) with the interval of
    :func:`stats.mean_interval`; NaN when a problem with samples has fewer than k."""
    values = [stats.pass_at_k(n, c, k) if n else 0.0 for n, c in counts]
    if not values or any(math.isnan(v) for v in values):
        return Estimate(math.nan, math.nan, math.nan)
    return Estimate(sum(values) / len(values), *stats.mean_interval(values, sum(n for n, _ in counts)))


def cost_of(suite: SuiteResult, price: tuple[float, float] | None) -> Cost:
    samples = suite.samples
    solved = sum(1 for p in suite.scored if p.solved)
    if not suite.tokens_counted:
        note = ("the samples came from a file: tokens and engine time are unknown" if suite.replayed
                else "this backend does not count tokens")
        return Cost(known=False, samples=samples, solved=solved, price=price, note=note)
    usage = [u for u in suite.usage.values() if u.samples]
    measured = sum(u.samples for u in usage)
    cost = Cost(known=measured > 0, samples=samples, samples_measured=measured,
                prompt_tokens=sum(u.prompt_tokens for u in usage),
                generated_tokens=sum(u.generated_tokens for u in usage),
                engine_seconds=suite.generate_seconds, solved=solved, price=price,
                scaled=0 < measured < samples, problems_measured=len(usage))
    if not measured:
        cost.note = "every sample came from the store (an earlier run): tokens were counted then, not now"
    elif cost.scaled:
        cost.note = (f"tokens and engine time were measured for the {measured} samples generated in this run and "
                     f"scaled to all {samples}")
    return cost


def problem_tokens(suite: SuiteResult, res: ProblemResult) -> tuple[int, int] | None:
    """``(prompt, generated)`` tokens this run spent on ``res``, or None when not counted."""
    if not suite.tokens_counted:
        return None
    usage = suite.usage.get(res.problem.id)
    return (usage.prompt_tokens, usage.generated_tokens) if usage else (0, 0)
