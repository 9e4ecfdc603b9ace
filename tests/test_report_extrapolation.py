"""End to end: intervals, the extrapolation, cost and the plot in the terminal, JSON, JUnit and the gate."""
from __future__ import annotations

import json
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import problem

#: Twelve problems; problem i gets 10 samples of which CORRECT[i] are right.
CORRECT = [0, 0, 0, 1, 1, 1, 2, 3, 5, 0, 10, 7]
N = 10
SUITE = f"""
    import pytest
    from pytest_passk import passk

    @pytest.mark.parametrize("i", range({len(CORRECT)}))
    @passk(k=(1, 5), n={N}, prompt=lambda i: f"def value_{{i}}():\\n", id=lambda i: f"p{{i:02d}}", style="completion")
    def test_value(candidate, i):
        assert candidate.function(f"value_{{i}}")() == i
"""


def rows() -> list[tuple[str, str]]:
    out = []
    for i, c in enumerate(CORRECT):
        out += [(f"p{i:02d}", f"    return {i if j < c else -1}\n") for j in range(N)]
    return out


@pytest.fixture
def run(pytester: pytest.Pytester, passk_run):
    pytester.makepyfile(test_suite=SUITE)
    return passk_run(rows(), "--passk-runs=1", "--junitxml=out.xml", "--passk-predict=100,1000")


def test_json_contract(run) -> None:
    suite = run.report["suite"]
    assert suite["coverage"] == pytest.approx(8 / 12, abs=1e-6)
    low, high = suite["coverage_ci"]
    assert 0.35 < low < 8 / 12 < high < 0.9
    for k in (1, 5):
        low, high = suite[f"pass@{k}_ci"]
        assert low < suite[f"pass@{k}"] < high
    ex = suite["extrapolation"]
    assert ex["method"] == "beta-binomial" and ex["alpha"] > 0 and ex["beta"] > 0
    assert set(ex["predicted"]) == {"pass@100", "pass@1000"}
    p100, p1000 = ex["predicted"]["pass@100"], ex["predicted"]["pass@1000"]
    assert p100["low"] <= p100["value"] <= p100["high"] and p1000["low"] <= p1000["value"] <= p1000["high"]
    assert suite["coverage"] - 0.05 < p100["value"] < p1000["value"] <= 1
    assert ex["bootstrap"] == 1000 and "bootstrap" in ex["interval"]
    cost = suite["cost"]
    assert cost["known"] is False and cost["prompt_tokens"] is None and cost["tokens_per_solved"] is None
    assert "tokens and engine time are unknown" in cost["note"]
    rec = problem(run.report, "p07")
    assert rec["pass@1"] == pytest.approx(0.3)
    low, high = rec["pass@1_ci"]
    assert low < 0.3 < high
    assert set(rec["predicted"]) == {"pass@100", "pass@1000"}
    assert rec["predicted"]["pass@1000"]["value"] > 0.99
    unsolved = problem(run.report, "p00")["predicted"]["pass@1000"]
    assert 0 < unsolved["low"] <= unsolved["value"] < 0.9 and unsolved["high"] <= 1
    assert run.report["curve"]["coverage_ci"][0] == suite["pass@1_ci"]


def test_terminal_shows_intervals_and_extrapolation(run) -> None:
    run.stdout.re_match_lines([
        r"suite: 12 problems, 120 samples, coverage 0\.667 \[0\.\d{3}, 0\.\d{3}\] \(8/12\), "
        r"pass@1 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\], pass@5 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\], flaky problems 0$",
        r"extrapolation \(beta-binomial fit, per-problem success rate ~ Beta\([\d.e+-]+, [\d.e+-]+\)\): "
        r"pass@100 0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\], pass@1000 0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\]$",
        r"cost: unknown \(the samples came from a file: tokens and engine time are unknown\)$",
        r"\[low, high\] are 95% intervals.*",
    ])


def test_terminal_shows_each_problems_prediction_for_the_largest_k(run) -> None:
    """One predicted column (the largest K asked for), the same numbers as the JSON; explained below the table."""
    lines = run.stdout.lines
    header = next(line for line in lines if line.startswith("problem "))
    assert header.split()[-1] == "pass@1000*" and "pass@100*" not in header
    for pid in ("p00", "p07", "p10"):
        row = next(line for line in lines if line.startswith(pid + " "))
        assert float(row.split()[-1]) == pytest.approx(problem(run.report, pid)["predicted"]["pass@1000"]["value"], abs=5e-4)
    run.stdout.fnmatch_lines(["pass@1000* is predicted: the chance the problem is solved within 1000 samples*"
                              "(-v adds its 95% interval)*"])


