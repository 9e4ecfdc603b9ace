"""The sandbox worker: collects the suite's items once, then forks a child per candidate run.

Run as ``python -m pytest_passk.worker``; it speaks :mod:`pytest_passk.protocol` on stdin/stdout and
needs nothing from the host but the test files, so the very same process runs on the host (local
sandbox) or as the main process of a container (Docker sandbox). It owns the limits of each run:
wall-clock timeout, memory, output size, and killing everything a candidate started.
"""
from __future__ import annotations

import gc
import json
import os
import resource
import secrets
import select
import shutil
import signal
import sys
import time
import traceback
from typing import Any, BinaryIO

import pytest

from pytest_passk import _processes as procs
from pytest_passk import protocol
from pytest_passk.candidate import Candidate

_MESSAGE_CAP = 2000
_RESULT_CAP = 64 * 1024


def _trim(text: str, cap: int = _MESSAGE_CAP) -> str:
    return text if len(text) <= cap else "...\n" + text[-cap:]


class _Run:
    """What the child learns about its own test run, kept where its hooks can record into it."""

    def __init__(self) -> None:
        self.call: tuple[str, str] | None = None  # (reason, exception name)
        self.message = ""  # the failing phase's exception, in the test's and candidate's frames only
        self.setup_reason: str | None = None  # why setup failed, if it did


