"""Flatten parameter containers (an array, or nested list/tuple/dict of arrays) into leaves."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["flatten", "treedef_from_text", "treedef_to_text", "unflatten"]

# A treedef is a nested tuple: ("*",) for a leaf, ("list"|"tuple", children), ("dict", keys, children).
Treedef = tuple


class _NonStringKey(Exception):
    pass


def flatten(tree: Any, *, what: str = "params") -> tuple[list[Any], Treedef]:
    """Leaves in a fixed order (dicts by insertion order of keys) and the structure."""
    leaves: list[Any] = []

    # Optimizers flatten params and grads on every step, so the walk builds no path strings;
    # a bad key is located by a second, slower walk.
    def walk(node: Any) -> Treedef:
        if isinstance(node, dict):
            for k in node:
                if not isinstance(k, str):
                    raise _NonStringKey
            return ("dict", tuple(node), tuple([walk(v) for v in node.values()]))
        if isinstance(node, (list, tuple)):
            return ("list" if isinstance(node, list) else "tuple", tuple([walk(v) for v in node]))
        leaves.append(node)
        return _LEAF

    try:
        return leaves, walk(tree)
    except _NonStringKey:
        _raise_bad_key(tree, "", what)
        raise


def _raise_bad_key(node: Any, path: str, what: str) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                raise TypeError(f"{what}: dict keys must be strings, got {k!r} at {path or 'top'}")
            _raise_bad_key(v, f"{path}[{k!r}]", what)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            _raise_bad_key(v, f"{path}[{i}]", what)


_LEAF: Treedef = ("*",)


def unflatten(treedef: Treedef, leaves: list[Any]) -> Any:
    """Inverse of :func:`flatten`."""
    it = iter(leaves)

    def build(td: Treedef) -> Any:
        if td[0] == "*":
            return next(it)
        if td[0] == "dict":
            return {k: build(c) for k, c in zip(td[1], td[2], strict=True)}
        items = [build(c) for c in td[1]]
        return items if td[0] == "list" else tuple(items)

    return build(treedef)


def leaf_paths(treedef: Treedef) -> list[str]:
    """Readable location of each leaf, e.g. ``['W']`` or ``[0]`` (``''`` for a bare array)."""
    out: list[str] = []

    def walk(td: Treedef, path: str) -> None:
        if td[0] == "*":
            out.append(path)
        elif td[0] == "dict":
            for k, c in zip(td[1], td[2], strict=True):
                walk(c, f"{path}[{k!r}]")
        else:
            for i, c in enumerate(td[1]):
                walk(c, f"{path}[{i}]")

    walk(treedef, "")
    return out


def treedef_to_text(treedef: Treedef) -> str:
    """A stable text form of a structure, storable in an ``.npz`` without pickle."""
    return repr(treedef)


def treedef_from_text(text: str) -> Treedef:
    import ast

    value = ast.literal_eval(text)
    if not isinstance(value, tuple):
        raise ValueError(f"not a parameter structure: {text!r}")
    return value


def as_float_array(x: Any, *, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{what} must be a NumPy array (updated in place), got {type(x).__name__}; "
            "wrap scalars as np.array(value)"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{what} must have a floating dtype (float16/32/64), got {x.dtype}")
    return x
