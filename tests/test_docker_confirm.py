"""Confirmation reruns under Docker with two workers: a deciding pass is rerun on the other
worker's containers, not the one that produced it, and a candidate whose pass is a coin flip is
reported flaky with its flip rate and interval."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CALL_NUMBER, need_docker, write_samples

pytestmark = pytest.mark.docker

SUITE = CALL_NUMBER + '''
import json

from pytest_passk import passk

HERE = Path(__file__).parent


def record(name, i, host):
    # which container (its hostname) and which verifier process ran call i
    with open(HERE / ("where-" + name + ".jsonl"), "a") as fh:
        fh.write(json.dumps({"call": i, "host": host, "verifier": os.getpid()}) + "\\n")


@passk(k=1, prompt="Write add(a, b).", id="steady", style="chat")
def test_steady(candidate):
    i = call_number("steady")
    record("steady", i, candidate.function("host")())
    assert candidate.function("add")(2, 3) == 5


@passk(k=1, prompt="Write add(a, b).", id="coin", style="chat")
def test_coin(candidate):
    i = call_number("coin")
    record("coin", i, candidate.function("host")())
    assert candidate.function("add")(2, 3) == 5
    # heads the first time (so there is a pass to confirm), then tails every other call: a coin
    # whose flips are certain (a fair one's 10 reruns would all be heads 1 time in 2**10)
    assert i % 2 == 0, "tails"
'''
CANDIDATE = "import socket\n\ndef add(a, b):\n    return a + b\n\ndef host():\n    return socket.gethostname()\n"
CONFIRM = 10


def where(folder: Path, name: str) -> list[dict]:
    rows = [json.loads(line) for line in (folder / f"where-{name}.jsonl").read_text().splitlines()]
    return sorted(rows, key=lambda r: r["call"])


def test_confirmation_reruns_go_to_the_other_worker_and_find_the_coin(tmp_path: Path) -> None:
    need_docker()
    (tmp_path / "test_confirm_suite.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    samples = write_samples(tmp_path / "samples.jsonl",
                            [("steady", CANDIDATE), ("coin", CANDIDATE + "# a coin\n")])
    store = tmp_path / "store.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSK_") and k != "PYTEST_ADDOPTS"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist",
         "--passk-sandbox=docker", "--passk-workers=2", "--passk-runs=1", f"--passk-confirm={CONFIRM}",
         f"--passk-samples={samples}", f"--passk-store={store}", "--passk-report=report.json",
         "test_confirm_suite.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert (tmp_path / "report.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    problems = {p["id"]: p for p in report["problems"]}
    assert report["suite"]["sandbox"].startswith("docker (2 verifiers")

    # steady: its one candidate passes, which decides the problem; its CONFIRM reruns all pass, and
    # every one ran on the other worker: another verifier process, other containers
    steady = problems["steady"]
    assert steady["confirmed"] == 1 and steady["correct"] == 1 and steady["flaky_candidates"] == []
    original, *reruns = where(tmp_path, "steady")
    assert original["call"] == 0 and len(reruns) == CONFIRM
    assert original["host"] not in {c["host"] for c in reruns}, (original, reruns)
    assert original["verifier"] not in {c["verifier"] for c in reruns}, (original, reruns)
    # the store keeps which worker ran each verdict: the original's, and the other one for the reruns
    from pytest_passk.store import code_hash

    db = sqlite3.connect(store)  # (a chat reply without a code block is the program itself)
    by_run = db.execute("SELECT run, worker FROM runs WHERE code_hash = ?", (code_hash(CANDIDATE),)).fetchall()
    db.close()
    (first_worker,) = {w for run, w in by_run if run == 0}
    assert {w for run, w in by_run if run >= 1000} == {"docker-0", "docker-1"} - {first_worker}

    # coin: heads on its original run, then tails every other call: confirmation finds the flip
    # and reports the flip rate with its interval
    coin = problems["coin"]
    assert coin["confirmed"] == 1 and coin["correct"] == 0 and coin["flaky"] == 1
    (flip,) = coin["flaky_candidates"]
    runs = 1 + CONFIRM
    assert flip["runs"] == runs and 1 <= flip["passes"] < runs
    assert flip["flip_rate"] == pytest.approx(min(flip["passes"], runs - flip["passes"]) / runs, abs=1e-6)
    low, high = flip["interval"]
    assert 0 <= low < flip["flip_rate"] < high <= 1
    assert len(flip["workers"]) == 2  # the original run's worker and the other one
    coin_calls = where(tmp_path, "coin")
    assert len(coin_calls) == runs and len({c["host"] for c in coin_calls}) == 2
    # (Not every coin rerun need avoid its original container: when both originals ran on one worker,
    # all 20 reruns ask for the other, and the pool lets a rerun that waited ~200 turns run where
    # there is room, so that a busy worker does not stall the run.)
    assert report["suite"]["confirm_runs"] == 2 * CONFIRM
    assert "coin#0 flips" in proc.stdout

