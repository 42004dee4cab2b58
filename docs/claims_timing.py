"""More claims of docs/claims.md: mini-batch throughput, SGD and data size, AdaGrad's features, powers of two.

Each claim is a ``measure_*`` function (seeded runs of descend's public API, sizes as
parameters so that ``tests/test_claims_timing.py`` runs small versions), a ``draw_*`` function
(its picture in ``docs/claims/``) and a ``section_*`` function (its part of ``docs/claims.md``),
registered in :data:`CLAIMS`; ``docs/claims.py`` loads this module and runs them with its own.

Timings are ``time.perf_counter`` readings: fit's own per-step clock (``history.steps["time"]``)
for training, ``benchmarks/_common.alternate`` for a single call. Contenders alternate round by
round and every timed number is a median over rounds, so a burst of load from elsewhere hits all
of them alike; counts (updates, samples) come from seeded runs and do not depend on the clock.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from claims import SCRIPT, WIDE, Section, fmt, loglog_slope, new_figure, save  # docs/claims.py
from claims_more import _overall, _parts_table  # docs/claims_more.py: one verdict rule for the page

import descend as ds
from descend.data.synth import synthetic_rows
from descend.lab.datasets import load
from descend.lab.tune import LR_GRID
from descend.train.callbacks import Callback

if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package beside docs/
from benchmarks._common import alternate, spread  # spread: half the IQR over the median

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


# ------------------------------------------------------------------------------------- helpers


def blas() -> tuple[str, int]:
    """The BLAS NumPy calls and its thread count (threadpoolctl; ``("unknown", 0)`` without it)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return "unknown", 0
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return f"{lib['internal_api']} {lib.get('version') or ''}".strip(), int(lib["num_threads"])
    return "unknown", 0


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread (threadpoolctl), to compare with its default."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"


def side_by_side(runs: dict[K, Callable[[], V]], rounds: int) -> dict[K, list[V]]:
    """What each run measures of itself, ``rounds`` times, the runs alternating round by round in
    the order of ``benchmarks/_common.alternate`` (whose warm-up call is left out here)."""
    got: dict[K, list[V]] = {k: [] for k in runs}

    def record(k: K) -> Callable[[], None]:
        return lambda: got[k].append(runs[k]())

    alternate({k: record(k) for k in runs}, rounds, min_time=0.0)
    return {k: v[1:] for k, v in got.items()}


def seconds_per_call(fns: dict[K, Callable[[], object]], rounds: int, min_time: float) -> dict[K, float]:
    """Median seconds per call of each function, measured by ``alternate`` side by side."""
    samples = alternate(fns, rounds, min_time=min_time)
    return {k: statistics.median(v) for k, v in samples.items()}


class Watch(Callback):
    """Scores a run every ``every`` steps and stops it at ``target``; stops it as diverged when a
    batch loss is not finite or exceeds ``limit``. The scoring time is kept out of ``seconds``
    (training time, fit's own clock), so a score costs nothing on the page's clock."""

    def __init__(
        self,
        every: int,
        score: Callable[[Any], float] | None = None,
        target: float = -math.inf,
        limit: float = math.inf,
    ):
        self.every, self.score, self.target, self.limit = max(1, every), score, target, limit
        self.spent = 0.0  # seconds spent scoring
        self.hit: dict[str, float] | None = None  # step, samples and seconds at the target
        self.diverged: int | None = None  # the step a batch loss blew up at
        self.scores: list[tuple[int, float]] = []

    def on_step_end(self, run: Any, info: dict[str, Any]) -> bool | None:
        if not info["loss"] <= self.limit:  # NaN too
            self.diverged = int(info["step"])
            return True
        if self.score is None or info["step"] % self.every:
            return None
        t = time.perf_counter()
        value = float(self.score(run))
        self.spent += time.perf_counter() - t
        self.scores.append((int(info["step"]), value))
        if not math.isfinite(value):
            self.diverged = int(info["step"])
            return True
        if value <= self.target:
            self.hit = {
                "updates": int(info["step"]),
                "samples": int(info["samples_seen"]),
                "seconds": float(info["time"]) - self.spent + (time.perf_counter() - t),
            }
            return True
        return None


def train(model: Any, data: tuple[np.ndarray, np.ndarray], watch: Watch, **kw: Any) -> Any:
    """``ds.fit`` with the watch as its only guard (fit's own divergence guard off: a too-large lr
    of a grid ends at its first blown-up batch, quietly)."""
    kw.setdefault("progress", False)
    kw.setdefault("standardize", False)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return ds.fit(model, data, callbacks=[watch], divergence_factor=None, **kw)


def grid(low: float, high: float) -> tuple[float, ...]:
    """descend.lab.tune's half-decade lr grid, extended or cut to [low, high]."""
    exps = np.arange(math.floor(2 * math.log10(low)), math.ceil(2 * math.log10(high)) + 1) / 2
    values = {float(f"{v:.3g}") for v in 10.0**exps} | {v for v in LR_GRID if low <= v <= high}
    return tuple(sorted(v for v in values if low * (1 - 1e-9) <= v <= high * (1 + 1e-9)))


def threads(m: dict[str, Any]) -> str:
    return f"{m['threads']} thread" + ("s" if m["threads"] != 1 else "")


def batch_label(b: int | None) -> str:
    return "full" if b is None else str(b)


# ============================================================= 13. mini-batches use the hardware

#: the batch sizes of the throughput curve (None: the full batch of 1797 rows)
HARDWARE_BATCHES: tuple[int | None, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, None)
#: SGD lrs tried for the time to target, from the largest down
HARDWARE_LRS = grid(0.001, 3.16)


def digits_mlp(hidden: Sequence[int] = (64,)) -> Any:
    """What ``descend train digits --hidden 64`` trains: float32, He init, softmax output (given,
    so that the model's own ``init`` and ``loss_and_grad`` can be timed outside ``fit``)."""
    return ds.models.MLP(hidden=tuple(hidden), output="softmax")


def step_seconds(model: Any, X: np.ndarray, y: np.ndarray, batch_size: int | None, steps: int) -> float:
    """Median seconds of one SGD step of ``fit`` (its own clock; full batches of ``batch_size``
    rows: ``drop_last``), the first step (set-up) left out."""
    run = train(
        model,
        (X, y),
        Watch(1),
        optimizer="sgd",
        lr=1e-3,  # small: any batch size stays finite for a few steps
        batch_size=batch_size,
        max_steps=steps,
        drop_last=True,
    )
    return float(np.median(np.diff(run.history.step_array("time"))))


def step_seconds_one_thread(
    model: Any, X: np.ndarray, y: np.ndarray, batch_size: int | None, steps: int
) -> float:
    """:func:`step_seconds` with BLAS held to one thread (set outside fit's clock)."""
    with one_blas_thread():
        return step_seconds(model, X, y, batch_size, steps)


