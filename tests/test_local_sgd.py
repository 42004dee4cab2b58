"""Local SGD on Dask (fit(sync_every=H)): the algorithm against a naive reference, bits equal to the
per-step path at H = 1 on one partition, determinism across runs, placements, a killed worker and
a killed client, and the refusals."""

from __future__ import annotations

import itertools
import os
import signal
import textwrap
import threading
import time

import numpy as np
import pytest

pytest.importorskip("distributed")

import dask
import dask.array as da
from clusters import local_cluster
from distributed import Client, get_task_stream, wait
from killable import after_step, run_script

import descend as ds
from descend.data import DaskSource, DataError, from_dask
from descend.data import dask as ddk
from descend.data.base import window_order
from descend.errors import ParameterError
from descend.train.callbacks import GradientClipping


@pytest.fixture(scope="module")
def client():
    # no work stealing: a task runs where its partition is (the placement test below decides where)
    with local_cluster() as cluster, Client(cluster) as c:
        yield c


def _data(n=2400, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n) > 0).astype(np.int64)
    return X, y


def _dask(X, y, chunks):
    return da.from_array(X, chunks=(chunks, X.shape[1])), da.from_array(y, chunks=chunks)


def _same_bits(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a
    )


# -- the algorithm -----------------------------------------------------------------------------------


