"""A small, safe evaluator for the column formulas of a public schema or a data-free spec.

An expression is parsed with `ast` and walked node by node; only these are accepted:

* numbers, booleans and quoted text (text only to compare a categorical column with);
* column names (plain identifiers) and the constants `pi` and `e`;
* `+ - * / // % **`, unary `-` / `+` / `not`, comparisons (`< <= > >= == !=`, chained
  too), `and` / `or`, and `a if cond else b`;
* calls of the functions in `FUNCTIONS`, with positional arguments only.

Anything else (attributes, subscripts, lambdas, comprehensions, keyword arguments,
names that are neither columns nor constants) is refused with a message naming it.
Nothing is ever passed to `eval`, `exec` or `pandas.eval`. Values are float arrays
(a null is NaN), so a power of constants overflows to infinity instead of building a
huge integer, and the size of an expression is bounded (`MAX_CHARS`, `MAX_NODES`).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

__all__ = ["FUNCTIONS", "Expression", "ExpressionError", "parse_expression"]

MAX_CHARS = 2000
MAX_NODES = 400


class ExpressionError(ValueError):
    """An expression that is not allowed, with a message that says what to change."""


def _logistic(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _clip(x: Any, lo: Any, hi: Any) -> Any:
    return np.clip(np.asarray(x, dtype=float), lo, hi)


def _where(cond: Any, a: Any, b: Any) -> Any:
    return np.where(np.asarray(cond, dtype=bool), a, b)


# name -> (function, number of arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "exp": (np.exp, 1),
    "log": (np.log, 1),
    "log1p": (np.log1p, 1),
    "sqrt": (np.sqrt, 1),
    "abs": (np.abs, 1),
    "floor": (np.floor, 1),
    "ceil": (np.ceil, 1),
    "round": (np.round, 1),
    "logistic": (_logistic, 1),
    "clip": (_clip, 3),
    "where": (_where, 3),
    "minimum": (np.minimum, 2),
    "maximum": (np.maximum, 2),
}

CONSTANTS = {"pi": math.pi, "e": math.e}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its tree and the column names it reads."""

    text: str
    tree: ast.Expression
    columns: tuple[str, ...]

    def evaluate(self, values: Mapping[str, Any], n: int) -> np.ndarray:
        """The expression on `n` rows; `values` maps each column it reads to an array of n values
        (numbers as floats with NaN for null, categories as objects). Returns n floats."""
        with np.errstate(all="ignore"):
            out = _Evaluator(values).visit(self.tree.body)
            result = np.asarray(out, dtype=float)
        if result.ndim == 0:
            result = np.full(n, float(result))
        return result


