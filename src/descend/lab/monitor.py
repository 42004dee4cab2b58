"""``ds.Monitor``: what :func:`~descend.diagnose` measures once, measured during training.

Every ``every`` steps the monitor records, per layer of the model (``model.layer_keys``):

* ``grad_norm/<layer>``: the norm of the batch gradient of the layer's params (before clipping
  callbacks that come after the monitor in ``callbacks``);
* ``weight_norm/<layer>``: the norm of the layer's params before the update;
* ``update_ratio/<layer>``: ``‖Δw‖ / ‖w‖`` of that step's update (:func:`update_ratio`);
* ``first_last_grad_ratio``: the first layer's gradient norm over the last's (vanishing
  gradients make it small, exploding ones large: :data:`VANISHING_RATIO`,
  :data:`EXPLODING_RATIO`).

With a probe batch (``probe=(X, y)``, at most :data:`PROBE_ROWS` rows used), also for an MLP's
hidden layers ``dead/<layer>`` (ReLU units that output 0 on every probe row),
``saturated/<layer>`` (sigmoid/tanh units whose derivative is below
:data:`SATURATION_DERIVATIVE`) and ``duplicate/<layer>`` (units with identical incoming
weights); and, every ``curvature_every`` monitored steps, ``lambda_max`` (the top Hessian
eigenvalue of the probe loss, by :data:`LANCZOS_STEPS` Lanczos steps) with ``lr_lambda`` (the
step's lr times it) and ``stability_limit`` (the rule's constant ``c``: the lr is above the
limit when ``lr_lambda > c``; NaN for adaptive rules, see :func:`stability_constant`).

The records land in ``run.history.monitor`` (a dict of equal-length lists, ``step`` first),
in checkpoints (a resumed run continues them) and in the run folder (``monitor.csv``).

>>> import numpy as np, descend as ds
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
>>> run = ds.fit(ds.models.LogisticRegression(), (X, y), optimizer="sgd", lr=0.5, epochs=2,
...              batch_size=50, callbacks=[ds.Monitor(every=2)], progress=False, seed=0)
>>> run.history.monitor["step"]
[2, 4, 6, 8]
>>> sorted(k for k in run.history.monitor if "/" in k)
['grad_norm/layer0', 'update_ratio/layer0', 'weight_norm/layer0']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import check_int, describe, invalid
from ..train.callbacks import Callback
from ._curvature import lanczos, rademacher
from .diagnose import (
    PROBE_ROWS,
    SATURATION_DERIVATIVE,
    _as_float64,
    _dup_fraction,
    _model_problem,
    stability_constant,
)

__all__ = ["LANCZOS_STEPS", "Monitor"]

#: Lanczos steps for the monitor's lambda_max (its top Ritz value converges first; fewer steps
#: than diagnose's, since it runs many times in a run)
LANCZOS_STEPS = 20


def _norm(arrays: list[np.ndarray]) -> float:
    """The norm of arrays laid end to end (float32 ones summed in their dtype: a diagnostic, to
    about 1e-7 relative)."""
    return math.sqrt(sum(float(np.vdot(a, a)) for a in arrays))


class Monitor(Callback):
    """Per-layer gradient and weight norms, update-to-weight ratios, unit health and curvature,
    every ``every`` steps of :func:`~descend.fit` (see the module's documentation).

    Parameters
    ----------
    every : record every ``every``-th step (default 10; 1 records every step).
    probe : ``(X, y)`` rows to measure unit statistics and curvature on (features as ``fit``
        gives them to the model: standardized if ``fit`` standardizes). Without it only the
        norms and ratios are recorded.
    curvature_every : measure ``lambda_max`` every ``curvature_every``-th recording (needs
        ``probe``; default None: never). Each measurement costs :data:`LANCZOS_STEPS`
        Hessian-vector products on the probe rows.
    seed : seeds the Lanczos start vectors.
    """

    def __init__(
        self,
        every: int = 10,
        *,
        probe: tuple[Any, Any] | None = None,
        curvature_every: int | None = None,
        seed: int = 0,
    ):
        self.every = check_int("Monitor", "every", every, low=1)
        if curvature_every is not None:
            curvature_every = check_int("Monitor", "curvature_every", curvature_every, low=1)
            if probe is None:
                raise invalid(
                    "Monitor",
                    "curvature_every",
                    curvature_every,
                    "come with probe=(X, y): curvature is measured on probe rows",
                )
        self.curvature_every = curvature_every
        self.seed = check_int("Monitor", "seed", seed, low=0)
        self.probe = None if probe is None else self._check_probe(probe)
        self._before: dict[str, np.ndarray] | None = None
        self._grads: dict[str, float] = {}
        self._recorded = 0
        self._layer_keys: dict[str, tuple[str, ...]] | None = None

    @staticmethod
    def _check_probe(probe: Any) -> tuple[np.ndarray, np.ndarray]:
        if not (isinstance(probe, (tuple, list)) and len(probe) == 2):
            raise invalid("Monitor", "probe", probe, "be a pair (X, y) of probe rows")
        X, y = np.asarray(probe[0]), np.asarray(probe[1])
        if X.ndim != 2 or X.dtype.kind not in "fiu" or len(X) == 0:
            raise TypeError(
                f"Monitor: probe X must be a non-empty 2-D numeric array, got {describe(probe[0])}"
            )
        if len(y) != len(X):
            raise ValueError(f"Monitor: probe y has {len(y)} rows, X has {len(X)}")
        return X[:PROBE_ROWS].astype(np.float64), y[:PROBE_ROWS]

    def config(self) -> dict[str, Any]:
        return {
            "callback": "Monitor",
            "every": self.every,
            "probe_rows": None if self.probe is None else len(self.probe[0]),
            "curvature_every": self.curvature_every,
            "seed": self.seed,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"recorded": self._recorded}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._recorded = int(state["recorded"])

    reads_gradients_only = True  # L-BFGS in fit shows it the gradient each iteration starts from

    # -- hooks ----------------------------------------------------------------------------------
    def on_gradients(self, run: Any, grads: dict[str, np.ndarray]) -> None:
        step = _step(run) + 1  # the update about to be made
        if step % self.every:
            self._before = None
            return
        layers = self._layers(run)
        self._grads = {name: _norm([grads[k] for k in keys]) for name, keys in layers.items()}
        # in the params' own dtype: a float64 copy of every param would cost more than the step
        self._before = {k: v.copy() for k, v in run.params.items()}

    def on_step_end(self, run: Any, info: dict[str, Any]) -> None:
        before = self._before
        if before is None:
            return None
        self._before = None
        model, params = run.model, run.params
        layers = self._layers(run)
        row: dict[str, float] = {
            "step": int(info["step"]),
            "loss": float(info["loss"]),
            "lr": float(info["lr"]),
        }
        for name, keys in layers.items():
            d = _norm([np.subtract(params[k], before[k]) for k in keys])
            w = _norm([before[k] for k in keys])
            row[f"grad_norm/{name}"] = self._grads[name]
            row[f"weight_norm/{name}"] = w
            row[f"update_ratio/{name}"] = d / w if w > 0 else (math.inf if d > 0 else 0.0)
        names = list(layers)
        if len(names) > 1:
            last = self._grads[names[-1]]
            row["first_last_grad_ratio"] = self._grads[names[0]] / last if last > 0 else math.inf
        if self.probe is not None:
            row.update(self._units(model, params))
            if self.curvature_every is not None and self._recorded % self.curvature_every == 0:
                row.update(self._curvature(run, model, params, row["lr"]))
        self._recorded += 1
        _append(run.history.monitor, row)
        return None

    def _layers(self, run: Any) -> dict[str, tuple[str, ...]]:
        """The model's layers (asked once: a run's model and its param names do not change)."""
        if self._layer_keys is None:
            self._layer_keys = run.model.layer_keys(run.params)
        return self._layer_keys

    # -- probe measurements ------------------------------------------------------------------------
    def _units(self, model: Any, params: dict[str, np.ndarray]) -> dict[str, float]:
        if not hasattr(model, "preactivations"):
            return {}
        X = self.probe[0].astype(params[next(iter(params))].dtype, copy=False)
        out: dict[str, float] = {}
        for i, z in enumerate(model.preactivations(params, X)):
            name = f"layer{i}"
            if model.activation == "relu":
                out[f"dead/{name}"] = float(np.mean(np.all(z <= 0, axis=0)))
            elif model.activation in ("sigmoid", "tanh"):
                if model.activation == "sigmoid":
                    h = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
                    deriv = 4.0 * h * (1.0 - h)
                else:
                    deriv = 1.0 - np.tanh(z) ** 2
                out[f"saturated/{name}"] = float(np.mean(deriv < SATURATION_DERIVATIVE))
            out[f"duplicate/{name}"] = _dup_fraction(params[f"W{i}"], params[f"b{i}"])
        return out

    def _curvature(self, run: Any, model: Any, params: dict[str, np.ndarray], lr: float) -> dict[str, float]:
        m64 = _as_float64(model)  # the objective trained, its L2 term included
        p64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        X, y = self.probe
        problem = _model_problem(m64, p64, X, y)
        rng = np.random.default_rng([self.seed, self._recorded])
        theta = lanczos(problem.hvp, rademacher(rng, len(problem.theta)), LANCZOS_STEPS).theta
        lam = float(np.max(theta))
        c = stability_constant(run.optimizer) if run.optimizer is not None else None
        return {
            "lambda_max": lam,
            "lr_lambda": lr * lam,
            "stability_limit": math.nan if c is None else float(c),
        }


def _step(run: Any) -> int:
    steps = run.history.steps.get("step")
    return int(steps[-1]) if steps else 0


def _append(table: dict[str, list[float]], row: dict[str, float]) -> None:
    """Add a row, giving columns first seen now NaN for the earlier rows (and NaN to columns
    this row lacks, e.g. lambda_max between curvature measurements)."""
    n = len(table.get("step", []))
    for k in row:
        if k not in table:
            table[k] = [math.nan] * n
    for k, column in table.items():
        column.append(row.get(k, math.nan))
