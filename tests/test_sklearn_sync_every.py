"""The estimators' ``sync_every``: local SGD on a Dask source through ``fit``, and the refusals
(sklearn's validation of the value; data whose steps cannot run on the workers)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

import descend as ds
from descend.errors import ParameterError
from descend.sklearn import DescendClassifier, DescendRegressor


def _data(n=600, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, (X @ np.array([1.0, -1.0, 0.5, 0.0][:d]) > 0).astype(np.int64)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4"])
def test_bad_values_are_refused_by_sklearns_validation(bad):
    X, y = _data(n=60)
    with pytest.raises(InvalidParameterError, match=r"'sync_every' parameter of DescendClassifier"):
        DescendClassifier(sync_every=bad).fit(X, y)


def test_a_bool_passes_sklearns_integer_check_and_is_refused_by_fit():
    X, y = _data(n=60)
    with pytest.raises(TypeError, match=r"sync_every must be an integer, got True \(bool\)"):
        DescendClassifier(sync_every=True, epochs=1).fit(X, y)


def test_arrays_and_streamed_files_refuse_h_above_1_and_take_1(tmp_path):
    X, y = _data(n=120)
    for est, target in ((DescendClassifier, y), (DescendRegressor, X[:, 1])):
        clf = est(sync_every=4, epochs=1, random_state=0)
        with pytest.raises(ParameterError, match=rf"^{est.__name__}: sync_every=4 \(local SGD") as info:
            clf.fit(X, target)
        assert info.value.param == "sync_every" and "in-memory arrays" in str(info.value)
        assert "leave sync_every=None" in str(info.value) and not hasattr(clf, "run_")
        one = est(sync_every=1, epochs=2, random_state=0).fit(X, target)
        none = est(epochs=2, random_state=0).fit(X, target)
        assert np.array_equal(one.coef_, none.coef_)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    src = ds.data.open(tmp_path / "X.npy", target=tmp_path / "y.npy")
    with pytest.raises(ParameterError, match=r"the data \(.*\) is trained in this process"):
        DescendClassifier(sync_every=2).fit(src)
    clf = DescendClassifier(sync_every=2)
    with pytest.raises(ParameterError, match=r"^DescendClassifier: sync_every=2 \(local SGD"):
        clf.partial_fit(X, y, classes=[0, 1])
    assert not hasattr(clf, "classes_")  # refused before anything was read or set


# -- on a cluster --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    from clusters import local_cluster
    from distributed import Client

    with local_cluster() as cluster, Client(cluster) as c:
        yield c


def _source(X, y, chunks=300):
    import dask.array as da

    return ds.data.from_dask((da.from_array(X, chunks=(chunks, X.shape[1])), da.from_array(y, chunks=chunks)))


def test_classifier_trains_rounds_of_local_steps_on_a_dask_source(client):
    X, y = _data()
    kw = dict(optimizer="sgd", lr=0.2, batch_size=50, epochs=2, tol=None, random_state=0)
    clf = DescendClassifier(sync_every=3, **kw).fit(_source(X, y))
    steps = clf.run_.history.steps
    # two partitions of 300 rows: 6 local batches each per epoch, rounds of 3 local steps
    assert steps["local_steps"] == [3, 3, 3, 3] and clf.t_ == 12
    assert clf.run_.config["sync_every"] == 3
    assert clf.score(X, y) > 0.9
    # the same as fit with the same settings, bit for bit
    run = ds.fit(
        ds.models.LogisticRegression(l2=1e-4, dtype="float64"),
        _source(X, y),
        optimizer=ds.SGD(lr=0.2),
        batch_size=50,
        epochs=2,
        seed=0,
        sync_every=3,
        standardize=False,
        progress=False,
    )
    assert all(np.array_equal(run.params[k], clf.run_.params[k]) for k in run.params)
    # one step at a time: a row per step, 12 batches of 50 in an epoch of 600 rows
    per_step = DescendClassifier(**kw).fit(_source(X, y))
    assert "local_steps" not in per_step.run_.history.steps and per_step.t_ == 24


def test_regressor_refuses_h_above_1_on_a_dask_source_saying_why(client):
    X, _ = _data(n=200)
    reg = DescendRegressor(sync_every=3, batch_size=50)
    with pytest.raises(
        ParameterError, match=r"standardizes the targets of a Dask source in this process"
    ) as e:
        reg.fit(_source(X, X[:, 0], chunks=100))
    assert e.value.param == "sync_every" and "sync_every=H" in str(e.value) and not hasattr(reg, "run_")
