"""The ``descend`` command line: parses flags, calls :mod:`descend.workflows`, prints the results.

Errors: descend's own errors carry the parameter they are about
(:class:`~descend.errors.InvalidParameter`); :data:`FLAGS` maps parameters to flags, in one place,
and :func:`main` prints one line ``descend CMD: FLAG: message`` and exits with code 2. A value
parsed from one flag (a schedule spec, ``--set``, ``--hidden``) is that flag's. A run that
diverges prints one line and exits with code 1.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand

from . import __version__, optim
from . import functions as fns
from ._registry import normalize
from ._spec import parse_kv, parse_spec, split_top
from .errors import CheckpointWarning, DivergenceError, InvalidParameter, UnknownNameError

app = typer.Typer(
    name="descend",
    help="Gradient descent, done completely: update rules, schedules, test functions and the lab.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: it wraps at the terminal's width and never cuts a default with "…"
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Command(TyperCommand):
    """A command whose help names its arguments as the usage line does (``DATA``, ``RUNS...``),
    with no ``<str>`` type beside them."""

    @staticmethod
    def _name(param: Any) -> str:
        name = param.metavar or param.name.upper()
        return name + ("..." if param.nargs != 1 else "")

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if p.param_type_name == "argument":
                pieces.append(self._name(p) if p.required else f"[{self._name(p)}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for p in self.get_params(ctx):
            record = p.get_help_record(ctx)
            if record is None:
                continue
            if p.param_type_name == "argument":
                args.append((self._name(p), record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _command(name: str, *, short_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@app.command`` with :class:`_Command`; ``short_help`` (at most 56 characters) is the
    line ``descend --help`` shows, whole at 80 columns."""
    return app.command(name, cls=_Command, short_help=short_help)


# ------------------------------------------------------------------------------------ errors

#: library parameter (or registry kind, for unknown names) -> the flag that sets it
FLAGS: dict[str, str] = {
    "lr": "--lr",
    "batch_size": "--batch-size",
    "epochs": "--epochs",
    "seed": "--seed",
    "steps": "--steps",
    "max_steps": "--steps",
    "noise": "--noise",
    "start": "--start",
    "x0": "--start",
    "frames": "--frames",
    "start_lr": "--start-lr",
    "end_lr": "--end-lr",
    "hidden": "--hidden",
    "activation": "--activation",
    "patience": "--early-stopping",
    "checkpoint_every": "--checkpoint-every",
    "resume": "--resume",
    "validation": "--val-fraction",
    "val_fraction": "--val-fraction",
    "target": "--target",
    "features": "--features",
    "standardize": "--standardize",
    "model": "--model",
    "optimizer": "--optimizer",
    "schedule": "--schedule",
    "function": "FUNCTION",
    "dataset": "DATA",
    "data": "DATA",
    "path": "DATA",
    "runs": "RUNS",
    "out": "--out",
    "dask": "--dask",
    "sync_every": "--sync-every",
    "rows": "--rows",
    "task": "--task",
    "format": "--format",
    "classes": "--classes",
    "labels": "--labels",
    "on_bad_rows": "--on-bad-rows",
    "drop": "--drop",
    "id_column": "--id",
    "standardize_target": "--standardize",
}
#: where a command spells a parameter's flag differently
COMMAND_FLAGS: dict[str, dict[str, str]] = {
    "demo": {"function": "--functions", "optimizer": "--optimizers"},
    "race": {"optimizer": "--optimizers"},
    "compare-batching": {"batch_size": "--batch-sizes", "dataset": "--data", "data": "--data"},
    "schedule": {"schedule": "SPECS"},
    "make-data": {"features": "--features", "out": "OUT", "data": "OUT"},
}


class UsageProblem(Exception):
    """A flag's value refused while parsing it: printed as ``descend CMD: FLAG: message``."""

    def __init__(self, flag: str | None, message: str):
        super().__init__(message)
        self.flag = flag
        self.message = message


def flag_for(command: str | None, exc: BaseException) -> str | None:
    """The flag a library error is about, from :data:`FLAGS` (``None`` when no flag sets it)."""
    if not isinstance(exc, InvalidParameter):
        return None
    key = exc.kind if isinstance(exc, UnknownNameError) else exc.param
    return COMMAND_FLAGS.get(command or "", {}).get(key) or FLAGS.get(key)


def _message(exc: BaseException) -> str:
    """An error's text for one line; the owner prefix of a function (``fit:``) is dropped, as the
    line already says which command and flag it is about (a class name such as ``Adam:`` stays)."""
    text = " ".join(str(exc).split())
    owner = getattr(exc, "owner", None)
    if owner and text.startswith(f"{owner}: ") and not owner[:1].isupper():
        text = text[len(owner) + 2 :]
    return text


#: a library message's advice ``on_bad_rows='skip'``, ``features=[...]``, ``validation=0.3``: a
#: parameter name that is not part of a spec (``adam.lr=3``, ``cosine:lr0=1``, ``'sgd=0.1'``);
#: one inside a call's repr (``SGD(lr=0.1, ...)``) is left out by :func:`_in_call`
_ADVICE = re.compile(r"(?<![\w.:\[{='\"/-])\b([a-z][a-z0-9_]*)=('[^']*'|\"[^\"]*\"|\[[^\]]*\]|[^\s,;)]*)")
#: the Python function a data error names first (``data.open: ...``), not a thing typed at the CLI
_FUNCTION_PREFIX = re.compile(r"^(?:data\.open|fit|lr_find|load_run|predict|descend\.data\.dask\.read): ")
#: how a list placeholder (``features=[...]``) reads as a flag's value
_LIST_PLACEHOLDER = {"features": "COL1,COL2", "start": "X1,X2,..."}
#: a Python value that a flag spells otherwise (``standardize=False`` is ``--standardize off``)
_FLAG_VALUES = {
    "--standardize": {"True": "on", "False": "off", "'auto'": "auto"},
    "--on-bad-rows": {"'raise'": "error"},
    "--sync-every": {"None": "out"},  # "leave sync_every=None": "leave --sync-every out"
    "--batch-size": {"None": "full"},
}
#: the other choices after a replaced value: ``--on-bad-rows skip or 'empty'`` -> ``... or empty``
_MORE_CHOICES = re.compile(r"(--[a-z][a-z-]* [\w.-]+)((?: or|,) )'(\w+)'")


