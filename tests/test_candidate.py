"""The candidate fixture's value and the boundary it stands on: a real candidate process (a local
zygote), plain data across, handles for everything else, the candidate's exceptions and its end."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conftest import problem
from pytest_passk.candidate import Candidate, CandidateError, CandidateGone, CandidateRaised, Handle, extract_code, program_for
from pytest_passk.execute import zygote_source
from pytest_passk.execute.boundary import CandidateProcess, ZygoteLink


@pytest.fixture(scope="module", params=["direct", "relay"])
def link(request: pytest.FixtureRequest) -> Iterator[ZygoteLink]:
    """One local zygote for the module's tests, as the local sandbox starts it: candidate processes
    on connections of their own (direct), or relayed by the zygote (as for a remote Docker engine)."""
    env = {"PATH": os.defpath, "PYTHONHASHSEED": "{hashseed}", "LANG": "C.UTF-8", "LD_BIND_NOW": "1"}
    if request.param == "direct":
        env["PASSK_CONNECT"] = "{socket}"
    z = ZygoteLink([sys.executable, "-s", "-c", zygote_source()], env, "test zygote")
    z.start()
    yield z
    z.kill()


@pytest.fixture
def make(link: ZygoteLink):
    """``make(code)``: a Candidate backed by a fresh candidate process; every run is ended after the test."""
    procs: list[CandidateProcess] = []

    def make(code: str, text: str | None = None, timeout: float = 5.0, memory: int | None = None) -> Candidate:
        for earlier in procs:  # a zygote serves one run at a time, as in a verifier
            earlier.end()
        proc = CandidateProcess(link, {"code": code, "timeout": timeout, "memory": memory, "output_cap": 4096}, 5.0)
        procs.append(proc)
        return Candidate(text=code if text is None else text, code=code, prompt="p", problem_id="P",
                         timeout=timeout, process=proc)

    yield make
    for proc in procs:
        proc.end()


def test_extract_code_prefers_the_python_block() -> None:
    reply = (
        "Here is a shell command:\n```bash\nls -l\n```\nand the solution:\n"
        "```python\ndef f():\n    return 1\n```\nHope it helps."
    )
    assert extract_code(reply) == "def f():\n    return 1\n"
    assert extract_code("```py\nx = 1\n```") == "x = 1\n"
    assert extract_code("```\ny = 2\n```") == "y = 2\n"  # an untagged block is taken as Python


def test_extract_code_other_fence_and_no_fence() -> None:
    assert extract_code("Try:\n```js\nconsole.log(1)\n```\n") == "console.log(1)\n"
    plain = "def f():\n    return 3\n"
    assert extract_code(plain) == plain
    # a reply cut off by max_tokens inside its code block still yields the code
    assert extract_code("Sure:\n```python\ndef g():\n    return 4\n") == "def g():\n    return 4\n"


def test_program_for_styles() -> None:
    prompt = "def f(x):\n    '''double'''\n"
    assert program_for("completion", prompt, "    return 2 * x\n") == prompt + "    return 2 * x\n"
    reply = "```python\ndef f(x):\n    return x + x\n```"
    assert program_for("chat", prompt, reply) == "def f(x):\n    return x + x\n"


def test_calls_return_plain_data_and_text_code_stay(make) -> None:
    cand = make("CALLS = []\ndef double(x):\n    CALLS.append(x)\n    return 2 * x\n", text="raw reply")
    assert (cand.text, cand.code.startswith("CALLS")) == ("raw reply", True)
    double = cand.function("double")
    assert double(21) == 42 and double("ab") == "abab"
    assert cand.module().CALLS == [21, "ab"]  # state lives in the candidate's process
    assert cand.namespace()["CALLS"] == [21, "ab"]
    assert isinstance(cand.namespace()["double"], Handle)
    path = cand.path  # written on the trusted side, whatever the candidate's process says
    with open(path) as fh:
        assert fh.read() == cand.code
    cand.cleanup()
    assert not os.path.exists(path)
    assert cand.process.returns != ""


def test_the_zygotes_linker_setting_does_not_reach_candidates(make) -> None:
    # The local sandbox starts zygotes with LD_BIND_NOW=1 (as the link fixture does); candidates'
    # own subprocesses must not inherit it.
    environ = make("import os\ndef env():\n    return dict(os.environ)\n").function("env")()
    assert "LD_BIND_NOW" not in environ and environ.get("LANG") == "C.UTF-8"


def test_every_kind_of_plain_data_crosses_exactly(make) -> None:
    value = [None, True, 0, -7, 10 ** 50, 1.5, -0.0, float("inf"), "é\ud800", b"\x00\xff", bytearray(b"x"),
             1 + 2j, (1, (2,)), {1: "a", (2, 3): frozenset({4})}, {5, 6}, []]
    got = make("def f(v):\n    return v\n").function("f")(value)
    assert got == value and [type(x) for x in got] == [type(x) for x in value]
    assert math.copysign(1, got[6]) == -1
    nan = make("def f():\n    return float('nan')\n").function("f")()
    assert math.isnan(nan)
    huge = make("import math\ndef f(n):\n    return math.factorial(n)\n").function("f")(2000)
    assert huge == math.factorial(2000)  # past 4300 digits: no decimal conversion anywhere


def test_subclasses_of_builtins_arrive_as_the_builtin_with_their_real_contents(make) -> None:
    code = (
        "import collections\n"
        "class I(int):\n    __eq__ = int.__ne__\n    def __int__(self):\n        return 99\n"
        "class S(str):\n    def __eq__(self, o):\n        return True\n    __hash__ = str.__hash__\n"
        "class L(list):\n    def __iter__(self):\n        return iter([0])\n"
        "class D(dict):\n    def items(self):\n        return []\n"
        "Point = collections.namedtuple('Point', 'x y')\n"
        "def f():\n    return [I(5), S('s'), L([1, 2]), D(a=1), Point(1, 2), collections.OrderedDict(b=2)]\n"
    )
    got = make(code).function("f")()
    assert got == [5, "s", [1, 2], {"a": 1}, (1, 2), {"b": 2}]
    assert [type(x) for x in got] == [int, str, list, dict, tuple, dict]
    assert got[0] != 6 and got[1] != "t"  # the candidate's __eq__ stayed behind


def test_objects_that_are_not_data_are_handles(make) -> None:
    code = (
        "class Box:\n    def __init__(self, v):\n        self.v = v\n"
        "    def get(self):\n        return self.v\n"
        "    def __eq__(self, other):\n        return True\n"
        "def make(v):\n    return Box(v)\n"
        "def unwrap(box):\n    return box.v * 2\n"
        "def gen(n):\n    yield from range(n)\n"
    )
    cand = make(code)
    box = cand.function("make")(21)
    assert isinstance(box, Handle) and repr(box) == "<candidate Box object>"
    assert box.get() == 21 and box.v == 21
    assert cand.function("unwrap")(box) == 42  # a handle goes back as the object itself
    for use in (lambda: box == 1, lambda: box != 1, lambda: bool(box), lambda: hash(box), lambda: box < 1):
        with pytest.raises(CandidateError, match="not data"):
            use()
    assert list(cand.function("gen")(4)) == [0, 1, 2, 3]
    with pytest.raises(CandidateError):
        box.v = 3


def test_arguments_are_copies_and_must_be_data(make) -> None:
    cand = make("def push(xs):\n    xs.append(1)\n    return len(xs)\n")
    xs: list[int] = []
    assert cand.function("push")(xs) == 1 and xs == []  # in-place changes are not seen
    with pytest.raises(CandidateError, match="plain data"):
        cand.function("push")(lambda: 0)


def test_candidate_exceptions_keep_their_builtin_type(make) -> None:
    cand = make("class Mine(KeyError):\n    pass\ndef f(x):\n    if x == 1:\n        raise ValueError('bad x')\n"
                "    if x == 2:\n        raise Mine('custom')\n    return {}[x]\n")
    with pytest.raises(ValueError, match="bad x") as info:
        cand.function("f")(1)
    assert isinstance(info.value, CandidateRaised) and 'candidate.py", line 5' in info.value.candidate_traceback
    with pytest.raises(KeyError) as info:
        cand.function("f")(2)
    assert info.value.candidate_type == "Mine"
    with pytest.raises(LookupError):
        cand.function("f")(3)


def test_missing_function_and_broken_program(make) -> None:
    with pytest.raises(CandidateError, match="defines no 'nope'"):
        make("def f():\n    return 1\n").function("nope")()
    broken = make("def f(:\n")
    with pytest.raises(CandidateError, match="failed to load: SyntaxError"):
        broken.function("f")()
    with pytest.raises(CandidateError, match="failed to load: ZeroDivisionError"):
        make("1 / 0\n").module()


def test_a_timeout_cannot_be_swallowed_by_the_test(make) -> None:
    cand = make("def f():\n    while True:\n        pass\n", timeout=1.0)
    with pytest.raises(CandidateGone) as info:
        try:
            cand.function("f")()
        except Exception:  # a test's own except clause
            pytest.fail("the timeout was swallowed")
    assert info.value.reason == "timeout" and "timed out after 1 s" in info.value.message
    with pytest.raises(CandidateGone):  # the process is gone for good
        cand.function("f")()


@pytest.mark.parametrize(("code", "reason"), [
    ("import os\ndef f():\n    os._exit(3)\n", "exit"),
    ("import os, signal\ndef f():\n    os.kill(os.getpid(), signal.SIGKILL)\n", "crash"),
    ("def f():\n    raise SystemExit(0)\n", "exit"),
    ("def f():\n    raise KeyboardInterrupt\n", "exit"),
])
def test_a_candidate_that_ends_itself_fails_the_run(make, code: str, reason: str) -> None:
    with pytest.raises(CandidateGone) as info:
        make(code).function("f")()
    assert info.value.reason == reason


def test_memory_limit(make) -> None:
    cand = make("def f():\n    return len(bytearray(1 << 30))\n", memory=256 << 20)
    with pytest.raises(MemoryError):
        cand.function("f")()


def test_a_candidate_process_cannot_gain_privileges_through_a_setuid_program(make) -> None:
    """PR_SET_NO_NEW_PRIVS holds in every candidate process (set once in the zygote, inherited)."""
    cand = make("def f():\n    return [l.split()[1] for l in open('/proc/self/status') if l.startswith('NoNewPrivs')]\n")
    assert cand.function("f")() == ["1"]


def test_output_comes_back_with_the_end_of_the_run(make) -> None:
    cand = make("print('hello from the candidate')\ndef f():\n    import sys\n    print('oops', file=sys.stderr)\n")
    cand.function("f")()
    out = cand.process.end()
    assert out["reason"] == "ended" and out["output"] == "hello from the candidate\noops\n"


def test_run_stdin_stdout_and_args(make) -> None:
    cand = make("import sys\nprint(sys.stdin.read().upper(), *sys.argv[1:])\n")
    done = cand.run(["a", 1], input="hi")
    assert isinstance(done, subprocess.CompletedProcess)
    assert (done.returncode, done.stdout, done.stderr) == (0, "HI a 1\n", "")
    raw = cand.run(input=b"x")
    assert raw.stdout == b"X\n"


def test_run_uses_the_candidate_timeout(make) -> None:
    cand = make("import time\ntime.sleep(30)\n", timeout=1.0)
    with pytest.raises(subprocess.TimeoutExpired):
        cand.run(timeout=0.5)


def test_hash_seeds_differ_between_zygote_starts() -> None:
    code = "def f():\n    return hash('pytest-passk')\n"
    seen = set()
    env = {"PATH": os.defpath, "PYTHONHASHSEED": "{hashseed}"}
    for _ in range(3):
        z = ZygoteLink([sys.executable, "-s", "-c", zygote_source()], env, "z")
        z.start()
        proc = CandidateProcess(z, {"code": code, "timeout": 5, "memory": None, "output_cap": 100}, 5)
        seen.add(Candidate(text="", code=code, prompt="", problem_id="P", process=proc).function("f")())
        proc.end()
        z.kill()
    assert len(seen) == 3


STDIN_SUITE = """
    from pytest_passk import passk

    @passk(k=1, n=3, prompt="Read integers from stdin and print their sum.", id="sum", style="chat")
    def test_sum(candidate):
        done = candidate.run(["--verbose"], input="3 4 5\\n")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["12"]
