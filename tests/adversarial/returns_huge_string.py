"""Returns a 40 MiB string: a reply larger than the boundary accepts."""


def add(a, b):
    return "3" * (40 << 20)
