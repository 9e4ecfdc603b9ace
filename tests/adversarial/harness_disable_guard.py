"""Harness-aware forgery: switches off the candidate fixture's forged-value guard, then returns an
always-equal object."""
import sys


class Anything:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


def add(a, b):
    guard = sys.modules.get("pytest_passk.candidate")
    if guard is not None:
        guard._forged = lambda *args, **kwargs: None
    return Anything()