"""


def test_stdin_program_through_the_fixture(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(STDIN_SUITE)
    good = "Here you go:\n```python\nimport sys\nprint(sum(map(int, sys.stdin.read().split())))\n```\n"
    args_only = "```python\nimport sys\nprint(len(sys.argv))\n```"
    crashes = "import sys\nsys.exit(3)\n"
    result = passk_run([("sum", good), ("sum", args_only), ("sum", crashes)], "--passk-runs=1")
    result.assert_outcomes(passed=1)
    rec = problem(result.report, "sum")
    assert (rec["n"], rec["correct"], rec["passed_samples"]) == (3, 1, [True, False, False])
    assert rec["reasons"] == {"passed": 1, "assertion": 2}


FORGED_SUITE = """
    from pytest_passk import passk

    @passk(k=1, n=4, prompt="Write add(a, b).", id="add", style="chat")
    def test_add(candidate):
        add = candidate.function("add")
        assert add(2, 3) == 5
        assert add(-1, 1) == 0
        assert add(10, 5) == 15
"""

FORGERIES = [
    "class Eq:\n    def __eq__(self, o):\n        return True\ndef add(a, b):\n    return Eq()\n",
    "class S(str):\n    def __eq__(self, o):\n        return True\n    __hash__ = str.__hash__\n"
    "def add(a, b):\n    return S('')\n",
    "class Eq:\n    def __eq__(self, o):\n        return True\ndef add(a, b):\n    return [Eq()]\n",
]


def test_forged_values_fail_the_candidate_end_to_end(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(FORGED_SUITE)
    honest = "def add(a, b):\n    return a + b\n"
    result = passk_run([("add", f) for f in FORGERIES] + [("add", honest)], "--passk-runs=1")
    result.assert_outcomes(passed=1)
    rec = problem(result.report, "add")
    assert rec["passed_samples"] == [False, False, False, True]
    # The candidate's __eq__ stays in its process: a str subclass arrives as the plain '' (wrong),
    # instances arrive as handles, which cannot be compared.
    assert rec["reasons"] == {"error": 1, "assertion": 2, "passed": 1}
    assert "not data" in rec["first_failure"]["message"]


def test_fixture_outside_passk_tests_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(candidate):\n    pass\n")
    result = pytester.runpytest("--passk-sandbox=local")
    assert result.ret != 0
    assert "only for @passk tests" in result.stdout.str() + result.stderr.str()


TREE_SUITE = '''
    from pytest_passk import passk

    SUPPORT = """
    class TreeNode:
        def __init__(self, val=0, left=None, right=None):
            self.val, self.left, self.right = val, left, right

    def build(values):
        nodes = [None if v is None else TreeNode(v) for v in values]
        for i, node in enumerate(nodes):
            if node is not None:
                node.left = nodes[2 * i + 1] if 2 * i + 1 < len(nodes) else None
                node.right = nodes[2 * i + 2] if 2 * i + 2 < len(nodes) else None
        return nodes[0] if nodes else None

    """


    def to_list(root):
        """The answer read on the trusted side, node by node through handles: a candidate cannot
        bend what this sees (helpers in its own process could be patched at run time)."""
        out, level = [], [root]
        while any(n is not None for n in level):
            out += [None if n is None else n.val for n in level]
            level = [c for n in level if n is not None for c in (n.left, n.right)]
        while out and out[-1] is None:
            out.pop()
        return out

    @passk(k=1, n=3, id="invert", style="chat", support=SUPPORT,
           prompt="Given the root of a binary tree (TreeNode), write invert_tree(root) that mirrors it.")
    def test_invert(candidate):
        tree = candidate.function("build")([4, 2, 7, 1, 3, 6, 9])
        assert to_list(candidate.function("invert_tree")(tree)) == [4, 7, 2, 9, 6, 3, 1]
'''


def test_support_code_ships_helpers_next_to_the_candidate(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(TREE_SUITE)
    good = ("def invert_tree(root):\n    if root:\n"
            "        root.left, root.right = invert_tree(root.right), invert_tree(root.left)\n    return root\n")
    lazy = "def invert_tree(root):\n    return root\n"
    # Redefining the suite's helpers gains nothing: the answer is read on the trusted side.
    sneaky = ("def to_list(root):\n    return [4, 7, 2, 9, 6, 3, 1]\nclass TreeNode:\n    val = 4\n"
              "def invert_tree(root):\n    return root\n")
    result = passk_run([("invert", good), ("invert", lazy), ("invert", sneaky)], "--passk-runs=1")
    rec = problem(result.report, "invert")
    assert rec["passed_samples"] == [True, False, False], rec
    result.assert_outcomes(passed=1)


NUMPY_SUITE = '''
    from pytest_passk import passk

    @passk(k=1, n=1, id="mean", style="chat", prompt="Write mean(xs) with numpy.")
    def test_mean(candidate):
        assert candidate.function("mean")([1, 2, 3, 6]) == 3.0
'''
NUMPY_CANDIDATE = "import numpy as np\ndef mean(xs):\n    return float(np.mean(xs))\n"


@pytest.mark.parametrize("sandbox", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_candidates_import_only_the_packages_the_suite_declares(pytester: pytest.Pytester, passk_run,
                                                                sandbox: str) -> None:
    if sandbox == "docker":
        from conftest import need_docker

        need_docker()
    if sandbox == "local" and os.geteuid() != 0:
        pytest.skip("as a normal user local candidates share this Python and its packages")
    pytester.makepyfile(NUMPY_SUITE)
    rows = [("mean", NUMPY_CANDIDATE)]
    plain = passk_run(rows, f"--passk-sandbox={sandbox}", "--passk-runs=1")
    rec = problem(plain.report, "mean")
    assert rec["reasons"] == {"error": 1} and "No module named 'numpy'" in rec["first_failure"]["message"], rec
    declared = passk_run(rows, f"--passk-sandbox={sandbox}", "--passk-runs=1", "--passk-candidate-packages=numpy")
    assert problem(declared.report, "mean")["passed_samples"] == [True], problem(declared.report, "mean")
    bad = passk_run(rows, f"--passk-sandbox={sandbox}", "--passk-candidate-packages=no-such-dist-xyz")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*'no-such-dist-xyz', which is not installed here; pip install no-such-dist-xyz*"])


# Written against the boundary's fast path for plain JSON replies (no tags, so no walker): a
# candidate that writes its own reply on its connection, a list nested far past the depth bound but
# with no braces and few commas. The bound must hold on every path: the run fails as malformed, and
# the next candidate on the same zygote is served as usual.
DEEP_REPLY = '''
import os, socket, stat, struct, time
def f():
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode) or (fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode)):
                body = b'{"v":' + b"[" * 500 + b"]" * 500 + b"}"
                os.write(fd, struct.pack("!I", len(body)) + body)
        except OSError:
            pass
    time.sleep(30)
'''


def test_a_reply_nested_past_the_bound_is_malformed_on_every_path(make) -> None:
    with pytest.raises(CandidateGone) as info:
        make(DEEP_REPLY, timeout=20).function("f")()
    assert info.value.reason == "malformed", info.value.message
    assert make("def f():\n    return [[1, 2], [3]]\n").function("f")() == [[1, 2], [3]]


def test_arguments_sent_as_they_are_only_when_that_is_their_encoding() -> None:
    """The fast path of a call (arguments that are already plain JSON go as they are) must agree
    with the boundary's encoder on every value: subclasses, tuples, huge ints, bounds."""
    import json
    import random

    from pytest_passk.execute import boundary
    from pytest_passk.execute import zygote as wire

    class I(int):
        pass

    class S(str):
        pass

    values = [1, -5, 2.5, math.nan, math.inf, -0.0, "x", "", True, False, None, 1 << 5000, -(1 << 4001),
              I(3), S("s"), (1, 2), {1: 2}, {1}, b"b", 1j, frozenset(), bytearray(b"y")]
    rng = random.Random(7)

    def value(depth: int = 0):
        if depth > 3 or rng.random() < 0.5:
            return rng.choice(values)
        return [value(depth + 1) for _ in range(rng.randint(0, 4))]

    taken = 0
    for _ in range(5000):
        args = tuple(value() for _ in range(rng.randint(0, 3)))
        if boundary._is_json(args, 0, [wire.MAX_NODES]):
            taken += 1
            assert json.dumps(wire.encode(list(args))) == json.dumps(list(args)), args
    assert 500 < taken < 4500  # both kinds were met
    deep: list = [1]
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    assert not boundary._is_json((deep,), 0, [wire.MAX_NODES])
    assert not boundary._is_json((list(range(wire.MAX_NODES + 1)),), 0, [wire.MAX_NODES])


