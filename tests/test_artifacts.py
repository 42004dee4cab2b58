"""Run-folder artifacts (descend.lab.artifacts): each result kind written then read gives back
its numbers; the file names live in one place; `descend report` re-draws a diagnose folder; and
folders keep the names and layout they had before the artifact classes, so old ones still load."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import descend as ds
from descend import models, schedules, workflows
from descend.cli import app
from descend.lab import artifacts as art
from descend.lab import datasets
from descend.lab.batching import compare_batching
from descend.lab.lr_find import lr_find
from descend.lab.race import race
from descend.lab.reload import load_run
from descend.lab.runfolder import RunFolder, plain

SRC = Path(workflows.__file__).parent


@pytest.fixture(scope="module")
def digits():
    d = datasets.load("digits")
    return d.X[:200], d.y[:200]


def _round_trip(artifact, result, tmp_path, **kwargs):
    """Write ``result`` as a run does (its pieces through YAML and JSON), then read it back."""
    folder = RunFolder(tmp_path / "run", "test")
    out = artifact.write(result, folder, **kwargs)
    folder.write_metrics(out.metrics)
    config = yaml.safe_load(folder.write_config(out.config).read_text())
    summary = json.loads(folder.write_summary(out.summary).read_text())
    return out, artifact.read(config, summary, folder.dir)


def test_every_kind_has_one_artifact_and_every_command_folder_is_read_by_its_own():
    kinds = {"race", "lr_find", "batching", "training", "schedules", "diagnosis"}
    assert set(art.ARTIFACTS) == kinds
    assert {a.command for a in art.ARTIFACTS.values()} == {
        "race",
        "lr-find",
        "compare-batching",
        "train",
        "schedule",
        "diagnose",
    }


def test_race_round_trip(tmp_path):
    result = race("booth", ["sgd", "adam"], steps=15)
    _, back = _round_trip(art.RaceArtifact, result, tmp_path, gif=False, slider=False)
    assert back.function.name == result.function.name
    np.testing.assert_array_equal(back.start, result.start)
    assert (back.steps, back.noise, back.seed, back.tol) == (
        result.steps,
        result.noise,
        result.seed,
        result.tol,
    )
    for a, b in zip(result.entries, back.entries, strict=True):
        assert a.optimizer == b.optimizer and a.lr == b.lr
        np.testing.assert_array_equal(a.path, b.path)
        np.testing.assert_array_equal(a.losses, b.losses)
        assert a.steps_to_tol == b.steps_to_tol
    assert back.table() == result.table()


def test_lr_find_round_trip(tmp_path, digits):
    result = lr_find(models.get("softmax"), digits, "sgd", steps=15)
    _, back = _round_trip(art.LRFindArtifact, result, tmp_path)
    for k in ("lrs", "losses", "smoothed"):
        np.testing.assert_array_equal(getattr(back, k), getattr(result, k))
    assert back.suggestions == pytest.approx(result.suggestions, nan_ok=True)
    assert back.lr == pytest.approx(result.lr, nan_ok=True)
    assert back.to_dict() == json.loads(json.dumps(plain(result.to_dict())))


def test_batching_round_trip(tmp_path):
    result = compare_batching("linear", epochs=1, evals_per_epoch=2)
    _, back = _round_trip(art.BatchingArtifact, result, tmp_path)
    assert back.optimal_loss == result.optimal_loss and back.epochs == result.epochs
    for a, b in zip(result.curves, back.curves, strict=True):
        assert (a.label, a.batch_size, a.lr, a.updates_per_epoch) == (
            b.label,
            b.batch_size,
            b.lr,
            b.updates_per_epoch,
        )
        for k in art.BatchingArtifact.CURVES:
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


def test_training_round_trip(tmp_path, digits):
    run = ds.fit("softmax", digits, epochs=2, batch_size=64, progress=False)
    folder = RunFolder(tmp_path / "run", "train")
    out = art.TrainingArtifact.write(run, folder)
    folder.write_metrics(out.metrics)
    back = art.TrainingArtifact.read(
        yaml.safe_load(folder.write_config(run.config).read_text()), {}, folder.dir
    )
    for table in ("steps", "epochs"):
        mine, theirs = getattr(run.history, table), getattr(back.history, table)
        assert set(mine) == set(theirs)
        for k in mine:
            np.testing.assert_allclose(np.asarray(theirs[k], float), np.asarray(mine[k], float), rtol=1e-15)
    assert back.model.config() == run.model.config()
    with np.load(folder.dir / art.TrainingArtifact.PARAMS, allow_pickle=False) as z:
        for k, v in run.params.items():
            np.testing.assert_array_equal(z[k], v)


def test_schedules_round_trip(tmp_path):
    scheds = [schedules.get("cosine", lr0=0.1, total_steps=30), schedules.get("constant", lr=0.05)]
    _, (back, steps, log) = _round_trip(art.SchedulesArtifact, scheds, tmp_path, steps=30, log=True)
    assert (steps, log) == (30, True)
    for a, b in zip(scheds, back, strict=True):
        np.testing.assert_array_equal(a.values(30), b.values(30))


@pytest.fixture(scope="module")
def diagnosis(digits):
    mlp = models.MLP(hidden=(8,), output="softmax")
    X, _ = digits
    return ds.diagnose(
        mlp, mlp.init(np.random.default_rng(0), X.shape[1], 10), digits, optimizer="sgd", lr=0.1
    )


def test_diagnosis_round_trip(tmp_path, diagnosis):
    _, back = _round_trip(art.DiagnosisArtifact, diagnosis, tmp_path)
    assert back.to_dict() == json.loads(json.dumps(diagnosis.to_dict()))
    assert back.flags == diagnosis.flags and back.lr == diagnosis.lr
    blank = [v._replace(value=0) for v in diagnosis.verdicts()]
    assert [v._replace(value=0) for v in back.verdicts()] == blank
    for a, b in zip(diagnosis.verdicts(), back.verdicts(), strict=True):
        assert a.value == b.value or (math.isnan(a.value) and math.isnan(b.value))
    np.testing.assert_array_equal(back.hessian_top, diagnosis.hessian_top)
    np.testing.assert_array_equal(back.spectrum.nodes, diagnosis.spectrum.nodes)
    assert back.layer_grad_norms == diagnosis.layer_grad_norms
    assert str(back) == str(diagnosis)


def test_a_function_diagnosis_round_trips_its_nans_and_nones(tmp_path):
    f = ds.functions.get("rosenbrock")
    d = ds.diagnose(f, np.asarray(f.start, dtype=float), optimizer="sgd", lr=0.1)
    assert math.isnan(d.noise_scale)  # a function has no gradient noise: null in the file, nan again
    _, back = _round_trip(art.DiagnosisArtifact, d, tmp_path)
    assert math.isnan(back.noise_scale) and back.to_dict() == json.loads(json.dumps(d.to_dict()))


def test_a_damaged_diagnosis_file_is_a_clear_error(tmp_path, diagnosis):
    folder = RunFolder(tmp_path, "diagnose")
    art.DiagnosisArtifact.write(diagnosis, folder)
    path = tmp_path / art.DiagnosisArtifact.FOUND
    found = json.loads(path.read_text())
    del found["subject"]
    path.write_text(json.dumps(found))
    with pytest.raises(ds.errors.ParameterError, match="no 'subject'"):
        art.DiagnosisArtifact.read({}, {}, tmp_path)
    path.write_text("[1, 2]")
    with pytest.raises(ds.errors.ParameterError, match="no mapping"):
        art.DiagnosisArtifact.read({}, {}, tmp_path)


# ---- names in one place -------------------------------------------------------------------------


def _file_names() -> set[str]:
    names = {RunFolder.CONFIG, RunFolder.METRICS, RunFolder.SUMMARY, RunFolder.REPORT}
    for a in art.ARTIFACTS.values():
        for k, v in vars(a).items():
            if k.isupper() and isinstance(v, str) and "." in v:
                names.add(v.format(prefix=getattr(a, "PREFIX", "")))
    return names


def _code_strings(path: Path) -> list[str]:
    """Every string literal in a module's code (f-string parts too), docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def test_the_artifact_classes_name_every_file_the_folders_held_before():
    assert _file_names() >= {
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "report.html",
        "paths.npz",
        "race_loss.png",
        "race.gif",
        "race.mp4",
        "lr_find.npz",
        "lr_find.png",
        "batching.npz",
        "batching.png",
        "epochs.csv",
        "monitor.csv",
        "training.png",
        "params.npz",
        "schedule.png",
        "diagnosis.json",
        "spectrum.png",
        "noise.png",
        "gradients.png",
    }


