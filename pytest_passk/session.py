"""Wires one pytest session to an :class:`~pytest_passk.evaluation.Evaluation` and its outputs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_passk import progress, report
from pytest_passk.adaptive import BudgetError
from pytest_passk.backends import Backend, BackendError, choose, get as get_backend
from pytest_passk.evaluation import Evaluation, SuiteResult
from pytest_passk.options import Settings
from pytest_passk.problem import Problem
from pytest_passk.sandbox import Sandbox, SandboxError, SandboxSettings, get as get_sandbox
from pytest_passk.store import Store, StoreError


def store_path(config: pytest.Config, settings: Settings) -> str:
    """``--passk-store``, else ``passk/store.sqlite`` in pytest's cache directory; the same path when the
    cache plugin is disabled (``-p no:cacheprovider``), so resuming never silently stops."""
    if settings.store:
        return settings.store
    cache = getattr(config, "cache", None)
    if cache is not None:
        return str(Path(cache.mkdir("passk")) / "store.sqlite")
    try:
        cache_dir = config.getini("cache_dir") or ".pytest_cache"
    except ValueError:  # the cache plugin registers the ini value; without it, pytest's default
        cache_dir = ".pytest_cache"
    return str(config.rootpath / os.path.expandvars(cache_dir) / "d" / "passk" / "store.sqlite")


def make_backend(config: pytest.Config, settings: Settings) -> Backend:
    backend = config.hook.pytest_passk_backend(config=config, settings=settings)
    if backend is None:
        backend = get_backend(choose(settings))(settings)
    return backend


def make_sandbox(config: pytest.Config, settings: Settings) -> Sandbox:
    cls = config.hook.pytest_passk_sandbox(config=config, name=settings.sandbox) or get_sandbox(settings.sandbox)
    options: dict[str, str] = {}
    if settings.ray:  # each node of the cluster runs the chosen sandbox
        from pytest_passk.sandbox.ray import RaySandbox

        cls, options = RaySandbox, {"ray_address": settings.ray, "ray_inner": settings.sandbox}
    args: list[str] = []
    if config.inipath is not None:
        args += ["-c", str(config.inipath)]
    return cls(SandboxSettings(
        workers=settings.workers,
        invocation_dir=str(config.invocation_params.dir),
        rootdir=str(config.rootpath),
        pytest_args=args,
        image=settings.image,
        memory=settings.memory,
        zygotes=settings.runs,
        candidate_packages=settings.candidate_packages,
        options=options,
        affinity=settings.affinity,
    ))


def evaluate(config: pytest.Config, settings: Settings, problems: list[Problem]) -> SuiteResult:
    """Run the whole evaluation; configuration and environment problems stop the run with one message."""
    try:
        store = Store(store_path(config, settings))
        backend = make_backend(config, settings)
        if settings.sandbox not in ("local", "docker") and config.hook.pytest_passk_sandbox(
                config=config, name=settings.sandbox) is None:
            get_sandbox(settings.sandbox)  # unknown name: fail before generating anything
        display = progress.for_config(config, counts=backend)
        evaluation = Evaluation(settings, problems, backend, lambda: make_sandbox(config, settings), store,
                                progress=display)
        try:
            suite = evaluation.run()
        finally:
            display.close()
            store.close()
    except (SandboxError, BackendError, StoreError, BudgetError) as exc:
        raise pytest.UsageError(f"passk: {exc}") from None
    if settings.save_samples is not None:
        from pytest_passk.backends.replay import write_samples

        write_samples(settings.save_samples, [(p.problem.id, t, p.style) for p in suite.problems for t in p.texts])
    analysis = report.analyse(suite, predict=settings.predict, price=settings.price)
    config.stash[_keys().analysis_key] = analysis
    gate = report.gate_failures(suite, settings.fail_under, analysis)
    config.stash[_keys().gate_key] = gate
    xml = _junit(config)
    if xml is not None:
        for name, value in report.suite_properties(suite, analysis):
            xml.add_global_property(name, "" if value is None else value)
    if settings.report is not None:
        report.write_json(settings.report, suite, gate, analysis)
    if settings.plot is not None:
        try:
            report.write_plot(settings.plot, suite, analysis)
        except report.PlotError as exc:
            raise pytest.UsageError(f"passk: {exc}") from None
    config.hook.pytest_passk_suite_result(config=config, suite=suite)
    return suite


def item_outcomes(suite: SuiteResult, analysis: report.Analysis | None = None) -> dict[str, dict[str, object]]:
    """Each passk item's outcome as plain data (an xdist worker reads it from the controller)."""
    outcomes: dict[str, dict[str, object]] = {}
    for res in suite.problems:
        skip = res.n == 0 and suite.allow_partial
        outcomes[res.problem.nodeid] = {
            "properties": [list(p) for p in report.junit_properties(res, analysis)],
            "failure": None if res.meets_min or skip else report.item_failure(res),
            "skip": f"{res.problem.id}: no samples (left out of the metrics: --passk-allow-partial)" if skip else None,
        }
    return outcomes


def _keys() -> Any:
    from pytest_passk import plugin

    return plugin


def _junit(config: pytest.Config) -> object | None:
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - very old pytest
        return None
    return config.stash.get(xml_key, None)
