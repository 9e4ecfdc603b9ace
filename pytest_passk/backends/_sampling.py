"""What every model backend shares: the sampling settings, their store key, and chat rendering."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from pytest_passk.options import Settings

def sampling_dict(settings: Settings) -> dict[str, Any]:
    return {
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_tokens,
        "seed": settings.seed,
        "stop": list(settings.stop),
    }


def source_key(kind: str, model_identity: str, settings: Settings, extra: dict[str, Any] | None = None) -> str:
    """Samples are reused only for the same model and the same sampling settings."""
    data = {"kind": kind, "model": model_identity, **sampling_dict(settings), **(extra or {})}
    return kind + ":" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:24]


def chat_messages(prompt: str) -> list[dict[str, str]]:
    """A chat-style problem's prompt is the user's turn, as written; the reply's code block is the program."""
    return [{"role": "user", "content": prompt}]
