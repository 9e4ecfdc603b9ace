"""The @passk marker (validation, prompt and id fallbacks) and the --passk-* options."""
from __future__ import annotations

import pytest

from conftest import LOCAL, problem

ADD = "def add(a, b):\n    return a + b\n"


@pytest.mark.parametrize(
    ("marker", "named"),
    [
        ("passk(k=1, bogus=3)", "bogus"),
        ("passk(k=0)", "k="),
        ("passk(k='a')", "k="),
        ("passk(k=(1, -2))", "k="),
        ("passk(k=1, n=-1)", "n="),
        ("passk(k=1, n=1.5)", "n="),
        ("passk(k=1, timeout=-1)", "timeout="),
        ("passk(k=1, timeout='soon')", "timeout="),
        ("passk(k=1, n=3, min=4)", "min="),
        ("passk(k=1, min=0)", "min="),
        ("passk(k=1, style='x')", "style="),
        ("passk(k=1, reference=42)", "reference="),
        ("passk(k=1, id=7)", "id="),
        ("passk(1)", "positional"),
    ],
)
def test_bad_marker_is_a_collection_error_naming_the_keyword(pytester: pytest.Pytester, marker: str,
                                                              named: str) -> None:
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.{marker}
        def test_p(candidate):
            '''Write add(a, b).'''

        def test_plain():
            pass
    """)
    result = pytester.runpytest(*LOCAL)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting*", f"*test_p*passk*{named}*"])
    assert "1 error" in result.stdout.str()


def test_missing_prompt_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        from pytest_passk import passk

        @passk(k=1)
        def test_p(candidate):
            pass
    """)
    result = pytester.runpytest(*LOCAL)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*passk needs a prompt*docstring*"])


def test_prompt_sources_and_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sources="""
        import pytest
        from pytest_passk import passk

        @passk(k=1, prompt="from the marker", id="marker-prompt")
        def test_marker_str(candidate):
            '''not this docstring'''

        @pytest.mark.parametrize("word", ["alpha", "beta"])
        @passk(k=1, prompt=lambda word: "say " + word, id=lambda word: "callable-" + word)
        def test_callable(candidate, word):
            pass

        @pytest.mark.parametrize("prompt", ["param prompt"])
        @passk(k=1)
        def test_param(candidate, prompt):
            pass

        @passk(k=(1, 2), n=3)
        def test_doc(candidate):
            '''
            From the docstring,
              indented.
            '''
    """)
    items, _ = pytester.inline_genitems(*LOCAL)
    from pytest_passk.plugin import problem_key

    problems = {item.nodeid: item.stash[problem_key] for item in items}
    assert {p.id: p.prompt for p in problems.values()} == {
        "marker-prompt": "from the marker",
        "callable-alpha": "say alpha",
        "callable-beta": "say beta",
        "test_sources.py::test_param[param prompt]": "param prompt",
        "test_sources.py::test_doc": "From the docstring,\n  indented.",
    }
    doc = problems["test_sources.py::test_doc"]
    assert (doc.ks, doc.n, doc.min_correct) == ((1, 2), 3, 1)
    assert problems["test_sources.py::test_marker_str"].n == 1  # n defaults to max(k)


def test_duplicate_ids_are_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        from pytest_passk import passk

        @passk(k=1, prompt="a", id="same")
        def test_a(candidate):
            pass

        @passk(k=1, prompt="b", id="same")
        def test_b(candidate):
            pass
    """)
    result = pytester.runpytest(*LOCAL)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "'same'" in result.stderr.str() and "test_a" in result.stderr.str() and "test_b" in result.stderr.str()


def test_without_samples_passk_items_are_skipped_naming_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        from pytest_passk import passk

        @passk(k=1, prompt="Write add(a, b).")
        def test_p(candidate):
            assert candidate.function("add")(1, 2) == 3

        def test_plain():
            pass
    """)
    result = pytester.runpytest("-rs")  # no options at all: the default (docker) sandbox is never touched
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*--passk-model=*"])
    result.stdout.no_fnmatch_line("*= passk =*")  # no summary section without an evaluation