OVERRIDE_CONFTEST = """
    import pytest

    @pytest.fixture
    def candidate(candidate):
        # an override that wraps pytest-passk's own fixture: the test sees the wrapper's value
        return {"wrapped": candidate}

    @pytest.fixture
    def add(request):
        return request.getfixturevalue("candidate")["wrapped"].function("add")
"""

OVERRIDE_SUITE = """
    from pytest_passk import passk

    @passk(k=1, n=2, prompt="Write add(a, b).", id="override", style="chat")
    def test_override(candidate, add):
        assert set(candidate) == {"wrapped"}
        assert add(2, 3) == 5 and candidate["wrapped"].function("add")(1, 1) == 2
"""

DEPENDENT_SUITE = """
    import pytest
    from pytest_passk import passk

    @pytest.fixture
    def add(candidate):
        return candidate.function("add")

    @passk(k=1, n=2, prompt="Write add(a, b).", id="dependent", style="chat")
    def test_dependent(candidate, add, request):
        # the test's own argument, a fixture's and a dynamic look-up: one candidate
        assert request.node.name == "test_dependent" and request.getfixturevalue("request") is request
        assert request.getfixturevalue("candidate") is candidate
        assert add(2, 3) == 5 and candidate.function("add")(1, 1) == 2
"""


