"""Hyperparameter checks shared by several update rules."""

from __future__ import annotations

from typing import Any

from .._validation import check_real, describe


def check_betas(owner: str, betas: Any) -> tuple[float, float]:
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {describe(betas)}")
    b1 = check_real(owner, "beta1", betas[0], low=0.0, high=1.0, high_open=True)
    b2 = check_real(owner, "beta2", betas[1], low=0.0, high=1.0, high_open=True)
    return b1, b2


def check_eps(owner: str, eps: Any, name: str = "eps") -> float:
    return check_real(owner, name, eps, low=0.0, low_open=True)
