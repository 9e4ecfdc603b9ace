"""Verifier flakiness: a test whose verdict depends on chance is reported flaky, and counted as asked."""
from __future__ import annotations

import pytest

from conftest import problem

SUITE = """
    import random
    from pytest_passk import passk

    @passk(k=1, prompt="Write add(a, b).", id="coin", style="chat")
    def test_coin(candidate):
        assert candidate.function("add")(2, 3) == 5
        assert random.random() < 0.5, "the coin came up tails"

    @passk(k=1, prompt="Write add(a, b).", id="steady", style="chat")
    def test_steady(candidate):
        assert candidate.function("add")(2, 3) == 5
"""
ADD = "def add(a, b):\n    return a + b\n"
ROWS = [("coin", ADD), ("steady", ADD), ("steady", "def add(a, b):\n    return a * b\n")]
# With 20 runs of a fair coin, all runs agree with probability 2**-19: the coin is flaky.
# (Confirmation reruns are off here: these tests count runs; tests/test_checks.py covers them.)
RUNS = ("--passk-runs=20", "--passk-confirm=0")


def test_chance_verdict_is_flaky_and_fails_by_default(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    result = passk_run(ROWS, *RUNS, "-rf")
    coin, steady = problem(result.report, "coin"), problem(result.report, "steady")
    assert (coin["n"], coin["flaky"], coin["correct"], coin["pass@1"]) == (1, 1, 0, 0.0)
    assert 0 < coin["reasons"]["passed"] < 20 and coin["reasons"]["assertion"] == 20 - coin["reasons"]["passed"]
    assert (steady["n"], steady["flaky"], steady["correct"]) == (2, 0, 1)
    assert steady["reasons"] == {"passed": 20, "assertion": 20}
    suite = result.report["suite"]
    assert (suite["flaky_problems"], suite["flaky_samples"], suite["runs_executed"]) == (1, 1, 60)
    assert suite["coverage"] == 0.5
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*_ test_coin _*", "coin: 0 of 1 samples correct, 1 needed; 1 flaky; pass@1=0.000"])
    result.stdout.re_match_lines([r"coin\s+1\s+0\s+1\s+0\.000$", r".*flaky problems 1$"])


def test_flaky_pass_counts_flaky_candidates_as_correct(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    result = passk_run(ROWS, *RUNS, "--passk-flaky=pass", "--junitxml=out.xml")
    coin = problem(result.report, "coin")
    assert (coin["flaky"], coin["correct"], coin["pass@1"], coin["passed_samples"]) == (1, 1, 1.0, [True])
    assert problem(result.report, "steady")["correct"] == 1  # a candidate that always fails stays failed
    assert result.report["suite"]["flaky_problems"] == 1 and result.report["suite"]["coverage"] == 1.0
    result.assert_outcomes(passed=2)
    assert '<property name="passk.flaky" value="1"' in (pytester.path / "out.xml").read_text()


def test_deterministic_runs_are_not_flaky(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    result = passk_run([("steady", ADD), ("coin", "def add(a, b):\n    return 0\n")], "--passk-runs=4", "--passk-confirm=0")
    assert result.report["suite"]["flaky_problems"] == 0
    assert problem(result.report, "coin")["reasons"] == {"assertion": 4}  # fails before the coin is tossed
    assert problem(result.report, "steady")["reasons"] == {"passed": 4}
