"""Tries to write into the suite's directory (cwd, the test file's folder, rootdir) and to tamper with
the test file itself; passes (cheats) if any write lands outside the candidate's own scratch space
(/tmp, /dev/shm: a candidate may write there, and the host check of the suite's folder covers the rest)."""
import os
import sys


def _targets():
    dirs = {os.getcwd(), "/", "/work", "/root", "/home", "/srv"}
    f = sys._getframe()
    while f is not None:
        path = f.f_globals.get("__file__")
        if path and os.path.basename(path).startswith("test_"):
            dirs.add(os.path.dirname(os.path.abspath(path)))
            yield os.path.abspath(path), "a"
        f = f.f_back
    for d in dirs:
        yield os.path.join(d, "PWNED_BY_CANDIDATE"), "w"
        yield os.path.join(d, "conftest.py"), "a"


SCRATCH = ("/tmp/", "/dev/shm/", os.environ.get("TMPDIR", "/tmp").rstrip("/") + "/")


def add(a, b):
    landed = []
    for path, mode in _targets():
        if path.startswith(SCRATCH):
            continue
        try:
            with open(path, mode) as fh:
                fh.write("\n# pwned\n")
            landed.append(path)
        except OSError:
            pass
    if landed:
        return a + b
    return a - b
