"""Leaves data in kernel IPC objects that outlive processes: a System V shared memory segment, a
System V message queue and semaphore set (fixed keys), and a POSIX message queue."""
import ctypes
import ctypes.util

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_CREAT = 0o1000
KEY = 0x5A55


def add(a, b):
    planted = []
    shmid = libc.shmget(KEY, 4096, IPC_CREAT | 0o666)
    if shmid >= 0:
        addr = libc.shmat(shmid, None, 0)
        if addr not in (None, ctypes.c_void_p(-1).value):
            ctypes.memmove(addr, b"secret from an earlier candidate", 32)
            libc.shmdt(ctypes.c_void_p(addr))
            planted.append("shm")
    if libc.msgget(KEY, IPC_CREAT | 0o666) >= 0:
        planted.append("msg")
    if libc.semget(KEY, 1, IPC_CREAT | 0o666) >= 0:
        planted.append("sem")
    try:
        rt = ctypes.CDLL(ctypes.util.find_library("rt") or "librt.so.1", use_errno=True)
        if rt.mq_open(b"/passk-adv-mq", 0o100 | 0o2, 0o666, None) >= 0:  # O_CREAT | O_RDWR
            planted.append("mqueue")
    except OSError:
        pass
    raise AssertionError(f"PLANTED {planted}")
