"""What an evaluation produces: the score of each problem and of the suite (plain records)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pytest_passk import stats
from pytest_passk.backends import Usage
from pytest_passk.problem import Problem
from pytest_passk.protocol import RunResult


@dataclass
class ProblemResult:
    """The score of one problem."""

    problem: Problem
    style: str
    n: int = 0
    correct: int = 0
    flaky: int = 0  #: samples whose runs disagreed
    pass_at: dict[int, float] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    first_failure: tuple[int, RunResult] | None = None
    passed_samples: list[bool] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    #: "ok", "broken" (the reference fails), "flaky" (its runs disagree) or "unchecked" (no reference)
    verifier: str = "unchecked"
    reference_runs: list[RunResult] = field(default_factory=list)
    timeout: float = 0.0  #: seconds per run the candidates ran with
    timeout_derived: bool = False  #: derived from the reference's runtime
    #: candidates whose runs disagree: sample index, runs, passes, flip rate and its interval
    flaky_candidates: list[dict[str, Any]] = field(default_factory=list)
    confirmed: int = 0  #: distinct candidates rerun to confirm a deciding pass or a timeout
    maj_at: dict[int, float] = field(default_factory=dict)
    #: what each sample's vote is (its answer, or a digest of what it returned), None: no vote
    votes: list[str | None] = field(default_factory=list)

    @property
    def counted(self) -> bool:
        """Whether the problem counts in the suite's metrics (it has samples and a working verifier)."""
        return self.n > 0 and self.verifier != "broken"

    @property
    def solved(self) -> bool:
        return self.correct > 0

    @property
    def meets_min(self) -> bool:
        return self.correct >= self.problem.min_correct


@dataclass
class SuiteResult:
    problems: list[ProblemResult]
    ks: list[int]
    runs_executed: int = 0
    runs_cached: int = 0
    execute_seconds: float = 0.0
    generate_seconds: float = 0.0
    generated: int = 0
    replayed: bool = False  #: samples were read from a file, not generated
    load_seconds: float = 0.0  #: loading the engine / connecting, before generation
    tokens_generated: int = 0
    #: tokens per problem id for the samples generated in this run (see ``tokens_counted``)
    usage: dict[str, Usage] = field(default_factory=dict)
    tokens_counted: bool = False  #: the backend counts tokens (a samples file does not)
    wall_seconds: float = 0.0
    sandbox: str = ""
    isolated: bool = True
    backend: str = ""
    store: str = ""  #: where samples and verdicts are kept (":memory:": nowhere)
    #: ``--passk-allow-partial``: the metrics are over the problems with samples only.
    allow_partial: bool = False
    budget: int | None = None  #: --passk-budget: samples were drawn adaptively, in rounds
    rounds: int = 1
    #: the Beta(a, b) of per-problem success rates fit to every problem's (n, c); pass@k comes
    #: from it when sampling was adaptive (the fixed-n estimator would be biased)
    prior: tuple[float, float] | None = None
    no_prior: str | None = None  #: why there is no fit (then pass@k is undefined)
    confirm_runs: int = 0  #: runs executed to confirm deciding passes and timeouts
    confirm_reused: int = 0  #: confirmation runs whose verdict came from the store
    reference_executed: int = 0  #: runs of reference solutions executed (the rest came from the store)

    @property
    def adaptive(self) -> bool:
        return self.budget is not None

    @property
    def scored(self) -> list[ProblemResult]:
        """The problems the suite metrics are over: every problem whose verifier is not broken
        (broken ones are reported apart, not as model failures), those without samples counting as
        unsolved; with ``allow_partial``, only the problems with samples."""
        working = [p for p in self.problems if p.verifier != "broken"]
        return [p for p in working if p.n > 0] if self.allow_partial else working

    @property
    def broken_verifiers(self) -> list[str]:
        return [p.problem.id for p in self.problems if p.verifier == "broken"]

    @property
    def flaky_verifiers(self) -> list[str]:
        return [p.problem.id for p in self.problems if p.verifier == "flaky"]

    @property
    def without_samples(self) -> list[ProblemResult]:
        return [p for p in self.problems if p.n == 0]

    @property
    def partial(self) -> bool:
        """Whether some problem of the suite has no samples."""
        return any(p.n == 0 for p in self.problems)

    def _mean_over_scored(self, sampled_mean: float) -> float:
        """A mean over the problems with samples, taken over :attr:`scored` (problems without
        samples contribute 0)."""
        scored = self.scored
        sampled = sum(1 for p in scored if p.n > 0)
        if not scored:
            return math.nan
        if sampled == 0:
            return 0.0
        return sampled_mean * sampled / len(scored)

    @property
    def samples(self) -> int:
        return sum(p.n for p in self.problems)

    @property
    def coverage(self) -> float:
        return stats.coverage([(p.n, p.correct) for p in self.scored])

    def pass_at(self, k: int) -> float:
        """pass@k: the unbiased estimator averaged over problems; with adaptive sampling, the mean
        posterior pass@k under the fitted Beta (NaN when no fit is possible)."""
        if self.adaptive:
            return self._mean_over_scored(self.fitted_pass_at(k))
        return self._mean_over_scored(stats.mean_pass_at_k([(p.n, p.correct) for p in self.scored if p.n > 0], k))

    def fitted_pass_at(self, k: int, problems: list[ProblemResult] | None = None) -> float:
        """The mean over ``problems`` with samples (default: the scored ones) of the posterior chance
        that k fresh samples solve the problem, under the fitted Beta."""
        from pytest_passk.extrapolate import posterior_pass_at

        sampled = [p for p in (self.scored if problems is None else problems) if p.n > 0]
        if self.prior is None or not sampled:
            return math.nan
        a, b = self.prior
        return sum(posterior_pass_at(a, b, p.n, p.correct, k) for p in sampled) / len(sampled)

    def maj_at(self, k: int) -> float:
        """maj@k averaged over the problems whose samples vote; NaN if none do or one has n < k."""
        from pytest_passk.select import mean_maj_at_k

        return mean_maj_at_k([p.maj_at[k] for p in self.scored if k in p.maj_at])

    @property
    def flaky_problems(self) -> int:
        return sum(1 for p in self.problems if p.flaky)

    @property
    def runs_per_second(self) -> float:
        return self.runs_executed / self.execute_seconds if self.execute_seconds > 0 else math.nan

    def curve(self) -> list[tuple[int, float]]:
        """Expected coverage with k samples per problem, k up to the smallest n (with adaptive
        sampling: read from the fit, k up to the largest n)."""
        if self.adaptive:
            top = max((p.n for p in self.scored), default=0)
            return ([(k, self._mean_over_scored(self.fitted_pass_at(k))) for k in stats.curve_ks(top)]
                    if self.prior else [])
        return [(k, self._mean_over_scored(v))
                for k, v in stats.coverage_curve([(p.n, p.correct) for p in self.scored if p.n > 0])]

    def selection_curve(self) -> list[tuple[int, float, float]]:
        """``(k, maj@k, precision gap)`` at the points of the coverage curve; the gap is coverage@k
        minus maj@k over the problems whose samples vote."""
        voting = [p for p in self.scored if p.maj_at]
        out = []
        for k, _ in self.curve():
            maj = self.maj_at(k)
            if self.adaptive:
                cov = self.fitted_pass_at(k, voting)
            else:
                cov = stats.mean_pass_at_k([(p.n, p.correct) for p in voting], k)
            out.append((k, maj, cov - maj))
        return out

    def metric(self, name: str) -> float:
        if name == "coverage":
            return self.coverage
        return self.pass_at(int(name.split("@", 1)[1]))
