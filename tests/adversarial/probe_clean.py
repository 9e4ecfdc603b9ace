"""Probe: correct, but fails unless the container is as clean as a fresh one: no process but init, the
worker and itself; nothing in /tmp but its own scratch folder (and the suite's mount); /dev/shm,
/dev/mqueue and System V IPC empty; scratch space free."""
import os
import shutil


def add(a, b):
    problems = []
    me, parent = os.getpid(), os.getppid()
    others = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) not in (1, me, parent):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            others.append(stat[: stat.rfind(")") + 3])
    if others:
        problems.append(f"processes {others}")
    mine = os.path.basename(os.path.dirname(os.path.abspath(__file__))) if "__file__" in globals() else ""
    suite_top = os.getcwd().split("/")[2] if os.getcwd().startswith("/tmp/") else None
    extra = [n for n in os.listdir("/tmp") if n not in (mine, suite_top)]
    if extra:
        problems.append(f"/tmp holds {extra}")
    for d in ("/dev/shm", "/dev/mqueue"):
        try:
            if os.listdir(d):
                problems.append(f"{d} holds {os.listdir(d)}")
        except OSError:
            pass
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{kind}") as fh:
            if len([r for r in fh.read().splitlines()[1:] if r.strip()]):
                problems.append(f"System V {kind} objects remain")
    if shutil.disk_usage("/tmp").free < (128 << 20):
        problems.append("/tmp is nearly full")
    if problems:
        raise RuntimeError("LEFTOVER: " + "; ".join(problems))
    return a + b
