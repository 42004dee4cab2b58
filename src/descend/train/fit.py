"""fit(): train a model on any data source with any update rule, batch size and schedule."""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_bool, check_int, check_real, describe
from ..data import ArraySource, Batch, DataError, DataSource, as_source, check_batching, split
from ..errors import CheckpointWarning, DivergenceError, ParameterError
from ..models.task import source_task
from ..optim import Optimizer, OptState
from ..optim import resolve as resolve_optimizer
from ..optim._flat import FlatStep
from .callbacks import Callback, as_callback
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointLock,
    config_hash,
    diff_configs,
    load_latest,
    open_checkpoint_dir,
    write_checkpoint,
)
from .minimize import global_norm
from .prepare import Labels, Preparer, Scaler, check_range, find_labels
from .progress import make_progress
from .stopping import MIN_ROWS, DivergenceGuard, PlateauStop

__all__ = ["DEFAULT_LR", "Run", "TrainHistory", "fit"]

#: lr used when fit() is given none: values that train standardized data well (checked by
#: tests/test_fit.py::test_default_lr_trains_standardized_data for every optimizer).
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.1,
    "rmsprop": 3e-3,
    "adam": 3e-3,
    "amsgrad": 3e-3,
    "adamw": 3e-3,
    "nadam": 5e-3,
    "adamax": 1e-2,
    "adadelta": 1.0,
}

_STEP_COLUMNS = ("step", "epoch", "loss", "lr", "grad_norm", "samples_seen", "time")


def _rows(columns: dict[str, list[float]]) -> list[dict[str, float]]:
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


