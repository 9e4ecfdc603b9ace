"""The trusted side of the boundary: the candidate process as a test body sees it.

A :class:`CandidateProcess` is one candidate run's process in the sandbox, reached through a
:class:`ZygoteLink`. What the test gets back from it is plain data, decoded without running any of
the candidate's code (:func:`pytest_passk.execute.zygote.decode`), or a :class:`Handle` standing for
an object that stays in the candidate's process: a handle can be called, iterated and asked for
attributes, but never compared, hashed or truth-tested here. Exceptions the candidate raised arrive
as :class:`CandidateRaised` (subclassing the builtin exception they name, so ``pytest.raises(ValueError)``
works); a candidate process that is gone (timeout, crash, exit, a malformed reply) raises
:class:`CandidateGone`, which ``except Exception`` cannot swallow.
"""
from __future__ import annotations

import builtins
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

from pytest_passk.execute import zygote as wire


class CandidateError(Exception):
    """The candidate cannot be used as the test asked: no such function, a program that does not
    load, a handle compared or used after its run."""


#: Why a candidate process can be gone; anything else a report from the sandbox says is a crash
#: (the zygote shares its container with candidate code: its word is never a pass).
GONE_REASONS = frozenset({"timeout", "memory", "crash", "exit", "malformed", "error"})


class CandidateGone(BaseException):
    """The candidate process ended before answering: the run fails with :attr:`reason`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason if reason in GONE_REASONS else "crash"
        self.message = message


class CandidateRaised(Exception):
    """An exception the candidate's code raised, re-created as data on the trusted side."""

    candidate_type = "Exception"
    candidate_traceback = ""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


_CLASSES: dict[type, type] = {}


def _raised(info: Any) -> BaseException:
    """The trusted-side exception for the candidate's ``info`` (type name, mro names, message, traceback)."""
    if not isinstance(info, dict):
        return CandidateGone("malformed", "the candidate sent an unreadable exception")
    names = info.get("mro") if isinstance(info.get("mro"), list) else []
    message = str(info.get("message", ""))[:4000]
    type_name = str(info.get("type", "Exception"))[:200]
    base: type = Exception
    for name in names:
        cls = getattr(builtins, str(name), None) if isinstance(name, str) else None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            base = cls
            break
    if not issubclass(base, Exception):  # SystemExit, KeyboardInterrupt, GeneratorExit, ...
        return CandidateGone("exit", f"the candidate raised {type_name}: {message}")
    if issubclass(base, (StopIteration, StopAsyncIteration)):
        # An end of iteration must not leak into the test's own loops (all(map(f, ...)) would pass
        # on nothing): as for generators (PEP 479), it arrives as a RuntimeError.
        base = RuntimeError
    cls = _CLASSES.get(base)
    if cls is None:
        try:
            cls = type(f"Candidate{base.__name__}", (base, CandidateRaised), {"__module__": "candidate"})
        except TypeError:
            cls = CandidateRaised
        _CLASSES[base] = cls
    try:
        exc = cls.__new__(cls, message)
        BaseException.__init__(exc, message)
    except Exception:
        exc = CandidateRaised(message)
    exc.candidate_type = type_name
    exc.candidate_traceback = str(info.get("traceback", ""))[:8000]
    return exc


class Handle:
    """An object that is not data and stays in the candidate's process."""

    __slots__ = ("_proc", "_ref", "_type", "_call")

    def __init__(self, proc: CandidateProcess, ref: dict[str, Any], type_name: str) -> None:
        object.__setattr__(self, "_proc", proc)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_call", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if self._call is None:  # what every call request to this object starts with
            object.__setattr__(self, "_call", _call_prefix(self._ref))
        return self._proc.call(self._ref, args, kwargs, self._call)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._proc.request({"op": "attr", "attr": name, **self._ref})

    def __setattr__(self, name: str, value: Any) -> None:
        raise CandidateError("attributes of the candidate's objects cannot be set from the test")

    def __iter__(self) -> Any:
        return self._proc.request({"op": "iter", **self._ref})

    def __next__(self) -> Any:
        return self._proc.request({"op": "next", **self._ref})

    def _refuse(self, *_: Any) -> Any:
        raise CandidateError(f"a {self._type} object of the candidate is not data: it cannot be compared, "
                             "hashed or truth-tested by the test")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = __bool__ = _refuse

    def __repr__(self) -> str:
        return f"<candidate {self._type} object>"