def _reference(model, parts, *, lr, momentum, B, H, epochs, seed):
    """Local SGD written from its definition: each round, every partition with local batches left
    takes up to H steps of SGD (torch's momentum) from the common start on its own rows, in the
    epoch's order of that partition; the parameters and momentum buffers are averaged, weighted
    by the rows each partition trained on."""
    d = parts[0][0].shape[1]
    params = model.init(np.random.default_rng([seed, 0]), d, 1)
    bufs = {k: np.zeros_like(v) for k, v in params.items()}
    t = 0
    for epoch in range(epochs):
        orders = [window_order(seed, epoch, p, len(Xp)) for p, (Xp, _) in enumerate(parts)]
        counts = [-(-len(Xp) // B) for Xp, _ in parts]
        for first in range(0, max(counts), H):
            out = []
            for p, (Xp, yp) in enumerate(parts):
                q = {k: v.copy() for k, v in params.items()}
                m = {k: v.copy() for k, v in bufs.items()}
                rows = 0
                for j in range(first, min(first + H, counts[p])):
                    idx = orders[p][j * B : (j + 1) * B]
                    _, g = model.loss_and_grad(q, Xp[idx], yp[idx].astype(float))
                    for k in q:
                        m[k] = g[k].copy() if t + j - first == 0 else momentum * m[k] + g[k]
                        q[k] = q[k] - lr * m[k]
                    rows += len(idx)
                if rows:
                    out.append((q, m, rows))
            total = sum(r for _, _, r in out)
            params = {k: sum(q[k] * (r / total) for q, _, r in out) for k in params}
            bufs = {k: sum(m[k] * (r / total) for _, m, r in out) for k in bufs}
            t += min(H, max(counts) - first)
    return params


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_local_sgd_equals_a_naive_reference(client, momentum):
    X, y = _data(n=1300)
    sizes = [500, 450, 350]  # unequal: partitions run out of local batches at different rounds
    bounds = np.cumsum([0, *sizes])
    parts = [(X[a:b], y[a:b]) for a, b in itertools.pairwise(bounds)]
    data = (da.from_array(X, chunks=(tuple(sizes), 5)), da.from_array(y, chunks=(tuple(sizes),)))
    model = ds.models.LogisticRegression(dtype="float64")
    run = ds.fit(
        model,
        data,
        optimizer=ds.SGD(lr=0.2, momentum=momentum),
        batch_size=40,
        epochs=2,
        seed=3,
        sync_every=4,
        standardize=False,
        progress=False,
    )
    ref = _reference(model, parts, lr=0.2, momentum=momentum, B=40, H=4, epochs=2, seed=3)
    for k in ref:
        np.testing.assert_allclose(run.params[k], ref[k], rtol=1e-12, atol=1e-14)
    assert run.steps_completed == 2 * 13 == int(run.state.t)  # 500 rows: 13 local batches of 40


def test_one_partition_and_h1_gives_the_bits_of_the_per_step_path(client):
    X, y = _data(n=1000, seed=1)
    labels = np.array(["no", "yes"])[y]
    data = (da.from_array(X * [1, 10, 100, 1, 1], chunks=(1000, 5)), da.from_array(labels, chunks=1000))
    for model, optimizer in (
        (ds.models.LogisticRegression(dtype="float64"), "adam"),
        (ds.models.MLP(hidden=(8,), output="binary", dtype="float32"), ds.Momentum(lr=0.05)),
    ):
        kw = dict(optimizer=optimizer, batch_size=96, epochs=2, seed=4, standardize=True, progress=False)
        today = ds.fit(model, data, **kw)
        local = ds.fit(model, data, sync_every=1, **kw)
        assert today.steps_completed == local.steps_completed == 2 * 11
        assert _same_bits(local.params, today.params)
        assert local.history.steps["loss"] == today.history.steps["loss"]
        assert local.history.steps["round"] == list(range(1, 23))
        # one partition: every round is sequential SGD, and averaging one model changes nothing
        longer = ds.fit(model, data, sync_every=4, **kw)
        assert _same_bits(longer.params, today.params)
        assert longer.history.steps["local_steps"] == [4, 4, 3] * 2


def test_history_counts_rounds_and_local_steps_and_schedules_advance_by_local_steps(client):
    X, y = _data(n=1500)
    data = (da.from_array(X, chunks=((700, 500, 300), 5)), da.from_array(y, chunks=((700, 500, 300),)))
    schedule = ds.schedules.LinearDecay(0.5, 0.05, 20)
    run = ds.fit(
        "logistic", data, optimizer=ds.SGD(lr=schedule), batch_size=50, epochs=2, sync_every=4, progress=False
    )
    steps = run.history.steps
    # 14, 10 and 6 local batches: rounds of 4, 4, 4, 2 local steps each epoch
    assert steps["local_steps"] == [4, 4, 4, 2] * 2
    assert steps["round"] == list(range(1, 9))
    assert steps["step"] == [4, 8, 12, 14, 18, 22, 26, 28] == np.cumsum(steps["local_steps"]).tolist()
    # rows per round: 4 batches of 50 from each partition; then 4, 4 and the 300-row one's last 2;
    # then 4 and the 500-row one's last 2; then the 700-row one's last 2
    assert np.diff([0, *steps["samples_seen"]]).tolist()[:4] == [600, 500, 300, 100]
    assert steps["samples_seen"][-1] == 2 * 1500
    assert int(run.state.t) == run.steps_completed == 28
    assert steps["lr"] == [schedule(t - 1) for t in steps["step"]]  # the round's last local step
    cut = ds.fit(
        "logistic", data, optimizer="sgd", batch_size=50, epochs=2, sync_every=4, max_steps=10, progress=False
    )
    assert cut.steps_completed == 10 and cut.history.steps["local_steps"] == [4, 4, 2]


def test_readme_local_sgd_example_runs(client):
    import re
    from pathlib import Path

    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("### Training on a cluster", 1)[1].split("\n## ", 1)[0]
    (code,) = [b for b in re.findall(r"```py\n(.*?)```", section, flags=re.S) if "sync_every" in b]
    X, y = _data(n=1200)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]).assign(churn=np.array(["stay", "churn"])[y])
    namespace = {"ds": ds, "ddf": dd.from_pandas(frame, npartitions=3)}
    exec(compile(code, "README.md", "exec"), namespace)
    run = namespace["run"]  # 400 rows a partition: one round of 2 local steps an epoch
    assert run.history.steps["local_steps"] == [2, 2, 2] and run.config["sync_every"] == 64
    assert set(run.predict(X[:20])) <= {"stay", "churn"}


# -- determinism -------------------------------------------------------------------------------------


def _pinned(source: DaskSource, client, worker: str) -> DaskSource:
    """The same partitions, all persisted on ``worker`` (so every task runs there)."""
    futures = [client.submit(lambda part: part, f, workers=[worker], pure=False) for f in source._parts]
    wait(futures)
    out = DaskSource(futures, client=client, n_features=source.n_features, description=source.description)
    assert {w for ws in client.who_has(futures).values() for w in ws} == {worker}
    return out


def _ran_on(stream) -> set[str]:
    """The workers that ran local SGD's partition tasks."""
    return {t["worker"] for t in stream.data if "-task-" in str(t["key"])}