class WorkerPlugin:
    """The pytest plugin of a worker process: serves jobs instead of running the test loop."""

    def __init__(self, init: dict[str, Any], proto_in: BinaryIO, proto_out: BinaryIO) -> None:
        from pytest_passk.plugin import WORKER_PLUGIN

        self.__name__ = WORKER_PLUGIN  # the name pluggy registers it under; the main plugin looks for it
        self.init = init
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.collect_errors: list[str] = []
        self.current: _Run | None = None
        self.output_cap = int(init.get("output_cap", 16384))
        drop = init.get("drop_user")
        self.drop_user: tuple[int, int] | None = (int(drop[0]), int(drop[1])) if drop else None
        self.clean_tmp = bool(init.get("clean_tmp", False))
        # Inside a container the worker owns the PID namespace: every process but PID 1 and the
        # worker itself belongs to the last run and is killed after it.
        self.sole_tenant = bool(init.get("sole_tenant", False))
        self.posture: dict[str, Any] | None = None
        self._tmp_baseline = {d: set(procs.listdir(d)) for d in procs.SCRATCH} if self.clean_tmp else {}

    # -- pytest hooks -------------------------------------------------------------------------

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {_trim(report.longreprtext)}")

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Any:
        try:
            return (yield)
        except BaseException as exc:
            if self.current is not None:
                self.current.setup_reason = _reason_for(exc)
                self.current.message = "error in the test's setup:\n" + _describe(exc)
            raise

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        run = self.current
        try:
            result = yield
        except BaseException as exc:
            if run is not None:
                run.call = (_reason_for(exc), type(exc).__name__)
                run.message = _describe(exc)
            raise
        if run is not None:
            run.call = ("passed", "")
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        wanted = list(self.init.get("nodeids", []))
        items = {item.nodeid: item for item in session.items}
        missing = [n for n in wanted if n not in items]
        protocol.send(
            self.proto_out, "ready", collected=[n for n in wanted if n in items], missing=missing,
            errors="\n".join(self.collect_errors), pid=os.getpid(), posture=self.posture,
            python=list(sys.version_info[:3]),
        )
        self._serve(items)
        return True

    # -- serving -----------------------------------------------------------------------------

    def _serve(self, items: dict[str, pytest.Item]) -> None:
        while True:
            line = self.proto_in.readline()
            if not line:
                return
            name, fields = protocol.decode(line)
            if name == "shutdown":
                return
            if name != "job":
                raise protocol.ProtocolError(f"unexpected message {name!r}")
            job = protocol.Job(**fields)
            item = items.get(job.nodeid)
            if item is None:
                result = protocol.RunResult.failure(job.id, "error", f"test {job.nodeid} was not collected")
            else:
                result = self._run_job(item, job)
            protocol.send(self.proto_out, "result", **result.__dict__)

    def _run_job(self, item: pytest.Item, job: protocol.Job) -> protocol.RunResult:
        nonce = secrets.token_hex(16)
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                gc.disable()  # a short-lived child: collecting would copy every inherited page
                os.close(res_r)
                os.close(out_r)
                self._child(item, job, nonce, res_w, out_w)
            finally:
                os._exit(71)
        os.close(res_w)
        os.close(out_w)
        try:
            return self._supervise(job, pid, nonce, res_r, out_r, start)
        finally:
            os.close(res_r)
            os.close(out_r)
            self._reap_everything(pid)
            if self.clean_tmp:
                self._clean_tmp()

    def _supervise(self, job: protocol.Job, pid: int, nonce: str, res_r: int, out_r: int,
                   start: float) -> protocol.RunResult:
        deadline = start + job.timeout
        pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        result = bytearray()
        output = bytearray()
        output_total = 0
        open_fds = {res_r, out_r}
        exited = timed_out = False
        status: int | None = None
        extensions = 0
        while not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # A child that was runnable yet barely scheduled was starved by a loaded host, not
                # slow: give it more wall time (the limit is meant for the candidate, not the machine).
                if extensions < procs.MAX_EXTENSIONS and procs.starved(pid, job.timeout):
                    extensions += 1
                    deadline += job.timeout
                    continue
                timed_out = True
                break
            watch = list(open_fds) + ([pidfd] if pidfd is not None else [])
            ready, _, _ = select.select(watch, [], [], min(remaining, 0.05 if pidfd is None else remaining))
            for fd in ready:
                if fd == pidfd:
                    exited = True
                    continue
                data = os.read(fd, 1 << 16)
                if not data:
                    open_fds.discard(fd)
                elif fd == res_r:
                    result += data[: _RESULT_CAP - len(result)]
                else:
                    output_total += len(data)
                    output += data[: self.output_cap - len(output)]
            if pidfd is None or not open_fds:
                done, status = os.waitpid(pid, os.WNOHANG)
                exited = exited or done == pid
                if done != pid:
                    status = None
        if pidfd is not None:
            os.close(pidfd)
        stuck = procs.process_state(pid) if timed_out else ""
        # Kill the child's whole session before reading what is left, so nothing it started goes on.
        procs.kill_group(pid)
        if status is None:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = None
        for fd in open_fds:
            os.set_blocking(fd, False)
            try:
                while chunk := os.read(fd, 1 << 16):
                    if fd == res_r:
                        result += chunk[: _RESULT_CAP - len(result)]
                    else:
                        output_total += len(chunk)
                        output += chunk[: self.output_cap - len(output)]
            except BlockingIOError:
                pass
        out_text = output.decode(errors="replace")
        if output_total > len(output):
            out_text += f"\n[... {output_total - len(output)} more bytes of output dropped]"
        duration = time.monotonic() - start
        verdict = self._verdict(job, nonce, bytes(result), status, timed_out)
        if stuck:
            verdict.message += f" ({stuck})"
        verdict.output = out_text
        verdict.duration = round(duration, 6)
        return verdict

    def _verdict(self, job: protocol.Job, nonce: str, raw: bytes, status: int | None,
                 timed_out: bool) -> protocol.RunResult:
        if timed_out:
            return protocol.RunResult.failure(job.id, "timeout", f"timed out after {job.timeout:g} s")
        lines = [line for line in raw.split(b"\n") if line.strip()]
        if not lines:
            if status is not None and os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                return protocol.RunResult.failure(
                    job.id, "crash", f"killed by signal {signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig} before reporting")
            code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
            return protocol.RunResult.failure(job.id, "exit", f"exited with status {code} before the test finished")
        if len(lines) > 1:
            return protocol.RunResult.failure(job.id, "duplicate", f"{len(lines)} reports for one run")
        try:
            report = json.loads(lines[0])
        except ValueError:
            return protocol.RunResult.failure(job.id, "malformed", "unreadable report")
        if not isinstance(report, dict) or report.get("nonce") != nonce:
            return protocol.RunResult.failure(job.id, "malformed", "report without this run's nonce")
        reason = report.get("reason")
        if reason not in protocol.REASONS or not isinstance(report.get("message", ""), str):
            return protocol.RunResult.failure(job.id, "malformed", "report with an unknown reason")
        if reason == "passed":
            return protocol.RunResult(id=job.id, outcome="passed", reason="passed")
        return protocol.RunResult.failure(job.id, reason, report.get("message", ""))

    # -- the child ---------------------------------------------------------------------------

    def _child(self, item: pytest.Item, job: protocol.Job, nonce: str, res_w: int,
               out_w: int) -> None:  # pragma: no cover - runs in the child
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        for fd in (devnull, out_w, self.proto_in.fileno(), self.proto_out.fileno()):
            try:
                os.close(fd)
            except OSError:
                pass
        _set_limits(job)
        if self.drop_user is not None:
            uid, gid = self.drop_user
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        candidate = Candidate(text=job.text, code=job.code, prompt=job.prompt, problem_id=job.problem_id,
                              timeout=job.timeout, index=job.index)
        from pytest_passk.plugin import candidate_key

        item.config.stash[candidate_key] = candidate
        run = self.current = _Run()
        # What reports the verdict is bound here, before candidate code runs and can patch modules.
        write, dumps, trim, describe = os.write, json.dumps, _trim, _describe
        hooks = item.ihook
        try:
            # The item's own setup, call and teardown hooks, as pytest's runtestprotocol calls them,
            # without the reports it would build: the verdict comes from this worker's hook wrappers.
            try:
                hooks.pytest_runtest_setup(item=item)
                hooks.pytest_runtest_call(item=item)
            finally:
                hooks.pytest_runtest_teardown(item=item, nextitem=None)
        except BaseException as exc:  # the phase's own wrapper has recorded it; this is the fallback
            if not run.message:
                run.message = describe(exc)
            if run.call is None and run.setup_reason is None:
                run.setup_reason = _reason_for(exc)
        if run.call is not None:
            reason = run.call[0]
        else:
            reason = "skipped" if run.setup_reason == "skipped" else "setup"
        line = dumps({"nonce": nonce, "reason": reason, "message": trim(run.message)}) + "\n"
        write(res_w, line.encode())
        if candidate.tmpdir is not None:
            shutil.rmtree(candidate.tmpdir, ignore_errors=True)
        os._exit(0)

    # -- cleanup -----------------------------------------------------------------------------

    def _reap_everything(self, pid: int) -> None:
        """Kill and reap every process the run left behind, however it detached itself."""
        procs.kill_group(pid)
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                pass  # something the run started is still alive: hunt it down below
        except ChildProcessError:
            return  # the usual case: nothing left, and no need to scan /proc
        deadline = time.monotonic() + 5
        me = os.getpid()
        while time.monotonic() < deadline:
            children = procs.all_but(me) if self.sole_tenant else procs.children_of(me)
            for child in children:
                procs.kill_group(child)
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
            except ChildProcessError:
                return
            if not children:
                time.sleep(0.001)

    def _clean_tmp(self) -> None:
        """Remove what a run left in scratch space (inside a container only: there it is a private tmpfs)."""
        if not any(set(procs.listdir(d)) - self._tmp_baseline[d] for d in procs.SCRATCH) and not procs.sysv_ipc_objects():
            return
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                if self.drop_user is not None:
                    os.setgroups([])
                    os.setgid(self.drop_user[1])
                    os.setuid(self.drop_user[0])
                for d in procs.SCRATCH:
                    for name in set(procs.listdir(d)) - self._tmp_baseline[d]:
                        p = os.path.join(d, name)
                        if os.path.isdir(p) and not os.path.islink(p):
                            procs.unlock_tree(p)  # a run may lock its own folders (mode 000) against rmtree
                            shutil.rmtree(p, ignore_errors=True)
                        else:
                            try:
                                os.unlink(p)
                            except OSError:
                                pass
                procs.remove_sysv_ipc()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


