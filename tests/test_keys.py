"""What stored samples and verdicts are keyed on: a re-run reuses them only when nothing that shaped
them changed (the test, its conftests and fixtures, declared data, limits, pytest-passk, the image;
the model, its tokenizer and chat template, engine and sampling settings)."""
from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from conftest import DOCKER_IMAGE, LOCAL, need_docker, write_samples

ADD = "def add(a, b):\n    return a + b\n"
ROWS = [("add", ADD), ("add", "def add(a, b):\n    return b + a\n")]


def runs(result) -> tuple[int, int]:
    suite = result.report["suite"]
    return suite["runs_executed"], suite["runs_reused"]


@pytest.fixture
def store(pytester: pytest.Pytester) -> str:
    return str(pytester.path / "store.sqlite")


def test_editing_a_conftest_re_executes(pytester, passk_run, store) -> None:
    conftest = pytester.makeconftest("""
        import pytest

        @pytest.fixture
        def expected():
            return 5
    """)
    pytester.makepyfile("""
        from pytest_passk import passk

        @passk(k=1, n=2, prompt="Write add(a, b).", id="add", style="chat")
        def test_add(candidate, expected):
            assert candidate.function("add")(2, 3) == expected
    """)
    assert runs(passk_run(ROWS, store=store)) == (4, 0)
    assert runs(passk_run(ROWS, store=store)) == (0, 4)
    conftest.write_text(conftest.read_text().replace("return 5", "return 6"))
    edited = passk_run(ROWS, store=store)
    assert runs(edited) == (4, 0)  # a stored pass would now be wrong
    assert edited.report["suite"]["coverage"] == 0.0


def test_editing_a_fixture_module_or_a_local_helper_re_executes(pytester, passk_run, store) -> None:
    pytester.makeconftest('pytest_plugins = ["suite_fixtures"]\n')
    fixtures = pytester.makepyfile(suite_fixtures="""
        import pytest

        @pytest.fixture
        def pair():
            return (2, 3)
    """)
    helper = pytester.makepyfile(suite_helpers="def check(value):\n    assert value == 5\n")
    pytester.makepyfile(test_suite="""
        from pytest_passk import passk
        from suite_helpers import check

        @passk(k=1, n=2, prompt="Write add(a, b).", id="add", style="chat")
        def test_add(candidate, pair):
            check(candidate.function("add")(*pair))
    """)
    pytester.syspathinsert()
    assert runs(passk_run(ROWS, store=store)) == (4, 0)
    assert runs(passk_run(ROWS, store=store)) == (0, 4)
    fixtures.write_text(fixtures.read_text().replace("(2, 3)", "(2, 4)"))
    assert runs(passk_run(ROWS, store=store)) == (4, 0)
    helper.write_text(helper.read_text().replace("== 5", "== 6"))
    after = passk_run(ROWS, store=store)
    assert runs(after) == (4, 0) and after.report["suite"]["coverage"] == 1.0


DATA_SUITE = """
    import json
    from pathlib import Path
    from pytest_passk import passk

    @passk(k=1, n=2, prompt="Write add(a, b).", id="add", style="chat", depends={depends})
    def test_add(candidate):
        case = json.loads((Path(__file__).parent / "data" / "case.json").read_text())
        assert candidate.function("add")(*case["args"]) == case["sum"]
"""


@pytest.mark.parametrize("declare", ["marker", "option", "ini"])
def test_declared_data_files_are_in_the_key(pytester, passk_run, store, declare: str) -> None:
    data = pytester.path / "data"
    data.mkdir()
    (data / "case.json").write_text(json.dumps({"args": [2, 3], "sum": 5}))
    pytester.makepyfile(test_data=DATA_SUITE.format(depends='"data/*.json"' if declare == "marker" else "()"))
    extra = ["--passk-depends=data/*.json"] if declare == "option" else []
    if declare == "ini":
        pytester.makeini("[pytest]\npassk_depends =\n    data/*.json\n")
    assert runs(passk_run(ROWS, *extra, store=store)) == (4, 0)
    assert runs(passk_run(ROWS, *extra, store=store)) == (0, 4)
    (data / "case.json").write_text(json.dumps({"args": [2, 3], "sum": 6}))
    changed = passk_run(ROWS, *extra, store=store)
    assert runs(changed) == (4, 0) and changed.report["suite"]["coverage"] == 0.0


def test_undeclared_data_is_not_in_the_key(pytester, passk_run, store) -> None:
    """The documented limit: data read at run time is in the key only when declared."""
    data = pytester.path / "data"
    data.mkdir()
    (data / "case.json").write_text(json.dumps({"args": [2, 3], "sum": 5}))
    pytester.makepyfile(test_data=DATA_SUITE.format(depends="()"))
    passk_run(ROWS, store=store)
    (data / "case.json").write_text(json.dumps({"args": [2, 3], "sum": 6}))
    assert runs(passk_run(ROWS, store=store)) == (0, 4)


