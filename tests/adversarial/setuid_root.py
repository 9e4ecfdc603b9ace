"""Tries to become root: setuid/setresuid/setgid, set-uid binaries (su, mount), a user namespace,
raising its own limits. Cheats if it ends up with uid or euid 0 or any capability."""
import ctypes
import os
import subprocess


def _root():
    with open("/proc/self/status") as fh:
        status = dict(line.split(":", 1) for line in fh if ":" in line)
    return os.getuid() == 0 or os.geteuid() == 0 or int(status["CapEff"].strip(), 16) != 0


def add(a, b):
    for call in (lambda: os.setuid(0), lambda: os.seteuid(0), lambda: os.setresuid(0, 0, 0),
                 lambda: os.setgid(0), lambda: os.setgroups([0])):
        try:
            call()
        except OSError:
            pass
        if _root():
            return a + b
    for cmd in (["su", "-c", "id -u", "root"], ["mount", "-t", "tmpfs", "x", "/mnt"],
                ["newgrp", "root"], ["chfn", "-f", "x", "root"]):
        try:
            out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=0.3, text=True)
            if cmd[0] == "su" and out.stdout.strip() == "0":
                return a + b
        except Exception:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER: root inside a namespace only; not a cheat by itself
        print("unshare(CLONE_NEWUSER) succeeded")
    if _root():
        return a + b
    return a - b
