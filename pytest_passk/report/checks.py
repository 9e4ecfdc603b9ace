"""What the report says about where samples and runs were spent: adaptive sampling, the verifier
checks with reference solutions, confirmation reruns and majority voting (maj@k)."""
from __future__ import annotations

import math
from typing import Any

from pytest_passk.results import ProblemResult, SuiteResult


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


#: Why maj@k is not reported with a budget.
MAJ_ADAPTIVE = ("nothing: with adaptive sampling a problem stops at its first pass, so its samples' answers "
                "are not a fair draw and maj@k would be biased; run without --passk-budget (a fixed n) for maj@k")


def suite_fields(suite: SuiteResult) -> dict[str, Any]:
    """Suite JSON keys: ``maj@K``, ``broken_verifiers``, ``flaky_verifiers``, and with a budget
    ``budget`` and how pass@k was read (``samples`` is the samples actually drawn)."""
    out: dict[str, Any] = {}
    for k in suite.ks:
        out[f"maj@{k}"] = _num(suite.maj_at(k))
    out["broken_verifiers"] = suite.broken_verifiers
    out["flaky_verifiers"] = suite.flaky_verifiers
    out["reference_runs"] = sum(len(p.reference_runs) for p in suite.problems)
    out["reference_runs_executed"] = suite.reference_executed
    out["confirm_runs"] = suite.confirm_runs
    out["confirm_runs_reused"] = suite.confirm_reused
    out["flaky_candidates"] = sum(len(p.flaky_candidates) for p in suite.problems)
    if suite.adaptive:
        out["budget"] = suite.budget
        out["rounds"] = suite.rounds
        out["pass@k_from"] = ("beta-binomial fit" if suite.prior is not None else
                              f"nothing: no fit is possible ({suite.no_prior or 'no problem has samples'})")
        out["fit"] = None if suite.prior is None else {"a": round(suite.prior[0], 6), "b": round(suite.prior[1], 6)}
        out["maj@k_from"] = MAJ_ADAPTIVE
    return out


def problem_fields(res: ProblemResult) -> dict[str, Any]:
    """Per-problem JSON keys: ``verifier``, ``maj@K``, the timeout used, confirmation and flips."""
    out: dict[str, Any] = {"verifier": res.verifier}
    for k in res.problem.ks:
        out[f"maj@{k}"] = _num(res.maj_at[k]) if k in res.maj_at else None
    if res.reference_runs:
        out["reference"] = {"runs": len(res.reference_runs), "passed": sum(r.passed for r in res.reference_runs),
                            "reasons": sorted({r.reason for r in res.reference_runs}),
                            "seconds": round(max(r.duration for r in res.reference_runs), 4)}
        failing = next((r for r in res.reference_runs if not r.passed), None)
        if failing is not None:
            out["reference"]["message"] = failing.message[-2000:]
    out["timeout"] = res.timeout
    out["timeout_from_reference"] = res.timeout_derived
    out["confirmed"] = res.confirmed
    out["flaky_candidates"] = res.flaky_candidates
    return out


def curve_fields(suite: SuiteResult) -> dict[str, Any]:
    """maj@k and the precision gap (coverage@k - maj@k) at the points of the coverage curve."""
    points = suite.selection_curve()
    return {"maj": [_num(m) for _, m, _ in points], "precision_gap": [_num(g) for _, _, g in points]}


def failure_prefix(res: ProblemResult) -> str | None:
    """The first line of a failing item whose verifier is broken: not the model's fault."""
    if res.verifier != "broken":
        return None
    passed = sum(r.passed for r in res.reference_runs)
    failing = next((r for r in res.reference_runs if not r.passed), None)
    why = f" ({failing.reason}: {failing.message.strip()[-800:] or 'no message'})" if failing else ""
    return (f"{res.problem.id}: the verifier is broken: the reference solution passed {passed} of "
            f"{len(res.reference_runs)} runs of this test{why}; its candidates were not scored")


def terminal_lines(suite: SuiteResult) -> list[str]:
    lines = []
    if suite.adaptive:
        how = ("pass@k read from a Beta-binomial fit (a={:.3g}, b={:.3g}): with adaptive sampling the "
               "fixed-n estimator is biased".format(*suite.prior) if suite.prior is not None
               else f"pass@k undefined: no fit is possible ({suite.no_prior or 'no problem has samples'})")
        lines.append(f"adaptive sampling: {suite.samples} of a budget of {suite.budget} samples in {suite.rounds} "
                     f"rounds; coverage is as observed, {how}")
    if suite.broken_verifiers:
        lines.append(f"broken verifiers (reference solution fails; left out of the metrics): "
                     f"{', '.join(suite.broken_verifiers)}")
    if suite.flaky_verifiers:
        lines.append(f"flaky verifiers (reference solution's runs disagree): {', '.join(suite.flaky_verifiers)}")
    flips = [(p.problem.id, f) for p in suite.problems for f in p.flaky_candidates]
    if flips:
        shown = ", ".join(f"{pid}#{f['sample']} flips {f['flip_rate']:.2f} [{f['interval'][0]:.2f}, {f['interval'][1]:.2f}] "
                          f"in {f['runs']} runs" for pid, f in flips[:5])
        lines.append(f"flaky candidates: {shown}" + (f" and {len(flips) - 5} more" if len(flips) > 5 else ""))
    if suite.confirm_runs:
        lines.append(f"confirmation: {suite.confirm_runs} extra runs of deciding passes and timeouts")
    if suite.adaptive:
        lines.append("selection without a verifier: maj@k not reported (" + MAJ_ADAPTIVE.split(": ", 1)[1] + ")")
        return lines
    majs = [(k, suite.maj_at(k)) for k in suite.ks]
    if any(not math.isnan(v) for _, v in majs):
        cells = ", ".join(f"maj@{k} {'-' if math.isnan(v) else f'{v:.3f}'}" for k, v in majs)
        gaps = [(k, g) for k, _, g in suite.selection_curve() if not math.isnan(g)]
        gap = f"; precision gap (coverage - maj@k): " + ", ".join(f"k={k} {g:.3f}" for k, g in gaps) if gaps else ""
        lines.append(f"selection without a verifier: {cells}{gap}")
    return lines
