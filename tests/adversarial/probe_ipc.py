"""Probe after ipc_plant: correct, but fails if any IPC object an earlier candidate made survives."""
import os


def add(a, b):
    left = []
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{kind}") as fh:
            rows = fh.read().splitlines()[1:]
        left += [f"sysv {kind}: {row.split()[:2]}" for row in rows if row.strip()]
    try:
        left += [f"/dev/mqueue/{n}" for n in os.listdir("/dev/mqueue")]
    except OSError:
        pass
    if left:
        raise RuntimeError(f"LEFTOVER: {left}")
    return a + b
