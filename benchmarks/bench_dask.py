"""Training on Dask: per-step overhead vs in-process, where it falls under 10%, 1 vs 2 workers,
and local SGD (``fit(sync_every=H)``): a mini-batch epoch against one process from memory and
from Parquet.

Run: ``python -m benchmarks dask [-- --big-rows N --features D --rows R]``. Starts its own
clusters as ``--dask local:N`` does (loopback only, one thread per worker, no work stealing),
writes its section of ``docs/benchmarks.md`` and prints it. ``--local-sgd-only`` runs and prints
only the local SGD table (nothing written): ``-- --local-sgd-only --rows 100000`` checks it in a
minute.

What is timed is a training step as ``fit`` sees it: ``history.steps["time"]`` differences,
median over the steps after the first two (the first includes persisting the data); for local
SGD, rows per second over the epoch's updates after the first (a round of local SGD is one update).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# one BLAS thread in this process too, as Dask's nanny gives its workers: the comparison is then
# per core, and a multi-threaded BLAS on 2 shared cores does not add its own noise
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import DOC, machine, versions, write_section  # noqa: E402

# isort: split
import descend as ds  # noqa: E402  (after benchmarks._common, which puts this checkout's src first)
from descend.data import dask as ddk  # noqa: E402
from descend.train.local_sgd import steps_per_epoch  # noqa: E402

NAME = "dask"
MODEL = dict(optimizer="sgd", lr=0.1, progress=False, classes=[0, 1])


def step_seconds(run: ds.train.fit.Run, skip: int = 2) -> float:
    t = np.diff([0.0, *run.history.steps["time"]])[skip:]
    return float(statistics.median(t))


def fit_steps(data, steps: int, batch_size=None, dtype="float32") -> float:
    model = ds.models.LogisticRegression(dtype=dtype)
    if batch_size is None:  # in stored order: shuffling a full batch would only add a copy in process
        run = ds.fit(model, data, batch_size=None, epochs=steps, shuffle=False, **MODEL)
    else:
        run = ds.fit(model, data, batch_size=batch_size, epochs=1, max_steps=steps, shuffle=True, **MODEL)
    return step_seconds(run)


def cluster(n_workers: int):
    """A cluster as ``--dask local:N`` starts one (one thread per worker, no work stealing)."""
    client, c = ddk.connect(f"local:{n_workers}")
    return c, client


def overhead_table(rows_grid, d, steps_for) -> list[dict]:
    """Full-batch step on R rows: in-process vs one Dask worker (pure overhead) vs two."""
    out = []
    clusters = {w: cluster(w) for w in (1, 2)}
    try:
        for R in rows_grid:
            X, y = ddk.synthetic_arrays(R, d, partitions=2, seed=1, dtype="float32")
            steps = steps_for(R)
            mem = min(fit_steps((X, y), steps) for _ in range(2))
            del X, y
            row = {"rows": R, "inproc": mem}
            for w, (_, client) in clusters.items():
                with client.as_current():
                    data = ddk.synthetic(R, d, partitions=w, seed=1, dtype="float32")
                    row[f"dask{w}"] = min(fit_steps(data, steps) for _ in range(2))
            out.append(row)
            print(row, flush=True)
    finally:
        for c, client in clusters.values():
            client.close()
            c.close()
    return out


def partitions_table(d: int, grid=(2, 8, 32, 128)) -> list[dict]:
    """Full-batch step time vs number of partitions (tiny data): the per-task cost."""
    c, client = cluster(2)
    out = []
    try:
        with client.as_current():
            for P in grid:
                data = ddk.synthetic(max(4 * P, 1000), d, partitions=P, seed=2, dtype="float32")
                out.append({"partitions": P, "step": min(fit_steps(data, 30) for _ in range(2))})
                print(out[-1], flush=True)
    finally:
        client.close()
        c.close()
    return out


def minibatch_row(d: int, rows: int = 1_000_000, batch: int = 256, steps: int = 300) -> dict:
    X, y = ddk.synthetic_arrays(rows, d, partitions=4, seed=3, dtype="float32")
    mem = fit_steps((X, y), steps, batch_size=batch)
    del X, y
    c, client = cluster(2)
    try:
        with client.as_current():
            data = ddk.synthetic(rows, d, partitions=4, seed=3, dtype="float32")
            dk = fit_steps(data, steps, batch_size=batch)
    finally:
        client.close()
        c.close()
    return {"batch": batch, "rows": rows, "inproc": mem, "dask2": dk}


def big_epochs(rows: int, d: int, epochs: int, rounds: int = 4) -> dict:
    """Full-batch epoch time on ``rows`` rows: one worker vs two vs in process, alternating.

    Both clusters hold the data at once and the three contenders take turns, ``rounds`` times
    ``epochs`` epochs each, so that a burst of load from elsewhere hits them alike; each figure is
    the median epoch (the first epoch of every turn left out).
    """
    clusters = {w: cluster(w) for w in (1, 2)}
    try:
        contenders = {}
        for w, (_, client) in clusters.items():
            src = ddk.from_dask(ddk.synthetic(rows, d, partitions=8, seed=4, dtype="float32"), client=client)
            src.shard_sizes()  # persisted
            contenders[w] = src
        contenders["inproc"] = ddk.synthetic_arrays(rows, d, partitions=8, seed=4, dtype="float32")
        times: dict = {k: [] for k in contenders}
        model = ds.models.LogisticRegression(dtype="float32")
        for _ in range(rounds):
            for k, data in contenders.items():
                run = ds.fit(model, data, batch_size=None, epochs=epochs, shuffle=False, **MODEL)
                times[k] += list(np.diff(run.history.steps["time"]))  # epochs 2.. of this turn
                print(k, times[k][-1], flush=True)
        return {k: float(statistics.median(v)) for k, v in times.items()}
    finally:
        for c, client in clusters.values():
            client.close()
            c.close()


# -- local SGD: a mini-batch epoch ---------------------------------------------------------------------

#: the models of the local SGD table: logistic regression and a one-hidden-layer MLP
LOCAL_MODELS = {
    "logistic regression": lambda: ds.models.LogisticRegression(dtype="float32"),
    "MLP (32 relu units)": lambda: ds.models.MLP(hidden=(32,), output="binary", dtype="float32"),
}
#: sequential SGD's settings; local SGD runs them at lr x partitions (linear scaling)
LOCAL = dict(optimizer="sgd", lr=0.1, classes=[0, 1], standardize=False, progress=False)


def epoch_rate(run: ds.train.fit.Run) -> float:
    """Rows per second of training: the updates after the first (which pays one-time costs:
    kernels compiled on the workers, the first round trip)."""
    seen, t = run.history.steps["samples_seen"], run.history.steps["time"]
    if len(t) < 2:
        return seen[-1] / t[-1]
    return (seen[-1] - seen[0]) / (t[-1] - t[0])


def write_parquet(X: np.ndarray, y: np.ndarray, folder: str) -> str:
    """The rows as one Parquet file in row groups of 65,536 rows (as ``descend make-data``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(folder, "local_sgd.parquet")
    cols = {f"x{j}": X[:, j] for j in range(X.shape[1])}
    cols["y"] = y
    pq.write_table(pa.table(cols), path, row_group_size=1 << 16)
    return path


def local_sgd_table(rows: int, d: int, partitions: int, batch: int, hs, repeats: int, capped: int) -> dict:
    """Rows per second of a mini-batch epoch and the loss after it, for every model and contender.

    Contenders: one process from memory (sequential SGD, the reference) and from Parquet; Dask on
    1 and 2 workers, one round trip per step (``sync_every=None``) and local SGD for each H, on
    the same rows in ``partitions`` partitions. Runs that would take more than ``capped`` round
    trips an epoch (the per-step path, H = 1) run that many only: their rate is measured, their
    loss is not. The contenders take turns, ``repeats`` times; the rate is the median.
    """
    X, y = ddk.synthetic_arrays(rows, d, partitions=partitions, seed=6, dtype="float32")
    folder = tempfile.mkdtemp(prefix="descend-bench-")
    parquet = ds.data.open(write_parquet(X, y, folder), target="y")
    clusters = {w: cluster(w) for w in (1, 2)}
    out: dict = {"rows": rows, "partitions": partitions, "batch": batch, "hs": list(hs), "capped": capped}
    try:
        sources = {}
        for w, (_, client) in clusters.items():
            src = ddk.from_dask(
                ddk.synthetic(rows, d, partitions=partitions, seed=6, dtype="float32"), client=client
            )
            src.shard_sizes()  # persisted
            sources[w] = src
        steps = -(-rows // batch)  # an epoch of sequential SGD
        local_steps = steps_per_epoch(sources[1].shard_sizes(), batch, False)  # of local SGD
        scaled = LOCAL["lr"] * partitions
        contenders: dict = {
            "in process, from memory (sequential SGD)": ((X, y), {}, None),
            "in process, from Parquet": (parquet, {}, None),
        }
        for w in (1, 2):
            name = f"Dask, {w} worker{'s' if w > 1 else ''}"
            contenders[f"{name}, one round trip per step"] = (
                sources[w],
                {},
                capped if steps > capped else None,
            )
            for H in hs:
                cap = capped if -(-local_steps // H) > capped else None
                contenders[f"{name}, local SGD H={H}"] = (sources[w], {"sync_every": H, "lr": scaled}, cap)
        for label, make in LOCAL_MODELS.items():
            table: dict = {k: {"rates": [], "loss": None, "params": None} for k in contenders}
            for data, extra, _ in contenders.values():  # warm up: compiled kernels, caches
                ds.fit(make(), data, batch_size=batch, epochs=1, max_steps=2, **{**LOCAL, **extra})
            for _ in range(repeats):
                for k, (data, extra, cap) in contenders.items():
                    run = ds.fit(
                        make(), data, batch_size=batch, epochs=1, max_steps=cap, **{**LOCAL, **extra}
                    )
                    table[k]["rates"].append(epoch_rate(run))
                    if cap is None and table[k]["loss"] is None:
                        table[k]["loss"] = run.loss(X, y)
                        table[k]["params"] = run.params
                    print(label, k, f"{table[k]['rates'][-1]:,.0f} rows/s", flush=True)
            same_lr = {}
            for H in hs:  # local SGD at sequential SGD's lr: the loss only (it does not depend on W)
                if -(-local_steps // H) <= capped:
                    run = ds.fit(make(), sources[2], batch_size=batch, epochs=1, sync_every=H, **LOCAL)
                    same_lr[H] = run.loss(X, y)
            bits = [
                all(
                    table[f"Dask, 1 worker, local SGD H={H}"]["params"][p].tobytes()
                    == table[f"Dask, 2 workers, local SGD H={H}"]["params"][p].tobytes()
                    for p in table[f"Dask, 1 worker, local SGD H={H}"]["params"]
                )
                for H in hs
                if table[f"Dask, 1 worker, local SGD H={H}"]["params"] is not None
            ]
            out[label] = {"table": table, "same_lr": same_lr, "same_bits": all(bits) if bits else None}
    finally:
        for c, client in clusters.values():
            client.close()
            c.close()
        shutil.rmtree(folder, ignore_errors=True)
    return out


def render_local_sgd(res: dict) -> list[str]:
    """The local SGD subsection: a table per model, the same-lr losses and the goal's verdict."""
    P, B, lr = res["partitions"], res["batch"], LOCAL["lr"]
    lines = [
        f"### Local SGD: a mini-batch epoch (B = {B}, {res['rows']:,} rows in {P} partitions)",
        "",
        f"`fit(..., batch_size={B}, sync_every=H)` on Dask against the same epoch in one process. SGD at "
        f"lr {lr:g} in one process; local SGD at lr {lr:g} x {P} partitions = {lr * P:g} (the linear "
        "scaling rule: see below). Rows per second over the epoch's updates after the first, median of "
        "the turns the contenders took; the loss is the training loss over all rows after one epoch. "
        f"Runs that need more than {res['capped']:,} round trips an epoch ran {res['capped']:,} only "
        "(rate measured, loss not: —).",
        "",
    ]
    verdicts = []
    for label in LOCAL_MODELS:
        m = res[label]
        table = m["table"]
        seq = table["in process, from memory (sequential SGD)"]["loss"]
        pq_rate = statistics.median(table["in process, from Parquet"]["rates"])
        lines += [
            f"**{label}**",
            "",
            "| | rows/s | vs one process from Parquet | loss after 1 epoch | vs sequential SGD |",
            "|---|---:|---:|---:|---:|",
        ]
        for k, v in table.items():
            rate = statistics.median(v["rates"])
            loss = v["loss"]
            vs = "—" if loss is None or k.startswith("in process, from memory") else f"{loss / seq - 1:+.2%}"
            shown = "—" if loss is None else f"{loss:.5f}"
            lines.append(f"| {k} | {rate:,.0f} | {rate / pq_rate:.2f}x | {shown} | {vs} |")
            if k.startswith("Dask, 2 workers, local SGD") and loss is not None:
                if rate > pq_rate and abs(loss / seq - 1) <= 0.02:
                    verdicts.append((label, k.rsplit(" ", 1)[-1], rate / pq_rate, loss / seq - 1))
        same = ", ".join(f"H={H} {loss / seq - 1:+.1%}" for H, loss in m["same_lr"].items())
        lines += [
            "",
            f"At sequential SGD's own lr ({lr:g}) local SGD ends the epoch further from it: {same or '—'}. "
            + (
                "1 and 2 workers gave the same bits for every H measured."
                if m["same_bits"]
                else ("1 and 2 workers gave DIFFERENT bits." if m["same_bits"] is False else "")
            ),
            "",
        ]
    met = {label: [v for v in verdicts if v[0] == label] for label in LOCAL_MODELS}
    goal = []
    for label, hits in met.items():
        if hits:
            best = max(hits, key=lambda v: v[2])
            goal.append(
                f"{label}: met ({best[1]}: {best[2]:.2f}x the rows/s of Parquet in one process, loss "
                f"{best[3]:+.2%})"
            )
        else:
            goal.append(f"{label}: not met by any H measured")
    lines += [
        "Goal: on 2 workers, a mini-batch epoch faster than in one process from Parquet, with the loss "
        "within 2% of sequential SGD's. " + "; ".join(goal) + ".",
        "",
        f"Why lr x {P}: every round averages {P} models that each took H steps from the same start, so "
        "an epoch moves the average about as far as sequential SGD's steps over 1/P of the data would "
        f"(for H = 1 the average is one step on a {P}x larger batch). Scaling the lr by the number of "
        "partitions (Goyal et al. 2017's linear scaling rule) restores the distance; how far it holds "
        "for large lr x P or many partitions is the usual large-batch question.",
        "",
    ]
    return lines


def threshold(rows: list[dict], key: str = "dask1") -> tuple[float, float, int | None]:
    """Fixed overhead per step (s), cost per row (s), and the rows from which overhead < 10%.

    Fitted on the measured rows: step(R) = in-process(R) + overhead, overhead taken as the median
    of (Dask - in-process) over the small sizes, where compute is negligible.
    """
    small = [r[key] - r["inproc"] for r in rows if r["rows"] <= 10_000]
    overhead = float(statistics.median(small))
    big = [r for r in rows if r["rows"] >= 100_000]
    per_row = float(statistics.median(r["inproc"] / r["rows"] for r in big))
    first = next((r["rows"] for r in rows if (r[key] - r["inproc"]) < 0.1 * r["inproc"]), None)
    return overhead, per_row, first


def ms(s: float) -> str:
    return f"{1e3 * s:,.2f}"


def render(args, rows, parts, mb, big, local, started, where) -> str:
    overhead, per_row, first = threshold(rows)
    cut = overhead / (0.1 * per_row)
    slope = (parts[-1]["step"] - parts[0]["step"]) / (parts[-1]["partitions"] - parts[0]["partitions"])
    w_row = big[1] / args.big_rows  # seconds per row on one worker (full-batch epoch, 1 worker)
    w_rows = 10 * 100 * slope / w_row  # rows per worker for 100 tasks' bookkeeping to be 10%
    w_rows_1ms = 10 * 100 * 1e-3 / w_row
    lines = [
        "## Dask: training on a cluster",
        "",
        f"Command: `python -m benchmarks dask -- --big-rows {args.big_rows} --features {args.features} "
        f"--rows {local['rows']}`. "
        f"Machine: {where} (when it started: the cores are shared with other work). "
        f"{versions('numpy', 'dask', 'distributed')}. Clusters as `--dask local:N` starts them "
        "(loopback, one thread per worker process, one BLAS thread everywhere, no work stealing); logistic "
        f"regression (float32), SGD, {args.features} features; a step is what `fit` records per update "
        f"(median over steps, best of two runs). Took {time.perf_counter() - started:.0f} s.",
        "",
        "### Per-step overhead: full-batch step on R rows",
        "",
        "| rows per step | in process (ms) | Dask, 1 worker (ms) | overhead (ms) | overhead / in process "
        "| Dask, 2 workers (ms) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        o = r["dask1"] - r["inproc"]
        lines.append(
            f"| {r['rows']:,} | {ms(r['inproc'])} | {ms(r['dask1'])} | {ms(o)} | {o / r['inproc']:.0%} "
            f"| {ms(r['dask2'])} |"
        )
    lines += [
        "",
        f"A Dask step costs a fixed **{ms(overhead)} ms** more than an in-process step (median over the "
        f"sizes up to 10,000 rows, where compute is negligible); an in-process step costs "
        f"{1e9 * per_row:.1f} ns per row here. The overhead is under 10% of the step from about "
        f"**{cut:,.0f} rows per step** (fixed overhead / (0.1 x cost per row)); "
        + (
            f"the first measured size where Dask on 1 worker is within 10% of in process is {first:,} rows."
            if first is not None
            else f"no measured size (up to {rows[-1]['rows']:,} rows) is within 10% on 1 worker: at the "
            f"largest the difference was {ms(rows[-1]['dask1'] - rows[-1]['inproc'])} ms, more than the "
            "fixed overhead (the worker also pays per row: targets encoded every step, noise of the shared "
            "cores), so the estimate above is a lower bound."
        ),
        "",
        f"Mini-batch: batch {mb['batch']} from {mb['rows']:,} rows in 4 partitions on 2 workers: "
        f"{ms(mb['dask2'])} ms per step on Dask vs {ms(mb['inproc'])} ms in process (each step is one "
        "or two partition tasks: a mini-batch of a few hundred rows is far below the 10% point, so "
        "use large batches, full-batch GD, or local SGD: below).",
        "",
        "### Cost per partition task (2 workers, tiny data)",
        "",
        "| partitions | step (ms) |",
        "|---:|---:|",
        *[f"| {p['partitions']} | {ms(p['step'])} |" for p in parts],
        "",
        f"Each partition task adds about **{ms(slope)} ms** to a step on this machine (slope between "
        f"{parts[0]['partitions']} and {parts[-1]['partitions']} partitions: scheduler, worker and "
        "client bookkeeping per task plus the reduction tasks, serialized through 2 shared cores).",
        "",
        f"### Full-batch epoch on {args.big_rows:,} rows x {args.features} features (float32, "
        f"{args.big_rows * args.features * 4 / 2**20:,.0f} MiB, 8 partitions)",
        "",
        "| | epoch (s) |",
        "|---|---:|",
        f"| 1 worker | {big[1]:.3f} |",
        f"| 2 workers | {big[2]:.3f} |",
        f"| in process (reference) | {big['inproc']:.3f} |",
        "",
        f"Speed-up from 1 to 2 workers: **{big[1] / big[2]:.2f}x**. The three took turns (4 rounds of "
        f"{args.epochs} epochs, both clusters holding the data at once; median epoch, the first of each "
        "turn left out) on 2 cores shared by the client, the scheduler, the workers and other sessions.",
        "",
        "### 100 workers: a projection (on paper, not measured)",
        "",
        "> **Projection.** Not measured: derived from the figures above and the design. Per step with "
        "P partitions on W workers (P >= W) and parameters of S bytes:",
        ">",
        f"> - *Task bookkeeping grows with P.* The scheduler handles P partition tasks plus about "
        f"P/7 reduction tasks per step, one after another: ~{ms(slope)} ms each as measured here (an "
        "upper bound: here the scheduler shares 2 cores with the workers; distributed's documentation "
        f"says about 1 ms per task), so 100 partitions add ~{100 * slope:,.2f} s (or ~0.1 s) to every "
        "step. For that to be under 10%, each worker's share of the step must compute for 10x as "
        f"long: at the {1e9 * w_row:,.0f} ns per row of one worker above, {w_rows:,.1e} rows per worker "
        f"(~{100 * w_rows:,.0e} rows per step on 100 workers; ~{100 * w_rows_1ms:,.0e} at 1 ms per "
        "task). Steps smaller than that are better served by fewer workers. A mini-batch touches one "
        "or two partitions, not 100, so its cost does not grow with W (nor does it gain from W).",
        "> - *Tree depth grows as log_8 P.* 100 partials are summed 8 at a time: 100 -> 13 -> 2 -> the "
        "client, 2 levels on the workers plus the root, each level one worker-to-worker transfer of S "
        "bytes (about 1 ms on a LAN for small S). The reduction order is fixed by partition id, so the "
        "bits do not depend on W or on placement.",
        "> - *Parameter broadcast grows with P.* Up to 64 KiB the parameters travel inline in each "
        "task: P x S bytes out of the client and scheduler per step (100 x 64 KiB = 6.4 MB). Above "
        "that they are one task per step whose result the P tasks fetch from its worker: S bytes from "
        "the client, P x S bytes served by one worker (1 GB/s: a 10 MB MLP to 100 workers is ~1 s per "
        "step, the point where a broadcast tree, e.g. `client.replicate`, would be needed).",
        "> - *Compute shrinks as 1/W.* From the epoch table, one worker processes "
        f"{1e-6 / w_row:,.1f} M rows/s; 100 such workers would compute a full-batch step over 10^9 "
        f"rows in ~{1e9 * w_row / 100:,.2f} s, against ~{100 * slope + 0.003:,.2f} s of tasks and tree "
        f"(~{0.1 + 0.003:,.2f} s at 1 ms per task): an overhead of "
        f"{(100 * slope + 0.003) / (1e9 * w_row / 100):.0%} (or {(0.103) / (1e9 * w_row / 100):.0%}).",
        "",
        *render_local_sgd(local),
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--big-rows", type=int, default=10_000_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--epochs", type=int, default=4, help="epochs per turn in the 1 vs 2 workers race")
    p.add_argument("--grid", default="1000,3000,10000,30000,100000,300000,1000000,3000000")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, not the machine")
    p.add_argument("--rows", type=int, default=None, help="rows of the local SGD epoch (default 1,000,000)")
    p.add_argument("--partitions", type=int, default=2, help="partitions of the local SGD data")
    p.add_argument("--sync-every", default=None, help="the H of local SGD to measure (default 1,8,64,512)")
    p.add_argument("--repeats", type=int, default=None, help="turns of the local SGD contenders (default 3)")
    p.add_argument("--capped", type=int, default=300, help="round trips a run may take per epoch")
    p.add_argument("--local-sgd-only", action="store_true", help="only the local SGD table, printed")
    args, _ = p.parse_known_args(argv)
    started, where = time.perf_counter(), machine()
    local_rows = args.rows or (20_000 if args.quick else 1_000_000)
    repeats = args.repeats or (1 if args.quick else 3)
    hs = [int(h) for h in (args.sync_every or ("1,8" if args.quick else "1,8,64,512")).split(",")]
    if args.local_sgd_only:
        local = local_sgd_table(local_rows, args.features, args.partitions, 256, hs, repeats, args.capped)
        print("\n".join(render_local_sgd(local)))
        return
    grid = [int(r) for r in args.grid.split(",")]
    if args.quick:
        grid = [1_000, 100_000]
    rows = overhead_table(grid, args.features, lambda R: 40 if R <= 100_000 and not args.quick else 6)
    parts = partitions_table(args.features, (2, 8) if args.quick else (2, 8, 32, 128))
    mb = minibatch_row(args.features, 20_000, steps=20) if args.quick else minibatch_row(args.features)
    big = big_epochs(args.big_rows, args.features, args.epochs)
    local = local_sgd_table(local_rows, args.features, args.partitions, 256, hs, repeats, args.capped)
    text = render(args, rows, parts, mb, big, local, started, where)
    print(text)
    if not args.no_write:
        write_section(NAME, text, args.doc)


if __name__ == "__main__":
    main()
