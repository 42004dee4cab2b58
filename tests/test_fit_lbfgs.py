"""L-BFGS in fit: full-batch iterations over any source (descend.data.objective), the same bits
from memory, memory-mapped .npy, Parquet, CSV and Dask; fewer passes over the data than full-batch
GD and Adam to 1.0001 x the optimum; checkpoints that resume bit-exactly; its own stop reasons;
and the refusals."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import descend as ds
from descend.data.objective import BLOCK_ROWS, FANIN, Partial, TreeSum, add, tree_depth
from descend.errors import DivergenceError, ParameterError
from descend.train.callbacks import GradientClipping

# more than FANIN blocks (a tree with an inner level), the last block short
N_ROWS = BLOCK_ROWS * (FANIN + 1) + 1234


def _data(n=N_ROWS, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.resize([1.0, 3.0, 0.5, 2.0], d)
    y = (X @ rng.standard_normal(d) + 0.7 * rng.standard_normal(n) > 0).astype(np.int64)
    return X, y


def _same_bits(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a
    )


def _fit(data, **kw):
    kw.setdefault("epochs", 6)
    return ds.fit(
        ds.models.LogisticRegression(), data, optimizer="lbfgs", batch_size=None, progress=False, **kw
    )


# -- the objective's tree ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 63, 64, 65, 100, 513])
def test_the_streamed_tree_adds_in_the_grouping_of_a_whole_list(n):
    """TreeSum (blocks added as they come) against grouping the whole list by FANIN until FANIN
    or fewer are left (what Dask's reduction does): the same bits, on sums that round."""
    rng = np.random.default_rng(n)
    leaves = [
        Partial({"w": rng.standard_normal(3) * 10.0 ** rng.integers(-8, 8)}, 1.0, 1.0, 1) for _ in range(n)
    ]
    tree = TreeSum(n)
    for p in leaves:
        tree.push(p)
    level = leaves
    while len(level) > FANIN:
        level = [add(*level[i : i + FANIN]) for i in range(0, len(level), FANIN)]
    assert tree.result().grads["w"].tobytes() == add(*level).grads["w"].tobytes()
    assert tree_depth(n) == {1: 0, 2: 0, 7: 0, 8: 0, 9: 1, 63: 1, 64: 1, 65: 2, 100: 2, 513: 3}[n]


# -- the same bits from every source ----------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    X, y = _data()
    tmp = tmp_path_factory.mktemp("lbfgs")
    np.save(tmp / "X.npy", X)
    np.save(tmp / "y.npy", y)
    table = pa.table({**{f"x{i}": X[:, i] for i in range(X.shape[1])}, "y": y})
    pq.write_table(table, tmp / "d.parquet", row_group_size=30_001)  # row groups cut across blocks
    pacsv.write_csv(table, tmp / "d.csv")
    return X, y, tmp


def test_the_same_bits_from_memory_npy_parquet_and_csv(files):
    X, y, tmp = files
    ref = _fit((X, y))
    assert ref.history.steps["step"][-1] == 6
    for data in (
        ds.data.from_npy(tmp / "X.npy", tmp / "y.npy"),
        ds.data.open(tmp / "d.parquet", target="y"),
        ds.data.open(tmp / "d.csv", target="y"),
    ):
        run = _fit(data)
        assert _same_bits(run.params, ref.params), data.description
        assert run.history.steps["loss"] == ref.history.steps["loss"], data.description
        assert run.history.steps["samples_seen"] == ref.history.steps["samples_seen"]


def test_the_same_bits_on_dask_whatever_the_partitions(files):
    pytest.importorskip("distributed")
    import dask.array as da
    from clusters import local_cluster
    from distributed import Client

    X, y, _ = files
    X32 = X.astype(np.float32)  # taken as they are (float32 model): rows a transfer left misaligned
    refs = {X.dtype: _fit((X, y)), X32.dtype: _fit((X32, y))}
    with local_cluster() as cluster, Client(cluster) as client:
        # partitions smaller than a block (a block spans three), and larger, uneven ones
        for features, chunks in (
            (X, 7_000),
            (X, (50_000, 1, 30_000, 70_000, N_ROWS - 150_001)),
            (X32, 25_000),
        ):
            ref = refs[features.dtype]
            dx = da.from_array(features, chunks=(chunks, X.shape[1]))
            dy = da.from_array(y, chunks=(chunks,))
            run = _fit(ds.data.from_dask((dx, dy), client=client))
            assert _same_bits(run.params, ref.params), (features.dtype, chunks)
            assert run.history.steps["loss"] == ref.history.steps["loss"]


# -- what it reaches, and for how many passes -----------------------------------------------------------


def _passes_to(run, target, n):
    """Passes over the data until a recorded loss first reached ``target`` (inf: never)."""
    steps = run.history.steps
    for loss, seen, step in zip(steps["loss"], steps["samples_seen"], steps["step"], strict=True):
        if loss <= target:
            # L-BFGS records the loss at the iterate it reached (seen: the passes it made); the
            # other rules the loss their step computed, at the parameters before it (pass `step`)
            return seen / n if run.optimizer.needs_objective else step
    return math.inf


def test_it_reaches_the_optimum_in_fewer_passes_than_full_batch_gd_and_adam():
    from test_fit import newton_logistic

    X, y = _data(n=4000, d=6, seed=3)
    X = (X - X.mean(0)) / X.std(0)
    _, best = newton_logistic(X, y, l2=0.0)
    target = 1.0001 * best
    model = ds.models.LogisticRegression(dtype="float64")
    lbfgs = ds.fit(model, (X, y), optimizer="lbfgs", batch_size=None, standardize=False, progress=False)
    assert lbfgs.stop_reason.startswith("converged after"), lbfgs.stop_reason
    assert lbfgs.loss(X, y) <= target
    mine = _passes_to(lbfgs, target, len(y))
    assert mine <= 20
    for name, lrs in (("sgd", (0.3, 1.0, 3.0)), ("adam", (0.01, 0.1, 0.3))):
        best_passes = math.inf
        for lr in lrs:  # each at its best learning rate of a small grid, 300 passes at most
            run = ds.fit(
                model,
                (X, y),
                optimizer=name,
                lr=lr,
                batch_size=None,
                epochs=300,
                standardize=False,
                progress=False,
                divergence_factor=None,
            )
            best_passes = min(best_passes, _passes_to(run, target, len(y)))
        assert mine < best_passes, (name, mine, best_passes)


def test_an_mlp_trains_and_the_stop_reason_says_why():
    X, y = _data(n=600, d=4, seed=2)
    run = ds.fit(
        ds.models.MLP(hidden=(6,)), (X, y), optimizer="lbfgs", batch_size=None, epochs=15, progress=False
    )
    losses = run.history.steps["loss"]
    assert losses[-1] < 0.5 * losses[0] and all(b <= a for a, b in itertools.pairwise(losses))
    assert run.stop_reason == (
        "reached epochs=15 iterations before LBFGS's tolerances (tolerance_grad, tolerance_change) held"
    )
    assert run.epochs_completed == 15 and run.steps_completed == 15
    assert run.optimizer.line_search_fn == "strong_wolfe"  # fit's default for the rule
    assert len(run.history.epochs["epoch"]) == 15
    # an explicit option wins over fit's default
    fixed = ds.fit(
        ds.models.LogisticRegression(),
        (X, y),
        optimizer="lbfgs",
        lr=0.5,
        batch_size=None,
        epochs=3,
        options={"line_search_fn": None},
        progress=False,
    )
    assert fixed.optimizer.line_search_fn is None and fixed.history.steps["lr"] == [
        pytest.approx(fixed.history.steps["lr"][0]),
        0.5,
        0.5,
    ]


def test_it_stops_on_its_tolerances():
    X, y = _data(n=800, d=3, seed=4)
    run = ds.fit(
        ds.models.LogisticRegression(dtype="float64"),
        (X, y),
        optimizer="lbfgs",
        batch_size=None,
        options={"tolerance_grad": 1e-5},
        progress=False,
    )
    assert run.stop_reason.startswith("converged after") and "tolerance_grad 1e-05" in run.stop_reason
    assert run.steps_completed < 40
    g = run.model.loss_and_grad(run.params, (X - run.scaler.mean) / run.scaler.scale if run.scaler else X, y)[
        1
    ]
    assert max(float(np.max(np.abs(v))) for v in g.values()) <= 1e-5


# -- checkpoints ------------------------------------------------------------------------------------------


def test_a_checkpoint_resumes_bit_exactly(tmp_path):
    X, y = _data(n=3000, d=5, seed=5)
    model = ds.models.MLP(hidden=(7,))
    kw = dict(optimizer="lbfgs", batch_size=None, epochs=25, progress=False)
    whole = ds.fit(model, (X, y), **kw)
    cut = ds.fit(model, (X, y), max_steps=9, checkpoint_dir=tmp_path, checkpoint_every=4, **kw)
    assert cut.steps_completed == 9
    resumed = ds.fit(model, (X, y), checkpoint_dir=tmp_path, checkpoint_every=4, resume=True, **kw)
    assert resumed.resumed_from_step == 9
    assert _same_bits(resumed.params, whole.params)
    for column in ("loss", "lr", "grad_norm", "samples_seen"):
        assert resumed.history.steps[column] == whole.history.steps[column], column
    assert resumed.stop_reason == whole.stop_reason
    # the state it ends with, curvature pairs included, is the uninterrupted run's
    assert int(resumed.state.t) == int(whole.state.t)
    for name, bufs in whole.state.buffers.items():
        assert all(
            a.tobytes() == b.tobytes() for a, b in zip(bufs, resumed.state.buffers[name], strict=True)
        ), name


def test_a_checkpoint_from_an_older_save_resumes_without_its_evaluation(tmp_path):
    """A checkpoint written every step resumes from any of them; one whose saved evaluation is
    dropped (an init= run has none) costs one pass more and gives the same parameters."""
    X, y = _data(n=2000, d=3, seed=6)
    kw = dict(optimizer="lbfgs", batch_size=None, progress=False)
    whole = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=8, **kw)
    first = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=4, **kw)
    more = ds.fit(
        ds.models.LogisticRegression(), (X, y), epochs=4, init=first, batch_size=None, progress=False
    )
    assert _same_bits(more.params, whole.params)
    n = len(y)
    assert more.history.steps["samples_seen"][-1] == whole.history.steps["samples_seen"][-1] + n