def cli_words(text: str, command: str | None = None, flags: Collection[str] | None = None) -> str:
    """``text`` with the Python spelling of a parameter that a flag sets (``on_bad_rows='skip'``,
    ``features=[...]``, ``standardize=True``) replaced by the flag (``--on-bad-rows skip``,
    ``--features COL1,COL2``, ``--standardize on``), by :data:`FLAGS`: at the command line a
    library's advice names what the user can type. ``flags``: the command's own flags (advice
    about a parameter no flag of the command sets keeps its Python spelling)."""

    def flag_of(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        flag = COMMAND_FLAGS.get(command or "", {}).get(name) or FLAGS.get(name)
        if flag is None or not flag.startswith("--") or (flags is not None and flag not in flags):
            return match.group(0)
        if value.startswith("(") or _in_call(text, match.start()):
            return match.group(0)
        if value in _FLAG_VALUES.get(flag, {}):
            return f"{flag} {_FLAG_VALUES[flag][value]}"
        if value in ("", "True"):
            return flag
        if value[:1] in "'\"":
            value = value[1:-1]
        elif value.startswith("["):
            items = [v.strip().strip("'\"") for v in value[1:-1].split(",") if v.strip()]
            value = _LIST_PLACEHOLDER.get(name, "A,B") if items in ([], ["..."]) else ",".join(items)
        return f"{flag} {value}"

    text = _ADVICE.sub(flag_of, text)
    while (more := _MORE_CHOICES.sub(r"\1\2\3", text)) != text:
        text = more
    return text


def _in_call(text: str, at: int) -> bool:
    """Whether position ``at`` is inside the brackets of a call such as ``SGD(...)``."""
    depth = 0
    for i in range(at - 1, -1, -1):
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            if depth == 0:
                return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
            depth -= 1
    return False


def _parse_all(command: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` for a call that takes several flags: an error is that of the flag
    its parameter maps to (:data:`FLAGS`); an error naming no flag's parameter is reported bare."""
    try:
        return fn(*args, **kwargs)
    except InvalidParameter as exc:
        flag = flag_for(command, exc)
        raise UsageProblem(flag, _message(exc) if flag else str(exc)) from None


def _parse(flag: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)`` for a value that comes from ``flag`` alone: whatever it refuses is that flag's."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageProblem(flag, _message(exc)) from None


# ------------------------------------------------------------------------------------ output

#: width of text written to a pipe or file: wide enough that no table is ever squeezed
PIPE_WIDTH = 10_000


def _console(stderr: bool = False) -> Console:
    """A console on the current stdout/stderr: a terminal's width, or no limit when piped."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream, stderr=stderr)
    return Console(file=stream, width=PIPE_WIDTH, soft_wrap=True)


def say(text: str) -> None:
    _console().print(text, highlight=False, soft_wrap=True)


def _fmt(x: Any, digits: int = 4) -> str:
    """A number as the tables print it: never cut, ``-`` for a missing one."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def print_table(
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    *,
    console: Console | None = None,
    digits: int = 4,
) -> None:
    """Rows as a table. Cells fold onto a second line rather than being cut when a terminal is
    narrow; written to a pipe the table takes the width it needs."""
    table = Table(title=title, title_justify="left")
    for key, header in columns:
        values = [r.get(key) for r in rows if r.get(key) is not None]
        numeric = values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        table.add_column(header, justify="right" if numeric else "left", overflow="fold")
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key)
            cells.append("[red]yes[/red]" if v is True and key == "diverged" else _fmt(v, digits))
        table.add_row(*cells)
    (console or _console()).print(table)


def _wrote(folder: Any, what: str = "") -> None:
    say(f"wrote {len(folder.files)} files{what} to {folder.dir} (open {folder.dir / 'report.html'})")


# ------------------------------------------------------------------------------------ parsing


def _numbers(text: str, n: int | None = None, *, what: str = "numbers") -> list[float]:
    parts = [v.strip() for v in text.split(",")]
    try:
        values = [float(v) for v in parts if v]
    except ValueError:
        raise ValueError(f"expected comma-separated {what}, got {text!r}") from None
    if n is not None and len(values) != n:
        raise ValueError(f"expected {n} comma-separated numbers like 1.0,-2.0, got {text!r}")
    if not values:
        raise ValueError(f"expected comma-separated {what}, got {text!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"expected finite numbers, got {text!r}")
    return values


def _sizes(text: str) -> tuple[int, ...]:
    """``"64,32"`` -> ``(64, 32)``: hidden layer sizes."""
    out = []
    for v in (p.strip() for p in text.split(",")):
        if not v.isdigit() or int(v) < 1:
            raise ValueError(f"expected comma-separated layer sizes (integers >= 1) like 64,32, got {text!r}")
        out.append(int(v))
    return tuple(out)


def _positive_lr(value: float, who: str = "the learning rate") -> float:
    if not math.isfinite(value) or value <= 0:
        extra = " (0 would leave the parameters where they start)" if value == 0 else ""
        raise ValueError(f"{who} must be a finite number > 0, got {value:g}{extra}")
    return value


def _name_list(text: str, lookup: Callable[[str], Any], what: str) -> list[str]:
    """``"sgd,adam"`` -> canonical names, each looked up (an unknown one suggests the closest)."""
    names = [normalize(v) for v in text.split(",") if v.strip()]
    if not names:
        raise ValueError(f"give at least one {what}")
    for n in names:
        lookup(n)
    if len(set(names)) != len(names):
        raise ValueError(f"{what} {next(n for n in names if names.count(n) > 1)!r} is listed twice")
    return names


def _race_lrs(text: str | None, optimizers: list[str]) -> dict[str, float] | float | None:
    """``0.01`` for all, or ``sgd=0.001,adam=0.05`` per optimizer."""
    if text is None:
        return None
    if "=" not in text:
        return _positive_lr(_numbers(text, 1)[0])
    out = {}
    for part in split_top(text, what="--lr"):
        name, _, value = part.partition("=")
        key = normalize(name)
        if key not in optimizers:
            raise ValueError(
                f"{name.strip()!r} is not one of the racing optimizers ({', '.join(optimizers)})"
            )
        out[key] = _positive_lr(_numbers(value, 1)[0], f"the lr of {key}")
    return out


def _hyperparameters(items: list[str], optimizers: list[str]) -> dict[str, dict[str, Any]]:
    """``["momentum.momentum=0.95", "adam.betas=[0.8,0.99]"]`` -> per-optimizer options, each
    checked by building the optimizer."""
    from ._registry import check_keywords

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, dot, rest = item.partition(".")
        key = normalize(target)
        if not dot or key not in optimizers:
            raise ValueError(
                f"expected OPTIMIZER.KEY=VALUE with OPTIMIZER one of {', '.join(optimizers)}, got {item!r}"
            )
        kv = parse_kv(rest, what="--set")
        if "lr" in kv:
            raise ValueError(f"set learning rates with --lr, not --set ({item!r})")
        check_keywords("--set", key, optim.get(key), kv)
        out.setdefault(key, {}).update(kv)
    for key, kv in out.items():
        optim.optimizer(key, **kv)
    return out


def _rule_options(items: list[str], optimizer: str) -> dict[str, Any]:
    """``--set`` of descend train: ``["momentum=0.9", "betas=[0.8,0.99]"]`` -> the optimizer's
    options, checked by building it. ``OPT.KEY=VALUE`` (descend race's form) is taken for the
    optimizer trained with."""
    from ._registry import check_keywords

    rule = optim.get(optimizer)
    out: dict[str, Any] = {}
    for item in items:
        target, dot, rest = item.partition(".")
        if dot and "=" not in target:  # OPT.KEY=VALUE; a dot after "=" is a number's
            if normalize(target) != rule.name:
                raise ValueError(f"{item!r} sets {target}, but the optimizer is {rule.name} (--optimizer)")
            item = rest
        kv = parse_kv(item, what="--set")
        if "lr" in kv:
            raise ValueError(f"set the learning rate with --lr or --schedule, not --set ({item!r})")
        check_keywords("--set", rule.name, rule, kv)
        if twice := sorted(set(kv) & set(out)):
            raise ValueError(f"{', '.join(twice)} given twice")
        out.update(kv)
    optim.optimizer(rule.name, **out)  # every value checked by the rule itself
    return out


def _kv_text(key: str, value: Any) -> str:
    """``key=value`` that :func:`_rule_options` reads back as ``value`` (a tuple as ``[a,b]``)."""

    def text(v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(text(x) for x in v) + "]"
        if v is None or isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, str):
            return repr(v) if "," in v or v.strip() != v else v
        return repr(v)

    return f"{key}={text(value)}"


def parse_schedule(spec: str) -> Any:
    """``name:key=value,...`` (lists as ``[100,200]``) or a JSON object ``{"name": ..., ...}``."""
    import json

    from . import schedules

    spec = spec.strip()
    if spec.startswith("{"):
        try:
            cfg = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(cfg, dict) or "name" not in cfg:
            raise ValueError('a JSON schedule must be an object with a "name"')
        return schedules.get(cfg.pop("name"), **cfg)
    name, kwargs = parse_spec(spec, what="schedule")
    return schedules.get(name, **kwargs)


def _batch_size(text: str) -> int | None:
    t = text.strip().lower()
    if t in ("full", "none"):
        return None
    if not t.lstrip("-").isdigit():
        raise ValueError(f"expected 'full', 1 or an integer B >= 1, got {text!r}")
    if int(t) < 1:
        raise ValueError(f"batch_size must satisfy batch_size >= 1, got {int(t)}")
    return int(t)


def _existing(path: str) -> str:
    if not Path(path).exists() and not any(ch in path for ch in "*?["):
        raise ValueError(f"no such file {path!r}")
    return path


#: fit's defaults, which the command line shares (tests/test_cli.py checks them against fit's
#: signature; not read from it here, as that would import training into every ``descend --help``)
BATCH_SIZE = "256"
VAL_FRACTION = 0.2
EPOCHS_HELP = (
    "Epochs to train, or auto (default): stop when the training loss has stopped improving, "
    "up to 100 epochs, as fit(epochs=None) does; the summary says why it stopped."
)
STANDARDIZE_HELP = (
    "auto (default, as fit): scale the features to mean 0, sd 1 when they are ill-scaled (sds "
    "over 10x apart, or a mean far from 0), and a regression target always; on: always; off: "
    "train on the data as given. Predictions undo the scaling; the summary says what was done."
)
#: ``--standardize`` -> ``fit(standardize=...)``
STANDARDIZE = {"auto": "auto", "on": True, "off": False}


def _standardize(value: str) -> bool | str:
    choice = STANDARDIZE.get(value.strip().lower(), None)
    if choice is None:
        raise ValueError(f"expected auto, on or off, got {value!r}")
    return choice


def _epochs(value: str) -> int | None:
    """``--epochs``: a whole number >= 1, or ``auto`` (None: fit's convergence rule)."""
    t = value.strip().lower()
    if t == "auto":
        return None
    if not t.lstrip("+-").isdigit():
        raise ValueError(f"expected a whole number of epochs or auto, got {value!r}")
    if int(t) < 1:
        raise ValueError(f"epochs must satisfy epochs >= 1 (or auto), got {int(t)}")
    return int(t)


def _columns(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]`` (None stays None)."""
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]


#: ``--on-bad-rows`` -> ``data.open(on_bad_rows=...)``
ON_BAD_ROWS = {"error": "raise", "skip": "skip"}


def _on_bad_rows(value: str) -> str:
    choice = ON_BAD_ROWS.get(value.strip().lower())
    if choice is None:
        raise ValueError(f"expected skip or error, got {value!r}")
    return choice


def _load_data(
    command: str,
    data: str,
    target: str | None,
    features: str | None,
    on_bad_rows: str | None = None,
    drop: str | None = None,
) -> tuple[str, Any, Any]:
    """``(name, source or Dataset, Task or None)`` for DATA: a built-in dataset or a file (a
    path that exists is always a file or a folder of files, whatever its name)."""
    from . import data as dsdata
    from .lab import datasets

    exists = Path(data).exists()
    if normalize(data) in datasets.names() and not exists:
        d = _parse("DATA", datasets.load, data)
        for flag, given in (
            ("--target", target),
            ("--features", features),
            ("--drop", drop),
            ("--on-bad-rows", on_bad_rows),
        ):
            if given is not None:
                raise UsageProblem(flag, f"applies to a data file, not to the built-in dataset {d.name!r}")
        from .workflows import Task

        return d.name, d, Task(d.task, f"{d.name} is a {d.task} dataset")
    looks_like_file = exists or any(ch in data for ch in "./\\*?") or Path(data).suffix
    if not looks_like_file:
        _parse("DATA", datasets.load, data)  # an unknown dataset: suggests the closest name
    _parse("DATA", _existing, data)
    if target is None:
        raise UsageProblem("--target", f"name the targets of {data!r}: a column, or a .npy file")
    if target.endswith(".npy"):
        _parse("--target", _existing, target)
    kwargs: dict[str, Any] = {"target": target}
    if features is not None:
        kwargs["features"] = _columns(features)
    if drop is not None:
        kwargs["drop"] = _columns(drop)
    if on_bad_rows is not None:
        kwargs["on_bad_rows"] = _parse("--on-bad-rows", _on_bad_rows, on_bad_rows)
    try:
        source = dsdata.open(data, **kwargs)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        flag = flag_for(command, exc) if isinstance(exc, InvalidParameter) else None
        raise UsageProblem(flag or "DATA", _message(exc)) from None
    return Path(data).name, source, None


# ------------------------------------------------------------------------------------ commands


def _version(value: bool) -> None:
    if value:
        typer.echo(f"descend {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Gradient descent, done completely: update rules, schedules, test functions and the lab."""


@_command("demo", short_help="Everything at once: tables, races, batching, lr-find.")
def demo(
    out: Annotated[
        str | None, typer.Option(help="Folder to write (default runs/demo-<time>).", metavar="DIR")
    ] = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Fewer steps, a coarser lr grid, smaller pictures: a look in seconds."),
    ] = False,
    table: Annotated[bool, typer.Option(help="Print the every-optimizer table first.")] = True,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Maximum updates per run in the table (default 1000; 200 with --quick).", min=1, metavar="N"
        ),
    ] = None,
    functions: Annotated[
        str, typer.Option(help="Comma-separated test functions for the table.", metavar="NAMES")
    ] = "quadratic,rosenbrock,beale,two_well",
    optimizers: Annotated[
        str, typer.Option(help="Comma-separated optimizers for the table (default: all).", metavar="NAMES")
    ] = "",
) -> None:
    """Everything at once: a table of every optimizer on test functions, races of the six classic
    optimizers on Rosenbrock, Beale and the saddle, batch vs stochastic vs mini-batch, an LR range
    test on digits, and report.html, in one folder."""
    from . import workflows
    from .lab.suite import DEMO_OPTIMIZERS, run_suite
    from .lab.tune import LR_GRID

    fnames = _parse("--functions", _name_list, functions, fns.get, "function")
    onames = (
        _parse("--optimizers", _name_list, optimizers, optim.get, "optimizer")
        if optimizers.strip()
        else list(DEMO_OPTIMIZERS)
    )
    steps = steps or (200 if quick else 1000)
    t0 = time.perf_counter()
    console = _console()
    result = None
    if table:
        with console.status("running…") as status:
            result = run_suite(
                fnames,
                onames,
                max_steps=steps,
                progress=lambda msg: status.update(msg),
                grid=LR_GRID[::2] if quick else LR_GRID,  # quick: whole decades only
            )
        _suite_tables(result, fnames, onames, steps)
    with console.status("writing the demo folder…") as status:
        outcome = workflows.run_demo(
            out=out, quick=quick, progress=lambda msg: status.update(msg), suite=result
        )
    for name in workflows.DEMO_RACES:
        part = outcome.summary[f"race_{name}"]
        print_table(
            f"race on {name} ({part['lr_rule']})",
            part["results"],
            [
                ("label", "optimizer (hyperparameters)"),
                ("final_loss", "final loss"),
                ("distance_to_nearest_minimum", "dist. to min"),
                ("diverged", "diverged"),
            ],
        )
    lf = outcome.summary["lr_find"]
    say(f"LR range test (MLP on digits, SGD): {lf['advice']}")
    _wrote(outcome.folder)
    say(f"done in {time.perf_counter() - t0:.1f}s")


def _suite_tables(result: Any, fnames: list[str], onames: list[str], steps: int) -> None:
    say(
        f"[bold]descend demo[/bold]: {len(onames)} optimizers x {len(fnames)} functions, "
        f"up to {steps} steps, stop when |grad| <= {result.tol:g}; lr {result.lr_rule}."
    )
    for fname in fnames:
        f = fns.get(fname)
        print_table(
            f"{fname}: {f.description}  (start {list(map(float, f.start))})",
            [{**r.__dict__, "converged": r.converged, "steps": r.steps} for r in result.for_function(fname)],
            [
                ("optimizer", "optimizer"),
                ("lr", "lr"),
                ("loss", "final loss"),
                ("distance", "dist. to nearest min"),
                ("found", "nearest is"),
                ("steps", "steps"),
                ("converged", "converged"),
                ("diverged", "diverged"),
            ],
        )


@_command("report", short_help="Re-draw report.html from run folders (merged).")
def report(
    runs: Annotated[
        list[str], typer.Argument(help="One or more run folders written by descend.", metavar="RUNS")
    ],
    out: Annotated[
        str | None,
        typer.Option(help="HTML file to write (default: report.html in the first folder).", metavar="FILE"),
    ] = None,
) -> None:
    """Re-draw report.html from saved run folders; several folders are merged into one report."""
    from . import workflows

    for r in runs:
        if not Path(r).is_dir():
            raise UsageProblem("RUNS", f"no such folder {r!r}")
    path = _parse("RUNS", workflows.rebuild_report, runs, out)
    say(f"wrote [bold]{path}[/bold]")


@_command("race", short_help="Race optimizers from one start on a function.")
def race(
    function: Annotated[
        str,
        typer.Argument(
            help="Built-in name (see `descend functions`, parameters as quadratic:kappa=50), "
            "module:callable, or a NumPy expression in x and y such as 'x**2 + 10*y**2'.",
            metavar="FUNCTION",
        ),
    ],
    optimizers: Annotated[
        str, typer.Option(help="Comma-separated optimizers.", metavar="NAMES")
    ] = "sgd,momentum,nesterov,adagrad,rmsprop,adam",
    lr: Annotated[
        str | None,
        typer.Option(help="One lr for all (0.01) or per optimizer (sgd=0.001,adam=0.05).", metavar="LR"),
    ] = None,
    tune: Annotated[bool, typer.Option("--tune", help="Pick each lr by a disclosed grid search.")] = False,
    steps: Annotated[int, typer.Option(min=1, help="Updates per optimizer.", metavar="N")] = 500,
    start: Annotated[
        str | None,
        typer.Option(
            help="Start point, one coordinate per dimension (x,y for a 2-D function; default: the "
            "function's).",
            metavar="X,Y,...",
        ),
    ] = None,
    noise: Annotated[
        float, typer.Option(min=0.0, help="Std of Gaussian gradient noise (seeded).", metavar="SD")
    ] = 0.0,
    seed: Annotated[int, typer.Option(min=0, help="Seed for the noise.", metavar="N")] = 0,
    out: Annotated[
        str | None, typer.Option(help="Run folder (default runs/race-<time>).", metavar="DIR")
    ] = None,
    gif: Annotated[bool, typer.Option(help="Write an animated GIF.")] = True,
    mp4: Annotated[bool, typer.Option("--mp4", help="Also write an MP4 (needs ffmpeg).")] = False,
    frames: Annotated[int, typer.Option(min=2, help="Animation frames.", metavar="N")] = 60,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Hyperparameter of one optimizer, repeatable: momentum.momentum=0.95, "
            "adam.betas=[0.8,0.99].",
            metavar="OPT.KEY=VALUE",
        ),
    ] = None,
) -> None:
    """Race optimizers from one start on a surface: contour, 3-D view, loss curves, GIF, report."""
    from . import workflows

    names = _parse("--optimizers", _name_list, optimizers, optim.get, "optimizer")
    if tune and lr is not None:
        raise UsageProblem("--lr", "give --lr or --tune, not both")
    lrs = _parse("--lr", _race_lrs, lr, names)
    x0 = None if start is None else _parse("--start", _numbers, start)
    f = _parse("FUNCTION", _race_function, function, x0)
    if x0 is not None:
        _parse("--start", _numbers, start, getattr(f, "dim", 2))
    options = _parse("--set", _hyperparameters, set_ or [], names)
    with _console().status("racing…"):
        result, outcome = workflows.run_race(
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
    x0_text = str(list(map(float, result.start)))
    if result.start.size > 6:
        x0_text = f"a {result.start.size}-D start ({x0_text[:40].rsplit(',', 1)[0]}, ...])"
    say(
        f"[bold]{result.function.name}[/bold] from {x0_text}, {steps} steps; "
        f"lr {result.lr_rule}; gradient: {result.grad_method}"
        + (f"; gradient noise sd {noise:g} (seed {seed})" if noise else "")
    )
    print_table(
        "race",
        result.table(),
        [
            ("label", "optimizer (hyperparameters)"),
            ("final_loss", "final loss"),
            ("distance_to_nearest_minimum", "dist. to min"),
            ("steps_to_tol", f"steps to within {result.tol:g} of a minimum"),
            ("diverged", "diverged"),
        ],
    )
    for note in outcome.notes:
        say(note)
    _wrote(outcome.folder)


def _race_function(spec: str, x0: list[float] | None) -> Any:
    """FUNCTION resolved with the start point: a refusal about the start is --start's."""
    from .lab.custom import resolve_function

    try:
        return resolve_function(spec, start=x0)
    except InvalidParameter as exc:
        if exc.param == "start":
            raise UsageProblem("--start", _message(exc)) from None
        raise


@_command("train", short_help="Train a model on built-in data or a data file.")
def train(
    ctx: typer.Context,
    data: Annotated[
        str,
        typer.Argument(
            help="Built-in dataset (digits, iris, breast_cancer, diabetes, linear) or a data file "
            "(.parquet, .csv, .csv.gz, or a .npy feature file with --target y.npy).",
            metavar="DATA",
        ),
    ],
    target: Annotated[
        str | None,
        typer.Option(help="Target column of a data file, or the targets' .npy file.", metavar="COL"),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated feature columns (default: all but the target and the identifier "
            "columns, which are named when left out).",
            metavar="COLS",
        ),
    ] = None,
    drop: Annotated[
        str | None, typer.Option(help="Comma-separated columns to leave out of the features.", metavar="COLS")
    ] = None,
    standardize: Annotated[str, typer.Option(help=STANDARDIZE_HELP, metavar="auto|on|off")] = "auto",
    model: Annotated[
        str | None,
        typer.Option(
            help="linear, logistic, softmax or mlp (default: chosen from the targets, and said).",
            metavar="NAME",
        ),
    ] = None,
    hidden: Annotated[
        str | None, typer.Option(help="MLP hidden sizes, e.g. 64,32 (implies --model mlp).", metavar="SIZES")
    ] = None,
    activation: Annotated[
        str, typer.Option(help="MLP activation: relu, tanh, sigmoid, leaky_relu.", metavar="NAME")
    ] = "relu",
    optimizer: Annotated[
        str, typer.Option(help="Update rule (see `descend optimizers`).", metavar="NAME")
    ] = "adam",
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate > 0 (default: the optimizer's fit default).", metavar="LR"),
    ] = None,
    schedule_spec: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help="Learning-rate schedule instead of --lr, e.g. linear_decay:lr0=0.1,lr_final=0.001,tau=1000.",
            metavar="SPEC",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A hyperparameter of the optimizer, repeatable: momentum=0.9, betas=[0.8,0.99], "
            "weight_decay=0.01; lbfgs: history_size=20, line_search_fn=none (`descend optimizers` "
            "lists each rule's).",
            metavar="KEY=VALUE",
        ),
    ] = None,
    batch_size: Annotated[
        str,
        typer.Option(
            help="'full' (batch GD), 1 (stochastic) or B (mini-batch); the default is fit's, and "
            "full for a rule that needs the whole objective (lbfgs). With --dask each step costs a "
            "fixed overhead: use full, a large B, or --sync-every.",
            metavar="B",
        ),
    ] = BATCH_SIZE,
    epochs: Annotated[str, typer.Option(help=EPOCHS_HELP, metavar="N|auto")] = "auto",
    seed: Annotated[int, typer.Option(min=0, metavar="N")] = 0,
    val_fraction: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.9,
            help="Share of the rows held out for validation, never trained on (0: none).",
            metavar="F",
        ),
    ] = VAL_FRACTION,
    early_stopping: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Stop N epochs after the best validation loss; restore that epoch's parameters.",
            metavar="N",
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(min=1, help="Checkpoint every N steps (into the run folder).", metavar="N")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Resume from the checkpoint in --out (a folder of an earlier run), with that run's "
            "settings (optimizer, lr or schedule, batch size, model, standardize, validation, seed) "
            "unless given; a given one that differs is refused. --epochs may grow.",
        ),
    ] = False,
    out: Annotated[
        str | None, typer.Option(help="Run folder (default runs/train-<time>).", metavar="DIR")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
    dask: Annotated[str | None, typer.Option(help=DASK_HELP, metavar="ADDRESS")] = None,
    sync_every: Annotated[int | None, typer.Option(help=SYNC_EVERY_HELP, metavar="H", min=1)] = None,
    on_bad_rows: Annotated[str | None, typer.Option(help=ON_BAD_ROWS_HELP, metavar="skip|error")] = None,
    monitor: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Every N steps record per-layer gradient and weight norms and update ratios "
            "(monitor.csv in the run folder; see ds.Monitor).",
            metavar="N",
        ),
    ] = None,
) -> None:
    """Train a model with any optimizer and batch size; write metrics, plots, report and
    model.npz (for descend predict).

    Ctrl-C stops at the end of the current step, saves the run folder and its checkpoint, and
    prints the command that resumes it (a second Ctrl-C quits at once)."""
    from contextlib import ExitStack

    given = dict(locals())
    # a resumed run takes its own settings where they are not given (before anything is read)
    v = {**given, **_resumed_settings(ctx, out, dask)} if resume else given
    bs_given = _given_flag(ctx, "batch_size")
    _check_rule_flags(v["optimizer"], v["schedule_spec"], v["batch_size"], bs_given, v["sync_every"], dask)
    with ExitStack() as stack:
        name, source, task = _open_data(stack, "train", data, target, features, on_bad_rows, dask, drop)
        _train(
            name,
            source,
            task,
            standardize=_parse("--standardize", _standardize, v["standardize"]),
            model=v["model"],
            hidden=v["hidden"],
            activation=v["activation"],
            optimizer=v["optimizer"],
            lr=v["lr"],
            schedule_spec=v["schedule_spec"],
            options=v["set_"],
            batch_size=v["batch_size"],
            batch_size_given=bs_given,
            epochs=epochs,
            seed=v["seed"],
            val_fraction=v["val_fraction"],
            early_stopping=early_stopping,
            checkpoint_every=v["checkpoint_every"],
            resume=resume,
            out=out,
            progress=progress,
            given=given,
            monitor=monitor,
            sync_every=v["sync_every"],
        )


def _check_rule_flags(
    optimizer: str,
    schedule: str | None,
    batch_size: str,
    batch_size_given: bool,
    sync_every: int | None,
    dask: str | None,
) -> None:
    """Flags that contradict each other whatever the data: refused before the data is opened
    (and before a cluster starts)."""
    rule_cls = _parse("--optimizer", optim.get, optimizer)
    full = batch_size.strip().lower() in ("full", "none")
    if rule_cls.needs_objective:
        name = optimizer.strip().lower()
        if schedule is not None:
            raise UsageProblem(
                "--schedule", f"does not apply to {name}: its line search chooses each step's length"
            )
        if sync_every is not None:
            raise UsageProblem(
                "--sync-every",
                f"does not apply to {name}: it takes full-batch iterations, local SGD takes mini-batch "
                "steps; leave --sync-every out",
            )
        if batch_size_given and not full:
            raise UsageProblem(
                "--batch-size",
                f"{batch_size} with {name}: it takes full-batch iterations; give --batch-size full or "
                "leave it out",
            )
    if sync_every is not None and sync_every > 1:
        if dask is None:
            raise UsageProblem(
                "--sync-every",
                f"{sync_every} (local SGD) needs data on a Dask cluster: add --dask tcp://HOST:PORT or "
                "--dask local:N, or leave --sync-every out",
            )
        if full:
            raise UsageProblem(
                "--sync-every", "takes mini-batch steps on each partition: give --batch-size B, not full"
            )


def _given_flag(ctx: Any, name: str) -> bool:
    """Whether the option ``name`` was typed (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


DASK_HELP = (
    "Train on a Dask cluster: tcp://HOST:PORT (a running scheduler) or local:N (N worker processes "
    "for this run); DATA is then a Parquet/CSV path the workers can read."
)
SYNC_EVERY_HELP = (
    "Local SGD on a Dask cluster (--dask): each partition takes H mini-batch steps on its own rows "
    "between averagings of the models (one round trip per H steps, not per step); with P "
    "partitions multiply --lr by P. Default: one synchronized step at a time."
)
ON_BAD_ROWS_HELP = (
    "A row of a data file with a missing or non-numeric value: error (stop, naming file, row and "
    "column; the default) or skip (drop it; the count is printed)."
)


def _open_data(
    stack: Any,
    command: str,
    data: str,
    target: str | None,
    features: str | None,
    on_bad_rows: str | None,
    dask: str | None,
    drop: str | None = None,
) -> tuple[str, Any, Any]:
    """DATA read here (:func:`_load_data`) or by the workers of a Dask cluster."""
    if dask is None:
        return _load_data(command, data, target, features, on_bad_rows, drop)
    if on_bad_rows is not None and _parse("--on-bad-rows", _on_bad_rows, on_bad_rows) != "raise":
        raise UsageProblem(
            "--on-bad-rows", "skip applies to files read here; with --dask a bad row stops the run"
        )
    if drop is not None:
        raise UsageProblem(
            "--drop", "applies to files read here; with --dask name the columns with --features"
        )
    return _load_on_cluster(stack, command, dask, data, target, features)


def _load_on_cluster(
    stack: Any, command: str, spec: str, data: str, target: str | None, features: str | None
) -> Any:
    from .data import dask as dsdask
    from .lab import datasets

    if normalize(data) in datasets.names() and not Path(data).exists():
        raise UsageProblem("--dask", f"applies to data files, not to the built-in dataset {data!r}")
    _parse("DATA", _existing, data)
    if target is None:
        raise UsageProblem("--target", f"name the target column of {data!r}")
    client, cluster = _parse("--dask", dsdask.connect, spec)
    if cluster is not None:  # closed last: the stack runs its callbacks in reverse
        stack.callback(cluster.close)
    stack.callback(client.close)
    cols = _columns(features)
    source = _parse_all(command, dsdask.read, data, target=target, features=cols, client=client)
    say(f"on the Dask cluster {spec} ({len(client.scheduler_info().get('workers', {}))} workers)")
    return Path(data).name, source, None


def _train(
    name: str,
    source: Any,
    task: Any,
    *,
    standardize: bool | str,
    model: str | None,
    hidden: str | None,
    activation: str,
    optimizer: str,
    lr: float | None,
    schedule_spec: str | None,
    options: list[str] | None = None,
    batch_size: str,
    epochs: str,
    seed: int,
    val_fraction: float,
    early_stopping: int | None,
    checkpoint_every: int | None,
    resume: bool,
    out: str | None,
    progress: bool,
    given: dict[str, Any],
    monitor: int | None = None,
    batch_size_given: bool,
    sync_every: int | None,
) -> None:
    from . import workflows
    from .train.callbacks import EarlyStopping

    sizes = _parse("--hidden", _sizes, hidden) if hidden is not None else (64,)
    if hidden is not None and model is None:
        model = "mlp"
    if model is not None:
        _parse("--model", _model_name, model)
    _parse("--activation", _activation, activation)
    rule_cls = _parse("--optimizer", optim.get, optimizer)
    bs = _parse("--batch-size", _batch_size, batch_size)
    if rule_cls.needs_objective and not batch_size_given:
        bs = None  # L-BFGS trains on the whole objective; an explicit B is passed on (and refused)
    n_epochs = _parse("--epochs", _epochs, epochs)
    rule_options = _parse("--set", _rule_options, options or [], optimizer)
    if lr is not None:
        _parse("--lr", _positive_lr, lr)
        _parse("--lr", optim.optimizer, optimizer, lr=lr, **rule_options)
    lr_arg: Any = lr
    if schedule_spec is not None:
        if lr is not None:
            raise UsageProblem("--schedule", "give --lr or --schedule, not both")
        lr_arg = _parse("--schedule", parse_schedule, schedule_spec)
    is_file = task is None
    if task is None:
        task = workflows.source_task(source, name=f"the targets of {name}")
    m, chosen = _parse("--model", workflows.build_model, model, task, hidden=sizes, activation=activation)
    validation: Any = None
    train_data: Any = source
    if not is_file:
        if val_fraction > 0:
            tr, va = source.split(val_fraction, seed=seed)
            train_data, validation = (tr.X, tr.y), (va.X, va.y)
        else:
            train_data = (source.X, source.y)
    elif val_fraction > 0:
        validation = val_fraction  # rows held out by a hash of (seed, row), as fit does
    callbacks = []
    if early_stopping is not None:
        if validation is None:
            raise UsageProblem("--early-stopping", "needs validation data (--val-fraction > 0)")
        callbacks.append(EarlyStopping(patience=early_stopping))
    if monitor is not None:
        from .lab.monitor import Monitor

        callbacks.append(Monitor(every=monitor))
    say(chosen)
    _data_lines(source)
    run, outcome = workflows.run_train(
        m,
        train_data,
        validation=validation,
        dataset_name=name,
        out=out,
        checkpoint_every=checkpoint_every,
        resume=resume,
        optimizer=optimizer,
        lr=lr_arg,
        options=rule_options or None,
        batch_size=bs,
        epochs=n_epochs,
        seed=seed,
        callbacks=callbacks,
        progress=None if progress else False,
        interruptible=True,
        standardize=standardize,
        sync_every=sync_every,
    )
    step = getattr(run, "resumed_from_step", None)
    if step is not None:  # said once fit has accepted the checkpoint, not before it may refuse it
        say(f"resumed from step {step} (the checkpoint in {Path(str(out)) / 'checkpoints'})")
    if outcome.error is not None:
        _diverged(outcome)
    if outcome.interrupted is not None:
        where = outcome.interrupted
        raise Interrupted(
            f"interrupted at epoch {where['epoch']}, step {where['step']}: saved {outcome.folder.dir}; "
            f"resume with: {_resume_command('train', given, outcome.folder.dir)}"
        )
    _train_summary(run, outcome, early_stopping, source, standardize)
    _wrote(outcome.folder)


#: the most feature names printed; summary.json lists them all
SHOWN_FEATURES = 50


def _wrapped(text: str) -> None:
    """One logical line, wrapped at a terminal's width (continuations indented), whole when piped;
    printed as it is (column names may hold brackets)."""
    import textwrap

    console = _console()
    if console.width < PIPE_WIDTH:
        text = textwrap.fill(
            text, width=console.width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
        )
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _note(text: str) -> None:
    """A library note in the words of the command line (``features=[...]`` -> ``--features``)."""
    _wrapped(cli_words(_OWNER_WORD.sub("", " ".join(text.split())), "train"))


#: a note's first word naming the function that chose (``data.open left out ...``)
_OWNER_WORD = re.compile(r"^(?:data\.open|fit):? ")


def _data_lines(source: Any) -> None:
    """The features a data file is trained on, and the columns left out of them (with why)."""
    names = list(getattr(source, "feature_names", None) or ())
    if not names:
        return
    shown = ", ".join(names[:SHOWN_FEATURES])
    if len(names) > SHOWN_FEATURES:
        shown += f", ... ({len(names) - SHOWN_FEATURES} more; summary.json lists them all)"
    _wrapped(f"features ({len(names)}): {shown}")
    excluded: dict[str, str] = dict(getattr(source, "excluded", None) or {})
    if excluded:
        why = "; ".join(f"{c} ({reason})" for c, reason in excluded.items())
        _wrapped(f"left out: {why}; --features or --drop chooses the columns")
    for text in getattr(source, "notes", ()):  # other choices data.open made (not the left-out columns)
        if not any(repr(c) in text for c in excluded):
            _note(text)


def _fit_lines(run: Any, source: Any, standardize: bool | str) -> None:
    """What fit did with the data: the scaling (``--standardize``) and its notes."""
    flag = next(k for k, v in STANDARDIZE.items() if v is standardize or v == standardize)
    if run.scaler is not None:
        why = " (they are ill-scaled)" if flag == "auto" else ""
        done = f"scaled the features to mean 0, sd 1{why}; predictions undo it"
    elif standardize is False:
        done = "trained on the data as given"
    else:
        done = "features left as given (their scales are alike)"
    _wrapped(f"--standardize {flag}: {done}")
    for text in run.notes:
        if text not in getattr(source, "notes", ()):
            _note(text)


class Interrupted(Exception):
    """A run stopped by Ctrl-C and saved: one line, exit code 130 (as for SIGINT)."""


def _resume_command(command: str, given: dict[str, Any], out: Path) -> str:
    """The command line that continues a run: the flags it was given, ``--out`` its folder and
    ``--resume``."""
    import shlex

    cmd = typer.main.get_command(app).commands[command]
    words = ["descend", command]
    for p in cmd.params:
        value = given.get(p.name)
        if p.name in ("out", "resume") or p.name not in given:
            continue
        if p.param_type_name == "argument":
            words.append(str(value))
        elif value is None or value == p.default:
            continue
        elif getattr(p, "is_flag", False):
            words.append(p.opts[0] if value else p.secondary_opts[0])
        elif isinstance(value, (list, tuple)):  # a repeatable option (--set): once per value
            for item in value:
                words += [p.opts[0], str(item)]
        else:
            words += [p.opts[0], str(value)]
    return shlex.join([*words, "--out", str(out), "--resume"])


# ------------------------------------------------------------------------------------ resume


def _resumed_settings(ctx: Any, out: str | None, dask: str | None) -> dict[str, Any]:
    """The settings of the run in ``out`` (those that fit compares with its checkpoint, and
    ``--checkpoint-every``), as train's parameters, for those not given on the command line;
    ``--epochs`` and the rest may change on resume. A given flag that contradicts the run is
    refused, naming the flag, the run's value and the given one (fit would refuse the checkpoint
    anyway, in its own words, after reading the data)."""
    from . import workflows

    if out is None:
        raise UsageProblem("--resume", "needs --out FOLDER: the run folder of the run to continue")
    if workflows.checkpoint_step(out) is None:
        raise UsageProblem(
            "--resume",
            f"no checkpoint in {str(Path(out) / 'checkpoints')!r}; train with --checkpoint-every N "
            "(and this --out) first",
        )
    run, where = _run_settings(Path(out))
    taken: dict[str, Any] = {}
    for name, (value, same, shown) in run.items():
        flag = next(p.opts[0] for p in ctx.command.params if p.name == name)
        if not _given_flag(ctx, name):
            taken[name] = value
        elif not _same(same, ctx.params[name]):
            value = ctx.params[name]
            if isinstance(value, (list, tuple)):  # a repeatable flag (--set), as it was typed
                value = " ".join(f"{flag} {item}" for item in value)
            raise UsageProblem(
                flag,
                f"{value} contradicts the run in {out!r}, which used {shown} (as {where} "
                "records); "
                f"leave {flag} out to resume with the run's settings, or give another --out to start "
                "a new run",
            )
    if taken.get("sync_every") is not None and dask is None:
        raise UsageProblem(
            "--resume",
            f"the run in {out!r} trained with local SGD (--sync-every {taken['sync_every']}) on a Dask "
            "cluster; give --dask tcp://HOST:PORT or --dask local:N to resume it",
        )
    return taken


def _same_options(given: list[str] | None, rule: str, want: dict[str, Any]) -> bool:
    """Whether ``--set`` as given makes the optimizer the run trained with (``want``: its
    hyperparameters); the learning rate is --lr's to compare."""
    have = optim.resolve(rule, None, _rule_options(given or [], rule), default_lr="fit_lr").hyperparameters()
    return {k: v for k, v in have.items() if k != "lr"} == {k: v for k, v in want.items() if k != "lr"}


def _same(same: Callable[[Any], bool], given: Any) -> bool:
    """Whether a given flag's value is the run's; a value its flag refuses passes here, to be
    refused by that flag's own parsing, in its words."""
    try:
        return same(given)
    except (ValueError, TypeError, LookupError):
        return True


def _run_settings(folder: Path) -> tuple[dict[str, tuple[Any, Callable[[Any], bool], str]], str]:
    """What the run in ``folder`` used, read as data from its config.yaml (or, for a run killed
    before writing it, from its checkpoint's header) and checked: ``{parameter: (value as the
    flag gives it, whether a given flag's value is the same, the run's value in words)}``, and
    the file read."""
    from . import models
    from .lab.runfolder import RunFolder
    from .train.checkpoint import load_latest

    path = folder / RunFolder.CONFIG
    if path.exists():
        config = _read_run_config(path)
    else:  # a run killed before it finished has written only its checkpoints
        latest = load_latest(folder / "checkpoints", owner="", warn=False)
        assert latest is not None  # the caller found a checkpoint
        path = latest[0]
        config = {"command": "train", **latest[1][2]["config"]}

    def bad(why: str) -> UsageProblem:
        return UsageProblem("--resume", f"{str(path)!r}: {why}; it is not the configuration of a train run")

    def get(key: str, types: tuple[type, ...], what: str, *, optional: bool = False) -> Any:
        node: Any = config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if optional:
                    return None
                raise bad(f"{key} is missing")
            node = node[part]
        if not isinstance(node, types) or (isinstance(node, bool) and bool not in types):
            raise bad(f"{key} is {node!r}, not {what}")
        return node

    if config.get("command") != "train":
        raise bad(f"it was written by descend {config.get('command')}, not descend train")
    run: dict[str, tuple[Any, Callable[[Any], bool], str]] = {}
    rule = get("optimizer.name", (str,), "an optimizer name")
    run["optimizer"] = (rule, lambda g: optim.get(g).name == optim.get(rule).name, f"--optimizer {rule}")
    # its hyperparameters other than fit's defaults for the rule: what --set gave
    recorded = get("optimizer", (dict,), "the optimizer's settings")
    try:
        base = optim.resolve(rule, None, None, default_lr="fit_lr").hyperparameters()
    except (ValueError, TypeError, LookupError):
        raise bad(f"optimizer.name is {rule!r}, not an update rule of this descend") from None

    def plain(v: Any) -> Any:  # YAML holds lists where the optimizer has tuples
        return tuple(plain(x) for x in v) if isinstance(v, list) else v

    mine = {k: plain(v) for k, v in recorded.items() if k not in ("name", "lr") and k in base}
    changed = {k: v for k, v in mine.items() if v != base[k]}
    try:
        want = optim.resolve(rule, None, changed, default_lr="fit_lr").hyperparameters()
    except (ValueError, TypeError, LookupError) as exc:
        raise bad(f"optimizer holds settings {rule} refuses ({_message(exc)})") from None
    items = [_kv_text(k, v) for k, v in changed.items()]
    shown = " ".join(f"--set {item}" for item in items) if items else f"{rule}'s defaults (no --set)"
    run["set_"] = (items or None, lambda g: _same_options(g, rule, want), shown)
    lr = get("optimizer.lr", (int, float, str), "a learning rate or a schedule")
    if isinstance(lr, str):
        spec = _schedule_spec(lr)
        if spec is None:
            raise bad(f"optimizer.lr is {lr!r}, a schedule that cannot be read back; give it with --schedule")
        used = f"--schedule {lr}"
        run["schedule_spec"] = (spec, lambda g: repr(parse_schedule(g)) == lr, used)
        run["lr"] = (None, lambda g: False, used)
    else:
        if not math.isfinite(lr) or lr <= 0:
            raise bad(f"optimizer.lr is {lr!r}, not a learning rate > 0")
        used = f"--lr {lr:g}"
        run["lr"] = (float(lr), lambda g: g == lr, used)
        run["schedule_spec"] = (None, lambda g: False, used)
    bs = get("batch_size", (int, type(None)), "a batch size (an integer or null)")
    if bs is not None and bs < 1:
        raise bad(f"batch_size is {bs!r}, not an integer >= 1 or null")
    batch = "full" if bs is None else str(bs)
    run["batch_size"] = (batch, lambda g: _batch_size(g) == bs, f"--batch-size {batch}")
    seed = get("seed", (int,), "an integer >= 0")
    if seed < 0:
        raise bad(f"seed is {seed!r}, not an integer >= 0")
    run["seed"] = (seed, lambda g: g == seed, f"--seed {seed}")
    kind = get("model.model", (str,), "a model name")
    if kind == "mlp":
        sizes = get("model.hidden", (list,), "a list of layer sizes")
        if not sizes or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
            raise bad(f"model.hidden is {sizes!r}, not a list of layer sizes >= 1")
        act = get("model.activation", (str,), "an activation name")
        hidden = ",".join(map(str, sizes))
        run["model"] = ("mlp", lambda g: normalize(g) == "mlp", f"--model mlp --hidden {hidden}")
        run["hidden"] = (hidden, lambda g: list(_sizes(g)) == sizes, f"--hidden {hidden}")
        run["activation"] = (act, lambda g: normalize(g) == normalize(act), f"--activation {act}")
    else:
        used_model = f"--model {kind} (no hidden layers)"
        run["model"] = (kind, lambda g: normalize(g) != "mlp" and models.get(g).name == kind, used_model)
        run["hidden"] = (None, lambda g: False, used_model)
    # what the features and a regression target were, as the flag that does it again gives it
    scaled = get("standardize", (bool,), "true or false", optional=True)
    target = get("standardize_target", (bool,), "true or false", optional=True)
    choice = "on" if scaled else "auto" if target else "off"  # "auto": the target only
    how = ", which scaled a regression target only" if choice == "auto" else ""
    run["standardize"] = (
        choice,
        lambda g: _standardize(g) == "auto" or g.strip().lower() == choice,
        f"--standardize {choice}{how}",
    )
    data = get("data", (dict,), "a description of the data")
    split = data.get("split")
    if split is not None or "files" in data:  # a file's held-out share; built-in data records none
        if split is not None and not (
            isinstance(split, list) and split and isinstance(split[0], (int, float)) and 0 < split[0] < 1
        ):
            raise bad(f"data.split is {split!r}, not [fraction, seed, held_out]")
        frac = 0.0 if split is None else float(split[0])
        run["val_fraction"] = (frac, lambda g: g == frac, f"--val-fraction {frac:g}")
    sync = get("sync_every", (int,), "an integer >= 1", optional=True)
    if sync is not None and sync < 1:
        raise bad(f"sync_every is {sync!r}, not an integer >= 1")
    local = "no --sync-every" if sync is None else f"--sync-every {sync}"
    run["sync_every"] = (sync, lambda g: g == sync, local)
    every = get("checkpoint_every", (int, type(None)), "an integer >= 1 or null", optional=True)
    if every is not None and every >= 1:  # how often to checkpoint may change: never refused
        run["checkpoint_every"] = (every, lambda g: True, f"--checkpoint-every {every}")
    return run, str(path)


def _read_run_config(path: Path) -> dict[str, Any]:
    """A run folder's config.yaml as plain data (``yaml.safe_load``: a tag that builds an object
    is refused, never run), or a one-line refusal naming the file."""
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        why = _message(exc)
        raise UsageProblem("--resume", f"{str(path)!r} cannot be read as YAML data ({why})") from None
    if not isinstance(config, dict):
        raise UsageProblem("--resume", f"{str(path)!r} holds no mapping of settings (found {config!r:.60})")
    return config


def _schedule_spec(text: str) -> str | None:
    """The ``--schedule`` JSON spec that rebuilds the schedule a config records by its repr
    (``Cosine(lr0=0.1, total_steps=50, lr_min=0.0)``), or None when it cannot: the repr is parsed
    (literals only, by ``ast.literal_eval``; nothing is run) and the rebuilt schedule's repr must
    equal it."""
    import ast
    import json

    from . import schedules

    def config(node: ast.expr) -> dict[str, Any]:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args):
            raise ValueError("not a schedule")
        cls = getattr(schedules, node.func.id, None)
        if not (isinstance(cls, type) and issubclass(cls, schedules.Schedule)):
            raise ValueError(f"no schedule {node.func.id}")
        out: dict[str, Any] = {"name": cls.name}
        for kw in node.keywords:
            if kw.arg is None:
                raise ValueError("not a schedule")
            out[kw.arg] = config(kw.value) if isinstance(kw.value, ast.Call) else ast.literal_eval(kw.value)
        return out

    try:
        spec = json.dumps(config(ast.parse(text, mode="eval").body))
        same = repr(parse_schedule(spec)) == text
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return None
    return spec if same else None


def _model_name(name: str) -> str:
    from . import models

    if normalize(name) != "mlp":
        models.get(name)
    return name


def _activation(name: str) -> str:
    from .models import MLP

    MLP(activation=name)
    return name


def _diverged(outcome: Any) -> None:
    from .workflows import divergence_lr

    exc = outcome.error
    lr = divergence_lr(exc)
    where = f"step {exc.step}" + (f" (epoch {exc.epoch + 1})" if exc.epoch is not None else "")
    with_lr = f" with lr={lr:.3g}" if lr is not None else ""
    curve = "the curve up to it" if outcome.metrics else "its config"
    cause = getattr(exc, "cause", None) or f"{exc.quantity} became non-finite"
    raise Diverged(
        f"diverged at {where}{with_lr}; try a smaller lr ({cause}; {curve} is in {outcome.folder.dir})"
    )


class Diverged(Exception):
    """A run diverged: one line, exit code 1."""


def _train_summary(
    run: Any, outcome: Any, patience: int | None, source: Any, standardize: bool | str
) -> None:
    """What a finished run did. Epochs are counted from 1 here, as "completed 20 epochs" counts
    them (the files keep fit's epoch index, from 0)."""
    restored = outcome.summary.get("restored_epoch")
    if restored is not None:
        last = int(run.history.epochs["epoch"][-1]) + 1
        say(
            f"stopped early after epoch {last}: val loss had not improved for {patience} epochs "
            f"since epoch {restored + 1}; restored the parameters of epoch {restored + 1}"
        )
    else:
        say(f"{run.stop_reason}; {run.steps_completed} steps with {run.optimizer!r}")
    if run.quality is not None:
        say(str(run.quality))
    _fit_lines(run, source, standardize)
    skipped = {f: n for f, n in (run.skipped_rows or {}).items() if n}
    if skipped:
        say(
            f"skipped {sum(skipped.values())} rows with a missing or non-numeric value (--on-bad-rows "
            "skip): " + ", ".join(f"{n} in {Path(f).name}" for f, n in skipped.items())
        )
    if run.history.epochs:
        rows = run.history.epoch_rows()
        for r in rows:
            r["epoch_label"] = str(int(r["epoch"]) + 1)
        shown = rows[-5:]
        if restored is not None:
            best = dict(rows[restored])
            best["epoch_label"] = f"{restored + 1} (restored)"
            shown = [r for r in shown if int(r["epoch"]) != restored] + [best]
        cols = [("epoch_label", "epoch")] + [
            (k, k.replace("_", " "))
            for k in ("train_loss", "val_loss", "val_accuracy", "val_mse", "lr")
            if k in run.history.epochs
        ]
        title = "epochs (last 5" + ("; the restored model last)" if restored is not None else ")")
        print_table(title, shown, cols)


@_command("predict", short_help="Predict with a trained run: a data file in, a file out.")
def predict_cmd(
    run: Annotated[
        str,
        typer.Argument(
            help="Run folder of descend train (model.npz; a folder Run.save wrote, or a checkpoint "
            "folder, also do).",
            metavar="RUN",
        ),
    ],
    data: Annotated[
        str,
        typer.Argument(
            help="CSV or Parquet file (or a folder or glob of them) of any size, streamed; its "
            "columns are matched to the run's features by name, in any order.",
            metavar="DATA",
        ),
    ],
    out: Annotated[
        str | None,
        typer.Option(
            help="File to write, .csv, .csv.gz or .parquet (default: DATA's name with "
            ".predictions.csv, in the current folder).",
            metavar="FILE",
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Column written beside each prediction (default: the first identifier column, "
            "such as id or customer_id; without one, the row number).",
            metavar="COL",
        ),
    ] = None,
    on_bad_rows: Annotated[
        str | None, typer.Option(help=PREDICT_BAD_ROWS_HELP, metavar="skip|empty|error")
    ] = None,
) -> None:
    """Predict with a trained run: stream DATA through the model and write one row per row of
    DATA: its id, the prediction (labels as trained on, or values in the target's units) and,
    for a classifier, one probability per class."""
    from .errors import RunFileError
    from .train.saved import load_run, predict_file

    _parse("DATA", _existing, data)
    target = Path(out) if out is not None else Path(_predictions_name(data))
    bad = "raise" if on_bad_rows is None else _parse("--on-bad-rows", _predict_bad_rows, on_bad_rows)
    try:
        trained = load_run(run)
    except RunFileError as exc:
        raise UsageProblem("RUN", str(exc)) from None
    if trained.stop_reason.startswith("diverged"):
        _warn("predict", f"the run {trained.stop_reason}: these are the predictions of its last good state")
    try:
        result = _parse_all(
            "predict", predict_file, trained, data, target, id_column=id_column, on_bad_rows=bad
        )
    except OSError as exc:  # a file that cannot be read or written: no flag to blame but the file
        raise UsageProblem(None, f"{exc.strerror or exc}: {exc.filename or data}") from None
    what = f"id column {result.id_column}" if result.id_column else "no id column: rows numbered in 'row'"
    extra = ""
    if result.skipped:
        extra += f"; skipped {result.skipped:,} rows with a missing value (--on-bad-rows skip)"
    if result.empty:
        extra += f"; {result.empty:,} rows with a missing value have an empty prediction"
    _wrapped(
        f"predicted {result.rows:,} rows of {data} with {run}: wrote {result.path} ({what}; "
        f"{', '.join(c for c in result.columns if c != (result.id_column or 'row'))}){extra}"
    )


PREDICT_BAD_ROWS_HELP = (
    "A row with a missing or non-numeric feature: error (stop, naming file, row and column; the "
    "default), skip (leave it out) or empty (write it with an empty prediction)."
)
#: ``descend predict --on-bad-rows`` -> ``predict_file(on_bad_rows=...)``
PREDICT_BAD_ROWS = {"error": "raise", "skip": "skip", "empty": "empty"}


def _predict_bad_rows(value: str) -> str:
    choice = PREDICT_BAD_ROWS.get(value.strip().lower())
    if choice is None:
        raise ValueError(f"expected skip, empty or error, got {value!r}")
    return choice


#: data file suffixes, dropped from DATA's name to name its predictions
_DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".gz", ".bz2", ".zst", ".lz4")


def _predictions_name(data: str) -> str:
    """``new.csv.gz`` -> ``new.predictions.csv`` (a folder's or a glob's folder name likewise),
    in the current folder."""
    p = Path(data.rstrip("/\\"))
    if any(ch in p.name for ch in "*?["):
        p = p.parent
    name = p.name if p.name not in ("", ".", "..") else Path.cwd().name
    while name.lower().endswith(_DATA_SUFFIXES) and "." in name[1:]:
        name = name[: name.rfind(".")]
    return f"{name}.predictions.csv"


def _warn(command: str | None, text: str) -> None:
    """One warning line on stderr, as :func:`main` prints a library warning."""
    _console(stderr=True).print(
        _line(command, None, f"warning: {text}"), highlight=False, markup=False, soft_wrap=True
    )


def _is_run_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "model.npz").exists() or (path / "checkpoints").is_dir())


def _trained_on(folder: Path) -> str:
    """The data name a run folder's summary.json records (read as data, never run)."""
    import json

    from .lab.runfolder import RunFolder

    try:
        summary = json.loads((folder / RunFolder.SUMMARY).read_text())
    except (OSError, ValueError):
        return ""
    return str(summary.get("data", "")) if isinstance(summary, dict) else ""


def _monitor_records(folder: Path) -> dict[str, list[float]] | None:
    """The run folder's monitor.csv (``descend train --monitor``), read as numbers, or None."""
    from .lab.artifacts import TrainingArtifact

    return TrainingArtifact.read_monitor(folder)


@_command("diagnose", short_help="Why training is slow or stuck, and the fix.")
def diagnose_cmd(
    run_or_data: Annotated[
        str | None,
        typer.Argument(
            help="A run folder of `descend train` (its trained model, optimizer and lr), or DATA "
            "(as --data).",
            metavar="RUN_OR_DATA",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Built-in dataset or data file (see `descend train`); for a run folder, the data "
            "it was trained on (default: its built-in dataset). Without either: digits.",
            metavar="DATA",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Target column, or the targets' .npy file.", metavar="COL")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Comma-separated feature columns.", metavar="COLS")
    ] = None,
    drop: Annotated[
        str | None, typer.Option(help="Comma-separated columns to leave out of the features.", metavar="COLS")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="linear, logistic, softmax or mlp (without --run).", metavar="NAME")
    ] = None,
    hidden: Annotated[
        str | None, typer.Option(help="MLP hidden sizes (implies --model mlp).", metavar="SIZES")
    ] = None,
    activation: Annotated[
        str, typer.Option(help="MLP activation: relu, tanh, sigmoid, leaky_relu.", metavar="NAME")
    ] = "relu",
    optimizer: Annotated[
        str | None, typer.Option(help="Update rule to judge the lr for (default: the run's).", metavar="NAME")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate to judge (default: the run's).", metavar="LR")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Batch size to judge the noise for.", metavar="B")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, metavar="N")] = 0,
    out: Annotated[
        str | None, typer.Option(help="Run folder (default runs/diagnose-<time>).", metavar="DIR")
    ] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print only the JSON summary.")] = False,
    on_bad_rows: Annotated[str | None, typer.Option(help=ON_BAD_ROWS_HELP, metavar="skip|error")] = None,
) -> None:
    """Measure curvature, saddles, gradient noise, vanishing/exploding gradients and dead or
    duplicate units; judge each against a documented threshold and give the notes' fix.

    On a run folder: its trained model at its final parameters, on its data prepared as the run
    prepared it. On DATA: the model --model/--hidden builds, at its seeded initial parameters,
    on the data as given (unscaled features are one of the things judged)."""
    import json

    import numpy as np

    from . import workflows
    from .lab import datasets
    from .lab.diagnose import PROBE_ROWS, _probe
    from .train.saved import load_run

    source = run_or_data
    run = source if source is not None and _is_run_folder(Path(source)) else None
    data_flag = "--data"
    if source is not None and run is None:
        if data is not None:
            raise UsageProblem(
                "RUN_OR_DATA", f"{source!r} is not a run folder (no model.npz), and --data is given"
            )
        data, data_flag = source, "RUN_OR_DATA"
    r = None
    if run is not None:
        for flag, given in (("--model", model), ("--hidden", hidden)):
            if given is not None:
                raise UsageProblem(flag, f"the model is the run's ({run}); leave it out")
        r = _parse("RUN_OR_DATA", load_run, run)
        if data is None:
            trained_on = _trained_on(Path(run))
            if normalize(trained_on) not in datasets.names():
                raise UsageProblem(
                    "--data", f"name the data file the run in {run!r} was trained on ({trained_on!r})"
                )
            data = trained_on
    try:
        name, loaded, task = _load_data("diagnose", data or "digits", target, features, on_bad_rows, drop)
    except UsageProblem as exc:
        if exc.flag == "DATA":  # the data came from this command's --data or its argument
            exc.flag = data_flag
        raise
    whole = (loaded.X, loaded.y) if hasattr(loaded, "X") else loaded
    X, y = _parse(data_flag, _probe, whole, PROBE_ROWS, seed, None)
    if r is not None:
        m, params = r.model, r.params
        settings = r.config.get("optimizer") or {}
        optimizer = optimizer or settings.get("name")
        if lr is None and isinstance(settings.get("lr"), (int, float)):
            lr = float(settings["lr"])
        if batch_size is None and isinstance(r.config.get("batch_size"), int):
            batch_size = r.config["batch_size"]
        X = r._features(X)
        if r.labels is not None:
            y = _parse(data_flag, r.labels.encode, y, "diagnose")
        elif r.target_scaler is not None:
            y = r.target_scaler.apply(np.asarray(y, dtype=np.float64).reshape(len(y), -1), np.float64)
        chosen = f"model: the run's ({run})"
        classes = None
    else:
        sizes = _parse("--hidden", _sizes, hidden) if hidden is not None else (64,)
        _parse("--activation", _activation, activation)
        if hidden is not None and model is None:
            model = "mlp"
        if model is not None:
            _parse("--model", _model_name, model)
        if task is None:
            task = workflows.source_task(loaded, name=f"the targets of {name}")
        m, chosen = _parse("--model", workflows.build_model, model, task, hidden=sizes, activation=activation)
        classes = np.unique(y) if task.kind != "regression" else None
        outputs = len(classes) if task.kind == "multiclass" else 1
        m = type(m)(**{**m.hyperparameters(), "dtype": "float64"})
        params = m.init(np.random.default_rng(seed), X.shape[1], outputs)
    if optimizer is not None:
        _parse("--optimizer", optim.get, optimizer)
    d, outcome = _parse_all(
        "diagnose",
        workflows.run_diagnose,
        m,
        params,
        (X, y),
        out=out,
        dataset_name=name,
        source_run=run,
        monitor=None if run is None else _monitor_records(Path(run)),
        optimizer=optimizer,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        classes=classes,
    )
    if json_only:
        typer.echo(json.dumps(outcome.summary))
        return
    say(chosen)
    typer.echo(str(d))
    _wrote(outcome.folder)


@_command("lr-find", short_help="LR range test: one recommended lr, and why.")
def lr_find_cmd(
    data: Annotated[
        str, typer.Argument(help="Built-in dataset or a data file (see `descend train`).", metavar="DATA")
    ] = "digits",
    target: Annotated[
        str | None, typer.Option(help="Target column, or the targets' .npy file.", metavar="COL")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Comma-separated feature columns.", metavar="COLS")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="linear, logistic, softmax or mlp.", metavar="NAME")
    ] = None,
    hidden: Annotated[
        str | None, typer.Option(help="MLP hidden sizes (implies --model mlp).", metavar="SIZES")
    ] = None,
    optimizer: Annotated[str, typer.Option(help="Update rule.", metavar="NAME")] = "sgd",
    start_lr: Annotated[float, typer.Option(help="Sweep start (> 0).", metavar="LR")] = 1e-6,
    end_lr: Annotated[float, typer.Option(help="Sweep end (> --start-lr).", metavar="LR")] = 10.0,
    steps: Annotated[int, typer.Option(min=3, metavar="N")] = 100,
    batch_size: Annotated[int, typer.Option(min=1, metavar="B")] = 64,
    seed: Annotated[int, typer.Option(min=0, metavar="N")] = 0,
    out: Annotated[
        str | None, typer.Option(help="Run folder (default runs/lr-find-<time>).", metavar="DIR")
    ] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print only the JSON summary.")] = False,
    drop: Annotated[
        str | None, typer.Option(help="Comma-separated columns to leave out of the features.", metavar="COLS")
    ] = None,
    standardize: Annotated[str, typer.Option(help=STANDARDIZE_HELP, metavar="auto|on|off")] = "auto",
    on_bad_rows: Annotated[str | None, typer.Option(help=ON_BAD_ROWS_HELP, metavar="skip|error")] = None,
    dask: Annotated[
        str | None, typer.Option(help=DASK_HELP.replace("Train", "Sweep"), metavar="ADDRESS")
    ] = None,
) -> None:
    """LR range test: sweep lr exponentially until the loss blows up; recommend one lr and say why.

    The sweep prepares the data as `descend train` does (classes, encoding, and --standardize
    with the same default), so the lr is for that training."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        name, source, task = _open_data(stack, "lr-find", data, target, features, on_bad_rows, dask, drop)
        _lr_find(
            name,
            source,
            task,
            model=model,
            hidden=hidden,
            optimizer=optimizer,
            start_lr=start_lr,
            end_lr=end_lr,
            steps=steps,
            batch_size=batch_size,
            seed=seed,
            out=out,
            json_only=json_only,
            standardize=_parse("--standardize", _standardize, standardize),
        )


def _lr_find(
    name: str,
    source: Any,
    task: Any,
    *,
    model: str | None,
    hidden: str | None,
    optimizer: str,
    start_lr: float,
    end_lr: float,
    steps: int,
    batch_size: int,
    seed: int,
    out: str | None,
    json_only: bool,
    standardize: bool | str,
) -> None:
    import json

    from . import workflows

    sizes = _parse("--hidden", _sizes, hidden) if hidden is not None else (64,)
    if hidden is not None and model is None:
        model = "mlp"
    if model is not None:
        _parse("--model", _model_name, model)
    _parse("--optimizer", optim.get, optimizer)
    if end_lr <= start_lr:
        raise UsageProblem("--end-lr", f"must be greater than --start-lr ({start_lr:g}), got {end_lr:g}")
    if task is None:
        task = workflows.source_task(source, name=f"the targets of {name}")
    m, chosen = _parse("--model", workflows.build_model, model, task, hidden=sizes)
    is_file = not hasattr(source, "X")
    result, outcome = workflows.run_lr_find(
        m,
        source if is_file else (source.X, source.y),
        optimizer,
        out=out,
        dataset_name=name,
        start_lr=start_lr,
        end_lr=end_lr,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        standardize=standardize,
    )
    summary = result.to_dict()
    if json_only:
        typer.echo(json.dumps(summary))
        return
    say(chosen)
    if result.config.get("standardized") and standardize == "auto":
        say("features: standardized, as train does for ill-scaled features (the lr is for that)")
    say(f"LR range test on {name} with {optimizer} ({len(result.lrs)} steps; {result.reason})")
    say(f"recommended lr: {result.lr:.3g}: {result.advice}")
    say(
        "other readings of the curve: "
        + ", ".join(f"{k} {result.suggestions[k]:.3g}" for k in ("valley", "steep", "min"))
    )
    say("model state: untouched (the sweep runs on a copy)")
    typer.echo(json.dumps(summary))
    _wrote(outcome.folder)


@_command("schedule", short_help="Plot one or several learning-rate schedules.")
def schedule(
    specs: Annotated[
        list[str],
        typer.Argument(
            help="One or more schedules: name:key=value,... e.g. linear_decay:lr0=0.1,lr_final=0.001,tau=500 "
            "or multi_step:lr0=1,milestones=[100,200]",
            metavar="SPECS",
        ),
    ],
    steps: Annotated[int, typer.Option(min=1, help="Steps to plot.", metavar="N")] = 1000,
    log: Annotated[bool, typer.Option("--log", help="Log lr axis.")] = False,
    out: Annotated[
        str | None, typer.Option(help="Run folder (default runs/schedule-<time>).", metavar="DIR")
    ] = None,
) -> None:
    """Plot one or several learning-rate schedules."""
    from . import workflows

    scheds = [_parse("SPECS", parse_schedule, s) for s in specs]
    outcome = workflows.run_schedules(scheds, steps=steps, log=log, out=out)
    print_table(
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


@_command("compare-batching", short_help="Full batch vs stochastic vs mini-batch.")
def compare_batching_cmd(
    data: Annotated[
        str,
        typer.Option(
            help="Built-in dataset (a finite sum; default: synthetic least squares).", metavar="NAME"
        ),
    ] = "linear",
    batch_sizes: Annotated[
        str, typer.Option(help="Comma-separated: full, 1, B...", metavar="LIST")
    ] = "full,1,32",
    epochs: Annotated[int, typer.Option(min=1, metavar="N")] = 10,
    optimizer: Annotated[str, typer.Option(help="Update rule.", metavar="NAME")] = "sgd",
    seed: Annotated[int, typer.Option(min=0, metavar="N")] = 0,
    out: Annotated[
        str | None, typer.Option(help="Run folder (default runs/compare-batching-<time>).", metavar="DIR")
    ] = None,
) -> None:
    """Full-batch vs stochastic vs mini-batch: loss vs epochs and vs wall time."""
    from . import workflows
    from .lab import datasets

    dataset = _parse("--data", datasets.load, data, seed=seed)
    if dataset.task != "regression":
        raise UsageProblem(
            "--data",
            f"compares least-squares runs; {dataset.name} is a {dataset.task} dataset "
            "(use linear or diabetes)",
        )
    bs = [_parse("--batch-sizes", _batch_size, v) for v in batch_sizes.split(",") if v.strip()]
    if not bs:
        raise UsageProblem("--batch-sizes", f"expected comma-separated full, 1 or B, got {batch_sizes!r}")
    _parse("--optimizer", optim.get, optimizer)
    with _console().status("training three ways…"):
        result, outcome = workflows.run_batching(
            data=dataset, batch_sizes=bs, epochs=epochs, optimizer=optimizer, seed=seed, out=out
        )
    print_table(
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


@_command("make-data", short_help="Write a seeded synthetic dataset.")
def make_data_cmd(
    out: Annotated[
        str, typer.Argument(help="File to write (.parquet, .csv, .csv.gz or .npy).", metavar="OUT")
    ],
    rows: Annotated[int, typer.Option(min=1, help="Rows.", metavar="N")] = 10_000,
    features: Annotated[int, typer.Option(min=1, help="Feature columns x0..x{D-1}.", metavar="N")] = 10,
    task: Annotated[
        str, typer.Option(help="classification or regression.", metavar="KIND")
    ] = "classification",
    format: Annotated[
        str | None, typer.Option(help="parquet, csv or npy (default: from OUT's suffix).", metavar="FORMAT")
    ] = None,
    classes: Annotated[int, typer.Option(min=2, help="Classes of a classification target.", metavar="K")] = 2,
    labels: Annotated[
        str | None,
        typer.Option(help="Class names, comma-separated (the target is then strings).", metavar="NAMES"),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, metavar="N")] = 0,
) -> None:
    """Write a seeded synthetic dataset (some columns ill-scaled, so --standardize matters)."""
    from .data.synth import make_data

    if format is None:
        suffixes = "".join(Path(out).suffixes).lower()
        format = next((f for f in ("parquet", "csv", "npy") if f".{f}" in suffixes), None)
        if format is None:
            raise UsageProblem("OUT", f"name a .parquet, .csv or .npy file, or give --format, got {out!r}")
    names = None if labels is None else [v.strip() for v in labels.split(",")]
    if names is not None and (len(set(names)) != len(names) or not all(names)):
        raise UsageProblem("--labels", f"expected distinct comma-separated class names, got {labels!r}")
    files = _parse_all(
        "make-data",
        make_data,
        out,
        rows=rows,
        features=features,
        task=task,
        format=format,
        seed=seed,
        classes=classes,
        labels=names,
    )
    say(f"wrote {', '.join(str(f) for f in files)}: {rows} rows x {features} features + target y ({task})")


@_command("optimizers", short_help="List the update rules and their defaults.")
def list_optimizers() -> None:
    """List the update rules and their default hyperparameters."""
    rows = [
        {
            "label": name,
            "defaults": ", ".join(f"{k}={v}" for k, v in optim.optimizer(name).hyperparameters().items()),
        }
        for name in optim.names()
    ]
    print_table(
        "optimizers (PyTorch formulas and defaults)", rows, [("label", "name"), ("defaults", "defaults")]
    )


@_command("functions", short_help="List the test functions: start, minima, dimension.")
def list_functions() -> None:
    """List the test functions with their start, minima and dimension."""
    rows = []
    for name in fns.names():
        f = fns.get(name)
        minima = "; ".join(str([round(float(v), 4) for v in m]) for m in f.global_minima) or "none"
        rows.append(
            {
                "label": name,
                "dim": f.dim,
                "start": str([float(v) for v in f.start]),
                "minima": minima,
                "description": f.description,
            }
        )
    print_table(
        "test functions",
        rows,
        [
            ("label", "name"),
            ("dim", "dim"),
            ("start", "start"),
            ("minima", "global minima"),
            ("description", "description"),
        ],
    )


# ------------------------------------------------------------------------------------ entry


def _command_name(argv: Sequence[str], group: Any) -> str | None:
    return next((a for a in argv if a in group.commands), None)


def _line(command: str | None, flag: str | None, message: str) -> str:
    parts = ["descend " + command if command else "descend"]
    if flag:
        parts.append(flag)
    return ": ".join([*parts, message])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``descend`` script and ``python -m descend``.

    A bad flag or value prints one line naming the flag and exits with code 2; a diverged run
    prints one line and exits with code 1. ``DESCEND_TRACEBACK=1`` shows tracebacks instead.
    """
    # typer bundles click in recent versions and depends on it in older ones: find the classes
    # through typer's own exports rather than importing click
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    group = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    command = _command_name(args, group)
    err = _console(stderr=True)
    own_flags = {o for p in group.commands[command].params for o in p.opts} if command else None

    def fail(flag: str | None, message: str, code: int = 2) -> int:
        if code == 2:  # a refusal: the library's advice in the words of this command's flags
            message = cli_words(_FUNCTION_PREFIX.sub("", message), command, own_flags)
        err.print(_line(command, flag, message), highlight=False, markup=False, soft_wrap=True)
        return code

    if os.environ.get("DESCEND_TRACEBACK"):
        return _run(group, args)

    def warn(message: Any, category: type, *_: Any, **__: Any) -> None:
        # a library warning (a damaged checkpoint fallen back from, a fresh start on --resume)
        # is one line on stderr, like the errors, not Python's two-line form with a source line
        _warn(command, " ".join(str(message).split()))

    import warnings

    with warnings.catch_warnings():
        warnings.showwarning = warn
        warnings.simplefilter("always", CheckpointWarning)  # shown, whatever -W says: the run goes on
        return _guarded(group, args, command, fail, usage_error)


def _guarded(group: Any, args: list[str], command: str | None, fail: Any, usage_error: type) -> int:
    missing = _flag_for_value(group, command, args)
    if missing is not None:
        return fail(*missing)
    try:
        return _run(group, args)
    except usage_error as exc:
        message = exc.format_message().replace("\n", " ").strip()
        if not message:  # bare `descend`: the help was shown
            return 2
        flag = _click_flag(exc)
        if flag and message.startswith("Invalid value for"):
            message = message.split(": ", 1)[-1]
        given = _given(args, flag)
        if given is not None and repr(given) not in message:
            message = f"{message.rstrip('.')}, got {given!r}"
        hint = f" (see descend {command} --help)" if command else " (see descend --help)"
        return fail(flag, message + hint)
    except UsageProblem as exc:
        return fail(exc.flag, exc.message)
    except InvalidParameter as exc:
        return fail(flag_for(command, exc), _message(exc) if flag_for(command, exc) else str(exc))
    except Diverged as exc:
        return fail(None, str(exc), 1)
    except Interrupted as exc:
        return fail(None, str(exc), 130)
    except DivergenceError as exc:
        return fail(None, f"{_message(exc)}", 1)
    except (ValueError, FileNotFoundError) as exc:
        # descend's other refusals (bad data, mismatched files): one line, no flag to blame
        return fail(None, " ".join(str(exc).split()))
    except KeyboardInterrupt:
        return fail(None, "interrupted", 130)


def _run(group: Any, args: list[str]) -> int:
    abort = typer.Abort
    try:
        result = group.main(args=args, prog_name="descend", standalone_mode=False)
    except abort:
        _console(stderr=True).print("aborted")
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    return result if isinstance(result, int) else 0


def _flag_for_value(group: Any, command: str | None, args: list[str]) -> tuple[str, str] | None:
    """``(flag, message)`` when an option that takes a value is followed by another flag of the
    command (``--standardize --out x``): click would take the flag as the value, or leave the
    next word over as an extra argument; the line names the option that lacks its value."""
    if command is None:
        return None
    params = group.commands[command].params
    names = {o for p in params for o in p.opts}
    takes = {o: p for p in params if p.param_type_name == "option" and not p.is_flag for o in p.opts}
    for given, following in itertools.pairwise(args):
        if given == "--":
            break
        if given in takes and following in names:
            metavar = takes[given].metavar or "a value"
            return given, f"needs a value ({metavar}) before {following}"
    return None


def _given(args: list[str], flag: str | None) -> str | None:
    """The value typed after ``flag`` (``--flag VALUE`` or ``--flag=VALUE``), if any."""
    if not flag or not flag.startswith("--"):
        return None
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1 :]
    return None


def _click_flag(exc: Any) -> str | None:
    """The flag or argument a click usage error is about."""
    name = getattr(exc, "option_name", None)  # NoSuchOption
    if name:
        return name
    hint = getattr(exc, "param_hint", None)
    if isinstance(hint, str):
        return hint.strip("'\"")
    param = getattr(exc, "param", None)
    if param is None:
        return None
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    if getattr(param, "param_type_name", "") == "option" and opts:
        return opts[0]
    return (param.name or "").upper() or None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
