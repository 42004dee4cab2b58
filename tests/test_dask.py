"""Training on a Dask cluster: equality with in-memory training, determinism, memory, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")

import dask.array as da
import dask.dataframe as dd
import pandas as pd
from clusters import local_cluster
from distributed import Client
from killable import after_step, run_script

import descend as ds
from descend.data import DaskSource, DataError, from_dask
from descend.data import dask as ddk
from descend.errors import ParameterError


@pytest.fixture(scope="module")
def client():
    with local_cluster(work_stealing=True) as cluster, Client(cluster) as c:
        yield c


def _data(n=3000, d=6, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d) + 1.0
    z = X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n)
    y = (
        (z > np.median(z)).astype(np.int64)
        if classes == 2
        else np.digitize(z, np.quantile(z, [1 / 3, 2 / 3]))
    )
    return X, y


def _same_bits(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a
    )


# -- equality with in-memory training ----------------------------------------------------------------


def test_full_batch_float64_equals_in_memory_up_to_summation_order(client, monkeypatch):
    monkeypatch.setattr(ddk, "FANIN", 3)  # 11 partitions: a reduction tree two levels deep
    X, y = _data()
    dX, dy = da.from_array(X, chunks=(280, 6)), da.from_array(y, chunks=300)  # y rechunked to X's rows
    model = ds.models.LogisticRegression(l2=0.01, dtype="float64")
    kw = dict(optimizer="momentum", lr=0.1, batch_size=None, epochs=40, progress=False)
    run_dask = ds.fit(model, (dX, dy), **kw)
    run_mem = ds.fit(model, (X, y), **kw)
    assert run_dask.steps_completed == run_mem.steps_completed == 40
    for k in run_mem.params:
        np.testing.assert_allclose(run_dask.params[k], run_mem.params[k], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(run_dask.history.steps["loss"], run_mem.history.steps["loss"], rtol=1e-12)
    assert run_dask.history.steps["loss"][-1] < run_dask.history.steps["loss"][0]


def test_regression_full_batch_equals_in_memory(client):
    X, _ = _data(n=1500, seed=9)
    y = X @ np.arange(1.0, 7.0) + 0.1
    model = ds.models.LinearRegression(dtype="float64")
    kw = dict(optimizer="sgd", lr=0.01, batch_size=None, epochs=20, progress=False)
    run_dask = ds.fit(model, (da.from_array(X, chunks=(400, 6)), da.from_array(y, chunks=400)), **kw)
    run_mem = ds.fit(model, (X, y), **kw)
    for k in run_mem.params:
        np.testing.assert_allclose(run_dask.params[k], run_mem.params[k], rtol=1e-12)


def test_large_params_travel_once_per_step_and_still_match(client):
    X, y = _data(n=1200, d=16, seed=6, classes=3)
    model = ds.models.MLP(hidden=(128, 64), activation="tanh", output="softmax", dtype="float64")
    params = model.init(np.random.default_rng(0), 16, 3)
    assert sum(v.nbytes for v in params.values()) > ddk.INLINE_BYTES  # shipped as a task of its own
    kw = dict(optimizer="adam", lr=1e-3, batch_size=None, epochs=8, progress=False)
    run_dask = ds.fit(model, (da.from_array(X, chunks=(300, 16)), da.from_array(y, chunks=300)), **kw)
    run_mem = ds.fit(model, (X, y), **kw)
    for k in run_mem.params:
        np.testing.assert_allclose(run_dask.params[k], run_mem.params[k], rtol=1e-9, atol=1e-12)


def test_full_batch_float32_within_1e4_relative(client):
    X, y = _data(seed=1)
    X32 = X.astype(np.float32)
    model = ds.models.LogisticRegression(dtype="float32")
    kw = dict(optimizer="sgd", lr=0.05, batch_size=None, epochs=50, progress=False)
    run_dask = ds.fit(model, (da.from_array(X32, chunks=(700, 6)), da.from_array(y, chunks=700)), **kw)
    run_mem = ds.fit(model, (X32, y), **kw)
    for k in run_mem.params:
        assert run_dask.params[k].dtype == np.float32
        np.testing.assert_allclose(run_dask.params[k], run_mem.params[k], rtol=1e-4, atol=1e-6)


def test_dataframe_with_string_labels_standardize_and_weights(client):
    X, y = _data(n=2000, classes=3)
    labels = np.array(["high", "low", "mid"])[y]
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(label=labels, w=w)
    ddf = dd.from_pandas(frame, npartitions=5)
    src = from_dask(ddf, target="label", weight="w")
    assert isinstance(src, DaskSource) and src.feature_names == tuple(frame.columns[:6])
    model = ds.models.SoftmaxRegression(dtype="float64")
    kw = dict(optimizer="sgd", lr=0.5, batch_size=None, epochs=20, standardize=True, progress=False)
    run_dask = ds.fit(model, src, **kw)
    run_mem = ds.fit(model, (X, labels), sample_weight=w, **kw)
    assert run_dask.classes.tolist() == ["high", "low", "mid"]
    np.testing.assert_allclose(run_dask.scaler.mean, run_mem.scaler.mean, rtol=1e-12)
    np.testing.assert_allclose(run_dask.scaler.scale, run_mem.scaler.scale, rtol=1e-12)
    for k in run_mem.params:
        np.testing.assert_allclose(run_dask.params[k], run_mem.params[k], rtol=1e-10, atol=1e-12)
    assert set(run_dask.predict(X[:50])) <= {"high", "low", "mid"}


def test_minibatch_final_loss_within_2_percent_and_same_seed_same_bits(client):
    X, y = _data(n=4000, seed=2)
    dX, dy = da.from_array(X, chunks=(500, 6)), da.from_array(y, chunks=500)
    model = ds.models.LogisticRegression(dtype="float64")
    kw = dict(optimizer="adam", lr=0.01, batch_size=64, epochs=3, standardize=True, progress=False)
    run_dask = ds.fit(model, (dX, dy), seed=7, **kw)
    run_mem = ds.fit(model, (X, y), seed=7, **kw)
    assert run_dask.steps_completed == run_mem.steps_completed == 3 * 63
    assert run_dask.loss(X, y) == pytest.approx(run_mem.loss(X, y), rel=0.02)
    again = ds.fit(model, (dX, dy), seed=7, **kw)
    assert _same_bits(again.params, run_dask.params)
    other = ds.fit(model, (dX, dy), seed=8, **kw)
    assert not _same_bits(other.params, run_dask.params)


def test_epoch_order_covers_every_row_once_and_is_a_function_of_seed_epoch_layout(client):
    X, y = _data(n=1000)
    src = from_dask((da.from_array(X, chunks=(130, 6)), da.from_array(y, chunks=130)))
    sizes = src.shard_sizes()
    first = np.cumsum([0, *sizes[:-1]])
    seen = []
    for b in range(src.n_batches(96)):
        plan = src.plan(2, 96, shuffle=True, seed=5, batch=b)
        assert [p for p, _ in plan] == sorted(p for p, _ in plan)
        rows = [first[p] + np.arange(sizes[p])[r if r is not None else slice(None)] for p, r in plan]
        seen.append(np.concatenate(rows))
        assert len(seen[-1]) == min(96, 1000 - 96 * b)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(1000))
    fresh = from_dask((da.from_array(X, chunks=(130, 6)), da.from_array(y, chunks=130)))
    for b in (0, 5):
        a, c = (
            src.plan(2, 96, shuffle=True, seed=5, batch=b),
            fresh.plan(2, 96, shuffle=True, seed=5, batch=b),
        )
        assert [(p, np.asarray(r).tolist()) for p, r in a] == [(p, np.asarray(r).tolist()) for p, r in c]
    other_epoch = src.plan(3, 96, shuffle=True, seed=5, batch=0)
    assert [(p, np.asarray(r).tolist()) for p, r in other_epoch] != [
        (p, np.asarray(r).tolist()) for p, r in src.plan(2, 96, shuffle=True, seed=5, batch=0)
    ]


def test_resume_in_process_equals_uninterrupted(client, tmp_path):
    X, y = _data(n=1500, seed=4)
    data = (da.from_array(X, chunks=(400, 6)), da.from_array(y, chunks=400))
    model = ds.models.LogisticRegression()
    kw = dict(optimizer="adam", lr=0.02, batch_size=128, epochs=2, progress=False)
    whole = ds.fit(model, data, **kw)
    ds.fit(model, data, checkpoint_dir=tmp_path, checkpoint_every=1, max_steps=17, **kw)
    rest = ds.fit(model, data, checkpoint_dir=tmp_path, checkpoint_every=1, resume=True, **kw)
    assert rest.resumed_from_step == 17
    assert _same_bits(rest.params, whole.params)


def test_validation_source_on_dask(client):
    X, y = _data(n=2000, seed=5)
    Xv, yv = X[1500:], y[1500:]
    model = ds.models.LogisticRegression(dtype="float64")
    kw = dict(optimizer="sgd", lr=0.3, batch_size=None, epochs=3, progress=False)
    val = (da.from_array(Xv, chunks=(200, 6)), da.from_array(yv, chunks=200))
    run = ds.fit(
        model,
        (da.from_array(X[:1500], chunks=(500, 6)), da.from_array(y[:1500], chunks=500)),
        validation=val,
        **kw,
    )
    ref = ds.fit(model, (X[:1500], y[:1500]), validation=(Xv, yv), **kw)
    np.testing.assert_allclose(run.history.epochs["val_loss"], ref.history.epochs["val_loss"], rtol=1e-10)


def test_split_holds_out_the_same_rows_as_in_memory(client):
    X, y = _data(n=2500, seed=8)
    src = from_dask((da.from_array(X, chunks=(600, 6)), da.from_array(y, chunks=600)))
    train, val = src.split(0.2, 3)
    assert isinstance(train, DaskSource) and train.n_samples + val.n_samples == 2500
    model = ds.models.LogisticRegression(dtype="float64")
    kw = dict(optimizer="sgd", lr=0.3, batch_size=None, epochs=4, seed=3, progress=False)
    run = ds.fit(model, train, validation=val, **kw)
    ref = ds.fit(model, (X, y), validation=0.2, **kw)  # in memory: split by the same (seed, row) rule
    assert run.history.steps["samples_seen"] == ref.history.steps["samples_seen"]
    for k in ref.params:
        np.testing.assert_allclose(run.params[k], ref.params[k], rtol=1e-12)
    np.testing.assert_allclose(run.history.epochs["val_loss"], ref.history.epochs["val_loss"], rtol=1e-10)


def test_readme_cluster_example_runs(client, tmp_path):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("### Training on a cluster", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```py\n(.*?)```", section, flags=re.S)[0]  # test_local_sgd runs the other
    X, y = _data(n=3000)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]).assign(churn=np.array(["stay", "churn"])[y])
    for i in range(3):
        frame.iloc[i * 1000 : (i + 1) * 1000].to_parquet(tmp_path / f"part-{i}.parquet")
    code = code.replace("tcp://10.0.0.5:8786", client.scheduler.address)
    code = code.replace("/shared/churn/*.parquet", str(tmp_path / "*.parquet"))
    namespace = {"ds": ds, "np": np}
    exec(compile(code, "README.md", "exec"), namespace)
    namespace["client"].close()
    assert namespace["run"].steps_completed == 50
    assert set(namespace["run"].predict(X[:20])) <= {"stay", "churn"}


# -- bad data -------------------------------------------------------------------------------------------


def test_nan_fails_the_fit_naming_partition_and_row(client):
    X, y = _data(n=3000)
    X[1234, 2] = np.nan
    data = (da.from_array(X, chunks=(1000, 6)), da.from_array(y, chunks=1000))
    with pytest.raises(
        DataError, match=r"partition 1 has a non-finite value \(nan\) at row 234 of the partition, column 2"
    ):
        ds.fit(ds.models.LogisticRegression(), data, epochs=1, progress=False)
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"]).assign(y=y)
    with pytest.raises(DataError, match=r"partition 1 has .* at row 234 of the partition, column c"):
        ds.fit(
            ds.models.LogisticRegression(),
            from_dask(dd.from_pandas(frame, chunksize=1000), target="y"),
            epochs=1,
            progress=False,
        )


def test_unknown_label_names_the_partition(client):
    X, y = _data(n=600)
    y[450] = 7
    data = (da.from_array(X, chunks=(200, 6)), da.from_array(y, chunks=200))
    with pytest.raises(DataError, match=r"partition 2.*label 7"):
        ds.fit(
            ds.models.LogisticRegression(), data, classes=[0, 1], batch_size=None, epochs=1, progress=False
        )


def test_from_dask_refuses_bad_arguments(client):
    frame = dd.from_pandas(pd.DataFrame({"a": [1.0, 2.0], "s": ["u", "v"], "y": [0, 1]}), npartitions=1)
    with pytest.raises(ParameterError, match=r"target must name a column .* got 'z'; columns: a, s, y"):
        from_dask(frame, target="z")
    with pytest.raises(DataError, match=r"column 's' is not numeric"):
        from_dask(frame, target="y")
    with pytest.raises(TypeError, match="dask collection"):
        ds.fit(ds.models.LogisticRegression(), frame, progress=False)
    with pytest.raises(TypeError, match="must be a dask array too"):
        from_dask((da.zeros((4, 2), chunks=2), np.zeros(4)))


def test_connect(client):
    with pytest.raises(ParameterError, match=r"dask must be 'local:N' with N >= 1") as info:
        ddk.connect("local:0")
    assert info.value.param == "dask"
    with pytest.raises(ParameterError, match=r"tcp://HOST:PORT"):
        ddk.connect("scheduler:8786")
    c, cluster = ddk.connect(client.scheduler.address)
    try:
        assert cluster is None and len(c.scheduler_info()["workers"]) == 2
    finally:
        c.close()


# -- memory and faults -----------------------------------------------------------------------------------


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


@pytest.mark.slow
def test_client_memory_grows_by_far_less_than_the_data(client):
    n, d = 2_000_000, 20
    X, y = ddk.synthetic(n, d, partitions=8, seed=3, dtype="float32")
    data_bytes = n * d * 4
    src = from_dask((X, y))
    src.shard_sizes()  # persisted on the workers
    model, kw = ds.models.LogisticRegression(dtype="float32"), dict(optimizer="sgd", lr=0.5, progress=False)
    small = ddk.synthetic_arrays(1000, d, partitions=1)
    ds.fit(model, small, batch_size=None, epochs=1, **kw)  # one-time costs (the fused step's compiler)
    base, peak, stop = _rss(), [0], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    t = threading.Thread(target=watch)
    t.start()
    try:
        run = ds.fit(model, src, batch_size=None, epochs=4, standardize=True, **kw)
    finally:
        stop.set()
        t.join()
    assert run.history.steps["loss"][-1] < run.history.steps["loss"][0]
    grew = peak[0] - base
    assert grew < data_bytes / 20, f"client grew by {grew / 1e6:.1f} MB for {data_bytes / 1e6:.0f} MB of data"


@pytest.mark.slow
def test_worker_sigkilled_mid_fit_ends_byte_identical(client):
    X, y = ddk.synthetic(40_000, 8, partitions=8, seed=11)
    model = ds.models.LogisticRegression()
    kw = dict(optimizer="adam", lr=0.01, batch_size=1000, epochs=3, progress=False)
    undisturbed = ds.fit(model, (X, y), **kw)
    pids = client.run(os.getpid)
    killed = []

    def kill_one(info):
        if info["step"] == 30:  # a few ms later, while step 31's tasks are in flight
            threading.Timer(0.003, os.kill, (next(iter(pids.values())), signal.SIGKILL)).start()
            killed.append(info["step"])
        return False

    disturbed = ds.fit(model, (X, y), callbacks=[kill_one], **kw)
    assert killed == [30] and disturbed.steps_completed == 120
    assert _same_bits(disturbed.params, undisturbed.params)
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != set(pids.values())  # the nanny restarted the killed worker


_CLIENT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from distributed import Client
    import descend as ds
    from descend.data import dask as ddk

    address, folder, out = sys.argv[1:4]
    with Client(address) as client:
        X, y = ddk.synthetic(20_000, 8, partitions=4, seed=21)

        def slow(info):
            print("step", info["step"], flush=True)
            time.sleep(0.02)
            return False

        run = ds.fit(ds.models.LogisticRegression(), (X, y), optimizer="adam", lr=0.01, batch_size=500,
                     epochs=2, progress=False, checkpoint_dir=folder, checkpoint_every=1, resume=True,
                     callbacks=[slow])
        np.savez(out, resumed=run.resumed_from_step or 0, **run.params)
    """
)