def test_terminal_verbose_adds_each_problems_predicted_interval(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = passk_run(rows(), "--passk-runs=1", "--passk-predict=1000", "-v")
    pred = problem(result.report, "p00")["predicted"]["pass@1000"]
    row = next(line for line in result.stdout.lines if line.startswith("p00 "))
    assert row.endswith(f"{pred['value']:.3f} [{pred['low']:.3f}, {pred['high']:.3f}]"), row
    assert pred["low"] < pred["value"] < pred["high"]


def test_junit_suite_and_case_properties(run, pytester: pytest.Pytester) -> None:
    root = ET.parse(pytester.path / "out.xml").getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    top = {p.get("name"): p.get("value") for p in suite.findall("./properties/property")}
    data = run.report["suite"]
    assert float(top["passk.coverage.low"]) == data["coverage_ci"][0]
    assert float(top["pass@5.high"]) == data["pass@5_ci"][1]
    assert top["passk.extrapolation.method"] == "beta-binomial"
    assert float(top["passk.extrapolation.predicted.pass@1000.low"]) == data["extrapolation"]["predicted"]["pass@1000"]["low"]
    assert top["passk.cost.known"] == "False"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "test_value[7]")
    props = {p.get("name"): p.get("value") for p in case.findall("./properties/property")}
    assert props["pass@1"] == "0.300" and float(props["pass@1.low"]) < 0.3 < float(props["pass@1.high"])
    assert float(props["passk.predicted.pass@1000"]) > 0.99


@pytest.mark.parametrize(("bounds", "failed"), [
    (["coverage=0.6", "coverage.low=0.3"], []),
    (["coverage.low=0.6"], ["coverage.low 0.* < 0.6 (short by 0.*; lower end of the 95% interval of coverage 0.667)"]),
    (["pass@1000.low=0.99"], ["pass@1000.low 0.* < 0.99 (short by 0.*; lower end of the 95% interval of pass@1000 0.*; "
                              "extrapolated by the beta-binomial fit)"]),
    (["pass@50=0.1"], []),  # beyond n: the extrapolated value
])
def test_gate_on_lower_bounds_and_extrapolated_values(pytester: pytest.Pytester, passk_run, bounds, failed) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = passk_run(rows(), "--passk-runs=1", *[f"--passk-fail-under={b}" for b in bounds])
    got = result.report["gate"]["failed"]
    assert len(got) == len(failed)
    if failed:
        result.stdout.fnmatch_lines([f"FAILED --passk-fail-under: {line}" for line in failed])
        assert result.ret == pytest.ExitCode.TESTS_FAILED
    else:
        assert result.ret == pytest.ExitCode.TESTS_FAILED  # the unsolved problems fail as items
        result.stdout.no_fnmatch_line("*FAILED --passk-fail-under*")


