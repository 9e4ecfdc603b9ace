"""Replay backend: samples come from a HumanEval-format JSONL file instead of a model."""
from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_passk.backends import Backend, BackendError, Request
from pytest_passk.problem import STYLES

if TYPE_CHECKING:
    from pytest_passk.options import Settings
    from pytest_passk.problem import Problem


#: The largest completion a samples file may hold; a longer one is almost surely not a program
#: (a model stuck in a loop writes megabytes), and every run would ship it to the sandbox.
MAX_COMPLETION = 16 << 20


def _fail(path: Path, lineno: int | None, message: str) -> BackendError:
    where = f"{path}:{lineno}" if lineno is not None else str(path)
    return BackendError(f"{where}: {message}")


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                yield from enumerate(fh, 1)
        else:
            with open(path, "rb") as fh:
                yield from enumerate(fh, 1)
    except (OSError, EOFError) as exc:  # an unreadable file or a broken .gz
        raise _fail(path, None, f"cannot read the samples file ({exc})") from None


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_samples(path: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """``task_id -> completions`` in file order, and ``task_id -> style`` where lines record one
    (files written by ``--passk-save-samples`` do). Anything malformed stops with one error naming the
    file and line: bad UTF-8 or JSON, a missing or non-string field, a lone surrogate escape, a
    completion over :data:`MAX_COMPLETION` bytes, a task with two styles (or styled and unstyled
    lines), an empty file."""
    by_task: dict[str, list[str]] = defaultdict(list)
    styles: dict[str, str] = {}
    unstyled: dict[str, int] = {}
    for lineno, raw in _lines(path):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(path, lineno, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                        "samples files are UTF-8 JSON lines") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise _fail(path, lineno, f"not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise _fail(path, lineno, f"expected a JSON object, got {type(record).__name__}")
        for name in ("task_id", "completion"):
            if name not in record:
                raise _fail(path, lineno, f"each line needs string fields \"task_id\" and \"completion\"; "
                            f"\"{name}\" is missing (fields: {', '.join(sorted(record)) or 'none'})")
            if not isinstance(record[name], str):
                raise _fail(path, lineno, f"each line needs string fields \"task_id\" and \"completion\"; "
                            f"\"{name}\" is {type(record[name]).__name__} {str(record[name])[:40]!r}")
        task, completion = record["task_id"], record["completion"]
        if not task:
            raise _fail(path, lineno, "\"task_id\" is empty")
        for name, value in (("task_id", task), ("completion", completion)):
            if _has_lone_surrogate(value):
                raise _fail(path, lineno, f"\"{name}\" holds a lone surrogate escape (such as \\ud800), which is "
                            "not text; fix the tool that wrote the file")
        size = len(completion.encode("utf-8"))
        if size > MAX_COMPLETION:
            raise _fail(path, lineno, f"the completion of {task!r} is {size / (1 << 20):.1f} MiB, over the "
                        f"{MAX_COMPLETION >> 20} MiB limit for one sample; drop or truncate it")
        style = record.get("style")
        if style is not None:
            if style not in STYLES:
                raise _fail(path, lineno, f"\"style\" must be one of {', '.join(STYLES)}, got {style!r}")
            if styles.setdefault(task, style) != style:
                raise _fail(path, lineno, f"{task!r} has samples of two styles, {styles[task]} and {style}; "
                            "one task's samples must share a style")
            if task in unstyled:
                raise _fail(path, lineno, f"{task!r} has lines with \"style\" and without (line {unstyled[task]}); "
                            "give every line of a task the same style")
        else:
            unstyled.setdefault(task, lineno)
            if task in styles:
                raise _fail(path, lineno, f"{task!r} has lines with \"style\" and without; give every line of "
                            "a task the same style")
        by_task[task].append(completion)
    if not by_task:
        raise _fail(path, None, "holds no samples (the file is empty); pass a file with one "
                    "{\"task_id\", \"completion\"} object per line")
    return dict(by_task), styles


def write_samples(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """Write ``(task_id, completion, style)`` rows in the HumanEval format (plus the style, which
    other tools ignore and a re-score here needs to rebuild the same programs), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for task, completion, style in rows:
            fh.write(json.dumps({"task_id": task, "completion": completion, "style": style}) + "\n")
    tmp.replace(path)


class ReplayBackend(Backend):
    """Every sample of a problem is a line of the file whose ``task_id`` equals the problem's id."""

    name = "replay"
    stores_samples = False

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        assert settings.samples is not None
        self.path = settings.samples
        self.samples, self.styles = read_samples(self.path)

    def source_key(self) -> str:
        return "file:" + hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def style_for(self, problem: Problem) -> str | None:
        return self.styles.get(problem.id)

    def available(self, problem: Problem) -> int:
        return len(self.samples.get(problem.id, ()))

    def generate(self, requests: list[Request]) -> Iterator[tuple[Request, list[str]]]:
        for request in requests:
            # On demand: a policy that asks again gets the next samples, in file order.
            yield request, self.samples.get(request.problem.id, [])[request.start: request.start + request.n]

    def describe(self) -> str:
        return f"replay of {self.path}"
