"""Issue 17, the library side: a trained model kept and used (Run.save / ds.load_run, bit for bit,
pickle-free, verified), columns matched by name, identifier columns left out of the features,
regression targets standardized by default, fit quality, and predictions streamed to a file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import descend as ds
from descend.data import DataError
from descend.errors import InvalidParameter, ParameterError, RunFileError
from descend.train.checkpoint import write_sealed
from descend.train.saved import MODEL_NAME, predict_file

pd = pytest.importorskip("pandas")

QUIET = dict(progress=False)


def mixed_scale(n=600, d=4, seed=0):
    """Features of very different scales and offsets (the issue's customers.csv)."""
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 100.0, 0.01, 1000.0, 10.0, 0.1])[:d]
    offset = np.array([0.0, 50.0, 0.0, 2000.0, -3.0, 1.0])[:d]
    Z = rng.normal(size=(n, d))
    return Z * scale + offset, Z, rng


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ----------------------------------------------------------------------- save / load, bit for bit


def _linear():
    X, Z, rng = mixed_scale()
    y = Z @ np.array([2.0, -1.0, 0.5, 3.0]) + 57.0 + 0.3 * rng.normal(size=len(Z))
    return "linear", X, y


def _logistic_yes_no():
    X, Z, rng = mixed_scale()
    y = np.where(Z @ np.array([1.0, -2.0, 0.5, 1.0]) + 0.3 * rng.normal(size=len(Z)) > 0, "yes", "no")
    return "logistic", X, y


def _softmax_357():
    X, Z, _ = mixed_scale()
    y = np.array([3, 5, 7])[np.argmax(Z[:, :3], axis=1)]
    return "softmax", X, y


def _mlp_bools():
    X, Z, _ = mixed_scale()
    return ds.models.MLP(hidden=(8,), output="binary"), X, Z[:, 0] * Z[:, 1] > 0


def _softmax_floats():
    X, Z, _ = mixed_scale()
    return "softmax", X, np.array([1.0, 2.0, 4.0])[np.argmax(Z[:, 1:], axis=1)]  # floats stay floats


def _mlp_regression():
    X, Z, _ = mixed_scale()
    return ds.models.MLP(hidden=(8,), output="regression", dtype="float64"), X, np.sin(Z[:, 0]) * 40 - 7