def test_passk_is_pytest_mark_passk(pytester: pytest.Pytester, passk_run) -> None:
    import pytest_passk

    assert pytest_passk.passk == pytest.mark.passk
    assert pytest_passk.passk.name == "passk"
    pytester.makepyfile("""
        import pytest

        @pytest.mark.passk(k=1, prompt="Write add(a, b).", id="via-pytest-mark", style="chat")
        def test_p(candidate):
            assert candidate.function("add")(1, 2) == 3
    """)
    result = passk_run([("via-pytest-mark", ADD)])
    result.assert_outcomes(passed=1)
    assert problem(result.report, "via-pytest-mark")["correct"] == 1


def test_marker_is_registered_with_its_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.passk(k=1, n=None, prompt=None, id=None, timeout=None*"])


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("--passk-runs=0", "--passk-runs"),
        ("--passk-runs=two", "--passk-runs"),
        ("--passk-workers=0", "--passk-workers"),
        ("--passk-timeout=-1", "--passk-timeout"),
        ("--passk-timeout=nan", "--passk-timeout"),
        ("--passk-memory=abc", "--passk-memory"),
        ("--passk-memory=1MiB", "--passk-memory"),
        ("--passk-fail-under=foo", "--passk-fail-under"),
        ("--passk-fail-under=pass@0=0.5", "--passk-fail-under"),
        ("--passk-fail-under=coverage=1.5", "--passk-fail-under"),
        ("--passk-fail-under=coverage=high", "--passk-fail-under"),
        ("--passk-flaky=maybe", "--passk-flaky"),
        ("--passk-style=poem", "--passk-style"),
        ("--passk-samples=/nonexistent/samples.jsonl", "--passk-samples"),
    ],
)
def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester, option: str, named: str) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(*LOCAL, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert named in err and "is not valid" in err, err


def test_option_values_are_parsed(pytester: pytest.Pytester) -> None:
    from pytest_passk.plugin import settings_key

    config = pytester.parseconfigure(
        "--passk-runs=5", "--passk-memory=512MiB", "--passk-timeout=2.5", "--passk-flaky=pass",
        "--passk-fail-under=coverage=0.5", "--passk-fail-under", "pass@10=0.25", "--passk-workers=3",
    )
    s = config.stash[settings_key]
    assert (s.runs, s.memory, s.timeout, s.flaky_pass, s.workers) == (5, 512 << 20, 2.5, True, 3)
    assert s.fail_under == {"coverage": 0.5, "pass@10": 0.25}
    defaults = pytester.parseconfigure().stash[settings_key]
    assert (defaults.runs, defaults.timeout, defaults.memory, defaults.flaky_pass) == (2, 10.0, 2 << 30, False)
    assert defaults.sandbox == "docker" and not defaults.active


def test_ini_twins(pytester: pytest.Pytester) -> None:
    from pytest_passk.plugin import settings_key

    pytester.makeini("""
        [pytest]
        passk_runs = 3
        passk_timeout = 4
        passk_memory = 1GiB
        passk_flaky = pass
        passk_sandbox = local
        passk_fail_under =
            coverage=0.75
            pass@1=0.5
    """)
    s = pytester.parseconfigure().stash[settings_key]
    assert (s.runs, s.timeout, s.memory, s.flaky_pass, s.sandbox) == (3, 4.0, 1 << 30, True, "local")
    assert s.fail_under == {"coverage": 0.75, "pass@1": 0.5}
    # the command line wins over the ini file
    assert pytester.parseconfigure("--passk-runs=7").stash[settings_key].runs == 7


def test_ini_runs_take_effect(pytester: pytest.Pytester, passk_run) -> None:
    pytester.makeini("[pytest]\npassk_runs = 3\n")
    pytester.makepyfile("""
        from pytest_passk import passk

        @passk(k=1, prompt="Write add(a, b).", id="add", style="chat")
        def test_p(candidate):
            assert candidate.function("add")(1, 2) == 3
    """)
    result = passk_run([("add", ADD)], "--passk-confirm=0")
    result.assert_outcomes(passed=1)
    assert result.report["suite"]["runs_executed"] == 3


def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npassk_runs = 0\n")
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(*LOCAL)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--passk-runs" in result.stderr.str()


def test_help_shows_options_with_defaults(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--passk-runs=*", "*(default: 2)*", "*passk_runs*"])
