"""Claims 11-16 of docs/claims.md: initialisation, momentum's memory, the lr, saddles and starts.

Each claim is a ``measure_*`` function (seeded runs of descend's public API, sizes as
parameters so that ``tests/test_claims_more.py`` runs small versions), a ``draw_*`` function
(its picture in ``docs/claims/``) and a ``section_*`` function (its part of ``docs/claims.md``),
registered in :data:`CLAIMS`; ``docs/claims.py`` loads this module and runs them with its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from claims import SCRIPT, WIDE, Section, fmt, new_figure, save, sub_race  # docs/claims.py

import descend as ds
from descend.lab.datasets import load
from descend.lab.diagnose import SYMMETRIC_RTOL, VANISHING_RATIO
from descend.lab.race import race
from descend.models import MLP
from descend.train.callbacks import Callback

CHANCE = math.log(10)  # the cross-entropy of a uniform guess over digits' 10 classes


# ------------------------------------------------------------------------------------- helpers


class _InitMLP(MLP):
    """descend's MLP with its drawn initial params passed through ``start(params, rng)``.

    ``MLP(init=...)`` offers He, Xavier and N(0, 0.01²) and no scale or constant, and ``fit``
    starts from ``model.init`` (or a run); a subclass is the one way in. Always float64 with an
    explicit output, so neither ``diagnose`` nor ``fit`` rebuilds it as a plain MLP.
    """

    def __init__(self, start: Callable[[dict[str, np.ndarray], np.random.Generator], Any], **kw: Any):
        super().__init__(**kw)
        self.start = start

    def init(self, rng: np.random.Generator, n_features: int, n_outputs: int) -> dict[str, np.ndarray]:
        params = super().init(rng, n_features, n_outputs)
        self.start(params, rng)
        return params


def _weights(params: dict[str, np.ndarray]) -> list[str]:
    return [k for k in params if k.startswith("W")]


def _train(model: Any, data: tuple[np.ndarray, np.ndarray], **kw: Any) -> tuple[Any, int | None]:
    """``fit`` without standardizing (the data are), and the step it diverged at (None: it did not)."""
    try:
        return ds.fit(model, data, progress=False, standardize=False, **kw), None
    except ds.DivergenceError as e:
        return e.run, e.step


def _at(d: dict[str, Any], **match: Any) -> dict[str, Any]:
    return next(r for r in d["rows"] if all(r[k] == v for k, v in match.items()))


def _overall(parts: dict[str, Any]) -> str:
    """A claim's verdict from its measured parts."""
    held = sum(bool(v) for v in parts.values())
    return "holds" if held == len(parts) else ("holds in part" if held else "does not hold")


