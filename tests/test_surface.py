"""The user surface (issue 10): names, specs, tables, progress, early stopping, resume, the task
chosen from the targets, divergence, internal names, lr-find's recommendation and the report."""

from __future__ import annotations

import io
import json
import math
import re

import numpy as np
import pytest
from rich.console import Console

import descend as ds
from descend import workflows
from descend._registry import Registry, closest, normalize
from descend._spec import parse_kv, parse_spec, parse_value
from descend.cli import main, print_table
from descend.errors import DivergenceError, ParameterError, UnknownNameError
from descend.lab import datasets
from descend.lab.custom import resolve_function
from descend.train.callbacks import EarlyStopping


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("lookup", "typo", "kind", "suggestion"),
    [
        (ds.optimizer, "adamm", "optimizer", "adam"),
        (lambda n: ds.schedules.get(n, lr0=1.0), "cosin", "schedule", "cosine"),
        (ds.functions.get, "rosenbrok", "function", "rosenbrock"),
        (ds.models.get, "logistc", "model", "logistic"),
        (datasets.load, "digitz", "dataset", "digits"),
    ],
)
def test_every_registry_refuses_an_unknown_name_the_same_way(lookup, typo, kind, suggestion):
    with pytest.raises(UnknownNameError) as info:
        lookup(typo)
    exc = info.value
    assert exc.kind == kind and exc.suggestion == suggestion and exc.value == typo
    assert f"unknown {kind} {typo!r}; did you mean {suggestion!r}? known: " in str(exc)
    assert all(name in str(exc) for name in exc.known)


def test_one_name_normalisation_everywhere():
    assert normalize(" Six-Hump Camel ") == "six_hump_camel"
    assert ds.functions.get("Six-Hump-Camel").name == "six_hump_camel"
    assert ds.schedules.get("One-Cycle", max_lr=1.0, total_steps=10).name == "one_cycle"
    assert isinstance(ds.optimizer("AdamW"), ds.AdamW)
    assert ds.models.get("Logistic").name == "logistic_regression"
    assert datasets.load("Breast-Cancer").name == "breast_cancer"
    assert closest("zzzz", ["adam", "sgd"]) is None
    r = Registry("colour", {"red": 1}, owner="paint")
    assert "RED" in r and "blue" not in r and r.names() == ["red"]


def test_fit_and_models_accept_the_cli_model_names():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    assert ds.models.get("softmax").name == "softmax_regression"
    run = ds.fit("logistic", (X, y), epochs=2, progress=False)
    assert run.model.name == "logistic_regression"


def test_an_unknown_word_is_never_read_as_an_expression():
    with pytest.raises(UnknownNameError, match="did you mean 'rosenbrock'"):
        resolve_function("rosenbrok")
    with pytest.raises(UnknownNameError, match="did you mean 'rosenbrock'"):
        resolve_function("rosenbrok:a=2")
    assert resolve_function("x**2 + y", start=(1.0, 1.0)).grad_method == "central differences"
    assert resolve_function("quadratic:kappa=50").params["kappa"] == 50


# ------------------------------------------------------------------------------------ specs


def test_one_spec_parser_handles_lists_numbers_and_quotes():
    assert parse_spec("multi_step:lr0=1,milestones=[100,200]", what="s") == (
        "multi_step",
        {"lr0": 1, "milestones": (100, 200)},
    )
    assert parse_kv("betas=(0.9, 0.99),eps=1e-8,amsgrad=true,name='a,b'", what="--set") == {
        "betas": (0.9, 0.99),
        "eps": 1e-8,
        "amsgrad": True,
        "name": "a,b",
    }
    assert parse_value("[[1, 2], [3]]") == ((1, 2), (3,))
    assert parse_value("inf") == math.inf and parse_value("none") is None
    for bad in ("a=[1,2", "a=1)", "a", "=3", "a=1,a=2"):
        with pytest.raises(ParameterError):
            parse_kv(bad, what="--set")


