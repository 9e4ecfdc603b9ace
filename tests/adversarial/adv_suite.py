"""The problem every adversarial candidate is evaluated against: ``add(a, b)``.

Copied next to a ``cases.txt`` (one case name per line, in run order) by
tests/test_docker_adversarial.py; each case becomes one passk problem whose samples are the attack
(``<case>.py`` in this folder) followed by a correct solution. Every attack candidate computes a
wrong answer, so it can only be reported as passed by cheating; probes (``probe_*``) are correct
solutions that raise when they find what an earlier candidate left behind.
"""
from pathlib import Path

import pytest

from pytest_passk import passk

CASES = [line.strip() for line in Path(__file__).with_name("cases.txt").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("case", CASES)
@passk(k=1, id=lambda case: case, prompt="Write a Python function add(a, b) that returns a + b.", style="chat")
def test_add(candidate, case):
    add = candidate.function("add")
    assert add(1, 2) == 3
    assert add(-5, 5) == 0
    assert add(10**6, 1) == 1000001
