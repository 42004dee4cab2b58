"""The lab's lr tuning and suite: plain result objects with the numbers the CLI prints."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend.lab import LR_GRID, run_suite, tune_lr


def test_tune_picks_the_best_stable_lr_on_a_quadratic():
    f = ds.functions.get("quadratic", kappa=10)
    res = tune_lr(f, f.start, "sgd", steps=100)
    # GD on curvatures 1..10 is stable for lr < 2/10; the fastest stable grid value is 0.1
    assert res.lr == 0.1
    start = f(f.start)
    assert all(res.scores[lr] > start for lr in LR_GRID if lr > 0.2)  # unstable: they blow up
    assert math.isinf(res.scores[10.0])  # ... to overflow, which counts as divergence
    assert set(res.scores) == set(LR_GRID)


def test_tune_is_not_fooled_by_a_chaotic_lucky_end():
    f = ds.functions.get("rosenbrock")
    res = tune_lr(f, f.start, "adam", steps=1000)
    final = ds.minimize(f, f.start, optimizer="adam", lr=res.lr, max_steps=1000, tol=None)
    assert final.fun < 1e-3


def test_tune_stops_a_run_at_tol_and_keeps_its_final_loss():
    f = ds.functions.get("quadratic", kappa=10)
    res = tune_lr(f, f.start, "sgd", grid=(0.1,), steps=1000, tol=1e-6)
    run = ds.minimize(f, f.start, optimizer="sgd", lr=0.1, max_steps=1000, tol=1e-6)
    assert run.success and run.nit < 500  # stopped early: the second half is its final loss
    assert res.scores[0.1] == pytest.approx(run.fun, rel=1e-12)
    untuned = tune_lr(f, f.start, "sgd", grid=(0.1,), steps=1000)  # no tol: the whole window
    assert untuned.scores[0.1] < res.scores[0.1]


def test_tune_rejects_bad_arguments():
    f = ds.functions.get("sphere")
    with pytest.raises(ValueError, match="tune_lr: steps must satisfy steps >= 1, got 0"):
        tune_lr(f, f.start, "sgd", steps=0)
    with pytest.raises(ValueError, match="grid must hold"):
        tune_lr(f, f.start, "sgd", grid=())
    with pytest.raises(ValueError, match="tune_lr: tol must satisfy tol >= 0"):
        tune_lr(f, f.start, "sgd", tol=-1.0)


def test_suite_rows_match_independent_runs():
    res = run_suite(["beale"], ["adam", "momentum"], max_steps=300, lrs={"adam": 0.1, "momentum": 0.01})
    assert [r.optimizer for r in res.rows] == ["adam", "momentum"]
    f = ds.functions.get("beale")
    for row in res.rows:
        direct = ds.minimize(f, f.start, optimizer=row.optimizer, lr=row.lr, max_steps=300, tol=1e-6)
        assert row.loss == direct.fun and row.steps == direct.nit
        assert row.distance == pytest.approx(np.linalg.norm(direct.x - np.array([3.0, 0.5])))
        assert row.found == "global"
    assert res.lr_rule == "given"
