"""Kills itself with SIGKILL in the middle of the test: no report can follow."""
import os
import signal


def add(a, b):
    os.kill(os.getpid(), signal.SIGKILL)
