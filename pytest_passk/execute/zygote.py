"""The candidate side: a small pre-loaded process that forks one fresh process per candidate run.

This file is self-contained (standard library only, Python 3.8+) because it is what runs inside the
sandbox: the Docker sandbox starts it as ``python3 -c BOOTSTRAP <this file's source>``
(:func:`pytest_passk.execute.zygote_args`) in a container that holds nothing of the host (no
pytest, no suite, no test data, no site-packages), the local sandbox as a plain subprocess. It holds no secret: everything a candidate process could learn from it is public.

Frames on the control stream (the zygote's stdin/stdout), both ways: a header ``kind, run, length``
(``!BII``) and ``length`` bytes of payload.

    verifier -> zygote   SPAWN  run  {code, timeout, memory, seed, output_cap}   fork a candidate process
                         REQ    run  request (JSON, see below)                   relayed to that process
                         END    run  - or q                                       the run is over: kill it (q: quietly,
                                                                                   no EXIT wanted)
    zygote -> verifier   READY  0    {pid, python, posture}                      once, at start
                         REPLY  run  reply (JSON)                                 one per REQ, in order
                         EXIT   run  {reason, status, message, output}            the process is gone

The candidate process speaks to the zygote over two pipes of its own, made for that run: requests in,
``(length, JSON)`` replies out. The zygote relays only one reply per outstanding request and tags it
with the run, so nothing a run leaves behind can answer for another run; after the run every process
it started is killed and its scratch files, System V IPC objects and keyrings are removed.

Values cross as tagged JSON (:func:`encode` / :func:`decode`): JSON's own None, bool, int, float, str
and list, and ``{"t": [...]}`` tuple, ``{"s": [...]}`` set, ``{"f": [...]}`` frozenset, ``{"d": [[k,
v], ...]}`` dict, ``{"b": base64}`` bytes, ``{"y": base64}`` bytearray, ``{"c": [re, im]}`` complex,
``{"i": hex}`` an int too long for decimal, ``{"h": id, "n": type name}`` a handle to an object that is
not data and stays in the candidate process.
"""
import base64
import json
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback

import ctypes
import linecache
import types

# Pre-loaded for candidates: forking a process that already imported them is cheaper than importing.
import bisect  # noqa: F401
import collections  # noqa: F401
import functools  # noqa: F401
import heapq  # noqa: F401
import itertools  # noqa: F401
import math  # noqa: F401
import re  # noqa: F401
import string  # noqa: F401
import typing  # noqa: F401

HEADER = struct.Struct("!BII")
#: The length before every request and reply between a candidate process and the verifier.
LENGTH = struct.Struct("!I")
#: Compact JSON, one encoder for every request and reply (``json.dumps`` with options builds one per call).
COMPACT_JSON = json.JSONEncoder(separators=(",", ":")).encode
SPAWN, REQ, END, READY, REPLY, EXIT, SPARE = 1, 2, 3, 10, 11, 12, 13
CONTROL_TOKEN = b"\0" * 8  #: what the zygote's own control connection says first
#: Largest frame either side accepts; a bigger reply fails the run.
MAX_FRAME = 32 << 20
MAX_DEPTH = 100  #: nesting of a value: a deeper one is not data (hashing it could overflow the C stack)
MAX_NODES = 1 << 20
MAX_EXTENSIONS = 3  #: a run starved of CPU by a busy host gets its timeout again, up to this often
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue")
_HERE = globals().get("__file__", "<string>")  # run as ``python -c SOURCE`` inside containers
NOBODY = (65534, 65534)


# -- values ------------------------------------------------------------------------------------

class NotData(Exception):
    """The value is not plain data."""


#: How a subclass of a builtin becomes the builtin itself, its real contents read through the
#: builtin's own slots (never the subclass's overrides). bool comes before int, its base.
_AS_BUILTIN = (
    (bool, bool.__bool__),
    (int, int.__int__),
    (float, float.__float__),
    (str, str.__str__),
    (tuple, lambda v: tuple(tuple.__iter__(v))),
    (list, lambda v: list(list.__iter__(v))),
    (dict, lambda v: dict(dict.items(v))),
    (frozenset, lambda v: frozenset(frozenset.__iter__(v))),
    (set, lambda v: set(set.__iter__(v))),
    (bytes, lambda v: bytes(memoryview(v))),
    (bytearray, lambda v: bytes(memoryview(v))),
    (complex, lambda v: complex(complex.real.__get__(v), complex.imag.__get__(v))),
)
_BUILTIN_TYPES = frozenset(t for t, _ in _AS_BUILTIN) | {type(None)}


#: Ints at least this large (either sign) cross as ``{"i": hex}``: decimal text that long is slow to parse.
HEX_INT = 1 << 4000


def is_plain_scalar(v):
    """None, bool, str, float, or an int below :data:`HEX_INT`: a value that is its own encoding."""
    t = type(v)
    return v is None or t is bool or t is str or t is float or (t is int and -HEX_INT < v < HEX_INT)


def encode(value, on_object=None):
    """``value`` as a JSON-ready structure. An object that is not data becomes what
    ``on_object(obj)`` returns (a handle); without it, or if it raises, :class:`NotData`. A subclass
    of a builtin becomes the builtin, with its real contents (:data:`_AS_BUILTIN`)."""
    budget = [MAX_NODES]

    def enc(v, depth):
        budget[0] -= 1
        if budget[0] < 0:
            raise NotData("too many objects")
        if depth > MAX_DEPTH:
            raise NotData("nested deeper than %d" % MAX_DEPTH)
        t = type(v)
        if t not in _BUILTIN_TYPES:
            for base, as_builtin in _AS_BUILTIN:
                if isinstance(v, base):
                    v = as_builtin(v)
                    t = type(v)
                    break
            else:
                if on_object is None:
                    raise NotData("%s is not data" % t.__name__)
                return on_object(v)
        if v is None or t is bool or t is str or t is float:
            return v
        if t is int:
            return v if -HEX_INT < v < HEX_INT else {"i": format(v, "x")}
        if t is list:
            return [enc(x, depth + 1) for x in v]
        if t is tuple:
            return {"t": [enc(x, depth + 1) for x in v]}
        if t is dict:
            return {"d": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()]}
        if t is set:
            return {"s": [enc(x, depth + 1) for x in v]}
        if t is frozenset:
            return {"f": [enc(x, depth + 1) for x in v]}
        if t is bytes:
            return {"b": base64.b64encode(v).decode()}
        if t is bytearray:
            return {"y": base64.b64encode(v).decode()}
        return {"c": [v.real, v.imag]}  # complex

    return enc(value, 0)


def loads(raw):
    """JSON from untrusted bytes: size bounded before parsing, deep nesting refused (ValueError)."""
    if len(raw) > MAX_FRAME:
        raise ValueError("message of %d bytes is too large" % len(raw))
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("message nested too deeply") from None


