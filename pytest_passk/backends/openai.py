"""OpenAI-compatible endpoint backend (``vllm serve`` first of all): one request per problem with
``n`` samples, sent concurrently, retried with backoff on 429/5xx and dropped connections."""
from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from pytest_passk.backends import Backend, BackendError, Request
from pytest_passk.backends._sampling import chat_messages, source_key
from pytest_passk.options import Settings

REQUEST_TIMEOUT = 600.0
RETRIES = 5
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        assert settings.endpoint
        base = settings.endpoint.rstrip("/")
        self.base = base if base.endswith("/v1") else base + "/v1"
        self.api_key = os.environ.get(settings.api_key_env, "")
        self.timeout = REQUEST_TIMEOUT
        self.concurrency = settings.concurrency
        self.model = settings.model or self._served_model()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        """One HTTP call with retries; raises :class:`BackendError` with the fix when it cannot succeed."""
        url = self.base + path
        data = None if body is None else json.dumps(body).encode()
        delay = 0.5
        for attempt in range(RETRIES + 1):
            req = urllib.request.Request(url, data=data, method=method, headers=self._headers())
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:500].decode(errors="replace")
                if exc.code in _RETRY_STATUS and attempt < RETRIES:
                    retry_after = exc.headers.get("Retry-After") if exc.headers else None
                    time.sleep(float(retry_after) if retry_after and retry_after.isdigit() else delay)
                    delay = min(delay * 2, 30) * (1 + random.random() * 0.1)
                    continue
                if exc.code in (401, 403):
                    raise BackendError(f"{url} refused the request ({exc.code}): set the API key in "
                                       f"${self.settings.api_key_env} (--passk-api-key-env names the variable)") from None
                raise BackendError(f"{url} answered {exc.code}: {detail}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                if attempt < RETRIES and path != "/models":
                    time.sleep(delay)
                    delay = min(delay * 2, 30)
                    continue
                reason = getattr(exc, "reason", exc)
                raise BackendError(f"endpoint {self.base} is unreachable ({reason}); start the server "
                                   "(e.g. `vllm serve MODEL --port 8000`) or fix --passk-endpoint") from None
        raise BackendError(f"{url} kept failing after {RETRIES} retries")  # pragma: no cover

    def _served_model(self) -> str:
        models = self._call("GET", "/models")
        data = models.get("data") or []
        if not data:
            raise BackendError(f"{self.base}/models lists no model; pass --passk-model=NAME (the served name)")
        return data[0]["id"]

    def source_key(self) -> str:
        return source_key("openai", f"{self.base}|{self.model}", self.settings)

    def _body(self, request: Request) -> tuple[str, dict[str, Any]]:
        s = self.settings
        body: dict[str, Any] = {"model": self.model, "n": request.n, "temperature": s.temperature,
                                "top_p": s.top_p, "max_tokens": s.max_tokens}
        if s.stop:
            body["stop"] = list(s.stop)
        if s.seed is not None:
            body["seed"] = s.seed + request.start  # extra samples must not repeat the stored ones
        if request.style == "chat":
            body["messages"] = chat_messages(request.problem.prompt)
            return "/chat/completions", body
        body["prompt"] = request.problem.prompt
        return "/completions", body

    def _one(self, request: Request) -> list[str]:
        path, body = self._body(request)
        reply = self._call("POST", path, body, timeout=self.timeout)
        self.tokens_generated += int((reply.get("usage") or {}).get("completion_tokens") or 0)
        choices = sorted(reply.get("choices", []), key=lambda c: c.get("index", 0))
        if request.style == "chat":
            texts = [(c.get("message") or {}).get("content") or "" for c in choices]
        else:
            texts = [c.get("text") or "" for c in choices]
        if len(texts) != request.n:
            raise BackendError(f"{self.base}{path} returned {len(texts)} choices for {request.problem.id}, "
                               f"asked for n={request.n}")
        return texts

    def prepare(self, requests: list[Request]) -> None:
        self._call("GET", "/models")  # fail fast and clearly if the server is not there

    def generate(self, requests: list[Request]) -> Iterator[tuple[Request, list[str]]]:
        if not requests:
            return
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="passk-http") as pool:
            futures: dict[Future[list[str]], Request] = {pool.submit(self._one, r): r for r in requests}
            try:
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in done:
                        request = futures.pop(fut)
                        yield request, fut.result()
            finally:
                for fut in futures:
                    fut.cancel()

    def describe(self) -> str:
        return f"endpoint {self.base} model {self.model} (temperature {self.settings.temperature}, n per request)"
