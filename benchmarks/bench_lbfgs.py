"""L-BFGS in ``fit``: against scikit-learn's ``LogisticRegression(solver="lbfgs")``, full-batch
GD and Adam on the same logistic problem (time and passes over the data to 1.0001 x the optimal
loss), and on data larger than the memory ``fit`` may use: a Parquet file streamed by a process
whose address space is capped below the data's size, the same rows in memory and on Dask.

Run: ``python -m benchmarks lbfgs [-- --rows R --big-rows N --features D]``; ``--quick`` checks
the script in seconds (tiny sizes, nothing written). Writes its section of ``docs/benchmarks.md``.

Every contender runs with one BLAS thread (so does Dask's nanny for its workers): the comparison
is per core. Passes: each evaluation of the loss and gradient over all rows is one pass; for
``fit`` that is ``samples_seen / rows``, for scikit-learn the calls of the objective it hands
to ``scipy.optimize.minimize`` (counted by wrapping it). Time to the target: the clock from
the start of training (after ``fit``'s setup, which is reported apart; scikit-learn's from its
``fit`` call) to the evaluation that first reached it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import DOC, machine, versions, write_section  # noqa: E402

# isort: split
import descend as ds  # noqa: E402

NAME = "lbfgs"
TARGET = 1.0001


# -- the problem --------------------------------------------------------------------------------------
def problem(rows: int, d: int, seed: int, dtype: str, chunk: int = 1 << 18) -> tuple[np.ndarray, np.ndarray]:
    """Correlated, standardized features and labels from a noisy logistic model: a problem with
    some curvature spread (condition number ~100), so first-order methods need many passes."""
    rng = np.random.default_rng(seed)
    mix = np.eye(d) + 0.6 * rng.standard_normal((d, d)) / np.sqrt(d)
    scale = np.geomspace(1.0, 10.0, d)
    w = rng.standard_normal(d) / np.sqrt(d) * 3.0
    X = np.empty((rows, d), dtype=dtype)
    y = np.empty(rows, dtype=np.int64)
    for lo in range(0, rows, chunk):
        hi = min(lo + chunk, rows)
        Z = (rng.standard_normal((hi - lo, d)) @ mix) * scale
        Z /= scale * np.sqrt(np.sum(mix**2, axis=0))  # about unit variance per column
        p = 1.0 / (1.0 + np.exp(-(Z @ w)))
        X[lo:hi] = Z
        y[lo:hi] = rng.random(hi - lo) < p
    return X, y


def newton_optimum(X: np.ndarray, y: np.ndarray, iters: int = 30, chunk: int = 1 << 18) -> float:
    """The optimal mean log-loss (no penalty, with intercept) by Newton's method in float64,
    written here independently of descend, a chunk of rows at a time."""
    n, d = X.shape
    w = np.zeros(d + 1)

    def passes(want_hessian: bool):
        g = np.zeros(d + 1)
        H = np.zeros((d + 1, d + 1)) if want_hessian else None
        loss = 0.0
        for lo in range(0, n, chunk):
            A = np.hstack([X[lo : lo + chunk].astype(np.float64), np.ones((min(chunk, n - lo), 1))])
            z = A @ w
            yy = y[lo : lo + chunk]
            loss += float(np.sum(np.logaddexp(0.0, z) - yy * z))
            p = 1.0 / (1.0 + np.exp(-z))
            g += A.T @ (p - yy)
            if H is not None:
                H += (A * (p * (1 - p))[:, None]).T @ A
        return loss / n, g / n, None if H is None else H / n

    for _ in range(iters):
        _, g, H = passes(True)
        step = np.linalg.solve(H, g)
        w -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    return passes(False)[0]


# -- contenders -----------------------------------------------------------------------------------------
def reached(run: ds.train.fit.Run, target: float, rows: int) -> tuple[float, float]:
    """(passes, seconds of training) until ``run``'s recorded loss first reached ``target``."""
    steps = run.history.steps
    for loss, seen, step, t in zip(
        steps["loss"], steps["samples_seen"], steps["step"], steps["time"], strict=True
    ):
        if loss <= target:
            # L-BFGS records the loss at the iterate reached; the others the loss their step
            # computed, at the parameters before it (pass `step`)
            return (seen / rows if run.optimizer.needs_objective else float(step)), t
    return float("inf"), float("inf")


