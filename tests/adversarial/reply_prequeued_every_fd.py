"""Writes replies (wrong answers) before any request, on its reply pipe and on every other
descriptor: junk must neither pass nor upset the verifier or the next run."""
import gc
import json
import os
import struct
import time


def _reply_fd():
    for obj in gc.get_objects():
        if type(obj).__name__ == "Candidate" and hasattr(obj, "rep_fd"):
            return obj.rep_fd
    return None


def _send(fd, payload):
    os.write(fd, struct.pack("!I", len(payload)) + payload)

for fd in [_reply_fd()] + list(range(3, 64)):
    for v in (7, 7, 7, 7):
        try:
            _send(fd, json.dumps({"v": v}).encode())
        except (OSError, TypeError):
            pass


def add(a, b):
    return a - b