# -- refusals and divergence ------------------------------------------------------------------------


def test_a_mini_batch_is_refused_naming_batch_size():
    X, y = _data(n=100, d=3)
    for optimizer in ("lbfgs", ds.LBFGS()):
        with pytest.raises(ParameterError) as e:
            ds.fit(ds.models.LogisticRegression(), (X, y), optimizer=optimizer, epochs=1, progress=False)
        assert e.value.param == "batch_size" and e.value.value == 256
        assert str(e.value).startswith(
            "fit: batch_size=256 (fit's default) with LBFGS:"
        ) and "give batch_size=None" in str(e.value)


def test_a_callback_that_changes_gradients_is_refused_and_a_monitor_reads_them():
    X, y = _data(n=300, d=3)
    with pytest.raises(ParameterError, match=r"^fit: GradientClipping changes gradients") as e:
        _fit((X, y), callbacks=[GradientClipping(1.0)])
    assert e.value.param == "callbacks"
    run = _fit((X, y), monitor=ds.Monitor(every=1))
    rows = run.history.monitor
    assert rows["step"] == [1, 2, 3, 4, 5, 6]
    assert all(v > 0 for v in rows["grad_norm/layer0"])
    assert all(v > 0 for v in rows["update_ratio/layer0"][1:])  # the first from a zero start: inf


