"""descend.sklearn: the estimator contract, partial_fit continuity, sklearn tooling, data sources."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, make_classification
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

import descend as ds
from descend.sklearn import DescendClassifier, DescendRegressor


def _regression(n=120, d=4, seed=0, outputs=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    coef = rng.normal(size=(d,) if outputs is None else (d, outputs))
    return X, X @ coef * 10 + 50 + rng.normal(size=(n,) if outputs is None else (n, outputs))


def _blobs(n=150, k=3, seed=0):
    X, y = make_classification(
        n_samples=n,
        n_features=5,
        n_informative=3,
        n_redundant=0,
        n_classes=k,
        n_clusters_per_class=1,
        class_sep=2.0,
        random_state=seed,
    )
    return X, y


# -- basic contract ---------------------------------------------------------------------------------
def test_regressor_learns_linear_function_in_original_units():
    X, y = _regression()
    reg = DescendRegressor(random_state=0, epochs=300).fit(X, y)
    ref = Ridge(alpha=1e-6).fit(X, y)
    assert reg.score(X, y) > 0.99
    np.testing.assert_allclose(reg.coef_, ref.coef_, rtol=0.02, atol=0.05)
    assert abs(reg.intercept_ - ref.intercept_) < 0.1
    np.testing.assert_allclose(reg.predict(X), X @ reg.coef_ + reg.intercept_, rtol=1e-10, atol=1e-8)
    assert reg.n_iter_ == len(reg.loss_curve_) and reg.t_ == reg.run_.steps_completed
    assert reg.loss_curve_[-1] < reg.loss_curve_[0]


def test_regressor_multioutput():
    X, Y = _regression(outputs=3)
    reg = DescendRegressor(random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (len(X), 3) and reg.coef_.shape == (3, 4) and reg.intercept_.shape == (3,)
    assert reg.score(X, Y) > 0.95


@pytest.mark.parametrize("k", [2, 3])
def test_classifier_linear_attributes_and_probabilities(k):
    X, y = _blobs(k=k)
    clf = DescendClassifier(random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.8
    rows = 1 if k == 2 else k
    assert clf.coef_.shape == (rows, 5) and clf.intercept_.shape == (rows,)
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(P))
    z = clf.decision_function(X)
    assert z.shape == ((len(X),) if k == 2 else (len(X), k))
    np.testing.assert_allclose(z, (X @ clf.coef_.T + clf.intercept_).squeeze(), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[P.argmax(axis=1)])


def test_mlp_attributes():
    X, y = _blobs(k=3)
    clf = DescendClassifier(hidden_layer_sizes=(8, 4), activation="tanh", random_state=0, epochs=50).fit(X, y)
    assert [W.shape for W in clf.coefs_] == [(5, 8), (8, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (4,), (3,)]
    assert not hasattr(clf, "coef_")
    Xr, yr = _regression()
    reg = DescendRegressor(hidden_layer_sizes=16, random_state=0, epochs=50).fit(Xr, yr)
    h = np.maximum(Xr @ reg.coefs_[0] + reg.intercepts_[0], 0)  # coefs_ describe predict, in units of y
    np.testing.assert_allclose((h @ reg.coefs_[1] + reg.intercepts_[1])[:, 0], reg.predict(Xr), rtol=1e-9)


def test_string_labels_and_dataframe_feature_names():
    X, y = _blobs(k=3)
    names = np.array(["cat", "dog", "emu"])
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    clf = DescendClassifier(random_state=0).fit(df, names[y])
    assert clf.classes_.tolist() == ["cat", "dog", "emu"]
    assert clf.feature_names_in_.tolist() == list(df.columns) and clf.n_features_in_ == 5
    assert set(clf.predict(df)) <= set(names) and clf.score(df, names[y]) > 0.8
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)  # fitted with names, given none: sklearn's own warning
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df.rename(columns={"f0": "other"}))


def test_bad_parameters_raise_sklearns_error_at_fit_not_init():
    X, y = _blobs()
    clf = DescendClassifier(lr=-1.0, optimizer="adamm")  # __init__ only stores
    with pytest.raises(InvalidParameterError, match="'lr' parameter of DescendClassifier must be"):
        clf.fit(X, y)
    with pytest.raises(InvalidParameterError, match="'optimizer' parameter"):
        DescendClassifier(optimizer="adamm").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'schedule' parameter"):
        DescendRegressor(schedule="sometimes").fit(*_regression())
    with pytest.raises(ValueError, match="lr or a schedule object"):
        DescendRegressor(lr=0.1, schedule=ds.schedules.Constant(0.1)).fit(*_regression())


def test_one_class_and_partial_fit_without_classes_raise():
    X, y = _blobs()
    with pytest.raises(ValueError, match="one class"):
        DescendClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="classes="):
        DescendClassifier().partial_fit(X, y)
    clf = DescendClassifier(random_state=0).partial_fit(X[:10], y[:10], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not one of the classes"):
        clf.partial_fit(X[:3], np.array([0, 1, 7]))


# -- partial_fit continues everything ---------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: DescendClassifier(schedule="linear_decay", lr=0.05, **kw),
        lambda **kw: DescendClassifier(
            hidden_layer_sizes=(6,), schedule=ds.schedules.Cosine(0.02, total_steps=8), **kw
        ),
        lambda **kw: DescendRegressor(schedule="inverse_time", optimizer="rmsprop", **kw),
        lambda **kw: DescendRegressor(hidden_layer_sizes=(5,), schedule="cosine", **kw),
    ],
)
def test_fit_two_epochs_equals_two_partial_fit_calls_bit_for_bit(make):
    X, y = _blobs(n=90, k=3)
    if isinstance(make(), DescendRegressor):
        X, y = _regression(n=90)
    kw = dict(epochs=2, shuffle=False, batch_size=16, random_state=3)
    full = make(**kw).fit(X, y)
    part = make(**kw)
    extra = {"classes": np.unique(y)} if isinstance(part, DescendClassifier) else {}
    part.partial_fit(X, y, **extra).partial_fit(X, y)
    for k, v in full.run_.params.items():
        np.testing.assert_array_equal(part.run_.params[k], v)
    assert part.t_ == full.t_ == 2 * 6 and part.n_iter_ == full.n_iter_ == 2
    assert int(part.run_.state.t) == 12  # the step counter (bias correction, schedule) was not reset
    np.testing.assert_array_equal(part.predict(X), full.predict(X))
    assert part.loss_curve_ == full.loss_curve_


def test_shuffled_partial_fit_also_continues_the_epoch_order():
    X, y = _regression(n=64)
    full = DescendRegressor(epochs=3, batch_size=8, random_state=1, tol=None).fit(X, y)
    part = DescendRegressor(epochs=3, batch_size=8, random_state=1)
    for _ in range(3):
        part.partial_fit(X, y)
    for k, v in full.run_.params.items():
        np.testing.assert_array_equal(part.run_.params[k], v)


def test_warm_start_continues_optimizer_state():
    X, y = _blobs()
    clf = DescendClassifier(epochs=3, tol=None, warm_start=True, random_state=0, shuffle=False).fit(X, y)
    t = clf.t_
    clf.fit(X, y)
    assert clf.t_ == 2 * t and clf.n_iter_ == 6
    ref = DescendClassifier(epochs=6, tol=None, random_state=0, shuffle=False).fit(X, y)
    for k, v in ref.run_.params.items():
        np.testing.assert_array_equal(clf.run_.params[k], v)
    clf.set_params(l2=1e-2).fit(X, y)  # a new penalty applies from here on; the run continues
    assert clf.n_iter_ == 9 and clf.run_.model.l2 == 1e-2
    with pytest.raises(ValueError, match="hidden"):
        clf.set_params(hidden_layer_sizes=(3,)).fit(X, y)
    clf.set_params(warm_start=False).fit(X, y)
    assert clf.n_iter_ == 3 and not hasattr(clf, "coef_") and len(clf.coefs_) == 2


def test_tol_and_early_stopping_stop_training():
    X, y = _blobs(n=200)
    clf = DescendClassifier(epochs=500, tol=1e-3, n_iter_no_change=3, random_state=0).fit(X, y)
    assert clf.n_iter_ < 500
    es = DescendClassifier(epochs=500, early_stopping=True, n_iter_no_change=3, random_state=0).fit(X, y)
    assert es.n_iter_ < 500 and len(es.validation_loss_curve_) == es.n_iter_
    assert DescendClassifier(epochs=7, tol=None, random_state=0).fit(X, y).n_iter_ == 7


# -- sample weights ----------------------------------------------------------------------------------
def test_sample_weight_is_a_weighted_mean():
    X, y = _regression(n=40)
    w = np.random.default_rng(0).integers(1, 4, size=len(X)).astype(float)
    kw = dict(batch_size=None, epochs=20, tol=None, random_state=0)
    weighted = DescendRegressor(**kw).fit(X, y, sample_weight=w)
    repeated = DescendRegressor(**kw).fit(np.repeat(X, w.astype(int), 0), np.repeat(y, w.astype(int)))
    # full batch: the weighted mean loss equals the mean over repeated rows
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-9)
    unweighted = DescendRegressor(**kw).fit(X, y)
    assert not np.allclose(weighted.predict(X), unweighted.predict(X))
    ones = DescendRegressor(**kw).fit(X, y, sample_weight=np.ones(len(X)))
    np.testing.assert_array_equal(ones.predict(X), unweighted.predict(X))


def test_sample_weight_in_partial_fit():
    X, y = _blobs(n=60, k=2)
    w = np.where(y == 1, 5.0, 1.0)
    clf = DescendClassifier(random_state=0, batch_size=None)
    clf.partial_fit(X, y, classes=[0, 1], sample_weight=w)
    ref = DescendClassifier(random_state=0, batch_size=None).partial_fit(X, y, classes=[0, 1])
    assert clf.predict_proba(X)[:, 1].mean() > ref.predict_proba(X)[:, 1].mean()


# -- sklearn tooling -------------------------------------------------------------------------------
def test_pipeline_gridsearch_clone_pickle():
    X, y = _blobs(n=120)
    pipe = make_pipeline(StandardScaler(), DescendClassifier(epochs=20, random_state=0))
    grid = GridSearchCV(
        pipe, {"descendclassifier__lr": [1e-3, 1e-2], "descendclassifier__l2": [0.0, 1e-2]}, cv=3
    )
    grid.fit(X, y)
    assert set(grid.best_params_) == {"descendclassifier__lr", "descendclassifier__l2"}
    assert grid.score(X, y) > 0.7
    est = grid.best_estimator_[-1]
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "run_")
    restored = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(restored.predict_proba(X), grid.best_estimator_.predict_proba(X))
    scores = cross_val_score(DescendRegressor(random_state=0), *_regression(), cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.9)


def test_optimizer_instance_and_schedule_object_are_not_mutated():
    X, y = _regression()
    sched = ds.schedules.ReduceOnPlateau(0.01, patience=0)
    before = sched.state_dict()
    DescendRegressor(schedule=sched, epochs=5, random_state=0).fit(X, y)
    assert sched.state_dict() == before
    opt = ds.RMSprop(lr=1e-2)
    reg = DescendRegressor(optimizer=opt, epochs=5, random_state=0).fit(X, y)
    assert reg.run_.optimizer is not opt and reg.score(X, y) > 0.5


# -- descend data sources ----------------------------------------------------------------------------
def test_fit_from_parquet_source(tmp_path):
    X, y = _regression(n=300, d=3)
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(target=y)
    path = tmp_path / "train.parquet"
    df.to_parquet(path, row_group_size=64)
    src = ds.data.open(path, target="target")
    kw = dict(shuffle=False, epochs=15, random_state=0)
    streamed = DescendRegressor(**kw).fit(src)
    assert streamed.feature_names_in_.tolist() == ["a", "b", "c"] and streamed.n_features_in_ == 3
    in_memory = DescendRegressor(**kw).fit(df[["a", "b", "c"]], y)
    np.testing.assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-6)
    np.testing.assert_allclose(
        streamed.predict(df[["a", "b", "c"]]), in_memory.predict(df[["a", "b", "c"]]), rtol=1e-6
    )
    std = DescendRegressor(standardize=True, **kw).fit(src)  # scaling inside, as no pipeline can go first
    np.testing.assert_allclose(std.predict(df[["a", "b", "c"]]), X @ std.coef_ + std.intercept_, rtol=1e-9)
    with pytest.raises(ValueError, match="y must be None"):
        DescendRegressor().fit(src, y)

    labels = np.where(y > np.median(y), "high", "low")
    df.assign(target=labels).to_parquet(tmp_path / "cls.parquet", row_group_size=64)
    clf = DescendClassifier(random_state=0, epochs=20).fit(
        ds.data.open(tmp_path / "cls.parquet", target="target")
    )
    assert clf.classes_.tolist() == ["high", "low"] and clf.score(df[["a", "b", "c"]], labels) > 0.9


# -- with defaults, as good as scikit-learn's comparable estimator -------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "load, ours, theirs",
    [
        (load_breast_cancer, DescendClassifier(random_state=0), LogisticRegression()),
        (load_diabetes, DescendRegressor(random_state=0), Ridge()),
        (
            load_digits,
            DescendClassifier(hidden_layer_sizes=(100,), random_state=0),
            MLPClassifier(random_state=0),
        ),
    ],
    ids=["breast_cancer-logistic", "diabetes-ridge", "digits-mlp"],
)
def test_cross_validation_within_one_point_of_sklearn(load, ours, theirs):
    X, y = load(return_X_y=True)
    a = cross_val_score(make_pipeline(StandardScaler(), ours), X, y, cv=5).mean()
    b = cross_val_score(make_pipeline(StandardScaler(), theirs), X, y, cv=5).mean()
    assert a >= b - 0.01, (a, b)


# -- scikit-learn's own estimator checks --------------------------------------------------------------
def _expected_failures(estimator):
    """Checks known to fail, with the reason (sklearn lists the same one for SGD*)."""
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "mini-batch SGD: a row repeated k times lands in other batches than one row of weight k, "
            "so the iterates differ (as for SGDClassifier/SGDRegressor); with full-batch gradient "
            "descent the check passes: test_sample_weight_equivalence_full_batch"
        ),
    }


@parametrize_with_checks([DescendRegressor(), DescendClassifier()], expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(
    [DescendRegressor(hidden_layer_sizes=(8,)), DescendClassifier(hidden_layer_sizes=(8,))],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks_mlp(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "estimator",
    [
        DescendRegressor(batch_size=None, epochs=30),
        DescendClassifier(batch_size=None, epochs=30),
        DescendClassifier(hidden_layer_sizes=(4,), batch_size=None, epochs=30),
    ],
    ids=repr,
)
def test_sample_weight_equivalence_full_batch(estimator):
    # sklearn runs this check on MLPClassifier with solver="lbfgs" (full batch) for the same reason
    check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)


# -- the benchmark ---------------------------------------------------------------------------------------
def test_benchmark_writes_its_section_and_keeps_the_others(tmp_path):
    root = Path(__file__).resolve().parents[1]
    doc = tmp_path / "benchmarks.md"
    other = "<!-- section:data -->\n## Data\nkept\n<!-- /section:data -->"
    doc.write_text("# Benchmarks\n\n" + other + "\n")
    args = ["--small", "diabetes", "--rows", "1500", "--rounds", "1", "--quick", "--doc", str(doc)]
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "sklearn", "--", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )
    text = doc.read_text()
    assert other in text
    section = text.split("<!-- section:sklearn -->", 1)[1].split("<!-- /section:sklearn -->", 1)[0]
    for name in ("SGDRegressor", "DescendRegressor", "Ridge", "SGDClassifier", "DescendClassifier"):
        assert f"| {name} |" in section
    assert "| diabetes | R² | DescendRegressor | defaults | 0.47" in section  # within a point of Ridge
