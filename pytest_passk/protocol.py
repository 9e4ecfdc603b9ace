"""The job/result protocol between the host and a sandbox worker.

A worker is a verifier, ``python -m pytest_passk.execute.verifier`` (the trusted side; see
docs/execution.md). It speaks newline-delimited JSON on its own stdin and stdout; each line is one
message ``{"msg": NAME, ...fields}``. The conversation:

    host -> worker   init      {version, args, invocation_dir, rootdir, nodeids, output_cap, label,
                                zygote_argv, zygote_env, zygotes, posture_check, image_env}
    worker -> host   ready     {collected: [nodeid], missing: [nodeid], errors: str, pid: int}
    host -> worker   job       {id, nodeid, problem_id, index, prompt, text, code, timeout, memory,
                                run, avoid, support}
    worker -> host   result    {id, outcome, reason, message, output, duration, worker, returns}
    ...              (one result per job, in the order the jobs were sent; the host may send
                      jobs ahead, the worker runs them one at a time)
    host -> worker   shutdown  {}
    worker -> host   fatal     {message}   (the worker cannot go on; it exits after sending this)

``outcome`` is ``"passed"`` or ``"failed"``; ``reason`` is one of :data:`REASONS`. A result is
``passed`` only when the test's call phase, run by the verifier itself, returned; anything else is
a failure. The candidate's code never runs in the verifier (it runs in a process of its own,
forked by a zygote in the sandbox, and only plain data crosses).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, BinaryIO

VERSION = 1

#: Why a run failed (or ``"passed"``).
REASONS = (
    "passed",     # the call phase of the test completed
    "assertion",  # the test raised AssertionError
    "error",      # the test or the candidate raised another exception
    "setup",      # the test's setup failed, the call never ran
    "skipped",    # the test skipped or xfailed itself: not evidence of a pass
    "exit",       # the candidate's process exited (sys.exit/os._exit/...) while the test used it
    "timeout",    # wall-clock limit reached; the candidate and all it started were killed
    "memory",     # the memory limit was hit
    "crash",      # the candidate's process (or its container) died from a signal
    "malformed",  # the candidate sent something that is not plain data, or too much of it
    "duplicate",  # (kept so stored verdicts of earlier versions still read)
)


#: A run that was starved of CPU by a busy host (runnable, little CPU used) gets its timeout again,
#: up to this many times; the host waits for a result accordingly (:func:`max_wall`).
MAX_EXTENSIONS = 3


def max_wall(timeout: float) -> float:
    """The longest a run with ``timeout`` may take in wall-clock time, extensions included."""
    return timeout * (1 + MAX_EXTENSIONS)


class ProtocolError(Exception):
    """A peer sent something that is not a message of this protocol."""


_dumps = json.JSONEncoder(separators=(",", ":")).encode  # one encoder for every message


def encode(msg: str, **fields: Any) -> bytes:
    return _dumps({"msg": msg, **fields}).encode() + b"\n"


def decode(line: bytes) -> tuple[str, dict[str, Any]]:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {line[:200]!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("msg"), str):
        raise ProtocolError(f"not a message: {line[:200]!r}")
    name = data.pop("msg")
    return name, data


def send(stream: BinaryIO, msg: str, **fields: Any) -> None:
    stream.write(encode(msg, **fields))
    stream.flush()


@dataclass
class Job:
    """One run of one candidate through one test item."""

    id: int
    nodeid: str
    problem_id: str
    index: int
    prompt: str
    text: str
    code: str
    timeout: float
    memory: int | None = None
    #: Which run of this candidate this is (0, 1, ...): reruns get other hash and random seeds.
    run: int = 0
    #: A worker label to avoid when another can take the job (reruns on other containers).
    avoid: str | None = None
    #: The problem's support code, run in the candidate's process before the program.
    support: str | None = None

    def message(self) -> bytes:
        # Its fields are plain values: read directly, without asdict's deep copy.
        return encode("job", **{name: getattr(self, name) for name in _JOB_FIELDS})


_JOB_FIELDS = tuple(f.name for f in fields(Job))


@dataclass
class RunResult:
    """The verdict of one run."""

    id: int
    outcome: str
    reason: str
    message: str = ""
    output: str = ""
    duration: float = 0.0
    #: Which worker ran it (a label such as ``docker-1``), so reruns can go elsewhere.
    worker: str = ""
    #: A digest of the values the candidate returned to the test's calls, in order ("" if none):
    #: samples that behave alike share it (majority voting without a verifier).
    returns: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @classmethod
    def failure(cls, job_id: int, reason: str, message: str) -> RunResult:
        return cls(id=job_id, outcome="failed", reason=reason, message=message)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> RunResult:
        known = {k: fields[k] for k in ("id", "outcome", "reason", "message", "output", "duration", "worker", "returns") if k in fields}
        if known.get("outcome") not in ("passed", "failed") or known.get("reason") not in REASONS:
            raise ProtocolError(f"bad result: {fields!r:.200}")
        if (known["outcome"] == "passed") != (known["reason"] == "passed"):
            raise ProtocolError(f"inconsistent result: {fields!r:.200}")
        return cls(**known)
