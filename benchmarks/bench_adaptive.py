"""Adaptive sampling (--passk-budget) against uniform sampling at equal total samples.

    python benchmarks/bench_adaptive.py [--problems 200] [--recorded 1024] [--seeds 5] [--no-e2e]
    python benchmarks/bench_adaptive.py --report report.json [--shares 2,4,8]

With ``--report``, the recording is your own: the JSON report of a uniform run over a samples file
(``pytest SUITE --passk-samples=FILE --passk-report=report.json``, every sample executed) gives each
problem's verdicts in file order (``passed_samples``), and both policies are replayed on them, as
``--passk-budget`` with the same samples file would serve them.

Recorded samples: each problem has a success rate drawn from a Beta distribution and a recording of
``--recorded`` verdicts drawn at that rate; every policy reads a problem's samples in recorded order
(as a replayed samples file serves them). Two regimes:

- easy: rates ~ Beta(1.5, 1) -- most problems are solved within a few samples;
- hard: rates ~ Beta(0.05, 2) -- most problems are rarely or never solved.

For each regime and per-problem share S (uniform draws S samples of every problem), it reports the
coverage uniform reaches, the coverage the adaptive policy reaches with the same S x problems samples,
and the fewest samples the adaptive policy needs to reach uniform's coverage (and the ratio).

The policy measured is the plugin's own (:class:`pytest_passk.adaptive.Policy`), run on the
recorded verdicts. Unless ``--no-e2e``, one configuration is also run end to end through pytest
(a samples file replayed with --passk-budget, local sandbox) to check that the plugin's coverage is
the simulation's.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_passk.adaptive import Policy, simulate  # noqa: E402

REGIMES = {"easy": (1.5, 1.0), "hard": (0.05, 2.0)}


def record(problems: int, recorded: int, a: float, b: float, seed: int) -> list[list[bool]]:
    rng = np.random.default_rng(seed)
    return [list(rng.random(recorded) < p) for p in rng.beta(a, b, size=problems)]


def uniform(verdicts: list[list[bool]], share: int) -> int:
    return sum(1 for v in verdicts if any(v[:share]))


def early_stop(verdicts: list[list[bool]], share: int) -> int:
    """Samples uniform sampling spends for its own coverage when it stops each problem at its first
    pass: a reference for any policy that sees only verdicts (before a first pass, problems of
    this kind cannot be told apart, so each unsolved one still takes the full share)."""
    return sum(next((j + 1 for j, ok in enumerate(v[:share]) if ok), share) for v in verdicts)


def needed(verdicts: list[list[bool]], target: int, high: int) -> int:
    """The fewest total samples (searched to within 1% of ``high``) with which the adaptive policy
    solves ``target`` problems."""
    if simulate(Policy(high), verdicts)[1] < target:
        return -1
    low, step = 0, max(1, high // 100)
    while high - low > step:
        mid = (low + high) // 2
        if mid and simulate(Policy(mid), verdicts)[1] >= target:
            high = mid
        else:
            low = mid
    return high


def run(problems: int, recorded: int, seeds: int, shares: list[int]) -> list[dict]:
    rows = []
    for regime, (a, b) in REGIMES.items():
        for share in shares:
            budget = share * problems
            uni, ada, need, stop = [], [], [], []
            for seed in range(seeds):
                verdicts = record(problems, recorded, a, b, seed)
                u = uniform(verdicts, share)
                drawn, solved = simulate(Policy(budget), verdicts)
                assert drawn <= budget
                uni.append(u / problems)
                ada.append(solved / problems)
                need.append(needed(verdicts, u, budget))
                stop.append(early_stop(verdicts, share))
            rows.append({"regime": regime, "share": share, "budget": budget,
                         "uniform": float(np.mean(uni)), "adaptive": float(np.mean(ada)),
                         "worse_seeds": sum(1 for x, y in zip(ada, uni) if x < y),
                         "samples_to_match": float(np.mean(need)),
                         "saving": budget / float(np.mean(need)),
                         "early_stop": float(np.mean(stop)), "early_stop_saving": budget / float(np.mean(stop))})
    return rows


SUITE = """
import pytest
from pytest_passk import passk

@pytest.mark.parametrize("i", range({problems}))
@passk(k=1, prompt=lambda i: f"Write f{{i}}().", id=lambda i: f"p{{i}}", style="chat")
def test_p(candidate, i):
    assert candidate.function("f")() == 1
