"""Measured claims about optimizer behaviour: each experiment, its picture and its numbers.

Run from the repository root::

    .venv/bin/python docs/claims.py            # all claims: docs/claims/*.png, docs/claims.md, README's line
    .venv/bin/python docs/claims.py --only saddle zigzag   # some claims: pictures and printed numbers
    .venv/bin/python docs/claims.py --readme   # README's verdict line from docs/claims.md as it stands

Every number in ``docs/claims.md`` is written by this script from what it measured (seeded runs
of descend's public API); nothing there is edited by hand. The measurement functions take their
sizes as parameters so that ``tests/test_claims.py`` runs small versions of the same code and
asserts the direction of each claim.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import math
import os
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import descend as ds
from descend.lab.batching import BatchingResult, compare_batching, gradient_noise
from descend.lab.datasets import load
from descend.lab.lr_find import lr_find
from descend.lab.race import RaceEntry, RaceResult, race
from descend.schedules import LinearDecay
from descend.train.callbacks import Callback

HERE = Path(__file__).resolve().parent
PICTURES = HERE / "claims"
MARKDOWN = HERE / "claims.md"
README = HERE.parent / "README.md"
#: ends the README line that summarizes the page's verdicts (rewritten by a full run)
README_MARK = "<!-- verdicts: python docs/claims.py writes this line -->"
WIDE = (1200, 560)  # two panels side by side
SCRIPT = "python docs/claims.py"


# ------------------------------------------------------------------------------------- helpers


def fmt(value: Any) -> str:
    """A number as the tables show it: 4 significant digits, ints whole, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.4g}"
    return str(value)


def sign_changes(values: np.ndarray) -> int:
    """How often a sequence changes sign (exact zeros are skipped, not counted twice)."""
    s = np.sign(np.asarray(values, dtype=np.float64))
    s = s[s != 0]
    return int(np.count_nonzero(s[1:] != s[:-1]))


