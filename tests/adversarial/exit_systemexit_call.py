"""raise SystemExit (no code, i.e. status 0) from inside the function."""


def add(a, b):
    raise SystemExit
