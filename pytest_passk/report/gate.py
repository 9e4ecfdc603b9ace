"""``--passk-fail-under``: thresholds on the suite's metrics, turned into failure lines.

``coverage=0.6`` gates on the value, ``coverage.low=0.5`` on the lower end of its 95% interval;
``pass@K`` beyond the samples drawn gates on the extrapolated value.
"""
from __future__ import annotations

import math

from pytest_passk.evaluation import SuiteResult
from pytest_passk.report.analysis import Analysis, analyse


def gate_failures(suite: SuiteResult, bounds: dict[str, float], analysis: Analysis | None = None) -> list[str]:
    """One line for each ``--passk-fail-under`` bound the suite misses."""
    analysis = analysis or analyse(suite)
    failed = []
    missing = len(suite.without_samples)
    if bounds and missing and not suite.allow_partial:
        failed.append(f"{missing} of {len(suite.problems)} problems have no samples, so the suite was not fully "
                      "evaluated (pass --passk-allow-partial to gate on the problems with samples only)")
    for name, bound in bounds.items():
        metric, _, part = name.partition(".")
        est = analysis.value_of(metric)
        value = math.nan if est is None else (est.low if part == "low" else est.value)
        if math.isnan(value):
            why = ("no extrapolation: " + analysis.no_fit) if est is None and analysis.no_fit else \
                "a problem has fewer samples than k, or there are none"
            failed.append(f"{name} is undefined ({why}); bound {bound:g}")
        elif value < bound:
            notes = [f"short by {bound - value:.3f}"]
            if part == "low":
                notes.append(f"lower end of the 95% interval of {metric} {est.value:.3f}")
            if est.extrapolated:
                notes.append("extrapolated by the beta-binomial fit")
            failed.append(f"{name} {value:.3f} < {bound:g} ({'; '.join(notes)})")
    return failed