def test_a_blow_up_without_a_line_search_raises_at_the_last_finite_iterate():
    X, _ = _data(n=300, d=3)
    X = X * 1e3
    with pytest.raises(DivergenceError) as e:
        ds.fit(
            ds.models.LinearRegression(),
            (X, X[:, 0] * 3.0),
            optimizer="lbfgs",
            lr=1e30,
            batch_size=None,
            epochs=50,
            options={"line_search_fn": None},
            standardize=False,
            progress=False,
            divergence_factor=None,
        )
    run = e.value.run
    assert all(np.isfinite(v).all() for v in run.params.values())
    assert "non-finite" in str(e.value) and "last finite iterate" in str(e.value)


def test_a_held_out_fraction_leaves_the_same_rows_and_bits(files):
    """validation=0.2 holds out the same rows of every source; the rows left are cut into the
    same blocks, so the runs stay bit-identical (Dask's split is tested in test_dask.py)."""
    X, y, tmp = files
    ref = _fit((X, y), validation=0.2, epochs=3)
    run = _fit(ds.data.open(tmp / "d.parquet", target="y"), validation=0.2, epochs=3)
    assert _same_bits(run.params, ref.params)
    assert run.history.epochs["val_loss"] == ref.history.epochs["val_loss"]


# -- options and init= -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "exc", "text"),
    [
        (
            {"options": {"histroy_size": 5}},
            ds.errors.ParameterTypeError,
            "fit: options of LBFGS takes parameters 'lr', 'max_iter'",
        ),
        ({"options": {"weight_decay": 0.1}}, ds.errors.ParameterTypeError, "fit: options of LBFGS takes"),
        ({"options": [1]}, ds.errors.ParameterTypeError, "fit: options must be a dict"),
        ({"lr": 0.5, "options": {"lr": 2.0}}, ParameterError, "fit: lr=0.5 and options={'lr': 2.0} both set"),
    ],
)
def test_bad_options_are_refused_naming_options(kw, exc, text):
    X, y = _data(n=100, d=3)
    with pytest.raises(exc) as e:
        ds.fit(
            ds.models.LogisticRegression(), (X, y), optimizer="lbfgs", batch_size=None, progress=False, **kw
        )
    assert str(e.value).startswith(text) and e.value.param == "options"
    if "histroy" in text or "histroy_size" in str(kw):
        assert "did you mean 'history_size'?" in str(e.value)


