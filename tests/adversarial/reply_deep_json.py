"""A reply nested 200,000 deep (JSON arrays), then one of tagged tuples 150 deep as a dict key:
decoding must refuse both without overflowing any stack."""
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
    _send(_reply_fd(), b'{"v":' + b"[" * 200000 + b"]" * 200000 + b"}")
    key = 1
    for _ in range(150):
        key = {"t": [key]}
    _send(_reply_fd(), json.dumps({"v": {"d": [[key, a + b]]}}).encode())
    time.sleep(60)