class ModuleHandle(Handle):
    """The candidate's program as a module: its top-level names as attributes."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._proc.request({"op": "get", "name": name})

    def __repr__(self) -> str:
        return "<candidate module>"


def _canonical(value: Any) -> str:
    """A text that equal values share whatever their hash seed (sets and dicts sorted)."""
    t = type(value)
    if t in (set, frozenset):
        return t.__name__ + "{" + ",".join(sorted(_canonical(v) for v in value)) + "}"
    if t is dict:
        return "{" + ",".join(sorted(_canonical(k) + ":" + _canonical(v) for k, v in value.items())) + "}"
    if t in (list, tuple):
        return t.__name__ + "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, Handle):
        return f"<{value._type}>"
    if t is int:  # repr of an int over 4300 digits raises (and is quadratic): hex never does
        return "i" + format(value, "x")
    return repr(value)


class ZygoteLink:
    """One zygote process (a local subprocess, or ``docker run -i`` of a container) and its frames.

    When its command names ``{socket}`` (the path the zygote connects to, ``{socketdir}`` the folder
    holding it), the link listens on a Unix socket of its own and every candidate process reaches
    the verifier over a connection of its own (*direct*); otherwise requests and replies are relayed
    by the zygote over its stdin/stdout (a remote Docker engine)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None, label: str, index: int = 0,
                 start_timeout: float = 120) -> None:
        self.argv = argv
        self.env = env
        self.label = label
        self.index = index
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.reader: wire.FrameReader | None = None
        self.ready: dict[str, Any] = {}
        self.next_run = 1
        self.starts = 0
        #: EXIT reports read while waiting for another run's frames, kept for that run's end().
        self.exits: dict[int, bytes] = {}
        self.direct = any("{socket" in a for a in [*argv, *(env or {}).values()])
        self.listener: socket.socket | None = None
        self.control: socket.socket | None = None
        self.socketdir: str | None = None
        self.spare: bytes | None = None  #: the token of the candidate process forked for the next run
        self._accepted: dict[bytes, socket.socket] = {}
        self.gone = False  #: the zygote's stream ended: it died (its container was killed, ...)
        self._forgotten: set[int] = set()

    def _fill(self, text: str, seed: str) -> str:
        # {start} is unique across verifier processes too: a replaced verifier's containers may
        # still be on their way out under the same worker and zygote numbers.
        text = text.replace("{zygote}", str(self.index)).replace("{start}", f"{os.getpid()}-{self.starts}")
        if self.socketdir is not None:
            text = text.replace("{socketdir}", self.socketdir).replace("{socket}", os.path.join(self.socketdir, "z.sock"))
        return text.replace("{hashseed}", seed)

    def _listen(self) -> None:
        # Only the zygote may connect: as root the folder and socket are root's alone (the zygote
        # runs as root in its container, candidates as nobody); otherwise the zygote, root in its
        # container without CAP_DAC_OVERRIDE, must be let in, and a candidate connecting gets
        # nothing: connections are known by the token their zygote wrote first.
        root = os.geteuid() == 0
        self.socketdir = tempfile.mkdtemp(prefix="passk-link-")
        os.chmod(self.socketdir, 0o700 if root else 0o711)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = os.path.join(self.socketdir, "z.sock")
        self.listener.bind(path)
        os.chmod(path, 0o600 if root else 0o666)
        self.listener.listen(64)

    def start(self) -> dict[str, Any]:
        """Start the zygote (each start gets a fresh hash seed) and wait for its READY."""
        self.starts += 1
        self.spare = None
        self.gone = False
        if self.direct:
            self._listen()
        seed = str(1 + int.from_bytes(os.urandom(4), "big") % 4294967294)
        argv = [self._fill(a, seed) for a in self.argv]
        env = None if self.env is None else {k: self._fill(v, seed) for k, v in self.env.items()}
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=_neutral_dir(),
                                     start_new_session=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        self.control: socket.socket | None = None
        if self.direct:
            # The zygote's control frames come on a connection of its own; its stdin stays open
            # only so that it notices when this verifier is gone.
            self.control = self._accept(wire.CONTROL_TOKEN, deadline)
            if self.control is None:
                err = self.stderr_text()
                self.kill()
                raise RuntimeError(f"{self.label} did not start: {err or 'it never connected'}")
            self.reader = wire.FrameReader(self.control.fileno())
        else:
            self.reader = wire.FrameReader(self.proc.stdout.fileno())
        frame = self.recv(deadline)
        if frame is None or frame[0] != wire.READY:
            err = self.stderr_text()
            self.kill()
            raise RuntimeError(f"{self.label} did not start: {err or 'no message'}")
        self.ready = json.loads(frame[2])
        return self.ready

    def stderr_text(self) -> str:
        if self.proc is None or self.proc.stderr is None:
            return ""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            return self.proc.stderr.read(8000).decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def send(self, kind: int, run: int, payload: bytes = b"") -> None:
        if self.proc is None or self.proc.stdin is None:
            raise OSError(f"{self.label} is not running")
        if self.control is not None:
            self.control.sendall(wire.HEADER.pack(kind, run, len(payload)) + payload)
        else:
            wire.send_frame(self.proc.stdin.fileno(), kind, run, payload)

    def pending(self) -> bool:
        """A complete frame is already buffered."""
        return self.reader is not None and self.reader.complete()

    def recv(self, deadline: float, spare: bool = False) -> tuple[int, int, bytes] | None:
        """The next frame, or None at the deadline or if the zygote is gone. SPARE announcements
        are taken in here (and returned only when ``spare``)."""
        if self.reader is None:
            return None
        while True:
            frame = self.reader.next()
            if frame is not None:
                if frame[0] == wire.EXIT and frame[1] in self._forgotten:
                    self._forgotten.discard(frame[1])
                    continue
                if frame[0] == wire.SPARE:
                    self.spare = frame[2]
                    if spare:
                        return frame
                    continue
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                ready, _, _ = select.select([self.reader.fd], [], [], remaining)
            except InterruptedError:
                continue
            if ready and not self.feed():
                return None

    def feed(self) -> bool:
        """Read what the zygote sent; False (and :attr:`gone`) once its stream has ended."""
        assert self.reader is not None
        try:
            if self.reader.feed():
                return True
        except OSError:
            pass
        self.gone = True
        return False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self.gone

    def forget(self, run: int) -> None:
        """The zygote's report of ``run`` is not wanted (and usually not sent): drop it whenever it
        arrives (a run that ended on its own was reported before the zygote read the END)."""
        self._forgotten.add(run)
        if len(self._forgotten) > 256:  # reports that never came: the oldest will not come any more
            self._forgotten.discard(min(self._forgotten))
        if len(self.exits) > 64:  # reports nobody asked for: keep the newest
            for old in sorted(self.exits)[:-64]:
                del self.exits[old]

    def take_spare(self, deadline: float) -> socket.socket | None:
        """The connection of the candidate process forked for the next run (direct links)."""
        while self.spare is None:
            frame = self.recv(deadline, spare=True)
            if frame is None:
                return None
            if frame[0] == wire.EXIT:
                self.exits[frame[1]] = frame[2]
        token, self.spare = self.spare, None
        return self._accept(token, deadline)

    def _accept(self, token: bytes, deadline: float) -> socket.socket | None:
        """The connection that introduced itself with ``token`` (connections are accepted as they
        come and kept by their token until asked for)."""
        assert self.listener is not None
        while token not in self._accepted:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.proc is not None and self.proc.poll() is not None):
                return None  # too late, or the zygote (its `docker run`) is gone: it will not connect
            ready, _, _ = select.select([self.listener], [], [], min(remaining, 0.5))
            if not ready:
                continue
            conn, _ = self.listener.accept()
            try:  # the zygote's fork wrote its token as it connected: usually there already
                got = conn.recv(8, socket.MSG_DONTWAIT)
            except OSError:
                got = b""
            if len(got) < 8:
                conn.settimeout(5)
                try:
                    while len(got) < 8:
                        chunk = conn.recv(8 - len(got))
                        if not chunk:
                            break
                        got += chunk
                except OSError:
                    got = b""
                conn.settimeout(None)
            if len(got) == 8 and not (got == wire.CONTROL_TOKEN and token != got):
                self._accepted[got] = conn
                while len(self._accepted) > 8:  # strangers' connections: drop the oldest
                    self._accepted.pop(next(iter(self._accepted))).close()
            else:
                conn.close()
        return self._accepted.pop(token)

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    self.proc.kill()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            self.proc = None
        for conn in self._accepted.values():
            conn.close()
        self._accepted.clear()
        if getattr(self, "control", None) is not None:
            self.control.close()  # type: ignore[union-attr]
            self.control = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.socketdir is not None:
            shutil.rmtree(self.socketdir, ignore_errors=True)
            self.socketdir = None


