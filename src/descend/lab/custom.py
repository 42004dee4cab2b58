"""User objectives for the lab: ``module:callable`` or a NumPy expression in ``x`` and ``y``."""

from __future__ import annotations

import ast
import importlib
import math
import operator
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import functions as fns
from .._spec import parse_kv, parse_spec
from .._validation import describe
from ..errors import ParameterError, ParameterTypeError
from ..train import central_difference_grad

__all__ = ["CustomObjective", "compile_expression", "parse_kv", "resolve_function"]


def _bad(message: str, spec: Any) -> ParameterError:
    return ParameterError(f"function: {message}", owner="function", param="function", value=spec)


#: longest function spec accepted, in characters; longer text is refused before it is parsed
MAX_EXPRESSION_LENGTH = 2_000
#: deepest bracket nesting accepted, counted by a character scan before parsing: the parser
#: recurses on brackets, and pathological nesting exhausts its stack
MAX_NESTING = 50
#: deepest syntax tree accepted: operators nest without brackets too (``------x``, ``x**x**x``),
#: and both the check and the evaluation recurse once per level
MAX_TREE_DEPTH = 100

#: what an expression may call: name -> (the NumPy function, its number of arguments). The count
#: is fixed because a ufunc reads one more positional argument as ``out``: sin(x, y) would
#: overwrite y.
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "sin": (np.sin, 1),
    "cos": (np.cos, 1),
    "tan": (np.tan, 1),
    "arcsin": (np.arcsin, 1),
    "arccos": (np.arccos, 1),
    "arctan": (np.arctan, 1),
    "sinh": (np.sinh, 1),
    "cosh": (np.cosh, 1),
    "tanh": (np.tanh, 1),
    "arcsinh": (np.arcsinh, 1),
    "arccosh": (np.arccosh, 1),
    "arctanh": (np.arctanh, 1),
    "exp": (np.exp, 1),
    "exp2": (np.exp2, 1),
    "expm1": (np.expm1, 1),
    "log": (np.log, 1),
    "log2": (np.log2, 1),
    "log10": (np.log10, 1),
    "log1p": (np.log1p, 1),
    "sqrt": (np.sqrt, 1),
    "cbrt": (np.cbrt, 1),
    "square": (np.square, 1),
    "abs": (np.abs, 1),
    "sign": (np.sign, 1),
    "floor": (np.floor, 1),
    "ceil": (np.ceil, 1),
    "arctan2": (np.arctan2, 2),
    "hypot": (np.hypot, 2),
    "maximum": (np.maximum, 2),
    "minimum": (np.minimum, 2),
    "where": (np.where, 3),
    "clip": (np.clip, 3),
}
_CONSTANTS: dict[str, np.float64] = {"pi": np.float64(np.pi), "e": np.float64(np.e)}
#: every name an expression may use besides x and y (``np.sin`` is read as ``sin``)
_NUMPY_NAMES = frozenset(_FUNCTIONS) | frozenset(_CONSTANTS)


