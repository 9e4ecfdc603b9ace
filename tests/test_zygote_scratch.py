"""Local sandbox, as root: a zygote's scratch space and IPC are its own (a mount and an IPC namespace
of the zygote's, set up once) and emptied after every run. Attacks on that: a run plants files,
folders it locks, links, FIFOs, System V and POSIX IPC objects and a detached process; the next run
of the same zygote (same user) looks for every one of them, and so does a run of another zygote
while the planting run is still alive. Nothing may be found; the plants must really have happened.
"""
from __future__ import annotations

import os
import secrets
import textwrap

import pytest

from pytest_passk.execute.boundary import CandidateProcess, ZygoteLink
from pytest_passk.sandbox import SandboxSettings
from pytest_passk.sandbox.local import NOBODY, LocalSandbox, candidate_python

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="zygotes get namespaces of their own only as root")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMMON = '''
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
TOK = {tok!r}
KEY = {key}
FOLDERS = [d for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock") if os.path.isdir(d)]

NAME = ("p" + TOK)[:15].encode()  # the planted process's name (its /proc/PID/comm)

def planted_processes():
    """Processes of this user that the plant started (known by their name)."""
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit() and int(e) != os.getpid():
            try:
                with open("/proc/%s/comm" % e, "rb") as fh:
                    if fh.read().strip() != NAME or os.stat("/proc/" + e).st_uid != os.getuid():
                        continue
                with open("/proc/%s/stat" % e, "rb") as fh:
                    if fh.read().rsplit(b")", 1)[1].split()[0] != b"Z":  # a dead one waiting to be reaped is gone
                        out.append(int(e))
            except OSError:
                pass
    return out
'''

PLANT = COMMON + '''
def plant():
    planted = []
    for d in FOLDERS:
        try:
            with open(os.path.join(d, "passk-" + TOK), "w") as fh:
                fh.write("the answer is 42")
            locked = os.path.join(d, "passk-dir-" + TOK)
            os.mkdir(locked)
            open(os.path.join(locked, "inside"), "w").close()
            os.chmod(locked, 0)
            os.symlink("/etc/passwd", os.path.join(d, "passk-link-" + TOK))
            os.mkfifo(os.path.join(d, "passk-fifo-" + TOK))
            planted.append(d)
        except OSError as exc:
            planted.append("%s failed: %s" % (d, exc))
    if libc.msgget(KEY, 0o1666) >= 0:
        planted.append("msg")
    if libc.shmget(KEY, 4096, 0o1666) >= 0:
        planted.append("shm")
    if libc.semget(KEY, 1, 0o1666) >= 0:
        planted.append("sem")
    if libc.mq_open(("/passk-" + TOK).encode(), 0o100 | 0o2, 0o666, None) >= 0:  # O_CREAT | O_RDWR
        planted.append("mqueue")
    if os.fork() == 0:  # a detached process that outlives the run, rewriting a file
        os.setsid()
        if os.fork() == 0:
            libc.prctl(15, NAME, 0, 0, 0)  # PR_SET_NAME
            while True:
                try:
                    with open("/tmp/passk-late-" + TOK, "w") as fh:
                        fh.write("late")
                except OSError:
                    pass
                time.sleep(0.005)
        os._exit(0)
    for _ in range(200):  # until the detached process is up and writing
        if os.path.exists("/tmp/passk-late-" + TOK):
            planted.append("process")
            break
        time.sleep(0.01)
    return planted
'''

PROBE = COMMON + '''
def probe():
    left = []
    for d in FOLDERS:
        for name in ("passk-", "passk-dir-", "passk-link-", "passk-fifo-", "passk-late-"):
            if os.path.lexists(os.path.join(d, name + TOK)):
                left.append(os.path.join(d, name + TOK))
    if libc.msgget(KEY, 0o666) >= 0:
        left.append("msg")
    if libc.shmget(KEY, 0, 0o666) >= 0:
        left.append("shm")
    if libc.semget(KEY, 0, 0o666) >= 0:
        left.append("sem")
    if libc.mq_open(("/passk-" + TOK).encode(), 0o2) >= 0:
        left.append("mqueue")
    if planted_processes():
        left.append("processes %s" % planted_processes())
    return left
'''


def _link(index: int) -> ZygoteLink:
    box = LocalSandbox(SandboxSettings(workers=1, invocation_dir=ROOT, rootdir=ROOT))
    box.drop_user = NOBODY
    box.python, box.version = candidate_python(NOBODY)
    argv, env = box.zygote_command(index)
    link = ZygoteLink(argv, env, f"test zygote {index}", index=index)
    link.start()
    return link


def _open(link: ZygoteLink, code: str) -> CandidateProcess:
    return CandidateProcess(link, {"code": textwrap.dedent(code), "timeout": 10, "memory": None,
                                   "output_cap": 4000}, 10)


