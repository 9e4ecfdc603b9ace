"""What an evaluation produces: the score of each problem and of the suite (plain records)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

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

    @property
    def scored(self) -> list[ProblemResult]:
        """The problems the suite metrics are over: every problem, those without samples counting as
        unsolved; with ``allow_partial``, only the problems with samples."""
        return [p for p in self.problems if p.n > 0] if self.allow_partial else list(self.problems)

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
        return self._mean_over_scored(stats.mean_pass_at_k([(p.n, p.correct) for p in self.scored if p.n > 0], k))

    @property
    def flaky_problems(self) -> int:
        return sum(1 for p in self.problems if p.flaky)

    @property
    def runs_per_second(self) -> float:
        return self.runs_executed / self.execute_seconds if self.execute_seconds > 0 else math.nan

    def curve(self) -> list[tuple[int, float]]:
        """Expected coverage with k samples per problem, k up to the smallest n."""
        return [(k, self._mean_over_scored(v))
                for k, v in stats.coverage_curve([(p.n, p.correct) for p in self.scored if p.n > 0])]

    def metric(self, name: str) -> float:
        if name == "coverage":
            return self.coverage
        return self.pass_at(int(name.split("@", 1)[1]))
