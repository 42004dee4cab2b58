"""What each CLI command does, as plain functions: run the lab, write the run folder, draw.

The command line parses flags and prints; everything a run produces is made here, so the same
runs are available from Python. This layer sits above ``viz`` (it draws) and below ``cli``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import DivergenceError, ParameterError
from .lab.artifacts import (
    BatchingArtifact,
    DiagnosisArtifact,
    LRFindArtifact,
    Outcome,
    RaceArtifact,
    SchedulesArtifact,
    TrainingArtifact,
)
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


# ------------------------------------------------------------------------------------------ race


def race_outputs(
    result: RaceResult,
    folder: RunFolder,
    *,
    prefix: str = RaceArtifact.PREFIX,
    gif: bool = True,
    mp4: bool = False,
    frames: int = 60,
    size: tuple[int, int] = (900, 700),
    slider: bool = True,
) -> Outcome:
    """Write a race's arrays, pictures and rows into ``folder``; return its report sections
    (:meth:`RaceArtifact.write <descend.lab.artifacts.RaceArtifact.write>`)."""
    return RaceArtifact.write(
        result, folder, prefix=prefix, gif=gif, mp4=mp4, frames=frames, size=size, slider=slider
    )


def race_report_section(result: RaceResult) -> Any:
    """The race's report section with its learning-rate slider
    (:meth:`RaceArtifact.section <descend.lab.artifacts.RaceArtifact.section>`)."""
    return RaceArtifact.section(result)


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


def lr_find_outputs(
    result: LRFindResult, folder: RunFolder, *, prefix: str = LRFindArtifact.PREFIX
) -> Outcome:
    return LRFindArtifact.write(result, folder, prefix=prefix)


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
    (every measurement and verdict), ``metrics.csv`` (one row per verdict), ``spectrum.png``,
    ``noise.png`` (``gradients.png`` from a monitored run) and ``report.html``
    (:class:`~descend.lab.artifacts.DiagnosisArtifact`; ``descend report`` re-draws it)."""
    from .lab.diagnose import diagnose

    monitor = kwargs.pop("monitor", None)
    d = diagnose(model, params, data, **kwargs)
    outcome = DiagnosisArtifact.write(d, RunFolder(out, "diagnose"), monitor=monitor)
    outcome.config = {
        "data": dataset_name,
        "model": model.config() if hasattr(model, "config") else str(model),
        **({"run": source_run} if source_run else {}),
        **plain({k: v for k, v in kwargs.items() if k != "classes"}),
    }
    finish(outcome, title=f"descend diagnose: {dataset_name}", command="diagnose")
    return d, outcome


# ------------------------------------------------------------------------------ compare-batching


def batching_outputs(
    result: BatchingResult, folder: RunFolder, *, prefix: str = BatchingArtifact.PREFIX
) -> Outcome:
    return BatchingArtifact.write(result, folder, prefix=prefix)


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
    path = folder.path(RunFolder.REPORT)
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
    if run is not None and run.history.steps.get("step"):
        written = TrainingArtifact.write(run, outcome.folder, params=False)
        outcome.metrics, outcome.sections = written.metrics, written.sections
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

    folder = RunFolder(out, "train")
    ckpt = folder.dir / TrainingArtifact.CHECKPOINTS
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
    written = TrainingArtifact.write(run, folder)
    outcome.metrics, outcome.sections = written.metrics, written.sections
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
    outcome = SchedulesArtifact.write(schedules, RunFolder(out, "schedule"), steps=steps, log=log)
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
    from .lab.artifacts import ARTIFACTS
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
            else:
                sections.append(ARTIFACTS[kind].section(result))
    path = Path(out) if out is not None else Path(directories[0]) / RunFolder.REPORT
    report.write_report(path, title="descend report: " + ", ".join(titles), sections=sections)
    return path
