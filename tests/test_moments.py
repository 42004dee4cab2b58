"""The shared numerics of the data layer, and the interface every source declares.

Chan et al.'s merge against NumPy; each of its users (files and arrays, Dask partitions, the
scikit-learn estimators' targets) against the formula it ran before the merge was shared; one
constant-column rule on every path; one too-many-classes error; the declared source interface.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import descend as ds
from descend.data import ArraySource, DataError, DataSource
from descend.data._moments import CONSTANT_ATOL, CONSTANT_RTOL, Moments, merge, scale_or_one, varies
from descend.data.base import MAX_CLASSES, Chunk, _Accumulator, too_many_classes
from descend.data.split import RowSplit

# -- naive references: the update each user ran before the merge was written once ---------------


def old_accumulator(X, block):
    """data/base.py's _Accumulator as it was: blocks of ``block`` rows, M2 += m2_c + correction."""
    n, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for lo in range(0, len(X), block):
        B = np.asarray(X[lo : lo + block], dtype=np.float64)
        m = len(B)
        mean_c = B.sum(axis=0) / m
        c = B - mean_c
        m2_c = np.einsum("ij,ij->j", c, c)
        total = n + m
        delta = mean_c - mean
        mean = mean + delta * (m / total)
        m2 = m2 + (m2_c + delta**2 * (n * m / total))
        n = total
    return mean, np.sqrt(m2 / max(n, 1))


def old_partition_merge(pieces):
    """data/dask.py's client-side merge as it was, over (rows, mean, M2) in partition order."""
    n, mean, m2 = 0, 0.0, 0.0
    for m, mean_c, m2_c in pieces:
        if m:
            total = n + m
            delta = mean_c - mean
            mean = mean + delta * (m / total)
            m2 = m2 + m2_c + delta**2 * (n * m / total)
        n += m
    return mean, np.sqrt(m2 / max(n, 1))


def old_source_target_moments(chunks):
    """sklearn.py's streaming target moments as they were, chunk by chunk."""
    n, mean, m2 = 0, None, None
    for y in chunks:
        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        mc, m2c = y.mean(axis=0), ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        if mean is None:
            n, mean, m2 = len(y), mc, m2c
            continue
        total = n + len(y)
        delta = mc - mean
        mean = mean + delta * (len(y) / total)
        m2 = m2 + m2c + delta**2 * (n * len(y) / total)
        n = total
    return mean, np.sqrt(m2 / n)


# -- the merge ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_merge_of_random_splits_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(2, 400)), int(rng.integers(1, 5))
    X = rng.normal(size=(n, d)) * rng.uniform(1e-3, 1e3, size=d) + rng.uniform(-1e4, 1e4, size=d)
    cuts = np.sort(rng.integers(0, n + 1, size=int(rng.integers(1, 12))))  # empty pieces too
    pieces = [Moments.of(p) for p in np.split(X, cuts) if len(p)] + [Moments(0, None, None)]
    rng.shuffle(pieces)  # rows may be merged in any order
    left = Moments(0, None, None)
    for p in pieces:  # one at a time, as a stream
        left = merge(left, p)
    while len(pieces) > 1:  # pairwise, as a tree
        pieces = [
            merge(*pieces[i : i + 2]) if i + 1 < len(pieces) else pieces[i] for i in range(0, len(pieces), 2)
        ]
    for m in (left, pieces[0]):
        assert m.n == n
        np.testing.assert_allclose(m.mean, X.mean(axis=0), rtol=1e-12, atol=1e-12 * np.abs(X).max())
        np.testing.assert_allclose(m.std**2, X.var(axis=0), rtol=1e-12)


def test_merge_keeps_a_side_with_no_rows_as_it_is():
    a = Moments.of(np.array([[1.0, -0.0], [3.0, -0.0]]))
    empty = Moments(0, None, None)
    assert merge(a, empty) is a and merge(empty, a) is a
    assert Moments(0, np.zeros(2), np.zeros(2)).std.tolist() == [0.0, 0.0]


# -- its users give the numbers they gave before -------------------------------------------------


