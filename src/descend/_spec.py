"""One parser for ``name:key=value,...`` specs (schedules, functions, ``--set``), lists included.

Values read as what they look like: ``3`` an int, ``1e-3`` and ``inf`` floats, ``true`` /
``false`` bools, ``none`` None, ``[100, 200]`` or ``(0.9, 0.99)`` tuples (nested as needed),
``'a,b'`` a quoted string, anything else a plain string. Commas inside brackets or quotes do
not split.
"""

from __future__ import annotations

from typing import Any

from .errors import ParameterError

__all__ = ["parse_kv", "parse_spec", "parse_value", "split_top"]

_OPEN, _CLOSE = "[(", "])"


def split_top(text: str, sep: str = ",", *, what: str = "value") -> list[str]:
    """Split ``text`` at ``sep`` outside brackets and quotes; refuse unbalanced brackets.

    >>> split_top("lr0=1,milestones=[100,200],gamma=0.5")
    ['lr0=1', 'milestones=[100,200]', 'gamma=0.5']
    """
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth < 0:
                raise ParameterError(
                    f"{what}: unbalanced {ch!r} in {text!r}", owner=what, param=what, value=text
                )
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise ParameterError(
            f"{what}: unclosed {'quote' if quote else 'bracket'} in {text!r}",
            owner=what,
            param=what,
            value=text,
        )
    parts.append(text[start:])
    return parts


def parse_value(text: str, *, what: str = "value") -> Any:
    """One value of a spec (see the module docstring).

    >>> parse_value("[100, 200]"), parse_value("1e-3"), parse_value("true"), parse_value("relu")
    ((100, 200), 0.001, True, 'relu')
    """
    t = text.strip()
    if t[:1] in _OPEN:
        if t[-1:] != _CLOSE[_OPEN.index(t[0])]:
            raise ParameterError(f"{what}: unclosed bracket in {t!r}", owner=what, param=what, value=t)
        inner = t[1:-1].strip()
        return tuple(parse_value(p, what=what) for p in split_top(inner, what=what)) if inner else ()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null", "~"):
        return None
    for convert in (int, float):
        try:
            return convert(t)
        except ValueError:
            pass
    return t


def parse_kv(text: str, *, what: str) -> dict[str, Any]:
    """``"a=1,b=[0.9, 0.99],c=true"`` -> ``{"a": 1, "b": (0.9, 0.99), "c": True}``.

    ``what`` names the flag or argument in error messages.

    >>> parse_kv("lr0=1,milestones=[100,200]", what="--schedule")
    {'lr0': 1, 'milestones': (100, 200)}
    """
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in split_top(text, what=what))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ParameterError(
                f"{what}: expected key=value, got {item!r}", owner=what, param=what, value=item
            )
        if key in out:
            raise ParameterError(
                f"{what}: {key!r} given twice in {text!r}", owner=what, param=key, value=text
            )
        out[key] = parse_value(value, what=what)
    return out


def parse_spec(spec: str, *, what: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value,..."`` (or a bare ``"name"``) -> ``(name, {key: value})``.

    >>> parse_spec("multi_step:lr0=1,milestones=[100,200]", what="schedule")
    ('multi_step', {'lr0': 1, 'milestones': (100, 200)})
    """
    name, _, rest = spec.strip().partition(":")
    if not name.strip():
        raise ParameterError(
            f"{what}: expected name:key=value,..., got {spec!r}", owner=what, param=what, value=spec
        )
    return name.strip(), parse_kv(rest, what=what)
