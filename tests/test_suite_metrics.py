"""Suite metrics that mean what they say: problems without samples, k larger than n, and problems
that share a prompt (and so one pool of samples)."""
from __future__ import annotations

import json

import pytest

from conftest import LOCAL, problem

ADD_OK = "def add(a, b):\n    return a + b\n"
ADD_BAD = "def add(a, b):\n    return a - b\n"

HALF = """
    import pytest
    from pytest_passk import passk

    @pytest.mark.parametrize("i", range(4))
    @passk(k=1, n=2, prompt=lambda i: f"Write add(a, b). ({i})", id=lambda i: f"p{i}", style="chat")
    def test_add(candidate, i):
        assert candidate.function("add")(2, 3) == 5
"""


def test_a_file_covering_half_the_suite_fails_the_gate_and_counts_the_rest_unsolved(pytester, passk_run) -> None:
    pytester.makepyfile(HALF)
    # only the two solved problems are in the file: scored over them alone, coverage would be 1.0
    result = passk_run([("p0", ADD_OK), ("p0", ADD_OK), ("p1", ADD_OK), ("p1", ADD_BAD)],
                       "--passk-fail-under=coverage=0.5")
    suite = result.report["suite"]
    assert (suite["coverage"], suite["pass@1"]) == (0.5, pytest.approx(0.375))
    assert (suite["problems_without_samples"], suite["partial"], suite["metrics_over"]) == (2, True, "all")
    assert result.report["gate"]["failed"] == [
        "2 of 4 problems have no samples, so the suite was not fully evaluated "
        "(pass --passk-allow-partial to gate on the problems with samples only)"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=2)  # the problems without samples fail as items too
    result.stdout.fnmatch_lines([
        "suite: 4 problems, 4 samples, coverage 0.500 [[]*] (2/4), pass@1 0.375*",
        "incomplete suite: 2 of 4 problems have no samples and count as unsolved*",
        "FAILED --passk-fail-under: 2 of 4 problems have no samples*",
    ])


def test_allow_partial_scores_the_problems_with_samples_and_says_so(pytester, passk_run) -> None:
    pytester.makepyfile(HALF)
    rows = [("p0", ADD_OK), ("p0", ADD_OK), ("p1", ADD_OK), ("p1", ADD_BAD)]
    result = passk_run(rows, "--passk-fail-under=coverage=0.9", "--passk-allow-partial", "-rs")
    suite = result.report["suite"]
    assert (suite["coverage"], suite["pass@1"]) == (1.0, 0.75)
    assert (suite["problems_without_samples"], suite["partial"], suite["metrics_over"]) == (2, True, "with_samples")
    assert result.report["gate"]["failed"] == []
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines([
        "partial suite: 2 of 4 problems have no samples; coverage and pass@k are over the 2 with samples*",
        "SKIPPED*p2: no samples (left out of the metrics: --passk-allow-partial)",
    ])
    # the bound still judges the problems that have samples
    low = passk_run([("p0", ADD_BAD), ("p1", ADD_OK)], "--passk-fail-under=coverage=0.9", "--passk-allow-partial")
    assert low.report["gate"]["failed"] == ["coverage 0.500 < 0.9 (short by 0.400)"]
    # the ini twin
    pytester.makeini("[pytest]\npassk_allow_partial = true\n")
    ini = passk_run(rows, "--passk-fail-under=coverage=0.9")
    assert ini.report["suite"]["metrics_over"] == "with_samples" and ini.ret == pytest.ExitCode.OK


def test_a_complete_suite_is_not_partial(pytester, passk_run) -> None:
    pytester.makepyfile(HALF)
    result = passk_run([(f"p{i}", ADD_OK) for i in range(4)] * 2, "--passk-fail-under=coverage=1")
    assert result.report["suite"]["partial"] is False and result.report["gate"]["failed"] == []
    result.stdout.no_fnmatch_line("*problems have no samples*")


@pytest.mark.parametrize(("marker", "says"), [
    ("k=10, n=5", "passk(k=10, n=5): k=10 exceeds n=5"),
    ("k=(1, 10), n=5", "passk(k=(1, 10), n=5): k=10 exceeds n=5"),
])
def test_k_larger_than_n_is_a_collection_error_naming_the_marker(pytester, marker: str, says: str) -> None:
    pytester.makepyfile(f"""
        from pytest_passk import passk

        @passk({marker}, prompt="Write add(a, b).")
        def test_p(candidate):
            pass
    """)
    result = pytester.runpytest(*LOCAL)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*test_p*{says}*raise n to at least 10 or drop k=10*"])