"""


def end_to_end(problems: int, recorded: int, share: int, seed: int) -> dict:
    verdicts = record(problems, recorded, *REGIMES["easy"], seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_bench.py").write_text(SUITE.format(problems=problems))
        with open(folder / "samples.jsonl", "w") as fh:
            for i, vs in enumerate(verdicts):
                for j, ok in enumerate(vs):
                    code = f"def f():\n    return {1 if ok else 0}  # {j}\n"
                    fh.write(json.dumps({"task_id": f"p{i}", "completion": code}) + "\n")
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--passk-sandbox=local",
                        "--passk-store=:memory:", "--passk-samples=samples.jsonl", "--passk-confirm=0",
                        f"--passk-budget={share * problems}", "--passk-report=report.json", "test_bench.py"],
                       cwd=folder, capture_output=True, check=False)
        wall = time.monotonic() - t0
        report = json.loads((folder / "report.json").read_text())["suite"]
    drawn, solved = simulate(Policy(share * problems), verdicts)
    return {"plugin_coverage": report["coverage"], "plugin_samples": report["samples"],
            "simulated_coverage": solved / problems, "simulated_samples": drawn, "rounds": report["rounds"],
            "uniform_coverage": uniform(verdicts, share) / problems, "wall_seconds": round(wall, 1)}


def from_report(path: Path) -> tuple[list[str], list[list[bool]]]:
    """Problem ids and their verdicts in file order, from the JSON report of a uniform run (problems
    whose verifier is broken are left out, as the plugin leaves them out of the metrics)."""
    report = json.loads(path.read_text())
    problems = [p for p in report["problems"] if p.get("verifier") != "broken"]
    return [p["id"] for p in problems], [list(p["passed_samples"]) for p in problems]


def run_recorded(verdicts: list[list[bool]], shares: list[int]) -> list[dict]:
    rows = []
    problems = len(verdicts)
    for share in shares:
        budget = share * problems
        if share > min(len(v) for v in verdicts):
            continue  # uniform cannot draw more samples than the file has
        u = uniform(verdicts, share)
        drawn, solved = simulate(Policy(budget), verdicts)
        need = needed(verdicts, u, budget)
        stop = early_stop(verdicts, share)
        rows.append({"regime": "recorded", "share": share, "budget": budget, "uniform": u / problems,
                     "adaptive": solved / problems, "worse_seeds": int(solved < u), "drawn": drawn,
                     "samples_to_match": float(need), "saving": budget / need if need > 0 else float("nan"),
                     "early_stop": stop, "early_stop_saving": budget / stop})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--recorded", type=int, default=1024)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shares", default="4,16,64,256")
    parser.add_argument("--no-e2e", action="store_true")
    parser.add_argument("--report", type=Path, help="replay the verdicts of this uniform run's JSON report")
    args = parser.parse_args()
    shares = [int(s) for s in args.shares.split(",")]
    if args.report:
        ids, verdicts = from_report(args.report)
        if not verdicts or min(len(v) for v in verdicts) == 0:
            parser.error(f"{args.report}: every problem needs samples (problems without: "
                         f"{[i for i, v in zip(ids, verdicts) if not v][:5]})")
        print(f"{len(verdicts)} problems of {args.report}, {min(map(len, verdicts))} to {max(map(len, verdicts))} "
              "recorded samples each")
        print(f"{'S':>5} {'budget':>7} {'uniform':>8} {'adaptive':>9} {'drawn':>6} {'samples to match':>17} {'saving':>7}"
              f" {'stop at 1st pass':>17}")
        for r in run_recorded(verdicts, shares):
            print(f"{r['share']:>5} {r['budget']:>7} {r['uniform']:>8.3f} {r['adaptive']:>9.3f} {r['drawn']:>6} "
                  f"{r['samples_to_match']:>17.0f} {r['saving']:>6.1f}x {r['early_stop']:>10} {r['early_stop_saving']:>5.1f}x")
        return
    rows = run(args.problems, args.recorded, args.seeds, shares)
    print(f"{args.problems} problems, {args.recorded} recorded samples each, mean of {args.seeds} recordings")
    print(f"{'regime':<6} {'S':>5} {'budget':>7} {'uniform':>8} {'adaptive':>9} {'worse':>6} "
          f"{'samples to match':>17} {'saving':>7} {'stop at 1st pass':>17}")
    for r in rows:
        print(f"{r['regime']:<6} {r['share']:>5} {r['budget']:>7} {r['uniform']:>8.3f} {r['adaptive']:>9.3f} "
              f"{r['worse_seeds']:>6} {r['samples_to_match']:>17.0f} {r['saving']:>6.1f}x "
              f"{r['early_stop']:>10.0f} {r['early_stop_saving']:>5.1f}x")
    if not args.no_e2e:
        e2e = end_to_end(problems=40, recorded=64, share=8, seed=0)
        print("end to end (40 problems, 64 recorded samples each, budget 8 x 40, easy regime):", json.dumps(e2e))


if __name__ == "__main__":
    main()
