"""Optimizer step time: descend's fused kernels vs its NumPy reference vs ``torch.optim``.

Run: ``python -m benchmarks optim`` (or ``python benchmarks/bench_optim.py [--rounds R]
[--sizes 1e4,1e5,1e6,1e7] [--total N] [--leaves L]``). Writes the ``optim`` section of
``docs/benchmarks.md`` and the plot ``docs/benchmarks/optim-step-scaling.png``, and prints the
section. torch and optax are optional (their columns are skipped with a note when absent).

Every number is the median of ``--rounds`` samples; within a round the contenders alternate
(descend fused, descend fused without the finiteness pass, descend NumPy, torch, torch with
its own finiteness check, optax), so load from other processes falls on all of them alike;
ratios are taken between medians of one run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks._common import DOC, ROOT, alternate, machine, median, spread, versions, write_section

# isort: split
import descend as ds  # after benchmarks._common, which puts this checkout's src first

NAME = "optim"
PLOT = ROOT / "docs" / "benchmarks" / "optim-step-scaling.png"
LR = 1e-3

# label, descend class, torch.optim class, torch keyword arguments for the same rule
RULES = [
    ("SGD", ds.SGD, "SGD", {}),
    ("Momentum", ds.Momentum, "SGD", {"momentum": 0.9}),
    ("Nesterov", ds.Nesterov, "SGD", {"momentum": 0.9, "nesterov": True}),
    ("AdaGrad", ds.AdaGrad, "Adagrad", {}),
    ("RMSprop", ds.RMSprop, "RMSprop", {}),
    ("Adam", ds.Adam, "Adam", {}),
    ("AdamW", ds.AdamW, "AdamW", {}),
    ("Nadam", ds.Nadam, "NAdam", {}),
    ("Adamax", ds.Adamax, "Adamax", {}),
    ("AdaDelta", ds.AdaDelta, "Adadelta", {}),
    ("ASGD", ds.ASGD, "ASGD", {}),
    ("Rprop", ds.Rprop, "Rprop", {}),
    ("RAdam", ds.RAdam, "RAdam", {}),
    # rules torch does not have: the authors' packages ("module:Class") are the peers
    ("Lion", ds.Lion, "lion_pytorch:Lion", {}),
    ("ScheduleFreeSGD", ds.ScheduleFreeSGD, "schedulefree:SGDScheduleFree", {}),
    ("ScheduleFreeAdamW", ds.ScheduleFreeAdamW, "schedulefree:AdamWScheduleFree", {}),
]
# the same rules in optax (hyperparameters at optax's defaults where they differ, e.g. RMSprop's
# decay: the cost of a step does not depend on them)
OPTAX = {
    "SGD": ("sgd", {}),
    "Momentum": ("sgd", {"momentum": 0.9}),
    "Nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}),
    "AdaGrad": ("adagrad", {}),
    "RMSprop": ("rmsprop", {}),
    "Adam": ("adam", {}),
    "AdamW": ("adamw", {}),
    "Nadam": ("nadam", {}),
    "Adamax": ("adamax", {}),
    "AdaDelta": ("adadelta", {}),
    "Rprop": ("rprop", {}),
    "RAdam": ("radam", {}),
    "Lion": ("lion", {}),
}
# the targets: fused/torch-fused <= 1.0 where torch has a fused CPU step, else <= 0.2 of foreach
# (the first speed issue's); a peer package's step (its fastest form): <= 1.0 (the update-rules issue's)
TARGET = {"fused": 1.0, "foreach": 0.2, "lion_pytorch": 1.0, "schedulefree foreach": 1.0}


def leaf_sizes(total: int, leaves: int, rng: np.random.Generator) -> list[int]:
    """About ``leaves`` arrays totalling ``total``: weight matrices of varied size, each with a bias."""
    layers = leaves // 2
    biases = rng.integers(256, 2048, size=layers)
    weights = rng.uniform(0.2, 1.8, size=layers)
    weights = np.floor(weights / weights.sum() * (total - biases.sum())).astype(int)
    weights[-1] += total - weights.sum() - biases.sum()
    return [int(s) for pair in zip(weights, biases, strict=True) for s in pair]


def torch_optimizer(torch, name: str, kwargs: dict, params: list) -> tuple[object, str]:
    """torch's fused implementation of the rule where it has one on CPU, else foreach; for a
    peer package (``"module:Class"``), its foreach form where it has one, in training mode."""
    if ":" in name:
        module, attr = name.split(":")
        cls = getattr(importlib.import_module(module), attr)
        try:
            opt, kind = cls(params, lr=LR, foreach=True, **kwargs), f"{module} foreach"
        except TypeError:
            opt, kind = cls(params, lr=LR, **kwargs), module
        if hasattr(opt, "train"):
            opt.train()  # schedule-free: the gradient point y in the parameters
        opt.step()
        return opt, kind
    cls = getattr(torch.optim, name)
    try:
        opt = cls(params, lr=LR, fused=True, **kwargs)
        opt.step()
        return opt, "fused"
    except (TypeError, RuntimeError, ValueError):
        opt = cls(params, lr=LR, foreach=True, **kwargs)
        opt.step()
        return opt, "foreach"


def optax_step(optax, jax, label: str, start: list[np.ndarray], grads: list[np.ndarray]):
    """A jitted optax step on the arrays (donated, so XLA may update them in place); the call
    waits for the result."""
    name, kwargs = OPTAX[label]
    tx = getattr(optax, name)(learning_rate=LR, **kwargs)
    params = [jax.device_put(p.copy()) for p in start]
    g = [jax.device_put(x) for x in grads]
    box = {"params": params, "state": tx.init(params)}

    def update(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    update = jax.jit(update, donate_argnums=(0, 1))

    def step() -> None:
        box["params"], box["state"] = update(box["params"], box["state"], g)
        jax.block_until_ready(box["params"])

    return step


# -- the floor: the least any exact step of the rule can cost on this machine --------------------
# A kernel that reads and writes exactly the arrays a rule's step does, with one add per array
# in place of the rule's arithmetic, run through descend's own threads and address tables:
# no exact step of the rule moves fewer bytes, so none on this machine can be faster. The flags
# say which of the rule's buffers are present (absent ones are empty, as in the rule's step).
def floor3(u1):
    def kernel(p, g, b1, c):
        for i in range(p.size):
            x = g[i]
            if u1:
                x = b1[i] + x
                b1[i] = x
            p[i] = p[i] - c[0] * x

    return kernel


def floor4(u1, u2):
    def kernel(p, g, b1, b2, c):
        for i in range(p.size):
            x = g[i]
            if u1:
                x = b1[i] + x
                b1[i] = x
            if u2:
                x = b2[i] + x
                b2[i] = x
            p[i] = p[i] - c[0] * x

    return kernel


def floor5(u1, u2, u3):
    def kernel(p, g, b1, b2, b3, c):
        for i in range(p.size):
            x = g[i]
            if u1:
                x = b1[i] + x
                b1[i] = x
            if u2:
                x = b2[i] + x
                b2[i] = x
            if u3:
                x = b3[i] + x
                b3[i] = x
            p[i] = p[i] - c[0] * x

    return kernel


FLOORS = {1: floor3, 2: floor4, 3: floor5}


def floor_step(opt, start: list[np.ndarray], grads: list[np.ndarray], check: bool):
    """The floor of ``opt``'s step on copies of ``start`` and its own state (see floor3)."""
    from descend.optim import _backend

    params = [p.copy() for p in start]
    state = opt.init(params)
    names = opt._kernel_buffers
    flags = tuple(name in state.buffers for name in names)
    empty = np.empty(0, np.float32)
    buffers = [state.buffers[name] if name in state.buffers else None for name in names]
    extra = ((np.float32(1e-12),),)  # a step too small to move float32 parameters far
    jobs = [
        ((p.reshape(-1), g.reshape(-1), *(empty if b is None else b[i].reshape(-1) for b in buffers)), extra)
        for i, (p, g) in enumerate(zip(params, grads, strict=True))
    ]
    sizes, tables = tuple(p.size for p in params), {}
    factory = FLOORS[len(names)]
    return lambda: _backend.run(factory, flags, jobs, sizes, check=1 if check else None, tables=tables)


