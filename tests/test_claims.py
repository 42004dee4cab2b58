"""The claims of docs/claims.md, measured small: each test asserts the direction of one claim.

The measurement code is docs/claims.py itself (imported from its path), run with fewer steps,
draws and seeds than the page uses.
"""

from __future__ import annotations

import numpy as np
import pytest
from claims_driver import loaded


@pytest.fixture(scope="module")
def claims():
    with loaded("descend_docs_claims") as module:
        yield module


def test_full_batch_is_smooth_and_sgd_is_jagged(claims):
    m = claims.measure_batching(epochs=2)
    rough = {r["batch_size"]: r["roughness"] for r in m["rows"]}
    assert rough[None] == 0.0
    assert rough[1] > 0.0 and rough[32] > 0.0
    assert claims.verdict_batching(m)


def test_gradient_noise_shrinks_like_one_over_b(claims):
    m = claims.measure_gradient_noise(batch_sizes=(1, 8, 64), draws=100)
    noise = m["noise"]
    assert noise[1] > 10 * noise[64]
    assert -1.2 <= m["slope"] <= -0.8
    # the measured noise follows the exact sigma^2/B (n-B)/(n-1) within sampling error
    assert all(0.5 < noise[b] / m["theory"][b] < 2.0 for b in noise)


def test_gd_stalls_at_the_saddle_while_noise_and_momentum_escape(claims):
    m = claims.measure_saddle(steps=200, seeds=5, noise=2.0)
    assert m["gd_distance"] < 0.1 and m["gd_escape"] is None
    assert m["momentum_escape"] is not None and m["momentum_escape"] < 200
    assert m["noisy_share"] >= 0.6


def test_gd_zigzags_and_momentum_needs_far_fewer_steps(claims):
    m = claims.measure_zigzag(kappa=50.0, steps=250)
    gd, mom = m["gd"], m["momentum"]
    assert gd["flips"] == gd["steps_to_tol"]  # the steep coordinate flips sign on every step
    assert mom["steps_to_tol"] is not None and gd["steps_to_tol"] is not None
    assert mom["steps_to_tol"] < gd["steps_to_tol"] / 2
    assert claims.verdict_zigzag(m) == (True, True)


def test_momentum_overshoots_and_nesterov_bounces_less(claims):
    m = claims.measure_overshoot(steps=200)
    gd, mom, nag = (m["rows"][k] for k in ("sgd", "momentum", "nesterov"))
    assert gd["overshoot_x"] == 0.0 and gd["overshoot_y"] == 0.0 and gd["flips_x"] == 0
    assert mom["overshoot_x"] > 0.1 and mom["flips_x"] >= 2
    assert nag["overshoot_x"] < mom["overshoot_x"]
    assert nag["flips_x"] <= mom["flips_x"]
    assert nag["settle"] is not None and mom["settle"] is not None and nag["settle"] < mom["settle"]


def test_adagrad_rate_decays_while_rmsprop_rate_stays(claims):
    m = claims.measure_adaptive(steps=1000, noises=(1.0,))
    ada = claims._run(m, "adagrad", 1.0)
    rms = claims._run(m, "rmsprop", 1.0)
    assert ada["at"][1000] < 0.15 * ada["at"][10]
    assert -0.7 <= ada["slope"] <= -0.3
    assert rms["spread"] < 10
    # the effective rate read off the path is the one in the optimizer's state buffers
    assert ada["state_check"] < 1e-9 and rms["state_check"] < 1e-9


def test_linear_decay_ends_lower_than_a_constant_lr(claims):
    m = claims.measure_schedule(epochs=5, grid=(0.1,))
    assert m["same"]["decay"] < m["same"]["constant"]
    assert np.isfinite(m["optimal_loss"])


def test_lr_choice_measures_both_horizons_and_the_range_test(claims):
    grid = (0.3, 1.0, 3.0, 10.0)
    m = claims.measure_lr_choice(grid=grid, steps=300, early=50, l2s=(0.0,), lr_find_steps=30)
    r = m["by_l2"][0.0]
    assert r["best_early"] in grid and r["best_end"] in grid
    # on separable data a decayed run keeps gaining from larger lrs: the full-run best is not lower
    assert r["best_end"] >= r["best_early"]
    assert np.all(r["end"] <= r["early"])  # training went on lowering the loss for every lr0
    assert set(r["lr_find"].suggestions) == {"valley", "steep", "min"}


def test_noise_carries_gd_out_of_the_shallow_well(claims):
    m = claims.measure_two_well(noisy=(("sgd", 0.05, 3.0),), lrs=(0.05,), steps=1000, seeds=20)
    assert m["plain"][0.05]["sgd"] == "shallow"
    assert m["noisy"][0]["deep"] >= 0.3


def test_markdown_tables_escape_pipes(claims):
    text = claims.table_md(["|y| > 1", "b"], [[1, None]])
    assert text.splitlines()[0] == "| \\|y\\| > 1 | b |"
    assert text.splitlines()[2] == "| 1 | — |"
