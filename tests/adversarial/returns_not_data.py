"""Returns objects that are not data: a function, a class instance with an always-true __eq__ and
__bool__, and a module, inside a tuple."""
import sys


class Truthy:
    def __eq__(self, other):
        return True

    def __bool__(self):
        return True

    __hash__ = object.__hash__


def add(a, b):
    return (lambda: a + b, Truthy(), sys)
