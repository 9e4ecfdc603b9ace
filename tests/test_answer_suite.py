"""maj@k end to end on the answer-style example suite (example_suites/arithmetic): samples vote
with the final number the marker's answer= reads from their text."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import LOCAL, problem, write_samples
from pytest_passk.select import maj_at_k

SUITE = Path(__file__).resolve().parents[1] / "example_suites" / "arithmetic" / "test_word_problems.py"

# apples = 9: a correct plurality; pencils = 72: a wrong plurality (70) beats the right answer;
# bus = 17: no sample has a number (no votes); minutes = 240: a tie between right and wrong.
SAMPLES = {
    "arithmetic/apples": ["7 + 5 - 3 = 9. The answer is 9."] * 5 + ["The answer is 8."] * 2 + ["I am not sure."],
    "arithmetic/pencils": ["12 * 6 = 72. The answer is 72."] * 3 + ["The answer is 70."] * 4 + ["It is 60"],
    "arithmetic/bus": ["Some seats are empty."] * 8,
    "arithmetic/minutes": ["4 * 60 = 240"] * 4 + ["The answer is 200."] * 4,
}


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    rows = [(pid, text) for pid, texts in SAMPLES.items() for text in texts]
    samples = write_samples(pytester.path / "samples.jsonl", rows)
    report = pytester.path / "report.json"
    targets = [f"{SUITE}::test_word_problem[{pid.split('/')[1]}]" for pid in SAMPLES]
    result = pytester.runpytest(*LOCAL, f"--passk-samples={samples}", f"--passk-report={report}", *args, *targets)
    return result, json.loads(report.read_text())


def test_maj_at_k_and_precision_gap(pytester: pytest.Pytester) -> None:
    result, report = run(pytester, "--passk-confirm=0")
    apples, pencils, bus, minutes = (problem(report, pid) for pid in SAMPLES)
    assert (apples["correct"], pencils["correct"], bus["correct"], minutes["correct"]) == (5, 3, 0, 4)
    assert apples["maj@1"] == pytest.approx(5 / 8) and apples["maj@4"] == pytest.approx(
        maj_at_k([(5, True), (2, False)], 1, 4), abs=1e-6)
    assert pencils["maj@4"] == pytest.approx(maj_at_k([(3, True), (4, False), (1, False)], 0, 4), abs=1e-6)
    assert pencils["maj@4"] < pencils["pass@4"]  # the verifier finds what voting misses
    assert bus["maj@1"] == bus["maj@4"] == 0.0  # nobody gave an answer: voting picks none
    assert minutes["maj@1"] == pytest.approx(0.5)
    suite = report["suite"]
    expected = (apples["maj@4"] + pencils["maj@4"] + minutes["maj@4"]) / 4
    assert suite["maj@4"] == pytest.approx(expected, abs=1e-6)
    curve = report["curve"]
    assert curve["k"] == [1, 2, 4, 8] and len(curve["maj"]) == len(curve["precision_gap"]) == 4
    for cov, maj, gap in zip(curve["coverage"], curve["maj"], curve["precision_gap"]):
        assert gap == pytest.approx(cov - maj, abs=1e-5) and gap >= 0
    result.stdout.fnmatch_lines(["selection without a verifier: maj@1 *, maj@4 *; precision gap (coverage - maj@k): k=1 *"])


def test_function_problems_vote_with_what_they_return(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile("""
        from pytest_passk import passk

        @passk(k=(1, 4), prompt="Write add(a, b).", id="add", style="chat")
        def test_add(candidate):
            assert candidate.function("add")(2, 3) == 5
    """)
    rows = [("add", "def add(a, b):\n    return a + b\n"), ("add", "def add(a, b):\n    return sum((a, b))\n"),
            ("add", "def add(a, b):\n    return a - b\n"), ("add", "def add(a, b):\n    return a * b\n")]
    report = passk_run(rows, "--passk-confirm=0").report
    # two programs return 5 (one group, correct), the others -1 and 6: one sample votes 5 half the
    # time, and with all four drawn the group of two wins
    rec = problem(report, "add")
    assert (rec["maj@1"], rec["maj@4"]) == (0.5, 1.0)
    assert report["suite"]["maj@4"] == 1.0