def test_same_seed_same_bits_whichever_worker_ran_what(client):
    X, y = _data(n=2000, seed=2)
    spread = from_dask(_dask(X, y, 500))
    kw = dict(optimizer="adam", lr=0.01, batch_size=50, epochs=2, seed=5, sync_every=5, progress=False)
    model = ds.models.MLP(hidden=(6,), output="binary", dtype="float64")
    with get_task_stream(client) as stream:
        first = ds.fit(model, spread, **kw)
    assert len(_ran_on(stream)) == 2  # the partitions' tasks ran on both workers
    assert _same_bits(ds.fit(model, spread, **kw).params, first.params)
    for worker in sorted(client.nthreads()):  # every task on one worker, then on the other
        pinned = _pinned(spread, client, worker)
        with get_task_stream(client) as stream, dask.annotate(workers=[worker], allow_other_workers=False):
            run = ds.fit(model, pinned, **kw)
        assert _ran_on(stream) == {worker}
        assert _same_bits(run.params, first.params)
    assert not _same_bits(ds.fit(model, spread, **{**kw, "seed": 6}).params, first.params)
    assert not _same_bits(ds.fit(model, spread, **{**kw, "sync_every": 4}).params, first.params)


def test_checkpoint_and_resume_in_process_are_bit_exact(client, tmp_path):
    X, y = _data(n=1800, seed=3)
    data = _dask(X, y, 600)
    kw = dict(optimizer="adam", lr=0.02, batch_size=40, epochs=2, sync_every=5, progress=False)
    whole = ds.fit("logistic", data, **kw)
    ckpt = dict(checkpoint_dir=tmp_path, checkpoint_every=7)  # saved after the rounds passing 7, 14, ...
    part = ds.fit("logistic", data, max_steps=20, **ckpt, **kw)
    assert part.steps_completed == 20
    rest = ds.fit("logistic", data, resume=True, **ckpt, **kw)
    assert rest.resumed_from_step == 20 and rest.steps_completed == whole.steps_completed
    assert _same_bits(rest.params, whole.params)
    assert rest.history.steps["round"] == whole.history.steps["round"]
    with pytest.raises(ValueError, match="sync_every"):
        ds.fit("logistic", data, resume=True, **ckpt, **{**kw, "sync_every": 3})


@pytest.mark.slow
def test_worker_sigkilled_mid_round_ends_with_the_same_bits(client):
    X, y = ddk.synthetic(24_000, 8, partitions=4, seed=11)
    model = ds.models.LogisticRegression()
    # 60 local batches per partition: rounds of 10 steps; the worker dies in the third of six
    kw = dict(optimizer="adam", lr=0.01, batch_size=100, epochs=1, sync_every=10, progress=False)
    undisturbed = ds.fit(model, (X, y), **kw)
    pids = client.run(os.getpid)
    killed = []

    def kill_one(info):
        if info["round"] == 2:  # a few ms later, while round 3's tasks are running
            threading.Timer(0.003, os.kill, (next(iter(pids.values())), signal.SIGKILL)).start()
            killed.append(info["round"])
        return False

    disturbed = ds.fit(model, (X, y), callbacks=[kill_one], **kw)
    assert killed == [2] and disturbed.steps_completed == undisturbed.steps_completed == 60
    assert _same_bits(disturbed.params, undisturbed.params)
    assert _restarted(client, set(pids.values()))


def _restarted(client, before: set[int], timeout: float = 60.0) -> bool:
    """Whether two workers run again, one of them not among ``before`` (the nanny restarted the
    killed one), once the scheduler has noticed the death."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.wait_for_workers(2, timeout=timeout)
            now = set(client.run(os.getpid).values())
            if len(now) == 2 and now != before:
                return True
        except OSError:  # the dead worker is still listed: its comm fails
            pass
        time.sleep(0.2)
    return False


_CLIENT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from distributed import Client
    import descend as ds
    from descend.data import dask as ddk

    address, folder, out = sys.argv[1:4]
    with Client(address) as client:
        X, y = ddk.synthetic(12_000, 8, partitions=3, seed=21)

        def slow(info):
            print("step", info["step"], flush=True)
            time.sleep(0.05)
            return False

        run = ds.fit(ds.models.LogisticRegression(), (X, y), optimizer="adam", lr=0.01, batch_size=100,
                     epochs=2, sync_every=4, progress=False, checkpoint_dir=folder, checkpoint_every=4,
                     resume=True, callbacks=[slow])
        np.savez(out, resumed=run.resumed_from_step or 0, **run.params)
    """
)