def _parts_table(parts: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    return ["part of the claim", "measured"], [[k, bool(v)] for k, v in parts.items()]


# ================================================================= 11. vanishing and exploding

#: (label, MLP init scheme, factor on its weights): "large" has no scheme of its own
VANISHING_INITS: tuple[tuple[str, str, float], ...] = (
    ("small", "normal", 1.0),
    ("Xavier", "xavier", 1.0),
    ("He", "he", 1.0),
    ("large", "he", 4.0),
)
_INIT_WORDS = {
    "small": "N(0, 0.01²)",
    "Xavier": "U(±√(6/(fan_in+fan_out)))",
    "He": "N(0, 2/fan_in)",
    "large": "4 × He",
}


def measure_vanishing(
    depth: int = 10,
    width: int = 32,
    activations: Sequence[str] = ("sigmoid", "tanh", "relu"),
    inits: Sequence[tuple[str, str, float]] = VANISHING_INITS,
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 64,
    probe_rows: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-layer gradient norms (``ds.diagnose``) of a ``depth``-layer MLP on ``digits`` at its
    seeded init, for each activation and init, and the SGD training that follows (``ds.Monitor``
    records the first/last layer gradient ratio once per epoch)."""
    data = load("digits", seed=seed)
    X, y = data.X, data.y
    per_epoch = -(-len(y) // batch_size)
    rows = []
    for act in activations:
        for label, scheme, scale in inits:

            def start(params: dict[str, np.ndarray], rng: np.random.Generator, scale: float = scale) -> None:
                for k in _weights(params):
                    params[k] *= scale

            model = _InitMLP(
                start,
                hidden=(width,) * depth,
                activation=act,
                init=scheme,
                output="softmax",
                dtype="float64",
            )
            p0 = model.init(np.random.default_rng([seed, 0]), X.shape[1], 10)  # fit's first params
            d = ds.diagnose(model, p0, (X, y), probe_rows=probe_rows, seed=seed)
            run, diverged = _train(
                model,
                (X, y),
                optimizer="sgd",
                lr=lr,
                batch_size=batch_size,
                epochs=epochs,
                seed=seed,
                callbacks=[ds.Monitor(every=per_epoch)],
            )
            norms = np.array(list(d.layer_grad_norms.values()))
            ratio = run.history.monitor.get("first_last_grad_ratio", [math.nan])
            rows.append(
                {
                    "activation": act,
                    "init": label,
                    "weight_std": float(np.std(p0["W1"])),
                    "norms": norms,
                    "ratio": float(d.grad_norm_ratio),
                    "per_layer": float(d.grad_norm_ratio) ** (1 / depth),
                    "flags": sorted(d.flags),
                    "saturated": max(d.saturated_fraction.values(), default=None),
                    "dead": max(d.dead_fraction.values(), default=None),
                    "loss0": float(d.loss),
                    "curve": np.array([d.loss, *run.history.epochs.get("train_loss", [])]),
                    "diverged": diverged,
                    "ratio_end": float(ratio[-1]) if ratio else math.nan,
                }
            )
    return {
        "depth": depth,
        "width": width,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "per_epoch": per_epoch,
        "activations": list(activations),
        "inits": [i[0] for i in inits],
        "rows": rows,
    }


def verdict_vanishing(m: dict[str, Any]) -> dict[str, bool]:
    """The four parts of the claim, each measured."""
    sig = [_at(m, activation="sigmoid", init=i) for i in ("Xavier", "He")]
    tanh = _at(m, activation="tanh", init="Xavier")
    he, large = _at(m, activation="relu", init="He"), _at(m, activation="relu", init="large")
    return {
        "sigmoid vanishes (Xavier and He)": all(r["ratio"] < VANISHING_RATIO for r in sig),
        "tanh vanishes (Xavier)": tanh["ratio"] < VANISHING_RATIO,
        "ReLU + He keeps them and trains": 0.1 < he["ratio"] < 10
        and he["diverged"] is None
        and he["curve"][-1] < 0.5 * CHANCE,
        "large init explodes (ReLU)": bool(np.min(large["norms"]) > 1e3 * np.max(he["norms"]))
        and large["diverged"] is not None,
    }


def _status(r: dict[str, Any]) -> str:
    return f"diverged at step {r['diverged']}" if r["diverged"] is not None else fmt(r["curve"][-1])


def draw_vanishing(m: dict[str, Any]) -> Path:
    size = (1500, 900)
    fig = new_figure(size)
    axes = fig.subplots(2, len(m["activations"]), squeeze=False)
    colors = dict(zip(m["inits"], ("#9467bd", "#2ca02c", "#1f77b4", "#d62728"), strict=False))
    layers = np.arange(m["depth"] + 1)
    for j, act in enumerate(m["activations"]):
        top, bottom = axes[0, j], axes[1, j]
        for r in (r for r in m["rows"] if r["activation"] == act):
            c = colors.get(r["init"])
            top.semilogy(
                layers, r["norms"], "o-", color=c, ms=4, label=f"{r['init']}: first/last {r['ratio']:.2g}"
            )
            k = np.arange(len(r["curve"]))
            bottom.plot(k, r["curve"], "o-", color=c, ms=3, label=f"{r['init']}: {_status(r)}")
            if r["diverged"] is not None:
                bottom.plot(k[-1:], r["curve"][-1:], "x", color=c, ms=12, mew=3)
        top.set_title(f"{act}: gradient norm per layer at init", fontsize="medium")
        top.set_xlabel(f"layer (0 = input's weights, {m['depth']} = output)")
        top.set_ylabel("‖∂L/∂(W, b)‖ of the layer")
        top.grid(True, which="major", alpha=0.3)
        top.legend(fontsize="x-small")
        bottom.axhline(CHANCE, color="0.4", ls=":", lw=1, label="chance (ln 10)")
        bottom.set_title(f"{act}: SGD lr={m['lr']:g}, B={m['batch_size']}", fontsize="medium")
        bottom.set_xlabel("epoch (0: at init)")
        bottom.set_ylabel("training loss")
        bottom.set_yscale("log")
        bottom.grid(True, alpha=0.3)
        bottom.legend(fontsize="x-small")
    fig.suptitle(f"MLP with {m['depth']} hidden layers of {m['width']} on digits")
    return save(fig, "vanishing_gradients", size)


def section_vanishing(m: dict[str, Any]) -> Section:
    parts = verdict_vanishing(m)
    verdict = _overall(parts)
    r = {(x["activation"], x["init"]): x for x in m["rows"]}
    sx, sh, tx, ts = r["sigmoid", "Xavier"], r["sigmoid", "He"], r["tanh", "Xavier"], r["tanh", "small"]
    he, large, tl, rs = r["relu", "He"], r["relu", "large"], r["tanh", "large"], r["relu", "small"]
    finding = (
        f"Sigmoid shrinks the gradient layer by layer with every standard init: the first layer's "
        f"gradient is {fmt(sx['ratio'])} x the last's with Xavier ({fmt(sx['per_layer'])} per layer) and "
        f"{fmt(sh['ratio'])} with He, and those nets stay at chance (loss {fmt(sx['curve'][-1])} after "
        f"{m['epochs']} epochs). Tanh vanishes only from a small init ({fmt(ts['ratio'])}); with Xavier "
        f"its ratio is {fmt(tx['ratio'])} and it trains to {fmt(tx['curve'][-1])}: "
        + ("the claim holds for tanh only with a small init. " if not parts["tanh vanishes (Xavier)"] else "")
        + "ReLU with He keeps every layer's gradient within a factor "
        f"{fmt(he['norms'].max() / he['norms'].min())} "
        f"of the others (first/last {fmt(he['ratio'])}) and trains to {_status(he)}; from the small init "
        f"ReLU vanishes too ({fmt(rs['ratio'])}). Four times He's scale "
        f"makes ReLU's gradients {fmt(np.median(large['norms'] / he['norms']))}x He's in every layer "
        f"(median) and the training {_status(large)}; the same scale with tanh grows the gradient towards "
        f"the input (first/last {fmt(tl['ratio'])}) and saturates it."
    )
    rows = [
        [
            x["activation"],
            f"{x['init']} ({_INIT_WORDS.get(x['init'], '')})",
            x["weight_std"],
            x["norms"][0],
            x["norms"][-1],
            x["ratio"],
            x["per_layer"],
            ", ".join(x["flags"]) or "—",
            x["saturated"] if x["saturated"] is not None else x["dead"],
            x["loss0"],
            _status(x),
            x["ratio_end"],
        ]
        for x in m["rows"]
    ]
    depth, width = m["depth"], m["width"]
    hidden = ",".join([str(width)] * depth)
    return Section(
        "vanishing_gradients",
        "Vanishing and exploding gradients: activation and initial scale",
        'From the notes (004): "deep layers, many times come across activation function derivatives '
        "that have (0,1] range, so it'll keep getting smaller … sigmoid, tanh … can use relu … there is "
        'exploding gradient problem which is the opposite … **Proper weight initialization**". '
        f"Measured on an MLP with {depth} hidden layers of {width} units on `digits` (1797 x 64, "
        "standardized, 10 classes, float64): the norm of the loss gradient of each layer's weights and "
        "biases at the seeded init, by `ds.diagnose` (`layer_grad_norms`, `grad_norm_ratio` = first / "
        f"last, its flags, and the worst layer's saturated or dead fraction), for sigmoid, tanh and "
        f"ReLU and four inits; then {m['epochs']} epochs of SGD (lr = {m['lr']:g}, B = "
        f"{m['batch_size']}) from that init, with `ds.Monitor` recording the first/last ratio each epoch. "
        "`MLP(init=...)` has no scale: *large* is He's draw times 4.",
        verdict,
        finding,
        [
            (
                [
                    "activation",
                    "init",
                    "std of W1",
                    "‖g‖ first layer",
                    "‖g‖ output layer",
                    "first / last",
                    "per layer",
                    "diagnose flags",
                    "saturated / dead (worst layer)",
                    "loss at init",
                    f"loss after {m['epochs']} epochs",
                    "first / last at the end (Monitor)",
                ],
                rows,
            ),
            _parts_table(parts),
        ],
        [
            f"{SCRIPT} --only vanishing_gradients",
            f"descend diagnose digits --hidden {hidden} --activation sigmoid",
            f"descend diagnose digits --hidden {hidden} --activation relu",
            f"descend train digits --hidden {hidden} --activation sigmoid --optimizer sgd --lr {m['lr']:g} "
            f"--batch-size {m['batch_size']} --epochs {m['epochs']} --monitor {m['per_epoch']}",
        ],
        [
            "The CLI builds He-initialised MLPs in float32 (no option sets the init): its diagnosis of "
            "the sigmoid net flags vanishing gradients and that of the ReLU net flags none, as the He "
            "rows above; `train` holds out 20% for validation, so its losses differ a little from the "
            "table. The first/last ratio of `diagnose` cannot see ReLU's explosion: a homogeneous "
            "activation scales every layer's gradient alike (activations grow forward as the "
            "gradient grows backward), so only the absolute norms and the diverging loss show it.",
        ],
        summary=f"first/last at init: sigmoid+Xavier {fmt(sx['ratio'])}, tanh+Xavier {fmt(tx['ratio'])}, "
        f"ReLU+He {fmt(he['ratio'])}; ReLU at 4x He {_status(large)}",
    )


# ============================================================ 12. symmetric init collapses a layer


class _Width(Callback):
    """The rank of the first hidden layer's pre-activations on probe rows, at init and after each
    epoch: the number of linearly independent units (equal units count once), at the relative
    tolerance with which ``diagnose`` calls units duplicates."""

    def __init__(self, X: np.ndarray):
        self.X, self.ranks = X, []

    def _record(self, run: Any) -> None:
        z = run.model.preactivations(run.params, self.X)[0]
        self.ranks.append(int(np.linalg.matrix_rank(z, rtol=SYMMETRIC_RTOL)))

    def on_train_begin(self, run: Any) -> None:
        self._record(run)

    def on_epoch_end(self, run: Any, info: dict[str, Any]) -> None:
        self._record(run)


def _constant(value: float, eps: float) -> Callable[[dict[str, np.ndarray], np.random.Generator], None]:
    """Every weight ``value``, plus N(0, eps²) noise drawn from the init's rng when eps > 0."""

    def start(params: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        for k in _weights(params):
            params[k][...] = value
            if eps:
                params[k] += eps * rng.standard_normal(params[k].shape)

    return start


def measure_symmetric(
    width: int = 16,
    value: float = 0.1,
    eps: Sequence[float] = (1e-8, 1e-4),
    activations: Sequence[str] = ("tanh", "relu", "sigmoid"),
    epochs: int = 20,
    lr: float = 0.1,
    batch_size: int = 64,
    seed: int = 0,
    probe_rows: int = 512,
) -> dict[str, Any]:
    """One hidden layer of ``width`` units trained by SGD from equal weights (``value``), from
    equal weights plus tiny noise (``eps``) and from He's random init, on ``digits`` and
    ``breast_cancer`` (75% trained on, 25% held out); against a 1-unit MLP and (multinomial)
    logistic regression trained the same way."""
    out: dict[str, Any] = {
        "width": width,
        "value": value,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "runs": [],
    }
    for name, output, linear in (("digits", "softmax", "softmax"), ("breast_cancer", "binary", "logistic")):
        train, test = load(name, seed=seed).split(0.25, seed=seed)
        X, y = train.X, train.y
        probe = (X[:probe_rows], y[:probe_rows])
        per_epoch = -(-len(y) // batch_size)
        kw = {"optimizer": "sgd", "lr": lr, "batch_size": batch_size, "epochs": epochs, "seed": seed}
        plans: list[tuple[str, str, Any]] = []
        acts = activations if name == "digits" else activations[:1]
        for act in acts:
            plans.append(
                (
                    act,
                    f"equal weights {value:g}",
                    _InitMLP(
                        _constant(value, 0.0), hidden=(width,), activation=act, output=output, dtype="float64"
                    ),
                )
            )
        if name == "digits":
            for e in eps:
                plans.append(
                    (
                        acts[0],
                        f"equal {value:g} + N(0, {e:g}²)",
                        _InitMLP(
                            _constant(value, e),
                            hidden=(width,),
                            activation=acts[0],
                            output=output,
                            dtype="float64",
                        ),
                    )
                )
        for act in acts:
            plans.append(
                (act, "He (random)", MLP(hidden=(width,), activation=act, output=output, dtype="float64"))
            )
        plans.append(
            (
                acts[0],
                "He, 1 hidden unit",
                MLP(hidden=(1,), activation=acts[0], output=output, dtype="float64"),
            )
        )
        for act, label, model in plans:
            monitor, widths = ds.Monitor(every=per_epoch, probe=probe), _Width(probe[0])
            run, diverged = _train(model, (X, y), callbacks=[monitor, widths], **kw)
            W0 = run.params["W0"]
            d = (
                ds.diagnose(model, run.params, probe, seed=seed)
                if label.startswith("equal weights") and act == acts[0]
                else None
            )
            out["runs"].append(
                {
                    "data": name,
                    "activation": act,
                    "init": label,
                    "units": model.hidden[0],
                    "duplicate": np.array(run.history.monitor["duplicate/layer0"]),
                    "rank": np.array(widths.ranks),
                    "spread": float(np.max(np.abs(W0 - W0[:, :1]))),
                    "train_acc": float(np.mean(run.predict(X) == y)),
                    "test_acc": float(np.mean(run.predict(test.X) == test.y)),
                    "loss": float(run.history.epochs["train_loss"][-1]),
                    "diverged": diverged,
                    "flags": sorted(d.flags) if d is not None else None,
                }
            )
        run, _ = _train(ds.models.get(linear, dtype="float64"), (X, y), **kw)
        out["runs"].append(
            {
                "data": name,
                "activation": "—",
                "init": f"{linear} regression",
                "units": 0,
                "duplicate": None,
                "rank": None,
                "spread": None,
                "train_acc": float(np.mean(run.predict(X) == y)),
                "test_acc": float(np.mean(run.predict(test.X) == test.y)),
                "loss": float(run.history.epochs["train_loss"][-1]),
                "diverged": None,
                "flags": None,
            }
        )
    return out


def _run(m: dict[str, Any], **match: Any) -> dict[str, Any]:
    return next(r for r in m["runs"] if all(r[k] == v for k, v in match.items()))


def verdict_symmetric(m: dict[str, Any]) -> dict[str, bool]:
    equal = [r for r in m["runs"] if r["init"].startswith("equal weights")]
    c = _run(m, data="digits", init=equal[0]["init"], activation=equal[0]["activation"])
    he = _run(m, data="digits", init="He (random)", activation=c["activation"])
    one = _run(m, data="digits", init="He, 1 hidden unit")
    return {
        "equal weights stay equal (spread 0, every epoch one distinct unit)": all(
            r["spread"] == 0.0 and np.all(r["rank"] == 1) and np.all(r["duplicate"] == 1.0) for r in equal
        ),
        "the collapsed net does no better than one unit (within 5 points)": c["test_acc"]
        <= one["test_acc"] + 0.05,
        "a random init keeps every unit distinct and does better": bool(np.all(he["rank"] == m["width"]))
        and he["test_acc"] > c["test_acc"] + 0.2,
    }


def draw_symmetric(m: dict[str, Any]) -> Path:
    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.25))
    shown = [r for r in m["runs"] if r["data"] == "digits" and r["rank"] is not None and r["units"] > 1]
    styles = ("-", "--", "-.", ":")
    for i, r in enumerate(shown):
        if r["activation"] != shown[0]["activation"]:
            continue
        left.plot(
            np.arange(len(r["rank"])),
            r["rank"],
            styles[i % 4],
            marker="o",
            ms=3,
            lw=1.8,
            label=f"{r['init']} (test acc. {r['test_acc']:.2f})",
        )
    left.set_xlabel("epoch (0: at init)")
    left.set_ylabel(f"distinct hidden units (rank of pre-activations, of {m['width']})")
    left.set_title(f"{shown[0]['activation']}, {m['width']} hidden units, SGD on digits", fontsize="medium")
    left.set_ylim(0, m["width"] + 1)
    left.grid(True, alpha=0.3)
    left.legend(fontsize="small")
    bars = [r for r in m["runs"] if r["init"].startswith(("equal weights", "He", "softmax", "logistic"))]
    colors = {"equal": "#d62728", "He, 1": "#ff7f0e", "He (": "#1f77b4"}
    y = np.arange(len(bars))[::-1]
    for yi, r in zip(y, bars, strict=True):
        color = next((c for k, c in colors.items() if r["init"].startswith(k)), "#7f7f7f")
        right.barh(yi, r["test_acc"], color=color)
        right.annotate(
            f"{r['test_acc']:.3f}",
            (r["test_acc"], yi),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
        )
    names = [f"{r['data']}: {r['init']}" + (f", {r['activation']}" if r["units"] else "") for r in bars]
    right.set_yticks(y, names, fontsize="small")
    right.set_xlim(0, 1.1)
    right.set_xlabel("held-out accuracy")
    right.set_title("equal weights (red), one unit (orange), He (blue), linear (gray)", fontsize="medium")
    right.grid(True, axis="x", alpha=0.3)
    return save(fig, "symmetric_init", WIDE)


def section_symmetric(m: dict[str, Any]) -> Section:
    parts = verdict_symmetric(m)
    verdict = _overall(parts)
    c = next(r for r in m["runs"] if r["init"].startswith("equal weights"))
    he = _run(m, data="digits", init="He (random)", activation=c["activation"])
    one = _run(m, data="digits", init="He, 1 hidden unit")
    lin = _run(m, data="digits", init="softmax regression")
    bc = [r for r in m["runs"] if r["data"] == "breast_cancer"]
    noisy = [r for r in m["runs"] if "+ N(0" in r["init"]]
    finding = (
        f"From equal weights every hidden unit stayed exactly equal to the others (largest difference "
        f"between two units' incoming weights after {m['epochs']} epochs: {fmt(c['spread'])}; one distinct "
        f"unit and duplicate fraction 1 at every epoch, for tanh, ReLU and sigmoid), and `ds.diagnose` "
        f"flags the trained net {', '.join(c['flags'] or ['—'])}. The collapsed {m['width']}-unit tanh net "
        f"reached {fmt(c['test_acc'])} held-out accuracy on digits, a 1-unit net {fmt(one['test_acc'])}, "
        f"softmax regression {fmt(lin['test_acc'])} and the He-initialised {m['width']}-unit net "
        f"{fmt(he['test_acc'])}. On breast_cancer (two classes, where one unit is enough) they are "
        "alike: "
        + ", ".join(f"{r['init']} {fmt(r['test_acc'])}" for r in bc)
        + ". The collapse needs exactly equal weights: the symmetric state is unstable, and "
        + "; ".join(
            f"{r['init'].split('+ ')[1]} noise grew to a spread of {fmt(r['spread'])} and "
            f"{r['rank'][-1]} distinct units (accuracy {fmt(r['test_acc'])})"
            for r in noisy
        )
        + "."
    )
    rows = [
        [
            r["data"],
            r["init"],
            r["activation"],
            r["units"] or "—",
            r["rank"][0] if r["rank"] is not None else None,
            r["rank"][-1] if r["rank"] is not None else None,
            r["duplicate"][-1] if r["duplicate"] is not None else None,
            r["spread"],
            r["loss"],
            r["train_acc"],
            r["test_acc"],
        ]
        for r in m["runs"]
    ]
    sgd = f"--optimizer sgd --lr {m['lr']:g} --batch-size {m['batch_size']} --epochs {m['epochs']}"
    return Section(
        "symmetric_init",
        "Equal initial weights collapse a hidden layer to one unit",
        'From the notes (004), on initialising every weight alike: "so w11 and w12 are always the same, '
        'same for the others. Hidden layer collapses, like perceptron." Units with the same incoming '
        "and outgoing weights compute the same output and receive the same gradient, so gradient "
        f"descent keeps them equal. Measured with one hidden layer of {m['width']} units, every weight "
        f"set to {m['value']:g} (biases 0), trained by SGD (lr = {m['lr']:g}, B = {m['batch_size']}, "
        f"{m['epochs']} epochs) on 75% of `digits` and of `breast_cancer`, scored on the other 25%. "
        "*Distinct units*: the rank of the hidden pre-activations on 512 training rows (at the relative "
        "tolerance `diagnose` uses for duplicates); *duplicate fraction*: `ds.Monitor`'s "
        "`duplicate/layer0`; *spread*: the largest difference between a unit's incoming weights and the "
        "first unit's. Against a 1-unit MLP and (multinomial) logistic regression trained the same way.",
        verdict,
        finding,
        [
            (
                [
                    "data",
                    "init",
                    "activation",
                    "hidden units",
                    "distinct units at init",
                    "distinct units at the end",
                    "duplicate fraction at the end",
                    "spread of W0 at the end",
                    "training loss (last epoch)",
                    "training accuracy",
                    "held-out accuracy",
                ],
                rows,
            ),
            _parts_table(parts),
        ],
        [
            f"{SCRIPT} --only symmetric_init",
            f"descend train digits --hidden 1 --activation {c['activation']} {sgd}",
            f"descend train digits --hidden {m['width']} --activation {c['activation']} {sgd}",
            f"descend train digits --model softmax {sgd}",
        ],
        [
            "No CLI option sets equal initial weights; the three commands train the 1-unit, the "
            "He-initialised and the linear comparison (float32, their own 20% held out), close to the "
            "table's rows.",
        ],
        summary=f"equal init: 1 distinct unit of {m['width']} throughout, accuracy {fmt(c['test_acc'])} "
        f"(1 unit: {fmt(one['test_acc'])}; He: {fmt(he['test_acc'])})",
    )


# ========================================================================= 15. momentum's memory


def _step_weights(beta: float, steps: int, *, constant: bool = False) -> np.ndarray:
    """How far each of ``steps`` updates of ``SGD(lr=1, momentum=beta)`` moves one parameter fed
    the gradient 1 once and then 0 (``constant``: 1 every step). With lr = 1 the k-th move after
    the impulse is the weight the velocity gives a gradient k steps old."""
    opt = ds.SGD(lr=1.0, momentum=beta)
    params = {"w": np.zeros(1)}
    state = opt.init(params)
    one, zero = {"w": np.ones(1)}, {"w": np.zeros(1)}
    out = np.empty(steps)
    for k in range(steps):
        before = float(params["w"][0])
        opt.step(params, one if (k == 0 or constant) else zero, state)
        out[k] = before - float(params["w"][0])
    return out


def measure_momentum_memory(
    betas: Sequence[float] = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0),
    horizon: int = 1000,
    orbit_betas: Sequence[float] = (0.5, 0.9, 0.99, 1.0),
    kappa: float = 10.0,
    lr: float = 0.05,
    steps: int = 2000,
    tol: float = 1e-3,
    shown: tuple[float, ...] = (0.9, 1.0),
    shown_steps: int = 150,
) -> dict[str, Any]:
    """The weight of past gradients in heavy-ball momentum's step (an impulse through
    ``ds.SGD(momentum=beta).step``), and races of momentum from (1, 1) on ``quadratic`` for each
    of ``orbit_betas``."""
    memory = []
    for beta in betas:
        w = _step_weights(beta, horizon)
        total = float(np.sum(w))
        cum = np.cumsum(w) / total
        memory.append(
            {
                "beta": beta,
                "weights": w,
                "total": total,
                "theory": math.inf if beta == 1 else 1 / (1 - beta),
                "truncated": horizon if beta == 1 else (1 - beta**horizon) / (1 - beta),
                "mean_age": float(np.sum(np.arange(horizon) * w) / total),
                "window": int(np.searchsorted(cum, 1 - math.exp(-1)) + 1),
                "window_theory": math.inf if beta == 1 else (-1 / math.log(beta) if beta > 0 else 0.0),
                "terminal": float(_step_weights(beta, horizon, constant=True)[-1]),
            }
        )
    f = ds.functions.get("quadratic", kappa=kappa)
    lam = np.diag(f.hessian(f.minima[0]))
    orbits = []
    for beta in orbit_betas:
        r = race(f, ["momentum"], lrs=lr, options={"momentum": {"momentum": beta}}, steps=steps, tol=tol)
        e = r.entries[0]
        dist = np.linalg.norm(e.path - f.minima[0], axis=1)
        tenth = max(steps // 10, 1)
        row = {
            "beta": beta,
            "race": r,
            "distance": dist,
            "late_early": float(np.mean(dist[-tenth:]) / np.mean(dist[:tenth])),
            "settle": e.steps_to_tol,
            "final_distance": float(dist[-1]),
        }
        if beta == 1.0:
            # beta = 1: x_{t+1} - 2 x_t + x_{t-1} = -lr lam x_t along each eigenvector, which
            # conserves Q = x_t^2 + x_{t-1}^2 - (2 - lr lam) x_t x_{t-1}: an undamped oscillator
            P = e.path
            Q = P[1:] ** 2 + P[:-1] ** 2 - (2 - lr * lam) * P[1:] * P[:-1]
            row["q_drift"] = float(np.max(np.abs(Q / Q[0] - 1)))
            flips = [np.flatnonzero(np.diff(np.sign(P[:, i])) != 0) for i in range(P.shape[1])]
            row["period"] = [2 * float(np.mean(np.diff(fl))) for fl in flips]
            row["period_theory"] = [2 * math.pi / math.acos(1 - lr * v / 2) for v in lam]
        orbits.append(row)
    short = [
        race(f, ["momentum"], lrs=lr, options={"momentum": {"momentum": beta}}, steps=shown_steps).entries[0]
        for beta in shown
    ]
    return {
        "horizon": horizon,
        "memory": memory,
        "shown": sub_race(orbits[0]["race"], short),
        "shown_steps": shown_steps,
        "orbits": orbits,
        "kappa": kappa,
        "lr": lr,
        "steps": steps,
        "tol": tol,
        "eigenvalues": lam,
    }


def verdict_momentum_memory(m: dict[str, Any]) -> dict[str, bool]:
    finite = [r for r in m["memory"] if r["beta"] < 1]
    one = next(r for r in m["orbits"] if r["beta"] == 1.0)
    damped = [r for r in m["orbits"] if r["beta"] < 1]
    return {
        "total weight of past gradients = 1/(1 - beta)": all(
            abs(r["total"] / r["truncated"] - 1) < 1e-9 for r in finite
        ),
        "63% of the weight within about 1/(1 - beta) steps": all(
            r["window"] <= r["theory"] + 1 for r in finite if r["beta"] > 0
        ),
        "beta = 1 orbits without settling": one["late_early"] > 0.5 and one["q_drift"] < 1e-6,
        "beta < 1 settles": all(r["settle"] is not None for r in damped),
    }


def draw_momentum_memory(m: dict[str, Any]) -> Path:
    from descend.viz import plot_contour

    size = (1600, 540)
    fig = new_figure(size)
    a, b, c = fig.subplots(1, 3, width_ratios=(1, 1.1, 1))
    cmap = __import__("matplotlib").colormaps["viridis"]
    shown = [r for r in m["memory"] if 0 < r["beta"] < 1]
    for i, r in enumerate(shown):
        color = cmap(i / max(len(shown) - 1, 1))
        k = np.arange(len(r["weights"]))
        a.semilogy(k, r["weights"], color=color, lw=1.8, label=f"β={r['beta']:g}: Σ = {r['total']:.4g}")
        a.axvline(r["theory"], color=color, ls=":", lw=1)
    a.set_xlim(0, 250)
    a.set_ylim(1e-4, 1.5)
    a.set_xlabel("age k of a gradient (steps ago)")
    a.set_ylabel("its weight in the step: β^k")
    a.set_title("momentum's memory (dotted: 1/(1−β))", fontsize="medium")
    a.grid(True, which="major", alpha=0.3)
    a.legend(fontsize="small")
    plot_contour(
        m["shown"],
        b,
        resolution=150,
        title=f"quadratic κ={m['kappa']:g}, lr={m['lr']:g}: the first {m['shown_steps']} steps",
    )
    for r in m["orbits"]:
        c.semilogy(r["distance"], lw=1.5, label=f"β={r['beta']:g}")
    c.axhline(m["tol"], color="black", ls="--", lw=1, label=f"tol {m['tol']:g}")
    c.set_ylim(1e-12, 10)
    c.set_xlabel("step")
    c.set_ylabel("distance from the minimum")
    c.set_title("β = 1 keeps its amplitude; β < 1 settles", fontsize="medium")
    c.grid(True, which="major", alpha=0.3)
    c.legend(fontsize="small")
    return save(fig, "momentum_memory", size)


def section_momentum_memory(m: dict[str, Any]) -> Section:
    parts = verdict_momentum_memory(m)
    verdict = _overall(parts)
    one = next(r for r in m["orbits"] if r["beta"] == 1.0)
    damped = [r for r in m["orbits"] if r["beta"] < 1]
    b9 = next((r for r in m["memory"] if r["beta"] == 0.9), m["memory"][0])
    finding = (
        f"Fed one gradient and then zeros, momentum β moved by β^k at the k-th step: at β = 0.9 the "
        f"weights of all past gradients summed to {fmt(b9['total'])} (1/(1−β) = {fmt(b9['theory'])}), "
        f"63% of that weight lay in the last {b9['window']} steps (−1/ln β = {fmt(b9['window_theory'])}) "
        f"and a constant gradient was amplified {fmt(b9['terminal'])}-fold. So 1/(1−β) is exactly the "
        "total weight (the step a steady gradient reaches) and about the window's length (−1/ln β ≈ "
        "1/(1−β) − ½). With β = 1 every past gradient keeps weight 1: on the quadratic the iterate "
        f"orbited the minimum for {m['steps']} steps, its mean distance over the last tenth "
        f"{fmt(one['late_early'])} x that over the first, the oscillator's invariant conserved to "
        f"{fmt(one['q_drift'])} (relative), with periods "
        + " and ".join(f"{p:.3g}" for p in one["period"])
        + " steps (undamped theory "
        + " and ".join(f"{p:.3g}" for p in one["period_theory"])
        + "); "
        + ", ".join(
            f"β = {r['beta']:g} settled within {m['tol']:g} at step {fmt(r['settle'])}" for r in damped
        )
        + "."
    )
    mem_rows = [
        [
            r["beta"],
            r["weights"][1] if len(r["weights"]) > 1 else None,
            r["total"],
            r["theory"],
            r["mean_age"],
            None if r["beta"] == 1 else r["beta"] / (1 - r["beta"]),
            r["window"],
            r["window_theory"],
            r["terminal"],
        ]
        for r in m["memory"]
    ]
    orbit_rows = [
        [r["beta"], r["settle"], r["final_distance"], r["late_early"], r.get("q_drift")] for r in m["orbits"]
    ]
    return Section(
        "momentum_memory",
        "Momentum's memory is 1/(1−β); β = 1 is a pendulum without friction",
        'From the notes (004), on SGD with momentum: "β is decaying factor if its .9 then current is .9 '
        'of prev which is .9 of its prev; prev influence = 1/(1−β); β = 1 is like no friction pendulum". '
        "descend's heavy ball is PyTorch's: b = β b + g, p −= lr b. Measured by feeding "
        f"`ds.SGD(lr=1, momentum=β).step` a gradient of 1 once and then zeros for {m['horizon']} steps "
        "(the k-th move is the weight of a gradient k steps old), and 1 every step (the step it settles "
        f"to); then by racing momentum from (1, 1) on `quadratic` κ = {m['kappa']:g} (eigenvalues "
        + ", ".join(f"{v:g}" for v in m["eigenvalues"])
        + f") at lr = {m['lr']:g} for {m['steps']} steps. *63% window*: the fewest recent steps holding "
        "1 − 1/e of the total weight.",
        verdict,
        finding,
        [
            (
                [
                    "β",
                    "weight of the previous gradient",
                    f"total weight ({m['horizon']} steps)",
                    "1/(1−β)",
                    "mean age",
                    "β/(1−β)",
                    "63% window",
                    "−1/ln β",
                    f"step after {m['horizon']} constant gradients",
                ],
                mem_rows,
            ),
            (
                [
                    "β",
                    f"steps to within {m['tol']:g}",
                    f"distance after {m['steps']} steps",
                    "mean distance, last tenth / first tenth",
                    "drift of the invariant Q",
                ],
                orbit_rows,
            ),
            _parts_table(parts),
        ],
        [
            f"{SCRIPT} --only momentum_memory",
            f"descend race quadratic:kappa={m['kappa']:g} --optimizers momentum --lr {m['lr']:g} "
            f"--set momentum.momentum=1 --steps {m['steps']}",
            f"descend race quadratic:kappa={m['kappa']:g} --optimizers momentum --lr {m['lr']:g} "
            f"--set momentum.momentum=0.9 --steps {m['steps']}",
        ],
        [
            "With β = 1 the sum 1/(1−β) is infinite: the total weight grows with the horizon (the "
            f"{m['horizon']} of the table). The weights are those of PyTorch's undampened form; an "
            "exponential moving average (Adam's m = β m + (1−β) g) has the same window but total "
            "weight 1.",
        ],
        summary=f"β=0.9: total weight {fmt(b9['total'])}, 63% window {b9['window']} steps; β=1 orbits "
        f"(late/early distance {fmt(one['late_early'])}), β<1 settles",
    )


# =============================================================== 17. the lr: overshoot and crawl


def measure_lr_range(
    kappa: float = 10.0,
    quad_mults: Sequence[float] = (0.05, 0.5, 0.95, 1.05),
    quad_steps: int = 100,
    mults: Sequence[float] = (0.01, 0.1, 0.5, 0.99, 1.01, 1.5, 2, 3, 4, 8, 32, 128),
    steps: int = 100,
    hidden: int = 32,
    curvature: Sequence[float] = (0.5, 3.0, 4.0),
    probe_rows: int = 512,
    seed: int = 0,
) -> dict[str, Any]:
    """Full-batch gradient descent at lr = mult x 2/lambda_max, lambda_max measured by
    ``ds.diagnose`` at the start: paths on ``quadratic``, and ``steps`` updates of least squares
    on ``linear`` and of one-hidden-layer ReLU and tanh MLPs on ``digits``. ``ds.Monitor`` follows
    lambda_max during the ReLU runs at the ``curvature`` multiples."""
    f = ds.functions.get("quadratic", kappa=kappa)
    dq = ds.diagnose(f, f.start, optimizer="sgd", lr=1.0)
    races = [race(f, ["sgd"], lrs=mult * dq.lr_max, steps=quad_steps) for mult in quad_mults]
    lin, dig = load("linear", seed=seed), load("digits", seed=seed)
    problems = [
        ("least squares (linear)", ds.models.LinearRegression(dtype="float64"), lin, 1),
        (
            f"MLP {hidden} ReLU (digits)",
            MLP(hidden=(hidden,), activation="relu", output="softmax", dtype="float64"),
            dig,
            10,
        ),
        (
            f"MLP {hidden} tanh (digits)",
            MLP(hidden=(hidden,), activation="tanh", output="softmax", dtype="float64"),
            dig,
            10,
        ),
    ]
    out = []
    for name, model, data, k in problems:
        X, y = data.X, data.y
        p0 = model.init(np.random.default_rng([seed, 0]), X.shape[1], k)
        d = ds.diagnose(model, p0, (X, y), optimizer="sgd", lr=1.0, seed=seed)
        runs = []
        for mult in mults:
            watch = "ReLU" in name and mult in curvature
            monitor = ds.Monitor(every=5, probe=(X[:probe_rows], y[:probe_rows]), curvature_every=1)
            run, diverged = _train(
                model,
                (X, y),
                optimizer="sgd",
                lr=mult * d.lr_max,
                batch_size=None,
                epochs=steps,
                seed=seed,
                standardize_target=False,
                callbacks=[monitor] if watch else [],
            )
            final = math.inf if diverged is not None else float(model.loss(run.params, X, y))
            seen = run.history.steps["loss"]
            runs.append(
                {
                    "mult": mult,
                    "lr": mult * d.lr_max,
                    "final": final,
                    "lowest": float(np.min(seen)) if seen else math.inf,
                    "peak": float(np.max(seen)) if seen else math.inf,
                    "diverged": diverged,
                    "curvature": dict(run.history.monitor) if watch else None,
                }
            )
        # unstable: diverged, or turned back up (a stable descent ends near its lowest loss)
        unstable = [r["mult"] for r in runs if r["diverged"] is not None or r["final"] > 1.5 * r["lowest"]]
        best = min(runs, key=lambda r: r["final"])
        out.append(
            {
                "name": name,
                "lambda_max": float(d.hessian_top[0]),
                "lr_max": float(d.lr_max),
                "loss0": float(d.loss),
                "runs": runs,
                "best": best,
                "onset": min(unstable) if unstable else None,
                # the largest stable lr below the first unstable one
                "last_stable": max(
                    (r["mult"] for r in runs if r["mult"] < min(unstable, default=math.inf)), default=None
                ),
            }
        )
    return {
        "kappa": kappa,
        "quad_lambda": float(dq.hessian_top[0]),
        "quad_lr_max": float(dq.lr_max),
        "quad_steps": quad_steps,
        "paths": sub_race(races[0], [r.entries[0] for r in races]),
        "hidden": hidden,
        "quad_mults": list(quad_mults),
        "steps": steps,
        "mults": list(mults),
        "problems": out,
    }


def verdict_lr_range(m: dict[str, Any]) -> dict[str, bool]:
    crawl = all(p["runs"][0]["final"] > 2 * p["best"]["final"] for p in m["problems"])
    over = all(
        p["runs"][-1]["diverged"] is not None or p["runs"][-1]["final"] > 10 * p["best"]["final"]
        for p in m["problems"]
    )
    lsq = m["problems"][0]
    return {
        "too low an lr crawls (smallest lr: final loss > 2x the best)": crawl,
        "too high an lr overshoots (largest lr: diverged or > 10x the best)": over,
        "least squares: unstable from 2/λ_max on (within 2%)": lsq["onset"] is not None
        and lsq["last_stable"] is not None
        and 0.98 <= lsq["last_stable"] < 1 < lsq["onset"] <= 1.02,
    }


def draw_lr_range(m: dict[str, Any]) -> Path:
    from descend.viz import plot_contour

    size = (1600, 560)
    fig = new_figure(size)
    a, b, c = fig.subplots(1, 3, width_ratios=(1.1, 1, 1))
    plot_contour(
        m["paths"],
        a,
        resolution=150,
        title=f"GD on quadratic κ={m['kappa']:g}: lr = "
        + ", ".join(f"{x:g}" for x in m["quad_mults"])
        + " × 2/λ_max",
    )
    colors = ("#1f77b4", "#d62728", "#2ca02c")
    for p, color in zip(m["problems"], colors, strict=False):
        x = np.array([r["mult"] for r in p["runs"]])
        yv = np.array([r["final"] / p["loss0"] for r in p["runs"]])
        ok = np.isfinite(yv)
        b.loglog(x[ok], yv[ok], "o-", color=color, ms=4, label=f"{p['name']}: λ_max={p['lambda_max']:.3g}")
        if (~ok).any():
            b.plot(x[~ok], np.full((~ok).sum(), 3.0), "x", color=color, ms=10, mew=2.5)
    b.axvline(1.0, color="black", ls="--", lw=1, label="2/λ_max (λ_max at the start, ds.diagnose)")
    b.axhline(1.0, color="0.5", ls=":", lw=1)
    b.set_xlabel("lr / (2/λ_max)")
    b.set_ylabel(f"loss after {m['steps']} full-batch steps / loss at start  (x: diverged)")
    b.set_title("crawl at small lr, overshoot beyond the limit", fontsize="medium")
    b.grid(True, which="major", alpha=0.3)
    b.legend(fontsize="x-small", loc="lower left")
    relu = m["problems"][1]
    for r in relu["runs"]:
        if r["curvature"] is None:
            continue
        mon = r["curvature"]
        label = f"lr = {r['mult']:g} × 2/λ_max" + (" (diverged)" if r["diverged"] is not None else "")
        c.semilogy(mon["step"], mon["lr_lambda"], "o-", ms=3, label=label)
    c.axhline(2.0, color="black", ls="--", lw=1, label="stability limit lr·λ_max = 2")
    c.set_xlabel("step")
    c.set_ylabel("lr · λ_max (ds.Monitor, 512 rows)")
    c.set_title(f"{relu['name']}: the curvature falls while training", fontsize="medium")
    c.grid(True, alpha=0.3)
    c.legend(fontsize="small")
    return save(fig, "lr_range", size)


def section_lr_range(m: dict[str, Any]) -> Section:
    parts = verdict_lr_range(m)
    verdict = _overall(parts)
    lsq, relu, tanh = m["problems"]

    def onset(p: dict[str, Any]) -> str:
        if p["onset"] is None:
            return f"never up to {max(m['mults']):g}x"
        return f"between {fmt(p['last_stable'])}x and {fmt(p['onset'])}x"

    finding = (
        "Both ends of the lr range lose: at "
        + ", ".join(
            f"{fmt(p['runs'][0]['mult'])}x the limit {p['name']} ended at {fmt(p['runs'][0]['final'])} "
            f"against the best {fmt(p['best']['final'])} (at {fmt(p['best']['mult'])}x)"
            for p in m["problems"]
        )
        + ". Instability (a divergence, or a loss that turned back up to over 1.5x its lowest) began "
        + "; ".join(f"for {p['name']} {onset(p)} 2/λ_max" for p in m["problems"])
        + ". "
        + (
            "The prediction from the curvature at the start is exact for least squares, whose Hessian "
            "is constant, and conservative for the networks: `ds.Monitor` shows the ReLU net's "
            "λ_max falling as it trains, so lrs above 2/λ_max of the start are stable after a few "
            "steps."
            if all(p["onset"] is None or p["onset"] > 2 for p in m["problems"][1:])
            else "For the networks the limit from the curvature at the start is near where they fail."
        )
        + (
            f" The tanh net never ran away (bounded units bound its gradients): at "
            f"{fmt(tanh['runs'][-1]['mult'])}x it ended at {fmt(tanh['runs'][-1]['final'])}."
            if tanh["onset"] is None
            else ""
        )
    )
    rows = []
    for p in m["problems"]:
        for r in p["runs"]:
            rows.append(
                [
                    p["name"],
                    r["mult"],
                    r["lr"],
                    "diverged at step " + str(r["diverged"]) if r["diverged"] is not None else r["final"],
                    r["lowest"],
                    r["peak"],
                ]
            )
    head = [
        [
            "problem",
            "λ_max at start",
            "2/λ_max",
            "loss at start",
            "best lr / limit",
            "best final loss",
            "unstable from",
        ]
    ]
    summ = [
        [p["name"], p["lambda_max"], p["lr_max"], p["loss0"], p["best"]["mult"], p["best"]["final"], onset(p)]
        for p in m["problems"]
    ]
    quad_rows = [
        [mult, mult * m["quad_lr_max"], e.final_loss, e.distance, e.steps_to_tol]
        for mult, e in zip(m["quad_mults"], m["paths"].entries, strict=True)
    ]
    good = relu["last_stable"]
    race_cmd = f"descend race quadratic:kappa={m['kappa']:g} --optimizers sgd"
    lsq_cmd = "descend train linear --model linear --optimizer sgd --batch-size full"
    return Section(
        "lr_range",
        "Too high a learning rate overshoots, too low crawls",
        'From the notes (003): "If the learning rate is set to a huge or high number, then it may '
        "overshoot the local minima and if its set to a small/ low number, it will take a long time "
        'to converge." For gradient descent on a quadratic the line between the two is exact: '
        "lr < 2/λ_max, λ_max the Hessian's largest eigenvalue. Measured with full-batch gradient "
        f"descent (`fit`, batch_size=None, {m['steps']} steps, float64) on least squares on `linear` "
        "and on one-hidden-layer ReLU and tanh MLPs on `digits`, at lrs from "
        f"{min(m['mults']):g} to {max(m['mults']):g} times 2/λ_max, λ_max measured at the start by "
        "`ds.diagnose` (its `lr_max`); and the paths of GD on `quadratic` κ = "
        f"{m['kappa']:g} at " + ", ".join(f"{x:g}" for x in m["quad_mults"]) + " times its limit.",
        verdict,
        finding,
        [
            (head[0], summ),
            (
                [
                    "quadratic: lr / limit",
                    "lr",
                    f"loss after {m['quad_steps']} steps",
                    "distance",
                    "steps to 0.001",
                ],
                quad_rows,
            ),
            (
                [
                    "problem",
                    "lr / limit",
                    "lr",
                    f"loss after {m['steps']} steps",
                    "lowest on the way",
                    "largest on the way",
                ],
                rows,
            ),
            _parts_table(parts),
        ],
        [
            f"{SCRIPT} --only lr_range",
            f"{race_cmd} --lr {0.95 * m['quad_lr_max']:.4g} --steps {m['quad_steps']}",
            f"{race_cmd} --lr {1.05 * m['quad_lr_max']:.4g} --steps {m['quad_steps']}",
            f"descend diagnose linear --model linear --optimizer sgd --lr {lsq['lr_max']:.4g}",
            f"{lsq_cmd} --lr {0.99 * lsq['lr_max']:.4g} --epochs {m['steps']} --val-fraction 0",
            f"{lsq_cmd} --lr {1.01 * lsq['lr_max']:.4g} --epochs {m['steps']} --val-fraction 0",
            f"descend diagnose digits --hidden {m['hidden']} --optimizer sgd --lr {relu['lr_max']:.4g}",
            f"descend train digits --hidden {m['hidden']} --optimizer sgd --batch-size full "
            f"--lr {good * relu['lr_max']:.4g} --epochs {m['steps']} --val-fraction 0",
        ],
        [
            "The CLI's diagnosis prints *lr / stability limit* (1 at lr = 2/λ_max) for the model at its "
            "seeded init; `train` runs in float32 and scales the regression target, which changes the "
            "loss values but not where least squares diverges (its Hessian does not involve the target). "
            f"The second `train` of the MLP runs at {good:g}x the init's limit, the largest of the grid "
            "that did not run away.",
        ],
        summary="unstable from: " + "; ".join(f"{p['name']} {onset(p)}" for p in m["problems"]),
    )


# ================================================================= 19. saddles in high dimension


class _RandomField:
    r"""A random smooth function of ``n`` variables with its exact gradient and Hessian:
    :math:`f(x) = \sum_k a_k \cos(w_k \cdot x + \phi_k)` over ``features`` plane waves,
    :math:`w_k \sim N(0, I)`, :math:`a_k \sim N(0, 1/\text{features})`,
    :math:`\phi_k \sim U(0, 2\pi)` (close to a stationary Gaussian random field)."""

    def __init__(self, n: int, features: int, seed: int):
        rng = np.random.default_rng([seed, n])
        self.W = rng.standard_normal((features, n))
        self.a = rng.standard_normal(features) / math.sqrt(features)
        self.phi = rng.uniform(0.0, 2 * math.pi, features)
        self.__name__ = f"random field in {n}-D"

    def __call__(self, x: np.ndarray) -> float:
        return float(self.a @ np.cos(self.W @ x + self.phi))

    def grad(self, x: np.ndarray) -> np.ndarray:
        return -(self.a * np.sin(self.W @ x + self.phi)) @ self.W

    def hessian(self, x: np.ndarray) -> np.ndarray:
        c = self.a * np.cos(self.W @ x + self.phi)
        return -(self.W.T * c) @ self.W

    def grid(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Values on a 2-D meshgrid (n = 2 only)."""
        phase = (
            np.multiply.outer(self.W[:, 0], X) + np.multiply.outer(self.W[:, 1], Y) + self.phi[:, None, None]
        )
        return np.tensordot(self.a, np.cos(phase), axes=1)


def _gradient_norm(f: _RandomField) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """½‖∇f‖² and its gradient H ∇f: zero exactly at the critical points of f, of any index."""

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        g = f.grad(x)
        return 0.5 * float(g @ g), f.hessian(x) @ g

    return fun


def measure_saddles(
    dims: Sequence[int] = (1, 2, 3, 4, 6, 8),
    starts: int = 40,
    features: int = 200,
    box: float = 3.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Critical points of a random field per dimension: ``starts`` uniform starts in the box,
    each taken to a zero of the gradient by L-BFGS on ½‖∇f‖² (``ds.minimize``), then judged by
    ``ds.diagnose`` (a stationary point or not, and its exact Hessian's eigenvalues)."""
    rows = []
    for n in dims:
        f = _RandomField(n, features, seed)
        rng = np.random.default_rng([seed, 1, n])
        points: list[np.ndarray] = []
        index: list[int] = []
        missed = 0
        for _ in range(starts):
            res = ds.minimize(
                _gradient_norm(f),
                rng.uniform(-box, box, n),
                grad=True,
                optimizer="lbfgs",
                max_steps=200,
                tol=1e-12,
                options={"history_size": 10, "line_search_fn": "strong_wolfe"},
            )
            d = ds.diagnose(f, res.x)
            if d.critical_point is None:  # a local minimum of ‖∇f‖ that is not a zero of it
                missed += 1
                continue
            if any(np.linalg.norm(res.x - p) < 1e-6 for p in points):
                continue
            points.append(res.x)
            index.append(int(np.sum(d.spectrum.nodes < 0)))
        k = np.array(index)
        found = len(k)
        rows.append(
            {
                "n": n,
                "found": found,
                "missed": missed,
                "minima": int(np.sum(k == 0)),
                "saddles": int(np.sum((k > 0) & (k < n))),
                "maxima": int(np.sum(k == n)),
                "share_minima": float(np.mean(k == 0)) if found else math.nan,
                "share_saddles": float(np.mean((k > 0) & (k < n))) if found else math.nan,
                "share_maxima": float(np.mean(k == n)) if found else math.nan,
                "mean_index": float(np.mean(k) / n) if found else math.nan,
                "points": points,
                "index": k,
                "field": f,
            }
        )
    return {"dims": list(dims), "starts": starts, "features": features, "box": box, "rows": rows}


def verdict_saddles(m: dict[str, Any]) -> dict[str, bool]:
    rows = [r for r in m["rows"] if r["found"]]
    low = next((r for r in rows if r["n"] == 2), rows[0])
    high = rows[-1]
    return {
        f"most critical points are saddles in {high['n']}-D (> 90%)": high["share_saddles"] > 0.9,
        f"minima are rarer in {high['n']}-D than in {low['n']}-D": high["share_minima"] < low["share_minima"],
    }


def draw_saddles(m: dict[str, Any]) -> Path:
    fig = new_figure(WIDE)
    left, right = fig.subplots(1, 2)
    rows = m["rows"]
    n = np.arange(len(rows))
    mins = np.array([r["share_minima"] for r in rows])
    sad = np.array([r["share_saddles"] for r in rows])
    maxs = np.array([r["share_maxima"] for r in rows])
    left.bar(n, mins, color="#2ca02c", label="minima (index 0)")
    left.bar(n, sad, bottom=mins, color="#ff7f0e", label="saddles (0 < index < n)")
    left.bar(n, maxs, bottom=mins + sad, color="#1f77b4", label="maxima (index n)")
    for i, r in enumerate(rows):
        left.annotate(
            f"{r['found']}", (i, 1.0), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8
        )
    left.set_xticks(n, [str(r["n"]) for r in rows])
    left.set_xlabel("dimension n (above each bar: distinct critical points found)")
    left.set_ylabel("share of the critical points found")
    left.set_ylim(0, 1.1)
    left.set_title("kinds of critical points of a random function", fontsize="medium")
    left.legend(fontsize="small", loc="lower left")
    two = next((r for r in rows if r["n"] == 2), None)
    if two is not None:
        f = two["field"]
        b = max(m["box"], *(float(np.max(np.abs(p))) + 0.3 for p in two["points"]))
        g = np.linspace(-b, b, 200)
        X, Y = np.meshgrid(g, g)
        right.contourf(X, Y, f.grid(X, Y), levels=30, cmap="viridis")
        styles = {0: ("o", "white", "minimum"), 1: ("X", "#ff7f0e", "saddle"), 2: ("^", "#d62728", "maximum")}
        for k, (marker, color, label) in styles.items():
            P = np.array([p for p, i in zip(two["points"], two["index"], strict=True) if i == k]).reshape(
                -1, 2
            )
            right.plot(
                P[:, 0],
                P[:, 1],
                marker,
                color=color,
                mec="black",
                ms=8,
                ls="none",
                label=f"{label} ({len(P)})",
            )
        right.set_xlim(-b, b)
        right.set_ylim(-b, b)
        right.set_aspect("equal")
        right.legend(fontsize="small", loc="upper right")
        right.set_title("the 2-D field and its critical points found", fontsize="medium")
    return save(fig, "saddles_high_dim", WIDE)


def section_saddles(m: dict[str, Any]) -> Section:
    parts = verdict_saddles(m)
    verdict = _overall(parts)
    rows = [
        [
            r["n"],
            r["found"],
            r["missed"],
            r["minima"],
            r["saddles"],
            r["maxima"],
            r["share_minima"],
            r["share_saddles"],
            r["mean_index"],
        ]
        for r in m["rows"]
    ]
    high = m["rows"][-1]
    finding = (
        "The share of minima among the critical points found fell with the dimension: "
        + ", ".join(f"{fmt(r['share_minima'])} in {r['n']}-D" for r in m["rows"])
        + f"; in {high['n']}-D {100 * high['share_saddles']:.0f}% of the {high['found']} found were saddles "
        f"(mean index {fmt(high['mean_index'])} of n: about half the directions curve down). In 1-D "
        "there are no saddles, only minima and maxima."
    )
    return Section(
        "saddles_high_dim",
        "Saddle points outnumber minima in high dimension",
        'From the notes (001): "What if the loss function has a local minima or a saddle point? '
        'Saddle points are much more common in high dimension." A critical point is a minimum only '
        "if the Hessian curves up in all n directions; if each direction were a coin toss, a "
        "minimum would be one of 2^n cases. Measured on random smooth functions of n variables "
        f"(a sum of {m['features']} random plane waves, exact derivatives): from {m['starts']} uniform "
        f"starts in [−{m['box']:g}, {m['box']:g}]^n, `ds.minimize` (L-BFGS) drives ½‖∇f‖² to zero, "
        "and `ds.diagnose(f, x)` judges the point: a stationary point or not (its `critical_point`), "
        "and its index, the number of negative eigenvalues of the exact Hessian. Duplicates (within "
        "1e-6) count once.",
        verdict,
        finding,
        [
            (
                [
                    "n",
                    "distinct critical points",
                    "starts that found none",
                    "minima",
                    "saddles",
                    "maxima",
                    "share of minima",
                    "share of saddles",
                    "mean index / n",
                ],
                rows,
            ),
            _parts_table(parts),
        ],
        [
            f"{SCRIPT} --only saddles_high_dim",
            "# no CLI command: random functions are not built-in; ds.diagnose(f, x) judges a point",
        ],
        [
            "Random functions stand in for loss surfaces here (the setting of Bray & Dean 2007 and "
            "Dauphin et al. 2014); the critical points are those that descent on ‖∇f‖² reaches from "
            "uniform starts, not a census, and at higher n more starts end at a non-zero minimum of "
            "‖∇f‖ (the second column).",
        ],
        summary="share of minima: "
        + ", ".join(f"{fmt(r['share_minima'])} ({r['n']}-D)" for r in (m["rows"][0], m["rows"][-1]))
        + f"; saddles in {high['n']}-D: {100 * high['share_saddles']:.0f}%",
    )


# ========================================================== 20. the start decides the minimum

#: (function, lr of sgd, momentum and nesterov); adam takes INITIAL_ADAM_LR
INITIAL_FUNCTIONS: tuple[tuple[str, float], ...] = (
    ("two_well", 0.02),
    ("himmelblau", 0.005),
    ("rastrigin", 0.002),
)
INITIAL_ADAM_LR = 0.05


#: functions that are a sum of one term per coordinate: N starts in 2-D are one start in 2N-D
SEPARABLE = ("rastrigin", "styblinski_tang")


def _from_starts(
    f: Any, starts: np.ndarray, optimizer: str, lr: float, steps: int
) -> tuple[np.ndarray, bool]:
    """Where each start ends after ``steps`` updates: all starts at once as one objective, the sum
    of ``f`` over them, which an elementwise rule (SGD, momentum, Adam) updates exactly as it
    would each start alone, in one ``ds.minimize`` call. For a separable function that sum is the
    function itself in more dimensions; otherwise each start's gradient is ``f.grad``'s."""
    n = len(starts)
    if f.name in SEPARABLE:
        fun: Any = ds.functions.get(f.name, dim=f.dim * n)
    else:

        def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
            P = z.reshape(n, f.dim)
            value = float(np.sum(f.grid(P[:, 0], P[:, 1])))
            return value, np.concatenate([f.grad(p) for p in P])

    res = ds.minimize(
        fun,
        starts.ravel(),
        grad=None if f.name in SEPARABLE else True,
        optimizer=optimizer,
        lr=lr,
        max_steps=steps,
        tol=None,
        record_path=False,
        on_divergence="stop",
    )
    return res.x.reshape(n, f.dim), bool(res.diverged)


def measure_initial_point(
    functions: Sequence[tuple[str, float]] = INITIAL_FUNCTIONS,
    optimizers: Sequence[str] = ("sgd", "momentum", "nesterov", "adam"),
    adam_lr: float = INITIAL_ADAM_LR,
    grid: int = 12,
    steps: int = 300,
    tol: float = 0.05,
) -> dict[str, Any]:
    """From a ``grid`` x ``grid`` lattice of starts over each function's domain, the known minimum
    each optimizer ends within ``tol`` of (or none)."""
    out = []
    for name, lr in functions:
        f = ds.functions.get(name)
        (x0, x1), (y0, y1) = f.domain
        xs, ys = np.linspace(x0, x1, grid), np.linspace(y0, y1, grid)
        starts = np.array([[x, y] for y in ys for x in xs])
        minima = f.minima
        is_global = [any(np.array_equal(p, g) for g in f.global_minima) for p in minima]
        nearest = np.array([int(np.argmin([np.linalg.norm(s - p) for p in minima])) for s in starts])
        ends: dict[str, np.ndarray] = {}
        rows = []
        for opt in optimizers:
            rate = adam_lr if opt == "adam" else lr
            X, diverged = _from_starts(f, starts, opt, rate, steps)
            labels = np.full(len(starts), -1)
            for i, x in enumerate(X):
                dist = [np.linalg.norm(x - p) for p in minima]
                j = int(np.argmin(dist))
                if dist[j] < tol:
                    labels[i] = j
            ends[opt] = labels
            reached = labels[labels >= 0]
            rows.append(
                {
                    "optimizer": opt,
                    "lr": rate,
                    "diverged": diverged,
                    "converged": float(np.mean(labels >= 0)),
                    "global": float(np.mean([lab >= 0 and is_global[lab] for lab in labels])),
                    "distinct": len(set(reached.tolist())),
                    "nearest": float(np.mean(labels == nearest)),
                    "agree_gd": float(np.mean(labels == ends[optimizers[0]])),
                }
            )
        table = np.array([ends[o] for o in optimizers])
        spread = np.array([len(set(table[:, i].tolist())) for i in range(len(starts))])
        pick = int(np.argmax(spread))  # a start where the optimizers part ways most
        out.append(
            {
                "name": name,
                "lr": lr,
                "function": f,
                "starts": starts,
                "ends": ends,
                "rows": rows,
                "minima": len(minima),
                "global_minima": len(f.global_minima),
                "split_start": starts[pick] if spread[pick] > 1 else None,
                "split_share": float(np.mean(spread > 1)),
            }
        )
    return {
        "functions": out,
        "optimizers": list(optimizers),
        "grid": grid,
        "steps": steps,
        "tol": tol,
        "adam_lr": adam_lr,
    }


def verdict_initial_point(m: dict[str, Any]) -> dict[str, bool]:
    fs = m["functions"]
    return {
        "the start decides: different starts end in different minima (every function, every optimizer)": all(
            r["distinct"] > 1 for f in fs for r in f["rows"]
        ),
        "from some starts every optimizer misses the global minimum (where one is unique)": all(
            r["global"] < 1 for f in fs if f["global_minima"] == 1 for r in f["rows"]
        ),
    }


def draw_initial_point(m: dict[str, Any]) -> Path:
    fs, opts = m["functions"], m["optimizers"]
    size = (1500, 360 * len(fs) + 60)
    fig = new_figure(size)
    axes = fig.subplots(len(fs), len(opts), squeeze=False)
    palette = __import__("matplotlib").colormaps["tab10"]
    for i, fm in enumerate(fs):
        f = fm["function"]
        (x0, x1), (y0, y1) = f.domain
        gx, gy = np.meshgrid(np.linspace(x0, x1, 120), np.linspace(y0, y1, 120))
        Z = f.grid(gx, gy)
        for j, opt in enumerate(opts):
            ax = axes[i, j]
            ax.contour(gx, gy, Z, levels=15, colors="0.75", linewidths=0.6)
            lab = fm["ends"][opt]
            colors = [palette(v % 10) if v >= 0 else (0.6, 0.6, 0.6, 1.0) for v in lab]
            ax.scatter(fm["starts"][:, 0], fm["starts"][:, 1], c=colors, s=28, edgecolors="none")
            G = np.array(f.global_minima)
            ax.plot(G[:, 0], G[:, 1], "*", color="gold", mec="black", ms=12)
            row = next(r for r in fm["rows"] if r["optimizer"] == opt)
            ax.set_title(
                f"{fm['name']}, {opt} (lr={row['lr']:g}): global {100 * row['global']:.0f}%", fontsize="small"
            )
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
            ax.tick_params(labelsize=7)
    fig.suptitle(
        f"each start coloured by the minimum it ends in after {m['steps']} steps (grey: none; star: global)"
    )
    return save(fig, "initial_point", size)


def section_initial_point(m: dict[str, Any]) -> Section:
    parts = verdict_initial_point(m)
    verdict = _overall(parts)
    rows = [
        [
            fm["name"],
            r["optimizer"],
            r["lr"],
            r["converged"],
            r["global"],
            f"{r['distinct']} of {fm['minima']}",
            r["nearest"],
            r["agree_gd"],
        ]
        for fm in m["functions"]
        for r in fm["rows"]
    ]
    two, rast = (next(f for f in m["functions"] if f["name"] == n) for n in ("two_well", "rastrigin"))

    def shares(fm: dict[str, Any]) -> str:
        return ", ".join(f"{r['optimizer']} {100 * r['global']:.0f}%" for r in fm["rows"])

    finding = (
        f"Which minimum a run ends in is set by where it starts: from the {m['grid']}² starts the "
        "optimizers reached "
        + "; ".join(
            f"{fm['name']}: " + ", ".join(str(r["distinct"]) for r in fm["rows"]) + " distinct minima"
            for fm in m["functions"]
        )
        + f" (in the order {', '.join(m['optimizers'])}). The share that reached the global minimum: "
        f"two_well {shares(two)}; rastrigin {shares(rast)}"
        " (himmelblau's four minima are all global). Most runs end at the minimum nearest their start "
        "("
        + "; ".join(
            f"{fm['name']} " + ", ".join(f"{100 * r['nearest']:.0f}%" for r in fm["rows"])
            for fm in m["functions"]
        )
        + "). The optimizer changes the outcome from some starts: the optimizers did not all end in "
        "the same minimum from "
        + ", ".join(f"{100 * fm['split_share']:.0f}% ({fm['name']})" for fm in m["functions"])
        + " of the starts."
    )

    def lr_opt(fm: dict[str, Any]) -> str:
        return ",".join(f"{o}={m['adam_lr'] if o == 'adam' else fm['lr']:g}" for o in m["optimizers"])

    commands = [f"{SCRIPT} --only initial_point"]
    for fm in m["functions"]:
        s = fm["split_start"]
        commands.append(
            f"descend race {fm['name']} --optimizers {','.join(m['optimizers'])} --lr {lr_opt(fm)} "
            f"--steps {m['steps']}" + (f" --start {s[0]:.6g},{s[1]:.6g}" if s is not None else "")
        )
    return Section(
        "initial_point",
        "The initial point decides which minimum is found",
        'From the notes: "initializations are different across different landscapes" (000); '
        '"convergence to a bad local minimum may happen and the system will have to be re-optimized '
        'with a different set of initialization and weights" (003). Measured on three surfaces '
        "with several minima (`two_well`: a deep and a shallow well; `himmelblau`: four global minima; "
        f"`rastrigin`: a lattice of {next(f for f in m['functions'] if f['name'] == 'rastrigin')['minima']} "
        f"minima around the global one) from a {m['grid']} x {m['grid']} grid of starts over each "
        f"domain, {m['steps']} steps of GD, momentum 0.9, Nesterov 0.9 (one lr per surface) and Adam "
        f"(lr {m['adam_lr']:g}); a run *ends in* the known minimum within {m['tol']:g} of its last "
        "iterate (none if no minimum is that close). All starts of one optimizer run as one "
        "objective (the sum over starts), which these elementwise rules update exactly as separate runs.",
        verdict,
        finding,
        [
            (
                [
                    "function",
                    "optimizer",
                    "lr",
                    "share ending at a minimum",
                    "share at the global minimum",
                    "distinct minima reached",
                    "share at the minimum nearest the start",
                    "share agreeing with GD",
                ],
                rows,
            ),
            _parts_table(parts),
        ],
        commands,
        [
            "Each race starts where the optimizers part ways most (from the function's own start "
            "where they never do); its table's *dist. to min* says how far each ended from a known "
            "minimum, and its contour picture shows which.",
        ],
        summary="global minimum reached: two_well " + shares(two) + "; rastrigin " + shares(rast),
    )


# ============================================================================ CLAIMS of this file

CLAIMS: dict[str, tuple[Callable[[], Any], Callable[..., Path], Callable[..., Section]]] = {
    "vanishing_gradients": (measure_vanishing, draw_vanishing, section_vanishing),
    "symmetric_init": (measure_symmetric, draw_symmetric, section_symmetric),
    "momentum_memory": (measure_momentum_memory, draw_momentum_memory, section_momentum_memory),
    "lr_range": (measure_lr_range, draw_lr_range, section_lr_range),
    "saddles_high_dim": (measure_saddles, draw_saddles, section_saddles),
    "initial_point": (measure_initial_point, draw_initial_point, section_initial_point),
}