def decode(tree, handle=None):
    """Build plain data from ``tree`` (parsed tagged JSON) without running any code it names.

    Depth and size are bounded as objects are built, before any is hashed; anything unexpected
    raises ValueError. ``handle(id, type_name)`` turns a handle into the caller's proxy (by
    default handles are refused)."""
    budget = [MAX_NODES]

    def dec(v, depth):
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError("too many objects")
        if depth > MAX_DEPTH:
            raise ValueError("value nested deeper than %d" % MAX_DEPTH)
        t = type(v)
        if v is None or t in (bool, int, float, str):
            return v
        if t is list:
            return [dec(x, depth + 1) for x in v]
        if t is not dict or len(v) not in (1, 2):
            raise ValueError("not a value: %.80r" % (v,))
        if len(v) == 2:
            if handle is None or set(v) != {"h", "n"} or type(v["h"]) is not int or type(v["n"]) is not str:
                raise ValueError("not a value: %.80r" % (v,))
            return handle(v["h"], v["n"][:200])
        (tag, body), = v.items()
        if tag in ("t", "s", "f", "d", "c") and type(body) is not list:
            raise ValueError("malformed %s" % tag)
        if tag == "t":
            return tuple(dec(x, depth + 1) for x in body)
        if tag == "s":
            return set(dec(x, depth + 1) for x in body)
        if tag == "f":
            return frozenset(dec(x, depth + 1) for x in body)
        if tag == "d":
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("malformed dict item")
                out[dec(pair[0], depth + 1)] = dec(pair[1], depth + 1)
            return out
        if tag == "c":
            if len(body) != 2 or not all(type(x) in (int, float) for x in body):
                raise ValueError("malformed complex")
            return complex(body[0], body[1])
        if tag in ("b", "y", "i"):
            if type(body) is not str:
                raise ValueError("malformed %s" % tag)
            if tag == "i":
                return int(body, 16)
            data = base64.b64decode(body, validate=True)
            return data if tag == "b" else bytearray(data)
        raise ValueError("unknown tag %.20r" % tag)

    try:
        return dec(tree, 0)
    except (TypeError, RecursionError, ValueError, base64.binascii.Error) as exc:  # unhashable keys, ...
        raise ValueError("not plain data: %s" % exc) from None


# -- frames ------------------------------------------------------------------------------------

def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def send_frame(fd, kind, run, payload=b""):
    write_all(fd, HEADER.pack(kind, run, len(payload)) + payload)


class FrameReader:
    """Frames from a file descriptor, read as bytes arrive (``feed``) or blocking (``read``)."""

    def __init__(self, fd, limit=MAX_FRAME):
        self.fd = fd
        self.limit = limit
        self.buf = bytearray()

    def feed(self):
        """Read what is there; False at end of file."""
        chunk = os.read(self.fd, 1 << 16)
        self.buf += chunk
        return bool(chunk)

    def complete(self):
        """A whole frame is buffered."""
        if len(self.buf) < HEADER.size:
            return False
        return len(self.buf) >= HEADER.size + HEADER.unpack_from(self.buf)[2]

    def next(self):
        """The next complete frame ``(kind, run, payload)``, or None; ValueError if oversized."""
        if len(self.buf) < HEADER.size:
            return None
        kind, run, length = HEADER.unpack_from(self.buf)
        if length > self.limit:
            raise ValueError("frame of %d bytes" % length)
        end = HEADER.size + length
        if len(self.buf) < end:
            return None
        payload = bytes(self.buf[HEADER.size:end])
        del self.buf[:end]
        return kind, run, payload



# -- the candidate process ---------------------------------------------------------------------

def _describe_exception(exc):
    cls = type(exc)
    try:
        message = str(exc)
    except BaseException:
        message = "(its message could not be shown)"
    try:
        tb = traceback.extract_tb(exc.__traceback__)
        frames = [f for f in tb if f.filename not in (_HERE, "<string>")]
        text = "".join(traceback.format_list(frames[-10:]))
    except BaseException:
        text = ""
    names = []
    for klass in cls.__mro__:
        name = getattr(klass, "__name__", "?")
        names.append(name if isinstance(name, str) else "?")
    return {"type": names[0], "mro": names[:20], "builtin": cls.__module__ == "builtins",
            "message": message[:4000], "traceback": text[-8000:]}


#: Built once in the zygote, not in every candidate process (``json.loads`` of bytes detects the
#: encoding and matches whitespace first).
_SCAN_JSON = json.decoder.JSONDecoder().scan_once


def _request(payload):
    """A request or spec from the verifier (compact JSON, as its ``json.dumps`` wrote it)."""
    text = payload.decode("utf-8", "surrogatepass")
    try:
        value, end = _SCAN_JSON(text, 0)
    except StopIteration as exc:
        raise ValueError("malformed request at %d" % exc.value) from None
    if end != len(text):
        raise ValueError("malformed request: extra data at %d" % end)
    return value


