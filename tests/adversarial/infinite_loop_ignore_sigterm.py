"""Ignores every catchable signal and spins forever."""
import signal

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGXCPU, signal.SIGALRM,
            signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE):
    signal.signal(sig, signal.SIG_IGN)


def add(a, b):
    while True:
        pass
