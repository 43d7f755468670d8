"""The analyst's calculator: arithmetic on numbers, nothing else.

It walks Python's own parse tree (``ast``) and admits only numbers and the arithmetic
operators, so a model cannot reach names, calls or attributes; powers and results are
bounded so a request like ``9**9**9`` is refused instead of freezing the process.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from langchain_core.tools import BaseTool, tool

__all__ = ["calculate", "calculator_tool"]

_MAX_EXPONENT = 100
_MAX_MAGNITUDE = 1e100
_OPERATORS: dict[type[ast.AST], Callable[..., float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}


class _Refused(ValueError):
    pass


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise _Refused(f"exponents above {_MAX_EXPONENT} are not supported")
        result = _OPERATORS[type(node.op)](left, right)
        if not math.isfinite(result) or abs(result) > _MAX_MAGNITUDE:
            raise _Refused("the result is too large")
        return result
    raise _Refused("only numbers, + - * / // % ** and parentheses are allowed")


def calculate(expression: str) -> str:
    """The value of an arithmetic expression, or a sentence saying why there is none."""
    if len(expression) > 200:
        return "Not calculated: the expression is longer than 200 characters."
    try:
        value = _value(ast.parse(expression.replace("^", "**"), mode="eval").body)
    except SyntaxError:
        return f"Not calculated: {expression!r} is not an arithmetic expression."
    except ZeroDivisionError:
        return "Not calculated: division by zero."
    except (_Refused, OverflowError) as exc:
        return f"Not calculated: {exc}."
    return f"{expression} = {value:.10g}"


def calculator_tool() -> BaseTool:
    @tool("calculator")
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression (numbers, + - * / // % ** and parentheses)."""
        return calculate(expression)

    return calculator
