"""What each CLI command does, as plain functions: run the lab, write the run folder, draw.

The command line parses flags and prints; everything a run produces is made here, so the same
runs are available from Python. This layer sits above ``viz`` (it draws) and below ``cli``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import DivergenceError, ParameterError
from .lab.batching import BatchingResult, compare_batching
from .lab.lr_find import LRFindResult, lr_find
from .lab.race import CLASSIC_SIX, RaceResult, race
from .lab.runfolder import RunFolder, plain
from .models.task import MAX_INFERRED_CLASSES, Task, infer_task, source_task
from .train.callbacks import Callback

__all__ = [
    "MAX_INFERRED_CLASSES",
    "Outcome",
    "StopRequest",
    "Task",
    "batching_outputs",
    "build_model",
    "infer_task",
    "lr_find_outputs",
    "race_outputs",
    "race_report_section",
    "run_batching",
    "run_lr_find",
    "run_race",
    "run_train",
    "source_task",
    "stop_on_interrupt",
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


def _function_config(f: Any) -> dict[str, Any]:
    return {"name": getattr(f, "name", repr(f)), "params": plain(getattr(f, "params", {}))}


# ------------------------------------------------------------------------------------------ race


def race_outputs(
    result: RaceResult,
    folder: RunFolder,
    *,
    prefix: str = "race",
    gif: bool = True,
    mp4: bool = False,
    frames: int = 60,
    size: tuple[int, int] = (900, 700),
    slider: bool = True,
) -> Outcome:
    """Write a race's arrays, pictures and rows into ``folder``; return its report sections
    (``slider=False``: the race without its learning-rate slider, which re-runs it over a grid)."""
    from .viz import race as vrace

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
    # one race writes its files at the top of the folder; several (the demo) get a subfolder each
    sub = "" if prefix == "race" else f"{prefix}/"
    folder.write_npz(f"{sub}paths.npz", **arrays)
    (folder.dir / sub).mkdir(parents=True, exist_ok=True)
    if getattr(f, "dim", 2) != 2:  # no surface to draw paths on: the loss curves only
        from .viz import lab_plots

        drawn = vrace.plot_loss(result)
        lab_plots.save_png(drawn.ax.figure, folder.path(f"{sub}race_loss.png"), size=size)
        out.notes.append(f"{f.name} has {f.dim} dimensions: loss curves only (no contour, surface or GIF)")
        gif = mp4 = False
    else:
        pngs = vrace.save_race_pngs(result, folder.dir / sub, size=size)
        for p in pngs.values():
            folder.path(f"{sub}{Path(p).name}")
    if gif:
        t0 = time.perf_counter()
        gif_size = (800, 600) if size[0] >= 800 else (size[0], size[0] * 3 // 4)
        vrace.race_animation(result, folder.path(f"{sub}race.gif"), frames=frames, size=gif_size)
        out.notes.append(f"GIF ({frames} frames) in {time.perf_counter() - t0:.1f}s")
    if mp4:
        try:
            vrace.race_mp4(result, folder.dir / f"{sub}race.mp4", frames=frames)
            folder.path(f"{sub}race.mp4")
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
        from .viz import report

        section = report.race_section(result)
        section.intro += " (No learning-rate slider in a quick demo: `descend demo` has one.)"
        out.sections = [section]
        return out
    t0 = time.perf_counter()
    out.sections = [race_report_section(result)]
    out.notes.append(f"learning-rate slider (the race re-run over a grid) in {time.perf_counter() - t0:.1f}s")
    return out


def race_report_section(result: RaceResult) -> Any:
    """The race's report section with its learning-rate slider: the race re-run over a grid of
    lrs and momenta (:func:`~descend.lab.sweep.race_sweep`), here and when ``descend report``
    re-draws a race folder. A race whose optimizers cannot be rebuilt from what was saved is
    drawn without the slider, saying why."""
    from .lab.sweep import race_sweep
    from .viz import report

    try:
        grid = race_sweep(result)
    except ValueError as exc:
        section = report.race_section(result)
        section.intro += f" No learning-rate slider: {exc}."
        return section
    return report.race_section(result, grid)


def run_race(
    function: Any,
    optimizers: Sequence[str] = CLASSIC_SIX,
    *,
    lrs: dict[str, float] | float | None = None,
    tune: bool = False,
    steps: int = 500,
    start: Sequence[float] | None = None,
    noise: float = 0.0,
    seed: int = 0,
    out: str | Path | None = None,
    gif: bool = True,
    mp4: bool = False,
    frames: int = 60,
    options: dict[str, dict[str, Any]] | None = None,
) -> tuple[RaceResult, Outcome]:
    """``descend race``: race, then write config.yaml, metrics.csv, summary.json, paths, pictures
    and report.html into one folder."""
    result = race(
        function,
        optimizers,
        lrs=lrs,
        tune=tune,
        steps=steps,
        start=start,
        noise=noise,
        seed=seed,
        options=options,
    )
    folder = RunFolder(out, "race")
    outcome = race_outputs(result, folder, gif=gif, mp4=mp4, frames=frames)
    finish(outcome, title=f"descend race: {result.function.name}", command="race")
    return result, outcome


# ------------------------------------------------------------------------------------- lr-find


def lr_find_outputs(result: LRFindResult, folder: RunFolder, *, prefix: str = "lr_find") -> Outcome:
    from .viz import lab_plots, report

    out = Outcome(folder)
    lab_plots.save_png(lab_plots.plot_lr_find(result).figure, folder.path(f"{prefix}.png"), size=(900, 600))
    folder.write_npz(f"{prefix}.npz", lrs=result.lrs, losses=result.losses, smoothed=result.smoothed)
    out.metrics = [
        {"experiment": prefix, "step": i, "lr": float(lr), "loss": float(loss), "smoothed": float(sm)}
        for i, (lr, loss, sm) in enumerate(zip(result.lrs, result.losses, result.smoothed, strict=True))
    ]
    out.summary = result.to_dict()
    out.config = dict(result.config)
    out.sections = [report.lr_find_section(result)]
    return out


def run_lr_find(
    model: Any,
    data: Any,
    optimizer: str = "sgd",
    *,
    out: str | Path | None = None,
    dataset_name: str = "data",
    **kwargs: Any,
) -> tuple[LRFindResult, Outcome]:
    result = lr_find(model, data, optimizer, **kwargs)
    folder = RunFolder(out, "lr-find")
    outcome = lr_find_outputs(result, folder)
    outcome.config = {"data": dataset_name, "model": result.model.config(), **outcome.config}
    finish(outcome, title=f"descend lr-find: {dataset_name}", command="lr-find")
    return result, outcome


# ------------------------------------------------------------------------------------- diagnose


def run_diagnose(
    model: Any,
    params: Any,
    data: Any,
    *,
    out: str | Path | None = None,
    dataset_name: str = "data",
    source_run: str | None = None,
    **kwargs: Any,
) -> tuple[Any, Outcome]:
    """``descend diagnose``: :func:`~descend.diagnose` at ``params``, then ``diagnosis.json``
    (every measurement and verdict), ``metrics.csv`` (one row per verdict), ``spectrum.png``
    and ``report.html``."""
    from types import SimpleNamespace

    from .lab.diagnose import diagnose
    from .viz import lab_plots, report

    monitor = kwargs.pop("monitor", None)
    d = diagnose(model, params, data, **kwargs)
    folder = RunFolder(out, "diagnose")
    outcome = Outcome(folder)
    lab_plots.save_png(lab_plots.plot_spectrum(d).figure, folder.path("spectrum.png"), size=(900, 600))
    lab_plots.save_png(lab_plots.plot_noise(d).figure, folder.path("noise.png"), size=(900, 600))
    if monitor and any(k.startswith("grad_norm/") for k in monitor):
        history = SimpleNamespace(monitor=monitor)
        lab_plots.save_png(
            lab_plots.plot_monitor(history, "grad_norm").figure, folder.path("gradients.png"), size=(900, 600)
        )
    found = d.to_dict()
    folder.write_json("diagnosis.json", found)
    outcome.metrics = [
        {
            "measurement": v.measurement,
            "value": v.value,
            "threshold": v.threshold,
            "flag": v.flag or "",
            "fix": v.fix,
        }
        for v in d.verdicts()
    ]
    outcome.summary = {
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
    outcome.config = {
        "data": dataset_name,
        "model": model.config() if hasattr(model, "config") else str(model),
        **({"run": source_run} if source_run else {}),
        **plain({k: v for k, v in kwargs.items() if k != "classes"}),
    }
    outcome.sections = [report.diagnosis_section(d)]
    finish(outcome, title=f"descend diagnose: {dataset_name}", command="diagnose")
    return d, outcome


# ------------------------------------------------------------------------------ compare-batching


def batching_outputs(result: BatchingResult, folder: RunFolder, *, prefix: str = "batching") -> Outcome:
    from .viz import lab_plots, report

    out = Outcome(folder)
    lab_plots.save_png(lab_plots.batching_figure(result), folder.path(f"{prefix}.png"), size=(1200, 500))
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
        f"{prefix}.npz",
        **{
            f"{c.label}/{k}": getattr(c, k)
            for c in result.curves
            for k in ("updates", "epochs", "time", "loss", "batch_loss")
        },
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
    out.sections = [report.batching_section(result)]
    return out


def run_batching(*, out: str | Path | None = None, **kwargs: Any) -> tuple[BatchingResult, Outcome]:
    result = compare_batching(**kwargs)
    folder = RunFolder(out, "compare-batching")
    outcome = batching_outputs(result, folder)
    finish(outcome, title="descend compare-batching", command="compare-batching")
    return result, outcome


# ---------------------------------------------------------------------------------------- common


def finish(outcome: Outcome, *, title: str, command: str) -> Path:
    """Write config.yaml, metrics.csv, summary.json and report.html for a finished run."""
    from .viz import report

    folder = outcome.folder
    folder.write_config({"command": command, "descend": __version__, **outcome.config})
    folder.write_metrics(outcome.metrics)
    path = folder.path("report.html")
    report.write_report(path, title=title, sections=outcome.sections)
    outcome.summary = {
        "command": command,
        "descend": __version__,
        **outcome.summary,
        "files": sorted(str(p.relative_to(folder.dir)) for p in folder.files),
    }
    folder.write_summary(outcome.summary)
    return path


# ------------------------------------------------------------------------------------------ train

_TASK_MODEL = {
    "regression": "linear_regression",
    "binary": "logistic_regression",
    "multiclass": "softmax_regression",
}
_MLP_OUTPUT = {"regression": "regression", "binary": "binary", "multiclass": "softmax"}


def build_model(
    kind: str | None, task: Task, *, hidden: Sequence[int] = (64,), activation: str = "relu"
) -> tuple[Any, str]:
    """The model ``kind`` names (``None``: the one ``task`` calls for) and a sentence saying what
    was chosen and why. A model that cannot fit the task is refused (``param="model"``)."""
    from . import models
    from ._registry import normalize

    if kind is not None and normalize(kind) == "mlp":
        output = _MLP_OUTPUT[task.kind]
        model = models.get("mlp", hidden=tuple(hidden), activation=activation, output=output)
        what = f"MLP {tuple(model.hidden)} ({model.activation}) with {output} output"
    else:
        model = models.get(_TASK_MODEL[task.kind] if kind is None else kind)
        what = model.name.replace("_", " ")
        if model.name == "logistic_regression" and task.kind != "binary":
            other = "softmax or mlp" if task.kind == "multiclass" else "linear or mlp"
            raise ParameterError(
                f"logistic regression needs 2 classes but {task.reason}; use {other}",
                owner="train",
                param="model",
                value=kind,
            )
        if model.name == "linear_regression" and not task.numeric:
            raise ParameterError(
                f"linear regression needs numeric targets but {task.reason}; use logistic, softmax or mlp",
                owner="train",
                param="model",
                value=kind,
            )
        if model.name == "softmax_regression" and task.kind == "regression":
            raise ParameterError(
                f"softmax regression needs class labels but {task.reason}; use linear or mlp",
                owner="train",
                param="model",
                value=kind,
            )
    how = "chosen because" if kind is None else "as asked;"
    return model, f"model: {what} ({how} {task.reason})"


def _partial_outputs(outcome: Outcome, run: Any, exc: Exception) -> None:
    """What a diverged run leaves: its curve up to the divergence, and why it stopped."""
    from .viz import lab_plots, report

    folder = outcome.folder
    if run is not None and run.history.steps.get("step"):
        outcome.metrics = run.history.step_rows()
        folder.write_metrics(run.history.epoch_rows(), name="epochs.csv")
        if run.history.monitor:
            folder.write_metrics(run.history.monitor_rows(), name="monitor.csv")
        lab_plots.save_png(lab_plots.training_figure(run), folder.path("training.png"), size=(1200, 500))
        outcome.sections = [report.training_section(run)]
    outcome.summary["diverged"] = {
        "step": getattr(exc, "step", None),
        "epoch": getattr(exc, "epoch", None),
        "lr": divergence_lr(exc),
        "message": str(exc),
    }


def divergence_lr(exc: Any) -> float | None:
    """The lr at which a run diverged: from the error, else from its partial run."""
    lr = getattr(exc, "lr", None)
    if lr is None:
        run = getattr(exc, "run", None)
        lrs = run.history.steps.get("lr") if run is not None else None
        if lrs:
            lr = lrs[-1]
        elif run is not None:
            lr = run.optimizer.lr_at(max(int(getattr(exc, "step", 1)) - 1, 0))
    return None if lr is None else float(lr)


class StopRequest(Callback):
    """Stops :func:`~descend.fit` at the next step boundary once :attr:`requested` is set (by
    :func:`stop_on_interrupt`): fit then ends as after any callback's stop, writing its final
    checkpoint. Appended after the user's callbacks, so a resume restores theirs by position."""

    def __init__(self) -> None:
        self.started = self.requested = False
        self.where: dict[str, int] | None = None

    def on_train_begin(self, run: Any) -> None:
        self.started = True

    def on_step_end(self, run: Any, info: dict[str, Any]) -> bool | None:
        if not self.requested:
            return None
        self.where = {"epoch": int(info["epoch"]) + 1, "step": int(info["step"])}
        return True


