"""User objectives for the lab: ``module:callable`` or a NumPy expression in ``x`` and ``y``."""

from __future__ import annotations

import ast
import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import functions as fns
from .._spec import parse_kv, parse_spec
from .._validation import describe
from ..errors import ParameterError, ParameterTypeError
from ..train import central_difference_grad

__all__ = ["CustomObjective", "parse_kv", "resolve_function"]


def _bad(message: str, spec: Any) -> ParameterError:
    return ParameterError(f"function: {message}", owner="function", param="function", value=spec)


_NUMPY_NAMES = {
    "sin",
    "cos",
    "tan",
    "arctan",
    "arcsin",
    "arccos",
    "sinh",
    "cosh",
    "tanh",
    "exp",
    "log",
    "log1p",
    "expm1",
    "sqrt",
    "abs",
    "maximum",
    "minimum",
    "where",
    "pi",
    "e",
    "hypot",
    "sign",
    "square",
}


class CustomObjective:
    """A 2-D objective from user code; gradient by central differences unless one is given.

    It quacks like :class:`descend.functions.Objective` where the lab needs it: ``__call__``,
    ``grad``, ``value_and_grad``, ``grid``, ``start``, ``domain``, ``minima`` (empty: unknown).
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
        domain: Sequence[tuple[float, float]] = ((-3.0, 3.0), (-3.0, 3.0)),
        description: str = "",
    ):
        self.name = name
        self.dim = 2
        self._fun = fun
        self._grid_fun = grid_fun
        self._grad = grad
        self._start = np.array(start, dtype=np.float64)
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


def _check_expression(expr: str) -> ast.Expression:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise _bad(f"{expr!r} is not a valid expression in x and y ({exc.msg})", expr) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in {"x", "y", "np"} | _NUMPY_NAMES:
            raise _bad(
                f"unknown name {node.id!r} in {expr!r}; use x, y and numpy functions "
                f"({', '.join(sorted(_NUMPY_NAMES))})",
                expr,
            )
        if isinstance(node, ast.Attribute) and not (
            isinstance(node.value, ast.Name) and node.value.id == "np"
        ):
            raise _bad(f"only np.<name> attributes are allowed in {expr!r}", expr)
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp)):
            raise _bad(f"{expr!r} must be a plain arithmetic expression", expr)
    return tree


def resolve_function(
    spec: Any,
    *,
    start: Sequence[float] | None = None,
    domain: Sequence[tuple[float, float]] | None = None,
) -> Any:
    """An objective from a built-in name, ``"module:callable"``, a NumPy expression, or an object.

    A built-in takes parameters as ``"quadratic:kappa=50,dim=2"``. A bare word that is neither a
    built-in nor ``x``/``y`` is refused as an unknown function (with the closest name), never
    read as an expression.

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
    word = spec.strip().replace("-", "_")
    _, colon, rest = spec.partition(":")
    if spec in fns.names() or (word.isidentifier() and word not in {"x", "y"} | _NUMPY_NAMES):
        return fns.get(spec)  # a built-in, or an unknown name with the closest one suggested
    if colon and "=" in rest:
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
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise _bad(f"cannot import module {module_name!r}: {exc}", spec) from None
        obj = getattr(module, attr, None)
        if obj is None or not callable(obj):
            raise _bad(f"{module_name!r} has no callable {attr!r}", spec)
        grad = getattr(obj, "grad", None)
        return CustomObjective(
            spec,
            lambda p: obj(p),
            grad=grad if callable(grad) else None,
            description=f"{spec} (user code)",
            **kw,
        )
    tree = _check_expression(spec)
    code = compile(tree, "<function>", "eval")
    namespace: dict[str, Any] = {name: getattr(np, name) for name in _NUMPY_NAMES if hasattr(np, name)}
    namespace.update(np=np, pi=math.pi, e=math.e, __builtins__={})

    def grid_fun(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return eval(code, namespace, {"x": X, "y": Y})

    def fun(p: np.ndarray) -> float:
        return float(grid_fun(p[0], p[1]))

    probe = fun(np.asarray(start if start is not None else (1.0, 1.0), dtype=np.float64))
    if not math.isfinite(probe):
        raise _bad(f"{spec!r} is not finite at the start point", spec)
    return CustomObjective(spec, fun, grid_fun=grid_fun, description=f"f(x, y) = {spec}", **kw)