CASES = {
    "linear": _linear,
    "logistic_yes_no": _logistic_yes_no,
    "softmax_3_5_7": _softmax_357,
    "mlp_bool_labels": _mlp_bools,
    "softmax_float_labels": _softmax_floats,
    "mlp_regression": _mlp_regression,
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_saved_run_predicts_bit_for_bit_as_the_run_in_memory(tmp_path, case):
    model, X, y = CASES[case]()
    run = ds.fit(model, (X, y), epochs=3, batch_size=64, validation=0.2, **QUIET)
    path = run.save(tmp_path / "run")
    assert path == tmp_path / "run" / MODEL_NAME
    loaded = ds.load_run(tmp_path / "run")
    assert ds.Run.load(path).n_features == loaded.n_features == X.shape[1]
    assert same_bits(loaded.predict(X), run.predict(X))
    if run.classes is not None:
        assert same_bits(loaded.predict_proba(X), run.predict_proba(X))
        assert same_bits(loaded.classes, run.classes)
        # labels come back as they went in: strings, the integers 3, 5, 7, bools
        assert loaded.predict(X[:5]).dtype.kind == np.asarray(y).dtype.kind
        assert set(np.unique(loaded.predict(X)).tolist()) <= set(np.unique(y).tolist())
    assert loaded.model.config() == run.model.config()
    for a, b in ((loaded.scaler, run.scaler), (loaded.target_scaler, run.target_scaler)):
        assert (a is None) == (b is None)
        if a is not None:
            assert same_bits(a.mean, b.mean) and same_bits(a.scale, b.scale)
    assert loaded.notes == run.notes and loaded.quality == run.quality
    assert loaded.history.epochs["val_loss"] == run.history.epochs["val_loss"]
    assert loaded.optimizer is None and loaded.state is None
    if run.target_scaler is not None:  # regression: predictions in the target's units
        assert abs(float(np.mean(loaded.predict(X))) - float(np.mean(y))) < 0.2 * float(np.std(y))


def test_the_model_file_is_plain_arrays_and_json(tmp_path):
    model, X, y = _logistic_yes_no()
    ds.fit(model, (X, y), epochs=1, **QUIET).save(tmp_path)
    with np.load(tmp_path / MODEL_NAME, allow_pickle=False) as z:  # no pickle anywhere
        arrays = {k: z[k] for k in z.files}
    assert all(a.dtype != object for a in arrays.values())
    meta = json.loads(str(arrays["meta"]))
    assert meta["format"] == "descend-model" and meta["model"]["model"] == "logistic_regression"
    assert arrays["classes"].tolist() == ["no", "yes"] and "checksum" in arrays


def test_save_writes_one_file_and_leaves_a_run_folders_other_files_alone(tmp_path):
    model, X, y = _linear()
    others = {"config.yaml": "model: linear\n", "metrics.csv": "step,loss\n1,2.0\n", "params.npz": "x"}
    for name, text in others.items():
        (tmp_path / name).write_text(text)
    first = ds.fit(model, (X, y), epochs=1, **QUIET)
    first.save(tmp_path)
    second = ds.fit(model, (X, y), epochs=2, **QUIET)
    second.save(tmp_path)  # replaced in place
    assert {p.name for p in tmp_path.iterdir()} == {*others, MODEL_NAME}
    assert all((tmp_path / n).read_text() == t for n, t in others.items())
    assert same_bits(ds.load_run(tmp_path).predict(X), second.predict(X))
    with pytest.raises(ParameterError, match="is a file"):
        second.save(tmp_path / "config.yaml")


def test_load_run_reads_a_checkpoint_folder_and_a_run_folders_checkpoints(tmp_path):
    model, X, y = _softmax_357()
    run = ds.fit(model, (X, y), epochs=2, checkpoint_dir=tmp_path / "out" / "checkpoints", **QUIET)
    for where in (tmp_path / "out" / "checkpoints", tmp_path / "out"):
        loaded = ds.load_run(where)
        assert same_bits(loaded.predict(X), run.predict(X))
        assert same_bits(loaded.predict_proba(X), run.predict_proba(X))
    # a run folder's model.npz wins over its checkpoints
    run.save(tmp_path / "out")
    assert ds.load_run(tmp_path / "out").checkpoint is None


def test_a_loaded_run_cannot_be_continued_as_init(tmp_path):
    model, X, y = _linear()
    ds.fit(model, (X, y), epochs=1, **QUIET).save(tmp_path)
    with pytest.raises(ParameterError, match="loaded run"):
        ds.fit(model, (X, y), epochs=1, init=ds.load_run(tmp_path), **QUIET)


# ----------------------------------------------------------------------- damaged and foreign files


@pytest.fixture
def saved(tmp_path):
    model, X, y = _logistic_yes_no()
    ds.fit(model, (X, y), epochs=1, **QUIET).save(tmp_path)
    return tmp_path / MODEL_NAME


def _arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_a_changed_number_is_a_checksum_mismatch(saved):
    arrays = _arrays(saved)
    arrays["param/W"] = arrays["param/W"] + 1.0
    np.savez(saved, **arrays)
    with pytest.raises(RunFileError, match="checksum mismatch"):
        ds.load_run(saved.parent)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "damaged"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_text("not a model"), "not an .npz archive"),
        (lambda p: np.savez(p, W=np.zeros(3)), "checksum is missing"),
        (lambda p: np.savez(p, x=np.array([{"a": 1}], dtype=object)), "Python objects"),
    ],
    ids=["truncated", "empty", "text", "foreign_npz", "pickled"],
)
def test_a_damaged_or_foreign_file_is_a_clear_error(saved, damage, message):
    damage(saved)
    with pytest.raises(RunFileError, match=message) as err:
        ds.load_run(saved.parent)
    assert "allow_pickle" not in str(err.value) and str(saved) in str(err.value)