@contextmanager
def stop_on_interrupt(stop: StopRequest) -> Iterator[StopRequest]:
    """While training, the first Ctrl-C (SIGINT) asks ``stop`` to end the run at the next step
    boundary; a second one, or one before training has begun, interrupts at once
    (``KeyboardInterrupt``). Only the main thread can take signals: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C is an ordinary one
        if not stop.started:
            raise KeyboardInterrupt
        stop.requested = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run_train(
    model: Any,
    train: tuple[np.ndarray, np.ndarray] | Any,
    *,
    validation: Any = None,
    dataset_name: str = "data",
    out: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    interruptible: bool = False,
    **fit_kwargs: Any,
) -> tuple[Any, Outcome]:
    """``descend train``: fit, then write metrics (per step), epochs, summary, plots, report and
    ``model.npz`` (the trained model, as :meth:`~descend.train.fit.Run.save` writes it).

    The run folder always holds a checkpoint of the last step (``checkpoints/``), written every
    ``checkpoint_every`` steps too when given, so that any run can be continued with
    ``resume=True``. ``interruptible=True``: Ctrl-C stops training at the next step boundary
    (:func:`stop_on_interrupt`) and the folder is written as for a finished run, with
    ``outcome.interrupted`` saying where it stopped.

    A run that diverges still writes its folder (the curve up to the divergence, the config, and
    ``summary.json`` saying where it diverged): the :class:`~descend.DivergenceError` is in
    ``outcome.error`` and the returned run is the partial one (``None`` when ``fit`` gave none).
    """
    from .train import fit
    from .viz import lab_plots, report

    folder = RunFolder(out, "train")
    ckpt = folder.dir / "checkpoints"
    # the folders this run creates: a run refused before its first step leaves none of them
    new = [d for d in (ckpt, *ckpt.parents) if not d.exists()]
    outcome = Outcome(folder)
    stop = StopRequest()
    if interruptible:
        fit_kwargs["callbacks"] = [*(fit_kwargs.get("callbacks") or ()), stop]
    try:
        with stop_on_interrupt(stop) if interruptible else nullcontext(stop):
            run = fit(
                model,
                train,
                validation=validation,
                checkpoint_dir=ckpt,
                checkpoint_every=checkpoint_every,
                resume=resume,
                **fit_kwargs,
            )
    except DivergenceError as exc:
        run = getattr(exc, "run", None)
        outcome.error = exc
        _partial_outputs(outcome, run, exc)
        if run is not None:
            _save_model(folder, run)
        outcome.summary = {
            "data": dataset_name,
            "stop_reason": f"diverged at step {exc.step}",
            **outcome.summary,
        }
        outcome.config = {
            "data": dataset_name,
            **(run.config if run is not None else {"model": model.config()}),
            "checkpoint_every": checkpoint_every,
        }
        finish(outcome, title=f"descend train: {dataset_name} (diverged)", command="train")
        return run, outcome
    except BaseException:
        for d in new:  # innermost first; a folder holding anything stays
            with suppress(OSError):
                d.rmdir()
        raise
    outcome.metrics = run.history.step_rows()
    folder.write_metrics(run.history.epoch_rows(), name="epochs.csv")
    if run.history.monitor:
        folder.write_metrics(run.history.monitor_rows(), name="monitor.csv")
    lab_plots.save_png(lab_plots.training_figure(run), folder.path("training.png"), size=(1200, 500))
    np.savez(folder.path("params.npz"), **run.params)
    _save_model(folder, run)
    final = {k: v[-1] for k, v in run.history.epochs.items()} if run.history.epochs else {}
    stop_reason = run.stop_reason
    if stop.where is not None:
        stop_reason = f"interrupted at epoch {stop.where['epoch']}, step {stop.where['step']} (Ctrl-C)"
        outcome.interrupted = {**stop.where, "checkpoint": str(run.checkpoint or ckpt)}
    outcome.summary = {
        "data": dataset_name,
        "stop_reason": stop_reason,
        "steps": run.steps_completed,
        "epochs": run.epochs_completed,
        "final_epoch": final,
    }
    restored = restored_epoch(fit_kwargs.get("callbacks", ()))
    if restored is not None:
        outcome.summary["restored_epoch"] = restored
    if isinstance(validation, tuple):
        outcome.summary["validation"] = run.evaluate(*validation)
    elif run.quality is not None:
        outcome.summary["validation"] = run.quality.to_dict()
    if run.quality is not None:
        outcome.summary["quality"] = str(run.quality)
    if run.feature_names is not None:
        outcome.summary["features"] = list(run.feature_names)
    outcome.summary["notes"] = list(run.notes)
    outcome.config = {
        "data": dataset_name,
        **run.config,
        "epochs": run.epochs_completed,
        "checkpoint_every": checkpoint_every,
    }
    outcome.sections = [report.training_section(run)]
    finish(outcome, title=f"descend train: {dataset_name}", command="train")
    return run, outcome


def _save_model(folder: RunFolder, run: Any) -> None:
    """``model.npz`` in the run folder (:meth:`~descend.train.fit.Run.save`): what ``descend
    predict`` and :func:`descend.load_run` read. A diverged run saves its last good state (its
    ``stop_reason`` says it diverged); one whose parameters are not finite saves nothing."""
    from .train.saved import MODEL_NAME

    try:
        run.save(folder.dir)
    except ValueError:  # NaN or inf: no model worth keeping
        return
    folder.path(MODEL_NAME)


def restored_epoch(callbacks: Any) -> int | None:
    """The epoch whose parameters an :class:`EarlyStopping` callback put back, if it did."""
    for cb in callbacks or ():
        epoch = getattr(cb, "restored_epoch", None)
        if epoch is not None:
            return int(epoch)
    return None


def checkpoint_step(out: str | Path) -> int | None:
    """The step the checkpoint in run folder ``out`` was taken at (``None``: there is none); the
    previous checkpoint's when the newest is damaged, as ``fit`` will resume from it."""
    from .train.checkpoint import load_latest

    folder = Path(out) / "checkpoints"
    latest = load_latest(folder, owner="", warn=False) if folder.is_dir() else None
    return None if latest is None else int(latest[1][2]["step"])


