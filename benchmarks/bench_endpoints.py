"""Two endpoints vs one, same engine capacity, side by side in one run; then one killed mid-run.

    python benchmarks/bench_endpoints.py [--problems 64] [--n 4] [--max-tokens 384] [--repeat 3]

Two ``vllm serve`` of the tests' tiny model on loopback, each pinned with its engine to its own core
(``taskset``, ``VLLM_CPU_OMP_THREADS_BIND``), so two endpoints are twice the capacity of one. A suite
is generated through endpoint A alone, B alone, and both (requests spread by outstanding work), each
with a fresh store, alternating ``--repeat`` times; reported: generated tokens per second of
generation. Like for like: the run over both gets twice the problems, so each engine does the work it
does alone and every run lasts about as long; and pytest itself runs on the cores of the servers it
uses (one core alone, both with both), so its own CPU comes out of the same capacity in every run.
Target: both within 5% of the sum of the two alone (the median of the repetitions' ratios). Last, a run over both in which A is killed once it has answered a request:
reported are the requests A had in flight (sent again to B) and that every sample arrived.

Execution is left out by default (``--sandbox null``: a sandbox, defined in the suite's conftest, that
passes every run at once): on a 2-core machine the two servers take both cores, and the sandbox's
start-up and runs (~6 ms of CPU a sample) would come out of their capacity in the run over both but
out of the idle core in the runs over one, which is not what the comparison is about.
``--sandbox local`` measures with execution.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

SUITE = '''
import os

import pytest
from pytest_passk import passk

@passk(k=1, n={n}, prompt=lambda i: f"def f{{i}}(x):\\n", style="completion", id=lambda i: f"p{{i}}")
@pytest.mark.parametrize("i", range(int(os.environ.get("BENCH_PROBLEMS", {problems}))))
def test_f(candidate, i):
    assert candidate.text is not None
'''


CONFTEST = '''
import collections

from pytest_passk.protocol import RunResult
from pytest_passk.sandbox import Sandbox


class NullSandbox(Sandbox):
    """Generation measured alone: every run passes at once, nothing is executed."""

    name = "null"
    isolates = True

    def __init__(self, settings):
        super().__init__(settings)
        self.done = collections.deque()

    def start(self, nodeids):
        pass

    def submit(self, job):
        self.done.append(RunResult(id=job.id, outcome="passed", reason=""))

    @property
    def pending(self):
        return len(self.done)

    def next_result(self, timeout):
        return self.done.popleft() if self.done else None

    def close(self):
        pass


def pytest_passk_sandbox(config, name):
    return NullSandbox if name == "null" else None
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--sandbox", default="null", help="null (generation alone) or local")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import pytest  # noqa: F401 - vllm_serve uses pytest.fail for start-up errors

    from tinymodel import make_tiny_model
    from vllm_serve import Server

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = make_tiny_model(folder / "tiny")
        (folder / "test_suite.py").write_text(SUITE.format(n=args.n, problems=args.problems))
        (folder / "conftest.py").write_text(CONFTEST)
        servers = {}
        for name, core in (("A", "0"), ("B", "1")):
            servers[name] = Server(model, folder / f"{name}.log", cpus=core)
        try:
            for server in servers.values():
                server.wait_ready()

            def run(*urls: str, background: bool = False, cpus: str = "0,1", problems: int = args.problems):
                # The client runs on the cores of the servers it uses: a run over one endpoint gets
                # one core for everything, a run over both gets both.
                argv = ["taskset", "-c", cpus, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--passk-sandbox={args.sandbox}",
                        "--passk-store=:memory:", "--passk-runs=1", "--passk-workers=1", "--passk-confirm=0",
                        "--passk-reference-runs=0", "--passk-model=tiny", "--passk-concurrency=4",
                        f"--passk-max-tokens={args.max_tokens}", f"--passk-report={folder / 'report.json'}",
                        *(f"--passk-endpoint={u}" for u in urls)]
                proc = subprocess.Popen(argv, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, "BENCH_PROBLEMS": str(problems)})
                if background:
                    return proc
                out, _ = proc.communicate()
                assert proc.returncode in (0, 1), out[-3000:]
                suite = json.loads((folder / "report.json").read_text())["suite"]
                return {"tokens": suite["tokens_generated"], "seconds": suite["generate_seconds"],
                        "tokens_per_second": round(suite["tokens_generated"] / suite["generate_seconds"], 1),
                        "samples": suite["samples_generated"]}

            a, b = servers["A"].url, servers["B"].url
            results: dict[str, list[float]] = {"A": [], "B": [], "A+B": []}
            ratios = []
            for _ in range(args.repeat):  # alternating, so machine noise hits every contender alike
                rep = {}
                # Both endpoints get twice the work, so every run lasts about as long: the tail
                # (the last requests finishing with a shrinking batch) weighs the same in each.
                for name, urls, cpus, problems in (("A", (a,), "0", args.problems), ("B", (b,), "1", args.problems),
                                                   ("A+B", (a, b), "0,1", 2 * args.problems)):
                    rec = run(*urls, cpus=cpus, problems=problems)
                    rep[name] = rec["tokens_per_second"]
                    results[name].append(rec["tokens_per_second"])
                    print(json.dumps({"endpoints": name, **rec}), flush=True)
                ratios.append(rep["A+B"] / (rep["A"] + rep["B"]))
            print(json.dumps({"tokens_per_second": results, "both_vs_sum_per_repetition": [round(r, 3) for r in ratios],
                              "both_vs_sum_median": round(statistics.median(ratios), 3)}), flush=True)

            # one endpoint killed mid-run
            posts = lambda s: sum(1 for r in s.requests() if r.startswith("POST"))  # noqa: E731
            before_a, before_b = posts(servers["A"]), posts(servers["B"])
            proc = run(a, b, background=True)  # (the problems the runs over one had)
            while posts(servers["A"]) == before_a and proc.poll() is None:
                time.sleep(0.02)
            servers["A"].kill()
            answered_a = posts(servers["A"]) - before_a
            out, _ = proc.communicate()
            suite = json.loads((folder / "report.json").read_text())["suite"]
            sent_b = posts(servers["B"]) - before_b
            moved = suite["source"].split(" in flight moved")[0].rsplit(" ", 1)[-1]
            print(json.dumps({"killed": "A", "answered_by_A": answered_a, "answered_by_B": sent_b,
                              "in_flight_on_A_moved_to_B": int(moved), "lost_otherwise": args.problems - answered_a - sent_b,
                              "samples": suite["samples"], "expected": args.problems * args.n}), flush=True)
        finally:
            for server in servers.values():
                server.stop()


if __name__ == "__main__":
    main()
