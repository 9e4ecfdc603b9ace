"""What a stored verdict keeps for majority voting: a run against the same store reports the same
maj@k as the first (its samples vote with what they returned, read back from SQLite), and a store
written before verdicts kept it (schema 1) still opens and is brought up to date."""
from __future__ import annotations

import sqlite3

import pytest

from conftest import problem
from pytest_passk.protocol import RunResult
from pytest_passk.store import SCHEMA_VERSION, Store, StoreError, code_hash

SUITE = """
    import re
    from pytest_passk import passk

    @passk(k=(1, 3), prompt="Write add(a, b).", id="add", style="chat")
    def test_add(candidate):
        assert candidate.function("add")(2, 3) == 5

    @passk(k=(1, 3), prompt="Write neg(x).", id="neg", style="chat")
    def test_neg(candidate):
        assert candidate.function("neg")(4) == -4

    @passk(k=(1, 3), prompt="What is 6 * 7?", id="mul", style="chat",
           answer=lambda text: (re.findall(r"-?\\d+", text) or [None])[-1])
    def test_mul(candidate):
        assert re.findall(r"-?\\d+", candidate.text)[-1] == "42"
"""


def rows() -> list[tuple[str, str]]:
    # add: 5 is right and returned by two different programs (one group); 6 is a larger wrong group.
    # The right ones come last, so that a budget spends several rounds on each problem.
    add = ["return a * b", "return a * b  # times", "return b * a", "return a - b", "return a + b",
           "return sum((a, b))"]
    neg = ["return x", "return x  # same", "return abs(x)", "return -x", "return 0 - x"]
    out = [("add", f"def add(a, b):\n    {body}\n") for body in add]
    out += [("neg", f"def neg(x):\n    {body}\n") for body in neg]
    out += [("mul", text) for text in ("It is 48", "48", "48!", "6 * 7 = 42", "42")]
    return out


def votes(report: dict) -> dict:
    """Every maj@k number of the report."""
    out = {"suite": {k: v for k, v in report["suite"].items() if k.startswith("maj@")},
           "curve": report["curve"]["maj"], "gap": report["curve"]["precision_gap"]}
    for pid in ("add", "neg", "mul"):
        out[pid] = {k: v for k, v in problem(report, pid).items() if k.startswith("maj@")}
    return out


