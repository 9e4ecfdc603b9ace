"""A plain wrong answer, run right after helper_left_behind: fails unless a helper answered for it."""


def add(a, b):
    return a - b
