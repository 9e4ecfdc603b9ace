"""The Docker engine dies in the middle of a run: the run stops with one clear message, keeps every
verdict that finished (and none for what did not), and the next run, once the engine is back,
resumes without redoing anything."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import QUIET_PLUGINS, need_docker, write_samples

ROOT = Path(__file__).resolve().parents[1]
N = 24
SUITE = """
import time
from pytest_passk import passk

@passk(k=1, n={n}, prompt="Write add(a, b).", id="add", style="chat")
def test_add(candidate):
    time.sleep(0.4)
    assert candidate.function("add")(2, 3) == 5
"""


def _stored(store: Path) -> list[tuple[str, int, str]]:
    if not store.exists():
        return []
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT code_hash, run, reason FROM runs").fetchall()
    except sqlite3.DatabaseError:
        return []


@pytest.mark.docker
def test_engine_killed_mid_run_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    need_docker()
    if subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode != 0:
        pytest.skip("dockerd is not a process of this machine (a remote engine): cannot kill it here")
    (tmp_path / "test_slow.py").write_text(SUITE.format(n=N))
    samples = write_samples(tmp_path / "samples.jsonl", [
        ("add", f"```python\ndef add(a, b):\n    return a + b  # {i}\n```") for i in range(N)])
    store = tmp_path / "store.sqlite"
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSK_")}
    env["PYTEST_ADDOPTS"] = QUIET_PLUGINS
    cmd = [sys.executable, "-m", "pytest", "test_slow.py", "-q", "-p", "no:cacheprovider", "--passk-workers=2",
           "--passk-runs=1", f"--passk-samples={samples}", f"--passk-store={store}", f"--passk-report={report}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_stored(store)) < 4:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "no verdicts were stored"
            time.sleep(0.1)
        subprocess.run(["pkill", "-9", "-x", "dockerd"], check=True)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        # Bring the engine back for everything after this test.
        subprocess.run(["bash", str(ROOT / "scripts" / "setup-docker.sh")], check=True, timeout=300,
                       capture_output=True)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert "stopped working" in out and "run again to resume" in out, out
    assert "Traceback" not in out, out
    kept = _stored(store)
    assert 4 <= len(kept) < N and all(reason == "passed" for _, _, reason in kept), kept  # no "crash" stored

    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    suite = json.loads(report.read_text())["suite"]
    assert suite["runs_reused"] == len(kept) and suite["runs_executed"] == N - len(kept), suite
    assert suite["coverage"] == 1.0 and suite["pass@1"] == 1.0
    assert len(_stored(store)) == N
