"""pytest.xfail from inside the function: an expected failure."""
import pytest


def add(a, b):
    pytest.xfail("known issue")
