"""JUnit XML properties: per test case (each problem) and for the suite."""
from __future__ import annotations

import math
from typing import Any

from pytest_passk.evaluation import ProblemResult, SuiteResult
from pytest_passk.report.analysis import Analysis
from pytest_passk.report.metrics import fmt, suite_metrics


def junit_properties(res: ProblemResult, analysis: Analysis | None = None) -> list[tuple[str, Any]]:
    props: list[tuple[str, Any]] = [("passk.id", res.problem.id), ("passk.n", res.n),
                                    ("passk.correct", res.correct), ("passk.flaky", res.flaky)]
    props += [(f"pass@{k}", fmt(v)) for k, v in res.pass_at.items()]
    if analysis is not None:
        low, high = analysis.problem_pass1.get(res.problem.id, (math.nan, math.nan))
        if not math.isnan(low):
            props += [("pass@1.low", fmt(low)), ("pass@1.high", fmt(high))]
        for k, est in analysis.problem_predicted.get(res.problem.id, {}).items():
            props += [(f"passk.predicted.pass@{k}", fmt(est.value))]
    return props


def suite_properties(suite: SuiteResult, analysis: Analysis | None = None) -> list[tuple[str, Any]]:
    """``<properties>`` of the test suite: every suite metric, ``passk.``-prefixed except pass@K;
    nested records flattened with dots (``passk.extrapolation.predicted.pass@1000.low``) and
    intervals as ``NAME.low`` / ``NAME.high``."""
    props: list[tuple[str, Any]] = []

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                add(f"{name}.{key}", sub)
        elif name.endswith("_ci") and isinstance(value, list):
            base = name[:-3]
            props.extend([(f"{base}.low", value[0]), (f"{base}.high", value[1])])
        elif isinstance(value, list):
            return  # per-point series (coverage at cost) are for the JSON report
        else:
            props.append((name, value))

    for name, value in suite_metrics(suite, analysis).items():
        add(name if name.startswith("pass@") else f"passk.{name}", value)
    return props
