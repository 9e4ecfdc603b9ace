"""sys.settrace: in every frame of a test function, replace the local `add` with an honest one (a trace
function's f_locals writes are copied back into the frame). Forges a pass when the test body runs in
the candidate's process; here the test body is elsewhere."""
import sys


def _honest(a, b):
    return a + b


def _local(frame, event, arg):
    if frame.f_code.co_name.startswith("test_") and "add" in frame.f_locals:
        frame.f_locals["add"] = _honest
    return _local


sys.settrace(lambda frame, event, arg: _local)


def add(a, b):
    return a - b
