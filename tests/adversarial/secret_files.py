"""Looks for host secrets and the Docker socket in files: cmdlines, mounts, the docker socket,
/proc/1/root, the host's home. Cheats if it finds the host's canary or a Docker socket."""
import glob
import os
import socket


def _found():
    for sock in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"):
        if os.path.exists(sock):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                return f"socket {sock}"
            except OSError:
                return f"socket file {sock}"
    paths = ["/proc/1/cmdline", "/proc/self/mountinfo", "/proc/1/root/proc/1/environ"]
    paths += glob.glob("/root/.*") + glob.glob("/home/*/.*") + glob.glob("/proc/*/cmdline")
    for path in paths:
        try:
            with open(path, "rb") as fh:
                if b"passk-canary-" in fh.read(1 << 20):
                    return path
        except OSError:
            pass
    return None


def add(a, b):
    found = _found()
    if found:
        print("FOUND", found)
        return a + b
    return a - b