def _rewrite(path, change):
    """Someone else's file: changed, with a checksum that matches (data only, still checked)."""
    arrays = _arrays(path)
    arrays.pop("checksum")
    meta = json.loads(str(arrays["meta"]))
    change(meta, arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    write_sealed(path, arrays)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m, a: m["model"].update(model="os.system"), "model configuration is not valid"),
        (lambda m, a: m["model"].update(l2="__import__('os')"), "model configuration is not valid"),
        (lambda m, a: a.update({"param/W": np.zeros((7, 1), np.float32)}), "are not those of"),
        (lambda m, a: a.update({"classes": np.array(["a", "b", "c"])}), "3 classes"),
        (lambda m, a: a.update({"scaler/scale": np.zeros(4)}), "<= 0"),
        (lambda m, a: m.update(format="pickle"), "format 'pickle'"),
        (lambda m, a: m.update(version=99), "version 99"),
        (lambda m, a: m.update(feature_names=["a"]), "names 1 features"),
        # a header claiming a model of 10^12 weights: refused by shape, nothing that size allocated
        (lambda m, a: m.update(n_features=10**6, n_outputs=10**6), "are not those of"),
        (
            lambda m, a: m.update(model={"model": "mlp", "hidden": [10**9], "output": "binary"}),
            "are not those of",
        ),
    ],
    ids=[
        "unknown_model",
        "code_as_value",
        "param_shape",
        "classes",
        "scale",
        "format",
        "version",
        "names",
        "huge_header",
        "huge_hidden",
    ],
)
def test_a_file_someone_else_wrote_is_data_checked_against_its_model(saved, change, message):
    _rewrite(saved, change)
    with pytest.raises(RunFileError, match=message):
        ds.load_run(saved)


def test_load_run_names_a_folder_without_a_run(tmp_path):
    with pytest.raises(RunFileError, match="no saved run"):
        ds.load_run(tmp_path)
    with pytest.raises(RunFileError, match="no such file"):
        ds.load_run(tmp_path / "nowhere")


# ---------------------------------------------------------------------------- columns by name


def _frame(n=400, seed=3):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.normal(5e4, 1.5e4, n),
            "visits": rng.poisson(3, n).astype(float),
            "tenure": rng.normal(5, 2, n),
        }
    )
    score = (df.age - 45) / 10 + (df.income - 5e4) / 1e4 - (df.visits - 3) + 0.3 * rng.normal(size=n)
    return df, np.where(score > 0, "yes", "no")


def test_a_dataframe_in_another_column_order_gives_the_same_predictions():
    df, y = _frame()
    run = ds.fit("logistic", (df, y), epochs=3, **QUIET)
    assert run.feature_names == ("age", "income", "visits", "tenure")
    shuffled = df[["visits", "tenure", "age", "income"]]
    assert same_bits(run.predict(shuffled), run.predict(df))
    assert same_bits(run.predict_proba(shuffled), run.predict_proba(df))
    # the same rows as a pyarrow Table and as a dict of columns, in other orders still
    table = pa.Table.from_pandas(df[["tenure", "income", "visits", "age"]], preserve_index=False)
    columns = {c: df[c].to_numpy() for c in ["income", "age", "tenure", "visits"]}
    assert same_bits(run.predict(table), run.predict(df))
    assert same_bits(run.predict(columns), run.predict(df))
    # positionally the shuffled columns would agree with the truth about half the time: never silently
    assert same_bits(run.predict(df.to_numpy()), run.predict(df))  # an array: by position, as trained
    assert np.mean(run.predict(shuffled.to_numpy()) == run.predict(df)) < 0.9


def test_a_missing_feature_or_an_unknown_column_is_an_error_naming_it():
    df, y = _frame()
    run = ds.fit("logistic", (df, pd.Series(y, name="churn")), epochs=1, **QUIET)
    assert run.target == "churn"
    with pytest.raises(DataError, match=r"lacks the feature column\(s\) 'visits', 'tenure'"):
        run.predict(df[["age", "income"]])
    with pytest.raises(DataError, match=r"column\(s\) 'coupon' that were not in the training data"):
        run.predict(df.assign(coupon=1.0))
    # the target and identifiers (by name) may be there
    with_more = df.assign(churn=y, customer_id=np.arange(len(df)))
    assert same_bits(run.predict(with_more), run.predict(df))
    with pytest.raises(DataError, match=r"row 2, column 'income': a missing value"):
        run.predict(df.assign(income=df.income.where(df.index != 2)))
    with pytest.raises(DataError, match="'age' is not numeric"):
        run.predict(df.assign(age="old"))


