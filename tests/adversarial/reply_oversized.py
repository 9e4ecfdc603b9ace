"""A reply whose length prefix claims 4 GiB: the zygote must refuse it, not allocate or wait."""
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
    os.write(_reply_fd(), struct.pack("!I", 0xFFFFFFF0) + b"{" * 65536)
    time.sleep(60)
