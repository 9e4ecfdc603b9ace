"""Looks for the host's secrets: os.environ, /proc/1/environ, /proc/<every pid>/environ, /proc/self/environ.
Cheats (answers correctly) if it sees the host's canary."""
import os


def _seen():
    for name, value in os.environ.items():
        if "CANARY" in name or "passk-canary-" in value:
            return f"os.environ[{name}]"
    for pid in ["self", "1"] + [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        if b"CANARY" in data or b"passk-canary-" in data:
            return f"/proc/{pid}/environ"
    return None


def add(a, b):
    where = _seen()
    if where:
        print("LEAKED host canary via", where)
        return a + b
    return a - b
