"""Everything a user reads: the terminal section, item failure messages, JUnit properties, JSON, the gate."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from pytest_passk.evaluation import ProblemResult, SuiteResult

_ROWS_WHEN_CONDENSED = 20


def fmt(value: float) -> str:
    return "n<k" if math.isnan(value) else f"{value:.3f}"


def item_failure(res: ProblemResult) -> str:
    """Why a passk item failed: the counts and the first failing candidate's error, trimmed."""
    p = res.problem
    if res.n == 0:
        return f"{p.id}: no samples to evaluate (none in the samples file for this id, or none generated)"
    ks = ", ".join(f"pass@{k}={fmt(v)}" for k, v in res.pass_at.items())
    lines = [f"{p.id}: {res.correct} of {res.n} samples correct, {p.min_correct} needed; {res.flaky} flaky; {ks}"]
    reasons = ", ".join(f"{r}: {c}" for r, c in res.reasons.most_common() if r != "passed")
    if reasons:
        lines.append(f"failed runs by reason: {reasons}")
    if res.first_failure is not None:
        index, run = res.first_failure
        lines.append(f"first failing candidate (sample #{index}, {run.reason}):")
        message = run.message.strip() or "(no message)"
        if len(message) > 1200:
            message = "...\n" + message[-1200:]
        lines.append(message)
    return "\n".join(lines)


def junit_properties(res: ProblemResult) -> list[tuple[str, Any]]:
    props: list[tuple[str, Any]] = [("passk.id", res.problem.id), ("passk.n", res.n),
                                    ("passk.correct", res.correct), ("passk.flaky", res.flaky)]
    props += [(f"pass@{k}", fmt(v)) for k, v in res.pass_at.items()]
    return props


