"""Probe after tmp_plant: correct, but fails if anything an earlier candidate left is still there."""
import os


def add(a, b):
    left = []
    for d in ("/tmp", "/dev/shm", "/dev/mqueue"):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        left += [os.path.join(d, n) for n in names if "passk-adv" in n]
    if left:
        raise RuntimeError(f"LEFTOVER: {sorted(left)}")
    return a + b
