"""Replay of samples files, and everything a user reads: terminal section, JUnit XML, JSON, the gate."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from conftest import LOCAL, problem, read_samples, write_samples

SUITE = """
    from pytest_passk import passk

    @passk(k=(1, 2), n=4, prompt="Write add(a, b).", id="add", style="chat")
    def test_add(candidate):
        assert candidate.function("add")(2, 3) == 5

    @passk(k=(1, 2), n=2, prompt="Write mul(a, b).", id="mul", style="chat", min=2)
    def test_mul(candidate):
        got = candidate.function("mul")(2, 3)
        assert got == 6, f"mul(2, 3) gave {got}"

    @passk(k=1, prompt="Write neg(a).", id="neg", style="chat")
    def test_neg(candidate):
        assert candidate.function("neg")(2) == -2

    def test_plain():
        pass
"""

ADD_OK = "def add(a, b):\n    return a + b\n"
ADD_OK2 = "def add(a, b):\n    return sum((a, b))\n"
ADD_BAD = "def add(a, b):\n    return a - b\n"
ADD_BAD2 = "def add(a, b):\n    return 0\n"
MUL_OK = "def mul(a, b):\n    return a * b\n"
MUL_BAD = "def mul(a, b):\n    return a + b\n"
ROWS = [
    ("add", ADD_OK), ("mul", MUL_OK), ("other", "ignored"), ("add", ADD_BAD),
    ("add", ADD_OK2), ("mul", MUL_BAD), ("add", ADD_BAD2),
]


@pytest.fixture
def suite_run(pytester: pytest.Pytester, passk_run):
    pytester.makepyfile(test_suite=SUITE)
    result = passk_run(ROWS, "--junitxml=out.xml", "--passk-save-samples=saved.jsonl", "-rf")
    return result


def test_samples_are_the_lines_with_the_problem_id(suite_run) -> None:
    rec = problem(suite_run.report, "add")
    assert (rec["n"], rec["correct"], rec["flaky"]) == (4, 2, 0)
    assert rec["passed_samples"] == [True, False, True, False]  # file order
    assert rec["pass@1"] == pytest.approx(0.5)
    assert rec["pass@2"] == pytest.approx(1 - 1 / 6, abs=1e-6)
    mul = problem(suite_run.report, "mul")
    assert (mul["n"], mul["correct"], mul["pass@1"], mul["pass@2"]) == (2, 1, 0.5, 1.0)
    assert "other" not in [p["id"] for p in suite_run.report["problems"]]


def test_items_pass_iff_min_is_met_and_missing_samples_fail(suite_run) -> None:
    suite_run.assert_outcomes(passed=2, failed=2)  # add and test_plain pass; mul (min=2) and neg fail
    suite_run.stdout.fnmatch_lines([
        "FAILED test_suite.py::test_mul - *mul: 1 of 2 samples correct*",
        "FAILED test_suite.py::test_neg - *neg: no samples to evaluate*",
    ])
    neg = problem(suite_run.report, "neg")
    assert (neg["n"], neg["correct"], neg["pass@1"]) == (0, 0, None)


def test_failure_message_shows_counts_and_first_failing_candidate(suite_run) -> None:
    out = suite_run.stdout.str()
    section = out[out.index("_ test_mul _"):]
    assert "mul: 1 of 2 samples correct, 2 needed; 0 flaky; pass@1=0.500, pass@2=1.000" in section
    assert "failed runs by reason: assertion: 2" in section
    assert "first failing candidate (sample #1, assertion):" in section
    assert "mul(2, 3) gave 5" in section
    rec = problem(suite_run.report, "mul")
    assert rec["first_failure"]["sample"] == 1 and "mul(2, 3) gave 5" in rec["first_failure"]["message"]


def test_terminal_section(suite_run) -> None:
    suite_run.stdout.fnmatch_lines([
        "*= passk =*",
        "WARNING: sandbox local (2 workers, candidates in their own processes*; does NOT isolate the host*",
        "samples: replay of *samples.jsonl",
        "problem * n * correct * flaky * pass@1 * pass@2",
    ])
    suite_run.stdout.re_match_lines([
        r"add\s+4\s+2\s+0\s+0\.500\s+0\.833$",
        r"mul\s+2\s+1\s+0\s+0\.500\s+1\.000$",
        r"neg\s+0\s+0\s+0\s+-\s+-\s+no samples$",
        # neg has no samples: it counts as unsolved (pass@k 0), and the summary says so
        r"suite: 3 problems, 6 samples, coverage 0\.667 \[0\.\d+, 0\.\d+\] \(2/3\), pass@1 0\.333 \[0\.\d+, 0\.\d+\], "
        r"pass@2 0\.611 \[0\.\d+, 0\.\d+\], flaky problems 0$",
        r"extrapolation: none \(2 problem\(s\) with samples are too few to fit a distribution of success rates "
        r"\(at least 5\)\)$",
        r"cost: unknown \(the samples came from a file: tokens and engine time are unknown\)$",
        r"incomplete suite: 1 of 3 problems have no samples and count as unsolved \(--passk-allow-partial *",
        r"executed 12 candidate runs in \d+\.\d s \(\d+\.\d runs/s\), 0 reused from the store",
    ])


def test_json_report(suite_run) -> None:
    data = suite_run.report
    suite = data["suite"]
    assert {k: suite[k] for k in ("problems", "samples", "coverage", "pass@1", "pass@2", "flaky_problems")} == {
        "problems": 3, "samples": 6, "coverage": pytest.approx(2 / 3), "pass@1": pytest.approx(1 / 3),
        "pass@2": pytest.approx(0.611111), "flaky_problems": 0,
    }
    assert (suite["problems_with_samples"], suite["problems_without_samples"], suite["partial"],
            suite["metrics_over"]) == (2, 1, True, "all")
    # 6 distinct candidates x 2 runs; apart from them, 6 confirming runs for each of the 3 deciding passes
    assert suite["runs_executed"] == 12 and suite["runs_reused"] == 0 and suite["runs_per_second"] > 0
    assert suite["confirm_runs"] == 18 and suite["flaky_candidates"] == 0
    assert [p["id"] for p in data["problems"]] == ["add", "mul", "neg"]
    for rec in data["problems"]:
        assert {"id", "n", "correct", "flaky", "pass@1"} <= set(rec)
    assert data["gate"] == {"failed": []}


def test_junit_properties(suite_run, pytester: pytest.Pytester) -> None:
    root = ET.parse(pytester.path / "out.xml").getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    cases = {case.get("name"): case for case in suite.iter("testcase")}

    def props(node):
        return {p.get("name"): p.get("value") for p in node.findall("./properties/property")}

    assert props(cases["test_add"]) == {"passk.id": "add", "passk.n": "4", "passk.correct": "2",
                                        "passk.flaky": "0", "pass@1": "0.500", "pass@2": "0.833",
                                        "pass@1.low": "0.150", "pass@1.high": "0.850"}
    assert props(cases["test_mul"])["passk.correct"] == "1"
    assert cases["test_mul"].find("failure") is not None
    assert props(cases["test_neg"])["pass@1"] == "n<k"
    assert props(cases["test_plain"]) == {}
    top = props(suite)
    assert top["passk.problems"] == "3" and top["passk.samples"] == "6"
    assert float(top["passk.coverage"]) == pytest.approx(2 / 3) and float(top["pass@1"]) == pytest.approx(1 / 3)
    assert float(top["pass@2"]) == pytest.approx(0.611111)
    assert top["passk.flaky_problems"] == "0"


def test_save_samples_writes_humaneval_lines(suite_run, pytester: pytest.Pytester, passk_run) -> None:
    saved = read_samples(pytester.path / "saved.jsonl")
    assert saved == [{"task_id": "add", "completion": c, "style": "chat"} for c in (ADD_OK, ADD_BAD, ADD_OK2, ADD_BAD2)] + [
        {"task_id": "mul", "completion": c, "style": "chat"} for c in (MUL_OK, MUL_BAD)]
    # and re-scoring the saved file gives the same numbers
    again = passk_run([(r["task_id"], r["completion"]) for r in saved])
    assert [(p["id"], p["n"], p["correct"]) for p in again.report["problems"]] == [
        ("add", 4, 2), ("mul", 2, 1), ("neg", 0, 0)]


def test_extra_fields_and_blank_lines_are_ignored(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    path = pytester.path / "extra.jsonl"
    path.write_text(json.dumps({"task_id": "add", "completion": ADD_OK, "model": "m", "logprob": -1.5})
                    + "\n\n" + json.dumps({"task_id": "mul", "completion": MUL_OK, "extra": [1]}) + "\n")
    result = pytester.runpytest(*LOCAL, f"--passk-samples={path}", "-k", "add or mul")
    result.assert_outcomes(passed=1, failed=1)  # mul needs 2 correct samples
    result.stdout.re_match_lines([r"add\s+1\s+1\s+0", r"mul\s+1\s+1\s+0"])


@pytest.mark.parametrize(
    ("bad_line", "says"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"task_id": "add"}', "\"task_id\" and \"completion\""),
        ('{"task_id": 7, "completion": "x"}', "\"task_id\" and \"completion\""),
    ],
)
def test_malformed_line_is_one_clear_error(pytester: pytest.Pytester, bad_line: str, says: str) -> None:
    pytester.makepyfile(test_suite=SUITE)
    path = write_samples(pytester.path / "bad.jsonl", [("add", ADD_OK), ("mul", MUL_OK)])
    path.write_text(path.read_text() + bad_line + "\n" + json.dumps({"task_id": "add", "completion": "x"}) + "\n")
    result = pytester.runpytest(*LOCAL, f"--passk-samples={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"{path}:3:" in err and says in err, err
    assert err.count("ERROR") == 1 and "Traceback" not in err + result.stdout.str()


def test_condensed_rows_for_many_problems(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile("""
        import pytest
        from pytest_passk import passk

        @pytest.mark.parametrize("i", range(30))
        @passk(k=1, prompt=lambda i: f"Return {i}.", id=lambda i: f"p{i:02d}", style="chat")
        def test_value(candidate, i):
            assert candidate.function("value")() == i
    """)
    # even problems are solved, odd ones get a wrong answer
    rows = [(f"p{i:02d}", f"def value():\n    return {i if i % 2 == 0 else -1}\n") for i in range(30)]
    result = passk_run(rows, "--passk-runs=1")
    result.assert_outcomes(passed=15, failed=15)
    out = result.stdout.str().split("= passk =")[1]
    shown = [line.split()[0] for line in out.splitlines() if line.startswith("p") and line[1:3].isdigit()]
    assert len(shown) == 20
    assert {f"p{i:02d}" for i in range(1, 30, 2)} <= set(shown)  # unsolved problems come first
    result.stdout.fnmatch_lines(["... 10 more problems not shown*-v shows all*",
                                 "suite: 30 problems, 30 samples, coverage 0.500 [[]0.*] (15/30), pass@1 0.500*"])
    verbose = passk_run(rows, "--passk-runs=1", "-v")
    out = verbose.stdout.str().split("= passk =")[1]
    assert len([line for line in out.splitlines() if line.startswith("p") and line[1:3].isdigit()]) == 30
    assert "more problems not shown" not in out


GATE_SUITE = """
    from pytest_passk import passk

    @passk(k=(1, 3), n=4, prompt="Write add(a, b).", id="add", style="chat")
    def test_add(candidate):
        assert candidate.function("add")(2, 3) == 5
