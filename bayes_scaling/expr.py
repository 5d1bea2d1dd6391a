"""A safe expression language for scaling-law formulas.

A formula is parsed once with Python's :mod:`ast` and checked against a whitelist: numbers, declared
names, ``+ - * / **``, unary minus and plus, and calls of ``exp``, ``log``, ``log1p``, ``sqrt``,
``minimum``, ``maximum``. The checked tree is evaluated by one evaluator over two backends: numpy (for
predictions, optimisation and tests) and pytensor (inside the PyMC model).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

import numpy as np

from .errors import ExpressionError

__all__ = ["FUNCTIONS", "Expression", "ExpressionError"]

#: Allowed functions and their number of arguments.
FUNCTIONS: dict[str, int] = {"exp": 1, "log": 1, "log1p": 1, "sqrt": 1, "minimum": 2, "maximum": 2}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: lambda a: -a, ast.UAdd: lambda a: a}

_DESCRIBE = {
    ast.Attribute: "attribute access",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "comprehension",
    ast.Subscript: "indexing",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment",
    ast.Starred: "starred argument",
    ast.JoinedStr: "string",
}


def _backend(name: str) -> dict[str, Callable[..., Any]]:
    if name == "numpy":
        return {f: getattr(np, f) for f in FUNCTIONS}
    if name == "pytensor":
        import pytensor.tensor as pt

        return {f: getattr(pt, f) for f in FUNCTIONS}
    raise ValueError(f"unknown backend {name!r}; use 'numpy' or 'pytensor'")


@dataclass(frozen=True)
class Expression:
    """A checked formula: its text, its tree and the names it uses."""

    text: str
    tree: ast.expr
    names: frozenset[str]

    @cached_property
    def logged(self) -> frozenset[str]:
        """The names the formula takes only through ``log(name)``: given their logs (``evaluate``'s ``logs``),
        it needs no value of their own."""
        inside: set[str] = set()
        outside: set[str] = set()
        _name_uses(self.tree, inside, outside)
        return frozenset(inside - outside)

    @classmethod
    def parse(cls, text: str, names: Iterable[str] | None, *, what: str = "formula") -> Expression:
        """Parse ``text`` and check it; ``names`` are the only identifiers it may use (None: any, to find them)."""
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError(f"{what} must be a non-empty string, got {text!r}")
        allowed = None if names is None else frozenset(names)
        if len(text) > 2000:
            raise ExpressionError(f"{what} is {len(text)} characters long; the limit is 2000")
        try:
            tree = ast.parse(text.strip(), mode="eval").body
            used: set[str] = set()
            _check(tree, text.strip(), allowed, used, what)
            _fold(tree, text.strip(), what)
        except SyntaxError as err:
            col = (err.offset or 1) - 1
            raise ExpressionError(f"{what} {text!r}: syntax error at column {col}: {err.msg}") from None
        except (RecursionError, MemoryError):
            raise ExpressionError(f"{what} is nested too deeply") from None
        return cls(text.strip(), tree, frozenset(used))

    def evaluate(self, env: Mapping[str, Any], backend: str = "numpy", logs: Mapping[str, Any] | None = None) -> Any:
        """Evaluate with ``env`` giving a value for every name; ``backend`` is 'numpy' or 'pytensor'.
        ``logs`` gives ``log(name)`` of names whose log is known (data inside the model: computed once
        instead of at every evaluation of the log density)."""
        logs = logs or {}
        missing = self.names - set(env) - (self.logged & set(logs))
        if missing:
            raise ExpressionError(f"{self.text!r}: no value given for {', '.join(sorted(missing))}")
        return _eval(self.tree, env, _backend(backend), logs)

    def __str__(self) -> str:
        return self.text


def _fail(node: ast.AST, text: str, what: str, message: str) -> ExpressionError:
    col = getattr(node, "col_offset", 0)
    end = getattr(node, "end_col_offset", None) or col + 1
    token = text[col:end]
    return ExpressionError(f"{what} {text!r}: {message} at column {col}: `{token}`")


def _fold(node: ast.AST, text: str, what: str) -> Any:
    """The value of a part made of numbers only (None where a name appears); refuses one that is not finite,
    such as ``10**10**10`` or ``log(0)``, which would make every log density of the model infinite."""
    if isinstance(node, ast.Name):
        return None
    if isinstance(node, ast.Constant):
        value = np.float64(cast(float, node.value))
    else:
        children = (
            [node.left, node.right]
            if isinstance(node, ast.BinOp)
            else [node.operand]
            if isinstance(node, ast.UnaryOp)
            else list(cast(ast.Call, node).args)
        )
        values = [_fold(child, text, what) for child in children]
        if any(v is None for v in values):
            return None
        with np.errstate(all="ignore"):
            if isinstance(node, ast.BinOp):
                value = _BINOPS[type(node.op)](*values)
            elif isinstance(node, ast.UnaryOp):
                value = _UNARY[type(node.op)](*values)
            else:
                value = getattr(np, cast(ast.Name, cast(ast.Call, node).func).id)(*values)
    if not np.isfinite(value):
        raise _fail(node, text, what, f"this part made of numbers only is {value} (not finite)")
    return value


def _check(node: ast.AST, text: str, allowed: frozenset[str] | None, used: set[str], what: str) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _fail(node, text, what, f"only numbers are allowed as constants, not {type(node.value).__name__}")
        if isinstance(node.value, int) and abs(node.value) > 2**53:
            raise _fail(node, text, what, "integer constant too large (write it as a float, e.g. 1e30)")
    elif isinstance(node, ast.Name):
        if allowed is not None and node.id not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise _fail(node, text, what, f"unknown name {node.id!r} (known names: {known})")
        used.add(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise _fail(node, text, what, f"operator {type(node.op).__name__} is not allowed (use + - * / **)")
        _check(node.left, text, allowed, used, what)
        _check(node.right, text, allowed, used, what)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise _fail(node, text, what, f"unary operator {type(node.op).__name__} is not allowed")
        _check(node.operand, text, allowed, used, what)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise _fail(node.func, text, what, f"call of {name!r} is not allowed (functions: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise _fail(node, text, what, f"{node.func.id}() takes no keyword arguments")
        if len(node.args) != FUNCTIONS[node.func.id]:
            raise _fail(
                node, text, what, f"{node.func.id}() takes {FUNCTIONS[node.func.id]} argument(s), got {len(node.args)}"
            )
        for arg in node.args:
            _check(arg, text, allowed, used, what)
    else:
        kind = _DESCRIBE.get(type(node), type(node).__name__)
        raise _fail(node, text, what, f"{kind} is not allowed")


def _name_uses(node: ast.AST, inside: set[str], outside: set[str]) -> None:
    """Add to ``inside`` the names used as the whole argument of ``log(...)``, to ``outside`` those used
    anywhere else."""
    if isinstance(node, ast.Name):
        outside.add(node.id)
    elif isinstance(node, ast.Call):
        (first, *_) = node.args
        if cast(ast.Name, node.func).id == "log" and isinstance(first, ast.Name):
            inside.add(first.id)
        else:
            for arg in node.args:
                _name_uses(arg, inside, outside)
    else:
        for child in ast.iter_child_nodes(node):
            _name_uses(child, inside, outside)


def _eval(node: ast.AST, env: Mapping[str, Any], funcs: dict[str, Callable[..., Any]], logs: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return np.float64(cast(float, node.value))  # numpy arithmetic: 1/0 is inf, 10.0**400 is inf, neither raises
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, env, funcs, logs), _eval(node.right, env, funcs, logs))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, env, funcs, logs))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    (first, *_) = node.args
    if node.func.id == "log" and isinstance(first, ast.Name) and first.id in logs:
        return logs[first.id]
    return funcs[node.func.id](*(_eval(arg, env, funcs, logs) for arg in node.args))
