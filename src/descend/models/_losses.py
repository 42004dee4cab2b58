r"""Output losses on a batch of scores ``z`` (n, k): the mean loss beside its gradient, and predictions.

With sample weights ``w`` (n,) the mean becomes the weighted mean :math:`\sum_i w_i l_i / \sum_i w_i`.

Each loss has ``forward(z, y) -> (value, cache)`` and ``backward(z, y, cache) -> dz``, so the
gradient reuses what the value computed, and ``hvp(z, y, cache, dz)``, its second derivative in
``z`` applied to a direction ``dz`` (what exact Hessian-vector products of the models need);
``proba``/``predict`` turn scores into outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._activations import sigmoid

__all__ = ["LOSSES", "BinaryCrossEntropy", "SoftmaxCrossEntropy", "SquaredError", "softmax"]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax with the row maximum subtracted first (no overflow)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class SquaredError:
    r"""Mean squared error over all ``n * k`` entries (``sklearn.metrics.mean_squared_error``).

    .. math::

        L = \frac{1}{n k} \sum_{i, j} (z_{ij} - y_{ij})^2, \qquad
        \frac{\partial L}{\partial z} = \frac{2}{n k} (z - y)
    """

    task = "regression"

    def forward(self, z: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, Any]:
        r = z - y
        if w is None:
            return float(np.mean(r * r)), r
        return float(np.sum(w[:, None] * (r * r)) / (w.sum() * r.shape[1])), r

    def backward(self, z: np.ndarray, y: np.ndarray, r: Any, w: np.ndarray | None = None) -> np.ndarray:
        if w is None:
            return r * (2 / r.size)
        return r * (w[:, None] * (2 / (w.sum() * r.shape[1])))

    def hvp(
        self, z: np.ndarray, y: np.ndarray, r: Any, dz: np.ndarray, w: np.ndarray | None = None
    ) -> np.ndarray:
        r""":math:`(\partial^2 L / \partial z^2)\, dz = \frac{2}{n k} dz` (any leading axes of ``dz``
        before the batch's (n, k) are directions, each mapped alike)."""
        if w is None:
            return dz * (2 / r.size)
        return dz * (w[:, None] * (2 / (w.sum() * r.shape[1])))

    def predict(self, z: np.ndarray) -> np.ndarray:
        return z


class BinaryCrossEntropy:
    r"""Mean log-loss of labels ``y`` in {0, 1} given logits ``z`` (n, 1), stable for any ``z``.

    .. math::

        L = \frac1n \sum_i \big[\log(1 + e^{z_i}) - y_i z_i\big]
          = \frac1n \sum_i \big[\max(z_i, 0) + \log(1 + e^{-|z_i|}) - y_i z_i\big], \qquad
        \frac{\partial L}{\partial z} = \frac1n (\sigma(z) - y)
    """

    task = "binary"

    def forward(self, z: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, Any]:
        # With s = 1 - 2y (+1 for label 0, -1 for label 1) a sample's loss is softplus(s z) =
        # logaddexp(0, s z): one stable ufunc, relatively accurate at any z, also where the
        # sample is confidently right and its loss is tiny (log(1 + e^z) - y z cancels there)
        s = y * -2.0
        s += 1.0
        t = s * z
        per = np.logaddexp(0, t)
        if w is None:
            return float(per.sum()) / per.size, (s, t, per)
        return float(np.sum(w[:, None] * per) / w.sum()), (s, t, per)

    def backward(self, z: np.ndarray, y: np.ndarray, cache: Any, w: np.ndarray | None = None) -> np.ndarray:
        # dL/dz = sigma(z) - y = s * sigma(s z), and sigma(s z) = exp(s z - softplus(s z)) from
        # the forward's own terms: relatively within |z| eps of exact for either label, and
        # four operations where the stable sigmoid and the subtraction took seven
        s, t, per = cache
        dz = np.subtract(t, per)
        np.exp(dz, out=dz)
        dz *= s
        if w is None:
            dz *= 1.0 / len(z)
            return dz
        return dz * (w[:, None] / w.sum())

    def hvp(
        self, z: np.ndarray, y: np.ndarray, cache: Any, dz: np.ndarray, w: np.ndarray | None = None
    ) -> np.ndarray:
        r""":math:`(\partial^2 L / \partial z^2)\, dz = \frac1n \sigma(z) (1 - \sigma(z))\, dz`.

        :math:`\sigma(z)(1 - \sigma(z)) = \sigma(t)\sigma(-t) = e^{t - 2\,\mathrm{softplus}(t)}` with
        :math:`t = s z` from the forward pass: no cancellation at any logit.
        """
        _, t, per = cache
        curv = np.exp(t - 2 * per)
        if w is None:
            return dz * (curv * (1.0 / len(z)))
        return dz * (curv * (w[:, None] / w.sum()))

    def proba(self, z: np.ndarray) -> np.ndarray:
        p = sigmoid(z[:, 0])
        return np.column_stack([1 - p, p])

    def predict(self, z: np.ndarray) -> np.ndarray:
        # sigma(z) > 1/2 exactly when z > 0; ties go to class 0 as argmax of proba does
        return (z[:, 0] > 0).astype(np.int64)


class SoftmaxCrossEntropy:
    r"""Mean cross-entropy of class indices ``y`` given logits ``z`` (n, K), via a shifted log-sum-exp.

    .. math::

        L = \frac1n \sum_i \Big[\log \sum_j e^{z_{ij} - m_i} - (z_{i y_i} - m_i)\Big],
        \quad m_i = \max_j z_{ij}, \qquad
        \frac{\partial L}{\partial z} = \frac1n (\operatorname{softmax}(z) - \operatorname{onehot}(y))
    """

    task = "multiclass"

    def forward(self, z: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, Any]:
        zs = z - z.max(axis=1, keepdims=True)
        e = np.exp(zs)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(len(z))
        per = np.log(s[:, 0]) - zs[rows, y]
        if w is None:
            return float(np.mean(per)), (e, s)
        return float(np.sum(w * per) / w.sum()), (e, s)

    def backward(self, z: np.ndarray, y: np.ndarray, cache: Any, w: np.ndarray | None = None) -> np.ndarray:
        e, s = cache
        dz = e / s
        dz[np.arange(len(z)), y] -= 1
        if w is None:
            dz /= len(z)
        else:
            dz *= (w / w.sum())[:, None]
        return dz

    def hvp(
        self, z: np.ndarray, y: np.ndarray, cache: Any, dz: np.ndarray, w: np.ndarray | None = None
    ) -> np.ndarray:
        r""":math:`(\partial^2 L / \partial z^2)\, dz = \frac1n \big(p \odot dz - p\,(p \cdot dz)\big)`
        row by row, :math:`p = \operatorname{softmax}(z)`: the Hessian of log-sum-exp,
        :math:`\operatorname{diag}(p) - p p^\top`."""
        e, s = cache
        p = e / s
        out = p * dz
        out -= p * out.sum(axis=-1, keepdims=True)
        if w is None:
            return out * (1.0 / len(z))
        return out * (w / w.sum())[:, None]

    def proba(self, z: np.ndarray) -> np.ndarray:
        return softmax(z)

    def predict(self, z: np.ndarray) -> np.ndarray:
        return np.argmax(z, axis=1).astype(np.int64)


#: the loss of each task
LOSSES: dict[str, SquaredError | BinaryCrossEntropy | SoftmaxCrossEntropy] = {
    "regression": SquaredError(),
    "binary": BinaryCrossEntropy(),
    "multiclass": SoftmaxCrossEntropy(),
}