def measure(
    cls, torch_name, torch_kwargs, sizes, rounds, torch, rng, min_time, optax=None, label="", floor=False
) -> dict:
    """Per-step seconds (samples) of each contender on float32 arrays of ``sizes`` (with
    ``floor``, also the floor of the rule's step: see floor3)."""
    grads = [rng.standard_normal(n, dtype=np.float32) for n in sizes]
    start = [rng.standard_normal(n, dtype=np.float32) for n in sizes]
    contenders = {}
    fused, fused_p = cls(lr=LR, fused=True), [p.copy() for p in start]
    fused_state = fused.init(fused_p)
    contenders["fused"] = lambda: fused.step(fused_p, grads, fused_state)
    loose, loose_p = cls(lr=LR, fused=True, nonfinite="propagate"), [p.copy() for p in start]
    loose_state = loose.init(loose_p)
    contenders["propagate"] = lambda: loose.step(loose_p, grads, loose_state)
    numpy, numpy_p = cls(lr=LR, fused=False), [p.copy() for p in start]
    numpy_state = numpy.init(numpy_p)
    contenders["numpy"] = lambda: numpy.step(numpy_p, grads, numpy_state)
    kind = None
    if torch is not None:

        def torch_setup():
            tensors = [torch.from_numpy(p.copy()).requires_grad_() for p in start]
            for t, g in zip(tensors, grads, strict=True):
                t.grad = torch.from_numpy(g)  # shares the array; torch only reads it
            opt, kind = torch_optimizer(torch, torch_name, torch_kwargs, tensors)
            return opt, kind, [t.grad for t in tensors]

        topt, kind, _ = torch_setup()
        contenders["torch"] = topt.step
        # the guarantee descend's default step gives (a NaN/inf is refused before anything is
        # written), as a torch user gets it: the gradients' norm, raising when not finite
        topt_c, _, tgrads = torch_setup()
        norm = torch.nn.utils.get_total_norm

        def checked() -> None:
            norm(tgrads, error_if_nonfinite=True)
            topt_c.step()

        contenders["torch_checked"] = checked
    if optax is not None and label in OPTAX:
        contenders["optax"] = optax_step(optax[0], optax[1], label, start, grads)
    if floor:
        contenders["floor"] = floor_step(cls(lr=LR), start, grads, check=False)
        contenders["floor_checked"] = floor_step(cls(lr=LR), start, grads, check=True)
    samples = alternate(contenders, rounds, min_time)
    contenders.clear()  # frees this case's arrays before the next case allocates its own
    return {
        "samples": samples,
        "torch_kind": kind,
        "arrays": 3 + 2 * len(fused_state.buffers),
        "n": sum(sizes),
    }