@dataclass
class TrainHistory:
    """Per-step and per-epoch records of a training run, as lists (``.steps_array`` for NumPy).

    ``steps[k]`` describes update ``k + 1``: the batch loss and gradient norm at the parameters
    before the update, the lr used, how many samples had been seen after it, and the wall time.
    ``epochs`` rows hold the mean training loss of the epoch and validation metrics.
    """

    steps: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in _STEP_COLUMNS})
    epochs: dict[str, list[float]] = field(default_factory=dict)

    def step_array(self, column: str) -> np.ndarray:
        return np.asarray(self.steps[column])

    def epoch_array(self, column: str) -> np.ndarray:
        return np.asarray(self.epochs[column])

    def add_epoch(self, row: dict[str, float]) -> None:
        n = len(next(iter(self.epochs.values()))) if self.epochs else 0
        for k in row:
            if k not in self.epochs:
                self.epochs[k] = [math.nan] * n
        for k in self.epochs:
            self.epochs[k].append(row.get(k, math.nan))

    def step_rows(self) -> list[dict[str, float]]:
        """The per-step columns as one dict per step (for CSV files and tables)."""
        return _rows(self.steps)

    def epoch_rows(self) -> list[dict[str, float]]:
        """The per-epoch columns as one dict per epoch."""
        return _rows(self.epochs)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {f"step/{k}": np.asarray(v, dtype=np.float64) for k, v in self.steps.items()}
        out.update({f"epoch/{k}": np.asarray(v, dtype=np.float64) for k, v in self.epochs.items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TrainHistory:
        h = cls()
        for key, v in arrays.items():
            kind, col = key.split("/", 1)
            target = h.steps if kind == "step" else h.epochs
            values = [float(x) for x in np.asarray(v)]
            if col in ("step", "epoch", "samples_seen"):
                values = [int(x) for x in values]
            target[col] = values
        return h


@dataclass
class Run:
    """The outcome of :func:`fit`: parameters, history, and prediction helpers.

    ``labels`` maps class indices to the labels as stored (``"churn"``/``"stay"``) for
    classifiers; ``scaler`` is the standardization learned with ``standardize=True``; both
    are applied by :meth:`predict` and :meth:`predict_proba`.
    """

    model: Any
    params: dict[str, np.ndarray]
    optimizer: Optimizer
    state: OptState
    history: TrainHistory
    config: dict[str, Any]
    n_features: int
    n_outputs: int
    validation: DataSource | None = None
    stop_reason: str = ""
    epochs_completed: int = 0
    steps_completed: int = 0
    checkpoint: Path | None = None
    labels: Labels | None = None
    scaler: Scaler | None = None
    skipped_rows: dict[str, int] = field(default_factory=dict)
    resumed_from_step: int | None = None
    #: what fit chose on its own and why (e.g. an MLP's output kind from the targets)
    notes: list[str] = field(default_factory=list)

    @property
    def classes(self) -> np.ndarray | None:
        """The class labels of a classifier, in the order of ``predict_proba``'s columns."""
        return None if self.labels is None else self.labels.classes

    def predict(self, X: Any) -> np.ndarray:
        """Predictions (the stored labels for classifiers, values for regression)."""
        out = self.model.predict(self.params, self._features(X))
        return out if self.labels is None else self.labels.decode(out)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of :attr:`classes` (classifiers only)."""
        return self.model.predict_proba(self.params, self._features(X))

    def loss(self, X: Any, y: Any) -> float:
        return self.evaluate(X, y)["loss"]

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Loss and the model's metric (accuracy or MSE) on ``(X, y)`` (stored labels)."""
        src = as_source((X, y), owner="Run.evaluate")
        return _evaluate(self.model, self.params, src, self._prepare_batch)

    def _features(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"Run.predict: X must have shape (n, {self.n_features}), got {X.shape}")
        if self.scaler is not None:
            return self.scaler.apply(X, self.model.dtype)
        return X.astype(self.model.dtype, copy=False)

    def _prepare_batch(self, batch: Batch, encoded: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """A batch as the model takes it: scaled features, encoded and checked targets."""
        where = batch.where if batch.lines is not None else None
        prep = self.__dict__.get("_prep")
        if prep is None or prep.labels is not self.labels or prep.scaler is not self.scaler:
            prep = self.__dict__["_prep"] = Preparer(self.model, self.labels, self.scaler)
        return prep(batch.X, batch.y, encoded, where)


def _evaluate(
    model: Any, params: dict[str, np.ndarray], src: DataSource, prepare: Any, chunk: int = 8192
) -> dict[str, float]:
    """Mean loss and metric over a whole source, in chunks (bounded memory)."""
    total, n, correct, sq = 0.0, 0, 0, 0.0
    for b in src.batches(0, chunk, shuffle=False):
        X, y = prepare(b)
        m = b.size
        total += model.loss(params, X, y) * m
        n += m
        if model.task == "regression":
            pred = model.predict(params, X)
            sq += float(np.sum((np.asarray(pred, dtype=np.float64).reshape(m, -1) - y.reshape(m, -1)) ** 2))
        else:
            correct += int(np.sum(model.predict(params, X) == np.asarray(y).reshape(-1)))
    if n == 0:  # a source that reported rows and delivered none (or a split that holds none)
        raise DataError(
            f"fit: the validation data ({getattr(src, 'description', 'data')}) delivered no rows; "
            "it needs at least one"
        )
    out = {"loss": total / n}
    if model.task == "regression":
        out["mse"] = sq / n
    else:
        out["accuracy"] = correct / n
    return out


def _resolve_model(model: Any) -> Any:
    if isinstance(model, str):
        from .. import models as model_registry

        return model_registry.get(model)
    for attr in ("init", "loss_and_grad", "predict", "check_targets", "n_outputs"):
        if not callable(getattr(model, attr, None)):
            raise TypeError(f"fit: model must be a descend model (or its name), got {describe(model)}")
    return model


#: loss, gradient norm or lr x gradient norm above which an update might overflow the dtype:
#: only such updates are snapshotted (and checked) by the divergence guard
_RISK = {"float32": 1e15, "float64": 1e150}

#: (loss, gradients, weight, rows) of one part of a batch
_Part = tuple[float, dict[str, np.ndarray], float, int]


class _Training:
    """One training run in named phases: set up, resume, run epochs (steps), checkpoint, finish.

    The loop sees data only through the :class:`~descend.data.DataSource` interface: batches
    of an epoch from any batch on, in parts when a batch is larger than a part.
    """

    owner = "fit"

    # -- set up ------------------------------------------------------------------------------------
    def __init__(self, model: Any, data: Any, **kw: Any):
        self.lock: CheckpointLock | None = None
        try:
            self._setup(model, data, **kw)
        except BaseException:
            self.release(refused=True)
            raise

    def release(self, refused: bool = False) -> None:
        """Unlock the checkpoint folder; a refused call also removes the folder it created."""
        if self.lock is not None:
            self.lock.release()
            if refused:
                self.lock.undo_create()
            self.lock = None

    def _setup(self, model: Any, data: Any, **kw: Any) -> None:
        owner = self.owner
        self.model = model = _resolve_model(model)
        self.rule: PlateauStop | None = None
        if kw["epochs"] is None:  # train until the loss stops improving (train/stopping.py)
            self.epochs = check_int(owner, "max_epochs", kw["max_epochs"], low=1)
            self.rule_args = {
                "tol": check_real(owner, "tol", kw["tol"], low=0.0),
                "n_iter_no_change": check_int(owner, "n_iter_no_change", kw["n_iter_no_change"], low=1),
            }
        else:
            self.epochs = check_int(owner, "epochs", kw["epochs"], low=1)
        self.shuffle = check_bool(owner, "shuffle", kw["shuffle"])
        self.seed = check_int(owner, "seed", kw["seed"], low=0)
        self.resume = check_bool(owner, "resume", kw["resume"])
        standardize = kw["standardize"]
        if standardize != "auto":
            standardize = check_bool(owner, "standardize", standardize)
        self.max_steps = kw["max_steps"]
        if self.max_steps is not None:
            self.max_steps = check_int(owner, "max_steps", self.max_steps, low=1)
        self.divergence_factor = kw["divergence_factor"]
        if self.divergence_factor is not None:
            self.divergence_factor = check_real(
                owner, "divergence_factor", self.divergence_factor, low=1.0, low_open=True
            )
        if kw["sample_weight"] is not None:
            if not (isinstance(data, (tuple, list)) and len(data) == 2):
                raise TypeError(f"{owner}: sample_weight needs data as an (X, y) pair of arrays")
            data = (data[0], data[1], kw["sample_weight"])
        init = kw["init"]
        if init is not None:
            if not isinstance(init, Run):
                raise TypeError(f"{owner}: init must be a Run returned by fit, got {describe(init)}")
            if getattr(model, "task", None) == "unresolved" and hasattr(init.model, "output"):
                model = self.model = model.with_output(init.model.output)
            if model.config() != init.model.config():
                raise ValueError(
                    f"{owner}: init was trained with {init.model!r}, which differs from model={model!r}"
                )
        source = as_source(data, owner=owner)
        self.notes: list[str] = []
        if getattr(model, "task", None) == "unresolved":
            model = self.model = self._resolve_output(model, source, init)
        validation = kw["validation"]
        if isinstance(validation, (float, np.floating)) and not isinstance(validation, bool):
            fraction = check_real(
                owner, "validation", validation, low=0.0, high=1.0, low_open=True, high_open=True
            )
            source, val_source = split(source, fraction, self.seed)
        else:
            val_source = None if validation is None else as_source(validation, owner=owner, name="validation")
        if val_source is not None and val_source.n_features != source.n_features:
            raise ValueError(
                f"{owner}: validation has {val_source.n_features} features but data has {source.n_features}"
            )
        self.batch_size, self.drop_last = check_batching(owner, kw["batch_size"], None, kw["drop_last"])
        self.cbs: list[Callback] = [as_callback(c) for c in (kw["callbacks"] or ())]
        self.checkpoint_every = kw["checkpoint_every"]
        checkpoint_dir = kw["checkpoint_dir"]
        if self.checkpoint_every is not None:
            self.checkpoint_every = check_int(owner, "checkpoint_every", self.checkpoint_every, low=1)
            if checkpoint_dir is None:
                raise ValueError(f"{owner}: checkpoint_every={self.checkpoint_every} needs checkpoint_dir")
        if self.resume and checkpoint_dir is None:
            raise ValueError(f"{owner}: resume=True needs checkpoint_dir")
        self.ckpt_path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
        self.ckpt_loaded: Path | None = None
        self.reporter = make_progress(kw["progress"])
        if init is None:
            opt = resolve_optimizer(
                kw["optimizer"], kw["lr"], kw["options"], owner=owner, default_lr=DEFAULT_LR
            )
        else:
            opt = init.optimizer  # its schedule (and any plateau state) continues

        saved = None
        if checkpoint_dir is not None:
            # before any pass over the data: a bad folder or a folder in use fails at once
            self.lock = open_checkpoint_dir(checkpoint_dir, owner=owner)
        if self.resume and checkpoint_dir is not None:
            latest = load_latest(checkpoint_dir, owner=owner, set_aside=True)
            if latest is None:
                self._say(
                    f"resume=True but checkpoint_dir {str(checkpoint_dir)!r} holds no checkpoint: "
                    "training starts fresh"
                )
            else:
                self.ckpt_loaded, saved = latest
        labels, scaler, n_outputs = self._learn_data(
            source, val_source, kw["classes"], standardize, saved, init
        )
        check_batching(owner, self.batch_size, source.n_samples, self.drop_last)
        self.guard: DivergenceGuard | None = None
        if self.divergence_factor is not None:
            n = source.n_samples
            self.guard = DivergenceGuard(
                self.divergence_factor,
                batch_rows=n if self.batch_size is None else self.batch_size,
                min_rows=min(MIN_ROWS, n),
            )
        if kw["epochs"] is None:
            n = source.n_samples
            period = PlateauStop.period_for(n, n if self.batch_size is None else self.batch_size)
            self.rule = PlateauStop(period=period, **self.rule_args)

        if init is None:
            params = model.init(np.random.default_rng([self.seed, 0]), source.n_features, n_outputs)
            state = opt.init(params)
        else:
            if source.n_features != init.n_features:
                raise ValueError(
                    f"{owner}: data has {source.n_features} features but init was trained on "
                    f"{init.n_features}"
                )
            params = {k: v.copy() for k, v in init.params.items()}
            state = init.state.copy()
        # a small model is updated in one pass over flat buffers (its arrays become views)
        self.flat = FlatStep(opt, params, state) if FlatStep.applies(opt, params) else None
        self.source, self.opt, self.params, self.state = source, opt, params, state
        self.config = {
            "model": model.config(),
            "optimizer": {"name": opt.name, **opt.hyperparameters()},
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "drop_last": self.drop_last,
            "data": source.fingerprint(),
            "params": {k: [list(v.shape), str(v.dtype)] for k, v in params.items()},
        }
        if labels is not None and not labels.identity:
            self.config["classes"] = labels.classes.tolist()
        if scaler is not None:
            self.config["standardize"] = True
        self.history = TrainHistory()
        self.run = Run(
            model=model,
            params=params,
            optimizer=opt,
            state=state,
            history=self.history,
            config=self.config,
            n_features=source.n_features,
            n_outputs=n_outputs,
            validation=val_source,
            labels=labels,
            scaler=scaler,
            skipped_rows=dict(getattr(source, "skipped", {}) or {}),
            notes=self.notes,
        )
        self.val_source = val_source
        self.plateau = getattr(opt.lr, "observe", None)
        self.epoch, self.next_batch, self.step, self.samples = 0, 0, 0, 0
        self.epoch_loss_sum, self.epoch_batches = 0.0, 0
        self.last_lr = math.nan
        self.stop = ""
        self.checked = False
        self._saved = saved
        if init is not None:  # continue the count of epochs, steps and the history
            self.epoch = init.epochs_completed
            self.epochs = self.epoch + self.epochs
            self.step = init.steps_completed
            self.samples = int(init.history.steps["samples_seen"][-1]) if init.history.steps["step"] else 0
            self.run.history = self.history = TrainHistory.from_arrays(init.history.to_arrays())
            self.run.epochs_completed, self.run.steps_completed = self.epoch, self.step

    def _say(self, text: str) -> None:
        """A fact about the checkpoints the user should know: a warning, and a note in the run."""
        self.notes.append(text)
        warnings.warn(f"{self.owner}: {text}", CheckpointWarning, stacklevel=5)

    def _resolve_output(self, model: Any, source: DataSource, init: Run | None) -> Any:
        """``MLP(output=None)``: the output kind the targets leave no doubt about."""
        try:
            task = source_task(source)
        except ParameterError as exc:
            why = str(exc).split("; name it")[0].split("from the targets: ")[-1]
            raise ParameterError(
                f"{self.owner}: {type(model).__name__}(output=None) cannot choose its output from the "
                f"targets: {why}; give output='regression', 'binary' or 'softmax'",
                owner=self.owner,
                param="output",
            ) from None
        output = {"regression": "regression", "binary": "binary", "multiclass": "softmax"}[task.kind]
        self.notes.append(f"{type(model).__name__} output={output!r}: {task.reason}")
        return model.with_output(output)

    def _learn_data(self, source, val_source, classes, standardize, saved, init=None):
        """Classes, scaling and the model's output count: from ``init``, the checkpoint, or one
        streaming pass over the data (classes and feature moments together)."""
        model, owner = self.model, self.owner
        extra = saved[2]["extra"] if saved is not None else {}
        labels = scaler = None
        if init is not None:
            labels, scaler = init.labels, init.scaler
            n_outputs = init.n_outputs
            if (
                labels is not None
                and classes is not None
                and not np.array_equal(Labels.of(classes).classes, labels.classes)
            ):
                raise ValueError(f"{owner}: classes={classes!r} differ from init's {labels.classes.tolist()}")
            self._source_prepared = self._encode(source, labels, val_source)
            return labels, scaler, n_outputs
        classifier = model.task != "regression"
        want_classes = classifier and classes is None and "classes" not in extra and source.targets is None
        if saved is not None:  # the checkpoint holds what the first run decided
            want_moments = False
            if "scaler_mean" in extra:
                scaler = Scaler(np.asarray(extra["scaler_mean"]), np.asarray(extra["scaler_scale"]))
        else:
            want_moments = standardize is not False
        summary = None
        if want_classes or want_moments:
            try:
                summary = source.summarize(classes=want_classes, moments=want_moments)
            except DataError as exc:
                raise type(exc)(f"{owner}: {exc}", file=exc.file, row=exc.row, column=exc.column) from None
        if summary is not None and want_moments:
            if standardize is True or (standardize == "auto" and Scaler.needed(summary.mean, summary.std)):
                scaler = Scaler.from_moments(summary.mean, summary.std)
        if classifier:
            if "classes" in extra:
                labels = Labels(np.asarray(extra["classes"]))
            else:
                found = summary.classes if want_classes else None
                labels = find_labels(source, classes if found is None else found, owner)
            if model.task == "binary" and len(labels.classes) != 2:
                raise ValueError(
                    f"{type(model).__name__}: a binary model needs exactly 2 classes (labels), the "
                    f"targets hold {len(labels.classes)}: {labels.classes.tolist()[:20]}; use a softmax "
                    "model for more"
                )
            n_outputs = 1 if model.task == "binary" else len(labels.classes)
        elif source.targets is not None:
            n_outputs = model.n_outputs(source.targets)
        else:  # a streamed source: one target column (or as many as it says)
            n_outputs = int(getattr(source, "n_targets", 1))
        self._source_prepared = self._encode(source, labels, val_source)
        return labels, scaler, n_outputs

    def _encode(self, source, labels, val_source):
        owner, model = self.owner, self.model
        checked = []
        for src in (source, val_source):  # in memory: values the model's dtype cannot hold, once
            if isinstance(src, ArraySource) and not any(src.X is X for X in checked):
                check_range(owner, src.X, model.dtype, names=src.feature_names)
                if labels is None and model.task == "regression":
                    check_range(owner, src.y, model.dtype, what="the target value")
                checked.append(src.X)
        if isinstance(source, ArraySource):  # in memory: check and encode the targets once
            source = self._encode_in_memory(source, labels)
        if isinstance(val_source, ArraySource) and labels is not None:
            labels.encode(val_source.targets, f"{owner}: validation")
        elif isinstance(val_source, ArraySource):
            model.check_targets(val_source.targets)
        return source

    def _encode_in_memory(self, source: ArraySource, labels: Labels | None) -> ArraySource:
        y = source.y
        if labels is not None:
            enc = labels.encode(y, self.model._owner if hasattr(self.model, "_owner") else self.owner)
            if self.model.task == "binary":
                enc = enc.astype(self.model.dtype)
        else:
            enc = self.model.check_targets(y)
        if enc is y:
            return source
        out = copy.copy(source)
        out.y = enc
        out._encoded = True
        return out

    # -- resume ------------------------------------------------------------------------------------
    def restore(self) -> bool:
        """Continue from the checkpoint when resuming; True when it already finished."""
        self.source = self._source_prepared
        self.encoded = bool(getattr(self.source, "_encoded", False))
        if self._saved is None:
            return False
        saved_params, saved_state, meta = self._saved
        self._saved = None
        where = str(self.ckpt_loaded or self.ckpt_path)
        if meta["config_hash"] != config_hash(self.config):
            diffs = diff_configs(meta["config"], json_roundtrip(self.config))
            raise ValueError(
                f"{self.owner}: refusing to resume from {where!r}: it was made by a different "
                "run; " + "; ".join(diffs or ["configuration differs"])
            )
        self._refuse_if_further(meta, where)
        for k, v in saved_params.items():
            np.copyto(self.params[k], v)
        self.state.restore_from(saved_state)
        extra = meta["extra"]
        self.epoch, self.next_batch = int(meta["epoch"]), int(meta["batch"])
        self.step, self.samples = int(meta["step"]), int(meta["samples_seen"])
        self.epoch_loss_sum, self.epoch_batches = float(extra["epoch_loss_sum"]), int(extra["epoch_batches"])
        self.run.history = self.history = TrainHistory.from_arrays(extra["history"])
        for cb, cb_state in zip(self.cbs, extra["callbacks"], strict=False):
            cb.load_state_dict(cb_state)
        if extra.get("schedule") is not None and hasattr(self.opt.lr, "load_state_dict"):
            self.opt.lr.load_state_dict(extra["schedule"])
        if self.rule is not None and extra.get("stop_rule") is not None:
            self.rule.load_state_dict(extra["stop_rule"])
        if self.guard is not None and extra.get("divergence_guard") is not None:
            self.guard.load_state_dict(extra["divergence_guard"])
        lrs = self.history.steps["lr"]
        if lrs:  # an epoch resumed after its last step still reports that step's lr
            self.last_lr = lrs[-1]
        run = self.run
        run.epochs_completed, run.steps_completed, run.checkpoint = self.epoch, self.step, self.ckpt_path
        run.resumed_from_step = self.step
        if self.max_steps is not None and self.step >= self.max_steps:
            run.stop_reason = f"resumed a run that had already reached max_steps={self.max_steps}"
            return True
        if self.epoch >= self.epochs:
            run.stop_reason = f"resumed a run that had already completed {self.epoch} epochs"
            return True
        return False

    def _refuse_if_further(self, meta: dict[str, Any], where: str) -> None:
        """A checkpoint past what this call asks for is refused: resuming it would silently hand
        back a longer run than asked for. Asking for as much continues (or returns) it."""
        epoch, batch, step = int(meta["epoch"]), int(meta["batch"]), int(meta["step"])
        name = "epochs" if self.rule is None else "max_epochs"
        if epoch > self.epochs or (epoch == self.epochs and batch > 0):
            done = f"{epoch} epochs" + (f" and {batch} batches" if batch else "")
            raise ParameterError(
                f"{self.owner}: refusing to resume from {where!r}: that run has already trained {done} "
                f"(step {step}), further than {name}={self.epochs} asks; give {name} >= "
                f"{epoch + (1 if batch else 0)} to continue it, or another checkpoint_dir to start over",
                owner=self.owner,
                param=name,
                value=self.epochs,
            )
        if self.max_steps is not None and step > self.max_steps:
            raise ParameterError(
                f"{self.owner}: refusing to resume from {where!r}: that run has already reached step "
                f"{step}, further than max_steps={self.max_steps} asks; give max_steps >= {step} to "
                "continue it, or another checkpoint_dir to start over",
                owner=self.owner,
                param="max_steps",
                value=self.max_steps,
            )

    # -- checkpoint --------------------------------------------------------------------------------
    def save_checkpoint(self, finished: bool = False) -> None:
        if self.ckpt_path is None:
            return
        if self.non_finite() is not None:
            return  # never persist a non-finite state; the next loss check raises DivergenceError
        seed, epoch = self.seed, self.epoch
        extra: dict[str, Any] = {
            "epoch_loss_sum": self.epoch_loss_sum,
            "epoch_batches": self.epoch_batches,
            "history": self.history.to_arrays(),
            "callbacks": [cb.state_dict() for cb in self.cbs],
            "schedule": self.opt.lr.state_dict() if hasattr(self.opt.lr, "state_dict") else None,
            "stop_rule": None if self.rule is None else self.rule.state_dict(),
            "divergence_guard": None if self.guard is None else self.guard.state_dict(),
        }
        if self.run.labels is not None:
            extra["classes"] = self.run.labels.classes
        if self.run.scaler is not None:
            extra["scaler_mean"], extra["scaler_scale"] = self.run.scaler.mean, self.run.scaler.scale
        write_checkpoint(
            self.ckpt_path.parent,
            params=self.params,
            state=self.state,
            header={
                "config": json_roundtrip(self.config),
                "config_hash": config_hash(self.config),
                "epoch": epoch,
                "batch": self.next_batch,
                "step": self.step,
                "samples_seen": self.samples,
                "finished": finished,
                "schedule_step": int(self.state.t),
                # every random draw comes from generators seeded by (seed, purpose[, epoch]); the
                # epoch's order is a pure function of (seed, epoch, layout), so the cursor
                # (epoch, batch) is the whole data state
                "rng": {
                    "seed": seed,
                    "init_seed": [seed, 0],
                    "epoch_order_seed": [seed, 1, epoch],
                    "epoch_order_state": np.random.default_rng([seed, 1, epoch]).bit_generator.state,
                },
            },
            extra=extra,
        )
        self.run.checkpoint = self.ckpt_path

    # -- run -----------------------------------------------------------------------------------------
    def run_all(self) -> Run:
        if self.restore():
            return self.run
        n_batches = self.source.n_batches(self.batch_size, self.drop_last)
        total: int | None = n_batches * self.epochs
        if self.max_steps is not None:
            total = min(self.max_steps, total)
        elif self.rule is not None:
            total = None  # it stops when it converges
        for cb in self.cbs:
            cb.on_train_begin(self.run)
        self.snapshot: tuple[dict[str, np.ndarray], OptState] | None = None
        self.snapshot_step = -1
        self.good: tuple[dict[str, np.ndarray], OptState] | None = None
        self.good_step = -1
        self.risk = _RISK[np.dtype(self.model.dtype).name]
        self.leaves = list(self.params.values())
        self.history_columns = [self.history.steps[c] for c in _STEP_COLUMNS]
        steps = self.history.steps["time"]
        self.t0 = time.perf_counter() - (steps[-1] if steps else 0.0)
        self.reporter.start(
            total, f"fit {type(self.model).__name__} with {self.opt!r}, batch_size={self.batch_size}"
        )
        try:
            while self.epoch < self.epochs and not self.stop:
                finished = self.run_epoch()
                if finished:
                    self.end_epoch()
            if not self.stop:
                self.stop = f"completed {self.epochs} epochs"
                if self.rule is not None:
                    self.stop = f"reached max_epochs={self.epochs} before the convergence rule held"
        finally:
            self.reporter.close()
        for cb in self.cbs:
            cb.on_train_end(self.run)
        self.run.stop_reason = self.stop
        self.run.steps_completed = self.step
        self.run.skipped_rows = dict(getattr(self.source, "skipped", {}) or self.run.skipped_rows)
        if (bad := self.non_finite()) is not None:  # never "completed" with a NaN or inf inside
            self.diverged(math.inf, self.next_batch, what=bad)
        if self.ckpt_path is not None:
            self.save_checkpoint(finished=True)
        return self.run

    def run_epoch(self) -> bool:
        """Train the rest of the current epoch; False when a callback or max_steps stopped it."""
        if self.next_batch == 0:
            self.epoch_loss_sum, self.epoch_batches = 0.0, 0
        # overflow to inf/NaN is what the divergence guard looks for: no NumPy warnings meanwhile
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if getattr(self.source, "computes_gradients", False):
                return self._remote_epoch()
            return self._local_epoch()

    def _where(self) -> dict[str, Any]:
        return {
            "shuffle": self.shuffle,
            "seed": self.seed,
            "drop_last": self.drop_last,
            "start": self.next_batch,
        }

    def _remote_epoch(self) -> bool:
        """A distributed source computes each batch's (loss, gradient) where its rows live, for
        the parameters as they are when the next result is asked for."""
        prep = Preparer(self.model, self.run.labels, self.run.scaler, feature_names=self.source.feature_names)
        for index, loss, grads, rows in self.source.gradients(
            self.model, self.params, prep, self.epoch, self.batch_size, **self._where()
        ):
            if self.take_step(index, loss, grads, rows):
                return False
        return True

    def _local_epoch(self) -> bool:
        parts: list[_Part] = []
        model, params = self.model, self.params
        # in-memory features were checked against the model's dtype up front (fit's _encode)
        prep = Preparer(
            model,
            self.run.labels,
            self.run.scaler,
            check_range=not isinstance(self.source, ArraySource),
            feature_names=self.source.feature_names,
        )
        # targets were checked up front (in memory) or by the preparer (files): no re-checking
        value_and_grad = getattr(model, "_value_and_grad", None)
        width = (self.run.n_features,)
        for batch in self.source.batches(self.epoch, self.batch_size, **self._where()):
            X, y = prep(batch.X, batch.y, self.encoded, batch.where if batch.lines is not None else None)
            if value_and_grad is not None and X.shape[1:] == width:
                w = None if batch.w is None else batch.w.astype(model.dtype, copy=False)
                loss, grads = value_and_grad(params, X, y, w)
            else:
                loss, grads = model.loss_and_grad(params, X, y, batch.w)
            if batch.parts > 1:  # a batch larger than a part: average the parts by their weight
                parts.append((loss, grads, batch.weight, batch.size))
                if batch.part + 1 < batch.parts:
                    continue
                loss, grads, rows = _combine(parts)
                parts = []
            else:
                rows = batch.size
            if self.take_step(batch.index, loss, grads, rows):
                return False
        return True

    def take_step(self, index: int, loss: float, grads: dict[str, np.ndarray], rows: int) -> bool:
        """One update from a batch's loss and gradient; True when training should stop now."""
        flat = self.flat if self.checked else None
        if flat is not None and not self.cbs:  # gathered once: its norm, then the update
            g = flat.load(grads.values())
            gnorm = math.sqrt(sq) if math.isfinite(sq := float(np.vdot(g, g))) else global_norm((g,))
        else:
            gnorm = global_norm(grads.values())
        if not (math.isfinite(loss) and math.isfinite(gnorm)):
            self.diverged(loss, index)
        guard = self.guard
        if guard is not None:  # a loss grown by orders of magnitude diverges before it is infinite
            if guard.update(loss, rows):
                self.grew(index)
            if guard.keep_now:
                self.keep_good_state()
        for cb in self.cbs:
            cb.on_gradients(self.run, grads)
        lr_now = self.last_lr = self.opt.lr_at(int(self.state.t))
        # The divergence guard copies nothing on ordinary steps: a non-finite loss or gradient is
        # caught before the update (the parameters are then those of the last finite step). Only
        # an update that could overflow (loss, gradient norm or lr near the dtype's range) is
        # preceded by a snapshot and followed by a finiteness check, so it can be undone.
        risky = loss > self.risk or gnorm > self.risk or lr_now * gnorm > self.risk
        if risky:
            self.take_snapshot()
        if not self.checked:  # validate structure once; it cannot change afterwards
            self.opt.step(self.params, grads, self.state)
            self.checked = True
        elif flat is not None:  # checked finite through the norm, as below
            if self.cbs:  # after the callbacks, which may have changed the gradient (clipping)
                flat.load(grads.values())
            flat.step(self.state)
        else:
            # the gradient norm was just checked finite: the optimizer need not read it again
            self.opt._apply(self.leaves, list(grads.values()), self.state, check_finite=False)
        if risky and (bad := self.non_finite()) is not None:
            self.restore_snapshot()
            self.diverged(math.inf, index, what=bad)
        self.step += 1
        self.samples += rows
        self.epoch_loss_sum += loss
        self.epoch_batches += 1
        now = time.perf_counter() - self.t0
        values = (self.step, self.epoch, loss, lr_now, gnorm, self.samples, now)
        for column, val in zip(self.history_columns, values):  # noqa: B905 (same length, hot loop)
            column.append(val)
        self.reporter.update(self.step, self.epoch, loss, lr_now, self.samples)
        stop_now = False
        if self.cbs:
            info = dict(zip(_STEP_COLUMNS, values, strict=True))
            info["batch"] = index
        for cb in self.cbs:
            if cb.on_step_end(self.run, info) is True:
                stop_now = True
                self.stop = (
                    self.stop or f"stopped by {type(cb).__name__} at step {self.step} (epoch {self.epoch})"
                )
        if self.rule is not None and self.rule.update(loss):
            stop_now = True
            self.stop = self.stop or self.rule.reason(self.step, self.epoch, self.samples)
        if self.max_steps is not None and self.step >= self.max_steps:
            stop_now, self.stop = True, self.stop or f"max_steps={self.max_steps} reached"
        self.next_batch = index + 1
        if self.checkpoint_every is not None and self.step % self.checkpoint_every == 0:
            self.save_checkpoint()
        return stop_now

    def take_snapshot(self) -> None:
        self.snapshot_step = self.step
        if self.snapshot is None:
            self.snapshot = ({k: v.copy() for k, v in self.params.items()}, self.state.copy())
        else:
            for k, v in self.params.items():
                np.copyto(self.snapshot[0][k], v)
            self.snapshot[1].restore_from(self.state)

    def restore_snapshot(self) -> None:
        assert self.snapshot is not None
        for k, v in self.snapshot[0].items():
            np.copyto(self.params[k], v)
        self.state.restore_from(self.snapshot[1])

    def non_finite(self) -> str | None:
        """What holds a NaN or inf: ``"update"`` (the parameters), ``"optimizer state"``, or None.

        A sum is finite exactly when no element is NaN/inf, barring overflow of the sum itself,
        which the element-wise check settles; a sum reads each array once and allocates nothing.
        """
        if not all(math.isfinite(float(np.sum(p))) or np.isfinite(p).all() for p in self.leaves):
            return "update"
        for bufs in self.state.buffers.values():
            if not all(math.isfinite(float(np.sum(b))) or np.isfinite(b).all() for b in bufs):
                return "optimizer state"
        return None

    def keep_good_state(self) -> None:
        """Copy the parameters and optimizer state as the last good state (into the same buffers
        each time): what a run whose loss grows is rolled back to."""
        self.good_step = self.step
        if self.good is None:
            self.good = ({k: v.copy() for k, v in self.params.items()}, self.state.copy())
        else:
            for k, v in self.params.items():
                np.copyto(self.good[0][k], v)
            self.good[1].restore_from(self.state)

    def grew(self, index: int) -> None:
        """Raise DivergenceError for a loss grown by orders of magnitude (train/stopping.py), with
        the parameters and optimizer state of the last good state."""
        assert self.guard is not None
        at = f"step {self.step + 1} (epoch {self.epoch}, batch {index})"
        if self.good is not None:
            for k, v in self.good[0].items():
                np.copyto(self.params[k], v)
            self.state.restore_from(self.good[1])
            where = f"parameters are left at step {self.good_step}, the last good state"
        else:
            where = "parameters are left at this step (no good state was kept before it)"
        self._raise(
            f"{self.owner}: diverged at {at} with {self.opt!r}: {self.guard.reason()}; {where}; try a "
            "smaller learning rate (or divergence_factor=None to train on)",
            quantity="loss",
            cause=f"loss grew from {self.guard.best:.3g} to {self.guard.smoothed:.3g}",
        )

    def _raise(self, message: str, *, quantity: str, cause: str | None = None) -> None:
        self.reporter.close()
        self.run.stop_reason = f"diverged at step {self.step + 1} (epoch {self.epoch})"
        self.run.steps_completed = self.step
        exc = DivergenceError(message, step=self.step + 1, epoch=self.epoch, quantity=quantity, cause=cause)
        exc.run = self.run
        raise exc

    def diverged(self, loss: float, index: int, what: str | None = None) -> None:
        """Raise DivergenceError (carrying the run) with the parameters at the last finite step."""
        what = what or ("loss" if not math.isfinite(loss) else "gradient")
        rolled_back = what in ("update", "optimizer state")  # by take_step already
        if not rolled_back and self.snapshot is not None and self.snapshot_step == self.step - 1:
            self.restore_snapshot()  # back to the parameters whose loss and gradient were finite
        finite = self.non_finite() is None
        where = (
            "parameters are left at the last finite step"
            if finite
            else ("the parameters overflowed in an update that looked safe; they are not finite")
        )
        hint = (
            "try a smaller learning rate, or standardize the features"
            if what == "optimizer state"
            else "try a smaller learning rate"
        )
        self._raise(
            f"fit: the {what} became non-finite at step {self.step + 1} (epoch {self.epoch}, batch "
            f"{index}) with {self.opt!r}; {where}; {hint}",
            quantity=what,
        )

    def end_epoch(self) -> None:
        """Epoch metrics, the plateau schedule, epoch callbacks and the epoch checkpoint."""
        if self.epoch_batches == 0:
            # a source that reported rows and delivered none: "completed N epochs" would be a lie
            n = self.source.n_samples
            raise DataError(
                f"{self.owner}: epoch {self.epoch} ran 0 steps: the data ({self.source.description}) "
                f"reported {n} rows ({self.source.n_batches(self.batch_size, self.drop_last)} batches) "
                "but delivered none; no epoch may end without an update"
            )
        row: dict[str, float] = {
            "epoch": self.epoch,
            "train_loss": self.epoch_loss_sum / max(self.epoch_batches, 1),
            "lr": self.last_lr,
            "samples_seen": self.samples,
            "time": time.perf_counter() - self.t0,
        }
        if self.val_source is not None:
            with np.errstate(over="ignore", invalid="ignore"):  # a blow-up shows as inf, not a warning
                metrics = _evaluate(self.model, self.params, self.val_source, self.run._prepare_batch)
            if not all(math.isfinite(v) for v in metrics.values()):
                self._raise(
                    f"{self.owner}: the validation loss became non-finite after epoch {self.epoch} with "
                    f"{self.opt!r} (the training loss was finite); the parameters are those at the end "
                    "of the epoch; try a smaller learning rate",
                    quantity="validation loss",
                )
            row.update({f"val_{k}": v for k, v in metrics.items()})
        self.history.add_epoch(row)
        if self.plateau is not None:
            self.plateau(row["val_loss"] if self.val_source is not None else row["train_loss"])
        for cb in self.cbs:
            if cb.on_epoch_end(self.run, row) is True:
                self.stop = self.stop or f"stopped by {type(cb).__name__} after epoch {self.epoch}"
        self.epoch += 1
        self.next_batch = 0
        self.run.epochs_completed = self.epoch
        if self.checkpoint_every is not None:
            self.save_checkpoint()


def _combine(parts: list[_Part]) -> tuple[float, dict[str, np.ndarray], int]:
    """Weighted mean of the parts' losses and gradients (the penalty, identical in each, stays)."""
    total = sum(p[2] for p in parts)
    loss = sum(v * (wt / total) for v, _, wt, _ in parts)
    grads = {k: np.zeros_like(g) for k, g in parts[0][1].items()}
    for _, g, wt, _ in parts:
        for k, v in g.items():
            grads[k] += v * np.asarray(wt / total, dtype=v.dtype)
    return float(loss), grads, sum(p[3] for p in parts)


def fit(
    model: Any,
    data: Any,
    optimizer: str | Optimizer = "adam",
    lr: Any = None,
    batch_size: int | None = 256,
    epochs: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    validation: Any = None,
    callbacks: Any = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: Any = None,
    *,
    standardize: bool | str = "auto",
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
) -> Run:
    """Train ``model`` on ``data`` by (stochastic / mini-batch / full-batch) gradient descent.

    Parameters
    ----------
    model : a :mod:`descend.models` instance or its name.
    data : ``(X, y)`` arrays or a :mod:`descend.data` source (``ds.data.open("train.parquet",
        target="y")``: Parquet, CSV or ``.npy`` files, streamed with bounded memory).
    optimizer : name or :class:`~descend.optim.Optimizer` instance; ``lr`` and ``options`` build
        a named one (``lr=None``: :data:`DEFAULT_LR`, values that train standardized data well).
    batch_size : ``None`` full-batch gradient descent, ``1`` stochastic, ``B`` mini-batch.
    epochs : ``None`` (default) trains until the training loss stops improving, checked every
        ~50,000 samples (or epoch), possibly mid-epoch: stop after ``n_iter_no_change`` checks
        whose mean batch loss did not beat the best by ``tol * max(|best|, 1)``, or at
        ``max_epochs`` (the rule: :mod:`descend.train.stopping`). An integer trains exactly
        that many epochs. ``run.stop_reason`` says which happened.
    shuffle, seed, drop_last : each epoch's order is a pure
        function of ``(seed, epoch)`` and the data's layout; ``drop_last`` skips a final short batch.
    validation : ``(X, y)``, a source, or a fraction in (0, 1) of the data's rows held out by a
        hash of ``(seed, row)`` (never trained on); evaluated after every epoch (``val_loss``
        and ``val_accuracy`` or ``val_mse``).
    callbacks : :class:`~descend.train.callbacks.Callback` objects or plain functions
        ``f(info) -> bool`` called after each step (``True`` stops). A
        :class:`~descend.schedules.ReduceOnPlateau` lr is fed the validation loss (or the training
        loss without validation) after each epoch.
    checkpoint_dir, checkpoint_every, resume : write ``checkpoint.npz`` every N steps and at the
        end; ``resume=True`` continues from it bit-exactly, refusing a checkpoint made with another
        model, optimizer, batching or data, or one that has gone further than ``epochs`` (or
        ``max_epochs``) and ``max_steps`` ask (asking for more continues it); with no checkpoint it
        warns that it starts fresh. Each checkpoint is written completely (temporary file, fsync,
        rename) before the one before it becomes ``checkpoint.prev.npz``; both carry a SHA-256 of
        their content, verified on resume: a damaged newest file falls back to the previous one,
        with a :class:`~descend.errors.CheckpointWarning` naming the file and the damage. The folder
        must be writable (checked, and created, before the first step) and is locked by one run at
        a time (``checkpoint.lock``; a second run gets a :class:`~descend.errors.CheckpointError`,
        the lock of a killed run is taken over). No checkpoint holds NaN or inf.
    progress : ``None`` (a bar on a terminal, log lines otherwise), ``False`` silences it.
    standardize : ``True`` trains on every feature scaled to mean 0 and std 1, with statistics
        from one streaming pass over the training rows (with the class pass when there is one);
        the scaler is kept in the run and checkpoint and applied by ``predict``, and
        ``run.params`` are then those of the scaled features. ``"auto"`` (default) does so only
        when the features are ill-scaled (:meth:`Scaler.needed`: standard deviations more than
        10x apart, or a mean more than 10 standard deviations from 0), which is when plain
        gradient descent crawls; ``run.scaler`` says whether it did. ``False`` never scales.
    classes : the class labels of a classifier; by default the distinct targets (found by a
        streaming pass for files). Labels may be integers or strings: ``run.predict`` returns them.
    max_steps : stop after this many updates in total.
    sample_weight : one weight per row of ``(X, y)`` arrays: the loss is the weighted mean.
    init : a :class:`Run` to continue: its parameters, optimizer state, schedule position,
        classes, scaling and history carry on, and ``epochs`` more epochs are trained (on the
        same or new data; ``optimizer`` and ``lr`` are taken from ``init``). The given run is
        not modified.
    divergence_factor : ``> 1``, or ``None`` to disable: the run has diverged when its smoothed
        batch loss grows from its best by more than this factor times the best (and by more than
        10 times the first loss); training then stops with :class:`~descend.DivergenceError` at
        the last good state, long before the loss is infinite. The rule and why it ignores
        ordinary mini-batch noise: :mod:`descend.train.stopping`.

    Raises
    ------
    DivergenceError
        when a loss, gradient or optimizer state becomes NaN/inf (parameters and optimizer state
        are left at the last step where they were finite), or when the loss grows by
        ``divergence_factor`` (left at the last good state); the exception's ``run`` holds the
        history up to that step.
    DataError
        for a missing or non-numeric value, or one the model's dtype cannot hold (above
        float32's range), naming the file, row and column; for an epoch that delivers no rows.
    CheckpointError
        when the checkpoint folder is in use by another run, or no checkpoint in it is intact.
    """
    training = _Training(
        model,
        data,
        optimizer=optimizer,
        lr=lr,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=shuffle,
        seed=seed,
        validation=validation,
        callbacks=callbacks,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
        standardize=standardize,
        classes=classes,
        drop_last=drop_last,
        options=options,
        max_steps=max_steps,
        sample_weight=sample_weight,
        init=init,
        tol=tol,
        n_iter_no_change=n_iter_no_change,
        max_epochs=max_epochs,
        divergence_factor=divergence_factor,
    )
    try:
        return training.run_all()
    finally:
        training.release()


def json_roundtrip(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, sort_keys=True, default=str))
