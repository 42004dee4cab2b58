"""Update rules: one small class each, explicit state, in-place steps (PyTorch's formulas).

Registry
--------
Each name (``ds.optim.names()``) has one entry (``ds.optim.rule(name)``): the class, the
keyword arguments the name stands for, and the rule's facts that other code reads: ``fit_lr``
(``fit`` and the sklearn estimators, when given no lr), ``race_lr`` (races), ``color`` and
``marker`` (drawings). A rule is its file plus one ``register(...)`` line below, its facts
stated on its class; one left out fails at import, naming the rule and the fact. Names are read
by :func:`descend._registry.normalize` wherever they are looked up.

Speed
-----
Every rule has two implementations of its update, tested equal: a readable NumPy reference
(``_update``, built from the moment averages and bias correction in ``_blocks``) and a fused
kernel (``_kernel``: one pass over each parameter array, compiled by numba and spread over the
CPUs, with no temporaries). The fused path is the default whenever numba imports and falls
back to NumPy silently when it does not. Choose per optimizer or for the whole process::

    ds.Adam(lr=1e-3, fused=False)          # this optimizer: NumPy reference (True: numba, required)
    ds.optim.set_backend("numpy")          # every optimizer left at fused=None
    ds.optim.set_backend(threads=1)        # fused steps on one thread
    DESCEND_BACKEND=numpy python ...       # the same, from the environment

numba is imported on the first fused step, not by ``import descend``; the kernels compile on
first use (seconds) and are cached on disk for later processes, in ``~/.cache/descend/kernels``
(``$XDG_CACHE_HOME`` is honoured; ``DESCEND_CACHE_DIR`` names another directory, or, set
empty, turns the disk cache off). Each build is a generated module named by the hash of
everything it depends on, so a cache can only ever hand back the code asked for. Arrays of dtypes other than
float32/float64, or not C-contiguous, are updated by the NumPy path, and so (with
``fused=None``) are steps of fewer than 512 parameters, where NumPy is quicker.

Non-finite gradients
--------------------
``step`` reads the gradient once before changing anything: a NaN or infinity raises
``ValueError`` naming the leaf (``grads['W']``) and leaves params and state unchanged; with
``nonfinite="skip"`` the step is skipped; ``nonfinite="propagate"`` saves that read and lets
the NaN in, as torch.optim does. See ``docs/benchmarks.md`` for measured step times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._registry import check_keywords
from .._validation import describe
from ..errors import ParameterError, ParameterTypeError
from ._backend import get_backend, set_backend
from ._rules import FACTS, Rule, names, register, rule, unregister
from .adadelta import AdaDelta
from .adafactor import Adafactor
from .adagrad import AdaGrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .base import Optimizer, OptState
from .lbfgs import LBFGS
from .lion import Lion
from .muon import Muon
from .nadam import Nadam
from .persist import load_state, save_state
from .prodigy import Prodigy
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .schedulefree import ScheduleFreeAdamW, ScheduleFreeSGD
from .sgd import SGD, Momentum, Nesterov

__all__ = [
    "ASGD",
    "FACTS",
    "LBFGS",
    "SGD",
    "AdaDelta",
    "AdaGrad",
    "Adafactor",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Momentum",
    "Muon",
    "Nadam",
    "Nesterov",
    "OptState",
    "Optimizer",
    "Prodigy",
    "RAdam",
    "RMSprop",
    "Rprop",
    "Rule",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "get",
    "get_backend",
    "load_state",
    "names",
    "optimizer",
    "register",
    "resolve",
    "rule",
    "save_state",
    "set_backend",
    "unregister",
]

# The registry: one entry per name, in the order listings show them. A new rule is its file
# plus one line here; its facts (fit_lr, race_lr, color, marker) sit on its class.
register(SGD)
register(Momentum)
register(Nesterov)
register(ASGD)
register(AdaGrad)
register(RMSprop)
register(Rprop)
register(Adam)
register(Adam, "amsgrad", preset={"amsgrad": True}, color="#8c564b", marker="X")
register(AdamW)
register(Nadam)
register(RAdam)
register(Adamax)
register(AdaDelta)
register(Adafactor)
register(Muon)
register(ScheduleFreeSGD)
register(ScheduleFreeAdamW)
register(Lion)
register(Prodigy)
register(LBFGS)


def get(name: str) -> type[Optimizer]:
    """The class registered under ``name`` (case, spaces and ``-`` do not matter)."""
    return rule(name).cls


def optimizer(name: str | Optimizer, **kwargs: Any) -> Optimizer:
    """Build an optimizer by name, e.g. ``optimizer("adam", lr=1e-3)``.

    An :class:`Optimizer` instance is returned unchanged (keyword arguments are then refused).

    >>> optimizer("nesterov", lr=0.1)
    Nesterov(lr=0.1, weight_decay=0.0, maximize=False, momentum=0.9, dampening=0.0, nesterov=True)
    """
    if isinstance(name, Optimizer):
        if kwargs:
            raise TypeError(f"optimizer: got an {type(name).__name__} instance and also {sorted(kwargs)}")
        return name
    return rule(name).make(**kwargs)


def resolve(
    spec: str | Optimizer,
    lr: Any = None,
    options: dict[str, Any] | None = None,
    *,
    owner: str = "optimizer",
    default_lr: str | None = None,
) -> Optimizer:
    """An optimizer from a name plus ``lr`` and ``options``, or an instance given alone.

    With a name and ``lr=None``, the fact ``default_lr`` of the rule's entry (``"fit_lr"``,
    ``"race_lr"``) replaces the class default; ``None`` keeps the class default.
    """
    if options is not None and not isinstance(options, Mapping):
        raise ParameterTypeError(
            f"{owner}: options must be a dict of the rule's hyperparameters (e.g. {{'momentum': 0.9}}), "
            f"got {describe(options)}",
            owner=owner,
            param="options",
            value=options,
        )
    kwargs = dict(options or {})
    if isinstance(spec, Optimizer):
        if lr is not None or kwargs:
            raise TypeError(f"{owner}: lr and options apply to a named optimizer, not to {spec!r}")
        return spec
    entry = rule(spec)
    if lr is not None and "lr" in kwargs:
        raise ParameterError(
            f"{owner}: lr={lr!r} and options={{'lr': {kwargs['lr']!r}}} both set the learning rate; give one",
            owner=owner,
            param="options",
            value=options,
        )
    try:  # an unknown option is named, with the rule's own
        check_keywords(owner, f"options of {entry.cls.__name__}", entry.cls, kwargs)
    except ParameterTypeError as exc:
        raise ParameterTypeError(str(exc), owner=owner, param="options", value=options) from None
    if lr is None and default_lr is not None:
        lr = getattr(entry, default_lr)
    if default_lr == "fit_lr":  # training a model: what the rule needs for it (L-BFGS's line search)
        for key, value in entry.cls.fit_options.items():
            kwargs.setdefault(key, value)
    if lr is not None:
        kwargs["lr"] = lr
    return entry.make(**kwargs)
