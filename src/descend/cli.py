"""The ``descend`` command line: a thin typer layer over the public API."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from functools import wraps
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


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Bad values become one line on stderr and exit code 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _fmt(x: float, digits: int = 3) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return f"{x:.{digits}g}"


@app.command()
@_user_errors
def demo(
    steps: Annotated[int, typer.Option(help="Maximum updates per run.", min=1)] = 1000,
    functions: Annotated[
        str, typer.Option(help="Comma-separated test functions.")
    ] = "quadratic,rosenbrock,beale,two_well",
    optimizers: Annotated[str, typer.Option(help="Comma-separated optimizers (default: all).")] = "",
) -> None:
    """Race every optimizer on a few test functions and print how each one fares."""
    from .lab.suite import DEMO_OPTIMIZERS, run_suite

    fnames = [s.strip() for s in functions.split(",") if s.strip()]
    onames = [s.strip() for s in optimizers.split(",") if s.strip()] or list(DEMO_OPTIMIZERS)
    for name in fnames:
        fns.get(name)  # validate before any work
    for name in onames:
        optim.get(name)
    t0 = time.perf_counter()
    with console.status("running…") as status:
        result = run_suite(fnames, onames, max_steps=steps, progress=lambda msg: status.update(msg))
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
    console.print(f"done in {time.perf_counter() - t0:.1f}s")


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


def main() -> None:
    """Entry point of the ``descend`` script and ``python -m descend``."""
    app(prog_name="descend")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
