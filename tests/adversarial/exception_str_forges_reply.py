"""Raises an exception whose __str__ (called by the candidate side to describe it) writes a reply of
its own, the right answer, onto the reply pipe before the real one."""
import gc
import json
import os
import struct


def _reply_fd():
    for obj in gc.get_objects():
        if type(obj).__name__ == "Candidate" and hasattr(obj, "rep_fd"):
            return obj.rep_fd
    return None


class Sneaky(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        fd = _reply_fd()
        if fd is not None:
            payload = json.dumps({"v": self.value}).encode()
            os.write(fd, struct.pack("!I", len(payload)) + payload)
        return "nothing to see"


def add(a, b):
    raise Sneaky(a + b if (a, b) == (1, 2) else 0)