def downgrade_to_schema_1(path: str) -> None:
    """Turn a store into what pytest-passk wrote before verdicts kept ``worker`` and ``returns``
    (the schema-1 table, verbatim)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("""
        BEGIN;
        CREATE TABLE runs_v1 (
            code_hash TEXT NOT NULL, run_key TEXT NOT NULL, run INTEGER NOT NULL, outcome TEXT NOT NULL,
            reason TEXT NOT NULL, message TEXT NOT NULL, output TEXT NOT NULL, duration REAL NOT NULL,
            created REAL NOT NULL, PRIMARY KEY (code_hash, run_key, run));
        INSERT INTO runs_v1 SELECT code_hash, run_key, run, outcome, reason, message, output, duration, created
            FROM runs;
        DROP TABLE runs;
        ALTER TABLE runs_v1 RENAME TO runs;
        CREATE INDEX runs_by_key ON runs (run_key);
        UPDATE meta SET value='1' WHERE key='schema';
        COMMIT;
    """)
    db.close()


@pytest.mark.parametrize("budget", [None, 15], ids=["uniform", "budget"])
def test_a_second_run_reports_the_same_maj_at_k(pytester: pytest.Pytester, passk_run, budget: int | None) -> None:
    pytester.makepyfile(SUITE)
    store = str(pytester.path / "store.sqlite")
    args = (f"--passk-budget={budget}",) if budget else ()
    first = passk_run(rows(), *args, store=store).report
    add = problem(first, "add")
    if budget is None:
        # 6 samples in three groups: {5: 2 samples, right}, {6: 3, wrong}, {-1: 1, wrong}
        assert add["maj@1"] == pytest.approx(2 / 6) and add["maj@3"] is not None
        assert problem(first, "neg")["maj@1"] == pytest.approx(2 / 5)
        assert all(v is not None for v in first["curve"]["maj"])
        assert first["suite"]["maj@1"] is not None and first["suite"]["maj@3"] is not None
    else:  # rounds went on until each problem had a passing sample
        assert first["suite"]["rounds"] > 2 and all(problem(first, p)["correct"] for p in ("add", "neg", "mul"))
        # a problem stops at its first pass: its samples' votes are not a fair draw, maj@k is not reported
        assert first["suite"]["maj@1"] is None and "biased" in first["suite"]["maj@k_from"]
        assert problem(first, "add")["maj@1"] is None and all(v is None for v in first["curve"]["maj"])
    second = passk_run(rows(), *args, store=store).report
    assert second["suite"]["runs_executed"] == 0 and second["suite"]["runs_reused"] == first["suite"]["runs_executed"]
    assert second["suite"]["confirm_runs"] == 0
    assert votes(second) == votes(first)
    # what each verdict returned and which worker ran it are in the store
    db = sqlite3.connect(store)
    stored = db.execute("SELECT run, worker, returns FROM runs").fetchall()
    assert stored and all(w.startswith("local-") for _, w, _ in stored)
    sampled = problem(first, "add")["n"] + problem(first, "neg")["n"]
    assert sum(1 for run, _, ret in stored if run == 0 and ret) == sampled  # every function candidate's first run
    db.close()


def test_a_store_of_schema_1_opens_and_its_candidates_vote_again(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    store = str(pytester.path / "store.sqlite")
    first = passk_run(rows(), store=store).report
    downgrade_to_schema_1(store)
    again = passk_run(rows(), store=store).report
    # The first run of each function candidate (6 + 5) is executed again to learn what it returns;
    # every other verdict, and the answer-style problem's, are reused.
    suite = again["suite"]
    assert suite["runs_executed"] == 11 and suite["runs_reused"] == first["suite"]["runs_executed"] - 11
    assert suite["confirm_runs"] == 0 and suite["confirm_runs_reused"] == first["suite"]["confirm_runs"]
    assert votes(again) == votes(first)
    db = sqlite3.connect(store)
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (str(SCHEMA_VERSION),)
    assert db.execute("SELECT COUNT(*) FROM runs WHERE run = 0 AND returns IS NULL").fetchone()[0] == 5  # mul's
    db.close()
    third = passk_run(rows(), store=store).report
    assert third["suite"]["runs_executed"] == 0 and votes(third) == votes(first)


def test_schema_migration_at_the_store_level(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    store = Store(path)
    store.add_run(code_hash("x"), "key", 0, RunResult(id=1, outcome="passed", reason="passed", worker="docker-1",
                                                     returns="abc"))
    store.add_run(code_hash("x"), "key", 1, RunResult(id=2, outcome="passed", reason="passed", worker="docker-0"))
    store.close()
    reopened = Store(path)
    runs = reopened.runs("key")
    assert (runs[(code_hash("x"), 0)].worker, runs[(code_hash("x"), 0)].returns) == ("docker-1", "abc")
    assert (runs[(code_hash("x"), 1)].worker, runs[(code_hash("x"), 1)].returns) == ("docker-0", "")
    reopened.close()
    downgrade_to_schema_1(str(path))
    migrated = Store(path)
    runs = migrated.runs("key")
    assert {r.worker for r in runs.values()} == {""} and {r.returns for r in runs.values()} == {""}
    # a first run with no record of what it returned is left out where a vote is needed
    assert set(migrated.runs("key", need_returns=True)) == {(code_hash("x"), 1)}
    migrated.add_run(code_hash("x"), "key", 0, RunResult(id=3, outcome="passed", reason="passed", returns="r"))
    assert migrated.runs("key", need_returns=True)[(code_hash("x"), 0)].returns == "r"
    migrated.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.close()
    with pytest.raises(StoreError, match="schema 99, written by a newer pytest-passk"):
        Store(path)
