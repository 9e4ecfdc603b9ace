"""The suite's numbers as plain data: what the terminal, JUnit, JSON and the gate all read."""
from __future__ import annotations

import math
from typing import Any

from pytest_passk.evaluation import ProblemResult, SuiteResult


def fmt(value: float) -> str:
    return "n<k" if math.isnan(value) else f"{value:.3f}"


def suite_metrics(suite: SuiteResult) -> dict[str, Any]:
    scored = suite.scored
    solved = sum(1 for p in scored if p.solved)
    out: dict[str, Any] = {
        "problems": len(suite.problems),
        "problems_with_samples": len(suite.problems) - len(suite.without_samples),
        "problems_without_samples": len(suite.without_samples),
        # Which problems coverage and pass@k are over: "all" (those without samples count as unsolved)
        # or "with_samples" (--passk-allow-partial).
        "metrics_over": "with_samples" if suite.allow_partial else "all",
        "partial": suite.partial,
        "samples": suite.samples,
        "coverage": _num(suite.coverage),
        "solved": solved,
    }
    for k in suite.ks:
        out[f"pass@{k}"] = _num(suite.pass_at(k))
    out.update({
        "flaky_problems": suite.flaky_problems,
        "flaky_samples": sum(p.flaky for p in suite.problems),
        "runs_executed": suite.runs_executed,
        "runs_reused": suite.runs_cached,
        "runs_per_second": _num(suite.runs_per_second),
        "samples_generated": suite.generated,
        "tokens_generated": suite.tokens_generated,
        "generate_seconds": round(suite.generate_seconds, 3),
        "load_seconds": round(suite.load_seconds, 3),
        "wall_seconds": round(suite.wall_seconds, 3),
        "sandbox": suite.sandbox,
        "store": suite.store,
        "source": suite.backend,
    })
    return out


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def curve_record(suite: SuiteResult) -> dict[str, Any]:
    """The coverage curve and its exponentiated power-law fit ``exp(a * k**-b)``, if one exists."""
    from pytest_passk import stats

    points = suite.curve()
    fit = stats.fit_power_law(points)
    rec: dict[str, Any] = {"k": [k for k, _ in points], "coverage": [_num(v) for _, v in points], "fit": None}
    if fit is not None:
        a, b = fit
        rec["fit"] = {"a": round(a, 6), "b": round(b, 6),
                      "predicted": {str(k): round(stats.power_law(a, b, k), 6) for k in (10, 100, 1000)}}
    return rec


def problem_record(res: ProblemResult) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": res.problem.id, "nodeid": res.problem.nodeid, "n": res.n,
                           "correct": res.correct, "flaky": res.flaky, "min": res.problem.min_correct}
    for k, v in res.pass_at.items():
        rec[f"pass@{k}"] = _num(v)
    rec["reasons"] = dict(res.reasons)
    rec["passed_samples"] = res.passed_samples
    if res.first_failure is not None:
        rec["first_failure"] = {"sample": res.first_failure[0], "reason": res.first_failure[1].reason,
                                "message": res.first_failure[1].message[-2000:]}
    return rec
