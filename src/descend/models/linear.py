"""Linear models: least squares, logistic and softmax regression, one affine map with different losses."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .._validation import check_bool
from ._layers import Dense
from .base import Model

__all__ = ["LinearRegression", "LogisticRegression", "SoftmaxRegression"]


class _LinearModel(Model):
    """Scores ``z = X W + b``; the task (and so the loss) is fixed by the subclass."""

    task: ClassVar[str]

    def __init__(self, l2: float = 0.0, *, fit_intercept: bool = True, dtype: Any = "float32") -> None:
        super().__init__(l2=l2, dtype=dtype)
        self.fit_intercept = check_bool(self._owner, "fit_intercept", fit_intercept)

    def hyperparameters(self) -> dict[str, Any]:
        return {"l2": self.l2, "fit_intercept": self.fit_intercept, "dtype": self.dtype.name}

    def init(self, rng: np.random.Generator, n_features: int, n_outputs: int) -> dict[str, np.ndarray]:
        """``{"W": (n_features, n_outputs), "b": (n_outputs,)}`` of zeros (``b`` only with an intercept).

        The loss is convex, so zeros are a fine start and ``rng`` is only checked, not drawn from.
        """
        d, k = self._check_init_args(rng, n_features, n_outputs)
        params = {"W": np.zeros((d, k), dtype=self.dtype)}
        if self.fit_intercept:
            params["b"] = np.zeros(k, dtype=self.dtype)
        return params

    def param_shapes(self, n_features: int, n_outputs: int) -> dict[str, tuple[int, ...]]:
        d, k = int(n_features), int(n_outputs)
        return {"W": (d, k), "b": (k,)} if self.fit_intercept else {"W": (d, k)}

    def _weight_names(self) -> tuple[str, ...]:
        return ("W",)

    def _forward(self, params: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, Any]:
        return Dense.forward(X, params["W"], params["b"] if self.fit_intercept else None), X

    def _backward(self, params: dict[str, np.ndarray], X: Any, dz: np.ndarray) -> dict[str, np.ndarray]:
        dW, db, _ = Dense.backward(X, params["W"], dz, bias=self.fit_intercept, input_grad=False)
        return {"W": dW, "b": db} if self.fit_intercept else {"W": dW}

    def _forward_r(
        self, params: dict[str, np.ndarray], X: Any, v: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, Any]:
        return Dense.forward(X, v["W"], v["b"] if self.fit_intercept else None), None

    def _backward_r(
        self,
        params: dict[str, np.ndarray],
        X: Any,
        v: dict[str, np.ndarray],
        dz: np.ndarray,
        rcache: Any,
        rdz: np.ndarray,
    ) -> dict[str, np.ndarray]:
        # z is linear in (W, b), so the Hessian is exactly J^T (d2L/dz2) J: the backward pass of rdz
        return self._backward(params, X, rdz)

    def _per_sample_factors(
        self, params: dict[str, np.ndarray], X: Any, dz: np.ndarray
    ) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        out: dict[str, tuple[np.ndarray | None, np.ndarray]] = {"W": (X, dz)}
        if self.fit_intercept:
            out["b"] = (None, dz)
        return out

    def layer_keys(self, params: dict[str, np.ndarray]) -> dict[str, tuple[str, ...]]:
        """One layer, ``"layer0"``: ``W`` and ``b``."""
        return {"layer0": tuple(params)}


class LinearRegression(_LinearModel):
    r"""Least squares by gradient descent: mean squared error of ``z = X W + b``.

    .. math::

        L = \frac{1}{n k} \sum_{i,j} (z_{ij} - y_{ij})^2 + \frac{\lambda}{2} \lVert W \rVert^2,
        \qquad
        \nabla_W L = \frac{2}{n k} X^\top (z - y) + \lambda W, \quad
        \nabla_b L = \frac{2}{n k} \mathbf 1^\top (z - y)

    Parameters
    ----------
    l2 : :math:`\lambda \ge 0`, finite (default 0). fit_intercept : learn ``b`` (default True).
    dtype : ``"float32"`` (default) or ``"float64"``.

    Warning
    -------
    The loss is the plain MSE (``sklearn.metrics.mean_squared_error``, averaged over the ``k``
    outputs too), without the factor 1/2 some texts use, so the reported loss is the MSE and the
    gradient carries a factor 2. sklearn's ``Ridge`` minimises ``||y - Xw||^2 + alpha ||w||^2``
    (a sum), so ``alpha = n * l2 / 2`` gives its solution for one output.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.models import LinearRegression
    >>> model = LinearRegression()
    >>> X, y = np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0])
    >>> params = model.init(np.random.default_rng(0), n_features=1, n_outputs=1)
    >>> loss, grads = model.loss_and_grad(params, X, y)
    >>> round(loss, 4), grads["W"].ravel(), grads["b"]   # MSE = (1 + 9 + 25) / 3
    (11.6667, array([-8.666667], dtype=float32), array([-6.], dtype=float32))
    """

    name = "linear_regression"
    task = "regression"


class LogisticRegression(_LinearModel):
    r"""Binary logistic regression: mean log-loss of the logits ``z = X W + b``, labels 0 or 1.

    .. math::

        L = \frac1n \sum_i \big[\log(1 + e^{z_i}) - y_i z_i\big] + \frac{\lambda}{2} \lVert W \rVert^2,
        \qquad
        \nabla_W L = \frac1n X^\top (\sigma(z) - y) + \lambda W, \quad
        \nabla_b L = \frac1n \mathbf 1^\top (\sigma(z) - y)

    The log-loss is evaluated as :math:`\max(z, 0) + \log(1 + e^{-|z|}) - y z`, finite for any
    logit. Parameters as for :class:`LinearRegression`; ``W`` has shape ``(n_features, 1)``.
    ``l2`` relates to sklearn's ``C`` by ``C = 1 / (n * l2)``.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.models import LogisticRegression
    >>> model = LogisticRegression()
    >>> X, y = np.array([[-1.0], [0.5], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    >>> params = model.init(np.random.default_rng(0), n_features=1, n_outputs=1)
    >>> loss, grads = model.loss_and_grad(params, X, y)
    >>> round(loss, 6), grads["W"].ravel()   # log 2 at zero weights
    (0.693147, array([-0.6875], dtype=float32))
    >>> model.predict_proba(params, X[:1])
    array([[0.5, 0.5]], dtype=float32)
    """

    name = "logistic_regression"
    task = "binary"


class SoftmaxRegression(_LinearModel):
    r"""Multinomial logistic regression: mean cross-entropy of the logits ``z = X W + b`` over K classes.

    .. math::

        L = \frac1n \sum_i \Big[\log \sum_j e^{z_{ij}} - z_{i y_i}\Big] + \frac{\lambda}{2} \lVert W \rVert^2,
        \qquad
        \nabla_W L = \frac1n X^\top (\operatorname{softmax}(z) - \operatorname{onehot}(y)) + \lambda W

    The log-sum-exp subtracts each row's maximum first, so any logits give a finite loss.
    Labels are integers ``0..K-1``; ``W`` has shape ``(n_features, K)``. Parameters as for
    :class:`LinearRegression`.

    Examples
    --------
    >>> import numpy as np
    >>> from descend.models import SoftmaxRegression
    >>> model = SoftmaxRegression()
    >>> X, y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0, 1, 2])
    >>> params = model.init(np.random.default_rng(0), 2, model.n_outputs(y))
    >>> round(model.loss(params, X, y), 6)   # log 3 at zero weights
    1.098612
    >>> model.predict_proba(params, X).sum(axis=1)
    array([1., 1., 1.], dtype=float32)
    """

    name = "softmax_regression"
    task = "multiclass"
