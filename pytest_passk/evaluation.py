"""The controller: an evaluation is a sequence of rounds, each one planning which samples are
missing, generating them and executing every distinct candidate (overlapping with generation);
then the verdicts that decide a problem are confirmed and every problem is scored.

Where each stage lives: plan is :meth:`Evaluation.plan` (with a budget, :mod:`pytest_passk.adaptive`
decides each round), generate is :mod:`pytest_passk.generation`, execute is
:mod:`pytest_passk.runner` (controller side) and the sandbox, the checks of the verifier and of
deciding verdicts are :mod:`pytest_passk.checks`, score is :mod:`pytest_passk.scoring`.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from pytest_passk import checks
from pytest_passk.adaptive import BudgetError, Policy, State, fit_prior
from pytest_passk.backends import Backend, Request
from pytest_passk.candidate import program_for
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
        self.results = {p.id: ProblemResult(problem=p, style=self.style_of(p),
                                            timeout=p.timeout or settings.timeout) for p in problems}
        self.suite = SuiteResult(problems=list(self.results.values()), ks=sorted({k for p in problems for k in p.ks}),
                                 backend=backend.describe(), replayed=not backend.stores_samples,
                                 store=store.path, allow_partial=settings.allow_partial, budget=settings.budget)
        # Making a sandbox is cheap (start() does the work); it names what candidates run on, which
        # is part of the verdicts' key (e.g. the image id that --passk-image=auto resolved to).
        sandbox = sandbox_factory()
        self.environment = sandbox.environment()
        self.runner = Runner(settings, problems, store, lambda: sandbox, self.progress)
        self.generation = Generation(backend)
        self._sent: dict[str, int] = {}  #: samples of each problem already sent to execution
        # Problems with the same prompt (and style) share one pool of samples, each taking its first
        # ``want``: a pool is generated once, for the problem that wants most.
        self._pools: dict[str, list[ProblemResult]] = {}
        for res in self.results.values():
            self._pools.setdefault(prompt_key(res.problem, res.style), []).append(res)
        self._want: dict[str, int] = {}
        self._references_checked = False
        self._confirmed: dict[str, set[str]] = {}  #: programs of each problem rerun to confirm

    def style_of(self, problem: Problem) -> str:
        if problem.style:
            return problem.style
        if self.settings.style != "auto":
            return self.settings.style
        return self.backend.style_for(problem) or self.backend.default_style()

    def key(self, res: ProblemResult) -> str:
        """The run key of the problem's candidates (their timeout may come from the reference)."""
        return run_key(res.problem, self.settings, res.timeout, self.environment)

    def reference_key(self, res: ProblemResult) -> str:
        """The reference's verdicts are kept apart from the candidates' (a candidate identical to
        the reference still gets its own runs and confirmation)."""
        timeout = res.problem.timeout or self.settings.timeout
        return run_key(res.problem, self.settings, timeout, self.environment) + "-reference"

    def program(self, res: ProblemResult, text: str) -> str:
        return program_for(res.style, res.problem.prompt, text)

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> SuiteResult:
        t0 = time.monotonic()
        try:
            if self.settings.budget is None:
                self.first_round(self.plan(), last=True)
            else:
                self.adaptive_rounds(self.settings.budget)
            self.confirm()
        finally:
            self.suite.execute_seconds = self.runner.close()
            self.backend.close()
        self.score()
        self.suite.wall_seconds = time.monotonic() - t0
        return self.suite

    def first_round(self, requests: list[Request], last: bool) -> None:
        """Generation starts, the verifiers are checked meanwhile, then candidates execute."""
        if requests or self.reference_runs_missing() or any(
                self.runner.missing(self.key(r), [self.program(r, t) for t in r.texts], range(self.settings.runs),
                                    need_returns=r.problem.answer is None)
                for r in self.results.values()):
            self.runner.boot()  # containers boot while the model loads
        self.generation.start(requests, last=last)
        self.check_references()
        self.execute_round()

    def adaptive_rounds(self, budget: int) -> None:
        policy = Policy(budget, self.settings.cap)
        states = self.states()
        # A problem without a sample is unsolved whatever the model can do: every problem that can
        # have samples (a samples file may have none for some) needs one from the budget.
        open_ = [s for s in states if s.cap != 0]
        if budget < len(open_):
            raise BudgetError(
                f"--passk-budget={budget} is less than the {len(open_)} problems to sample: every problem needs "
                f"at least one sample; pass at least {len(open_)} (e.g. {8 * len(open_)} for 8 per problem on average)")
        self.first_round(self.plan(self.wanted(policy.first_round(states))), last=False)
        while True:
            # Deciding passes are confirmed before the policy looks: a coin-flip pass found flaky
            # leaves its problem open for more samples, instead of settling it and being struck off
            # after the budget is spent.
            self.confirm()
            more = policy.next_round(self.states())
            if not more:
                break
            self.generation.start(self.plan(self.wanted(more)), last=False)
            self.execute_round()
        self.suite.rounds = policy.rounds

    def states(self) -> list[State]:
        """What the adaptive policy sees of each problem (broken verifiers take no samples)."""
        out = []
        for res in self.results.values():
            if res.verifier == "broken":
                continue
            self.score_one(res)
            available = self.backend.available(res.problem)
            out.append(State(id=res.problem.id, n=res.n, c=res.correct, target=res.problem.min_correct,
                             cap=available))
        return out

    def wanted(self, more: dict[str, int]) -> dict[str, int]:
        return {pid: len(self.results[pid].texts) + m for pid, m in more.items()}

    # -- plan --------------------------------------------------------------------------------

    def plan(self, wanted: dict[str, int] | None = None) -> list[Request]:
        """Bring each problem up to ``wanted[id]`` samples (default: its marker's n; for a replay,
        every sample the file has): from the store first, at once from a backend that has its
        samples at hand (a file, served on demand), else as requests for the generate stage."""
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

    # -- check the verifiers -----------------------------------------------------------------

    def to_check(self) -> list[ProblemResult]:
        """The problems whose reference is run: those with one, except, with ``--passk-allow-partial``,
        problems a samples file has nothing for (they are not scored)."""
        return [r for r in self.results.values() if r.problem.reference is not None
                and not (self.settings.allow_partial and self.backend.available(r.problem) == 0)]

    def reference_runs_missing(self) -> bool:
        runs = range(self.settings.reference_runs)
        return any(self.runner.missing(self.reference_key(r), [r.problem.reference], runs) for r in self.to_check())

    def check_references(self) -> None:
        """Run each reference solution through its test; set the verifier's status and, where
        the marker gives no timeout, the candidates' timeout from the reference's runtime.

        A reference that fails at least once gets ``--passk-confirm`` more runs before its verifier
        is called broken: a verifier that fails half the time would otherwise look broken after 3
        failing runs once in 8; with the 6 more it does so once in 512 (any pass makes it flaky)."""
        if self._references_checked or not self.settings.reference_runs:
            return
        self._references_checked = True
        base, extra = self.settings.reference_runs, self.settings.confirm
        with_reference = self.to_check()
        self._run_references(with_reference, range(base))
        first = [self.runner.runs_of(self.reference_key(r), r.problem.reference, 0, base) for r in with_reference]
        failing = [r for r, ran in zip(with_reference, first) if not all(x.passed for x in ran)]
        self._run_references(failing, range(base, base + extra))
        for res, ran in zip(with_reference, first):
            if not all(x.passed for x in ran):  # it had more runs (the second pass)
                ran = self.runner.runs_of(self.reference_key(res), res.problem.reference, 0, base + extra)
            res.reference_runs = ran
            res.verifier = checks.verifier_status(res.reference_runs)
            derived = checks.derived_timeout(res.reference_runs)
            if res.problem.timeout is None and derived is not None:
                res.timeout, res.timeout_derived = derived, True

    def _run_references(self, which: list[ProblemResult], runs: range) -> None:
        for res in which:
            p = res.problem
            self.runner.submit(p, self.reference_key(res), p.reference, p.reference, -1, runs,
                               p.timeout or self.settings.timeout, kind="reference")
        self.runner.drain()

    # -- generate and execute, overlapping ---------------------------------------------------

    def execute_round(self) -> None:
        """Execute every sample not run yet while the round's generation goes on; return once
        every sample of the round has its verdicts."""
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
        """Send the problem's samples that have not gone to execution yet (none for a problem
        whose verifier is broken: its verdicts would mean nothing)."""
        start = self._sent.get(res.problem.id, 0)
        if start >= len(res.texts) or res.verifier == "broken":
            return
        key = self.key(res)
        for index in range(start, len(res.texts)):
            text = res.texts[index]
            self.runner.submit(res.problem, key, self.program(res, text), text, index,
                               range(self.settings.runs), res.timeout)
        self._sent[res.problem.id] = len(res.texts)

    # -- confirm deciding verdicts -----------------------------------------------------------

    def confirm(self) -> None:
        """Rerun the passes that decide a problem, and its timeouts, ``--passk-confirm`` more times
        in fresh processes, on another worker than the last run where there is one."""
        extra = self.settings.confirm
        if not extra:
            return
        base = self.settings.runs
        for res in self.results.values():
            if res.verifier == "broken" or not res.texts:
                continue
            key = self.key(res)
            first: dict[str, int] = {}
            for i, text in enumerate(res.texts):
                first.setdefault(self.program(res, text), i)
            codes = list(first)
            chosen = checks.to_confirm([self.runner.runs_of(key, code, 0, base) for code in codes])
            for c in chosen:
                code, index = codes[c], first[codes[c]]
                runs = self.runner.runs_of(key, code, 0, base)
                avoid = runs[-1].worker if runs and runs[-1].worker else None
                self.runner.submit(res.problem, key, code, res.texts[index], index,
                                   range(checks.CONFIRM_BASE, checks.CONFIRM_BASE + extra), res.timeout,
                                   avoid=avoid, kind="confirm")
                self._confirmed.setdefault(res.problem.id, set()).add(code)
            res.confirmed = len(self._confirmed.get(res.problem.id, ()))
        self.runner.drain()

    # -- score -------------------------------------------------------------------------------

    def score_one(self, res: ProblemResult) -> None:
        res.n, res.correct, res.flaky = 0, 0, 0
        res.passed_samples, res.first_failure, res.flaky_candidates = [], None, []
        res.reasons.clear()
        key, base = self.key(res), self.settings.runs
        broken = res.verifier == "broken"
        codes = [self.program(res, t) for t in res.texts]
        runs = [[] if broken else self.runner.runs_of(key, code, 0, base) for code in codes]
        confirm = [[] if broken else self.runner.runs_of(key, code, checks.CONFIRM_BASE) for code in codes]
        score_problem(res, runs, self.settings.flaky_pass, confirm)
        seen: set[str] = set()
        for i, code in enumerate(codes):
            if code in seen:
                continue
            seen.add(code)
            every = runs[i] + confirm[i]
            if len({r.passed for r in every}) > 1:
                res.flaky_candidates.append(checks.flip_record(i, every))

    def score(self) -> None:
        from pytest_passk.scoring import score_selection

        suite, runner = self.suite, self.runner
        # The candidates' own runs; reference and confirmation runs are counted apart.
        suite.runs_executed = runner.executed_by["candidate"]
        suite.runs_cached = runner.reused_by["candidate"]
        suite.confirm_runs = runner.executed_by["confirm"]
        suite.confirm_reused = runner.reused_by["confirm"]
        suite.reference_executed = runner.executed_by["reference"]
        suite.sandbox = runner.sandbox_name
        suite.isolated = runner.isolates
        suite.load_seconds = self.generation.load_seconds
        suite.generate_seconds = self.generation.generate_seconds
        suite.tokens_generated = self.backend.tokens_generated
        suite.backend = self.backend.describe()  # what happened on the way (e.g. an endpoint taken out)
        suite.usage, suite.tokens_counted = dict(getattr(self.backend, "usage", {})), self.backend.counts_tokens
        for res in self.results.values():
            self.score_one(res)
        if suite.adaptive:
            from pytest_passk.extrapolate import posterior_pass_at, why_not

            counts = [(p.n, p.correct) for p in suite.scored]
            suite.prior, suite.no_prior = fit_prior(counts), why_not(counts)
            # The fixed-n estimator is biased when n depended on the verdicts: pass@k comes from
            # the fitted model, or is undefined without one.
            for res in suite.scored:
                res.pass_at = {k: (posterior_pass_at(*suite.prior, res.n, res.correct, k) if suite.prior
                                   else math.nan) for k in res.problem.ks}
            # maj@k would be biased: the policy stops a problem at its first pass, so the shares of
            # its samples' answers are not those of the model (a problem solved by its first sample
            # has maj@1 = 1). It needs a fixed n per problem.
            return
        ks = sorted(set(suite.ks) | {k for k, _ in suite.curve() if k <= 256})
        for res in self.results.values():
            key = self.key(res)
            first_runs = [self.runner.runs_of(key, self.program(res, t))[:1] for t in res.texts]
            score_selection(res, [r[0].returns if r else "" for r in first_runs], ks)
