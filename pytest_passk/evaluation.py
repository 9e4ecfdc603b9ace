"""The controller: plan which samples are missing, generate them, execute every distinct candidate in
the sandbox (overlapping with generation), and score each problem."""
from __future__ import annotations

import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_passk import stats
from pytest_passk.backends import Backend, Request
from pytest_passk.candidate import program_for
from pytest_passk.keys import prompt_key, run_key
from pytest_passk.options import Settings
from pytest_passk.problem import Problem
from pytest_passk.protocol import Job, RunResult
from pytest_passk.sandbox import Sandbox
from pytest_passk.store import Store, code_hash


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
    wall_seconds: float = 0.0
    sandbox: str = ""
    isolated: bool = True
    backend: str = ""

    @property
    def scored(self) -> list[ProblemResult]:
        """Problems that have samples; the suite metrics are over these."""
        return [p for p in self.problems if p.n > 0]

    @property
    def without_samples(self) -> list[ProblemResult]:
        return [p for p in self.problems if p.n == 0]

    @property
    def samples(self) -> int:
        return sum(p.n for p in self.problems)

    @property
    def coverage(self) -> float:
        return stats.coverage([(p.n, p.correct) for p in self.scored])

    def pass_at(self, k: int) -> float:
        return stats.mean_pass_at_k([(p.n, p.correct) for p in self.scored], k)

    @property
    def flaky_problems(self) -> int:
        return sum(1 for p in self.problems if p.flaky)

    @property
    def runs_per_second(self) -> float:
        return self.runs_executed / self.execute_seconds if self.execute_seconds > 0 else math.nan

    def curve(self) -> list[tuple[int, float]]:
        """Expected coverage with k samples per problem, k up to the smallest n."""
        return stats.coverage_curve([(p.n, p.correct) for p in self.scored])

    def metric(self, name: str) -> float:
        if name == "coverage":
            return self.coverage
        return self.pass_at(int(name.split("@", 1)[1]))


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

    def style_of(self, problem: Problem) -> str:
        if problem.style:
            return problem.style
        if self.settings.style != "auto":
            return self.settings.style
        return self.backend.style_for(problem) or self.backend.default_style()

    def run(self) -> SuiteResult:
        t0 = time.monotonic()
        settings = self.settings
        source = self.backend.source_key()
        results = {p.id: ProblemResult(problem=p, style=self.style_of(p)) for p in self.problems}

        # plan: what the store already holds, what must be generated
        requests: list[Request] = []
        for p in self.problems:
            res = results[p.id]
            have = self.store.samples(source, prompt_key(p, res.style)) if self.backend.stores_samples else []
            res.texts = have[: p.n]
            available = self.backend.available(p)
            want = p.n if available is None else available
            if want > len(res.texts):
                requests.append(Request(problem=p, n=want - len(res.texts), style=res.style, start=len(res.texts)))
        if not self.backend.stores_samples:  # samples at hand: no generation stage at all
            for request, texts in self.backend.generate(requests):
                results[request.problem.id].texts.extend(texts)
            requests = []

        suite = SuiteResult(problems=list(results.values()), ks=sorted({k for p in self.problems for k in p.ks}),
                            backend=self.backend.describe(), replayed=not self.backend.stores_samples)

        # The sandbox starts in the background (containers boot while the model loads) unless
        # every verdict is already in the store.
        keys = {p.id: run_key(p, settings, p.timeout or settings.timeout) for p in self.problems}
        cached = {key: self.store.runs(key) for key in set(keys.values())}
        sandbox_box: list[Sandbox | BaseException] = []

        def boot_sandbox() -> None:
            try:
                box = self.sandbox_factory()
                sandbox_box.append(box)
                box.start(sorted({q.nodeid for q in self.problems}))
            except BaseException as exc:
                sandbox_box.append(exc)

        boot_thread: threading.Thread | None = None
        def missing_verdicts(res: ProblemResult) -> bool:
            known = cached[keys[res.problem.id]]
            return any((code_hash(program_for(res.style, res.problem.prompt, t)), r) not in known
                       for t in res.texts for r in range(settings.runs))

        if requests or any(missing_verdicts(r) for r in results.values()):
            boot_thread = threading.Thread(target=boot_sandbox, name="passk-sandbox-start", daemon=True)
            boot_thread.start()

        # generation runs in a thread and hands each finished problem to the execution loop
        generated: queue.Queue[tuple[Request, list[str]] | BaseException | None] = queue.Queue()

        def generate() -> None:
            nonlocal gen_start
            try:
                self.backend.prepare(requests)
                suite.load_seconds = time.monotonic() - gen_start
                gen_start = time.monotonic()
                for item in self.backend.generate(requests):
                    generated.put(item)
                suite.generate_seconds = time.monotonic() - gen_start
                generated.put(None)
                # Free the engine's cores and memory for execution as soon as sampling is done.
                self.backend.close()
            except BaseException as exc:  # re-raised in the main thread
                generated.put(exc)

        gen_thread = None
        gen_start = time.monotonic()
        to_generate = sum(r.n for r in requests)
        if requests:
            gen_thread = threading.Thread(target=generate, name="passk-generate", daemon=True)
            gen_thread.start()
        else:
            generated.put(None)

        sandbox: Sandbox | None = None
        verdicts: dict[tuple[str, str], dict[int, RunResult]] = {}
        jobs: dict[int, tuple[str, str, int]] = {}
        job_code: dict[int, str] = {}
        next_id = 0
        total_jobs = 0
        done_jobs = 0
        gen_done = False
        exec_start: float | None = None
        exec_time = 0.0

        def enqueue(res: ProblemResult, start: int = 0) -> None:
            nonlocal next_id, total_jobs, sandbox, exec_start
            p = res.problem
            timeout = p.timeout or settings.timeout
            for index in range(start, len(res.texts)):
                text = res.texts[index]
                code = program_for(res.style, p.prompt, text)
                h = code_hash(code)
                if (p.id, h) in verdicts:
                    continue
                have = verdicts[(p.id, h)] = {}
                for r in range(settings.runs):
                    hit = cached[keys[p.id]].get((h, r))
                    if hit is not None:
                        have[r] = hit
                        suite.runs_cached += 1
                        continue
                    if sandbox is None:
                        sandbox = self._await_sandbox(boot_thread, sandbox_box)
                        exec_start = time.monotonic()
                    sandbox.submit(Job(id=next_id, nodeid=p.nodeid, problem_id=p.id, index=index,
                                       prompt=p.prompt, text=text, code=code, timeout=timeout,
                                       memory=settings.memory))
                    jobs[next_id] = (p.id, h, r)
                    job_code[next_id] = code
                    next_id += 1
                    total_jobs += 1

        try:
            for res in results.values():
                if res.texts:
                    enqueue(res)
            while True:
                # take in whatever generation has finished
                while not gen_done:
                    try:
                        item = generated.get(timeout=0.05 if (sandbox and sandbox.pending) else 0.5)
                    except queue.Empty:
                        break
                    if item is None:
                        gen_done = True
                    elif isinstance(item, BaseException):
                        raise item
                    else:
                        request, texts = item
                        res = results[request.problem.id]
                        if self.backend.stores_samples:
                            self.store.add_samples(source, prompt_key(request.problem, request.style),
                                                   request.problem.id, texts)
                        start = len(res.texts)
                        res.texts.extend(texts)
                        suite.generated += len(texts)
                        self.progress({"stage": "generate", "done": suite.generated, "total": to_generate})
                        enqueue(res, start)
                if sandbox is not None and sandbox.pending:
                    result = sandbox.next_result(timeout=0.05 if not gen_done else 1.0)
                    if result is not None:
                        pid, h, r = jobs.pop(result.id)
                        code = job_code.pop(result.id)
                        self.store.add_run(code_hash(code), keys[pid], r, result)
                        verdicts[(pid, h)][r] = result
                        done_jobs += 1
                        self.progress({"stage": "execute", "done": done_jobs, "total": total_jobs})
                elif gen_done:
                    break
            if exec_start is not None:
                exec_time = time.monotonic() - exec_start
        finally:
            if boot_thread is not None:
                boot_thread.join()
            for box in sandbox_box:
                if isinstance(box, Sandbox):
                    box.close()
                    suite.sandbox = box.describe()
                    suite.isolated = box.isolates
            self.backend.close()

        suite.runs_executed = done_jobs
        suite.tokens_generated = self.backend.tokens_generated
        suite.execute_seconds = exec_time
        for res in results.values():
            self._score(res, verdicts)
        suite.wall_seconds = time.monotonic() - t0
        return suite

    @staticmethod
    def _await_sandbox(boot: threading.Thread | None, box: list[Sandbox | BaseException]) -> Sandbox:
        assert boot is not None, "a job was submitted although every verdict was stored"
        boot.join()
        errors = [b for b in box if isinstance(b, BaseException)]
        if errors:
            raise errors[0]
        return next(b for b in box if isinstance(b, Sandbox))

    def _score(self, res: ProblemResult, verdicts: dict[tuple[str, str], dict[int, RunResult]]) -> None:
        p = res.problem
        res.n = len(res.texts)
        for i, text in enumerate(res.texts):
            runs = verdicts.get((p.id, code_hash(program_for(res.style, p.prompt, text))), {})
            ordered = [runs[r] for r in sorted(runs)]
            oks = [r.passed for r in ordered]
            passed = stats.candidate_passed(oks, self.settings.flaky_pass)
            if stats.is_flaky(oks):
                res.flaky += 1
            res.passed_samples.append(passed)
            res.correct += passed
            for r in ordered:
                res.reasons[r.reason] += 1
            if not passed and res.first_failure is None:
                failing = next((r for r in ordered if not r.passed), None)
                if failing is not None:
                    res.first_failure = (i, failing)
        res.pass_at = {k: stats.pass_at_k(res.n, res.correct, k) for k in p.ks} if res.n else {k: math.nan for k in p.ks}