@pytest.mark.parametrize("module", ["workflows.py", "lab/reload.py"])
def test_writers_and_readers_spell_no_file_name_of_an_artifact(module):
    names = _file_names()
    spelled = [s for s in _code_strings(SRC / module) if any(n in s for n in names)]
    assert spelled == [], f"{module} spells artifact file names: {spelled}"


def test_the_name_check_sees_a_spelled_name(tmp_path):
    # the check above can fail: a module that spells a name is caught, one that only says it in
    # its docstring is not
    path = tmp_path / "m.py"
    path.write_text('"""Writes ``paths.npz``."""\nx = folder / "paths.npz"\n')
    assert _code_strings(path) == ["paths.npz"]


# ---- folders as they were -----------------------------------------------------------------------

#: the files each command's folder held before the artifact classes (written at 17b4f5c)
BEFORE = {
    "race": {"config.yaml", "metrics.csv", "paths.npz", "race_contour.png", "race_loss.png"}
    | {"race_surface.png", "report.html", "summary.json"},
    "lr-find": {"config.yaml", "lr_find.npz", "lr_find.png", "metrics.csv", "report.html", "summary.json"},
    "compare-batching": {"batching.npz", "batching.png", "config.yaml", "metrics.csv", "report.html"}
    | {"summary.json"},
    "schedule": {"config.yaml", "metrics.csv", "report.html", "schedule.png", "summary.json"},
    "train": {"config.yaml", "epochs.csv", "metrics.csv", "model.npz", "params.npz", "report.html"}
    | {"summary.json", "training.png"},
    "diagnose": {"config.yaml", "diagnosis.json", "metrics.csv", "noise.png", "report.html"}
    | {"spectrum.png", "summary.json"},
}


