"""Execution: the trusted side (verifiers running test bodies), the candidate side (a zygote forking
one process per candidate run, inside the sandbox) and the boundary between them, where only plain
data crosses. See docs/execution.md."""
from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=None)
def zygote_source() -> str:
    """The zygote's source: sandboxes start it as ``python3 -c BOOTSTRAP SOURCE``
    (:func:`zygote_args`), so containers need nothing from this host."""
    return (Path(__file__).with_name("zygote.py")).read_text(encoding="utf-8")


#: How a sandbox starts the zygote: ``python3 -c BOOTSTRAP SOURCE``. Python keeps the syntax tree of
#: a ``-c`` program (~5 MB for the zygote's) until that program returns, which the zygote never does:
#: every candidate process would inherit it, and fork and exit copy and tear down its pages. The
#: bootstrap compiles the source itself, so that tree is freed before the zygote runs (and handed
#: back to the system with everything else start-up freed, once the zygote has warmed up: Zygote.serve).
ZYGOTE_BOOTSTRAP = """
import sys
_passk_code = compile(sys.argv.pop(1), "<string>", "exec")
exec(_passk_code)
"""


def zygote_args() -> list[str]:
    """The interpreter's arguments that start a zygote (after its flags)."""
    return ["-c", ZYGOTE_BOOTSTRAP, zygote_source()]
