"""Execution on a local two-node Ray cluster vs the same cores without Ray, side by side in one run.

    python benchmarks/bench_ray.py [--problems 30] [--samples 6]   (as root: it enters a network
                                                                     namespace with only loopback)

A synthetic suite (each test body does ~2 ms of work) replays ``--samples`` distinct programs per
problem, two runs each. Without Ray: the local sandbox with 2 workers. With Ray: a cluster of two
nodes of 1 CPU each (Ray's cluster utilities, on loopback), each node's actor holding a local
sandbox with 1 worker. Reported: execution time and runs/s from the JSON report (engine start-up
excluded), the wall time, and the per-run overhead Ray adds. Target: no more than 15% lost.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = '''
import pytest
from pytest_passk import passk

@passk(k=1, n={samples}, prompt=lambda i: f"Write f{{i}}(x).", style="chat", id=lambda i: f"p{{i}}")
@pytest.mark.parametrize("i", range({problems}))
def test_f(candidate, i):
    total = sum(range(60000))  # the verifier's own work, ~2 ms
    assert candidate.function(f"f{{i}}")(total) == total + 1
'''


def make_suite(folder: Path, problems: int, samples: int) -> Path:
    (folder / "test_suite.py").write_text(SUITE.format(problems=problems, samples=samples))
    rows = [{"task_id": f"p{i}", "completion": f"def f{i}(x):\n    return x + {1 if j % 3 else 2}  # {j}\n"}
            for i in range(problems) for j in range(samples)]
    path = folder / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=30)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inside:  # Ray binds to loopback only when loopback is the only interface
        if os.geteuid() != 0 or not shutil.which("unshare"):
            raise SystemExit("run as root with unshare available: Ray needs a loopback-only network namespace here")
        os.execvp("unshare", ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                              sys.executable, __file__, "--inside", *sys.argv[1:]])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        samples = make_suite(folder, args.problems, args.samples)
        common = ["-p", "no:cacheprovider", "-q", "--passk-sandbox=local", f"--passk-samples={samples}",
                  "--passk-store=:memory:", f"--passk-report={folder / 'report.json'}"]
        runs: dict[str, list[dict]] = {"local": [], "ray": []}
        for _ in range(args.repeat):  # alternate, so drift on a shared machine hits both alike
            t0 = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "pytest", *common, "--passk-workers=2"], cwd=folder,
                                  capture_output=True, text=True)
            assert proc.returncode in (0, 1), proc.stdout[-3000:]
            runs["local"].append({"wall": time.monotonic() - t0,
                                  **json.loads((folder / "report.json").read_text())["suite"]})
            driver = subprocess.run([sys.executable, str(ROOT / "tests" / "ray_cluster.py"), "--cwd", str(folder),
                                     "--", *common], capture_output=True, text=True,
                                    env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"))
            rec = json.loads(driver.stdout.strip().splitlines()[-1])
            assert rec["returncode"] in (0, 1), rec["output"][-3000:]
            runs["ray"].append({"wall": rec["seconds"], **json.loads((folder / "report.json").read_text())["suite"]})
            for name in runs:
                s = runs[name][-1]
                print(json.dumps({"mode": name, "runs": s["runs_executed"], "runs_per_second": s["runs_per_second"],
                                  "wall": round(s["wall"], 2), "sandbox": s["sandbox"][:100]}), flush=True)
    local = statistics.median(r["runs_per_second"] for r in runs["local"])
    ray = statistics.median(r["runs_per_second"] for r in runs["ray"])
    # Two workers in both: the extra wall time per run, times the workers, is each run's overhead.
    per_run_ms = (1 / ray - 1 / local) * 2 * 1000
    startup = statistics.median(r["wall"] - r["runs_executed"] / r["runs_per_second"] for r in runs["ray"]) - \
        statistics.median(r["wall"] - r["runs_executed"] / r["runs_per_second"] for r in runs["local"])
    print(json.dumps({"median_runs_per_second": {"local": local, "ray": ray}, "throughput_lost": round(1 - ray / local, 3),
                      "ray_overhead_ms_per_run": round(per_run_ms, 2), "startup_extra_seconds": round(startup, 1)}))

if __name__ == "__main__":
    main()
