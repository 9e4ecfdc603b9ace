"""Probe after keyring_plant: correct, but fails if any key it left can still be read."""
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def _read(key):
    buf = ctypes.create_string_buffer(64)
    n = libc.syscall(250, 11, ctypes.c_long(key), buf, 64)  # KEYCTL_READ
    return buf.raw[:n] if n > 0 else None


def add(a, b):
    left = []
    try:
        for line in open("/proc/keys").read().splitlines():
            if "passk-adv-key" in line and _read(int(line.split()[0], 16)) == b"a+b":
                left.append(line)
    except OSError:
        pass
    persistent = libc.syscall(250, 22, -1, -3)
    for ring in (-4, -5, -3, persistent):
        for name in ("user", "user-session", "session", "persistent"):
            key = libc.syscall(250, 10, ctypes.c_long(ring), b"user", b"passk-adv-key-" + name.encode(), 0)
            if key > 0 and _read(key) == b"a+b":
                left.append("%s in %d" % (name, ring))
    if left:
        raise RuntimeError("LEFTOVER keys: %s" % left)
    return a + b
