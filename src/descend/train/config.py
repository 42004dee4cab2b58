"""fit()'s arguments, each validated once into a typed, frozen configuration (:class:`FitConfig`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import check_bool, check_int, check_real, describe
from ..data import check_batching
from ..errors import ParameterError, ParameterTypeError
from ..optim import Optimizer
from ..optim import resolve as resolve_optimizer
from .callbacks import Callback, as_callback
from .progress import Progress, make_progress

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Run

__all__ = ["FitConfig"]


@dataclass(frozen=True)
class FitConfig:
    """Every argument of :func:`~descend.fit` but the data, as :meth:`of` checked it.

    :meth:`of` refuses a bad value with the message and exception type fit has always raised,
    before anything is created or read (no checkpoint folder, no pass over the data). What can
    only be checked against the data (``batch_size`` against the row count, ``sync_every``
    against the source, ``validation``'s width) is checked when fit opens it.

    ``model`` is resolved (from its name; an ``MLP(output=None)`` continuing ``init`` takes its
    output), ``optimizer`` is built (``init``'s own when continuing one), ``callbacks`` holds
    :class:`~descend.train.callbacks.Callback` objects (``monitor`` last), ``progress`` is the
    reporter that shows the run. ``epochs`` is the
    number of epochs to train; with ``epochs=None`` it is ``max_epochs`` and ``tol`` and
    ``n_iter_no_change`` (else None) drive the plateau rule. ``validation`` is held-out data
    (None when it is a fraction: ``validation_fraction``).
    """

    model: Any
    optimizer: Optimizer
    batch_size: int | None
    drop_last: bool
    epochs: int
    tol: float | None
    n_iter_no_change: int | None
    shuffle: bool
    seed: int
    validation: Any
    validation_fraction: float | None
    callbacks: tuple[Callback, ...]
    checkpoint_dir: Path | None
    checkpoint_every: int | None
    resume: bool
    progress: Progress
    standardize: bool | str
    standardize_target: bool | str
    classes: Any
    max_steps: int | None
    sample_weight: Any
    init: Run | None
    divergence_factor: float | None
    sync_every: int | None

    @property
    def until_converged(self) -> bool:
        """``epochs=None``: train until the loss stops improving (``epochs`` is ``max_epochs``)."""
        return self.tol is not None

    @property
    def epochs_name(self) -> str:
        """The argument that set :attr:`epochs`, for messages."""
        return "max_epochs" if self.until_converged else "epochs"

    @classmethod
    def of(
        cls,
        model: Any,
        *,
        optimizer: str | Optimizer = "adam",
        lr: Any = None,
        batch_size: int | None = 256,
        epochs: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        validation: Any = None,
        callbacks: Any = (),
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
        progress: Any = None,
        standardize: bool | str = "auto",
        standardize_target: bool | str = "auto",
        classes: Any = None,
        drop_last: bool = False,
        options: dict[str, Any] | None = None,
        max_steps: int | None = None,
        sample_weight: Any = None,
        init: Run | None = None,
        tol: float = 1e-3,
        n_iter_no_change: int = 5,
        max_epochs: int = 100,
        divergence_factor: float | None = 1e4,
        monitor: Any = None,
        sync_every: int | None = None,
        owner: str = "fit",
    ) -> FitConfig:
        """Check each of fit's arguments (its docstring says what each means) in one place."""
        model = _resolve_model(model, owner)
        if epochs is None:  # train until the loss stops improving (train/stopping.py)
            epochs = check_int(owner, "max_epochs", max_epochs, low=1)
            tol = check_real(owner, "tol", tol, low=0.0)
            n_iter_no_change = check_int(owner, "n_iter_no_change", n_iter_no_change, low=1)
            plateau = (tol, n_iter_no_change)
        else:
            epochs = check_int(owner, "epochs", epochs, low=1)
            plateau = (None, None)
        shuffle = check_bool(owner, "shuffle", shuffle)
        seed = check_int(owner, "seed", seed, low=0)
        resume = check_bool(owner, "resume", resume)
        if standardize != "auto":
            standardize = check_bool(owner, "standardize", standardize)
        if standardize_target != "auto":
            standardize_target = check_bool(owner, "standardize_target", standardize_target)
        if max_steps is not None:
            max_steps = check_int(owner, "max_steps", max_steps, low=1)
        if divergence_factor is not None:
            divergence_factor = check_real(
                owner, "divergence_factor", divergence_factor, low=1.0, low_open=True
            )
        if init is not None:
            model = _check_init(init, model, owner)
        fraction = None
        if isinstance(validation, (float, np.floating)) and not isinstance(validation, bool):
            fraction = check_real(
                owner, "validation", validation, low=0.0, high=1.0, low_open=True, high_open=True
            )
            validation = None
        batch_size, drop_last = check_batching(owner, batch_size, None, drop_last)
        cbs = tuple(as_callback(c) for c in (callbacks or ()))
        if monitor is not None:
            cbs = (*cbs, _check_monitor(monitor, owner))
        if checkpoint_dir is not None:
            if not isinstance(checkpoint_dir, (str, os.PathLike)):
                raise ParameterTypeError(
                    f"{owner}: checkpoint_dir must be a folder path (str or Path), got "
                    f"{describe(checkpoint_dir)}",
                    owner=owner,
                    param="checkpoint_dir",
                    value=checkpoint_dir,
                )
            checkpoint_dir = Path(checkpoint_dir)
        if checkpoint_every is not None:
            checkpoint_every = check_int(owner, "checkpoint_every", checkpoint_every, low=1)
            if checkpoint_dir is None:
                raise ValueError(f"{owner}: checkpoint_every={checkpoint_every} needs checkpoint_dir")
        if resume and checkpoint_dir is None:
            raise ValueError(f"{owner}: resume=True needs checkpoint_dir")
        reporter = make_progress(progress)
        if init is None:
            opt = resolve_optimizer(optimizer, lr, options, owner=owner, default_lr="fit_lr")
        else:
            opt = init.optimizer  # its schedule (and any plateau state) continues
            _check_continued(owner, init, optimizer, lr, options)
        if sync_every is not None:  # what it asks of the data is checked when fit opens it
            sync_every = check_int(owner, "sync_every", sync_every, low=1)
        return cls(
            model=model,
            optimizer=opt,
            batch_size=batch_size,
            drop_last=drop_last,
            epochs=epochs,
            tol=plateau[0],
            n_iter_no_change=plateau[1],
            shuffle=shuffle,
            seed=seed,
            validation=validation,
            validation_fraction=fraction,
            callbacks=cbs,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=reporter,
            standardize=standardize,
            standardize_target=standardize_target,
            classes=classes,
            max_steps=max_steps,
            sample_weight=sample_weight,
            init=init,
            divergence_factor=divergence_factor,
            sync_every=sync_every,
        )


def _resolve_model(model: Any, owner: str) -> Any:
    """A model from its name, or the model given when it has what fit calls."""
    if isinstance(model, str):
        from .. import models as model_registry

        return model_registry.get(model)
    for attr in ("init", "loss_and_grad", "predict", "check_targets", "n_outputs"):
        if not callable(getattr(model, attr, None)):
            raise TypeError(f"{owner}: model must be a descend model (or its name), got {describe(model)}")
    return model


def _check_init(init: Any, model: Any, owner: str) -> Any:
    """``init``: a Run fit returned, with optimizer state, of the same model; returns the model
    (an ``MLP(output=None)`` takes init's output)."""
    from .fit import Run

    if not isinstance(init, Run):
        raise TypeError(f"{owner}: init must be a Run returned by fit, got {describe(init)}")
    if init.optimizer is None or init.state is None:
        raise ParameterError(
            f"{owner}: init is a loaded run, which keeps no optimizer state; to continue "
            "training, resume from its checkpoint_dir (resume=True)",
            owner=owner,
            param="init",
        )
    if getattr(model, "task", None) == "unresolved" and hasattr(init.model, "output"):
        model = model.with_output(init.model.output)
    if model.config() != init.model.config():
        raise ValueError(f"{owner}: init was trained with {init.model!r}, which differs from model={model!r}")
    return model


def _check_monitor(monitor: Any, owner: str) -> Callback:
    from ..lab.monitor import Monitor

    if not isinstance(monitor, Monitor):
        raise TypeError(
            f"{owner}: monitor must be a descend.Monitor (ds.Monitor(every=N)), got {describe(monitor)}"
        )
    return monitor


def _check_continued(owner: str, init: Any, optimizer: Any, lr: Any, options: Any) -> None:
    """``init=`` continues its own optimizer (state, schedule); another one asked for with it is
    refused rather than ignored. ``optimizer`` at fit's default ("adam") is not a request."""
    from ..optim import rule

    have = init.optimizer
    if isinstance(optimizer, str):
        entry = None if optimizer == "adam" else rule(optimizer)
        differs = entry is not None and (
            type(have) is not entry.cls or any(getattr(have, k, v) != v for k, v in entry.preset.items())
        )
    else:
        differs = optimizer is not have
    if differs or lr is not None or options:
        given = ", ".join(
            f"{k}={v!r}"
            for k, v in (("optimizer", optimizer), ("lr", lr), ("options", options))
            if (k == "optimizer" and differs) or (k == "lr" and v is not None) or (k == "options" and v)
        )
        raise ParameterError(
            f"{owner}: init continues its own optimizer {have!r} (its state and schedule); {given} "
            "would not be used: leave them out, or start a new run without init",
            owner=owner,
            param="optimizer" if differs else ("lr" if lr is not None else "options"),
        )