def test_validation_and_resumed_tables_are_matched_by_name(tmp_path):
    df, y = _frame()
    val, yv = _frame(seed=4)
    order = ["tenure", "visits", "income", "age"]
    a = ds.fit("logistic", (df, y), validation=(val, yv), epochs=2, **QUIET)
    b = ds.fit("logistic", (df, y), validation=(val[order], yv), epochs=2, **QUIET)
    assert a.history.epochs["val_loss"] == b.history.epochs["val_loss"] and a.quality == b.quality
    with pytest.raises(DataError, match="must be the same columns"):
        ds.fit("logistic", (df, y), validation=(val.rename(columns={"age": "years"}), yv), epochs=1, **QUIET)
    # a checkpoint of one column order does not resume a table of another
    ds.fit("logistic", (df, y), epochs=1, checkpoint_dir=tmp_path, **QUIET)
    with pytest.raises(ValueError, match="refusing to resume"):
        ds.fit("logistic", (df[order], y), epochs=2, checkpoint_dir=tmp_path, resume=True, **QUIET)


def test_a_run_trained_on_arrays_keeps_its_positional_behaviour():
    df, y = _frame()
    run = ds.fit("logistic", (df.to_numpy(), y), epochs=1, **QUIET)
    assert run.feature_names is None
    assert same_bits(run.predict(df), run.predict(df.to_numpy()))
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        run.predict(df.to_numpy()[:, :3])


def test_a_file_source_is_matched_by_name_and_the_names_survive_saving(tmp_path):
    df, y = _frame()
    df.assign(churn=y).to_csv(tmp_path / "train.csv", index=False)
    run = ds.fit("logistic", ds.data.open(tmp_path / "train.csv", target="churn"), epochs=2, **QUIET)
    run.save(tmp_path / "run")
    loaded = ds.load_run(tmp_path / "run")
    assert loaded.feature_names == ("age", "income", "visits", "tenure") and loaded.target == "churn"
    assert same_bits(loaded.predict(df[["tenure", "visits", "income", "age"]]), run.predict(df))
    # a source with the features in another order is read by name too
    df[["tenure", "age", "visits", "income"]].assign(churn=y).to_parquet(tmp_path / "other.parquet")
    src = ds.data.open(tmp_path / "other.parquet", target="churn")
    assert same_bits(loaded.predict(src), run.predict(df))


# ------------------------------------------------------------------------- identifier columns


def _customers(tmp_path, n=300, seed=5):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "row": np.arange(1, n + 1),  # a row number, 1..n
            "id": rng.permutation(n) + 10_000,
            "customer_id": rng.permutation(n),
            "customerCode": [f"C{i:05d}" for i in rng.permutation(n)],  # a text key
            "age": rng.integers(18, 80, n),  # integers that are no row count
            "spend": rng.normal(57, 9, n),
            "region": rng.integers(0, 3, n),
        }
    )
    df["label"] = np.where(df.age + rng.normal(0, 5, n) > 50, "yes", "no")
    path = tmp_path / "customers.csv"
    df.to_csv(path, index=False)
    return path, df


def test_identifier_columns_are_left_out_of_a_files_features_with_a_note(tmp_path):
    path, df = _customers(tmp_path)
    src = ds.data.open(path, target="label")
    assert src.feature_names == ("age", "spend", "region")
    assert set(src.excluded) == {"row", "id", "customer_id", "customerCode"}
    assert "counts the rows (1, 2, 3, ...)" in src.excluded["row"]
    assert (
        "by its name" in src.excluded["customer_id"] and "values all differ" in src.excluded["customerCode"]
    )
    run = ds.fit("logistic", src, epochs=1, **QUIET)
    assert sum("left out column" in n for n in run.notes) == 4
    assert any("'customer_id'" in n and "features=[...]" in n for n in run.notes)
    assert set(run.other_columns) >= {"row", "id", "customer_id", "customerCode"}
    # predicting on the same file (ids included, target included) works by name
    assert same_bits(run.predict(df), run.predict(df[["age", "spend", "region"]]))


def test_features_and_drop_change_what_is_left_out(tmp_path):
    path, _ = _customers(tmp_path)
    asked = ds.data.open(path, target="label", features=["customer_id", "age"])
    assert asked.feature_names == ("customer_id", "age") and not asked.notes
    dropped = ds.data.open(path, target="label", drop=["region"])
    assert dropped.feature_names == ("age", "spend")
    with pytest.raises(ParameterError, match="not both"):
        ds.data.open(path, target="label", features=["age"], drop=["region"])
    with pytest.raises(ParameterError, match="'nope' not in"):
        ds.data.open(path, target="label", drop=["nope"])
    # arrays are taken as given: no column is left out
    X = np.column_stack([np.arange(50), np.random.default_rng(0).normal(size=50)])
    assert ds.data.as_source((X, np.arange(50) % 2)).n_features == 2