def offset_data(n=5000, d=4, dtype=np.float64):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(n, d)) * [1.0, 1e3, 1e-3, 5.0] + [0.0, 1e6, 3.0, -2.0]
    return X.astype(dtype), (rng.normal(size=n) * 3 + 10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_streaming_pass_gives_the_moments_it_gave_before(dtype):
    X, y = offset_data(dtype=dtype)
    s = ArraySource(X, y).summarize(classes=False, moments=True, targets=True)
    mean, std = old_accumulator(X, _Accumulator.BLOCK_ROWS)
    np.testing.assert_array_equal(s.mean, mean)  # the mean's arithmetic is unchanged
    # M2 adds a block's own sum and its correction to the total in the other order now (as the
    # Dask merge always did): the last bit may differ
    np.testing.assert_allclose(s.std, std, rtol=1e-15, atol=0)
    t_mean, t_std = old_accumulator(y[:, None], _Accumulator.BLOCK_ROWS)
    np.testing.assert_array_equal(s.target_mean, t_mean)
    np.testing.assert_allclose(s.target_std, t_std, rtol=1e-15, atol=0)


class FakeClient:
    """Runs each submitted task at once, in submission order: the Dask merge on the client
    without a cluster."""

    def submit(self, fn, *args, key=None, pure=None):
        return fn(*args)

    def gather(self, futures):
        return list(futures)


def fake_dask_source(parts, n_features):
    from descend.data.dask import DaskSource

    src = DaskSource.__new__(DaskSource)
    src.client, src._parts, src._n_features = FakeClient(), parts, n_features
    src._id, src._count, src.description = "test", itertools.count(), "dask"
    src._sizes = [len(p[0]) for p in parts]
    return src


def test_dask_summary_is_bit_identical_to_the_old_merge_in_partition_order():
    X, y = offset_data()
    y2 = np.stack([y, 2 * y + 1], axis=1)
    bounds = [0, 700, 700, 2100, 3000, 5000]  # one partition holds no rows
    parts = [(X[a:b], y2[a:b], None) for a, b in itertools.pairwise(bounds)]
    s = fake_dask_source(parts, X.shape[1]).summarize(classes=False, moments=True, targets=True)
    pieces = []
    for Xp, yp, _ in parts:
        F = np.concatenate([Xp, yp], axis=1)
        mean = F.mean(axis=0) if len(F) else None
        pieces.append((len(F), mean, ((F - mean) ** 2).sum(axis=0) if len(F) else None))
    mean, std = old_partition_merge(pieces)
    np.testing.assert_array_equal(s.mean, mean[:4])
    np.testing.assert_array_equal(s.std, std[:4])
    np.testing.assert_array_equal(s.target_mean, mean[4:])
    np.testing.assert_array_equal(s.target_std, std[4:])
    assert s.n_rows == 5000


def test_estimator_target_moments_from_a_source_are_the_streaming_pass():
    from descend.sklearn import _source_target_moments, _target_moments

    X, y = offset_data()
    src = ArraySource(X, np.stack([y, 1e3 * y], axis=1), order="windowed", shard_rows=1200)
    mean, scale = _source_target_moments(src)
    s = src.summarize(classes=False, moments=False, targets=True)
    np.testing.assert_array_equal(mean, s.target_mean)
    np.testing.assert_array_equal(scale, s.target_std)
    chunks = [c.y for shard in range(len(src.shard_sizes())) for c in src.read_shard(shard)]
    old_mean, old_std = old_source_target_moments(chunks)
    np.testing.assert_allclose(mean, old_mean, rtol=1e-15)
    np.testing.assert_allclose(scale, old_std, rtol=1e-14)
    # in memory, with weights: np.average as before
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    m, sc = _target_moments(y, w)
    assert m[0] == np.average(y, weights=w)
    assert sc[0] == np.sqrt(np.average((y - m[0]) ** 2, weights=w))


# -- one constant-column rule --------------------------------------------------------------------


def rounded_constant(c, dtype, n=600):
    """A column equal to ``c`` up to rounding in ``dtype``: c and its two neighbours, mixed."""
    c = dtype(c)
    values = np.array([c, np.nextafter(c, dtype(np.inf)), np.nextafter(c, dtype(-np.inf))], dtype=dtype)
    return values[np.random.default_rng(2).integers(0, 3, size=n)]


def table(dtype, c):
    rng = np.random.default_rng(3)
    X = np.stack(
        [rng.normal(size=600) * 100, rounded_constant(c, dtype), rng.normal(size=600), np.full(600, c)],
        axis=1,
    ).astype(dtype)
    y = X[:, 0] / 100 - X[:, 2] + 0.1 * rng.normal(size=600)
    return X, y


CONSTANTS = [0.1, 3.3e4, -7.25e-3]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", CONSTANTS)
def test_rounding_is_not_variation(dtype, c):
    col = rounded_constant(c, dtype).astype(np.float64)
    assert not varies(col.mean(), col.std())
    assert varies(c, CONSTANT_RTOL * 10 * abs(c))  # 1e-5 of the mean is a real spread
    assert not varies(0.0, 1e-17) and varies(0.0, 10 * CONSTANT_ATOL)  # residue about 0
    assert scale_or_one([c, c], [col.std(), 2.0]).tolist() == [1.0, 2.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", CONSTANTS)
def test_every_standardizing_path_keeps_a_rounded_constant_column_unscaled(tmp_path, dtype, c):
    import pyarrow as pa
    import pyarrow.parquet as pq

    X, y = table(dtype, c)
    run = ds.fit("linear", (X, y), standardize=True, epochs=1, progress=False)
    assert run.scaler.scale[[1, 3]].tolist() == [1.0, 1.0] and run.scaler.scale[0] > 50
    path = tmp_path / "t.parquet"
    cols = {f"x{j}": X[:, j] for j in range(4)}
    pq.write_table(pa.table({**cols, "y": y.astype(dtype)}), path, row_group_size=128)
    src = ds.data.open(path, target="y")
    run = ds.fit("linear", src, standardize=True, epochs=1, progress=False)
    assert run.scaler.scale[[1, 3]].tolist() == [1.0, 1.0] and run.scaler.scale[0] > 50
    # Dask: partitions summarized on the workers, merged on the client, the same Scaler
    from descend.train.prepare import Scaler

    parts = [(X[a : a + 150], y[a : a + 150], None) for a in range(0, 600, 150)]
    s = fake_dask_source(parts, 4).summarize(classes=False, moments=True)
    assert Scaler.from_moments(s.mean, s.std).scale[[1, 3]].tolist() == [1.0, 1.0]
    # a target constant up to rounding: fit's target scaler and both estimator paths
    t = X[:, 1]
    # (centred, such a target leaves a loss near 0, which the divergence guard reads as growth)
    kw = {"epochs": 1, "progress": False, "divergence_factor": None}
    run = ds.fit("linear", (X[:, [0, 2]], t), standardize_target=True, **kw)
    assert run.target_scaler.scale.tolist() == [1.0]
    from descend.sklearn import _source_target_moments, _target_moments  # the estimators' scaling

    assert _target_moments(t, None)[1].tolist() == [1.0]
    assert _target_moments(t, np.linspace(0.5, 2.0, len(t)))[1].tolist() == [1.0]
    assert _source_target_moments(ArraySource(X[:, [0, 2]], t))[1].tolist() == [1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_diagnose_feature_scale_leaves_out_what_fit_leaves_unscaled(dtype):
    from descend.lab.diagnose import _feature_scale

    X, _ = table(dtype, 3.3e4)
    ratio, offset = _feature_scale(X)
    sd = X[:, [0, 2]].astype(np.float64).std(axis=0)
    assert ratio == pytest.approx(sd.max() / sd.min(), rel=1e-12)
    assert offset < 1.0  # the constant columns' |mean| / std (huge) is not counted


# -- one too-many-classes error --------------------------------------------------------------------


def test_every_class_discovery_words_too_many_classes_the_same(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = MAX_CLASSES + 1
    X, y = np.zeros((n, 2)), np.arange(n)
    expected = str(too_many_classes())
    assert f"more than {MAX_CLASSES} distinct values" in expected
    with pytest.raises(DataError) as arrays:
        ArraySource(X, y).summarize(classes=True, moments=False)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "y": y}), path, row_group_size=300)
    with pytest.raises(DataError) as files:
        ds.data.open(path, target="y").summarize(classes=True, moments=False)
    halves = [(X[:600], y[:600], None), (X[600:], y[600:], None)]
    with pytest.raises(DataError) as merged:  # each partition has few enough; together too many
        fake_dask_source(halves, 2).summarize(classes=True, moments=False)
    with pytest.raises(DataError) as partition:  # one partition alone has too many
        fake_dask_source([(X[:1], y[:1], None), (X, y, None)], 2).summarize(classes=True, moments=False)
    assert str(arrays.value) == str(files.value) == str(merged.value) == expected
    assert str(partition.value) == f"partition 1: {expected}" and partition.value.file == "partition 1"
    with pytest.raises(ValueError, match="more than 1000 distinct values"):
        ds.fit("softmax", ds.data.open(path, target="y"), epochs=1, progress=False)


def test_inferring_the_task_is_a_different_limit():
    from descend.models.task import MAX_INFERRED_CLASSES, infer_task

    assert MAX_INFERRED_CLASSES < MAX_CLASSES
    assert infer_task(np.arange(MAX_INFERRED_CLASSES)).kind == "multiclass"
    with pytest.raises(ValueError, match="name it"):
        infer_task(np.arange(MAX_INFERRED_CLASSES + 1))


# -- the declared interface --------------------------------------------------------------------------


class Minimal(DataSource):
    """Only what every source must provide: width, shard sizes, rows of a shard."""

    def __init__(self, X, y, rows_per_shard=40):
        self.X, self.y, self.k = X, y, rows_per_shard

    @property
    def n_features(self):
        return self.X.shape[1]

    def shard_sizes(self):
        return [len(self.X[i : i + self.k]) for i in range(0, len(self.X), self.k)]

    def read_shard(self, shard, skip=0):
        lo, hi = shard * self.k + skip, min((shard + 1) * self.k, len(self.X))
        yield Chunk(self.X[lo:hi], self.y[lo:hi], np.arange(lo, hi), "minimal")


def regression(n=200, k=1):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(n, 3))
    W = rng.normal(size=(3, k))
    return X, (X @ W)[:, 0] if k == 1 else X @ W


