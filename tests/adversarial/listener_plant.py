"""Leaves listeners behind for the next candidate: TCP on loopback, an abstract UNIX socket and a
UNIX socket file in /tmp, held open by a detached daemon."""
import os
import socket
import time

PORT = 47123


def _serve():
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", PORT))
    tcp.listen(16)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0passk-adv-listener")
    abstract.listen(16)
    path = socket.socket(socket.AF_UNIX)
    path.bind("/tmp/passk-adv-listener.sock")
    path.listen(16)
    time.sleep(60)
    os._exit(0)


def add(a, b):
    if os.fork() == 0:
        try:
            _serve()
        finally:
            os._exit(0)
    end = time.monotonic() + 3  # a loaded host may take a while to run the daemon's binds
    while True:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect("\0passk-adv-listener")
            finally:
                s.close()
            break
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)
    raise AssertionError("PLANTED listeners on 127.0.0.1:47123 and @passk-adv-listener")
