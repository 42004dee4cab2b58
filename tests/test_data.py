"""Data sources and batching strategies: full-batch, stochastic, mini-batch; seeded order; checks."""

from __future__ import annotations

import numpy as np
import pytest

import descend as ds
from descend.data import ArraySource, as_source, check_batching, epoch_order, from_npy


def make(n=10, d=3):
    X = np.arange(n * d, dtype=np.float64).reshape(n, d)
    y = np.arange(n)
    return X, y


@pytest.mark.parametrize(
    ("batch_size", "drop_last", "sizes"),
    [
        (None, False, [10]),
        (1, False, [1] * 10),
        (4, False, [4, 4, 2]),
        (4, True, [4, 4]),
        (10, False, [10]),
        (25, False, [10]),
    ],
)
def test_batch_sizes_cover_the_epoch(batch_size, drop_last, sizes):
    src = ArraySource(*make())
    batches = list(src.batches(0, batch_size, shuffle=True, seed=3, drop_last=drop_last))
    assert [b.size for b in batches] == sizes
    assert [b.index for b in batches] == list(range(len(sizes)))
    assert src.n_batches(batch_size, drop_last) == len(sizes)
    seen = np.concatenate([b.y for b in batches])
    assert len(set(seen.tolist())) == len(seen)  # no sample twice in an epoch
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(10))
    for b in batches:  # rows stay paired with their targets
        np.testing.assert_array_equal(b.X[:, 0], b.y * 3)


def test_shuffle_is_seeded_per_epoch_and_leaves_global_state_alone():
    src = ArraySource(*make(50))
    state = np.random.get_state()  # noqa: NPY002
    a = [b.y for b in src.batches(0, 7, seed=1)]
    b = [b.y for b in src.batches(0, 7, seed=1)]
    c = [b.y for b in src.batches(1, 7, seed=1)]
    d = [b.y for b in src.batches(0, 7, seed=2)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    assert not np.array_equal(np.concatenate(a), np.concatenate(d))
    np.testing.assert_array_equal(np.concatenate(a), epoch_order(1, 0, 50))
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # noqa: NPY002


def test_no_shuffle_keeps_file_order():
    src = ArraySource(*make(9))
    assert np.concatenate([b.y for b in src.batches(5, 4, shuffle=False)]).tolist() == list(range(9))


def test_start_resumes_mid_epoch_exactly():
    src = ArraySource(*make(23))
    full = list(src.batches(4, 5, seed=9))
    tail = list(src.batches(4, 5, seed=9, start=2))
    assert [b.index for b in tail] == [2, 3, 4]
    for x, y in zip(full[2:], tail, strict=True):
        np.testing.assert_array_equal(x.X, y.X)


def test_memmapped_npy_pair(tmp_path):
    X, y = make(20)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    src = ds.data.open(tmp_path / "X.npy", target=tmp_path / "y.npy")
    assert isinstance(src.X, np.memmap)
    got = np.concatenate([b.y for b in src.batches(0, 6, seed=0)])
    # a memory-mapped file is read in the windowed file order; in memory it can be reproduced
    ref = np.concatenate([b.y for b in ArraySource(X, y, order="windowed").batches(0, 6, seed=0)])
    np.testing.assert_array_equal(got, ref)
    assert sorted(got.tolist()) == list(range(20))
    assert src.description == "X.npy + y.npy"


@pytest.mark.parametrize(
    ("X", "y", "exc", "text"),
    [
        (
            np.array([[1.0, np.nan], [0.0, 1.0]]),
            np.array([0, 1]),
            ValueError,
            "non-finite value (nan) at row 0, column 1",
        ),
        (np.array([[1.0, 2.0], [np.inf, 1.0]]), np.array([0, 1]), ValueError, "row 1, column 0"),
        (np.ones((3, 2)), np.array([0.0, np.nan, 1.0]), ValueError, "y has a non-finite value at row 1"),
        (np.ones((3, 2)), np.ones(4), ValueError, "X has 3 rows but y has 4"),
        (np.ones((0, 2)), np.ones(0), ValueError, "X is empty"),
        (np.ones(3), np.ones(3), ValueError, "X must be 2-D"),
        (np.array([["a", "b"]]), np.ones(1), TypeError, "X must hold numbers"),
        (np.ones((2, 2), dtype=complex), np.ones(2), TypeError, "X must be real"),
    ],
)
def test_bad_arrays_are_refused_with_location(X, y, exc, text):
    with pytest.raises(exc, match=text.replace("(", r"\(").replace(")", r"\)")):
        ArraySource(X, y)


def test_nan_check_streams_through_large_memmaps(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(200_000, 4))
    X[:] = 1.0
    X[150_001, 2] = np.nan
    X.flush()
    with pytest.raises(ValueError, match="row 150001, column 2"):
        from_npy(tmp_path / "big.npy", _save(tmp_path / "y.npy", np.zeros(200_000)))


def _save(path, arr):
    np.save(path, arr)
    return path


@pytest.mark.parametrize(
    ("batch_size", "exc", "text"),
    [
        (0, ValueError, "fit: batch_size must satisfy batch_size >= 1, got 0"),
        (-5, ValueError, "batch_size >= 1, got -5"),
        (2.5, TypeError, "batch_size must be None (full batch), 1 (stochastic) or an integer"),
        (True, TypeError, "got True (bool)"),
    ],
)
def test_bad_batch_size(batch_size, exc, text):
    with pytest.raises(exc, match=text.replace("(", r"\(").replace(")", r"\)")):
        check_batching("fit", batch_size, 10, False)


def test_drop_last_that_leaves_nothing_is_refused():
    with pytest.raises(ValueError, match="leaves no batch"):
        check_batching("fit", 20, 10, True)


def test_as_source_and_open_errors(tmp_path):
    with pytest.raises(TypeError, match=r"data must be an \(X, y\) pair"):
        as_source(np.ones((3, 2)))
    (tmp_path / "a.txt").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match=r"unsupported file type '\.txt'"):
        ds.data.open(tmp_path / "a.txt")
    with pytest.raises(FileNotFoundError, match="no such file"):
        ds.data.open(tmp_path / "missing.npy", target=tmp_path / "y.npy")


@pytest.mark.parametrize(
    "y",
    [
        np.array([-120, 120] * 40, np.int8),
        np.array([-30000, 30000] * 10000, np.int16),
        np.array([2**63 + 5, 2**63 + 6], np.uint64),
        np.array([[3], [1], [3]], np.int64),
        np.array([7, -2, 7, 5], np.int64),
        np.array([1_000_000_000, 0], np.int64),  # a wide range: sorted, not counted
    ],
    ids=["int8", "int16", "uint64-big", "2-d", "negative", "wide"],
)
def test_distinct_labels_of_any_integer_dtype(y):
    from descend.data.base import _distinct

    assert _distinct(y) == sorted(set(y.reshape(-1).tolist()))