class Candidate:
    """Runs inside the candidate process: executes the program and answers requests about it."""

    def __init__(self, spec, req_fd, rep_fd):
        self.spec = spec
        self.code = spec["code"] if spec else ""
        self.req_fd = req_fd
        self.req_buf = bytearray()
        self.rep_fd = rep_fd
        self.handles = []
        self.module = None
        self.load_error = None
        self.path = None  #: the program as a file, written for .run()

    def load(self):
        filename = "candidate.py"
        linecache.cache[filename] = (len(self.code), None, self.code.splitlines(True), filename)
        mod = types.ModuleType("candidate")
        mod.__file__ = filename
        sys.modules["candidate"] = mod
        self.module = mod
        support = (self.spec or {}).get("support")
        try:
            if support:  # the suite's helpers (e.g. a TreeNode class), there before the program
                linecache.cache["support.py"] = (len(support), None, support.splitlines(True), "support.py")
                exec(compile(support, "support.py", "exec"), mod.__dict__)
            exec(compile(self.code, filename, "exec"), mod.__dict__)
        except BaseException as exc:  # reported to the test at its first use of the program
            self.load_error = _describe_exception(exc)

    def reply(self, **fields):
        try:
            data = COMPACT_JSON(fields).encode()
        except (TypeError, ValueError) as exc:
            data = json.dumps({"raised": _describe_exception(exc)}).encode()
        write_all(self.rep_fd, LENGTH.pack(len(data)) + data)

    def keep(self, obj):
        """An object that is not data stays here; the test gets a handle to it."""
        self.handles.append(obj)
        name = getattr(type(obj), "__qualname__", "?")
        return {"h": len(self.handles) - 1, "n": name if isinstance(name, str) else "?"}

    def value(self, v):
        if is_plain_scalar(v):
            return self.reply(v=v)  # its own encoding
        try:
            return self.reply(v=encode(v, self.keep))
        except NotData as exc:
            return self.reply(raised={"type": "ValueError", "mro": ["ValueError", "Exception", "BaseException",
                                                                   "object"], "builtin": True,
                                      "message": "the candidate's value cannot be sent back: %s" % exc,
                                      "traceback": ""})

    def target(self, req):
        if "h" in req:
            return self.handles[req["h"]]
        if "name" in req:
            if req["name"] not in vars(self.module):
                raise _NoSuchName(req["name"])
            return vars(self.module)[req["name"]]
        return self.module

    def next_request(self):
        """The next request the zygote relayed (``!I`` length, then JSON), or None at its end."""
        buf = self.req_buf
        while True:
            if len(buf) >= 4:
                (length,) = LENGTH.unpack_from(buf)
                if len(buf) >= 4 + length:
                    payload = bytes(buf[4:4 + length])
                    del buf[:4 + length]
                    return payload
            chunk = os.read(self.req_fd, 1 << 16)
            if not chunk:
                return None
            buf += chunk

    def serve(self):
        while True:
            payload = self.next_request()
            if payload is None:
                return
            op = None
            try:
                req = _request(payload)
                op = req["op"]
                if self.module is None and op != "run":
                    self.load()  # only programs used as modules are executed as one
                if self.load_error is not None and op != "run":
                    self.reply(load_error=self.load_error)
                elif op == "load":
                    self.reply(v=None)
                elif op == "call":
                    fn = self.target(req)
                    if payload.count(b"{") == 1:  # plain JSON arguments, no tags, no handles
                        args, kwargs = req["a"], {}
                    else:
                        args = _resolve(decode(req["a"], _HandleArg), self.handles)
                        kwargs = _resolve(decode(req["k"], _HandleArg), self.handles) if req.get("k") else {}
                    self.value(fn(*args, **kwargs))
                elif op == "get":
                    self.value(self.target(req))
                elif op == "attr":
                    self.value(getattr(self.target(req), req["attr"]))
                elif op == "iter":
                    self.value(iter(self.target(req)))
                elif op == "next":
                    self.value(next(self.target(req)))
                elif op == "namespace":
                    self.value({k: v for k, v in list(vars(self.module).items())
                                if not k.startswith("__") and type(v).__name__ != "module"})
                elif op == "run":
                    self.value(self.run_program(req))
                else:
                    raise ValueError("unknown request %r" % (op,))
            except _NoSuchName as exc:
                self.reply(missing=exc.args[0])
            except StopIteration as exc:
                if op == "next" and type(exc) is StopIteration:
                    self.reply(stop=True)  # the iterator is exhausted: the only place an end is an answer
                else:
                    self.reply(raised=_describe_exception(exc))
            except BaseException as exc:
                self.reply(raised=_describe_exception(exc))

    def write_file(self):
        if self.path is None:
            import tempfile

            folder = tempfile.mkdtemp(prefix="candidate-")
            self.path = os.path.join(folder, "candidate.py")
            with open(self.path, "w", encoding="utf-8", errors="surrogatepass") as fh:
                fh.write(self.code)
        return self.path

    def run_program(self, req):
        import subprocess

        data = decode(req["input"])
        timeout = req.get("timeout")
        try:
            proc = subprocess.run([sys.executable, self.write_file()] + [str(a) for a in req["args"]],
                                  input=data, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            return {"timeout": True, "stdout": exc.stdout or b"", "stderr": exc.stderr or b""}
        return {"returncode": proc.returncode, "stdout": proc.stdout[:MAX_FRAME // 4],
                "stderr": proc.stderr[:1 << 16]}


class _NoSuchName(Exception):
    pass


def _resolve(value, handles):
    """Arguments name handles as ``{"h": id}`` markers after decoding: put the objects back."""
    if isinstance(value, _HandleArg):
        return handles[value.index]
    if type(value) is list:
        return [_resolve(v, handles) for v in value]
    if type(value) is tuple:
        return tuple(_resolve(v, handles) for v in value)
    if type(value) is dict:
        return {k: _resolve(v, handles) for k, v in value.items()}
    return value


class _HandleArg:
    __slots__ = ("index",)

    def __init__(self, index, _name=""):
        self.index = index


#: The folders every user may write on a usual Linux host (those that are real folders here).
_SHARED_WRITABLE = [f.encode() for f in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")
                    if os.path.isdir(f) and not os.path.islink(f)]


def private_scratch():
    """Outside a container, as root: give this zygote (and the candidate processes it forks)
    scratch space and IPC of its own, a new mount and IPC namespace with fresh tmpfs on /tmp,
    /var/tmp, /dev/shm and /run/lock and its own POSIX message queues. No other zygote's runs and
    nothing else on the host see what a run writes there; the zygote empties it after every run
    (:func:`clean_scratch`, as in a container), so nothing reaches the next run either.

    Returns the folders to empty after a run (the scratch folders and the message queues), or
    None if the namespaces could not be set up."""
    try:
        libc = _libc()
        if libc.unshare(0x00020000 | 0x08000000) != 0:  # CLONE_NEWNS | CLONE_NEWIPC
            return None
        libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None)  # MS_REC | MS_PRIVATE
        for folder in _SHARED_WRITABLE:
            if libc.mount(b"tmpfs", folder, b"tmpfs", 0x2 | 0x4, b"size=256m,mode=1777") != 0:
                return None
        # The new IPC namespace's POSIX message queues outlive the run that made them: they must be
        # listed to be removed, so the namespace's queue file system is mounted (where the host has
        # no /dev/mqueue, on a root-owned folder in the private /dev/shm or /tmp, which a candidate
        # can neither move nor remove).
        queues = "/dev/mqueue"
        if not os.path.isdir(queues):
            private = [f.decode() for f in _SHARED_WRITABLE if f in (b"/dev/shm", b"/tmp")]
            if not private:
                return None
            queues = os.path.join(private[0], ".passk-mqueue")
            os.mkdir(queues, 0o755)
        if libc.mount(b"mqueue", queues.encode(), b"mqueue", 0x2 | 0x4 | 0x8, None) != 0:
            return None
        return [f.decode() for f in _SHARED_WRITABLE] + [queues]
    except (OSError, AttributeError):
        return None


#: Top-level folders of a Debian-like host that hold the system, not anybody's data or work.
_SYSTEM = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "sys", "tmp", "usr", "var"}


