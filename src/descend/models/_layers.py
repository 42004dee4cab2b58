"""The affine layer ``z = a W + b``, forward beside backward, and its weight initializers."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["INITS", "Dense", "init_weight"]


class Dense:
    r"""Affine map of a batch ``a`` (n, fan_in) to ``z`` (n, fan_out); ``b`` may be absent.

    .. math::

        z = a W + b, \qquad
        \frac{\partial L}{\partial W} = a^\top \frac{\partial L}{\partial z}, \quad
        \frac{\partial L}{\partial b} = \mathbf{1}^\top \frac{\partial L}{\partial z}, \quad
        \frac{\partial L}{\partial a} = \frac{\partial L}{\partial z} W^\top
    """

    @staticmethod
    def forward(a: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        z = a @ W
        if b is not None:
            z += b
        return z

    @staticmethod
    def backward(
        a: np.ndarray, W: np.ndarray, dz: np.ndarray, *, bias: bool, input_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(dW, db, da)``; ``db`` is None without a bias, ``da`` None unless ``input_grad``."""
        dW = a.T @ dz
        db = dz.sum(axis=0) if bias else None
        da = dz @ W.T if input_grad else None
        return dW, db, da


INITS = ("he", "xavier", "normal")


def init_weight(
    rng: np.random.Generator, fan_in: int, fan_out: int, scheme: str, dtype: np.dtype
) -> np.ndarray:
    r"""A (fan_in, fan_out) weight matrix drawn in ``dtype``.

    ``he``: :math:`\mathcal N(0, 2/\text{fan\_in})` (He et al., 2015);
    ``xavier``: :math:`\mathcal U(\pm\sqrt{6/(\text{fan\_in}+\text{fan\_out})})` (Glorot & Bengio,
    2010); ``normal``: :math:`\mathcal N(0, 0.01^2)`.
    """
    shape = (fan_in, fan_out)
    if scheme == "xavier":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        W = rng.random(shape, dtype=dtype)
        W *= 2 * limit
        W -= limit
        return W
    std = math.sqrt(2.0 / fan_in) if scheme == "he" else 0.01
    W = rng.standard_normal(shape, dtype=dtype)
    W *= std
    return W