def throughput(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    batch_sizes: Sequence[int | None],
    *,
    steps: int,
    rounds: int,
    grad_time: float,
    one_thread: bool = False,
) -> dict[int | None, dict[str, Any]]:
    """Seconds per step of fit (also with BLAS on one thread: ``one_thread``) and of the model's
    ``loss_and_grad`` alone (the matrix work) at each batch size, every size and setting side by
    side; samples per second from each."""
    n = len(y)
    runs: dict[tuple[int | None, bool], Callable[[], float]] = {}
    for b in batch_sizes:
        runs[b, False] = lambda b=b: step_seconds(model, X, y, b, steps)
        if one_thread:
            runs[b, True] = lambda b=b: step_seconds_one_thread(model, X, y, b, steps)
    fit_s = side_by_side(runs, rounds)
    params = model.init(np.random.default_rng(0), X.shape[1], int(np.max(y)) + 1)
    Xf, targets = np.ascontiguousarray(X, dtype=model.dtype), model.check_targets(y)
    batches = {b: (Xf[: b or n], targets[: b or n]) for b in batch_sizes}
    grad_s = seconds_per_call(
        {b: (lambda b=b: model.loss_and_grad(params, *batches[b])) for b in batch_sizes},
        rounds,
        grad_time,
    )
    out = {}
    for b in batch_sizes:
        rows = b or n
        step = statistics.median(fit_s[b, False])
        out[b] = {
            "rows": rows,
            "step": step,
            "step_spread": spread(fit_s[b, False]),
            "samples_per_s": rows / step,
            "grad": grad_s[b],
            "grad_samples_per_s": rows / grad_s[b],
        }
        if one_thread:
            out[b]["samples_per_s_1thread"] = rows / statistics.median(fit_s[b, True])
    return out


def time_to_target(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int | None,
    lrs: Sequence[float],
    *,
    target: float,
    max_epochs: int,
    evals_per_epoch: int,
    seed: int,
) -> dict[str, Any]:
    """Updates of SGD until the full-data training loss is at most ``target``, at each lr from the
    largest down; a run is cut at the best count so far (it can no longer win), and the search
    ends at the first lr after the best that does not reach the target within that count."""
    n = len(y)
    rows = batch_size or n
    per_epoch = -(-n // rows)
    every = max(1, per_epoch // evals_per_epoch)
    Xf, targets = X.astype(model.dtype), model.check_targets(y)
    tried: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    misses = 0  # stable lrs in a row that missed the target before any reached it
    for lr in sorted(lrs, reverse=True):
        cap = max_epochs * per_epoch if best is None else best["updates"]
        watch = Watch(every, lambda run: run.model.loss(run.params, Xf, targets), target, limit=1e3)
        train(model, (X, y), watch, optimizer="sgd", lr=lr, batch_size=batch_size, max_steps=cap, seed=seed)
        row = {"lr": lr, "diverged": watch.diverged is not None, **(watch.hit or {})}
        tried.append(row)
        if watch.hit is not None and (best is None or watch.hit["updates"] < best["updates"]):
            best = row
        elif not row["diverged"]:
            misses += 1
            if best is not None or misses == 2:  # smaller lrs only get slower
                break
    return {"batch_size": batch_size, "every": every, "best": best, "tried": tried}


def measure_hardware(
    batch_sizes: Sequence[int | None] = HARDWARE_BATCHES,
    hidden: Sequence[int] = (64,),
    steps: int = 30,
    rounds: int = 5,
    grad_time: float = 0.01,
    lrs: Sequence[float] = HARDWARE_LRS,
    target: float = 0.1,
    max_epochs: int = 50,
    evals_per_epoch: int = 50,
    seed: int = 0,
) -> dict[str, Any]:
    """Samples per second of SGD on the digits MLP at each batch size (fit's step and the model's
    gradient alone; BLAS on its default threads and on one), then the updates, samples and time
    each batch size takes to a training loss of ``target`` at its best lr."""
    data = load("digits", seed=seed)
    X, y = data.X, data.y
    model = digits_mlp(hidden)
    default = throughput(
        model, X, y, batch_sizes, steps=steps, rounds=rounds, grad_time=grad_time, one_thread=True
    )
    rows = []
    for b in batch_sizes:
        t = time_to_target(
            model,
            X,
            y,
            b,
            lrs,
            target=target,
            max_epochs=max_epochs,
            evals_per_epoch=evals_per_epoch,
            seed=seed,
        )
        best = t["best"]
        sps = default[b]["samples_per_s"]
        rows.append(
            {
                "batch_size": b,
                **default[b],
                "lr": None if best is None else best["lr"],
                "updates": None if best is None else best["updates"],
                "samples": None if best is None else best["samples"],
                "epochs": None if best is None else best["samples"] / len(y),
                "seconds": None if best is None else best["samples"] / sps,
                "seconds_in_run": None if best is None else best["seconds"],
                "tried": t["tried"],
            }
        )
    name, threads = blas()
    return {
        "n": len(y),
        "hidden": tuple(hidden),
        "target": target,
        "steps": steps,
        "rounds": rounds,
        "max_epochs": max_epochs,
        "lrs": tuple(lrs),
        "blas": name,
        "threads": threads,
        "load": load_average(),
        "rows": rows,
    }


def _best(rows: list[dict[str, Any]], key: str, where: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return min((r for r in rows if where(r) and r[key] is not None), key=lambda r: r[key])


def verdict_hardware(m: dict[str, Any]) -> dict[str, bool]:
    rows = m["rows"]
    by = {r["batch_size"]: r for r in rows}
    one, full = by.get(1), by.get(None)
    mini = [r for r in rows if r["batch_size"] not in (1, None)]
    fastest_mini = min((r["seconds"] for r in mini if r["seconds"] is not None), default=math.inf)
    return {
        "samples/s rise with B: the best mini-batch ≥ 10x B=1": bool(
            max(r["samples_per_s"] for r in mini) >= 10 * one["samples_per_s"]
        ),
        "a full-batch epoch runs faster than a B=1 epoch (002: 'batch is faster running')": bool(
            full["samples_per_s"] > one["samples_per_s"]
        ),
        "a mini-batch reaches the target loss sooner than B=1 and than the full batch": bool(
            fastest_mini < min(one["seconds"] or math.inf, full["seconds"] or math.inf)
        ),
    }


def draw_hardware(m: dict[str, Any]) -> Path:
    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2)
    rows = m["rows"]
    x = np.array([r["rows"] for r in rows])
    left.loglog(
        x, [r["samples_per_s"] for r in rows], "o-", color="#1f77b4", label=f"fit step, BLAS {threads(m)}"
    )
    left.loglog(
        x,
        [r["samples_per_s_1thread"] for r in rows],
        "s--",
        color="#1f77b4",
        alpha=0.6,
        label="fit step, BLAS 1 thread",
    )
    left.loglog(
        x,
        [r["grad_samples_per_s"] for r in rows],
        "o-",
        color="#ff7f0e",
        label=f"loss_and_grad alone, {threads(m)}",
    )
    left.set_xlabel("batch size B (rows per step; the last point is the full batch)")
    left.set_ylabel("samples per second")
    left.set_title(f"MLP {m['hidden']} on digits, float32: throughput", fontsize="medium")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize="small")
    reached = [r for r in rows if r["seconds"] is not None]
    xs = np.array([r["rows"] for r in reached])
    right.loglog(
        xs, [r["seconds"] for r in reached], "o-", color="#2ca02c", label="samples to target / samples per s"
    )
    right.loglog(
        xs,
        [r["seconds_in_run"] for r in reached],
        "x",
        color="0.3",
        ms=8,
        label="training seconds in the tuning run",
    )
    for r in reached:
        right.annotate(
            f"{r['updates']} upd.\nlr {r['lr']:g}",
            (r["rows"], r["seconds"]),
            xytext=(0, 6),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )
    right.margins(y=0.15)
    right.set_xlabel("batch size B")
    right.set_ylabel(f"seconds to a training loss of {m['target']:g}")
    right.set_title("time to target at each B's best SGD lr", fontsize="medium")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize="small")
    return save(fig, "minibatch_hardware", WIDE)


