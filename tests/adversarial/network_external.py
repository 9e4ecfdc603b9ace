"""Reaches for the internet: TCP to public IPs, DNS, UDP, raw sockets. Cheats if anything gets out."""
import socket


def add(a, b):
    for addr, port in (("1.1.1.1", 80), ("8.8.8.8", 53), ("93.184.216.34", 443)):
        try:
            with socket.create_connection((addr, port), timeout=0.3):
                return a + b
        except OSError:
            pass
    try:
        socket.getaddrinfo("example.com", 80)
        return a + b
    except OSError:
        pass
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"\0" * 12, ("8.8.8.8", 53))
        return a + b
    except OSError:
        pass
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        return a + b
    except OSError:
        pass
    return a - b