@pytest.mark.parametrize(("where", "says"), [
    ('depends="data/*.csv"', "passk(depends=...): 'data/*.csv' matches no file"),
    ("depends=3", "passk(depends=...) must be a glob"),
])
def test_bad_depends_is_a_collection_error(pytester, where: str, says: str) -> None:
    pytester.makepyfile(f"""
        from pytest_passk import passk

        @passk(k=1, prompt="Write add(a, b).", {where})
        def test_p(candidate):
            pass
    """)
    result = pytester.runpytest(*LOCAL)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*test_p*{says}*"])


def test_run_key_covers_version_environment_and_limits(pytester) -> None:
    import pytest_passk.keys as keys
    from pytest_passk.plugin import problem_key, settings_key

    pytester.makepyfile("""
        from pytest_passk import passk

        @passk(k=1, prompt="Write add(a, b).")
        def test_p(candidate):
            pass
    """)
    items, rec = pytester.inline_genitems(*LOCAL)
    problem = items[0].stash[problem_key]
    settings = items[0].config.stash[settings_key]
    base = keys.run_key(problem, settings, 10.0, "image-a")
    assert keys.run_key(problem, settings, 10.0, "image-a") == base
    assert keys.run_key(problem, settings, 10.0, "image-b") != base
    assert keys.run_key(problem, settings, 11.0, "image-a") != base
    real = keys.passk_version()
    assert real != "unknown"  # the installed distribution's version
    keys.passk_version.cache_clear()
    try:
        import importlib.metadata as metadata

        original = metadata.version
        metadata.version = lambda name: "999.0"  # type: ignore[assignment]
        try:
            assert keys.run_key(problem, settings, 10.0, "image-a") != base
        finally:
            metadata.version = original  # type: ignore[assignment]
    finally:
        keys.passk_version.cache_clear()
    assert keys.passk_version() == real


def test_local_sandbox_environment_is_the_python_candidates_run_on() -> None:
    import os
    import subprocess

    from pytest_passk.sandbox import SandboxSettings
    from pytest_passk.sandbox.local import LocalSandbox

    box = LocalSandbox(SandboxSettings(workers=1, invocation_dir=".", rootdir="."))
    exe, version = box.environment().split()
    assert os.path.isabs(exe)
    real = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert version == real
    declared = LocalSandbox(SandboxSettings(workers=1, invocation_dir=".", rootdir=".", candidate_packages=["numpy"]))
    assert declared.environment() == f"{exe} {version} with numpy"


@pytest.mark.docker
def test_docker_environment_is_the_image_id_auto_resolves_to() -> None:
    need_docker()
    from pytest_passk.sandbox import SandboxSettings
    from pytest_passk.sandbox.docker import DockerSandbox

    image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", DOCKER_IMAGE],
                              capture_output=True, text=True, check=True).stdout.strip()
    for name in ("auto", DOCKER_IMAGE):
        box = DockerSandbox(SandboxSettings(workers=1, invocation_dir=".", rootdir=".", image=name))
        assert box.environment() == image_id
    missing = DockerSandbox(SandboxSettings(workers=1, invocation_dir=".", rootdir=".", image="no/such:image"))
    assert missing.environment() == "unresolved no/such:image"


TRANSIENT = """
    import time
    from pathlib import Path
    from pytest_passk import passk

    @passk(k=1, n=2, prompt="Write add(a, b).", id="add", style="chat")
    def test_add(candidate):
        if (Path(__file__).parent / "busy").exists():  # the machine was overloaded in the first run
            time.sleep(30)
        assert candidate.function("add")(2, 3) == 5
"""


def test_redo_transient_re_executes_timeouts_only(pytester, passk_run, store) -> None:
    pytester.makepyfile(test_transient=TRANSIENT)
    (pytester.path / "busy").touch()
    rows = ROWS + [("add", "def add(a, b):\n    return a - b\n")]
    first = passk_run(rows, "--passk-timeout=1", store=store)
    assert first.report["problems"][0]["reasons"] == {"timeout": 6}
    (pytester.path / "busy").unlink()
    kept = passk_run(rows, "--passk-timeout=1", store=store)
    assert runs(kept) == (0, 6) and kept.report["suite"]["coverage"] == 0.0  # still the stored timeouts
    redone = passk_run(rows, "--passk-timeout=1", "--passk-redo-transient", store=store)
    assert runs(redone) == (6, 0)
    assert redone.report["problems"][0]["reasons"] == {"passed": 4, "assertion": 2}
    # the new verdicts replaced the timeouts; a failed assertion is not transient and stays
    again = passk_run(rows, "--passk-timeout=1", "--passk-redo-transient", store=store)
    assert runs(again) == (0, 6)


