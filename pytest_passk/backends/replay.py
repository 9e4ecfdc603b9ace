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


def read_samples(path: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """``task_id -> completions`` in file order, and ``task_id -> style`` where lines record one
    (files written by ``--passk-save-samples`` do); one clear error naming the file and line if malformed."""
    by_task: dict[str, list[str]] = defaultdict(list)
    styles: dict[str, str] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise BackendError(f"{path}:{lineno}: not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise BackendError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            task, completion = record.get("task_id"), record.get("completion")
            if not isinstance(task, str) or not isinstance(completion, str):
                raise BackendError(
                    f"{path}:{lineno}: each line needs string fields \"task_id\" and \"completion\", "
                    f"got {sorted(record)}"
                )
            style = record.get("style")
            if style is not None:
                if style not in STYLES:
                    raise BackendError(f"{path}:{lineno}: \"style\" must be one of {', '.join(STYLES)}, got {style!r}")
                if styles.setdefault(task, style) != style:
                    raise BackendError(f"{path}:{lineno}: {task!r} has samples of two styles, {styles[task]} and {style}")
            by_task[task].append(completion)
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
            yield request, self.samples.get(request.problem.id, [])[: request.n]

    def describe(self) -> str:
        return f"replay of {self.path}"