def parse_expression(text: str, columns: Mapping[str, Any] | set[str] | list[str]) -> Expression:
    """Parse and check `text`; every name must be a column of `columns`, a constant or a function."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty; write one such as logistic(-2 + 0.05 * tenure)")
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"the expression is {len(text)} characters long; at most {MAX_CHARS} are accepted")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"the expression {text!r} does not parse: {exc.msg}") from exc
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ExpressionError(f"the expression has {len(nodes)} parts; at most {MAX_NODES} are accepted")
    known = set(columns)
    used: list[str] = []
    for node in nodes:
        _check_node(node, known, used)
    return Expression(text=text, tree=tree, columns=tuple(dict.fromkeys(used)))


def _check_node(node: ast.AST, known: set[str], used: list[str]) -> None:
    allowed_plain = (
        ast.Expression,
        ast.Load,
        ast.And,
        ast.Or,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.BoolOp,
        ast.UnaryOp,
        ast.Compare,
        ast.IfExp,
        *_BINARY,
        *_COMPARE,
    )
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ExpressionError(f"the operator {type(node.op).__name__} is not allowed; use + - * / // % **")
        return
    if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
        raise ExpressionError(f"the operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.Compare):
        bad = [type(op).__name__ for op in node.ops if type(op) not in _COMPARE]
        if bad:
            raise ExpressionError(f"the comparison {bad[0]} is not allowed; use < <= > >= == !=")
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool | int | float | str) and node.value is not None:
            return
        raise ExpressionError(f"the constant {node.value!r} is not allowed; use numbers, true/false or quoted text")
    if isinstance(node, ast.Name):
        if node.id in known:
            used.append(node.id)
            return
        if node.id in CONSTANTS:
            return
        if node.id in FUNCTIONS:
            return  # checked with its call
        raise ExpressionError(
            f"'{node.id}' is not a declared column; the expression may use the columns "
            f"{sorted(known)}, the constants pi and e, and the functions {sorted(FUNCTIONS)}"
        )
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExpressionError(f"'{shown}' is not an allowed function; use one of {sorted(FUNCTIONS)}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"{node.func.id}() takes positional arguments only")
        arity = FUNCTIONS[node.func.id][1]
        if len(node.args) != arity:
            raise ExpressionError(f"{node.func.id}() takes {arity} argument(s), got {len(node.args)}")
        return
    if isinstance(node, allowed_plain):
        return
    raise ExpressionError(
        f"{type(node).__name__} ({ast.unparse(node) if hasattr(node, 'lineno') else ''}) is not "
        "allowed in an expression: use numbers, column names, arithmetic, comparisons and the "
        f"functions {sorted(FUNCTIONS)}"
    )


class _Evaluator:
    """Evaluates a checked tree on arrays."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str) else np.float64(cast(Any, node.value))
        if isinstance(node, ast.Name):
            if node.id in self.values:
                return self.values[node.id]
            if node.id in CONSTANTS:
                return np.float64(CONSTANTS[node.id])
            raise ExpressionError(f"no values for '{node.id}'")
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](_number(self.visit(node.left)), _number(self.visit(node.right)))
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                return np.logical_not(np.asarray(operand, dtype=bool))
            return -_number(operand) if isinstance(node.op, ast.USub) else _number(operand)
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            result: Any = True
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self.visit(right_node)
                result = np.logical_and(result, _compare(_COMPARE[type(op)], left, right))
                left = right
            return result
        if isinstance(node, ast.BoolOp):
            parts = [np.asarray(self.visit(v), dtype=bool) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = parts[0]
            for p in parts[1:]:
                out = combine(out, p)
            return out
        if isinstance(node, ast.IfExp):
            return np.where(
                np.asarray(self.visit(node.test), dtype=bool),
                _number(self.visit(node.body)),
                _number(self.visit(node.orelse)),
            )
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            func = FUNCTIONS[node.func.id][0]
            return func(
                *(
                    _number(self.visit(a)) if node.func.id != "where" or i else self.visit(a)
                    for i, a in enumerate(node.args)
                )
            )
        raise ExpressionError(f"{type(node).__name__} is not allowed")  # pragma: no cover - refused by the check


def _number(v: Any) -> Any:
    if isinstance(v, str):
        raise ExpressionError(f"the text {v!r} can only be compared with (== or !=), not computed with")
    arr = np.asarray(v)
    if arr.dtype == object:
        try:
            return arr.astype(float)
        except (TypeError, ValueError) as exc:
            raise ExpressionError("a text column can only be compared with (== or !=), not computed with") from exc
    return arr.astype(float) if arr.dtype == bool else v


def _compare(op: Callable[[Any, Any], Any], left: Any, right: Any) -> Any:
    if (
        isinstance(left, str)
        or isinstance(right, str)
        or np.asarray(left).dtype == object
        or np.asarray(right).dtype == object
    ):
        if op not in (operator.eq, operator.ne):
            raise ExpressionError("text can only be compared with == or !=")
        la, ra = np.asarray(left, dtype=object), np.asarray(right, dtype=object)
        return op(la.astype(str), ra.astype(str)) if la.ndim or ra.ndim else op(str(left), str(right))
    return op(_number(left), _number(right))
