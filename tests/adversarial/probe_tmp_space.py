"""Probe after fill_tmp: correct, but fails if /tmp or /dev/shm is still full or holds the filler."""
import os
import shutil


def add(a, b):
    for d in ("/tmp", "/dev/shm"):
        left = [n for n in os.listdir(d) if n.startswith("fill-")]
        if left:
            raise RuntimeError(f"LEFTOVER: {len(left)} filler files in {d}")
        if shutil.disk_usage(d).free < (8 << 20):
            raise RuntimeError(f"LEFTOVER: {d} is still full")
    with open("/tmp/probe-write-check", "wb") as fh:
        fh.write(b"\0" * (4 << 20))
    os.unlink("/tmp/probe-write-check")
    return a + b
