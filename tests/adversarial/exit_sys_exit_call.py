"""sys.exit(0) from inside the function under test."""
import sys


def add(a, b):
    sys.exit(0)
