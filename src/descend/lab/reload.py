"""Read run folders back into result objects (what ``descend report`` re-draws from)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import functions as fns
from ..errors import ParameterError
from ..train.fit import TrainHistory
from ..train.minimize import History, MinimizeResult
from .batching import BatchingCurve, BatchingResult
from .custom import resolve_function
from .lr_find import LRFindResult
from .race import RaceEntry, RaceResult

__all__ = ["load_run"]


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        # safe_load builds plain data only: a tag such as !!python/object is refused, never run
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise ParameterError(
            f"report: {str(path)!r} is not plain YAML data ({message})",
            owner="report",
            param="runs",
            value=str(path),
        ) from None
    if not isinstance(config, dict):
        raise ParameterError(
            f"report: {str(path)!r} holds no mapping of settings",
            owner="report",
            param="runs",
            value=str(path),
        )
    return config


def _num(value: Any) -> float:
    if value is None or value == "":
        return math.nan
    if value in ("inf", "-inf"):
        return float(value)
    return float(value)


def load_race(config: dict[str, Any], summary: dict[str, Any], directory: Path) -> RaceResult:
    fconf = config["function"]
    start = np.asarray(config["start"], dtype=np.float64)
    if fconf["name"] in fns.names():
        f = fns.get(fconf["name"], **(fconf.get("params") or {}))
    else:
        # data only: an expression is re-read by the arithmetic evaluator, and a module:callable
        # spec is refused rather than imported (anyone may have written this config.yaml)
        f = resolve_function(fconf["name"], start=start, allow_import=False)
    rows = {r["optimizer"]: r for r in summary["results"]}
    entries = []
    with np.load(directory / "paths.npz", allow_pickle=False) as z:
        for name, hp in config["optimizers"].items():
            path, loss = z[f"{name}/path"], z[f"{name}/loss"]
            n = len(loss)
            history = History(
                step=np.arange(n),
                loss=loss,
                lr=np.full(n, _num(hp.get("lr"))),
                grad_norm=np.full(n, math.nan),
                time=np.full(n, math.nan),
                path=path,
            )
            row = rows[name]
            res = MinimizeResult(
                x=path[-1],
                fun=float(loss[-1]),
                nit=n - 1,
                success=not row["diverged"],
                message="loaded from a run folder",
                history=history,
                diverged=bool(row["diverged"]),
            )
            entries.append(
                RaceEntry(
                    name,
                    row["label"],
                    hp,
                    _num(hp.get("lr")),
                    res,
                    row["steps_to_tol"],
                    _num(row["distance_to_nearest_minimum"]),
                )
            )
    return RaceResult(
        function=f,
        start=start,
        entries=entries,
        steps=int(config["steps"]),
        noise=float(config["noise"]),
        seed=int(config["seed"]),
        tol=float(config["tol"]),
        lr_rule=config["lr_rule"],
        grad_method=config["gradient"],
    )


def load_lr_find(config: dict[str, Any], summary: dict[str, Any], directory: Path) -> LRFindResult:
    with np.load(directory / "lr_find.npz", allow_pickle=False) as z:
        lrs, losses, smoothed = z["lrs"], z["losses"], z["smoothed"]
    return LRFindResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        suggestions=dict(summary["suggestions"]),
        stopped_early=bool(summary["stopped_early"]),
        reason=summary["reason"],
        config=config,
        lr=_num(summary.get("recommended")),
        advice=summary.get("advice", ""),
    )


def load_batching(config: dict[str, Any], summary: dict[str, Any], directory: Path) -> BatchingResult:
    curves = []
    with np.load(directory / "batching.npz", allow_pickle=False) as z:
        for label, spec in config["strategies"].items():
            parts = {k: z[f"{label}/{k}"] for k in ("updates", "epochs", "time", "loss", "batch_loss")}
            bs = spec["batch_size"]
            per_epoch = next(r["updates_per_epoch"] for r in summary["strategies"] if r["strategy"] == label)
            curves.append(
                BatchingCurve(
                    label,
                    bs,
                    float(spec["lr"]),
                    int(per_epoch),
                    parts["updates"],
                    parts["epochs"],
                    parts["time"],
                    parts["loss"],
                    parts["batch_loss"],
                )
            )
    return BatchingResult(
        summary["dataset"],
        0,
        _num(summary["optimal_loss"]),
        curves,
        int(config["epochs"]),
        {k: v for k, v in config.items() if k in ("optimizer", "model", "seed")},
    )


def _read_csv(path: Path) -> dict[str, list[float]]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    cols: dict[str, list[float]] = {k: [] for k in (rows[0] if rows else {})}
    for r in rows:
        for k, v in r.items():
            cols[k].append(_num(v))
    return cols


def load_training(config: dict[str, Any], summary: dict[str, Any], directory: Path) -> Any:
    """A stand-in for :class:`~descend.train.fit.Run` with what the report draws."""
    from .. import models
    from ..optim import optimizer as make_optimizer

    steps = _read_csv(directory / "metrics.csv")
    epochs = _read_csv(directory / "epochs.csv") if (directory / "epochs.csv").exists() else {}
    for cols in (steps, epochs):
        for k in ("step", "epoch", "samples_seen"):
            if k in cols:
                cols[k] = [int(v) for v in cols[k]]
    hp = dict(config["optimizer"])
    name = hp.pop("name")
    hp = {k: v for k, v in hp.items() if not (isinstance(v, str) and k == "lr")}
    try:
        opt: Any = make_optimizer(name, **hp)
    except (TypeError, ValueError):
        opt = name
    history = TrainHistory(steps=steps, epochs=epochs)
    return SimpleNamespace(
        model=models.from_config(config["model"]),
        optimizer=opt,
        history=history,
        stop_reason=summary.get("stop_reason", ""),
        config=config,
    )


def load_run(directory: str | Path) -> tuple[str, list[tuple[str, Any]]]:
    """``(command, [(kind, result), ...])`` for a run folder written by the CLI."""
    d = Path(directory)
    if not (d / "config.yaml").exists() or not (d / "summary.json").exists():
        raise ParameterError(
            f"report: {str(d)!r} is not a descend run folder (no config.yaml / summary.json)",
            owner="report",
            param="runs",
            value=str(d),
        )
    config = _read_yaml(d / "config.yaml")
    summary = json.loads((d / "summary.json").read_text())
    command = config.get("command", "")
    if command == "race":
        return command, [("race", load_race(config, summary, d))]
    if command == "lr-find":
        return command, [("lr_find", load_lr_find(config, summary, d))]
    if command == "compare-batching":
        return command, [("batching", load_batching(config, summary, d))]
    if command == "train":
        return command, [("training", load_training(config, summary, d))]
    if command == "schedule":
        from .. import schedules

        scheds = [
            schedules.get(c["name"], **{k: v for k, v in c.items() if k != "name"})
            for c in config["schedules"]
        ]
        return command, [("schedules", (scheds, int(config["steps"]), bool(config["log"])))]
    if command == "demo":
        items: list[tuple[str, Any]] = [("suite", summary["suite"])] if "suite" in summary else []
        for key in config:
            if key.startswith("race_"):
                items.append(("race", load_race(config[key], summary[key], d / key)))
        items.append(("batching", load_batching(config["batching"], summary["batching"], d)))
        items.append(("lr_find", load_lr_find(config["lr_find"], summary["lr_find"], d)))
        return command, items
    raise ValueError(f"report: unknown run kind {command!r} in {str(d / 'config.yaml')!r}")
