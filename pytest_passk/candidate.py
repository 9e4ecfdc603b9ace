"""The ``candidate`` fixture's value: one sampled program, loadable as a module, function or process."""
from __future__ import annotations

import functools
import linecache
import os
import re
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Sequence
from typing import Any

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


class CandidateError(Exception):
    """The candidate cannot be used as the test asked (no such function, forged return value, ...)."""


_COMPARISONS = ("__eq__", "__ne__", "__bool__", "__len__", "__lt__", "__gt__", "__le__", "__ge__", "__hash__")
_UNEQUAL = object()  #: nothing a real answer can be equal to


def _forged(value: Any, is_candidate_code: Any, depth: int = 0) -> str | None:
    """Why ``value`` is an object a candidate may have forged to fool ``==``/``bool``, or None.

    Models learn to return objects whose ``__eq__`` is always True; such a value is rejected when
    its class (or that of a value nested in a container) gets a comparison or truth method from
    code the candidate defined.
    """
    if depth > 50:
        return None
    cls = type(value)
    try:  # e.g. unittest.mock.ANY: equal to everything, but its class is not the candidate's
        if value == _UNEQUAL:
            return f"{cls.__qualname__} compares equal to an unrelated object"
    except Exception:  # e.g. numpy arrays, whose == is elementwise
        pass
    for klass in cls.__mro__:
        for name in _COMPARISONS:
            attr = vars(klass).get(name)
            if attr is not None and is_candidate_code(attr):
                return f"{cls.__qualname__} (defined by the candidate) overrides {name}"
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            reason = _forged(v, is_candidate_code, depth + 1)
            if reason:
                return reason
    elif isinstance(value, dict):
        for k, v in value.items():
            reason = _forged(k, is_candidate_code, depth + 1) or _forged(v, is_candidate_code, depth + 1)
            if reason:
                return reason
    return None


class Candidate:
    """One sample of the model for one problem, as seen from inside the test body."""

    def __init__(self, *, text: str, code: str, path: str | None = None, prompt: str, problem_id: str,
                 timeout: float | None = None, index: int = 0) -> None:
        self.text = text  #: the raw model output
        self.code = code  #: the program: prompt + completion, or the code block of a chat reply
        self._path = path
        self.tmpdir: str | None = None  #: the folder made for :attr:`path`, if it was needed
        self.prompt = prompt
        self.problem_id = problem_id
        self.index = index
        self.timeout = timeout
        self._module: types.ModuleType | None = None
        self._deadline = None if timeout is None else time.monotonic() + timeout

    @property
    def path(self) -> str:
        """A file holding :attr:`code` (written when first asked for: most tests never need it)."""
        if self._path is None:
            self.tmpdir = tempfile.mkdtemp(prefix="passk-")
            self._path = os.path.join(self.tmpdir, "candidate.py")
        if not os.path.exists(self._path):
            with open(self._path, "w", encoding="utf-8") as fh:
                fh.write(self.code)
        return self._path

    @property
    def _filename(self) -> str:
        """The name tracebacks give the program; its lines come from linecache, no file needed."""
        return self._path or f"<candidate {self.problem_id}#{self.index}>"

    def __repr__(self) -> str:
        return f"<Candidate {self.problem_id}#{self.index}>"

    def module(self) -> types.ModuleType:
        """The program executed as a fresh module (once per candidate)."""
        __tracebackhide__ = True
        if self._module is None:
            filename = self._filename
            linecache.cache[filename] = (len(self.code), None, self.code.splitlines(True), filename)
            mod = types.ModuleType("passk_candidate")
            mod.__file__ = filename
            sys.modules["passk_candidate"] = mod
            exec(compile(self.code, filename, "exec"), mod.__dict__)
            self._module = mod
        return self._module

    def namespace(self) -> dict[str, Any]:
        """A copy of the module's globals, e.g. to exec a benchmark's own check code beside the program."""
        return dict(vars(self.module()))

    def function(self, name: str) -> Any:
        """The program's top-level callable ``name``, guarded against forged return values."""
        __tracebackhide__ = True
        fn = getattr(self.module(), name, None)
        if fn is None or not callable(fn):
            raise CandidateError(f"the candidate defines no function {name!r}")
        module_dict = self.module().__dict__
        path = self._filename

        def is_candidate_code(attr: Any) -> bool:
            func = getattr(attr, "__func__", attr)
            code = getattr(func, "__code__", None)
            if code is None:
                return False  # a C slot of a builtin type
            return getattr(func, "__globals__", None) is module_dict or code.co_filename in (path, "<string>")

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            result = fn(*args, **kwargs)
            reason = _forged(result, is_candidate_code)
            if reason:
                raise CandidateError(f"{name}() returned a forged value: {reason}")
            return result

        return guarded

    def run(self, args: Sequence[str] = (), input: str | bytes | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess[Any]:
        """Run the program as ``python PATH ARGS`` with ``input`` on stdin; text in, text out."""
        if timeout is None and self._deadline is not None:
            timeout = max(0.1, self._deadline - time.monotonic())
        text = not isinstance(input, bytes)
        return subprocess.run(
            [sys.executable, self.path, *args], input=input, capture_output=True, text=text, timeout=timeout
        )
