"""Every command with bad values for every flag: exit code 2, one line naming the flag, no traceback.

Each row is (arguments, the flag the line must name, a fragment of the message). The kinds of
bad value are the ones a user meets: wrong type, out of range, unknown name, missing file.
"""

from __future__ import annotations

import numpy as np
import pytest

from descend.cli import main

BAD = [
    # ---- demo
    (["demo", "--steps", "x"], "--steps", "valid integer"),
    (["demo", "--steps", "0"], "--steps", "greater than or equal to 1"),
    (["demo", "--functions", "rosenbrok"], "--functions", "did you mean 'rosenbrock'?"),
    (["demo", "--optimizers", "adamm"], "--optimizers", "unknown optimizer 'adamm'; did you mean 'adam'?"),
    (["demo", "--optimizers", "sgd,sgd"], "--optimizers", "listed twice"),
    (["demo", "--stepz", "3"], "--stepz", "No such option"),
    # ---- race
    (["race", "rosenbrok"], "FUNCTION", "unknown function 'rosenbrok'; did you mean 'rosenbrock'?"),
    (["race", "rosenbrok:a=1"], "FUNCTION", "did you mean 'rosenbrock'?"),
    (["race", "quadratic:kapa=3"], "FUNCTION", "did you mean 'kappa'?"),
    (["race", "quadratic:kappa=0.5"], "FUNCTION", "kappa"),
    (["race", "quadratic:kappa=x"], "FUNCTION", "kappa must be a real number"),
    (["race", "import os"], "FUNCTION", "not a valid expression"),
    (["race", "x + foo", "--start", "1,1"], "FUNCTION", "unknown name 'foo'"),
    (["race", "no_such_module_xyz:f"], "FUNCTION", "cannot import module"),
    (["race", "rosenbrock", "--optimizers", "sgd,adamm"], "--optimizers", "unknown optimizer 'adamm'"),
    (["race", "rosenbrock", "--lr", "fast"], "--lr", "expected comma-separated numbers"),
    (["race", "rosenbrock", "--lr", "-1"], "--lr", "> 0"),
    (["race", "rosenbrock", "--lr", "0"], "--lr", "> 0"),
    (["race", "rosenbrock", "--optimizers", "adam", "--lr", "sgd=0.1"], "--lr", "not one of the racing"),
    (["race", "rosenbrock", "--lr", "0.1", "--tune"], "--lr", "not both"),
    (["race", "rosenbrock", "--steps", "x"], "--steps", "valid integer"),
    (["race", "rosenbrock", "--steps", "0"], "--steps", "greater than or equal to 1"),
    (["race", "rosenbrock", "--start", "1"], "--start", "expected 2 comma-separated numbers"),
    (["race", "rosenbrock", "--start", "a,b"], "--start", "expected comma-separated numbers"),
    (["race", "rosenbrock", "--start", "nan,1"], "--start", "finite"),
    (["race", "rosenbrock:dim=3", "--start", "1,2"], "--start", "expected 3 comma-separated numbers"),
    (["race", "x**2 + y**2", "--start", "1,2,3"], "--start", "a function of x and y, so start must have 2"),
    (["race", "anyd:f"], "FUNCTION", "takes points of any length, so its dimension is unknown"),
    (["race", "anyd:f"], "FUNCTION", "give a start point, --start X1,X2,... with one coordinate"),
    (["race", "anyd:needs5"], "FUNCTION", "cannot be evaluated at the 2-D point"),
    (["race", "anyd:declared", "--start", "1,2"], "--start", "declares dim=4, so start must have 4"),
    (["race", "rosenbrock", "--noise", "x"], "--noise", "valid number"),
    (["race", "rosenbrock", "--noise", "-1"], "--noise", "greater than or equal to 0"),
    (["race", "rosenbrock", "--seed", "-1"], "--seed", "greater than or equal to 0"),
    (["race", "rosenbrock", "--frames", "1"], "--frames", "greater than or equal to 2"),
    (["race", "rosenbrock", "--set", "adamm.betas=[0.8,0.9]"], "--set", "expected OPTIMIZER.KEY=VALUE"),
    (["race", "rosenbrock", "--set", "adam.betas=[1.5,0.9]"], "--set", "beta1 must satisfy"),
    (["race", "rosenbrock", "--set", "adam.bettas=[0.8,0.9]"], "--set", "did you mean 'betas'?"),
    (["race", "rosenbrock", "--set", "momentum.momentum=x"], "--set", "momentum must be a real number"),
    (["race", "rosenbrock", "--set", "adam.betas=[0.8,0.9"], "--set", "unclosed bracket"),
    (["race", "rosenbrock", "--set", "sgd.lr=3"], "--set", "with --lr"),
    # ---- train
    (["train", "digitz"], "DATA", "unknown dataset 'digitz'; did you mean 'digits'?"),
    (["train", "digits", "--set", "bettas=[0.8,0.9]"], "--set", "did you mean 'betas'?"),
    (["train", "digits", "--optimizer", "sgd", "--set", "momentum=x"], "--set", "momentum must be a real"),
    (["train", "missing.npy", "--target", "y.npy"], "DATA", "no such file 'missing.npy'"),
    (["train", "X.npy", "--target", "missing.npy"], "--target", "no such file 'missing.npy'"),
    (["train", "X.npy"], "--target", "name the targets"),
    (["train", "digits", "--target", "y"], "--target", "built-in dataset"),
    (["train", "X.npy", "--target", "many.npy"], "--model", "cannot be chosen from the targets"),
    (["train", "digits", "--model", "svm"], "--model", "unknown model 'svm'"),
    (["train", "digits", "--model", "logistc"], "--model", "did you mean 'logistic'?"),
    (["train", "iris", "--model", "logistic"], "--model", "needs 2 classes"),
    (["train", "diabetes", "--model", "softmax"], "--model", "needs class labels"),
    (["train", "labels.csv", "--target", "y", "--model", "linear"], "--model", "needs numeric targets"),
    (["train", "digits", "--hidden", "64,x"], "--hidden", "layer sizes"),
    (["train", "digits", "--hidden", "0"], "--hidden", "layer sizes"),
    (["train", "digits", "--activation", "gelu"], "--activation", "activation must be one of"),
    (["train", "digits", "--optimizer", "adamm"], "--optimizer", "did you mean 'adam'?"),
    # L-BFGS trains full batch when no --batch-size is given (tests/test_cli_cluster.py)
    (
        ["train", "digits", "--optimizer", "lbfgs", "--batch-size", "32"],
        "--batch-size",
        "give --batch-size full",
    ),
    (["train", "digits", "--lr", "x"], "--lr", "valid number"),
    (["train", "digits", "--lr", "-0.1"], "--lr", "> 0"),
    (["train", "digits", "--lr", "0"], "--lr", "0 would leave the parameters"),
    (["train", "digits", "--lr", "nan"], "--lr", "> 0"),
    (["train", "digits", "--lr", "0.1", "--schedule", "constant:lr=0.1"], "--schedule", "not both"),
    (["train", "digits", "--schedule", "nope:lr=1"], "--schedule", "unknown schedule 'nope'"),
    (["train", "digits", "--schedule", "cosine:lr0=x,total_steps=9"], "--schedule", "lr0 must be a real"),
    (["train", "digits", "--schedule", "cosine:lr0=1"], "--schedule", "total_steps"),
    (
        ["train", "digits", "--schedule", "cosine:lr0=1,total_step=9"],
        "--schedule",
        "did you mean 'total_steps'?",
    ),
    (["train", "digits", "--batch-size", "x"], "--batch-size", "expected 'full', 1 or an integer"),
    (["train", "digits", "--batch-size", "0"], "--batch-size", "batch_size >= 1, got 0"),
    (["train", "digits", "--epochs", "x"], "--epochs", "expected a whole number of epochs or auto, got 'x'"),
    (["train", "digits", "--epochs", "0"], "--epochs", "epochs must satisfy epochs >= 1 (or auto), got 0"),
    (["train", "digits", "--standardize", "maybe"], "--standardize", "expected auto, on or off, got 'maybe'"),
    # the old bare flag: the line names it, not the word after the next flag
    (["train", "digits", "--standardize", "--epochs", "2"], "--standardize", "needs a value (auto|on|off)"),
    (["train", "labels.csv", "--target", "y", "--drop", "nope"], "--drop", "'nope' not in labels.csv"),
    (["train", "labels.csv", "--target", "y", "--drop", "y"], "--drop", "the target column 'y'"),
    (["train", "digits", "--drop", "x0"], "--drop", "built-in dataset"),
    (["train", "labels.csv", "--target", "y", "--dask", "local:1", "--drop", "x0"], "--drop", "with --dask"),
    (["train", "digits", "--seed", "-1"], "--seed", "greater than or equal to 0"),
    (["train", "digits", "--val-fraction", "2"], "--val-fraction", "less than or equal to 0.9"),
    (["train", "digits", "--val-fraction", "x"], "--val-fraction", "valid number"),
    (["train", "digits", "--early-stopping", "x"], "--early-stopping", "valid integer"),
    (["train", "digits", "--early-stopping", "-1"], "--early-stopping", "greater than or equal to 0"),
    (["train", "digits", "--early-stopping", "2", "--val-fraction", "0"], "--early-stopping", "validation"),
    (["train", "digits", "--checkpoint-every", "0"], "--checkpoint-every", "greater than or equal to 1"),
    (["train", "digits", "--resume"], "--resume", "needs --out"),
    (["train", "digits", "--resume", "--out", "nowhere"], "--resume", "no checkpoint"),
    (["train", "labels.csv", "--target", "y", "--dask", "local:0"], "--dask", "local:N"),
    (["train", "digits", "--dask", "local:1"], "--dask", "data files"),
    (
        ["train", "digits", "--sync-every", "0"],
        "--sync-every",
        "greater than or equal to 1",
    ),
    (["train", "digits", "--sync-every", "4"], "--sync-every", "needs data on a Dask cluster"),
    (
        ["train", "labels.csv", "--target", "y", "--on-bad-rows", "drop"],
        "--on-bad-rows",
        "expected skip or error",
    ),
    (["train", "digits", "--on-bad-rows", "skip"], "--on-bad-rows", "built-in dataset"),
    (["train", "digits", "--monitor", "0"], "--monitor", "greater than or equal to 1"),
    (["train", "digits", "--monitor", "x"], "--monitor", "valid integer"),
    # ---- diagnose
    (["diagnose", "digitz"], "RUN_OR_DATA", "did you mean 'digits'?"),
    (["diagnose", "missing.csv"], "RUN_OR_DATA", "no such file 'missing.csv'"),
    (["diagnose", "digits", "--data", "iris"], "RUN_OR_DATA", "--data is given"),
    (["diagnose", "damaged"], "RUN_OR_DATA", "damaged"),
    (["diagnose", "--data", "missing.csv"], "--data", "no such file 'missing.csv'"),
    (["diagnose", "run"], "--data", "name the data file the run in 'run' was trained on"),
    (["diagnose", "--data", "X.npy"], "--target", "name the targets"),
    (["diagnose", "digits", "--target", "y"], "--target", "built-in dataset"),
    (["diagnose", "digits", "--drop", "a"], "--drop", "built-in dataset"),
    (["diagnose", "digits", "--model", "svm"], "--model", "unknown model 'svm'"),
    (["diagnose", "run", "--data", "digits", "--model", "mlp"], "--model", "leave it out"),
    (["diagnose", "digits", "--hidden", "0"], "--hidden", "layer sizes"),
    (["diagnose", "digits", "--activation", "gelu"], "--activation", "activation must be one of"),
    (["diagnose", "digits", "--optimizer", "adamm"], "--optimizer", "did you mean 'adam'?"),
    (["diagnose", "digits", "--lr", "x"], "--lr", "valid number"),
    (["diagnose", "digits", "--optimizer", "sgd", "--lr", "-1"], "--lr", "lr"),
    (["diagnose", "digits", "--batch-size", "0"], "--batch-size", "greater than or equal to 1"),
    (["diagnose", "digits", "--seed", "-1"], "--seed", "greater than or equal to 0"),
    (["diagnose", "digits", "--on-bad-rows", "skip"], "--on-bad-rows", "built-in dataset"),
    (
        ["train", "labels.csv", "--target", "y", "--dask", "local:1", "--on-bad-rows", "skip"],
        "--on-bad-rows",
        "with --dask",
    ),
    # a library's advice in the words of the command line: flags, not Python parameters
    (["train", "header.csv", "--target", "y"], "DATA", "no data rows"),
    (["train", "words.csv", "--target", "y"], "--features", "pass --features COL1,COL2 to choose"),
    # ---- make-data
    (["make-data", "out.xyz"], "OUT", "--format"),
    (["make-data", "out.csv", "--rows", "0"], "--rows", "greater than or equal to 1"),
    (["make-data", "out.csv", "--features", "x"], "--features", "valid integer"),
    (["make-data", "out.csv", "--task", "clustering"], "--task", "classification"),
    (["make-data", "out.csv", "--format", "xlsx"], "--format", "parquet"),
    (["make-data", "out.csv", "--classes", "1"], "--classes", "greater than or equal to 2"),
    (["make-data", "out.csv", "--labels", "a,a"], "--labels", "distinct"),
    (["make-data", "out.csv", "--seed", "-1"], "--seed", "greater than or equal to 0"),
    # ---- lr-find
    (["lr-find", "digitz"], "DATA", "did you mean 'digits'?"),
    (["lr-find", "missing.csv", "--target", "y"], "DATA", "no such file 'missing.csv'"),
    (["lr-find", "X.npy", "--target", "missing.npy"], "--target", "no such file 'missing.npy'"),
    (["lr-find", "digits", "--model", "svm"], "--model", "unknown model 'svm'"),
    (["lr-find", "digits", "--hidden", "x"], "--hidden", "layer sizes"),
    (["lr-find", "digits", "--optimizer", "newton"], "--optimizer", "unknown optimizer 'newton'"),
    (["lr-find", "digits", "--optimizer", "lbfgs"], "--optimizer", "L-BFGS has no learning rate to find"),
    (["lr-find", "digits", "--start-lr", "0"], "--start-lr", "start_lr > 0"),
    (["lr-find", "digits", "--start-lr", "x"], "--start-lr", "valid number"),
    (["lr-find", "digits", "--end-lr", "1e-9"], "--end-lr", "greater than --start-lr"),
    (["lr-find", "digits", "--steps", "2"], "--steps", "greater than or equal to 3"),
    (["lr-find", "digits", "--batch-size", "0"], "--batch-size", "greater than or equal to 1"),
    (["lr-find", "digits", "--seed", "x"], "--seed", "valid integer"),
    (["lr-find", "labels.csv", "--target", "y", "--on-bad-rows", "x"], "--on-bad-rows", "skip or error"),
    (["lr-find", "digits", "--dask", "local:1"], "--dask", "data files"),
    (["lr-find", "labels.csv", "--target", "y", "--drop", "nope"], "--drop", "'nope' not in labels.csv"),
    (["lr-find", "digits", "--standardize", "yes"], "--standardize", "expected auto, on or off"),
    (["lr-find", "labels.csv", "--target", "y", "--dask", "local:0"], "--dask", "local:N"),
    # ---- schedule
    (["schedule", "nope:lr=1"], "SPECS", "unknown schedule 'nope'"),
    (["schedule", "cosin:lr0=1,total_steps=9"], "SPECS", "did you mean 'cosine'?"),
    (["schedule", "cosine:lr0=abc,total_steps=10"], "SPECS", "lr0"),
    (["schedule", "cosine:lr0=0.1"], "SPECS", "total_steps"),
    (["schedule", "multi_step:lr0=1,milestones=[100,200"], "SPECS", "unclosed bracket"),
    (["schedule", "cosine:lr0"], "SPECS", "expected key=value"),
    (["schedule", "{bad json"], "SPECS", "not valid JSON"),
    (["schedule", "cosine:lr0=1,total_steps=9", "--steps", "0"], "--steps", "greater than or equal to 1"),
    # ---- compare-batching
    (["compare-batching", "--data", "digitz"], "--data", "did you mean 'digits'?"),
    (["compare-batching", "--data", "digits"], "--data", "least-squares"),
    (["compare-batching", "--batch-sizes", "full,x"], "--batch-sizes", "expected 'full', 1 or an integer"),
    (["compare-batching", "--batch-sizes", "0"], "--batch-sizes", "batch_size >= 1"),
    (["compare-batching", "--epochs", "0"], "--epochs", "greater than or equal to 1"),
    (["compare-batching", "--seed", "-1"], "--seed", "greater than or equal to 0"),
    (["compare-batching", "--optimizer", "adamm"], "--optimizer", "did you mean 'adam'?"),
    # ---- predict (``run``: a model trained on labels.csv)
    (["predict", "nowhere", "labels.csv"], "RUN", "no such file or folder 'nowhere'"),
    (["predict", "emptydir", "labels.csv"], "RUN", "holds no saved run: no model.npz"),
    (["predict", "damaged", "labels.csv"], "RUN", "is damaged"),
    (["predict", "run", "missing.csv"], "DATA", "no such file 'missing.csv'"),
    (["predict", "run", "anyd.py"], "DATA", "'anyd.py' is not a CSV or Parquet file"),
    (["predict", "run", "labels.csv", "--out", "p.txt"], "--out", "must end in .csv, .csv.gz or .parquet"),
    (["predict", "run", "labels.csv", "--out", "labels.csv"], "--out", "is one of the data files"),
    (["predict", "run", "labels.csv", "--id", "nope"], "--id", "id column 'nope' is not in"),
    (
        ["predict", "run", "labels.csv", "--on-bad-rows", "drop"],
        "--on-bad-rows",
        "expected skip, empty or error",
    ),
    (["predict", "run", "labels.csv", "--id", "--out", "p.csv"], "--id", "needs a value (COL)"),
    # ---- report
    (["report", "missing-folder"], "RUNS", "no such folder"),
    (["report", "."], "RUNS", "is not a descend run folder"),
]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """model.npz of a run trained on the fixture's labels.csv (once for all rows)."""
    import descend as ds
    from descend.data.synth import make_data

    folder = tmp_path_factory.mktemp("model")
    make_data(folder / "labels.csv", rows=40, features=3, labels=["stay", "churn"], format="csv")
    run = ds.fit("logistic", ds.data.open(folder / "labels.csv", target="y"), epochs=1, progress=False)
    return run.save(folder / "run")


