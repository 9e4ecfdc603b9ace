"""The ``candidate`` fixture's value: one sampled program, as the trusted test body sees it.

The program itself never runs here. It runs in a process of its own in the sandbox
(:mod:`pytest_passk.execute`); ``.function(name)`` and ``.module()`` are proxies whose calls cross
to that process and come back as plain data, ``.run()`` executes the program inside the sandbox.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_passk.execute.boundary import CandidateError, CandidateGone, CandidateRaised, Handle, ModuleHandle

if TYPE_CHECKING:
    from pytest_passk.execute.boundary import CandidateProcess

__all__ = ["Candidate", "CandidateError", "CandidateGone", "CandidateRaised", "Handle", "extract_code", "program_for"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PYTHON_TAGS = {"", "python", "py", "python3"}


def extract_code(text: str) -> str:
    """The program in a chat reply: its first Python fenced block (else its first block), else the reply."""
    blocks = _FENCE.findall(text)
    for tag, body in blocks:
        if tag.lower() in _PYTHON_TAGS:
            return body
    return blocks[0][1] if blocks else text


def program_for(style: str, prompt: str, text: str) -> str:
    """The program a sample stands for: prompt + completion, or the code of a chat reply."""
    if style == "completion":
        return prompt + text
    return extract_code(text)


class Candidate:
    """One sample of the model for one problem, as seen from inside the test body."""

    def __init__(self, *, text: str, code: str, prompt: str, problem_id: str, timeout: float | None = None,
                 index: int = 0, process: CandidateProcess | None = None) -> None:
        self.text = text  #: the raw model output
        self.code = code  #: the program: prompt + completion, or the code block of a chat reply
        self.prompt = prompt
        self.problem_id = problem_id
        self.index = index
        self.timeout = timeout
        self._process = process
        self._path: str | None = None
        self.tmpdir: str | None = None

    def __repr__(self) -> str:
        return f"<Candidate {self.problem_id}#{self.index}>"

    @property
    def process(self) -> CandidateProcess:
        if self._process is None:
            raise CandidateError("this candidate has no process: it is only run by pytest-passk's verifiers")
        return self._process

    @property
    def path(self) -> str:
        """A file holding :attr:`code`, written here on the trusted side (for static checks, linters),
        removed after the run. The program itself runs in the sandbox, from its own copy."""
        if self._path is None:
            self.tmpdir = tempfile.mkdtemp(prefix="passk-candidate-")
            self._path = os.path.join(self.tmpdir, "candidate.py")
            with open(self._path, "w", encoding="utf-8", errors="surrogatepass") as fh:
                fh.write(self.code)
        return self._path

    def cleanup(self) -> None:
        """Remove the file :attr:`path` wrote, if any."""
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = self._path = None

    def module(self) -> ModuleHandle:
        """The program as a module: ``module().name`` is a top-level value (data) or a handle."""
        __tracebackhide__ = True
        self.process.request({"op": "load"})  # a program that does not load fails here, clearly
        return ModuleHandle(self.process, {}, "module")

    def namespace(self) -> dict[str, Any]:
        """The program's top-level names: values that are data as copies, everything else as handles."""
        __tracebackhide__ = True
        return self.process.request({"op": "namespace"})

    def function(self, name: str) -> Handle:
        """The program's top-level callable ``name``; calls cross to the candidate's process with
        copies of their arguments and return plain data (or handles)."""
        return Handle(self.process, {"name": name}, name)

    def run(self, args: Sequence[str] = (), input: str | bytes | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess[Any]:
        """Run the program as ``python PATH ARGS`` inside the sandbox with ``input`` on stdin."""
        __tracebackhide__ = True
        from pytest_passk.execute.zygote import encode

        text = not isinstance(input, bytes)
        data = input.encode() if isinstance(input, str) else input
        out = self.process.request({"op": "run", "args": [str(a) for a in args], "input": encode(data),
                                    "timeout": timeout if timeout is not None else self.timeout})
        if not isinstance(out, dict) or not isinstance(out.get("stdout", b""), bytes):
            raise CandidateError("the sandbox sent an unreadable result of run()")
        stdout, stderr = out.get("stdout", b""), out.get("stderr", b"")
        if text:
            stdout = stdout.decode(errors="replace")
            stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else str(stderr)
        argv = ["python", "candidate.py", *map(str, args)]
        if out.get("timeout"):
            raise subprocess.TimeoutExpired(argv, timeout or self.timeout or 0, output=stdout, stderr=stderr)
        return subprocess.CompletedProcess(argv, int(out.get("returncode", -1)), stdout, stderr)
