"""Arithmetic word problems: an answer-style suite, where a sample is a worked answer rather than a
program. The verifier checks the final number; ``answer=`` tells pytest-passk how to read that
number, so it can also report maj@k (majority voting, what you get without a verifier) and the
precision gap beside coverage.

    pytest example_suites/arithmetic --passk-model=smollm2-135m-instruct
"""
from __future__ import annotations

import re

import pytest

from pytest_passk import passk

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_number(text: str) -> str | None:
    """The last number in a reply ("... so the answer is 42." -> "42"), None if it has none."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    value = found[-1].replace(",", "")
    return value[:-2] if value.endswith(".0") else value


PROBLEMS = [
    ("apples", "Mia has 7 apples and buys 5 more. She gives 3 to her brother. How many apples does she have now?", 9),
    ("pencils", "A box holds 12 pencils. How many pencils are in 6 boxes?", 72),
    ("bus", "A bus has 40 seats. 23 people are on it. How many seats are empty?", 17),
    ("cookies", "Sam baked 36 cookies and shared them equally among 4 friends. How many cookies did each friend get?", 9),
    ("train", "A train travels 60 km every hour. How far does it travel in 3 hours?", 180),
    ("savings", "Lena saves 15 dollars a week. How many dollars has she saved after 8 weeks?", 120),
    ("books", "A shelf has 3 rows of 14 books. 5 books are taken away. How many books are left?", 37),
    ("eggs", "A farmer collects 18 eggs a day. How many eggs does he collect in a week?", 126),
    ("pages", "A book has 250 pages. Tom has read 95 pages. How many pages are left?", 155),
    ("tickets", "Tickets cost 8 dollars each. How much do 9 tickets cost, in dollars?", 72),
    ("marbles", "Ana had 50 marbles. She lost 12 and then found 7. How many marbles does she have?", 45),
    ("garden", "A garden is 9 meters long and 6 meters wide. What is its area in square meters?", 54),
    ("minutes", "How many minutes are there in 4 hours?", 240),
    ("candies", "There are 100 candies shared equally by 5 children. How many candies does each child get?", 20),
    ("stamps", "Raj has 3 albums with 25 stamps each and 8 loose stamps. How many stamps does he have?", 83),
    ("temperature", "The temperature was 4 degrees and fell by 10 degrees. What is the temperature now?", -6),
]
INSTRUCTIONS = "Solve the problem. Think step by step, then end with 'The answer is N.'\n\n"


@pytest.mark.parametrize("name,question,expected", PROBLEMS, ids=[p[0] for p in PROBLEMS])
@passk(k=(1, 4), n=8, style="chat", id=lambda name: f"arithmetic/{name}",
       prompt=lambda question: INSTRUCTIONS + question, answer=final_number)
def test_word_problem(candidate, name, question, expected):
    assert final_number(candidate.text) == str(expected), f"expected {expected}"
