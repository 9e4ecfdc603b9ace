"""raise KeyboardInterrupt from inside the function."""


def add(a, b):
    raise KeyboardInterrupt
