"""Hunts for the trusted side in its own process: every thread's frames (sys._current_frames), the
stack, gc's objects and sys.modules, looking for the verifier, its run record, a nonce or its pipes.
Answers correctly only if it found any of them."""
import gc
import sys

WANTED = ("nonce", "res_w", "proto_out", "VerifierPlugin", "_Run", "CandidateProcess", "ZygoteLink", "TestReport")


def add(a, b):
    found = []
    for frame in list(sys._current_frames().values()) + [sys._getframe()]:
        while frame is not None:
            found += [k for k in frame.f_locals if k in WANTED]
            found += [k for k in frame.f_globals if k in WANTED]
            frame = frame.f_back
    found += [type(o).__name__ for o in gc.get_objects() if type(o).__name__ in WANTED]
    found += [m for m in sys.modules if m.startswith(("pytest", "_pytest", "pluggy"))]
    if found:
        print("FOUND", sorted(set(found)))
        return a + b
    return a - b