def descend_fit(data, model, rows: int, target: float, **kw) -> dict:
    start = time.perf_counter()
    run = ds.fit(model, data, progress=False, standardize=False, **kw)
    total = time.perf_counter() - start
    passes, t = reached(run, target, rows)
    steps = run.history.steps
    return {
        "passes": passes,
        "time": t,
        "total": total,
        "setup": total - steps["time"][-1],
        "loss": steps["loss"][-1]
        if run.optimizer.needs_objective
        else run.loss(*data)
        if isinstance(data, tuple)
        else None,
        "all_passes": steps["samples_seen"][-1] / rows,
        "stop": run.stop_reason,
        "digest": digest(run.params),
    }


def digest(params: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(params):
        h.update(k.encode())
        h.update(params[k].tobytes())
    return h.hexdigest()[:16]


def sklearn_lbfgs(X: np.ndarray, y: np.ndarray, target: float) -> dict:
    """``LogisticRegression(solver="lbfgs", C=inf)``, every evaluation of its objective timed."""
    import scipy.optimize
    from sklearn.linear_model import LogisticRegression

    calls: list[tuple[float, float]] = []
    real = scipy.optimize.minimize
    start = 0.0

    def counting(fun, x0, *args, **kwargs):
        def wrapped(w, *a):
            out = fun(w, *a)
            calls.append((time.perf_counter() - start, float(out[0] if isinstance(out, tuple) else out)))
            return out

        return real(wrapped, x0, *args, **kwargs)

    scipy.optimize.minimize = counting
    try:
        start = time.perf_counter()
        m = LogisticRegression(solver="lbfgs", C=np.inf, tol=1e-10, max_iter=1000).fit(X, y)
        total = time.perf_counter() - start
    finally:
        scipy.optimize.minimize = real
    p = np.clip(m.predict_proba(X)[:, 1], 1e-300, 1.0)
    loss = float(-np.mean(np.where(y == 1, np.log(p), np.log1p(-p + 1e-300))))
    hit = next((i for i, (_, v) in enumerate(calls) if v <= target), None)
    return {
        "passes": float("inf") if hit is None else hit + 1,
        "time": float("inf") if hit is None else calls[hit][0],
        "total": total,
        "setup": calls[0][0] if calls else float("nan"),
        "loss": loss,
        "all_passes": len(calls),
        "stop": f"{m.n_iter_[0]} iterations",
    }


# -- part 1: in memory, against scikit-learn and first-order rules ----------------------------------------
def in_memory(rows: int, d: int, repeats: int, grid_cap: int) -> dict:
    X, y = problem(rows, d, seed=1, dtype="float64")
    best = newton_optimum(X, y)
    target = TARGET * best
    print(f"in memory: {rows:,} x {d}, optimum {best:.8f}", flush=True)
    model = ds.models.LogisticRegression(dtype="float64")
    out: dict = {"rows": rows, "d": d, "optimum": best, "rows_table": {}}
    turns: dict[str, list[dict]] = {"descend": [], "sklearn": []}
    for _ in range(repeats):  # the two L-BFGS take turns
        turns["descend"].append(
            descend_fit(
                (X, y), model, rows, target, optimizer="lbfgs", batch_size=None, epochs=None, max_epochs=200
            )
        )
        turns["sklearn"].append(sklearn_lbfgs(X, y, target))
        print("  descend", turns["descend"][-1]["time"], "sklearn", turns["sklearn"][-1]["time"], flush=True)
    for name, runs in turns.items():
        row = dict(runs[0])
        for key in ("time", "total", "setup"):
            row[key] = statistics.median(r[key] for r in runs)
        out["rows_table"][name] = row
    for name, lrs in (("sgd", (0.3, 1.0, 3.0)), ("adam", (0.01, 0.03, 0.1))):
        best_row = None
        for lr in lrs:
            row = descend_fit(
                (X, y),
                model,
                rows,
                target,
                optimizer=name,
                lr=lr,
                batch_size=None,
                epochs=grid_cap,
                divergence_factor=None,
            )
            row["lr"] = lr
            print(f"  {name} lr={lr}: {row['passes']} passes", flush=True)
            if best_row is None or (row["passes"], row["loss"]) < (best_row["passes"], best_row["loss"]):
                best_row = row
        out["rows_table"][name] = best_row
    return out


# -- part 2: larger than the memory fit may use ------------------------------------------------------------
CHILD = """
import json, resource, sys, time
cap = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
import descend as ds
sys.path.insert(0, sys.argv[4])
from benchmarks.bench_lbfgs import descend_fit
src = ds.data.open(sys.argv[1], target="y")
row = descend_fit(src, ds.models.LogisticRegression(), src.n_samples, float(sys.argv[3]),
                  optimizer="lbfgs", batch_size=None, epochs=None, max_epochs=200)
# VmHWM: this process's own peak (ru_maxrss would carry the parent's from before exec)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
row["peak_rss"] = int(hwm[0].split()[1]) * 1024 if hwm else None
print("RESULT " + json.dumps(row))
"""


def write_parquet(X: np.ndarray, y: np.ndarray, path: str, chunk: int = 1 << 20) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [f"x{j}" for j in range(X.shape[1])]
    schema = pa.schema([(n, pa.float32()) for n in names] + [("y", pa.int64())])
    with pq.ParquetWriter(path, schema) as w:
        for lo in range(0, len(y), chunk):
            cols = [pa.array(X[lo : lo + chunk, j]) for j in range(X.shape[1])] + [
                pa.array(y[lo : lo + chunk])
            ]
            w.write_table(pa.Table.from_arrays(cols, schema=schema), row_group_size=1 << 16)


def out_of_core(rows: int, d: int, cap: int, workers=(1, 2)) -> dict:
    X, y = problem(rows, d, seed=2, dtype="float32")
    best = newton_optimum(X, y)
    target = TARGET * best
    print(f"out of core: {rows:,} x {d} float32 ({X.nbytes / 2**30:.2f} GiB), optimum {best:.8f}", flush=True)
    folder = tempfile.mkdtemp(prefix="descend-lbfgs-")
    path = os.path.join(folder, "big.parquet")
    out: dict = {"rows": rows, "d": d, "optimum": best, "bytes": X.nbytes, "cap": cap, "table": {}}
    try:
        write_parquet(X, y, path)
        out["file_bytes"] = os.path.getsize(path)
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(root, "src"), root])}
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, path, str(cap), repr(target), root],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        line = next((s for s in proc.stdout.splitlines() if s.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"the capped Parquet run failed:\n{proc.stderr[-3000:]}")
        out["table"]["parquet"] = json.loads(line[len("RESULT ") :])
        print("  parquet (capped)", out["table"]["parquet"]["total"], flush=True)
        model = ds.models.LogisticRegression()
        kw = dict(optimizer="lbfgs", batch_size=None, epochs=None, max_epochs=200)
        out["table"]["memory"] = descend_fit((X, y), model, rows, target, **kw)
        print("  memory", out["table"]["memory"]["total"], flush=True)
        from benchmarks.bench_dask import cluster
        from descend.data import dask as ddk

        for w in workers:
            c, client = cluster(w)
            try:
                import dask.array as da

                chunk = -(-rows // 8)
                src = ddk.from_dask(
                    (da.from_array(X, chunks=(chunk, d)), da.from_array(y, chunks=chunk)), client=client
                )
                src.shard_sizes()  # persisted before the clock starts
                out["table"][f"dask{w}"] = descend_fit(src, model, rows, target, **kw)
                print(f"  dask {w}", out["table"][f"dask{w}"]["total"], flush=True)
            finally:
                client.close()
                c.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


# -- the section ----------------------------------------------------------------------------------------
def fmt_passes(p: float) -> str:
    return "never" if p == float("inf") else f"{p:g}"


def fmt_s(s: float) -> str:
    return "—" if s == float("inf") else f"{s:.2f}"


def render(args, mem: dict, big: dict | None, started: float, where: str) -> str:
    lines = [
        "## L-BFGS in fit: against scikit-learn, first-order rules, and data larger than memory",
        "",
        f"Command: `python -m benchmarks lbfgs -- --rows {args.rows} --big-rows {args.big_rows} --features "
        f"{args.features}`. Machine: {where}. {versions('numpy', 'scipy', 'sklearn', 'pyarrow', 'dask')}. "
        f"One BLAS thread for every contender. Took {time.perf_counter() - started:.0f} s.",
        "",
        f"### Logistic regression in memory: {mem['rows']:,} rows x {mem['d']} features (float64)",
        "",
        f"Target: training log-loss <= {TARGET} x the optimum {mem['optimum']:.8f} (Newton's method in "
        "float64, written in this script). Features correlated and standardized (condition number "
        f"~100). descend's L-BFGS and scikit-learn's took {args.repeats} turns each (median times); "
        "full-batch GD and Adam are the best of a small lr grid (fewest passes), at most "
        f"{args.grid_cap} passes. Passes are evaluations of the loss and gradient over all rows.",
        "",
        "| | passes to target | time to target (s) | setup (s) | passes made | stopped "
        "| final loss / optimum |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    names = {
        "descend": 'descend `fit(optimizer="lbfgs", batch_size=None)`',
        "sklearn": 'scikit-learn `LogisticRegression(solver="lbfgs", C=inf, tol=1e-10)`',
        "sgd": "descend full-batch GD",
        "adam": "descend full-batch Adam",
    }
    t = mem["rows_table"]
    for key, label in names.items():
        r = t[key]
        if "lr" in r:
            label += f" (lr {r['lr']:g})"
        ratio = "—" if r["loss"] is None else f"{r['loss'] / mem['optimum']:.6f}"
        lines.append(
            f"| {label} | {fmt_passes(r['passes'])} | {fmt_s(r['time'])} | {r['setup']:.2f} | "
            f"{r['all_passes']:g} | {r['stop']} | {ratio} |"
        )
    d, s = t["descend"], t["sklearn"]
    lines += [
        "",
        f"descend's L-BFGS reached the target in {fmt_passes(d['passes'])} passes against scikit-learn's "
        f"{fmt_passes(s['passes'])}, and in {d['time'] / s['time']:.2f}x its time "
        f"({fmt_s(d['time'])} s vs {fmt_s(s['time'])} s); full-batch GD took "
        f"{fmt_passes(t['sgd']['passes'])} passes and Adam {fmt_passes(t['adam']['passes'])}. "
        "The two L-BFGS differ: torch's rule "
        "(100 curvature pairs, its strong-Wolfe search) against SciPy's L-BFGS-B (10 pairs, its own "
        "search) with scikit-learn's loss code.",
        "",
    ]
    if big is not None:
        tb = big["table"]
        lines += [
            f"### Larger than the memory fit may use: {big['rows']:,} rows x {big['d']} features",
            "",
            f"The same logistic problem in float32: {big['bytes'] / 2**30:.2f} GiB of features, as a "
            f"Parquet file of {big['file_bytes'] / 2**30:.2f} GiB (row groups of 65,536 rows). The Parquet "
            f"run streams it in a process whose address space is capped at {big['cap'] / 2**30:.2f} GiB "
            "(`RLIMIT_AS`), less than the data; the others hold the rows in memory (this process, or "
            f"the workers' memory, 8 partitions). Target {TARGET} x the optimum {big['optimum']:.8f}.",
            "",
            "| source | passes to target | time to target (s) | per pass (s) | setup (s) | passes made "
            "| peak RSS | same bits as memory |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        labels = {"memory": "arrays in this process", "parquet": "Parquet, streamed (capped)"}
        for key, r in tb.items():
            label = labels.get(key, f"Dask, {key[4:]} worker{'s' if key != 'dask1' else ''}")
            per = (r["total"] - r["setup"]) / max(r["all_passes"], 1)
            rss = f"{r['peak_rss'] / 2**20:,.0f} MiB" if r.get("peak_rss") else "—"
            same = "yes" if r["digest"] == tb["memory"]["digest"] else "NO"
            lines.append(
                f"| {label} | {fmt_passes(r['passes'])} | {fmt_s(r['time'])} | {per:.2f} | "
                f"{r['setup']:.2f} | {r['all_passes']:g} | {rss} | {same} |"
            )
        lines += [
            "",
            "Setup is the pass before training (classes; moments are not needed: standardize=False) "
            "and, for Dask, shipping nothing: the rows were persisted before the clock started.",
            "",
        ]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=50)
    p.add_argument("--big-rows", type=int, default=10_000_000)
    p.add_argument("--cap-gib", type=float, default=1.0, help="address space of the Parquet run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--grid-cap", type=int, default=300, help="passes of GD/Adam at most")
    p.add_argument("--no-big", action="store_true", help="skip the larger-than-memory part")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, writes nothing")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--doc", type=Path, default=DOC)
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.big_rows, args.repeats, args.grid_cap, args.no_write = 20_000, 200_000, 1, 50, True
    started = time.perf_counter()
    where = machine()
    mem = in_memory(args.rows, args.features, args.repeats, args.grid_cap)
    big = None if args.no_big else out_of_core(args.big_rows, args.features, int(args.cap_gib * 2**30))
    text = render(args, mem, big, started, where)
    print(text)
    if not args.no_write:
        write_section(NAME, text, args.doc)


if __name__ == "__main__":
    main()
