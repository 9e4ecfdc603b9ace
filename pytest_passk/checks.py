"""Checks of the verifier and of the verdicts that decide a problem (pure functions).

- A problem's reference solution (marker ``reference=``) runs through its test several times
  before candidates are scored: failing every time means the verifier is broken, disagreeing runs
  mean it is flaky. Where the marker sets no timeout, the candidates get one derived from the
  reference's runtime, as EvalPlus does: ``max(1 s, 4 x the reference's time)``.
- A pass that decides whether a problem is solved (one of very few passing candidates) is rerun
  more times, and so are the timeouts of a problem with no pass: with a false-pass rate of 0.1% per run,
  1000 wrong samples make a solved problem 63% of the time.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pytest_passk import stats
from pytest_passk.protocol import RunResult

#: A problem with at most this many distinct passing candidates has its passes confirmed.
DECIDING = 3
#: At most this many timed-out candidates of one such problem are rerun.
TIMEOUT_RERUNS = 3
#: Confirmation reruns are numbered from here: apart from the ``--passk-runs`` runs (0, 1, ...), so
#: raising --passk-runs later does not take a confirmation for a regular run, and each rerun still
#: gets its own hash and random seeds.
CONFIRM_BASE = 1000
#: EvalPlus' rule for a time limit from the reference's runtime.
TIMEOUT_FLOOR = 1.0
TIMEOUT_FACTOR = 4.0


def verifier_status(runs: Sequence[RunResult]) -> str:
    """``"ok"`` if every run of the reference passed, ``"broken"`` if none did, ``"flaky"`` if
    they disagree, ``"unchecked"`` without runs."""
    if not runs:
        return "unchecked"
    passes = sum(r.passed for r in runs)
    if passes == len(runs):
        return "ok"
    return "broken" if passes == 0 else "flaky"


def derived_timeout(runs: Sequence[RunResult]) -> float | None:
    """``max(1 s, 4 x the slowest passing run)`` of the reference, rounded up to 0.1 s; None if
    no run passed (a broken reference says nothing about how long a solution takes)."""
    durations = [r.duration for r in runs if r.passed]
    if not durations:
        return None
    return max(TIMEOUT_FLOOR, math.ceil(TIMEOUT_FACTOR * max(durations) * 10) / 10)


def to_confirm(candidates: Sequence[Sequence[RunResult]]) -> list[int]:
    """Which of a problem's distinct candidates (their runs so far) to rerun: every one with a
    passing run when there are at most :data:`DECIDING` (flaky ones too: more runs pin down their
    flip rate); for a problem with no pass at all, up to
    :data:`TIMEOUT_RERUNS` whose only failures were timeouts (often the machine, not the program)."""
    passing = [i for i, runs in enumerate(candidates) if any(r.passed for r in runs)]
    if len(passing) > DECIDING:
        return []
    if passing:  # solved or nearly: a timeout decides nothing here
        return passing
    timed_out = [i for i, runs in enumerate(candidates)
                 if runs and any(r.reason == "timeout" for r in runs)
                 and all(r.passed or r.reason == "timeout" for r in runs)]
    return timed_out[:TIMEOUT_RERUNS]


def flip_record(index: int, runs: Sequence[RunResult]) -> dict[str, Any]:
    """How often a flaky candidate's verdict flips: the share of its runs that disagree with the
    majority (0.5 for a coin), with a 95% Wilson interval, and the workers its runs went to."""
    passes = sum(r.passed for r in runs)
    minority = min(passes, len(runs) - passes)
    low, high = stats.wilson_interval(minority, len(runs))
    reasons: dict[str, int] = {}
    for r in runs:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    return {"sample": index, "runs": len(runs), "passes": passes,
            "flip_rate": round(minority / len(runs), 6) if runs else None,
            "interval": [round(low, 6), round(high, 6)], "reasons": reasons,
            "workers": sorted({r.worker for r in runs if r.worker})}
