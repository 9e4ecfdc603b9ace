"""The suite's numbers as plain data: what the terminal, JUnit, JSON and the gate all read."""
from __future__ import annotations

import math
from typing import Any

from pytest_passk.evaluation import ProblemResult, SuiteResult
from pytest_passk.report import checks
from pytest_passk.report.analysis import Analysis, Cost, Estimate, analyse


def fmt(value: float) -> str:
    return "n<k" if math.isnan(value) else f"{value:.3f}"


def suite_metrics(suite: SuiteResult, analysis: Analysis | None = None) -> dict[str, Any]:
    """The ``suite`` object of the JSON report (and, flattened, the JUnit suite properties)."""
    analysis = analysis or analyse(suite)
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
        "coverage_ci": _ci(analysis.coverage),
        "solved": solved,
    }
    for k in suite.ks:
        out[f"pass@{k}"] = _num(suite.pass_at(k))
        out[f"pass@{k}_ci"] = _ci(analysis.pass_at[k])
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
        "extrapolation": extrapolation_record(analysis),
        "cost": cost_record(analysis),
    })
    out.update(checks.suite_fields(suite))
    return out


def _ci(est: Estimate) -> list[float | None] | None:
    if math.isnan(est.low):
        return None
    return [_num(est.low), _num(est.high)]


def _estimate(est: Estimate) -> dict[str, float | None]:
    return {"value": _num(est.value), "low": _num(est.low), "high": _num(est.high)}


def extrapolation_record(analysis: Analysis) -> dict[str, Any]:
    fit = analysis.fit
    rec: dict[str, Any] = {
        "method": "beta-binomial",
        "alpha": None if fit is None else round(fit.alpha, 6),
        "beta": None if fit is None else round(fit.beta, 6),
        "predicted": {f"pass@{k}": _estimate(e) for k, e in analysis.predicted.items()},
    }
    if fit is None:
        rec["reason"] = analysis.no_fit
    else:
        rec["mean_rate"] = round(fit.mean, 6)
        rec["at_bound"] = fit.at_bound
        rec["population"] = {f"pass@{k}": _num(fit.population_pass_at(k)) for k in analysis.ks}
        rec["interval"] = ("95%: the 1st-99th percentiles of a bootstrap over problems "
                           f"({len(fit.replicates)} resamples, the Beta refit by maximum likelihood each time), "
                           "which held the true value in 94-100% of synthetic suites")
        rec["bootstrap"] = len(fit.replicates)
    return rec


def cost_record(analysis: Analysis) -> dict[str, Any]:
    c: Cost = analysis.cost
    rec: dict[str, Any] = {"known": c.known, "samples": c.samples, "samples_measured": c.samples_measured,
                           "solved": c.solved}
    if c.known:
        f = c.factor
        rec.update({
            "prompt_tokens": c.prompt_tokens,
            "generated_tokens": c.generated_tokens,
            "engine_seconds": round(c.engine_seconds, 3),
            "generated_tokens_per_sample": _num(c.tokens_per_sample),
            "tokens_per_solved": _num(c.per_solved(c.total_tokens)),
            "generated_tokens_per_solved": _num(c.per_solved(c.generated_tokens * f)),
            "seconds_per_solved": _num(c.per_solved(c.engine_seconds * f)),
            "scaled": c.scaled,
        })
        if c.price is not None:
            rec.update({"price_per_million": {"prompt": c.price[0], "generated": c.price[1]},
                        "cost": _num(c.money), "cost_per_solved": _num(c.per_solved(c.money))})
        rec["coverage_at_cost"] = coverage_at_cost(analysis)
    else:
        rec.update({"prompt_tokens": None, "generated_tokens": None, "engine_seconds": None,
                    "tokens_per_solved": None})
    if c.note:
        rec["note"] = c.note
    return rec


def coverage_at_cost(analysis: Analysis, ks: list[int] | None = None) -> list[dict[str, Any]]:
    """Expected coverage against the tokens it takes: one point per k of the observed curve and
    per extrapolated K."""
    c = analysis.cost
    scored = len(analysis.counts)
    points = []
    for k in ks or sorted({k for k, _ in analysis.curve} | set(analysis.ks)):
        est = analysis.coverage_at(k)
        if est is None or math.isnan(est.value):
            continue
        point = {"k": k, "tokens": _num(c.tokens_for(k, scored)), "coverage": _num(est.value),
                 "low": _num(est.low), "high": _num(est.high), "extrapolated": est.extrapolated}
        if c.price is not None:
            point["cost"] = _num(c.money_for(k, scored))
        points.append(point)
    return points


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def curve_record(suite: SuiteResult, analysis: Analysis | None = None) -> dict[str, Any]:
    """The observed coverage curve with intervals, and the least-squares fit of ``exp(a * k**-b)`` to
    it (Brown et al., 2024), kept for comparison: the beta-binomial extrapolation is the better
    estimator (benchmarks/bench_extrapolation.py)."""
    from pytest_passk import stats

    analysis = analysis or analyse(suite)
    points = suite.curve()
    fit = stats.fit_power_law(points)
    rec: dict[str, Any] = {"k": [k for k, _ in points], "coverage": [_num(v) for _, v in points],
                           "coverage_ci": [_ci(e) for _, e in analysis.curve], "fit": None}
    rec.update(checks.curve_fields(suite))
    if fit is not None:
        a, b = fit
        rec["fit"] = {"a": round(a, 6), "b": round(b, 6),
                      "predicted": {str(k): round(stats.power_law(a, b, k), 6) for k in (10, 100, 1000)}}
    return rec


def problem_record(res: ProblemResult, analysis: Analysis, suite: SuiteResult) -> dict[str, Any]:
    from pytest_passk.report.analysis import problem_tokens

    rec: dict[str, Any] = {"id": res.problem.id, "nodeid": res.problem.nodeid, "n": res.n,
                           "correct": res.correct, "flaky": res.flaky, "min": res.problem.min_correct}
    for k, v in res.pass_at.items():
        rec[f"pass@{k}"] = _num(v)
    low, high = analysis.problem_pass1.get(res.problem.id, (math.nan, math.nan))
    rec["pass@1_ci"] = None if math.isnan(low) else [_num(low), _num(high)]
    rec["predicted"] = {f"pass@{k}": _estimate(e) for k, e in analysis.problem_predicted.get(res.problem.id, {}).items()}
    tokens = problem_tokens(suite, res)
    rec["prompt_tokens"], rec["generated_tokens"] = tokens if tokens is not None else (None, None)
    rec.update(checks.problem_fields(res))
    rec["reasons"] = dict(res.reasons)
    rec["passed_samples"] = res.passed_samples
    if res.first_failure is not None:
        rec["first_failure"] = {"sample": res.first_failure[0], "reason": res.first_failure[1].reason,
                                "message": res.first_failure[1].message[-2000:]}
    return rec
