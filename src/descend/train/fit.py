"""fit(): train a model on any data source with any update rule, batch size and schedule."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._tree import unflatten
from ..data import ArraySource, Batch, DataError, DataSource, as_source, check_batching, split
from ..data.base import _Accumulator
from ..data.columns import column_names, named_matrix
from ..errors import CheckpointWarning, DivergenceError, ParameterError
from ..models.task import source_task
from ..optim import Optimizer, OptState
from ..optim._flat import FlatStep
from .callbacks import Callback
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointLock,
    config_hash,
    diff_configs,
    load_latest,
    open_checkpoint_dir,
    write_checkpoint,
)
from .config import FitConfig
from .history import STEP_COLUMNS as _STEP_COLUMNS
from .history import TrainHistory
from .minimize import global_norm
from .prepare import Labels, Preparer, Scaler, check_range, find_labels
from .stopping import MIN_ROWS, Divergence, DivergenceGuard, PlateauStop, non_finite

if TYPE_CHECKING:  # pragma: no cover
    from . import local_sgd

__all__ = ["FitQuality", "Run", "TrainHistory", "fit"]


@dataclass
class FitQuality:
    """How well a run fits held-out rows: accuracy for a classifier; R², RMSE and MSE (in the
    target's units) for regression. ``str()`` gives one line for a report or the command line.

    ``r2`` is None when the rows' targets are constant (R² is undefined there).
    """

    split: str
    rows: int
    accuracy: float | None = None
    r2: float | None = None
    rmse: float | None = None
    mse: float | None = None
    target: str | None = None

    @classmethod
    def of(cls, metrics: dict[str, float], split: str, target: str | None) -> FitQuality:
        return cls(
            split=split,
            rows=int(metrics["rows"]),
            accuracy=metrics.get("accuracy"),
            r2=metrics.get("r2"),
            rmse=metrics.get("rmse"),
            mse=metrics.get("mse"),
            target=target,
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        where = f"{self.split} ({self.rows:,} rows)"
        if self.accuracy is not None:
            return f"{where}: accuracy {self.accuracy:.4f}"
        units = f" ({self.target}'s units)" if self.target else ""
        r2 = "R² undefined (constant target)" if self.r2 is None else f"R² {self.r2:.4f}"
        return f"{where}: {r2}, RMSE {self.rmse:.4g}{units}"


@dataclass
class Run:
    """The outcome of :func:`fit` (or of :func:`~descend.load_run`): parameters, history, and
    prediction helpers.

    ``labels`` maps class indices to the labels as stored (``"churn"``/``"stay"``) for
    classifiers; ``scaler`` is the standardization of the features (``standardize``) and
    ``target_scaler`` that of a regression target (``standardize_target``); all are applied
    (and the target's undone) by :meth:`predict` and :meth:`predict_proba`.
    ``feature_names`` are the feature columns in the order the model takes them when the data
    had names (files, DataFrames, Arrow tables, dicts of columns), else None; data with names
    is then matched to them by name (:meth:`predict`). ``target`` names the target column and
    ``other_columns`` the training data's other columns that are not features (identifiers,
    columns left out): prediction data may hold them. ``quality`` (a :class:`FitQuality`)
    says how well the run fits its validation rows, when it had some.

    ``params`` are the model: what :meth:`predict`, :meth:`evaluate`, the validation metrics
    and :meth:`save` use. For an update rule whose evaluation point differs from the point it
    takes gradients at (``optimizer.separate_eval_point``: Schedule-Free), ``params`` are the
    evaluation point (the average x, :meth:`~descend.optim.Optimizer.eval_params`) and
    ``train_params`` the point training continues from (y, with ``state``): ``fit(init=run)``
    and checkpoints use them; callbacks that change ``params`` change what is evaluated, not
    what is trained. For every other rule ``train_params`` is None: training continues from
    ``params``.

    :meth:`save` writes what prediction needs into a folder (``model.npz``), and
    :func:`~descend.load_run` reads it back; a loaded run predicts bit for bit as this one, and
    has no optimizer state (``optimizer`` and ``state`` are None).
    """

    model: Any
    params: dict[str, np.ndarray]
    optimizer: Optimizer | None
    state: OptState | None
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
    target_scaler: Scaler | None = None
    feature_names: tuple[str, ...] | None = None
    target: str | None = None
    other_columns: tuple[str, ...] = ()
    quality: FitQuality | None = None
    #: the point training continues from when it is not ``params`` (see above), else None
    train_params: dict[str, np.ndarray] | None = None

    @property
    def classes(self) -> np.ndarray | None:
        """The class labels of a classifier, in the order of ``predict_proba``'s columns."""
        return None if self.labels is None else self.labels.values

    # -- prediction ------------------------------------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        """Predictions: the stored labels for classifiers (in their own dtype), values in the
        target's units for regression.

        ``X``: an array (n, n_features), columns by position; a named table (a pandas
        DataFrame, a pyarrow Table, a dict of columns), whose columns are matched to
        :attr:`feature_names` by name, in any order (a missing feature, or a column that was
        not in the training data, is a :class:`~descend.data.DataError` naming it; the target
        and :attr:`other_columns`, and identifiers by name, are ignored); or a
        :mod:`descend.data` source (its rows in file order). To stream a file into a file of
        predictions, see :func:`descend.train.saved.predict_file`.
        """
        if isinstance(X, DataSource):
            return _stack([self._predict_scaled(Xs) for Xs in self._source_features(X)])
        return self._predict_scaled(self._features(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of :attr:`classes` (classifiers only);
        ``X`` as for :meth:`predict`."""
        if isinstance(X, DataSource):
            return _stack([self.model.predict_proba(self.params, Xs) for Xs in self._source_features(X)])
        return self.model.predict_proba(self.params, self._features(X))

    def _predict_scaled(self, Xs: np.ndarray) -> np.ndarray:
        """Predictions from features already matched and scaled."""
        out = self.model.predict(self.params, Xs)
        if self.labels is not None:
            return self.labels.decode(out)
        if self.target_scaler is not None:
            return self.target_scaler.undo(out).astype(out.dtype, copy=False)
        return out

    def matrix(self, X: Any, owner: str = "Run.predict") -> np.ndarray:
        """``X``'s feature columns as the model takes them, before scaling: a named table's
        columns matched by name (see :meth:`predict`), an array's by position (its width checked)."""
        if column_names(X) is not None:
            if self.feature_names is not None:
                ignorable = (*self.other_columns, *((self.target,) if self.target else ()))
                X = named_matrix(X, self.feature_names, owner=owner, ignorable=ignorable)
            else:  # trained on plain arrays: columns by position, as for an array
                X = named_matrix(X, None, owner=owner)
        else:
            X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"{owner}: X must have shape (n, {self.n_features}), got {X.shape}")
        return X

    def scale(self, X: np.ndarray) -> np.ndarray:
        """Feature rows (already in the model's column order) as the model takes them: scaled,
        in the model's dtype."""
        if self.scaler is not None:
            return self.scaler.apply(X, self.model.dtype)
        return X.astype(self.model.dtype, copy=False)

    def _features(self, X: Any) -> np.ndarray:
        return self.scale(self.matrix(X))

    def _source_features(self, src: DataSource, rows: int = 1 << 16) -> Iterator[np.ndarray]:
        """The rows of a data source in file order, its columns matched to the model's by name
        where both have names, scaled."""
        idx = _source_columns(self, src)
        for b in src.batches(0, rows, shuffle=False):
            yield self.scale(b.X if idx is None else b.X[:, idx])

    # -- evaluation ----------------------------------------------------------------------------
    def loss(self, X: Any, y: Any) -> float:
        return self.evaluate(X, y)["loss"]

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """The loss (in training units: of the standardized target, if it was) and the model's
        metrics on ``(X, y)`` (stored labels): accuracy, or MSE, RMSE and R² in the target's
        units; ``rows`` counted. ``X`` as for :meth:`predict`."""
        if column_names(X) is not None:
            X = self.matrix(X, owner="Run.evaluate")
        src = as_source((X, y), owner="Run.evaluate")
        return _evaluate(self.model, self.params, src, self._prepare_batch, self.target_scaler)

    def _prepare_batch(self, batch: Batch, encoded: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """A batch as the model takes it: scaled features, encoded and checked targets."""
        where = batch.where if batch.lines is not None else None
        prep = self.__dict__.get("_prep")
        if (
            prep is None
            or prep.labels is not self.labels
            or prep.scaler is not self.scaler
            or prep.target_scaler is not self.target_scaler
        ):
            prep = self.__dict__["_prep"] = Preparer(
                self.model, self.labels, self.scaler, target_scaler=self.target_scaler
            )
        return prep(batch.X, batch.y, encoded, where)

    # -- keeping ---------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write what prediction needs into ``folder`` as one checksummed, pickle-free file,
        ``model.npz`` (see :mod:`descend.train.saved`), leaving any other file there alone;
        returns its path. :func:`~descend.load_run` reads it back."""
        from .saved import save_run

        return save_run(self, folder)

    def predict_file(self, data: Any, out: str | Path, **kw: Any) -> Any:
        """Stream predictions for the rows of a CSV or Parquet file into ``out`` (.csv, .csv.gz
        or .parquet), beside the id column: :func:`descend.train.saved.predict_file`."""
        from .saved import predict_file

        return predict_file(self, data, out, **kw)

    @classmethod
    def load(cls, path: str | Path) -> Run:
        """:func:`~descend.load_run`: a run saved by :meth:`save` (a folder, or its ``model.npz``),
        or the newest intact checkpoint of a checkpoint folder."""
        from .saved import load_run

        return load_run(path)


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0)


def _source_columns(run: Run, src: DataSource) -> np.ndarray | None:
    """Positions of the run's features among a source's feature columns (None: the same order,
    or no names to match)."""
    owner = "Run.predict"
    have, want = src.feature_names, run.feature_names
    if have is None or want is None or tuple(have) == tuple(want):
        if src.n_features != run.n_features:
            raise ValueError(
                f"{owner}: the data ({src.description}) has {src.n_features} features, the model "
                f"{run.n_features}"
            )
        return None
    missing = [c for c in want if c not in have]
    if missing:
        raise DataError(
            f"{owner}: the data ({src.description}) lacks the feature column(s) "
            f"{', '.join(map(repr, missing))} that the model was trained on; open it with "
            f"features={list(want)!r}",
            column=missing[0],
        )
    return np.asarray([list(have).index(c) for c in want])


def _evaluate(
    model: Any,
    params: dict[str, np.ndarray],
    src: DataSource,
    prepare: Any,
    target_scaler: Scaler | None = None,
    chunk: int = 8192,
) -> dict[str, float]:
    """Mean loss and metrics over a whole source, in chunks (bounded memory): accuracy for a
    classifier; MSE, RMSE and R² in the target's units for regression (predictions of a
    standardized target are scaled back first); and ``rows``."""
    total, n, correct = 0.0, 0, 0
    sse: np.ndarray | float = 0.0
    spread = _Accumulator(1, False, True) if model.task == "regression" else None
    for b in src.batches(0, chunk, shuffle=False):
        X, y = prepare(b)
        m = b.size
        total += model.loss(params, X, y) * m
        n += m
        if spread is not None:
            pred = model.predict(params, X)
            if target_scaler is not None:
                pred = target_scaler.undo(pred)
            y0 = np.asarray(b.y, dtype=np.float64).reshape(m, -1)
            if spread.d != y0.shape[1]:
                spread = _Accumulator(y0.shape[1], False, True)
            spread.add(y0, y0)
            sse = sse + np.sum((np.asarray(pred, dtype=np.float64).reshape(m, -1) - y0) ** 2, axis=0)
        else:
            correct += int(np.sum(model.predict(params, X) == np.asarray(y).reshape(-1)))
    if n == 0:  # a source that reported rows and delivered none (or a split that holds none)
        raise DataError(
            f"fit: the validation data ({src.description}) delivered no rows; it needs at least one"
        )
    out = {"loss": total / n}
    if spread is not None:
        sse = np.atleast_1d(np.asarray(sse, dtype=np.float64))
        out["mse"] = float(sse.sum() / n)
        out["rmse"] = math.sqrt(out["mse"] / len(sse))
        sst = spread.result().std ** 2 * n  # per output
        live = sst > 0
        if live.any():  # R² of each output that varies, averaged (scikit-learn's "uniform_average")
            out["r2"] = float(np.mean(1.0 - sse[live] / sst[live]))
    else:
        out["accuracy"] = correct / n
    out["rows"] = n
    return out


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
    def __init__(self, config: FitConfig, data: Any):
        self.lock: CheckpointLock | None = None
        try:
            self._setup(config, data)
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

    def _setup(self, config: FitConfig, data: Any) -> None:
        """The arguments were checked (``config``); what remains needs the data, in this order."""
        self.cfg = config
        # read on every step: kept on the instance
        self.cbs, self.reporter = config.callbacks, config.progress
        self.max_steps, self.checkpoint_every = config.max_steps, config.checkpoint_every
        self._open_data(data)
        self._choose_loop()
        self._open_checkpoints()
        self._learn_data()
        self._make_stop_rules()
        self._init_params()
        self._make_run()
        self._start_counts()

    def _open_data(self, data: Any) -> None:
        """The training source (with ``sample_weight``), the model's output where the targets
        decide it, and the validation source (held out of the data, or given) in its columns."""
        c, owner = self.cfg, self.owner
        if c.sample_weight is not None:
            if not (isinstance(data, (tuple, list)) and len(data) == 2):
                raise TypeError(f"{owner}: sample_weight needs data as an (X, y) pair of arrays")
            data = (data[0], data[1], c.sample_weight)
        source = as_source(data, owner=owner)
        self.notes: list[str] = list(source.notes)
        self.model = c.model
        if getattr(self.model, "task", None) == "unresolved":
            self.model = self._resolve_output(self.model, source)
        if c.validation_fraction is not None:
            source, val_source = split(source, c.validation_fraction, c.seed)
        elif c.validation is not None:
            val_source = as_source(c.validation, owner=owner, name="validation")
        else:
            val_source = None
        if val_source is not None:
            if val_source.n_features != source.n_features:
                raise ValueError(
                    f"{owner}: validation has {val_source.n_features} features but data has "
                    f"{source.n_features}"
                )
            val_source = _align_columns(owner, source, val_source)
        self.source, self.val_source = source, val_source

    def _choose_loop(self) -> None:
        """How epochs are run: steps (the default), rounds of local SGD on a source that runs
        them (``sync_every``), or full-batch iterations of a rule that needs the objective
        (L-BFGS: :meth:`_objective_epoch`), each refused where it cannot run."""
        self.opt = self.cfg.optimizer
        self.sync_every = self._check_sync_every()
        self.objective_rule = self.opt.needs_objective
        if self.objective_rule:
            self._check_objective_rule(self.opt)

    def _open_checkpoints(self) -> None:
        """Lock the checkpoint folder (creating it) before any pass over the data, so that a bad
        folder or one in use fails at once; with ``resume``, read its newest checkpoint."""
        folder = self.cfg.checkpoint_dir
        self.ckpt_path = None if folder is None else folder / CHECKPOINT_NAME
        self.ckpt_loaded: Path | None = None
        self._saved = None
        if folder is None:
            return
        self.lock = open_checkpoint_dir(folder, owner=self.owner)
        if not self.cfg.resume:
            return
        latest = load_latest(folder, owner=self.owner, set_aside=True)
        if latest is None:
            self._say(
                f"resume=True but checkpoint_dir {str(folder)!r} holds no checkpoint: training starts fresh"
            )
        else:
            self.ckpt_loaded, self._saved = latest

    def _make_stop_rules(self) -> None:
        """The batch size against the rows, the divergence guard, and the plateau rule of
        ``epochs=None`` (L-BFGS stops on its own tolerances instead)."""
        c, n = self.cfg, self.source.n_samples
        check_batching(self.owner, c.batch_size, n, c.drop_last)
        rows = self._update_rows(self.source)
        self.guard = DivergenceGuard(c.divergence_factor, batch_rows=rows, min_rows=min(MIN_ROWS, n))
        self.rule: PlateauStop | None = None
        if c.until_converged and not self.objective_rule:
            assert c.tol is not None and c.n_iter_no_change is not None
            period = PlateauStop.period_for(n, rows)
            unit = "steps" if self.sync_every is None else "rounds"  # what the rule is fed once each
            self.rule = PlateauStop(tol=c.tol, n_iter_no_change=c.n_iter_no_change, period=period, unit=unit)

    def _init_params(self) -> None:
        """Parameters and optimizer state: fresh from the seed, or copies of ``init``'s."""
        init, model, source = self.cfg.init, self.model, self.source
        if init is None:
            rng = np.random.default_rng([self.cfg.seed, 0])
            params = model.init(rng, source.n_features, self.n_outputs)
            state = self.opt.init(params)
        else:
            if source.n_features != init.n_features:
                raise ValueError(
                    f"{self.owner}: data has {source.n_features} features but init was trained on "
                    f"{init.n_features}"
                )
            start = init.params if init.train_params is None else init.train_params
            params = {k: v.copy() for k, v in start.items()}
            state = init.state.copy()
        # a small model is updated in one pass over flat buffers (its arrays become views)
        self.flat = FlatStep(self.opt, params, state) if FlatStep.applies(self.opt, params) else None
        self.params, self.state = params, state

    def _make_run(self) -> None:
        """What identifies the run in its checkpoints (``config``), its history, and the Run."""
        c, model, source, opt, params = self.cfg, self.model, self.source, self.opt, self.params
        self.config = {
            "model": model.config(),
            "optimizer": {"name": opt.name, **opt.hyperparameters()},
            "batch_size": c.batch_size,
            "shuffle": c.shuffle,
            "seed": c.seed,
            "drop_last": c.drop_last,
            "data": source.fingerprint(),
            "params": {k: [list(v.shape), str(v.dtype)] for k, v in params.items()},
        }
        if self.labels is not None and not self.labels.identity:
            self.config["classes"] = self.labels.classes.tolist()
        if self.scaler is not None:
            self.config["standardize"] = True
        if self.target_scaler is not None:
            self.config["standardize_target"] = True
        if self.sync_every is not None:
            self.config["sync_every"] = self.sync_every
        self.history = TrainHistory()
        # a rule that evaluates elsewhere than it takes gradients (Schedule-Free): run.params
        # are the evaluation point, kept up to date by sync_eval; training steps self.params
        self.separate = opt.separate_eval_point
        self.eval_stale = False
        self.run = Run(
            model=model,
            params=dict(opt.eval_params(params, self.state)) if self.separate else params,
            train_params=params if self.separate else None,
            optimizer=opt,
            state=self.state,
            history=self.history,
            config=self.config,
            n_features=source.n_features,
            n_outputs=self.n_outputs,
            validation=self.val_source,
            labels=self.labels,
            scaler=self.scaler,
            skipped_rows=dict(source.skipped),
            notes=self.notes,
            target_scaler=self.target_scaler,
            feature_names=None if source.feature_names is None else tuple(source.feature_names),
            target=source.target,
            other_columns=tuple(c for c in source.columns or () if c not in (source.feature_names or ())),
        )

    def _start_counts(self) -> None:
        """The cursor and counters at the start (``init``'s, continued: epochs, steps, history)."""
        self.epochs = self.cfg.epochs
        self.plateau = getattr(self.opt.lr, "observe", None)
        self.epoch, self.next_batch, self.step, self.samples = 0, 0, 0, 0
        self.epoch_loss_sum, self.epoch_batches = 0.0, 0
        self.last_lr = math.nan
        self.stop = ""
        self.checked = False
        # L-BFGS: (loss, gradients) at the parameters as they are, from the last iteration
        self.carried: tuple[float, dict[str, np.ndarray]] | None = None
        init = self.cfg.init
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
        warnings.warn(f"{self.owner}: {text}", CheckpointWarning, stacklevel=6)

    def _check_sync_every(self) -> int | None:
        """``sync_every`` against the source: None (one synchronized step at a time), or H local
        steps per round of local SGD on a source that runs them (Dask); elsewhere 1 means what
        training does anyway."""
        owner, source, opt, H = self.owner, self.source, self.opt, self.cfg.sync_every
        batch_size, drop_last = self.cfg.batch_size, self.cfg.drop_last
        if H is None:
            return None

        def refuse(why: str, param: str = "sync_every") -> None:
            raise ParameterError(f"{owner}: sync_every={H} {why}", owner=owner, param=param, value=H)

        if not source.runs_local_steps:
            if H == 1:
                return None
            refuse(
                "(local SGD: H steps per partition between averagings) needs data on a Dask cluster "
                "(in Python ds.data.from_dask(...) or (dask_X, dask_y); on the command line --dask); "
                "the data "
                f"({source.description}) is trained in this process one step at a time: leave "
                "sync_every=None"
            )
        if opt.needs_objective:
            refuse(
                f"steps {type(opt).__name__} on mini-batches inside each partition task, and "
                f"{type(opt).__name__} needs the whole objective at trial points: leave sync_every=None",
                param="optimizer",
            )
        if batch_size is None:
            refuse(
                "takes H mini-batch steps per partition task; give batch_size=B (full-batch "
                "gradient descent makes one step per epoch: leave sync_every=None)",
                param="batch_size",
            )
        hooked = [type(cb).__name__ for cb in self.cbs if type(cb).on_gradients is not Callback.on_gradients]
        if hooked:
            refuse(
                "takes its steps on the workers, where callbacks cannot see or change the gradients; "
                f"{', '.join(hooked)} has on_gradients (callbacks run once per round, after the averaging)",
                param="callbacks",
            )
        from . import local_sgd  # only for sync_every: its import is not paid by every fit

        if local_sgd.steps_per_epoch(list(source.shard_sizes()), batch_size, drop_last) == 0:
            refuse(
                f"with drop_last=True and batch_size={batch_size} leaves no local batch: every "
                "partition has fewer rows than a batch",
                param="batch_size",
            )
        return H

    def _check_objective_rule(self, opt: Optimizer) -> None:
        """L-BFGS in fit: iterations on the full-batch objective, with callbacks that only read
        gradients (a Monitor)."""
        owner, name = self.owner, type(opt).__name__
        if self.cfg.batch_size is not None:
            raise ParameterError(
                f"{owner}: batch_size={self.cfg.batch_size}"
                + (" (fit's default)" if self.cfg.batch_size == 256 else "")
                + f" with {name}: its iterations compare the loss "
                "and gradient of the whole data at trial points (curvature pairs, line search), which "
                f"mini-batches do not give; give batch_size=None (each {name} iteration then reads "
                "every row once per evaluation)",
                owner=owner,
                param="batch_size",
                value=self.cfg.batch_size,
            )
        hooked = [
            type(cb).__name__
            for cb in self.cbs
            if type(cb).on_gradients is not Callback.on_gradients and not cb.reads_gradients_only
        ]
        if hooked:
            raise ParameterError(
                f"{owner}: {', '.join(hooked)} changes gradients (on_gradients), which {name} cannot "
                "take: its line search compares the objective's own gradients; leave it out (a "
                "Monitor, which only reads them, is fine)",
                owner=owner,
                param="callbacks",
            )

    def _update_rows(self, source: DataSource) -> int:
        """Rows one update trains on: a batch, the data (full batch), or a round of local SGD."""
        if self.cfg.batch_size is None:
            return source.n_samples
        if self.sync_every is None:
            return self.cfg.batch_size
        span = self.sync_every * self.cfg.batch_size
        return sum(min(n, span) for n in source.shard_sizes())

    def _resolve_output(self, model: Any, source: DataSource) -> Any:
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

    def _learn_data(self) -> None:
        """Classes, scaling (features and target) and the model's output count: from ``init``,
        the checkpoint, or one streaming pass over the data (classes, feature and target moments
        together). Sets ``labels``, ``scaler``, ``target_scaler`` and ``n_outputs``."""
        c, model, owner, source = self.cfg, self.model, self.owner, self.source
        classes, standardize, standardize_target, init = (
            c.classes,
            c.standardize,
            c.standardize_target,
            c.init,
        )
        extra = self._saved[2]["extra"] if self._saved is not None else {}
        labels = scaler = self.target_scaler = None
        regression = model.task == "regression"
        if standardize_target is True and not regression:
            raise ParameterError(
                f"{owner}: standardize_target=True needs a regression model; {type(model).__name__} "
                f"is a {model.task} classifier",
                owner=owner,
                param="standardize_target",
                value=True,
            )
        if init is not None:
            labels, scaler, self.target_scaler = init.labels, init.scaler, init.target_scaler
            n_outputs = init.n_outputs
            if (
                labels is not None
                and classes is not None
                and not np.array_equal(Labels.of(classes).classes, labels.classes)
            ):
                raise ValueError(f"{owner}: classes={classes!r} differ from init's {labels.classes.tolist()}")
            self.labels, self.scaler, self.n_outputs = labels, scaler, n_outputs
            self._source_prepared = self._encode(source, labels, self.val_source)
            return
        classifier = not regression
        want_classes = classifier and classes is None and "classes" not in extra and source.targets is None
        if self._saved is not None:  # the checkpoint holds what the first run decided
            want_moments = want_target = False
            if "scaler_mean" in extra:
                scaler = Scaler(np.asarray(extra["scaler_mean"]), np.asarray(extra["scaler_scale"]))
            if "target_mean" in extra:
                self.target_scaler = Scaler(
                    np.asarray(extra["target_mean"]), np.asarray(extra["target_scale"])
                )
        else:
            want_moments = standardize is not False
            # "auto": a regression target is standardized unless the data is to be taken as given
            want_target = regression and (
                standardize_target is True or (standardize_target == "auto" and standardize is not False)
            )
        summary = None
        if want_classes or want_moments or want_target:
            try:
                summary = source.summarize(classes=want_classes, moments=want_moments, targets=want_target)
            except DataError as exc:
                raise type(exc)(f"{owner}: {exc}", file=exc.file, row=exc.row, column=exc.column) from None
        if summary is not None and want_moments:
            if standardize is True or (standardize == "auto" and Scaler.needed(summary.mean, summary.std)):
                scaler = Scaler.from_moments(summary.mean, summary.std)
        if summary is not None and want_target and summary.target_mean is not None:
            self.target_scaler = Scaler.for_targets(summary.target_mean, summary.target_std)
            self.notes.append(_target_note(self.target_scaler, source.target))
        if classifier:
            if "classes" in extra:
                labels = Labels(np.asarray(extra["classes"]), extra.get("label_dtype"))
            else:
                found = summary.classes if want_classes else None
                labels = find_labels(source, classes, owner, found=found)
            if model.task == "binary" and len(labels.classes) != 2:
                raise ValueError(
                    f"{type(model).__name__}: a binary model needs exactly 2 classes (labels), the "
                    f"targets hold {len(labels.classes)}: {labels.classes.tolist()[:20]}; use a softmax "
                    "model for more"
                )
            n_outputs = 1 if model.task == "binary" else len(labels.classes)
        elif source.targets is not None:
            n_outputs = model.n_outputs(source.targets)
        else:  # a streamed source: as many outputs as it declares target columns
            n_outputs = source.n_targets
        self.labels, self.scaler, self.n_outputs = labels, scaler, n_outputs
        self._source_prepared = self._encode(source, labels, self.val_source)

    def _encode(self, source, labels, val_source):
        """The training source as fit reads it, and whether its targets are already in the
        model's form (in memory: encoded, checked and scaled once, here; the preparer then
        passes them through), after checking in-memory data against the model's dtype."""
        owner, model = self.owner, self.model
        encoded = False
        checked = []
        for src in (source, val_source):  # in memory: values the model's dtype cannot hold, once
            if isinstance(src, ArraySource) and not any(src.X is X for X in checked):
                check_range(owner, src.X, model.dtype, names=src.feature_names)
                if labels is None and model.task == "regression":
                    check_range(owner, src.y, model.dtype, what="the target value")
                checked.append(src.X)
        if isinstance(source, ArraySource):  # in memory: check and encode the targets once
            source, encoded = self._encode_in_memory(source, labels), True
        if isinstance(val_source, ArraySource) and labels is not None:
            labels.encode(val_source.targets, f"{owner}: validation")
        elif isinstance(val_source, ArraySource):
            model.check_targets(val_source.targets)
        return source, encoded

    def _encode_in_memory(self, source: ArraySource, labels: Labels | None) -> ArraySource:
        y = source.y
        if labels is not None:
            enc = labels.encode(y, self.model._owner if hasattr(self.model, "_owner") else self.owner)
            if self.model.task == "binary":
                enc = enc.astype(self.model.dtype)
        else:
            enc = self.model.check_targets(y)
            if self.target_scaler is not None:  # once, from the values as given (float64)
                enc = self.target_scaler.scale_targets(np.asarray(y).reshape(enc.shape), self.model.dtype)
        return source if enc is y else source.with_targets(enc)

    # -- resume ------------------------------------------------------------------------------------
    def restore(self) -> bool:
        """Continue from the checkpoint when resuming; True when it already finished."""
        self.source, self.encoded = self._source_prepared
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
        if self.separate:  # the evaluation point as saved (a callback may have set it), or anew
            for k, v in (extra.get("eval_params") or self.opt.eval_params(self.params, self.state)).items():
                np.copyto(self.run.params[k], v)
        self.epoch, self.next_batch = int(meta["epoch"]), int(meta["batch"])
        self.step, self.samples = int(meta["step"]), int(meta["samples_seen"])
        self.epoch_loss_sum, self.epoch_batches = float(extra["epoch_loss_sum"]), int(extra["epoch_batches"])
        self.run.history = self.history = TrainHistory.from_arrays(extra["history"])
        for cb, cb_state in zip(self.cbs, extra["callbacks"], strict=False):
            cb.load_state_dict(cb_state)
        if extra.get("schedule") is not None and hasattr(self.opt.lr, "load_state_dict"):
            self.opt.lr.load_state_dict(extra["schedule"])
        if self.objective_rule and extra.get("objective") is not None:
            at = extra["objective"]
            grads = {k: np.array(at["grads"][k], dtype=v.dtype) for k, v in self.params.items()}
            self.carried = (float(at["loss"]), grads)
        if self.rule is not None and extra.get("stop_rule") is not None:
            self.rule.load_state_dict(extra["stop_rule"])
        self.guard.load_state_dict(extra.get("divergence_guard"))
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
        name = self.cfg.epochs_name
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
        if self.state_not_finite() is not None:
            return  # never persist a non-finite state; the next loss check raises DivergenceError
        seed, epoch = self.cfg.seed, self.epoch
        extra: dict[str, Any] = {
            "epoch_loss_sum": self.epoch_loss_sum,
            "epoch_batches": self.epoch_batches,
            "history": self.history.to_arrays(),
            "callbacks": [cb.state_dict() for cb in self.cbs],
            "schedule": self.opt.lr.state_dict() if hasattr(self.opt.lr, "state_dict") else None,
            "stop_rule": None if self.rule is None else self.rule.state_dict(),
            "divergence_guard": self.guard.state_dict(),
        }
        run = self.run
        if run.labels is not None:
            extra["classes"] = run.labels.classes
            if run.labels.dtype is not None:
                extra["label_dtype"] = run.labels.dtype
        if run.scaler is not None:
            extra["scaler_mean"], extra["scaler_scale"] = run.scaler.mean, run.scaler.scale
        if run.target_scaler is not None:
            extra["target_mean"], extra["target_scale"] = run.target_scaler.mean, run.target_scaler.scale
        if self.separate:  # the model (ds.load_run reads it); training resumes from params and state
            self.sync_eval()
            extra["eval_params"] = run.params
        if self.carried is not None:  # L-BFGS: where the next iteration starts, without a pass
            extra["objective"] = {"loss": self.carried[0], "grads": self.carried[1]}
        # what a run loaded from this checkpoint (ds.load_run) matches prediction data by
        extra["columns"] = {
            "features": None if run.feature_names is None else list(run.feature_names),
            "target": run.target,
            "other": list(run.other_columns),
        }
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
            self.measure_quality()
            return self.run
        if self.sync_every is None:
            n_batches = self.source.n_batches(self.cfg.batch_size, self.cfg.drop_last)
        else:  # local steps
            from . import local_sgd

            n_batches = local_sgd.steps_per_epoch(
                list(self.source.shard_sizes()), self.cfg.batch_size, self.cfg.drop_last
            )
        self.batches_per_epoch = n_batches
        total: int | None = n_batches * self.epochs
        if self.max_steps is not None:
            total = min(self.max_steps, total)
        elif self.rule is not None:
            total = None  # it stops when it converges
        for cb in self.cbs:
            cb.on_train_begin(self.run)
        if self.separate and int(self.state.t) == 0:
            # before the first step the two points are one: a callback may have set the start
            for k, v in self.run.params.items():
                np.copyto(self.params[k], v)
        self.snapshot: tuple[dict[str, np.ndarray], OptState] | None = None
        self.snapshot_step = -1
        self.good: tuple[dict[str, np.ndarray], OptState] | None = None
        self.good_step = -1
        self.risk = _RISK[np.dtype(self.model.dtype).name]
        self.leaves = list(self.params.values())
        self.history_columns = [self.history.steps[c] for c in _STEP_COLUMNS]
        # local SGD's rows are rounds; a synchronized step (a run it continues, init=) is a round
        # of one step
        steps_done = len(self.history.steps["step"])
        if self.sync_every is not None and "round" not in self.history.steps:
            self.history.steps["round"] = list(range(1, steps_done + 1))
            self.history.steps["local_steps"] = [1] * steps_done
        self.round_columns = (
            (self.history.steps["round"], self.history.steps["local_steps"])
            if "round" in self.history.steps
            else None
        )
        steps = self.history.steps["time"]
        self.t0 = time.perf_counter() - (steps[-1] if steps else 0.0)
        self.reporter.start(
            total, f"fit {type(self.model).__name__} with {self.opt!r}, batch_size={self.cfg.batch_size}"
        )
        try:
            while self.epoch < self.epochs and not self.stop:
                finished = self.run_epoch()
                # a stop at the epoch's last batch (max_steps, the convergence rule, a callback)
                # still ends the epoch: its row, validation and epoch callbacks
                if finished or (self.next_batch >= self.batches_per_epoch and self.epoch_batches):
                    self.end_epoch()
            if not self.stop:
                self.stop = f"completed {self.epochs} epochs"
                if self.objective_rule:  # an epoch is an iteration; its tolerances did not hold
                    self.stop = (
                        f"reached {self.cfg.epochs_name}={self.epochs} iterations before "
                        f"{type(self.opt).__name__}'s tolerances (tolerance_grad, tolerance_change) held"
                    )
                elif self.rule is not None:
                    self.stop = f"reached max_epochs={self.epochs} before the convergence rule held"
        finally:
            self.reporter.close()
        self.sync_eval()  # the model the callbacks see last (EarlyStopping may put back another)
        for cb in self.cbs:
            cb.on_train_end(self.run)
        self.run.stop_reason = self.stop
        self.run.steps_completed = self.step
        self.run.skipped_rows = dict(self.source.skipped or self.run.skipped_rows)
        if (bad := self.state_not_finite()) is not None:  # never "completed" with a NaN or inf inside
            self.diverged(self.next_batch, Divergence.not_finite(bad))
        if self.ckpt_path is not None:
            self.save_checkpoint(finished=True)
        self.measure_quality()
        return self.run

    def measure_quality(self) -> None:
        """``run.quality``: the final parameters on the validation rows (one more pass over them:
        a callback may have restored other parameters than the last epoch's)."""
        if self.val_source is None:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            metrics = _evaluate(
                self.model, self.run.params, self.val_source, self.run._prepare_batch, self.run.target_scaler
            )
        self.run.quality = FitQuality.of(metrics, "validation", self.run.target)

    def run_epoch(self) -> bool:
        """Train the rest of the current epoch; False when a callback or max_steps stopped it."""
        if self.next_batch == 0:
            self.epoch_loss_sum, self.epoch_batches = 0.0, 0
        # overflow to inf/NaN is what the divergence guard looks for: no NumPy warnings meanwhile
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.objective_rule:
                return self._objective_epoch()
            if self.sync_every is not None:
                return self._rounds_epoch()
            if self.source.computes_gradients:
                return self._remote_epoch()
            return self._local_epoch()

    def _preparer(self) -> Preparer:
        """How stored rows become what the model takes (here, or where the rows live); the
        features of in-memory data were checked against the model's dtype up front (_encode)."""
        return Preparer(
            self.model,
            self.run.labels,
            self.run.scaler,
            check_range=not isinstance(self.source, ArraySource),
            feature_names=self.source.feature_names,
            target_scaler=self.run.target_scaler,
        )

    def _where(self) -> dict[str, Any]:
        return {
            # a full batch is every row whatever their order: not shuffled (no copy of the data
            # each epoch; the sum is the same up to rounding)
            "shuffle": self.cfg.shuffle and self.cfg.batch_size is not None,
            "seed": self.cfg.seed,
            "drop_last": self.cfg.drop_last,
            "start": self.next_batch,
        }

    def _remote_epoch(self) -> bool:
        """A distributed source computes each batch's (loss, gradient) where its rows live, for
        the parameters as they are when the next result is asked for."""
        prep = self._preparer()
        for index, loss, grads, rows in self.source.gradients(
            self.model, self.params, prep, self.epoch, self.cfg.batch_size, **self._where()
        ):
            if self.take_step(index, loss, grads, rows):
                return False
        return True

    def _rounds_epoch(self) -> bool:
        """Local SGD (``sync_every``): rounds of up to H local steps on every partition, averaged
        (:mod:`descend.train.local_sgd`); the cursor ``next_batch`` counts local batches."""
        prep = self._preparer()
        sizes = list(self.source.shard_sizes())
        from . import local_sgd

        m = local_sgd.steps_per_epoch(sizes, self.cfg.batch_size, self.cfg.drop_last)
        while self.next_batch < m:
            steps = min(self.sync_every, m - self.next_batch)
            if self.max_steps is not None:  # max_steps is exact: the last round is cut short
                steps = min(steps, self.max_steps - self.step)
            plan = local_sgd.plan_round(
                sizes, self.cfg.batch_size, self.cfg.drop_last, self.epoch, self.next_batch, steps
            )
            result = local_sgd.run_round(
                self.source,
                self.opt,
                self.params,
                self.state,
                prep,
                plan,
                seed=self.cfg.seed,
                shuffle=self.cfg.shuffle,
            )
            if self.take_round(plan, result):
                return False
        return True

    def take_round(self, plan: local_sgd.RoundPlan, result: local_sgd.Round) -> bool:
        """The averaged model of a round becomes the parameters and state; True when training
        should stop now. A non-finite value leaves the parameters at the round's start."""
        first = self.step + 1
        where = f"round {len(self.history.steps['step']) + 1} (steps {first}-{self.step + plan.steps})"
        if result.bad is not None:
            p, k, what = result.bad
            self._raise(
                f"{self.owner}: the {what} became non-finite in {where}, at local step {k + 1} of partition "
                f"{p} (epoch {self.epoch + 1}) with {self.opt!r}; parameters are left at the start of the "
                f"round (step {self.step}); try a smaller learning rate",
                quantity=what,
            )
        guard = self.guard
        if guard.k == 0 and result.start is not None:  # the run's first round: from its start
            if (found := guard.check(*result.start)) is not None:
                self.diverged(plan.first, found)
        if (found := guard.check(result.loss, result.grad_norm, result.rows)) is not None:
            self.diverged(plan.first, found)
        if guard.keep_now:
            self.keep_good_state()
        finite = all(np.isfinite(v).all() for v in result.params.values()) and all(
            np.isfinite(b).all() for bufs in result.state.buffers.values() for b in bufs
        )
        if not finite:
            self._raise(
                f"{self.owner}: the averaged model of {where} is not finite (epoch {self.epoch + 1}) with "
                f"{self.opt!r}; parameters are left at the start of the round (step {self.step}); try a "
                "smaller learning rate",
                quantity="update",
            )
        lr_now = self.last_lr = self.opt.lr_at(int(self.state.t) + plan.steps - 1)
        for k, v in result.params.items():
            np.copyto(self.params[k], v)
        self.state.restore_from(result.state)
        self.eval_stale = self.separate
        before = self.step
        self.step += plan.steps
        self.samples += result.rows
        self.epoch_loss_sum += result.loss * plan.steps  # the epoch's loss: a mean over local steps
        self.epoch_batches += plan.steps
        now = time.perf_counter() - self.t0
        values = (self.step, self.epoch, result.loss, lr_now, result.grad_norm, self.samples, now)
        for column, val in zip(self.history_columns, values, strict=True):
            column.append(val)
        assert self.round_columns is not None
        rounds, local = self.round_columns
        rounds.append(len(rounds) + 1)
        local.append(plan.steps)
        self.reporter.update(self.step, self.epoch, result.loss, lr_now, self.samples)
        stop_now = False
        if self.cbs:
            info = dict(zip(_STEP_COLUMNS, values, strict=True))
            info.update(batch=plan.first, round=rounds[-1], local_steps=plan.steps)
            self.sync_eval()
        for cb in self.cbs:
            if cb.on_step_end(self.run, info) is True:
                stop_now = True
                self.stop = self.stop or f"stopped by {type(cb).__name__} after {where}"
        if self.rule is not None and self.rule.update(result.loss):
            stop_now = True
            self.stop = self.stop or self.rule.reason(self.step, self.epoch + 1, self.samples)
        if self.max_steps is not None and self.step >= self.max_steps:
            stop_now, self.stop = True, self.stop or f"max_steps={self.max_steps} reached"
        self.next_batch = plan.first + plan.steps
        every = self.checkpoint_every
        if every is not None and self.step // every > before // every:  # a multiple passed in the round
            self.save_checkpoint()
        return stop_now

    def _local_epoch(self) -> bool:
        parts: list[_Part] = []
        model, params = self.model, self.params
        # in-memory features were checked against the model's dtype up front (fit's _encode)
        prep = self._preparer()
        # targets were checked up front (in memory) or by the preparer (files): no re-checking
        value_and_grad = getattr(model, "_value_and_grad", None)
        width = (self.run.n_features,)
        for batch in self.source.batches(self.epoch, self.cfg.batch_size, **self._where()):
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

    def _objective(self, prep: Preparer) -> Any:
        """``fun_and_grad(params) -> (loss, gradients)`` of the full-batch objective: the same
        bits from every source (:mod:`descend.data.objective`); counts the passes it makes."""
        source, model, encoded = self.source, self.model, self.encoded

        def fun_and_grad(params: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
            self.passes += 1
            return source.objective(model, params, prep, encoded=encoded).mean(params)

        return fun_and_grad

    def _objective_epoch(self) -> bool:
        """One iteration of a rule that needs the objective (L-BFGS): one step and one epoch.

        Each iteration is its own :meth:`~descend.LBFGS.minimize_step` call (ended after its
        first iteration), handed the evaluation the previous one ended with: so every iteration
        has the same evaluation budget (``max_eval``) whether a run is resumed or not, and a
        checkpoint between iterations resumes bit-exactly. False when training should stop
        before this epoch counts (nothing moved)."""
        opt, state, params = self.opt, self.state, self.params
        fun_and_grad = self._objective(self._preparer())
        self.passes = 0
        if self.carried is None:  # the first iteration, or resumed without a saved evaluation
            self.carried = fun_and_grad(params)
        loss0, grads0 = self.carried
        gnorm0 = global_norm(grads0.values())
        if (found := non_finite(loss0, gnorm0)) is not None:
            self.diverged(0, found)
        for cb in self.cbs:  # only those that read them (_check_objective_rule)
            cb.on_gradients(self.run, {k: _read_only(v) for k, v in grads0.items()})
        start = {k: v.copy() for k, v in params.items()}
        made: list[tuple[Any, Any, float]] = []

        def on_iterate(loss: float | None, flat_grad: np.ndarray | None, t: float) -> bool:
            made.append((loss, flat_grad, t))
            return True  # one iteration per call

        opt.minimize_step(fun_and_grad, params, state, evaluated=self.carried, on_iterate=on_iterate)
        if not made:  # no iteration: the gradient is below tolerance_grad, or no descent direction
            self.stop = self._objective_done(grads0, None)
            self.samples += self.passes * self.source.n_samples
            return False
        loss, flat_grad, t = made[0]
        if loss is None:  # a fixed step that was the call's last (max_iter=1): evaluate here
            loss, grads = fun_and_grad(params)
        else:
            leaves = [
                g.reshape(shape) for g, shape in zip(_split_flat(flat_grad, state), state.shapes, strict=True)
            ]
            grads = unflatten(state.treedef, leaves)
        gnorm = global_norm(grads.values())
        rows = self.source.n_samples
        found = self.guard.check(loss, gnorm, rows)
        if found is not None and not found.grew:
            for k, v in start.items():
                np.copyto(params[k], v)
            self._raise(
                f"{self.owner}: the {found.cause} at iteration {self.step + 1} with {opt!r}; parameters "
                f"are left at the last finite iterate (step {self.step}); try a line search "
                "(options={'line_search_fn': 'strong_wolfe'}) or a smaller lr",
                quantity=found.quantity,
                cause=found.cause,
            )
        self.carried = (loss, grads)
        if found is not None:
            self.diverged(0, found)
        if self.guard.keep_now:
            self.keep_good_state()
        self.eval_stale = self.separate
        before_loss = float(state.scalars["prev_loss"])
        self.step += 1
        self.samples += self.passes * rows
        self.epoch_loss_sum += loss
        self.epoch_batches += 1
        self.last_lr = float(t)
        now = time.perf_counter() - self.t0
        values = (self.step, self.epoch, loss, float(t), gnorm, self.samples, now)
        for column, val in zip(self.history_columns, values, strict=True):
            column.append(val)
        self.reporter.update(self.step, self.epoch, loss, float(t), self.samples)
        if self.cbs:
            info = dict(zip(_STEP_COLUMNS, values, strict=True))
            info["batch"] = 0
        for cb in self.cbs:
            if cb.on_step_end(self.run, info) is True:
                self.stop = self.stop or f"stopped by {type(cb).__name__} at iteration {self.step}"
        if not self.stop:
            self.stop = self._objective_done(grads, (before_loss, loss, t))
        if self.max_steps is not None and self.step >= self.max_steps:
            self.stop = self.stop or f"max_steps={self.max_steps} reached"
        self.next_batch = 1
        if self.checkpoint_every is not None and self.step % self.checkpoint_every == 0:
            self.save_checkpoint()
        return True  # the iteration is the epoch: end_epoch records it, then the loop sees self.stop

    def _objective_done(self, grads: dict[str, np.ndarray], moved: tuple[float, float, float] | None) -> str:
        """Why L-BFGS stops here ("" to go on): torch's tests that end a step (``tolerance_grad``
        on the largest gradient entry, ``tolerance_change`` on the step and on the loss change);
        ``moved`` is (loss before, loss after, step length), None when no iteration was made."""
        opt = self.opt
        gmax = max(float(np.max(np.abs(g))) for g in grads.values())
        k = self.step
        if gmax <= opt.tolerance_grad:
            return (
                f"converged after {k} iterations: the largest gradient entry {gmax:.3g} <= "
                f"tolerance_grad {opt.tolerance_grad:g}"
            )
        if moved is None:
            return (
                f"converged after {k} iterations: no descent direction left at this precision (the "
                f"slope along {type(opt).__name__}'s direction is above -tolerance_change "
                f"{opt.tolerance_change:g})"
            )
        before, after, t = moved
        d = self.state.buffers["d"]
        step = max(float(np.max(np.abs(v))) for v in d) * abs(t)
        if step <= opt.tolerance_change:
            return (
                f"converged after {k} iterations: the last step's largest entry {step:.3g} <= "
                f"tolerance_change {opt.tolerance_change:g}"
                + (" (the line search found no step that lowers the loss)" if t == 0 else "")
            )
        if abs(after - before) < opt.tolerance_change:
            return (
                f"converged after {k} iterations: the loss changed by {abs(after - before):.3g} < "
                f"tolerance_change {opt.tolerance_change:g}"
            )
        return ""

    def take_step(self, index: int, loss: float, grads: dict[str, np.ndarray], rows: int) -> bool:
        """One update from a batch's loss and gradient; True when training should stop now."""
        flat = self.flat if self.checked else None
        if flat is not None and not self.cbs:  # gathered once: its norm, then the update
            g = flat.load(grads.values())
            gnorm = math.sqrt(sq) if math.isfinite(sq := float(np.vdot(g, g))) else global_norm((g,))
        else:
            gnorm = global_norm(grads.values())
        guard = self.guard  # a non-finite value, or a loss grown by orders of magnitude
        if (found := guard.check(loss, gnorm, rows)) is not None:
            self.diverged(index, found)
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
        self.eval_stale = self.separate
        if risky and (bad := self.state_not_finite()) is not None:
            self.restore_snapshot()
            self.diverged(index, Divergence.not_finite(bad))
        self.step += 1
        self.samples += rows
        self.epoch_loss_sum += loss
        self.epoch_batches += 1
        now = time.perf_counter() - self.t0
        values = (self.step, self.epoch, loss, lr_now, gnorm, self.samples, now)
        for column, val in zip(self.history_columns, values):  # noqa: B905 (same length, hot loop)
            column.append(val)
        if self.round_columns is not None:  # continuing a local SGD run: a round of one step
            self.round_columns[0].append(len(self.round_columns[0]) + 1)
            self.round_columns[1].append(1)
        self.reporter.update(self.step, self.epoch, loss, lr_now, self.samples)
        stop_now = False
        if self.cbs:
            info = dict(zip(_STEP_COLUMNS, values, strict=True))
            info["batch"] = index
            self.sync_eval()
        for cb in self.cbs:
            if cb.on_step_end(self.run, info) is True:
                stop_now = True
                where = f"at step {self.step} (epoch {self.epoch + 1})"
                self.stop = self.stop or f"stopped by {type(cb).__name__} {where}"
        if self.rule is not None and self.rule.update(loss):
            stop_now = True
            self.stop = self.stop or self.rule.reason(self.step, self.epoch + 1, self.samples)
        if self.max_steps is not None and self.step >= self.max_steps:
            stop_now, self.stop = True, self.stop or f"max_steps={self.max_steps} reached"
        self.next_batch = index + 1
        if self.checkpoint_every is not None and self.step % self.checkpoint_every == 0:
            self.save_checkpoint()
        return stop_now

    def take_snapshot(self) -> None:
        self.snapshot_step = self.step
        if self.snapshot is None or self.snapshot[1].buffers.keys() != self.state.buffers.keys():
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

    def state_not_finite(self) -> str | None:
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
        # a state that grows buffers as it goes (L-BFGS's curvature pairs) is copied anew
        if self.good is None or self.good[1].buffers.keys() != self.state.buffers.keys():
            self.good = ({k: v.copy() for k, v in self.params.items()}, self.state.copy())
        else:
            for k, v in self.params.items():
                np.copyto(self.good[0][k], v)
            self.good[1].restore_from(self.state)

    def _at(self, index: int) -> str:
        """Where the run is, in its own units: a batch of an epoch, an iteration of a rule that
        needs the objective (one per full-batch epoch), or a round of local SGD (``index``: its
        first local batch)."""
        if self.objective_rule:
            return f"iteration {self.step + 1} (epoch {self.epoch + 1})"
        if self.sync_every is not None:
            return f"step {self.step + 1} (epoch {self.epoch + 1}, the round from local batch {index})"
        return f"step {self.step + 1} (epoch {self.epoch + 1}, batch {index})"

    def _hint(self) -> str:
        """What to try after a divergence: a line search for L-BFGS on fixed steps, else a smaller lr."""
        if self.objective_rule and getattr(self.opt, "line_search_fn", None) is None:
            return "try a line search (options={'line_search_fn': 'strong_wolfe'}) or a smaller lr"
        return "try a smaller learning rate"

    def _grew(self, index: int, found: Divergence) -> None:
        """Raise DivergenceError for a loss grown by orders of magnitude (train/stopping.py), with
        the parameters and optimizer state of the last good state."""
        at = self._at(index)
        if self.good is not None:
            for k, v in self.good[0].items():
                np.copyto(self.params[k], v)
            self.state.restore_from(self.good[1])
            where = f"parameters are left at step {self.good_step}, the last good state"
        else:
            where = "parameters are left at this step (no good state was kept before it)"
        self._raise(
            f"{self.owner}: diverged at {at} with {self.opt!r}: {self.guard.reason()}; {where}; "
            f"{self._hint()} (or divergence_factor=None to train on)",
            quantity=found.quantity,
            cause=found.cause,
        )

    def sync_eval(self) -> None:
        """``run.params`` <- the evaluation point of the parameters and state as they are now, for
        a rule whose evaluation point differs (nothing to do for the others, or when nothing has
        changed since the last call)."""
        if self.eval_stale:
            for k, v in self.opt.eval_params(self.params, self.state).items():
                np.copyto(self.run.params[k], v)
            self.eval_stale = False

    def _raise(self, message: str, *, quantity: str, cause: str | None = None) -> None:
        self.eval_stale = self.separate  # the parameters may have been rolled back
        self.sync_eval()
        self.reporter.close()
        self.run.stop_reason = f"diverged at step {self.step + 1} (epoch {self.epoch + 1})"
        self.run.steps_completed = self.step
        exc = DivergenceError(message, step=self.step + 1, epoch=self.epoch, quantity=quantity, cause=cause)
        exc.run = self.run
        raise exc

    def diverged(self, index: int, found: Divergence) -> None:
        """Raise DivergenceError (carrying the run) for what the divergence guard found: a loss
        grown by orders of magnitude (left at the last good state), or a value that is not
        finite (left at the last finite step)."""
        if found.grew:
            self._grew(index, found)
        what = found.quantity
        rolled_back = what in ("update", "optimizer state")  # by take_step already
        if not rolled_back and self.snapshot is not None and self.snapshot_step == self.step - 1:
            self.restore_snapshot()  # back to the parameters whose loss and gradient were finite
        finite = self.state_not_finite() is None
        where = (
            "parameters are left at the last finite step"
            if finite
            else ("the parameters overflowed in an update that looked safe; they are not finite")
        )
        hint = self._hint() + (", or standardize the features" if what == "optimizer state" else "")
        self._raise(
            f"fit: the {found.cause} at {self._at(index)} with {self.opt!r}; {where}; {hint}",
            quantity=what,
            cause=found.cause,
        )

    def end_epoch(self) -> None:
        """Epoch metrics, the plateau schedule, epoch callbacks and the epoch checkpoint."""
        if self.epoch_batches == 0:
            # a source that reported rows and delivered none: "completed N epochs" would be a lie
            n = self.source.n_samples
            batches = self.source.n_batches(self.cfg.batch_size, self.cfg.drop_last)
            raise DataError(
                f"{self.owner}: epoch {self.epoch} ran 0 steps: the data ({self.source.description}) "
                f"reported {n} rows ({batches} batches) "
                "but delivered none; no epoch may end without an update"
            )
        row: dict[str, float] = {
            "epoch": self.epoch,
            "train_loss": self.epoch_loss_sum / max(self.epoch_batches, 1),
            "lr": self.last_lr,
            "samples_seen": self.samples,
            "time": time.perf_counter() - self.t0,
        }
        self.sync_eval()  # validation and the epoch callbacks see the model (Schedule-Free's x)
        if self.val_source is not None:
            with np.errstate(over="ignore", invalid="ignore"):  # a blow-up shows as inf, not a warning
                metrics = _evaluate(
                    self.model,
                    self.run.params,
                    self.val_source,
                    self.run._prepare_batch,
                    self.run.target_scaler,
                )
            metrics.pop("rows")
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


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


def _split_flat(flat: np.ndarray, state: OptState) -> list[np.ndarray]:
    """The leaves of one flat vector laid end to end in the state's leaf order."""
    out, at = [], 0
    for shape in state.shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(flat[at : at + size])
        at += size
    return out


def _align_columns(owner: str, source: DataSource, val: DataSource) -> DataSource:
    """The validation data with its feature columns in the training data's order, where both
    name them (in-memory tables are reordered; other sources must name them in the same order)."""
    have, want = val.feature_names, source.feature_names
    if have is None or want is None or tuple(have) == tuple(want):
        return val
    if set(have) != set(want):
        raise DataError(
            f"{owner}: validation has the feature columns {', '.join(map(repr, have))}, the data "
            f"{', '.join(map(repr, want))}; they must be the same columns"
        )
    if not isinstance(val, ArraySource):
        raise DataError(
            f"{owner}: validation ({val.description}) names its feature columns in another order than "
            f"the data; open it with features={list(want)!r}"
        )
    idx = [list(have).index(c) for c in want]
    out = ArraySource._trusted(np.ascontiguousarray(val.X[:, idx]), val.y, val.description)
    out.w, out.rows = val.w, val.rows
    out.feature_names, out.target, out.columns = tuple(want), val.target, val.columns
    return out


def _target_note(scaler: Scaler, name: str | None) -> str:
    """What run.notes says of a standardized target."""

    def fmt(a: np.ndarray) -> str:
        return f"{a[0]:.6g}" if len(a) == 1 else "[" + ", ".join(f"{v:.4g}" for v in a) + "]"

    what = f"the target {name!r}" if name else "the target"
    return (
        f"standardized {what} (mean {fmt(scaler.mean)}, std {fmt(scaler.scale)}): the model learns "
        "(y - mean) / std, so the training loss is in standardized units; predict and the validation "
        "metrics (val_mse, val_rmse, run.quality) are in the target's units (standardize_target=False "
        "trains on the target as given)"
    )


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
) -> Run:
    """Train ``model`` on ``data`` by (stochastic / mini-batch / full-batch) gradient descent.

    Parameters
    ----------
    model : a :mod:`descend.models` instance or its name.
    data : ``(X, y)`` arrays or a :mod:`descend.data` source (``ds.data.open("train.parquet",
        target="y")``: Parquet, CSV or ``.npy`` files, streamed with bounded memory).
    optimizer : name or :class:`~descend.optim.Optimizer` instance; ``lr`` and ``options`` build
        a named one (``lr=None``: the rule's ``fit_lr``, one that trains standardized data
        well: ``ds.optim.rule(name).fit_lr``).
    batch_size : ``None`` full-batch gradient descent, ``1`` stochastic, ``B`` mini-batch.
        ``optimizer="lbfgs"`` (:class:`~descend.LBFGS`, with a strong-Wolfe line search unless
        ``options`` say otherwise) takes ``batch_size=None`` only: each step, and each epoch,
        is one of its iterations on the full-batch objective, evaluated in blocks at fixed row
        positions and added in a fixed tree (:mod:`descend.data.objective`), so that arrays,
        ``.npy``, Parquet, CSV and Dask give the same bits. Each iteration is one
        ``minimize_step`` call (up to ``max_eval`` evaluations: the line search) handed the
        evaluation the last one ended with. It stops on its own tolerances (``tolerance_grad``
        on the largest gradient entry, ``tolerance_change`` on the step and the loss change) or
        after ``epochs`` (``epochs=None``: ``max_epochs``) iterations; ``run.stop_reason`` says
        which. The history's loss and grad_norm are at the iterate reached, lr is the step
        length, and ``samples_seen`` counts every row read (evaluations x rows). Callbacks that
        change gradients are refused; a :class:`~descend.Monitor` sees the gradient each
        iteration starts from.
    sync_every : ``None`` (default), or ``H >= 1`` on a Dask source: local SGD (periodic model
        averaging; :mod:`descend.train.local_sgd`). Each round ships the parameters and the
        optimizer state to one task per partition, which takes up to ``H`` mini-batch steps of
        ``batch_size`` rows on its own partition's rows; the client averages the tasks'
        parameters and optimizer buffers, weighted by their rows, into the next round's start.
        One round trip per ``H`` steps instead of one per step. It is a different algorithm
        from sequential SGD (Zinkevich et al. 2010; Stich 2018): a round trains on up to
        ``partitions x H x batch_size`` rows, and the averaged buffers of an adaptive rule
        (Adam's ``v``) are not those of one run; with one partition it gives the same bits as
        ``sync_every=None``, whatever H. With P partitions, multiply the lr by P (Goyal et al.
        2017's linear scaling rule): the average of P models that each took H steps from the
        same start moves about as far as H sequential steps, not P x H, so at sequential SGD's
        lr an epoch ends further from its loss. ``max_steps``, ``checkpoint_every`` and schedules
        count local steps (a round advances the optimizer's ``t`` by its length); callbacks run
        after each round; ``run.history.steps`` has one row per round. On any other data,
        ``1`` is what training does anyway and larger values are refused; mini-batches only
        (``batch_size=B``), and no callback that changes gradients (``on_gradients``).
    epochs : ``None`` (default) trains until the training loss stops improving, checked every
        ~50,000 samples (or epoch), possibly mid-epoch: stop after ``n_iter_no_change`` checks
        whose mean batch loss did not beat the best by ``tol * max(|best|, 1)``, or at
        ``max_epochs`` (the rule: :mod:`descend.train.stopping`). An integer trains exactly
        that many epochs. ``run.stop_reason`` says which happened.
    shuffle, seed, drop_last : each epoch's order is a pure
        function of ``(seed, epoch)`` and the data's layout; ``drop_last`` skips a final short batch.
    validation : ``(X, y)``, a source, or a fraction in (0, 1) of the data's rows held out by a
        hash of ``(seed, row)`` (never trained on); evaluated after every epoch (``val_loss``,
        and ``val_accuracy`` or ``val_mse``, ``val_rmse`` and ``val_r2`` in the target's units)
        and at the end: ``run.quality`` (a :class:`FitQuality`: accuracy, or R² and RMSE).
    callbacks : :class:`~descend.train.callbacks.Callback` objects or plain functions
        ``f(info) -> bool`` called after each step (``True`` stops). A
        :class:`~descend.schedules.ReduceOnPlateau` lr is fed the validation loss (or the training
        loss without validation) after each epoch.
    monitor : a :class:`~descend.Monitor` (``ds.Monitor(every=N, probe=..., curvature_every=...)``)
        recording per-layer gradient and weight norms, update ratios, unit health and curvature
        into ``run.history.monitor`` (off by default); the same as adding it to ``callbacks``.
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
    standardize_target : ``True`` trains a regression model on its target scaled to mean 0 and
        std 1 per output (moments from the same streaming pass), so that the default lr suits
        a target of any mean and scale; ``run.target_scaler`` keeps the scaling, which is saved
        in the checkpoint and the run folder and undone by ``predict``, and validation metrics
        are in the target's units (the training and validation *loss* are in standardized
        units, ``run.params`` are those of the scaled target). ``"auto"`` (default) does so for
        every regression model unless ``standardize=False`` (data taken exactly as given);
        ``False`` never scales the target. ``run.notes`` says when it was done and with which
        mean and std. Classifiers have no target to scale (``True`` is refused).
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
    config = FitConfig.of(
        model,
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
        standardize_target=standardize_target,
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
        monitor=monitor,
        sync_every=sync_every,
    )
    training = _Training(config, data)
    try:
        return training.run_all()
    finally:
        training.release()


def json_roundtrip(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, sort_keys=True, default=str))
