"""The local sandbox: workers are plain subprocesses on the host. Fast, for trusted code only."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_passk.sandbox.pool import WorkerPool

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class LocalSandbox(WorkerPool):
    """Workers run as subprocesses of pytest: limits apply, but candidate code can reach the host."""

    name = "local"
    isolates = False

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return subprocess.Popen(
            [sys.executable, "-m", "pytest_passk.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=self.settings.invocation_dir, env=env, start_new_session=True,
        )

    def environment(self) -> str:
        return f"{sys.executable} {sys.version}"

    def describe(self) -> str:
        return f"local ({self.settings.workers} workers; does NOT isolate the host: use only for trusted code)"
