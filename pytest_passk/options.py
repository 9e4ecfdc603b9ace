"""Command-line options and ini settings of pytest-passk, parsed once into :class:`Settings`."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.sandbox import usable_cpus

# (flag, ini type, default, help); every flag has the ini twin ``passk_<name>``.
_OPTIONS: list[tuple[str, str, Any, str, dict[str, Any]]] = [
    ("model", "string", None, "model to sample from: a built-in name (smollm2-135m-instruct), a local path or a hub id; "
     "needs vLLM, or --passk-endpoint for a server", {}),
    ("endpoint", "linelist", None, "base URL of an OpenAI-compatible server (e.g. vllm serve) to sample from; "
     "repeat it (or list several in the ini) to spread requests over replicas by outstanding work", {"action": "append"}),
    ("api-key-env", "string", "OPENAI_API_KEY", "environment variable holding the endpoint's API key", {}),
    ("concurrency", "string", "8", "requests in flight at once to each --passk-endpoint", {}),
    ("samples", "string", None, "re-score saved generations from a HumanEval-format JSONL file "
     "({\"task_id\", \"completion\"} per line)", {}),
    ("save-samples", "string", None, "write every evaluated sample to this JSONL file (HumanEval format)", {}),
    ("style", "string", "auto", "how a sample becomes a program: completion (prompt + completion), chat (the code "
     "block of the reply) or auto (the marker's style, else chat for models with a chat template, else completion)", {}),
    ("temperature", "string", "0.8", "sampling temperature", {}),
    ("top-p", "string", "0.95", "nucleus sampling top-p", {}),
    ("max-tokens", "string", "512", "maximum tokens per sample", {}),
    ("seed", "string", None, "sampling seed (per engine on builds without per-request seeds)", {}),
    ("stop", "linelist", None, "stop sequence (repeatable)", {"action": "append"}),
    ("vllm-arg", "linelist", None, "extra vllm.LLM engine argument KEY=VALUE (repeatable), "
     "e.g. tensor_parallel_size=2", {"action": "append"}),
    ("sandbox", "string", "docker", "where candidates run: docker (isolated containers) or local "
     "(subprocesses on the host, no isolation: trusted code only)", {}),
    ("image", "string", "auto", "Docker image candidates run in; it needs python3 (3.8+) and whatever candidates "
     "may import (the suite itself runs on this host). auto: pytest-passk/python:bookworm if present (scripts/setup-docker.sh builds it offline), "
     "else the official python:X.Y-slim of this Python", {}),
    ("candidate-packages", "linelist", None, "installed distribution (with its requirements) that candidates "
     "may import, e.g. numpy (repeatable): copied next to the candidates' Python (Docker: into an image derived "
     "from --passk-image; local: a folder on their import path)", {"action": "append"}),
    ("ray", "string", None, "execute on the nodes of a running Ray cluster at ADDRESS (auto: the local one; "
     "needs pytest-passk[ray]): each node runs --passk-sandbox with as many workers as it has CPUs", {}),
    ("workers", "string", None, "number of sandbox workers (default: the CPU cores this process may use)", {}),
    ("affinity", "string", "auto", "auto: with one sandbox worker per usable CPU core, each worker (its test "
     "bodies, zygotes and candidate processes) keeps to a core of its own, so a call to the candidate and its "
     "answer switch processes on one core instead of waking another; off: the OS places them", {}),
    ("runs", "string", "2", "runs of each distinct candidate; disagreeing runs mark it flaky", {}),
    ("timeout", "string", "10", "wall-clock seconds per candidate run (the marker's timeout= wins)", {}),
    ("memory", "string", "2GiB", "address-space limit per candidate run, e.g. 512MiB, 2GiB", {}),
    ("flaky", "string", "fail", "how flaky candidates count in pass@k and coverage: fail or pass", {}),
    ("depends", "linelist", None, "GLOB (relative to the rootdir) of files every passk test depends on, e.g. "
     "data/*.json: stored verdicts are redone when one changes (repeatable; the marker's depends= adds "
     "per-test globs; test modules, conftest.py files and fixtures' files are always included)", {"action": "append"}),
    ("store", "string", None, "SQLite file keeping samples and verdicts so runs resume "
     "(default: .pytest_cache/d/passk/store.sqlite; ':memory:' keeps nothing)", {}),
    ("redo-transient", "bool", False, "execute again the stored verdicts whose reason may be the machine's "
     "rather than the candidate's (timeout, crash), e.g. after a run on an overloaded host", {"action": "store_true"}),
    ("report", "string", None, "write the results as JSON to this file", {}),
    ("allow-partial", "bool", False, "score a suite in which some problems have no samples (e.g. a samples file "
     "covering part of it): the metrics are over the problems with samples and say so, those problems are "
     "skipped, and --passk-fail-under judges the rest. Without it such problems count as unsolved and fail "
     "the gate", {"action": "store_true"}),
    ("fail-under", "linelist", None, "METRIC=VALUE: fail the run when a suite metric is below VALUE "
     "(repeatable). METRIC is coverage or pass@K (K beyond the samples drawn: the extrapolated value), "
     "optionally with .low to gate on the lower end of its 95 percent interval, e.g. coverage.low=0.5", {"action": "append"}),
    # -- extrapolation, cost and the plot (issue 8) --
    ("predict", "string", None, "K[,K...]: extrapolate pass@K to these K by the beta-binomial fit "
     "(default: 10x and 100x the largest n)", {}),
    ("price", "string", None, "price per million tokens, for the cost per solved problem: one number for every "
     "token, or PROMPT,GENERATED (e.g. 0.15,0.60)", {}),
    ("plot", "string", None, "draw coverage and pass@k against k, with the extrapolation, to this file "
     "(.png, .svg or .pdf); needs matplotlib: pip install 'pytest-passk[plot]'", {}),
    # -- where samples and runs are spent (adaptive sampling, verifier checks, confirmation)
    ("budget", "string", None, "total samples over the suite, drawn adaptively in rounds where they can still "
     "change coverage (instead of the marker's n per problem); pass@k is then read from a fitted model", {}),
    ("cap", "string", None, "with --passk-budget: the most samples one problem may get "
     "(default: 10x the even share, budget/problems)", {}),
    ("reference-runs", "string", "3", "runs of each marker reference= solution through its test before "
     "candidates are scored: a failing reference gets --passk-confirm more runs, then marks the verifier broken "
     "if it never passed, flaky if it did (0: no check)", {}),
    ("confirm", "string", "6", "extra runs, in fresh processes and on other workers where possible, of a pass "
     "that decides whether its problem is solved (one of at most 3 passing candidates), and of up to 3 timed-out "
     "candidates of a problem with no pass; a flip makes the candidate flaky (0: no confirmation)", {}),
]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("passk", "pass@k evaluation of code-generating models")
    for name, ini_type, default, help_text, extra in _OPTIONS:
        dest = "passk_" + name.replace("-", "_")
        shown = f" (default: {default})" if default is not None else ""
        group.addoption(f"--passk-{name}", dest=dest, default=None, help=help_text + shown, **extra)
        parser.addini(dest, help=help_text + shown, type=ini_type, default=default)  # type: ignore[arg-type]


def _raw(config: pytest.Config, name: str) -> Any:
    dest = "passk_" + name.replace("-", "_")
    value = config.getoption(dest)
    if value is None:
        value = config.getini(dest)
    return value if value not in ("", []) else None


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.I)


def parse_size(text: str) -> int:
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(text)
    unit = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * unit)


def _bad(option: str, value: Any, fix: str) -> pytest.UsageError:
    return pytest.UsageError(f"--passk-{option}={value!r} is not valid: {fix}")


@dataclass
class Settings:
    model: str | None
    endpoint: str | None  #: the first of ``endpoints``
    api_key_env: str
    concurrency: int
    samples: Path | None
    save_samples: Path | None
    style: str
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None
    stop: list[str]
    vllm_args: dict[str, Any]
    sandbox: str
    image: str
    workers: int
    runs: int
    timeout: float
    memory: int | None
    flaky_pass: bool
    store: str | None
    report: Path | None
    redo_transient: bool = False
    allow_partial: bool = False
    fail_under: dict[str, float] = field(default_factory=dict)
    endpoints: list[str] = field(default_factory=list)
    ray: str | None = None
    predict: list[int] = field(default_factory=list)  #: empty: the report's default K
    price: tuple[float, float] | None = None  #: per million (prompt, generated) tokens
    plot: Path | None = None
    budget: int | None = None
    cap: int | None = None
    reference_runs: int = 3
    confirm: int = 6
    candidate_packages: list[str] = field(default_factory=list)
    affinity: str = "auto"

    @property
    def active(self) -> bool:
        """Whether there is anything to evaluate (a model, an endpoint or a samples file)."""
        return bool(self.model or self.endpoint or self.samples)

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        def number(name: str, kind: type, minimum: float, fix: str) -> Any:
            raw = _raw(config, name)
            if raw is None:
                return None
            try:
                value = kind(raw)
            except (TypeError, ValueError):
                raise _bad(name, raw, fix) from None
            if not (value >= minimum) or (isinstance(value, float) and not math.isfinite(value)):
                raise _bad(name, raw, fix)
            return value

        samples = _raw(config, "samples")
        if samples is not None:
            samples = Path(samples)
            if not samples.is_file():
                raise _bad("samples", str(samples), "no such file; pass a JSONL file of {\"task_id\", \"completion\"} lines")
        style = _raw(config, "style") or "auto"
        if style not in ("auto", "completion", "chat"):
            raise _bad("style", style, "use auto, completion or chat")
        sandbox = _raw(config, "sandbox") or "docker"
        affinity = _raw(config, "affinity") or "auto"
        if affinity not in ("auto", "off"):
            raise _bad("affinity", affinity, "use auto (a CPU core per worker when there is one for each) or off")
        flaky = _raw(config, "flaky") or "fail"
        if flaky not in ("fail", "pass"):
            raise _bad("flaky", flaky, "use fail (flaky candidates count as failed) or pass")
        memory_raw = _raw(config, "memory")
        memory: int | None = None
        if memory_raw is not None and str(memory_raw).lower() not in ("none", "0"):
            try:
                memory = parse_size(memory_raw)
            except ValueError:
                raise _bad("memory", memory_raw, "use a size such as 512MiB or 2GiB, or none") from None
            if memory < (64 << 20):
                raise _bad("memory", memory_raw, "use at least 64MiB; Python itself needs some")
        vllm_args: dict[str, Any] = {}
        for item in _raw(config, "vllm-arg") or []:
            key, eq, value = item.partition("=")
            if not eq or not key.strip().isidentifier():
                raise _bad("vllm-arg", item, "use KEY=VALUE with a vllm.LLM keyword, e.g. tensor_parallel_size=2")
            vllm_args[key.strip()] = _literal(value.strip())
        endpoints = [url for item in _raw(config, "endpoint") or [] for url in re.split(r"[\s,]+", item) if url]
        for url in endpoints:
            if not re.match(r"^https?://[^/\s]+", url):
                raise _bad("endpoint", url, "use an http:// or https:// URL such as http://127.0.0.1:8000")
        fail_under = _fail_under(_raw(config, "fail-under") or [])
        seed = number("seed", int, -(2**63), "use an integer")
        if _raw(config, "cap") is not None and _raw(config, "budget") is None:
            raise _bad("cap", _raw(config, "cap"), "a per-problem cap applies to adaptive sampling: pass --passk-budget too")
        save = _raw(config, "save-samples")
        report = _raw(config, "report")
        return cls(
            model=_raw(config, "model"),
            endpoint=endpoints[0] if endpoints else None,
            endpoints=endpoints,
            ray=_raw(config, "ray"),
            api_key_env=_raw(config, "api-key-env") or "OPENAI_API_KEY",
            concurrency=number("concurrency", int, 1, "use a positive integer"),
            samples=samples,
            save_samples=Path(save) if save else None,
            style=style,
            temperature=number("temperature", float, 0.0, "use a number >= 0"),
            top_p=number("top-p", float, 0.0, "use a number in (0, 1]"),
            max_tokens=number("max-tokens", int, 1, "use a positive integer"),
            seed=seed,
            stop=list(_raw(config, "stop") or []),
            vllm_args=vllm_args,
            sandbox=sandbox,
            image=_raw(config, "image") or "auto",
            workers=number("workers", int, 1, "use a positive integer") or len(usable_cpus()),
            affinity=affinity,
            runs=number("runs", int, 1, "use a positive integer"),
            timeout=number("timeout", float, 0.001, "use a positive number of seconds"),
            memory=memory,
            flaky_pass=flaky == "pass",
            store=_raw(config, "store"),
            report=Path(report) if report else None,
            redo_transient=bool(_raw(config, "redo-transient")),
            allow_partial=bool(_raw(config, "allow-partial")),
            fail_under=fail_under,
            predict=_predict(_raw(config, "predict")),
            price=_price(_raw(config, "price")),
            plot=_plot(_raw(config, "plot")),
            budget=number("budget", int, 1, "use a whole number of samples (at least 1) for the whole suite, e.g. 2000"),
            cap=number("cap", int, 1, "use a whole number of samples (at least 1) per problem, e.g. 200"),
            reference_runs=_count(number("reference-runs", int, 0, "use 0 (no check) or a positive integer"), 3),
            confirm=_count(number("confirm", int, 0, "use 0 (no confirmation) or a positive integer"), 6),
            candidate_packages=[p for line in _raw(config, "candidate-packages") or [] for p in line.replace(",", " ").split()],
        )


_GATE_METRIC = re.compile(r"(coverage|pass@[1-9]\d*)(\.low)?")


def _fail_under(items: list[str]) -> dict[str, float]:
    """``METRIC[.low]=VALUE`` lines into ``{"coverage.low": 0.5, ...}``."""
    bounds: dict[str, float] = {}
    for item in items:
        metric, eq, value = item.partition("=")
        metric = metric.strip()
        if not eq or not _GATE_METRIC.fullmatch(metric):
            raise _bad("fail-under", item, "use METRIC=VALUE with METRIC coverage or pass@K, optionally followed by "
                       ".low for the lower end of its 95% interval, e.g. coverage=0.6 or pass@10.low=0.3")
        try:
            bound = float(value)
        except ValueError:
            raise _bad("fail-under", item, "VALUE must be a number between 0 and 1") from None
        if not 0.0 <= bound <= 1.0:
            raise _bad("fail-under", item, "VALUE must be a number between 0 and 1")
        bounds[metric] = bound
    return bounds


def _predict(raw: str | None) -> list[int]:
    if raw is None:
        return []
    try:
        ks = sorted({int(part) for part in str(raw).split(",") if part.strip()})
    except ValueError:
        ks = []
    if not ks or ks[0] < 1:
        raise _bad("predict", raw, "use positive integers separated by commas, e.g. 1000 or 200,2000")
    return ks


def _price(raw: str | None) -> tuple[float, float] | None:
    if raw is None:
        return None
    parts = str(raw).split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(not (v >= 0 and math.isfinite(v)) for v in values):
        raise _bad("price", raw, "use a price per million tokens (e.g. 0.5) or PROMPT,GENERATED (e.g. 0.15,0.60), "
                   "numbers >= 0")
    return (values[0], values[-1])


def _plot(raw: str | None) -> Path | None:
    if raw is None:
        return None
    path = Path(raw)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise _bad("plot", raw, "name a .png, .svg or .pdf file; the suffix chooses the format")
    import importlib.util

    # Found out before anything is generated, not after an hour of sampling (nothing is imported).
    if importlib.util.find_spec("matplotlib") is None:
        raise pytest.UsageError("--passk-plot needs matplotlib: pip install 'pytest-passk[plot]' (or pip install matplotlib)")
    return path


def _count(value: int | None, default: int) -> int:
    return default if value is None else value


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
