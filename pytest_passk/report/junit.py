"""JUnit XML properties: per test case (each problem) and for the suite."""
from __future__ import annotations

from typing import Any

from pytest_passk.evaluation import ProblemResult, SuiteResult
from pytest_passk.report.metrics import fmt, suite_metrics


def junit_properties(res: ProblemResult) -> list[tuple[str, Any]]:
    props: list[tuple[str, Any]] = [("passk.id", res.problem.id), ("passk.n", res.n),
                                    ("passk.correct", res.correct), ("passk.flaky", res.flaky)]
    props += [(f"pass@{k}", fmt(v)) for k, v in res.pass_at.items()]
    return props


def suite_properties(suite: SuiteResult) -> list[tuple[str, Any]]:
    """``<properties>`` of the test suite: every suite metric, ``passk.``-prefixed except pass@K."""
    return [(name if name.startswith("pass@") else f"passk.{name}", value)
            for name, value in suite_metrics(suite).items()]
