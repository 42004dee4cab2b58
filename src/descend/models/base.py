"""The model contract: params as a dict of arrays, mean loss and its exact gradient, predictions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .._validation import check_choice, check_int, check_real, describe
from ._losses import LOSSES
from ._targets import check_targets, count_outputs

__all__ = ["Model"]

DTYPES = ("float32", "float64")


def check_dtype(owner: str, value: Any) -> np.dtype:
    """``float32`` or ``float64`` as a NumPy dtype; also accepts ``np.float32``-like objects."""
    if not isinstance(value, str):
        try:
            value = np.dtype(value).name
        except TypeError:
            pass
    return np.dtype(check_choice(owner, "dtype", value, DTYPES))


class Model:
    r"""Base class of every model: a validated configuration, no learned state.

    Parameters live outside the model, in the dict that :meth:`init` returns, so an optimizer
    updates them in place and a checkpoint saves them as plain arrays. Subclasses build the
    scores :math:`z = f(X; \theta)` in :meth:`_forward` and backpropagate :math:`\partial L /
    \partial z` in :meth:`_backward`; the loss of the task (``models._losses``), the L2 penalty
    :math:`\tfrac12 \lambda \sum W^2` over weight matrices (never biases), dtype handling and
    input checks live here once.

    Attributes
    ----------
    name : registry name. task : ``"regression"``, ``"binary"`` or ``"multiclass"``.
    dtype : dtype of params, gradients and computations. l2 : :math:`\lambda \ge 0`.
    """

    name: ClassVar[str] = ""
    task: str
    dtype: np.dtype
    l2: float

    def __init__(self, *, l2: float, dtype: Any) -> None:
        self.l2 = check_real(self._owner, "l2", l2, low=0.0)
        self.dtype = check_dtype(self._owner, dtype)

    @property
    def _owner(self) -> str:
        return type(self).__name__

    # -- hooks for subclasses -----------------------------------------------------------------
    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments as given (tuples stay tuples)."""
        raise NotImplementedError

    def init(self, rng: np.random.Generator, n_features: int, n_outputs: int) -> dict[str, np.ndarray]:
        """Fresh parameters for inputs of width ``n_features`` and ``n_outputs`` scores."""
        raise NotImplementedError

    def param_shapes(self, n_features: int, n_outputs: int) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter :meth:`init` makes for these widths, without making them
        (a model file's header is checked against its arrays before anything is allocated).
        The base class asks :meth:`init`; the built-in models answer from their layer widths."""
        return {k: v.shape for k, v in self.init(np.random.default_rng(0), n_features, n_outputs).items()}

    def _weight_names(self) -> tuple[str, ...]:
        """Keys of the weight matrices, input layer first (the L2 penalty covers exactly these)."""
        raise NotImplementedError

    def _forward(self, params: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, Any]:
        """Scores ``z`` (n, k) and what :meth:`_backward` needs."""
        raise NotImplementedError

    def _backward(self, params: dict[str, np.ndarray], cache: Any, dz: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of every param given ``dz`` = dL/dz."""
        raise NotImplementedError

    # hooks for exact curvature and per-sample gradients (optional: the diagnostics fall back to
    # finite differences and two batch sizes for a model without them)
    def _forward_r(
        self, params: dict[str, np.ndarray], cache: Any, v: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, Any]:
        r"""The scores' derivative along ``v``, :math:`R(z) = \tfrac{d}{dt} z(\theta + t v)|_{t=0}`
        (Pearlmutter's R-operator), and what :meth:`_backward_r` needs."""
        raise NotImplementedError

    def _backward_r(
        self,
        params: dict[str, np.ndarray],
        cache: Any,
        v: dict[str, np.ndarray],
        dz: np.ndarray,
        rcache: Any,
        rdz: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """The derivative along ``v`` of :meth:`_backward`'s gradients, given ``dz`` = dL/dz and its
        derivative ``rdz``: the Hessian-vector product of the data term."""
        raise NotImplementedError

    def _per_sample_factors(
        self, params: dict[str, np.ndarray], cache: Any, dz: np.ndarray
    ) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        """Per param ``(a, d)``: sample i's gradient is the outer product ``a[i] d[i]`` (a weight)
        or ``d[i]`` (a bias, ``a`` None), given ``dz`` (n, k) = each sample's own dl_i/dz_i."""
        raise NotImplementedError

    def layer_keys(self, params: dict[str, np.ndarray]) -> dict[str, tuple[str, ...]]:
        """The params of each layer, input layer first: ``{layer name: (param keys)}``.

        Every param belongs to exactly one layer. The base class makes each param its own layer.
        """
        return {key: (key,) for key in params}

    # -- checks ---------------------------------------------------------------------------------
    def _unresolved(self) -> None:
        if self.task == "unresolved":
            raise ValueError(
                f"{self._owner}: output=None is chosen by fit() from the targets; to use the model "
                "directly, give output='regression', 'binary' or 'softmax'"
            )

    def _check_init_args(self, rng: Any, n_features: Any, n_outputs: Any) -> tuple[int, int]:
        self._unresolved()
        owner = f"{self._owner}.init"
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"{owner}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                f"got {describe(rng)}"
            )
        d = check_int(owner, "n_features", n_features, low=1)
        k = check_int(owner, "n_outputs", n_outputs, low=1)
        if self.task == "binary" and k != 1:
            raise ValueError(f"{owner}: a binary model has n_outputs=1, got {k}")
        return d, k

    def _check_X(self, params: dict[str, np.ndarray], X: Any) -> np.ndarray:
        """``X`` as a 2-D array in ``self.dtype`` of the width the params expect (shape checks only)."""
        self._unresolved()
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{self._owner}: X must be 2-D (n_samples, n_features), got shape {X.shape}")
        first = self._weight_names()[0]
        expected = params[first].shape[0]
        if X.shape[1] != expected:
            raise ValueError(
                f"{self._owner}: X has {X.shape[1]} features, but the params were made for {expected} "
                f"({first} has shape {params[first].shape})"
            )
        return X.astype(self.dtype, copy=False)

    def _batch_targets(self, y: Any, n: int, k: int) -> np.ndarray:
        """``y`` shaped for the loss: (n, k) floats, or (n,) class indices; cheap unless malformed."""
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != n:
            raise ValueError(f"{self._owner}: y must have one row per row of X ({n}), got shape {y.shape}")
        if self.task == "multiclass":
            if y.ndim == 1 and y.dtype.kind in "iu" and y.min() >= 0 and y.max() < k:
                return y
            return self.check_targets(y, k)  # converts whole-number floats, or names the bad row
        if y.ndim == 1 and k == 1:
            y = y[:, None]
        if y.shape != (n, k):
            expected = f"({n},) or ({n}, 1)" if k == 1 else f"({n}, {k})"
            raise ValueError(f"{self._owner}: y must have shape {expected}, got {y.shape}")
        return y.astype(self.dtype, copy=False)

    def _check_batch(self, params: dict[str, np.ndarray], X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(params, X)
        if len(X) == 0:
            raise ValueError(f"{self._owner}: X has no rows; the mean loss needs at least one sample")
        k = params[self._weight_names()[-1]].shape[1]
        return X, self._batch_targets(y, len(X), k)

    def _penalty(self, params: dict[str, np.ndarray]) -> float:
        r""":math:`\tfrac12 \lambda \sum_W \lVert W \rVert^2` over the weight matrices."""
        if not self.l2:
            return 0.0
        return 0.5 * self.l2 * sum(float(np.vdot(params[k], params[k])) for k in self._weight_names())

    # -- public API ---------------------------------------------------------------------------
    def check_targets(self, y: Any, n_outputs: int | None = None) -> np.ndarray:
        """``y`` validated and converted for this model's task.

        Regression: finite values, 1-D or (n, n_outputs), returned in ``dtype``. Binary: labels
        0 or 1 (bools and 0.0/1.0 accepted), returned 1-D in ``dtype``. Multiclass: integers
        ``0..K-1`` (whole-number floats accepted), returned 1-D int64; with ``n_outputs`` given,
        ``K = n_outputs``. A bad value raises ``ValueError`` naming the model, the rule, the value
        and its 0-based row.
        """
        self._unresolved()
        if n_outputs is not None:
            n_outputs = check_int(f"{self._owner}.check_targets", "n_outputs", n_outputs, low=1)
        return check_targets(self._owner, self.task, y, n_outputs, self.dtype)

    def n_outputs(self, y: Any) -> int:
        """Number of scores the model needs for targets ``y`` (validated first)."""
        return count_outputs(self.task, self.check_targets(y))

    def _check_weights(self, w: Any, n: int, dtype: np.dtype) -> np.ndarray | None:
        if w is None:
            return None
        w = np.asarray(w)
        if w.shape != (n,) or w.dtype.kind not in "biuf":
            raise ValueError(
                f"{self._owner}: sample_weight must be {n} numbers (one per row), got shape {w.shape}"
            )
        w = w.astype(dtype, copy=False)
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
            raise ValueError(f"{self._owner}: sample_weight must be finite, >= 0 and not all 0")
        return w

    def loss_and_grad(
        self, params: dict[str, np.ndarray], X: Any, y: Any, sample_weight: Any = None
    ) -> tuple[float, dict[str, np.ndarray]]:
        r"""Mean loss over the batch plus the L2 penalty, and its gradient for every param.

        With ``sample_weight`` the mean is weighted, :math:`\sum_i w_i l_i / \sum_i w_i`.
        Gradients have the keys, order, shapes and dtypes of ``params``.
        """
        X, y = self._check_batch(params, X, y)
        w = self._check_weights(sample_weight, len(X), self.dtype)
        return self._value_and_grad(params, X, y, w)

    def _value_and_grad(
        self, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, w: np.ndarray | None
    ) -> tuple[float, dict[str, np.ndarray]]:
        """:meth:`loss_and_grad` on inputs already checked: ``X`` in ``dtype``, ``y`` shaped for
        the loss ((n, k) values, or (n,) class indices), ``w`` (n,) or None. fit's hot path."""
        if y.ndim == 1 and self.task != "multiclass":
            y = y[:, None]
        loss_fn = LOSSES[self.task]
        z, cache = self._forward(params, X)
        value, loss_cache = loss_fn.forward(z, y, w)
        grads = self._backward(params, cache, loss_fn.backward(z, y, loss_cache, w))
        if self.l2:
            for key in self._weight_names():
                grads[key] += self.l2 * params[key]
        value += self._penalty(params)
        return value, {key: grads[key].astype(params[key].dtype, copy=False) for key in params}

    def _check_direction(self, params: dict[str, np.ndarray], v: Any) -> dict[str, np.ndarray]:
        if not isinstance(v, dict) or set(v) != set(params):
            raise ValueError(
                f"{self._owner}.hvp: v must be a dict with the keys of params ({', '.join(params)}), "
                f"got {describe(v)}"
            )
        out = {}
        for key, p in params.items():
            vk = np.asarray(v[key])
            if vk.shape != p.shape:
                raise ValueError(f"{self._owner}.hvp: v[{key!r}] must have shape {p.shape}, got {vk.shape}")
            out[key] = vk.astype(self.dtype, copy=False)
        return out

    def hvp(
        self, params: dict[str, np.ndarray], X: Any, y: Any, v: Any, sample_weight: Any = None
    ) -> dict[str, np.ndarray]:
        r"""The exact Hessian-vector product :math:`\nabla^2 L(\theta)\, v` of :meth:`loss_and_grad`'s loss.

        One forward and one backward pass of Pearlmutter's R-operator (1994): the derivative of
        the backward pass along ``v``, :math:`\tfrac{d}{dt} \nabla L(\theta + t v)|_{t=0}`, so no
        step size and no truncation error. ``v`` has the keys and shapes of ``params``; so has
        the result (in ``dtype``). Use ``dtype="float64"`` for curvature: float32 keeps about
        seven digits of it. For many products at one point, :meth:`hvp_at`.

        >>> import numpy as np
        >>> from descend.models import LinearRegression
        >>> model = LinearRegression(dtype="float64")
        >>> X, y = np.array([[1.0], [2.0]]), np.array([0.0, 1.0])
        >>> params = {"W": np.zeros((1, 1)), "b": np.zeros(1)}
        >>> hv = model.hvp(params, X, y, {"W": np.ones((1, 1)), "b": np.zeros(1)})
        >>> hv["W"].ravel(), hv["b"]      # 2/n X^T X and 2/n 1^T X applied to (1, 0)
        (array([5.]), array([3.]))
        """
        return self.hvp_at(params, X, y, sample_weight)(v)

    def hvp_at(
        self, params: dict[str, np.ndarray], X: Any, y: Any, sample_weight: Any = None
    ) -> Callable[[Any], dict[str, np.ndarray]]:
        """The Hessian at ``params`` on one batch as a function ``v -> H v`` (:meth:`hvp`), with the
        forward pass and the loss's gradient computed once for all the products."""
        X, y = self._check_batch(params, X, y)
        w = self._check_weights(sample_weight, len(X), self.dtype)
        if y.ndim == 1 and self.task != "multiclass":
            y = y[:, None]
        loss_fn = LOSSES[self.task]
        z, cache = self._forward(params, X)
        _, loss_cache = loss_fn.forward(z, y, w)
        dz = loss_fn.backward(z, y, loss_cache, w)

        def product(v: Any) -> dict[str, np.ndarray]:
            v = self._check_direction(params, v)
            rz, rcache = self._forward_r(params, cache, v)
            rdz = loss_fn.hvp(z, y, loss_cache, rz, w)
            out = self._backward_r(params, cache, v, dz, rcache, rdz)
            if self.l2:
                for key in self._weight_names():
                    out[key] += self.l2 * v[key]
            return {key: out[key].astype(params[key].dtype, copy=False) for key in params}

        return product

    def _per_sample(
        self, params: dict[str, np.ndarray], X: Any, y: Any
    ) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        X, y = self._check_batch(params, X, y)
        if y.ndim == 1 and self.task != "multiclass":
            y = y[:, None]
        loss_fn = LOSSES[self.task]
        z, cache = self._forward(params, X)
        _, loss_cache = loss_fn.forward(z, y)
        dz = loss_fn.backward(z, y, loss_cache)
        dz *= len(X)  # the mean's 1/n undone: row i is the derivative of sample i's own loss
        return self._per_sample_factors(params, cache, dz)

    def per_sample_grads(self, params: dict[str, np.ndarray], X: Any, y: Any) -> dict[str, np.ndarray]:
        r"""Each sample's own gradient :math:`\nabla \ell_i(\theta)`: arrays of shape ``(n, *param.shape)``.

        :math:`\ell_i` is sample i's term of the mean loss, so the mean over samples plus
        :math:`\lambda W` (the penalty's gradient, the same for every sample and left out here)
        is :meth:`loss_and_grad`'s gradient. A dense layer's is the outer product of its input
        row and the backpropagated :math:`\delta` row; this materialises n copies of the
        params, so :meth:`per_sample_sq_norms` is the cheap way to their sizes.
        """
        out = {}
        for key, (a, d) in self._per_sample(params, X, y).items():
            out[key] = d.copy() if a is None else np.einsum("ni,nj->nij", a, d)
        return out

    def per_sample_sq_norms(self, params: dict[str, np.ndarray], X: Any, y: Any) -> dict[str, np.ndarray]:
        r"""Squared norms :math:`\lVert \nabla_{\text{key}}\, \ell_i \rVert^2` of each sample's gradient
        per param, shape ``(n,)`` each, without forming the gradients: for an outer product
        :math:`\lVert a_i d_i^\top \rVert^2 = \lVert a_i \rVert^2 \lVert d_i \rVert^2`
        (Goodfellow, 2015, "Efficient per-example gradient computations")."""
        out = {}
        for key, (a, d) in self._per_sample(params, X, y).items():
            dd = np.einsum("ij,ij->i", d, d)
            out[key] = dd if a is None else dd * np.einsum("ij,ij->i", a, a)
        return out

    def loss(self, params: dict[str, np.ndarray], X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean (or weighted mean) loss over the batch plus the L2 penalty (no gradient computed)."""
        X, y = self._check_batch(params, X, y)
        w = self._check_weights(sample_weight, len(X), self.dtype)
        value, _ = LOSSES[self.task].forward(self._forward(params, X)[0], y, w)
        return value + self._penalty(params)

    def decision_function(self, params: dict[str, np.ndarray], X: Any) -> np.ndarray:
        """Raw scores (logits for classifiers): (n,) with one output, else (n, k)."""
        z = self._forward(params, self._check_X(params, X))[0]
        return z[:, 0] if z.shape[1] == 1 and self.task != "multiclass" else z

    def predict(self, params: dict[str, np.ndarray], X: Any) -> np.ndarray:
        """Regression: values, (n,) with one output else (n, k). Classifiers: int64 class labels."""
        if self.task == "regression":
            return self.decision_function(params, X)
        return LOSSES[self.task].predict(self._forward(params, self._check_X(params, X))[0])

    def predict_proba(self, params: dict[str, np.ndarray], X: Any) -> np.ndarray:
        """Class probabilities, rows summing to 1: (n, 2) ``[1 - p, p]`` for binary, (n, K) for multiclass."""
        if self.task == "regression":
            raise AttributeError(
                f"{self._owner}: predict_proba is only available for classifiers; this model's task is "
                "'regression' (use predict)"
            )
        return LOSSES[self.task].proba(self._forward(params, self._check_X(params, X))[0])

    def config(self) -> dict[str, Any]:
        """Plain JSON-able ``{"model": name, **hyperparameters}``; ``models.from_config`` rebuilds it."""
        out: dict[str, Any] = {"model": self.name}
        for key, value in self.hyperparameters().items():
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{self._owner}({args})"
