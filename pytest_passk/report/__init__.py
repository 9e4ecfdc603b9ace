"""Everything a user reads: the terminal section, item failure messages, JUnit properties, JSON, the gate.

One module per output (:mod:`.terminal`, :mod:`.junit`, :mod:`.json`), the numbers they share in
:mod:`.metrics`, and the gate in :mod:`.gate`.
"""
from __future__ import annotations

from pytest_passk.report.analysis import Analysis, Estimate, analyse
from pytest_passk.report.gate import gate_failures
from pytest_passk.report.json import write_json
from pytest_passk.report.junit import junit_properties, suite_properties
from pytest_passk.report.metrics import curve_record, fmt, problem_record, suite_metrics
from pytest_passk.report.plot import PlotError, write_plot
from pytest_passk.report.terminal import generation_summary, item_failure, terminal_lines

__all__ = ["Analysis", "Estimate", "PlotError", "analyse", "write_plot", "curve_record", "fmt", "gate_failures", "generation_summary", "item_failure",
           "junit_properties", "problem_record", "suite_metrics", "suite_properties", "terminal_lines", "write_json"]
