"""The Docker sandbox: a warm pool of hardened containers, each running one forking worker.

Every container gets no network, a read-only root, private tmpfs scratch space, resource limits and
no host environment. The worker inside runs as root with only CAP_SETUID, CAP_SETGID and CAP_KILL,
which it needs to drop each candidate child to an unprivileged user and to kill what the child
started; candidate code itself runs with no capabilities, so it can neither signal the worker nor
touch another run's files. A posture check inside every container verifies all this before any
candidate runs.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import site
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from pytest_passk.sandbox import SandboxError
from pytest_passk.sandbox.pool import WorkerPool

OFFLINE_IMAGE = "pytest-passk/python:bookworm"
LABEL = "pytest-passk"
NOBODY = (65534, 65534)
_WORKER_HEADROOM = 512 << 20  # container memory above the per-candidate limit, for the worker itself
_SETUP_HINT = "scripts/setup-docker.sh (from the pytest-passk repository; installs and starts Docker on Debian)"


def _docker(*args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def check_engine() -> str:
    """The engine's version; raises :class:`SandboxError` saying how to get a working engine."""
    if shutil.which("docker") is None:
        raise SandboxError(
            "Docker is not installed (no `docker` command on PATH). Install it and start the engine, e.g. "
            f"`sudo bash {_SETUP_HINT}` or `apt-get install docker.io`; or use --passk-sandbox=local for trusted code."
        )
    try:
        proc = _docker("version", "--format", "{{.Server.Version}}", timeout=30)
    except subprocess.TimeoutExpired:
        raise SandboxError("the Docker engine did not answer within 30 s; check `docker info` and restart dockerd") from None
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    err = (proc.stderr or proc.stdout).strip()
    if "permission denied" in err.lower():
        raise SandboxError(
            f"permission denied on the Docker socket ({err.splitlines()[-1]}). Add yourself to the docker group: "
            "`sudo usermod -aG docker $USER` and log in again (or run as root)."
        )
    raise SandboxError(
        f"the Docker engine is not reachable ({err.splitlines()[-1] if err else 'no answer'}). Start it: "
        f"`sudo systemctl start docker`, or `sudo bash {_SETUP_HINT}` where no service manager runs."
    )


def resolve_image(name: str) -> str:
    """``auto`` picks the offline-built image when present, else the official slim Python image."""
    if name != "auto":
        return name
    if _docker("image", "inspect", OFFLINE_IMAGE, timeout=30).returncode == 0:
        return OFFLINE_IMAGE
    return f"python:{sys.version_info[0]}.{sys.version_info[1]}-slim"


def ensure_image(image: str) -> None:
    if _docker("image", "inspect", image, timeout=30).returncode == 0:
        return
    if image != OFFLINE_IMAGE:
        try:
            pulled = _docker("pull", image, timeout=300)
        except subprocess.TimeoutExpired:
            pulled = None
        if pulled is not None and pulled.returncode == 0:
            return
    raise SandboxError(
        f"Docker image {image!r} is not present and could not be pulled. Build the offline image with "
        f"`bash {_SETUP_HINT}` (it makes {OFFLINE_IMAGE} from Debian packages), `docker pull {image}` where a "
        "registry is reachable, or pass --passk-image=IMAGE naming an image you have."
    )


@functools.lru_cache(maxsize=None)
def image_python(image: str) -> tuple[int, int] | None:
    """The image's python3 version, or None if it has no python3."""
    try:
        proc = _docker("run", "--rm", "--network", "none", "--log-driver", "none", "--entrypoint", "python3",
                       image, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])", timeout=60)
    except subprocess.TimeoutExpired:
        return None
    parts = proc.stdout.split()
    return (int(parts[0]), int(parts[1])) if proc.returncode == 0 and len(parts) == 2 else None


