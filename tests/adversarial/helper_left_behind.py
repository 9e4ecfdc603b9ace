"""Leaves a helper behind (double fork, new session, SIGTERM/SIGPIPE ignored) that keeps writing
replies of the answers the next candidate is asked for (3, 0, 1000001), once its own run is over, to
every descriptor it has and to every descriptor of every process it can open through /proc. The next candidate is wrong
(wrong_after_helper): it must still fail."""
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

import signal


def _spray(fd):
    for v in (3, 0, 1000001):
        _send(fd, json.dumps({"v": v}).encode())


def add(a, b):
    fd = _reply_fd()
    run_pid = os.getpid()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for sig in (signal.SIGTERM, signal.SIGPIPE, signal.SIGHUP, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)
            while os.path.exists("/proc/%d" % run_pid):  # its own run must be over first
                time.sleep(0.002)
            end = time.monotonic() + 60
            while time.monotonic() < end:
                for target in [fd] + list(range(3, 32)):
                    try:
                        _spray(target)
                    except OSError:
                        pass
                for pid in os.listdir("/proc"):
                    if pid.isdigit() and int(pid) != os.getpid():
                        try:
                            for n in os.listdir("/proc/%s/fd" % pid):
                                w = os.open("/proc/%s/fd/%s" % (pid, n), os.O_WRONLY | os.O_NONBLOCK)
                                _spray(w)
                                os.close(w)
                        except OSError:
                            pass
                time.sleep(0.005)
        os._exit(0)
    os.wait()
    time.sleep(0.2)
    return a - b
