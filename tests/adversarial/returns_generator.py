"""Returns a generator (not data) that would yield the right answer: it stays in the candidate's process."""


def add(a, b):
    yield a + b