def hide_host(named, connect=None):
    """Outside a container, as root, in this zygote's own mount namespace (:func:`private_scratch`):
    empty the folders that hold the evaluation for this zygote and its candidates: the ones named
    (the suite's root, the invocation folder, the home, the host's site-packages), every top-level
    folder that is not the system's (/work, /srv, /opt, /home, /root, ...) and this Python's own
    site-packages, as in a container. The folders this Python needs (its prefix, standard library,
    the candidates' packages) are bound back in. Returns the folders hidden."""
    import site

    real = os.path.realpath
    sites = {real(p) for p in site.getsitepackages() + [site.getusersitepackages()]}
    keep = {real(p) for p in sys.path if p and os.path.isdir(p) and real(p) not in sites}
    keep |= {real(os.path.dirname(real(sys.executable))), real(sys.base_prefix), real(sys.prefix)}
    hidden = {real(p) for p in named if p} | sites
    hidden |= {"/" + name for name in os.listdir("/") if name not in _SYSTEM and os.path.isdir("/" + name)}
    anchors = {"/", *("/" + name for name in _SYSTEM)}

    def inside(path, folder):
        return path == folder or path.startswith(folder.rstrip("/") + "/")

    # Never a system folder itself, and never what holds the verifier's socket.
    hidden = sorted((h for h in hidden if h not in anchors and h not in keep
                     and not (connect and inside(real(connect), h))),
                    key=lambda h: (h.count("/"), h))
    libc = _libc()
    try:
        fds = {k: os.open(k, os.O_PATH | os.O_DIRECTORY) for k in keep if os.path.isdir(k)}
    except OSError:
        return []
    try:
        done = []
        for folder in hidden:
            if not os.path.isdir(folder) or os.path.islink(folder):
                continue  # gone already (inside a folder hidden before) or a link to elsewhere
            # MS_NOSUID | MS_NODEV | MS_NOEXEC; root's 0755 tmpfs: candidates can neither read nor write
            if libc.mount(b"tmpfs", folder.encode(), b"tmpfs", 0x2 | 0x4 | 0x8, b"size=64k,mode=755") != 0:
                continue
            done.append(folder)
            for kept, fd in fds.items():
                if inside(kept, folder):
                    os.makedirs(kept, 0o755, exist_ok=True)
                    libc.mount(f"/proc/self/fd/{fd}".encode(), kept.encode(), None, 0x1000 | 0x4000, None)  # MS_BIND | MS_REC
        return done
    finally:
        for fd in fds.values():
            os.close(fd)


def candidate_main(req_fd, rep_fd, out_fd, drop_user, scratch=None, own_user=False):
    """The forked candidate process. It is forked ahead of its run: it drops its privileges, then
    waits for its spec (the program and its limits), then serves requests until it is killed.
    ``own_user``: outside a container, as root, with a user of its zygote's own."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    low, high = sorted((req_fd, rep_fd))
    os.closerange(3, low)  # every inherited descriptor but the run's own channel
    os.closerange(low + 1, high)
    os.closerange(high + 1, 1 << 16)
    # (PR_SET_NO_NEW_PRIVS is inherited from the zygote, which set it once: main().)
    if drop_user is not None:
        os.setgroups([])
        os.setgid(drop_user[1])
        os.setuid(drop_user[0])
        _clear_user_keyrings()  # nothing an earlier run of this user stored survives into this one
    _new_session_keyring()
    if scratch:
        os.environ["TMPDIR"] = scratch
        if "tempfile" in sys.modules:
            sys.modules["tempfile"].tempdir = None
    try:
        os.chdir(scratch or "/tmp")
    except OSError:
        pass
    cand = Candidate(None, req_fd, rep_fd)
    first = cand.next_request()
    if first is None:
        return
    spec = _request(first)
    cand.spec, cand.code = spec, spec["code"]
    limits = [(resource.RLIMIT_CPU, int(spec["timeout"] * (1 + MAX_EXTENSIONS)) + 2)]  # (no core files: main())
    if spec.get("memory"):
        limits.append((resource.RLIMIT_AS, int(spec["memory"])))
    for which, value in limits:
        try:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else hard))
        except (ValueError, OSError):
            pass
    if "random" in sys.modules:  # fresh for every run, whatever was inherited
        sys.modules["random"].seed(os.urandom(16))
    cand.serve()  # sys.stdout and sys.stderr (line-buffered by main()) now write to the run's output


_LIBC = []


def _libc():
    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
try:  # resolved once here, so a candidate process only makes the calls
    _SYSCALL = _libc().syscall
except (OSError, AttributeError):
    _SYSCALL = None


def _new_session_keyring():
    """A run gets an anonymous session keyring of its own (KEYCTL_JOIN_SESSION_KEYRING)."""
    if _SYS_KEYCTL is not None and _SYSCALL is not None:
        _SYSCALL(_SYS_KEYCTL, 1, None)


def _clear_user_keyrings():
    """Empty the candidates' user, user-session and persistent keyrings (KEYCTL_CLEAR)."""
    if _SYS_KEYCTL is not None and _SYSCALL is not None:
        _SYSCALL(_SYS_KEYCTL, 7, -4)
        _SYSCALL(_SYS_KEYCTL, 7, -5)
        persistent = _SYSCALL(_SYS_KEYCTL, 22, -1, -3)  # KEYCTL_GET_PERSISTENT, linked into @s
        if persistent > 0:
            _SYSCALL(_SYS_KEYCTL, 7, persistent)


# -- warming up ----------------------------------------------------------------------------------

#: A program of the zygote's own (never a candidate's), in the style candidates are written in.
_WARM_UP = '''
from typing import Dict, List, Optional, Tuple
import math


class Counter:
    """Counts things."""

    def __init__(self, items: List[int], start: int = 0) -> None:
        self.items = list(items)
        self.total = start

    def add(self, value, *args, **kwargs):
        self.total += value
        return self


def process(numbers: List[float], threshold: float = 0.5) -> Optional[Tuple[int, str]]:
    """ Return pairs, e.g.
    >>> process([1.0, 2.0], 0.3)
    (1, 'x')
    """
    result, seen = [], set()
    for i, x in enumerate(numbers):
        if x < threshold and not (i % 2 == 0 or x in seen):
            result.append(int(x) ** 2 // 3)
        elif x >= threshold:
            continue
        else:
            seen.add(x)
    while result and len(result) > 10:
        result.pop()
    squares = {k: v for k, v in zip("abc", range(3))}
    words = [w.upper() for w in "a b c".split() if w]
    total = sum(n * 2 for n in range(10)) + abs(-1) - max(1, 2) + min([3, 4])
    text = f"{total:>5} {words!r} {squares}" + str(round(math.sqrt(2.0), 3))
    try:
        value = numbers[0] / len(numbers)
    except (ZeroDivisionError, IndexError) as exc:
        raise ValueError("empty") from exc
    finally:
        pass
    key = lambda pair: (pair[1], -pair[0])
    assert isinstance(text, str), "text"
    return sorted([(1, "x"), (2, "y")], key=key, reverse=True)[0] if value else None
'''

#: What the warm-up's candidate path serves: small, since it is compiled once per round.
_WARM_UP_SERVED = '''
class Counter:
    def __init__(self, items):
        self.items = list(items)


def process(numbers, threshold=0.5):
    return numbers[0] < threshold  # [] raises: a traceback


def pairs(numbers):
    return [(i, str(x)) for i, x in enumerate(sorted(numbers))]
'''