@pytest.fixture
def workdir(tmp_path, monkeypatch, saved_model):
    import shutil

    monkeypatch.chdir(tmp_path)
    for name in ("run", "damaged"):
        (tmp_path / name).mkdir()
        shutil.copy(saved_model, tmp_path / name / "model.npz")
    with open(tmp_path / "damaged" / "model.npz", "r+b") as fh:
        fh.truncate(300)
    (tmp_path / "emptydir").mkdir()
    rng = np.random.default_rng(0)
    np.save("X.npy", rng.normal(size=(40, 3)))
    np.save("y.npy", (rng.random(40) > 0.5).astype(np.int64))
    np.save("many.npy", rng.integers(0, 50, size=40))  # 40 integers: counts or classes? ambiguous
    from descend.data.synth import make_data

    make_data("labels.csv", rows=40, features=3, labels=["stay", "churn"], format="csv")
    (tmp_path / "holes.csv").write_text("a,b,y\n1,2,0\n3,,1\n4,5,0\n6,7,1\n")
    (tmp_path / "header.csv").write_text("a,b,y\n")
    (tmp_path / "words.csv").write_text("a,b,y\n1,x,0\n3,z,1\n")
    (tmp_path / "anyd.py").write_text(
        "import numpy as np\n"
        "def f(x):\n    return float(np.sum((np.asarray(x) - 1.0) ** 2))\n"
        "def needs5(x):\n    return float(x[4] ** 2)\n"
        "def declared(x):\n    return float(np.sum(np.asarray(x) ** 2))\n"
        "declared.dim = 4\n"
    )
    return tmp_path


