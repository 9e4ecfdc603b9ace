"""OpenAI-compatible endpoint backend (``vllm serve`` first of all), over one or more endpoints.

One request per problem with ``n`` samples. Requests go to the live endpoint with the least
outstanding work (samples in flight), at most ``--passk-concurrency`` at once per endpoint. A request
that meets 429/5xx or a dropped connection is retried with backoff; an endpoint that stops answering
(connection refused or reset, or still failing after the retries) is taken out and its requests go to
the others, so only its in-flight requests are lost and they are asked again elsewhere. A single
router URL (vLLM's data-parallel server, a load balancer) is simply one endpoint.
"""
from __future__ import annotations

import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from pytest_passk.backends import Backend, BackendError, Request
from pytest_passk.backends._sampling import chat_messages, source_key
from pytest_passk.options import Settings

REQUEST_TIMEOUT = 600.0
RETRIES = 5
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
#: The connection itself failed: the server is down or was killed, not merely busy.
_CONNECTION_ERRORS = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
                      httpx.ConnectTimeout, httpx.PoolTimeout)
#: Seconds between health probes of the live endpoints while a generation runs (with more than one).
PROBE_EVERY = 1.0
#: A probe that cannot even connect within this many seconds counts as a failed one.
PROBE_TIMEOUT = 5.0
#: Probes in a row that time out before an endpoint is taken out (a refused connection takes it out
#: at once: nothing listens there any more; a timeout may be a machine too busy to accept quickly).
PROBE_TIMEOUTS = 3


class _EndpointDown(Exception):
    """This endpoint cannot serve the request; another one may."""


@dataclass(eq=False)
class Endpoint:
    """One server: its client, the work it holds, and whether it is still used."""

    base: str
    client: httpx.Client
    outstanding: int = 0  #: samples in requests sent and not yet answered
    in_flight: int = 0  #: requests sent and not yet answered
    served: int = 0  #: requests answered
    moved: int = 0  #: requests in flight when it was taken out, asked again elsewhere
    down: str | None = None  #: why it was taken out
    probe_timeouts: int = 0  #: health probes in a row that timed out
    lock: threading.Lock = field(default_factory=threading.Lock)


def _base(url: str) -> str:
    base = url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


