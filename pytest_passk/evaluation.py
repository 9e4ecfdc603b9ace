"""The controller: an evaluation is a sequence of rounds, each one planning which samples are
missing, generating them and executing every distinct candidate (overlapping with generation);
then every problem is scored.

Where each stage lives: plan is :meth:`Evaluation.plan`, generate is :mod:`pytest_passk.generation`,
execute is :mod:`pytest_passk.runner` (controller side) and the sandbox, score is
:mod:`pytest_passk.scoring`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pytest_passk.backends import Backend, Request
from pytest_passk.generation import Generation
from pytest_passk.keys import prompt_key, run_key
from pytest_passk.options import Settings
from pytest_passk.problem import Problem
from pytest_passk.results import ProblemResult, SuiteResult
from pytest_passk.runner import Runner
from pytest_passk.sandbox import Sandbox
from pytest_passk.scoring import score_problem
from pytest_passk.store import Store

__all__ = ["Evaluation", "ProblemResult", "SuiteResult"]


Progress = Callable[[dict[str, Any]], None]


class Evaluation:
    """One evaluation of a suite: owns the store, backend and sandbox for the duration of a run."""

    def __init__(self, settings: Settings, problems: list[Problem], backend: Backend,
                 sandbox_factory: Callable[[], Sandbox], store: Store,
                 progress: Progress | None = None) -> None:
        self.settings = settings
        self.problems = problems
        self.backend = backend
        self.sandbox_factory = sandbox_factory
        self.store = store
        self.progress = progress or (lambda event: None)
        self.source = backend.source_key()
        self.results = {p.id: ProblemResult(problem=p, style=self.style_of(p)) for p in problems}
        self.suite = SuiteResult(problems=list(self.results.values()), ks=sorted({k for p in problems for k in p.ks}),
                                 backend=backend.describe(), replayed=not backend.stores_samples,
                                 store=store.path, allow_partial=settings.allow_partial)
        # Making a sandbox is cheap (start() does the work); it names what candidates run on, which
        # is part of the verdicts' key (e.g. the image id that --passk-image=auto resolved to).
        sandbox = sandbox_factory()
        environment = sandbox.environment()
        keys = {p.id: run_key(p, settings, p.timeout or settings.timeout, environment) for p in problems}
        self.runner = Runner(settings, problems, keys, store, lambda: sandbox, self.progress)
        self.generation = Generation(backend)
        self._sent: dict[str, int] = {}  #: samples of each problem already sent to execution
        # Problems with the same prompt (and style) share one pool of samples, each taking its first
        # ``want``: a pool is generated once, for the problem that wants most (``_pool_owner``).
        self._pools: dict[str, list[ProblemResult]] = {}
        for res in self.results.values():
            self._pools.setdefault(prompt_key(res.problem, res.style), []).append(res)
        self._want: dict[str, int] = {}

    def style_of(self, problem: Problem) -> str:
        if problem.style:
            return problem.style
        if self.settings.style != "auto":
            return self.settings.style
        return self.backend.style_for(problem) or self.backend.default_style()

    def run(self) -> SuiteResult:
        t0 = time.monotonic()
        try:
            requests = self.plan()
            # Containers boot while the model loads, unless every verdict is already in the store.
            if requests or any(self.runner.missing(r.problem, r.style, r.texts) for r in self.results.values()):
                self.runner.boot()
            self.round(requests, last=True)
        finally:
            self.suite.execute_seconds = self.runner.close()
            self.backend.close()
        self.score()
        self.suite.wall_seconds = time.monotonic() - t0
        return self.suite

    # -- plan --------------------------------------------------------------------------------

    def plan(self, wanted: dict[str, int] | None = None) -> list[Request]:
        """Bring each problem up to ``wanted[id]`` samples (default: its marker's n; for a replay,
        every sample the file has): from the store first, at once from a backend that has its
        samples at hand (a file), else as requests for the generate stage."""
        requests: list[Request] = []
        at_hand: list[Request] = []
        for res in self.results.values():
            p = res.problem
            available = self.backend.available(p)
            if wanted is not None:
                want = wanted.get(p.id, len(res.texts))
                want = want if available is None else min(want, available)
            else:
                want = p.n if available is None else available
            self._want[p.id] = want
            if not self.backend.stores_samples and want > len(res.texts):
                at_hand.append(Request(problem=p, n=want - len(res.texts), style=res.style, start=len(res.texts)))
        for request, texts in self.backend.generate(at_hand) if at_hand else ():
            self.results[request.problem.id].texts.extend(texts)
        if self.backend.stores_samples:
            for key, sharers in self._pools.items():
                pool = self.store.samples(self.source, key)
                for res in sharers:
                    res.texts.extend(pool[len(res.texts):self._want[res.problem.id]])
                owner = max(sharers, key=lambda r: self._want[r.problem.id])
                need = self._want[owner.problem.id]
                if need > len(pool):
                    requests.append(Request(problem=owner.problem, n=need - len(owner.texts), style=owner.style,
                                            start=len(owner.texts)))
        return requests

    # -- generate and execute, overlapping ---------------------------------------------------

    def round(self, requests: list[Request], last: bool) -> None:
        """Generate ``requests`` in the background while every sample not run yet executes; return
        once every sample of the round has its verdicts."""
        self.generation.start(requests, last=last)
        for res in self.results.values():
            self.send(res)
        while True:
            for request, texts in self.generation.poll(timeout=0.05 if self.runner.pending else 0.5):
                self.take_samples(request, texts)
            if self.runner.pending:
                self.runner.poll(timeout=0.05 if not self.generation.done else 1.0)
            elif self.generation.done:
                break

    def take_samples(self, request: Request, texts: list[str]) -> None:
        """Store freshly generated samples and send them to execution."""
        res = self.results[request.problem.id]
        key = prompt_key(request.problem, request.style)
        if self.backend.stores_samples:
            self.store.add_samples(self.source, key, request.problem.id, texts)
        res.texts.extend(texts)
        self.suite.generated += len(texts)
        self.progress({"stage": "generate", "done": self.suite.generated, "total": self.generation.requested})
        for sharer in self._pools.get(key, [res]):
            if sharer is not res:  # the pool's other problems take their share of the new samples
                sharer.texts.extend(res.texts[len(sharer.texts):self._want.get(sharer.problem.id, 0)])
            self.send(sharer)

    def send(self, res: ProblemResult) -> None:
        """Send the problem's samples that have not gone to execution yet."""
        start = self._sent.get(res.problem.id, 0)
        if start < len(res.texts):
            self.runner.add(res.problem, res.style, res.texts, start)
            self._sent[res.problem.id] = len(res.texts)

    # -- score -------------------------------------------------------------------------------

    def score(self) -> None:
        suite, runner = self.suite, self.runner
        suite.runs_executed = runner.executed
        suite.runs_cached = runner.reused
        suite.sandbox = runner.sandbox_name
        suite.isolated = runner.isolates
        suite.load_seconds = self.generation.load_seconds
        suite.generate_seconds = self.generation.generate_seconds
        suite.tokens_generated = self.backend.tokens_generated
        suite.backend = self.backend.describe()  # what happened on the way (e.g. an endpoint taken out)
        suite.usage, suite.tokens_counted = dict(getattr(self.backend, "usage", {})), self.backend.counts_tokens
        for res in self.results.values():
            res.n, res.correct, res.flaky = 0, 0, 0
            res.passed_samples, res.first_failure = [], None
            res.reasons.clear()
            score_problem(res, [runner.runs_of(res.problem, res.style, t) for t in res.texts],
                          self.settings.flaky_pass)
