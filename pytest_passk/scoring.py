"""The score stage: a problem's samples and their runs' verdicts become its counts and pass@k."""
from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_passk import stats
from pytest_passk.protocol import RunResult
from pytest_passk.results import ProblemResult


def score_problem(res: ProblemResult, runs: Sequence[Sequence[RunResult]], flaky_pass: bool) -> None:
    """Fill ``res`` from ``runs[i]``, the verdicts of sample ``i`` (``res.texts[i]``) in run order."""
    p = res.problem
    res.n = len(res.texts)
    for i, ordered in enumerate(runs):
        oks = [r.passed for r in ordered]
        passed = stats.candidate_passed(oks, flaky_pass)
        if stats.is_flaky(oks):
            res.flaky += 1
        res.passed_samples.append(passed)
        res.correct += passed
        for r in ordered:
            res.reasons[r.reason] += 1
        if not passed and res.first_failure is None:
            failing = next((r for r in ordered if not r.passed), None)
            if failing is not None:
                res.first_failure = (i, failing)
    res.pass_at = {k: stats.pass_at_k(res.n, res.correct, k) for k in p.ks} if res.n else {k: math.nan for k in p.ks}