@pytest.mark.parametrize(("args", "flag", "text"), BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_values_exit_2_with_one_line_naming_the_flag(args, flag, text, capsys, workdir):
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    (line,) = lines
    command = args[0]
    assert line.startswith(f"descend {command}: {flag}: "), line
    assert text in line, line
    assert "Traceback" not in captured.err + captured.out
    assert not (workdir / "runs").exists()  # refused before writing anything
    assert not list(workdir.glob("*.predictions.csv")) and not (workdir / "p.csv").exists()


def test_every_flag_of_every_command_has_a_bad_value_in_the_table():
    """A new flag without a row here fails: the table covers the whole surface."""
    import typer

    from descend.cli import app

    group = typer.main.get_command(app)
    covered = {(args[0], flag) for args, flag, _ in BAD}
    exempt = {"--help", "--out", "--quick", "--table", "--no-table", "--tune", "--gif", "--no-gif", "--mp4"}
    exempt |= {"--log", "--json", "--progress", "--no-progress", "--features"}
    missing = []
    for name, cmd in group.commands.items():
        for param in cmd.params:
            flags = [o for o in param.opts if o.startswith("--")] or [param.name.upper()]
            flag = flags[0]
            if flag in exempt or name in ("functions", "optimizers"):
                continue
            if (name, flag) not in covered:
                missing.append((name, flag))
    assert not missing, missing


def test_library_errors_carry_their_parameter_and_the_cli_maps_it_in_one_table():
    import descend as ds
    from descend.cli import FLAGS, flag_for
    from descend.errors import ParameterError, ParameterTypeError

    with pytest.raises(ParameterError) as info:
        ds.Adam(lr=-0.1)
    assert (info.value.owner, info.value.param, info.value.value) == ("Adam", "lr", -0.1)
    assert str(info.value) == "Adam: lr must satisfy lr >= 0 (finite), got -0.1"
    assert flag_for("train", info.value) == "--lr" == FLAGS["lr"]
    with pytest.raises(ParameterTypeError) as info:
        ds.fit("linear", (np.zeros((4, 2)), np.zeros(4)), epochs="3", progress=False)
    assert info.value.param == "epochs" and isinstance(info.value, TypeError)
    assert flag_for("train", info.value) == "--epochs"
    with pytest.raises(ParameterError) as info:
        ds.fit("linear", (np.zeros((4, 2)), np.zeros(4)), batch_size=0, progress=False)
    assert flag_for("train", info.value) == "--batch-size"
    assert flag_for("compare-batching", info.value) == "--batch-sizes"
    with pytest.raises(ParameterError) as info:
        ds.optimizer("adamm")
    assert flag_for("race", info.value) == "--optimizers" and flag_for("train", info.value) == "--optimizer"


def test_an_error_raised_while_training_is_mapped_by_its_parameter(capsys, tmp_path, monkeypatch):
    """The run phase has no per-call-site guess: fit's own error names the parameter."""
    from descend import workflows

    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        import descend as ds

        return ds.fit("linear", (np.zeros((4, 2)), np.zeros(4)), epochs=0)

    monkeypatch.setattr(workflows, "run_train", refuse)
    assert main(["train", "linear"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("descend train: --epochs: epochs must satisfy epochs >= 1, got 0"), err


@pytest.mark.parametrize("command", ["train", "lr-find"])
def test_a_bad_row_found_while_reading_names_file_row_column_and_the_flag_that_skips_it(
    command, capsys, workdir
):
    """The library says ``on_bad_rows='skip'``; the command line says the flag."""
    assert main([command, "holes.csv", "--target", "y", "--out", "r"]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert lines == [
        f"descend {command}: holes.csv: row 2, column 'b': a missing value (fix the file, or pass "
        "--on-bad-rows skip to skip such rows)"
    ], captured.err
    assert "on_bad_rows" not in captured.err and "Traceback" not in captured.err
    assert not (workdir / "r").exists()  # a refused run leaves no folder behind


def test_a_damaged_checkpoint_is_one_warning_line_and_the_run_resumes(tmp_path, capsys):
    """A resumed run that falls back from a damaged newest checkpoint says so in one line."""
    out = tmp_path / "run"
    assert main(["train", "iris", "--epochs", "3", "--checkpoint-every", "5", "--out", str(out)]) == 0
    newest = out / "checkpoints" / "checkpoint.npz"
    assert (out / "checkpoints" / "checkpoint.prev.npz").exists()
    newest.write_bytes(newest.read_bytes()[:100])
    capsys.readouterr()
    assert main(["train", "iris", "--epochs", "4", "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("descend train: warning: ") and "checkpoint.npz is damaged" in lines[0]
    assert "Traceback" not in err and "warnings.warn" not in err
