"""``--passk-fail-under``: thresholds on the suite's metrics, turned into failure lines."""
from __future__ import annotations

import math

from pytest_passk.evaluation import SuiteResult


def gate_failures(suite: SuiteResult, bounds: dict[str, float]) -> list[str]:
    """One line for each ``--passk-fail-under`` bound the suite misses."""
    failed = []
    missing = len(suite.without_samples)
    if bounds and missing and not suite.allow_partial:
        failed.append(f"{missing} of {len(suite.problems)} problems have no samples, so the suite was not fully "
                      "evaluated (pass --passk-allow-partial to gate on the problems with samples only)")
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
