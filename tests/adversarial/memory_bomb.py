"""Allocates without bound, swallowing MemoryError to keep going, then answers wrongly."""
def add(a, b):
    hoard = []
    for _ in range(10_000):
        try:
            hoard.append(bytearray(64 << 20))
        except MemoryError:
            hoard.append(bytearray(1 << 20)) if len(hoard) % 2 else None
    return a - b
