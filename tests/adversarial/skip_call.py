"""pytest.skip from inside the function."""
import pytest


def add(a, b):
    pytest.skip("skipping the hard part")
