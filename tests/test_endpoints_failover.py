"""Several endpoints: requests spread by outstanding work, and an endpoint that dies is taken out
while its requests go to the others. Against two real ``vllm serve`` processes (CPU build, tiny model)
on loopback, one killed mid-run, and against small fake servers."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import LOCAL, free_port, need_vllm, problem
from test_endpoint import FAKE_SUITE, FakeServer, completion
from vllm_serve import Server

SUITE = """
    import pytest
    from pytest_passk import passk

    PROBLEMS = [f"def f{i}(x):\\n" for i in range(24)]

    @passk(k=1, n=3, prompt=lambda prompt: prompt, style="completion", id=lambda prompt: prompt.split("(")[0][4:])
    @pytest.mark.parametrize("prompt", PROBLEMS)
    def test_f(candidate, prompt):
        assert candidate.code.startswith(prompt)
"""


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    need_vllm()
    from tinymodel import make_tiny_model

    model = make_tiny_model(tmp_path_factory.getbasetemp() / "tiny-llama")
    folder = tmp_path_factory.mktemp("vllm-serve-2")
    servers = (Server(model, folder / "a.log"), Server(model, folder / "b.log"))
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def posts(server: Server) -> int:
    return sum(1 for r in server.requests() if r.startswith("POST"))


@pytest.mark.vllm
def test_two_vllm_serve_one_killed_mid_run_loses_nothing(pytester: pytest.Pytester,
                                                         two_servers: tuple[Server, Server]) -> None:
    a, b = two_servers
    pytester.makepyfile(test_suite=SUITE)
    store = pytester.path / "store.sqlite"
    args = [*[x for x in LOCAL if not x.startswith("--passk-store")], f"--passk-store={store}",
            f"--passk-endpoint={a.url}", f"--passk-endpoint={b.url}", "--passk-model=tiny",
            "--passk-max-tokens=1000", "--passk-concurrency=1", "--passk-runs=1",
            f"--passk-report={pytester.path / 'report.json'}", "-p", "no:cacheprovider"]
    before_a, before_b = posts(a), posts(b)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=pytester.path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Kill A while it is generating (requests in flight on A are lost with it and must be sent to
    # B), once the run is under way: A has answered a request, or B has answered 4 (A's first request
    # can outlast B's first many: the tiny model's answers run from a few tokens to 3 x 1000).
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if (posts(a) > before_a or posts(b) - before_b >= 4) and a.running() > 0:
            break
        time.sleep(0.05)
    else:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate()[0]
        pytest.fail(f"A was never seen generating once the run was under way (A answered "
                    f"{posts(a) - before_a}, B {posts(b) - before_b}):\n{out}")
    a.kill()
    killed_after = posts(a) - before_a
    b_at_kill = posts(b)
    out, _ = proc.communicate(timeout=600)
    assert posts(b) > b_at_kill, "the generation was over before the kill: nothing was tested"
    assert proc.returncode == 0, out
    report = json.loads((pytester.path / "report.json").read_text())
    suite = report["suite"]
    assert (suite["problems"], suite["samples"], suite["samples_generated"]) == (24, 72, 72), out
    assert all(p["n"] == 3 for p in report["problems"])
    assert killed_after < 24 and posts(b) >= 24 - killed_after  # B took the rest, A's lost requests too
    assert "2 endpoints" in suite["source"], suite["source"]
    # A is taken out and reported: by a request to it that fails, or, when the kill lands after A's
    # last request of the run, by the health probe; the endpoint that stayed up never is.
    assert "taken out: " + a.url in suite["source"] and "taken out: " + b.url not in suite["source"], suite["source"]

    # Nothing generated was lost or stored twice: the next run generates nothing.
    served_b = posts(b)
    again = subprocess.run([sys.executable, "-m", "pytest", *args[:-3], f"--passk-endpoint={b.url}",
                            "--passk-model=tiny", "--passk-max-tokens=1000", "--passk-runs=1",
                            f"--passk-report={pytester.path / 'again.json'}", "-p", "no:cacheprovider"],
                           cwd=pytester.path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout


# -- fake servers: spreading and a dead endpoint, deterministic and fast --------------------------

def slow_reply(delay: float):
    def reply(path: str, body: dict[str, Any], server: FakeServer):
        time.sleep(delay)
        return 200, {}, completion(body, "    return a + b\n")
    return reply


MANY = """
    import pytest
    from pytest_passk import passk

    @passk(k=1, n=2, prompt=lambda i: f"def add{i}(a, b):\\n", style="completion", id=lambda i: f"p{i}")
    @pytest.mark.parametrize("i", range(16))
    def test_add(candidate, i):
        assert candidate.function(f"add{i}")(2, 3) == 5
