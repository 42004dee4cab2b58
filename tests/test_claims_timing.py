"""The claims of docs/claims_timing.py, measured small, and README's verdict line.

The measurement code is docs/claims_timing.py itself (loaded through docs/claims.py, as the
script loads it), run with fewer batch sizes, rows, lrs and rounds than the page uses. Timings
on a loaded machine are noise: the tests assert structure, counts that come from seeded runs
(updates and samples to a target, losses) and only directions that hold by a wide margin.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from claims_driver import loaded, measured_once, run_reproduce

import descend as ds
from descend.lab.tune import LR_GRID

ROOT = Path(__file__).resolve().parents[1]

#: small sizes of each claim's measurement (the page's are the functions' defaults)
SMALL: dict[str, dict[str, Any]] = {
    "minibatch_hardware": {
        "batch_sizes": (1, 16, None),
        "steps": 6,
        "rounds": 1,
        "grad_time": 0.001,
        "lrs": (1.0, 0.1, 0.01),
        "target": 0.3,
        "max_epochs": 30,
        "evals_per_epoch": 10,
    },
    "sgd_data_size": {"sizes": (1_000, 10_000, 100_000), "rounds": 1},
    "adagrad_features": {
        "n": 3000,
        "sparse_features": 20,
        "epochs": 2,
        "lrs": {"sgd": tuple(LR_GRID[:9]) + (1e-5, 3.16e-5, 1e-6), "adagrad": LR_GRID[2:]},
        "mlp_rules": ("adagrad", "rmsprop"),
        "mlp_epochs": 2,
        "mlp_lrs": (0.01, 0.1, 1.0),
    },
    "power_of_two": {
        "batch_sizes": (63, 64, 65),
        "widths": (64,),
        "steps": 5,
        "rounds": 1,
        "grad_time": 0.001,
    },
}


@pytest.fixture(scope="module")
def claims():
    with loaded("descend_docs_claims_timing") as module:
        yield module  # docs/claims.py loads docs/claims_timing.py into its CLAIMS


@pytest.fixture(scope="module")
def timing(claims):
    return sys.modules["claims_timing"]


@pytest.fixture(scope="module")
def measured(claims):
    return measured_once(claims, SMALL)


def test_every_claim_of_the_file_is_registered_with_small_sizes(claims, timing):
    assert set(timing.CLAIMS) == set(SMALL)
    assert all(claims.CLAIMS[k] == timing.CLAIMS[k] for k in timing.CLAIMS)
    assert list(claims.CLAIMS)[-len(SMALL) :] == list(timing.CLAIMS)  # after the others, in order


# ----------------------------------------------------------------------------------- helpers


def test_grid_is_lab_tunes_half_decade_grid_extended(timing):
    assert timing.grid(1e-4, 10.0) == LR_GRID
    assert timing.grid(1e-6, 1e-4) == (1e-6, 3.16e-6, 1e-5, 3.16e-5, 1e-4)
    assert timing.grid(0.3, 3.0) == (0.316, 1.0)


def test_side_by_side_alternates_and_drops_the_warm_up(timing):
    calls: list[str] = []

    def run(name: str) -> Any:
        def go() -> float:
            calls.append(name)
            return float(len(calls))

        return go

    got = timing.side_by_side({"a": run("a"), "b": run("b")}, rounds=3)
    assert calls == ["a", "b"] * 4  # one warm-up each, then a, b in every round
    assert got == {"a": [3.0, 5.0, 7.0], "b": [4.0, 6.0, 8.0]}


def test_watch_stops_at_the_target_and_keeps_scoring_off_the_clock(timing):
    X = np.random.default_rng(0).normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    scores: list[float] = []

    def score(run: Any) -> float:
        value = float(run.model.loss(run.params, X, y))
        scores.append(value)
        return value

    watch = timing.Watch(5, score, target=0.05)
    run = timing.train(
        ds.models.LinearRegression(dtype="float64"),
        (X, y),
        watch,
        optimizer="sgd",
        lr=0.1,
        batch_size=10,
        epochs=50,
        standardize_target=False,
    )
    hit = watch.hit
    assert hit is not None and hit["updates"] % 5 == 0 and len(run.history.steps["step"]) == hit["updates"]
    assert scores[-1] <= 0.05 < scores[-2] and len(scores) == hit["updates"] // 5
    assert hit["samples"] == 10 * hit["updates"]
    assert 0 < hit["seconds"] <= run.history.steps["time"][-1]
    blown = timing.Watch(1, limit=1e3)
    timing.train(
        ds.models.LinearRegression(dtype="float64"),
        (X, y),
        blown,
        optimizer="sgd",
        lr=50.0,
        batch_size=10,
        epochs=5,
    )
    assert blown.diverged is not None and blown.hit is None


# --------------------------------------------------------------------- 13. mini-batches, hardware


def test_minibatches_raise_throughput_and_need_fewer_updates_more_samples(measured, timing):
    m = measured("minibatch_hardware")
    by = {r["batch_size"]: r for r in m["rows"]}
    assert set(by) == {1, 16, None} and by[None]["rows"] == m["n"] == 1797
    for r in m["rows"]:
        assert r["step"] > 0 and r["grad"] > 0
        assert r["samples_per_s"] == pytest.approx(r["rows"] / r["step"])
    # 16 rows for the price of a few: even a loaded machine does not hide a 3x gap
    assert by[16]["samples_per_s"] > 3 * by[1]["samples_per_s"]
    # seeded counts: bigger batches need fewer updates but more samples to the same loss
    assert by[1]["updates"] > by[16]["updates"] > by[None]["updates"]
    assert by[1]["samples"] < by[None]["samples"]
    assert by[None]["epochs"] == by[None]["updates"]
    for r in m["rows"]:
        assert r["seconds"] == pytest.approx(r["samples"] / r["samples_per_s"])
        tried = {t["lr"]: t for t in r["tried"]}
        assert tried[r["lr"]]["updates"] == r["updates"]
        assert all(t.get("updates", math.inf) >= r["updates"] for t in r["tried"])
    assert by[1]["tried"][0]["diverged"]  # lr 1 is far too large for one sample at a time
    assert all(r["samples_per_s_1thread"] > 0 for r in m["rows"])  # BLAS on one thread, side by side
    command = {  # each B's train command at its own best lr
        b: f"descend train digits --hidden 64 --optimizer sgd --lr {r['lr']:g} --batch-size "
        f"{timing.batch_label(b)} --epochs 2 --val-fraction 0"
        for b, r in by.items()
    }
    commands = timing.section_hardware(m).commands[1:]  # B = 1, the fastest B, the full batch
    assert commands[0] == command[1] and commands[-1] == command[None]
    assert set(commands) <= set(command.values()) and len(set(commands)) == len(commands)


# ------------------------------------------------------------------------ 14. SGD and data size


def test_excess_is_the_models_loss_over_the_optimum(timing):
    p = timing.size_problem(2000, 5, seed=1)
    model = ds.models.LinearRegression(dtype="float64")
    run = ds.fit(
        model,
        (p["X"], p["y"]),
        optimizer="sgd",
        lr=0.01,
        batch_size=8,
        max_steps=30,
        standardize=False,
        standardize_target=False,
        progress=False,
    )
    loss = model.loss(run.params, p["X"], p["y"])
    assert timing.excess(p)(run) == pytest.approx(loss - p["optimal"], rel=1e-9)


def test_sgd_needs_the_same_samples_whatever_n_and_gd_a_pass_per_update(measured, timing):
    m = measured("sgd_data_size")
    sgd = timing._by_run(m, "SGD (B=1)")
    gd = timing._by_run(m, "full-batch GD")
    samples = [r["samples"] for r in sgd]
    assert all(r["reached"] for r in m["rows"]) and all(r["same_counts"] for r in m["rows"])
    assert max(samples) <= 2 * min(samples)
    assert all(r["passes"] < 1 for r in sgd if r["n"] >= 10_000)
    assert len({r["updates"] for r in gd}) == 1  # n does not change GD's steps on this problem
    assert all(r["samples"] == r["updates"] * r["n"] for r in gd)
    parts = timing.verdict_data_size(m)
    assert parts["SGD's samples to the target do not grow with n (largest / smallest ≤ 2)"]
    assert parts["SGD reaches it before one pass over the data (n ≥ 10x the smallest)"]


# ---------------------------------------------------------------------- 16. AdaGrad and features


def test_adagrad_beats_sgd_on_ill_scaled_and_sparse_features_until_standardized(measured, timing):
    m = measured("adagrad_features")
    ps = {p["name"]: p for p in m["problems"]}
    assert set(ps) == {"ill-scaled", "sparse"}
    for p in m["problems"]:
        assert timing._ratio(p, False) > 1.05  # AdaGrad lower on the features as given
        assert timing._ratio(p, True) < 1.05  # and no better once they are standardized
        for r in p["runs"]:
            assert r["best"] is not None
            assert [t["lr"] for t in r["tried"]] == sorted(m["lrs"][r["rule"]], reverse=True)
            # an excess over the exact least-squares optimum is never below it (float32 rounding)
            assert all(t["score"] > -1e-4 * p["optimal"] for t in r["tried"])
            assert r["best"]["score"] == min(t["score"] for t in r["tried"])
    assert ps["ill-scaled"]["scale_ratio"] > 1e3
    assert 0 < ps["sparse"]["rarest"] < 0.01
    sgd_given = next(r for r in ps["ill-scaled"]["runs"] if r["rule"] == "sgd" and not r["standardized"])
    assert any(t["diverged"] is not None for t in sgd_given["tried"])  # ×100 columns: lr 1 blows up
    assert {r["rule"] for r in m["mlp"]} == {"adagrad", "rmsprop"}
    for r in m["mlp"]:
        assert r["best"] is not None and 0.5 < r["best"]["test_accuracy"] <= 1
    parts = timing.verdict_adagrad_features(m)
    assert parts["ill-scaled features: tuned AdaGrad ends lower than tuned SGD"]
    assert parts["sparse features: tuned AdaGrad ends lower than tuned SGD"]
    assert parts["standardized, AdaGrad's advantage vanishes (every problem)"]


# ---------------------------------------------------------------------- 18. powers of two


def test_power_of_two_advantage_is_measured_against_both_neighbours(measured, timing):
    m = measured("power_of_two")
    assert [s["label"] for s in m["series"]] == ["fit step, hidden 64", "loss_and_grad, hidden 64"]
    for s in m["series"]:
        per = s["samples_per_s"]
        assert set(s["advantage"]) == {64}
        assert s["advantage"][64] == pytest.approx(per[64] / ((per[63] + per[65]) / 2) - 1)
        assert all(per[b] == pytest.approx(b / s["seconds"][b]) for b in (63, 64, 65))
    parts = timing.verdict_power_of_two(m)
    assert len(parts) == 2 and all(isinstance(v, bool) for v in parts.values())


# ------------------------------------------------------------------------- README's verdict line


def test_readme_line_matches_the_verdicts_of_the_claims_page(claims):
    verdicts = claims.page_verdicts(claims.MARKDOWN.read_text())
    assert verdicts and set(verdicts) <= {"holds", "holds in part", "does not hold"}
    line = claims.verdict_line(verdicts)
    readme = (ROOT / "README.md").read_text().splitlines()
    assert line in readme, "README.md's verdict line is stale: run python docs/claims.py --readme"


def test_verdict_line_counts_and_agrees_in_number(claims, tmp_path):
    line = claims.verdict_line(["holds", "holds in part", "holds", "does not hold"])
    assert line.startswith("[`docs/claims.md`](docs/claims.md) measures 4 claims of the study notes: ")
    assert "2 hold, 1 holds in part, 1 does not hold." in line and line.endswith(claims.README_MARK)
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{claims.verdict_line(['holds'])}\nb\n")
    claims.write_readme_line(line, readme)
    assert readme.read_text() == f"a\n{line}\nb\n"


# ------------------------------------------------------------------------- Reproduce commands

#: appended to a printed command to run it small (a later flag overrides an earlier one)
SMALLER = {"train": ["--epochs", "1", "--no-progress"], "make-data": ["--rows", "3000"]}


@pytest.mark.slow
@pytest.mark.parametrize("key", list(SMALL))
def test_every_reproduce_command_runs(claims, measured, key, tmp_path, monkeypatch, capsys):
    def check(argv: list[str], out: str) -> None:
        if argv[0] == "train":  # the page's timing notes read each step's time from metrics.csv
            folder = Path(re.search(r"wrote \d+ files to (\S+)", out).group(1))
            head = (folder / "metrics.csv").read_text().splitlines()[0].split(",")
            assert "time" in head and "samples_seen" in head, head

    kw = dict(tmp_path=tmp_path, monkeypatch=monkeypatch, capsys=capsys, check=check)
    assert len(run_reproduce(claims, key, measured, SMALLER, **kw)) >= 2
    assert [p.name for p in (tmp_path / "pictures").glob("*.png")] == [f"{key}.png"]
