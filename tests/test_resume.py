"""kill -9 in the middle of a run, then run again: nothing finished is redone, nothing is lost or
duplicated, and no process of the killed run is left behind.

Runs are real ``python -m pytest`` subprocesses (not pytester's in-process runs) with a file store,
killed with SIGKILL while the test polls the SQLite store.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from conftest import need_vllm, pid_alive, write_samples




@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    need_vllm()
    from tinymodel import make_tiny_model

    return make_tiny_model(tmp_path_factory.getbasetemp() / "tiny-llama")  # shared with the other vLLM tests


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def start(cwd: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                                cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def count(store: Path, table: str) -> int:
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0
    finally:
        db.close()


def kill_when(proc: subprocess.Popen[bytes], store: Path, table: str, low: int, high: int, log: Path,
              timeout: float = 240) -> tuple[int, list[int]]:
    """SIGKILL ``proc`` once ``low <= rows <= high`` in ``table``; returns the rows then and its descendants."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before it could be killed:\n"
                        + log.read_text(errors="replace")[-4000:])
        rows = count(store, table)
        if rows > high:
            proc.kill()
            pytest.fail(f"missed the window: {rows} rows in {table} (wanted {low}..{high}); the run is too fast")
        if rows >= low:
            family = descendants(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return count(store, table), family
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no {low} rows in {table} within {timeout} s:\n" + log.read_text(errors="replace")[-4000:])


def assert_all_gone(pids: list[int], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return
        time.sleep(0.25)
    details = []
    for p in alive:
        try:
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
            details.append(f"{p}: {cmdline!r}")
        except OSError:
            details.append(str(p))
    for p in alive:  # don't leave them to the next test
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    pytest.fail(f"processes of the killed run still alive after {within} s: {details}")


def rerun(cwd: Path, *args: str, log: Path) -> dict[str, Any]:
    report = cwd / "report.json"
    proc = start(cwd, *args, f"--passk-report={report}", log=log)
    proc.wait(timeout=600)
    assert report.exists(), log.read_text(errors="replace")[-4000:]
    return json.loads(report.read_text())


SLOW_SUITE = """
    import time

    from pytest_passk import passk


    @passk(k=1, n=12, prompt="Write f() returning an int.", id="slow-a", style="chat")
    def test_a(candidate):
        time.sleep(0.2)
        assert candidate.function("f")() % 3 != 0


    @passk(k=1, n=12, prompt="Write g() returning an int.", id="slow-b", style="chat")
    def test_b(candidate):
        time.sleep(0.2)
        assert candidate.function("g")() % 2 == 0
"""


def test_kill_9_during_execution_resumes_without_redoing_verdicts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_slow=SLOW_SUITE)
    rows = [("slow-a", f"def f():\n    return {i}\n") for i in range(12)]
    rows += [("slow-b", f"def g():\n    return {i}\n") for i in range(12)]
    samples = write_samples(pytester.path / "samples.jsonl", rows)
    store = pytester.path / "store.sqlite"
    total = 24 * 2  # distinct candidates x --passk-runs
    args = ("--passk-sandbox=local", "--passk-workers=2", f"--passk-store={store}", f"--passk-samples={samples}")

    log = pytester.path / "killed.log"
    proc = start(pytester.path, *args, log=log)
    stored, family = kill_when(proc, store, "runs", low=6, high=total - 10, log=log)
    assert 6 <= stored <= total - 10
    assert family, "the run had no worker processes when it was killed"
    assert_all_gone(family)  # sandbox workers and their candidate children die with the run

    report = rerun(pytester.path, *args, log=pytester.path / "rerun.log")
    suite = report["suite"]
    assert (suite["runs_reused"], suite["runs_executed"]) == (stored, total - stored)
    assert (suite["samples"], suite["samples_generated"]) == (24, 0)
    by_id = {p["id"]: p for p in report["problems"]}
    assert by_id["slow-a"]["passed_samples"] == [i % 3 != 0 for i in range(12)]
    assert by_id["slow-b"]["passed_samples"] == [i % 2 == 0 for i in range(12)]
    assert by_id["slow-a"]["flaky"] == by_id["slow-b"]["flaky"] == 0
    db = sqlite3.connect(store)
    (n_rows,) = db.execute("SELECT COUNT(*) FROM runs").fetchone()
    (n_keys,) = db.execute("SELECT COUNT(*) FROM (SELECT DISTINCT code_hash, run_key, run FROM runs)").fetchone()
    db.close()
    assert n_rows == n_keys == total


GEN_SUITE = """
    import pytest

    from pytest_passk import passk


    @pytest.mark.parametrize("i", range(30))
    @passk(k=1, n=4, prompt=lambda i: f"def f{i}(x):\\n", id=lambda i: f"p{i:02d}", style="completion")
    def test_gen(candidate, i):
        assert candidate.code.startswith(f"def f{i}(x):")
"""


def samples_by_prompt(store: Path) -> dict[str, list[tuple[int, str]]]:
    db = sqlite3.connect(store)
    try:
        rows = db.execute("SELECT problem_id, idx, text FROM samples ORDER BY problem_id, idx").fetchall()
    finally:
        db.close()
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pid, idx, text in rows:
        out[pid].append((idx, text))
    return dict(out)


@pytest.mark.vllm
def test_kill_9_during_generation_keeps_what_was_stored(pytester: pytest.Pytester, tiny_model: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """max_num_seqs=4 makes the engine finish the problems (n=4 each) one after another, so samples
    reach the store over several seconds and the run can be killed in between."""
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makepyfile(test_gen=GEN_SUITE)
    store = pytester.path / "store.sqlite"
    total = 30 * 4
    args = ("--passk-sandbox=local", "--passk-workers=2", f"--passk-store={store}", f"--passk-model={tiny_model}",
            "--passk-max-tokens=128", "--passk-vllm-arg=max_num_seqs=4")

    log = pytester.path / "killed.log"
    proc = start(pytester.path, *args, log=log)
    stored, family = kill_when(proc, store, "samples", low=8, high=total - 20, log=log)
    before = samples_by_prompt(store)
    assert sum(len(v) for v in before.values()) == stored
    for pid, rows in before.items():  # a problem's samples are committed together, numbered from 0
        assert [idx for idx, _ in rows] == [0, 1, 2, 3], (pid, rows)
    assert_all_gone(family)  # the engine's processes too, not only the sandbox workers

    # The killed run used the default multi-process engine; the re-run takes the in-process one,
    # which starts in 2 s instead of 20 (what is tested here is the store, not the engine).
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    report = rerun(pytester.path, *args, log=pytester.path / "rerun.log")
    suite = report["suite"]
    assert (suite["samples"], suite["samples_generated"]) == (total, total - stored)
    assert {p["n"] for p in report["problems"]} == {4} and suite["coverage"] == 1.0
    after = samples_by_prompt(store)
    assert len(after) == 30
    for pid, rows in after.items():
        assert [idx for idx, _ in rows] == [0, 1, 2, 3], (pid, rows)  # no duplicates, no gaps
        if pid in before:
            assert rows == before[pid]  # not regenerated
