"""The progress display: rich bars on a terminal, periodic plain lines otherwise, nothing with -q."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import LOCAL, write_samples
from pytest_passk.progress import ProgressDisplay


class Counts:
    tokens_generated = 0


def feed(display: ProgressDisplay, counts: Counts) -> None:
    for done in range(1, 4):
        counts.tokens_generated = 100 * done
        display({"stage": "generate", "done": 2 * done, "total": 6})
    for done in range(1, 5):
        display({"stage": "execute", "done": done, "total": 4, "passed": done != 2})
    display.close()


def test_plain_lines_when_not_a_terminal() -> None:
    lines: list[str] = []
    counts = Counts()
    feed(ProgressDisplay(lines.append, counts=counts, every=0.0), counts)
    gen = [line for line in lines if "generated" in line]
    run = [line for line in lines if "executed" in line]
    assert gen[-1].startswith("passk: generated 6/6 samples (") and "300 tokens" in gen[-1]
    assert "ETA" in gen[0] and "ETA" not in gen[-1]
    assert run[-1].startswith("passk: executed 4/4 runs (") and "1 failed" in run[-1]


def test_execution_count_says_which_runs_are_not_candidates() -> None:
    """The bar counts reference and confirmation runs too; the summary's "executed N candidate runs"
    does not, so the display names the parts."""
    lines: list[str] = []
    display = ProgressDisplay(lines.append, every=0.0)
    display({"stage": "execute", "done": 2, "total": 3, "passed": True, "kinds": {"candidate": 2, "reference": 0, "confirm": 0}})
    display({"stage": "execute", "done": 3, "total": 3, "passed": False,
             "kinds": {"candidate": 2, "reference": 0, "confirm": 1}})
    assert "candidate" not in lines[0], lines  # candidates alone: nothing to explain
    assert lines[-1].startswith("passk: executed 3/3 runs (") and "1 failed, incl. 1 confirming" in lines[-1], lines


def test_quick_stages_print_nothing_and_quiet_prints_nothing() -> None:
    lines: list[str] = []
    counts = Counts()
    feed(ProgressDisplay(lines.append, counts=counts, every=60.0), counts)
    assert lines == []
    feed(ProgressDisplay(lines.append, counts=counts, every=0.0, quiet=True), counts)
    assert lines == []


class FakeTerminal:
    """What pytest's terminal reporter offers the display: write and flush."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def write(self, text: str, flush: bool = False) -> None:
        self.out.append(text)

    def flush(self) -> None:
        pass


def test_bars_stop_redrawing_while_nothing_is_under_way_and_the_rate_leaves_the_wait_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reference runs done, the engine loading: its messages must not land under a live bar, and the
    execution rate must not count the wait."""
    import pytest_passk.progress as progress

    monkeypatch.setattr(progress, "IDLE", 0.2)
    terminal = FakeTerminal()
    display = ProgressDisplay(lambda line: None, terminal=terminal, tty=True)
    started = time.monotonic()
    for done in range(1, 4):
        display({"stage": "execute", "done": done, "total": 3, "passed": True})
        time.sleep(0.05)
    worked = time.monotonic() - started  # the three events, however long a loaded machine made them
    assert display._rich is not None
    time.sleep(0.6)  # idle: everything done
    # The idle timer (0.2 s) fires in a thread of its own: on a loaded machine it may run late.
    deadline = time.monotonic() + 30
    while display._rich is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert display._rich is None  # stopped, its last state left on screen
    waited = time.monotonic() - started - worked
    stopped_at = len(terminal.out)
    display({"stage": "generate", "done": 1, "total": 2})
    assert display._rich is not None and len(terminal.out) > stopped_at  # drawn again, below
    # 3 runs over the time the events took, not over that and the wait (>= 0.6 s) after them
    assert display.stages["execute"].rate() >= 3 / worked > 3 / (worked + waited)
    display.close()


def test_bars_on_a_terminal() -> None:
    terminal = FakeTerminal()
    counts = Counts()
    feed(ProgressDisplay(lambda line: None, terminal=terminal, tty=True, counts=counts), counts)
    text = "".join(terminal.out)
    assert "\x1b[" in text  # drawn in place, not line by line
    assert "passk generating" in text and "6/6" in text and "300 tokens" in text
    assert "passk executing" in text and "4/4" in text and "1 failed" in text


SUITE = """
    import time

    import pytest
    from pytest_passk import passk

    @passk(k=1, n=3, prompt=lambda i: f"Write add{i}(a, b).", style="chat", id=lambda i: f"p{i}")
    @pytest.mark.parametrize("i", range(3))
    def test_add(candidate, i):
        time.sleep(0.05)
        assert candidate.function(f"add{i}")(2, 3) == 5
"""


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a pseudo-terminal")
def test_a_real_run_on_a_terminal_draws_bars_and_quiet_draws_none(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    samples = write_samples(pytester.path / "samples.jsonl",
                            [(f"p{i}", f"def add{i}(a, b):\n    return a {op} b\n") for i in range(3) for op in "+-*"])
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *LOCAL, f"--passk-samples={samples}"]

    def in_terminal(*extra: str) -> str:
        command = " ".join([*argv, *extra])
        return subprocess.run(["script", "-q", "-e", "-c", command, "/dev/null"], cwd=pytester.path,
                              capture_output=True, text=True, timeout=300).stdout

    shown = in_terminal()
    # 18 runs, and the reruns that confirm deciding passes: every one counted, the 12 failures too
    assert "passk executing" in shown and "12 failed" in shown, shown
    finished = [m for m in re.findall(r"(\d+)/(\d+)\x1b", shown) if m[0] == m[1]]
    assert finished and int(finished[-1][0]) >= 18, shown
    assert "= passk =" in shown
    quiet = in_terminal("-q")
    assert "passk executing" not in quiet and "passk: executed" not in quiet
    assert "coverage" in quiet  # the summary itself is still there
