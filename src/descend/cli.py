"""The ``descend`` command line: a thin typer layer over the public API."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from . import functions as fns
from . import optim

app = typer.Typer(
    name="descend",
    help="Gradient descent, done completely: update rules, schedules, test functions and the lab.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _fmt(x: float, digits: int = 3) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return f"{x:.{digits}g}"


@app.command()
def demo(
    out: Annotated[str | None, typer.Option(help="Folder to write (default runs/demo-<time>).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer steps and frames (for a fast look).")] = False,
    table: Annotated[bool, typer.Option(help="Print the every-optimizer table first.")] = True,
    steps: Annotated[int, typer.Option(help="Maximum updates per run in the table.", min=1)] = 1000,
    functions: Annotated[
        str, typer.Option(help="Comma-separated test functions for the table.")
    ] = "quadratic,rosenbrock,beale,two_well",
    optimizers: Annotated[
        str, typer.Option(help="Comma-separated optimizers for the table (default: all).")
    ] = "",
) -> None:
    """Everything at once: a table of every optimizer on test functions, races of the six classic
    optimizers on Rosenbrock, Beale and the saddle, batch vs stochastic vs mini-batch, an LR range
    test on digits, and report.html, in one folder."""
    from . import workflows
    from .lab.suite import DEMO_OPTIMIZERS, run_suite

    fnames = [s.strip() for s in functions.split(",") if s.strip()]
    onames = [s.strip() for s in optimizers.split(",") if s.strip()] or list(DEMO_OPTIMIZERS)
    for name in fnames:
        _flag("--functions", fns.get, name)  # validate before any work
    for name in onames:
        _flag("--optimizers", optim.get, name)
    t0 = time.perf_counter()
    if table:
        with console.status("running…") as status:
            result = run_suite(fnames, onames, max_steps=steps, progress=lambda msg: status.update(msg))
        _suite_tables(result, fnames, onames, steps)
    with console.status("writing the demo folder…") as status:
        outcome = workflows.run_demo(out=out, quick=quick, progress=lambda msg: status.update(msg))
    for name in workflows.DEMO_RACES:
        rows = outcome.summary[f"race_{name}"]["results"]
        _print_table(
            f"race on {name} ({outcome.summary[f'race_{name}']['lr_rule']})",
            rows,
            [
                ("label", "optimizer (hyperparameters)"),
                ("final_loss", "final loss"),
                ("distance_to_nearest_minimum", "dist. to min"),
                ("diverged", "diverged"),
            ],
        )
    lf = outcome.summary["lr_find"]["suggestions"]
    console.print(
        f"LR range test (MLP on digits, SGD): valley {lf['valley']:.3g}, steep {lf['steep']:.3g}, "
        f"min/10 {lf['min']:.3g}",
        highlight=False,
    )
    _wrote(outcome.folder)
    console.print(f"done in {time.perf_counter() - t0:.1f}s")


@app.command()
def report(
    runs: Annotated[list[str], typer.Argument(help="One or more run folders written by descend.")],
    out: Annotated[
        str | None, typer.Option(help="HTML file to write (default: report.html in the first folder).")
    ] = None,
) -> None:
    """Re-draw report.html from saved run folders; several folders are merged into one report."""
    from . import workflows

    path = _flag("RUNS", workflows.rebuild_report, runs, out)
    console.print(f"wrote [bold]{path}[/bold]", highlight=False)


def _suite_tables(result: Any, fnames: list[str], onames: list[str], steps: int) -> None:
    console.print(
        f"[bold]descend demo[/bold]: {len(onames)} optimizers x {len(fnames)} functions, "
        f"up to {steps} steps, stop when |grad| <= {result.tol:g}; lr {result.lr_rule}.",
        highlight=False,
    )
    for fname in fnames:
        f = fns.get(fname)
        table = Table(
            title=f"{fname}: {f.description}  (start {list(map(float, f.start))})", title_justify="left"
        )
        for col, justify in [
            ("optimizer", "left"),
            ("lr", "right"),
            ("final loss", "right"),
            ("dist. to nearest min", "right"),
            ("nearest is", "center"),
            ("steps", "right"),
            ("converged", "center"),
            ("diverged", "center"),
        ]:
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in result.for_function(fname):
            table.add_row(
                r.optimizer,
                _fmt(r.lr),
                _fmt(r.loss, 4),
                _fmt(r.distance, 3),
                r.found,
                str(r.steps),
                "yes" if r.converged else "no",
                "[red]yes[/red]" if r.diverged else "no",
            )
        console.print(table)


def _flag(flag: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn``; a ValueError/TypeError becomes a usage error naming ``flag`` (exit code 2)."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None


def _floats(text: str, n: int | None = None) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None
    if n is not None and len(values) != n:
        raise ValueError(f"expected {n} comma-separated numbers like 1.0,-2.0, got {text!r}")
    return values


def _names(text: str, valid: list[str], what: str) -> list[str]:
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    if not names:
        raise ValueError(f"give at least one {what}")
    bad = [n for n in names if n not in valid]
    if bad:
        raise ValueError(f"unknown {what} {bad[0]!r}; choose from {', '.join(valid)}")
    return names


def _lrs(text: str | None, optimizers: list[str]) -> dict[str, float] | float | None:
    """``0.01`` for all, or ``sgd=0.001,adam=0.05`` per optimizer."""
    if text is None:
        return None
    if "=" not in text:
        return _floats(text, 1)[0]
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name not in optimizers:
            raise ValueError(f"{name!r} is not one of the racing optimizers ({', '.join(optimizers)})")
        out[name] = _floats(value, 1)[0]
    return out


def _hyperparameters(items: list[str], optimizers: list[str]) -> dict[str, dict[str, Any]]:
    """``["momentum.momentum=0.95", "adam.betas=[0.8,0.99]"]`` -> per-optimizer options."""
    from .lab.custom import parse_kv

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, dot, rest = item.partition(".")
        target = target.strip().lower()
        if not dot or target not in optimizers:
            raise ValueError(
                f"expected OPTIMIZER.KEY=VALUE with OPTIMIZER one of {', '.join(optimizers)}, got {item!r}"
            )
        kv = parse_kv(rest, what="--set")
        if "lr" in kv:
            raise ValueError(f"set learning rates with --lr, not --set ({item!r})")
        out.setdefault(target, {}).update(kv)
    return out


def _print_table(title: str, rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    table = Table(title=title, title_justify="left")
    for key, header in columns:
        table.add_column(header, justify="left" if key in ("optimizer", "strategy", "label") else "right")
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key)
            if isinstance(v, bool):
                cells.append("[red]yes[/red]" if v else "no")
            elif isinstance(v, float):
                cells.append(_fmt(v, 4))
            else:
                cells.append("-" if v is None else str(v))
        table.add_row(*cells)
    console.print(table)


def _wrote(folder: Any) -> None:
    console.print(
        f"wrote {len(folder.files)} files to [bold]{folder.dir}[/bold] (open {folder.dir / 'report.html'})",
        highlight=False,
    )


@app.command()
def race(
    function: Annotated[
        str,
        typer.Argument(
            help="Built-in name (see `descend functions`), module:callable, or a NumPy expression in "
            "x and y such as 'x**2 + 10*y**2'."
        ),
    ],
    optimizers: Annotated[
        str, typer.Option(help="Comma-separated optimizers.")
    ] = "sgd,momentum,nesterov,adagrad,rmsprop,adam",
    lr: Annotated[
        str | None, typer.Option(help="One lr for all (0.01) or per optimizer (sgd=0.001,adam=0.05).")
    ] = None,
    tune: Annotated[bool, typer.Option("--tune", help="Pick each lr by a disclosed grid search.")] = False,
    steps: Annotated[int, typer.Option(min=1, help="Updates per optimizer.")] = 500,
    start: Annotated[str | None, typer.Option(help="Start point x,y (default: the function's).")] = None,
    noise: Annotated[float, typer.Option(min=0.0, help="Std of Gaussian gradient noise (seeded).")] = 0.0,
    seed: Annotated[int, typer.Option(min=0, help="Seed for the noise.")] = 0,
    out: Annotated[str | None, typer.Option(help="Run folder (default runs/race-<time>).")] = None,
    gif: Annotated[bool, typer.Option(help="Write an animated GIF.")] = True,
    mp4: Annotated[bool, typer.Option("--mp4", help="Also write an MP4 (needs ffmpeg).")] = False,
    frames: Annotated[int, typer.Option(min=2, help="Animation frames.")] = 60,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Hyperparameter of one optimizer, repeatable: momentum.momentum=0.95, "
            "adam.betas=[0.8,0.99].",
        ),
    ] = None,
) -> None:
    """Race optimizers from one start on a surface: contour, 3-D view, loss curves, GIF, report.

    FUNCTION may carry parameters: quadratic:kappa=50 or rosenbrock:dim=2,b=10.
    """
    from . import workflows

    names = _flag("--optimizers", _names, optimizers, optim.names(), "optimizer")
    if tune and lr is not None:
        raise typer.BadParameter("give --lr or --tune, not both", param_hint="--lr")
    lrs = _flag("--lr", _lrs, lr, names)
    x0 = None if start is None else _flag("--start", _floats, start, 2)
    from .lab.custom import resolve_function

    f = _flag("FUNCTION", resolve_function, function, start=x0)
    options = _flag("--set", _hyperparameters, set_ or [], names)
    with console.status("racing…"):
        result, outcome = _flag(
            "--set" if options else ("--lr" if lr else "FUNCTION"),
            workflows.run_race,
            f,
            names,
            lrs=lrs,
            tune=tune,
            steps=steps,
            start=x0,
            noise=noise,
            seed=seed,
            out=out,
            gif=gif,
            mp4=mp4,
            frames=frames,
            options=options,
        )
    console.print(
        f"[bold]{result.function.name}[/bold] from {list(map(float, result.start))}, {steps} steps; "
        f"lr {result.lr_rule}; gradient: {result.grad_method}"
        + (f"; gradient noise sd {noise:g} (seed {seed})" if noise else ""),
        highlight=False,
    )
    _print_table(
        "race",
        result.table(),
        [
            ("label", "optimizer (hyperparameters)"),
            ("final_loss", "final loss"),
            ("distance_to_nearest_minimum", "dist. to min"),
            ("steps_to_tol", f"steps to {result.tol:g}"),
            ("diverged", "diverged"),
        ],
    )
    for note in outcome.notes:
        console.print(note, highlight=False)
    _wrote(outcome.folder)


def _load_data(data: str, target: str | None) -> tuple[str, Any, str | None]:
    from .lab import datasets

    if data in datasets.names():
        d = datasets.load(data)
        return d.name, d, d.task
    from . import data as dsdata

    return data, dsdata.open(data, target=target), None


def _default_model(task: str | None, model: str | None, hidden: str | None, activation: str) -> Any:
    from . import models

    kind = (
        model
        or {
            "regression": "linear_regression",
            "binary": "logistic_regression",
            "multiclass": "softmax_regression",
            None: "linear_regression",
        }[task]
    )
    kind = {
        "linear": "linear_regression",
        "logistic": "logistic_regression",
        "softmax": "softmax_regression",
    }.get(kind, kind)
    if kind == "mlp":
        output = {
            "regression": "regression",
            "binary": "binary",
            "multiclass": "softmax",
            None: "regression",
        }[task]
        sizes = tuple(int(v) for v in _floats(hidden or "64"))
        return models.get("mlp", hidden=sizes, activation=activation, output=output)
    return models.get(kind)


@app.command()
def train(
    data: Annotated[
        str,
        typer.Argument(
            help="Built-in dataset (digits, iris, breast_cancer, diabetes, linear) or a .npy feature file."
        ),
    ],
    target: Annotated[str | None, typer.Option(help="Targets file for a .npy DATA.")] = None,
    model: Annotated[
        str | None, typer.Option(help="linear, logistic, softmax or mlp (default: by task).")
    ] = None,
    hidden: Annotated[str | None, typer.Option(help="MLP hidden sizes, e.g. 64,32.")] = None,
    activation: Annotated[str, typer.Option(help="MLP activation.")] = "relu",
    optimizer: Annotated[str, typer.Option(help="Update rule.")] = "adam",
    lr: Annotated[
        float | None, typer.Option(help="Learning rate (default: the optimizer's fit default).")
    ] = None,
    schedule_spec: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help="Learning-rate schedule instead of --lr, e.g. linear_decay:lr0=0.1,lr_final=0.001,tau=1000.",
        ),
    ] = None,
    batch_size: Annotated[
        str, typer.Option(help="'full' (batch GD), 1 (stochastic) or B (mini-batch).")
    ] = "64",
    epochs: Annotated[int, typer.Option(min=1)] = 20,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    val_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Held-out share for validation (built-in data).")
    ] = 0.2,
    early_stopping: Annotated[
        int | None, typer.Option(min=0, help="Stop after this many epochs without validation improvement.")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(min=1, help="Checkpoint every N steps (into the run folder).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Resume from the run folder's checkpoint.")
    ] = False,
    out: Annotated[str | None, typer.Option(help="Run folder (default runs/train-<time>).")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
) -> None:
    """Train a model with any optimizer and batch size; write metrics, plots and report."""
    from . import workflows
    from .train.callbacks import EarlyStopping

    name, source, task = _flag("DATA", _load_data, data, target)
    m = _flag("--model", _default_model, task, model, hidden, activation)
    bs = None if batch_size.strip().lower() in ("full", "none") else _flag("--batch-size", int, batch_size)
    _flag("--optimizer", optim.get, optimizer)
    if schedule_spec is not None:
        if lr is not None:
            raise typer.BadParameter("give --lr or --schedule, not both", param_hint="--schedule")
        lr = _flag("--schedule", _parse_schedule, schedule_spec)
    validation = None
    train_data: Any = source
    if task is not None and val_fraction > 0:
        tr, va = source.split(val_fraction, seed=seed)
        train_data, validation = (tr.X, tr.y), (va.X, va.y)
    elif task is not None:
        train_data = (source.X, source.y)
    callbacks = []
    if early_stopping is not None:
        if validation is None:
            raise typer.BadParameter(
                "needs validation data (--val-fraction > 0)", param_hint="--early-stopping"
            )
        callbacks.append(EarlyStopping(patience=early_stopping))
    run, outcome = _flag(
        "--batch-size" if bs is not None else "DATA",
        workflows.run_train,
        m,
        train_data,
        validation=validation,
        dataset_name=name,
        out=out,
        checkpoint_every=checkpoint_every,
        resume=resume,
        optimizer=optimizer,
        lr=lr,
        batch_size=bs,
        epochs=epochs,
        seed=seed,
        callbacks=callbacks,
        progress=None if progress else False,
    )
    console.print(f"{run.stop_reason}; {run.steps_completed} steps with {run.optimizer!r}", highlight=False)
    if run.history.epochs:
        rows = run.history.epoch_rows()
        cols = [
            (k, k.replace("_", " "))
            for k in ("epoch", "train_loss", "val_loss", "val_accuracy", "val_mse", "lr")
            if k in run.history.epochs
        ]
        _print_table("epochs (last 5)", rows[-5:], cols)
    _wrote(outcome.folder)


@app.command("lr-find")
def lr_find_cmd(
    data: Annotated[str, typer.Argument(help="Built-in dataset or a .npy feature file.")] = "digits",
    target: Annotated[str | None, typer.Option(help="Targets file for a .npy DATA.")] = None,
    model: Annotated[str | None, typer.Option(help="linear, logistic, softmax or mlp.")] = None,
    hidden: Annotated[str | None, typer.Option(help="MLP hidden sizes.")] = None,
    optimizer: Annotated[str, typer.Option()] = "sgd",
    start_lr: Annotated[float, typer.Option(min=0.0)] = 1e-6,
    end_lr: Annotated[float, typer.Option(min=0.0)] = 10.0,
    steps: Annotated[int, typer.Option(min=3)] = 100,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    out: Annotated[str | None, typer.Option(help="Run folder (default runs/lr-find-<time>).")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print only the JSON summary.")] = False,
) -> None:
    """LR range test: sweep lr exponentially until the loss blows up; suggest a starting lr."""
    import json

    from . import workflows

    name, source, task = _flag("DATA", _load_data, data, target)
    m = _flag("--model", _default_model, task, model, hidden, "relu")
    _flag("--optimizer", optim.get, optimizer)
    xy = (source.X, source.y) if task is not None else source
    result, outcome = _flag(
        "--start-lr",
        workflows.run_lr_find,
        m,
        xy,
        optimizer,
        out=out,
        dataset_name=name,
        start_lr=start_lr,
        end_lr=end_lr,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
    )
    summary = result.to_dict()
    if json_only:
        typer.echo(json.dumps(summary))
        return
    console.print(
        f"LR range test on {name} with {optimizer} ({len(result.lrs)} steps; {result.reason})",
        highlight=False,
    )
    for key in ("valley", "steep", "min"):
        console.print(f"  suggested lr ({key}): {result.suggestions[key]:.3g}", highlight=False)
    console.print("model state: untouched (the sweep runs on a copy)", highlight=False)
    typer.echo(json.dumps(summary))
    _wrote(outcome.folder)


def _parse_schedule(spec: str) -> Any:
    """``name:key=value,key=value`` or a JSON object ``{"name": ..., ...}``."""
    import json

    import yaml

    from . import schedules

    spec = spec.strip()
    if spec.startswith("{"):
        cfg = json.loads(spec)
        return schedules.get(cfg.pop("name"), **cfg)
    name, _, rest = spec.partition(":")
    kwargs = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"expected key=value in {spec!r}, got {part!r}")
        kwargs[key.strip()] = yaml.safe_load(value)
    return schedules.get(name, **kwargs)


@app.command()
def schedule(
    specs: Annotated[
        list[str],
        typer.Argument(
            help="One or more schedules: name:key=value,... e.g. linear_decay:lr0=0.1,lr_final=0.001,tau=500"
        ),
    ],
    steps: Annotated[int, typer.Option(min=1, help="Steps to plot.")] = 1000,
    log: Annotated[bool, typer.Option("--log", help="Log lr axis.")] = False,
    out: Annotated[str | None, typer.Option(help="Run folder (default runs/schedule-<time>).")] = None,
) -> None:
    """Plot one or several learning-rate schedules."""
    from . import workflows

    scheds = [_flag("SPECS", _parse_schedule, s) for s in specs]
    outcome = workflows.run_schedules(scheds, steps=steps, log=log, out=out)
    _print_table(
        "schedules",
        outcome.summary["schedules"],
        [
            ("schedule", "schedule"),
            ("first", "lr at 0"),
            ("last", f"lr at {steps - 1}"),
            ("min", "min"),
            ("max", "max"),
        ],
    )
    _wrote(outcome.folder)


@app.command("compare-batching")
def compare_batching_cmd(
    data: Annotated[
        str, typer.Option(help="Built-in dataset (a finite sum; default: synthetic least squares).")
    ] = "linear",
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated: full, 1, B...")] = "full,1,32",
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    optimizer: Annotated[str, typer.Option()] = "sgd",
    seed: Annotated[int, typer.Option(min=0)] = 0,
    out: Annotated[
        str | None, typer.Option(help="Run folder (default runs/compare-batching-<time>).")
    ] = None,
) -> None:
    """Full-batch vs stochastic vs mini-batch: loss vs epochs and vs wall time."""
    from . import workflows

    def sizes(text: str) -> list[int | None]:
        return [
            None if v.strip().lower() in ("full", "none") else int(v) for v in text.split(",") if v.strip()
        ]

    bs = _flag("--batch-sizes", sizes, batch_sizes)
    _flag("--optimizer", optim.get, optimizer)
    with console.status("training three ways…"):
        result, outcome = _flag(
            "--data",
            workflows.run_batching,
            data=data,
            batch_sizes=bs,
            epochs=epochs,
            optimizer=optimizer,
            seed=seed,
            out=out,
        )
    _print_table(
        f"batching on {result.dataset} (optimal loss {result.optimal_loss:.4g})",
        result.summary(),
        [
            ("strategy", "strategy"),
            ("lr", "lr"),
            ("updates_per_epoch", "updates/epoch"),
            ("ms_per_update", "ms/update"),
            ("loss_after_1_epoch", "loss after 1 epoch"),
            ("final_loss", "final loss"),
            ("roughness", "roughness"),
            ("train_seconds", "train s"),
        ],
    )
    _wrote(outcome.folder)


@app.command("optimizers")
def list_optimizers() -> None:
    """List the update rules and their default hyperparameters."""
    table = Table(title="optimizers (PyTorch formulas and defaults)", title_justify="left")
    table.add_column("name")
    table.add_column("defaults")
    for name in optim.names():
        opt = optim.optimizer(name)
        params = ", ".join(f"{k}={v}" for k, v in opt.hyperparameters().items())
        table.add_row(name, params)
    console.print(table)


@app.command("functions")
def list_functions() -> None:
    """List the test functions with their start, minima and dimension."""
    table = Table(title="test functions", title_justify="left")
    for col in ("name", "dim", "start", "global minima", "description"):
        table.add_column(col)
    for name in fns.names():
        f = fns.get(name)
        minima = "; ".join(str([round(float(v), 4) for v in m]) for m in f.global_minima) or "none"
        table.add_row(name, str(f.dim), str([float(v) for v in f.start]), minima, f.description)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``descend`` script and ``python -m descend``.

    Usage errors (a bad flag or value) print one line naming the flag and exit with code 2.
    """
    # typer bundles click in recent versions and depends on it in older ones: find the classes
    # through typer's own exports rather than importing click
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="descend", standalone_mode=False)
    except usage_error as exc:
        ctx = getattr(exc, "ctx", None)
        hint = (
            f" (see descend {ctx.info_name} --help)" if ctx is not None and ctx.info_name != "descend" else ""
        )
        message = exc.format_message().replace("\n", " ").strip()
        if not message:  # bare `descend`: the help was shown
            return 2
        err_console.print(f"[red]error:[/red] {message}{hint}", highlight=False, soft_wrap=True)
        return 2
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