"""


@pytest.mark.parametrize(
    ("bounds", "failed"),
    [
        (["coverage=1.0", "pass@1=0.25"], []),
        (["pass@1=0.25", "pass@3=0.75"], []),  # a bound met exactly passes
        (["pass@1=0.75"], ["pass@1 0.250 < 0.75 (short by 0.500)"]),
        (["coverage=1", "pass@3=0.8"], ["pass@3 0.750 < 0.8 (short by 0.050)"]),
        (["pass@2=0.6"], ["pass@2 0.500 < 0.6 (short by 0.100)"]),  # a k the marker does not ask for
        (["pass@5=0.1"], ["pass@5 is undefined (no extrapolation: 1 problem(s) with samples are too few to fit a "
                           "distribution of success rates (at least 5)); bound 0.1"]),
        (["coverage.low=0.2", "pass@1.low=0.04"], []),  # one problem: wide intervals
        (["coverage.low=0.3"], ["coverage.low 0.207 < 0.3 (short by 0.093; lower end of the 95% interval of "
                                "coverage 1.000)"]),

    ],
)
def test_fail_under_gate(pytester: pytest.Pytester, passk_run, bounds: list[str], failed: list[str]) -> None:
    pytester.makepyfile(GATE_SUITE)
    rows = [("add", ADD_OK), ("add", ADD_BAD), ("add", ADD_BAD2), ("add", "def add(a, b):\n    return 1\n")]
    result = passk_run(rows, *[f"--passk-fail-under={b}" for b in bounds])
    result.assert_outcomes(passed=1)
    assert result.report["gate"]["failed"] == failed
    if failed:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines([f"FAILED --passk-fail-under: {line}" for line in failed])
    else:
        assert result.ret == pytest.ExitCode.OK
        result.stdout.no_fnmatch_line("*FAILED --passk-fail-under*")


def test_fail_under_coverage(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    result = passk_run([("add", ADD_OK), ("mul", MUL_BAD), ("mul", MUL_BAD.replace("a + b", "b + a"))],
                       "--passk-fail-under=coverage=0.9", "-k", "add or mul")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED --passk-fail-under: coverage 0.500 < 0.9 (short by 0.400)"])
    assert result.report["suite"]["coverage"] == 0.5


def test_broken_fixture_fails_every_candidate_as_setup(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile("""
        import pytest
        from pytest_passk import passk

        @pytest.fixture
        def database():
            raise RuntimeError("no database here")

        @passk(k=1, prompt="Write add(a, b).", id="add", style="chat")
        def test_add(candidate, database):
            assert candidate.function("add")(2, 3) == 5
    """)
    result = passk_run([("add", ADD_OK), ("add", ADD_OK2)], "--passk-runs=1")
    result.assert_outcomes(errors=1)  # on the host too, the fixture errors before the verdict is read
    rec = problem(result.report, "add")
    assert (rec["correct"], rec["reasons"]) == (0, {"setup": 2})
    assert "no database here" in rec["first_failure"]["message"]


def test_a_saved_file_remembers_its_style(pytester: pytest.Pytester) -> None:
    """A problem that leaves the style to the run re-scores a saved chat-style file as chat, unasked."""
    pytester.makepyfile(test_auto="""
        from pytest_passk import passk

        @passk(k=1, prompt="Write add(a, b).", id="add")
        def test_add(candidate):
            assert candidate.function("add")(2, 3) == 5
    """)
    reply = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\n"
    path = pytester.path / "saved.jsonl"
    path.write_text(json.dumps({"task_id": "add", "completion": reply, "style": "chat"}) + "\n")
    assert pytester.runpytest(*LOCAL, f"--passk-samples={path}").ret == 0
    # Without the recorded style the reply would be read as a completion: prompt + reply, no program.
    path.write_text(json.dumps({"task_id": "add", "completion": reply}) + "\n")
    assert pytester.runpytest(*LOCAL, f"--passk-samples={path}").ret == 1
    path.write_text(json.dumps({"task_id": "add", "completion": reply, "style": "prose"}) + "\n")
    result = pytester.runpytest(*LOCAL, f"--passk-samples={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*saved.jsonl:1: \"style\" must be one of completion, chat, got 'prose'*"])