def _neutral_dir() -> str:
    """An empty folder to start zygotes in, so nothing of the suite's is on their import path."""
    path = os.path.join(tempfile.gettempdir(), f"passk-zygote-{os.getuid()}")
    os.makedirs(path, mode=0o755, exist_ok=True)
    return path


class CandidateProcess:
    """One candidate run's process: spawned on first use, ended after the test's teardown."""

    def __init__(self, link: ZygoteLink, spec: dict[str, Any], grace: float) -> None:
        self.link = link
        self.spec = spec
        self.run = link.next_run
        link.next_run += 1
        self.deadline = time.monotonic() + spec["timeout"] * (1 + wire.MAX_EXTENSIONS) + grace
        self.spawned = False
        self.exit: dict[str, Any] | None = None  #: the zygote's EXIT report, once the process is gone
        self.digest = hashlib.sha256()
        self.calls = 0
        #: The zygote (its container) died under this run: not evidence against the candidate
        #: the first time (the verifier retries once), since a candidate cannot reach its zygote.
        self.lost_zygote = False
        self.conn: socket.socket | None = None  #: direct links: this process's own connection
        self._unsent = b""  #: the spec, until the first request takes it along
        self._buf = bytearray()

    # -- requests ------------------------------------------------------------------------------

    def _spawn(self) -> None:
        if self.spawned:
            return
        self.spawned = True
        if not self.link.direct:
            self.link.send(wire.SPAWN, self.run, json.dumps(self.spec).encode())
            return
        conn = self.link.take_spare(self.deadline)
        if conn is None:
            self.lost_zygote = not self.link.alive
            self.link.kill()
            self._gone("crash", "the sandbox did not provide a candidate process")
        self.conn = conn
        limits = {k: self.spec[k] for k in ("timeout", "memory", "output_cap") if k in self.spec}
        self.link.send(wire.SPAWN, self.run, json.dumps(limits).encode())
        spec = json.dumps(self.spec).encode()
        self._unsent = wire.LENGTH.pack(len(spec)) + spec  # goes with the first request, in one write

    def _send_direct(self, data: bytes) -> None:
        assert self.conn is not None
        try:
            self.conn.sendall(self._unsent + wire.LENGTH.pack(len(data)) + data)
        except OSError:
            pass  # the process is gone: reading its reply says how
        self._unsent = b""

    def request(self, req: dict[str, Any] | bytes) -> Any:
        """Send ``req`` (a request, or its JSON) and return the decoded answer."""
        __tracebackhide__ = True
        if not self.spawned:
            self._spawn()
        if self.exit is not None:
            self._check_exit()
        data = req if type(req) is bytes else wire.COMPACT_JSON(req).encode()
        if self.conn is not None:
            self._send_direct(data)
            return self._answer(self._direct_reply())
        try:
            self.link.send(wire.REQ, self.run, data)
        except (OSError, ValueError):
            self.lost_zygote = True
            self._gone("crash", "the sandbox process is gone")
        while True:
            frame = self._next_frame()
            kind, run, payload = frame
            if kind == wire.EXIT:
                self._record_exit(payload)
                self._check_exit()
            if kind == wire.REPLY:
                return self._answer(payload)

    def _next_frame(self) -> tuple[int, int, bytes]:
        """The next control frame of this run; raises when the zygote hangs or dies."""
        __tracebackhide__ = True
        while True:
            frame = self.link.recv(self.deadline)
            if frame is None:
                if self.link.alive:
                    self.link.kill()  # hung beyond every limit: a new zygote serves the next run
                    self._gone("timeout", "the candidate did not answer within its time limit")
                self.lost_zygote = True
                self._gone("crash", "the sandbox process died")
            if frame[1] == self.run:
                return frame
            if frame[0] == wire.EXIT:
                self.link.exits[frame[1]] = frame[2]

    def _direct_reply(self) -> bytes:
        """The next reply on this process's connection; the zygote's EXIT says why there is none."""
        __tracebackhide__ = True
        assert self.conn is not None
        fd = self.conn.fileno()
        control = self.link.reader.fd if self.link.reader is not None else -1
        eof = False
        while True:
            if len(self._buf) >= 4:
                (length,) = wire.LENGTH.unpack_from(self._buf)
                if length > wire.MAX_FRAME:
                    self._fail("malformed", f"the candidate sent a reply of {length} bytes")
                if len(self._buf) >= 4 + length:
                    payload = bytes(self._buf[4:4 + length])
                    del self._buf[:4 + length]
                    return payload
            if self.link.pending():  # what the zygote said meanwhile: other runs' ends, a spare
                self._take_control()
                continue
            if eof:  # no reply can come: the process is gone; its zygote says why
                kind, run, payload = self._next_frame()
                if kind == wire.EXIT:
                    self._record_exit(payload)
                    self._check_exit()
                continue
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self._next_frame()  # raises: nothing came in time
            try:
                ready, _, _ = select.select([fd, control], [], [], remaining)
            except InterruptedError:
                continue
            if fd in ready:
                try:
                    chunk = os.read(fd, 1 << 16)
                except OSError:
                    chunk = b""
                if not chunk:
                    eof = True
                elif not self._buf and len(chunk) >= 4 and wire.LENGTH.unpack_from(chunk)[0] == len(chunk) - 4:
                    return chunk[4:]  # the usual case: exactly one whole reply
                else:
                    self._buf += chunk
            elif control in ready:
                if not self.link.feed():
                    self.lost_zygote = True
                    self._gone("crash", "the sandbox process died")

    def _take_control(self) -> None:
        """Take in the control frames already buffered, without waiting for more."""
        __tracebackhide__ = True
        reader = self.link.reader
        assert reader is not None
        while reader.complete():
            kind, run, payload = reader.next()
            if kind == wire.SPARE:
                self.link.spare = payload
            elif kind == wire.EXIT and run in self.link._forgotten:
                self.link._forgotten.discard(run)
            elif kind == wire.EXIT:
                if run == self.run:
                    self._record_exit(payload)
                    self._check_exit()
                else:
                    self.link.exits[run] = payload

    def call(self, ref: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             prefix: bytes | None = None) -> Any:
        __tracebackhide__ = True
        try:
            if not kwargs and _is_json(args, 0, [wire.MAX_NODES]):
                # Its own encoding (the usual call: numbers, strings, lists), written straight
                # after the request's fixed part (``{"op":"call",...,"k":null,"a":``).
                req: dict[str, Any] | bytes = (prefix or _call_prefix(ref)) + wire.COMPACT_JSON(args).encode() + b"}"
            else:
                a = wire.encode(list(args), _handles_out(self))
                k = wire.encode(dict(kwargs), _handles_out(self)) if kwargs else None
                req = {"op": "call", "a": a, "k": k, **ref}
        except wire.NotData as exc:
            raise CandidateError(f"arguments to the candidate must be plain data: {exc}") from None
        value = self.request(req)
        self.calls += 1
        self.digest.update(_canonical(value).encode(errors="surrogatepass") + b"\0")
        return value

    def _answer(self, payload: bytes) -> Any:
        __tracebackhide__ = True
        try:
            reply = wire.loads(payload)
            if not isinstance(reply, dict) or len(reply) != 1:
                raise ValueError("not a reply")
            (key, body), = reply.items()
            if key == "v":
                if (payload.count(b"{") == 1 and payload.startswith(b'{"v":')
                        and payload.count(b",") < wire.MAX_NODES  # at most that many objects
                        and payload.count(b"[") <= wire.MAX_DEPTH):  # so no deeper than the bound
                    # No tagged value anywhere: JSON's own lists and scalars are the data already
                    # (lists cannot be hashed, so their depth cannot crash a dict or a set).
                    return body
                return wire.decode(body, self._handle)
        except (ValueError, TypeError) as exc:
            self._fail("malformed", f"the candidate sent something that is not plain data ({exc})")
        if key == "raised":
            raise _raised(body)
        if key == "stop":
            raise StopIteration
        if key == "missing":
            raise CandidateError(f"the candidate defines no {str(body)[:200]!r}")
        if key == "load_error":
            info = body if isinstance(body, dict) else {}
            raise CandidateError("the candidate's program failed to load: "
                                 f"{str(info.get('type', '?'))[:200]}: {str(info.get('message', ''))[:2000]}\n"
                                 f"{str(info.get('traceback', ''))[:4000]}")
        self._fail("malformed", f"the candidate sent an unknown reply {key[:50]!r}")

    def _handle(self, ident: int, type_name: str) -> Handle:
        return Handle(self, {"h": ident}, type_name)

    def _fail(self, reason: str, message: str) -> None:
        """The candidate broke the protocol: end its process and fail the run."""
        self.end()
        self.exit = {"reason": reason, "message": message, "output": (self.exit or {}).get("output", "")}
        raise CandidateGone(reason, message)

    def _gone(self, reason: str, message: str) -> None:
        if self.exit is None:
            self.exit = {"reason": reason, "message": message, "output": ""}
        raise CandidateGone(reason, message)

    def _record_exit(self, payload: bytes) -> None:
        try:
            info = json.loads(payload)
        except ValueError:
            info = {"reason": "crash", "message": "unreadable exit report"}
        self.exit = info if isinstance(info, dict) else {"reason": "crash", "message": "unreadable exit report"}

    def _check_exit(self) -> None:
        if self.exit is not None:
            reason = self.exit.get("reason", "crash")
            if reason == "ended":
                raise CandidateError("the candidate's run is over: its objects cannot be used any more")
            raise CandidateGone(reason, self.exit.get("message", "") or f"the candidate process ended ({reason})")

    # -- the end of a run ----------------------------------------------------------------------

    def end(self, wait: bool = True) -> dict[str, Any]:
        """Kill the process and all it started; what it printed comes back in the report. Without
        ``wait`` the zygote's report is not awaited (a passed run needs no output): the next run
        on this zygote starts once it has cleaned up anyway."""
        try:
            if not wait and self.spawned and self.exit is None and self.run not in self.link.exits:
                try:
                    self.link.send(wire.END, self.run, b"q")  # quiet: no report of the end
                except (OSError, ValueError):
                    self.lost_zygote = True
                self.link.forget(self.run)
                self.exit = {"reason": "ended", "message": "", "output": ""}
                return self.exit
            return self._end()
        finally:
            if self.conn is not None:  # closed once the zygote has killed it (EOF would end it first)
                self.conn.close()
                self.conn = None

    def _end(self) -> dict[str, Any]:
        if not self.spawned:
            return {"reason": "ended", "output": ""}
        if self.exit is not None:
            return self.exit
        if self.run in self.link.exits:
            self._record_exit(self.link.exits.pop(self.run))
            return self.exit  # type: ignore[return-value]
        try:
            self.link.send(wire.END, self.run)
        except (OSError, ValueError):
            self.lost_zygote = True
            self.exit = {"reason": "crash", "message": "the sandbox process died", "output": ""}
            return self.exit
        deadline = time.monotonic() + 30
        while self.exit is None:
            frame = self.link.recv(deadline)
            if frame is None:
                self.lost_zygote = not self.link.alive
                self.link.kill()
                self.exit = {"reason": "crash", "message": "the sandbox process did not end the run", "output": ""}
                break
            if frame[0] == wire.EXIT:
                if frame[1] == self.run:
                    self._record_exit(frame[2])
                else:
                    self.link.exits[frame[1]] = frame[2]
        return self.exit

    @property
    def returns(self) -> str:
        return self.digest.hexdigest()[:32] if self.calls else ""


