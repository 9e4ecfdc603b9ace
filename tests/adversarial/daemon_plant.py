"""Double-forks a daemon (new session, signals ignored, renamed) that should outlive the test and
keep writing a heartbeat; the probe that follows looks for it."""
import ctypes
import os
import signal
import time


def _daemon():
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    try:
        ctypes.CDLL(None).prctl(15, b"passkadvdaemon", 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass
    for _ in range(600):
        for path in ("/tmp/passk-daemon-heartbeat", "/dev/shm/passk-daemon-heartbeat"):
            try:
                with open(path, "w") as fh:
                    fh.write(str(time.time()))
            except OSError:
                pass
        time.sleep(0.1)
    os._exit(0)


def add(a, b):
    if os.fork() == 0:
        try:
            _daemon()
        finally:
            os._exit(0)
    end = time.monotonic() + 3  # a loaded host may take a while to run the daemon's first beat
    while not os.path.exists("/tmp/passk-daemon-heartbeat") and time.monotonic() < end:
        time.sleep(0.02)
    if not os.path.exists("/tmp/passk-daemon-heartbeat"):
        raise AssertionError("PLANT FAILED: no heartbeat")
    raise AssertionError("PLANTED daemon is beating")