def suite_metrics(suite: SuiteResult) -> dict[str, Any]:
    scored = suite.scored
    solved = sum(1 for p in scored if p.solved)
    out: dict[str, Any] = {
        "problems": len(suite.problems),
        "problems_with_samples": len(scored),
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


def write_json(path: Path, suite: SuiteResult, gate: list[str]) -> None:
    data = {"suite": suite_metrics(suite), "curve": curve_record(suite), "gate": {"failed": gate},
            "problems": [problem_record(p) for p in suite.problems]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def gate_failures(suite: SuiteResult, bounds: dict[str, float]) -> list[str]:
    """One line for each ``--passk-fail-under`` bound the suite misses."""
    failed = []
    for metric, bound in bounds.items():
        if metric.startswith("pass@") and int(metric[5:]) not in suite.ks:
            value = suite.pass_at(int(metric[5:]))
        else:
            value = suite.metric(metric)
        if math.isnan(value):
            failed.append(f"{metric} is undefined (a problem has fewer samples than k, or there are none); bound {bound:g}")
        elif value < bound:
            failed.append(f"{metric} {value:.3f} < {bound:g} (short by {bound - value:.3f})")
    return failed


def terminal_lines(suite: SuiteResult, verbose: int, gate: list[str]) -> list[str]:
    ks = suite.ks
    lines = []
    if not suite.isolated and suite.sandbox:
        lines.append(f"WARNING: sandbox {suite.sandbox}")
    elif suite.sandbox:
        lines.append(f"sandbox: {suite.sandbox}")
    lines.append(f"samples: {suite.backend}")
    rows = suite.problems
    hidden = 0
    if len(rows) > _ROWS_WHEN_CONDENSED + 5 and verbose < 1:
        def interest(p: ProblemResult) -> tuple:
            first = p.pass_at.get(min(p.pass_at), math.nan) if p.pass_at else math.nan
            return (-p.flaky, p.n > 0, -(1 - first) if not math.isnan(first) else 0)
        shown = sorted(rows, key=interest)[:_ROWS_WHEN_CONDENSED]
        hidden = len(rows) - len(shown)
        rows = [p for p in rows if p in shown]
    width = min(max([len("problem")] + [len(p.problem.id) for p in rows]), 48)
    header = f"{'problem':<{width}} {'n':>6} {'correct':>8} {'flaky':>6}" + "".join(f" {'pass@' + str(k):>8}" for k in ks)
    lines.append(header)
    for p in rows:
        pid = p.problem.id if len(p.problem.id) <= width else "..." + p.problem.id[-(width - 3):]
        cells = "".join(f" {fmt(p.pass_at[k]) if k in p.pass_at else '-':>8}" for k in ks)
        note = "  no samples" if p.n == 0 else ""
        lines.append(f"{pid:<{width}} {p.n:>6} {p.correct:>8} {p.flaky:>6}{cells}{note}")
    if hidden:
        lines.append(f"... {hidden} more problems not shown (flaky, unsolved and weakest first; -v shows all, "
                     "--passk-report writes all)")
    cov = suite.coverage
    solved = sum(1 for p in suite.scored if p.solved)
    metrics = ", ".join(f"pass@{k} {fmt(suite.pass_at(k))}" for k in ks)
    lines.append(
        f"suite: {len(suite.problems)} problems, {suite.samples} samples, coverage {fmt(cov)} "
        f"({solved}/{len(suite.scored)}), {metrics}, flaky problems {suite.flaky_problems}"
    )
    curve = curve_record(suite)
    if len(curve["k"]) > 1:
        points = ", ".join(f"k={k} {fmt(v if v is not None else math.nan)}" for k, v in zip(curve["k"], curve["coverage"]))
        line = f"coverage curve: {points}"
        if curve["fit"]:
            f = curve["fit"]
            line += (f"; fit exp({f['a']:.3f}*k^-{f['b']:.3f}) predicts k=100 {f['predicted']['100']:.3f}, "
                     f"k=1000 {f['predicted']['1000']:.3f}")
        lines.append(line)
    if suite.without_samples:
        lines.append(f"{len(suite.without_samples)} problem(s) had no samples and are left out of the suite metrics")
    rate = suite.runs_per_second
    lines.append(
        f"executed {suite.runs_executed} candidate runs in {suite.execute_seconds:.1f} s"
        + (f" ({rate:.1f} runs/s)" if not math.isnan(rate) else "")
        + f", {suite.runs_cached} reused from the store"
        + (f"; {generation_summary(suite)}" if suite.generated and not suite.replayed else "")
    )
    for failure in gate:
        lines.append(f"FAILED --passk-fail-under: {failure}")
    return lines


def generation_summary(suite: SuiteResult) -> str:
    text = f"generated {suite.generated} samples"
    if suite.tokens_generated:
        text += f" ({suite.tokens_generated} tokens)"
    text += f" in {suite.generate_seconds:.1f} s"
    if suite.generate_seconds > 0:
        rate = suite.tokens_generated or suite.generated
        text += f" ({rate / suite.generate_seconds:.1f} {'tokens' if suite.tokens_generated else 'samples'}/s)"
    if suite.load_seconds >= 0.5:
        text += f" after {suite.load_seconds:.1f} s loading the model"
    return text


class ProgressPrinter:
    """Progress lines for generation and execution: counts, rate and ETA, at most every ``every`` s."""

    def __init__(self, write: Any, every: float = 2.0) -> None:
        self.write = write
        self.every = every
        self.last: dict[str, float] = {}
        self.start: dict[str, float] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        stage, done, total = event["stage"], event["done"], event["total"]
        now = time.monotonic()
        start = self.start.setdefault(stage, now)
        # Quick stages print nothing; long ones print every ``every`` seconds and when they finish.
        if now - self.last.get(stage, start) < self.every and (done < total or stage not in self.last):
            return
        self.last[stage] = now
        elapsed = now - self.start[stage]
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else math.inf
        verb = "generated" if stage == "generate" else "executed"
        unit = "samples" if stage == "generate" else "runs"
        eta_text = f", ETA {eta:.0f} s" if done < total and math.isfinite(eta) else ""
        self.write(f"passk: {verb} {done}/{total} {unit} ({rate:.1f}/s{eta_text})")
