"""The OpenAI-compatible endpoint backend: against a real ``vllm serve`` (CPU build, tiny model) on
loopback, and against small fake servers for retries, errors and the API key."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port, need_vllm, problem
from pytest_passk.backends import openai as openai_backend
from vllm_serve import Server





@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    need_vllm()
    from tinymodel import make_tiny_model

    return make_tiny_model(tmp_path_factory.getbasetemp() / "tiny-llama")  # shared with the other vLLM tests


@pytest.fixture(scope="module")
def vllm_server(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``vllm serve`` of the tiny model on loopback, once for the module."""
    server = Server(tiny_model, tmp_path_factory.mktemp("vllm-serve") / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


SUITE = """
    import os

    from pytest_passk import passk
    from pytest_passk.candidate import extract_code

    N = int(os.environ.get("SUITE_N", "3"))  # from the environment: the file (and its fingerprint) stays


    @passk(k=1, n=N, prompt="def add(a, b):\\n", id="completion", style="completion")
    def test_completion(candidate):
        assert candidate.code == "def add(a, b):\\n" + candidate.text


    @passk(k=1, n=N - 1, prompt="Write mul(a, b).", id="chat", style="chat")
    def test_chat(candidate):
        assert candidate.code == extract_code(candidate.text)


    @passk(k=1, n=N, prompt="Write neg(a).", id="auto")
    def test_auto(candidate):  # an endpoint cannot tell whether the model has a chat template
        assert candidate.code == "Write neg(a)." + candidate.text
"""


@pytest.mark.vllm
def test_vllm_serve_n_per_request_styles_and_store(pytester: pytest.Pytester, passk_run, vllm_server: Server,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_suite=SUITE)
    monkeypatch.delenv("SUITE_N", raising=False)
    store = str(pytester.path / "store.sqlite")
    args = (f"--passk-endpoint={vllm_server.url}", "--passk-model=tiny", "--passk-max-tokens=8")
    served = len(vllm_server.requests())

    first = passk_run(None, *args, store=store)
    first.assert_outcomes(passed=3)  # each body checked how its samples became programs
    suite = first.report["suite"]
    assert (suite["samples"], suite["samples_generated"], suite["runs_reused"]) == (8, 8, 0)
    assert [(p["id"], p["n"], p["correct"]) for p in first.report["problems"]] == [
        ("completion", 3, 3), ("chat", 2, 2), ("auto", 3, 3)]
    assert 0 < suite["tokens_generated"] <= 8 * 8
    assert suite["generate_seconds"] > 0
    calls = vllm_server.requests()[served:]
    # one request per problem, each with its n: never one per sample
    assert sorted(calls) == ["GET /v1/models", "POST /v1/chat/completions", "POST /v1/completions",
                             "POST /v1/completions"], calls
    first.stdout.fnmatch_lines([f"samples: endpoint {vllm_server.url}/v1 model tiny*"])

    served = len(vllm_server.requests())
    again = passk_run(None, *args, store=store)
    assert (again.report["suite"]["samples_generated"], again.report["suite"]["runs_executed"]) == (0, 0)
    assert [p["passed_samples"] for p in again.report["problems"]] == [p["passed_samples"] for p in first.report["problems"]]
    assert not [c for c in vllm_server.requests()[served:] if c.startswith("POST")]

    monkeypatch.setenv("SUITE_N", "5")
    served = len(vllm_server.requests())
    more = passk_run(None, *args, store=store)
    suite = more.report["suite"]
    assert (suite["samples"], suite["samples_generated"]) == (14, 6)
    assert suite["runs_reused"] == 2 * 8 and suite["runs_executed"] <= 2 * 6
    assert len([c for c in vllm_server.requests()[served:] if c.startswith("POST")]) == 3
    assert [problem(more.report, pid)["n"] for pid in ("completion", "chat", "auto")] == [5, 4, 5]


# -- fake servers --------------------------------------------------------------------------------

Reply = Callable[[str, dict[str, Any], "FakeServer"], tuple[int, dict[str, str], dict[str, Any]]]


class FakeServer:
    """An OpenAI-style server on loopback that answers POSTs from ``reply`` and logs every request."""

    def __init__(self, reply: Reply, api_key: str | None = None) -> None:
        self.reply = reply
        self.api_key = api_key
        self.log: list[tuple[str, str, int]] = []  # (method, path, status)
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                with server.lock:
                    server.log.append((self.command, self.path, status))

            def _authorized(self) -> bool:
                if server.api_key is None:
                    return True
                if self.headers.get("Authorization") == f"Bearer {server.api_key}":
                    return True
                self._send(401, {}, {"error": {"message": "bad or missing API key"}})
                return False

            def do_GET(self) -> None:  # noqa: N802
                if self._authorized():
                    self._send(200, {}, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self._authorized():
                    return
                with server.lock:
                    server.bodies.append(body)
                self._send(*server.reply(self.path, body, server))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def statuses(self, method: str = "POST") -> list[int]:
        with self.lock:
            return [status for m, _, status in self.log if m == method]

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "text_completion", "model": body["model"],
            "choices": [{"index": i, "text": text, "finish_reason": "stop"} for i in range(body["n"])],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7 * body["n"], "total_tokens": 5 + 7 * body["n"]}}


