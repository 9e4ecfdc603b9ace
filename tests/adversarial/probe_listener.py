"""Probe after listener_plant: correct, but fails if any of the planted listeners still answers."""
import os
import socket


def add(a, b):
    try:
        socket.create_connection(("127.0.0.1", 47123), timeout=0.5).close()
        raise RuntimeError("LEFTOVER: 127.0.0.1:47123 still listens")
    except ConnectionRefusedError:
        pass
    for addr in ("\0passk-adv-listener", "/tmp/passk-adv-listener.sock"):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(addr)
            raise RuntimeError(f"LEFTOVER: {addr!r} still listens")
        except (ConnectionRefusedError, FileNotFoundError):
            pass
        finally:
            s.close()
    if os.path.exists("/tmp/passk-adv-listener.sock"):
        raise RuntimeError("LEFTOVER: socket file /tmp/passk-adv-listener.sock")
    return a + b
