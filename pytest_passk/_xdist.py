"""pytest-xdist support: the controller evaluates once; workers only turn its results into outcomes.

xdist's controller does not collect and its workers each would; pytest-passk makes the controller
collect, run the whole evaluation (generation and execution are parallel already) and write every
passk item's outcome to a file that the workers read before running a test. The items' properties
travel back on the reports; the passk section, the suite's JUnit properties, the JSON report and the
gate are the controller's, as without xdist.

When every collected item is a passk test with nothing to set up on the host (no fixtures beyond
``candidate`` and its parameters, no markers beyond ``passk`` and ``parametrize``), the workers do
not collect the suite at all: the controller writes its items (node id and location) and each worker
builds one light :class:`OutcomeItem` per item, which reports the controller's outcome. Collecting
a large suite twice more (once per worker) is CPU that the evaluation's own processes need on a
small machine; a suite with other tests is collected by the workers as usual, since they run those.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

_INPUT = "passk_outcomes"
_ITEMS = "passk_items"
_dir_key = pytest.StashKey[Path]()
#: Markers a passk item may carry and still be reported by an :class:`OutcomeItem`.
_PLAIN_MARKERS = {"passk", "parametrize"}
#: Seconds between looks for the controller's item list (it collects while the workers start).
_POLL = 0.02


def is_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("dsession")


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_dir_key, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def configure_node(node: Any) -> None:
    folder = node.config.stash.get(_dir_key, None)
    if folder is None:
        folder = node.config.stash[_dir_key] = Path(tempfile.mkdtemp(prefix="passk-xdist-"))
    node.workerinput[_INPUT] = str(folder / "outcomes.json")
    node.workerinput[_ITEMS] = str(folder / "items.json")


def _plain(item: pytest.Item, is_passk: bool) -> bool:
    """A passk test whose host-side run does nothing but report the controller's outcome."""
    if not is_passk or not isinstance(item, pytest.Function):
        return False
    params = set(getattr(getattr(item, "callspec", None), "params", {}))
    if not set(item.fixturenames) <= {"candidate", "request", *params}:
        return False
    return all(m.name in _PLAIN_MARKERS for m in item.iter_markers())


def write_items(config: pytest.Config, items: list[pytest.Item], is_passk: Any) -> None:
    """The controller's collection, for workers that need not collect (see the module's doc)."""
    folder = config.stash.get(_dir_key, None)
    if folder is None:
        return
    light = bool(items) and all(_plain(item, is_passk(item)) for item in items)
    data = {"light": light,
            "items": [[item.nodeid, *item.location] for item in items] if light else []}
    path = folder / "items.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


class OutcomeItem(pytest.Item):
    """A worker's stand-in for one of the controller's passk items: it reports that item's outcome."""

    def __init__(self, *, location: tuple[str, int | None, str], report: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._where = location
        self._report = report

    def runtest(self) -> None:
        self._report(self)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self._where

    @property  # type: ignore[override]
    def location(self) -> tuple[str, int | None, str]:
        return self._where


def light_collection(session: pytest.Session, report: Any) -> bool:
    """In a worker: wait for the controller's item list; when it allows, make the items from it
    instead of collecting the suite. False: collect as usual."""
    config = session.config
    name = config.workerinput.get(_ITEMS)  # type: ignore[attr-defined]
    if name is None or config.getoption("loadgroup", False):  # loadgroup renames items in the workers
        return False
    path = Path(name)
    while not path.exists():
        if not path.parent.exists():  # the controller ended (e.g. its collection failed)
            return False
        time.sleep(_POLL)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if not data["light"]:
        return False
    items: list[pytest.Item] = []
    for nodeid, relpath, lineno, domain in data["items"]:
        items.append(OutcomeItem.from_parent(session, name=nodeid.rpartition("::")[2] or nodeid, nodeid=nodeid,
                                             location=(relpath, lineno, domain), report=report))
    session.items = items
    session.testscollected = len(items)
    # A worker's terminal summary is never shown (xdist shows the controller's), and here no plugin
    # has anything to summarise: the items only reported outcomes. Skipping it saves what other
    # plugins' summary hooks cost at the end of each worker (importing hypothesis: ~1 s of CPU).
    config.option.no_summary = True
    config.hook.pytest_collection_finish(session=session)
    return True


def write_outcomes(config: pytest.Config, outcomes: dict[str, dict[str, Any]]) -> None:
    path = config.stash[_dir_key] / "outcomes.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(outcomes))
    tmp.replace(path)


def read_outcomes(config: pytest.Config) -> dict[str, dict[str, Any]]:
    """The outcomes the controller wrote; a worker on another machine (``--tx ssh=...``) cannot
    see them, and says so."""
    name = config.workerinput.get(_INPUT)  # type: ignore[attr-defined]
    if name is None:
        raise pytest.UsageError("passk: this xdist worker got no evaluation results from the controller; "
                                "is pytest-passk installed where the controller runs?")
    try:
        return json.loads(Path(name).read_text())
    except OSError as exc:
        raise pytest.UsageError(
            f"passk: cannot read the controller's evaluation results ({exc}); pytest-passk under xdist needs "
            "its workers on the controller's machine (-n N), not remote ones (--tx ssh=...)") from None
