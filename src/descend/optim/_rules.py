"""The registry of update rules: one entry per name, the whole truth about that rule.

An entry holds the rule's class, the keyword arguments its name stands for (``"amsgrad"`` is
``Adam(amsgrad=True)``) and the facts other code reads about the rule: the lr ``fit`` and the
sklearn estimators use when given none, the lr a race uses, its colour and marker in drawings.
The class states each fact itself (class attributes, documented on
:class:`~descend.optim.Optimizer`) or the entry gives it. A missing fact, or a colour another
rule already has, fails at registration, naming the rule and the fact, so no table elsewhere
holds a copy of these numbers or a fallback for a rule it does not know.

Every look-up by name (``ds.optimizer``, ``ds.optim.get``, ``fit(optimizer=...)``, the
estimators, races, drawings, the CLI) goes through :func:`rule`, which reads names with
:func:`descend._registry.normalize`: ``" Adam"``, ``"ADAM"`` and ``"adam"`` are one rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .._registry import Registry, normalize
from .._validation import check_real, describe
from .base import Optimizer

__all__ = ["FACTS", "Rule", "names", "register", "rule", "unregister"]

#: the facts every rule states, and what each is for (the text of the error when one is missing)
FACTS: dict[str, str] = {
    "fit_lr": "the lr fit() and the sklearn estimators use when given none (one that trains "
    "standardized data well)",
    "race_lr": "the lr a race uses when given none (one that moves visibly but stably on the "
    "built-in 2-D surfaces)",
    "color": "its colour in every drawing ('#rrggbb', distinct from every other rule's)",
    "marker": "its matplotlib marker in every drawing",
}

_HEX = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class Rule:
    """One registry entry: what the name ``name`` builds, and the facts about that rule.

    >>> import descend as ds
    >>> r = ds.optim.rule(" AMSGrad")
    >>> r.name, r.cls.__name__, dict(r.preset), r.fit_lr, r.race_lr
    ('amsgrad', 'Adam', {'amsgrad': True}, 0.003, 0.05)
    """

    name: str
    cls: type[Optimizer]
    #: keyword arguments the name stands for, under those given to :meth:`make`
    preset: Mapping[str, Any]
    fit_lr: float
    race_lr: float
    color: str
    marker: str

    def make(self, **kwargs: Any) -> Optimizer:
        """The optimizer this name builds, with ``kwargs`` over the preset."""
        return self.cls(**{**self.preset, **kwargs})


_RULES: Registry[Rule] = Registry("optimizer", {}, owner="optimizer")


def _missing(name: str, cls: type, facts: list[str]) -> ValueError:
    lines = [
        f"optimizer registry: rule {name!r} ({cls.__module__}.{cls.__qualname__}) does not state "
        + ", ".join(facts)
        + ":"
    ]
    lines += [f"  {f}: {FACTS[f]}" for f in facts]
    lines.append(
        f"set them on the class ({cls.__qualname__}.{facts[0]} = ...) or give them to its registry "
        f"entry (register({cls.__qualname__}, {facts[0]}=...) in src/descend/optim/__init__.py); "
        "a subclass does not inherit its parent's"
    )
    return ValueError("\n".join(lines))


def register(
    cls: type[Optimizer],
    name: str | None = None,
    *,
    preset: Mapping[str, Any] | None = None,
    **facts: Any,
) -> Rule:
    """Register ``cls`` under ``name`` (default ``cls.name``) and return its entry.

    ``preset``: keyword arguments the name stands for. ``facts`` (``fit_lr``, ``race_lr``,
    ``color``, ``marker``) override what the class states; every fact must come from one of
    the two (see :data:`FACTS`), and the colour must be free.
    """
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"optimizer registry: expected an Optimizer subclass, got {describe(cls)}")
    if name is None:
        name = cls.name
        if not name:
            raise ValueError(
                f"optimizer registry: {cls.__qualname__} has no name: set {cls.__qualname__}.name "
                "(the name its states carry) or give the entry one"
            )
    if not isinstance(name, str):
        raise TypeError(f"optimizer registry: a rule's name must be a str, got {describe(name)}")
    name = normalize(name)
    if name in _RULES:
        raise ValueError(
            f"optimizer registry: {name!r} is already registered "
            f"({_RULES[name].cls.__qualname__}); pick another name"
        )
    unknown = sorted(set(facts) - set(FACTS))
    if unknown:
        raise TypeError(
            f"optimizer registry: rule {name!r}: unknown facts {unknown}; the facts are {list(FACTS)}"
        )
    # a fact is the entry's, or the class's own: never inherited from a parent rule
    found = {f: facts[f] if f in facts else vars(cls).get(f) for f in FACTS}
    missing = [f for f, v in found.items() if v is None]
    if missing:
        raise _missing(name, cls, missing)
    owner = f"optimizer registry: rule {name!r}"
    fit_lr = check_real(owner, "fit_lr", found["fit_lr"], low=0.0, low_open=True)
    race_lr = check_real(owner, "race_lr", found["race_lr"], low=0.0, low_open=True)
    color, marker = found["color"], found["marker"]
    if not (isinstance(color, str) and _HEX.fullmatch(color)):
        raise ValueError(f"{owner}: color must be a '#rrggbb' string, got {describe(color)}")
    if not (isinstance(marker, str) and marker):
        raise ValueError(f"{owner}: marker must be a matplotlib marker string, got {describe(marker)}")
    taken = {_RULES[n].color.lower(): n for n in _RULES}
    if color.lower() in taken:
        raise ValueError(
            f"{owner}: color {color!r} is already rule {taken[color.lower()]!r}'s; every rule has "
            f"its own colour, taken: {', '.join(sorted(taken))}"
        )
    preset = MappingProxyType(dict(preset or {}))
    entry = Rule(name, cls, preset, fit_lr, race_lr, color, marker)
    entry.make()  # the preset and the class defaults build a valid optimizer
    _RULES.add(entry.name, entry)
    return entry


def unregister(name: str) -> Rule:
    """Take the entry ``name`` out of the registry (tests that add a rule for a while)."""
    return _RULES.remove(name)


def rule(name: Any, *, owner: str | None = None, param: str = "name") -> Rule:
    """The entry registered as ``name`` (case, spaces and ``-`` do not matter); an unknown name
    raises :class:`~descend.errors.UnknownNameError` with the closest known name."""
    return _RULES.lookup(name, owner=owner, param=param)


def names() -> list[str]:
    """The registered names, in registration order."""
    return _RULES.names()
