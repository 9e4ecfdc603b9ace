"""Kills the zygote it was forked from (os.kill(os.getppid(), 9)), its process group, and stops it;
then answers wrongly. Fails either way; the next candidate must still run (in the same container)."""
import os
import signal


def add(a, b):
    zygote = os.getppid()
    for call in (lambda: os.kill(zygote, signal.SIGKILL), lambda: os.killpg(os.getpgid(zygote), signal.SIGKILL),
                 lambda: os.kill(zygote, signal.SIGSTOP), lambda: os.kill(1, signal.SIGKILL)):
        try:
            call()
        except OSError as exc:
            print("refused:", exc)
    return a - b