@pytest.fixture
def fields():
    tok = secrets.token_hex(6)
    yield {"tok": tok, "key": 0x7D000000 + int(tok[:5], 16)}
    # A zygote killed by a failing test leaves its run's detached process behind: end it here.
    name = ("p" + tok)[:15]
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/comm") as fh:
                if entry.isdigit() and fh.read().strip() == name:
                    os.kill(int(entry), 9)
        except OSError:
            pass


@pytest.fixture
def links():
    made = [_link(0), _link(1)]
    yield made
    for link in made:
        link.kill()


def test_nothing_a_run_leaves_reaches_the_next_run_of_its_zygote(links, fields) -> None:
    first, other = links
    plant = _open(first, PLANT.format(**fields))
    planted = plant.call({"name": "plant"}, (), {})
    folders = [d for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock") if os.path.isdir(d)]
    assert planted == folders + ["msg", "shm", "sem", "mqueue", "process"], planted
    # While the planting run is alive: another zygote's run sees none of it, nor does this host.
    assert _open(other, PROBE.format(**fields)).call({"name": "probe"}, (), {}) == []
    assert not [d for d in folders if os.path.lexists(os.path.join(d, "passk-" + fields["tok"]))]
    plant.end()
    # After the planting run has ended, the next run of the same zygote (the same user) finds nothing.
    probe = _open(first, PROBE.format(**fields))
    assert probe.call({"name": "probe"}, (), {}) == []
    probe.end()


def test_the_probe_finds_plants_of_a_live_run(links, fields) -> None:
    """Control: the probe is able to see every plant (run inside the same zygote while the planting
    process is alive it cannot be, since runs are one at a time: so read the plants' own view)."""
    first, _ = links
    proc = _open(first, PLANT.format(**fields) + PROBE.format(**fields).replace(COMMON.format(**fields), ""))
    planted = proc.call({"name": "plant"}, (), {})
    left = proc.call({"name": "probe"}, (), {})
    proc.end()
    assert "msg" in planted and "mqueue" in planted and "process" in planted, planted
    assert {"msg", "shm", "sem", "mqueue"} <= set(left), left
    assert any(x.endswith("passk-" + fields["tok"]) for x in left), left
    assert any(x.startswith("processes") for x in left), left


def test_what_a_run_detached_dies_with_its_killed_zygote_s_successor(fields) -> None:
    """A zygote killed outright (as a verifier replaces a zygote that hangs) cannot end its run;
    the process the run detached must not live on to meet the next zygote's runs, which get the
    same user."""
    first = _link(0)
    try:
        plant = _open(first, PLANT.format(**fields))
        assert "process" in plant.call({"name": "plant"}, (), {})
    finally:
        first.kill()  # SIGKILL: no clean-up by the zygote
    successor = _link(0)
    try:
        probe = _open(successor, PROBE.format(**fields))
        left = probe.call({"name": "probe"}, (), {})
        probe.end()
    finally:
        successor.kill()
    assert not [x for x in left if x.startswith("processes")], left


STAMP = '''
import os
FOLDERS = [d for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock") if os.path.isdir(d)]

def stamp():
    """Write into each folder's modification time (set to now: anyone who may write there may), and
    say what it now reads: the moment chosen is the message (a run can wait for the moment it wants)."""
    for d in FOLDERS:
        name = os.path.join(d, "passk-stamp")
        open(name, "w").close()
        os.unlink(name)  # nothing left in the folder but its times
        os.utime(d)
    return [(os.stat(d).st_mtime_ns, os.stat(d).st_atime_ns) for d in FOLDERS]

def read():
    return [(os.stat(d).st_mtime_ns, os.stat(d).st_atime_ns) for d in FOLDERS]
'''


def test_a_run_s_folder_times_do_not_reach_the_next_run(links) -> None:
    """The scratch folders' own times are a channel too: a run that creates and removes a file, or
    sets the times to now, leaves nothing to empty, but the moment it chose stays in the folder's
    modification time for the next run of the zygote to read (tens of bits per run, from a correct
    candidate that saw the test's inputs to a later one). After every run they are set back."""
    first, _ = links
    before = _open(first, STAMP)
    seen = before.call({"name": "read"}, (), {})
    before.end()
    writer = _open(first, STAMP)
    written = writer.call({"name": "stamp"}, (), {})
    writer.end()
    assert all(w[0] != s[0] for w, s in zip(written, seen)), (written, seen)  # the stamp was made
    reader = _open(first, STAMP)
    after = reader.call({"name": "read"}, (), {})
    reader.end()
    assert not [w for w, a in zip(written, after) if w[0] == a[0] or w[1] == a[1]], (written, after)