def distances(path: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Euclidean distance of every row of ``path`` from ``point``, scaled first so that the squares
    of coordinates near 1e-160 (where RMSprop goes) do not underflow to 0."""
    d = np.abs(np.asarray(path, dtype=np.float64) - point)
    top = d.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        scaled = np.where(top > 0, d / np.where(top > 0, top, 1.0), 0.0)
    return top[:, 0] * np.sqrt(np.sum(scaled * scaled, axis=1))


def settle_step(path: np.ndarray, minimum: np.ndarray, tol: float) -> int | None:
    """First step after which every iterate stays within ``tol`` of ``minimum`` (None: never)."""
    d = distances(path, minimum)
    outside = np.flatnonzero(d > tol)
    if not outside.size:
        return 0
    k = int(outside[-1]) + 1
    return k if k < len(d) else None


def loglog_slope(x: Any, y: Any) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    return float(np.polyfit(np.log(np.asarray(x, dtype=np.float64)), np.log(np.asarray(y)), 1)[0])


def new_figure(size: tuple[int, int]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, name: str, size: tuple[int, int]) -> Path:
    from descend.viz import save_png

    return save_png(fig, PICTURES / f"{name}.png", size=size)


def sub_race(r: RaceResult, entries: Sequence[RaceEntry]) -> RaceResult:
    return dataclasses.replace(r, entries=list(entries))


def entry_color(name: str) -> str:
    from descend.viz import optimizer_style

    return optimizer_style(name)["color"]


@dataclass
class Section:
    """One claim as claims.md shows it."""

    key: str
    title: str
    statement: str
    verdict: str  # "holds", "holds in part", "does not hold"
    finding: str  # one or two sentences with the measured numbers
    tables: list[tuple[list[str], list[list[Any]]]]
    commands: list[str]
    notes: list[str] = field(default_factory=list)
    summary: str = ""  # the key number(s) for the table at the top


# ========================================================================= 1. batch vs stochastic


def measure_batching(epochs: int = 10, seed: int = 0, batch_sizes: Sequence[int | None] = (None, 1, 32)):
    """Full-batch GD, SGD (B=1) and mini-batch SGD on least squares (``linear``), descend's defaults."""
    result = compare_batching("linear", batch_sizes=tuple(batch_sizes), epochs=epochs, seed=seed)
    rows = []
    for c in result.curves:
        d = np.diff(c.loss)
        rows.append(
            {
                "strategy": c.label,
                "batch_size": c.batch_size,
                "lr": c.lr,
                "updates": int(c.updates[-1]),
                "evaluations": len(c.loss),
                "roughness": c.roughness(),
                "share_rising": float(np.mean(d > 0)),
                "excess": float(c.loss[-1] - result.optimal_loss),
            }
        )
    return {"result": result, "rows": rows}


def verdict_batching(m: dict[str, Any]) -> bool:
    full = [r for r in m["rows"] if r["batch_size"] is None]
    rest = [r for r in m["rows"] if r["batch_size"] is not None]
    return all(r["roughness"] == 0.0 for r in full) and all(r["roughness"] > 0.0 for r in rest)


def draw_batching(m: dict[str, Any]) -> Path:
    from descend.viz import plot_batching

    fig = new_figure((900, 600))
    ax = fig.add_subplot()
    plot_batching(m["result"], "epochs", ax=ax)
    rough = ", ".join(f"{r['strategy']}: {r['roughness']:.3g}" for r in m["rows"])
    ax.set_title(f"least squares on `linear`: full-data loss after each evaluation\nroughness — {rough}")
    return save(fig, "batching", (900, 600))


def section_batching(m: dict[str, Any]) -> Section:
    rows = m["rows"]
    full = next(r for r in rows if r["batch_size"] is None)
    sgd = [r for r in rows if r["batch_size"] is not None]
    holds = verdict_batching(m)
    finding = (
        f"The full-data loss of full-batch GD never rose (roughness {fmt(full['roughness'])}); "
        + "; ".join(
            f"{r['strategy']} undid {100 * r['roughness']:.3g}% of its descent on the way and rose "
            f"at {100 * r['share_rising']:.3g}% of its evaluations"
            for r in sgd
        )
        + "."
    )
    return Section(
        "batching",
        "Full-batch gradient descent descends smoothly; SGD is jagged",
        "Batch gradient descent averages the gradient over every sample, so with a small enough step "
        "each update lowers the training loss: a smooth, monotone curve. Stochastic and mini-batch "
        "SGD follow the gradient of a few samples, which often points a little uphill for the full "
        "objective, so their full-data loss goes down jaggedly. Measured with "
        "`descend.lab.batching.compare_batching` on the `linear` least-squares data (2000 x 10, "
        "descend's default constant lr per batch size, 10 epochs, seed 0). *Roughness* is "
        "`BatchingCurve.roughness()`: the summed increases of the full-data loss divided by its "
        "summed decreases (0 for a monotone descent).",
        "holds" if holds else "does not hold",
        finding,
        [
            (
                [
                    "strategy",
                    "lr",
                    "updates",
                    "loss evaluations",
                    "roughness",
                    "share of rises",
                    "final excess loss",
                ],
                [
                    [
                        r["strategy"],
                        r["lr"],
                        r["updates"],
                        r["evaluations"],
                        r["roughness"],
                        r["share_rising"],
                        r["excess"],
                    ]
                    for r in rows
                ],
            )
        ],
        [
            f"{SCRIPT} --only batching",
            "descend compare-batching --data linear --batch-sizes full,1,32 --epochs 10 --seed 0",
        ],
        [
            "The full-data loss is evaluated once per update for full-batch GD (10 updates) and 20 "
            "times per epoch for the others; the CLI command runs the same experiment and prints the "
            "same roughness values.",
        ],
        summary="roughness: " + ", ".join(f"{r['strategy']} {fmt(r['roughness'])}" for r in rows),
    )


# =========================================================================== 2. gradient noise


def measure_gradient_noise(
    batch_sizes: Sequence[int] = (1, 4, 16, 64, 256), draws: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Mean squared distance of a mini-batch gradient from the full gradient, per batch size.

    Measured at the initial parameters of a linear regression on ``linear`` and compared with the
    exact value for sampling without replacement, ``sigma^2 / B * (n - B) / (n - 1)``, where
    ``sigma^2`` is the mean squared deviation of the n per-sample gradients (computed exactly).
    """
    data = load("linear", seed=seed)
    model = ds.models.LinearRegression(dtype="float64")
    params = model.init(np.random.default_rng([seed, 1]), data.X.shape[1], 1)
    noise = gradient_noise(model, params, data.X, data.y, tuple(batch_sizes), draws=draws, seed=seed)
    y = model.check_targets(data.y)
    n = len(y)

    def flat(g: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([v.ravel() for v in g.values()])

    full = flat(model.loss_and_grad(params, data.X, y)[1])
    sigma2 = float(
        np.mean(
            [
                np.sum((flat(model.loss_and_grad(params, data.X[i : i + 1], y[i : i + 1])[1]) - full) ** 2)
                for i in range(n)
            ]
        )
    )
    theory = {b: sigma2 / b * (n - b) / (n - 1) for b in batch_sizes}
    bs = np.array(list(noise), dtype=np.float64)
    return {
        "noise": noise,
        "theory": theory,
        "sigma2": sigma2,
        "n": n,
        "draws": draws,
        "slope": loglog_slope(bs, list(noise.values())),
        "ratio": noise[min(noise)] / noise[max(noise)],
        "theory_ratio": theory[min(theory)] / theory[max(theory)],
        "max_rel_dev": max(abs(noise[b] / theory[b] - 1) for b in noise),
    }


def verdict_gradient_noise(m: dict[str, Any]) -> bool:
    return -1.2 <= m["slope"] <= -0.8


def draw_gradient_noise(m: dict[str, Any]) -> Path:
    fig = new_figure((900, 600))
    ax = fig.add_subplot()
    b = np.array(list(m["noise"]), dtype=np.float64)
    ax.loglog(
        b, list(m["noise"].values()), "o", ms=8, color="#1f77b4", label=f"measured ({m['draws']} draws each)"
    )
    grid = np.geomspace(b.min(), b.max(), 100)
    exact = m["sigma2"] / grid * (m["n"] - grid) / (m["n"] - 1)
    ax.loglog(grid, exact, "-", color="#d62728", lw=1.5, label="exact: σ²/B · (n−B)/(n−1)")
    ax.loglog(grid, m["sigma2"] / grid, ":", color="gray", lw=1.2, label="σ²/B (sampling with replacement)")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("E ‖g_B − ∇L‖²  (mean squared gradient noise)")
    ax.set_title(
        f"gradient noise of SGD on `linear` least squares: log-log slope {m['slope']:.3f}, "
        f"noise(1)/noise(256) = {m['ratio']:.3g}",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return save(fig, "gradient_noise", (900, 600))


def section_gradient_noise(m: dict[str, Any]) -> Section:
    holds = verdict_gradient_noise(m)
    return Section(
        "gradient_noise",
        "SGD's gradient noise shrinks like 1/B",
        "A mini-batch gradient is an average of B per-sample gradients, so its squared distance from "
        "the full gradient falls like 1/B (exactly σ²/B · (n−B)/(n−1) when the batch is drawn "
        "without replacement from n samples). Measured with `descend.lab.batching.gradient_noise` "
        f"({m['draws']} random batches per size) for a linear regression on `linear` (n = {m['n']}) "
        "at its initial parameters, against the exact value from the per-sample gradients.",
        "holds" if holds else "does not hold",
        f"The fitted log-log slope is {fmt(m['slope'])} (1/B is −1); noise(1)/noise(256) = "
        f"{fmt(m['ratio'])} against the exact {fmt(m['theory_ratio'])} (a little above 256 from the "
        f"finite-population factor); every measured value is within {100 * m['max_rel_dev']:.3g}% "
        "of the exact one.",
        [
            (
                ["batch size B", "measured E‖g_B − ∇L‖²", "exact", "measured / exact"],
                [[b, m["noise"][b], m["theory"][b], m["noise"][b] / m["theory"][b]] for b in m["noise"]],
            ),
            (
                ["fitted log-log slope", "noise(1) / noise(256)", "exact ratio", "σ² (per-sample)"],
                [[m["slope"], m["ratio"], m["theory_ratio"], m["sigma2"]]],
            ),
        ],
        [f"{SCRIPT} --only gradient_noise", "# no CLI command measures gradient noise"],
        summary=f"slope {fmt(m['slope'])}, noise(1)/noise(256) = {fmt(m['ratio'])}",
    )


# ============================================================================== 3. saddle point


def first_escape(path: np.ndarray, threshold: float) -> int | None:
    hit = np.flatnonzero(np.abs(np.asarray(path)[:, 1]) > threshold)
    return int(hit[0]) if hit.size else None


def measure_saddle(
    lr: float = 0.01, steps: int = 300, noise: float = 1.0, seeds: int = 50, threshold: float = 1.0
) -> dict[str, Any]:
    """Plain GD, GD with Gaussian gradient noise (``seeds`` seeds) and momentum on ``x^2 - y^2``."""
    f = ds.functions.get("saddle")
    plain = race(f, ["sgd", "momentum"], lrs=lr, steps=steps)
    noisy = [race(f, ["sgd"], lrs=lr, steps=steps, noise=noise, seed=s).entries[0] for s in range(seeds)]
    gd, mom = plain.entries
    escapes = [first_escape(e.path, threshold) for e in noisy]
    escaped = [k for k in escapes if k is not None]
    y0 = abs(float(f.start[1]))
    return {
        "race": plain,
        "noisy": noisy,
        "lr": lr,
        "steps": steps,
        "noise": noise,
        "seeds": seeds,
        "threshold": threshold,
        "start": f.start,
        "gd_escape": first_escape(gd.path, threshold),
        "gd_escape_theory": math.log(threshold / y0) / math.log(1 + 2 * lr),
        "gd_distance": float(np.linalg.norm(gd.path[-1])),
        "gd_loss": gd.final_loss,
        "momentum_escape": first_escape(mom.path, threshold),
        "momentum_distance": float(np.linalg.norm(mom.path[-1])),
        "momentum_loss": mom.final_loss,
        "noisy_share": len(escaped) / seeds,
        "noisy_median": float(np.median(escaped)) if escaped else None,
        "noisy_range": (min(escaped), max(escaped)) if escaped else None,
        "noisy_distance_median": float(np.median([np.linalg.norm(e.path[-1]) for e in noisy])),
    }


def verdict_saddle(m: dict[str, Any]) -> bool:
    return m["gd_distance"] < 0.1 and m["momentum_escape"] is not None and m["noisy_share"] > 0.5


def draw_saddle(m: dict[str, Any]) -> Path:
    from descend.viz import plot_contour

    r = m["race"]
    noisy0 = dataclasses.replace(m["noisy"][0], label=f"sgd + gradient noise σ={m['noise']:g} (seed 0)")
    shown = sub_race(r, [*r.entries, noisy0])
    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2)
    drawn = plot_contour(
        shown, left, resolution=150, title=f"x² − y² from {tuple(m['start'].tolist())}, lr={m['lr']:g}"
    )
    noisy_color = drawn.paths[-1].get_color()
    k = np.arange(m["steps"] + 1)
    Y = np.abs(np.array([e.path[:, 1] for e in m["noisy"]]))
    lo, med, hi = np.quantile(Y, [0.1, 0.5, 0.9], axis=0)
    right.fill_between(
        k,
        lo,
        hi,
        color=noisy_color,
        alpha=0.25,
        lw=0,
        label=f"sgd + noise σ={m['noise']:g}: 10–90% of {m['seeds']} seeds",
    )
    right.semilogy(k, med, color=noisy_color, lw=2, label="sgd + noise: median")
    right.semilogy(k, Y[0], color=noisy_color, lw=0.7, alpha=0.8, label="sgd + noise: seed 0")
    for e in r.entries:
        right.semilogy(
            k[: len(e.path)], np.abs(e.path[:, 1]), color=entry_color(e.optimizer), lw=2, label=e.label
        )
    right.axhline(m["threshold"], color="black", ls="--", lw=1, label=f"escaped: |y| > {m['threshold']:g}")
    right.set_ylim(1e-5, 1e3)
    right.set_xlim(0, m["steps"])
    right.set_xlabel("step k")
    right.set_ylabel("|y_k| (distance from the stable manifold y = 0)")
    right.set_title("escape along the descending direction", fontsize="medium")
    right.grid(True, which="major", alpha=0.3)
    right.legend(fontsize="small", loc="lower right")
    return save(fig, "saddle", WIDE)


def section_saddle(m: dict[str, Any]) -> Section:
    holds = verdict_saddle(m)
    steps, thr = m["steps"], m["threshold"]
    lo, hi = m["noisy_range"] or (None, None)
    return Section(
        "saddle",
        "GD stalls at a saddle point; gradient noise or momentum escapes",
        "Near a saddle the gradient is tiny, so plain gradient descent started close to the stable "
        "manifold crawls towards the saddle and then takes a long time to leave it: a plateau. "
        "Gradient noise kicks the iterate off the stable manifold, and momentum accumulates the small "
        "push along the descending direction, so both leave sooner. Measured on descend's `saddle` "
        f"f(x, y) = x² − y² from its default start (1, 1e-4), lr = {m['lr']:g} for all, {steps} steps; "
        f"*escaped* means |y| > {thr:g} for the first time.",
        "holds" if holds else "does not hold",
        f"After {steps} steps plain GD is still {fmt(m['gd_distance'])} from the saddle (it would need "
        f"about {m['gd_escape_theory']:.0f} steps: ln(1e4)/ln(1 + 2 lr)); momentum (0.9) escaped at "
        f"step {fmt(m['momentum_escape'])}; GD with gradient noise σ = {m['noise']:g} escaped in "
        f"{100 * m['noisy_share']:.3g}% of {m['seeds']} seeds, at step {fmt(m['noisy_median'])} "
        f"(median; range {fmt(lo)}–{fmt(hi)}).",
        [
            (
                [
                    "run",
                    f"first step with |y| > {thr:g}",
                    f"distance from the saddle at step {steps}",
                    f"loss at step {steps}",
                ],
                [
                    [f"GD (sgd, lr={m['lr']:g})", m["gd_escape"], m["gd_distance"], m["gd_loss"]],
                    [
                        f"momentum 0.9 (lr={m['lr']:g})",
                        m["momentum_escape"],
                        m["momentum_distance"],
                        m["momentum_loss"],
                    ],
                    [
                        f"GD + noise σ={m['noise']:g}, median of {m['seeds']} seeds",
                        m["noisy_median"],
                        m["noisy_distance_median"],
                        None,
                    ],
                ],
            ),
            (
                ["GD: steps to escape (exact, no noise)", f"noisy GD: share escaped within {steps} steps"],
                [[m["gd_escape_theory"], m["noisy_share"]]],
            ),
        ],
        [
            f"{SCRIPT} --only saddle",
            f"descend race saddle --optimizers sgd,momentum --lr {m['lr']:g} --steps {steps}",
            f"descend race saddle --optimizers sgd --lr {m['lr']:g} --steps {steps} "
            f"--noise {m['noise']:g} --seed 0",
        ],
        [
            "The saddle is unbounded below, so after escaping the loss keeps falling without limit "
            "(momentum's huge distance and very negative loss are that, not a divergence).",
        ],
        summary=f"GD {fmt(m['gd_distance'])} from the saddle after {steps} steps; momentum escapes at "
        f"step {fmt(m['momentum_escape'])}; noisy GD at {fmt(m['noisy_median'])} (median)",
    )


# ========================================================================= 4. zig-zag and momentum


def measure_zigzag(kappa: float = 50.0, steps: int = 300, tol: float = 1e-3) -> dict[str, Any]:
    """GD at its best constant lr 2/(L+mu) vs heavy-ball momentum with the classic tuning."""
    f = ds.functions.get("quadratic", kappa=kappa)
    lam = np.asarray(f.eigenvalues)
    L, mu = float(lam.max()), float(lam.min())
    lr_gd = 2.0 / (L + mu)
    lr_hb = (2.0 / (math.sqrt(L) + math.sqrt(mu))) ** 2
    beta = ((math.sqrt(L / mu) - 1) / (math.sqrt(L / mu) + 1)) ** 2
    r = race(
        f,
        ["sgd", "momentum"],
        lrs={"sgd": lr_gd, "momentum": lr_hb},
        options={"momentum": {"momentum": beta}},
        steps=steps,
        tol=tol,
    )
    steep = int(np.argmax(lam))
    rows = []
    for e, rate in zip(r.entries, ((L - mu) / (L + mu), math.sqrt(beta)), strict=True):
        k = e.steps_to_tol
        upto = e.path[: (k if k is not None else steps) + 1]
        rows.append(
            {
                "label": e.label,
                "steps_to_tol": k,
                "flips": sign_changes(upto[:, steep]),
                "rate": rate,
                "peak_loss": float(np.max(e.losses)),
                "final_loss": e.final_loss,
                "final_distance": e.distance,
            }
        )
    return {
        "race": r,
        "kappa": kappa,
        "L": L,
        "mu": mu,
        "lr_gd": lr_gd,
        "lr_hb": lr_hb,
        "beta": beta,
        "start_loss": float(r.entries[0].losses[0]),
        "tol": tol,
        "steps": steps,
        "gd": rows[0],
        "momentum": rows[1],
    }


def verdict_zigzag(m: dict[str, Any]) -> tuple[bool, bool]:
    gd, mom = m["gd"], m["momentum"]
    zigzag = gd["steps_to_tol"] is not None and gd["flips"] >= 0.9 * gd["steps_to_tol"]
    faster = mom["steps_to_tol"] is not None and (
        gd["steps_to_tol"] is None or mom["steps_to_tol"] < gd["steps_to_tol"] / 2
    )
    return zigzag, faster


def draw_zigzag(m: dict[str, Any]) -> Path:
    from descend.viz import race_figure

    fig = race_figure(m["race"], size=WIDE, resolution=200)
    gd, mom = m["gd"], m["momentum"]
    fig.suptitle(
        f"quadratic κ={m['kappa']:g} from (1, 1): GD at lr=2/(L+μ) zig-zags ({gd['flips']} sign changes, "
        f"{fmt(gd['steps_to_tol'])} steps to {m['tol']:g}); "
        f"momentum, classic tuning: {fmt(mom['steps_to_tol'])} steps"
    )
    return save(fig, "zigzag", WIDE)


def section_zigzag(m: dict[str, Any]) -> Section:
    zigzag, faster = verdict_zigzag(m)
    gd, mom = m["gd"], m["momentum"]
    verdict = "holds" if zigzag and faster else ("holds in part" if zigzag or faster else "does not hold")
    return Section(
        "zigzag",
        "Zig-zag on an ill-conditioned quadratic, and momentum fixing it",
        "When the loss is much steeper in one direction than another, the largest stable step for the "
        "steep direction is tiny for the shallow one: gradient descent jitters across the steep "
        "direction (its steep coordinate changes sign every step) while creeping along the shallow one. "
        "Momentum accumulates the consistent shallow-direction gradient and reaches the minimum in far "
        f"fewer steps. Measured on descend's `quadratic` with κ = {m['kappa']:g} "
        f"(f = ½(x² + {m['kappa']:g} y²)) "
        f"from (1, 1): GD at its best constant lr 2/(L+μ) = {m['lr_gd']:.4g}; heavy-ball momentum with the "
        f"classic tuning (not tuned by search): lr = (2/(√L+√μ))² = {m['lr_hb']:.4g}, momentum = "
        f"((√κ−1)/(√κ+1))² = {m['beta']:.4g}. *Steps to tol*: first step within {m['tol']:g} of the minimum.",
        verdict,
        f"GD's steep coordinate changed sign {gd['flips']} times in its {fmt(gd['steps_to_tol'])} steps to "
        f"tol (a zig-zag on every step); momentum needed {fmt(mom['steps_to_tol'])} steps "
        f"({gd['steps_to_tol'] / mom['steps_to_tol']:.3g}x fewer). Its steep coordinate changed sign "
        f"{mom['flips']} times on the way"
        + (
            ": with the classic tuning both directions contract at the same rate √momentum and oscillate, "
            "so momentum removes the slowness, not the sign changes."
            if mom["steps_to_tol"] and mom["flips"] >= mom["steps_to_tol"] / 2
            else "."
        ),
        [
            (
                [
                    "optimizer",
                    "steps to tol",
                    "sign changes of the steep coordinate",
                    "contraction per step (theory)",
                    f"largest loss on the way (start: {fmt(m['start_loss'])})",
                    f"loss after {m['steps']} steps",
                    f"distance after {m['steps']} steps",
                ],
                [
                    [
                        r["label"],
                        r["steps_to_tol"],
                        r["flips"],
                        r["rate"],
                        r["peak_loss"],
                        r["final_loss"],
                        r["final_distance"],
                    ]
                    for r in (gd, mom)
                ],
            )
        ],
        [
            f"{SCRIPT} --only zigzag",
            f"descend race quadratic:kappa={m['kappa']:g} --optimizers sgd,momentum "
            f"--lr sgd={m['lr_gd']:.6g},momentum={m['lr_hb']:.6g} --set momentum.momentum={m['beta']:.6g} "
            f"--steps {m['steps']}",
        ],
        [
            "The race command's *steps to 0.001* column counts the first step within 0.001 of the "
            "minimum, the same rule as the table above when tol = 0.001.",
        ],
        summary=f"GD {fmt(gd['steps_to_tol'])} steps, {gd['flips']} sign flips; "
        f"momentum {fmt(mom['steps_to_tol'])} steps",
    )


# ================================================================ 5./6. overshoot and bounces


def measure_overshoot(
    kappa: float = 10.0, lr: float = 0.05, steps: int = 300, tol: float = 1e-3
) -> dict[str, Any]:
    """GD, heavy-ball momentum and Nesterov (momentum 0.9, same lr < 1/L) on a quadratic."""
    f = ds.functions.get("quadratic", kappa=kappa)
    r = race(f, ["sgd", "momentum", "nesterov"], lrs=lr, steps=steps, tol=tol)
    x0 = np.asarray(f.start)
    minimum = f.minima[0]
    rows = {}
    for e in r.entries:
        rel = (e.path - minimum) * np.sign(x0 - minimum)  # > 0 on the start's side of the minimum
        settle = settle_step(e.path, minimum, tol)
        upto = e.path[: (settle if settle is not None else steps) + 1]
        rows[e.optimizer] = {
            "label": e.label,
            "overshoot_x": float(max(0.0, -rel[:, 0].min())),
            "overshoot_y": float(max(0.0, -rel[:, 1].min())),
            "flips_x": sign_changes(upto[:, 0] - minimum[0]),
            "settle": settle,
            "first_within": e.steps_to_tol,
        }
    return {
        "race": r,
        "kappa": kappa,
        "lr": lr,
        "L": float(np.max(f.eigenvalues)),
        "steps": steps,
        "tol": tol,
        "rows": rows,
    }


def verdict_overshoot(m: dict[str, Any]) -> bool:
    gd, mom = m["rows"]["sgd"], m["rows"]["momentum"]
    return (
        gd["overshoot_x"] == 0.0
        and gd["overshoot_y"] == 0.0
        and mom["overshoot_x"] > 0.1
        and mom["flips_x"] >= 2
    )


def verdict_nesterov(m: dict[str, Any]) -> bool:
    mom, nag = m["rows"]["momentum"], m["rows"]["nesterov"]
    return nag["overshoot_x"] < mom["overshoot_x"] and nag["flips_x"] <= mom["flips_x"]


def _draw_overshoot(m: dict[str, Any], names: Sequence[str], name: str, title: str) -> Path:
    from descend.viz import plot_contour

    r = m["race"]
    entries = [e for e in r.entries if e.optimizer in names]
    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2)
    plot_contour(
        sub_race(r, entries),
        left,
        resolution=200,
        title=f"quadratic κ={m['kappa']:g} from (1, 1), lr={m['lr']:g}",
    )
    for e in entries:
        row = m["rows"][e.optimizer]
        right.plot(
            e.path[:, 0],
            color=entry_color(e.optimizer),
            lw=1.8,
            label=f"{e.label}: overshoot {row['overshoot_x']:.3g}, settles at step {fmt(row['settle'])}",
        )
        k = int(np.argmin(e.path[:, 0]))
        if row["overshoot_x"] > 0:
            right.annotate(
                f"−{row['overshoot_x']:.3g}",
                (k, e.path[k, 0]),
                xytext=(6, -12),
                textcoords="offset points",
                color=entry_color(e.optimizer),
                fontsize=9,
            )
    right.axhline(0.0, color="black", lw=0.8)
    right.set_xlim(0, max(60, max((m["rows"][n]["settle"] or m["steps"]) for n in names) + 10))
    right.set_xlabel("step k")
    right.set_ylabel("x_k (shallow coordinate; the minimum is at 0)")
    right.set_title(title, fontsize="medium")
    right.grid(True, alpha=0.3)
    right.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    return save(fig, name, WIDE)


def draw_overshoot(m: dict[str, Any]) -> Path:
    return _draw_overshoot(
        m, ("sgd", "momentum"), "momentum_overshoot", "GD creeps in; momentum overshoots and oscillates"
    )


def draw_nesterov(m: dict[str, Any]) -> Path:
    return _draw_overshoot(
        m, ("momentum", "nesterov"), "nesterov_bounces", "same lr and momentum: Nesterov bounces less"
    )


def _overshoot_table(m: dict[str, Any], names: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    return (
        [
            "optimizer",
            "largest overshoot past the minimum (shallow x)",
            "same, steep y",
            "sign changes of x before settling",
            f"settles within {m['tol']:g} at step",
            f"first step within {m['tol']:g}",
        ],
        [
            [
                m["rows"][n]["label"],
                m["rows"][n]["overshoot_x"],
                m["rows"][n]["overshoot_y"],
                m["rows"][n]["flips_x"],
                m["rows"][n]["settle"],
                m["rows"][n]["first_within"],
            ]
            for n in names
        ],
    )


def _overshoot_intro(m: dict[str, Any]) -> str:
    return (
        f"Measured on descend's `quadratic` (κ = {m['kappa']:g}: f = ½(x² + {m['kappa']:g} y²), "
        f"L = {m['L']:g}) "
        f"from (1, 1) with lr = {m['lr']:g} < 1/L for all and momentum 0.9 (PyTorch's heavy ball for "
        "`momentum`, its Nesterov form for `nesterov`). *Overshoot*: how far the path went past the "
        "minimum, away from the start's side, in units of the start's distance (1 per coordinate); "
        f"*settles*: first step after which the path stays within {m['tol']:g} of the minimum (the race "
        "table's *steps to tol* is the first step within it, the last column)."
    )


def section_overshoot(m: dict[str, Any]) -> Section:
    gd, mom = m["rows"]["sgd"], m["rows"]["momentum"]
    holds = verdict_overshoot(m)
    return Section(
        "momentum_overshoot",
        "Momentum overshoots the minimum and oscillates before settling",
        "Momentum keeps the velocity it built up on the way down, so it runs past the minimum, turns "
        'back, and oscillates around it before settling ("unstable before settling down, oscillates '
        "around minima\"). Plain gradient descent with lr < 1/L multiplies every coordinate's distance "
        "by a factor in (0, 1) each step, so it never overshoots. " + _overshoot_intro(m),
        "holds" if holds else "does not hold",
        f"GD never crossed the minimum (overshoot {fmt(gd['overshoot_x'])}); momentum went "
        f"{fmt(mom['overshoot_x'])} past it along the shallow direction ({fmt(mom['overshoot_y'])} along "
        f"the steep one), crossed it {mom['flips_x']} times along x and settled at step "
        f"{fmt(mom['settle'])} (GD: step {fmt(gd['settle'])}).",
        [_overshoot_table(m, ("sgd", "momentum"))],
        [
            f"{SCRIPT} --only momentum_overshoot",
            f"descend race quadratic --optimizers sgd,momentum,nesterov --lr {m['lr']:g} "
            f"--steps {m['steps']}",
        ],
        [
            "With these settings momentum is *slower* to settle than GD: the overshoot is the price of "
            "momentum 0.9 at a small lr (the classic tuning of claim 4 is what makes it fast).",
        ]
        if (mom["settle"] or 10**9) > (gd["settle"] or 10**9)
        else [],
        summary=f"GD overshoot {fmt(gd['overshoot_x'])}; "
        f"momentum {fmt(mom['overshoot_x'])}, {mom['flips_x']} crossings",
    )


def section_nesterov(m: dict[str, Any]) -> Section:
    mom, nag = m["rows"]["momentum"], m["rows"]["nesterov"]
    holds = verdict_nesterov(m)
    return Section(
        "nesterov_bounces",
        "Nesterov momentum bounces less than heavy-ball momentum",
        "Nesterov's method evaluates the gradient where the velocity is about to carry the iterate, so "
        "it brakes before the turn: smaller bounces around the minimum than heavy-ball momentum with the "
        "same lr and momentum coefficient. Same runs as the previous claim. " + _overshoot_intro(m),
        "holds" if holds else "does not hold",
        f"Nesterov's largest overshoot along x was {fmt(nag['overshoot_x'])} against momentum's "
        f"{fmt(mom['overshoot_x'])} ({nag['overshoot_x'] / mom['overshoot_x']:.3g}x), along y "
        f"{fmt(nag['overshoot_y'])} against {fmt(mom['overshoot_y'])}; it crossed the minimum "
        f"{nag['flips_x']} times before settling (momentum {mom['flips_x']}) and settled at step "
        f"{fmt(nag['settle'])} (momentum {fmt(mom['settle'])}).",
        [_overshoot_table(m, ("momentum", "nesterov"))],
        [
            f"{SCRIPT} --only nesterov_bounces",
            f"descend race quadratic --optimizers sgd,momentum,nesterov --lr {m['lr']:g} "
            f"--steps {m['steps']}",
        ],
        summary=f"overshoot {fmt(nag['overshoot_x'])} vs {fmt(mom['overshoot_x'])}; "
        f"settles at {fmt(nag['settle'])} vs {fmt(mom['settle'])}",
    )


# ================================================================== 7. AdaGrad vs RMSprop rates


def measure_adaptive(
    lr: float = 0.01,
    steps: int = 3000,
    noises: Sequence[float] = (1.0, 0.0),
    seed: int = 0,
    kappa: float = 10.0,
) -> dict[str, Any]:
    """Effective per-coordinate step ``|dx| / |g|`` of AdaGrad and RMSprop over time on a quadratic.

    The gradients are the ones the optimizer saw (noise included), read from ``minimize``'s
    callback; the last step's value is checked against ``lr / (sqrt(state) + eps)`` from the
    final optimizer state (``state["s"]`` for AdaGrad, ``state["v"]`` for RMSprop).
    """
    f = ds.functions.get("quadratic", kappa=kappa)
    shallow = int(np.argmin(f.eigenvalues))
    minimum = f.minima[0]
    runs = []
    for sigma in noises:
        for name, buffer in (("adagrad", "s"), ("rmsprop", "v")):
            grads: list[np.ndarray] = []
            res = ds.minimize(
                f,
                f.start,
                optimizer=name,
                lr=lr,
                max_steps=steps,
                tol=None,
                noise=sigma,
                seed=seed,
                record_path=True,
                callback=lambda info, grads=grads: grads.append(np.array(info["grad"])),
            )
            path, G = res.history.path, np.array(grads)
            with np.errstate(divide="ignore", invalid="ignore"):
                eff = np.abs(np.diff(path, axis=0)) / np.abs(G)  # eff[k - 1]: step k
            from_state = lr / (np.sqrt(res.state[buffer]) + res.optimizer.eps)
            dist = distances(path, minimum)
            e = eff[:, shallow]
            ks = np.arange(1, steps + 1)
            tail = ks >= min(100, steps // 2)
            at = {k: float(e[k - 1]) for k in (10, 100, 1000, steps) if k <= steps}
            runs.append(
                {
                    "optimizer": name,
                    "noise": sigma,
                    "eff": eff,
                    "dist": dist,
                    "at": at,
                    "ratio_1000_10": at[1000] / at[10] if 1000 in at else None,
                    "slope": loglog_slope(ks[tail], e[tail]),
                    "spread": float(np.nanmax(e[9:]) / np.nanmin(e[9:])),
                    "peak": float(np.nanmax(e[9:])),
                    "closest": float(np.min(dist)),
                    "peak_step": int(np.nanargmax(e[9:])) + 10,
                    "state_check": float(np.max(np.abs(eff[-1] / from_state - 1))),
                    "dist_1000": float(dist[min(1000, steps)]),
                    "dist_tail": float(np.mean(dist[-max(1, steps // 10) :])),
                }
            )
    return {
        "runs": runs,
        "lr": lr,
        "steps": steps,
        "kappa": kappa,
        "seed": seed,
        "shallow": shallow,
        "curvature": float(f.eigenvalues[shallow]),
    }


def _run(m: dict[str, Any], name: str, noise: float) -> dict[str, Any]:
    return next(r for r in m["runs"] if r["optimizer"] == name and r["noise"] == noise)


def verdict_adaptive(m: dict[str, Any]) -> dict[float, dict[str, bool]]:
    """Per noise level, the three parts of the claim: AdaGrad's effective lr falls like 1/sqrt(t)
    (log-log slope over k >= 100 in [-0.65, -0.35]), AdaGrad stalls (its mean final distance is
    over 3x RMSprop's) and RMSprop's effective lr stays (within a factor 10 from step 10 on)."""
    out = {}
    for noise in sorted({r["noise"] for r in m["runs"]}, reverse=True):
        a, r = _run(m, "adagrad", noise), _run(m, "rmsprop", noise)
        out[noise] = {
            "adagrad_like_sqrt": -0.65 <= a["slope"] <= -0.35,
            "adagrad_stalls": a["dist_tail"] > 3 * r["dist_tail"],
            "rmsprop_stays": r["spread"] < 10,
        }
    return out


def draw_adaptive(m: dict[str, Any]) -> Path:
    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2)
    ks = np.arange(1, m["steps"] + 1)
    for r in m["runs"]:
        style = "-" if r["noise"] > 0 else "--"
        label = f"{r['optimizer']}, " + (f"gradient noise σ={r['noise']:g}" if r["noise"] > 0 else "no noise")
        color = entry_color(r["optimizer"])
        left.loglog(ks, r["eff"][:, m["shallow"]], style, color=color, lw=1.3, label=label)
        right.loglog(np.arange(len(r["dist"])), r["dist"], style, color=color, lw=1.2, label=label)
    a = _run(m, "adagrad", max(r["noise"] for r in m["runs"]))
    ref = a["at"][10] * np.sqrt(10 / ks)
    left.loglog(ks, ref, ":", color="black", lw=1.2, label="∝ 1/√k")
    left.set_xlabel("step k")
    left.set_ylabel("effective lr of the shallow coordinate |Δx| / |g|")
    left.set_title(f"effective step size, lr={m['lr']:g}", fontsize="medium")
    right.set_ylim(1e-8, 3)  # noise-free RMSprop comes within 1e-160 of the minimum for a while
    right.set_xlabel("step k")
    right.set_ylabel("distance to the minimum (clipped at 1e-8)")
    right.set_title(f"quadratic κ={m['kappa']:g} from (1, 1)", fontsize="medium")
    for ax in (left, right):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    return save(fig, "adagrad_rmsprop", WIDE)


def section_adaptive(m: dict[str, Any]) -> Section:
    v = verdict_adaptive(m)
    noisy = max(v)
    a, r = _run(m, "adagrad", noisy), _run(m, "rmsprop", noisy)
    a0, r0 = _run(m, "adagrad", 0.0), _run(m, "rmsprop", 0.0)
    ok = {noise: all(c.values()) for noise, c in v.items()}
    verdict = "holds" if all(ok.values()) else ("holds in part" if any(ok.values()) else "does not hold")
    steps = m["steps"]
    rows = [
        [
            x["optimizer"],
            x["noise"],
            x["at"][10],
            x["at"][100],
            x["at"].get(1000),
            x["at"][steps],
            x["ratio_1000_10"],
            x["slope"],
            x["spread"],
            x["dist_1000"],
            x["dist_tail"],
            x["state_check"],
        ]
        for x in m["runs"]
    ]
    names = {
        "adagrad_like_sqrt": "AdaGrad's rate falls like 1/√t (slope in [−0.65, −0.35])",
        "adagrad_stalls": "AdaGrad stalls (final distance > 3x RMSprop's)",
        "rmsprop_stays": "RMSprop's rate stays (within 10x from step 10)",
    }
    check_rows = [[names[k]] + [v[noise][k] for noise in v] for k in names]
    grew = r0["spread"] >= 10 and r0["at"][steps] > r0["at"][10]
    return Section(
        "adagrad_rmsprop",
        "AdaGrad's effective learning rate decays and it stalls; RMSprop's does not",
        "AdaGrad divides the lr by the root of the *sum* of all past squared gradients, which only grows: "
        "while the gradients stay of the same size its effective step falls like 1/√t and progress "
        "stalls. RMSprop divides by the root of a moving *average*, which forgets old gradients, so its "
        "effective step stays. Measured on descend's `quadratic` (κ = "
        f"{m['kappa']:g}) from (1, 1), lr = {m['lr']:g} for both, {steps} steps, with Gaussian gradient "
        f"noise σ = {noisy:g} (a stand-in for mini-batch noise; seed {m['seed']}) and without. The effective "
        "lr of a step is |Δx|/|g| for the shallow coordinate, from the path and the gradients the "
        "optimizer saw; at the last step it equals lr/(√s + eps) and lr/(√v + eps) read from the final "
        '`state["s"]` / `state["v"]` (last column of the first table: largest relative difference). '
        "The second table gives the three parts of the claim per setting.",
        verdict,
        f"With noise AdaGrad's effective lr fell from {fmt(a['at'][10])} at step 10 to "
        f"{fmt(a['at'][1000])} at step 1000 ({fmt(a['ratio_1000_10'])}x; log-log slope {fmt(a['slope'])}, "
        "1/√t is −0.5) and it "
        f"was still {fmt(a['dist_tail'])} from the minimum at the end, while RMSprop's stayed within a "
        f"factor {fmt(r['spread'])} (slope {fmt(r['slope'])}) and it sat at {fmt(r['dist_tail'])}, its noise "
        f"floor. Without noise AdaGrad's rate fell more slowly ({fmt(a0['ratio_1000_10'])}x by step 1000, "
        f"slope {fmt(a0['slope'])}: its gradients shrink as it moves) and it was still "
        f"{fmt(a0['dist_tail'])} away at the end (RMSprop {fmt(r0['dist_tail'])})"
        + (
            f"; RMSprop's rate did not stay either: it grew from {fmt(r0['at'][10])} at step 10 to a peak "
            f"of {fmt(r0['peak'])} at step {r0['peak_step']} as its gradients shrank (effective lr x "
            f"curvature = {fmt(r0['peak'] * m['curvature'])}; above 2 a step on a quadratic overshoots and "
            "grows), which threw the iterate back out from "
            f"{fmt(r0['closest'])} of the minimum; it ends bouncing at "
            f"effective lr x curvature = {fmt(r0['at'][steps] * m['curvature'])}, the edge of stability."
            if grew
            else "."
        ),
        [
            (
                [
                    "optimizer",
                    "noise σ",
                    "eff. lr @10",
                    "@100",
                    "@1000",
                    f"@{steps}",
                    "@1000 / @10",
                    "log-log slope (k ≥ 100)",
                    "max / min from step 10",
                    "distance @1000",
                    f"mean distance, last {steps // 10} steps",
                    "rel. diff. vs state",
                ],
                rows,
            ),
            (["part of the claim"] + [f"noise σ = {noise:g}" for noise in v], check_rows),
        ],
        [
            f"{SCRIPT} --only adagrad_rmsprop",
            f"descend race quadratic --optimizers adagrad,rmsprop --lr {m['lr']:g} --steps {steps} "
            f"--noise {noisy:g} --seed {m['seed']}",
            f"descend race quadratic --optimizers adagrad,rmsprop --lr {m['lr']:g} --steps {steps}",
        ],
        [
            "The race commands reproduce the paths and distances; the effective learning rates are "
            "computed only by the script.",
        ],
        summary=f"noisy: AdaGrad rate x{fmt(a['ratio_1000_10'])} by step 1000, "
        f"RMSprop within x{fmt(r['spread'])}",
    )


# ===================================================================== 8. linear-decay schedule


def measure_schedule(
    batch_size: int = 32,
    epochs: int = 20,
    lr0: float = 0.1,
    grid: Sequence[float] = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001),
    seed: int = 0,
) -> dict[str, Any]:
    """Mini-batch SGD on ``linear``: constant lr vs LinearDecay(lr, lr/100, tau = all steps)."""
    n = len(load("linear", seed=seed).y)
    tau = -(-n // batch_size) * epochs
    lrs = sorted({*grid, lr0}, reverse=True)
    out: dict[str, Any] = {"batch_size": batch_size, "epochs": epochs, "lr0": lr0, "tau": tau, "rows": []}
    curves = {}
    for lr in lrs:
        const = compare_batching(
            "linear", batch_sizes=(batch_size,), epochs=epochs, lrs={batch_size: lr}, seed=seed
        )
        decay = compare_batching(
            "linear",
            batch_sizes=(batch_size,),
            epochs=epochs,
            lrs={batch_size: LinearDecay(lr, lr / 100, tau)},
            seed=seed,
        )
        curves[lr] = (const, decay)
        out["rows"].append(
            {
                "lr": lr,
                "constant": float(const.curves[0].loss[-1] - const.optimal_loss),
                "decay": float(decay.curves[0].loss[-1] - decay.optimal_loss),
            }
        )
    out["optimal_loss"] = curves[lr0][0].optimal_loss
    out["same"] = next(r for r in out["rows"] if r["lr"] == lr0)
    out["best_constant"] = min(out["rows"], key=lambda r: r["constant"])
    out["best_decay"] = min(out["rows"], key=lambda r: r["decay"])
    out["curves"] = curves
    return out


def verdict_schedule(m: dict[str, Any]) -> tuple[bool, bool]:
    same = m["same"]["decay"] < m["same"]["constant"]
    tuned = m["best_decay"]["decay"] < m["best_constant"]["constant"]
    return same, tuned


def draw_schedule(m: dict[str, Any]) -> Path:
    from descend.viz import plot_batching

    def curve(lr: float, kind: str, label: str) -> Any:
        r = m["curves"][lr][0 if kind == "constant" else 1]
        return dataclasses.replace(r.curves[0], label=label)

    lr0, bc, bd = m["lr0"], m["best_constant"]["lr"], m["best_decay"]["lr"]
    curves = [
        curve(lr0, "constant", f"constant lr={lr0:g}"),
        curve(lr0, "decay", f"linear decay {lr0:g} → {lr0 / 100:g}"),
    ]
    if bc != lr0:
        curves.append(curve(bc, "constant", f"best constant of the grid: lr={bc:g}"))
    if bd != lr0:
        curves.append(curve(bd, "decay", f"best linear decay of the grid: {bd:g} → {bd / 100:g}"))
    base = m["curves"][lr0][0]
    shown = BatchingResult(base.dataset, base.n_samples, base.optimal_loss, curves, base.epochs, base.config)
    fig = new_figure((900, 600))
    ax = fig.add_subplot()
    plot_batching(shown, "epochs", ax=ax)
    ax.set_title(
        f"mini-batch SGD (B={m['batch_size']}) on `linear`: "
        f"constant lr vs LinearDecay over τ={m['tau']} steps",
        fontsize=10,
    )
    return save(fig, "linear_decay", (900, 600))


def section_schedule(m: dict[str, Any]) -> Section:
    same, tuned = verdict_schedule(m)
    verdict = "holds" if same and tuned else ("holds in part" if same or tuned else "does not hold")
    s, bc, bd = m["same"], m["best_constant"], m["best_decay"]
    return Section(
        "linear_decay",
        "A linearly decaying lr beats a constant one for SGD",
        "With a constant lr, SGD's gradient noise keeps it bouncing in a band around the optimum whose "
        "width grows with the lr: the loss plateaus at a noise floor. Decaying the lr shrinks the band "
        "(Goodfellow et al., *Deep Learning* §8.3.1: decay linearly to about 1% of the initial rate over τ "
        "steps, then hold). Measured with mini-batch SGD (B = "
        f"{m['batch_size']}, {m['epochs']} epochs = {m['tau']} steps, seed 0) on the `linear` least-squares "
        f"data, through `compare_batching` with a `LinearDecay(lr, lr/100, tau={m['tau']})` or a constant "
        "lr; *excess loss* is the final full-data loss minus the exact least-squares optimum "
        f"({fmt(m['optimal_loss'])}, from `numpy.linalg.lstsq`). Both kinds were also run over the same "
        "lr grid, so each is compared at its own best lr too.",
        verdict,
        f"From the same lr0 = {m['lr0']:g}: constant {fmt(s['constant'])} vs linear decay {fmt(s['decay'])} "
        f"({s['constant'] / s['decay']:.3g}x lower). Each at its best lr of the grid: constant lr = "
        f"{bc['lr']:g} reached {fmt(bc['constant'])}, linear decay from {bd['lr']:g} reached "
        f"{fmt(bd['decay'])} ({bc['constant'] / bd['decay']:.3g}x lower). One seed and one data set.",
        [
            (
                [
                    "lr (constant) or lr0 (decay)",
                    "constant: final excess loss",
                    "linear decay: final excess loss",
                ],
                [[r["lr"], r["constant"], r["decay"]] for r in m["rows"]],
            )
        ],
        [
            f"{SCRIPT} --only linear_decay",
            f"descend schedule linear_decay:lr0={m['lr0']:g},lr_final={m['lr0'] / 100:g},tau={m['tau']} "
            f"constant:lr={m['lr0']:g} --steps {m['tau']}",
            f"descend train linear --model linear --optimizer sgd --batch-size {m['batch_size']} "
            f"--epochs {m['epochs']} --val-fraction 0 --schedule "
            f"linear_decay:lr0={m['lr0']:g},lr_final={m['lr0'] / 100:g},tau={m['tau']}",
            f"descend train linear --model linear --optimizer sgd --batch-size {m['batch_size']} "
            f"--epochs {m['epochs']} --val-fraction 0 --lr {m['lr0']:g}",
        ],
        [
            "The `schedule` command draws the two learning-rate curves compared; the two `train` commands "
            "run the same two trainings in float32 (the measurement above is float64) and print the "
            "training loss per epoch, so their losses are close to, not identical with, the table. "
            f'τ here is {m["epochs"]} passes, not the "few hundred" Goodfellow suggests for large '
            "networks.",
        ],
        summary=f"lr0={m['lr0']:g}: {fmt(s['constant'])} (constant) vs {fmt(s['decay'])} (decay); "
        f"best of grid {fmt(bc['constant'])} vs {fmt(bd['decay'])}",
    )


# ===================================================================== 9. choosing the lr early


class _LossAt(Callback):
    """Full-data loss at chosen update counts (the run's own batches are no measure of it)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, at: Sequence[int]):
        self.X, self.y, self.at, self.out = X, y, set(at), {}

    def on_step_end(self, run: Any, info: dict[str, Any]) -> None:
        if info["step"] in self.at:
            self.out[info["step"]] = float(run.model.loss(run.params, self.X, self.y))


def measure_lr_choice(
    grid: Sequence[float] = tuple(float(f"{v:.4g}") for v in 10.0 ** np.arange(-1.0, 2.01, 0.25)),
    steps: int = 2000,
    early: int = 100,
    l2s: Sequence[float] = (0.0, 1e-3),
    batch_size: int = 64,
    seed: int = 0,
    lr_find_steps: int = 100,
) -> dict[str, Any]:
    """Softmax regression on ``digits`` by mini-batch SGD with LinearDecay(lr0, lr0/100, steps):
    the full-data training loss after ``early`` updates and after ``steps`` for each lr0 of ``grid``,
    and the LR range test (``lr_find``) with descend's CLI defaults."""
    data = load("digits", seed=seed)
    n = len(data.y)
    epochs = -(-steps // -(-n // batch_size)) + 1
    out: dict[str, Any] = {
        "grid": list(grid),
        "steps": steps,
        "early": early,
        "batch_size": batch_size,
        "by_l2": {},
    }
    for l2 in l2s:
        model = ds.models.SoftmaxRegression(l2=l2, dtype="float64")
        y = model.check_targets(data.y)
        at_early, at_end = [], []
        for lr in grid:
            rec = _LossAt(data.X, y, (early, steps))
            try:
                ds.fit(
                    model,
                    (data.X, data.y),
                    optimizer="sgd",
                    lr=LinearDecay(lr, lr / 100, steps),
                    batch_size=batch_size,
                    epochs=epochs,
                    max_steps=steps,
                    seed=seed,
                    callbacks=[rec],
                    progress=False,
                )
            except ds.DivergenceError:
                pass
            at_early.append(rec.out.get(early, math.inf))
            at_end.append(rec.out.get(steps, math.inf))
        e, f = np.array(at_early), np.array(at_end)
        best_early, best_end = grid[int(np.argmin(e))], grid[int(np.argmin(f))]
        near = [lr for lr, v in zip(grid, f, strict=True) if v <= 1.01 * f.min()]
        found = lr_find(
            ds.models.SoftmaxRegression(l2=l2),
            (data.X, data.y),
            "sgd",
            steps=lr_find_steps,
            batch_size=batch_size,
            seed=seed,
        )
        out["by_l2"][l2] = {
            "early": e,
            "end": f,
            "best_early": best_early,
            "best_end": best_end,
            "near_best": (min(near), max(near)),
            "at_grid_top": best_end == max(grid),
            "lr_find": found,
        }
    return out


def verdict_lr_choice(m: dict[str, Any]) -> dict[float, str]:
    """Per l2: 'higher' (Goodfellow's claim), 'same' or 'lower'."""
    out = {}
    for l2, r in m["by_l2"].items():
        out[l2] = (
            "higher"
            if r["best_end"] > r["best_early"]
            else ("same" if r["best_end"] == r["best_early"] else "lower")
        )
    return out


def draw_lr_choice(m: dict[str, Any]) -> Path:
    from descend.viz import plot_lr_find

    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2)
    grid = np.array(m["grid"])
    colors = ("#1f77b4", "#d62728", "#2ca02c")
    for (l2, r), color in zip(m["by_l2"].items(), colors, strict=False):
        name = f"l2={l2:g}"
        left.loglog(
            grid, r["early"], "o--", color=color, ms=4, lw=1, label=f"{name}: after {m['early']} updates"
        )
        left.loglog(
            grid, r["end"], "s-", color=color, ms=4, lw=1.6, label=f"{name}: after {m['steps']} updates"
        )
        left.plot([r["best_early"]], [np.min(r["early"])], "o", ms=12, mfc="none", mec=color, mew=2)
        left.plot([r["best_end"]], [np.min(r["end"])], "s", ms=12, mfc="none", mec=color, mew=2)
    left.set_xlabel("initial lr0 of LinearDecay(lr0, lr0/100)")
    left.set_ylabel("full-data training loss")
    left.set_title(
        f"softmax regression on digits, SGD B={m['batch_size']} (circled: best)", fontsize="medium"
    )
    left.grid(True, which="major", alpha=0.3)
    left.legend(fontsize="x-small")
    first = next(iter(m["by_l2"]))
    plot_lr_find(m["by_l2"][first]["lr_find"], ax=right)
    right.set_title(f"LR range test, l2={first:g} (descend lr-find digits defaults)", fontsize="medium")
    return save(fig, "lr_choice", WIDE)


def section_lr_choice(m: dict[str, Any]) -> Section:
    v = verdict_lr_choice(m)
    n_higher = sum(x == "higher" for x in v.values())
    verdict = "holds" if n_higher == len(v) else ("holds in part" if n_higher else "does not hold")
    parts, rows = [], []
    for l2, r in m["by_l2"].items():
        s = r["lr_find"].suggestions
        edge = " (the top of the grid: higher lrs were not tried)" if r["at_grid_top"] else ""
        lo, hi = r["near_best"]
        window = f"only lr0 = {lo:g} ended" if lo == hi else f"lr0 from {lo:g} to {hi:g} ended"
        parts.append(
            f"with l2 = {l2:g} the best lr0 after {m['early']} updates was {r['best_early']:g} and after "
            f"{m['steps']} it was {r['best_end']:g}{edge} — {v[l2]}; "
            f"{window} within 1% of the best final loss"
        )
        rows.append(
            [
                l2,
                r["best_early"],
                float(np.min(r["early"])),
                r["best_end"],
                float(np.min(r["end"])),
                f"{lo:g}" if lo == hi else f"{lo:g} – {hi:g}",
                s["valley"],
                s["steep"],
                s["min"],
            ]
        )
    first = next(iter(m["by_l2"]))
    sug = m["by_l2"][first]["lr_find"].suggestions
    low_ratio = m["by_l2"][first]["best_early"] / max(sug.values())
    grid_rows = [
        [lr] + [x for r in m["by_l2"].values() for x in (r["early"][i], r["end"][i])]
        for i, lr in enumerate(m["grid"])
    ]
    grid_head = ["lr0"] + [
        h for l2 in m["by_l2"] for h in (f"l2={l2:g}: loss @{m['early']}", f"l2={l2:g}: loss @{m['steps']}")
    ]
    return Section(
        "lr_choice",
        "Choosing the lr by watching the first iterations",
        'Goodfellow et al. (*Deep Learning* §8.3.1): "the optimal initial learning rate, in terms of total '
        "training time and the final cost value, is higher than the learning rate that yields the best "
        'performance after the first 100 iterations or so"; monitor the first iterations and pick a rate '
        "somewhat higher than the best-looking one. Measured on softmax regression on `digits` "
        f"(1797 x 64, float64) trained by mini-batch SGD (B = {m['batch_size']}) with "
        f"`LinearDecay(lr0, lr0/100, tau={m['steps']})` for {m['steps']} updates, for each lr0 of a "
        f"quarter-decade grid from {min(m['grid']):g} to {max(m['grid']):g}; the full-data training loss "
        f"(with its l2 penalty) after {m['early']} and after {m['steps']} updates. Unregularised softmax "
        "regression on digits is separable (its loss has no minimum, only an infimum of 0), so a "
        "regularised version (l2 = 1e-3) with a finite optimum is measured too. Beside it, the LR range "
        "test (`lr_find`, 100 steps from 1e-6 to 10, B = 64) with its three suggestions.",
        verdict,
        "; ".join(parts)[0].upper()
        + "; ".join(parts)[1:]
        + ". "
        + f"The range test (l2 = {first:g}) suggested valley {sug['valley']:.3g}, steep {sug['steep']:.3g}, "
        f"min/10 {sug['min']:.3g}: "
        + (
            "all below the best lr0 after "
            f"{m['early']} updates ({m['by_l2'][first]['best_early']:g}), {low_ratio:.3g}x or more."
            if low_ratio > 1
            else f"the largest is {1 / low_ratio:.3g}x the best lr0 after {m['early']} updates."
        ),
        [
            (
                [
                    "l2",
                    f"best lr0 @{m['early']}",
                    "its loss",
                    f"best lr0 @{m['steps']}",
                    "its loss",
                    "lr0 within 1% of best final",
                    "lr_find valley",
                    "lr_find steep",
                    "lr_find min/10",
                ],
                rows,
            ),
            (grid_head, grid_rows),
        ],
        [
            f"{SCRIPT} --only lr_choice",
            "descend lr-find digits --optimizer sgd --batch-size 64 --steps 100 --seed 0",
        ],
        [
            "The lr-find command (softmax regression, float32, l2 = 0, the defaults) prints the same "
            "suggestions as the first row; the grid of full runs has no CLI equivalent (`descend train` "
            "takes no schedule). One data set, one seed, a convex model: Goodfellow's remark is about "
            "deep networks, and this measures only whether it carries over here.",
        ],
        summary="; ".join(
            f"l2={l2:g}: best lr0 {r['best_early']:g} @{m['early']} vs "
            f"{r['best_end']:g} @{m['steps']} ({v[l2]})"
            for l2, r in m["by_l2"].items()
        ),
    )


# ========================================================================= 10. shallow minimum


def measure_two_well(
    noisy: Sequence[tuple[str, float, float]] = (
        ("sgd", 0.05, 1.0),
        ("sgd", 0.05, 2.0),
        ("sgd", 0.05, 3.0),
        ("sgd", 0.01, 3.0),
        ("momentum", 0.05, 3.0),
    ),
    lrs: Sequence[float] = (0.01, 0.02, 0.05),
    steps: int = 1000,
    seeds: int = 100,
) -> dict[str, Any]:
    """Where GD, momentum and noisy GD end on ``two_well`` from its default start (1.8, 0.8).

    ``lrs``: noise-free runs of GD, momentum and Nesterov; ``noisy``: (optimizer, lr, noise std)
    runs over ``seeds`` seeds. The end point's basin is read from its x coordinate: left of the
    barrier top (the middle root of f_x = 4x^3 - 4x + 0.3) is the deep well's basin.
    """
    f = ds.functions.get("two_well")
    barrier = float(sorted(np.roots([4.0, 0.0, -4.0, 0.3]).real)[1])
    height = float(f(np.array([barrier, 0.0]))) - max(float(f(p)) for p in f.minima)  # above the shallow one

    def basin(e: RaceEntry) -> str:
        if e.diverged:
            return "diverged"
        return "deep" if e.path[-1, 0] < barrier else "shallow"

    plain = {}
    for a in sorted(lrs):
        r = race(f, ["sgd", "momentum", "nesterov"], lrs=a, steps=steps)
        plain[a] = {e.optimizer: basin(e) for e in r.entries}
        plain[a]["race"] = r
    rows = []
    for name, lr, sigma in noisy:
        ends, example = [], None
        for s in range(seeds):
            e = race(f, [name], lrs=lr, steps=steps, noise=sigma, seed=s).entries[0]
            ends.append(basin(e))
            if example is None and ends[-1] == "deep":
                example = (s, e)
        rows.append(
            {
                "optimizer": name,
                "lr": lr,
                "noise": sigma,
                "deep": ends.count("deep") / seeds,
                "diverged": ends.count("diverged"),
                "example": example,
            }
        )
    return {
        "steps": steps,
        "seeds": seeds,
        "barrier": barrier,
        "barrier_height": height,
        "plain": plain,
        "noisy": rows,
    }


def verdict_two_well(m: dict[str, Any]) -> bool:
    gd_shallow = all(p["sgd"] == "shallow" for p in m["plain"].values())
    noisy_gd = max(r["deep"] for r in m["noisy"] if r["optimizer"] == "sgd")
    return gd_shallow and noisy_gd > 0.5


def _best_noisy_gd(m: dict[str, Any]) -> dict[str, Any]:
    return max((r for r in m["noisy"] if r["optimizer"] == "sgd"), key=lambda r: r["deep"])


def draw_two_well(m: dict[str, Any]) -> Path:
    from descend.viz import plot_contour

    best = _best_noisy_gd(m)
    lr = best["lr"] if best["lr"] in m["plain"] else max(m["plain"])
    base = m["plain"][lr]["race"]
    gd = next(e for e in base.entries if e.optimizer == "sgd")
    deep_mom = [a for a in sorted(m["plain"]) if m["plain"][a]["momentum"] == "deep"]
    entries = [gd]
    if deep_mom:
        entries.append(next(e for e in m["plain"][deep_mom[0]]["race"].entries if e.optimizer == "momentum"))
    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2)
    drawn = plot_contour(
        sub_race(base, entries),
        left,
        resolution=150,
        legend=False,
        title=f"two_well from (1.8, 0.8), {m['steps']} steps",
    )
    handles, labels = list(drawn.handles), list(drawn.labels)
    handles.append(left.axvline(m["barrier"], color="0.15", ls=":", lw=1.5, zorder=2))
    labels.append(f"barrier top x = {m['barrier']:.3f}")
    if best["example"] is not None:
        seed, e = best["example"]
        crossed = int(np.argmax(e.path[:, 0] < m["barrier"]))
        P = e.path[: crossed + 101]  # the crossing and 100 steps after it: the whole run is a tangle
        (line,) = left.plot(P[:, 0], P[:, 1], color="#17becf", lw=0.6, zorder=2)
        left.plot(P[-1:, 0], P[-1:, 1], "o", color="#17becf", mec="black", ms=7, zorder=5)
        handles.insert(len(entries), line)
        labels.insert(
            len(entries), f"{e.label} + noise σ={best['noise']:g}, seed {seed}: steps 0–{len(P) - 1}"
        )
    left.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncols=2,
        fontsize="small",
        frameon=False,
    )
    labels = [f"{r['optimizer']}\nlr={r['lr']:g}\nσ={r['noise']:g}" for r in m["noisy"]]
    shares = [100 * r["deep"] for r in m["noisy"]]
    bars = right.bar(range(len(shares)), shares, color=[entry_color(r["optimizer"]) for r in m["noisy"]])
    for b, s in zip(bars, shares, strict=True):
        right.annotate(
            f"{s:.0f}%",
            (b.get_x() + b.get_width() / 2, s),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=9,
        )
    right.set_xticks(range(len(shares)), labels)
    right.set_ylim(0, 105)
    right.set_ylabel(f"share of {m['seeds']} seeds ending in the deep well's basin (%)")
    right.set_title("with gradient noise (noise-free GD ends shallow at every lr tried)", fontsize="medium")
    right.grid(True, axis="y", alpha=0.3)
    return save(fig, "two_well", WIDE)


def section_two_well(m: dict[str, Any]) -> Section:
    holds = verdict_two_well(m)
    lrs = sorted(m["plain"])
    rows = [[a, m["plain"][a]["sgd"], m["plain"][a]["momentum"], m["plain"][a]["nesterov"]] for a in lrs]
    noisy_rows = [[r["optimizer"], r["lr"], r["noise"], r["deep"], r["diverged"]] for r in m["noisy"]]
    gd_noise = [r for r in m["noisy"] if r["optimizer"] == "sgd"]
    mom_noise = [r for r in m["noisy"] if r["optimizer"] != "sgd"]
    mom_plain = ", ".join(f"at lr {a:g} it ended {m['plain'][a]['momentum']}" for a in lrs)
    best = _best_noisy_gd(m)
    return Section(
        "two_well",
        "SGD's noise can carry it out of a shallow local minimum that GD gets stuck in",
        "From the notes: stochastic gradients are the gradients of many slightly different surfaces, so "
        "their noise can kick the iterate over a barrier that traps full-batch gradient descent; momentum "
        "is also said to roll through local minima. Measured on descend's `two_well` "
        "f = (x² − 1)² + 0.3x + y² from its default start (1.8, 0.8), on the shallow side; the end point's "
        f"basin is read from its x (left of the barrier top x = {m['barrier']:.4f} is the deep well; the "
        f"barrier is {m['barrier_height']:.3g} above the shallow minimum). Noise: Gaussian gradient noise "
        f"of std σ added to every gradient, {m['steps']} steps, {m['seeds']} seeds per setting.",
        "holds" if holds else "does not hold",
        "Noise-free GD ended in the shallow well at every lr tried; with gradient noise the share of seeds "
        "ending in the deep basin was "
        + ", ".join(f"{100 * r['deep']:.3g}% (lr {r['lr']:g}, σ = {r['noise']:g})" for r in gd_noise)
        + ". Noise-free momentum 0.9 depends on the lr: "
        + mom_plain
        + "."
        + "".join(
            f" With noise (lr {r['lr']:g}, σ = {r['noise']:g}) momentum ended deep in "
            f"{100 * r['deep']:.3g}% of seeds."
            for r in mom_noise
        ),
        [
            (["lr (no noise)", "GD ends in", "momentum 0.9 ends in", "Nesterov 0.9 ends in"], rows),
            (
                ["optimizer", "lr", "noise σ", f"share of {m['seeds']} seeds ending deep", "diverged runs"],
                noisy_rows,
            ),
        ],
        [
            f"{SCRIPT} --only two_well",
            f"descend race two_well --optimizers sgd,momentum,nesterov --lr {best['lr']:g} "
            f"--steps {m['steps']}",
            f"descend race two_well --optimizers sgd --lr {best['lr']:g} --steps {m['steps']} "
            f"--noise {best['noise']:g} --seed 0",
        ],
        [
            "The noise is added to the exact gradient (the `noise=` of `minimize`/`race`), a stand-in for "
            "mini-batch noise. Each step moves the iterate by lr times the noise, so the same σ does much "
            "less at a smaller lr (compare the lr rows of the second table).",
        ],
        summary="GD: shallow; noisy GD deep in "
        + ", ".join(f"{100 * r['deep']:.3g}% (lr {r['lr']:g}, σ={r['noise']:g})" for r in gd_noise),
    )


# ========================================================================================= main


def _load_claims(name: str) -> Any:
    """docs/<name>.py: more claims kept in their own file, which imports this module as ``claims``."""
    sys.modules["claims"] = sys.modules[__name__]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


CLAIMS: dict[str, tuple[Callable[[], Any], Callable[..., Path], Callable[..., Section]]] = {
    "batching": (measure_batching, draw_batching, section_batching),
    "gradient_noise": (measure_gradient_noise, draw_gradient_noise, section_gradient_noise),
    "saddle": (measure_saddle, draw_saddle, section_saddle),
    "zigzag": (measure_zigzag, draw_zigzag, section_zigzag),
    "momentum_overshoot": (measure_overshoot, draw_overshoot, section_overshoot),
    "nesterov_bounces": (measure_overshoot, draw_nesterov, section_nesterov),
    "adagrad_rmsprop": (measure_adaptive, draw_adaptive, section_adaptive),
    "linear_decay": (measure_schedule, draw_schedule, section_schedule),
    "lr_choice": (measure_lr_choice, draw_lr_choice, section_lr_choice),
    "two_well": (measure_two_well, draw_two_well, section_two_well),
    **_load_claims("claims_more").CLAIMS,
    **_load_claims("claims_timing").CLAIMS,
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs"


def versions() -> str:
    import matplotlib

    return (
        f"Python {platform.python_version()}, NumPy {np.__version__}, matplotlib {matplotlib.__version__}, "
        f"descend {ds.__version__}"
    )


def table_md(head: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return fmt(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(sections: list[tuple[Section, Path]], seconds: float) -> str:
    out = [
        "# Claims about optimizer behaviour, measured",
        "",
        f"Generated by `{SCRIPT}` on {datetime.date.today().isoformat()} — {machine()}; {versions()}; "
        f"all {len(sections)} experiments and pictures took {seconds:.0f} s. Every number below was written "
        "by the script from its own seeded runs of descend's public API; nothing here is edited by hand "
        "(re-run the script to regenerate this page and the pictures in `docs/claims/`).",
        "",
        "| # | claim | verdict | measured |",
        "|---|---|---|---|",
    ]
    for i, (s, _) in enumerate(sections, 1):
        out.append(f"| {i} | [{s.title}](#{i}-{s.key.replace('_', '-')}) | {s.verdict} | {s.summary} |")
    for i, (s, png) in enumerate(sections, 1):
        out += [
            "",
            f'<a id="{i}-{s.key.replace("_", "-")}"></a>',
            "",
            f"## {i}. {s.title}",
            "",
            s.statement,
            "",
            f"**Verdict: {s.verdict}.** {s.finding}",
            "",
        ]
        for head, rows in s.tables:
            out += [table_md(head, rows), ""]
        out += [f"![{s.title}](claims/{png.name})", "", "Reproduce:", "", "```bash"]
        out += s.commands
        out += ["```"]
        for note in s.notes:
            out += ["", note]
    return "\n".join(out) + "\n"


#: a verdict's words after a count of one and of several
_VERDICT_WORDS = {
    "holds": ("holds", "hold"),
    "holds in part": ("holds in part", "hold in part"),
    "does not hold": ("does not hold", "do not hold"),
}


def verdict_line(verdicts: Sequence[str]) -> str:
    """The README's one-line summary of the page's verdicts, ending in :data:`README_MARK`."""
    counts = Counter(verdicts)
    known = [v for v in _VERDICT_WORDS if counts[v]] + sorted(set(counts) - set(_VERDICT_WORDS))
    words = [f"{counts[v]} {_VERDICT_WORDS.get(v, (v, v))[counts[v] != 1]}" for v in known]
    return (
        f"[`docs/claims.md`](docs/claims.md) measures {len(verdicts)} claims of the study notes: "
        f"{', '.join(words)}. {README_MARK}"
    )


def page_verdicts(text: str) -> list[str]:
    """The verdict column of the summary table of a claims.md text, in page order."""
    return re.findall(r"^\| \d+ \| \[[^\]]*\]\(#[^)]*\) \| ([^|]+?) \| ", text, flags=re.MULTILINE)


def write_readme_line(line: str, readme: Path = README) -> None:
    """Replace the README line that ends in :data:`README_MARK` by ``line``."""
    lines = readme.read_text().splitlines(keepends=True)
    at = [i for i, old in enumerate(lines) if old.rstrip().endswith(README_MARK)]
    if len(at) != 1:
        raise SystemExit(f"{readme}: expected one line ending in {README_MARK!r}, found {len(at)}")
    lines[at[0]] = line + "\n"
    readme.write_text("".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="+", choices=list(CLAIMS), help="run these claims; claims.md is left as is"
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="only rewrite README.md's verdict line from claims.md as it stands, and print it",
    )
    args = parser.parse_args(argv)
    if args.readme:
        line = verdict_line(page_verdicts(MARKDOWN.read_text()))
        write_readme_line(line)
        print(line)
        return 0
    keys = args.only or list(CLAIMS)
    t0 = time.perf_counter()
    cache: dict[Callable[[], Any], Any] = {}
    sections = []
    for key in keys:
        measure, draw, section = CLAIMS[key]
        t = time.perf_counter()
        if measure not in cache:
            cache[measure] = measure()
        m = cache[measure]
        png = draw(m)
        s = section(m)
        sections.append((s, png))
        print(f"[{time.perf_counter() - t:5.1f} s] {s.title}: {s.verdict} — {s.summary}", flush=True)
    seconds = time.perf_counter() - t0
    if args.only is None:
        MARKDOWN.write_text(markdown(sections, seconds))
        line = verdict_line([s.verdict for s, _ in sections])
        write_readme_line(line)
        print(f"wrote {MARKDOWN.relative_to(HERE.parent)} and {len(sections)} pictures in {seconds:.0f} s")
        print(f"README.md: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