class CustomObjective:
    """An objective from user code, in as many dimensions as its start point has coordinates
    (2 by default); gradient by central differences unless one is given.

    It quacks like :class:`descend.functions.Objective` where the lab needs it: ``__call__``,
    ``grad``, ``value_and_grad``, ``grid`` (2-D only), ``start``, ``domain``, ``minima`` (empty:
    unknown).
    """

    log_scale = False
    minimum_value = None

    def __init__(
        self,
        name: str,
        fun: Callable[[np.ndarray], float],
        *,
        grid_fun: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        grad: Callable[[np.ndarray], np.ndarray] | None = None,
        start: Sequence[float] = (1.0, 1.0),
        domain: Sequence[tuple[float, float]] | None = None,
        description: str = "",
    ):
        self.name = name
        self._fun = fun
        self._grid_fun = grid_fun
        self._grad = grad
        self._start = np.array(start, dtype=np.float64).reshape(-1)
        self.dim = self._start.size
        if domain is None:
            domain = [(-3.0, 3.0)] * self.dim
        self.domain = tuple((float(a), float(b)) for a, b in domain)
        self.description = description or name
        self.grad_method = "analytic" if grad is not None else "central differences"
        self.minima: list[np.ndarray] = []
        self.global_minima: list[np.ndarray] = []
        self.params: dict[str, Any] = {}

    @property
    def start(self) -> np.ndarray:
        return self._start.copy()

    def __call__(self, x: Any) -> float:
        return float(self._fun(np.asarray(x, dtype=np.float64)))

    def grad(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._grad is not None:
            return np.asarray(self._grad(x), dtype=np.float64)
        return central_difference_grad(self._fun, x)

    def value_and_grad(self, x: Any) -> tuple[float, np.ndarray]:
        return self(x), self.grad(x)

    def grid(self, X: Any, Y: Any) -> np.ndarray:
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        if self._grid_fun is not None:
            return np.broadcast_to(np.asarray(self._grid_fun(X, Y), dtype=np.float64), X.shape).copy()
        flat = [self._fun(np.array([a, b])) for a, b in zip(X.ravel(), Y.ravel(), strict=True)]
        return np.asarray(flat, dtype=np.float64).reshape(X.shape)

    def nearest_minimum(self, x: Any) -> tuple[np.ndarray, float]:
        raise ValueError(f"{self.name}: no known minima")


_Node = Callable[[Any, Any], Any]  # (x, y) -> value of one node of an expression

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_SYMBOLS = {
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.Not: "not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
#: how a refusal names the syntax the evaluator does not have (anything else: by its node type)
_REFUSED = {
    ast.Subscript: "a subscript ('[...]')",
    ast.Slice: "a subscript ('[...]')",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "assignment (':=')",
    ast.Starred: "a starred argument ('*')",
    ast.BoolOp: "'and' / 'or' (use where(condition, a, b))",
    ast.IfExp: "'a if condition else b' (use where(condition, a, b))",
    ast.Tuple: "a tuple",
    ast.List: "a list",
    ast.Set: "a set",
    ast.Dict: "a dict",
}
_ALLOWED = (
    "allowed: numbers, x, y, + - * / // % **, comparisons (< <= > >= == !=), and the names "
    + ", ".join(sorted(_NUMPY_NAMES))
    + " (np.<name> is read as <name>)"
)


def _shown(expr: str) -> str:
    return repr(expr) if len(expr) <= 80 else f"{expr[:60]!r}... ({len(expr)} characters)"


def _refuse(what: str, expr: str) -> ParameterError:
    return _bad(f"{what} is not allowed in an expression ({_shown(expr)}); {_ALLOWED}", expr)


def _parse_expression(expr: str) -> ast.Expression:
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise _bad(f"{_shown(expr)} is longer than the {MAX_EXPRESSION_LENGTH} characters allowed", expr)
    depth = deepest = 0
    for ch in expr:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        raise _bad(f"{_shown(expr)} nests brackets {deepest} deep; at most {MAX_NESTING} are allowed", expr)
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise _bad(f"{_shown(expr)} is not a valid expression in x and y ({exc.msg})", expr) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise _bad(f"{_shown(expr)} cannot be parsed ({type(exc).__name__}: {exc})", expr) from None
    # iterative, so that the recursive compilation below only ever meets a shallow tree
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        if level > MAX_TREE_DEPTH:
            raise _bad(f"{_shown(expr)} nests operations more than {MAX_TREE_DEPTH} deep", expr)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return tree


def _is_np(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "np"


def _name(name: str, expr: str) -> _Node:
    if name == "x":
        return lambda x, y: x
    if name == "y":
        return lambda x, y: y
    if name in _CONSTANTS:
        value = _CONSTANTS[name]
        return lambda x, y: value
    if name in _FUNCTIONS:
        raise _bad(f"{name!r} is a function: call it, as in {name}(x) (in {_shown(expr)})", expr)
    raise _bad(f"unknown name {name!r} in {_shown(expr)}; {_ALLOWED}", expr)


def _callee(node: ast.expr, expr: str) -> str:
    if isinstance(node, ast.Name):
        if node.id in _FUNCTIONS:
            return node.id
        _name(node.id, expr)  # refuses an unknown name as such
        raise _refuse(f"calling {node.id!r}", expr)
    if isinstance(node, ast.Attribute):
        if _is_np(node) and node.attr in _FUNCTIONS:
            return node.attr
        raise _refuse(f"attribute access '.{node.attr}'", expr)
    raise _refuse(_REFUSED.get(type(node), "a call of anything but a function's name"), expr)


def _compile(node: ast.AST, expr: str) -> _Node:
    """``node`` as a closure of ``(x, y)``; any syntax not named here is refused."""
    if isinstance(node, ast.Expression):
        return _compile(node.body, expr)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            what = "a string literal" if isinstance(value, (str, bytes)) else f"the literal {value!r}"
            raise _refuse(what, expr)
        try:
            # float64 only: 10**10**10 is then inf at once, never a Python integer of 10**10 digits
            number = np.float64(float(value))
        except OverflowError:
            raise _bad(f"the number {str(value)[:20]}... in {_shown(expr)} is too large", expr) from None
        return lambda x, y: number
    if isinstance(node, ast.Name):
        return _name(node.id, expr)
    if isinstance(node, ast.Attribute):
        if _is_np(node) and node.attr in _NUMPY_NAMES:
            return _name(node.attr, expr)  # a constant, or refused as a function not called
        raise _refuse(f"attribute access '.{node.attr}'", expr)
    if isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise _refuse(f"the operator {_SYMBOLS.get(type(node.op), '?')!r}", expr)
        unary, operand = _UNARY[type(node.op)], _compile(node.operand, expr)
        return lambda x, y: unary(operand(x, y))
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _refuse(f"the operator {_SYMBOLS.get(type(node.op), '?')!r}", expr)
        binary = _BINARY[type(node.op)]
        left, right = _compile(node.left, expr), _compile(node.right, expr)
        return lambda x, y: binary(left(x, y), right(x, y))
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise _refuse(f"the operator {_SYMBOLS.get(type(op), '?')!r}", expr)
        terms = [_compile(t, expr) for t in (node.left, *node.comparators)]
        compares = [_COMPARE[type(op)] for op in node.ops]

        def compare(x: Any, y: Any) -> Any:
            # a < b < c elementwise: Python's chaining would ask an array for one truth value
            values = [t(x, y) for t in terms]
            result = compares[0](values[0], values[1])
            for k in range(1, len(compares)):
                result = np.logical_and(result, compares[k](values[k], values[k + 1]))
            return result

        return compare
    if isinstance(node, ast.Call):
        fname = _callee(node.func, expr)
        for kw in node.keywords:
            what = f"a keyword argument ('{kw.arg}=')" if kw.arg else "a '**' argument"
            raise _refuse(what, expr)
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise _refuse(_REFUSED[ast.Starred], expr)
        fn, arity = _FUNCTIONS[fname]
        if len(node.args) != arity:
            raise _bad(
                f"{fname} takes {arity} argument{'s' * (arity > 1)}, got {len(node.args)} in {_shown(expr)}",
                expr,
            )
        args = [_compile(a, expr) for a in node.args]
        if arity == 1:
            (a,) = args
            return lambda x, y: fn(a(x, y))
        if arity == 2:
            a, b = args
            return lambda x, y: fn(a(x, y), b(x, y))
        return lambda x, y: fn(*[a(x, y) for a in args])
    raise _refuse(_REFUSED.get(type(node), f"the syntax {type(node).__name__}"), expr)


def compile_expression(expr: str) -> Callable[[Any, Any], Any]:
    """``f(x, y)`` for an arithmetic expression, which can run no code but arithmetic.

    The text is parsed with :mod:`ast` and every node is checked and turned into a closure; it is
    never given to ``eval`` and never sees a namespace. Allowed: numbers (read as float64), the
    names ``x`` and ``y``, the operators ``+ - * / // % **``, comparisons, and calls, with
    positional arguments, of a fixed set of NumPy functions and constants (``sin`` or ``np.sin``).
    Anything else (attributes, subscripts, strings, keyword arguments, lambdas, ...) and text
    longer than :data:`MAX_EXPRESSION_LENGTH` or nested deeper than :data:`MAX_NESTING` brackets
    or :data:`MAX_TREE_DEPTH` operations is refused with a :class:`~descend.errors.ParameterError`.

    >>> f = compile_expression("x**2 + where(y > 0, y, -y)")
    >>> float(f(3.0, -2.0))
    11.0
    >>> compile_expression("x.__class__")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    descend.errors.ParameterError: function: attribute access '.__class__' is not allowed ...
    """
    return _compile(_parse_expression(expr), expr)


def _import_user_module(name: str, spec: str) -> Any:
    """Import the module a user named, looking in the current directory first, as ``python -m``
    and ``python script.py`` do (the ``descend`` script's own directory is not the user's)."""
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise _bad(f"cannot import module {name!r} (looked in {here} and on sys.path): {exc}", spec) from None
    finally:
        if added:
            sys.path.remove(here)


def _user_objective(
    spec: str, fun: Callable[..., Any], start: Sequence[float] | None, domain: Any
) -> CustomObjective:
    """A plain callable ``f(x) -> float`` as an objective, in the dimension it is for: that of
    ``start`` when given, else that of ``f.start`` or ``f.dim`` when ``f`` declares them, else 2
    when ``f`` takes 2-D points only. A callable that takes points of any length, or none of
    length 2, is refused: its dimension is unknown and racing it in 2-D would be a guess."""
    declared_start = getattr(fun, "start", None)
    declared_dim = getattr(fun, "dim", None)
    if start is None and declared_start is not None:
        start = np.asarray(declared_start, dtype=np.float64).reshape(-1).tolist()
    if start is None and declared_dim is not None:
        raise _bad(
            f"{spec} declares dim={declared_dim!r} but no start point: give start=[...] with "
            f"{declared_dim} coordinates, or set {spec.split(':')[1]}.start",
            spec,
        )
    if start is not None and declared_dim is not None and len(start) != declared_dim:
        raise ParameterError(
            f"function: {spec} declares dim={declared_dim}, so start must have {declared_dim} "
            f"coordinates, got {len(start)}",
            owner="function",
            param="start",
            value=list(start),
        )
    if start is None:
        takes = [n for n in (2, 3) if _evaluates(fun, np.ones(n))]
        if takes == [2, 3]:
            raise _bad(
                f"{spec} takes points of any length, so its dimension is unknown: give a start point, "
                f"start=[...] with one coordinate per dimension, or set {spec.split(':')[1]}.start",
                spec,
            )
        if not takes:
            why = _evaluates(fun, np.ones(2), reason=True)
            raise _bad(
                f"{spec} cannot be evaluated at the 2-D point [1.0, 1.0] ({why}): give a start point, "
                f"start=[...] with one coordinate per dimension, or set {spec.split(':')[1]}.start",
                spec,
            )
        start = [1.0, 1.0]
    probe = _evaluates(fun, np.asarray(start, dtype=np.float64), reason=True)
    if probe is not True:
        raise _bad(f"{spec} cannot be evaluated at the start point {list(start)}: {probe}", spec)
    grad = getattr(fun, "grad", None)
    return CustomObjective(
        spec,
        lambda p: fun(p),
        grad=grad if callable(grad) else None,
        start=start,
        domain=domain,
        description=f"{spec} (user code)",
    )


def _evaluates(fun: Callable[..., Any], x: np.ndarray, reason: bool = False) -> Any:
    """Whether ``fun(x)`` gives a finite number (or, with ``reason``, what went wrong)."""
    try:
        with np.errstate(all="ignore"):
            value = float(fun(x.copy()))
    except Exception as exc:  # user code: any failure means "not at this point"
        return f"{type(exc).__name__}: {exc}" if reason else False
    if not math.isfinite(value):
        return f"f = {value}" if reason else False
    return True


def resolve_function(
    spec: Any,
    *,
    start: Sequence[float] | None = None,
    domain: Sequence[tuple[float, float]] | None = None,
    allow_import: bool = True,
) -> Any:
    """An objective from a built-in name, ``"module:callable"``, a NumPy expression, or an object.

    A built-in takes parameters as ``"quadratic:kappa=50,dim=2"``. A bare word that is neither a
    built-in nor ``x``/``y`` is refused as an unknown function (with the closest name), never
    read as an expression. An expression runs no code but arithmetic (see
    :func:`compile_expression`). ``module:callable`` imports the module, so it is for specs the
    user typed: ``allow_import=False`` refuses it, for specs read from a file someone else may
    have written (a run folder's ``config.yaml``).

    >>> f = resolve_function("x**2 + 3*y**2", start=(1.0, 1.0))
    >>> f([1.0, 2.0]), f.grad_method
    (13.0, 'central differences')
    """
    if not isinstance(spec, str):
        if callable(spec):
            return spec
        raise ParameterTypeError(
            f"function: expected a name, module:callable or expression, got {describe(spec)}",
            owner="function",
            param="function",
            value=spec,
        )
    if len(spec) > MAX_EXPRESSION_LENGTH:
        raise _bad(f"{_shown(spec)} is longer than the {MAX_EXPRESSION_LENGTH} characters allowed", spec)
    word = spec.strip().replace("-", "_")
    # "six-hump-camel" is a name written with hyphens; "x-y" is a difference
    hyphened = spec.strip().split("-")
    difference = len(hyphened) > 1 and all(part in {"x", "y"} | _NUMPY_NAMES for part in hyphened)
    _, colon, rest = spec.partition(":")
    if spec in fns.names() or (
        word.isidentifier() and not difference and word not in {"x", "y"} | _NUMPY_NAMES
    ):
        return fns.get(spec)  # a built-in, or an unknown name with the closest one suggested
    if colon and "=" in rest and ":=" not in spec:  # ':=' is an expression's walrus, refused there
        # a built-in with parameters: "quadratic:kappa=50,dim=2"
        fname, params = parse_spec(spec, what="function")
        return fns.get(fname, **params)
    kw: dict[str, Any] = {}
    if start is not None:
        kw["start"] = start
    if domain is not None:
        kw["domain"] = domain
    if ":" in spec and all(part.strip().isidentifier() or "." in part for part in spec.split(":", 1)):
        module_name, attr = spec.split(":", 1)
        if not allow_import:
            raise _bad(
                f"{spec!r} names Python code to import (module:callable), which is not allowed "
                "here: a spec read from a run folder is never imported, as anyone may have written "
                f"it; allowed: built-in functions and arithmetic expressions (run `descend race "
                f"{spec!r}` yourself to race your own code)",
                spec,
            )
        module = _import_user_module(module_name, spec)
        obj = getattr(module, attr, None)
        if obj is None or not callable(obj):
            raise _bad(f"{module_name!r} has no callable {attr!r}", spec)
        if isinstance(obj, fns.Objective):  # a built-in made in user code: its own dim, start, minima
            return obj
        return _user_objective(spec, obj, start, domain)
    grid_fun = compile_expression(spec)
    if start is not None and len(start) != 2:
        raise ParameterError(
            f"function: {_shown(spec)} is a function of x and y, so start must have 2 coordinates, "
            f"got {len(start)}",
            owner="function",
            param="start",
            value=list(start),
        )

    def fun(p: np.ndarray) -> float:
        return float(grid_fun(p[0], p[1]))

    try:
        # quietly: an overflow here is reported as the refusal below, not as a warning first
        with np.errstate(all="ignore"):
            probe = fun(np.asarray(start if start is not None else (1.0, 1.0), dtype=np.float64))
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise _bad(f"{_shown(spec)} cannot be evaluated at the start point: {exc}", spec) from None
    if not math.isfinite(probe):
        raise _bad(f"{_shown(spec)} is not finite at the start point", spec)
    return CustomObjective(spec, fun, grid_fun=grid_fun, description=f"f(x, y) = {spec}", **kw)