def test_example_basics_asks_for_no_k_above_n(pytester) -> None:
    from pathlib import Path

    suite = Path(__file__).resolve().parents[1] / "example_suites" / "basics"
    items, _ = pytester.inline_genitems(str(suite), *LOCAL)
    from pytest_passk.plugin import problem_key

    problems = [item.stash[problem_key] for item in items]
    ks = {k for p in problems for k in p.ks}
    assert problems and all(p.n >= max(ks) for p in problems)  # every suite pass@k is defined


# -- shared prompts ----------------------------------------------------------------------------

COUNTING_BACKEND = """
    import json
    from pathlib import Path

    from pytest_passk.backends import Backend

    LOG = Path(__file__).with_name("generated.jsonl")

    class Counting(Backend):
        '''Sample i of a prompt is add() written the i-th way; every request is logged.'''
        name = "counting"

        def source_key(self):
            return "counting-v1"

        def default_style(self):
            return "chat"

        def generate(self, requests):
            for r in requests:
                with LOG.open("a") as fh:
                    fh.write(json.dumps({"id": r.problem.id, "n": r.n, "start": r.start}) + "\\n")
                yield r, [f"def add(a, b):\\n    return a + b + {r.start + i} - {r.start + i}\\n" for i in range(r.n)]

    def pytest_passk_backend(config, settings):
        return Counting(settings) if settings.model == "counting" else None
"""

SHARED = """
    import pytest
    from pytest_passk import passk

    @pytest.mark.parametrize(("x", "y"), [(2, 3), (10, -4)])
    @passk(k=1, n=3, id=lambda x, y: f"add-{x}", style="chat")
    def test_add(candidate, x, y):
        '''Write add(a, b).'''
        assert candidate.function("add")(x, y) == x + y

    @passk(k=1, n=5, id="add-big", style="chat")
    def test_add_big(candidate):
        '''Write add(a, b).'''
        assert candidate.function("add")(10**20, 1) == 10**20 + 1
"""


def _log(pytester) -> list[dict]:
    path = pytester.path / "generated.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_problems_sharing_a_prompt_share_one_pool_and_a_rerun_executes_nothing(pytester, passk_run) -> None:
    pytester.makeconftest(COUNTING_BACKEND)
    pytester.makepyfile(test_shared_prompts=SHARED)
    store = str(pytester.path / "store.sqlite")
    first = passk_run(None, "--passk-model=counting", store=store)
    first.assert_outcomes(passed=3)
    # one request for the pool, sized for the problem that wants most
    assert [(g["n"], g["start"]) for g in _log(pytester)] == [(5, 0)]
    recs = {pid: problem(first.report, pid) for pid in ("add-2", "add-10", "add-big")}
    assert [r["n"] for r in recs.values()] == [3, 3, 5]
    # 5 distinct programs, each run twice in each of the tests that takes it: 3 + 3 + 5 of them
    assert first.report["suite"]["runs_executed"] == 2 * (3 + 3 + 5)

    again = passk_run(None, "--passk-model=counting", store=store)
    again.assert_outcomes(passed=3)
    assert len(_log(pytester)) == 1  # nothing generated
    assert (again.report["suite"]["runs_executed"], again.report["suite"]["runs_reused"]) == (0, 22)
    assert [problem(again.report, pid)["passed_samples"] for pid in recs] == [r["passed_samples"] for r in recs.values()]

    # a bigger n for one sharer tops the pool up once; the others keep their samples
    (pytester.path / "test_shared_prompts.py").write_text(
        (pytester.path / "test_shared_prompts.py").read_text().replace("n=5", "n=7"))
    more = passk_run(None, "--passk-model=counting", store=store)
    assert [(g["n"], g["start"]) for g in _log(pytester)[1:]] == [(2, 5)]
    assert [problem(more.report, pid)["n"] for pid in recs] == [3, 3, 7]
    # the edit changed the tests' file, so every verdict of it is new
    assert (more.report["suite"]["runs_executed"], more.report["suite"]["runs_reused"]) == (26, 0)


def test_new_options_have_ini_twins_and_help(pytester) -> None:
    from pytest_passk.plugin import settings_key

    defaults = pytester.parseconfigure().stash[settings_key]
    assert (defaults.allow_partial, defaults.redo_transient) == (False, False)
    pytester.makeini("[pytest]\npassk_allow_partial = true\npassk_redo_transient = yes\n")
    s = pytester.parseconfigure().stash[settings_key]
    assert (s.allow_partial, s.redo_transient) == (True, True)
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--passk-depends=*", "*--passk-redo-transient*", "*--passk-allow-partial*",
                                 "*passk_depends*", "*passk_redo_transient*", "*passk_allow_partial*"])
