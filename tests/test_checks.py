"""Checks of the verifier with reference solutions, and confirmation reruns of deciding verdicts."""
from __future__ import annotations

import math
import textwrap

import pytest

from conftest import CALL_NUMBER, problem

GOOD = "def add(a, b):\n    return a + b\n"
BAD = "def add(a, b):\n    return a - b\n"

REFERENCES = CALL_NUMBER + textwrap.dedent(f"""
    from pytest_passk import passk

    @passk(k=1, prompt="Write add(a, b).", id="ok", style="chat", reference={GOOD!r})
    def test_ok(candidate):
        assert candidate.function("add")(2, 3) == 5

    @passk(k=1, prompt="Write add(a, b).", id="broken", style="chat", reference={GOOD!r})
    def test_broken(candidate):
        assert candidate.function("add")(2, 3) == 6, "the test expects the wrong sum"

    @passk(k=1, prompt="Write add(a, b).", id="flaky", style="chat", reference={GOOD!r})
    def test_flaky(candidate):
        assert candidate.function("add")(2, 3) == 5
        assert call_number("flaky") % 2 == 0, "tails"  # a coin that needs no luck: tails every other call

    @passk(k=1, prompt="Write add(a, b).", id="slow", style="chat", reference={GOOD!r})
    def test_slow(candidate):
        assert candidate.function("add")(2, 3) == 5

    @passk(k=1, prompt="Write add(a, b).", id="unchecked", style="chat")
    def test_unchecked(candidate):
        assert candidate.function("add")(2, 3) == 5
""")
SLOW = "import time\n\ndef add(a, b):\n    time.sleep(30)\n    return a + b\n"  # right, but 30 s


