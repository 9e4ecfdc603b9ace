"""The ``--passk-report`` JSON file (other tools and CI read it: keep the names stable)."""
from __future__ import annotations

import json
from pathlib import Path

from pytest_passk.evaluation import SuiteResult
from pytest_passk.report.analysis import Analysis, analyse
from pytest_passk.report.metrics import curve_record, problem_record, suite_metrics


def write_json(path: Path, suite: SuiteResult, gate: list[str], analysis: Analysis | None = None) -> None:
    analysis = analysis or analyse(suite)
    data = {"suite": suite_metrics(suite, analysis), "curve": curve_record(suite, analysis), "gate": {"failed": gate},
            "problems": [problem_record(p, analysis, suite) for p in suite.problems]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
