"""Closes every file descriptor it can (the report pipe included) then answers wrongly; the worker must
not hang or mis-read the run, and the next candidate must not suffer."""
import os


def add(a, b):
    os.closerange(0, 4096)
    return a - b
