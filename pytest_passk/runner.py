"""The execute stage, controller side: every distinct candidate runs ``--passk-runs`` times in the
sandbox; verdicts already in the store are reused and new ones are stored as they arrive."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_passk.candidate import program_for
from pytest_passk.options import Settings
from pytest_passk.problem import Problem
from pytest_passk.protocol import Job, RunResult
from pytest_passk.sandbox import Sandbox
from pytest_passk.store import TRANSIENT_REASONS, Store, code_hash

#: ``(problem id, code hash) -> {run number: verdict}``
Verdicts = dict[tuple[str, str], dict[int, RunResult]]


@dataclass
class _Pending:
    problem_id: str
    code_hash: str
    run: int


class Runner:
    """Submits candidate runs to a sandbox that boots in the background, and collects the verdicts.

    ``keys`` maps each problem id to its run key (see :func:`pytest_passk.keys.run_key`).
    """

    def __init__(self, settings: Settings, problems: list[Problem], keys: dict[str, str], store: Store,
                 sandbox_factory: Callable[[], Sandbox],
                 progress: Callable[[dict[str, Any]], None] = lambda event: None) -> None:
        self.settings = settings
        self.problems = problems
        self.keys = keys
        self.store = store
        self.sandbox_factory = sandbox_factory
        self.progress = progress
        # --passk-redo-transient: verdicts that may be the machine's fault are not reused, so run again.
        skip = TRANSIENT_REASONS if settings.redo_transient else ()
        self.cached = {key: store.runs(key, skip) for key in set(keys.values())}
        self.verdicts: Verdicts = {}
        self.submitted = 0  #: runs sent to the sandbox
        self.executed = 0  #: runs whose verdict came back
        self.reused = 0  #: runs whose verdict came from the store
        self.sandbox_name = ""
        self.isolates = True
        self._jobs: dict[int, _Pending] = {}
        self._job_code: dict[int, str] = {}
        self._next_id = 0
        self._sandbox: Sandbox | None = None
        self._boxes: list[Sandbox | BaseException] = []
        self._boot_thread: threading.Thread | None = None
        self._exec_start: float | None = None

    # -- the sandbox -------------------------------------------------------------------------

    def boot(self) -> None:
        """Start the sandbox in the background (containers boot while the model loads); idempotent."""
        if self._boot_thread is None:
            self._boot_thread = threading.Thread(target=self._boot, name="passk-sandbox-start", daemon=True)
            self._boot_thread.start()

    def _boot(self) -> None:
        try:
            box = self.sandbox_factory()
            self._boxes.append(box)
            box.start(sorted({p.nodeid for p in self.problems}))
        except BaseException as exc:
            self._boxes.append(exc)

    def _ready_sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self.boot()
            assert self._boot_thread is not None
            self._boot_thread.join()
            errors = [b for b in self._boxes if isinstance(b, BaseException)]
            if errors:
                raise errors[0]
            self._sandbox = next(b for b in self._boxes if isinstance(b, Sandbox))
            self._exec_start = time.monotonic()
        return self._sandbox

    @property
    def execute_seconds(self) -> float:
        return time.monotonic() - self._exec_start if self._exec_start is not None else 0.0

    def close(self) -> float:
        """Stop the sandbox; returns the seconds it spent executing."""
        seconds = self.execute_seconds
        if self._boot_thread is not None:
            self._boot_thread.join()
        for box in self._boxes:
            if isinstance(box, Sandbox):
                box.close()
                self.sandbox_name = box.describe()
                self.isolates = box.isolates
        return seconds

    # -- candidates --------------------------------------------------------------------------

    def missing(self, problem: Problem, style: str, texts: list[str]) -> bool:
        """Whether any run of these samples is not in the store yet."""
        known = self.cached[self.keys[problem.id]]
        return any((code_hash(program_for(style, problem.prompt, t)), r) not in known
                   for t in texts for r in range(self.settings.runs))

    def add(self, problem: Problem, style: str, texts: list[str], start: int = 0) -> None:
        """Run the samples ``texts[start:]`` that have not run yet (each distinct program once)."""
        timeout = problem.timeout or self.settings.timeout
        known = self.cached[self.keys[problem.id]]
        for index in range(start, len(texts)):
            text = texts[index]
            code = program_for(style, problem.prompt, text)
            h = code_hash(code)
            if (problem.id, h) in self.verdicts:
                continue
            have = self.verdicts[(problem.id, h)] = {}
            for r in range(self.settings.runs):
                hit = known.get((h, r))
                if hit is not None:
                    have[r] = hit
                    self.reused += 1
                    continue
                sandbox = self._ready_sandbox()
                sandbox.submit(Job(id=self._next_id, nodeid=problem.nodeid, problem_id=problem.id, index=index,
                                   prompt=problem.prompt, text=text, code=code, timeout=timeout,
                                   memory=self.settings.memory, run=r, support=problem.support))
                self._jobs[self._next_id] = _Pending(problem.id, h, r)
                self._job_code[self._next_id] = code
                self._next_id += 1
                self.submitted += 1

    @property
    def pending(self) -> int:
        return self._sandbox.pending if self._sandbox is not None else 0

    def poll(self, timeout: float) -> RunResult | None:
        """Take one finished run (waiting up to ``timeout`` s), store its verdict and return it."""
        if self._sandbox is None or not self._sandbox.pending:
            return None
        result = self._sandbox.next_result(timeout=timeout)
        if result is None:
            return None
        job = self._jobs.pop(result.id)
        code = self._job_code.pop(result.id)
        self.store.add_run(code_hash(code), self.keys[job.problem_id], job.run, result)
        self.verdicts[(job.problem_id, job.code_hash)][job.run] = result
        self.executed += 1
        self.progress({"stage": "execute", "done": self.executed, "total": self.submitted})
        return result

    def runs_of(self, problem: Problem, style: str, text: str) -> list[RunResult]:
        """The verdicts of one sample's program, in run order."""
        runs = self.verdicts.get((problem.id, code_hash(program_for(style, problem.prompt, text))), {})
        return [runs[r] for r in sorted(runs)]