def test_init_refuses_another_optimizer_instead_of_ignoring_it():
    X, y = _data(n=200, d=3)
    first = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=1, progress=False)  # Adam
    for kw, param in (({"optimizer": "lbfgs", "batch_size": None}, "optimizer"), ({"lr": 0.1}, "lr")):
        with pytest.raises(ParameterError, match=r"^fit: init continues its own optimizer Adam\(") as e:
            ds.fit(ds.models.LogisticRegression(), (X, y), init=first, epochs=1, progress=False, **kw)
        assert e.value.param == param
    # the same rule (fit's default name, or the run's own instance) continues it
    again = ds.fit(ds.models.LogisticRegression(), (X, y), init=first, epochs=1, progress=False)
    assert again.optimizer is not None and again.steps_completed == 2 * first.steps_completed


def test_a_growing_loss_names_the_iteration_and_suggests_a_line_search():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 5))
    y = X @ rng.normal(size=5)
    with pytest.raises(ds.DivergenceError) as e:
        ds.fit("linear", (X, y), optimizer=ds.LBFGS(lr=50.0), batch_size=None, epochs=20, progress=False)
    message = str(e.value)
    assert "diverged at iteration 3 (epoch 3)" in message and "batch" not in message, message
    assert "try a line search (options={'line_search_fn': 'strong_wolfe'})" in message
    # fit's own L-BFGS (a strong Wolfe search) trains the same problem
    run = ds.fit("linear", (X, y), optimizer="lbfgs", batch_size=None, epochs=20, progress=False)
    assert run.stop_reason.startswith("converged")
