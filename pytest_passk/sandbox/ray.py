"""Execution on a Ray cluster: on every node, an actor holds an ordinary sandbox (local or docker).

The pytest session stays the controller: it plans, submits jobs here, stores each verdict as it
arrives and scores. This sandbox places one :class:`NodeRunner` actor on each alive node of the
cluster (``--passk-ray=ADDRESS``). The suite and pytest-passk travel in Ray's runtime environment
(``working_dir`` is the rootdir, ``py_modules`` the package), so nothing is copied by hand; each actor
starts the inner sandbox on its node, with as many workers as the node has CPUs, so the test bodies
run next to their candidates and call round trips never cross the network. Jobs are handed out to
the actors with room (four in flight per worker); a node that is lost has its in-flight jobs sent to the
others, and a result is taken once per job, so nothing is lost or duplicated. Ray is imported only
here, when asked for (``pip install 'pytest-passk[ray]'``).
"""
from __future__ import annotations

import collections
import os
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_passk.protocol import Job, RunResult
from pytest_passk.sandbox import Sandbox, SandboxError, SandboxSettings, get as get_sandbox

START_TIMEOUT = 300.0
#: Seconds an exchange waits for a result before answering with none.
POLL = 0.5
#: Jobs held by a node per worker: enough that its workers keep busy while half of them travel
#: (results back, the next jobs out: a few ms through Ray); a lost node's are run again.
DEPTH = 8
#: Seconds an exchange lingers after its first result to bring others along; it answers sooner once
#: half of the node's jobs are done. Each exchange is one Ray call both ways, the per-run cost that
#: matters on a small machine, so results travel in batches rather than one by one.
LINGER = 0.05
_PACKAGE = Path(__file__).resolve().parents[1]
#: Kept out of the runtime environment: the store holds the answers, caches are the host's own.
_EXCLUDES = [".git", ".pytest_cache", "**/__pycache__", "*.sqlite", "*.sqlite-*", ".venv", "node_modules"]
#: Set in each node's inner sandbox: which node it is (diagnostics and tests).
NODE_ENV = "PASSK_RAY_NODE"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise SandboxError(f"--passk-ray needs Ray: pip install 'pytest-passk[ray]' ({exc})") from None
    return ray


class NodeRunner:
    """Runs on one node (as a Ray actor): an inner sandbox fed from the controller's jobs."""

    def __init__(self, inner: str, settings: SandboxSettings, nodeids: list[str], relative_invocation: str,
                 label: str) -> None:
        root = os.getcwd()  # Ray starts actors in the unpacked working_dir: the suite's rootdir
        os.environ[NODE_ENV] = label
        self.label = label
        settings = replace(settings, rootdir=root,
                           invocation_dir=os.path.normpath(os.path.join(root, relative_invocation)))
        self.box = get_sandbox(inner)(settings)
        self.box.start(nodeids)
        self.incoming: collections.deque[Job] = collections.deque()
        self.lock = threading.Lock()

    def ready(self) -> str:
        return self.box.describe()

    def submit(self, jobs: list[Job]) -> None:
        """Jobs for workers that may be idle while an exchange is under way (taken in by it)."""
        self.incoming.extend(jobs)

    def exchange(self, jobs: list[Job], wait: float) -> list[RunResult]:
        """Take ``jobs`` and answer with what finished: at most ``wait`` seconds for a first result,
        then until half of the jobs held here are done or :data:`LINGER` has passed."""
        self.incoming.extend(jobs)
        with self.lock:  # one exchange at a time: the inner sandbox is used from one thread
            deadline = time.monotonic() + wait
            out: list[RunResult] = []
            while True:
                while self.incoming:
                    self.box.submit(self.incoming.popleft())
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (out and len(out) >= self.box.pending):  # half of the held jobs done
                    return out
                if not self.box.pending:
                    time.sleep(min(0.01, remaining))
                    continue
                result = self.box.next_result(timeout=min(0.05, remaining))
                if result is not None:
                    if not out:
                        deadline = min(deadline, time.monotonic() + LINGER)
                    out.append(replace(result, worker=f"{self.label}/{result.worker}" if result.worker else self.label))

    def close(self) -> None:
        self.box.close()


