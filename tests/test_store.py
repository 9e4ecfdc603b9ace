"""The SQLite store: verdicts are kept, so an identical re-run executes nothing; edits re-execute."""
from __future__ import annotations

import sqlite3

import pytest

from conftest import problem, write_samples
from pytest_passk.protocol import RunResult
from pytest_passk.store import Store, StoreError, code_hash

SUITE = """
    from pytest_passk import passk

    @passk(k=1, n=3, prompt="Write add(a, b).", id="add", style="chat")
    def test_add(candidate):
        assert candidate.function("add")(2, 3) == 5
"""
ROWS = [("add", "def add(a, b):\n    return a + b\n"), ("add", "def add(a, b):\n    return a - b\n"),
        ("add", "def add(a, b):\n    return b + a\n")]


def test_second_identical_run_executes_nothing(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_store_suite=SUITE)
    store = str(pytester.path / "passk.sqlite")
    first = passk_run(ROWS, store=store)
    assert (first.report["suite"]["runs_executed"], first.report["suite"]["runs_reused"]) == (6, 0)
    second = passk_run(ROWS, store=store)
    assert (second.report["suite"]["runs_executed"], second.report["suite"]["runs_reused"]) == (0, 6)
    # same verdicts, same outcome
    for result in (first, second):
        result.assert_outcomes(passed=1)
        rec = problem(result.report, "add")
        assert (rec["correct"], rec["passed_samples"]) == (2, [True, False, True])
    second.stdout.fnmatch_lines(["executed 0 candidate runs in 0.0 s, 6 reused from the store"])
    # (confirmation reruns of deciding passes are stored too, numbered from 1000: tests/test_checks.py)
    rows = sqlite3.connect(store).execute("SELECT code_hash, run, outcome FROM runs WHERE run < 1000 "
                                          "ORDER BY 1, 2").fetchall()
    assert sorted(rows) == sorted((code_hash(code), r, "passed" if "a - b" not in code else "failed")
                                  for _, code in ROWS for r in (0, 1))


def test_new_samples_run_and_old_ones_are_reused(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_store_suite=SUITE)
    store = str(pytester.path / "passk.sqlite")
    passk_run(ROWS[:2], store=store)
    again = passk_run(ROWS, store=store)
    assert (again.report["suite"]["runs_executed"], again.report["suite"]["runs_reused"]) == (2, 4)
    assert problem(again.report, "add")["correct"] == 2


def test_editing_the_test_re_executes(pytester: pytest.Pytester, passk_run) -> None:
    path = pytester.makepyfile(test_store_suite=SUITE)
    store = str(pytester.path / "passk.sqlite")
    passk_run(ROWS, store=store)
    # the test now asks for a - b: reused verdicts would be wrong
    path.write_text(path.read_text().replace("== 5", "== -1"))
    edited = passk_run(ROWS, store=store)
    assert (edited.report["suite"]["runs_executed"], edited.report["suite"]["runs_reused"]) == (6, 0)
    assert problem(edited.report, "add")["passed_samples"] == [False, True, False]
    unchanged = passk_run(ROWS, store=store)
    assert unchanged.report["suite"]["runs_executed"] == 0


def test_limits_are_part_of_the_key(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_store_suite=SUITE)
    store = str(pytester.path / "passk.sqlite")
    passk_run(ROWS, store=store)
    other = passk_run(ROWS, "--passk-timeout=5", store=store)
    assert other.report["suite"]["runs_executed"] == 6
    more_runs = passk_run(ROWS, "--passk-timeout=5", "--passk-runs=3", store=store)
    assert (more_runs.report["suite"]["runs_executed"], more_runs.report["suite"]["runs_reused"]) == (3, 6)


def test_memory_store_keeps_nothing(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_store_suite=SUITE)
    passk_run(ROWS)
    again = passk_run(ROWS)
    assert again.report["suite"]["runs_executed"] == 6
    assert not list(pytester.path.glob("**/*.sqlite"))


def test_default_store_lives_in_the_pytest_cache(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_store_suite=SUITE)
    samples = write_samples(pytester.path / "samples.jsonl", ROWS)
    args = ("--passk-sandbox=local", f"--passk-samples={samples}", "-p", "cacheprovider")
    pytester.runpytest(*args).assert_outcomes(passed=1)
    assert (pytester.path / ".pytest_cache" / "d" / "passk" / "store.sqlite").is_file()
    second = pytester.runpytest(*args)
    second.stdout.fnmatch_lines(["executed 0 candidate runs*6 reused from the store"])


def test_store_api_round_trip(tmp_path) -> None:
    store = Store(tmp_path / "sub" / "s.sqlite")
    store.add_samples("src", "h", "P", ["a", "b"])
    store.add_samples("src", "h", "P", ["c"])
    assert store.samples("src", "h") == ["a", "b", "c"]
    assert store.samples("other", "h") == []
    store.add_run(code_hash("x"), "key", 0, RunResult(id=1, outcome="failed", reason="timeout", message="m"))
    store.add_run(code_hash("x"), "key", 0, RunResult(id=2, outcome="passed", reason="passed"))  # replaces
    runs = store.runs("key")
    assert list(runs) == [(code_hash("x"), 0)] and runs[(code_hash("x"), 0)].passed
    assert store.counts() == (3, 1)
    store.close()
    reopened = Store(tmp_path / "sub" / "s.sqlite")
    assert reopened.counts() == (3, 1)  # committed as written
    reopened.close()


def test_unusable_store_is_a_usage_error(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_store_suite=SUITE)
    bad = pytester.path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(bad)
    result = passk_run(ROWS, store=str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--passk-store" in result.stderr.str()
