"""scikit-learn estimators over descend's models and fit(): DescendRegressor and DescendClassifier."""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from . import models, schedules
from ._registry import normalize
from .data import DataSource
from .data._moments import scale_or_one
from .errors import ParameterError
from .models._activations import ACTIVATIONS
from .optim import Optimizer, rule
from .optim import names as optimizer_names
from .train import fit as ds_fit
from .train.callbacks import EarlyStopping
from .train.fit import Run

__all__ = ["DescendClassifier", "DescendRegressor"]

#: ``schedule`` names built from ``lr`` and the number of steps ``epochs`` passes take
SCHEDULES = ("constant", "linear_decay", "cosine", "inverse_time", "reduce_on_plateau")


class _RuleNames(AbstractSet[str]):
    """The registered update rules' names, read from the registry at each check (a rule
    registered after import is accepted too); any spelling the registry reads is in it."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize(name) in optimizer_names()

    def __iter__(self) -> Iterator[str]:
        return iter(optimizer_names())

    def __len__(self) -> int:
        return len(optimizer_names())

    @classmethod
    def _from_iterable(cls, it: Any) -> frozenset[str]:  # set algebra gives plain sets
        return frozenset(it)


class _ScaledTargets(DataSource):
    """A source whose targets are standardized, ``(y - mean) / scale``, as they are read.

    It reads its rows through ``base`` and declares what it passes on: names, outputs
    (``n_targets``), skipped rows and shard ranges. It never computes gradients itself
    (``computes_gradients`` stays False even over a Dask source: rows computed on the workers
    would miss the scaling), and its validation split filters its own, scaled rows.
    """

    def __init__(self, base: DataSource, mean: np.ndarray, scale: np.ndarray):
        self.base, self.mean, self.scale = base, mean, scale
        self.description = base.description
        self.feature_names = base.feature_names
        self.window = base.window
        self.n_targets = len(mean)

    @property
    def n_features(self) -> int:
        return self.base.n_features

    @property
    def skipped(self) -> Any:  # the base's, known after a pass
        return self.base.skipped

    def fingerprint(self) -> dict[str, Any]:
        return {**self.base.fingerprint(), "target_scaling": [self.mean.tolist(), self.scale.tolist()]}

    def shard_sizes(self) -> Any:
        return self.base.shard_sizes()

    def shard_range(self, shard: int) -> tuple[int, int] | None:
        return self.base.shard_range(shard)

    def read_shard(self, shard: int, skip: int = 0) -> Any:
        for c in self.base.read_shard(shard, skip):
            y = np.asarray(c.y, dtype=np.float64)
            y = (y - self.mean[0]) / self.scale[0] if y.ndim == 1 else (y - self.mean) / self.scale
            yield type(c)(c.X, y, c.rows, c.file, c.w)


def _target_moments(y: Any, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-output (weighted) mean and scale of ``y``; a constant output gets scale 1."""
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    mean = np.average(y2, axis=0, weights=w)
    std = np.sqrt(np.average((y2 - mean) ** 2, axis=0, weights=w))
    return mean, scale_or_one(mean, std)


def _source_target_moments(source: DataSource) -> tuple[np.ndarray, np.ndarray]:
    """Target mean and scale from the source's own streaming pass (on the workers for Dask)."""
    summary = source.summarize(classes=False, moments=False, targets=True)
    if summary.n_rows == 0 or summary.target_mean is None:
        raise ValueError("the data source has no rows")
    return summary.target_mean, scale_or_one(summary.target_mean, summary.target_std)


