"""The Docker sandbox: candidate processes in hardened containers, test bodies on this host.

Each verifier (on this host) keeps warm containers, each running one zygote
(:mod:`pytest_passk.execute.zygote`, started as ``python3 -c BOOTSTRAP SOURCE``: nothing of the host
is mounted, so any engine the client reaches works). Every container gets no network, a read-only root, private
tmpfs scratch space, resource limits, Docker's default seccomp profile and no host environment. The
zygote runs as root with only CAP_SETUID, CAP_SETGID and CAP_KILL, which it needs to drop each
candidate process to ``nobody`` and to kill what it started; candidate code runs with no
capabilities. A posture check of every container verifies this before any candidate runs.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from pytest_passk.execute import zygote_args
from pytest_passk.sandbox import NOBODY, SandboxError, worker_cpu
from pytest_passk.sandbox.pool import WorkerPool

OFFLINE_IMAGE = "pytest-passk/python:bookworm"
LABEL = "pytest-passk"
_ZYGOTE_HEADROOM = 256 << 20  # container memory above the per-candidate limit, for the zygote itself
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


def engine_is_local() -> bool:
    """Whether the Docker engine runs on this host (its containers can mount this host's folders)."""
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return False
    context = os.environ.get("DOCKER_CONTEXT")
    if context is None:
        config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
        try:
            context = json.loads(config.read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            context = None
    return context in (None, "", "default")


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


class DockerSandbox(WorkerPool):
    """Zygotes in hardened containers, verifiers on this host; the default sandbox."""

    name = "docker"
    isolates = True
    cpus = "1"
    pids_limit = "256"
    tmpfs_size = "256m"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.run_id = uuid.uuid4().hex[:12]
        self.image = settings.image
        self.engine = ""
        self._python: tuple[int, int] = (3, 0)
        self._image_env: set[str] = set()

    # -- set-up ------------------------------------------------------------------------------

    def start(self, nodeids: list[str]) -> None:
        self.engine = check_engine()
        remove_orphans()
        self.image = resolve_image(self.image or "auto")
        ensure_image(self.image)
        version = image_python(self.image)
        if version is None or version < (3, 8):
            raise SandboxError(f"image {self.image!r} has no python3 of version 3.8 or newer; "
                               "use an image with Python 3.8+ (the candidates' Python)")
        self._python = version
        if self.settings.candidate_packages:
            self.image = self._with_packages(self.image, version)
        self._image_env = image_env(self.image)
        super().start(nodeids)

    def _with_packages(self, base: str, version: tuple[int, int]) -> str:
        """An image derived from ``base`` holding copies of the packages candidates may import."""
        from pytest_passk.sandbox.packages import candidate_site, check_python

        check_python(version, f"image {base!r}")
        site = candidate_site(self.settings.candidate_packages)
        base_id = _docker("image", "inspect", "--format", "{{.Id}}", base, timeout=30).stdout.strip()
        tag = f"pytest-passk/candidates:{site.name}-{base_id.split(':')[-1][:12]}"
        if _docker("image", "inspect", tag, timeout=30).returncode == 0:
            return tag
        dockerfile = f"FROM {base}\nCOPY . /opt/passk/site\nENV PYTHONPATH=/opt/passk/site\n"
        proc = subprocess.run(["docker", "build", "-q", "-t", tag, "-f", "-", str(site)], input=dockerfile,
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "DOCKER_BUILDKIT": "0"})  # the classic builder needs no registry
        if proc.returncode != 0:
            raise SandboxError(f"could not build the candidates' image {tag} from {base}: "
                               f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        return tag

    def init_fields(self, index: int) -> dict[str, Any]:
        fields = super().init_fields(index)
        fields.update(posture_check=True, image_env=sorted(self._image_env))
        return fields

    def zygote_command(self, index: int) -> tuple[list[str], dict[str, str] | None]:
        memory = self.settings.memory
        container_memory = (memory or (2 << 30)) + _ZYGOTE_HEADROOM
        flags = ["-s", "-P"] if self._python >= (3, 11) else ["-s"]
        args = [
            "docker", "run", "-i", "--rm", "--name", f"passk-{self.run_id}-{index}-{{zygote}}-{{start}}",
            "--label", LABEL, "--label", f"pytest-passk.run={self.run_id}",
            "--label", f"pytest-passk.pid={os.getpid()}", "--label", f"pytest-passk.host={socket.gethostname()}",
            "--network", "none", "--read-only",
            "--tmpfs", f"/tmp:rw,nosuid,nodev,size={self.tmpfs_size}", "--shm-size", "16m",
            # The zygote keeps only what it needs to drop each candidate to nobody and to kill what
            # candidates start; candidates themselves have no capabilities.
            "--cap-drop", "ALL", "--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add", "KILL",
            "--security-opt", "no-new-privileges", "--user", "0:0",
            "--pids-limit", str(self.pids_limit), "--memory", str(container_memory),
            "--memory-swap", str(container_memory), "--cpus", str(self.cpus),
            "--ulimit", "nofile=1024:1024", "--ulimit", f"fsize={64 << 20}:{64 << 20}", "--ulimit", "core=0",
            "--init", "--log-driver", "none", "--workdir", "/tmp",
            # An allow-list environment: nothing from the host's.
            "--env", "HOME=/tmp", "--env", "LANG=C.UTF-8", "--env", "PYTHONDONTWRITEBYTECODE=1",
            "--env", "PYTHONHASHSEED={hashseed}", "--env", f"PASSK_DROP_USER={NOBODY[0]}:{NOBODY[1]}",
            "--env", "PASSK_SOLE_TENANT=1",
            "--env", "LD_BIND_NOW=1",  # functions bound once in the zygote, not in each candidate process (zygote.main)
        ]
        if engine_is_local():
            cpu = worker_cpu(self.settings, index)
            if cpu is not None:  # the worker's CPU (its verifier keeps to it too): this host's numbering
                args += ["--cpuset-cpus", str(cpu)]
            # Candidate processes reach their verifier over a Unix socket of its own, mounted read-only
            # (a socket on a read-only mount still connects; only the zygote, root in the container,
            # may use it). A remote engine cannot see this host's files: the zygote relays instead.
            args += ["-v", "{socketdir}:/run/passk:ro", "--env", "PASSK_CONNECT=/run/passk/z.sock"]
        args += ["--entrypoint", "python3", self.image, *flags, *zygote_args()]
        return args, None

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
        """The id of the image ``--passk-image`` names (or ``auto`` resolves to) right now, and the
        packages candidates may import."""
        packages = ",".join(sorted(self.settings.candidate_packages))
        suffix = f" with {packages}" if packages else ""
        try:
            image = resolve_image(self.image or "auto")
            proc = _docker("image", "inspect", "--format", "{{.Id}}", image, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return f"unresolved {self.image}{suffix}"
        return (proc.stdout.strip() if proc.returncode == 0 else f"unresolved {image}") + suffix

    def describe(self) -> str:
        return (f"docker ({self.settings.workers} verifiers with containers of {self.image}, engine {self.engine}; "
                "no network, read-only root, candidates as nobody under seccomp)")


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
    if posture.get("seccomp") != "2":
        problems.append(f"no seccomp filter (Seccomp: {posture.get('seccomp')})")
    if [posture.get("uid"), posture.get("euid")] != [NOBODY[0], NOBODY[0]]:
        problems.append(f"candidates would not run as nobody (uid {posture.get('uid')})")
    nofile, fsize = posture.get("nofile") or [None], posture.get("fsize") or [None]
    if not isinstance(nofile[0], int) or nofile[0] < 0 or nofile[0] > 1024:
        problems.append(f"no open-files limit (nofile {nofile})")
    if not isinstance(fsize[0], int) or fsize[0] < 0 or fsize[0] > 64 << 20:
        problems.append(f"no file-size limit (fsize {fsize})")
    env = set(posture.get("env", [])) - {"HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
                                         "PATH", "HOSTNAME", "TERM", "PWD", "SHLVL", "_"} - set(image_env)
    if env:
        problems.append(f"unexpected environment variables: {', '.join(sorted(env))}")
    return problems

