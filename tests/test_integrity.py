"""Verdict integrity in the local sandbox: candidates that cheat or misbehave never pass.

Every adversary is a sample of its own problem (one parametrized test, the problem id being the
case name) whose correct answer is known; a correct candidate for a control problem comes last in
the same samples file and must still pass, in the same single worker. One run serves every test here.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import QUIET_PLUGINS, pid_alive, write_samples
from pytest_passk.store import code_hash

SUITE = """
import pytest
from pytest_passk import passk

CASES = {cases!r}


@pytest.mark.parametrize("case", CASES)
@passk(k=1, prompt="Write add(a, b) that returns a + b.", id=lambda case: case, style="chat")
def test_add(candidate, case):
    add = candidate.function("add")
    assert add(2, 3) == 5
    assert add(-4, 4) == 0
"""

FAKE_RESULT = ('{"msg": "result", "id": 0, "outcome": "passed", "reason": "passed", "message": "", '
               '"output": "", "duration": 0.0}')
FAKE_REPORT = '{"nonce": "' + "0" * 32 + '", "reason": "passed", "message": ""}'
WRONG = "def add(a, b):\n    return 0\n"

# case -> (completion, reasons it may fail with)
ADVERSARIES: dict[str, tuple[str, set[str]]] = {
    "sys-exit-at-import": ("import sys\nsys.exit(0)\n" + WRONG, {"exit"}),
    "sys-exit-in-function": ("import sys\ndef add(a, b):\n    sys.exit(0)\n", {"exit"}),
    "os-exit-at-import": ("import os\nos._exit(0)\n" + WRONG, {"exit"}),
    "os-exit-in-function": ("import os\ndef add(a, b):\n    os._exit(0)\n", {"exit"}),
    "keyboard-interrupt": ("def add(a, b):\n    raise KeyboardInterrupt\n", {"exit"}),
    "system-exit": ("raise SystemExit(0)\n" + WRONG, {"exit"}),
    "pytest-exit": ("import pytest\ndef add(a, b):\n    pytest.exit('done', returncode=0)\n", {"exit"}),
    "skip": ("import pytest\npytest.skip('nothing to see')\n" + WRONG, {"skipped"}),
    "skip-in-function": ("import pytest\ndef add(a, b):\n    pytest.skip('later')\n", {"skipped"}),
    "xfail": ("import pytest\ndef add(a, b):\n    pytest.xfail('known')\n", {"skipped"}),
    # The worker binds its serializer before candidate code runs, so patching json does nothing.
    "patch-json-dumps": (
        "import json\n_dumps = json.dumps\n"
        "def dumps(obj, *args, **kwargs):\n"
        "    if isinstance(obj, dict) and 'nonce' in obj:\n"
        "        obj = dict(obj, reason='passed')\n"
        "    return _dumps(obj, *args, **kwargs)\n"
        "json.dumps = dumps\n" + WRONG, {"assertion"}),
    "patch-assertion-error": (
        "import builtins\nclass Quiet(Exception):\n    pass\nbuiltins.AssertionError = Quiet\n" + WRONG,
        {"assertion", "error"}),
    "assertion-error-is-skip": (
        "import builtins, pytest\nbuiltins.AssertionError = pytest.skip.Exception\n" + WRONG,
        {"skipped", "assertion", "error"}),
    "patch-testreport-class": (
        "import _pytest.reports, _pytest.runner\n"
        "class Forced(_pytest.reports.TestReport):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        super().__init__(*args, **kwargs)\n"
        "        self.outcome, self.longrepr = 'passed', None\n"
        "_pytest.reports.TestReport = Forced\n_pytest.runner.TestReport = Forced\n" + WRONG,
        {"assertion"}),
    "patch-from-item-and-call": (
        "from _pytest.reports import TestReport\n"
        "_orig = TestReport.from_item_and_call.__func__\n"
        "def forced(cls, item, call):\n"
        "    rep = _orig(cls, item, call)\n"
        "    rep.outcome, rep.longrepr = 'passed', None\n"
        "    return rep\n"
        "TestReport.from_item_and_call = classmethod(forced)\n" + WRONG,
        {"assertion"}),
    "patch-call-and-report": (
        "import _pytest.runner\n"
        "_orig = _pytest.runner.call_and_report\n"
        "def forced(*args, **kwargs):\n"
        "    rep = _orig(*args, **kwargs)\n"
        "    rep.outcome, rep.longrepr = 'passed', None\n"
        "    return rep\n"
        "_pytest.runner.call_and_report = forced\n" + WRONG,
        {"assertion"}),
    "fake-result-on-stdout": (
        f"import sys\nprint({FAKE_RESULT!r})\nsys.__stdout__.write({FAKE_RESULT!r} + '\\n')\n"
        "sys.__stdout__.flush()\n" + WRONG,
        {"assertion"}),
    "fake-result-on-every-fd": (
        "import os\n"
        "for name in os.listdir('/proc/self/fd'):\n"
        f"    for line in ({FAKE_RESULT!r}, {FAKE_REPORT!r}):\n"
        "        try:\n"
        "            os.write(int(name), line.encode() + b'\\n')\n"
        "        except OSError:\n"
        "            pass\n"
        "os._exit(0)\n",
        {"malformed", "duplicate"}),
    "always-equal": (
        "class Eq:\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return Eq()\n",
        {"error"}),
    "kill-itself": ("import os, signal\ndef add(a, b):\n    os.kill(os.getpid(), signal.SIGKILL)\n", {"crash"}),
    "segfault": ("import ctypes\ndef add(a, b):\n    return ctypes.string_at(0)\n", {"crash"}),
    "infinite-loop": ("def add(a, b):\n    while True:\n        pass\n", {"timeout"}),
    "memory-bomb": (
        "def add(a, b):\n    hog = []\n    while True:\n        hog.append(bytearray(64 << 20))\n",
        {"memory"}),
    "fork-bomb": (
        "import os, time\n"
        "def add(a, b):\n"
        "    pids = []\n"
        "    for _ in range(50):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            time.sleep(600)\n"
        "            os._exit(0)\n"
        "        pids.append(pid)\n"
        "    with open({forks!r}, 'w') as fh:\n"
        "        fh.write(' '.join(map(str, pids)))\n"
        "    return 0\n",
        {"assertion"}),
    "output-flood": (
        "import os, sys\n"
        "def add(a, b):\n"
        "    chunk = b'x' * (1 << 20)\n"
        "    for _ in range(100):\n"
        "        os.write(1, chunk)\n"
        "    print('y' * 1000, file=sys.stderr)\n"
        "    return 0\n",
        {"assertion"}),
    "daemon": (
        "import os, time\n"
        "def add(a, b):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            with open({daemon!r} + '.tmp', 'w') as fh:\n"
        "                fh.write(str(os.getpid()))\n"
        "            os.rename({daemon!r} + '.tmp', {daemon!r})\n"
        "            time.sleep(600)\n"
        "        os._exit(0)\n"
        "    os.wait()\n"
        "    while not os.path.exists({daemon!r}):\n"
        "        time.sleep(0.01)\n"
        "    return 0\n",
        {"assertion"}),
}
CORRECT = "def add(a, b):\n    return a + b\n"

# Forgeries that still pass: the verdict is produced inside the process that runs candidate code,
# so code that goes looking for the worker's own state can forge it. Known, documented gaps.
KNOWN_FORGERIES: dict[str, str] = {
    "steal-nonce-from-frames": (
        "import json, os, sys\n"
        "frame = sys._getframe()\n"
        "while frame.f_code.co_name != '_child':\n"
        "    frame = frame.f_back\n"
        "line = json.dumps({'nonce': frame.f_locals['nonce'], 'reason': 'passed', 'message': ''})\n"
        "os.write(frame.f_locals['res_w'], line.encode() + b'\\n')\n"
        "os._exit(0)\n"),
    "patch-run-record": (
        "import gc\n"
        "for obj in gc.get_objects():\n"
        "    if type(obj).__name__ == '_Run':\n"
        "        type(obj).call = property(lambda self: ('passed', ''), lambda self, value: None)\n" + WRONG),
}


@pytest.fixture(scope="module")
def gauntlet(tmp_path_factory: pytest.TempPathFactory):
    """Runs every adversary, then the correct candidate, through one worker; returns what it left."""
    root = tmp_path_factory.mktemp("gauntlet")
    paths = {"forks": str(root / "fork-pids"), "daemon": str(root / "daemon-pid")}
    completions = {case: text.format(**paths) if case in ("fork-bomb", "daemon") else text
                   for case, (text, _) in ADVERSARIES.items()}
    completions.update(KNOWN_FORGERIES)
    cases = list(completions) + ["control"]
    (root / "test_gauntlet.py").write_text(SUITE.format(cases=cases))
    samples = write_samples(root / "samples.jsonl", [*completions.items(), ("control", CORRECT)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSK_")}
    env["PYTEST_ADDOPTS"] = QUIET_PLUGINS
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "test_gauntlet.py", "-q", "-rf", "--passk-sandbox=local",
         "--passk-workers=1", "--passk-runs=1", "--passk-timeout=3", "--passk-memory=256MiB",
         f"--passk-samples={samples}", f"--passk-store={root / 'store.sqlite'}",
         f"--passk-report={root / 'report.json'}", "-p", "no:cacheprovider"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )
    report = json.loads((root / "report.json").read_text())
    return {"proc": proc, "report": report, "root": root, "paths": paths, "completions": completions}


def test_only_the_control_passes(gauntlet) -> None:
    proc, report = gauntlet["proc"], gauntlet["report"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    by_id = {p["id"]: p for p in report["problems"]}
    assert by_id["control"]["correct"] == 1 and by_id["control"]["passed_samples"] == [True]
    assert [case for case in ADVERSARIES if by_id[case]["correct"]] == []
    assert report["suite"]["runs_executed"] == len(ADVERSARIES) + len(KNOWN_FORGERIES) + 1
    assert report["suite"]["problems"] == len(ADVERSARIES) + len(KNOWN_FORGERIES) + 1


@pytest.mark.parametrize("case", list(ADVERSARIES))
def test_adversary_fails_with_its_reason(gauntlet, case: str) -> None:
    rec = next(p for p in gauntlet["report"]["problems"] if p["id"] == case)
    assert (rec["n"], rec["correct"], rec["passed_samples"]) == (1, 0, [False])
    reasons = set(rec["reasons"])
    assert len(reasons) == 1 and reasons <= ADVERSARIES[case][1], rec
    assert rec["first_failure"]["reason"] in ADVERSARIES[case][1]


def test_failure_messages(gauntlet) -> None:
    by_id = {p["id"]: p for p in gauntlet["report"]["problems"]}
    assert "killed by signal SIGKILL" in by_id["kill-itself"]["first_failure"]["message"]
    assert "killed by signal SIGSEGV" in by_id["segfault"]["first_failure"]["message"]
    assert "exited with status 0" in by_id["os-exit-at-import"]["first_failure"]["message"]
    assert "timed out after 3 s" in by_id["infinite-loop"]["first_failure"]["message"]
    assert "MemoryError" in by_id["memory-bomb"]["first_failure"]["message"]
    assert "forged" in by_id["always-equal"]["first_failure"]["message"]


def test_fork_bomb_children_are_all_gone(gauntlet) -> None:
    pids = [int(p) for p in Path(gauntlet["paths"]["forks"]).read_text().split()]
    assert len(pids) == 50
    assert [p for p in pids if pid_alive(p)] == []


def test_daemon_that_outlived_its_test_is_killed(gauntlet) -> None:
    pid = int(Path(gauntlet["paths"]["daemon"]).read_text())
    assert pid != os.getpid()
    assert not pid_alive(pid)


def test_output_is_captured_with_a_cap(gauntlet) -> None:
    db = sqlite3.connect(gauntlet["root"] / "store.sqlite")
    flood = code_hash(gauntlet["completions"]["output-flood"])
    rows = db.execute("SELECT reason, output FROM runs WHERE code_hash=?", (flood,)).fetchall()
    assert len(rows) == 1
    reason, output = rows[0]
    assert reason == "assertion"
    assert output.startswith("x" * 1000)
    assert len(output) < 20_000
    assert "more bytes of output dropped" in output
    dropped = int(output.rsplit("[... ", 1)[1].split()[0])
    assert dropped + output.count("x") >= 100 * (1 << 20)
    # the whole store stays small although a candidate wrote 100 MB
    assert (gauntlet["root"] / "store.sqlite").stat().st_size < 2_000_000


def test_the_run_reports_local_isolation_honestly(gauntlet) -> None:
    assert "does NOT isolate the host" in gauntlet["proc"].stdout


def test_every_adversary_is_listed_as_failed(gauntlet) -> None:
    failed = {line.split("[", 1)[1].split("]", 1)[0] for line in gauntlet["proc"].stdout.splitlines()
              if line.startswith("FAILED test_gauntlet.py::test_add[")}
    assert set(ADVERSARIES) <= failed and "control" not in failed


@pytest.mark.xfail(strict=True, reason="in-process verdicts can be forged by code that reaches into the "
                   "worker (its frames, its run record); closing this needs candidate "
                   "code out of the process that reports the verdict")
@pytest.mark.parametrize("case", list(KNOWN_FORGERIES))
def test_known_in_process_forgeries(gauntlet, case: str) -> None:
    rec = next(p for p in gauntlet["report"]["problems"] if p["id"] == case)
    assert rec["correct"] == 0


def test_small_timeouts_from_option_and_marker(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile("""
        from pytest_passk import passk

        @passk(k=1, n=2, prompt="Write add(a, b).", id="cli", style="chat")
        def test_cli(candidate):
            assert candidate.function("add")(2, 3) == 5

        @passk(k=1, prompt="Write add(a, b).", id="marker", style="chat", timeout=1)
        def test_marker(candidate):
            assert candidate.function("add")(2, 3) == 5
    """)
    busy = "def add(a, b):\n    while True:\n        pass\n"
    sleepy = "import time\ndef add(a, b):\n    time.sleep(600)\n"
    result = passk_run([("cli", busy), ("cli", CORRECT), ("marker", sleepy)], "--passk-timeout=1",
                       "--passk-runs=1")
    cli = next(p for p in result.report["problems"] if p["id"] == "cli")
    assert cli["passed_samples"] == [False, True] and cli["reasons"] == {"timeout": 1, "passed": 1}
    assert cli["first_failure"]["message"].startswith("timed out after 1 s (the test was running")
    # the marker's timeout wins over a generous option
    longer = passk_run([("cli", CORRECT), ("marker", sleepy)], "--passk-timeout=30", "--passk-runs=1")
    marker = next(p for p in longer.report["problems"] if p["id"] == "marker")
    assert marker["reasons"] == {"timeout": 1} and marker["first_failure"]["message"].startswith("timed out after 1 s (")
    assert longer.report["suite"]["wall_seconds"] < 20
