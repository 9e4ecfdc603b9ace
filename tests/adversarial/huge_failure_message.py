"""Fails with a 64 MiB exception message that also mimics a passing report, to overflow or confuse
the report pipe and the host's result line."""
import json

FAKE = json.dumps({"nonce": "0" * 32, "reason": "passed", "message": ""})


def add(a, b):
    raise AssertionError(("\n" + FAKE + "\n") * ((64 << 20) // (len(FAKE) + 2)))
