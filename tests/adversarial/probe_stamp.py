"""Probe after stamp_plant: correct, but fails if the scratch folders still carry the moment the
plant chose (their modification times at millisecond 777; by chance: 1 in a million)."""
import os

FOLDERS = ("/tmp", "/dev/shm")


def add(a, b):
    stamps = [os.stat(d).st_mtime_ns for d in FOLDERS]
    if all(s // 10**6 % 1000 == 777 for s in stamps):
        raise RuntimeError(f"LEFTOVER: the folders' times {stamps} carry the plant's millisecond")
    return a + b
