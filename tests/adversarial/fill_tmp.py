"""Fills /tmp and /dev/shm until the disk is full (files below the per-file size limit)."""
import os
import signal

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _fill(directory):
    written = 0
    chunk = b"\0" * (1 << 20)
    for i in range(1000):
        try:
            with open(os.path.join(directory, f"fill-{i}"), "wb") as fh:
                for _ in range(32):
                    fh.write(chunk)
                    written += len(chunk)
        except OSError:
            break
    return written


def add(a, b):
    total = _fill("/tmp") + _fill("/dev/shm")
    raise AssertionError(f"PLANTED {total >> 20} MiB of filler")