@pytest.mark.slow
def test_client_sigkilled_then_resumed_ends_byte_identical(client, tmp_path):
    args = [client.scheduler.address, str(tmp_path / "ckpt"), str(tmp_path / "out.npz")]
    script, log = tmp_path / "client.py", tmp_path / "stderr.txt"
    rc, _ = run_script(script, _CLIENT_SCRIPT, args, kill_when=after_step(25), stderr=log)
    assert rc == -signal.SIGKILL and not (tmp_path / "out.npz").exists(), log.read_text()[-3000:]
    rc, _ = run_script(script, _CLIENT_SCRIPT, args, stderr=log)  # the same call: it resumes
    assert rc == 0, log.read_text()[-3000:]
    out = np.load(tmp_path / "out.npz")
    assert int(out["resumed"]) >= 20  # killed after step 25 was reported
    X, y = ddk.synthetic(20_000, 8, partitions=4, seed=21)
    ref = ds.fit(
        ds.models.LogisticRegression(),
        (X, y),
        optimizer="adam",
        lr=0.01,
        batch_size=500,
        epochs=2,
        progress=False,
    )
    assert _same_bits({k: out[k] for k in ref.params}, ref.params)


@pytest.mark.slow
def test_benchmark_writes_its_section_and_keeps_the_others(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- section:other -->\nkept\n<!-- /section:other -->\n")
    args = ["--quick", "--big-rows", "20000", "--epochs", "3", "--doc", str(doc)]
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "dask", "--", *args],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=600,
    )
    text = doc.read_text()
    assert "<!-- section:other -->\nkept\n<!-- /section:other -->" in text
    section = text.split("<!-- section:dask -->", 1)[1].split("<!-- /section:dask -->", 1)[0]
    assert "Per-step overhead" in section and "1 worker" in section and "**Projection.**" in section
    assert "### Local SGD" in section and "local SGD H=8" in section


def test_identifier_columns_are_left_out_of_a_dataframes_features(client):
    """As ds.data.open does for a file: columns named like identifiers are not features unless
    named in features=[...]; the choice is a note fit copies into run.notes."""
    X, y = _data(n=200, classes=2)
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"]).assign(
        id=np.arange(200), customer_id=np.arange(200) * 7 + 3, y=y
    )
    ddf = dd.from_pandas(frame, npartitions=2)
    src = from_dask(ddf, target="y")
    assert src.feature_names == ("a", "b", "c")
    assert set(src.excluded) == {"id", "customer_id"}
    assert any("'customer_id'" in note and "features=[...]" in note for note in src.notes)
    asked = from_dask(ddf, target="y", features=["a", "id"])
    assert asked.feature_names == ("a", "id") and not asked.excluded
