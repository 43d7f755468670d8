"""The analyst's calculator: arithmetic answered, anything else refused in a sentence."""

from __future__ import annotations

import pytest

from core.agents.calculator import calculate


@pytest.mark.parametrize(("expression", "answer"), [
    ("68 / 124", "68 / 124 = 0.5483870968"),
    ("(2 + 3) * -4", "(2 + 3) * -4 = -20"),
    ("2^10 % 1000", "2^10 % 1000 = 24"),
])
def test_arithmetic_is_answered(expression: str, answer: str) -> None:
    assert calculate(expression) == answer


@pytest.mark.parametrize(("expression", "why"), [
    ("__import__('os').system('id')", "only numbers"),
    ("x * 2", "only numbers"),
    ("9 ** 9 ** 9", "exponents above 100"),
    ("1 / 0", "division by zero"),
    ("2 +", "is not an arithmetic expression"),
    ("1" * 201, "longer than 200 characters"),
    ("True + 1", "only numbers"),
])
def test_anything_else_is_refused_with_a_reason(expression: str, why: str) -> None:
    assert calculate(expression).startswith("Not calculated") and why in calculate(expression)