def remove_orphans() -> int:
    """Remove pytest-passk containers whose owning process (on this host) is gone; return how many."""
    proc = _docker("ps", "-a", "--filter", f"label={LABEL}", "--format",
                   '{{.ID}} {{.Label "pytest-passk.host"}} {{.Label "pytest-passk.pid"}}', timeout=60)
    stale = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) != 3:
            stale.append(parts[0]) if parts else None
            continue
        cid, host, pid = parts
        if host == socket.gethostname() and not Path(f"/proc/{pid}").exists():
            stale.append(cid)
    if stale:
        _docker("rm", "-f", *stale, timeout=120)
    return len(stale)


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _pure_python_runtime() -> Path:
    """A cached folder holding pytest and what it needs, for images whose Python differs from ours."""
    import importlib.util

    names = ["pytest", "_pytest", "pluggy", "iniconfig", "packaging", "py"]
    if sys.version_info < (3, 11):
        names += ["exceptiongroup", "tomli"]
    import pytest

    cache = Path(os.environ.get("PASSK_CACHE_DIR", Path.home() / ".cache" / "pytest-passk")) / "runtime" / pytest.__version__
    if not cache.exists():
        tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        for name in names:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                continue
            origin = Path(spec.origin)
            if origin.name == "__init__.py":
                shutil.copytree(origin.parent, tmp / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, tmp / origin.name)
        tmp.replace(cache)
    return cache


