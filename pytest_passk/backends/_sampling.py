"""What every model backend shares: chat rendering (the store keys live in :mod:`pytest_passk.keys`)."""
from __future__ import annotations

from pytest_passk.keys import sampling_dict, source_key  # noqa: F401 - backends import them from here


def chat_messages(prompt: str) -> list[dict[str, str]]:
    """A chat-style problem's prompt is the user's turn, as written; the reply's code block is the program."""
    return [{"role": "user", "content": prompt}]
