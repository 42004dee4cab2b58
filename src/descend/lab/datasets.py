"""Built-in datasets by name: data that ships with scikit-learn or is generated from a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._registry import Registry

__all__ = ["Dataset", "load", "names"]


@dataclass(frozen=True)
class Dataset:
    name: str
    X: np.ndarray
    y: np.ndarray
    task: str  # "regression" | "binary" | "multiclass"
    description: str

    def split(self, test_fraction: float = 0.25, seed: int = 0) -> tuple[Dataset, Dataset]:
        """A seeded train/test split (stratified by nothing: a plain permutation)."""
        rng = np.random.default_rng([seed, 7])
        idx = rng.permutation(len(self.y))
        cut = round(len(idx) * (1 - test_fraction))
        a, b = idx[:cut], idx[cut:]
        return (
            Dataset(self.name, self.X[a], self.y[a], self.task, self.description),
            Dataset(self.name + "-test", self.X[b], self.y[b], self.task, self.description),
        )


def _standardize(X: np.ndarray) -> np.ndarray:
    sd = X.std(0)
    return (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)


def _linear(seed: int) -> Dataset:
    rng = np.random.default_rng([seed, 11])
    X = rng.normal(size=(2000, 10))
    w = rng.normal(size=10)
    y = X @ w + 0.5 + 0.5 * rng.normal(size=2000)
    return Dataset("linear", X, y, *_REGISTRY["linear"])


#: name -> (task, description); loaded by :func:`load`
_REGISTRY: Registry[tuple[str, str]] = Registry(
    "dataset",
    {
        "digits": ("multiclass", "8x8 handwritten digits, 1797 x 64, 10 classes"),
        "iris": ("multiclass", "iris flowers, 150 x 4, 3 classes"),
        "breast_cancer": ("binary", "breast cancer diagnosis, 569 x 30, 2 classes"),
        "diabetes": ("regression", "diabetes progression, 442 x 10"),
        "linear": ("regression", "synthetic linear regression, 2000 x 10, noise sd 0.5"),
    },
    owner="datasets.load",
)


def names() -> list[str]:
    """Names accepted by :func:`load`."""
    return _REGISTRY.names()


def load(name: str, *, seed: int = 0) -> Dataset:
    """Load a dataset with standardized features (scikit-learn's bundled data, or synthetic)."""
    name = _REGISTRY.key(name)
    if name == "linear":
        ds = _linear(seed)
        return Dataset(ds.name, _standardize(ds.X), ds.y, ds.task, ds.description)
    from sklearn import datasets as skd

    loader = {
        "digits": skd.load_digits,
        "iris": skd.load_iris,
        "breast_cancer": skd.load_breast_cancer,
        "diabetes": skd.load_diabetes,
    }[name]
    task, desc = _REGISTRY[name]
    X, y = loader(return_X_y=True)
    return Dataset(name, _standardize(np.asarray(X, dtype=np.float64)), np.asarray(y), task, desc)
