"""--passk-budget: adaptive sampling in rounds on a replayed samples file served on demand."""
from __future__ import annotations

import textwrap

import pytest

from conftest import CALL_NUMBER, LOCAL, problem

SUITE = """
    import pytest
    from pytest_passk import passk

    @pytest.mark.parametrize("i", range(4))
    @passk(k=(1, 10), n=10, prompt=lambda i: f"Write f{i}().", id=lambda i: f"p{i}", style="chat")
    def test_p(candidate, i):
        assert candidate.function("f")() == 1
"""
#: where each problem's first passing sample is in the file (None: never)
FIRST_PASS = {"p0": 0, "p1": 5, "p2": 12, "p3": None}


def rows() -> list[tuple[str, str]]:
    out = []
    for pid, first in FIRST_PASS.items():
        for j in range(40):
            ok = first is not None and j >= first
            out.append((pid, f"def f():\n    return {1 if ok else 0}  # sample {j}\n"))
    return out


def test_budget_spends_samples_where_they_change_coverage(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    result = passk_run(rows(), "--passk-budget=40", "--passk-confirm=0")
    report = result.report
    suite = report["suite"]
    n = {pid: problem(report, pid)["n"] for pid in FIRST_PASS}
    # Rounds of 1, 1, 2, 4 samples per open problem, then the last 15 split over the two still open.
    assert n["p0"] == 1 and n["p1"] == 8 and sorted([n["p2"], n["p3"]]) == [15, 16]
    assert (suite["budget"], suite["samples"]) == (40, 40) and suite["rounds"] == 5
    # Uniform sampling with the same 40 samples (10 each) solves p0 and p1 only.
    assert suite["coverage"] == 0.75 and suite["solved"] == 3
    # The file serves samples in order, on demand: p0 got its first, passing sample only.
    assert problem(report, "p0")["passed_samples"] == [True]
    assert problem(report, "p1")["passed_samples"] == [False] * 5 + [True] * 3
    # The fixed-n estimator is biased here and 4 problems are too few for the Beta-binomial fit
    # pass@k would come from: pass@k is undefined, and the report says why.
    assert suite["pass@k_from"].startswith("nothing: no fit is possible (4 problem(s) with samples are too few")
    assert suite["fit"] is None and suite["pass@1"] is None and problem(report, "p1")["pass@10"] is None
    result.stdout.fnmatch_lines(["adaptive sampling: 40 of a budget of 40 samples in 5 rounds; coverage is as "
                                 "observed, pass@k undefined: no fit is possible (4 problem(s) *too few*"])
    result.assert_outcomes(passed=3, failed=1)


def test_budget_reads_pass_at_k_from_the_one_beta_fit(pytester: pytest.Pytester, passk_run) -> None:
    """With enough problems pass@k is the posterior mean under the suite's Beta fit: the same fit
    the policy and the extrapolation use (one model), checked against numerical integration."""
    from scipy import integrate, stats

    pytester.makepyfile(SUITE.replace("range(4)", "range(8)"))
    first = {**FIRST_PASS, "p4": 1, "p5": 3, "p6": None, "p7": 0}
    data = [(pid, f"def f():\n    return {int(f is not None and j >= f)}  # {j}\n")
            for pid, f in first.items() for j in range(40)]
    report = passk_run(data, "--passk-budget=80", "--passk-confirm=0").report
    suite = report["suite"]
    assert suite["pass@k_from"] == "beta-binomial fit" and suite["samples"] <= 80
    a, b = suite["fit"]["a"], suite["fit"]["b"]
    assert (a, b) == (pytest.approx(suite["extrapolation"]["alpha"], rel=1e-4),
                      pytest.approx(suite["extrapolation"]["beta"], rel=1e-4))
    values = []
    for pid in first:
        rec = problem(report, pid)
        n, c = rec["n"], rec["correct"]
        # E[1 - (1-p)^10] for p ~ Beta(a + c, b + n - c)
        want, _ = integrate.quad(lambda p: (1 - (1 - p) ** 10) * stats.beta.pdf(p, a + c, b + n - c), 0, 1,
                                 limit=200)
        assert rec["pass@10"] == pytest.approx(want, abs=1e-4), pid
        values.append(want)
    assert suite["pass@10"] == pytest.approx(sum(values) / len(values), abs=1e-4)


COIN = CALL_NUMBER + textwrap.dedent("""
    from pytest_passk import passk

    @passk(k=1, prompt="Write add(a, b).", id="coin", style="chat")
    def test_coin(candidate):
        assert candidate.function("add")(2, 3) == 5
        if "coin" in candidate.text:  # heads for its 2 regular runs, then tails every other call
            i = call_number("coin")
            assert i < 2 or i % 2 == 0, "tails"

    @passk(k=1, prompt="Write add(a, b).", id="other", style="chat")
    def test_other(candidate):
        assert candidate.function("add")(2, 3) == 5
""")


def test_a_coin_flip_pass_is_confirmed_before_the_policy_settles_its_problem(pytester: pytest.Pytester,
                                                                             passk_run) -> None:
    pytester.makepyfile(COIN)
    good = "def add(a, b):\n    return a + b\n"
    rows = [("coin", good + "# coin\n"), ("coin", good), ("other", good), ("other", good)]
    report = passk_run(rows, "--passk-budget=8", "--passk-confirm=10").report
    coin = problem(report, "coin")
    # The first sample passed its 2 runs; its confirmation (10 reruns, 5 of them tails) found the
    # flip before the next round, so the problem stayed open and its second sample solved it.
    assert coin["n"] == 2 and coin["passed_samples"] == [False, True] and coin["correct"] == 1
    (flip,) = coin["flaky_candidates"]
    assert flip["sample"] == 0 and flip["runs"] == 12 and 2 <= flip["passes"] < 12
    assert coin["confirmed"] == 2  # both candidates: each decided the problem in its round
    assert problem(report, "other")["n"] == 1 and report["suite"]["coverage"] == 1.0


def test_uniform_replay_still_takes_every_sample(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    report = passk_run(rows(), "--passk-confirm=0").report
    assert {problem(report, pid)["n"] for pid in FIRST_PASS} == {40}
    assert "budget" not in report["suite"] and report["suite"]["samples"] == 160


def test_budget_resumes_from_the_store(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makepyfile(SUITE)
    store = str(pytester.path / "store.sqlite")
    first = passk_run(rows(), "--passk-budget=40", "--passk-confirm=0", store=store).report["suite"]
    again = passk_run(rows(), "--passk-budget=40", "--passk-confirm=0", store=store).report["suite"]
    assert again["runs_executed"] == 0 and again["runs_reused"] == first["runs_executed"]
    assert again["coverage"] == first["coverage"] and again["samples"] == first["samples"]


def test_budget_options_are_validated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    for args, message in ((("--passk-budget=0",), "*--passk-budget='0' is not valid*"),
                          (("--passk-cap=5",), "*--passk-cap='5' is not valid: *pass --passk-budget too*"),
                          (("--passk-confirm=-1",), "*--passk-confirm='-1' is not valid*")):
        result = pytester.runpytest(*LOCAL, *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([message])
    # known only once the problems are: a budget that cannot give each of them a sample
    from conftest import write_samples

    samples = write_samples(pytester.path / "samples.jsonl", rows())
    result = pytester.runpytest(*LOCAL, f"--passk-samples={samples}", "--passk-budget=3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--passk-budget=3 is less than the 4 problems to sample: every problem needs at "
                                 "least one sample; pass at least 4*"])


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from conftest import need_vllm

    need_vllm()
    from tinymodel import make_tiny_model

    return make_tiny_model(tmp_path_factory.getbasetemp() / "tiny-llama")  # shared with the other vLLM tests


GENERATED = """
    import pytest
    from pytest_passk import passk

    @pytest.mark.parametrize("i", range(3))
    @passk(k=1, prompt=lambda i: f"def f{i}(x):\\n", id=lambda i: f"g{i}", style="completion")
    def test_g(candidate, i):
        assert i == 0, "only g0 is solvable"
"""


@pytest.mark.vllm
def test_budget_generates_in_rounds_with_one_engine(pytester: pytest.Pytester, tiny_model: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
                 "TRANSFORMERS_OFFLINE": "1"}.items():
        monkeypatch.setenv(k, v)
    # The inner run is a subprocess: it must import this checkout's pytest_passk, whatever is installed.
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(GENERATED)
    store = pytester.path / "store.sqlite"
    args = ("--passk-sandbox=local", "--passk-workers=2", f"--passk-store={store}", f"--passk-model={tiny_model}",
            "--passk-max-tokens=8", "--passk-budget=12", "--passk-confirm=0", "-p", "no:cacheprovider")
    import json
    import sqlite3

    def run() -> dict:
        result = pytester.runpytest_subprocess(*args, "--passk-report=report.json")
        assert (pytester.path / "report.json").exists(), result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
        return json.loads((pytester.path / "report.json").read_text())

    report = run()
    suite = report["suite"]
    # g0 is solved by its first sample; g1 and g2 go 1, 2, 4 and share the last 3
    assert problem(report, "g0")["n"] == 1
    assert sorted(problem(report, p)["n"] for p in ("g1", "g2")) == [5, 6]
    assert (suite["samples"], suite["samples_generated"], suite["rounds"]) == (12, 12, 4)
    rows = sqlite3.connect(store).execute("SELECT problem_id, idx FROM samples ORDER BY 1, 2").fetchall()
    for pid in ("g0", "g1", "g2"):  # each round appended to the prompt's samples, no gaps
        idxs = [i for p, i in rows if p == pid]
        assert idxs == list(range(problem(report, pid)["n"]))
    again = run()["suite"]  # the store holds every round: nothing is generated or executed again
    assert (again["samples_generated"], again["runs_executed"], again["samples"]) == (0, 0, 12)
