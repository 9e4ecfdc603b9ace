"""The execute stage, controller side: every distinct candidate runs ``--passk-runs`` times in the
sandbox; verdicts already in the store are reused and new ones are stored as they arrive."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pytest_passk.options import Settings
from pytest_passk.problem import Problem
from pytest_passk.protocol import Job, RunResult
from pytest_passk.sandbox import Sandbox
from pytest_passk.store import TRANSIENT_REASONS, Store, code_hash

#: ``(run key, code hash) -> {run number: verdict}``
Verdicts = dict[tuple[str, str], dict[int, RunResult]]


@dataclass
class _Pending:
    key: str
    code_hash: str
    run: int
    kind: str


#: Why a run is made: a candidate's ``--passk-runs``, its reference solution, or a confirmation rerun.
KINDS = ("candidate", "reference", "confirm")


class Runner:
    """Submits program runs to a sandbox that boots in the background, and collects the verdicts.

    A verdict is keyed by the run key (:func:`pytest_passk.keys.run_key`: the test, the limits and
    where it runs), the program's hash and the run number; one already stored is reused.
    """

    def __init__(self, settings: Settings, problems: list[Problem], store: Store,
                 sandbox_factory: Callable[[], Sandbox],
                 progress: Callable[[dict[str, Any]], None] = lambda event: None) -> None:
        self.settings = settings
        self.problems = problems
        self.store = store
        self.sandbox_factory = sandbox_factory
        self.progress = progress
        # --passk-redo-transient: verdicts that may be the machine's fault are not reused, so run again.
        self._skip = TRANSIENT_REASONS if settings.redo_transient else ()
        self.verdicts: Verdicts = {}
        self.submitted = 0  #: runs sent to the sandbox
        self.executed = 0  #: runs whose verdict came back
        self.reused = 0  #: runs whose verdict came from the store
        #: the same counts by why the run was made (:data:`KINDS`)
        self.executed_by = dict.fromkeys(KINDS, 0)
        self.reused_by = dict.fromkeys(KINDS, 0)
        self.sandbox_name = ""
        self.isolates = True
        self._cached: dict[tuple[str, bool], dict[tuple[str, int], RunResult]] = {}
        self._jobs: dict[int, _Pending] = {}
        self._in_flight: set[tuple[str, str, int]] = set()
        self._next_id = 0
        self._sandbox: Sandbox | None = None
        self._boxes: list[Sandbox | BaseException] = []
        self._boot_thread: threading.Thread | None = None
        self._exec_start: float | None = None

    def stored(self, key: str, need_returns: bool = False) -> dict[tuple[str, int], RunResult]:
        """Every verdict the store holds under ``key`` (read once); with ``need_returns``, not a first
        run stored without what the candidate returned (it runs again, so the sample votes)."""
        if (key, need_returns) not in self._cached:
            self._cached[(key, need_returns)] = self.store.runs(key, self._skip, need_returns)
        return self._cached[(key, need_returns)]

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

    # -- programs ---------------------------------------------------------------------------

    def missing(self, key: str, codes: Iterable[str], runs: Iterable[int], need_returns: bool = False) -> bool:
        """Whether any of these runs is neither stored nor known yet."""
        known = self.stored(key, need_returns)
        runs = list(runs)
        for code in codes:
            h = code_hash(code)
            have = self.verdicts.get((key, h), {})
            if any(r not in have and (h, r) not in known for r in runs):
                return True
        return False

    def submit(self, problem: Problem, key: str, code: str, text: str, index: int, runs: Iterable[int],
               timeout: float, avoid: str | None = None, kind: str = "candidate") -> None:
        """Run ``code`` (sample ``index`` of ``problem``, or -1 for its reference) through the test
        as the runs numbered ``runs``; runs already known, stored or in flight are not repeated.
        A function problem's candidates vote for maj@k with what they returned: a stored first run
        without that record is repeated."""
        h = code_hash(code)
        have = self.verdicts.setdefault((key, h), {})
        known = self.stored(key, need_returns=kind != "reference" and problem.answer is None)
        for r in runs:
            if r in have or (key, h, r) in self._in_flight:
                continue
            hit = known.get((h, r))
            if hit is not None:
                have[r] = hit
                self.reused += 1
                self.reused_by[kind] += 1
                continue
            sandbox = self._ready_sandbox()
            sandbox.submit(Job(id=self._next_id, nodeid=problem.nodeid, problem_id=problem.id, index=index,
                               prompt=problem.prompt, text=text, code=code, timeout=timeout,
                               memory=self.settings.memory, run=r, avoid=avoid, support=problem.support))
            self._jobs[self._next_id] = _Pending(key, h, r, kind)
            self._in_flight.add((key, h, r))
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
        self._in_flight.discard((job.key, job.code_hash, job.run))
        self.store.add_run(job.code_hash, job.key, job.run, result)
        self.verdicts[(job.key, job.code_hash)][job.run] = result
        self.executed += 1
        self.executed_by[job.kind] += 1
        self.progress({"stage": "execute", "done": self.executed, "total": self.submitted, "passed": result.passed,
                       "kinds": self.executed_by})
        return result

    def drain(self) -> None:
        """Wait until every submitted run has its verdict."""
        while self.pending:
            self.poll(timeout=1.0)

    def runs_of(self, key: str, code: str, first: int = 0, stop: int | None = None) -> list[RunResult]:
        """The verdicts of one program, in run order (run numbers ``first`` up to ``stop``)."""
        runs = self.verdicts.get((key, code_hash(code)), {})
        return [runs[r] for r in sorted(runs) if r >= first and (stop is None or r < stop)]