class DockerSandbox(WorkerPool):
    """Workers in hardened containers; the default sandbox."""

    name = "docker"
    isolates = True

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.run_id = uuid.uuid4().hex[:12]
        self.image = settings.image
        self.engine = ""
        opts = settings.options
        self.cpus = opts.get("cpus", "1")
        self.pids_limit = opts.get("pids_limit", "256")
        self.tmpfs_size = opts.get("tmpfs_size", "256m")

    # -- set-up ------------------------------------------------------------------------------

    def start(self, nodeids: list[str]) -> None:
        self.engine = check_engine()
        remove_orphans()
        self.image = resolve_image(self.image or "auto")
        ensure_image(self.image)
        version = image_python(self.image)
        if version is None:
            raise SandboxError(f"image {self.image!r} has no working python3; use an image with Python 3.10 or newer")
        self._mounts, self._pythonpath = self._runtime_mounts(version)
        self._image_env = image_env(self.image)
        super().start(nodeids)

    def _runtime_mounts(self, version: tuple[int, int]) -> tuple[list[str], str]:
        """Read-only mounts that bring pytest-passk (and, for the same Python, the host's packages) in."""
        mounts = [f"{_package_root()}:/opt/passk/lib/pytest_passk:ro"]
        paths = ["/opt/passk/lib"]
        if version == sys.version_info[:2]:
            # Same Python: the host's site-packages (pytest, numpy, the suite's dependencies) work as is.
            for i, sp in enumerate(p for p in site.getsitepackages() if Path(p).is_dir()):
                mounts.append(f"{sp}:/opt/passk/site{i}:ro")
                paths.append(f"/opt/passk/site{i}")
        else:
            mounts.append(f"{_pure_python_runtime()}:/opt/passk/runtime:ro")
            paths.append("/opt/passk/runtime")
        suite_dirs = {self.settings.rootdir, self.settings.invocation_dir}
        for d in sorted(suite_dirs):
            if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in suite_dirs):
                mounts.append(f"{d}:{d}:ro")
        return mounts, ":".join(paths)

    def init_fields(self) -> dict[str, Any]:
        fields = super().init_fields()
        fields.update(drop_user=list(NOBODY), clean_tmp=True, sole_tenant=True, posture=True)
        return fields

    def docker_args(self, index: int) -> list[str]:
        memory = self.settings.memory
        container_memory = (memory or (2 << 30)) + _WORKER_HEADROOM
        args = [
            "run", "-i", "--rm", "--name", f"passk-{self.run_id}-{index}",
            "--label", LABEL, "--label", f"pytest-passk.run={self.run_id}",
            "--label", f"pytest-passk.pid={os.getpid()}", "--label", f"pytest-passk.host={socket.gethostname()}",
            "--network", "none", "--read-only",
            "--tmpfs", f"/tmp:rw,nosuid,nodev,size={self.tmpfs_size}", "--shm-size", "16m",
            "--cap-drop", "ALL", "--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add", "KILL",
            "--security-opt", "no-new-privileges", "--user", "0:0",
            "--pids-limit", str(self.pids_limit), "--memory", str(container_memory),
            "--memory-swap", str(container_memory), "--cpus", str(self.cpus),
            "--ulimit", "nofile=1024:1024", "--ulimit", f"fsize={64 << 20}:{64 << 20}", "--ulimit", "core=0",
            "--init", "--log-driver", "none", "--workdir", self.settings.invocation_dir,
            # An allow-list environment: nothing from the host's.
            "--env", "HOME=/tmp", "--env", "LANG=C.UTF-8", "--env", "PYTHONDONTWRITEBYTECODE=1",
            "--env", f"PYTHONPATH={self._pythonpath}", "--env", "PYTHONHASHSEED=0",
        ]
        for m in self._mounts:
            args += ["-v", m]
        args += ["--entrypoint", "python3", self.image, "-m", "pytest_passk.worker"]
        return args

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        # A replaced worker may reuse the index: the old container must be gone first.
        _docker("rm", "-f", f"passk-{self.run_id}-{index}", timeout=60)
        return subprocess.Popen(["docker", *self.docker_args(index)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

    def _connect(self, index: int) -> Any:
        conn = super()._connect(index)
        problems = posture_problems(conn.ready.get("posture"), self._image_env)
        if problems:
            conn.kill()
            raise SandboxError("the container is not isolated as required, refusing to run candidates: "
                               + "; ".join(problems))
        return conn

    def close(self) -> None:
        super().close()
        try:
            proc = _docker("ps", "-aq", "--filter", f"label=pytest-passk.run={self.run_id}", timeout=60)
            ids = proc.stdout.split()
            if ids:
                _docker("rm", "-f", *ids, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            pass  # no docker command or no engine (start() failed and said so): nothing of ours to remove

    def environment(self) -> str:
        """The id of the image ``--passk-image`` names (or ``auto`` resolves to) right now."""
        try:
            image = resolve_image(self.image or "auto")
            proc = _docker("image", "inspect", "--format", "{{.Id}}", image, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return f"unresolved {self.image}"
        return proc.stdout.strip() if proc.returncode == 0 else f"unresolved {image}"

    def describe(self) -> str:
        return (f"docker ({self.settings.workers} containers of {self.image}, engine {self.engine}; "
                "no network, read-only root, unprivileged candidates)")


def image_env(image: str) -> set[str]:
    """Names of the environment variables the image itself defines (not the host's)."""
    proc = _docker("image", "inspect", "--format", "{{json .Config.Env}}", image, timeout=30)
    try:
        return {item.split("=", 1)[0] for item in json.loads(proc.stdout) or []}
    except ValueError:
        return set()


def posture_problems(posture: dict[str, Any] | None, image_env: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """What is missing from the isolation a candidate process should find itself in."""
    if not posture:
        return ["the worker reported no posture"]
    if "error" in posture:
        return [str(posture["error"])]
    problems = []
    if posture.get("uid") == 0 or posture.get("euid") == 0:
        problems.append("candidates would run as root")
    if posture.get("cap_eff") != "0000000000000000" or posture.get("cap_prm") != "0000000000000000":
        problems.append(f"candidates would keep capabilities (CapEff {posture.get('cap_eff')})")
    if posture.get("no_new_privs") != "1":
        problems.append("no-new-privileges is not set")
    extra = [i for i in posture.get("interfaces", []) if i != "lo"]
    if extra:
        problems.append(f"network interfaces besides loopback: {', '.join(extra)}")
    if posture.get("root_writable"):
        problems.append("the root filesystem is writable")
    if posture.get("pids_max") in (None, "max"):
        problems.append("no pids limit")
    memory = posture.get("memory_max")
    if memory in (None, "max") or (memory.isdigit() and int(memory) >= 1 << 60):
        problems.append("no memory limit")
    if posture.get("docker_socket"):
        problems.append("the Docker socket is reachable")
    env = set(posture.get("env", [])) - {"HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONHASHSEED",
                                         "PATH", "HOSTNAME", "TERM", "PWD", "SHLVL", "_"} - set(image_env)
    if env:
        problems.append(f"unexpected environment variables: {', '.join(sorted(env))}")
    return problems