def warm_up():
    """Take, once in the zygote, the steps every candidate process takes with a program of its own:
    parse a spec, compile and run the program, encode a reply, then the candidate's path itself
    (:class:`Candidate` serving requests over pipes). The first compile in a process costs
    about four times a later one (in a forked child: 1.6 ms and ~285 copied pages against 0.4 ms and
    ~135), and each candidate process would otherwise pay that first time again."""
    spec = _request(json.dumps({"code": _WARM_UP, "timeout": 3.0, "memory": None, "output_cap": 16384}).encode())
    namespace = {"__name__": "warm_up"}
    exec(compile(spec["code"], "warm-up.py", "exec"), namespace)
    value = namespace["process"]([0.25, 0.75, 0.5], threshold=0.6)
    COMPACT_JSON({"v": encode([value, (1, 2.5), {"k": {1, 2}}, b"x", None])})
    namespace.clear()
    # A candidate process's own path, many times over: its code objects are then quickened and
    # specialized here, once, instead of being written to (and so copied) in every forked process.
    spec = dict(spec, code=_WARM_UP_SERVED)
    calls = [{"op": "call", "name": "process", "a": [[0.25, 0.75, 0.5], 0.6], "k": None},
             {"op": "call", "name": "process", "a": [[1.0, 2.0], 0.1], "k": None},
             {"op": "call", "name": "process", "a": [[], 0.5], "k": None},  # raises: a traceback
             {"op": "call", "name": "process", "a": {"t": [[0.25]]}, "k": {"d": [["threshold", 0.6]]}},
             {"op": "call", "name": "pairs", "a": [[3, 1, 2]], "k": None},
             {"op": "get", "name": "Counter"},
             {"op": "call", "h": 0, "a": [[1, 2]], "k": None},
             {"op": "call", "name": "nothing", "a": [], "k": None}]
    for _ in range(10):
        frames = [json.dumps(spec).encode()] + [COMPACT_JSON(c).encode() for c in calls]
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        try:
            write_all(req_w, b"".join(LENGTH.pack(len(f)) + f for f in frames))
            os.close(req_w)
            req_w = None
            cand = Candidate(None, req_r, rep_w)
            first = cand.next_request()
            cand.spec = _request(first)
            cand.code = cand.spec["code"]
            cand.serve()
            os.read(rep_r, 1 << 16)
        finally:
            for fd in (req_r, req_w, rep_r, rep_w):
                if fd is not None:
                    os.close(fd)
            sys.modules.pop("candidate", None)
            linecache.cache.pop("candidate.py", None)


# -- process supervision -----------------------------------------------------------------------
# Hand-written /proc reading on purpose: this runs in the image's bare Python, where psutil is not.