def test_schedule_command_takes_lists_and_set_takes_tuples(capsys, tmp_path):
    code, out, err = run_cli(
        capsys,
        "schedule",
        "multi_step:lr0=1,milestones=[100,200]",
        "--steps",
        "300",
        "--out",
        str(tmp_path / "s"),
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    (row,) = summary["schedules"]
    assert row["first"] == 1.0 and row["last"] == pytest.approx(0.01)
    code, out, err = run_cli(
        capsys,
        "race",
        "booth",
        "--optimizers",
        "adam",
        "--set",
        "adam.betas=[0.8,0.99]",
        "--steps",
        "20",
        "--no-gif",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    assert "betas=(0.8, 0.99)" in out


# ------------------------------------------------------------------------------------ output


def test_piped_tables_never_cut_a_number(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli(
        capsys,
        "demo",
        "--quick",
        "--functions",
        "quadratic",
        "--optimizers",
        "sgd,adadelta,momentum",
        "--steps",
        "50",
        "--out",
        str(tmp_path / "d"),
    )
    assert code == 0, err
    assert "…" not in out and "..." not in out
    assert "adadelta" in out and "converged" in out and "optimizer (hyperparameters)" in out
    assert str(tmp_path / "d" / "report.html") in out  # a path is never wrapped either
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    losses = {r["optimizer"]: r["loss"] for r in summary["suite"]["rows"]}
    assert f"{losses['adadelta']:.4g}" in out


def test_a_narrow_terminal_folds_cells_rather_than_cutting_them():
    buf = io.StringIO()
    console = Console(file=buf, width=40, force_terminal=True, color_system=None)
    rows = [{"label": "adadelta (lr=1, rho=0.9)", "a": 0.00123456789, "b": 12345.678, "c": math.nan}]
    print_table(
        "t", rows, [("label", "optimizer"), ("a", "final loss"), ("b", "x"), ("c", "y")], console=console
    )
    text = buf.getvalue()
    assert "…" not in text
    body = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    assert len(body) > 1  # the one row was folded onto several lines
    cells = ["".join(part[i].strip() for part in body) for i in range(4)]
    assert cells == ["adadelta(lr=1,rho=0.9)", "0.001235", "1.235e+04", "-"], cells


def test_progress_on_80_columns_leads_with_epoch_step_loss_lr_rate_eta(monkeypatch):
    from descend.train.progress import make_progress

    monkeypatch.setenv("COLUMNS", "80")
    buf = io.StringIO()
    p = make_progress("rich", stream=buf)
    p.start(460, "fit MLP with SGD(lr=2.78, weight_decay=0.0, maximize=False, momentum=0.0), batch_size=64")
    p.update(230, 9, 0.1234, 0.0123, 14720)
    p.close()
    lines = [line for line in buf.getvalue().splitlines() if line.strip()]
    assert lines[0].startswith("fit MLP")  # the description once, above the bar
    bar = lines[-1]
    assert len(bar) <= 80
    # fit's epoch index 9 is the 10th epoch: progress counts from 1, as "completed 20 epochs" does
    assert re.match(r"epoch 10 step 230/460 loss 0\.1234 lr 0\.0123 \S+ samples/s eta", bar), bar
    plain = make_progress("plain", stream=(out := io.StringIO()))
    plain.start(460, "d")
    plain.update(460, 19, 0.5, 0.1, 29440)
    assert re.match(r"step 460/460 epoch 20 loss 0\.5 lr 0\.1 \S+ samples/s", out.getvalue().splitlines()[-1])


# ------------------------------------------------------------------------------------ training


class _Run:
    def __init__(self):
        self.params = {"w": np.zeros(1)}
        self.validation = object()


def test_early_stopping_stops_patience_epochs_after_the_best_as_keras_does():
    es = EarlyStopping(patience=3)
    run = _Run()
    es.on_train_begin(run)
    stopped_at = None
    for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]):
        run.params["w"][:] = epoch
        if es.on_epoch_end(run, {"epoch": epoch, "val_loss": loss}):
            stopped_at = epoch
            break
    assert stopped_at == 4  # best at epoch 1, then 2, 3, 4 without improvement
    es.on_train_end(run)
    assert es.restored_epoch == 1 and run.params["w"][0] == 1
    es0 = EarlyStopping(patience=0)
    es0.on_train_begin(run)
    assert not es0.on_epoch_end(run, {"epoch": 0, "val_loss": 1.0})
    assert es0.on_epoch_end(run, {"epoch": 1, "val_loss": 1.0})


def test_train_says_which_epoch_was_restored_and_shows_that_model_last(capsys, tmp_path):
    out_dir = tmp_path / "es"
    code, out, err = run_cli(
        capsys,
        "train",
        "breast_cancer",
        "--model",
        "mlp",
        "--hidden",
        "256",
        "--lr",
        "0.01",
        "--epochs",
        "100",
        "--early-stopping",
        "3",
        "--no-progress",
        "--out",
        str(out_dir),
    )
    assert code == 0, err
    m = re.search(r"stopped early after epoch (\d+): .* restored the parameters of epoch (\d+)", out)
    assert m, out
    last, best = int(m.group(1)), int(m.group(2))
    assert last == best + 3
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["restored_epoch"] == best - 1  # the files keep fit's epoch index, from 0
    table_rows = [line for line in out.splitlines() if line.startswith("│")]
    assert table_rows[-1].startswith(f"│ {best} (restored)")
    assert f"{summary['validation']['loss']:.4g}" in table_rows[-1]


def test_resume_says_from_which_step(capsys, tmp_path):
    out_dir = str(tmp_path / "r")
    common = ["train", "iris", "--batch-size", "16", "--no-progress", "--out", out_dir]
    code, out, err = run_cli(capsys, *common, "--epochs", "2", "--checkpoint-every", "5")
    assert code == 0, err
    steps = json.loads((tmp_path / "r" / "summary.json").read_text())["steps"]
    code, out, err = run_cli(capsys, *common, "--epochs", "4", "--checkpoint-every", "5", "--resume")
    assert code == 0, err
    assert f"resumed from step {steps}" in out
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["epochs"] == 4


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"descend {ds.__version__}"


# ------------------------------------------------------------------------------------ the task


@pytest.mark.parametrize(
    ("y", "model", "reason"),
    [
        (np.array([0, 1] * 30), "logistic regression", "2 distinct integer labels (0, 1)"),
        (np.arange(60) % 3, "softmax regression", "3 distinct integer labels (0, 1, 2)"),
        (np.linspace(-1, 1, 60) ** 3, "linear regression", "are real numbers"),
    ],
)
def test_train_on_files_chooses_the_model_from_the_targets_and_says_so(y, model, reason, capsys, tmp_path):
    X = np.random.default_rng(0).normal(size=(60, 3))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    code, out, err = run_cli(
        capsys,
        "train",
        str(tmp_path / "X.npy"),
        "--target",
        str(tmp_path / "y.npy"),
        "--epochs",
        "2",
        "--no-progress",
        "--out",
        str(tmp_path / "t"),
    )
    assert code == 0, err
    import yaml

    first = out.splitlines()[0]  # said before training
    assert first.startswith(f"model: {model} (chosen because the targets of X.npy ") and reason in first, (
        first
    )
    config = yaml.safe_load((tmp_path / "t" / "config.yaml").read_text())
    assert config["model"]["model"] == model.replace(" ", "_")


def test_infer_task_refuses_what_is_ambiguous():
    assert workflows.infer_task(np.array(["stay", "churn", "stay"])).kind == "binary"
    assert workflows.infer_task(np.array([True, False])).kind == "binary"
    assert workflows.infer_task(np.zeros((5, 2))).kind == "regression"
    for y in (np.arange(100), np.ones(10)):
        with pytest.raises(ParameterError) as info:
            workflows.infer_task(y)
        assert info.value.param == "model"


# ------------------------------------------------------------------------------------ divergence


def test_divergence_exits_1_with_one_line_and_writes_the_run_folder(capsys, tmp_path):
    out_dir = tmp_path / "d"
    code, out, err = run_cli(
        capsys,
        "train",
        "digits",
        "--model",
        "mlp",
        "--optimizer",
        "sgd",
        "--lr",
        "2.78",
        "--batch-size",
        "64",
        "--no-progress",
        "--out",
        str(out_dir),
    )
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(
        r"descend train: diverged at step \d+ \(epoch \d+\) with lr=2\.78; try a smaller lr", lines[0]
    )
    assert "Traceback" not in err + out
    summary = json.loads((out_dir / "summary.json").read_text())
    step = summary["diverged"]["step"]
    assert step > 1 and summary["diverged"]["lr"] == pytest.approx(2.78)
    for name in ("config.yaml", "metrics.csv", "report.html"):
        assert (out_dir / name).exists(), name
    if (out_dir / "training.png").exists():  # the curve, when fit hands back the partial run
        rows = (out_dir / "metrics.csv").read_text().strip().splitlines()
        assert len(rows) - 1 == step - 1  # every finite step up to the divergence


def test_a_diverged_run_without_a_partial_run_still_writes_its_folder(tmp_path, monkeypatch):
    import descend.train as train_pkg

    def diverge(*args, **kwargs):
        raise DivergenceError("fit: the loss became non-finite at step 7", step=7, epoch=0, quantity="loss")

    monkeypatch.setattr(train_pkg, "fit", diverge)
    run, outcome = workflows.run_train(
        ds.models.LinearRegression(), (np.zeros((4, 2)), np.zeros(4)), out=tmp_path / "x"
    )
    assert run is None and isinstance(outcome.error, DivergenceError)
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert summary["diverged"]["step"] == 7 and summary["stop_reason"] == "diverged at step 7"


# ------------------------------------------------------------------------------------ words


def test_race_says_what_its_lr_and_its_columns_mean(capsys, tmp_path):
    code, out, err = run_cli(
        capsys,
        "race",
        "booth",
        "--optimizers",
        "sgd,adam",
        "--lr",
        "sgd=0.01",
        "--steps",
        "30",
        "--no-gif",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    assert "RACE_LR" not in out and "given: sgd 0.01" in out and "race default" in out and "adam 0.05" in out
    assert "steps to within 0.001 of a minimum" in out


def test_the_mp4_message_speaks_to_command_line_users(capsys, tmp_path, monkeypatch):
    import shutil

    real = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "ffmpeg" else real(name, *a, **k)
    )
    code, out, err = run_cli(
        capsys, "race", "booth", "--steps", "10", "--frames", "3", "--mp4", "--out", str(tmp_path / "m")
    )
    assert code == 0, err
    note = next(line for line in out.splitlines() if "no MP4" in line)
    assert "race_animation()" not in note and "()" not in note and "ffmpeg" in note


# ------------------------------------------------------------------------------------ lr-find


@pytest.mark.slow
def test_lr_find_recommendation_is_within_10_percent_of_the_grid():
    """docs/lr-find.md: on four bundled problems the one recommended lr trains within 10% (validation
    loss after the same budget) of the best lr of an 8-point log grid."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "lr_find.py"
    spec = importlib.util.spec_from_file_location("docs_lr_find", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for check in module.measure():
        assert len(check.grid) == 8
        assert check.ratio <= 1.10, (check.problem, check.recommended, check.ratio)


def test_lr_find_recommends_one_lr_and_says_why(capsys, tmp_path):
    code, out, err = run_cli(capsys, "lr-find", "iris", "--steps", "40", "--out", str(tmp_path / "l"))
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("recommended lr: "))
    lr = float(line.split()[2].rstrip(":"))
    assert "lowest" in line and lr > 0
    summary = json.loads((tmp_path / "l" / "summary.json").read_text())
    assert summary["recommended"] == pytest.approx(lr, rel=1e-2)


# ------------------------------------------------------------------------------------ report


def test_demo_report_has_the_terminal_table_and_no_repeated_headings(capsys, tmp_path):
    code, _, err = run_cli(
        capsys,
        "demo",
        "--quick",
        "--functions",
        "booth",
        "--optimizers",
        "sgd",
        "--steps",
        "20",
        "--out",
        str(tmp_path / "d"),
    )
    assert code == 0, err
    html = (tmp_path / "d" / "report.html").read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", html)
    assert len(headings) == len(set(headings)), headings
    assert "Every optimizer on the test functions" in headings
    assert headings.count("Race on rosenbrock") == 1


def test_report_cells_and_axes_read_as_the_terminal_does(tmp_path):
    from descend.lab.race import race
    from descend.viz import report

    assert "<td>-</td>" in report.render_table([{"a": math.nan, "b": None}]).replace(
        '<td class="num">', "<td>"
    )
    res = race("rosenbrock", ["sgd", "adam"], lrs={"sgd": 0.01, "adam": 0.05}, steps=100)
    assert res.entries[0].diverged and not res.entries[1].diverged
    fig = report._race_loss_figure(res)
    sgd_line = fig.data[0]
    assert len(sgd_line.y) == len(res.entries[0].losses) and np.all(np.isfinite(sgd_line.y))
    marks = [t for t in fig.data if t.mode == "markers"]
    assert len(marks) == 1 and marks[0].marker.symbol == "x"
    assert fig.layout.yaxis.range is not None  # the view follows the run that did not diverge
    assert fig.layout.template.layout.yaxis.exponentformat == "power"
    X = np.random.default_rng(0).normal(size=(50, 2))
    run = ds.fit("linear", (X, X[:, 0]), epochs=3, validation=(X, X[:, 0]), progress=False)
    section = report.training_section(run)
    metric_fig = section.parts[1]
    assert list(metric_fig.data[0].x) == [0, 1, 2]  # epochs counted from 0, as in the table


def test_two_runs_in_one_second_get_two_folders(tmp_path, monkeypatch):
    from descend.lab.runfolder import RunFolder

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt: "20260101-000000")
    first = RunFolder(None, "race")
    first.write_summary({"a": 1})
    second = RunFolder(None, "race")
    assert first.dir != second.dir and second.dir.name == "race-20260101-000000-2"
