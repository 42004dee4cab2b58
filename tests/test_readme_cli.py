"""Every command line in the README's "Command line" section runs, and its comment holds; and the
cluster example of "Training on a cluster" finishes in seconds.

The commands run in order in one folder (``report runs/race-*`` re-draws the races before it);
each comment's claim is checked against what the command printed or wrote. The whole job (train,
predict) runs on a ``customers.csv`` like the one the README describes.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from descend import __version__
from descend.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    """The README's section ``## title`` (or ``### title``), up to the next one of its level."""
    text = README.read_text()
    level = re.search(rf"^(#+) {re.escape(title)}$", text, re.M)
    assert level, title
    rest = text[level.end() :]
    end = re.search(rf"^#{{1,{len(level.group(1))}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def readme_commands(title: str = "Command line") -> list[tuple[list[str], str]]:
    """``(argv without 'descend', comment)`` for each command of the section's bash blocks, in order."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", section(title), re.S):
        out += _commands(block)
    return out


def _commands(block: str) -> list[tuple[list[str], str]]:
    out = []
    for line in block.splitlines():
        code, comment = _split_comment(line)
        for cmd in code.split(" ; "):
            words = shlex.split(cmd)
            assert words and words[0] == "descend", line
            out.append((words[1:], comment.strip()))
    return out


def _split_comment(line: str) -> tuple[str, str]:
    """``(code, comment)``: the comment starts at the first ``#`` outside quotes after a space."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] == " "):
            return line[:i], line[i + 1 :].strip()
    return line, ""


def test_the_readme_lists_commands():
    names = {argv[0] for argv, _ in readme_commands() if argv}
    assert {"race", "train", "predict", "lr-find", "schedule", "compare-batching", "report", "demo"} <= names


def customers(path: Path, n: int, seed: int, *, target: bool = True) -> None:
    """A CSV like the README's ``customers.csv``: a ``customer_id``, columns far apart in scale
    and a yes/no column ``churned`` (left out, and the columns shuffled, for new customers)."""
    rng = np.random.default_rng(seed)
    income = rng.normal(5e4, 1.5e4, n)
    share = rng.gamma(2.0, 1e-3, n)
    tenure = rng.integers(1, 120, n)
    z = (income - 5e4) / 1.5e4 - (share - 2e-3) / 1.4e-3 + (tenure - 60) / 35
    cols = {
        "customer_id": [f"C{v:07d}" for v in rng.permutation(10**6)[:n]],
        "income": income.round(2),
        "share": share,
        "tenure": tenure,
    }
    if target:
        cols["churned"] = np.where(rng.random(n) < 1 / (1 + np.exp(-z)), "yes", "no")
    names = list(cols) if target else ["tenure", "customer_id", "share", "income"]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        w.writerows(zip(*(cols[c] for c in names), strict=True))


def test_the_whole_job_in_python_runs_on_the_same_csv(tmp_path, monkeypatch):
    """The whole job's Python block (``py``: it needs the user's CSV, which this test writes)."""
    import descend as ds

    monkeypatch.chdir(tmp_path)
    customers(tmp_path / "customers.csv", 3000, seed=0)
    customers(tmp_path / "new_customers.csv", 400, seed=1, target=False)
    (block,) = re.findall(r"```py\n(.*?)```", section("The whole job: train, inspect, predict"), re.S)
    namespace: dict = {"ds": ds}
    exec(compile(block, "README.md", "exec"), namespace)
    run = namespace["run"]
    assert run.feature_names == ("income", "share", "tenure") and run.quality.accuracy > 0.6
    assert any("left out column 'customer_id'" in n for n in run.notes)
    with open(tmp_path / "preds.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 400 and list(rows[0]) == ["customer_id", "prediction", "proba_no", "proba_yes"]


def test_the_whole_job_is_commands_of_the_command_line_section():
    job = _commands(
        re.search(r"```bash\n(.*?)```", section("The whole job: train, inspect, predict"), re.S)[1]
    )
    assert [argv[0] for argv, _ in job] == ["train", "predict", "report"]
    assert readme_commands()[: len(job)] == job  # run first by the test below


def folder_of(text: str) -> Path:
    return Path(re.search(r"(?:wrote \d+ files to|is in) (\S+?)\)?(?: \(open|\)|$)", text, re.M).group(1))


def summary_of(text: str) -> dict:
    return json.loads((folder_of(text) / "summary.json").read_text())


@pytest.mark.slow
def test_every_readme_command_runs_and_its_comment_holds(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    customers(tmp_path / "customers.csv", 5000, seed=0)
    customers(tmp_path / "new_customers.csv", 700, seed=1, target=False)
    checked = []
    for argv, comment in readme_commands():
        argv = [m for a in argv for m in (sorted(glob.glob(a)) or [a] if "*" in a else [a])]
        t0, c0 = time.perf_counter(), time.process_time()
        code = main(argv)
        # wall time inflates when other jobs share the CPUs, CPU time when kernels use threads:
        # the smaller of the two is what the command itself cost
        cost = min(time.perf_counter() - t0, time.process_time() - c0)
        out, err = capsys.readouterr()
        what = " ".join(argv)
        if "diverged" in comment:
            # one line, exit code 1, and the run folder with the curve up to the divergence
            assert code == 1, (what, err)
            # stderr: the progress log (not a terminal here), then the one line
            lines = [line for line in err.strip().splitlines() if not line.startswith(("fit ", "step "))]
            assert len(lines) == 1 and lines[0].startswith("descend train: diverged at step "), err
            assert "try a smaller lr" in lines[0] and "Traceback" not in err + out
            folder = folder_of(lines[0])
            assert (folder / "metrics.csv").read_text().count("\n") > 10
            assert summary_of(lines[0])["diverged"]["step"] > 1
            checked.append(what)
            continue
        assert code == 0, (what, out, err)
        if argv == ["--version"]:
            assert out.strip() == f"descend {__version__}"
        elif argv[:2] == ["train", "customers.csv"]:
            # "prints the features, the id column it left out, why it stopped and the validation accuracy"
            assert "features (3): income, share, tenure" in out
            assert "left out: customer_id (an identifier by its name)" in out
            assert re.search(r"^(converged|reached max_epochs=100) .*; \d+ steps with Adam", out, re.M), out
            assert re.search(r"^validation \(\d[\d,]* rows\): accuracy 0\.[6-9]\d+$", out, re.M), out
            assert (tmp_path / "runs" / "churn" / "model.npz").exists()
        elif argv[0] == "predict":
            # "one row per customer: customer_id, prediction, proba_no, proba_yes"
            with open(tmp_path / "preds.csv", newline="") as fh:
                rows = list(csv.DictReader(fh))
            assert list(rows[0]) == ["customer_id", "prediction", "proba_no", "proba_yes"]
            with open(tmp_path / "new_customers.csv", newline="") as fh:
                ids = [r["customer_id"] for r in csv.DictReader(fh)]
            assert [r["customer_id"] for r in rows] == ids and {r["prediction"] for r in rows} <= {
                "no",
                "yes",
            }
            assert "predicted 700 rows of new_customers.csv with runs/churn: wrote preds.csv" in out
        elif argv == ["report", "runs/churn"]:
            assert "Plotly.newPlot" in (tmp_path / "runs" / "churn" / "report.html").read_text()
        elif argv[:2] == ["demo", "--quick"]:
            # 21 rules tuned on 4 functions, 3 races, batching, an LR range test: 10-16 s alone on
            # 2 quiet cores, 23 s once inside the whole suite's process (fresh-clone CI, b9872a4);
            # the bound catches a gross regression (L-BFGS's lr tuning had made it 67 s)
            assert cost <= 40.0, f"demo --quick took {cost:.1f} s"
            assert (folder_of(out) / "report.html").exists()
        elif "saddle" in argv:
            noisy = [r["final_loss"] for r in summary_of(out)["results"]]
            assert sum(v < -1.0 for v in noisy) == 5, noisy  # "with noise 5 of 6 escape"
            quiet = [a for a in argv if a not in ("--noise", "0.05")]
            assert main([*quiet, "--no-gif"]) == 0
            still = [r["final_loss"] for r in summary_of(capsys.readouterr().out)["results"]]
            assert all(v > -1e-9 for v in still), still  # "(without, none do)"
        elif "--tune" in argv:
            assert summary_of(out)["lr_rule"].startswith("tuned: best of (")
            assert "central differences" in out
        elif "quadratic:kappa=50" in argv:
            rows = {r["optimizer"]: r for r in summary_of(out)["results"]}
            assert rows["momentum"]["steps_to_tol"] == 39 and rows["sgd"]["steps_to_tol"] == 180
        elif "98% validation accuracy" in comment:
            assert summary_of(out)["validation"]["accuracy"] >= 0.97
        elif argv[0] == "lr-find":
            assert "recommended lr: " in out and summary_of(out)["recommended"] > 0
        elif "--monitor" in argv:
            with open(tmp_path / "runs" / "mon" / "monitor.csv", newline="") as fh:
                rows = list(csv.DictReader(fh))
            assert [int(r["step"]) for r in rows][:2] == [5, 10]
            assert {"grad_norm/layer0", "update_ratio/layer1"} <= set(rows[0])
        elif argv[:2] == ["diagnose", "runs/mon"]:
            folder = folder_of(out)
            assert {"spectrum.png", "gradients.png", "noise.png"} <= {p.name for p in folder.iterdir()}
            assert "measurement" in out and "noise scale B_simple" in out
        elif argv[0] == "diagnose":
            assert "diagnosis of mlp" in out and "vanishing_gradients" in out.splitlines()[1]
            relu = [a for a in argv if a not in ("--activation", "sigmoid")]
            assert main(relu) == 0
            assert "no problem found" in capsys.readouterr().out  # "(with relu: no flag)"
        elif argv[0] == "compare-batching":
            assert "full batch" in out and "stochastic (B=1)" in out and "per second" in comment
            assert "train s" in out
        elif argv[0] == "report":
            html = (tmp_path / "all.html").read_text()
            assert html.count("Race on ") >= 4  # the four races above, merged
        elif argv[0] == "functions":
            assert "rosenbrock" in out and "two_well" in out
        elif argv[0] == "optimizers":
            assert "adamw" in out
        elif argv[0] == "schedule":
            assert "MultiStep(lr0=0.1, milestones=(300, 600), gamma=0.1)" in out
        checked.append(what)
    assert len(checked) == len(readme_commands())


@pytest.mark.slow
def test_the_cluster_example_of_the_command_line_finishes_in_seconds(tmp_path):
    """``descend train ... --dask local:2`` as a user runs it (the script, in a fresh process)."""
    pytest.importorskip("distributed")
    (local,) = [line for line in section("Training on a cluster").splitlines() if "--dask local:" in line]
    code, comment = _split_comment(local)
    assert "about 10 s" in comment
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for cmd in code.split(" ; "):
        words = shlex.split(cmd)
        assert words[0] == "descend"
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "descend", *words[1:], *(["--out", "run"] if words[1] == "train" else [])],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        seconds = time.perf_counter() - t0
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    # seconds, not minutes (measured about 10 s on 2 shared cores, 6 minutes before the full batch)
    assert seconds < 60, f"the cluster example took {seconds:.0f} s"
    assert re.search(r"^converged at step \d+ ", done.stdout, re.M), done.stdout
    assert re.search(r"^validation \([\d,]+ rows\): accuracy 0\.7[5-9]", done.stdout, re.M), done.stdout
    assert (tmp_path / "run" / "model.npz").exists()
