"""Process supervision for the sandbox worker: what a run left behind (processes, scratch files,
System V IPC) and how to remove it, whether a slow run was starved by the host, and the posture
probe that shows what a candidate process finds around itself."""
from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
from typing import Any

from pytest_passk import protocol

_PR_SET_CHILD_SUBREAPER = 36
SCRATCH = ("/tmp", "/dev/shm", "/dev/mqueue")
SYSV_IPC = (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl"))


def sysv_ipc_objects() -> list[tuple[str, int]]:
    """System V shared memory, message queues and semaphores: they outlive the processes that made them."""
    found = []
    for kind, ctl in SYSV_IPC:
        try:
            with open(f"/proc/sysvipc/{kind}") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        found += [(ctl, int(row.split()[1])) for row in rows if len(row.split()) > 1]
    return found


def remove_sysv_ipc() -> None:  # pragma: no cover - runs in the cleaning child, as the candidates' user
    objects = sysv_ipc_objects()
    if not objects:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for ctl, ident in objects:
        if ctl == "semctl":
            libc.semctl(ident, 0, 0)  # IPC_RMID
        else:
            getattr(libc, ctl)(ident, 0, None)  # IPC_RMID


def unlock_tree(top: str) -> None:  # pragma: no cover - runs in the cleaning child
    """Give the owner back rwx on every directory under ``top`` (never following links)."""
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            os.chmod(d, 0o700)  # d is a real directory: only those are pushed
            stack += [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
        except OSError:
            pass


def listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def all_but(me: int) -> list[int]:
    """Every live process in the (container's) PID namespace except PID 1 and ``me``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, me):
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            if stat[stat.rfind(b")") + 2:][:1] != b"Z":
                found.append(int(entry))
    return found


def check_posture(drop_user: tuple[int, int] | None) -> dict[str, Any]:
    """What a candidate process would find around it: run in a forked child with the candidate's user."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            if drop_user is not None:
                os.setgroups([])
                os.setgid(drop_user[1])
                os.setuid(drop_user[0])
            os.write(w, json.dumps(posture_facts()).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data) if data else {"error": "posture probe died"}


def posture_facts() -> dict[str, Any]:  # pragma: no cover - runs in the child
    facts: dict[str, Any] = {"uid": os.getuid(), "euid": os.geteuid()}
    status = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    facts["cap_eff"] = status.get("CapEff")
    facts["cap_prm"] = status.get("CapPrm")
    facts["no_new_privs"] = status.get("NoNewPrivs")
    with open("/proc/net/dev") as fh:
        facts["interfaces"] = sorted(line.split(":")[0].strip() for line in fh.readlines()[2:])
    # The mount flag, not a write probe: the candidates' user cannot write /usr even on a writable
    # root, yet could fill world-writable folders such as /var/tmp that no cleanup empties.
    facts["root_writable"] = not os.statvfs("/").f_flag & os.ST_RDONLY
    facts["pids_max"] = first_readable(["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"])
    facts["memory_max"] = first_readable(["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"])
    facts["nofile"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
    facts["fsize"] = list(resource.getrlimit(resource.RLIMIT_FSIZE))
    facts["docker_socket"] = os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock")
    facts["env"] = sorted(os.environ)
    return facts


def first_readable(paths: list[str]) -> str | None:
    for path in paths:
        try:
            with open(path) as fh:
                return fh.read().strip()
        except OSError:
            continue
    return None


MAX_EXTENSIONS = protocol.MAX_EXTENSIONS


def process_table() -> dict[int, list[bytes]]:
    """``pid -> stat fields after the command name`` for every process visible in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    table[int(entry)] = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
    return table


def starved(pid: int, timeout: float) -> bool:
    """The run's child is runnable, yet the run (it and everything it started) was given less than
    half of its timeout in CPU time: the host is busy, the candidate is not slow. A run that keeps
    itself busy (a fork bomb starving its own parent) is not starved."""
    table = process_table()
    if pid not in table or table[pid][0] != b"R":
        return False
    parent = table[pid][1]  # the worker: everything below it belongs to this run
    children: dict[int, list[int]] = {}
    for p, fields in table.items():
        children.setdefault(int(fields[1]), []).append(p)
    cpu_ticks, todo = 0, list(children.get(int(parent), []))
    while todo:
        p = todo.pop()
        f = table[p]
        cpu_ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # own and reaped children's
        todo += children.get(p, [])
    return cpu_ticks / os.sysconf("SC_CLK_TCK") < timeout / 2


def process_state(pid: int) -> str:
    """What a timed-out child was doing: running or waiting (and on what), and its CPU time."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        with open(f"/proc/{pid}/wchan", "rb") as fh:
            wchan = fh.read().decode(errors="replace").strip()
    except OSError:
        return ""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    state = {"R": "running", "S": "sleeping", "D": "in uninterruptible wait", "T": "stopped",
             "Z": "exited"}.get(fields[0].decode(), fields[0].decode())
    where = f" in {wchan}" if wchan and wchan != "0" and state != "running" else ""
    return f"the test was {state}{where}, {cpu:.2f} s of CPU used"


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def children_of(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parens): state ppid ...
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(entry))
    return found


def become_subreaper() -> None:
    """Orphans of a run re-parent to the worker, so it can find and kill daemons that detached."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