def test_the_base_class_declares_what_a_source_may_provide():
    assert DataSource.computes_gradients is False and DataSource.n_targets == 1
    assert dict(DataSource.skipped) == {} and dict(DataSource.excluded) == {}
    X, y = regression()
    src = Minimal(X, y)
    assert src.shard_range(0) is None and src.targets is None
    train, val = src.split(0.25, seed=1)
    assert isinstance(train, RowSplit) and isinstance(val, RowSplit)
    assert train.n_samples + val.n_samples == 200
    with pytest.raises(NotImplementedError, match="Minimal does not compute gradients"):
        next(src.gradients(None, {}, None, 0, None))


def test_a_source_with_only_the_required_members_trains_with_validation():
    X, y = regression()
    run = ds.fit("linear", Minimal(X, y), validation=0.2, epochs=2, progress=False, standardize=True)
    assert run.skipped_rows == {} and run.n_outputs == 1
    assert run.validation.n_samples == ds.data.split(ArraySource(X, y), 0.2, 0)[1].n_samples


def test_a_streamed_source_declares_its_target_columns():
    X, Y = regression(k=2)
    src = Minimal(X, Y)
    src.n_targets = 2
    run = ds.fit("linear", src, epochs=2, progress=False)
    assert run.n_outputs == 2 and run.params["W"].shape == (3, 2)


