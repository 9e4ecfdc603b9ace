"""A pool of verifier processes fed from one job queue; the base of every process sandbox.

Each worker is a verifier (:mod:`pytest_passk.execute.verifier`): a trusted process on this host that
runs test bodies and reaches candidate processes through zygotes in the sandbox. A subclass says how
a zygote is started (a local subprocess, a container: :meth:`WorkerPool.zygote_command`); the pool
does the handshake, hands out jobs, watches for verifiers that hang or die, replaces them, and retries
the job that was in flight once before failing it with reason ``crash``.
"""
from __future__ import annotations

import collections
import gc
import os
import queue
import select
import subprocess
import sys
import threading
import time
from abc import abstractmethod
from pathlib import Path
from typing import Any

from pytest_passk import protocol
from pytest_passk.protocol import Job, RunResult
from pytest_passk.sandbox import Sandbox, SandboxError, worker_cpu

#: Seconds a worker may take beyond a job's own timeout before the host gives up on it.
GRACE = 20.0
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
START_TIMEOUT = 120.0


class _Connection:
    """One worker process: line-framed protocol over its stdin/stdout, stderr kept for diagnostics."""

    def __init__(self, proc: subprocess.Popen[bytes], label: str) -> None:
        self.proc = proc
        self.label = label
        self._buf = bytearray()
        self.ready: dict[str, Any] = {}  #: the worker's ready message
        self._stderr: collections.deque[bytes] = collections.deque(maxlen=64)
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            self._stderr.append(line[:2000])

    def stderr_tail(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")[-4000:]

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        """The next message, or None on EOF or timeout."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self._buf += chunk
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf = bytearray(rest)
        return protocol.decode(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._stderr_thread.join(timeout=5)  # EOF once the process is gone
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class WorkerPool(Sandbox):
    """Runs ``settings.workers`` workers; subclasses implement :meth:`spawn`."""

    retries = 1
    #: Jobs sent ahead to each worker.
    depth = 2

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._results: queue.Queue[RunResult] = queue.Queue()
        self._pending = 0
        self._threads: list[threading.Thread] = []
        self._connections: dict[int, _Connection] = {}
        self._nodeids: list[str] = []
        self._closed = False
        self.replaced = 0  #: workers replaced after dying
        self._fatal: SandboxError | None = None  #: set when the sandbox cannot go on

    @abstractmethod
    def zygote_command(self, index: int) -> tuple[list[str], dict[str, str] | None]:
        """How verifier ``index`` starts a zygote: argv and environment. ``{zygote}``, ``{start}`` and
        ``{hashseed}`` in them are replaced by the zygote's index, its start count and a fresh seed."""

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        """Start verifier ``index`` on this host (trusted: it never runs candidate code)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return subprocess.Popen(
            [sys.executable, "-m", "pytest_passk.execute.verifier"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=self.settings.invocation_dir, env=env, start_new_session=True,
        )

    def init_fields(self, index: int) -> dict[str, Any]:
        """Fields of the ``init`` message; subclasses add theirs (e.g. ``posture_check``)."""
        s = self.settings
        argv, env = self.zygote_command(index)
        return {
            "version": protocol.VERSION, "args": s.pytest_args, "invocation_dir": s.invocation_dir,
            "rootdir": s.rootdir, "nodeids": self._nodeids, "output_cap": s.output_cap,
            "label": f"{self.name}-{index}", "zygote_argv": argv, "zygote_env": env,
            "zygotes": max(1, min(self.settings.zygotes, 2)), "cpu": worker_cpu(s, index),
        }

    def start(self, nodeids: list[str]) -> None:
        self._nodeids = list(nodeids)
        errors: list[BaseException] = []

        def boot(i: int) -> None:
            try:
                self._connections[i] = self._connect(i)
            except BaseException as exc:  # reported below, from the main thread
                errors.append(exc)

        boots = [threading.Thread(target=boot, args=(i,)) for i in range(self.settings.workers)]
        for t in boots:
            t.start()
        for t in boots:
            t.join()
        if errors:
            self.close()
            raise errors[0] if isinstance(errors[0], SandboxError) else SandboxError(str(errors[0]))
        # What the session built so far (collected items, problems, samples) lives until the end:
        # out of the collector's way while results stream in.
        gc.freeze()
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._serve, args=(i,), name=f"passk-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def _connect(self, index: int) -> _Connection:
        proc = self.spawn(index)
        conn = _Connection(proc, f"{self.name} worker {index}")
        try:
            conn.send(protocol.encode("init", **self.init_fields(index)))
            msg = conn.recv(START_TIMEOUT)
        except OSError:
            msg = None
        if msg is None:
            conn.kill()
            raise SandboxError(f"{conn.label} did not start; its stderr:\n{conn.stderr_tail() or '(empty)'}")
        name, fields = msg
        if name == "fatal":
            conn.kill()
            raise SandboxError(f"{conn.label} failed to start: {fields.get('message')}")
        if name != "ready":
            conn.kill()
            raise SandboxError(f"{conn.label} sent {name!r} instead of ready")
        if fields.get("missing"):
            conn.kill()
            missing = ", ".join(fields["missing"][:5])
            raise SandboxError(
                f"{conn.label} could not collect {len(fields['missing'])} test(s) ({missing}); "
                f"collection errors inside the sandbox:\n{fields.get('errors') or '(none reported)'}"
            )
        conn.ready = fields
        return conn

    def _serve(self, index: int) -> None:
        """Feed one worker. Up to :attr:`depth` jobs are in flight, so the worker starts the next job
        the moment it reports one, without waiting for this thread to answer."""
        conn = self._connections[index]
        inflight: collections.deque[Job] = collections.deque()
        attempts: dict[int, int] = {}
        stopping = False
        while True:
            while not stopping and len(inflight) < self.depth:
                try:
                    job = self._jobs.get(block=not inflight)
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                bounces = getattr(job, "_bounces", 0)
                if job.avoid == f"{self.name}-{index}" and self.settings.workers > 1 and bounces < 200:
                    # A rerun that should happen elsewhere (another verifier, other containers):
                    # back in the queue for another worker (for a while: a busy or dead other
                    # worker does not keep it from running at all). Each turn costs a pause, or the
                    # job this worker has in flight: a worker that went on taking jobs while one is
                    # in flight would spend a rerun's 200 turns in a few milliseconds and run it here.
                    job._bounces = bounces + 1  # type: ignore[attr-defined]
                    self._jobs.put(job)
                    if inflight:
                        break
                    time.sleep(0.002)
                    continue
                try:
                    conn.send(job.message())
                except (OSError, ValueError):  # ValueError: a pipe already closed; noticed below
                    pass
                inflight.append(job)
            if not inflight:
                try:
                    conn.send(protocol.encode("shutdown"))
                except (OSError, ValueError):
                    pass
                return
            job = inflight[0]
            result = self._receive(conn, job)
            if result is not None:
                inflight.popleft()
                attempts.pop(job.id, None)
                self._results.put(result)
                continue
            # The worker hung or died with jobs in flight: replace it, retry the job it was running
            # once (a job that kills its worker twice fails as a crash); the queued ones go back.
            tail = conn.stderr_tail()
            conn.kill()
            attempts[job.id] = attempts.get(job.id, 0) + 1
            if attempts[job.id] > self.retries or self._closed:
                inflight.popleft()
                self._results.put(RunResult.failure(
                    job.id, "crash", f"the sandbox worker died running this job twice\n{tail[-500:]}"))
            if self._closed:
                for queued in inflight:
                    self._results.put(RunResult.failure(queued.id, "crash", "the sandbox was closed"))
                return
            try:
                conn = self._connections[index] = self._connect(index)
                self.replaced += 1
            except SandboxError as exc:
                # The sandbox itself is gone (e.g. the Docker engine stopped): no verdict can be
                # trusted from here on. The run stops; what finished is kept and the rest resumes.
                self._fatal = SandboxError(
                    f"the {self.name} sandbox stopped working and a worker could not be replaced: {exc}\n"
                    "Verdicts finished so far are kept in the store: fix the sandbox and run again to resume.")
                return
            for queued in inflight:  # resend what the dead worker had not finished, in order
                try:
                    conn.send(queued.message())
                except (OSError, ValueError):
                    pass

    def _receive(self, conn: _Connection, job: Job) -> RunResult | None:
        """The result of ``job``, the oldest job in flight; None if the worker hung or died."""
        try:
            msg = conn.recv(protocol.max_wall(job.timeout) + GRACE)
        except (OSError, ValueError, protocol.ProtocolError):
            return None
        if msg is None:
            return None
        name, fields = msg
        if name != "result" or fields.get("id") != job.id:
            return None
        try:
            return RunResult.from_fields(fields)
        except protocol.ProtocolError:
            return RunResult.failure(job.id, "malformed", "the worker sent an unreadable result")

    def submit(self, job: Job) -> None:
        self._pending += 1
        self._jobs.put(job)

    @property
    def pending(self) -> int:
        return self._pending

    def next_result(self, timeout: float) -> RunResult | None:
        try:
            # Results that finished before the sandbox failed are still handed out (and stored).
            result = self._results.get(timeout=timeout if self._fatal is None else 0)
        except queue.Empty:
            if self._fatal is not None:
                raise self._fatal from None
            if self._pending and not any(t.is_alive() for t in self._threads):
                raise SandboxError(f"all {self.name} workers stopped with {self._pending} job(s) unfinished") from None
            return None
        self._pending -= 1
        return result

    def close(self) -> None:
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=5)
        deadline = time.monotonic() + 10
        for conn in list(self._connections.values()):
            try:  # a verifier told to shut down stops its zygotes and removes their sockets itself
                conn.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            conn.kill()
        self._connections.clear()
        self._threads.clear()
