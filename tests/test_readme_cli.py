"""Every command line in the README's "Command line" section runs, and its comment holds.

The commands run in order in one folder (``report runs/race-*`` re-draws the races before it);
each comment's claim is checked against what the command printed or wrote.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
import time
from pathlib import Path

import pytest

from descend import __version__
from descend.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[tuple[list[str], str]]:
    """``(argv without 'descend', comment)`` for each command of the Command line block."""
    text = README.read_text()
    section = text[text.index("## Command line") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
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
    assert {"race", "train", "lr-find", "schedule", "compare-batching", "report", "demo"} <= names


def folder_of(text: str) -> Path:
    return Path(re.search(r"(?:wrote \d+ files to|is in) (\S+?)\)?(?: \(open|\)|$)", text, re.M).group(1))


def summary_of(text: str) -> dict:
    return json.loads((folder_of(text) / "summary.json").read_text())


@pytest.mark.slow
def test_every_readme_command_runs_and_its_comment_holds(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
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
        elif argv[:2] == ["demo", "--quick"]:
            assert cost <= 15.0, f"demo --quick took {cost:.1f} s"
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