def test_reference_marks_verifiers_and_derives_timeouts(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(REFERENCES)
    rows = [(pid, GOOD) for pid in ("ok", "broken", "flaky", "unchecked")] + [("ok", BAD), ("slow", SLOW)]
    result = passk_run(rows, "--passk-reference-runs=12", "--passk-confirm=0", "-rf")
    report = result.report
    statuses = {p["id"]: p["verifier"] for p in report["problems"]}
    # the coin's 12 runs disagree (6 heads, 6 tails, whichever calls they are)
    assert statuses == {"ok": "ok", "broken": "broken", "flaky": "flaky", "slow": "ok", "unchecked": "unchecked"}
    suite = report["suite"]
    assert suite["broken_verifiers"] == ["broken"] and suite["flaky_verifiers"] == ["flaky"]
    broken = problem(report, "broken")
    assert broken["reference"]["passed"] == 0 and "wrong sum" in broken["reference"]["message"]
    assert broken["correct"] == 0 and broken["reasons"] == {}  # its candidates were not run
    # left out of the metrics, not counted as a model failure: coverage is over the other four, of
    # which ok and unchecked are solved, slow is not, flaky is if both its runs came up heads
    assert suite["coverage"] in (0.5, 0.75)
    # no marker timeout: max(1 s, 4 x the reference's slowest run), rounded up to 0.1 s. The reference
    # is fast, so 1 s; but its slowest of 12 runs (wall time) can pass 0.25 s on a loaded machine, and
    # then the rule gives more (the report's "seconds" is rounded to 0.1 ms: either side of it).
    slow = problem(report, "slow")
    seconds = slow["reference"]["seconds"]
    rule = {max(1.0, math.ceil(4 * s * 10) / 10) for s in (seconds - 5e-5, seconds + 5e-5)}
    assert slow["timeout_from_reference"] is True and slow["timeout"] in rule, (slow["timeout"], seconds)
    assert slow["reasons"] == {"timeout": 2} and slow["correct"] == 0
    assert problem(report, "unchecked")["timeout"] == 10.0
    assert suite["reference_runs"] == 4 * 12
    result.stdout.fnmatch_lines([
        "*broken: the verifier is broken: the reference solution passed 0 of 12 runs*",
        "broken verifiers (reference solution fails; left out of the metrics): broken",
        "flaky verifiers (reference solution's runs disagree): flaky",
    ])


def test_reference_checks_can_be_turned_off(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(REFERENCES)
    result = passk_run([("broken", GOOD)], "--passk-reference-runs=0", "--passk-confirm=0")
    assert {p["verifier"] for p in result.report["problems"]} == {"unchecked"}
    assert result.report["suite"]["reference_runs"] == 0


def test_a_failing_reference_is_rerun_before_its_verifier_is_called_broken(pytester: pytest.Pytester,
                                                                           passk_run) -> None:
    pytester.makepyfile(REFERENCES)
    rows = [(pid, GOOD) for pid in ("ok", "broken", "flaky")]
    report = passk_run(rows, "--passk-reference-runs=3", "--passk-confirm=10", "--passk-runs=1").report
    ok, broken, flaky = (problem(report, pid) for pid in ("ok", "broken", "flaky"))
    assert ok["reference"]["runs"] == 3 and ok["verifier"] == "ok"  # all passed: nothing more
    assert (broken["reference"]["runs"], broken["reference"]["passed"], broken["verifier"]) == (13, 0, "broken")
    # the coin: its 3 runs come up heads (as calls 0, 2, 4 would), else 13 runs of which some pass
    assert (flaky["reference"]["runs"], flaky["verifier"]) in ((3, "ok"), (13, "flaky"))
    assert report["suite"]["reference_runs"] == 3 + 13 + flaky["reference"]["runs"] + 3  # and slow's


def test_allow_partial_checks_only_the_references_of_problems_with_samples(pytester: pytest.Pytester,
                                                                          passk_run) -> None:
    pytester.makepyfile(REFERENCES)
    report = passk_run([("ok", GOOD)], "--passk-allow-partial", "--passk-reference-runs=2", "--passk-confirm=0").report
    assert report["suite"]["reference_runs"] == 2  # ok's; broken, flaky and slow have no samples
    assert {p["id"]: p["verifier"] for p in report["problems"]} == {
        "ok": "ok", "broken": "unchecked", "flaky": "unchecked", "slow": "unchecked", "unchecked": "unchecked"}
    # without --passk-allow-partial every problem counts (unsolved without samples): all are checked
    report = passk_run([("ok", GOOD)], "--passk-reference-runs=2", "--passk-confirm=0").report
    assert report["suite"]["reference_runs"] == 4 * 2 and "broken" in report["suite"]["broken_verifiers"]


CONFIRM = CALL_NUMBER + textwrap.dedent("""
    from pytest_passk import passk

    @passk(k=1, prompt="Write add(a, b).", id="coin", style="chat")
    def test_coin(candidate):
        assert candidate.function("add")(2, 3) == 5
        # heads the first time (so the pass is there to confirm), then tails every other call: a
        # coin whose flips are certain (a fair one's 11 later runs would all be heads 1 time in 2**11)
        assert call_number("coin") % 2 == 0, "tails"

    @passk(k=1, prompt="Write add(a, b).", id="steady", style="chat")
    def test_steady(candidate):
        assert candidate.function("add")(2, 3) == 5

    @passk(k=1, prompt="Write add(a, b).", id="machine", style="chat", timeout=1)
    def test_machine(candidate):
        # the first two runs find a busy machine (they time out); later runs do not
        if call_number("machine") < 2:
            import time
            time.sleep(30)
        assert candidate.function("add")(2, 3) == 5
""")


def test_rare_passes_and_timeouts_are_confirmed(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(CONFIRM)
    rows = [("coin", GOOD), ("steady", GOOD), ("steady", BAD), ("machine", GOOD)]
    # The coin's later runs come up tails every other time: confirmation finds the flip.
    result = passk_run(rows, "--passk-confirm=10")
    report = result.report
    steady = problem(report, "steady")
    assert steady["confirmed"] == 1 and steady["reasons"] == {"passed": 2, "assertion": 2}
    assert steady["flaky_candidates"] == [] and steady["correct"] == 1
    coin = problem(report, "coin")
    assert coin["correct"] == 0 and coin["flaky"] == 1
    (flip,) = coin["flaky_candidates"]
    assert flip["sample"] == 0 and flip["runs"] == 12 and 0 < flip["passes"] < 12
    assert flip["flip_rate"] == pytest.approx(min(flip["passes"], 12 - flip["passes"]) / 12, abs=1e-6)
    low, high = flip["interval"]
    assert 0 <= low < flip["flip_rate"] < high <= 1
    machine = problem(report, "machine")
    assert machine["confirmed"] == 1
    assert machine["reasons"] == {"timeout": 2}  # the --passk-runs runs; confirmation is apart
    (flip,) = machine["flaky_candidates"]
    assert flip["reasons"] == {"timeout": 2, "passed": 10} and flip["flip_rate"] == pytest.approx(2 / 12, abs=1e-6)
    assert machine["correct"] == 0  # flaky counts as failed unless --passk-flaky=pass
    assert report["suite"]["confirm_runs"] == 30
    result.stdout.fnmatch_lines(["flaky candidates: *coin#0 flips *", "confirmation: 30 extra runs*"])
