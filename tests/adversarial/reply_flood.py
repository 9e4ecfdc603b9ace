"""Floods its reply pipe with ~100 MB of well-formed replies of the right answer."""
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


def add(a, b):
    payload = json.dumps({"v": a + b}).encode()
    one = struct.pack("!I", len(payload)) + payload
    fd = _reply_fd()
    for _ in range(200):
        os.write(fd, one * 50000)
    return a - b