class _DescendEstimator(BaseEstimator):
    """What both estimators share: parameters, validation, training through :func:`descend.fit`."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "hidden_layer_sizes": [None, "array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(_RuleNames()), Optimizer],
        "lr": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "schedule": [StrOptions(set(SCHEDULES)), callable, None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "l2": [Interval(numbers.Real, 0, None, closed="left")],
        "activation": [StrOptions({*ACTIVATIONS, "logistic"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "standardize": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"})],
        "sync_every": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    #: whether a Dask source reaches fit as it is, so that its steps run on the workers (local SGD
    #: needs that); the regressor scales the targets of a source in this process
    _steps_on_workers: ClassVar[bool] = True

    def __init__(
        self,
        hidden_layer_sizes: Any = None,
        *,
        optimizer: str | Optimizer = "adam",
        lr: float | None = None,
        schedule: Any = None,
        batch_size: int | str | None = "auto",
        epochs: int = 200,
        l2: float = 1e-4,
        activation: str = "relu",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float | None = 1e-4,
        shuffle: bool = True,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        standardize: bool = False,
        dtype: str = "float64",
        sync_every: int | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.batch_size = batch_size
        self.epochs = epochs
        self.l2 = l2
        self.activation = activation
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.standardize = standardize
        self.dtype = dtype
        self.sync_every = sync_every

    # -- pieces -------------------------------------------------------------------------------------
    def _owner(self) -> str:
        return type(self).__name__

    def _model(self, output: str) -> Any:
        """A fresh descend model: linear, or an MLP when ``hidden_layer_sizes`` is given."""
        if self.hidden_layer_sizes is None:
            cls = {
                "regression": models.LinearRegression,
                "binary": models.LogisticRegression,
                "softmax": models.SoftmaxRegression,
            }[output]
            return cls(l2=self.l2, dtype=self.dtype)
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, numbers.Integral) else tuple(hidden)
        activation = "sigmoid" if self.activation == "logistic" else self.activation
        return models.MLP(hidden=hidden, activation=activation, output=output, l2=self.l2, dtype=self.dtype)

    def _seed(self) -> int:
        """An int seed for fit: ``random_state`` itself, one drawn from a RandomState, or fresh entropy."""
        rs = self.random_state
        if rs is None:  # fresh OS entropy; numpy's global state stays untouched
            return int(np.random.default_rng().integers(2**31 - 1))
        if isinstance(rs, numbers.Integral):
            return int(rs)
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def _optimizer(self, steps_per_epoch: int) -> Optimizer:
        """The update rule with its lr or schedule (``schedule`` names span ``epochs`` passes)."""
        owner, opt, sched = self._owner(), self.optimizer, self.schedule
        if isinstance(opt, Optimizer):
            if self.lr is not None or sched is not None:
                raise ValueError(
                    f"{owner}: lr and schedule apply to a named optimizer; {opt!r} carries its own lr "
                    f"(got lr={self.lr!r}, schedule={sched!r})"
                )
            return copy.deepcopy(opt)
        if sched is not None and not isinstance(sched, str):
            if self.lr is not None:
                raise ValueError(
                    f"{owner}: give lr or a schedule object, not both (got lr={self.lr!r}, "
                    f"schedule={sched!r}); a schedule name uses lr as its initial rate"
                )
            entry = rule(opt)  # never mutate the parameter: a copy of the schedule
            return entry.make(**{**entry.cls.fit_options, "lr": copy.deepcopy(sched)})
        entry = rule(opt)
        lr0 = self.lr if self.lr is not None else entry.fit_lr
        total = max(self.epochs * steps_per_epoch, 1)
        lr: Any = lr0
        if sched == "linear_decay":  # Goodfellow et al.: to 1% over the planned steps
            lr = schedules.LinearDecay(lr0, lr0 / 100, tau=total)
        elif sched == "cosine":
            lr = schedules.Cosine(lr0, total_steps=total)
        elif sched == "inverse_time":  # lr0 / (1 + epoch)
            lr = schedules.InverseTime(lr0, decay_rate=1.0, decay_steps=max(steps_per_epoch, 1))
        elif sched == "reduce_on_plateau":  # sklearn's "adaptive": / 5 after 2 epochs without a tol gain
            tol = 1e-4 if self.tol is None else self.tol
            lr = schedules.ReduceOnPlateau(lr0, factor=0.2, patience=1, threshold=tol, threshold_mode="abs")
        # what training a model with the rule needs beyond its defaults (L-BFGS: a line search)
        return entry.make(**{**entry.cls.fit_options, "lr": lr})

    def _objective_rule(self) -> str | None:
        """The class name of the update rule when it needs the whole objective (L-BFGS), else None."""
        opt = self.optimizer
        cls = type(opt) if isinstance(opt, Optimizer) else rule(opt).cls
        return cls.__name__ if cls.needs_objective else None

    def _check_objective_rule(self, partial: bool) -> None:
        """A rule that needs the whole objective (L-BFGS) trains full batch, in ``fit`` only;
        refused before anything is read or changed."""
        owner, name = self._owner(), self._objective_rule()
        if name is None:
            return
        why = (
            f"{name} compares the loss and gradient of the whole data at trial points (curvature "
            "pairs, line search), which"
        )
        if partial:
            raise ParameterError(
                f"{owner}: partial_fit cannot train with optimizer={self.optimizer!r}: {why} one "
                "call's chunk of the data does not give; fit on all the data (full batch), or "
                "choose a rule that steps on mini-batches",
                owner=owner,
                param="optimizer",
                value=self.optimizer,
            )
        if self.batch_size not in ("auto", None):
            raise ParameterError(
                f"{owner}: batch_size={self.batch_size!r} with optimizer={self.optimizer!r}: {why} "
                f"mini-batches do not give; leave batch_size='auto' (full batch for {name}) or give "
                "None",
                owner=owner,
                param="batch_size",
                value=self.batch_size,
            )
        if self.sync_every not in (None, 1):
            raise ParameterError(
                f"{owner}: sync_every={self.sync_every!r} with optimizer={self.optimizer!r}: local SGD "
                f"takes mini-batch steps inside each partition, and {why} mini-batches do not give; "
                "leave sync_every=None",
                owner=owner,
                param="sync_every",
                value=self.sync_every,
            )

    def _check_sync_every(self, X: Any) -> None:
        """``sync_every`` > 1 (local SGD) needs a Dask source whose steps run on the workers;
        refused before anything is read or changed."""
        owner, H = self._owner(), self.sync_every
        if H is None or H == 1:  # 1: what training does anyway
            return
        if isinstance(X, DataSource) and X.runs_local_steps:
            if self._steps_on_workers:
                return
            why = (
                f"{owner} standardizes the targets of a Dask source in this process, which then "
                "trains it one step at a time (ds.fit(ds.models.LinearRegression(), source, "
                "sync_every=H) standardizes them on the workers)"
            )
        elif isinstance(X, DataSource):
            why = f"the data ({X.description}) is trained in this process one step at a time"
        else:
            why = "in-memory arrays are trained in this process one step at a time"
        raise ParameterError(
            f"{owner}: sync_every={H} (local SGD: H mini-batch steps per partition between "
            "averagings) needs a Dask data source, X=ds.data.from_dask(ddf, target=...) with y=None; "
            f"{why}: leave sync_every=None",
            owner=owner,
            param="sync_every",
            value=H,
        )

    def _check_X_y(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _features(self, X: Any) -> np.ndarray:
        """``X`` checked against what fit saw and scaled as the run was trained."""
        check_is_fitted(self, "run_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        run = self.run_
        if run.scaler is not None:
            return run.scaler.apply(X, run.model.dtype)
        return X.astype(run.model.dtype, copy=False)

    def _scores(self, X: Any) -> np.ndarray:
        Xs = self._features(X)
        return self.run_.model.decision_function(self.run_.params, Xs)

    # -- training -----------------------------------------------------------------------------------
    def _train(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any = None) -> Any:
        """Train ``epochs`` epochs (one for ``partial_fit``), continuing ``run_`` when asked to."""
        owner = self._owner()
        self._check_objective_rule(partial)
        self._check_sync_every(X)
        fitted = hasattr(self, "run_")
        continuing = fitted and (partial or self.warm_start)
        is_source = isinstance(X, DataSource)
        if is_source:
            if y is not None:
                raise ValueError(
                    f"{owner}: y must be None when X is a descend data source (it holds the target)"
                )
            if sample_weight is not None:
                raise ValueError(f"{owner}: sample_weight needs in-memory arrays, not a data source")
            if continuing and X.n_features != self.n_features_in_:
                raise ValueError(
                    f"{owner}: X has {X.n_features} features, but {owner} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            if not continuing:
                self.n_features_in_ = X.n_features
                if X.feature_names is not None:
                    self.feature_names_in_ = np.asarray(X.feature_names, dtype=object)
                elif hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            data: Any = X
        else:
            X, y = self._check_X_y(X, y, reset=not continuing)
            if sample_weight is not None:
                sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
                if np.all(sample_weight == sample_weight[0]) and sample_weight[0] > 0:
                    sample_weight = None  # equal weights: exactly the unweighted mean
            data = (X, y)
        data, fit_classes, output = self._prepare_targets(data, sample_weight, continuing, partial, classes)
        n = data.n_samples if isinstance(data, DataSource) else len(data[0])
        use_val = self.early_stopping and not partial
        n_train = n - round(n * self.validation_fraction) if use_val else n
        batch_size = self.batch_size
        if batch_size == "auto":  # full batch for L-BFGS, which needs the whole objective
            batch_size = None if self._objective_rule() else min(max(n_train // 10, 16), 128)
        B = n_train if batch_size is None else min(batch_size, max(n_train, 1))
        steps_per_epoch = max(math.ceil(n_train / max(B, 1)), 1)

        init: Run | None = None
        model = self._model(output)
        if continuing:
            init = self.run_
            if model.config() != init.model.config():
                changed = {k for k, v in model.config().items() if init.model.config().get(k) != v}
                if changed != {"l2"}:
                    raise ValueError(
                        f"{owner}: warm_start/partial_fit continue the fitted model, but "
                        f"{sorted(changed)} changed since it was fitted; fit afresh (warm_start=False)"
                    )
                init = copy.copy(init)  # a new l2 applies from here on
                init.model = model
        else:
            self._seed_ = self._seed()
        callbacks = []
        if not partial and self.tol is not None:
            callbacks.append(
                EarlyStopping(
                    "val_loss" if use_val else "train_loss",
                    patience=self.n_iter_no_change,
                    min_delta=self.tol,
                    restore_best=use_val,
                )
            )
        run = ds_fit(
            model,
            data,
            optimizer=self._optimizer(steps_per_epoch) if init is None else "adam",
            batch_size=batch_size,
            epochs=1 if partial else self.epochs,
            shuffle=self.shuffle,
            seed=self._seed_,
            validation=self.validation_fraction if use_val else None,
            callbacks=callbacks,
            progress="plain" if self.verbose else False,
            standardize=self.standardize,
            # the regressor standardizes its targets itself (weighted by sample_weight, and
            # before warm starts): fit must not scale them again
            standardize_target=False,
            classes=fit_classes,
            sample_weight=sample_weight,
            init=init,
            sync_every=self.sync_every,
        )
        run.validation = None  # not needed to continue; would pickle a copy of the data
        if is_source and run.classes is not None:
            self.classes_ = np.asarray(run.classes)
        self.run_ = run
        self._export(run)
        return self

    def _prepare_targets(self, data: Any, w: Any, continuing: bool, partial: bool, classes: Any) -> Any:
        raise NotImplementedError

    def _layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W, b) of each layer as a function of the original features (and targets)."""
        run = self.run_
        p = run.params
        if self.hidden_layer_sizes is None:
            pairs = [(p["W"], p["b"] if "b" in p else np.zeros(p["W"].shape[1], p["W"].dtype))]
        else:
            pairs = [(p[f"W{i}"], p[f"b{i}"]) for i in range(len(run.model.hidden) + 1)]
        pairs = [(W.astype(np.float64), b.astype(np.float64)) for W, b in pairs]
        if run.scaler is not None:  # fold the standardization into the first layer
            W, b = pairs[0]
            W = W / run.scaler.scale[:, None]
            pairs[0] = (W, b - run.scaler.mean @ W)
        return pairs

    def _export(self, run: Run) -> None:
        self.n_iter_ = run.epochs_completed
        self.t_ = run.steps_completed
        epochs = run.history.epochs
        self.loss_curve_ = [float(v) for v in epochs.get("train_loss", [])]
        if "val_loss" in epochs:
            self.validation_loss_curve_ = [float(v) for v in epochs["val_loss"]]
        layers = self._unscaled_layers(self._layers())
        if self.hidden_layer_sizes is None:
            self._export_linear(*layers[0])
            for name in ("coefs_", "intercepts_"):
                if hasattr(self, name):
                    delattr(self, name)
        else:
            self.coefs_ = [W for W, _ in layers]
            self.intercepts_ = [b for _, b in layers]
            for name in ("coef_", "intercept_"):
                if hasattr(self, name):
                    delattr(self, name)

    def _unscaled_layers(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> list[Any]:
        return layers

    def _export_linear(self, W: np.ndarray, b: np.ndarray) -> None:
        raise NotImplementedError

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


_PARAMS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : None (default: a linear model) or the widths of the MLP's hidden layers,
        e.g. ``(100,)``.
    optimizer : an update rule's name (``"adam"`` default; ``descend.optim.names()``: {rules})
        or a :class:`descend.Optimizer` instance (with its own lr). ``"lbfgs"`` trains on the
        whole data (``batch_size="auto"`` or None), one L-BFGS iteration per epoch with a
        strong-Wolfe line search, stopping on its own tolerances too; it needs the whole
        objective, so ``partial_fit`` refuses it.
    lr : learning rate > 0; None: the update rule's ``fit_lr``, one that trains standardized
        data well (Adam 3e-3).
    schedule : None (constant lr); a name, built from ``lr`` over the steps of ``epochs`` epochs:
        ``"linear_decay"`` (to 1% of lr), ``"cosine"``, ``"inverse_time"`` (lr / (1 + epoch)),
        ``"reduce_on_plateau"`` (lr / 5 after two epochs without a ``tol`` gain, sklearn's
        ``"adaptive"``); or a :mod:`descend.schedules` object / callable ``step -> lr`` (then
        leave ``lr=None``). The position in the schedule is the optimizer's step counter, so it
        continues across ``partial_fit`` calls and ``warm_start`` fits.
    batch_size : rows per update; ``"auto"`` (default): ``n // 10`` clipped to [16, 128] (about ten
        updates per epoch on small data, 128 rows on large), and full batch for ``"lbfgs"``; None:
        full-batch gradient descent.
    epochs : passes over the data in ``fit`` (at most: ``tol`` may stop sooner); a
        ``partial_fit`` call is one pass.
    l2 : L2 penalty :math:`\\tfrac12\\,l_2\\lVert W\\rVert^2` added to the *mean* loss (default
        1e-4, SGDClassifier's ``alpha``); ``LogisticRegression(C)`` is ``l2 = 1 / (n C)``.
    activation : of the hidden layers: ``"relu"`` (default), ``"tanh"``, ``"sigmoid"`` (or
        ``"logistic"``), ``"leaky_relu"``.
    early_stopping : hold out ``validation_fraction`` of the rows (by a hash of the row index and
        seed) and stop when their loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs, restoring the best epoch's parameters.
    validation_fraction : in (0, 1), default 0.1.
    n_iter_no_change : epochs without an improvement of ``tol`` before stopping (default 10).
    tol : minimum improvement of the training loss (or, with ``early_stopping``, the validation
        loss); None: always train ``epochs`` epochs.
    shuffle : reshuffle the rows every epoch (an order that is a pure function of seed and epoch).
    random_state : None (fresh entropy; NumPy's global state is never touched), an int, or a
        ``RandomState`` an int seed is drawn from.
    warm_start : ``fit`` continues the fitted run (parameters, optimizer state, schedule
        position, step counter) for ``epochs`` more epochs instead of starting over.
    verbose : print progress lines.
    standardize : scale the features to mean 0, std 1 inside the model (statistics from one
        streaming pass; for data sources, where a ``StandardScaler`` cannot go first).
    dtype : ``"float64"`` (default) or ``"float32"`` for parameters and arithmetic.
    sync_every : None (default: one synchronized step at a time) or H >= 1: local SGD on a Dask
        source (``X=ds.data.from_dask(ddf, target="y")``): each partition takes H mini-batch
        steps of ``batch_size`` rows on its own rows between averagings of the models, one round
        trip to the workers per H steps instead of one per step (:func:`descend.fit`'s
        ``sync_every``). It is another algorithm than sequential SGD: with P partitions,
        multiply ``lr`` by P. Other data trains one step at a time (H > 1 is refused there, and
        by :class:`DescendRegressor`, which scales a source's targets in this process).
""".replace("{rules}", ", ".join(f'``"{n}"``' for n in optimizer_names()))


class DescendRegressor(RegressorMixin, _DescendEstimator):
    __doc__ = (
        """Least squares (or an MLP) trained by any descend update rule, mini-batch, with schedules.

    The targets are standardized inside (mean and std of the first ``fit``/``partial_fit``
    data, per output), so the default lr suits any target scale; ``predict``, ``coef_`` and
    ``intercept_`` are in the original units and ``loss_curve_`` is the mean squared error of the
    standardized targets.
"""
        + _PARAMS_DOC
        + """
    Attributes
    ----------
    coef_, intercept_ : linear model, in the original units: (n_features,) and a float for 1-D
        ``y``, (n_outputs, n_features) and (n_outputs,) otherwise.
    coefs_, intercepts_ : MLP layers' weights (fan_in, fan_out) and biases, the last in the
        original units of ``y``.
    n_features_in_, feature_names_in_ : as seen in the first fit.
    loss_curve_ : mean training loss of each epoch. n_iter_ : epochs trained in total.
    t_ : optimizer updates in total (the step counter of the update rule and the schedule).
    run_ : the :class:`descend.Run` (parameters, optimizer state, history).

    Examples
    --------
    >>> import numpy as np
    >>> from descend.sklearn import DescendRegressor
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    >>> reg = DescendRegressor(random_state=0).fit(X, y)
    >>> bool(reg.score(X, y) > 0.99), reg.coef_.shape
    (True, (3,))
    """
    )

    _steps_on_workers = False  # its targets are scaled as they are read here (_ScaledTargets)

    def _check_X_y(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        return validate_data(
            self, X, y, reset=reset, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True
        )

    def _prepare_targets(self, data: Any, w: Any, continuing: bool, partial: bool, classes: Any) -> Any:
        if not continuing:
            if isinstance(data, DataSource):
                self._y_mean, self._y_scale = _source_target_moments(data)
                self._y_ndim = 1 if len(self._y_mean) == 1 else 2
            else:
                self._y_mean, self._y_scale = _target_moments(data[1], w)
                self._y_ndim = np.ndim(data[1])
            self.n_outputs_ = len(self._y_mean)
        if isinstance(data, DataSource):
            return _ScaledTargets(data, self._y_mean, self._y_scale), None, "regression"
        X, y = data
        y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if y2.shape[1] != self.n_outputs_:
            raise ValueError(
                f"{self._owner()}: y has {y2.shape[1]} outputs, but the model was fitted with "
                f"{self.n_outputs_}"
            )
        ys = (y2 - self._y_mean) / self._y_scale
        return (X, ys[:, 0] if self.n_outputs_ == 1 else ys), None, "regression"

    def _unscaled_layers(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> list[Any]:
        W, b = layers[-1]
        layers[-1] = (W * self._y_scale, b * self._y_scale + self._y_mean)
        return layers

    def _export_linear(self, W: np.ndarray, b: np.ndarray) -> None:
        if self._y_ndim == 1:
            self.coef_, self.intercept_ = W[:, 0].copy(), float(b[0])
        else:
            self.coef_, self.intercept_ = W.T.copy(), b.copy()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> DescendRegressor:
        """Train ``epochs`` epochs from fresh parameters (or continue, with ``warm_start``).

        ``X`` is an array or DataFrame with targets ``y`` (1-D, or 2-D for several outputs),
        or a :mod:`descend.data` source (``ds.data.open("big.parquet", target="y")``, streamed
        from disk) with ``y=None``. ``sample_weight``: the loss is the weighted mean.
        """
        return self._train(X, y, sample_weight, partial=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> DescendRegressor:
        """One epoch over ``(X, y)``, continuing parameters, optimizer state and schedule position."""
        return self._train(X, y, sample_weight, partial=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values: (n,) for 1-D training targets, (n, n_outputs) otherwise."""
        z = np.asarray(self._scores(X), dtype=np.float64).reshape(-1, len(self._y_mean))
        out = z * self._y_scale + self._y_mean
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class DescendClassifier(ClassifierMixin, _DescendEstimator):
    __doc__ = (
        """Logistic / softmax regression (or an MLP) trained by any descend update rule, with schedules.

    Two classes train a logistic model (an MLP with one sigmoid output), more a softmax one.
    Labels may be any sortable values (strings too); ``classes_`` holds them sorted.
"""
        + _PARAMS_DOC
        + """
    Attributes
    ----------
    classes_ : the class labels, in the order of ``predict_proba``'s columns.
    coef_, intercept_ : linear model: (1, n_features) and (1,) for two classes, (n_classes,
        n_features) and (n_classes,) for more.
    coefs_, intercepts_ : MLP layers' weights (fan_in, fan_out) and biases.
    n_features_in_, feature_names_in_, loss_curve_, n_iter_, t_, run_ : as for
        :class:`DescendRegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.sklearn import DescendClassifier
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    >>> clf = DescendClassifier(random_state=0).fit(X, y)
    >>> clf.classes_.tolist(), bool(clf.score(X, y) > 0.95)
    (['no', 'yes'], True)
    """
    )

    def _check_X_y(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, reset=reset, dtype=[np.float64, np.float32], multi_output=True)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return X, y

    def _prepare_targets(self, data: Any, w: Any, continuing: bool, partial: bool, classes: Any) -> Any:
        owner = self._owner()
        if isinstance(data, DataSource):
            if continuing:
                return data, self.classes_, self._output
            found = data.summarize(classes=True, moments=False).classes
            self._set_classes(np.asarray(classes) if classes is not None else found)
            return data, self.classes_, self._output
        X, y = data
        if continuing:
            if classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
                raise ValueError(
                    f"{owner}: classes={classes!r} differ from the classes of the first call, "
                    f"{self.classes_.tolist()!r}"
                )
        elif partial:
            if classes is None:
                raise ValueError(
                    f"{owner}: the first partial_fit call needs classes= (every class label that "
                    "will ever be seen)"
                )
            self._set_classes(unique_labels(classes))
        else:
            self._set_classes(unique_labels(y))
        codes = np.searchsorted(self.classes_, y)
        codes = np.minimum(codes, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[codes], y):
            bad = y[np.argmax(self.classes_[codes] != y)]
            raise ValueError(f"{owner}: label {bad!r} is not one of the classes {self.classes_.tolist()!r}")
        if w is not None and len(np.unique(codes[w > 0])) < 2 and not partial:
            raise ValueError(
                f"{owner}: sample_weight leaves only one class with positive weight; a classifier "
                "needs at least 2 classes"
            )
        return (X, codes), np.arange(len(self.classes_)), self._output

    def _set_classes(self, classes: np.ndarray) -> None:
        classes = np.asarray(classes)
        if len(classes) < 2:
            raise ValueError(
                f"{self._owner()}: the targets hold only one class ({classes.tolist()!r}); a classifier "
                "needs at least 2 classes"
            )
        self.classes_ = classes
        self._output = "binary" if len(classes) == 2 else "softmax"

    def _export_linear(self, W: np.ndarray, b: np.ndarray) -> None:
        self.coef_, self.intercept_ = W.T.copy(), b.copy()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> DescendClassifier:
        """Train ``epochs`` epochs from fresh parameters (or continue, with ``warm_start``).

        ``X`` is an array or DataFrame with labels ``y``, or a :mod:`descend.data` source
        (``ds.data.open("big.parquet", target="label")``, streamed from disk; its classes are
        found by one streaming pass) with ``y=None``.
        """
        return self._train(X, y, sample_weight, partial=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X: Any, y: Any = None, classes: Any = None, sample_weight: Any = None
    ) -> DescendClassifier:
        """One epoch over ``(X, y)``, continuing parameters, optimizer state and schedule position.

        The first call needs ``classes``, every label that will be seen (as in scikit-learn).
        """
        return self._train(X, y, sample_weight, partial=True, classes=classes)

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: (n,) for two classes (positive: ``classes_[1]``), (n, n_classes) for more."""
        return np.asarray(self._scores(X), dtype=np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of ``classes_``."""
        Xs = self._features(X)
        run = self.run_
        return np.asarray(run.model.predict_proba(run.params, Xs), dtype=np.float64)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label of each row."""
        z = self.decision_function(X)
        idx = (z > 0).astype(np.int64) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]
