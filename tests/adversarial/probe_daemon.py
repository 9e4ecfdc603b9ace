"""Probe after daemon_plant: correct, but fails if the daemon (or its heartbeat) is still around."""
import os
import time


def _daemons():
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as fh:
                    if fh.read().strip() == "passkadvdaemon":
                        found.append(pid)
            except OSError:
                pass
    return found


def add(a, b):
    if _daemons():
        raise RuntimeError(f"LEFTOVER: daemon processes {_daemons()}")
    for path in ("/tmp/passk-daemon-heartbeat", "/dev/shm/passk-daemon-heartbeat"):
        try:
            os.unlink(path)  # stale from before cleanup? remove it and see whether it comes back
        except OSError:
            pass
    time.sleep(0.4)
    for path in ("/tmp/passk-daemon-heartbeat", "/dev/shm/passk-daemon-heartbeat"):
        if os.path.exists(path):
            raise RuntimeError(f"LEFTOVER: {path} is still being written")
    return a + b
