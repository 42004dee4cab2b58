"""Hidden-layer activations, each forward formula beside its first and second derivatives."""

from __future__ import annotations

import numpy as np

__all__ = ["ACTIVATIONS", "LeakyReLU", "ReLU", "Sigmoid", "Tanh", "make_activation", "sigmoid"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    r"""Logistic function :math:`1 / (1 + e^{-z})`, computed without overflow for any ``z``.

    Only :math:`e^{-|z|} \in (0, 1]` is ever formed, so ``z = -1000`` gives 0 and ``z = 1000``
    gives 1 with no warning, and the dtype of ``z`` is kept.

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    return sigmoid_from_exp(z, np.exp(-np.abs(z)))


def sigmoid_from_exp(z: np.ndarray, e: np.ndarray) -> np.ndarray:
    r"""Sigmoid of ``z`` given ``e = exp(-|z|)``."""
    r = 1 / (1 + e)  # sigma(|z|); for z < 0, sigma(z) = e * sigma(|z|)
    return np.where(z >= 0, r, e * r)


class ReLU:
    r""":math:`a = \max(z, 0)`, :math:`\partial a / \partial z = [z > 0]`."""

    name = "relu"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0)

    def backward(self, z: np.ndarray, a: np.ndarray, da: np.ndarray) -> np.ndarray:
        return da * (z > 0)

    def second(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        r""":math:`\partial^2 a / \partial z^2 = 0` (away from the kink at 0, where it is taken as 0)."""
        return np.zeros_like(z)


class LeakyReLU:
    r""":math:`a = z` for :math:`z > 0`, else :math:`s z`; derivative 1 or :math:`s` (``slope``)."""

    name = "leaky_relu"

    def __init__(self, slope: float):
        self.slope = float(slope)

    def forward(self, z: np.ndarray) -> np.ndarray:
        # slope * z keeps z's dtype (a Python float is a weak scalar); np.where(c, 1, slope) would not
        return np.where(z > 0, z, self.slope * z)

    def backward(self, z: np.ndarray, a: np.ndarray, da: np.ndarray) -> np.ndarray:
        return np.where(z > 0, da, self.slope * da)

    def second(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        r""":math:`\partial^2 a / \partial z^2 = 0` (away from the kink at 0, where it is taken as 0)."""
        return np.zeros_like(z)


class Sigmoid:
    r""":math:`a = \sigma(z)`, :math:`\partial a / \partial z = a (1 - a)`."""

    name = "sigmoid"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return sigmoid(z)

    def backward(self, z: np.ndarray, a: np.ndarray, da: np.ndarray) -> np.ndarray:
        return da * a * (1 - a)

    def second(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        r""":math:`\partial^2 a / \partial z^2 = a (1 - a) (1 - 2a)`."""
        return a * (1 - a) * (1 - 2 * a)


class Tanh:
    r""":math:`a = \tanh z`, :math:`\partial a / \partial z = 1 - a^2`."""

    name = "tanh"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z)

    def backward(self, z: np.ndarray, a: np.ndarray, da: np.ndarray) -> np.ndarray:
        return da * (1 - a * a)

    def second(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        r""":math:`\partial^2 a / \partial z^2 = -2 a (1 - a^2)`."""
        return -2 * a * (1 - a * a)


ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu")


def make_activation(name: str, *, leaky_slope: float = 0.01) -> ReLU | LeakyReLU | Sigmoid | Tanh:
    """The activation registered as ``name`` (one of :data:`ACTIVATIONS`)."""
    if name == "leaky_relu":
        return LeakyReLU(leaky_slope)
    return {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}[name]()
