"""The pytest plugin: options, the passk marker, the candidate fixture and the hooks that drive a run.

Heavy work lives elsewhere (:mod:`pytest_passk.evaluation` and friends) and is imported lazily.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_passk import _xdist, hookspecs
from pytest_passk.options import Settings, add_options
from pytest_passk.problem import MARKER_SIGNATURE, MarkerError, Problem, problem_from_item

if TYPE_CHECKING:
    from pytest_passk.candidate import Candidate
    from pytest_passk.evaluation import SuiteResult
    from pytest_passk.report import Analysis

candidate_key = pytest.StashKey["Candidate"]()
settings_key = pytest.StashKey[Settings]()
problems_key = pytest.StashKey[list[Problem]]()
suite_key = pytest.StashKey["SuiteResult"]()
gate_key = pytest.StashKey[list[str]]()
analysis_key = pytest.StashKey["Analysis"]()
problem_key = pytest.StashKey[Problem]()
#: Each passk item's outcome by node id: ``{"properties": [[name, value]...], "failure": str | None}``.
outcomes_key = pytest.StashKey[dict[str, dict[str, Any]]]()

WORKER_PLUGIN = "passk-worker"
_NOTHING_TO_EVALUATE = (
    "passk: no model to evaluate; pass --passk-model=NAME (or --passk-endpoint=URL, "
    "or --passk-samples=FILE to re-score saved samples)"
)


def _is_worker(config: pytest.Config) -> bool:
    return config.pluginmanager.get_plugin(WORKER_PLUGIN) is not None


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser)
    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_SIGNATURE)
    if not _is_worker(config):
        config.stash[settings_key] = Settings.from_config(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    _xdist.unconfigure(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: tell each worker where the controller puts the items' outcomes."""
    if node.config.stash[settings_key].active:
        _xdist.configure_node(node)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> bool | None:
    # Under pytest-xdist the controller collects too (xdist's controller does not), so that the
    # evaluation runs here once instead of once per worker.
    config = session.config
    if _is_worker(config) or not config.stash[settings_key].active:
        return None
    if _xdist.is_worker(config):
        return True if _xdist.light_collection(session, _report_outcome) else None
    if not _xdist.is_controller(config):
        return None
    try:
        session.perform_collect()
    finally:  # the workers wait for this (even when collection failed: then they collect themselves)
        _xdist.write_items(config, session.items, lambda item: problem_key in item.stash)
    return True


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    result = yield
    items = list(result) if result is not None and not isinstance(result, pytest.Item) and not isinstance(result, pytest.Collector) else result
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, pytest.Item):
            try:
                problem = problem_from_item(item)
            except MarkerError as exc:
                raise collector.CollectError(f"{item.nodeid}: {exc}") from None
            if problem is not None:
                item.stash[problem_key] = problem
    return items


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if _is_worker(config):
        return
    problems = [item.stash[problem_key] for item in items if problem_key in item.stash]
    seen: dict[str, str] = {}
    for p in problems:
        if p.id in seen:
            raise pytest.UsageError(f"passk problem id {p.id!r} is used by both {seen[p.id]} and {p.nodeid}; "
                                    "give one of them another id=")
        seen[p.id] = p.nodeid
    config.stash[problems_key] = problems
    if problems and not config.stash[settings_key].active:
        skip = pytest.mark.skip(reason=_NOTHING_TO_EVALUATE)
        for item in items:
            if problem_key in item.stash:
                item.add_marker(skip)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    config = session.config
    if _is_worker(config) or config.option.collectonly:
        return
    settings = config.stash[settings_key]
    if _xdist.is_worker(config):
        return
    problems = config.stash.get(problems_key, [])
    if not problems or not settings.active:
        return
    from pytest_passk import session as passk_session

    suite = passk_session.evaluate(config, settings, problems)
    config.stash[suite_key] = suite
    config.stash[outcomes_key] = outcomes = passk_session.item_outcomes(suite, config.stash.get(analysis_key, None))
    if _xdist.is_controller(config):
        _xdist.write_outcomes(config, outcomes)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    config = pyfuncitem.config
    if _is_worker(config) or problem_key not in pyfuncitem.stash:
        return None
    _report_outcome(pyfuncitem)
    return True


def _report_outcome(pyfuncitem: pytest.Item) -> None:
    """A passk item's outcome, from this process's evaluation or (xdist worker) the controller's."""
    config = pyfuncitem.config
    outcomes = config.stash.get(outcomes_key, None)
    if outcomes is None and _xdist.is_worker(config) and config.stash[settings_key].active:
        # The controller evaluates before it hands out the first test: its results are there now.
        outcomes = config.stash[outcomes_key] = _xdist.read_outcomes(config)
    if outcomes is None:
        pytest.skip(_NOTHING_TO_EVALUATE)
    outcome = outcomes.get(pyfuncitem.nodeid)
    if outcome is None:  # e.g. an xdist worker that collected something the controller did not
        pytest.fail(f"passk: no evaluation result for {pyfuncitem.nodeid}; the controller did not collect it",
                    pytrace=False)
    # The properties ride on the report, so they reach the JUnit XML from an xdist worker too.
    pyfuncitem.user_properties.extend((name, value) for name, value in outcome["properties"])
    if outcome.get("skip"):
        pytest.skip(outcome["skip"])
    if outcome["failure"] is not None:
        pytest.fail(outcome["failure"], pytrace=False)


@pytest.fixture
def candidate(request: pytest.FixtureRequest) -> Candidate | None:
    """One sample of the model for this @passk test: ``.text``, ``.code``, ``.module()``,
    ``.function(name)``, ``.path`` and ``.run(args, input=...)``."""
    value = request.config.stash.get(candidate_key, None)
    if value is not None:
        return value
    if problem_key not in request.node.stash:
        raise pytest.UsageError(f"{request.node.nodeid}: the candidate fixture is only for @passk tests")
    return None  # on the host the body does not run: the verdict comes from the sandbox


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    suite = config.stash.get(suite_key, None)
    if suite is None:
        return
    from pytest_passk import report

    terminalreporter.section("passk")
    for line in report.terminal_lines(suite, config.option.verbose, config.stash.get(gate_key, []),
                                      config.stash.get(analysis_key, None)):
        terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.stash.get(gate_key, None):
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
