"""Look-up by name, written once: optimizers, schedules, functions, models and datasets.

Every registry normalises names the same way (case, ``-``, spaces) and refuses an unknown name
with the same message, which suggests the closest known name and lists them all::

    optimizer: unknown optimizer 'adamm'; did you mean 'adam'? known: sgd, momentum, ...
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from ._validation import describe
from .errors import ParameterTypeError, UnknownNameError

__all__ = ["Registry", "check_keywords", "closest", "normalize", "unknown_name"]

T = TypeVar("T")


def normalize(name: str) -> str:
    """The registry key of ``name``: trimmed, lower case, ``-`` and spaces read as ``_``.

    >>> normalize(" Six-Hump Camel ")
    'six_hump_camel'
    """
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name nearest to ``name`` (difflib's ratio), or ``None`` when none is near."""
    known = list(known)
    if not isinstance(name, str):
        return None
    key = normalize(name)
    hits = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if hits:
        return hits[0]
    # a prefix is a strong hint even where the ratio is low ("rosen" -> "rosenbrock")
    starts = [k for k in known if len(key) >= 3 and k.startswith(key)]
    return starts[0] if len(starts) == 1 else None


def unknown_name(
    owner: str,
    kind: str,
    name: Any,
    known: Iterable[str],
    *,
    param: str = "name",
    also: Iterable[str] = (),
) -> UnknownNameError:
    """The error for an unknown ``name`` of ``kind``: suggestion and the known names (the
    suggestion may also be one of ``also``, such as a registry's aliases).

    >>> print(unknown_name("functions.get", "function", "rosenbrok", ["beale", "rosenbrock"]))
    functions.get: unknown function 'rosenbrok'; did you mean 'rosenbrock'? known: beale, rosenbrock
    """
    known = list(known)
    suggestion = closest(name, [*known, *also]) if isinstance(name, str) else None
    got = repr(name) if isinstance(name, str) else describe(name)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ";"
    return UnknownNameError(
        f"{owner}: unknown {kind} {got}{hint} known: {', '.join(known)}",
        owner=owner,
        kind=kind,
        value=name,
        known=known,
        suggestion=suggestion,
        param=param,
    )


def check_keywords(owner: str, what: str, fn: Any, kwargs: Mapping[str, Any]) -> None:
    """Refuse keyword arguments that ``fn`` does not take, naming what it takes.

    >>> def cosine(lr0, total_steps, lr_min=0.0): ...
    >>> check_keywords("schedules.get", "'cosine'", cosine, {"lr0": 1, "total_step": 9})
    Traceback (most recent call last):
    ...
    descend.errors.ParameterTypeError: schedules.get: 'cosine' takes parameters 'lr0', 'total_steps', \
'lr_min', got 'total_step'; did you mean 'total_steps'?
    """
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = [k for k in kwargs if k not in accepted]
    if not unknown:
        return
    takes = "parameters " + ", ".join(map(repr, accepted)) if accepted else "no parameters"
    near = closest(unknown[0], accepted)
    hint = f"; did you mean {near!r}?" if near else ""
    raise ParameterTypeError(
        f"{owner}: {what} takes {takes}, got {', '.join(map(repr, unknown))}{hint}",
        owner=owner,
        param=unknown[0],
        value=kwargs[unknown[0]],
    )


class Registry(Generic[T]):
    """Named entries of one kind, looked up with :func:`normalize` and refused with
    :func:`unknown_name`. ``aliases`` map extra names onto entries (``"logistic"`` for
    ``"logistic_regression"``); :meth:`names` lists only the entries.

    >>> r = Registry("colour", {"dark_red": 1, "blue": 2}, owner="paint", aliases={"crimson": "dark_red"})
    >>> r["Dark-Red"], r["crimson"], "BLUE" in r
    (1, 1, True)
    >>> r["blu"]
    Traceback (most recent call last):
    ...
    descend.errors.UnknownNameError: paint: unknown colour 'blu'; did you mean 'blue'? known: dark_red, blue
    """

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, T],
        *,
        owner: str,
        aliases: Mapping[str, str] | None = None,
    ):
        self.kind = kind
        self.owner = owner
        self._entries = {normalize(k): v for k, v in entries.items()}
        self._aliases = {normalize(a): normalize(k) for a, k in (aliases or {}).items()}
        missing = [a for a, k in self._aliases.items() if k not in self._entries]
        if missing:  # pragma: no cover - a programming error in a registry table
            raise KeyError(f"{kind} aliases point nowhere: {missing}")

    def add(self, name: str, entry: T) -> str:
        """Register ``entry`` as ``name`` (normalised); a name already taken raises ``ValueError``.

        >>> r = Registry("colour", {"blue": 2}, owner="paint")
        >>> r.add("Dark Red", 1), r.names()
        ('dark_red', ['blue', 'dark_red'])
        >>> r.add("BLUE", 3)
        Traceback (most recent call last):
        ...
        ValueError: paint: a colour named 'blue' is already registered
        """
        key = normalize(name)
        if not key:
            raise ValueError(f"{self.owner}: a {self.kind} name must not be empty, got {name!r}")
        if key in self._entries or key in self._aliases:
            raise ValueError(f"{self.owner}: a {self.kind} named {key!r} is already registered")
        self._entries[key] = entry
        return key

    def remove(self, name: str) -> T:
        """Take the entry registered as ``name`` out (with the aliases pointing to it); returns it."""
        key = self.key(name)
        self._aliases = {a: k for a, k in self._aliases.items() if k != key}
        return self._entries.pop(key)

    def names(self) -> list[str]:
        """The registered names, in registration order (aliases left out)."""
        return list(self._entries)

    def key(self, name: Any, *, owner: str | None = None, param: str = "name") -> str:
        """The canonical name of ``name``; an unknown name raises :class:`UnknownNameError`."""
        if isinstance(name, str):
            k = normalize(name)
            k = self._aliases.get(k, k)
            if k in self._entries:
                return k
        raise unknown_name(
            owner or self.owner, self.kind, name, self.names(), param=param, also=self._aliases
        )

    def lookup(self, name: Any, *, owner: str | None = None, param: str = "name") -> T:
        """The entry registered as ``name`` (see :meth:`key`)."""
        return self._entries[self.key(name, owner=owner, param=param)]

    def __getitem__(self, name: Any) -> T:
        return self.lookup(name)

    def get(self, name: Any, default: Any = None) -> Any:
        return self.lookup(name) if name in self else default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        k = normalize(name)
        return self._aliases.get(k, k) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
