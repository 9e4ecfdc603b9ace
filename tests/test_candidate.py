"""The candidate fixture's value: code extraction, loading, running, and forged return values."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import problem
from pytest_passk.candidate import Candidate, CandidateError, extract_code, program_for


def make(tmp_path: Path, code: str, text: str | None = None, timeout: float | None = None) -> Candidate:
    path = tmp_path / "candidate.py"
    path.write_text(code)
    return Candidate(text=code if text is None else text, code=code, path=str(path), prompt="p",
                     problem_id="P", timeout=timeout)


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


def test_module_function_path_text_code(tmp_path: Path) -> None:
    code = "CALLS = []\ndef double(x):\n    CALLS.append(x)\n    return 2 * x\n"
    cand = make(tmp_path, code, text="raw reply")
    assert cand.text == "raw reply" and cand.code == code
    assert Path(cand.path).read_text() == code
    mod = cand.module()
    assert mod is cand.module()  # executed once
    double = cand.function("double")
    assert double(21) == 42
    assert mod.CALLS == [21]
    assert double.__name__ == "double"
    with pytest.raises(CandidateError, match="no function 'triple'"):
        cand.function("triple")
    with pytest.raises(CandidateError, match="no function 'CALLS'"):
        cand.function("CALLS")  # not callable


def test_module_errors_propagate(tmp_path: Path) -> None:
    with pytest.raises(SyntaxError):
        make(tmp_path, "def broken(:\n").module()
    with pytest.raises(ZeroDivisionError):
        make(tmp_path, "x = 1 / 0\n").module()


def test_run_stdin_stdout_and_args(tmp_path: Path) -> None:
    cand = make(tmp_path, "import sys\nprint(sum(int(t) for t in sys.stdin.read().split()), *sys.argv[1:])\n")
    done = cand.run(["a", "b"], input="1 2 3\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "6 a b\n", "")
    as_bytes = cand.run(input=b"4 5")
    assert as_bytes.stdout == b"9\n"


def test_run_uses_the_candidate_timeout(tmp_path: Path) -> None:
    cand = make(tmp_path, "import time\ntime.sleep(30)\n", timeout=0.5)
    with pytest.raises(subprocess.TimeoutExpired):
        cand.run()


ALWAYS_EQUAL = "class Eq:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n"


@pytest.mark.parametrize(
    "code",
    [
        ALWAYS_EQUAL + "def f(x):\n    return Eq()\n",
        "class S(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
        "def f(x):\n    return S('nope')\n",
        ALWAYS_EQUAL + "def f(x):\n    return [1, (2, Eq())]\n",
        ALWAYS_EQUAL + "def f(x):\n    return {'key': Eq()}\n",
        "class T:\n    def __bool__(self):\n        return True\n    def __ne__(self, o):\n        return False\n"
        "def f(x):\n    return T()\n",
        "class Base:\n    def __eq__(self, other):\n        return True\nclass Child(Base):\n    pass\n"
        "def f(x):\n    return Child()\n",
    ],
    ids=["always-equal", "str-subclass", "nested-in-list", "in-dict", "bool-ne", "inherited"],
)
def test_forged_return_values_are_rejected(tmp_path: Path, code: str) -> None:
    f = make(tmp_path, code).function("f")
    with pytest.raises(CandidateError, match="forged"):
        f(1)


def test_honest_values_are_not_flagged(tmp_path: Path) -> None:
    code = (
        "import collections, fractions\n"
        "Point = collections.namedtuple('Point', 'x y')\n"
        "class Plain:\n    pass\n"
        "def f(x):\n"
        "    return [x, 'text', (1.5, None), {'a': {2, 3}}, fractions.Fraction(1, 3), Point(1, 2), Plain()]\n"
    )
    assert make(tmp_path, code).function("f")(7)[:2] == [7, "text"]


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
    assert rec["reasons"] == {"error": 3, "passed": 1}
    assert "forged" in rec["first_failure"]["message"]


def test_fixture_outside_passk_tests_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(candidate):\n    pass\n")
    result = pytester.runpytest("--passk-sandbox=local")
    assert result.ret != 0
    assert "only for @passk tests" in result.stdout.str() + result.stderr.str()