def _files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and "checkpoints" not in p.parts}


@pytest.fixture(scope="module")
def folders(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("folders")
    workflows.run_race("booth", ["sgd", "adam"], steps=15, gif=False, out=root / "race")
    workflows.run_lr_find(models.get("softmax"), digits, "sgd", steps=15, out=root / "lr-find")
    workflows.run_batching(data="linear", epochs=1, evals_per_epoch=2, out=root / "compare-batching")
    scheds = [schedules.get("cosine", lr0=0.1, total_steps=20), schedules.get("constant", lr=0.05)]
    workflows.run_schedules(scheds, steps=20, out=root / "schedule")
    workflows.run_train(models.get("softmax"), digits, epochs=1, progress=False, out=root / "train")
    mlp = models.MLP(hidden=(8,), output="softmax")
    params = mlp.init(np.random.default_rng(0), digits[0].shape[1], 10)
    workflows.run_diagnose(mlp, params, digits, optimizer="sgd", lr=0.1, out=root / "diagnose")
    return root


@pytest.mark.parametrize("command", sorted(BEFORE))
def test_a_folder_written_now_holds_the_files_it_held_before_and_loads(folders, command):
    d = folders / command
    assert _files(d) == BEFORE[command]
    summary = json.loads((d / "summary.json").read_text())
    assert set(summary["files"]) == BEFORE[command] - {"summary.json"}
    loaded, items = load_run(d)
    assert loaded == command and [k for k, _ in items] == [art.BY_COMMAND[command].kind]


def test_report_redraws_a_diagnose_folder_with_its_diagnosis_section(folders, tmp_path):
    out = tmp_path / "again.html"
    result = CliRunner().invoke(app, ["report", str(folders / "diagnose"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "<h2>Diagnosis</h2>" in html and "Hessian spectrum" in html
    found = json.loads((folders / "diagnose" / "diagnosis.json").read_text())
    for v in found["verdicts"]:
        assert v["measurement"] in html


def test_a_folder_spelled_by_hand_with_the_old_names_loads(tmp_path):
    # an lr-find folder as the code before the artifact classes wrote it, names spelled here
    d = tmp_path / "old"
    d.mkdir()
    lrs = np.geomspace(1e-4, 1.0, 5)
    losses = np.array([2.3, 2.2, 1.9, 1.5, 4.0])
    np.savez(d / "lr_find.npz", lrs=lrs, losses=losses, smoothed=losses)
    (d / "config.yaml").write_text("command: lr-find\ndescend: 0.0\noptimizer: sgd\n")
    summary = {"suggestions": {"steepest": 0.1}, "stopped_early": False, "reason": "", "recommended": 0.05}
    (d / "summary.json").write_text(json.dumps(summary))
    command, [(kind, result)] = load_run(d)
    assert (command, kind) == ("lr-find", "lr_find")
    np.testing.assert_array_equal(result.lrs, lrs)
    assert result.lr == 0.05 and result.suggestions == {"steepest": 0.1}
