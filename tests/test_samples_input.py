"""Samples files a user can get wrong: each one stops the run with one line naming the file and line
(nothing stored is lost), or is a documented behaviour."""
from __future__ import annotations

import gzip
import json
import sqlite3

import pytest

from conftest import LOCAL

SUITE = """
    from pytest_passk import passk

    @passk(k=1, n=2, prompt="Write add(a, b).", id="add", style="chat")
    def test_add(candidate):
        assert candidate.function("add")(2, 3) == 5
"""
ADD = "def add(a, b):\n    return a + b\n"
GOOD = json.dumps({"task_id": "add", "completion": ADD}) + "\n"


def run_file(pytester: pytest.Pytester, content: bytes, *args: str, name: str = "samples.jsonl"):
    path = pytester.path / name
    path.write_bytes(content)
    return path, pytester.runpytest(*LOCAL, f"--passk-samples={path}", *args)


def one_line_error(result, path, line: int | None, says: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    err = result.stderr.str()
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert where in err and says in err, err
    assert err.count("ERROR") == 1 and "Traceback" not in err + result.stdout.str()
    assert "INTERNALERROR" not in err + result.stdout.str()


@pytest.mark.parametrize(("content", "line", "says"), [
    (GOOD.encode() + b'{"task_id": "add", "completion": "caf\xe9"}\n', 2, "not valid UTF-8 (byte 0xe9 at column"),
    (b"\xff\xfe" + GOOD.encode(), 1, "not valid UTF-8 (byte 0xff at column 1)"),
    (GOOD.encode() + b'{"task_id": "add", "completion": "\\ud800"}\n', 2,
     '"completion" holds a lone surrogate escape'),
    (b'{"task_id": "\\udfff", "completion": "x"}\n', 1, '"task_id" holds a lone surrogate escape'),
    (b"", None, "holds no samples (the file is empty)"),
    (b"\n  \n", None, "holds no samples (the file is empty)"),
    (GOOD.encode() + b'{"completion": "x"}\n', 2, '"task_id" is missing (fields: completion)'),
    (b'{"task_id": "add"}\n', 1, '"completion" is missing (fields: task_id)'),
    (b'{"task_id": "add", "completion": null}\n', 1, '"completion" is NoneType'),
    (b'{"task_id": ["add"], "completion": "x"}\n', 1, '"task_id" is list'),
    (b'{"task_id": "", "completion": "x"}\n', 1, '"task_id" is empty'),
    (b'{"task_id": "add", "completion": "x", "style": "poem"}\n', 1, '"style" must be one of completion, chat'),
    (b'{"task_id": "add", "completion": "x", "style": "chat"}\n{"task_id": "add", "completion": "y", '
     b'"style": "completion"}\n', 2, "'add' has samples of two styles, chat and completion"),
    (b'{"task_id": "add", "completion": "x", "style": "chat"}\n{"task_id": "add", "completion": "y"}\n', 2,
     "'add' has lines with \"style\" and without"),
    (b'{"task_id": "add", "completion": "y"}\n{"task_id": "add", "completion": "x", "style": "chat"}\n', 2,
     "'add' has lines with \"style\" and without (line 1)"),
    (b"[1]\n", 1, "expected a JSON object, got list"),
    (b"{oops\n", 1, "not valid JSON"),
])
def test_bad_samples_file_is_one_line_naming_file_and_line(pytester, content: bytes, line, says: str) -> None:
    pytester.makepyfile(SUITE)
    path, result = run_file(pytester, content)
    one_line_error(result, path, line, says)


def test_broken_gzip_is_one_clear_error(pytester) -> None:
    pytester.makepyfile(SUITE)
    path, result = run_file(pytester, gzip.compress(GOOD.encode())[:-8], name="samples.jsonl.gz")
    one_line_error(result, path, None, "cannot read the samples file")
    good, ok = run_file(pytester, gzip.compress(GOOD.encode() * 2), name="good.jsonl.gz")
    ok.assert_outcomes(passed=1)


def test_a_bad_file_loses_nothing_stored(pytester) -> None:
    pytester.makepyfile(SUITE)
    store = pytester.path / "store.sqlite"
    args = [a for a in LOCAL if not a.startswith("--passk-store")] + [f"--passk-store={store}"]
    good = pytester.path / "good.jsonl"
    good.write_text(GOOD * 2)
    pytester.runpytest(*args, f"--passk-samples={good}").assert_outcomes(passed=1)
    # (run < 1000: the --passk-runs runs; confirmation reruns of the pass are numbered from 1000)
    before = sqlite3.connect(store).execute("SELECT * FROM runs WHERE run < 1000 ORDER BY 1, 2, 3").fetchall()
    assert len(before) == 2  # one distinct program, two runs
    bad = pytester.path / "bad.jsonl"
    bad.write_bytes(GOOD.encode() + b'{"task_id": "add", "completion": "\\ud800"}\n')
    assert pytester.runpytest(*args, f"--passk-samples={bad}").ret == pytest.ExitCode.USAGE_ERROR
    assert sqlite3.connect(store).execute("SELECT * FROM runs WHERE run < 1000 ORDER BY 1, 2, 3").fetchall() == before
    again = pytester.runpytest(*args, f"--passk-samples={good}")
    again.stdout.fnmatch_lines(["executed 0 candidate runs*2 reused from the store"])


def test_a_10_mib_completion_is_evaluated(pytester, passk_run) -> None:
    """Documented: a completion up to 16 MiB is a sample like any other (it runs, and fails or passes)."""
    pytester.makepyfile(SUITE)
    big = ADD + "# " + "x" * (10 << 20) + "\n"
    result = passk_run([("add", big), ("add", ADD)])
    result.assert_outcomes(passed=1)
    assert result.report["problems"][0]["passed_samples"] == [True, True]


def test_a_completion_over_16_mib_is_an_error(pytester) -> None:
    pytester.makepyfile(SUITE)
    content = GOOD.encode() + json.dumps({"task_id": "add", "completion": "x" * (17 << 20)}).encode() + b"\n"
    path, result = run_file(pytester, content)
    one_line_error(result, path, 2, "the completion of 'add' is 17.0 MiB, over the 16 MiB limit")


def test_task_ids_that_match_no_problem_are_ignored(pytester, passk_run) -> None:
    """Documented: a file may hold more tasks than the suite (e.g. all of HumanEval for a subset)."""
    pytester.makepyfile(SUITE)
    result = passk_run([("add", ADD), ("add", ADD), ("HumanEval/0", "x")])
    result.assert_outcomes(passed=1)
    assert [p["id"] for p in result.report["problems"]] == ["add"]
