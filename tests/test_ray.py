"""Execution on a Ray cluster (``--passk-ray``): a local two-node cluster (Ray's own cluster utilities)
inside a network namespace where only loopback is up, one node removed mid-run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import write_samples

SUITE = """
    import os
    import time

    import pytest
    from pytest_passk import passk

    @passk(k=1, n=4, prompt=lambda i: f"Write add{i}(a, b).", style="chat", id=lambda i: f"p{i}")
    @pytest.mark.parametrize("i", range(6))
    def test_add(candidate, i):
        time.sleep(0.2)
        with open(os.environ["MARK_FILE"], "a") as fh:  # which node ran this body
            fh.write(os.environ.get("PASSK_RAY_NODE", "no node") + "\\n")
        assert candidate.function(f"add{i}")(2, 3) == 5
"""
ROWS = [(f"p{i}", f"def add{i}(a, b):\n    return a {'+' if j % 2 == 0 else '-'} b  # {j}\n")
        for i in range(6) for j in range(4)]
DRIVER = Path(__file__).with_name("ray_cluster.py")


def need_ray_namespace() -> None:
    """Ray, and a way to give it a network namespace with loopback only (root and unshare)."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        if os.environ.get("PASSK_REQUIRE_RAY") == "1":
            pytest.fail(f"PASSK_REQUIRE_RAY=1 but Ray is not importable ({exc}); pip install 'pytest-passk[ray]'")
        pytest.skip(f"Ray is not installed ({exc}): pip install 'pytest-passk[ray]'")
    problem = None
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        problem = "needs root, unshare and ip to run Ray in a loopback-only network namespace"
    elif subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        problem = "unshare -n is not permitted here"
    if problem:
        if os.environ.get("PASSK_REQUIRE_RAY") == "1":
            pytest.fail(f"PASSK_REQUIRE_RAY=1: {problem}")
        pytest.skip(problem)


def in_cluster(cwd: Path, *args: str, env: dict[str, str]) -> dict:
    script = 'ip link set lo up && exec "$@"'
    proc = subprocess.run(["unshare", "-n", "--", "sh", "-c", script, "sh", sys.executable, str(DRIVER),
                           "--cwd", str(cwd), *args], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_nodes_one_removed_mid_run_loses_and_duplicates_nothing(pytester: pytest.Pytester) -> None:
    need_ray_namespace()
    pytester.makepyfile(test_suite=SUITE)
    samples = write_samples(pytester.path / "samples.jsonl", ROWS)
    marks = pytester.path / "marks.txt"
    env = dict(os.environ, MARK_FILE=str(marks), RAY_USAGE_STATS_ENABLED="0")
    out = in_cluster(pytester.path, "--remove-after", "10", "--marker", str(marks), "--",
                     "-p", "no:cacheprovider", "--passk-sandbox=local", f"--passk-samples={samples}",
                     "--passk-store=store.sqlite", "--passk-report=report.json", env=env)
    assert out["returncode"] == 0, out["output"][-6000:]
    assert out["removed"] is not None, "the run ended before the node was removed"
    report = json.loads((pytester.path / "report.json").read_text())
    suite = report["suite"]
    # every distinct candidate ran twice (--passk-runs=2), each verdict taken once: a duplicate
    # result would have been refused by the controller, a lost one would leave a problem short
    assert (suite["samples"], suite["runs_executed"]) == (24, 48)
    assert [(p["n"], p["correct"]) for p in report["problems"]] == [(4, 2)] * 6
    assert "lost 1 node(s) mid-run" in suite["sandbox"], suite["sandbox"]
    ran = Counter(marks.read_text().splitlines())
    assert len(ran) == 2 and "no node" not in ran, ran  # both nodes ran bodies
    assert sum(ran.values()) >= 48  # runs in flight on the lost node ran again elsewhere
    lost = next(label for label in ran if label.endswith(out["second_node"][:8]))
    assert ran[lost] <= out["removed"]["after"] + 2  # nothing ran there after it was removed

    # The store has every verdict: a second run executes nothing.
    again = in_cluster(pytester.path, "--", "-p", "no:cacheprovider", "--passk-sandbox=local",
                       f"--passk-samples={samples}", "--passk-store=store.sqlite", "--passk-report=again.json",
                       env=env)
    assert again["returncode"] == 0, again["output"][-4000:]
    assert json.loads((pytester.path / "again.json").read_text())["suite"]["runs_executed"] == 0


def test_each_node_runs_the_docker_sandbox(pytester: pytest.Pytester) -> None:
    need_ray_namespace()
    from conftest import need_docker

    need_docker()
    pytester.makepyfile(test_suite=SUITE)
    samples = write_samples(pytester.path / "samples.jsonl", ROWS[:8])  # p0 and p1
    marks = pytester.path / "marks.txt"
    env = dict(os.environ, MARK_FILE=str(marks), RAY_USAGE_STATS_ENABLED="0")
    out = in_cluster(pytester.path, "--", "-p", "no:cacheprovider", "--passk-sandbox=docker",
                     f"--passk-samples={samples}", "--passk-store=:memory:", "--passk-report=report.json",
                     "-k", "add[0] or add[1]", env=env)
    assert out["returncode"] == 0, out["output"][-6000:]
    suite = json.loads((pytester.path / "report.json").read_text())["suite"]
    assert suite["samples"] == 8 and suite["runs_executed"] >= 16
    assert "on each node docker: docker" in suite["sandbox"], suite["sandbox"]
    assert "WARNING: sandbox" not in out["output"]  # containers isolate: no warning about the host


def test_unreachable_cluster_is_one_clear_error(pytester: pytest.Pytester, passk_run) -> None:
    pytest.importorskip("ray")
    pytester.makepyfile(test_suite=SUITE)
    result = passk_run(ROWS, "--passk-ray=127.0.0.1:1", report=False, subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: passk: cannot join the Ray cluster at '127.0.0.1:1'*--passk-ray*"])
