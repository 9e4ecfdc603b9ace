"""A timed-out candidate that was runnable but starved of CPU by a loaded host gets more wall time;
one that was sleeping or spinning does not (pytest_passk.execute.zygote.starved)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pytest_passk.execute.zygote import process_state as _process_state, starved

BUSY = [sys.executable, "-c", "while True: pass"]


def _spawn(cmd: list[str], nice: int = 0) -> subprocess.Popen[bytes]:
    # Everything on CPU 0, so the competitors really compete.
    return subprocess.Popen(["taskset", "-c", "0", "nice", "-n", str(nice), *cmd])


@pytest.fixture
def procs():
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        p.kill()
        p.wait()


@pytest.mark.skipif(not os.path.exists("/usr/bin/taskset"), reason="needs taskset (util-linux)")
def test_starved_only_when_runnable_without_cpu(procs) -> None:
    procs.extend(_spawn(BUSY) for _ in range(4))
    # Like a zygote and its run: an idle parent whose only descendant is runnable all along, yet
    # given ~1% of CPU 0 by the scheduler. (starved counts the CPU of all the zygote's descendants.)
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; p = subprocess.Popen(sys.argv[1:]); print(p.pid, flush=True); p.wait()",
         "taskset", "-c", "0", "nice", "-n", "19", *BUSY], stdout=subprocess.PIPE)
    starved_pid = int(parent.stdout.readline())
    spinning = subprocess.Popen(BUSY)  # free to run on any core
    sleeping = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    procs.extend([parent, spinning, sleeping])
    time.sleep(2.0)
    assert starved(parent.pid, starved_pid, timeout=2.0), _process_state(starved_pid)
    os.kill(starved_pid, 9)
    assert not starved(os.getpid(), sleeping.pid, timeout=2.0), _process_state(sleeping.pid)
    assert "sleeping" in _process_state(sleeping.pid)
    # The free spinner got well over half of its 2 s in CPU time: a real timeout, no extension.
    assert not starved(os.getpid(), spinning.pid, timeout=1.0), _process_state(spinning.pid)
    assert "running" in _process_state(spinning.pid)
    assert not starved(os.getpid(), 999_999_999, timeout=1.0)  # no such process
