"""What stored samples and verdicts are keyed on: a stored value is reused only when everything that
shaped it is the same. The rule is written up in the README ("What a re-run reuses")."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_passk.options import Settings
    from pytest_passk.problem import Problem


@lru_cache(maxsize=1)
def passk_version() -> str:
    """The installed pytest-passk version: verdicts from another version are not reused."""
    try:
        from importlib.metadata import version

        return version("pytest-passk")
    except Exception:  # not installed (run from a checkout)
        return "unknown"


def sampling_dict(settings: Settings) -> dict[str, Any]:
    return {
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_tokens,
        "seed": settings.seed,
        "stop": list(settings.stop),
    }


def source_key(kind: str, model_identity: str, settings: Settings, extra: dict[str, Any] | None = None) -> str:
    """Samples are reused only for the same model and the same sampling settings (``extra``: whatever
    else the backend knows shapes its samples)."""
    data = {"kind": kind, "model": model_identity, **sampling_dict(settings), **(extra or {})}
    return kind + ":" + hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]


def prompt_key(problem: Problem, style: str) -> str:
    """Samples are kept per prompt and per style: a chat-rendered prompt is another question. Problems
    with the same prompt share one pool of samples (each takes the first ``n``)."""
    return hashlib.sha256(f"{style}\0{problem.prompt}".encode()).hexdigest()


def run_key(problem: Problem, settings: Settings, timeout: float, environment: str = "") -> str:
    """Verdicts are reused only for the same test (its file, conftests and declared dependencies, in
    ``problem.fingerprint``), limits, sandbox, pytest-passk version and ``environment``: the sandbox's
    identity of where candidates run (e.g. the image id that ``--passk-image=auto`` resolved to)."""
    image = settings.image if settings.sandbox == "docker" else ""
    text = (f"{problem.fingerprint}|{timeout}|{settings.memory}|{settings.sandbox}|{image}|"
            f"{passk_version()}|{environment}")
    return hashlib.sha256(text.encode()).hexdigest()[:32]