def scaling_rounds(rounds: int, n: int) -> int:
    """Fewer rounds for the largest sizes (a NumPy step on 10^8 parameters takes a second)."""
    return rounds if n < 50_000_000 else max(3, rounds // 3)


def ratio(result: dict, which: str = "fused", peer: str = "torch") -> float:
    return median(result["samples"][which]) / median(result["samples"][peer])


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}" if seconds >= 1e-3 else f"{seconds * 1e3:.3f}"


def step_table(results: dict, have_torch: bool, have_optax: bool) -> list[str]:
    """Two tables: the times, then the ratios against the targets."""
    head = "| rule | descend fused (ms) | fused, propagate (ms) | propagate GB/s | descend NumPy (ms) |"
    rule = "|---|---:|---:|---:|---:|"
    if have_torch:
        head += " torch peer | torch (ms) | torch + check (ms) |"
        rule += "---|---:|---:|"
    if have_optax:
        head += " optax (ms) |"
        rule += "---:|"
    head += " floor, propagate (ms) | floor, checked (ms) | noise |"
    rule += "---:|---:|---:|"
    times = [head, rule]
    ratios = [
        "| rule | torch peer | target | **propagate / torch** | **fused / (torch + check)** | "
        "fused / torch | met | floor / torch | floor checked / (torch + check) |"
        + (" fused / optax |" if have_optax else ""),
        "|---|---|---:|---:|---:|---:|:-:|---:|---:|" + ("---:|" if have_optax else ""),
    ]
    for label, r in results.items():
        s = r["samples"]
        f, n, loose = median(s["fused"]), median(s["numpy"]), median(s["propagate"])
        rate = r["arrays"] * 4 * r["n"] / loose / 1e9  # float32 bytes read and written
        row = f"| {label} | {ms(f)} | {ms(loose)} | {rate:.0f} | {ms(n)} |"
        if have_torch:
            t, tc, kind = median(s["torch"]), median(s["torch_checked"]), r["torch_kind"]
            row += f" {kind} | {ms(t)} | {ms(tc)} |"
            target = TARGET[kind]
            met = "/".join("yes" if a <= target else "no" for a in (loose / t, f / tc))
            fl, flc = median(s["floor"]), median(s["floor_checked"])
            line = (
                f"| {label} | {kind} | ≤ {target} | **{loose / t:.2f}** | **{f / tc:.2f}** | "
                f"{f / t:.2f} | {met} | {fl / t:.2f} | {flc / tc:.2f} |"
            )
            if have_optax:
                line += f" {f / median(s['optax']):.2f} |" if "optax" in s else " — |"
            ratios.append(line)
        if have_optax:
            row += f" {ms(median(s['optax']))} |" if "optax" in s else " — |"
        row += f" {ms(median(s['floor']))} | {ms(median(s['floor_checked']))} |"
        noise = max(spread(v) for v in s.values())
        row += f" ±{noise:.0%} |"
        times.append(row)
    return times + ([""] + ratios if have_torch else [])