def section_hardware(m: dict[str, Any]) -> Section:
    parts = verdict_hardware(m)
    verdict = _overall(parts)
    rows = m["rows"]
    by = {r["batch_size"]: r for r in rows}
    one, full = by[1], by[None]
    top = max(rows, key=lambda r: r["samples_per_s"])
    knee = min((r for r in rows if r["samples_per_s"] >= 0.5 * top["samples_per_s"]), key=lambda r: r["rows"])
    fastest = _best(rows, "seconds", lambda r: True)
    faster = full["samples_per_s"] > one["samples_per_s"]
    finding = (
        f"SGD on one sample at a time processed {fmt(one['samples_per_s'])} samples/s; the throughput "
        f"rose with B to {fmt(top['samples_per_s'])} at B = {batch_label(top['batch_size'])} "
        f"({fmt(top['samples_per_s'] / one['samples_per_s'])}x) and reached half of that from B = "
        f"{batch_label(knee['batch_size'])} on; the full batch ran {fmt(full['samples_per_s'])} samples/s "
        f"({fmt(full['samples_per_s'] / one['samples_per_s'])}x B=1: an epoch of batch GD is "
        + ("faster" if faster else "slower")
        + " than one of SGD). Where the time goes: a step of fit at B = 1 took "
        f"{fmt(one['step'] * 1e6)} µs, of which the model's loss_and_grad took {fmt(one['grad'] * 1e6)} µs "
        "and the rest of the step (batch slicing, the update, the history) "
        f"{fmt((one['step'] - one['grad']) * 1e6)} µs; at the full batch these were "
        f"{fmt(full['step'] * 1e6)}, {fmt(full['grad'] * 1e6)} and "
        f"{fmt((full['step'] - full['grad']) * 1e6)} µs for {full['rows']}x the rows: a step's fixed "
        "costs (Python, dispatch, small matrix products that cannot fill the CPU's vector units) are "
        "spread over B samples. To the target loss, B = "
        f"{batch_label(fastest['batch_size'])} was fastest ({fmt(fastest['seconds'])} s, "
        f"{fastest['updates']} updates at lr {fastest['lr']:g}) against {fmt(one['seconds'])} s for B = 1 "
        f"({fmt(one['updates'])} updates) and {fmt(full['seconds'])} s for the full batch "
        f"({fmt(full['updates'])} updates)"
        + (
            ": a mini-batch's updates are cheap per sample and still many per epoch."
            if parts["a mini-batch reaches the target loss sooner than B=1 and than the full batch"]
            else "."
        )
    )
    table = [
        [
            batch_label(r["batch_size"]),
            r["step"] * 1e6,
            r["step_spread"],
            r["samples_per_s"],
            r["samples_per_s_1thread"],
            r["grad"] * 1e6,
            r["grad_samples_per_s"],
            r["lr"],
            r["updates"],
            r["epochs"],
            r["seconds"],
            r["seconds_in_run"],
        ]
        for r in rows
    ]
    hidden = ",".join(str(h) for h in m["hidden"])

    def command(r: dict[str, Any]) -> str:
        lr = r["lr"] if r["lr"] is not None else max(t["lr"] for t in r["tried"] if not t["diverged"])
        return (
            f"descend train digits --hidden {hidden} --optimizer sgd --lr {lr:g} --batch-size "
            f"{batch_label(r['batch_size'])} --epochs 2 --val-fraction 0"
        )

    return Section(
        "minibatch_hardware",
        "Mini-batches use the hardware: samples per second and time to a target loss against B",
        'From the notes: "The main advantage of Mini-batch GD over Stochastic GD is that you can get a '
        'performance boost from hardware optimization of matrix operations" (001); "batch is faster '
        f'running" (002). Measured on this CPU with NumPy ({m["blas"]}, {threads(m)} for BLAS by '
        f"default) for SGD on the `digits` MLP (hidden {hidden}, ReLU, softmax, float32: what "
        f"`descend train digits --hidden {hidden}` trains; {m['n']} rows): *throughput* is B over the "
        f"median seconds of one step of `ds.fit` (its own clock, `history.steps['time']`; {m['steps']} "
        "steps per run, the first left out), also with BLAS held to one thread (threadpoolctl), every "
        f"B and setting side by side in each of {m['rounds']} rounds, medians over rounds; and for the "
        "model's `loss_and_grad` alone on the first B rows (`benchmarks/_common.alternate`); "
        f"the *time to target* is the samples SGD needs to bring the full-data training loss to "
        f"{m['target']:g} (each B at its best lr of a half-decade grid, checked every 1/50 epoch) over "
        "the samples per second, with the training seconds of that run itself beside it.",
        verdict,
        finding,
        [
            (
                [
                    "B",
                    "µs per fit step",
                    "± (IQR/2, share)",
                    "samples/s",
                    "samples/s, BLAS 1 thread",
                    "µs per loss_and_grad",
                    "samples/s, loss_and_grad",
                    "best lr",
                    "updates to target",
                    "epochs to target",
                    "seconds to target",
                    "seconds in the run",
                ],
                table,
            ),
            _parts_table(parts),
        ],
        [
            f"{SCRIPT} --only minibatch_hardware",
            *dict.fromkeys(command(r) for r in (one, fastest, full)),
        ],
        [
            "Each `train` run folder's `metrics.csv` holds the time of every step (column `time`): the "
            "median difference is this table's µs per fit step, up to the CLI's progress output and its "
            "20% validation split (off here with `--val-fraction 0`). The load average when this page "
            f"was measured: {m['load']}. On a busy machine multi-threaded BLAS can lose badly to one "
            "thread (its threads wait for cores other processes hold): compare the two throughput columns.",
        ],
        summary=f"samples/s B=1 {fmt(one['samples_per_s'])}, best {fmt(top['samples_per_s'])} "
        f"(B={batch_label(top['batch_size'])}), full {fmt(full['samples_per_s'])}; to loss {m['target']:g}: "
        f"B=1 {fmt(one['seconds'])} s, B={batch_label(fastest['batch_size'])} {fmt(fastest['seconds'])} s, "
        f"full {fmt(full['seconds'])} s",
    )


# ============================================================ 14. SGD's cost and the data size

#: rows of make-data's regression problem (`descend make-data --task regression --rows N`)
DATA_SIZES: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
#: (label, batch size, lr): lab.batching's default lrs for B = 1 and the full batch, and the full
#: batch's for B = 64 (its linear-scaling rule min(0.2, 0.005 B))
SIZE_RUNS: tuple[tuple[str, int | None, float], ...] = (
    ("SGD (B=1)", 1, 0.005),
    ("mini-batch (B=64)", 64, 0.2),
    ("full-batch GD", None, 0.2),
)


def size_problem(n: int, features: int, seed: int) -> dict[str, Any]:
    """make-data's regression rows (float32, ill-scaled columns), standardized in float64, with
    the exact least-squares optimum and the matrix C = AᵀA/n of A = [X, 1]: the excess MSE of
    θ = (W, b) is exactly (θ − θ*)ᵀ C (θ − θ*), a (d+1)² product whatever n is."""
    Xs, ys = zip(*synthetic_rows(n, features, "regression", seed), strict=True)
    X = np.concatenate(Xs).astype(np.float64)
    X = (X - X.mean(0)) / X.std(0)
    y = np.concatenate(ys)
    A = np.hstack([X, np.ones((n, 1))])
    theta, *_ = np.linalg.lstsq(A, y, rcond=None)
    return {"X": X, "y": y, "C": A.T @ A / n, "theta": theta, "optimal": float(np.mean((A @ theta - y) ** 2))}


def excess(problem: dict[str, Any]) -> Callable[[Any], float]:
    C, theta = problem["C"], problem["theta"]

    def score(run: Any) -> float:
        d = np.concatenate([run.params["W"].ravel(), run.params["b"]]) - theta
        return float(d @ C @ d)

    return score


