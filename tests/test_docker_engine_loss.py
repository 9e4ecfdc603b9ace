"""The Docker engine dies in the middle of a run: the run stops with one clear message, keeps every
verdict that finished (and none for what did not), and the next run, once the engine is back,
resumes without redoing anything.

The engine that dies is a private ``dockerd`` this test starts (its own data root, exec root, pid file,
socket and cgroup parent under a temporary directory) and kills by its process id: the machine's own
engine, and whatever else uses it, is never touched.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DOCKER_IMAGE, QUIET_PLUGINS, need_docker, pid_alive, write_samples

N = 24
SUITE = """
import time
from pytest_passk import passk

@passk(k=1, n={n}, prompt="Write add(a, b).", id="add", style="chat")
def test_add(candidate):
    time.sleep(0.4)
    assert candidate.function("add")(2, 3) == 5
"""


class PrivateEngine:
    """A dockerd of this test's own, on a unix socket under ``root``; started, killed and stopped by pid."""

    def __init__(self, root: Path, driver: str) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.cgroup_parent = f"passk-engine-loss-{uuid.uuid4().hex[:8]}"
        self.driver = driver
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "dockerd.log"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, timeout: float = 60, **kw: object) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env=self.env(), timeout=timeout, **kw)  # type: ignore[call-overload]

    def start(self) -> None:
        (self.root / "data").mkdir(exist_ok=True)
        (self.root / "exec").mkdir(exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "--pidfile", str(self.root / "docker.pid"), "-H", self.host, f"--storage-driver={self.driver}",
                 "--exec-opt", "native.cgroupdriver=cgroupfs", f"--cgroup-parent=/{self.cgroup_parent}",
                 "--iptables=false", "--ip-masq=false", "--bridge=none"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while self.docker("info", capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.skip(f"a private dockerd could not be started here: {self.log.read_text()[-500:]}")
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL, as an engine that dies would: no clean-up of its containers."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)  # dockerd stops its containers and its containerd
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def leftovers(self) -> list[int]:
        """Processes still running that this engine started: those naming its directory (containerd,
        shims) and those in its containers' cgroups."""
        found = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if str(self.root).encode() in cmdline and pid_alive(int(entry)):
                    found.add(int(entry))
        for procs in Path("/sys/fs/cgroup").glob(f"*/{self.cgroup_parent}/**/cgroup.procs"):
            try:
                found.update(int(p) for p in procs.read_text().split() if pid_alive(int(p)))
            except OSError:
                continue
        return sorted(found)

    def remove(self) -> None:
        """Stop the engine; kill by pid whatever it left running; unmount and delete its directory."""
        self.stop()
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # dockerd bind-mounts its data root (and overlay layers inside it) onto itself.
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith(str(self.root))]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        for group in sorted(Path("/sys/fs/cgroup").glob(f"*/{self.cgroup_parent}"), reverse=True):
            for sub in sorted(group.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                try:
                    sub.rmdir()
                except OSError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_engine() -> Iterator[PrivateEngine]:
    need_docker()  # the machine's engine holds the image the private one is given
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("starting a private dockerd needs root and the dockerd binary")
    # A short path: unix socket paths (containerd's included) are limited to 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="passk-dockerd-", dir="/tmp"))
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(root)], capture_output=True, text=True).stdout.strip()
    overlay = "overlay" in Path("/proc/filesystems").read_text() and "overlay" not in fstype
    engine = PrivateEngine(root, "overlay2" if overlay else "vfs")
    try:
        engine.start()
        saved = subprocess.Popen(["docker", "save", DOCKER_IMAGE], stdout=subprocess.PIPE)
        loaded = engine.docker("load", "-q", stdin=saved.stdout, capture_output=True, timeout=300)
        saved.wait(timeout=60)
        assert loaded.returncode == 0, loaded.stderr
        yield engine
    finally:
        engine.remove()
    assert not engine.leftovers()


def _stored(store: Path) -> list[tuple[str, int, str]]:
    if not store.exists():
        return []
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT code_hash, run, reason FROM runs").fetchall()
    except sqlite3.DatabaseError:
        return []


@pytest.mark.docker
def test_engine_killed_mid_run_stops_cleanly_and_resumes(tmp_path: Path, private_engine: PrivateEngine) -> None:
    (tmp_path / "test_slow.py").write_text(SUITE.format(n=N))
    samples = write_samples(tmp_path / "samples.jsonl", [
        ("add", f"```python\ndef add(a, b):\n    return a + b  # {i}\n```") for i in range(N)])
    store = tmp_path / "store.sqlite"
    report = tmp_path / "report.json"
    env = {k: v for k, v in private_engine.env().items() if not k.startswith("PASSK_")}
    env["PYTEST_ADDOPTS"] = QUIET_PLUGINS
    cmd = [sys.executable, "-m", "pytest", "test_slow.py", "-q", "-p", "no:cacheprovider", "--passk-workers=2",
           "--passk-runs=1", f"--passk-image={DOCKER_IMAGE}", f"--passk-samples={samples}",
           f"--passk-store={store}", f"--passk-report={report}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_stored(store)) < 4:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "no verdicts were stored"
            time.sleep(0.1)
        private_engine.kill()
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert "stopped working" in out and "run again to resume" in out, out
    assert "Traceback" not in out, out
    kept = _stored(store)
    assert 4 <= len(kept) < N and all(reason == "passed" for _, _, reason in kept), kept  # no "crash" stored

    private_engine.start()  # the same data and exec roots: it cleans up the containers the dead one left
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    suite = json.loads(report.read_text())["suite"]
    assert suite["runs_reused"] == len(kept) and suite["runs_executed"] == N - len(kept), suite
    assert suite["coverage"] == 1.0 and suite["pass@1"] == 1.0
    assert len(_stored(store)) == N