def thread_table(sizes: list[int], rounds: int, min_time: float, rng: np.random.Generator) -> list[str]:
    """The default (checked) step on one thread, on two threads (from 2 * ``MIN_PER_THREAD``
    elements, the least a two-thread plan takes), and as descend chooses (a second thread per
    ``MIN_BYTES_PER_THREAD`` bytes moved), by size."""
    from descend.optim import _backend

    threads, limit = _backend._threads, _backend.MIN_BYTES_PER_THREAD
    if threads < 2:
        return [f"Skipped: this process may use {threads} CPU, so there is no second thread to wake.", ""]

    def setting(n_threads: int, min_bytes: int):
        def apply() -> None:
            _backend._threads, _backend.MIN_BYTES_PER_THREAD = n_threads, min_bytes

        return apply

    modes = {"one": setting(1, limit), "two": setting(2, 0), "auto": setting(threads, limit)}
    lines = [
        "| rule | parameters | MiB moved | one thread (µs) | two threads (µs) | two / one | "
        "descend's choice (µs) | choice / faster |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    try:
        for label, cls in (("SGD", ds.SGD), ("Adam", ds.Adam)):
            for n in sizes:
                grad = rng.standard_normal(n, dtype=np.float32)
                contenders = {}
                for mode, apply in modes.items():
                    opt, p = cls(lr=LR, fused=True), rng.standard_normal(n, dtype=np.float32)
                    state = opt.init(p)

                    def step(opt=opt, p=p, grad=grad, state=state, apply=apply) -> None:
                        apply()
                        opt.step(p, grad, state)

                    contenders[mode] = step
                t = {mode: median(v) for mode, v in alternate(contenders, rounds, min_time).items()}
                moved = n * 4 * (3 + 2 * len(state.buffers) + 1) / 2**20
                lines.append(
                    f"| {label} | {n:.2g} | {moved:.0f} | {t['one'] * 1e6:.0f} | {t['two'] * 1e6:.0f} | "
                    f"{t['two'] / t['one']:.2f} | {t['auto'] * 1e6:.0f} | "
                    f"{t['auto'] / min(t['one'], t['two']):.2f} |"
                )
    finally:
        _backend._threads, _backend.MIN_BYTES_PER_THREAD = threads, limit
    return lines + [""]


def plot(scaling: dict, sizes: list[int], have_torch: bool, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 5
    rows = -(-len(scaling) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(16, 3.2 * rows), sharex=True, constrained_layout=True)
    style = {
        "fused": ("descend fused", "#1f77b4", "-"),
        "numpy": ("descend NumPy", "#7f7f7f", "--"),
        "torch": ("torch.optim", "#d62728", "-."),
        "optax": ("optax (jit)", "#2ca02c", ":"),
    }
    for ax in axes.flat[len(scaling) :]:
        ax.set_visible(False)
    for ax, (label, per_size) in zip(axes.flat, scaling.items(), strict=False):
        kind = per_size[sizes[-1]]["torch_kind"]
        for key, (name, color, ls) in style.items():
            if key not in per_size[sizes[-1]]["samples"]:
                continue
            y = [median(per_size[n]["samples"][key]) / n * 1e9 for n in sizes]
            ax.plot(
                sizes,
                y,
                ls,
                color=color,
                marker="o",
                ms=3,
                label=name + (f" ({kind})" if key == "torch" else ""),
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("parameters (one float32 array)")
    for ax in axes[:, 0]:
        ax.set_ylabel("ns per parameter per step")
    fig.suptitle("Optimizer step time per parameter vs parameter count")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9, help="samples per contender (default 9)")
    ap.add_argument("--total", type=float, default=1e7, help="parameters in the step table (default 1e7)")
    ap.add_argument("--leaves", type=int, default=400, help="arrays in the many-array layout (default 400)")
    ap.add_argument("--sizes", default="1e4,1e5,1e6,1e7,1e8", help="parameter counts of the scaling plot")
    ap.add_argument(
        "--thread-sizes",
        default="2.5e5,5e5,1e6,2e6,4e6,1e7",
        help="parameter counts of the one- vs two-thread table",
    )
    ap.add_argument("--rules", default="", help="comma-separated labels (default: all)")
    ap.add_argument("--min-time", type=float, default=0.005, help="seconds one sample lasts at least")
    ap.add_argument("--doc", type=Path, default=DOC, help="Markdown file whose optim section is rewritten")
    ap.add_argument("--plot", type=Path, default=PLOT)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        torch = None
    try:
        import jax
        import optax as optax_module

        optax = (optax_module, jax)
    except ImportError:
        optax = None
    rules = [r for r in RULES if not args.rules or r[0] in args.rules.split(",")]
    total, sizes = int(args.total), [int(float(s)) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    load_before = machine()
    ds.SGD(fused=True).step(np.zeros(1), np.zeros(1), ds.SGD(fused=True).init(np.zeros(1)))  # import numba
    tables = {}
    for layout, layout_sizes in (
        ("one array", [total]),
        (f"{args.leaves} arrays", leaf_sizes(total, args.leaves, np.random.default_rng(1))),
    ):
        tables[layout] = {
            label: measure(
                cls, tname, tkw, layout_sizes, args.rounds, torch, rng, args.min_time, optax, label, True
            )
            for label, cls, tname, tkw in rules
        }
        print(f"measured {layout}", file=sys.stderr)
    scaling = {
        label: {
            n: measure(
                cls, tname, tkw, [n], scaling_rounds(args.rounds, n), torch, rng, args.min_time, optax, label
            )
            for n in sizes
        }
        for label, cls, tname, tkw in rules
    }
    if len(rules) == len(RULES):
        plot(scaling, sizes, torch is not None, args.plot)
    thread_sizes = [int(float(s)) for s in args.thread_sizes.split(",") if s]
    threads = thread_table(thread_sizes, args.rounds, args.min_time, rng) if thread_sizes else []

    from descend.optim import _backend

    command = "python -m benchmarks optim" + (f" -- {' '.join(argv)}" if argv else "")
    lines = [
        "## Optimizer step",
        "",
        f"Command: `{command}`. Machine: {load_before} (at the start; "
        f"at the end: {machine().rsplit('load average ', 1)[1]}). "
        f"{versions('numpy', 'numba', 'torch', 'optax')}. descend's fused step used up to "
        f"{_backend._threads} threads"
        + (f", torch {torch.get_num_threads()} intra-op threads" if torch is not None else "")
        + ".",
        "",
        "`opt.step(params, grads, state)` on float32 parameters and gradients (torch: `opt.step()`"
        " with `.grad` set; optax: a jitted `update` + `apply_updates` with the arrays donated,"
        " waited for), lr=1e-3, other hyperparameters at their defaults. Times are medians of"
        f" {args.rounds} alternating rounds; *noise* is the largest half-interquartile range among"
        " a row's contenders, relative to its median.",
        "",
        "- *descend fused* is the default step. Before anything is written it reads the whole"
        " gradient once, so that a NaN/inf is refused with params and state unchanged.",
        "- *fused, propagate* (`nonfinite='propagate'`) skips that read, as torch.optim does. It is"
        " also the step `fit` takes, having checked the gradient's norm itself.",
        "- *torch + check* gives torch the same guarantee the way a torch user would:"
        " `torch.nn.utils.get_total_norm(grads, error_if_nonfinite=True)` before `step()`.",
        "- *propagate GB/s*: the bytes the step must read and write (parameters, gradient and"
        " every state buffer read, parameters and buffers written: 4 bytes each) over its time.",
        "",
        "The targets compare like with like: the step without a check against torch's step"
        " without one, and the checked default step against torch with its check. *met*:"
        " propagate / torch, fused / (torch + check)."
        + ("" if torch is not None else " torch is not installed: its columns are skipped.")
        + ("" if optax is not None else " optax is not installed: its columns are skipped."),
        "",
    ]
    for layout, results in tables.items():
        lines += [
            f"### {total:,} parameters as {layout}",
            "",
            *step_table(results, torch is not None, optax is not None),
            "",
        ]
    if len(rules) == len(RULES):
        rel = args.plot.resolve().relative_to(args.doc.resolve().parent)
        lines += [
            "### Step time vs parameter count (one float32 array)",
            "",
            f"![step time vs size]({rel.as_posix()})",
            "",
        ]
    peers = [
        k for k in ("torch", "torch_checked", "optax") if (k != "optax" or optax) and (k == "optax" or torch)
    ]
    for peer in peers:
        mine = "propagate" if peer == "torch" else "fused"
        title = {
            "torch": "descend propagate / torch",
            "torch_checked": "descend fused (default) / (torch + check)",
            "optax": "descend fused (default) / optax",
        }[peer]
        lines += [f"{title}, by parameter count:", ""]
        lines += [
            "| rule | "
            + ("torch peer | " if peer != "optax" else "")
            + " | ".join(f"{n:.0e}" for n in sizes)
            + " |"
        ]
        lines += ["|---|" + ("---|" if peer != "optax" else "") + "---:|" * len(sizes)]
        for label, per_size in scaling.items():
            if peer not in per_size[sizes[-1]]["samples"]:
                continue  # no optax form of this rule
            cells = [
                median(per_size[n]["samples"][mine]) / median(per_size[n]["samples"][peer]) for n in sizes
            ]
            kind = f"{per_size[sizes[-1]]['torch_kind']} | " if peer != "optax" else ""
            lines.append(f"| {label} | {kind}" + " | ".join(f"{c:.2f}" for c in cells) + " |")
        lines.append("")
    if threads:
        lines += [
            "### One thread or two (the threads table)",
            "",
            "The default step of one float32 array on one thread and on two, alternating; *MiB"
            " moved*: what the step reads and writes, the NaN search included. descend wakes a"
            f" second thread only for steps that move at least {_backend.MIN_BYTES_PER_THREAD >> 20}"
            " MiB (`descend.optim._backend.MIN_BYTES_PER_THREAD`): on this VM a sleeping thread"
            " starts 50–400 µs after it is woken, and two threads have beaten one from 16–32 MiB"
            " moved, varying from run to run. *choice / faster*: descend's choice over the faster"
            " of one and two threads in this run.",
            "",
            *threads,
        ]
    if torch is not None:
        missed, beyond = [], []
        for layout, results in tables.items():
            for label, r in results.items():
                target = TARGET[r["torch_kind"]]
                loose, checked = ratio(r, "propagate"), ratio(r, "fused", "torch_checked")
                if loose > target or checked > target:
                    missed.append(
                        f"{label} ({layout}: propagate {loose:.2f} × {r['torch_kind']}, "
                        f"fused {checked:.2f} × {r['torch_kind']} + check)"
                    )
                floors = (ratio(r, "floor"), ratio(r, "floor_checked", "torch_checked"))
                if max(floors) > target:
                    beyond.append(f"{label} ({layout}: {floors[0]:.2f}, checked {floors[1]:.2f})")
        rates = [
            r["arrays"] * 4 * r["n"] / median(r["samples"]["propagate"]) / 1e9
            for results in tables.values()
            for r in results.values()
        ]
        lines += [
            "Targets missed in this run: " + ("; ".join(missed) or "none") + ".",
            "",
            "The *floor* columns time a kernel that reads and writes exactly the arrays of the"
            " rule's step, with one add per array in place of the rule's arithmetic, on descend's"
            " threads and address tables (`floor3`..`floor5` in benchmarks/bench_optim.py): no exact"
            " step of the rule moves fewer bytes, so none can be much faster on this machine. Targets"
            " the floor itself misses in this run (floor / torch, floor checked / (torch + check)): "
            + ("; ".join(beyond) or "none")
            + ".",
            "",
            "Why the times are what they are: a step at 10^7 parameters is bound by memory traffic."
            f" descend's propagate step moves {min(rates):.0f}–{max(rates):.0f} GB/s on every rule"
            " (the GB/s column), the most this machine's memory gives two threads, so a rule's time"
            " is set by how many arrays it reads and writes. The check reads the gradient once more"
            " (one array against SGD's three, Adam's seven), which is why the default step costs most"
            " over torch's unchecked step for the rules with the least state, and why the like-for-like"
            " comparison is with torch's own check. The ≤ 0.2 × foreach targets ask for 5× torch's"
            " foreach step; for RMSprop, Nadam, Adamax and AdaDelta that is about what the traffic"
            " allows, and where the floor / torch columns are above 0.2 no exact step on this machine"
            " meets it. Both libraries spread a step over the machine's CPUs, so rows"
            " measured while other processes held the CPUs (see the load average above and the"
            " *noise* column) move by tens of percent between runs; ratios of the same row are"
            " comparable, a ratio within the noise of the target is a tie.",
            "",
        ]
    section = "\n".join(lines)
    write_section(NAME, section, args.doc)
    print(section)
    return section


if __name__ == "__main__":
    main(sys.argv[1:])