def test_a_row_count_that_is_the_only_feature_is_kept_with_a_note(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text("id,x,y\n" + "".join(f"{i + 7},{i},{i % 2}\n" for i in range(40)))
    src = ds.data.open(path, target="y")
    assert src.feature_names == ("x",) and list(src.excluded) == ["id"]
    assert any("kept column(s) 'x'" in n for n in src.notes)
    with pytest.raises(DataError, match=r"no feature columns besides the target 'y'; left out 'id'"):
        ds.data.open(path, target="y", drop=["x"])  # an identifier by its name is never kept


def test_identifier_rule_in_parquet_and_by_name(tmp_path):
    from descend.data.columns import id_name

    assert [id_name(c) for c in ("ID", "Id", "user_ID", "orderId", "Order ID", "uuid")] == [True] * 6
    assert not any(id_name(c) for c in ("paid", "valid", "Android", "OID", "idle", "width"))
    _, df = _customers(tmp_path)
    df.to_parquet(tmp_path / "c.parquet")
    src = ds.data.open(tmp_path / "c.parquet", target="label")
    assert src.feature_names == ("age", "spend", "region")


# ------------------------------------------------------------- regression: the target's scale


def _mean_57(n=50_000, seed=7):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 5))
    X = Z * np.array([1.0, 120.0, 0.02, 15.0, 800.0]) + np.array([0.0, 40.0, 0.0, 3.0, 5000.0])
    y = Z @ np.array([2.0, -3.0, 1.5, 4.0, 0.7]) + 57.0 + 3.0 * rng.normal(size=n)
    A = np.column_stack([X, np.ones(n)])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    return X, y, float(np.mean((A @ coef - y) ** 2))


def test_default_regression_on_a_target_of_mean_57_reaches_the_least_squares_optimum():
    X, y, best = _mean_57()
    assert abs(y.mean() - 57) < 0.1
    run = ds.fit("linear", (X, y), **QUIET)
    mse = float(np.mean((run.predict(X) - y) ** 2))
    assert mse <= 1.01 * best, (mse, best, run.stop_reason)
    assert run.target_scaler is not None and any("standardized the target" in n for n in run.notes)
    # the target as given, with the same defaults otherwise, does not get there
    raw = ds.fit("linear", (X, y), standardize_target=False, **QUIET)
    assert float(np.mean((raw.predict(X) - y) ** 2)) > 2 * best


def test_default_regression_from_a_csv_file_reports_metrics_in_the_targets_units(tmp_path):
    X, y, best = _mean_57()
    cols = {f"x{j}": X[:, j] for j in range(X.shape[1])}
    pcsv.write_csv(pa.table({"customer_id": np.arange(len(y)), **cols, "spend": y}), tmp_path / "c.csv")
    src = ds.data.open(tmp_path / "c.csv", target="spend")
    assert "customer_id" in src.excluded
    run = ds.fit("linear", src, validation=0.1, **QUIET)
    mse = float(np.mean((run.predict(X) - y) ** 2))
    assert mse <= 1.01 * best, (mse, best, run.stop_reason)
    assert any("standardized the target 'spend'" in n for n in run.notes)
    q = run.quality
    assert q.split == "validation" and 4000 < q.rows < 6000 and q.target == "spend"
    assert q.rmse == pytest.approx(np.sqrt(best), rel=0.05)
    assert q.r2 == pytest.approx(1 - best / np.var(y), abs=0.03)  # noise sd 3 of a target sd 6.4
    assert run.history.epochs["val_mse"][-1] == pytest.approx(best, rel=0.1)  # target units, not standardized
    assert f"R² {q.r2:.4f}, RMSE {q.rmse:.4g} (spend's units)" in str(q)


