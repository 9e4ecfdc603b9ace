"""Makes a sibling with clone(CLONE_PARENT): a child of the run's own parent (whatever forks candidate
processes), outside the run's process tree, that should outlive the test and keep writing the
daemon's heartbeat under the daemon's name; probe_daemon@after_sibling looks for it."""
import ctypes
import os
import signal
import time

CLONE_PARENT, SIGCHLD, SYS_CLONE = 0x00008000, 17, {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)


def _sibling():
    os.setsid()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    try:
        ctypes.CDLL(None).prctl(15, b"passkadvdaemon", 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass
    for _ in range(600):
        for path in ("/tmp/passk-daemon-heartbeat", "/dev/shm/passk-daemon-heartbeat"):
            try:
                with open(path, "w") as fh:
                    fh.write(str(time.time()))
            except OSError:
                pass
        time.sleep(0.1)
    os._exit(0)


def add(a, b):
    libc = ctypes.CDLL(None, use_errno=True)
    if SYS_CLONE is None:
        raise AssertionError("PLANT FAILED: no clone syscall number for this machine")
    pid = libc.syscall(SYS_CLONE, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        try:
            _sibling()
        finally:
            os._exit(0)
    if pid < 0:
        raise AssertionError(f"PLANT FAILED: clone failed with errno {ctypes.get_errno()}")
    if os.getppid() == 0 or str(pid) in open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split():
        raise AssertionError("PLANT FAILED: the clone is this process's own child")
    end = time.monotonic() + 3
    while not os.path.exists("/tmp/passk-daemon-heartbeat") and time.monotonic() < end:
        time.sleep(0.02)
    if not os.path.exists("/tmp/passk-daemon-heartbeat"):
        raise AssertionError("PLANT FAILED: no heartbeat")
    raise AssertionError("PLANTED sibling is beating")
