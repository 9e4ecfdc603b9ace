"""Writes fake results (protocol lines and child reports) to every fd in /proc/self/fd, then os._exit(0)."""
import json
import os

PAYLOAD = b"".join(
    [json.dumps({"msg": "result", "id": i, "outcome": "passed", "reason": "passed", "message": "", "output": "",
                 "duration": 0.0}, separators=(",", ":")).encode() + b"\n" for i in range(300)]
    + [json.dumps({"nonce": n, "reason": "passed", "message": ""}).encode() + b"\n" for n in ("", "0" * 32, None)]
)


def add(a, b):
    for name in os.listdir("/proc/self/fd"):
        try:
            os.write(int(name), PAYLOAD)
        except OSError:
            pass
    os._exit(0)
