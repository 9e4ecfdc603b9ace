"""Each worker on a CPU of its own (``--passk-affinity``): with one worker per usable CPU, a worker's
verifier, its zygotes and every candidate process it runs keep to one CPU, and no two workers share
one; with fewer workers, or ``off``, nothing is pinned. Asked of the real processes: the test body
reads the verifier's affinity, the candidate reads its own in the sandbox and returns it as data."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import need_docker
from pytest_passk.protocol import Job
from pytest_passk.sandbox import SandboxSettings, usable_cpus, worker_cpu
from pytest_passk.sandbox.docker import DockerSandbox
from pytest_passk.sandbox.local import LocalSandbox

SUITE = '''
import json, os


def test_where(candidate):
    mine = sorted(os.sched_getaffinity(0))
    theirs = candidate.function("where")()
    with open(os.path.join(OUT, "%d-%d.json" % (os.getpid(), len(os.listdir(OUT)))), "w") as fh:
        json.dump({"verifier": mine, "candidate": theirs}, fh)
'''
CODE = "import os\n\ndef where():\n    return sorted(os.sched_getaffinity(0))\n"
CPUS = usable_cpus()
several = pytest.mark.skipif(len(CPUS) < 2, reason="one usable CPU: there is nothing to pin")


#: The attack: a candidate asks for every CPU of the host (to burn the other workers' cores, where
#: their test bodies and candidates run), then spins a while and notes each CPU it finds itself on.
ESCAPE = """import os, time

def where():
    try:
        os.sched_setaffinity(0, range(os.cpu_count()))
    except OSError:
        pass
    seen = set()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        with open("/proc/self/stat") as fh:
            seen.add(int(fh.read().rsplit(")", 1)[1].split()[36]))  # field 39: the CPU it last ran on
    return sorted(os.sched_getaffinity(0)) + [cpu for cpu in sorted(seen) if cpu not in os.sched_getaffinity(0)]
"""


def placements(box_class: type, tmp_path: Path, workers: int, affinity: str = "auto",
               code: str = CODE) -> list[dict]:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "test_where.py").write_text(f"OUT = {str(out)!r}\n" + SUITE)
    box = box_class(SandboxSettings(workers=workers, invocation_dir=str(tmp_path), rootdir=str(tmp_path),
                                    image="auto", affinity=affinity))
    box.start(["test_where.py::test_where"])
    try:
        for i in range(6 * workers):
            box.submit(Job(id=i, nodeid="test_where.py::test_where", problem_id="p", index=0, prompt="",
                           text="", code=code, timeout=30, run=i))
        results = [box.next_result(120) for _ in range(6 * workers)]
    finally:
        box.close()
    assert all(r is not None and r.passed for r in results), [r and r.message for r in results]
    return [json.loads(p.read_text()) for p in sorted(out.iterdir())]


def assert_one_cpu_per_worker(seen: list[dict]) -> None:
    by_verifier: dict[tuple[int, ...], set[tuple[int, ...]]] = {}
    for s in seen:
        by_verifier.setdefault(tuple(s["verifier"]), set()).add(tuple(s["candidate"]))
    # every worker took jobs, each on a CPU of its own, and its candidates ran on that CPU only
    assert sorted(by_verifier) == [(cpu,) for cpu in CPUS], by_verifier
    for verifier, candidates in by_verifier.items():
        assert candidates == {verifier}, (verifier, candidates)


@several
def test_local_workers_keep_to_a_cpu_each(tmp_path: Path) -> None:
    assert_one_cpu_per_worker(placements(LocalSandbox, tmp_path, workers=len(CPUS)))


@several
def test_off_or_fewer_workers_than_cpus_pin_nothing(tmp_path: Path) -> None:
    for sub, workers, affinity in (("off", len(CPUS), "off"), ("fewer", len(CPUS) - 1, "auto")):
        (tmp_path / sub).mkdir()
        seen = placements(LocalSandbox, tmp_path / sub, workers=workers, affinity=affinity)
        assert seen and all(s["verifier"] == CPUS and s["candidate"] == CPUS for s in seen), (sub, seen)


def test_worker_cpu_only_with_one_worker_per_cpu() -> None:
    def settings(workers: int, affinity: str = "auto") -> SandboxSettings:
        return SandboxSettings(workers=workers, invocation_dir=".", rootdir=".", affinity=affinity)

    if len(CPUS) >= 2:
        assert [worker_cpu(settings(len(CPUS)), i) for i in range(len(CPUS))] == CPUS
    assert worker_cpu(settings(len(CPUS), "off"), 0) is None
    assert worker_cpu(settings(len(CPUS) + 1), 0) is None
    assert worker_cpu(settings(1), 0) is None


@several
@pytest.mark.docker
def test_docker_workers_keep_to_a_cpu_each(tmp_path: Path) -> None:
    """The verifier keeps to its CPU on the host, its containers by their cpuset."""
    need_docker()
    assert_one_cpu_per_worker(placements(DockerSandbox, tmp_path, workers=len(CPUS)))


def test_a_bad_affinity_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--passk-sandbox=local", "--passk-affinity=all")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--passk-affinity='all' is not valid: use auto*or off*"])


@several
@pytest.mark.docker
def test_a_docker_candidate_cannot_leave_its_workers_cpu(tmp_path: Path) -> None:
    """The attack: each candidate asks for every CPU and spins; the container's cpuset keeps it to
    its worker's, so it never runs where another worker's test bodies and candidates do."""
    need_docker()
    assert_one_cpu_per_worker(placements(DockerSandbox, tmp_path, workers=len(CPUS), code=ESCAPE))
