"""Harness-aware forgery: walks up the stack to the worker's forked child, reads the run's nonce and
the result pipe from its frame, writes a passing report itself and exits before the real one."""
import json
import os
import sys


def add(a, b):
    f = sys._getframe()
    while f is not None and "nonce" not in f.f_locals:
        f = f.f_back
    if f is not None:
        fd = f.f_locals.get("res_w")
        line = json.dumps({"nonce": f.f_locals["nonce"], "reason": "passed", "message": ""}) + "\n"
        for target in ([fd] if isinstance(fd, int) else []) + [int(n) for n in os.listdir("/proc/self/fd")]:
            try:
                os.write(target, line.encode())
                break
            except OSError:
                pass
        os._exit(0)
    return a - b
