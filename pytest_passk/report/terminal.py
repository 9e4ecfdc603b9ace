"""What a user reads in the terminal: the passk summary section and item failure messages (progress
while a run goes on is :mod:`pytest_passk.progress`)."""
from __future__ import annotations

import math
from typing import Any

from pytest_passk.evaluation import ProblemResult, SuiteResult
from pytest_passk.report.analysis import Analysis, Estimate, analyse
from pytest_passk.report import checks
from pytest_passk.report.metrics import fmt

_ROWS_WHEN_CONDENSED = 20


def item_failure(res: ProblemResult) -> str:
    """Why a passk item failed: the counts and the first failing candidate's error, trimmed."""
    p = res.problem
    broken = checks.failure_prefix(res)
    if broken is not None:
        return broken
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


def terminal_lines(suite: SuiteResult, verbose: int, gate: list[str], analysis: Analysis | None = None) -> list[str]:
    ks = suite.ks
    lines = []
    if not suite.isolated and suite.sandbox:
        lines.append(f"WARNING: sandbox {suite.sandbox}")
    elif suite.sandbox:
        lines.append(f"sandbox: {suite.sandbox}")
    lines.append(f"samples: {suite.backend}")
    if suite.store == ":memory:":
        lines.append("store: none (--passk-store=:memory:): nothing is kept for the next run")
    elif suite.store:
        lines.append(f"store: {suite.store}")
    rows = suite.problems
    hidden = 0
    if len(rows) > _ROWS_WHEN_CONDENSED + 5 and verbose < 1:
        def interest(p: ProblemResult) -> tuple:
            first = p.pass_at.get(min(p.pass_at), math.nan) if p.pass_at else math.nan
            return (-p.flaky, p.n > 0, -(1 - first) if not math.isnan(first) else 0)
        shown = sorted(rows, key=interest)[:_ROWS_WHEN_CONDENSED]
        hidden = len(rows) - len(shown)
        rows = [p for p in rows if p in shown]
    a = analysis or analyse(suite)
    # One predicted column, for the largest K extrapolated to (JSON, JUnit and the plot have every K):
    # each problem's posterior chance of being solved within K samples; with -v its 95% interval too.
    top = max(a.predicted) if a.predicted else None
    predicted_title = f"pass@{top}*" if top is not None else ""
    predicted_width = max(len(predicted_title), 20 if verbose >= 1 else 6)
    width = min(max([len("problem")] + [len(p.problem.id) for p in rows]), 48)
    header = f"{'problem':<{width}} {'n':>6} {'correct':>8} {'flaky':>6}" + "".join(f" {'pass@' + str(k):>8}" for k in ks)
    if top is not None:
        header += f" {predicted_title:>{predicted_width}}"
    lines.append(header)
    for p in rows:
        pid = p.problem.id if len(p.problem.id) <= width else "..." + p.problem.id[-(width - 3):]
        cells = "".join(f" {fmt(p.pass_at[k]) if k in p.pass_at and p.n else '-':>8}" for k in ks)
        if top is not None:
            cells += f" {_predicted_cell(a, p, top, verbose):>{predicted_width}}"
        note = "  no samples" if p.n == 0 else ""
        lines.append(f"{pid:<{width}} {p.n:>6} {p.correct:>8} {p.flaky:>6}{cells}{note}")
    if hidden:
        lines.append(f"... {hidden} more problems not shown (flaky, unsolved and weakest first; -v shows all, "
                     "--passk-report writes all)")
    if top is not None:
        lines.append(f"pass@{top}* is predicted: the chance the problem is solved within {top} samples, from its "
                     f"counts and the suite's fitted Beta"
                     + (" [95% interval]" if verbose >= 1 else " (-v adds its 95% interval)")
                     + "; every predicted K is in --passk-report")
    solved = sum(1 for p in suite.scored if p.solved)
    metrics = ", ".join(f"pass@{k} {with_ci(a.pass_at[k])}" for k in ks)
    lines.append(
        f"suite: {len(suite.problems)} problems, {suite.samples} samples, coverage {with_ci(a.coverage)} "
        f"({solved}/{len(suite.scored)}), {metrics}, flaky problems {suite.flaky_problems}"
    )
    if len(a.curve) > 1:
        lines.append("coverage curve: " + ", ".join(f"k={k} {fmt(e.value)}" for k, e in a.curve))
    lines.append(extrapolation_line(a))
    lines.append(cost_line(a))
    missing = len(suite.without_samples)
    if missing and suite.allow_partial:
        lines.append(f"partial suite: {missing} of {len(suite.problems)} problems have no samples; coverage and "
                     f"pass@k are over the {len(suite.problems) - missing} with samples (--passk-allow-partial)")
    elif missing:
        lines.append(f"incomplete suite: {missing} of {len(suite.problems)} problems have no samples and count as "
                     "unsolved (--passk-allow-partial scores only the problems with samples)")
    rate = suite.runs_per_second
    lines.append(
        f"executed {suite.runs_executed} candidate runs in {suite.execute_seconds:.1f} s"
        + (f" ({rate:.1f} runs/s)" if not math.isnan(rate) else "")
        + f", {suite.runs_cached} reused from the store"
        + (f"; {generation_summary(suite)}" if suite.generated and not suite.replayed else "")
    )
    lines.append("[low, high] are 95% intervals; --passk-report writes them all as JSON")
    lines += checks.terminal_lines(suite)
    for failure in gate:
        lines.append(f"FAILED --passk-fail-under: {failure}")
    return lines


def _predicted_cell(a: Analysis, p: ProblemResult, k: int, verbose: int) -> str:
    est = a.problem_predicted.get(p.problem.id, {}).get(k)
    if est is None or math.isnan(est.value):
        return "-"
    if verbose < 1:
        return f"{est.value:.3f}"
    return f"{est.value:.3f} [{est.low:.3f}, {est.high:.3f}]"


def with_ci(est: Estimate) -> str:
    if math.isnan(est.value):
        return fmt(est.value)
    if math.isnan(est.low):
        return fmt(est.value)
    return f"{est.value:.3f} [{est.low:.3f}, {est.high:.3f}]"


def extrapolation_line(a: Analysis) -> str:
    if a.fit is None:
        return f"extrapolation: none ({a.no_fit})"
    values = ", ".join(f"pass@{k} {with_ci(e)}" for k, e in a.predicted.items())
    note = ("; the fit sits on the edge of its range (the problems' rates barely differ): read it with care"
            if a.fit.at_bound else "")
    return (f"extrapolation (beta-binomial fit, per-problem success rate ~ Beta({a.fit.alpha:.3g}, {a.fit.beta:.3g})): "
            f"{values}{note}")


def _count(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def cost_line(a: Analysis) -> str:
    c = a.cost
    if not c.known:
        return f"cost: unknown ({c.note})"
    f = c.factor
    text = (f"cost: {_count(c.prompt_tokens)} prompt + {_count(c.generated_tokens)} generated tokens, "
            f"{c.engine_seconds:.1f} s of engine time")
    if c.scaled:
        text += f" for {c.samples_measured} of {c.samples} samples"
    if not c.solved:
        return text + "; no problem solved, so no cost per solved problem"
    text += (f"; per solved problem: {_count(c.per_solved(c.total_tokens))} tokens, "
             f"{c.per_solved(c.engine_seconds * f):.2f} s")
    if c.price is not None:
        text += f", {c.per_solved(c.money):.4g} at the given price ({c.money:.4g} in all)"
    if c.scaled:
        text += " (scaled from the samples generated in this run)"
    return text


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
