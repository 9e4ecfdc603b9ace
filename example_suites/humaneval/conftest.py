"""``--humaneval-ids`` narrows HumanEval to some problems; ``demo`` names a set a tiny model can
sometimes solve, small enough to sample and execute in about ten minutes on two CPU cores."""
from __future__ import annotations

import pytest

DEMO = (0, 2, 4, 7, 12, 13, 15, 16, 22, 23, 28, 29, 30, 34, 35, 42, 45, 48, 52, 53, 55, 60)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--humaneval-ids", default=None,
                     help="comma-separated HumanEval task numbers to keep (e.g. 0,2,23), or 'demo' for "
                          f"{len(DEMO)} short problems (default: all 164)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    raw = config.getoption("--humaneval-ids", default=None)
    if not raw:
        return
    try:
        wanted = set(DEMO) if raw == "demo" else {int(x) for x in raw.split(",") if x.strip()}
    except ValueError:
        raise pytest.UsageError(f"--humaneval-ids={raw!r}: use task numbers like 0,2,23 or 'demo'") from None
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        problem = callspec.params.get("problem") if callspec else None
        if problem is not None and int(problem["task_id"].split("/")[1]) not in wanted:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
