"""pytest-xdist: with ``-n 2`` the evaluation runs once, in the controller, and everything a user
reads (items, passk section, JUnit, JSON, the gate) is what a run without xdist gives."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from conftest import QUIET_PLUGINS, write_samples

pytest.importorskip("xdist")

SUITE = """
    from pytest_passk import passk

    @passk(k=(1, 2), n=4, prompt="Write add(a, b).", id="add", style="chat")
    def test_add(candidate):
        assert candidate.function("add")(2, 3) == 5

    @passk(k=(1, 2), n=2, prompt="Write mul(a, b).", id="mul", style="chat", min=2)
    def test_mul(candidate):
        got = candidate.function("mul")(2, 3)
        assert got == 6, f"mul(2, 3) gave {got}"

    @passk(k=1, n=2, prompt="Write neg(a).", id="neg", style="chat")
    def test_neg(candidate):
        assert candidate.function("neg")(2) == -2

    def test_plain():
        pass
"""
ROWS = [("add", "def add(a, b):\n    return a + b\n"), ("mul", "def mul(a, b):\n    return a * b\n"),
        ("add", "def add(a, b):\n    return a - b\n"), ("add", "def add(a, b):\n    return sum((a, b))\n"),
        ("mul", "def mul(a, b):\n    return a + b\n"), ("add", "def add(a, b):\n    return 0\n"),
        ("neg", "def neg(a):\n    return -a\n"), ("neg", "def neg(a):\n    return a\n")]
#: Timings differ from run to run; everything else in the JSON must be equal.
TIMINGS = {"wall_seconds", "runs_per_second", "generate_seconds", "load_seconds"}


def run(pytester: pytest.Pytester, name: str, *args: str) -> tuple[pytest.RunResult, dict, ET.Element]:
    samples = write_samples(pytester.path / "samples.jsonl", ROWS)
    result = pytester.runpytest_subprocess(
        "--passk-sandbox=local", "--passk-store=:memory:", "--passk-workers=2", f"--passk-samples={samples}",
        f"--passk-report={name}.json", f"--junitxml={name}.xml", "--passk-fail-under=pass@1=0.9", "-p", "xdist",
        *args)
    # Object addresses in failure messages differ from run to run, with or without xdist.
    report = json.loads(re.sub(r"0x[0-9a-f]+", "0x?", (pytester.path / f"{name}.json").read_text()))
    for key in TIMINGS:
        report["suite"].pop(key)
    return result, report, ET.parse(pytester.path / f"{name}.xml").getroot()


#: Written by every process that imports the suite: the xdist workers' names (empty elsewhere).
IMPORTS = """
    import os
    with open("imports.log", "a") as fh:
        fh.write(os.environ.get("PYTEST_XDIST_WORKER", "-") + "\\n")
"""


@pytest.mark.parametrize("plain_test", [True, False], ids=["with-a-plain-test", "passk-only"])
def test_n2_replay_evaluates_once_and_reports_like_a_run_without_xdist(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, plain_test: bool) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", QUIET_PLUGINS.replace("-p no:xdist", ""))
    suite = IMPORTS + SUITE if plain_test else IMPORTS + SUITE.split("    def test_plain")[0]
    pytester.makepyfile(test_suite=suite)
    plain, plain_report, plain_xml = run(pytester, "plain")
    dist, dist_report, dist_xml = run(pytester, "dist", "-n", "2")

    items = 4 if plain_test else 3
    assert f"2 workers [{items} items]" in dist.stdout.str()
    assert dist_report == plain_report
    # The workers collect the suite only when they have a plain test to run; with passk tests alone
    # they report the controller's outcomes without importing it.
    workers = {line for line in (pytester.path / "imports.log").read_text().split() if line.startswith("gw")}
    assert workers == ({"gw0", "gw1"} if plain_test else set()), workers
    for result in (plain, dist):
        result.assert_outcomes(passed=items - 1, failed=1)  # mul needs 2 correct samples
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        out = result.stdout.str()
        # one evaluation, one section, the gate applied by whoever holds the suite
        assert out.count("executed 16 candidate runs") == 1, out
        assert out.count("= passk =") == 1
        result.stdout.fnmatch_lines(["FAILED --passk-fail-under: pass@1 0.500 < 0.9*",
                                     "FAILED test_suite.py::test_mul - Failed: mul: 1 of 2 samples correct*"])

    def suite_props(root: ET.Element) -> dict[str, str]:
        return {p.get("name"): p.get("value") for p in root.iter("property")
                if p.get("name", "").startswith("passk.") and p.get("name") not in ("passk.id", "passk.n",
                "passk.correct", "passk.flaky") and not p.get("name", "").endswith("_seconds")
                and p.get("name") != "passk.runs_per_second"}

    def case_props(root: ET.Element) -> dict[str, list[tuple[str, str]]]:
        return {case.get("name"): [(p.get("name"), p.get("value")) for p in case.iter("property")]
                for case in root.iter("testcase")}

    assert suite_props(dist_xml) == suite_props(plain_xml) and suite_props(dist_xml)["passk.samples"] == "8"
    assert case_props(dist_xml) == case_props(plain_xml)
    assert ("passk.correct", "1") in case_props(dist_xml)["test_mul"]
    if plain_test:
        assert case_props(dist_xml)["test_plain"] == []
    cases = lambda root: sorted((c.get("classname"), c.get("name"), c.get("file"), c.get("line"))  # noqa: E731
                                for c in root.iter("testcase"))
    assert cases(dist_xml) == cases(plain_xml)


def test_n2_without_a_model_skips_passk_items_like_a_plain_run(pytester: pytest.Pytester,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", QUIET_PLUGINS.replace("-p no:xdist", ""))
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-rs")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["*no model to evaluate; pass --passk-model=NAME*"])
    assert "collected" not in result.stdout.str()  # nothing to evaluate: the controller does not collect
