"""The pool of verifiers, driven directly: reruns avoid the worker asked to be avoided, runs of one
candidate see other hash seeds, session fixtures live once per verifier, and results carry who ran
them and what the candidate returned."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_passk.protocol import Job
from pytest_passk.sandbox import SandboxSettings
from pytest_passk.sandbox.local import LocalSandbox

SUITE = '''
import pytest

SETUPS = []


@pytest.fixture(scope="session")
def expensive():
    SETUPS.append(1)
    return len(SETUPS)


def test_hash(candidate, expensive):
    assert expensive == 1, f"the session fixture was set up {expensive} times"
    candidate.function("f")()
'''


@pytest.fixture
def pool(tmp_path: Path):
    (tmp_path / "test_pool.py").write_text(SUITE)
    box = LocalSandbox(SandboxSettings(workers=2, invocation_dir=str(tmp_path), rootdir=str(tmp_path), zygotes=2))
    box.start(["test_pool.py::test_hash"])
    yield box
    box.close()


def job(i: int, run: int = 0, avoid: str | None = None, code: str = "def f():\n    return hash('pytest-passk')\n") -> Job:
    return Job(id=i, nodeid="test_pool.py::test_hash", problem_id="p", index=0, prompt="", text="", code=code,
               timeout=10, run=run, avoid=avoid)


def results(box: LocalSandbox, n: int) -> list:
    out = []
    for _ in range(n):
        result = box.next_result(120)
        assert result is not None
        out.append(result)
    return sorted(out, key=lambda r: r.id)


def test_reruns_go_to_another_worker_and_see_another_hash_seed(pool: LocalSandbox) -> None:
    for i in range(8):
        pool.submit(job(i, avoid="local-0"))
    got = results(pool, 8)
    assert all(r.passed for r in got), [r.message for r in got]
    assert {r.worker for r in got} == {"local-1"}
    # the same program, run 0 and run 1: zygotes with other hash seeds, so other values
    pool.submit(job(100, run=0))
    pool.submit(job(101, run=1))
    first, second = results(pool, 2)
    assert first.returns and second.returns and first.returns != second.returns


def test_same_values_same_digest_whatever_the_hash_seed(pool: LocalSandbox) -> None:
    code = "def f():\n    return {'b': {3, 1, 2}, 'a': [1.5, None]}\n"
    for i, run in enumerate((0, 1, 0, 1)):
        pool.submit(job(i, run=run, code=code))
    got = results(pool, 4)
    assert all(r.passed for r in got) and len({r.returns for r in got}) == 1
    pool.submit(job(9, code="def f():\n    return {'b': {3, 1}, 'a': [1.5, None]}\n"))
    assert results(pool, 1)[0].returns != got[0].returns


def test_a_worker_with_a_job_in_flight_does_not_take_reruns_that_avoid_it(pool: LocalSandbox) -> None:
    """local-0 has reruns of its own to run (they avoid local-1) while reruns that avoid it wait for
    local-1: each turn such a rerun is turned away must cost local-0 a pause or a job, so they still
    go to local-1 (local-0 once spent their 200 turns in a few milliseconds whenever it held a job
    in flight, and ran half of them)."""
    slow = "import time\ndef f():\n    time.sleep(0.1)\n    return 1\n"
    for i in range(3):
        pool.submit(job(i, avoid="local-0", code=slow))
    for i in range(10, 14):
        pool.submit(job(i, avoid="local-1"))
    got = results(pool, 7)
    assert all(r.passed for r in got), [r.message for r in got]
    assert [r.worker for r in got] == ["local-1"] * 3 + ["local-0"] * 4
