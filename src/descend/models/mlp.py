"""Multilayer perceptron: dense layers with an activation, trained by backpropagation."""

from __future__ import annotations

import itertools
import numbers
from typing import Any

import numpy as np

from .._validation import check_choice, check_real, describe
from ._activations import ACTIVATIONS, make_activation
from ._layers import INITS, Dense, init_weight
from .base import Model

__all__ = ["MLP"]

#: output kind -> task (and so the loss, shared with the linear models)
OUTPUTS = {"regression": "regression", "binary": "binary", "softmax": "multiclass"}


def _check_hidden(owner: str, hidden: Any) -> tuple[int, ...]:
    message = f"{owner}: hidden must be a non-empty tuple of positive ints, got {describe(hidden)}"
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, (bool, np.bool_)):
        hidden = (hidden,)
    if not isinstance(hidden, (tuple, list)) or any(
        isinstance(h, (bool, np.bool_)) or not isinstance(h, numbers.Integral) for h in hidden
    ):
        raise TypeError(message)
    if len(hidden) == 0 or any(h < 1 for h in hidden):
        raise ValueError(message)
    return tuple(int(h) for h in hidden)


class MLP(Model):
    r"""Multilayer perceptron with ``len(hidden)`` hidden layers and the loss of its output kind.

    With :math:`a_0 = X` and :math:`\phi` the activation, layer :math:`\ell = 0..L-1` computes
    :math:`z_\ell = a_\ell W_\ell + b_\ell`, :math:`a_{\ell+1} = \phi(z_\ell)`, and the scores are
    :math:`z_L = a_L W_L + b_L`. Backpropagation, from :math:`\delta_L = \partial L / \partial z_L`:

    .. math::

        \nabla_{W_\ell} L = a_\ell^\top \delta_\ell + \lambda W_\ell, \quad
        \nabla_{b_\ell} L = \mathbf 1^\top \delta_\ell, \quad
        \delta_{\ell-1} = (\delta_\ell W_\ell^\top) \odot \phi'(z_{\ell-1})

    The loss on :math:`z_L` is that of :class:`LinearRegression` (``output="regression"``, MSE),
    :class:`LogisticRegression` (``"binary"``) or :class:`SoftmaxRegression` (``"softmax"``),
    plus :math:`\tfrac{\lambda}{2} \sum_\ell \lVert W_\ell \rVert^2`.

    Parameters
    ----------
    hidden : non-empty tuple of layer widths ``>= 1`` (default ``(64,)``; an int means one layer).
    activation : ``"relu"`` (default), ``"sigmoid"``, ``"tanh"`` or ``"leaky_relu"``.
    init : ``"he"`` (default) :math:`\mathcal N(0, 2/\text{fan\_in})`, ``"xavier"``
        :math:`\mathcal U(\pm\sqrt{6/(\text{fan\_in}+\text{fan\_out})})` or ``"normal"``
        :math:`\mathcal N(0, 0.01^2)`; biases start at zero.
    output : ``"regression"``, ``"binary"`` or ``"softmax"``; ``None`` (default) lets
        :func:`~descend.fit` choose from the targets: two labels binary, a few integer or
        string labels softmax, real values regression (:func:`descend.models.task.infer_task`;
        ambiguous targets are refused), and ``run.model`` is the resolved model.
    l2 : :math:`\lambda \ge 0`, finite, on weights only (default 0).
    dtype : ``"float32"`` (default) or ``"float64"``.
    leaky_slope : slope for :math:`z \le 0` of ``leaky_relu``, in ``[0, 1)`` (default 0.01).

    Params are ``{"W0", "b0", ..., "WL", "bL"}`` with ``W_l`` of shape (fan_in, fan_out).

    Examples
    --------
    >>> import numpy as np
    >>> from descend.models import MLP
    >>> model = MLP(hidden=(8, 4), activation="tanh", output="softmax")
    >>> params = model.init(np.random.default_rng(0), n_features=3, n_outputs=2)
    >>> [(k, v.shape) for k, v in params.items()]
    [('W0', (3, 8)), ('b0', (8,)), ('W1', (8, 4)), ('b1', (4,)), ('W2', (4, 2)), ('b2', (2,))]
    >>> X, y = np.ones((5, 3)), np.array([0, 1, 1, 0, 1])
    >>> loss, grads = model.loss_and_grad(params, X, y)
    >>> grads["W0"].dtype, model.predict_proba(params, X).shape
    (dtype('float32'), (5, 2))
    """

    name = "mlp"

    def __init__(
        self,
        hidden: Any = (64,),
        activation: str = "relu",
        init: str = "he",
        output: str | None = None,
        l2: float = 0.0,
        *,
        dtype: Any = "float32",
        leaky_slope: float = 0.01,
    ) -> None:
        super().__init__(l2=l2, dtype=dtype)
        owner = self._owner
        self.hidden = _check_hidden(owner, hidden)
        self.activation = check_choice(owner, "activation", activation, ACTIVATIONS)
        # stored as `initializer`: an attribute named `init` would hide the init() method
        self.initializer = check_choice(owner, "init", init, INITS)
        self.output = None if output is None else check_choice(owner, "output", output, OUTPUTS)
        self.leaky_slope = check_real(owner, "leaky_slope", leaky_slope, low=0.0, high=1.0, high_open=True)
        # output=None: fit() picks the output from the targets (models/task.py) and trains
        # with_output(...) of this model; until then the task is unknown
        self.task = OUTPUTS[self.output] if self.output is not None else "unresolved"
        self._phi = make_activation(self.activation, leaky_slope=self.leaky_slope)

    def with_output(self, output: str) -> MLP:
        """This model with its output kind set (what fit trains for ``output=None``)."""
        kw = self.hyperparameters()
        kw["output"] = output
        return MLP(**kw)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "activation": self.activation,
            "init": self.initializer,
            "output": self.output,
            "l2": self.l2,
            "dtype": self.dtype.name,
            "leaky_slope": self.leaky_slope,
        }

    def init(self, rng: np.random.Generator, n_features: int, n_outputs: int) -> dict[str, np.ndarray]:
        """Weights drawn by the ``init`` scheme from ``rng``, zero biases, all in ``dtype``."""
        d, k = self._check_init_args(rng, n_features, n_outputs)
        widths = (d, *self.hidden, k)
        params: dict[str, np.ndarray] = {}
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            params[f"W{i}"] = init_weight(rng, fan_in, fan_out, self.initializer, self.dtype)
            params[f"b{i}"] = np.zeros(fan_out, dtype=self.dtype)
        return params

    def param_shapes(self, n_features: int, n_outputs: int) -> dict[str, tuple[int, ...]]:
        widths = (int(n_features), *self.hidden, int(n_outputs))
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            shapes[f"W{i}"], shapes[f"b{i}"] = (fan_in, fan_out), (fan_out,)
        return shapes

    def _weight_names(self) -> tuple[str, ...]:
        return tuple(f"W{i}" for i in range(len(self.hidden) + 1))

    def _forward(self, params: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, Any]:
        L = len(self.hidden)
        a, cache = X, []
        for i in range(L):
            z = Dense.forward(a, params[f"W{i}"], params[f"b{i}"])
            h = self._phi.forward(z)
            cache.append((a, z, h))
            a = h
        cache.append((a, None, None))
        return Dense.forward(a, params[f"W{L}"], params[f"b{L}"]), cache

    def _backward(self, params: dict[str, np.ndarray], cache: Any, dz: np.ndarray) -> dict[str, np.ndarray]:
        grads: dict[str, np.ndarray] = {}
        for i in range(len(self.hidden), -1, -1):
            a = cache[i][0]
            dW, db, da = Dense.backward(a, params[f"W{i}"], dz, bias=True, input_grad=i > 0)
            grads[f"W{i}"], grads[f"b{i}"] = dW, db
            if i > 0:
                _, z, h = cache[i - 1]
                dz = self._phi.backward(z, h, da)
        return grads

    # -- curvature, per-sample gradients and per-layer views (the diagnostics' hooks) ------------
    def _forward_r(
        self, params: dict[str, np.ndarray], cache: Any, v: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, Any]:
        r""":math:`R(z_\ell) = R(a_\ell) W_\ell + a_\ell V_\ell + v_{b_\ell}`,
        :math:`R(a_{\ell+1}) = \phi'(z_\ell) \odot R(z_\ell)`, from :math:`R(a_0) = 0`."""
        L = len(self.hidden)
        ra: np.ndarray | None = None  # the inputs do not move
        rcache = []
        for i in range(L + 1):
            a, z, h = cache[i]
            rz = Dense.forward(a, v[f"W{i}"], v[f"b{i}"])
            if ra is not None:
                rz += ra @ params[f"W{i}"]
            rcache.append((ra, rz))
            if i < L:
                ra = self._phi.backward(z, h, rz)
        return rz, rcache

    def _backward_r(
        self,
        params: dict[str, np.ndarray],
        cache: Any,
        v: dict[str, np.ndarray],
        dz: np.ndarray,
        rcache: Any,
        rdz: np.ndarray,
    ) -> dict[str, np.ndarray]:
        r"""The derivative along ``v`` of :meth:`_backward`: with :math:`\delta_\ell` = ``dz`` and
        :math:`g = \delta_\ell W_\ell^\top`,

        .. math::

            R(\nabla_{W_\ell}) = R(a_\ell)^\top \delta_\ell + a_\ell^\top R(\delta_\ell), \quad
            R(\delta_{\ell-1}) = \big(R(\delta_\ell) W_\ell^\top + \delta_\ell V_\ell^\top\big)
                \odot \phi'(z_{\ell-1}) + g \odot \phi''(z_{\ell-1}) \odot R(z_{\ell-1})
        """
        out: dict[str, np.ndarray] = {}
        for i in range(len(self.hidden), -1, -1):
            a = cache[i][0]
            ra, _ = rcache[i]
            W = params[f"W{i}"]
            rdW, rdb, rda = Dense.backward(a, W, rdz, bias=True, input_grad=i > 0)
            if ra is not None:
                rdW += ra.T @ dz
            out[f"W{i}"], out[f"b{i}"] = rdW, rdb
            if i > 0:
                _, z, h = cache[i - 1]
                da = dz @ W.T
                rda += dz @ v[f"W{i}"].T
                rz_below = rcache[i - 1][1]
                rdz = self._phi.backward(z, h, rda) + da * self._phi.second(z, h) * rz_below
                dz = self._phi.backward(z, h, da)
        return out

    def _per_sample_factors(
        self, params: dict[str, np.ndarray], cache: Any, dz: np.ndarray
    ) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        # the rows of each layer's delta are already per sample: only a^T delta sums over them
        out: dict[str, tuple[np.ndarray | None, np.ndarray]] = {}
        for i in range(len(self.hidden), -1, -1):
            out[f"W{i}"], out[f"b{i}"] = (cache[i][0], dz), (None, dz)
            if i > 0:
                _, z, h = cache[i - 1]
                dz = self._phi.backward(z, h, dz @ params[f"W{i}"].T)
        return {key: out[key] for key in params}

    def layer_keys(self, params: dict[str, np.ndarray]) -> dict[str, tuple[str, ...]]:
        """``{"layer0": ("W0", "b0"), ..., "layerL": ("WL", "bL")}``, the last the output layer."""
        return {f"layer{i}": (f"W{i}", f"b{i}") for i in range(len(self.hidden) + 1)}

    def preactivations(self, params: dict[str, np.ndarray], X: Any) -> list[np.ndarray]:
        r"""The pre-activations :math:`z_\ell` (n, width) of each hidden layer for inputs ``X``,
        first hidden layer first (what saturation and dead-unit counts look at)."""
        _, cache = self._forward(params, self._check_X(params, X))
        return [z for _, z, _ in cache[:-1]]
