"""The trusted side of execution: a process that collected the suite once and runs test bodies.

Run as ``python -m pytest_passk.execute.verifier``; it speaks :mod:`pytest_passk.protocol` with the
pytest session on stdin/stdout. For every job it runs the item's setup, call and teardown in its own
process, fixtures at their normal scopes (a session fixture is set up once per verifier), with the
``candidate`` fixture bound to a fresh candidate process in the sandbox
(:class:`~pytest_passk.execute.boundary.CandidateProcess`). It never executes candidate code, so
nothing a candidate does can reach the test body, the verdict or this process's memory: what crosses
is data. A test body that hangs on its own is stopped by an alarm.
"""
from __future__ import annotations

import collections
import gc
import hashlib
import os
import signal
import sys
import time
import traceback
from typing import Any, BinaryIO

import pytest

from pytest_passk import protocol
from pytest_passk.candidate import Candidate
from pytest_passk.execute import boundary
from pytest_passk.execute.boundary import CandidateGone, CandidateRaised, ZygoteLink

_MESSAGE_CAP = 2000
#: Seconds the verifier waits beyond a run's limits for the sandbox before it gives up on a zygote.
GRACE = 10.0


def _trim(text: str, cap: int = _MESSAGE_CAP) -> str:
    return text if len(text) <= cap else "...\n" + text[-cap:]


class TestBodyTimeout(BaseException):
    """The test body itself ran past the run's limit (raised by the alarm)."""


class _Run:
    """What the verifier learns about one run from its hook wrappers."""

    def __init__(self) -> None:
        self.call: str | None = None  # the call phase's reason, once it ended
        self.message = ""
        self.setup_reason: str | None = None


class _Parents:
    """Stands for "the next item" when tearing down: only the item's own level is finalized, so
    fixtures of wider scope (module, session) stay up for the next run."""

    def __init__(self, item: pytest.Item) -> None:
        self._chain = item.listchain()[:-1]

    def listchain(self) -> list[Any]:
        return self._chain


class _ItemPlan:
    """What the verifier works out once per item rather than once per run: its hooks (the
    conftests that apply), its parents for teardown, and the test arguments it hands over itself.

    Some arguments need no fixture code: pytest-passk's own ``candidate`` fixture only returns the
    run's candidate, a function-scoped ``@pytest.mark.parametrize`` value is the item's own
    parameter (what pytest's pseudo-fixture returns), and ``request`` is the item's request (which
    ``candidate`` asks for). Running them through pytest's fixture machinery costs more than a call
    to the candidate (each ``request`` builds a fixture definition and inspects a signature), so
    the verifier puts their values in place before the setup. A suite that overrides ``candidate`` gets its fixture run as usual,
    and fixtures that request ``candidate`` or a parameter still get them through pytest."""

    def __init__(self, item: pytest.Item) -> None:
        self.hooks = item.ihook
        self.parents = _Parents(item)
        self.has_request = hasattr(item, "_request")
        self.own_candidate = False
        self.params: dict[str, Any] = {}
        self.request = self.has_request and "request" in getattr(item, "fixturenames", ())
        info = getattr(item, "_fixtureinfo", None)
        if not self.has_request or info is None:
            return
        params = getattr(getattr(item, "callspec", None), "params", {})
        for name in info.argnames:
            defs = info.name2fixturedefs.get(name)
            if not defs:
                continue
            func = defs[-1].func
            if name == "candidate" and func is _candidate_function():
                self.own_candidate = True
            elif (name in params and func is _direct_param and len(defs) == 1
                  and defs[-1].scope == "function"):
                self.params[name] = params[name]


def _candidate_function() -> Any:
    from pytest_passk import plugin

    fixture = plugin.candidate
    unwrap = getattr(fixture, "_get_wrapped_function", None)
    return unwrap() if unwrap is not None else getattr(fixture, "__wrapped__", fixture)