@dataclass(eq=False)
class _Node:
    label: str
    actor: Any
    capacity: int
    workers: int = 1
    describe: str = ""
    in_flight: dict[int, Job] = field(default_factory=dict)  #: sent or about to be, not yet answered
    unsent: list[Job] = field(default_factory=list)  #: in ``in_flight``, for the next exchange
    poll: Any = None  #: the outstanding ``exchange`` call
    lost: str | None = None


class RaySandbox(Sandbox):
    """Jobs run on the nodes of a Ray cluster, each node's actor holding an inner sandbox."""

    name = "ray"
    isolates = True

    def __init__(self, settings: SandboxSettings) -> None:
        super().__init__(settings)
        self.address = settings.options.get("ray_address", "auto")
        self.inner = settings.options.get("ray_inner", "local")
        self.isolates = get_sandbox(self.inner).isolates  # type: ignore[misc]
        self._nodes: list[_Node] = []
        self._queue: collections.deque[Job] = collections.deque()
        self._ready: collections.deque[RunResult] = collections.deque()
        self._pending = 0
        self._lost_jobs = 0
        self._ray: Any = None
        self._connected_here = False

    # -- start ---------------------------------------------------------------------------------

    def start(self, nodeids: list[str]) -> None:
        ray = self._ray = _import_ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        s = self.settings
        if not ray.is_initialized():
            self._check_reachable()
            runtime_env = {"working_dir": s.rootdir, "py_modules": [str(_PACKAGE)], "excludes": _EXCLUDES}
            try:
                ray.init(address=self.address, runtime_env=runtime_env, logging_level="ERROR",
                         log_to_driver=False, configure_logging=True)
            except Exception as exc:  # ConnectionError, ValueError, RuntimeError: say which address
                raise SandboxError(f"cannot join the Ray cluster at {self.address!r}: {exc}; start one with "
                                   "`ray start --head` (then --passk-ray=auto) or fix --passk-ray") from None
            self._connected_here = True
        relative = os.path.relpath(s.invocation_dir, s.rootdir)
        args = list(s.pytest_args)
        for i, arg in enumerate(args[:-1]):  # -c INIFILE: the shipped copy of it
            if arg == "-c" and os.path.isabs(args[i + 1]):
                args[i + 1] = os.path.relpath(args[i + 1], s.invocation_dir)
        remote = ray.remote(NodeRunner)
        pending = []
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            workers = max(1, int(node.get("Resources", {}).get("CPU", 1)))
            label = f"{node.get('NodeManagerAddress', '?')}:{node['NodeID'][:8]}"
            actor = remote.options(
                num_cpus=0, max_concurrency=4, max_restarts=0, max_task_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False),
            ).remote(self.inner, replace(s, workers=workers, pytest_args=args), list(nodeids), relative, label)
            node_rec = _Node(label=label, actor=actor, capacity=DEPTH * workers, workers=workers)
            pending.append((node_rec, actor.ready.remote()))
        errors = []
        for node_rec, ref in pending:
            try:
                node_rec.describe = ray.get(ref, timeout=START_TIMEOUT)
                self._nodes.append(node_rec)
            except Exception as exc:
                errors.append(f"{node_rec.label}: {str(exc).strip()[-1500:]}")
        if not self._nodes:
            self.close()
            raise SandboxError("no Ray node could start the sandbox: " + ("; ".join(errors) or "the cluster has no alive node"))
        self.start_errors = errors

    def _check_reachable(self) -> None:
        """An explicit HOST:PORT that does not answer is an error now: ray.init would retry for minutes."""
        host, sep, port = self.address.rpartition(":")
        if not sep or not port.isdigit() or "://" in self.address:
            return  # auto, ray://..., or a form Ray itself resolves
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
        except OSError as exc:
            raise SandboxError(f"cannot join the Ray cluster at {self.address!r}: nothing answers there ({exc}); "
                               "start one with `ray start --head` (then --passk-ray=auto) or fix --passk-ray") from None

    # -- jobs ----------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        self._pending += 1
        self._queue.append(job)

    @property
    def pending(self) -> int:
        return self._pending

    def _live(self) -> list[_Node]:
        return [n for n in self._nodes if n.lost is None]

    def _dispatch(self) -> None:
        """Hand queued jobs to the nodes with room, the emptiest first. A node's jobs travel with its
        next exchange (one call: jobs out, results back); only when its workers may be idle
        meanwhile are they sent at once."""
        while self._queue:
            room = [n for n in self._live() if len(n.in_flight) < n.capacity]
            if not room:
                break
            job = self._queue[0]
            choices = [n for n in room if n.label != job.avoid] or room
            node = min(choices, key=lambda n: len(n.in_flight) / n.capacity)
            self._queue.popleft()
            node.in_flight[job.id] = job
            node.unsent.append(job)
        for node in self._live():
            if node.poll is None and node.in_flight:
                node.poll = node.actor.exchange.remote(node.unsent, POLL)
                node.unsent = []
            elif node.unsent and len(node.in_flight) - len(node.unsent) < node.workers:
                node.actor.submit.remote(node.unsent)
                node.unsent = []

    def _lose(self, node: _Node, why: str) -> None:
        """A node is gone: its in-flight jobs go back to the front of the queue, for the others."""
        node.lost = why
        node.poll = None
        jobs = sorted(node.in_flight.values(), key=lambda j: j.id)
        node.in_flight.clear()
        node.unsent = []
        self._lost_jobs += len(jobs)
        for job in reversed(jobs):
            self._queue.appendleft(replace(job, avoid=node.label))
        if not self._live() and self._queue:
            raise SandboxError(f"every Ray node was lost with {len(self._queue)} job(s) unfinished; last: "
                               f"{node.label}: {why}")

    def next_result(self, timeout: float) -> RunResult | None:
        ray = self._ray
        deadline = time.monotonic() + timeout
        while not self._ready:
            self._dispatch()
            polls = {n.poll: n for n in self._live() if n.poll is not None}
            if not polls:
                if self._pending and not self._live():
                    raise SandboxError("every Ray node was lost")
                return None
            remaining = max(0.0, deadline - time.monotonic())
            done, _ = ray.wait(list(polls), num_returns=1, timeout=remaining)
            for ref in done:
                node = polls[ref]
                node.poll = None
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the actor or its node died, or its sandbox failed
                    first = (str(exc).strip().splitlines() or [""])[0][:300]
                    self._lose(node, f"{type(exc).__name__}: {first}")
                    continue
                for result in results:
                    # A result is taken once: only for a job this node still holds.
                    if node.in_flight.pop(result.id, None) is not None:
                        self._ready.append(result)
            if not done and time.monotonic() >= deadline:
                break
        if not self._ready:
            return None
        self._pending -= 1
        return self._ready.popleft()

    # -- end -----------------------------------------------------------------------------------

    def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        closing = []
        for node in self._nodes:
            if node.lost is None:
                closing.append(node.actor.close.remote())
        if closing:
            try:
                ray.wait(closing, num_returns=len(closing), timeout=30)
            except Exception:
                pass
        for node in self._nodes:
            try:
                ray.kill(node.actor)
            except Exception:
                pass
        if self._connected_here and ray.is_initialized():
            ray.shutdown()
        self._ray = None

    def environment(self) -> str:
        # What the inner sandbox runs on, as seen from the controller (the nodes are expected to match).
        return f"ray/{self.inner}: {get_sandbox(self.inner)(self.settings).environment()}"

    def describe(self) -> str:
        nodes = ", ".join(n.label for n in self._nodes)
        text = f"ray at {self.address} ({len(self._nodes)} nodes: {nodes}); on each node {self.inner}"
        inner = self._nodes[0].describe if self._nodes else ""
        if inner:
            text += f": {inner}"
        lost = [n for n in self._nodes if n.lost]
        if lost:
            text += (f"; lost {len(lost)} node(s) mid-run ({', '.join(n.label for n in lost)}), "
                     f"{self._lost_jobs} in-flight run(s) retried on the others")
        return text
