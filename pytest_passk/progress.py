"""Progress of an evaluation while it runs: generation (samples, tokens) and execution (runs, rate,
ETA, failures).

On a terminal the display is a pair of live ``rich`` bars drawn through pytest's terminal writer;
when the output is not a terminal (CI logs, pipes) it is a plain line per stage every few seconds;
with ``-q`` nothing is shown. The evaluation only calls the display with events
``{"stage": "generate" | "execute", "done": int, "total": int, "passed": bool (execute only)}``.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Protocol


class _Counts(Protocol):
    tokens_generated: int


#: Seconds with every stage done after which the bars stop redrawing (until the next event).
IDLE = 1.0
_STAGES = {"generate": ("generating", "samples"), "execute": ("executing ", "runs")}
#: How the execution count's parts are named (the runner's job kinds).
_KINDS = {"candidate": "candidate", "reference": "reference", "confirm": "confirming"}


class _Stage:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.done = 0
        self.total = 0
        self.failed = 0
        self.kinds: dict[str, int] = {}
        self.last = self.start  #: when the last event came
        #: Seconds the stage had work in hand: the rate leaves out the time it sat idle with all
        #: done (e.g. execution waiting for the engine to load after the reference runs).
        self.busy = 0.0

    def event(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.done < self.total or self.done == 0:
            self.busy += now - self.last
        self.last = now
        self.done, self.total = done, total

    def rate(self) -> float:
        busy = self.busy + (time.monotonic() - self.last if self.done < self.total else 0.0)
        return self.done / busy if busy > 0 else 0.0

    def eta(self) -> float:
        rate = self.rate()
        return (self.total - self.done) / rate if rate > 0 and self.done < self.total else math.nan


class ProgressDisplay:
    """Turns progress events into bars (terminal) or periodic lines (anything else)."""

    def __init__(self, write: Callable[[str], None], *, terminal: Any = None, tty: bool = False,
                 quiet: bool = False, counts: _Counts | None = None, every: float = 5.0) -> None:
        self.write = write
        self.terminal = terminal
        self.tty = tty and terminal is not None
        self.quiet = quiet
        self.counts = counts
        self.every = every
        self.stages: dict[str, _Stage] = {}
        self._last_line: dict[str, float] = {}
        self._rich: Any = None
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._events = 0
        self._idle: threading.Timer | None = None

    # -- events --------------------------------------------------------------------------------

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        with self._lock:
            self._events += 1
            self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        name = event["stage"]
        stage = self.stages.setdefault(name, _Stage())
        stage.event(event["done"], event["total"])
        if event.get("passed") is False:
            stage.failed += 1
        if "kinds" in event:
            stage.kinds = dict(event["kinds"])
        if self.tty:
            self._bar(name, stage)
        else:
            self._line(name, stage)

    def extra(self, name: str, stage: _Stage) -> str:
        """What follows the counts: tokens for generation, failures for execution."""
        if name == "generate":
            tokens = getattr(self.counts, "tokens_generated", 0) if self.counts is not None else 0
            return f"{tokens} tokens" if tokens else ""
        # The count holds reference and confirmation runs too, while the summary's "executed N
        # candidate runs" counts candidates alone: the rest are named (after the failures, which
        # matter more when a narrow terminal cuts the line short).
        parts = [f"{stage.failed} failed"] if stage.failed else []
        others = [f"{n} {_KINDS.get(kind, kind)}" for kind, n in stage.kinds.items() if n and kind != "candidate"]
        if others:
            parts.append(("incl. " if stage.kinds.get("candidate") else "") + ", ".join(others))
        return ", ".join(parts)

    # -- plain lines ---------------------------------------------------------------------------

    def _line(self, name: str, stage: _Stage) -> None:
        now = time.monotonic()
        # Quick stages print nothing; long ones print every ``every`` seconds and when they finish.
        last = self._last_line.get(name, stage.start)
        if now - last < self.every and (stage.done < stage.total or name not in self._last_line):
            return
        self._last_line[name] = now
        verb = "generated" if name == "generate" else "executed"
        eta = stage.eta()
        parts = [f"{stage.rate():.1f}/s"]
        if extra := self.extra(name, stage):
            parts.append(extra)
        if not math.isnan(eta):
            parts.append(f"ETA {eta:.0f} s")
        self.write(f"passk: {verb} {stage.done}/{stage.total} {_STAGES[name][1]} ({', '.join(parts)})")

    # -- bars ----------------------------------------------------------------------------------

    def _bar(self, name: str, stage: _Stage) -> None:
        if self._rich is None:
            self._rich = self._make_bars()
            self._rich.start()
            self._tasks = {}
        if name not in self._tasks:
            self._tasks[name] = self._rich.add_task(f"passk {_STAGES[name][0]}", total=stage.total, stage=name)
        self._rich.update(self._tasks[name], completed=stage.done, total=stage.total)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if all(s.done >= s.total for s in self.stages.values()):
            # Nothing is under way (e.g. the reference runs are done and the engine is loading): if
            # it stays so for a moment, the bars are left on screen as they are, so whatever else
            # writes to the terminal now (an engine's start-up messages) starts on a line of its
            # own instead of under a bar that keeps redrawing. The next event draws them again below.
            self._idle = threading.Timer(IDLE, self._close_if_idle, args=(self._events,))
            self._idle.daemon = True
            self._idle.start()

    def _close_if_idle(self, events: int) -> None:
        with self._lock:
            if events == self._events:
                self._stop()

    def _make_bars(self) -> Any:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                                   TimeRemainingColumn)
        from rich.text import Text

        display = self

        class Extra(ProgressColumn):
            def render(self, task: Any) -> Text:
                name = task.fields["stage"]
                stage = display.stages[name]
                text = f"{stage.rate():.1f}/s"
                if extra := display.extra(name, stage):
                    text += f", {extra}"
                return Text(text, no_wrap=True, overflow="ellipsis")

        console = Console(file=_TerminalFile(self.terminal), force_terminal=True,
                          width=getattr(getattr(self.terminal, "_tw", None), "fullwidth", None) or 80)
        # The rate, failures and kinds come last: on a narrow terminal they are what gets cut short.
        return Progress(TextColumn("{task.description}"), BarColumn(bar_width=12), MofNCompleteColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), Extra(), console=console,
                        redirect_stdout=False, redirect_stderr=False, refresh_per_second=4)

    def close(self) -> None:
        """Leave the bars' last state on screen; nothing more is drawn."""
        with self._lock:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            self._stop()

    def _stop(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


class _TerminalFile:
    """A file that writes through pytest's terminal writer (its output is not captured)."""

    def __init__(self, terminal: Any) -> None:
        self.terminal = terminal

    def write(self, text: str) -> int:
        self.terminal.write(text, flush=True)
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()

    def isatty(self) -> bool:
        return True


def for_config(config: Any, counts: _Counts | None = None) -> ProgressDisplay:
    """The display a pytest run gets: bars on a terminal, lines otherwise, nothing with ``-q``."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    tty = False
    if terminal is not None:
        isatty = getattr(terminal, "isatty", False)
        tty = bool(isatty() if callable(isatty) else isatty)

    def write(line: str) -> None:
        if terminal is not None:
            terminal.write_line(line)

    return ProgressDisplay(write, terminal=terminal, tty=tty, quiet=config.get_verbosity() < 0 if hasattr(
        config, "get_verbosity") else config.option.verbose < 0, counts=counts)


#: The plain-line printer (the display without a terminal) under its former name.
ProgressPrinter = ProgressDisplay