class OpenAIBackend(Backend):
    name = "openai"
    counts_tokens = True

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        assert settings.endpoints
        self.api_key = os.environ.get(settings.api_key_env, "")
        self.timeout = REQUEST_TIMEOUT
        self.concurrency = settings.concurrency
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self.endpoints = [
            Endpoint(base=_base(url), client=httpx.Client(
                headers=headers, timeout=httpx.Timeout(self.timeout, connect=10.0),
                limits=httpx.Limits(max_connections=self.concurrency + 2, max_keepalive_connections=self.concurrency)))
            for url in dict.fromkeys(settings.endpoints)]
        self.base = self.endpoints[0].base  # the one a single-endpoint run names
        self._cond = threading.Condition()
        self.model = settings.model or self._served_model()

    # -- HTTP ----------------------------------------------------------------------------------

    def _call(self, endpoint: Endpoint, method: str, path: str, body: dict[str, Any] | None = None,
              timeout: float | None = None, retries: int = RETRIES, reconnect: int = RETRIES) -> Any:
        """One call with up to ``retries`` retries on 429/5xx and ``reconnect`` on dropped connections.

        Raises :class:`_EndpointDown` when this endpoint cannot answer, :class:`BackendError` when the
        request itself is refused (no endpoint would take it)."""
        url = endpoint.base + path
        delay = 0.5
        attempt = reconnects = 0
        while True:
            try:
                resp = endpoint.client.request(method, url, json=body,
                                               timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout)
            except (*_CONNECTION_ERRORS, httpx.ReadTimeout) as exc:
                if reconnects < reconnect:
                    reconnects += 1
                    time.sleep(delay)
                    delay = min(delay * 2, 30)
                    continue
                raise _EndpointDown(f"unreachable ({type(exc).__name__}: {exc})") from None
            except httpx.HTTPError as exc:
                raise _EndpointDown(f"{type(exc).__name__}: {exc}") from None
            if resp.status_code < 400:
                try:
                    return resp.json()
                except ValueError:
                    raise _EndpointDown(f"{url} answered with something that is not JSON: {resp.text[:200]!r}") from None
            detail = resp.text[:500]
            if resp.status_code in _RETRY_STATUS:
                if attempt < retries:
                    attempt += 1
                    retry_after = resp.headers.get("Retry-After", "")
                    time.sleep(float(retry_after) if retry_after.isdigit() else delay)
                    delay = min(delay * 2, 30) * (1 + random.random() * 0.1)
                    continue
                raise _EndpointDown(f"{url} answered {resp.status_code}: {detail}")
            if resp.status_code in (401, 403):
                raise BackendError(f"{url} refused the request ({resp.status_code}): set the API key in "
                                   f"${self.settings.api_key_env} (--passk-api-key-env names the variable)")
            raise BackendError(f"{url} answered {resp.status_code}: {detail}")

    def _unreachable(self, endpoint: Endpoint, reason: str) -> BackendError:
        return BackendError(f"endpoint {endpoint.base} is {reason}; start the server "
                            "(e.g. `vllm serve MODEL --port 8000`) or fix --passk-endpoint")

    def _served_model(self) -> str:
        for endpoint in self.endpoints:
            try:
                models = self._call(endpoint, "GET", "/models", timeout=30, reconnect=0)
            except _EndpointDown as exc:
                if endpoint is self.endpoints[-1]:
                    raise self._unreachable(endpoint, str(exc)) from None
                continue
            data = models.get("data") or []
            if not data:
                raise BackendError(f"{endpoint.base}/models lists no model; pass --passk-model=NAME (the served name)")
            return data[0]["id"]
        raise AssertionError("unreachable")  # pragma: no cover

    # -- backend -------------------------------------------------------------------------------

    def source_key(self) -> str:
        # One endpoint keeps the key it always had; replicas are named together, in any order.
        where = "|".join(sorted(e.base for e in self.endpoints))
        return source_key("openai", f"{where}|{self.model}", self.settings)

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

    def _texts(self, endpoint: Endpoint, request: Request, path: str, reply: dict[str, Any]) -> list[str]:
        choices = sorted(reply.get("choices", []), key=lambda c: c.get("index", 0))
        if request.style == "chat":
            texts = [(c.get("message") or {}).get("content") or "" for c in choices]
        else:
            texts = [c.get("text") or "" for c in choices]
        if len(texts) != request.n:
            raise BackendError(f"{endpoint.base}{path} returned {len(texts)} choices for {request.problem.id}, "
                               f"asked for n={request.n}")
        return texts

    def prepare(self, requests: list[Request]) -> None:
        # Fail fast and clearly if no server is there; one that is down from the start is left out.
        for endpoint in self.endpoints:
            try:
                self._call(endpoint, "GET", "/models", timeout=30, reconnect=0)
            except _EndpointDown as exc:
                endpoint.down = str(exc)
        if all(e.down for e in self.endpoints):
            raise self._unreachable(self.endpoints[0], self.endpoints[0].down or "down")

    def _probe(self, endpoint: Endpoint) -> None:
        """One health probe (``GET /models`` on a fresh connection): an endpoint that refuses the
        connection, or times out :data:`PROBE_TIMEOUTS` times in a row, is taken out. Requests it still
        holds fail on their own (their connections are gone) and go to the others; it gets no more."""
        try:
            # A fresh connection: a pooled keep-alive one could answer from a dying server's socket.
            httpx.get(endpoint.base + "/models", headers=endpoint.client.headers,
                             timeout=httpx.Timeout(30.0, connect=PROBE_TIMEOUT))
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            self._take_out(endpoint, f"connection refused (health probe: {type(exc).__name__}: {exc})")
            return
        except httpx.TimeoutException as exc:
            endpoint.probe_timeouts += 1
            if endpoint.probe_timeouts >= PROBE_TIMEOUTS:
                self._take_out(endpoint, f"not answering ({PROBE_TIMEOUTS} health probes in a row timed out: "
                                         f"{type(exc).__name__})")
            return
        except httpx.HTTPError:
            return  # anything else is the requests' business (they retry and take it out themselves)
        endpoint.probe_timeouts = 0

    def _take_out(self, endpoint: Endpoint, why: str) -> None:
        with self._cond:
            # The last live endpoint stays: its requests retry with backoff and stop the run themselves.
            if endpoint.down is None and len(self._live()) > 1:
                endpoint.down = why
            self._cond.notify_all()

    def _probe_live(self) -> None:
        for endpoint in self._live():
            self._probe(endpoint)

    def _live(self) -> list[Endpoint]:
        return [e for e in self.endpoints if e.down is None]

    def _acquire(self, request: Request) -> Endpoint:
        """The live endpoint with the least outstanding work that has room for one more request."""
        with self._cond:
            while True:
                live = self._live()
                if not live:
                    last = self.endpoints[-1]
                    raise self._unreachable(last, last.down or "down") if len(self.endpoints) == 1 else BackendError(
                        "every endpoint was taken out: " + "; ".join(f"{e.base}: {e.down}" for e in self.endpoints)
                        + " (start the servers or fix --passk-endpoint)")
                room = [e for e in live if e.in_flight < self.concurrency]
                if room:
                    endpoint = min(room, key=lambda e: (e.outstanding, e.in_flight))
                    endpoint.outstanding += request.n
                    endpoint.in_flight += 1
                    return endpoint
                self._cond.wait()

    def _release(self, endpoint: Endpoint, request: Request, down: str | None = None, tokens: int = 0) -> None:
        with self._cond:
            self.tokens_generated += tokens
            endpoint.outstanding -= request.n
            endpoint.in_flight -= 1
            if down is not None:
                endpoint.moved += 1
            if down is not None and endpoint.down is None:
                endpoint.down = down
            elif down is None:
                endpoint.served += 1
            self._cond.notify_all()

    def _one(self, request: Request) -> list[str]:
        """Ask live endpoints until one answers; an endpoint that cannot is taken out."""
        path, body = self._body(request)
        while True:
            endpoint = self._acquire(request)
            # With another endpoint to go to, a connection that drops twice moves the request there
            # (once may be a stale keep-alive connection); alone, it is retried with backoff.
            alone = len(self._live()) == 1
            try:
                reply = self._call(endpoint, "POST", path, body, reconnect=RETRIES if alone else 1)
            except _EndpointDown as exc:
                self._release(endpoint, request, down=str(exc))
                if alone and len(self.endpoints) == 1:
                    raise (BackendError(str(exc)) if "answered" in str(exc)
                           else self._unreachable(endpoint, str(exc))) from None
                continue
            except BaseException:
                self._release(endpoint, request)
                raise
            # Servers that leave out ``usage`` (it is optional) count as zero tokens, not as an error.
            usage = reply.get("usage") or {}
            generated = int(usage.get("completion_tokens") or 0)
            self._release(endpoint, request, tokens=generated)
            texts = self._texts(endpoint, request, path, reply)
            with self._cond:
                self.record_usage(request.problem.id, int(usage.get("prompt_tokens") or 0), generated, len(texts))
            return texts

    def generate(self, requests: list[Request]) -> Iterator[tuple[Request, list[str]]]:
        if not requests:
            return
        results: deque[tuple[Request, list[str]] | BaseException] = deque()
        todo = deque(requests)
        ready = threading.Condition()
        stop = threading.Event()
        running = 0

        def work() -> None:
            nonlocal running
            try:
                while not stop.is_set():
                    with ready:
                        if not todo:
                            return
                        request = todo.popleft()
                    item: tuple[Request, list[str]] | BaseException
                    try:
                        item = (request, self._one(request))
                    except BaseException as exc:  # handed to the consumer, which stops the rest
                        item = exc
                    with ready:
                        results.append(item)
                        ready.notify_all()
            finally:
                with ready:
                    running -= 1
                    ready.notify_all()

        def monitor() -> None:
            # With several endpoints, a dead one is noticed by a probe even while it holds no request
            # (a request to it would notice too, but only if one is sent or still in flight).
            while not stop.wait(PROBE_EVERY):
                self._probe_live()

        threads = [threading.Thread(target=work, name=f"passk-http-{i}", daemon=True)
                   for i in range(min(len(requests), self.concurrency * len(self.endpoints)))]
        running = len(threads)
        for t in threads:
            t.start()
        if len(self.endpoints) > 1:
            threading.Thread(target=monitor, name="passk-http-probe", daemon=True).start()
        try:
            while True:
                with ready:
                    while not results and running:
                        ready.wait()
                    if not results:
                        break
                    item = results.popleft()
                if isinstance(item, BaseException):
                    raise item
                yield item
            if len(self.endpoints) > 1:
                # A last look once everything is in: one that died after its last answer is reported too.
                self._probe_live()
        finally:
            stop.set()
            with ready:
                todo.clear()

    def describe(self) -> str:
        where = self.base if len(self.endpoints) == 1 else f"{len(self.endpoints)} endpoints ({', '.join(e.base for e in self.endpoints)})"
        text = f"endpoint {where} model {self.model} (temperature {self.settings.temperature}, n per request)"
        down = [e for e in self.endpoints if e.down]
        if down and len(self.endpoints) > 1:
            text += "; taken out: " + "; ".join(f"{e.base} after {e.served} requests, {e.moved} in flight moved ({e.down[:200]})" for e in down)
        return text

    def close(self) -> None:
        for endpoint in self.endpoints:
            endpoint.client.close()