#: Writable places that outlive a run inside a container: tmpfs scratch and POSIX message queues.
_INTERNAL = tuple(os.path.dirname(m.__file__) + os.sep for m in (pytest, protocol) if m.__file__) + (
    os.sep + "_pytest" + os.sep, os.sep + "pluggy" + os.sep)


def _describe(exc: BaseException) -> str:
    """The exception with the frames of the test and the candidate, not pytest's or ours."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if not any(part in f.filename for part in _INTERNAL)]
        text = "".join(traceback.format_list(frames[-10:]))
        text += "".join(traceback.format_exception_only(type(exc), exc))
    except BaseException as err:  # a candidate's exception whose __str__ misbehaves
        text = f"{type(exc).__name__} (its message could not be shown: {type(err).__name__})"
    return _trim(text, 4 * _MESSAGE_CAP)



def _reason_for(exc: BaseException) -> str:
    if isinstance(exc, AssertionError):
        return "assertion"
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, (pytest.skip.Exception, pytest.xfail.Exception)):
        return "skipped"
    if isinstance(exc, pytest.fail.Exception):
        return "assertion"
    if isinstance(exc, (SystemExit, KeyboardInterrupt, pytest.exit.Exception)):
        return "exit"
    return "error"


def _set_limits(job: protocol.Job) -> None:  # pragma: no cover - runs in the child
    limits = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, int(job.timeout) + 2)]
    if job.memory:
        limits.append((resource.RLIMIT_AS, job.memory))
    for which, value in limits:
        try:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else hard))
        except (ValueError, OSError):
            pass



def main() -> int:
    # The protocol gets private copies of stdin/stdout; fds 0 and 1 then point elsewhere, so
    # nothing pytest or a conftest prints can corrupt the protocol stream.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    procs.become_subreaper()
    line = proto_in.readline()
    if not line:
        return 0
    try:
        name, init = protocol.decode(line)
        if name != "init" or init.get("version") != protocol.VERSION:
            raise protocol.ProtocolError(f"expected init of version {protocol.VERSION}, got {name} {init.get('version')}")
        os.chdir(init["invocation_dir"])
        files = sorted({n.split("::", 1)[0] for n in init.get("nodeids", [])})
        rootdir = init.get("rootdir") or init["invocation_dir"]
        args = list(init.get("args", [])) + [
            # --tb=no: pytest's failure formatting costs more than a whole passing run; the worker
            # describes failures itself (_describe).
            "-p", "no:cacheprovider", "--capture=no", "-q", "-o", "addopts=", "--tb=no",
            "--rootdir", rootdir, "-W", "ignore::pytest.PytestAssertRewriteWarning",
        ] + [os.path.join(rootdir, f) for f in files]
        plugin = WorkerPlugin(init, proto_in, proto_out)
        if init.get("posture"):
            plugin.posture = procs.check_posture(plugin.drop_user)
        pytest.main(args, plugins=[plugin])
    except Exception as exc:  # anything here means no job can run: tell the host once, clearly
        protocol.send(proto_out, "fatal", message=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