@pytest.mark.slow
def test_client_sigkilled_then_resumed_ends_with_the_same_bits(client, tmp_path):
    args = [client.scheduler.address, str(tmp_path / "ckpt"), str(tmp_path / "out.npz")]
    script, log = tmp_path / "client.py", tmp_path / "stderr.txt"
    rc, _ = run_script(script, _CLIENT_SCRIPT, args, kill_when=after_step(24), stderr=log)
    assert rc == -signal.SIGKILL and not (tmp_path / "out.npz").exists(), log.read_text()[-3000:]
    rc, _ = run_script(script, _CLIENT_SCRIPT, args, stderr=log)  # the same call: it resumes
    assert rc == 0, log.read_text()[-3000:]
    out = np.load(tmp_path / "out.npz")
    assert int(out["resumed"]) >= 20
    X, y = ddk.synthetic(12_000, 8, partitions=3, seed=21)
    ref = ds.fit(
        ds.models.LogisticRegression(),
        (X, y),
        optimizer="adam",
        lr=0.01,
        batch_size=100,
        epochs=2,
        sync_every=4,
        progress=False,
    )
    assert _same_bits({k: out[k] for k in ref.params}, ref.params)


# -- refusals ----------------------------------------------------------------------------------------


def test_a_bad_label_names_the_partition_and_its_row(client):
    X, y = _data(n=600)
    y[450] = 7  # partition 2 (rows 400-599), its row 50
    with pytest.raises(DataError, match=r"label 7 at partition 2, row 50 of the partition"):
        ds.fit("logistic", _dask(X, y, 200), classes=[0, 1], batch_size=20, sync_every=3, progress=False)


def test_sync_every_is_refused_off_dask_and_where_local_sgd_cannot_run(client):
    X, y = _data(n=300)
    kw = dict(batch_size=32, epochs=1, progress=False)
    with pytest.raises(ParameterError, match=r"sync_every=4 .* needs data on a Dask cluster") as info:
        ds.fit("logistic", (X, y), sync_every=4, **kw)
    assert info.value.param == "sync_every"
    assert _same_bits(
        ds.fit("logistic", (X, y), sync_every=1, **kw).params, ds.fit("logistic", (X, y), **kw).params
    )
    for bad in (0, -2):
        with pytest.raises(ParameterError, match=r"sync_every must satisfy sync_every >= 1"):
            ds.fit("logistic", (X, y), sync_every=bad, **kw)
    for bad in (2.5, True, "4"):
        with pytest.raises(TypeError, match="sync_every"):
            ds.fit("logistic", (X, y), sync_every=bad, **kw)
    data = _dask(X, y, 100)
    cases = [
        (dict(batch_size=None), "batch_size", r"give batch_size=B"),
        (dict(callbacks=[GradientClipping(max_norm=1.0)]), "callbacks", "GradientClipping"),
        (dict(batch_size=128, drop_last=True), "batch_size", r"every partition has fewer rows than a batch"),
    ]
    for extra, param, message in cases:
        with pytest.raises(ParameterError, match=message) as info:
            ds.fit("logistic", data, sync_every=4, **{**kw, **extra})
        assert info.value.param == param


def test_a_run_that_blows_up_in_its_first_round_is_caught_as_without_sync_every(client):
    """The guard starts from the loss at the first round's start (the tasks' first batches), not
    from the round's mean, which is already huge when the first steps blow up."""
    X, y = _data(n=4000, d=5)
    src = from_dask(_dask(X, y, 1000), client=client)
    for sync_every in (None, 8):
        with pytest.raises(ds.DivergenceError) as e:
            ds.fit(
                ds.models.LogisticRegression(),
                src,
                optimizer="sgd",
                lr=1e8,
                batch_size=256,
                epochs=2,
                sync_every=sync_every,
                progress=False,
            )
        assert e.value.quantity == "loss", sync_every
        assert all(np.isfinite(v).all() for v in e.value.run.params.values())
        # the message says where in local SGD's own units: the round and its first local batch
        if sync_every is not None:
            assert "the round from local batch" in str(e.value), str(e.value)


def test_the_convergence_rule_counts_rounds_in_its_reason(client):
    X, y = _data(n=4000, d=5)
    src = from_dask(_dask(X, y, 1000), client=client)
    kw = dict(optimizer="sgd", lr=0.1, batch_size=50, progress=False, tol=1e-2, n_iter_no_change=2)
    run = ds.fit(ds.models.LogisticRegression(), src, epochs=None, sync_every=4, **kw)
    assert run.stop_reason.startswith("converged") and " rounds did not improve" in run.stop_reason
    plain = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=None, **kw)
    assert " steps did not improve" in plain.stop_reason
