"""The local sandbox: candidate processes are plain subprocesses of this host.

Each candidate still runs in a process of its own, forked from a zygote, so nothing it does can
touch the test body or the verdict; as root, candidates run as users of their own, with private
scratch space and IPC, and the folders holding the evaluation (suite, store, samples, packages) are
hidden from them. But the host is not isolated: a candidate can read what its user can read in the
system's folders, use the network and take the machine's resources. Use it for trusted code and for
speed.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

from pytest_passk.execute import zygote_args
from pytest_passk.sandbox import NOBODY, SandboxError
from pytest_passk.sandbox.pool import WorkerPool

#: Candidates' users on a shared host: a block of otherwise unused ids (as systemd's DynamicUser).
UID_BASE, UID_SLOTS = 61184, 4096


def candidate_uid(worker: int) -> int:
    """The user of worker ``worker``'s first zygote (the next is +1): unique within a session of
    up to 16 workers, and not another concurrent session's (:func:`_uid_block`)."""
    return _uid_block() + (worker * 2) % 32


def _users_running() -> set[int]:
    """The real user ids of the processes on this host (from /proc/PID/status: a process that
    changed its user is not dumpable, and its /proc folder then belongs to root)."""
    users = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/status", "rb") as fh:
                    for line in fh:
                        if line.startswith(b"Uid:"):
                            users.add(int(line.split()[1]))
                            break
            except (OSError, ValueError, IndexError):
                continue
    return users


@functools.lru_cache(maxsize=None)
def _uid_block() -> int:
    """The first of this session's 32 candidate users: the block this process's id points at, or
    the next one that no process runs as. A zygote starts by killing every process of its user
    (what a zygote killed before it left), which must never be another session's candidates; a
    running session always has candidate processes waiting (forked ahead of their runs)."""
    blocks = UID_SLOTS // 32
    busy = _users_running()
    start = os.getpid() % blocks
    for step in range(blocks):
        base = UID_BASE + (start + step) % blocks * 32
        if not any(base <= uid < base + 32 for uid in busy):
            return base
    raise SandboxError(f"every candidate user id from {UID_BASE} to {UID_BASE + UID_SLOTS - 1} is in use "
                       "by other sessions' candidates; wait for them to finish")


_PROBE = "import sys, json, hashlib, decimal, fractions; print(sys.version_info[0], sys.version_info[1])"


@functools.lru_cache(maxsize=None)
def candidate_python(drop_user: tuple[int, int] | None) -> tuple[str, tuple[int, int]]:
    """The interpreter candidates run on: this one, unless the candidates' user cannot read it
    (a Python installed under /root, say), then the system's python3."""
    tried = []
    for exe in dict.fromkeys(filter(None, [sys.executable, shutil.which("python3"), "/usr/bin/python3"])):
        kwargs = {} if drop_user is None else {"user": drop_user[0], "group": drop_user[1], "extra_groups": []}
        try:
            proc = subprocess.run([exe, "-s", "-c", _PROBE], capture_output=True, text=True, timeout=60,
                                  cwd="/", env={"PATH": os.defpath}, **kwargs)
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{exe}: {exc}")
            continue
        parts = proc.stdout.split()
        if proc.returncode == 0 and len(parts) == 2:
            return exe, (int(parts[0]), int(parts[1]))
        tried.append(f"{exe}: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}")
    raise SandboxError("no Python interpreter the candidates' user (nobody) can run: " + "; ".join(tried)
                       + ". Install a system python3 (apt-get install python3) or run pytest as a normal user.")


def hidden_folders(settings) -> list[str]:
    """What the candidates' user must not read, besides what the zygote hides on its own (every
    top-level folder that is not the system's, its own Python's site-packages): the suite's root,
    the invocation folder, this user's home and this Python's site-packages."""
    import site

    folders = [settings.rootdir, settings.invocation_dir, os.path.expanduser("~"),
               *site.getsitepackages(), site.getusersitepackages()]
    return list(dict.fromkeys(os.path.realpath(f) for f in folders if f))


class LocalSandbox(WorkerPool):
    """Zygotes run as subprocesses of the verifiers, with limits but without isolation."""

    name = "local"
    isolates = False
    python = sys.executable
    version = tuple(sys.version_info[:2])

    def start(self, nodeids: list[str]) -> None:
        self.drop_user = NOBODY if os.geteuid() == 0 else None
        self.python, self.version = candidate_python(self.drop_user)
        self.site = None
        if self.settings.candidate_packages:
            from pytest_passk.sandbox.packages import candidate_site, check_python

            check_python(self.version, f"the candidates' interpreter {self.python}")
            self.site = str(candidate_site(self.settings.candidate_packages))
        if self.drop_user is None:
            # Candidates run as this user: keep them out of this process's pipes and memory.
            from pytest_passk.execute.verifier import not_dumpable

            not_dumpable()
        super().start(nodeids)

    def environment(self) -> str:
        """The candidates' interpreter: verdicts are kept per interpreter."""
        exe, version = candidate_python(NOBODY if os.geteuid() == 0 else None)
        packages = ",".join(sorted(self.settings.candidate_packages))
        return f"{exe} {version[0]}.{version[1]}" + (f" with {packages}" if packages else "")

    def zygote_command(self, index: int) -> tuple[list[str], dict[str, str] | None]:
        flags = ["-s", "-P"] if self.version >= (3, 11) else ["-s"]
        env = {
            "PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "{hashseed}", "HOME": "/tmp",
            "LD_BIND_NOW": "1",  # functions bound once in the zygote, not in each candidate process (zygote.main)
            "PASSK_CONNECT": "{socket}",  # each candidate process gets its own connection to the verifier
        }
        if getattr(self, "site", None):
            env["PYTHONPATH"] = self.site
        if self.drop_user is not None:
            # Candidates must not be able to signal, trace or read the verifier, nor another
            # zygote's candidates: each zygote gets a user of its own.
            uid = candidate_uid(index)
            env["PASSK_DROP_USER"] = f"{uid}+{{zygote}}:{uid}+{{zygote}}"
            # ...and cannot read the evaluation: the suite, its data, the store, the samples and
            # the host's packages are hidden from them (zygote.hide_host; top-level folders that
            # are not the system's are hidden too).
            env["PASSK_HIDE"] = os.pathsep.join(hidden_folders(self.settings))
        return [self.python, *flags, *zygote_args()], env

    def describe(self) -> str:
        if os.geteuid() == 0:
            who, files = "as users of their own, the suite's folders hidden,", "system files"
        else:
            who, files = "as this user (they can signal pytest's processes)", "files"
        return (f"local ({self.settings.workers} workers, candidates in their own processes {who} on {self.python}; "
                f"does NOT isolate the host: network, {files} and resources are reachable, use only for trusted code)")