@pytest.mark.parametrize("conftest, suite", [(OVERRIDE_CONFTEST, OVERRIDE_SUITE), (None, DEPENDENT_SUITE)],
                         ids=["overridden", "requested-by-a-fixture"])
def test_fixtures_that_override_or_request_the_candidate(pytester: pytest.Pytester, passk_run,
                                                           conftest: str | None, suite: str) -> None:
    if conftest is not None:
        pytester.makeconftest(conftest)
    pytester.makepyfile(suite)
    honest, wrong = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"
    pid = "override" if conftest else "dependent"
    result = passk_run([(pid, honest), (pid, wrong)], "--passk-runs=1")
    rec = problem(result.report, pid)
    assert rec["passed_samples"] == [True, False], rec
    assert rec["reasons"] == {"passed": 1, "assertion": 1}, rec


PARAMETRIZED_SUITE = """
    import pytest
    from pytest_passk import passk

    @pytest.fixture
    def offset(request):
        return request.param * 100

    @pytest.mark.parametrize("offset", [1], indirect=True)
    @pytest.mark.parametrize("scale", [10], scope="module")
    @pytest.mark.parametrize("case", [(2, 3), (4, 5)], ids=["a", "b"])
    @passk(k=1, n=2, prompt="Write add(a, b).", id=lambda case: "add-%d" % case[0], style="chat")
    def test_params(candidate, case, scale, offset, request):
        # direct, module-scoped direct and indirect parameters all arrive as pytest gives them
        assert request.getfixturevalue("case") == case and isinstance(case, tuple)
        assert (scale, offset) == (10, 100)
        add = candidate.function("add")
        assert add(*case) == case[0] + case[1] and add(scale, offset) == 110
"""


def test_parametrized_arguments_reach_the_test_body(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(PARAMETRIZED_SUITE)
    honest, wrong = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a * b\n"
    samples = [(pid, code) for pid in ("add-2", "add-4") for code in (honest, wrong)]
    result = passk_run(samples, "--passk-runs=1")
    for pid in ("add-2", "add-4"):
        rec = problem(result.report, pid)
        assert rec["passed_samples"] == [True, False], rec
        assert rec["reasons"] == {"passed": 1, "assertion": 1}, rec
