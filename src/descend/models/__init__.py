"""Models with exact gradients: linear, logistic and softmax regression, and the MLP.

Every model maps a params dict and a batch ``(X, y)`` to the mean loss and its gradient
(:meth:`Model.loss_and_grad`); :func:`get` builds one by name, e.g. from ``Model.config()``.
"""

from __future__ import annotations

from typing import Any

from .._registry import Registry, check_keywords
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

_REGISTRY: Registry[type[Model]] = Registry(
    "model",
    {cls.name: cls for cls in (LinearRegression, LogisticRegression, SoftmaxRegression, MLP)},
    owner="models.get",
    # the command line's short names
    aliases={
        "linear": "linear_regression",
        "logistic": "logistic_regression",
        "softmax": "softmax_regression",
    },
)


def names() -> list[str]:
    """Names accepted by :func:`get`, in a stable order."""
    return _REGISTRY.names()


def get(name: str, **kwargs: Any) -> Model:
    """Build the model registered as ``name`` (case-insensitive; ``-`` reads as ``_``; the short
    names ``linear``, ``logistic`` and ``softmax`` work too) from ``kwargs``.

    >>> get("mlp", hidden=[16], output="binary", activation="tanh")
    MLP(hidden=(16,), activation='tanh', init='he', output='binary', l2=0.0, dtype='float32',
        leaky_slope=0.01)
    """
    key = _REGISTRY.key(name)
    cls = _REGISTRY[key]
    check_keywords("models.get", repr(key), cls, kwargs)
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
