"""The estimators with L-BFGS: ``batch_size="auto"`` trains full batch (what ``fit`` does with
``batch_size=None``, bit for bit), and the refusals: a mini-batch size, ``partial_fit`` and
``sync_every``, each naming its parameter before anything is read or changed."""

from __future__ import annotations

import numpy as np
import pytest

import descend as ds
from descend.errors import ParameterError
from descend.sklearn import DescendClassifier, DescendRegressor


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    return X, (X[:, 0] - X[:, 1] + 0.3 * rng.standard_normal(n) > 0).astype(np.int64)


@pytest.mark.parametrize("optimizer", ["lbfgs", " LBFGS", ds.LBFGS(line_search_fn="strong_wolfe")])
def test_auto_batch_size_is_full_batch_and_equals_fit(optimizer):
    X, y = _data()
    clf = DescendClassifier(optimizer=optimizer, tol=None, epochs=40, random_state=0).fit(X, y)
    run = clf.run_
    assert run.config["batch_size"] is None and run.config["optimizer"]["line_search_fn"] == "strong_wolfe"
    assert clf.t_ == clf.n_iter_ == run.steps_completed <= 40  # one iteration per epoch
    assert run.history.steps["samples_seen"][0] >= len(X)  # every row, at least once per iteration
    # what fit does with the rule on the whole data (its strong-Wolfe line search included)
    ref = ds.fit(
        ds.models.LogisticRegression(l2=1e-4, dtype="float64"),
        (X, y),
        optimizer="lbfgs",
        batch_size=None,
        epochs=40,
        seed=0,
        standardize=False,
        progress=False,
    )
    assert ref.steps_completed == run.steps_completed
    assert all(np.array_equal(ref.params[k], run.params[k]) for k in ref.params)
    assert clf.score(X, y) > 0.85


def test_full_batch_none_is_the_same_and_the_regressor_fits_a_plane():
    X, y = _data()
    auto = DescendClassifier(optimizer="lbfgs", random_state=0).fit(X, y)
    none = DescendClassifier(optimizer="lbfgs", batch_size=None, random_state=0).fit(X, y)
    np.testing.assert_array_equal(auto.coef_, none.coef_)
    target = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    reg = DescendRegressor(optimizer="lbfgs", l2=0.0, random_state=0).fit(X, target)
    np.testing.assert_allclose(reg.coef_, [1.0, -2.0, 0.5], atol=1e-4)
    assert abs(reg.intercept_ - 3.0) < 1e-4 and "iterations" in reg.run_.stop_reason


@pytest.mark.parametrize("est", [DescendClassifier, DescendRegressor])
def test_a_mini_batch_size_is_refused_naming_batch_size(est):
    X, y = _data(n=60)
    model = est(optimizer="lbfgs", batch_size=32)
    with pytest.raises(ParameterError, match=rf"^{est.__name__}: batch_size=32 with optimizer='lbfgs'") as e:
        model.fit(X, y)
    assert e.value.param == "batch_size" and "leave batch_size='auto'" in str(e.value)
    assert not hasattr(model, "run_") and not hasattr(model, "n_features_in_")


@pytest.mark.parametrize("optimizer", ["lbfgs", ds.LBFGS()])
def test_partial_fit_is_refused_naming_the_optimizer(optimizer):
    X, y = _data(n=60)
    clf = DescendClassifier(optimizer=optimizer)
    with pytest.raises(ParameterError, match=r"^DescendClassifier: partial_fit cannot train with") as e:
        clf.partial_fit(X, y, classes=[0, 1])
    assert e.value.param == "optimizer" and "one call's chunk of the data" in str(e.value)
    assert not hasattr(clf, "classes_")  # refused before anything was set
    reg = DescendRegressor(optimizer=optimizer)
    with pytest.raises(ParameterError, match=r"^DescendRegressor: partial_fit cannot train with"):
        reg.partial_fit(X, X[:, 0])
    # a fitted estimator too: fit trains L-BFGS, partial_fit cannot continue it on a chunk
    clf = DescendClassifier(optimizer=optimizer, epochs=3, random_state=0).fit(X, y)
    t = clf.t_
    with pytest.raises(ParameterError, match="partial_fit cannot train"):
        clf.partial_fit(X[:10], y[:10])
    assert clf.t_ == t


def test_sync_every_is_refused_naming_it():
    X, y = _data(n=60)
    with pytest.raises(ParameterError, match=r"sync_every=3 with optimizer='lbfgs': local SGD") as e:
        DescendClassifier(optimizer="lbfgs", sync_every=3).fit(X, y)
    assert e.value.param == "sync_every"
    DescendClassifier(optimizer="lbfgs", sync_every=1, epochs=2).fit(X, y)  # 1: what it does anyway


def test_warm_start_continues_its_iterations():
    X, y = _data()
    clf = DescendClassifier(optimizer="lbfgs", epochs=3, tol=None, warm_start=True, random_state=0).fit(X, y)
    assert clf.t_ == 3
    clf.fit(X, y)
    assert clf.t_ == 6 and clf.run_.config["batch_size"] is None