def test_quality_is_computed_on_the_validation_rows():
    X, y, _ = _mean_57(n=2000)
    Xv, yv, _ = _mean_57(n=500, seed=8)
    run = ds.fit("linear", (X, y), validation=(Xv, yv), epochs=5, **QUIET)
    pred = run.predict(Xv).astype(np.float64)
    mse = float(np.mean((pred - yv) ** 2))
    assert run.quality.rows == 500
    assert run.quality.mse == pytest.approx(mse, rel=1e-5)
    assert run.quality.rmse == pytest.approx(np.sqrt(mse), rel=1e-5)
    assert run.quality.r2 == pytest.approx(1 - mse / np.var(yv), rel=1e-5)
    clf = ds.fit("logistic", (X, y > 57), validation=(Xv, yv > 57), epochs=2, **QUIET)
    assert clf.quality.accuracy == pytest.approx(np.mean(clf.predict(Xv) == (yv > 57)))
    assert clf.quality.r2 is None and str(clf.quality).startswith("validation (500 rows): accuracy")
    assert ds.fit("linear", (X, y), epochs=1, **QUIET).quality is None  # no validation rows


def test_standardize_target_choices():
    X, y, _ = _mean_57(n=500)
    assert ds.fit("linear", (X, y), epochs=1, standardize=False, **QUIET).target_scaler is None  # as given
    assert ds.fit(
        "linear", (X, y), epochs=1, standardize=False, standardize_target=True, **QUIET
    ).target_scaler
    with pytest.raises(ParameterError, match="standardize_target=True needs a regression model"):
        ds.fit("logistic", (X, y > 57), epochs=1, standardize_target=True, **QUIET)
    with pytest.raises(InvalidParameter, match="standardize_target"):
        ds.fit("linear", (X, y), epochs=1, standardize_target="yes", **QUIET)
    assert ds.fit("logistic", (X, y > 57), epochs=1, **QUIET).target_scaler is None


def test_resuming_with_a_target_scaler_is_bit_exact(tmp_path):
    X, y, _ = _mean_57(n=1000)
    kw = dict(batch_size=64, epochs=3, checkpoint_every=5, **QUIET)
    whole = ds.fit("linear", (X, y), checkpoint_dir=tmp_path / "whole", **kw)
    ds.fit("linear", (X, y), checkpoint_dir=tmp_path / "cut", max_steps=23, **kw)
    resumed = ds.fit("linear", (X, y), checkpoint_dir=tmp_path / "cut", resume=True, **kw)
    assert resumed.resumed_from_step == 23
    assert all(resumed.params[k].tobytes() == whole.params[k].tobytes() for k in whole.params)
    assert resumed.target_scaler.mean.tobytes() == whole.target_scaler.mean.tobytes()
    assert same_bits(resumed.predict(X), whole.predict(X))


def test_the_sklearn_regressor_does_not_standardize_twice():
    from descend.sklearn import DescendRegressor

    X, y, best = _mean_57(n=3000)
    reg = DescendRegressor(random_state=0, standardize=True).fit(X, y)
    assert reg.run_.target_scaler is None  # it scales y itself
    assert float(np.mean((reg.predict(X) - y) ** 2)) < 1.2 * best


# ------------------------------------------------------------------- predictions streamed to files


def _churn_csv(tmp_path, n=3000, missing=()):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(n, 3)) * np.array([1.0, 1e4, 0.1]) + np.array([0, 5e4, 1])
    ids = [f"{i:07d}" for i in rng.permutation(n)]  # text ids with leading zeros
    label = np.where(X[:, 0] + (X[:, 1] - 5e4) / 1e4 > 0, "yes", "no")
    income = pa.array(X[:, 1], mask=np.isin(np.arange(n), missing))
    table = pa.table({"customer_id": ids, "age": X[:, 0], "income": income, "score": X[:, 2], "churn": label})
    path = tmp_path / "churn.csv"
    pcsv.write_csv(table, path)
    return path, X, ids


@pytest.mark.parametrize("out_name", ["pred.csv", "pred.parquet", "pred.csv.gz"])
def test_predict_file_streams_a_csv_with_ids_into_predictions_equal_to_predict(tmp_path, out_name):
    path, X, ids = _churn_csv(tmp_path)
    run = ds.fit("logistic", ds.data.open(path, target="churn"), epochs=2, **QUIET)
    run.save(tmp_path / "run")
    loaded = ds.load_run(tmp_path / "run")
    res = predict_file(loaded, path, tmp_path / out_name, batch_rows=700)
    assert res.rows == 3000 and res.id_column == "customer_id"
    assert res.columns == ("customer_id", "prediction", "proba_no", "proba_yes")
    if out_name.endswith(".parquet"):
        got = pq.read_table(tmp_path / out_name)
    else:
        opts = pcsv.ConvertOptions(column_types={"customer_id": pa.string()})
        got = pcsv.read_csv(tmp_path / out_name, convert_options=opts)
    assert got.column("customer_id").to_pylist() == ids  # as written, leading zeros kept
    assert got.column("prediction").to_pylist() == run.predict(X).tolist()
    proba = run.predict_proba(X)
    np.testing.assert_array_equal(got.column("proba_yes").to_numpy().astype(proba.dtype), proba[:, 1])
    assert not list(tmp_path.glob(".pred*"))  # no temporary file left