try:  # the function behind pytest's pseudo-fixture for a directly parametrized argument
    from _pytest.python import get_direct_param_fixture_func as _direct_param
except ImportError:  # another pytest: its parameters go through its fixtures as before
    _direct_param = object()


class VerifierPlugin:
    """The pytest plugin of a verifier process: serves jobs instead of running the test loop."""

    def __init__(self, init: dict[str, Any], proto_in: BinaryIO, proto_out: BinaryIO) -> None:
        from pytest_passk.plugin import WORKER_PLUGIN

        self.__name__ = WORKER_PLUGIN  # the main plugin sees it and stays out of the way
        self.init = init
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.collect_errors: list[str] = []
        self.current: _Run | None = None
        self.label = str(init.get("label", "verifier"))
        self.output_cap = int(init.get("output_cap", 16384))
        argv = list(init["zygote_argv"])
        env = init.get("zygote_env")
        # Runs of one candidate alternate between the zygotes, each with its own hash seed (and, in
        # Docker, its own container), so reruns see other hash and random seeds. Consecutive jobs
        # alternate too: one zygote cleans up after its run and forks its next candidate process
        # while the other's, forked ahead, already serves the next run.
        self.links = [ZygoteLink(argv, env, f"{self.label} zygote {z}", index=z)
                      for z in range(max(1, int(init.get("zygotes", 1))))]
        self._turn = 0
        self._plans: dict[str, _ItemPlan] = {}
        self._last_zygote: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.posture_check = init.get("posture_check")

    # -- zygotes -------------------------------------------------------------------------------

    def _start_link(self, link: ZygoteLink) -> dict[str, Any]:
        ready = link.start()
        if self.posture_check:
            from pytest_passk.sandbox.docker import posture_problems

            problems = posture_problems(ready.get("posture"), set(self.init.get("image_env", [])))
            if problems:
                link.kill()
                raise RuntimeError("the container is not isolated as required, refusing to run candidates: "
                                   + "; ".join(problems))
        return ready

    def _link(self, code: str) -> ZygoteLink:
        """The next zygote in turn; for a program this verifier ran before, the zygote after the
        one its last run had (so its reruns here never share a hash seed)."""
        n, index = len(self.links), 0
        if n > 1:
            key = hashlib.sha256(code.encode(errors="surrogatepass")).digest()
            last = self._last_zygote.pop(key, None)
            index = (last + 1) % n if last is not None else self._turn % n
            self._turn = index + 1
            self._last_zygote[key] = index
            if len(self._last_zygote) > 4096:
                self._last_zygote.popitem(last=False)
        link = self.links[index]
        if not link.alive:
            self._start_link(link)
        return link

    # -- pytest hooks --------------------------------------------------------------------------

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
                run.call = _reason_for(exc)
                run.message = _describe(exc)
            raise
        if run is not None:
            run.call = "passed"
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        wanted = list(self.init.get("nodeids", []))
        items = {item.nodeid: item for item in session.items}
        missing = [n for n in wanted if n not in items]
        posture = None
        try:
            posture = self._start_link(self.links[0]).get("posture")
        except Exception as exc:  # the sandbox cannot run candidates: say so once
            protocol.send(self.proto_out, "fatal", message=str(exc))
            return True
        protocol.send(
            self.proto_out, "ready", collected=[n for n in wanted if n in items], missing=missing,
            errors="\n".join(self.collect_errors), pid=os.getpid(), posture=posture,
            python=list(sys.version_info[:3]),
        )
        # What collection built lives as long as this process: out of the collector's way, so a
        # full collection during a run does not walk pytest's whole object graph again and again.
        gc.collect()
        gc.freeze()
        try:
            self._serve(items, session)
        finally:
            try:
                session._setupstate.teardown_exact(None)
            except BaseException:
                pass
            for link in self.links:
                link.kill()
            # Nothing reads this process's summary; making it would let plugins do work for nobody
            # (hypothesis's summary hook imports all of hypothesis: ~1.4 s of CPU per verifier).
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                session.config.pluginmanager.unregister(reporter)
        return True

    # -- serving -------------------------------------------------------------------------------

    def _serve(self, items: dict[str, pytest.Item], session: pytest.Session) -> None:
        signal.signal(signal.SIGALRM, _alarm)
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
                try:
                    result = self._run_job(item, job, session)
                except RuntimeError as exc:  # a zygote could not be (re)started
                    protocol.send(self.proto_out, "fatal", message=str(exc))
                    return
            result.worker = self.label
            protocol.send(self.proto_out, "result", **result.__dict__)

    def _run_job(self, item: pytest.Item, job: protocol.Job, session: pytest.Session) -> protocol.RunResult:
        result, lost = self._run_once(item, job, session)
        if lost:  # the zygote (its container) died under the run: once more on a fresh one
            result, lost = self._run_once(item, job, session)
            if lost:
                result.message = ("the sandbox process died running this candidate twice\n" + result.message)[:8000]
        return result

    def _run_once(self, item: pytest.Item, job: protocol.Job,
                  session: pytest.Session) -> tuple[protocol.RunResult, bool]:
        from pytest_passk.plugin import candidate_key

        start = time.monotonic()
        link = self._link(job.code)
        spec = {"code": job.code, "timeout": job.timeout, "memory": job.memory, "output_cap": self.output_cap,
                "support": job.support}
        # The candidate's process (forked ahead by its zygote) is taken on the test's first use of it.
        proc = boundary.CandidateProcess(link, spec, GRACE)
        candidate = Candidate(text=job.text, code=job.code, prompt=job.prompt, problem_id=job.problem_id,
                              timeout=job.timeout, index=job.index, process=proc)
        item.config.stash[candidate_key] = candidate
        run = self.current = _Run()
        plan = self._plans.get(item.nodeid)
        if plan is None:
            plan = self._plans[item.nodeid] = _ItemPlan(item)
        hooks = plan.hooks
        # The test body is trusted but may hang on its own: an alarm bounds the whole run.
        signal.setitimer(signal.ITIMER_REAL, job.timeout * (1 + protocol.MAX_EXTENSIONS) + GRACE / 2)
        # As pytest's runtestprotocol does for an item: a fresh request (fixture values) each run.
        has_request = plan.has_request
        if has_request and not item._request:  # type: ignore[attr-defined]
            item._initrequest()  # type: ignore[attr-defined]
        if plan.params:
            item.funcargs.update(plan.params)  # type: ignore[attr-defined]
        if plan.own_candidate:
            item.funcargs["candidate"] = candidate  # type: ignore[attr-defined]
        if plan.request:
            item.funcargs["request"] = item._request  # type: ignore[attr-defined]
        try:
            session._setupstate.teardown_exact(item)  # leave the scopes the previous item needed
            try:
                hooks.pytest_runtest_setup(item=item)
                hooks.pytest_runtest_call(item=item)
            finally:
                hooks.pytest_runtest_teardown(item=item, nextitem=plan.parents)
                if has_request:
                    item._request = False  # type: ignore[attr-defined]
                    item.funcargs = None  # type: ignore[attr-defined]
        except BaseException as exc:  # the phase's own wrapper recorded it; this is the fallback
            if not run.message:
                run.message = _describe(exc)
            if run.call is None and run.setup_reason is None:
                run.setup_reason = _reason_for(exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.current = None
            item.config.stash[candidate_key] = None  # type: ignore[assignment]
        if run.call is not None:
            reason = run.call
        else:
            reason = "skipped" if run.setup_reason == "skipped" else (run.setup_reason if run.setup_reason in (
                "timeout", "crash", "exit", "memory", "malformed") else "setup")
        ended = proc.end(wait=reason != "passed")  # a failure's report carries what the candidate printed
        candidate.cleanup()
        message = "" if reason == "passed" else _trim(run.message, 4 * _MESSAGE_CAP)
        result = protocol.RunResult(id=job.id, outcome="passed" if reason == "passed" else "failed",
                                    reason=reason, message=message, output=str(ended.get("output", "")),
                                    duration=round(time.monotonic() - start, 6), returns=proc.returns)
        if proc.lost_zygote:
            link.kill()
        return result, proc.lost_zygote and reason != "passed"


def _alarm(signum: int, frame: Any) -> None:
    raise TestBodyTimeout("the test body ran past the run's time limit")


#: Frames of pytest, pluggy and pytest-passk itself are left out of failure messages.
_INTERNAL = tuple(os.path.dirname(m.__file__) + os.sep for m in (pytest, protocol) if m.__file__) + (
    os.sep + "_pytest" + os.sep, os.sep + "pluggy" + os.sep)


def _describe(exc: BaseException) -> str:
    """The exception with the test's frames and, for the candidate's own errors, its traceback."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if not any(part in f.filename for part in _INTERNAL)]
        text = "".join(traceback.format_list(frames[-10:]))
        if isinstance(exc, CandidateRaised):
            text += f"{exc.candidate_type} raised by the candidate: {exc}\n"
            if exc.candidate_traceback:
                text += "the candidate's traceback:\n" + exc.candidate_traceback
        elif isinstance(exc, CandidateGone):
            text += f"{exc.message}\n"
        else:
            text += "".join(traceback.format_exception_only(type(exc), exc))
    except BaseException as err:
        text = f"{type(exc).__name__} (its message could not be shown: {type(err).__name__})"
    return _trim(text, 4 * _MESSAGE_CAP)


def _reason_for(exc: BaseException) -> str:
    if isinstance(exc, CandidateGone):
        return exc.reason  # only ever a failure reason (CandidateGone sees to that)
    if isinstance(exc, TestBodyTimeout):
        return "timeout"
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


def not_dumpable() -> None:
    """PR_SET_DUMPABLE 0: processes of the same user (candidates, when pytest does not run as
    root) can no longer open this process's /proc files (its pipes, its memory) or trace it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main() -> int:
    not_dumpable()
    # The protocol gets private copies of stdin/stdout; fds 0 and 1 then point elsewhere, so
    # nothing pytest or a conftest prints can corrupt the protocol stream.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    line = proto_in.readline()
    if not line:
        return 0
    try:
        name, init = protocol.decode(line)
        if name != "init" or init.get("version") != protocol.VERSION:
            raise protocol.ProtocolError(f"expected init of version {protocol.VERSION}, got {name} {init.get('version')}")
        if init.get("cpu") is not None:  # this worker's CPU (sandbox.worker_cpu): its zygotes inherit it
            try:
                os.sched_setaffinity(0, {int(init["cpu"])})
            except (AttributeError, OSError):
                pass  # the CPU went away, or no affinity here: run wherever the OS puts us
        os.chdir(init["invocation_dir"])
        files = sorted({n.split("::", 1)[0] for n in init.get("nodeids", [])})
        rootdir = init.get("rootdir") or init["invocation_dir"]
        args = list(init.get("args", [])) + [
            # --tb=no: pytest's failure formatting costs more than a whole passing run; the
            # verifier describes failures itself (_describe).
            "-p", "no:cacheprovider", "--capture=no", "-q", "-o", "addopts=", "--tb=no",
            "--rootdir", rootdir, "-W", "ignore::pytest.PytestAssertRewriteWarning",
        ] + [os.path.join(rootdir, f) for f in files]
        plugin = VerifierPlugin(init, proto_in, proto_out)
        pytest.main(args, plugins=[plugin])
    except Exception as exc:  # anything here means no job can run: tell the host once, clearly
        protocol.send(proto_out, "fatal", message=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