def _is_json(values: tuple[Any, ...] | list[Any], depth: int, budget: list[int]) -> bool:
    """Whether ``values`` holds only what is its own tagged encoding (exactly None, bool, int of
    decimal size, float, str, and lists of them, within the bounds of depth and size), so that
    :func:`wire.encode` would return the same."""
    if depth > wire.MAX_DEPTH:
        return False
    budget[0] -= len(values)
    if budget[0] < 0:
        return False
    for v in values:
        if not wire.is_plain_scalar(v) and (type(v) is not list or not _is_json(v, depth + 1, budget)):
            return False
    return True


def _call_prefix(ref: dict[str, Any]) -> bytes:
    """The start of a call request to ``ref`` whose arguments follow as a JSON list (and ``}``)."""
    return b'{"op":"call",' + b"".join(wire.COMPACT_JSON(k).encode() + b":" + wire.COMPACT_JSON(v).encode() + b","
                                      for k, v in ref.items()) + b'"k":null,"a":'


def _handles_out(proc: CandidateProcess) -> Any:
    """Arguments may hold handles of this same run: they go back as references; other objects are refused."""

    def reference(obj: Any) -> dict[str, Any]:
        if isinstance(obj, Handle) and obj._proc is proc and "h" in obj._ref:
            return {"h": obj._ref["h"], "n": ""}
        raise wire.NotData(f"{type(obj).__name__} is not data")

    return reference
