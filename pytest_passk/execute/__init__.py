"""Execution: the trusted side (verifiers running test bodies), the candidate side (a zygote forking
one process per candidate run, inside the sandbox) and the boundary between them, where only plain
data crosses. See docs/execution.md."""
from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=None)
def zygote_source() -> str:
    """The zygote's source: sandboxes start it as ``python3 -c SOURCE``, so containers need nothing
    from this host."""
    return (Path(__file__).with_name("zygote.py")).read_text(encoding="utf-8")
