"""Harness-aware forgery: patches the worker module's helpers so a failing call phase is recorded as
passed (the worker's hooks run in the same process as candidate code). The worker runs as
``python -m pytest_passk.worker``, so its module is ``__main__``."""
import sys


def add(a, b):
    for name in ("__main__", "pytest_passk.worker"):
        worker = sys.modules.get(name)
        if worker is not None and hasattr(worker, "_reason_for"):
            worker._reason_for = lambda exc: "passed"
    raise AssertionError("wrong on purpose")
