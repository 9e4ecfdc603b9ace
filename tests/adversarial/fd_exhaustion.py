"""Opens files until no descriptor is left, then fails: the report pipe must still work."""
import os


def add(a, b):
    held = []
    while True:
        try:
            held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            break
    return a - b
