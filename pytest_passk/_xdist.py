"""pytest-xdist support: the controller evaluates once; workers only turn its results into outcomes.

xdist's controller does not collect and its workers each would; pytest-passk makes the controller
collect, run the whole evaluation (generation and execution are parallel already) and write every
passk item's outcome to a file that the workers read before running a test. The items' properties
travel back on the reports; the passk section, the suite's JUnit properties, the JSON report and the
gate are the controller's, as without xdist.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

_INPUT = "passk_outcomes"
_dir_key = pytest.StashKey[Path]()


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