def measure_data_size(
    sizes: Sequence[int] = DATA_SIZES,
    runs: Sequence[tuple[str, int | None, float]] = SIZE_RUNS,
    features: int = 10,
    target: float = 0.01,
    rounds: int = 3,
    max_epochs: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Updates, samples and seconds until the excess training MSE of linear regression is at most
    ``target``, for each batch size at a fixed lr and each number of rows n; every (run, n) side
    by side in each round, seconds as medians over rounds."""
    problems = {n: size_problem(n, features, seed) for n in sizes}
    model = ds.models.LinearRegression(dtype="float64")

    def one(label: str, b: int | None, lr: float, n: int) -> Callable[[], dict[str, Any]]:
        p = problems[n]
        per_epoch = 1 if b is None else -(-n // b)

        def go() -> dict[str, Any]:
            watch = Watch(1, excess(p), target, limit=1e6)
            t = time.perf_counter()
            run = train(
                model,
                (p["X"], p["y"]),
                watch,
                optimizer="sgd",
                lr=lr,
                batch_size=b,
                max_steps=max_epochs * per_epoch,
                seed=seed,
                standardize_target=False,
                shuffle=b is not None,  # a full batch's gradient is the same in any order
            )
            wall = time.perf_counter() - t - watch.spent
            first = float(run.history.step_array("time")[0])  # set-up of the epoch + one update
            return {**(watch.hit or {}), "wall": wall, "first": first, "diverged": watch.diverged is not None}

        return go

    got = side_by_side({(label, n): one(label, b, lr, n) for label, b, lr in runs for n in sizes}, rounds)
    out = []
    for label, b, lr in runs:
        for n in sizes:
            results = got[label, n]
            first = results[0]
            reached = "updates" in first
            out.append(
                {
                    "label": label,
                    "batch_size": b,
                    "lr": lr,
                    "n": n,
                    "reached": reached,
                    "updates": first.get("updates"),
                    "samples": first.get("samples"),
                    "passes": first["samples"] / n if reached else None,
                    "same_counts": all(r.get("samples") == first.get("samples") for r in results),
                    "seconds": statistics.median(r["seconds"] for r in results) if reached else None,
                    "spread": spread([r["seconds"] for r in results]) if reached else None,
                    "wall": statistics.median(r["wall"] for r in results),
                    "first": statistics.median(r["first"] for r in results),
                    "optimal": problems[n]["optimal"],
                }
            )
    return {
        "sizes": tuple(sizes),
        "runs": [r[0] for r in runs],
        "features": features,
        "target": target,
        "rounds": rounds,
        "max_epochs": max_epochs,
        "initial": float(problems[sizes[0]]["theta"] @ problems[sizes[0]]["C"] @ problems[sizes[0]]["theta"]),
        "load": load_average(),
        "rows": out,
    }


def _slope(rows: list[dict[str, Any]], key: str) -> float:
    pts = [(r["n"], r[key]) for r in rows if r[key] is not None and r[key] > 0]
    return loglog_slope(*zip(*pts, strict=True)) if len(pts) >= 2 else math.nan


def _by_run(m: dict[str, Any], label: str) -> list[dict[str, Any]]:
    return [r for r in m["rows"] if r["label"] == label]


def verdict_data_size(m: dict[str, Any]) -> dict[str, bool]:
    sgd, gd = _by_run(m, m["runs"][0]), _by_run(m, m["runs"][-1])
    samples = [r["samples"] for r in sgd]
    big = [r for r in sgd if r["n"] >= 10 * m["sizes"][0]]
    return {
        "SGD's samples to the target do not grow with n (largest / smallest ≤ 2)": all(
            s is not None for s in samples
        )
        and max(samples) <= 2 * min(samples),
        "SGD's time to the target does not grow with n (log-log slope < 0.25)": _slope(sgd, "seconds") < 0.25,
        "SGD reaches it before one pass over the data (n ≥ 10x the smallest)": bool(big)
        and all(r["reached"] and r["passes"] < 1 for r in big),
        "full-batch GD's time grows about in proportion to n (slope over the largest two n > 0.7)": _slope(
            gd[-2:], "seconds"
        )
        > 0.7,
    }


def draw_data_size(m: dict[str, Any]) -> Path:
    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2)
    colors = ("#1f77b4", "#ff7f0e", "#2ca02c")
    ns = np.array(m["sizes"], dtype=float)
    for label, c in zip(m["runs"], colors, strict=False):
        rows = [r for r in _by_run(m, label) if r["reached"]]
        n = [r["n"] for r in rows]
        left.loglog(n, [r["samples"] for r in rows], "o-", color=c, label=label)
        right.loglog(
            n,
            [r["seconds"] for r in rows],
            "o-",
            color=c,
            label=f"{label}: slope {_slope(rows, 'seconds'):.2f}",
        )
        right.loglog(n, [r["wall"] for r in rows], "x:", color=c, alpha=0.7)
    left.loglog(ns, ns, ":", color="0.4", label="one pass over the data (samples = n)")
    left.set_xlabel("rows n")
    left.set_ylabel("samples processed until the target")
    left.set_title(f"samples to an excess MSE of {m['target']:g}", fontsize="medium")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize="small")
    right.set_xlabel("rows n")
    right.set_ylabel("seconds")
    right.set_title("training seconds to the target (x: fit's whole call)", fontsize="medium")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize="small")
    return save(fig, "sgd_data_size", WIDE)


def section_data_size(m: dict[str, Any]) -> Section:
    parts = verdict_data_size(m)
    verdict = _overall(parts)
    sgd, gd = _by_run(m, m["runs"][0]), _by_run(m, m["runs"][-1])
    lo, hi = m["sizes"][0], m["sizes"][-1]

    def at(rows: list[dict[str, Any]], n: int) -> dict[str, Any]:
        return next(r for r in rows if r["n"] == n)

    s_lo, s_hi, g_lo, g_hi = at(sgd, lo), at(sgd, hi), at(gd, lo), at(gd, hi)
    finding = (
        f"From n = {lo:,} to {hi:,} rows ({hi // lo:,}x), SGD (B = 1) needed "
        + ", ".join(fmt(r["samples"]) for r in sgd)
        + f" samples to an excess MSE of {m['target']:g} ({fmt(s_hi['passes'])} of a pass at n = {hi:,}) and "
        f"{fmt(s_lo['seconds'])} s against {fmt(s_hi['seconds'])} s of training (log-log slope "
        f"{_slope(sgd, 'seconds'):.2f}); full-batch GD needed {fmt(g_lo['updates'])} to "
        f"{fmt(g_hi['updates'])} updates whatever n, each a pass, so its time went from "
        f"{fmt(g_lo['seconds'])} s to "
        f"{fmt(g_hi['seconds'])} s (slope {_slope(gd, 'seconds'):.2f}; {_slope(gd[-2:], 'seconds'):.2f} over "
        "the largest two n, where the pass outweighs the step's fixed costs). What SGD's clock does "
        f"see of n is its first step, which includes the epoch's shuffle of all n rows: "
        f"{fmt(s_lo['first'])} s at n = {lo:,} and {fmt(s_hi['first'])} s at n = {hi:,}; fit's whole call "
        f"(with its set-up) took {fmt(s_lo['wall'])} s and {fmt(s_hi['wall'])} s."
    )
    rows = [
        [
            r["label"],
            r["lr"],
            r["n"],
            r["updates"],
            r["samples"],
            r["passes"],
            r["seconds"],
            r["spread"],
            r["first"],
            r["wall"],
        ]
        for r in m["rows"]
    ]
    sizes = ", ".join(f"{n:,}" for n in m["sizes"])
    return Section(
        "sgd_data_size",
        "SGD's cost to a given loss does not grow with the data",
        'From the notes (003): "The computational time of SGD does not increase correspond to the '
        "increase of data size. SGD converges before proceeding the entire training set is "
        "possible.\" Measured on least squares over make-data's regression rows "
        f"(`descend make-data --task regression`: {m['features']} features, some ×100 or ×0.01, "
        f"standardized; y = 3z + 1 + noise of sd 0.3) for n = {sizes}: SGD (B = 1), mini-batches of 64 "
        "and full-batch GD, each at one fixed lr for every n, run until the excess training MSE "
        f"over the exact least-squares optimum is at most {m['target']:g} (it starts near "
        f"{fmt(m['initial'])}). The excess is computed exactly from the parameters after every update "
        "as (θ − θ*)ᵀ C (θ − θ*) with C = AᵀA/n, A = [X, 1], whose cost does not depend on n and is "
        "kept off the clock. *Seconds* are fit's own training clock at that update; *fit's call* "
        f"adds its set-up; both are medians over {m['rounds']} rounds with every (run, n) side by side. "
        "Full-batch GD runs with `shuffle=False` (the order of the rows does not change a full "
        "gradient).",
        verdict,
        finding,
        [
            (
                [
                    "run",
                    "lr",
                    "n",
                    "updates to target",
                    "samples to target",
                    "passes over the data",
                    "seconds (training)",
                    "± (IQR/2, share)",
                    "seconds of the first step",
                    "seconds (fit's call)",
                ],
                rows,
            ),
            _parts_table(parts),
        ],
        [
            f"{SCRIPT} --only sgd_data_size",
            f"descend make-data big.parquet --task regression --rows {hi}",
            "descend train big.parquet --target y --model linear --optimizer sgd --lr 0.2 --batch-size 64 "
            "--epochs 1 --standardize on --val-fraction 0",
            "descend train big.parquet --target y --model linear --optimizer sgd --lr 0.2 --batch-size full "
            "--epochs 10 --standardize on --val-fraction 0",
        ],
        [
            "The `train` runs show the same trade on the full file: one pass of mini-batches against "
            "ten passes of full-batch GD; their `metrics.csv` holds each step's loss and time. The CLI "
            "trains in float32 and scales the target too, so its losses are not this table's. "
            "The full batch is shuffled by the CLI (fit's default), which at a million rows costs "
            "more than the gradient itself: fit gathers every row in a new order at each epoch. "
            f"The load average when this page was measured: {m['load']}.",
        ],
        summary=f"SGD samples to target: {fmt(min(r['samples'] or 0 for r in sgd))}–"
        f"{fmt(max(r['samples'] or 0 for r in sgd))} for n = {lo:,}…{hi:,}; time slope SGD "
        f"{_slope(sgd, 'seconds'):.2f}, GD {_slope(gd, 'seconds'):.2f}",
    )


# ============================================== 16. AdaGrad for unnormalised or sparse features

#: the lrs tried for each rule on linear regression: SGD's reach down to what ×100 columns need
FEATURE_LRS: dict[str, tuple[float, ...]] = {"sgd": grid(1e-7, 10.0), "adagrad": grid(1e-4, 100.0)}
#: the rules of the MLP comparison (AdaGrad first)
MLP_RULES: tuple[str, ...] = ("adagrad", "rmsprop", "adam", "sgd")


def ill_scaled_problem(n: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """make-data's regression rows as written (float32, columns ×100 or ×0.01, offsets)."""
    Xs, ys = zip(*synthetic_rows(n, features, "regression", seed), strict=True)
    return np.concatenate(Xs), np.concatenate(ys), "ill-scaled"


def sparse_problem(
    n: int, features: int, seed: int, p_max: float = 0.5, p_min: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, str]:
    """0/1 features, feature j present in a share p_j of the rows (geometric from ``p_max`` down
    to ``p_min``, like word counts), with weights ~ N(0, 1/(p_j d)) so that every feature
    explains about the same share of y's variance (rare features matter as much as common
    ones), and noise of sd 0.1."""
    rng = np.random.default_rng([seed, 16])
    p = np.geomspace(p_max, p_min, features)
    X = (rng.random((n, features)) < p).astype(np.float32)
    w = rng.normal(size=features) / np.sqrt(p * features)
    return X, X.astype(np.float64) @ w + 0.1 * rng.normal(size=n), "sparse"


def excess_mse(run: Any, X: np.ndarray, y: np.ndarray, optimal: float) -> float:
    """The training MSE over the least-squares optimum, in y's units (``run.predict`` undoes
    fit's scaling of the features and of the target)."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.asarray(run.predict(X), dtype=np.float64).ravel() - y
        value = float(np.mean(r * r)) - optimal
    return value if math.isfinite(value) else math.inf


def tune(fit_one: Callable[[float], tuple[float, dict[str, Any]]], lrs: Sequence[float]) -> dict[str, Any]:
    """Every lr of the grid (a diverged run scores inf; scores against lr need not have one
    valley: AdaGrad's plateau of large lrs does not); the best is the lowest score."""
    tried = []
    for lr in sorted(lrs, reverse=True):
        score, extra = fit_one(lr)
        tried.append({"lr": lr, "score": score, **extra})
    stable = [t for t in tried if math.isfinite(t["score"])]
    return {"best": min(stable, key=lambda t: t["score"]) if stable else None, "tried": tried}


def measure_adagrad_features(
    n: int = 10_000,
    features: int = 10,
    sparse_features: int = 50,
    batch_size: int = 32,
    epochs: int = 3,
    lrs: dict[str, Sequence[float]] = FEATURE_LRS,
    mlp_rules: Sequence[str] = MLP_RULES,
    mlp_epochs: int = 10,
    mlp_lrs: Sequence[float] = grid(1e-4, 3.16),
    seed: int = 0,
) -> dict[str, Any]:
    """Linear regression by SGD and by AdaGrad, each at its best lr, on ill-scaled and on sparse
    features, as given and standardized by fit; then the digits MLP by each of ``mlp_rules`` at
    its best lr (lowest final training loss)."""
    problems = []
    for X, y, name in (
        ill_scaled_problem(n, features, seed),
        sparse_problem(n, sparse_features, seed),
    ):
        A = np.hstack([X.astype(np.float64), np.ones((n, 1))])
        optimal = float(np.mean((A @ np.linalg.lstsq(A, y, rcond=None)[0] - y) ** 2))
        scales = X.std(0)
        runs = []
        for standardize in (False, True):
            for rule in ("sgd", "adagrad"):

                def fit_one(
                    lr: float,
                    rule: str = rule,
                    standardize: bool = standardize,
                    X: np.ndarray = X,
                    y: np.ndarray = y,
                    optimal: float = optimal,
                ) -> tuple[float, dict]:
                    watch = Watch(1, limit=1e6)
                    run = train(
                        ds.models.LinearRegression(),
                        (X, y),
                        watch,
                        optimizer=rule,
                        lr=lr,
                        batch_size=batch_size,
                        epochs=epochs,
                        seed=seed,
                        standardize=standardize,
                    )
                    if watch.diverged is not None:
                        return math.inf, {"diverged": watch.diverged}
                    return excess_mse(run, X, y, optimal), {"diverged": None}

                t = tune(fit_one, lrs[rule])
                runs.append({"rule": rule, "standardized": standardize, **t})
        problems.append(
            {
                "name": name,
                "features": X.shape[1],
                "optimal": optimal,
                "variance": float(np.var(y)),
                "scale_ratio": float(scales.max() / scales[scales > 0].min()),
                "rarest": float(np.mean(X[:, -1] != 0)) if name == "sparse" else None,
                "runs": runs,
            }
        )
    train_set, test_set = load("digits", seed=seed).split(0.25, seed=seed)
    mlp = []
    for rule in mlp_rules:

        def fit_mlp(lr: float, rule: str = rule) -> tuple[float, dict]:
            watch = Watch(1, limit=1e3)
            run = train(
                digits_mlp(),
                (train_set.X, train_set.y),
                watch,
                optimizer=rule,
                lr=lr,
                batch_size=batch_size,
                epochs=mlp_epochs,
                seed=seed,
            )
            if watch.diverged is not None:
                return math.inf, {"diverged": watch.diverged}
            model = run.model
            loss = float(
                model.loss(run.params, train_set.X.astype(model.dtype), model.check_targets(train_set.y))
            )
            return (loss if math.isfinite(loss) else math.inf), {
                "diverged": None,
                "test_accuracy": float(np.mean(run.predict(test_set.X) == test_set.y)),
                "curve": np.asarray(run.history.epochs.get("train_loss", [])),
            }

        mlp.append({"rule": rule, **tune(fit_mlp, mlp_lrs)})
    return {
        "n": n,
        "batch_size": batch_size,
        "epochs": epochs,
        "lrs": {rule: tuple(v) for rule, v in lrs.items()},
        "mlp_epochs": mlp_epochs,
        "mlp_lrs": tuple(mlp_lrs),
        "mlp_rows": len(train_set.y),
        "problems": problems,
        "mlp": mlp,
    }


def _score(p: dict[str, Any], rule: str, standardized: bool) -> float:
    run = next(r for r in p["runs"] if r["rule"] == rule and r["standardized"] == standardized)
    return run["best"]["score"] if run["best"] else math.inf


def _ratio(p: dict[str, Any], standardized: bool) -> float:
    """Tuned SGD's excess over tuned AdaGrad's (> 1: AdaGrad ends lower)."""
    a = _score(p, "adagrad", standardized)
    return _score(p, "sgd", standardized) / a if a > 0 else math.inf


def _given_over_standardized(p: dict[str, Any]) -> float:
    """AdaGrad's excess on the features as given over SGD's on them standardized."""
    return _score(p, "adagrad", False) / _score(p, "sgd", True)


#: an advantage of one rule over another smaller than this share counts as none
ADVANTAGE = 0.05


def verdict_adagrad_features(m: dict[str, Any]) -> dict[str, bool]:
    ps = {p["name"]: p for p in m["problems"]}
    mlp = {r["rule"]: r["best"] for r in m["mlp"]}
    ada = mlp.get("adagrad")
    others = [mlp[r] for r in ("rmsprop", "adam") if r in mlp]
    edge = 1 + ADVANTAGE
    return {
        **{
            f"{name} features: tuned AdaGrad ends lower than tuned SGD": _ratio(p, False) > edge
            for name, p in ps.items()
        },
        "AdaGrad as given ends within 10x of SGD on standardized features (every problem)": all(
            _given_over_standardized(p) <= 10 for p in m["problems"]
        ),
        "standardized, AdaGrad's advantage vanishes (every problem)": all(
            _ratio(p, True) <= edge for p in m["problems"]
        ),
        "digits MLP: AdaGrad's training loss is higher than RMSprop's and Adam's": ada is not None
        and bool(others)
        and all(o is not None and ada["score"] > edge * o["score"] for o in others),
    }


def draw_adagrad_features(m: dict[str, Any]) -> Path:
    size = (1500, 520)
    fig = new_figure(size)
    axes = fig.subplots(1, len(m["problems"]) + 1)
    colors = {"sgd": "#1f77b4", "adagrad": "#d62728", "rmsprop": "#2ca02c", "adam": "#ff7f0e"}
    for ax, p in zip(axes, m["problems"], strict=False):
        for r in p["runs"]:
            pts = [(t["lr"], t["score"]) for t in r["tried"] if math.isfinite(t["score"])]
            if not pts:
                continue
            x, v = zip(*pts, strict=True)
            style = "o--" if r["standardized"] else "o-"
            ax.loglog(
                x,
                np.maximum(v, 1e-12),
                style,
                color=colors[r["rule"]],
                alpha=0.6 if r["standardized"] else 1.0,
                label=f"{r['rule']}, {'standardized' if r['standardized'] else 'as given'}",
            )
        ax.set_xlabel("lr (diverged lrs not drawn)")
        ax.set_ylabel(f"excess training MSE after {m['epochs']} epochs")
        ax.set_title(f"{p['name']} features ({p['features']})", fontsize="medium")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    ax = axes[-1]
    for r in m["mlp"]:
        if r["best"] is None:
            continue
        c = r["best"]["curve"]
        ax.semilogy(
            np.arange(1, len(c) + 1),
            c,
            "-",
            color=colors.get(r["rule"]),
            label=f"{r['rule']} lr {r['best']['lr']:g}: test acc. {r['best']['test_accuracy']:.3f}",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss of the epoch")
    ax.set_title("digits MLP, each rule at its best lr", fontsize="medium")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return save(fig, "adagrad_features", size)


def section_adagrad_features(m: dict[str, Any]) -> Section:
    parts = verdict_adagrad_features(m)
    verdict = _overall(parts)
    ps = {p["name"]: p for p in m["problems"]}
    ill, sp = ps["ill-scaled"], ps["sparse"]
    rows = []
    for p in m["problems"]:
        for r in p["runs"]:
            b = r["best"]
            rows.append(
                [
                    p["name"],
                    "standardized" if r["standardized"] else "as given",
                    r["rule"],
                    None if b is None else b["lr"],
                    None if b is None else b["score"],
                    None if b is None else math.sqrt(b["score"] + p["optimal"]),
                    sum(1 for t in r["tried"] if t["diverged"] is not None),
                    len(r["tried"]),
                ]
            )
    mlp_rows = [
        [
            r["rule"],
            None if r["best"] is None else r["best"]["lr"],
            None if r["best"] is None else r["best"]["score"],
            None if r["best"] is None else r["best"]["test_accuracy"],
            len(r["tried"]),
        ]
        for r in m["mlp"]
    ]
    mlp = {r["rule"]: r["best"] for r in m["mlp"]}
    ada = mlp.get("adagrad")

    def mlp_words(rule: str) -> str:
        b = mlp.get(rule)
        return f"{rule} {fmt(b['score'])} ({fmt(b['test_accuracy'])})" if b else f"{rule} —"

    as_given = ", ".join(f"{fmt(_ratio(p, False))}x on {p['name']} features" for p in m["problems"])
    standardized = ", ".join(f"{fmt(_ratio(p, True))}x ({p['name']})" for p in m["problems"])
    finding = (
        f"Tuned SGD ended at an excess MSE {as_given} over tuned AdaGrad's (column standard deviations "
        f"{fmt(ill['scale_ratio'])}x apart; the rarest sparse feature in {100 * sp['rarest']:.2g}% of "
        "rows). "
        + "AdaGrad on the features as given against SGD on them standardized: "
        + ", ".join(f"{fmt(_given_over_standardized(p))}x SGD's excess ({p['name']})" for p in m["problems"])
        + (
            ". AdaGrad divides each step by the root of the summed squared gradients, which scale "
            "with the feature, so its step in a weight does not depend on the feature's scale, while "
            "the weight it has to reach grows as 1/scale: it narrows the spread of scales an lr must "
            "serve from their square (SGD) to their ratio, and standardizing removes it. "
            if not parts["AdaGrad as given ends within 10x of SGD on standardized features (every problem)"]
            else ". "
        )
        + f"After fit standardized the features, SGD's excess over AdaGrad's was {standardized}"
        + (
            ": once the features are on one scale, SGD does as well as AdaGrad or better. "
            if parts["standardized, AdaGrad's advantage vanishes (every problem)"]
            else ". "
        )
        + "On the digits MLP the final training loss (test accuracy) at each rule's best lr was "
        + ", ".join(mlp_words(r["rule"]) for r in m["mlp"])
        + (
            ": AdaGrad trails RMSprop and Adam."
            if parts["digits MLP: AdaGrad's training loss is higher than RMSprop's and Adam's"]
            else ": at its own best lr AdaGrad does not trail both RMSprop and Adam in training loss here."
        )
        + (
            " The best lrs: "
            + ", ".join(f"{r['rule']} {r['best']['lr']:g}" for r in m["mlp"] if r["best"])
            + "."
            if ada
            else ""
        )
    )
    best = {(p["name"], r["rule"], r["standardized"]): r["best"] for p in m["problems"] for r in p["runs"]}

    def lr_of(rule: str, standardized: bool) -> str:
        b = best["ill-scaled", rule, standardized]
        return f"{b['lr']:g}" if b else "0.01"

    common = f"--batch-size {m['batch_size']} --epochs {m['epochs']} --val-fraction 0"
    commands = [
        f"{SCRIPT} --only adagrad_features",
        f"descend make-data ill.parquet --task regression --rows {m['n']}",
    ]
    for standardized in (False, True):
        for rule in ("sgd", "adagrad"):
            commands.append(
                f"descend train ill.parquet --target y --model linear --optimizer {rule} --lr "
                f"{lr_of(rule, standardized)} {common} --standardize {'on' if standardized else 'off'}"
            )
    for r in m["mlp"]:
        if r["best"] is not None and r["rule"] != "sgd":
            commands.append(
                f"descend train digits --hidden 64 --optimizer {r['rule']} --lr {r['best']['lr']:g} "
                f"--batch-size {m['batch_size']} --epochs {m['mlp_epochs']}"
            )
    return Section(
        "adagrad_features",
        "AdaGrad for features that are not normalised, or sparse",
        'From the notes (002): "if you haven\'t normalized, scale is different use AdaGrad"; "sparse '
        "input … it will elongate, so its flat along one axis and you aren't moving there\"; "
        '"use in regression not neural nets". Measured on linear regression (float32, fit\'s scaling '
        f"of the target) by SGD and by AdaGrad, mini-batches of {m['batch_size']}, {m['epochs']} epochs, "
        "each rule at the best lr of a half-decade grid ("
        + ", ".join(f"{rule} {fmt(min(v))} to {fmt(max(v))}" for rule, v in m["lrs"].items())
        + f"): on make-data's regression rows (`descend make-data --task regression`, n = {m['n']:,}: "
        f"{ill['features']} features, some ×100 or ×0.01, with offsets) and on {sp['features']} sparse 0/1 "
        "features (feature j present in a share p_j of the rows, geometric from 50% down to 0.1%, "
        "like word counts; weights ~ N(0, 1/(p_j d)) so that rare features explain as much of y as "
        "common ones), each as given and standardized by `fit(standardize=True)`. The score is the "
        "training MSE over the exact least-squares optimum, in y's units. Then the `digits` MLP "
        f"(hidden 64, {m['mlp_rows']} training rows, {m['mlp_epochs']} epochs, mini-batches of "
        f"{m['batch_size']}) by AdaGrad, RMSprop, Adam and SGD, each at the lr of "
        f"{fmt(min(m['mlp_lrs']))} to {fmt(max(m['mlp_lrs']))} with the lowest final training loss.",
        verdict,
        finding,
        [
            (
                [
                    "features",
                    "scaling",
                    "rule",
                    "best lr",
                    "excess MSE",
                    "training RMSE",
                    "lrs that diverged",
                    "lrs tried",
                ],
                rows,
            ),
            (["rule (digits MLP)", "best lr", "final training loss", "test accuracy", "lrs tried"], mlp_rows),
            _parts_table(parts),
        ],
        commands,
        [
            "The `train` commands on `ill.parquet` run the ill-scaled rows at the lrs found above; "
            "the CLI reads the file in its own row order, so its final RMSE (printed for the training "
            "rows) is close to the table's, not equal. The sparse problem has no CLI generator "
            "(make-data writes dense features).",
        ],
        summary=f"SGD/AdaGrad excess: ill-scaled {fmt(_ratio(ill, False))}x, sparse "
        f"{fmt(_ratio(sp, False))}x; standardized {fmt(_ratio(ill, True))}x, {fmt(_ratio(sp, True))}x; "
        "MLP loss " + ", ".join(f"{r['rule']} {fmt(r['best']['score'])}" for r in m["mlp"] if r["best"]),
    )


# ================================================================= 18. batch sizes as powers of two

#: powers of two with both neighbours, and two round sizes that are not powers of two
POWER_BATCHES: tuple[int, ...] = (31, 32, 33, 63, 64, 65, 96, 100, 127, 128, 129, 255, 256, 257)
#: an advantage below this share is within what timing noise and the linear trend allow
POWER_MARGIN = 0.03


def measure_power_of_two(
    batch_sizes: Sequence[int] = POWER_BATCHES,
    widths: Sequence[int] = (64, 512),
    steps: int = 30,
    rounds: int = 9,
    grad_time: float = 0.01,
    seed: int = 0,
) -> dict[str, Any]:
    """Seconds per SGD step of ``fit`` and per ``loss_and_grad`` of one-hidden-layer MLPs on
    digits at each batch size, all sizes side by side, for each hidden width; then, at every power
    of two whose neighbours were measured, its samples per second over the mean of theirs."""
    data = load("digits", seed=seed)
    series = []
    for width in widths:
        t = throughput(
            digits_mlp((width,)),
            data.X,
            data.y,
            batch_sizes,
            steps=steps,
            rounds=rounds,
            grad_time=grad_time,
        )
        for kind, step, sps in (
            ("fit step", "step", "samples_per_s"),
            ("loss_and_grad", "grad", "grad_samples_per_s"),
        ):
            per = {b: t[b][sps] for b in batch_sizes}
            powers = [b for b in batch_sizes if b & (b - 1) == 0 and b - 1 in per and b + 1 in per]
            series.append(
                {
                    "label": f"{kind}, hidden {width}",
                    "kind": kind,
                    "width": width,
                    "seconds": {b: t[b][step] for b in batch_sizes},
                    "spread": {b: t[b]["step_spread"] for b in batch_sizes} if kind == "fit step" else None,
                    "samples_per_s": per,
                    "advantage": {b: per[b] / ((per[b - 1] + per[b + 1]) / 2) - 1 for b in powers},
                }
            )
    name, n_threads = blas()
    return {
        "batch_sizes": tuple(batch_sizes),
        "steps": steps,
        "rounds": rounds,
        "margin": POWER_MARGIN,
        "blas": name,
        "threads": n_threads,
        "load": load_average(),
        "series": series,
    }


def verdict_power_of_two(m: dict[str, Any]) -> dict[str, bool]:
    return {
        f"{s['label']}: every power of two ≥ {100 * m['margin']:g}% more samples/s than its neighbours": all(
            a >= m["margin"] for a in s["advantage"].values()
        )
        for s in m["series"]
    }


def draw_power_of_two(m: dict[str, Any]) -> Path:
    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2)
    bs = np.array(m["batch_sizes"])
    colors = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
    for s, c in zip(m["series"], colors, strict=False):
        us = np.array([s["seconds"][b] * 1e6 for b in bs])
        left.semilogy(bs, us, "o-", color=c, ms=4, lw=1, label=s["label"])
        pw = np.array([b for b in bs if b & (b - 1) == 0])
        left.semilogy(pw, [s["seconds"][b] * 1e6 for b in pw], "*", color=c, mec="black", ms=11)
    left.set_xlabel("batch size B (stars: powers of two)")
    left.set_ylabel("µs per step")
    left.set_title("time per step against B", fontsize="medium")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize="small")
    powers = sorted({b for s in m["series"] for b in s["advantage"]})
    width = 0.8 / max(1, len(m["series"]))
    for i, (s, c) in enumerate(zip(m["series"], colors, strict=False)):
        x = np.arange(len(powers)) + (i - (len(m["series"]) - 1) / 2) * width
        right.bar(x, [100 * s["advantage"].get(b, np.nan) for b in powers], width, color=c, label=s["label"])
    right.axhspan(
        -100 * m["margin"], 100 * m["margin"], color="0.85", zorder=0, label=f"±{100 * m['margin']:g}%"
    )
    right.axhline(0, color="0.3", lw=0.8)
    right.set_xticks(range(len(powers)), [f"{b}\nvs {b - 1}, {b + 1}" for b in powers])
    right.set_ylabel("samples/s over the mean of the neighbours' − 1 (%)")
    right.set_title("the advantage of a power of two", fontsize="medium")
    right.grid(True, axis="y", alpha=0.3)
    right.legend(fontsize="small")
    return save(fig, "power_of_two", WIDE)


def section_power_of_two(m: dict[str, Any]) -> Section:
    parts = verdict_power_of_two(m)
    held = sum(parts.values())
    verdict = _overall(parts)
    advantages = [a for s in m["series"] for a in s["advantage"].values()]
    lo, hi = min(advantages), max(advantages)
    positive = sum(a > 0 for a in advantages)
    sizes = m["batch_sizes"]

    def power(b: int) -> bool:
        return b & (b - 1) == 0

    others = [b for b in sizes if not (power(b) or power(b - 1) or power(b + 1))]
    fit64 = m["series"][0]
    widest = max((x for x in m["series"] if x["kind"] == "loss_and_grad"), key=lambda x: x["width"])

    def per_sample(s: dict[str, Any], b: int) -> float:
        return s["seconds"][b] / b * 1e6

    def between(b: int) -> str:
        below = max((p for p in sizes if power(p) and p < b), default=None)
        above = min((p for p in sizes if power(p) and p > b), default=None)
        near = ", ".join(f"{p}: {fmt(per_sample(fit64, p))}" for p in (below, above) if p is not None)
        return f"B = {b}: {fmt(per_sample(fit64, b))} µs per sample ({near})"

    finding = (
        f"Across {len(advantages)} comparisons (each power of two against the mean of B − 1 and B + 1, "
        f"in {len(m['series'])} settings) a power of two gave between {100 * lo:+.1f}% and {100 * hi:+.1f}% "
        f"samples per second, {positive} of them above 0: "
        + (
            "no setting was consistently faster at the powers of two. "
            if not held
            else f"{held} of {len(parts)} settings were {100 * m['margin']:g}% or more faster at every "
            "power. "
        )
        + (
            f"Round sizes that are not powers of two, in fit at hidden {fit64['width']}: "
            + "; ".join(between(b) for b in others)
            + ". "
            if others
            else ""
        )
        + f"A likely reason: NumPy hands the matrix products to {m['blas']}, whose kernels compute "
        "small register blocks (a few to 16 elements a side, by data type and CPU) and finish a "
        "remainder with narrower kernels, so one more row costs about one row's work, not a new "
        f"block (measured, {widest['label']}: B + 1 took "
        + ", ".join(
            f"{100 * (widest['seconds'][b + 1] / widest['seconds'][b] - 1):+.1f}% at B = {b}"
            for b in sorted(widest["advantage"])
        )
        + " against one row's "
        + ", ".join(f"{100 / b:.1f}%" for b in sorted(widest["advantage"]))
        + "); NumPy allocates arrays to their exact size, with no power-of-two pages to fill. "
        "The rule of thumb comes from GPUs, where 32-thread warps and tensor-core tiles of 8 or 16 "
        "make multiples of 8 (and so powers of two) the efficient shapes."
    )
    powers = sorted(m["series"][0]["advantage"])
    compact = [[s["label"], *[s["advantage"][b] for b in powers]] for s in m["series"]]
    per_b = [[b, *[s["seconds"][b] * 1e6 for s in m["series"]], fit64["spread"][b]] for b in sizes]
    return Section(
        "power_of_two",
        "Batch sizes as powers of two: throughput against the neighbours",
        'From the notes (002): "*fun fact: batch sizes are generally in multiples of 2 due to memory '
        'optimizations.*" Measured on this CPU with NumPy ('
        f"{m['blas']}, {threads(m)} for BLAS): the seconds of one SGD step of `ds.fit` (its own "
        f"clock, median over {m['steps'] - 1} steps) and of the model's `loss_and_grad` alone, for "
        "one-hidden-layer MLPs on `digits` (float32, hidden 64 as `descend train digits --hidden 64`, "
        f"and a wider 512), at B = {', '.join(str(b) for b in sizes)}: every size side by side in each "
        f"of {m['rounds']} rounds, medians over rounds. A power of two's *advantage* is its samples per "
        "second over the mean of its two neighbours' − 1; that mean cancels the smooth rise of "
        "samples/s with B to first order, so a memory effect would show as a positive advantage. "
        f"Below {100 * m['margin']:g}% we count it as none.",
        verdict,
        finding,
        [
            (["setting", *[f"advantage of {b}" for b in powers]], compact),
            (
                ["B", *[f"µs per step: {s['label']}" for s in m["series"]], f"± {fit64['label']}"],
                per_b,
            ),
            _parts_table(parts),
        ],
        [
            f"{SCRIPT} --only power_of_two",
            "descend train digits --hidden 64 --optimizer sgd --lr 0.1 --batch-size 128 --epochs 3 "
            "--val-fraction 0",
            "descend train digits --hidden 64 --optimizer sgd --lr 0.1 --batch-size 129 --epochs 3 "
            "--val-fraction 0",
        ],
        [
            "The two `train` runs write each step's time to `metrics.csv` (column `time`); their median "
            "differences are the fit step's µs at hidden 64 and B = 128 and 129, up to the CLI's "
            "progress output. The ± column is the spread of that fit step over rounds (half the "
            "interquartile range over the median): an advantage smaller than it is noise. The load "
            f"average when this page was measured: {m['load']}.",
        ],
        summary=f"power of two vs neighbours: {100 * lo:+.1f}% to {100 * hi:+.1f}% samples/s "
        f"({positive} of {len(advantages)} above 0)",
    )


# ============================================================================ CLAIMS of this file

CLAIMS: dict[str, tuple[Callable[[], Any], Callable[..., Path], Callable[..., Section]]] = {
    "minibatch_hardware": (measure_hardware, draw_hardware, section_hardware),
    "sgd_data_size": (measure_data_size, draw_data_size, section_data_size),
    "adagrad_features": (measure_adagrad_features, draw_adagrad_features, section_adagrad_features),
    "power_of_two": (measure_power_of_two, draw_power_of_two, section_power_of_two),
}