def test_the_store_indexes_verdicts_by_run_key(pytester, passk_run, store) -> None:
    pytester.makepyfile(test_transient=TRANSIENT)
    passk_run(ROWS, store=store)
    db = sqlite3.connect(store)
    assert "runs_by_key" in {row[1] for row in db.execute("PRAGMA index_list(runs)")}
    plan = " ".join(row[-1] for row in db.execute(
        "EXPLAIN QUERY PLAN SELECT code_hash, run FROM runs WHERE run_key=?", ("x",)))
    assert "USING INDEX runs_by_key" in plan or "USING COVERING INDEX" in plan, plan
    plan = " ".join(row[-1] for row in db.execute(
        "EXPLAIN QUERY PLAN SELECT text FROM samples WHERE source=? AND prompt_hash=? ORDER BY idx", ("s", "p")))
    assert "USING INDEX" in plan, plan


def test_without_the_cache_plugin_the_store_still_has_a_path(pytester) -> None:
    pytester.makepyfile(test_transient=TRANSIENT)
    samples = write_samples(pytester.path / "samples.jsonl", ROWS)
    args = ("--passk-sandbox=local", f"--passk-samples={samples}", "-p", "no:cacheprovider")
    first = pytester.runpytest(*args)
    first.assert_outcomes(passed=1)
    path = pytester.path / ".pytest_cache" / "d" / "passk" / "store.sqlite"
    assert path.is_file()
    first.stdout.fnmatch_lines([f"store: {path}"])
    pytester.runpytest(*args).stdout.fnmatch_lines(["executed 0 candidate runs*4 reused from the store"])


def test_memory_store_says_nothing_is_kept(pytester, passk_run) -> None:
    pytester.makepyfile(test_transient=TRANSIENT)
    passk_run(ROWS).stdout.fnmatch_lines(["store: none (--passk-store=:memory:): nothing is kept for the next run"])


# -- sample keys -------------------------------------------------------------------------------

def _settings(pytester, *args: str):
    from pytest_passk.plugin import settings_key

    return pytester.parseconfigure(*args).stash[settings_key]


def test_sample_key_covers_sampling_and_engine_arguments(pytester) -> None:
    from dataclasses import replace

    from pytest_passk.keys import source_key

    settings = _settings(pytester)  # one config: each costs a few gc passes at teardown
    base = source_key("vllm", "m@1", settings)
    assert source_key("vllm", "m@1", replace(settings)) == base
    for change in ({"temperature": 0.5}, {"top_p": 0.5}, {"max_tokens": 10}, {"seed": 1}, {"stop": ["###"]}):
        assert source_key("vllm", "m@1", replace(settings, **change)) != base, change
    assert source_key("vllm", "m@2", settings) != base
    assert source_key("vllm", "m@1", settings, {"vllm_args": {"dtype": "float16"}}) != \
        source_key("vllm", "m@1", settings, {"vllm_args": {"dtype": "bfloat16"}})


def test_vllm_source_key_includes_vllm_args(pytester, tmp_path) -> None:
    from pytest_passk.backends.vllm import VLLMBackend

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    plain = VLLMBackend(_settings(pytester, f"--passk-model={folder}"))
    quantized = VLLMBackend(_settings(pytester, f"--passk-model={folder}", "--passk-vllm-arg=quantization=fp8"))
    assert plain.source_key() != quantized.source_key()


def test_model_identity_follows_tokenizer_template_and_weights(tmp_path) -> None:
    import os

    from pytest_passk.backends import vllm as vb

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "tokenizer_config.json").write_text('{"chat_template": "{{ a }}"}')
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\0" * 100)
    seen = {vb._model_identity(str(folder))}

    def changed() -> bool:
        ident = vb._model_identity(str(folder))
        new = ident not in seen
        seen.add(ident)
        return new

    assert not changed()
    (folder / "chat_template.jinja").write_text("{{ messages }}!")  # same size, other template
    assert changed()
    (folder / "tokenizer_config.json").write_text('{"chat_template": "{{ b }}"}')
    assert changed()
    weights.write_bytes(b"\1" * 100)  # small files are hashed whole
    assert changed()
    old = vb._HASHED_WHOLE
    vb._HASHED_WHOLE = 10  # weights too big to hash: size and mtime
    try:
        first = vb._model_identity(str(folder))
        os.utime(weights, ns=(1, 1))
        assert vb._model_identity(str(folder)) != first
    finally:
        vb._HASHED_WHOLE = old


def test_hub_model_identity_is_the_cached_revision(tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    from pytest_passk.backends import vllm as vb

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    refs = tmp_path / "models--org--tiny" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    (refs / "v2").write_text("b" * 40)
    assert vb._model_identity("org/tiny") == f"org/tiny@{'a' * 40}"
    assert vb._model_identity("org/tiny", "v2") == f"org/tiny@{'b' * 40}"
    assert vb._model_identity("org/other") == "org/other@main"  # not cached yet
