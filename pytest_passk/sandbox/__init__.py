"""Sandboxes run candidate jobs in workers; this module holds their interface and name registry."""
from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_passk.protocol import Job, RunResult


#: The unprivileged user candidates run as in a container (and whose access a local sandbox
#: checks when it picks the candidates' interpreter).
NOBODY = (65534, 65534)


class SandboxError(Exception):
    """The sandbox cannot run candidates; the message says what is wrong and how to fix it."""


@dataclass
class SandboxSettings:
    """What every sandbox needs to know about a run."""

    workers: int
    invocation_dir: str
    rootdir: str
    pytest_args: list[str] = field(default_factory=list)
    output_cap: int = 16384
    image: str | None = None
    memory: int | None = None
    #: Zygotes per verifier (each with its own hash seed, in its own container): runs of one
    #: candidate alternate between them. Set from ``--passk-runs``, at most 2.
    zygotes: int = 2
    #: Installed distributions candidates may import (``--passk-candidate-packages``).
    candidate_packages: list[str] = field(default_factory=list)
    #: Settings of a sandbox that wraps another (e.g. the Ray sandbox's address and inner sandbox).
    options: dict[str, str] = field(default_factory=dict)
    #: ``auto``: with one worker per usable CPU, each worker keeps to its own CPU
    #: (:func:`worker_cpu`); ``off``: the OS places the processes (``--passk-affinity``).
    affinity: str = "auto"


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask: a cpuset or ``taskset`` may narrow it)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no sched_getaffinity on this platform
        return list(range(os.cpu_count() or 1))


def worker_cpu(settings: SandboxSettings, index: int) -> int | None:
    """The CPU worker ``index`` keeps to (its verifier, zygotes and candidate processes), or None.

    Under ``affinity="auto"``, when there are exactly as many workers as usable CPUs (the default),
    worker ``i`` runs on the ``i``-th CPU. A test body and its candidate hand the turn back and forth
    on every call: on one CPU that is a switch between two processes, across two it is a wake-up of
    the other CPU, which on a virtual machine costs several times more (measured in the README's
    Performance section). With fewer workers than CPUs nothing is pinned: the spare CPUs take the
    zygotes' clean-up, in parallel with the next run."""
    cpus = usable_cpus()
    if settings.affinity != "auto" or len(cpus) < 2 or settings.workers != len(cpus):
        return None
    return cpus[index % len(cpus)]


class Sandbox(ABC):
    """Runs jobs through test items in workers. Jobs may be submitted while results are read."""

    name: ClassVar[str]
    #: Whether candidate code is kept away from the host; the summary says so when it is not.
    isolates: ClassVar[bool]

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings

    @abstractmethod
    def start(self, nodeids: list[str]) -> None:
        """Bring up the workers, each having collected ``nodeids``; raise :class:`SandboxError`."""

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Queue one job."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Jobs submitted whose result has not been taken yet."""

    @abstractmethod
    def next_result(self, timeout: float) -> RunResult | None:
        """The next finished job's result, or None if none finished within ``timeout`` seconds."""

    @abstractmethod
    def close(self) -> None:
        """Stop the workers and remove whatever the sandbox created."""

    def describe(self) -> str:
        return self.name

    def environment(self) -> str:
        """What candidates run on beyond the settings, e.g. the image id an image name resolved to.
        Called before :meth:`start` and cheap; stored verdicts are reused only under the same value."""
        return ""


_REGISTRY: dict[str, str] = {
    "local": "pytest_passk.sandbox.local:LocalSandbox",
    "docker": "pytest_passk.sandbox.docker:DockerSandbox",
}


def register(name: str, target: str | type[Sandbox]) -> None:
    """Make a sandbox available as ``--passk-sandbox=name`` (``"module:Class"`` or the class)."""
    _REGISTRY[name] = target  # type: ignore[assignment]


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> type[Sandbox]:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise SandboxError(
            f"unknown sandbox {name!r}; known: {', '.join(names())} "
            "(a plugin can add one with the pytest_passk_sandbox hook)"
        ) from None
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)
    return target
