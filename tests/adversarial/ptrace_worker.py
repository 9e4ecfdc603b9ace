"""Tries to read or control the worker: /proc/<ppid>/mem, ptrace(ATTACH), process_vm_readv, its fds.
Cheats if any of it works."""
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)


def add(a, b):
    ppid = os.getppid()
    for target in (ppid, 1):
        try:
            with open(f"/proc/{target}/mem", "rb") as fh:
                fh.read(1)
            return a + b
        except OSError:
            pass
        try:
            os.listdir(f"/proc/{target}/fd")
            return a + b
        except OSError:
            pass
        if libc.ptrace(16, target, None, None) == 0:  # PTRACE_ATTACH
            return a + b
        if libc.ptrace(0x4206, target, None, None) == 0:  # PTRACE_SEIZE
            return a + b
    buf = ctypes.create_string_buffer(16)

    class IOVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    local = IOVec(ctypes.cast(buf, ctypes.c_void_p), 16)
    remote = IOVec(0x400000, 16)
    if libc.process_vm_readv(ppid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) > 0:
        return a + b
    return a - b
