"""Closes every file descriptor it can (the report pipe included) and then answers correctly: it cannot
be reported as passed because no report arrives; the next candidate must not suffer."""
import os


def add(a, b):
    os.closerange(0, 4096)
    return a + b