def _stat(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_table():
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                table[int(entry)] = fields
    return table


def descendants(root):
    table = process_table()
    children = {}
    for p, fields in table.items():
        children.setdefault(int(fields[1]), []).append(p)
    found, todo = [], list(children.get(root, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found, table


_WAITING_FOR_VERIFIER = ("unix_stream_read", "anon_pipe_read", "pipe_read", "pipe_wait")


def starved(me, pid, timeout):
    """Whether a run past its deadline should get more time, the delay not being the candidate's:
    its process is runnable yet the run (it and all it started) got less than half its timeout in
    CPU (a busy host), or it is waiting for the verifier's next request (a busy verifier)."""
    fields = _stat(pid)
    if fields is None or fields[0] not in (b"R", b"S"):
        return False
    if fields[0] == b"S":
        try:
            with open("/proc/%d/wchan" % pid) as fh:
                wchan = fh.read()
        except OSError:
            return False
        if not wchan.startswith(_WAITING_FOR_VERIFIER):
            return False
    found, table = descendants(me)
    ticks = sum(int(table[p][11]) + int(table[p][12]) + int(table[p][13]) + int(table[p][14])
                for p in found if p in table)
    return ticks / os.sysconf("SC_CLK_TCK") < timeout / 2


def process_state(pid):
    fields = _stat(pid)
    if fields is None:
        return ""
    try:
        with open("/proc/%d/wchan" % pid, "rb") as fh:
            wchan = fh.read().decode(errors="replace").strip()
    except OSError:
        wchan = ""
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    state = {"R": "running", "S": "sleeping", "D": "in uninterruptible wait", "T": "stopped",
             "Z": "exited"}.get(fields[0].decode(), fields[0].decode())
    where = " in %s" % wchan if wchan and wchan != "0" and state != "running" else ""
    return "the candidate was %s%s, %.2f s of CPU used" % (state, where, cpu)


def kill_everything(me, pid, sole_tenant):
    """Kill the run's process (``pid``, or none when -1) and everything it started, however it
    detached itself."""
    if pid > 0:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    # This zygote is a subreaper: whatever the run started and left behind is now its child. Only
    # when something is left is /proc searched (the usual run leaves nothing).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            while True:
                done, _ = os.waitpid(-1, os.WNOHANG)
                if done == 0:
                    break
        except ChildProcessError:
            if not sole_tenant:
                return
        if sole_tenant:  # the container's PID namespace holds only init, this zygote and the run
            left = [p for p, f in process_table().items() if p not in (1, me) and f[0] != b"Z"]
            if left:
                try:  # every process but init and this one, in one sweep of the kernel (fork bombs)
                    os.kill(-1, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        else:
            left = descendants(me)[0]
        if not left:
            return
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.001)


#: NoNewPrivs as the zygote found it, before setting it itself: the posture check reports what the
#: container gives (a container started without no-new-privileges is refused, not mended here).
GIVEN_NO_NEW_PRIVS = None


def _no_new_privs():
    """PR_SET_NO_NEW_PRIVS: no setuid program gives a candidate process privileges back. Set once
    here, in the zygote: every process it forks inherits it, and it cannot be unset."""
    global GIVEN_NO_NEW_PRIVS
    GIVEN_NO_NEW_PRIVS = _proc_status().get("NoNewPrivs")
    try:
        _libc().prctl(38, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _not_dumpable():
    """PR_SET_DUMPABLE 0: a process of the same user can no longer open this one's /proc files
    (descriptors, memory) or trace it; candidate processes inherit it."""
    try:
        _libc().prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _lasting_limits(own_user):
    """Limits every candidate process inherits, set once here: no core files; outside a container
    with a user of this zygote's own (``own_user``), that user's process count stands in for a
    pids limit, and files and descriptors are bounded as in a container (none binds root, this
    zygote, which the count does not stop and which opens few descriptors and writes no file)."""
    limits = [(resource.RLIMIT_CORE, 0)]
    if own_user:
        limits += [(resource.RLIMIT_NPROC, 256), (resource.RLIMIT_FSIZE, 64 << 20), (resource.RLIMIT_NOFILE, 1024)]
    for which, value in limits:
        try:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def kill_user_processes(user):
    """Kill every process of the candidates' user ``user`` (uid, gid), as that user: signals
    reach no other user's processes."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
            os.kill(-1, signal.SIGKILL)  # every process this user may signal but this one
        except BaseException:
            pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def become_subreaper():
    try:
        _libc().prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def sysv_ipc_objects(owner=None):
    """System V shared memory, message queues and semaphores (of ``owner`` only, if given)."""
    found = []
    for kind, ctl in (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl")):
        try:
            fd = os.open("/proc/sysvipc/" + kind, os.O_RDONLY)
        except OSError:
            continue
        try:
            data = b""
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                data += chunk
        except OSError:
            continue
        finally:
            os.close(fd)
        lines = data.decode(errors="replace").splitlines()
        if len(lines) < 2:  # the header only (after most runs)
            continue
        header = lines[0].split()
        uid_col = header.index("uid") if "uid" in header else None
        for row in lines[1:]:
            cols = row.split()
            if len(cols) < 2:
                continue
            if owner is not None and (uid_col is None or len(cols) <= uid_col or int(cols[uid_col]) != owner):
                continue
            found.append((ctl, int(cols[1])))
    return found


def _times(path):
    """A folder's (access, modification) times in ns, or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_atime_ns, st.st_mtime_ns


def _used_inodes(folder):
    """The inodes in use on the file system holding ``folder`` (None if unknown)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_files - st.f_ffree if st.f_files else None


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def clean_scratch(baseline, drop_user, owner_only=False, folders=SCRATCH):
    """Remove what a run left in scratch space and IPC objects, as the candidates' user (so no
    link a candidate planted can turn the removal against anything else). In a container, or in
    the zygote's own mount and IPC namespaces, everything new since the zygote started is the
    runs'; on a shared host (``owner_only``) only what the candidates' user owns, which with a
    user of its own per zygote is exactly its runs'."""
    leftovers = {}
    for d in folders:
        names = set(_listdir(d)) - baseline.get(d, set())
        if owner_only:
            owned = set()
            for name in names:
                try:
                    if os.lstat(os.path.join(d, name)).st_uid == drop_user[0]:
                        owned.add(name)
                except OSError:
                    pass
            names = owned
        if names:
            leftovers[d] = names
    ipc = sysv_ipc_objects(drop_user[0] if owner_only else None)
    if not leftovers and not ipc:
        return
    pid = os.fork()
    if pid == 0:
        try:
            if drop_user is not None:
                os.setgroups([])
                os.setgid(drop_user[1])
                os.setuid(drop_user[0])
            for d, names in leftovers.items():
                for name in names:
                    _remove(os.path.join(d, name))
            if ipc:
                libc = _libc()
                for ctl, ident in ipc:
                    if ctl == "semctl":
                        libc.semctl(ident, 0, 0)
                    else:
                        getattr(libc, ctl)(ident, 0, None)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _unlock_tree(top):
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            os.chmod(d, 0o700)
            stack += [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
        except OSError:
            pass


# -- posture -----------------------------------------------------------------------------------

def _proc_status():
    """/proc/self/status as a dict of text fields (empty if unreadable)."""
    status = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                status[key] = value.strip()
    except OSError:
        pass
    return status


def posture_facts():
    facts = {"uid": os.getuid(), "euid": os.geteuid()}
    status = _proc_status()
    facts["cap_eff"] = status.get("CapEff")
    facts["cap_prm"] = status.get("CapPrm")
    # Both must hold: what the container gave the zygote, and what this process has.
    given = status.get("NoNewPrivs") if GIVEN_NO_NEW_PRIVS is None else GIVEN_NO_NEW_PRIVS
    facts["no_new_privs"] = "1" if given == "1" and status.get("NoNewPrivs") == "1" else "0"
    facts["seccomp"] = status.get("Seccomp")
    try:
        with open("/proc/net/dev") as fh:
            facts["interfaces"] = sorted(line.split(":")[0].strip() for line in fh.readlines()[2:])
    except OSError:
        facts["interfaces"] = []
    facts["root_writable"] = not os.statvfs("/").f_flag & os.ST_RDONLY
    facts["pids_max"] = _first_readable(["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"])
    facts["memory_max"] = _first_readable(["/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                           "/sys/fs/cgroup/memory.max"])
    facts["nofile"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
    facts["fsize"] = list(resource.getrlimit(resource.RLIMIT_FSIZE))
    facts["docker_socket"] = os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock")
    facts["env"] = sorted(os.environ)
    return facts


def _first_readable(paths):
    for path in paths:
        try:
            with open(path) as fh:
                return fh.read().strip()
        except OSError:
            continue
    return None


def probe_posture(drop_user):
    """What a candidate process finds around itself: a forked child with the candidates' user."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if drop_user is not None:
                os.setgroups([])
                os.setgid(drop_user[1])
                os.setuid(drop_user[0])
            write_all(w, json.dumps(posture_facts()).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data) if data else {"error": "posture probe died"}


# -- the zygote ----------------------------------------------------------------------------------

class Run:
    def __init__(self, run, spare, spec):
        self.run = run
        self.pid = spare.pid
        self.spec = spec
        self.req_w = spare.req_w  # relay only: requests go to the process through here
        self.rep = FrameReader(spare.rep_r) if spare.rep_r is not None else None  # relay only
        self.out_r = spare.out_r
        self.pidfd = spare.pidfd
        self.outstanding = 0
        self.output = bytearray()
        self.output_total = 0
        self.started = time.monotonic()
        self.deadline = self.started + spec["timeout"]
        self.extensions = 0
        self.status = None
        self.failure = None  # (reason, message) decided by the zygote


class Spare:
    """A candidate process forked ahead of its run, waiting for its spec."""

    def __init__(self, pid, req_w, rep_r, out_r, pidfd, token):
        self.pid, self.req_w, self.rep_r, self.out_r, self.pidfd, self.token = pid, req_w, rep_r, out_r, pidfd, token

    def close(self):
        for fd in (self.req_w, self.rep_r, self.out_r, self.pidfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


class Zygote:
    """Serves runs one at a time. With ``connect`` (a Unix socket of the verifier's) every candidate
    process gets a connection of its own to the verifier, which talks to it directly; without it
    (a remote Docker engine: only the container's stdin/stdout reach the verifier) the zygote relays
    each request and reply."""

    def __init__(self, in_fd, out_fd, drop_user, sole_tenant, connect=None, lifeline=None, hide=()):
        self.control = FrameReader(in_fd)
        self.lifeline = lifeline  # stdin, when control frames travel on a socket: its end is the verifier's
        self.out_fd = out_fd
        self.drop_user = drop_user
        self.sole_tenant = sole_tenant
        self.connect = connect
        self.me = os.getpid()
        self.run = None
        self.spare = None
        self.scratch = None
        self.reported = collections.deque(maxlen=16)  #: runs whose EXIT was sent
        self.home = None
        self._setup_scratch(drop_user, sole_tenant, connect, hide)

    def _setup_scratch(self, drop_user, sole_tenant, connect, hide):
        self.folders = SCRATCH
        # On a shared host, as root: this zygote's runs get scratch space and IPC of their own (a
        # mount and an IPC namespace of the zygote's, emptied after every run as in a container).
        # Set up once here, not per run: a namespace per run costs more than a whole run's check.
        self.namespaces = False
        self.own_user = not sole_tenant and drop_user is not None and os.geteuid() == 0
        _lasting_limits(self.own_user)
        if self.own_user:
            # A zygote killed outright (its verifier replaced it) could not end its run: what that
            # run detached may still be alive, with the user this zygote's candidates get now.
            kill_user_processes(drop_user)
            sockdir = os.path.dirname(connect) if connect else None
            if sockdir:  # reached from here on by a relative path: /tmp is about to be another one
                os.chdir(sockdir)
            folders = private_scratch()
            if folders is not None:
                hide_host(hide, connect)
                self.namespaces = True
                if connect:
                    self.connect = os.path.basename(connect)
                self.folders = tuple(folders)
        self.baseline = {d: set(_listdir(d)) for d in self.folders} if sole_tenant or self.namespaces else {}
        # The folders' own times, set back after every run: a run that leaves nothing to remove
        # can still leave the moment it chose in a folder's modification time (create and remove a
        # file, or utime to now, when the moment is the message) for the next run to read.
        self.stamps = {d: _times(d) for d in self.baseline}
        # The tmpfs this zygote mounted on the scratch folders (private_scratch): whether a run left
        # anything anywhere in one is its count of inodes, one call instead of a listing. Nothing
        # there at the start can go away (root's, in sticky folders), so the same count means
        # nothing new; another count, and the folder is listed and emptied as before.
        self.counted = {d: _used_inodes(d) for d in self.folders
                        if self.namespaces and d.encode() in _SHARED_WRITABLE}
        if not sole_tenant and not self.namespaces:  # a scratch folder for this zygote's runs, emptied after each
            import tempfile

            # Inside a folder of the zygote's own, so a candidate cannot move it and leave a link
            # in its place for the clean-up to follow.
            self.home = tempfile.mkdtemp(prefix="passk-zygote-")
            os.chmod(self.home, 0o711)
            self.scratch = os.path.join(self.home, "scratch")
            os.mkdir(self.scratch, 0o700)
            if drop_user is not None:
                os.chown(self.scratch, drop_user[0], drop_user[1])

    def prefork(self):
        """Fork the next run's process now, while nothing waits for it; announce it (SPARE)."""
        out_r, out_w = os.pipe()
        token = None
        if self.connect:
            import socket

            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(self.connect)
            token = os.urandom(8)
            conn.sendall(token)  # before the fork: the verifier knows this connection by it
            req_r = rep_w = conn.detach()
            req_w = rep_r = None
        else:
            req_r, req_w = os.pipe()
            rep_r, rep_w = os.pipe()
        for attempt in range(50):
            try:
                pid = os.fork()
                break
            except BlockingIOError:  # the pids limit, while what a run left is still being reaped
                kill_everything(self.me, -1, self.sole_tenant)
                time.sleep(0.01 * (attempt + 1))
        else:
            raise OSError("cannot fork a candidate process")
        if pid == 0:
            try:
                for fd in (req_w, rep_r, out_r):
                    if fd is not None:
                        os.close(fd)
                candidate_main(req_r, rep_w, out_w, self.drop_user, self.scratch, self.own_user)
            except BaseException:
                try:
                    traceback.print_exc()  # into the run's output, which the test's report shows
                    sys.stderr.flush()
                except BaseException:
                    pass
            finally:
                os._exit(70)
        for fd in {req_r, rep_w, out_w}:
            os.close(fd)
        pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        self.spare = Spare(pid, req_w, rep_r, out_r, pidfd, token)
        if token is not None:
            send_frame(self.out_fd, SPARE, 0, token)

    def _spare_alive(self):
        if self.spare is None:
            return False
        try:
            done, _ = os.waitpid(self.spare.pid, os.WNOHANG)
        except ChildProcessError:
            done = self.spare.pid
        if done == 0:
            return True
        self.spare.close()
        self.spare = None
        return False

    def spawn(self, run, spec):
        if self.connect is None and not self._spare_alive():
            self.prefork()
        spare, self.spare = self.spare, None
        if spare is None:  # (direct) the announced process died before its run: the run learns it
            send_frame(self.out_fd, EXIT, run, json.dumps({
                "reason": "crash", "message": "the candidate process died before its run", "output": ""}).encode())
            self.prefork()
            return
        self.run = Run(run, spare, spec)
        if spare.req_w is not None:  # relay: the zygote passes the spec on; direct: the verifier sends it
            data = json.dumps(spec).encode()
            try:
                write_all(spare.req_w, LENGTH.pack(len(data)) + data)
            except OSError:
                pass  # the process died: the run's first request learns it

    def relay_request(self, payload):
        r = self.run
        r.outstanding += 1
        if r.status is None and r.failure is None and r.req_w is not None:
            try:
                write_all(r.req_w, LENGTH.pack(len(payload)) + payload)
            except OSError:
                pass

    def pump_replies(self):
        """Forward complete replies the candidate wrote, one per outstanding request (relay)."""
        r = self.run
        buf = r.rep.buf
        while len(buf) >= 4:
            (length,) = LENGTH.unpack_from(buf)
            if length > MAX_FRAME:
                r.failure = ("malformed", "the candidate sent a reply of %d bytes" % length)
                return
            if len(buf) < 4 + length:
                return
            payload = bytes(buf[4:4 + length])
            del buf[:4 + length]
            if r.outstanding <= 0:
                r.failure = ("malformed", "the candidate sent a reply nobody asked for")
                return
            r.outstanding -= 1
            send_frame(self.out_fd, REPLY, r.run, payload)

    def finish(self, reason, message="", report=True):
        """The run is over: kill all it started, report, clean up, fork the next one."""
        r = self.run
        stuck = process_state(r.pid) if reason == "timeout" else ""
        kill_everything(self.me, r.pid, self.sole_tenant)
        if r.status is None:
            try:
                _, r.status = os.waitpid(r.pid, 0)
            except ChildProcessError:
                pass
        if r.out_r is not None:
            os.set_blocking(r.out_r, False)
            try:
                while True:
                    chunk = os.read(r.out_r, 1 << 16)
                    if not chunk:
                        break
                    self._keep_output(chunk)
            except (BlockingIOError, OSError):
                pass
        out = r.output.decode(errors="replace")
        if r.output_total > len(r.output):
            out += "\n[... %d more bytes of output dropped]" % (r.output_total - len(r.output))
        status = r.status
        if reason is None:  # the process ended on its own while the test still used it, or at END
            if status is not None and os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                reason = "crash"
                try:
                    name = signal.Signals(sig).name
                except ValueError:
                    name = str(sig)
                message = "the candidate process was killed by signal %s" % name
            else:
                code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
                reason = "exit"
                message = "the candidate process exited with status %s" % code
        if stuck:
            message += " (%s)" % stuck
        if report:
            send_frame(self.out_fd, EXIT, r.run, json.dumps({
                "reason": reason, "message": message, "output": out,
                "duration": round(time.monotonic() - r.started, 6)}).encode())
        self.reported.append(r.run)
        for fd in (r.req_w, r.rep.fd if r.rep is not None else None, r.out_r, r.pidfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.run = None
        if self.scratch is not None:
            _empty(self.scratch)
        if self.sole_tenant or self.namespaces:
            folders = [d for d in self.folders if d not in self.counted or _used_inodes(d) != self.counted[d]]
            clean_scratch(self.baseline, self.drop_user, folders=folders)
            for d, times in self.stamps.items():
                if times is not None:
                    try:
                        os.utime(d, ns=times, follow_symlinks=False)
                    except OSError:
                        pass
        elif self.drop_user is not None:
            clean_scratch({}, self.drop_user, owner_only=True)
        self.prefork()

    def _keep_output(self, chunk):
        r = self.run
        cap = r.spec.get("output_cap", 16384)
        r.output_total += len(chunk)
        r.output += chunk[: max(0, cap - len(r.output))]

    def serve(self):
        send_frame(self.out_fd, READY, 0, json.dumps({
            "pid": self.me, "python": list(sys.version_info[:3]), "direct": bool(self.connect),
            "posture": probe_posture(self.drop_user) if self.sole_tenant else None}).encode())
        import gc

        try:
            warm_up()
        except Exception:  # only ever a loss of speed
            pass
        gc.collect()
        gc.freeze()  # what the zygote holds is never collected in a candidate process: fewer copied pages
        try:  # what starting and warming up freed goes back to the system: fewer pages for every fork to map and unmap
            _libc().malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self.prefork()
        while True:
            r = self.run
            watch = [self.control.fd] + ([self.lifeline] if self.lifeline is not None else [])
            timeout = None
            if r is not None:
                watch += [fd for fd in (r.rep.fd if r.rep else None, r.out_r) if fd is not None]
                if r.pidfd is not None and r.status is None:
                    watch.append(r.pidfd)
                timeout = max(0.0, r.deadline - time.monotonic()) if r.failure is None else 0.0
                if r.pidfd is None:
                    timeout = min(timeout, 0.02)
            ready, _, _ = select.select(watch, [], [], timeout)
            if r is not None:
                if r.failure is None and time.monotonic() >= r.deadline and r.status is None:
                    if r.extensions < MAX_EXTENSIONS and starved(self.me, r.pid, r.spec["timeout"]):
                        r.extensions += 1
                        r.deadline += r.spec["timeout"]
                    else:
                        r.failure = ("timeout", "timed out after %g s" % r.spec["timeout"])
                if r.failure is not None:
                    self.finish(*r.failure)
                    continue
            if self.lifeline in ready and not os.read(self.lifeline, 4096):
                ready = [self.control.fd]
                self.control.buf.clear()
                self.control.fd_closed = True
            if self.control.fd in ready:
                if getattr(self.control, "fd_closed", False) or not self.control.feed():
                    if self.run is not None:
                        kill_everything(self.me, self.run.pid, self.sole_tenant)
                    if self.spare is not None:
                        kill_everything(self.me, self.spare.pid, self.sole_tenant)
                    if self.home is not None:
                        _empty(self.home)
                        os.rmdir(self.home)
                    return
                while True:
                    frame = self.control.next()
                    if frame is None:
                        break
                    self.handle(*frame)
                continue  # the run may have changed: look again before touching its descriptors
            for fd in ready:
                if self.run is None:
                    break
                if self.run.rep is not None and fd == self.run.rep.fd:
                    if not self.run.rep.feed():
                        os.close(fd)
                        self.run.rep.fd = None
                    self.pump_replies()
                elif fd == self.run.out_r:
                    chunk = os.read(fd, 1 << 16)
                    if chunk:
                        self._keep_output(chunk)
                    else:
                        os.close(fd)
                        self.run.out_r = None
                elif fd == self.run.pidfd:
                    self._reap()
            r = self.run
            if r is not None and r.pidfd is None and r.status is None:
                self._reap(block=False)
            if r is not None and r.failure is None and r.status is not None:
                if r.rep is None:  # direct: the verifier may be waiting on the process; say it is gone
                    self.finish(None)
                elif r.outstanding > 0 and (r.rep.fd is None or not r.rep.buf):
                    # relay: the process is gone with a request unanswered: the test learns why
                    self.finish(None)
            elif r is not None and r.failure is not None:
                self.finish(*r.failure)

    def _reap(self, block=True):
        r = self.run
        try:
            done, status = os.waitpid(r.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done, status = r.pid, None
        if done == r.pid:
            r.status = status if status is not None else 0
            if r.pidfd is not None:
                os.close(r.pidfd)
                r.pidfd = None

    def handle(self, kind, run, payload):
        if kind == SPAWN:
            if self.run is not None:
                self.finish("error", "a new run started before this one ended")
            self.spawn(run, json.loads(payload))
        elif kind == REQ:
            if self.run is not None and self.run.run == run:
                self.relay_request(payload)
        elif kind == END:  # payload "q" (quiet): the verifier wants no report of how the run ended
            if self.run is not None and self.run.run == run:
                self.finish(None if self.run.status is not None else "ended", "", report=payload != b"q")
            elif run not in self.reported and payload != b"q":  # never started here (its zygote was replaced)
                send_frame(self.out_fd, EXIT, run, b'{"reason": "ended", "message": "", "output": ""}')


def _empty(folder):
    """Remove everything in ``folder`` (a run's scratch space), however it was locked."""
    for name in _listdir(folder):
        _remove(os.path.join(folder, name))


def _remove(path):
    """Remove a file, a link or a whole folder (first giving back what a run locked), never
    following a link."""
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil

        _unlock_tree(path)
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def main():
    drop = os.environ.get("PASSK_DROP_USER")
    # "uid:gid", each possibly a sum ("61184+1"): the verifier numbers its zygotes' users so
    drop_user = tuple(sum(int(p) for p in x.split("+")) for x in drop.split(":")) if drop else None
    sole_tenant = os.environ.get("PASSK_SOLE_TENANT") == "1"
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # nothing printed by accident can corrupt the control stream
    os.close(devnull)
    for fd in (in_fd, out_fd):
        os.set_inheritable(fd, False)
    become_subreaper()
    _not_dumpable()
    _no_new_privs()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    for stream in (sys.stdout, sys.stderr):  # inherited by candidate processes, whose fds 1 and 2 are their output
        stream.reconfigure(line_buffering=True, errors="backslashreplace")
    connect = os.environ.get("PASSK_CONNECT") or None
    hide = os.environ.get("PASSK_HIDE")
    # The sandbox starts the zygote with LD_BIND_NOW=1: the dynamic linker binds every function at
    # start, not at its first call in every forked process (setsid, setuid, dup2, ... are first
    # called there: ~14 page faults per process). Not for candidates' own subprocesses.
    for name in ("PASSK_DROP_USER", "PASSK_SOLE_TENANT", "PASSK_CONNECT", "PASSK_HIDE", "LD_BIND_NOW"):
        os.environ.pop(name, None)
    lifeline = None
    if connect:
        # Control frames go on a connection of their own too: faster than a container's stdin and
        # stdout, which then only tell the zygote that its verifier is gone (end of file).
        import socket

        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.connect(connect)
        ctl.sendall(CONTROL_TOKEN)
        lifeline, in_fd = in_fd, ctl.detach()
        os.set_inheritable(in_fd, False)
        out_fd = in_fd
    Zygote(in_fd, out_fd, drop_user, sole_tenant, connect, lifeline, hide.split(os.pathsep) if hide else ()).serve()


if __name__ == "__main__":
    main()