FAKE_SUITE = """
    from pytest_passk import passk

    @passk(k=1, n=3, prompt="def add(a, b):\\n", id="add", style="completion")
    def test_add(candidate):
        assert candidate.function("add")(2, 3) == 5
"""


def test_retries_429_and_503_then_succeeds_with_the_api_key(pytester: pytest.Pytester, passk_run,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([(429, {}, {"error": {"message": "slow down"}}),
                    (503, {}, {"error": {"message": "overloaded"}})])

    def reply(path: str, body: dict[str, Any], server: FakeServer):
        assert path == "/v1/completions"
        return next(answers, None) or (200, {}, completion(body, "    return a + b\n"))

    pytester.makepyfile(test_suite=FAKE_SUITE)
    monkeypatch.setenv("FAKE_LLM_KEY", "s3cret-key")
    with FakeServer(reply, api_key="s3cret-key") as server:
        result = passk_run(None, f"--passk-endpoint={server.url}", "--passk-model=fake-model",
                           "--passk-api-key-env=FAKE_LLM_KEY", "--passk-temperature=0.3", "--passk-max-tokens=64")
    result.assert_outcomes(passed=1)
    assert server.statuses() == [429, 503, 200]
    assert 401 not in server.statuses("GET") + server.statuses()  # the key went with every request
    assert all(b == server.bodies[0] for b in server.bodies)
    body = server.bodies[0]
    assert (body["model"], body["n"], body["prompt"], body["temperature"], body["max_tokens"]) == (
        "fake-model", 3, "def add(a, b):\n", 0.3, 64)
    rec = problem(result.report, "add")
    assert (rec["n"], rec["correct"]) == (3, 3)
    assert result.report["suite"]["tokens_generated"] == 21


def test_missing_api_key_is_a_clear_error(pytester: pytest.Pytester, passk_run, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_suite=FAKE_SUITE)
    monkeypatch.delenv("FAKE_LLM_KEY", raising=False)
    with FakeServer(lambda p, b, s: (200, {}, completion(b, "")), api_key="s3cret-key") as server:
        result = passk_run(None, f"--passk-endpoint={server.url}", "--passk-model=fake-model",
                           "--passk-api-key-env=FAKE_LLM_KEY")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: passk: *refused the request (401)*$FAKE_LLM_KEY*"])


def test_server_that_keeps_failing_is_a_clear_error_after_the_retries(pytester: pytest.Pytester, passk_run) -> None:
    # Retry-After: 0 keeps the test fast; without it the backoff (0.5 s doubling, RETRIES times) takes ~16 s.
    pytester.makepyfile(test_suite=FAKE_SUITE)
    with FakeServer(lambda p, b, s: (500, {"Retry-After": "0"}, {"error": {"message": "engine exploded"}})) as server:
        started = time.monotonic()
        result = passk_run(None, f"--passk-endpoint={server.url}", "--passk-model=fake-model")
        took = time.monotonic() - started
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert server.statuses() == [500] * (openai_backend.RETRIES + 1)
    errors = [line for line in result.stderr.lines if line.startswith("ERROR: passk:")]
    assert len(errors) == 1 and "answered 500" in errors[0] and "engine exploded" in errors[0], result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert took < 30


def test_unreachable_endpoint_is_a_clear_error(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_suite=FAKE_SUITE)
    port = free_port()  # nothing listens there
    for extra in ((), ("--passk-model=some-model",)):  # asking the server for its model, or not
        started = time.monotonic()
        result = passk_run(None, f"--passk-endpoint=http://127.0.0.1:{port}", *extra)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        errors = [line for line in result.stderr.lines if line.startswith("ERROR: passk:")]
        assert len(errors) == 1, result.stderr.str()
        assert f"endpoint http://127.0.0.1:{port}/v1 is unreachable" in errors[0]
        assert "vllm serve" in errors[0] and "--passk-endpoint" in errors[0]
        assert time.monotonic() - started < 30