# --------------------------------------------------------------------------------------- schedule


def run_schedules(
    schedules: Sequence[Any], *, steps: int, log: bool = False, out: str | Path | None = None
) -> Outcome:
    """``descend schedule``: lr against step for one or several schedules."""
    from .viz import report
    from .viz import schedules as vsched

    folder = RunFolder(out, "schedule")
    outcome = Outcome(folder)
    labels = [repr(s) for s in schedules]
    vsched.save_schedule_png(schedules, steps, folder.path("schedule.png"), labels=labels, log=log)
    values = [s.values(steps) for s in schedules]
    outcome.metrics = [
        {"step": k, **{lab: float(v[k]) for lab, v in zip(labels, values, strict=True)}} for k in range(steps)
    ]
    outcome.summary = {
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
    outcome.config = {
        "steps": steps,
        "log": log,
        "schedules": [{"name": s.name, **plain(s.config())} for s in schedules],
    }
    outcome.sections = [
        report.table_section(outcome.summary["schedules"], "schedules"),
        report.schedules_section(schedules, steps, labels=labels, log=log),
    ]
    finish(outcome, title="descend schedule", command="schedule")
    return outcome


# ------------------------------------------------------------------------------------------ demo

#: the demo's races: function -> steps (long enough for the slow ones to get somewhere)
DEMO_RACES: dict[str, int] = {"rosenbrock": 3000, "beale": 1000, "saddle": 500}


def suite_section(suite: dict[str, Any]) -> Any:
    """The demo's every-optimizer table (as ``summary.json`` holds it) as a report section."""
    from .viz import report

    return report.table_section(
        [{k: v for k, v in r.items() if k != "seconds"} for r in suite["rows"]],
        "Every optimizer on the test functions",
        intro=(
            f"Up to {suite['max_steps']} steps, stop when |grad| <= {suite['tol']:g}; lr {suite['lr_rule']}."
        ),
    )


def run_demo(
    *, out: str | Path | None = None, quick: bool = False, progress: Any = None, suite: Any = None
) -> Outcome:
    """``descend demo``: the six classic optimizers raced on Rosenbrock, Beale and the saddle,
    batch vs stochastic vs mini-batch, and an LR range test on digits, in one folder with one
    report; ``suite`` (a :class:`~descend.lab.SuiteResult`, the table the terminal showed) opens
    the report."""
    from . import models
    from .lab import datasets

    say = progress or (lambda msg: None)
    folder = RunFolder(out, "demo")
    outcome = Outcome(folder)
    frames = 8 if quick else 60
    if suite is not None:
        outcome.summary["suite"] = {
            "max_steps": suite.max_steps,
            "tol": suite.tol,
            "lr_rule": suite.lr_rule,
            "rows": suite.to_records(),
        }
        outcome.sections.append(suite_section(outcome.summary["suite"]))
    for name, steps in DEMO_RACES.items():
        say(f"racing six optimizers on {name}")
        result = race(name, CLASSIC_SIX, steps=steps // 5 if quick else steps)
        part = race_outputs(
            result,
            folder,
            prefix=f"race_{name}",
            frames=frames,
            size=(480, 360) if quick else (900, 700),
            slider=not quick,  # a quick look in seconds: the slider's grid re-runs each race ~20 times
        )
        outcome.sections += part.sections  # each titled "Race on <name>"
        outcome.metrics += part.metrics
        outcome.summary[f"race_{name}"] = part.summary
        outcome.config[f"race_{name}"] = part.config
    say("batch vs stochastic vs mini-batch")
    bres = compare_batching("linear", epochs=3 if quick else 10)
    part = batching_outputs(bres, folder)
    outcome.sections += part.sections
    outcome.metrics += part.metrics
    outcome.summary["batching"] = part.summary
    outcome.config["batching"] = part.config
    say("LR range test on digits")
    digits = datasets.load("digits")
    mlp = models.MLP(hidden=(64,), output="softmax")
    lres = lr_find(mlp, (digits.X, digits.y), "sgd", steps=100)
    part = lr_find_outputs(lres, folder)
    part.sections[0].title = "LR range test: MLP on digits, SGD"
    outcome.sections += part.sections
    outcome.metrics += part.metrics
    outcome.summary["lr_find"] = part.summary
    outcome.config["lr_find"] = {"data": "digits", "model": mlp.config(), **part.config}
    finish(outcome, title="descend demo", command="demo")
    return outcome


# ----------------------------------------------------------------------------------------- report


def rebuild_report(directories: Sequence[str | Path], out: str | Path | None = None) -> Path:
    """``descend report``: re-draw report.html from saved run folders (one or several, merged)."""
    from .lab.reload import load_run
    from .viz import report

    sections: list[Any] = []
    titles = []
    for d in directories:
        command, items = load_run(d)
        titles.append(f"{command} ({Path(d).name})")
        if len(directories) > 1:  # a heading per folder; the sections keep their own titles
            sections.append(report.text_section("", title=f"{command}: {Path(d)}"))
        for kind, result in items:
            if kind == "suite":
                sections.append(suite_section(result))
            elif kind == "race":
                sections.append(race_report_section(result))
            elif kind == "lr_find":
                sections.append(report.lr_find_section(result))
            elif kind == "batching":
                sections.append(report.batching_section(result))
            elif kind == "training":
                sections.append(report.training_section(result))
            elif kind == "schedules":
                scheds, steps, log = result
                sections.append(report.schedules_section(scheds, steps, log=log))
    path = Path(out) if out is not None else Path(directories[0]) / "report.html"
    report.write_report(path, title="descend report: " + ", ".join(titles), sections=sections)
    return path