def test_no_extrapolation_is_said_and_written(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_suite=SUITE)
    wrong = [(pid, "    return -1\n") for pid, _ in rows()]
    result = passk_run(wrong, "--passk-runs=1", "--passk-fail-under=pass@100=0.1")
    result.stdout.fnmatch_lines(["extrapolation: none (no problem was solved: every sample failed*"])
    ex = result.report["suite"]["extrapolation"]
    assert (ex["alpha"], ex["beta"], ex["predicted"]) == (None, None, {})
    assert "no problem was solved" in ex["reason"]
    assert result.report["gate"]["failed"] == [
        "pass@100 is undefined (no extrapolation: " + ex["reason"] + "); bound 0.1"]


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot_is_written(pytester: pytest.Pytester, passk_run, suffix: str) -> None:
    pytest.importorskip("matplotlib")
    pytester.makepyfile(test_suite=SUITE)
    result = passk_run(rows(), "--passk-runs=1", f"--passk-plot=figs/curve.{suffix}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # unsolved problems fail as items; the run finishes
    data = (pytester.path / "figs" / f"curve.{suffix}").read_bytes()
    if suffix == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    else:
        text = data.decode()
        assert "<svg" in text and "pass@100" in text and "pass@1000" in text  # default K: 10n and 100n
        assert "beta-binomial fit" in text


def test_plot_without_matplotlib_names_the_extra(pytester: pytest.Pytester, passk_run,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    pytester.makepyfile(test_suite=SUITE)
    result = passk_run(rows(), "--passk-runs=1", "--passk-plot=curve.png")
    result.stderr.fnmatch_lines(["*--passk-plot needs matplotlib: pip install 'pytest-passk[[]plot]'*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passk: executed" not in result.stdout.str()  # said before anything ran
    assert not (pytester.path / "curve.png").exists()


@pytest.mark.parametrize(("option", "says"), [
    ("--passk-predict=0", "use positive integers separated by commas"),
    ("--passk-predict=ten", "use positive integers separated by commas"),
    ("--passk-price=cheap", "use a price per million tokens"),
    ("--passk-price=1,2,3", "use a price per million tokens"),
    ("--passk-price=-1", "use a price per million tokens"),
    ("--passk-plot=curve.jpg", "name a .png, .svg or .pdf file"),
    ("--passk-fail-under=coverage.high=0.5", "optionally followed by .low"),
])
def test_bad_values_are_usage_errors(pytester: pytest.Pytester, option: str, says: str) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--passk-sandbox=local", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option.split('=', 1)[0]}=*is not valid: *{says}*"])


# -- cost, from a server that reports usage -------------------------------------------------------

class _Server:
    """An OpenAI-compatible /v1/completions that answers ``n`` choices and reports token usage."""

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._send({"data": [{"id": "fake"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                i = int(body["prompt"].split("_")[1].split("(")[0])
                with server.lock:
                    start = server.sent.get(i, 0)
                    server.sent[i] = start + body["n"]
                texts = [f"    return {i if start + j < CORRECT[i] else -1}\n" for j in range(body["n"])]
                self._send({"choices": [{"index": j, "text": t} for j, t in enumerate(texts)],
                            "usage": {"prompt_tokens": 5, "completion_tokens": 7 * body["n"]}})

        self.lock = threading.Lock()
        self.sent: dict[int, int] = {}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_cost_per_solved_problem_from_the_servers_usage(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_suite=SUITE)
    server = _Server()
    try:
        result = passk_run(None, f"--passk-endpoint={server.url}", "--passk-runs=1", "--passk-price=1,2",
                           "--passk-temperature=0.5")
    finally:
        server.close()
    problems = len(CORRECT)
    cost = result.report["suite"]["cost"]
    assert cost["known"] is True and cost["scaled"] is False
    assert (cost["prompt_tokens"], cost["generated_tokens"]) == (5 * problems, 7 * N * problems)
    assert cost["samples_measured"] == cost["samples"] == N * problems
    assert cost["engine_seconds"] > 0
    solved = 8
    total = 5 * problems + 7 * N * problems
    assert cost["solved"] == solved
    assert cost["tokens_per_solved"] == pytest.approx(total / solved, abs=1e-3)
    assert cost["generated_tokens_per_solved"] == pytest.approx(7 * N * problems / solved, abs=1e-3)
    assert cost["seconds_per_solved"] == pytest.approx(cost["engine_seconds"] / solved, abs=1e-3)  # rounded to ms
    money = (5 * problems * 1 + 7 * N * problems * 2) / 1e6
    assert cost["cost"] == pytest.approx(money, abs=1e-6)
    assert cost["cost_per_solved"] == pytest.approx(money / solved, abs=1e-6)
    points = {p["k"]: p for p in cost["coverage_at_cost"]}
    assert points[1]["tokens"] == problems * (5 + 7) and points[10]["tokens"] == problems * (5 + 70)
    assert points[10]["coverage"] == pytest.approx(8 / 12, abs=1e-6) and not points[10]["extrapolated"]
    assert points[1000]["tokens"] == problems * (5 + 7000) and points[1000]["extrapolated"]
    assert points[1000]["coverage"] > points[10]["coverage"]
    assert points[1000]["cost"] == pytest.approx(problems * (5 * 1 + 7000 * 2) / 1e6, abs=1e-6)
    rec = problem(result.report, "p03")
    assert (rec["prompt_tokens"], rec["generated_tokens"]) == (5, 7 * N)
    result.stdout.re_match_lines([
        r"cost: 60 prompt \+ 840 generated tokens, \d+\.\d s of engine time; per solved problem: 112 tokens, "
        r"\d+\.\d\d s, 0\.0002175 at the given price \(0\.00174 in all\)$",
    ])


def test_adaptive_sampling_reads_pass_at_k_and_its_interval_from_the_fit(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = passk_run(rows(), "--passk-runs=1", "--passk-budget=60", "--passk-confirm=0")
    suite = result.report["suite"]
    assert suite["samples"] <= 60
    for k in (1, 5):
        low, high = suite[f"pass@{k}_ci"]
        assert low <= suite[f"pass@{k}"] <= high and high - low > 0.01
    assert suite["extrapolation"]["alpha"] > 0
    result.stdout.fnmatch_lines(["suite: 12 problems, * samples, coverage * [[]*] (*/12), pass@1 0.* [[]*], *"])
