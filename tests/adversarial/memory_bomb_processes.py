"""Forks many children that each allocate (and touch) memory just under the per-process limit,
so together they exceed the container's memory and the OOM killer has to choose a victim."""
import os
import time


def add(a, b):
    pids = []
    for _ in range(12):
        pid = os.fork()
        if pid == 0:
            blocks = []
            try:
                for _ in range(40):
                    blocks.append(bytearray(8 << 20))  # bytearray zero-fills: the pages are touched
            except MemoryError:
                pass
            time.sleep(30)
            os._exit(0)
        pids.append(pid)
    time.sleep(1.5)
    return a - b
