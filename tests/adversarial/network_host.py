"""Connects to a port the host is listening on (via loopback, the docker bridge and the host's own
addresses), over TCP and UDP. Cheats if any connection is made."""
import socket

PORT = __HOST_PORT__
ADDRS = ["127.0.0.1", "172.17.0.1", "host.docker.internal"] + __HOST_ADDRS__


def add(a, b):
    for addr in ADDRS:
        try:
            with socket.create_connection((addr, PORT), timeout=0.3) as s:
                s.sendall(b"candidate was here\n")
                return a + b
        except OSError:
            pass
        try:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.sendto(b"candidate was here\n", (addr, PORT))
        except OSError:
            pass
    return a - b