def test_iter_predictions_streams_in_bounded_chunks_in_file_order(tmp_path):
    path, X, ids = _churn_csv(tmp_path)
    run = ds.fit("logistic", ds.data.open(path, target="churn"), epochs=1, **QUIET)
    chunks = list(ds.train.iter_predictions(run, path, batch_rows=256))
    assert max(len(c.rows) for c in chunks) <= 256 and len(chunks) >= 3000 // 256
    assert np.concatenate([c.rows for c in chunks]).tolist() == list(range(1, 3001))
    assert [v for c in chunks for v in c.ids.to_pylist()] == ids
    assert same_bits(np.concatenate([c.predictions for c in chunks]), run.predict(X))
    assert same_bits(np.concatenate([c.proba for c in chunks]), run.predict_proba(X))
    assert run.predict_file(path, tmp_path / "p.parquet").rows == 3000


def test_predict_file_for_regression_without_a_target_column_and_with_missing_values(tmp_path):
    X, y, _ = _mean_57(n=2000)
    run = ds.fit("linear", (pd.DataFrame(X, columns=[f"x{j}" for j in range(5)]), y), epochs=3, **QUIET)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
    frame.insert(0, "id", np.arange(2000) * 3)
    frame.loc[[4, 9], "x2"] = np.nan
    frame[["x3", "id", "x0", "x4", "x1", "x2"]].to_parquet(tmp_path / "new.parquet")  # no target
    with pytest.raises(DataError, match=r"row 5, column 'x2': a missing value"):
        predict_file(run, tmp_path / "new.parquet", tmp_path / "p.parquet")
    assert not (tmp_path / "p.parquet").exists()
    res = predict_file(run, tmp_path / "new.parquet", tmp_path / "p.parquet", on_bad_rows="skip")
    got = pq.read_table(tmp_path / "p.parquet")
    keep = np.setdiff1d(np.arange(2000), [4, 9])
    assert res.skipped == 2 and got.column("id").to_pylist() == (keep * 3).tolist()
    assert same_bits(got.column("prediction").to_numpy(), run.predict(X[keep]))
    res = predict_file(run, tmp_path / "new.parquet", tmp_path / "e.csv", on_bad_rows="empty", id_column="id")
    got = pcsv.read_csv(tmp_path / "e.csv")
    assert res.empty == 2 and got.num_rows == 2000 and got.column("prediction").null_count == 2


def test_predict_file_refuses_columns_it_cannot_match(tmp_path):
    path, _, _ = _churn_csv(tmp_path)
    run = ds.fit("logistic", ds.data.open(path, target="churn"), epochs=1, **QUIET)
    pcsv.write_csv(pa.table({"age": [1.0], "score": [2.0]}), tmp_path / "few.csv")
    with pytest.raises(DataError, match=r"lacks the feature column\(s\) 'income'"):
        predict_file(run, tmp_path / "few.csv", tmp_path / "out.csv")
    pcsv.write_csv(pa.table({"age": [1.0], "income": [1.0], "score": [2.0], "x": [0]}), tmp_path / "more.csv")
    with pytest.raises(DataError, match=r"column\(s\) 'x' that were not in the training data"):
        predict_file(run, tmp_path / "more.csv", tmp_path / "out.csv")
    with pytest.raises(ParameterError, match="id column 'nope'"):
        predict_file(run, path, tmp_path / "out.csv", id_column="nope")
    with pytest.raises(ParameterError, match="one of the data files"):
        predict_file(run, path, path)
    with pytest.raises(ParameterError, match=r"\.csv, \.csv\.gz or \.parquet"):
        predict_file(run, path, tmp_path / "out.json")


def test_zip_of_a_saved_run_has_no_pickle_magic(saved):
    # an .npy inside the archive starts with the numpy magic, never with a pickle protocol header
    with zipfile.ZipFile(saved) as z:
        for name in z.namelist():
            assert z.read(name)[:6] == b"\x93NUMPY"
    assert Path(saved).stat().st_size > 0
