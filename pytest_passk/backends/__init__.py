"""Generation backends turn requests for samples into model outputs; interface and name registry."""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_passk.options import Settings
    from pytest_passk.problem import Problem


class BackendError(Exception):
    """The backend cannot produce samples; the message says what is wrong and how to fix it."""


@dataclass
class Request:
    """Ask for ``n`` more samples of one problem's prompt, rendered in ``style``."""

    problem: Problem
    n: int
    style: str
    start: int = 0  #: samples already held for this prompt (seeds must differ from theirs)


@dataclass
class Usage:
    """What generating one problem's samples cost in this run (summed over its requests)."""

    prompt_tokens: int = 0  #: prompt tokens sent, once per request (a request asks for n samples)
    generated_tokens: int = 0
    samples: int = 0  #: samples these tokens produced


class Backend(ABC):
    """Produces samples. ``generate`` yields each request's texts as soon as they are complete."""

    name: str = "backend"
    #: Whether samples come from a model and should be kept in the store. A backend that does not
    #: (a file replay) has every sample at hand: the plan takes them synchronously.
    stores_samples: bool = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.usage: dict[str, Usage] = {}

    @abstractmethod
    def source_key(self) -> str:
        """Identifies the model and every sampling setting: samples are reused only under the same key."""

    def style_for(self, problem: Problem) -> str | None:
        """The style this backend knows a problem's samples have (a saved file records it), or None."""
        return None

    def default_style(self) -> str:
        """The style used when neither the marker nor ``--passk-style`` chooses one."""
        return "completion"

    #: Output tokens produced so far, for backends that can count them.
    tokens_generated: int = 0
    #: Whether :attr:`usage` is filled: prompt and generated tokens per problem (a samples file
    #: has no token counts, a model does).
    counts_tokens: bool = False

    def record_usage(self, problem_id: str, prompt_tokens: int, generated_tokens: int, samples: int) -> None:
        """Add one finished request's token counts to ``usage[problem_id]`` (thread-safe enough:
        each problem's requests are recorded by one thread at a time)."""
        usage = self.__dict__.setdefault("usage", {}).setdefault(problem_id, Usage())
        usage.prompt_tokens += prompt_tokens
        usage.generated_tokens += generated_tokens
        usage.samples += samples

    def prepare(self, requests: list[Request]) -> None:
        """Load the engine or connect (timed apart from generation); called before :meth:`generate`."""

    def available(self, problem: Problem) -> int | None:
        """How many samples exist for ``problem`` without generating (replay), None if unbounded."""
        return None

    @abstractmethod
    def generate(self, requests: list[Request]) -> Iterator[tuple[Request, list[str]]]:
        """Yield ``(request, texts)`` with ``len(texts) == request.n`` as each request completes."""

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        """Release the engine or connections."""


_REGISTRY: dict[str, str] = {
    "replay": "pytest_passk.backends.replay:ReplayBackend",
    "vllm": "pytest_passk.backends.vllm:VLLMBackend",
    "openai": "pytest_passk.backends.openai:OpenAIBackend",
}


def get(name: str) -> type[Backend]:
    try:
        module, _, attr = _REGISTRY[name].partition(":")
    except KeyError:
        raise BackendError(f"unknown backend {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    return getattr(importlib.import_module(module), attr)


def choose(settings: Settings) -> str:
    """Which built-in backend the options ask for."""
    if settings.samples is not None:
        return "replay"
    if settings.endpoint:
        return "openai"
    return "vllm"
