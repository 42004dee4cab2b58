"""What measuring costs: ``ds.Monitor`` inside ``fit`` against the same training without it,
and each instrument of ``ds.diagnose`` on its own.

Run: ``python -m benchmarks diagnose`` (``-- --rounds 7``). Writes the ``diagnose`` section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _common import DOC, alternate, machine, median, spread, versions, write_section
from sklearn.datasets import load_digits

import descend as ds

NAME = "diagnose"
#: the overhead the diagnose issue allows a monitor recording every 10 steps
TARGET = 0.10


def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return (X - X.mean(0)) / (X.std(0) + 1e-8), y


def training(model, X, y, callbacks, batch, epochs):
    def go():
        ds.fit(
            model,
            (X, y),
            optimizer="adam",
            batch_size=batch,
            epochs=epochs,
            callbacks=callbacks(),
            progress=False,
            seed=0,
        )

    return go


def monitor_rows(rounds: int) -> list[str]:
    X, y = digits()
    probe = (X[:512], y[:512])
    cases = [
        ("logistic (softmax), digits, B=32", ds.models.SoftmaxRegression(), 32),
        ("MLP 64-128-10, digits, B=32", ds.models.MLP(hidden=(128,), output="softmax"), 32),
        ("MLP 64-128-10, digits, B=256", ds.models.MLP(hidden=(128,), output="softmax"), 256),
    ]
    monitors = {
        "Monitor(every=10)": lambda: [ds.Monitor(every=10)],
        "Monitor(every=10, probe=512 rows)": lambda: [ds.Monitor(every=10, probe=probe)],
        "Monitor(every=10, probe, curvature_every=10)": lambda: [
            ds.Monitor(every=10, probe=probe, curvature_every=10)
        ],
        "Monitor(every=1)": lambda: [ds.Monitor(every=1)],
    }
    lines = [
        "| training | monitor | plain (s) | with monitor (s) | overhead | target | met | noise |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, model, batch in cases:
        fns = {"plain": training(model, X, y, lambda: [], batch, 3)}
        for name, make in monitors.items():
            fns[name] = training(model, X, y, make, batch, 3)
        samples = alternate(fns, rounds, min_time=0.0)
        base = median(samples["plain"])
        for name in monitors:
            t = median(samples[name])
            over = t / base - 1.0
            target = TARGET if name == "Monitor(every=10)" else None
            met = "" if target is None else ("yes" if over <= target else "no")
            noise = max(spread(samples["plain"]), spread(samples[name]))
            lines.append(
                f"| {label} | `{name}` | {base:.3f} | {t:.3f} | {over:+.1%} | "
                f"{'' if target is None else f'≤ {target:.0%}'} | {met} | {noise:.1%} |"
            )
        print(f"measured {label}", file=sys.stderr)
    return lines


def instrument_rows(rounds: int) -> list[str]:
    X, y = digits()
    model = ds.models.MLP(hidden=(32,), output="softmax", dtype="float64")
    run = ds.fit(model, (X, y), optimizer="adam", batch_size=64, epochs=3, progress=False, seed=0)
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        t0 = time.perf_counter()
        d = ds.diagnose(model, run.params, (X, y), optimizer="adam", lr=3e-3, seed=0)
        samples.setdefault("total", []).append(time.perf_counter() - t0)
        for k, v in d.timings.items():
            samples.setdefault(k, []).append(v)
    n = sum(v.size for v in run.params.values())
    lines = [
        f"`ds.diagnose` on the digits MLP 64-32-10 ({n:,} parameters, {len(X):,} rows, float64), "
        f"median of {rounds} calls:",
        "",
        "| instrument | seconds | share of the total |",
        "|---|---|---|",
    ]
    total = median(samples["total"])
    for k, v in samples.items():
        lines.append(f"| {k} | {median(v):.3f} | {median(v) / total:.0%} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args(argv)
    before = machine()
    monitor = monitor_rows(args.rounds)
    instruments = instrument_rows(args.rounds)
    command = "python -m benchmarks diagnose" + (f" -- {' '.join(argv)}" if argv else "")
    lines = [
        "## Diagnose: what measuring costs",
        "",
        f"Command: `{command}`. Machine: {before}. {versions('numpy', 'numba')}.",
        "",
        "### ds.Monitor inside fit",
        "",
        "Three epochs of `fit` (Adam, fit's default lr) with and without a monitor, alternating"
        f" round by round, medians of {args.rounds} rounds. The target is the diagnose issue's:"
        " a monitor recording every 10 steps costs at most 10%. A probe adds the unit statistics"
        " (a forward pass over the probe rows per record); curvature adds"
        " 20 Hessian-vector products per measurement.",
        "",
        *monitor,
        "",
        "### The instruments of ds.diagnose",
        "",
        *instruments,
    ]
    write_section(NAME, "\n".join(lines), args.doc)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
