"""The score stage: a problem's samples and their runs' verdicts become its counts and pass@k."""
from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_passk import stats
from pytest_passk.protocol import RunResult
from pytest_passk.results import ProblemResult


def score_problem(res: ProblemResult, runs: Sequence[Sequence[RunResult]], flaky_pass: bool,
                  confirm: Sequence[Sequence[RunResult]] | None = None) -> None:
    """Fill ``res`` from ``runs[i]``, the verdicts of sample ``i`` (``res.texts[i]``) in run order,
    and ``confirm[i]``, its confirmation reruns: they take part in the verdict (a flip makes the
    candidate flaky) but not in ``reasons``, which counts the ``--passk-runs`` runs."""
    p = res.problem
    res.n = len(res.texts)
    for i, ordered in enumerate(runs):
        oks = [r.passed for r in ordered] + [r.passed for r in (confirm[i] if confirm else ())]
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


def votes_of(res: ProblemResult, returns: Sequence[str]) -> list[str | None]:
    """What each sample votes for: the marker's ``answer=`` applied to its text (answer-style
    problems), else the digest of what it returned to the test's calls; None: no vote (no answer
    extracted, the extractor raised, or nothing returned)."""
    extract = res.problem.answer
    if extract is None:
        return [r or None for r in returns]
    votes: list[str | None] = []
    for text in res.texts:
        try:
            value = extract(text)
        except Exception:  # a reply the extractor cannot read casts no vote
            value = None
        votes.append(None if value is None else str(value))
    return votes


def score_selection(res: ProblemResult, returns: Sequence[str], ks: Sequence[int]) -> None:
    """maj@k for each k from the samples' votes. An answer-style problem (``answer=``) always has
    one (no vote, no answer: 0); a function problem only when its runs reported what they returned."""
    from pytest_passk.select import groups_of, maj_at_k

    res.votes = votes_of(res, returns)
    res.maj_at = {}
    if not res.counted or (res.problem.answer is None and not any(v is not None for v in res.votes)):
        return
    groups, abstain = groups_of(res.votes, res.passed_samples)
    res.maj_at = {k: maj_at_k(groups, abstain, k) for k in ks}
