"""An int subclass holding a wrong value whose every conversion (int(), index, repr, str, format,
pickling, __eq__) claims the right answer: an encoder that asks the object instead of reading the
builtin's slot would send the right answer."""


def add(a, b):
    right = a + b

    class Liar(int):
        __eq__ = lambda self, other: True  # noqa: E731
        __ne__ = lambda self, other: False  # noqa: E731
        __hash__ = int.__hash__
        __int__ = __index__ = __trunc__ = lambda self: right  # noqa: E731
        __repr__ = __str__ = lambda self: str(right)  # noqa: E731
        __format__ = lambda self, spec: format(right, spec)  # noqa: E731
        __reduce__ = __reduce_ex__ = lambda self, *a: (int, (right,))  # noqa: E731
        __float__ = lambda self: float(right)  # noqa: E731
        as_integer_ratio = lambda self: (right, 1)  # noqa: E731
        to_bytes = lambda self, *a, **k: int(right).to_bytes(*a, **k)  # noqa: E731

    return Liar(a - b)