def test_fit_asks_a_source_that_declares_it_for_gradients():
    X, y = regression()

    class Remote(Minimal):
        computes_gradients = True
        calls = 0

        def gradients(self, model, params, prep, epoch, batch_size, **where):
            for b in range(where["start"], self.n_batches(batch_size)):
                Remote.calls += 1
                Xb, yb = prep(self.X, self.y)
                loss, grads = model.loss_and_grad(params, Xb, yb)
                yield b, loss, grads, len(Xb)

    run = ds.fit("linear", Remote(X, y), batch_size=None, epochs=3, progress=False)
    assert Remote.calls == 3 and run.steps_completed == 3


def test_in_memory_targets_are_encoded_on_a_copy_with_its_own_targets():
    X, y = regression()
    src = ArraySource(X, np.where(y > 0, "yes", "no"))
    enc = src.with_targets((y > 0).astype(np.float64))
    assert enc.X is src.X and src.y[0] in ("yes", "no") and enc.y.dtype == np.float64
    run = ds.fit("logistic", src, epochs=2, progress=False)
    assert sorted(run.classes.tolist()) == ["no", "yes"] and not hasattr(src, "_encoded")


def test_estimator_on_an_in_memory_source_holds_out_validation_rows():
    # the scaled-targets wrapper used to hand the split its base's shard_rows (an int on arrays)
    from descend.sklearn import DescendRegressor

    X, y = regression()
    reg = DescendRegressor(early_stopping=True, epochs=30, random_state=0).fit(ArraySource(X, y))
    assert reg.score(X, y) > 0.9
