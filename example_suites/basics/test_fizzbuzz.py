"""Small chat-style problems: the prompt is an instruction, the program is the reply's code block.

Every problem draws the same n, so the suite's pass@k is defined for every k asked for. The two
palindrome items share one prompt and therefore one pool of samples (each is its own test of them)."""
from __future__ import annotations

import pytest

from pytest_passk import passk


@passk(k=(1, 5), n=10, style="chat", prompt=(
    "Write a Python function fizzbuzz(n: int) -> str that returns 'Fizz' for multiples of 3, 'Buzz' for "
    "multiples of 5, 'FizzBuzz' for multiples of both, and str(n) otherwise. Reply with a Python code block."
), reference="def fizzbuzz(n):\n    return 'Fizz' * (n % 3 == 0) + 'Buzz' * (n % 5 == 0) or str(n)\n")
def test_fizzbuzz(candidate):
    fizzbuzz = candidate.function("fizzbuzz")
    assert fizzbuzz(3) == "Fizz"
    assert fizzbuzz(5) == "Buzz"
    assert fizzbuzz(15) == "FizzBuzz"
    assert fizzbuzz(7) == "7"


@pytest.mark.parametrize(("word", "expected"), [("level", True), ("python", False)])
@passk(k=(1, 5), n=10, style="chat", id=lambda word, expected: f"palindrome-{word}")
def test_is_palindrome(candidate, word, expected):
    """Write a Python function is_palindrome(s: str) -> bool that tells whether s reads the same
    backwards. Reply with a Python code block."""
    assert candidate.function("is_palindrome")(word) is expected


@passk(k=(1, 5), n=10, style="chat", prompt=(
    "Write a Python program that reads two integers from standard input, one per line, and prints "
    "their sum. Reply with a Python code block."
), reference="print(int(input()) + int(input()))\n")
def test_sum_stdin(candidate):
    result = candidate.run(input="2\n40\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"
