"""The coverage curve (exact values, the power-law fit, the report) and the progress printer."""
from __future__ import annotations

import math
import re
import time

import pytest

from pytest_passk import stats
from pytest_passk.progress import ProgressPrinter


def test_curve_ks_are_powers_of_two_up_to_the_smallest_n() -> None:
    assert stats.curve_ks(0) == []
    assert stats.curve_ks(1) == [1]
    assert stats.curve_ks(8) == [1, 2, 4, 8]
    assert stats.curve_ks(10) == [1, 2, 4, 8, 10]


def test_coverage_curve_is_the_mean_pass_at_k() -> None:
    # (n, c): pass@1 = c/n; pass@2 = 1 - C(n-c, 2)/C(n, 2)
    counts = [(4, 1), (4, 0), (4, 4)]
    curve = stats.coverage_curve(counts)
    assert [k for k, _ in curve] == [1, 2, 4]
    assert curve[0][1] == pytest.approx((0.25 + 0 + 1) / 3)
    assert curve[1][1] == pytest.approx((0.5 + 0 + 1) / 3)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert curve[2][1] == pytest.approx((1 + 0 + 1) / 3)  # k = n: coverage
    assert stats.coverage_curve([(3, 1), (6, 6)]) == [(1, pytest.approx((1 / 3 + 1) / 2)),
                                                      (2, pytest.approx((2 / 3 + 1) / 2)),
                                                      (3, pytest.approx(1.0))]
    assert stats.coverage_curve([(0, 0), (2, 1)]) == [(1, 0.5), (2, 1.0)]  # problems without samples left out
    assert stats.coverage_curve([]) == []


def test_power_law_fit_recovers_its_parameters() -> None:
    a, b = -1.2, 0.45
    points = [(k, stats.power_law(a, b, k)) for k in (1, 2, 4, 8, 16, 32)]
    fit = stats.fit_power_law(points)
    assert fit is not None
    assert fit[0] == pytest.approx(a, rel=1e-4) and fit[1] == pytest.approx(b, rel=1e-4)
    assert stats.power_law(a, b, 1) == pytest.approx(math.exp(a))


def test_power_law_fit_needs_three_points_inside_zero_one() -> None:
    assert stats.fit_power_law([(1, 0.2), (2, 0.3)]) is None
    assert stats.fit_power_law([(1, 0.0), (2, 1.0), (4, 1.0), (8, math.nan)]) is None


SUITE = """
    import pytest
    from pytest_passk import passk

    @pytest.mark.parametrize("i", range(3))
    @passk(k=(1, 4), n=4, prompt=lambda i: f"Write add(a, b). ({i})", id=lambda i: f"p{i}", style="chat")
    def test_add(candidate, i):
        assert candidate.function("add")(2, 3) == 5
"""
OK = "def add(a, b):\n    return a + b\n"
BAD = "def add(a, b):\n    return a - b\n"


def test_the_curve_in_terminal_and_json(pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    rows = [("p0", OK)] + [("p0", BAD)] * 3 + [("p1", BAD)] * 4 + [("p2", OK)] * 4
    result = passk_run(rows)
    curve = result.report["curve"]
    assert curve["k"] == [1, 2, 4]
    assert curve["coverage"] == [pytest.approx((0.25 + 0 + 1) / 3, abs=1e-6), pytest.approx(0.5, abs=1e-6),
                                 pytest.approx(2 / 3, abs=1e-6)]
    assert curve["fit"] is None or set(curve["fit"]) == {"a", "b", "predicted"}
    result.stdout.fnmatch_lines(["coverage curve: k=1 0.417, k=2 0.500, k=4 0.667*"])


def test_the_curve_of_a_partial_suite_counts_missing_problems_as_unsolved(pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    rows = [("p0", OK)] * 2 + [("p0", BAD)] * 2 + [("p2", OK)] * 4  # p1 has no samples
    full = passk_run(rows)
    assert full.report["curve"]["coverage"][-1] == pytest.approx(2 / 3, abs=1e-6)
    assert full.report["curve"]["coverage"][0] == pytest.approx((0.5 + 1) / 3, abs=1e-6)
    partial = passk_run(rows, "--passk-allow-partial")
    assert partial.report["curve"]["coverage"][-1] == 1.0
    assert partial.report["curve"]["coverage"][0] == pytest.approx(0.75, abs=1e-6)


_LINE = re.compile(r"passk: (generated|executed) (\d+)/(\d+) (samples|runs) \((\d+\.\d)/s(, ETA (\d+) s)?\)$")


def test_progress_prints_counts_rate_and_eta_at_most_every_interval() -> None:
    lines: list[str] = []
    printer = ProgressPrinter(lines.append, every=0.2)
    t0 = time.monotonic()
    printer({"stage": "execute", "done": 0, "total": 10})  # starts the clock, prints nothing
    for done in range(1, 10):
        time.sleep(0.05)
        printer({"stage": "execute", "done": done, "total": 10})
    time.sleep(0.05)
    printer({"stage": "execute", "done": 10, "total": 10})
    elapsed = time.monotonic() - t0
    # at most one line per 0.2 s, plus the final count (a loaded machine stretches the sleeps)
    assert 2 <= len(lines) <= elapsed / 0.2 + 1, (lines, elapsed)
    parsed = [_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert parsed[-1].group(2) == parsed[-1].group(3) == "10" and parsed[-1].group(6) is None  # no ETA when done
    first = parsed[0]
    assert first.group(1) == "executed" and first.group(4) == "runs" and first.group(6) is not None
    done, rate = int(first.group(2)), float(first.group(5))
    assert 0 < rate <= 1 / 0.05 * 1.1  # never faster than one event per 0.05 s
    assert abs(int(first.group(7)) - (10 - done) / rate) <= 1  # ETA: what is left at that rate


def test_quick_stages_print_nothing_and_stages_are_separate() -> None:
    lines: list[str] = []
    printer = ProgressPrinter(lines.append, every=60)
    for done in range(1, 6):
        printer({"stage": "generate", "done": done, "total": 5})
    assert lines == []  # done within the interval: no line at all
    now = ProgressPrinter(lines.append, every=0)
    now({"stage": "generate", "done": 1, "total": 2})
    now({"stage": "execute", "done": 1, "total": 4})
    assert [line.split(" (")[0] for line in lines] == ["passk: generated 1/2 samples", "passk: executed 1/4 runs"]
