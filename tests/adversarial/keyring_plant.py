"""Leaves data in kernel keyrings for the next candidate: add_key into the user, user-session and
session keyrings and the user's persistent keyring (raw syscalls through ctypes). Its message says
PLANTED with what worked (Docker's seccomp profile normally refuses keyctl/add_key)."""
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ADD_KEY, KEYCTL = 248, 250


def add(a, b):
    planted = []
    for name, ring in (("user", -4), ("user-session", -5), ("session", -3)):
        if libc.syscall(ADD_KEY, b"user", b"passk-adv-key-" + name.encode(), b"a+b", 3, ring) > 0:
            planted.append(name)
    persistent = libc.syscall(KEYCTL, 22, -1, -3)  # KEYCTL_GET_PERSISTENT
    if persistent > 0 and libc.syscall(ADD_KEY, b"user", b"passk-adv-key-persistent", b"a+b", 3, persistent) > 0:
        planted.append("persistent")
    print("keys planted:", planted, "errno", ctypes.get_errno())
    raise AssertionError(("PLANTED %s" % planted) if planted else "nothing planted")
