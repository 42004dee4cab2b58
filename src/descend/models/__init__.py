"""Models with exact gradients: linear, logistic and softmax regression, and the MLP.

Every model maps a params dict and a batch ``(X, y)`` to the mean loss and its gradient
(:meth:`Model.loss_and_grad`); :func:`get` builds one by name, e.g. from ``Model.config()``.
"""

from __future__ import annotations

import inspect
from typing import Any

from .._validation import describe
from .base import Model
from .linear import LinearRegression, LogisticRegression, SoftmaxRegression
from .mlp import MLP

__all__ = [
    "MLP",
    "LinearRegression",
    "LogisticRegression",
    "Model",
    "SoftmaxRegression",
    "from_config",
    "get",
    "names",
]

_REGISTRY: dict[str, type[Model]] = {
    cls.name: cls for cls in (LinearRegression, LogisticRegression, SoftmaxRegression, MLP)
}


def names() -> list[str]:
    """Names accepted by :func:`get`, in a stable order."""
    return list(_REGISTRY)


def get(name: str, **kwargs: Any) -> Model:
    """Build the model registered as ``name`` (case-insensitive; ``-`` reads as ``_``) from ``kwargs``.

    >>> get("mlp", hidden=[16], output="binary", activation="tanh")
    MLP(hidden=(16,), activation='tanh', init='he', output='binary', l2=0.0, dtype='float32',
        leaky_slope=0.01)
    """
    key = name.lower().replace("-", "_") if isinstance(name, str) else None
    if key not in _REGISTRY:
        allowed = ", ".join(repr(n) for n in _REGISTRY)
        got = repr(name) if isinstance(name, str) else describe(name)
        raise ValueError(f"models.get: name must be one of {allowed}, got {got}")
    cls = _REGISTRY[key]
    accepted = list(inspect.signature(cls).parameters)
    unknown = [p for p in kwargs if p not in accepted]
    if unknown:
        raise TypeError(
            f"models.get: {key!r} takes parameters {', '.join(map(repr, accepted))}, "
            f"got {', '.join(map(repr, unknown))}"
        )
    return cls(**kwargs)


def from_config(config: dict[str, Any]) -> Model:
    """Rebuild a model from :meth:`Model.config` (``{"model": name, **hyperparameters}``).

    >>> config = get("logistic_regression", l2=0.1).config()
    >>> config
    {'model': 'logistic_regression', 'l2': 0.1, 'fit_intercept': True, 'dtype': 'float32'}
    >>> from_config(config)
    LogisticRegression(l2=0.1, fit_intercept=True, dtype='float32')
    """
    if not isinstance(config, dict) or "model" not in config:
        raise ValueError(
            f"models.from_config: config must be a dict with a 'model' key, got {describe(config)}"
        )
    kwargs = dict(config)
    return get(kwargs.pop("model"), **kwargs)
