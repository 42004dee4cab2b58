"""Run-folder artifacts: one class per result kind writes its files and reads them back.

Each class names its files once (class constants). ``write`` puts a result into a
:class:`~descend.lab.runfolder.RunFolder` (arrays, pictures) and returns an :class:`Outcome`
holding the pieces the folder's shared files take (config, summary, metrics rows) and its report
sections; ``read`` rebuilds the result from ``config.yaml``, ``summary.json`` and those files, and
``section`` draws what ``descend report`` shows for it. ``workflows`` writes through these
classes and :mod:`~descend.lab.reload` reads through them, so a name is spelled in one place.

A run folder is data someone else may have written: ``read`` opens arrays with
``allow_pickle=False``, JSON and CSV as plain values, and never imports or runs what it names
(config.yaml itself is read with ``yaml.safe_load`` by :mod:`~descend.lab.reload`). Writing draws
pictures, so this module imports ``viz`` lazily, inside ``write`` and ``section``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from ..errors import ParameterError
from .runfolder import RunFolder, plain

__all__ = [
    "ARTIFACTS",
    "BY_COMMAND",
    "BatchingArtifact",
    "DiagnosisArtifact",
    "LRFindArtifact",
    "Outcome",
    "RaceArtifact",
    "SchedulesArtifact",
    "TrainingArtifact",
    "read_csv",
]


@dataclass
class Outcome:
    """What a workflow produced: its folder, report sections, summary and config pieces."""

    folder: RunFolder
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    sections: list[Any] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: Exception | None = None  # a run that diverged: the DivergenceError
    #: a run stopped by Ctrl-C: ``{"epoch": E (from 1), "step": S, "checkpoint": path}``
    interrupted: dict[str, Any] | None = None


def _num(value: Any) -> float:
    """A number as :func:`~descend.lab.runfolder.plain` wrote it: None or "" is nan, "inf" inf."""
    if value is None or value == "":
        return math.nan
    return float(value)


def _nums(values: Any) -> np.ndarray:
    return np.asarray([_num(v) for v in values], dtype=np.float64)


def read_csv(path: Path) -> dict[str, list[float]]:
    """A CSV a run wrote (metrics, epochs, monitor) as columns of numbers."""
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    cols: dict[str, list[float]] = {k: [] for k in (rows[0] if rows else {})}
    for r in rows:
        for k, v in r.items():
            cols[k].append(_num(v))
    return cols


def _function_config(f: Any) -> dict[str, Any]:
    return {"name": getattr(f, "name", repr(f)), "params": plain(getattr(f, "params", {}))}


# ------------------------------------------------------------------------------------------ race


class RaceArtifact:
    """:class:`~descend.lab.race.RaceResult`: every optimizer's path and losses (``paths.npz``),
    the contour/surface/loss pictures, a GIF (and an MP4 on request). One race writes at the top
    of its folder; several in one folder (the demo) each get the subfolder named by ``prefix``."""

    kind: ClassVar[str] = "race"
    command: ClassVar[str] = "race"
    PREFIX: ClassVar[str] = "race"
    PATHS: ClassVar[str] = "paths.npz"
    LOSS_PICTURE: ClassVar[str] = "race_loss.png"  # a race in more than 2 dimensions: no surface
    GIF: ClassVar[str] = "race.gif"
    MP4: ClassVar[str] = "race.mp4"

    @classmethod
    def subfolder(cls, prefix: str) -> str:
        return "" if prefix == cls.PREFIX else f"{prefix}/"

    @classmethod
    def write(
        cls,
        result: Any,
        folder: RunFolder,
        *,
        prefix: str = PREFIX,
        gif: bool = True,
        mp4: bool = False,
        frames: int = 60,
        size: tuple[int, int] = (900, 700),
        slider: bool = True,
    ) -> Outcome:
        """Write a race's arrays, pictures and rows into ``folder``; return its report sections
        (``slider=False``: the race without its learning-rate slider, which re-runs it over a grid)."""
        from ..viz import race as vrace

        out = Outcome(folder)
        f = result.function
        arrays: dict[str, np.ndarray] = {}
        for e in result.entries:
            arrays[f"{e.optimizer}/path"] = e.path
            arrays[f"{e.optimizer}/loss"] = e.losses
            for k, (x, loss) in enumerate(zip(e.path, e.losses, strict=True)):
                out.metrics.append(
                    {
                        "experiment": prefix,
                        "optimizer": e.optimizer,
                        "step": k,
                        **{f"x{i}": float(v) for i, v in enumerate(x)},
                        "loss": float(loss),
                    }
                )
        sub = cls.subfolder(prefix)
        folder.write_npz(f"{sub}{cls.PATHS}", **arrays)
        (folder.dir / sub).mkdir(parents=True, exist_ok=True)
        if getattr(f, "dim", 2) != 2:  # no surface to draw paths on: the loss curves only
            from ..viz import lab_plots

            drawn = vrace.plot_loss(result)
            lab_plots.save_png(drawn.ax.figure, folder.path(f"{sub}{cls.LOSS_PICTURE}"), size=size)
            out.notes.append(
                f"{f.name} has {f.dim} dimensions: loss curves only (no contour, surface or GIF)"
            )
            gif = mp4 = False
        else:
            pngs = vrace.save_race_pngs(result, folder.dir / sub, size=size)
            for p in pngs.values():
                folder.path(f"{sub}{Path(p).name}")
        if gif:
            t0 = time.perf_counter()
            gif_size = (800, 600) if size[0] >= 800 else (size[0], size[0] * 3 // 4)
            vrace.race_animation(result, folder.path(f"{sub}{cls.GIF}"), frames=frames, size=gif_size)
            out.notes.append(f"GIF ({frames} frames) in {time.perf_counter() - t0:.1f}s")
        if mp4:
            try:
                vrace.race_mp4(result, folder.dir / f"{sub}{cls.MP4}", frames=frames)
                folder.path(f"{sub}{cls.MP4}")
            except RuntimeError as exc:
                out.notes.append(f"no MP4: {exc}")
        out.config = {
            "function": _function_config(f),
            "start": plain(result.start),
            "steps": result.steps,
            "noise": result.noise,
            "seed": result.seed,
            "tol": result.tol,
            "lr_rule": result.lr_rule,
            "gradient": result.grad_method,
            "optimizers": {
                e.optimizer: {"name": e.optimizer, **plain(e.hyperparameters)} for e in result.entries
            },
        }
        out.summary = {
            "function": f.name,
            "lr_rule": result.lr_rule,
            "gradient": result.grad_method,
            "results": result.table(),
        }
        if not slider:
            from ..viz import report

            section = report.race_section(result)
            section.intro += " (No learning-rate slider in a quick demo: `descend demo` has one.)"
            out.sections = [section]
            return out
        t0 = time.perf_counter()
        out.sections = [cls.section(result)]
        out.notes.append(
            f"learning-rate slider (the race re-run over a grid) in {time.perf_counter() - t0:.1f}s"
        )
        return out

    @classmethod
    def read(
        cls, config: dict[str, Any], summary: dict[str, Any], directory: Path, *, prefix: str = PREFIX
    ) -> Any:
        from .. import functions as fns
        from ..train.minimize import History, MinimizeResult
        from .custom import resolve_function
        from .race import RaceEntry, RaceResult

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
        with np.load(Path(directory) / f"{cls.subfolder(prefix)}{cls.PATHS}", allow_pickle=False) as z:
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
                    nfev=row.get("evaluations"),
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

    @staticmethod
    def section(result: Any) -> Any:
        """The race's report section with its learning-rate slider: the race re-run over a grid
        of lrs and momenta (:func:`~descend.lab.sweep.race_sweep`), when written and when
        ``descend report`` re-draws a race folder. A race whose optimizers cannot be rebuilt
        from what was saved is drawn without the slider, saying why."""
        from ..viz import report
        from .sweep import race_sweep

        try:
            grid = race_sweep(result)
        except ValueError as exc:
            section = report.race_section(result)
            section.intro += f" No learning-rate slider: {exc}."
            return section
        return report.race_section(result, grid)


# ------------------------------------------------------------------------------------- lr-find


class LRFindArtifact:
    """:class:`~descend.lab.lr_find.LRFindResult`: lrs, losses and smoothed losses
    (``lr_find.npz``) and the curve (``lr_find.png``); the summary holds the suggestions."""

    kind: ClassVar[str] = "lr_find"
    command: ClassVar[str] = "lr-find"
    PREFIX: ClassVar[str] = "lr_find"
    ARRAYS: ClassVar[str] = "{prefix}.npz"
    PICTURE: ClassVar[str] = "{prefix}.png"

    @classmethod
    def write(cls, result: Any, folder: RunFolder, *, prefix: str = PREFIX) -> Outcome:
        from ..viz import lab_plots

        out = Outcome(folder)
        picture = folder.path(cls.PICTURE.format(prefix=prefix))
        lab_plots.save_png(lab_plots.plot_lr_find(result).figure, picture, size=(900, 600))
        arrays = cls.ARRAYS.format(prefix=prefix)
        folder.write_npz(arrays, lrs=result.lrs, losses=result.losses, smoothed=result.smoothed)
        out.metrics = [
            {"experiment": prefix, "step": i, "lr": float(lr), "loss": float(loss), "smoothed": float(sm)}
            for i, (lr, loss, sm) in enumerate(zip(result.lrs, result.losses, result.smoothed, strict=True))
        ]
        out.summary = result.to_dict()
        out.config = dict(result.config)
        out.sections = [cls.section(result)]
        return out

    @classmethod
    def read(
        cls, config: dict[str, Any], summary: dict[str, Any], directory: Path, *, prefix: str = PREFIX
    ) -> Any:
        from .lr_find import LRFindResult

        with np.load(Path(directory) / cls.ARRAYS.format(prefix=prefix), allow_pickle=False) as z:
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

    @staticmethod
    def section(result: Any) -> Any:
        from ..viz import report

        return report.lr_find_section(result)


# ------------------------------------------------------------------------------ compare-batching


class BatchingArtifact:
    """:class:`~descend.lab.batching.BatchingResult`: each strategy's curves
    (``batching.npz``, keys ``<label>/<curve>``) and the figure (``batching.png``)."""

    kind: ClassVar[str] = "batching"
    command: ClassVar[str] = "compare-batching"
    PREFIX: ClassVar[str] = "batching"
    ARRAYS: ClassVar[str] = "{prefix}.npz"
    PICTURE: ClassVar[str] = "{prefix}.png"
    CURVES: ClassVar[tuple[str, ...]] = ("updates", "epochs", "time", "loss", "batch_loss")

    @classmethod
    def write(cls, result: Any, folder: RunFolder, *, prefix: str = PREFIX) -> Outcome:
        from ..viz import lab_plots

        out = Outcome(folder)
        picture = folder.path(cls.PICTURE.format(prefix=prefix))
        lab_plots.save_png(lab_plots.batching_figure(result), picture, size=(1200, 500))
        for c in result.curves:
            for u, ep, t, loss in zip(c.updates, c.epochs, c.time, c.loss, strict=True):
                out.metrics.append(
                    {
                        "experiment": prefix,
                        "strategy": c.label,
                        "updates": int(u),
                        "epochs": float(ep),
                        "train_seconds": float(t),
                        "loss": float(loss),
                    }
                )
        folder.write_npz(
            cls.ARRAYS.format(prefix=prefix),
            **{f"{c.label}/{k}": getattr(c, k) for c in result.curves for k in cls.CURVES},
        )
        out.summary = {
            "dataset": result.dataset,
            "optimal_loss": result.optimal_loss,
            "strategies": result.summary(),
        }
        out.config = {
            "dataset": result.dataset,
            "epochs": result.epochs,
            **plain(result.config),
            "strategies": {c.label: {"batch_size": c.batch_size, "lr": c.lr} for c in result.curves},
        }
        out.sections = [cls.section(result)]
        return out

    @classmethod
    def read(
        cls, config: dict[str, Any], summary: dict[str, Any], directory: Path, *, prefix: str = PREFIX
    ) -> Any:
        from .batching import BatchingCurve, BatchingResult

        curves = []
        with np.load(Path(directory) / cls.ARRAYS.format(prefix=prefix), allow_pickle=False) as z:
            for label, spec in config["strategies"].items():
                parts = {k: z[f"{label}/{k}"] for k in cls.CURVES}
                per_epoch = next(
                    r["updates_per_epoch"] for r in summary["strategies"] if r["strategy"] == label
                )
                curves.append(
                    BatchingCurve(
                        label,
                        spec["batch_size"],
                        float(spec["lr"]),
                        int(per_epoch),
                        *(parts[k] for k in cls.CURVES),
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

    @staticmethod
    def section(result: Any) -> Any:
        from ..viz import report

        return report.batching_section(result)


# ------------------------------------------------------------------------------------------ train


class TrainingArtifact:
    """A training run (:class:`~descend.train.fit.Run`): per-step rows (``metrics.csv``, written
    by the workflow's ``finish``), per-epoch rows (``epochs.csv``), the monitor's rows
    (``monitor.csv``, when monitored), the curves (``training.png``) and the parameters
    (``params.npz``; none for a diverged run). ``model.npz`` and ``checkpoints/`` belong to
    :meth:`~descend.train.fit.Run.save` and :func:`~descend.fit`."""

    kind: ClassVar[str] = "training"
    command: ClassVar[str] = "train"
    EPOCHS: ClassVar[str] = "epochs.csv"
    MONITOR: ClassVar[str] = "monitor.csv"
    PICTURE: ClassVar[str] = "training.png"
    PARAMS: ClassVar[str] = "params.npz"
    CHECKPOINTS: ClassVar[str] = "checkpoints"

    @classmethod
    def write(cls, run: Any, folder: RunFolder, *, params: bool = True) -> Outcome:
        """The run's rows, curves and (``params=True``) parameters; the workflow adds the summary
        and config, which depend on how it was run (data name, validation, Ctrl-C)."""
        from ..viz import lab_plots

        out = Outcome(folder)
        out.metrics = run.history.step_rows()
        folder.write_metrics(run.history.epoch_rows(), name=cls.EPOCHS)
        if run.history.monitor:
            folder.write_metrics(run.history.monitor_rows(), name=cls.MONITOR)
        lab_plots.save_png(lab_plots.training_figure(run), folder.path(cls.PICTURE), size=(1200, 500))
        if params:
            np.savez(folder.path(cls.PARAMS), **run.params)
        out.sections = [cls.section(run)]
        return out

    @classmethod
    def read(cls, config: dict[str, Any], summary: dict[str, Any], directory: Path) -> Any:
        """A stand-in for :class:`~descend.train.fit.Run` with what the report draws."""
        from .. import models
        from ..optim import optimizer as make_optimizer
        from ..train.fit import TrainHistory

        d = Path(directory)
        steps = read_csv(d / RunFolder.METRICS)
        epochs = read_csv(d / cls.EPOCHS) if (d / cls.EPOCHS).exists() else {}
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
        return SimpleNamespace(
            model=models.from_config(config["model"]),
            optimizer=opt,
            history=TrainHistory(steps=steps, epochs=epochs),
            stop_reason=summary.get("stop_reason", ""),
            config=config,
        )

    @classmethod
    def read_monitor(cls, directory: Path) -> dict[str, list[float]] | None:
        """The folder's ``monitor.csv`` as columns of numbers, or None without one."""
        path = Path(directory) / cls.MONITOR
        return read_csv(path) if path.exists() else None

    @staticmethod
    def section(run: Any) -> Any:
        from ..viz import report

        return report.training_section(run)


# --------------------------------------------------------------------------------------- schedule


class SchedulesArtifact:
    """Learning-rate schedules: lr against step (``schedule.png``); the config holds each
    schedule's name and parameters, rebuilt through the schedule registry (no import)."""

    kind: ClassVar[str] = "schedules"
    command: ClassVar[str] = "schedule"
    PICTURE: ClassVar[str] = "schedule.png"

    @classmethod
    def write(cls, schedules: Sequence[Any], folder: RunFolder, *, steps: int, log: bool = False) -> Outcome:
        from ..viz import report
        from ..viz import schedules as vsched

        out = Outcome(folder)
        labels = [repr(s) for s in schedules]
        vsched.save_schedule_png(schedules, steps, folder.path(cls.PICTURE), labels=labels, log=log)
        values = [s.values(steps) for s in schedules]
        out.metrics = [
            {"step": k, **{lab: float(v[k]) for lab, v in zip(labels, values, strict=True)}}
            for k in range(steps)
        ]
        out.summary = {
            "schedules": [
                {
                    "schedule": lab,
                    "first": float(v[0]),
                    "last": float(v[-1]),
                    "min": float(v.min()),
                    "max": float(v.max()),
                }
                for lab, v in zip(labels, values, strict=True)
            ]
        }
        out.config = {
            "steps": steps,
            "log": log,
            "schedules": [{"name": s.name, **plain(s.config())} for s in schedules],
        }
        out.sections = [
            report.table_section(out.summary["schedules"], "schedules"),
            report.schedules_section(schedules, steps, labels=labels, log=log),
        ]
        return out

    @classmethod
    def read(cls, config: dict[str, Any], summary: dict[str, Any], directory: Path) -> Any:
        """``(schedules, steps, log)``."""
        from .. import schedules

        scheds = [
            schedules.get(c["name"], **{k: v for k, v in c.items() if k != "name"})
            for c in config["schedules"]
        ]
        return scheds, int(config["steps"]), bool(config["log"])

    @staticmethod
    def section(result: Any) -> Any:
        from ..viz import report

        scheds, steps, log = result
        return report.schedules_section(scheds, steps, log=log)


# ------------------------------------------------------------------------------------- diagnose


class DiagnosisArtifact:
    """:class:`~descend.lab.diagnose.Diagnosis`: every measurement and verdict
    (``diagnosis.json``, :meth:`~descend.lab.diagnose.Diagnosis.to_dict`), one row per verdict
    (``metrics.csv``), the Hessian spectrum (``spectrum.png``), the gradient noise (``noise.png``)
    and, from a monitored run, its per-layer gradient norms (``gradients.png``)."""

    kind: ClassVar[str] = "diagnosis"
    command: ClassVar[str] = "diagnose"
    FOUND: ClassVar[str] = "diagnosis.json"
    SPECTRUM: ClassVar[str] = "spectrum.png"
    NOISE: ClassVar[str] = "noise.png"
    GRADIENTS: ClassVar[str] = "gradients.png"

    @classmethod
    def write(cls, d: Any, folder: RunFolder, *, monitor: dict[str, Any] | None = None) -> Outcome:
        """The diagnosis's files, rows, summary and section; the workflow adds the config (the
        model and settings it was asked with)."""
        from ..viz import lab_plots

        out = Outcome(folder)
        lab_plots.save_png(lab_plots.plot_spectrum(d).figure, folder.path(cls.SPECTRUM), size=(900, 600))
        lab_plots.save_png(lab_plots.plot_noise(d).figure, folder.path(cls.NOISE), size=(900, 600))
        if monitor and any(k.startswith("grad_norm/") for k in monitor):
            history = SimpleNamespace(monitor=monitor)
            figure = lab_plots.plot_monitor(history, "grad_norm").figure
            lab_plots.save_png(figure, folder.path(cls.GRADIENTS), size=(900, 600))
        found = d.to_dict()
        folder.write_json(cls.FOUND, found)
        out.metrics = [
            {
                "measurement": v.measurement,
                "value": v.value,
                "threshold": v.threshold,
                "flag": v.flag or "",
                "fix": v.fix,
            }
            for v in d.verdicts()
        ]
        out.summary = {
            "subject": d.subject,
            "n_params": d.n_params,
            "loss": found["loss"],
            "flags": found["flags"],
            "lambda_max": found["hessian_top"][0] if found["hessian_top"] else None,
            "lr": d.lr,
            "lr_max": found["lr_max"],
            "condition_number": found["condition_number"],
            "noise_scale": found["noise_scale"],
            "critical_point": d.critical_point,
        }
        out.sections = [cls.section(d)]
        return out

    @classmethod
    def read(cls, config: dict[str, Any], summary: dict[str, Any], directory: Path) -> Any:
        """The :class:`~descend.lab.diagnose.Diagnosis` ``diagnosis.json`` holds (nan where the
        file has null, as :meth:`~descend.lab.diagnose.Diagnosis.to_dict` wrote it)."""
        from ._curvature import SpectralDensity
        from .diagnose import Diagnosis, Verdict

        path = Path(directory) / cls.FOUND
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise _not_readable(path, str(exc)) from None
        if not isinstance(found, dict):
            raise _not_readable(path, "it holds no mapping of measurements")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(Diagnosis):
            if f.name == "_verdicts":
                values[f.name] = [
                    Verdict(**{**v, "value": _num(v.get("value"))}) for v in found.get("verdicts", [])
                ]
                continue
            if f.name not in found:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise _not_readable(path, f"no {f.name!r}")
                continue
            v = found[f.name]
            kind = str(f.type)
            if f.name == "spectrum":
                v = SpectralDensity(_nums(v["nodes"]), _nums(v["weights"]))
            elif kind == "np.ndarray":
                v = _nums(v)
            elif kind == "float":
                v = _num(v)
            elif kind == "float | None":
                v = None if v is None else float(v)
            elif kind == "dict[str, float]":
                v = {str(k): _num(x) for k, x in v.items()}
            elif kind == "set[str]":
                v = set(v)
            values[f.name] = v
        try:
            return Diagnosis(**values)
        except (TypeError, ValueError, KeyError) as exc:
            raise _not_readable(path, str(exc)) from None

    @staticmethod
    def section(d: Any) -> Any:
        from ..viz import report

        return report.diagnosis_section(d)


def _not_readable(path: Path, why: str) -> ParameterError:
    return ParameterError(
        f"report: {str(path)!r} is not a diagnosis descend wrote ({why})",
        owner="report",
        param="runs",
        value=str(path),
    )


#: every result kind's artifact, by the kind ``load_run`` names
ARTIFACTS: dict[str, Any] = {
    a.kind: a
    for a in (
        RaceArtifact,
        LRFindArtifact,
        BatchingArtifact,
        TrainingArtifact,
        SchedulesArtifact,
        DiagnosisArtifact,
    )
}
#: the artifact of a folder written by one CLI command (the demo holds several: see ``load_run``)
BY_COMMAND: dict[str, Any] = {a.command: a for a in ARTIFACTS.values()}