"""


def test_requests_spread_over_endpoints_by_outstanding_work(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_suite=MANY)
    with FakeServer(slow_reply(0.2)) as fast, FakeServer(slow_reply(0.6)) as slow:
        result = passk_run(None, f"--passk-endpoint={fast.url}", f"--passk-endpoint={slow.url}",
                           "--passk-model=fake-model", "--passk-concurrency=2", "--passk-runs=1")
    result.assert_outcomes(passed=16)
    n_fast, n_slow = len(fast.statuses()), len(slow.statuses())
    assert n_fast + n_slow == 16
    assert n_slow >= 2 and n_fast > n_slow  # both used; the quicker one, with less outstanding, more
    assert result.report["suite"]["samples_generated"] == 32


def test_ini_list_and_an_endpoint_down_from_the_start(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_suite=FAKE_SUITE)
    dead = f"http://127.0.0.1:{free_port()}"
    with FakeServer(slow_reply(0.0)) as live:
        pytester.makeini(f"[pytest]\npassk_endpoint =\n    {dead}\n    {live.url}\n")
        result = passk_run(None, "--passk-model=fake-model")
    result.assert_outcomes(passed=1)
    assert len(live.statuses()) == 1
    source = result.report["suite"]["source"]
    assert source.startswith("endpoint 2 endpoints") and f"taken out: {dead}/v1 after 0 requests" in source


def test_endpoint_dying_mid_request_moves_its_request_to_the_other(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_suite=MANY)
    calls: Counter[str] = Counter()

    def dying(path: str, body: dict[str, Any], server: FakeServer):
        calls["dying"] += 1
        if calls["dying"] >= 3:  # answers twice, then the server goes away mid-request
            threading.Thread(target=server.httpd.shutdown).start()
            server.httpd.socket.close()
            raise ConnectionResetError
        return 200, {}, completion(body, "    return a + b\n")

    with FakeServer(dying) as flaky, FakeServer(slow_reply(0.05)) as steady:
        result = passk_run(None, f"--passk-endpoint={flaky.url}", f"--passk-endpoint={steady.url}",
                           "--passk-model=fake-model", "--passk-concurrency=1", "--passk-runs=1")
    result.assert_outcomes(passed=16)
    assert result.report["suite"]["samples_generated"] == 32
    assert len(flaky.statuses()) == 2 and len(steady.statuses()) == 14
    assert f"taken out: {flaky.url}/v1 after 2 requests, 1 in flight moved" in result.report["suite"]["source"]


def test_endpoint_dead_after_its_last_answer_is_reported(pytester: pytest.Pytester, passk_run) -> None:
    """No request fails on it, and none is sent to it any more: the health probe still reports it."""
    pytester.makepyfile(test_suite=MANY.replace("range(16)", "range(2)"))

    def answer_then_die(path: str, body: dict[str, Any], server: FakeServer):
        # Slow enough that both requests are out (one each) before A answers: a second request
        # that found A idle after a quick answer would reach it before it dies.
        time.sleep(0.5)

        def die() -> None:
            time.sleep(0.2)  # after the answer went out
            server.httpd.shutdown()
            server.httpd.socket.close()
        threading.Thread(target=die).start()
        return 200, {}, completion(body, "    return a + b\n")

    with FakeServer(answer_then_die) as a, FakeServer(slow_reply(3.0)) as b:
        result = passk_run(None, f"--passk-endpoint={a.url}", f"--passk-endpoint={b.url}",
                           "--passk-model=fake-model", "--passk-concurrency=1", "--passk-runs=1")
    result.assert_outcomes(passed=2)
    assert len(a.statuses()) == 1 and len(b.statuses()) == 1
    source = result.report["suite"]["source"]
    assert f"taken out: {a.url}/v1 after 1 requests, 0 in flight moved (connection refused (health probe" in source, source
    assert f"taken out: {b.url}" not in source
    assert result.report["suite"]["samples_generated"] == 4
