"""Shared helpers for the project's own tests: a pytester-based runner for passk suites."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

# The plugin imports these lazily. Pytester's in-process runs drop every module first imported
# during a run, while ``pytest_passk`` keeps attributes pointing at the dropped ones: exception
# classes would then differ between runs. Importing them here keeps one copy for the session.
import httpcore  # noqa: F401  (httpx imports it lazily; its exception classes must stay one copy)
import pytest_passk.backends.openai  # noqa: F401
import pytest_passk.backends.replay  # noqa: F401
import pytest_passk.sandbox.local  # noqa: F401
import pytest_passk.session  # noqa: F401

pytest_plugins = ["pytester"]

#: Every end-to-end run uses the local sandbox (Docker is tested elsewhere) and keeps nothing.
LOCAL = ("--passk-sandbox=local", "--passk-store=:memory:", "--passk-workers=2")
#: Unrelated plugins that may be installed; they slow every inner run and sandbox worker down.
QUIET_PLUGINS = "-p no:randomly -p no:hypothesispytest -p no:benchmark -p no:xdist"


#: For suites that pytester or a subprocess runs (prepend it): ``call_number(name)`` is 0 for the
#: first call of that name, 1 for the next, ... across every process that runs the suite.
CALL_NUMBER = """import os
import random
from pathlib import Path


def call_number(name):
    \"\"\"0 for the first run of this test, 1 for the next, ... (across processes)\"\"\"
    calls = Path(__file__).parent / name
    calls.mkdir(exist_ok=True)
    i = 0
    while True:
        try:
            os.close(os.open(calls / str(i), os.O_CREAT | os.O_EXCL))
            return i
        except FileExistsError:
            i += 1
"""

def write_samples(path: Path, rows: Iterable[tuple[str, str]]) -> Path:
    """Write ``(task_id, completion)`` rows as a HumanEval-format samples file."""
    path.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in rows))
    return path


def read_samples(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] != b"Z"


class PasskRun:
    """Runs pytester with a samples file and the local sandbox, and reads the JSON report back."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester

    def __call__(self, samples: Sequence[tuple[str, str]] | None = None, *args: str,
                 subprocess: bool = False, store: str | None = None, report: bool = True,
                 ) -> pytest.RunResult:
        argv = [a for a in LOCAL if not (store and a.startswith("--passk-store"))]
        if store:
            argv.append(f"--passk-store={store}")
        if samples is not None:
            argv.append(f"--passk-samples={write_samples(self.pytester.path / 'samples.jsonl', samples)}")
        report_path = self.pytester.path / "report.json"
        if report_path.exists():
            report_path.unlink()
        if report:
            argv.append(f"--passk-report={report_path}")
        run = self.pytester.runpytest_subprocess if subprocess else self.pytester.runpytest
        result = run(*argv, *args)
        result.report = json.loads(report_path.read_text()) if report_path.exists() else None  # type: ignore[attr-defined]
        return result


@pytest.fixture
def passk_run(pytester: pytest.Pytester) -> PasskRun:
    return PasskRun(pytester)


def problem(report: dict[str, Any], pid: str) -> dict[str, Any]:
    """The JSON record of problem ``pid``."""
    matches = [p for p in report["problems"] if p["id"] == pid]
    assert len(matches) == 1, f"{pid!r} not in {[p['id'] for p in report['problems']]}"
    return matches[0]


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # Local workers inherit the environment: PYTEST_ADDOPTS reaches the inner run and its workers.
    monkeypatch.setenv("PYTEST_ADDOPTS", QUIET_PLUGINS)
    for name in list(os.environ):
        if name.startswith("PASSK_"):
            monkeypatch.delenv(name, raising=False)
    return pytester


def need_vllm() -> Any:
    """vLLM, or a skip; a failure instead under PASSK_REQUIRE_VLLM=1 (scripts/test.sh sets it)."""
    try:
        import vllm
    except ImportError as exc:
        if os.environ.get("PASSK_REQUIRE_VLLM") == "1":
            pytest.fail(f"PASSK_REQUIRE_VLLM=1 but vLLM is not importable ({exc}); run scripts/install-vllm.sh")
        pytest.skip(f"vLLM is not installed ({exc}); scripts/install-vllm.sh installs the CPU build")
    return vllm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The image the Docker tests run (scripts/setup-docker.sh builds it offline).
DOCKER_IMAGE = "pytest-passk/python:bookworm"


def docker_problem() -> str | None:
    """Why the Docker tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        info = subprocess.run(["docker", "image", "inspect", DOCKER_IMAGE], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "the Docker engine does not answer"
    if info.returncode != 0:
        return (f"the Docker engine or the image {DOCKER_IMAGE} is missing (run scripts/setup-docker.sh): "
                f"{info.stderr.strip()}")
    return None


def need_docker() -> None:
    """A skip without Docker; a failure instead under PASSK_REQUIRE_DOCKER=1 (scripts/test.sh sets it)."""
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get("PASSK_REQUIRE_DOCKER") == "1":
        pytest.fail(f"Docker is required here (PASSK_REQUIRE_DOCKER=1): {problem}")
    pytest.skip(f"needs Docker: {problem}")


class ContainerStarts:
    """Watches the engine's live event stream for pytest-passk containers starting."""

    def __init__(self) -> None:
        # --since: the engine replays what it logged from then on before it streams, so a start is
        # seen however late the subscription comes in on a loaded machine (a fixed wait was a guess).
        # A second early: other runs' starts are told apart by their owner pid.
        since = f"{time.time() - 1:.3f}"
        self.proc = subprocess.Popen(
            ["docker", "events", "--since", since, "--filter", "event=start", "--filter", "label=pytest-passk",
             "--format", '{{.ID}} {{index .Actor.Attributes "pytest-passk.pid"}}'],
            stdout=subprocess.PIPE, text=True,
        )

    def stop(self) -> list[tuple[str, str]]:
        """``(container id, owner pid)`` of every start seen."""
        time.sleep(0.3)
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return [tuple(line.split()[:2]) for line in out.splitlines() if len(line.split()) >= 2]  # type: ignore[misc]

    def of(self, pid: int) -> list[str]:
        """Stop watching; the ids of the containers started by the process ``pid``."""
        return [cid for cid, owner in self.stop() if owner == str(pid)]
