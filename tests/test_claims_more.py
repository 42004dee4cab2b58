"""The claims of docs/claims_more.py, measured small: each test asserts the direction of one claim,
and every command of each claim's Reproduce block runs.

The measurement code is docs/claims_more.py itself (loaded through docs/claims.py, as the script
loads it), run with fewer layers, epochs, steps and starts than the page uses.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from claims_driver import loaded, measured_once, run_reproduce

import descend as ds
from descend.lab.race import race

#: small sizes of each claim's measurement (the page's are the functions' defaults)
SMALL: dict[str, dict[str, Any]] = {
    "vanishing_gradients": {"depth": 6, "width": 16, "epochs": 2, "probe_rows": 128},
    "symmetric_init": {"width": 8, "epochs": 3, "eps": (1e-4,), "activations": ("tanh", "relu")},
    "momentum_memory": {"horizon": 400, "orbit_betas": (0.5, 1.0), "steps": 600, "shown_steps": 50},
    "lr_range": {
        "mults": (0.01, 0.5, 0.99, 1.1, 8.0),
        "steps": 40,
        "hidden": 8,
        "quad_steps": 30,
        "curvature": (1.1,),
        "probe_rows": 128,
    },
    "saddles_high_dim": {"dims": (1, 2, 5), "starts": 12, "features": 100},
    "initial_point": {
        "functions": (("two_well", 0.02), ("rastrigin", 0.002)),
        "optimizers": ("sgd", "momentum", "adam"),
        "grid": 5,
        "steps": 300,
    },
}


@pytest.fixture(scope="module")
def claims():
    with loaded("descend_docs_claims_more") as module:
        yield module  # docs/claims.py loads docs/claims_more.py into its CLAIMS


@pytest.fixture(scope="module")
def more(claims):
    return sys.modules["claims_more"]


@pytest.fixture(scope="module")
def measured(claims):
    return measured_once(claims, SMALL)


def test_every_claim_of_the_file_is_registered_with_small_sizes(claims, more):
    assert set(more.CLAIMS) == set(SMALL)
    assert all(claims.CLAIMS[k] == more.CLAIMS[k] for k in more.CLAIMS)


def test_sigmoid_vanishes_relu_he_keeps_and_a_large_init_explodes(measured, more):
    m = measured("vanishing_gradients")
    r = {(x["activation"], x["init"]): x for x in m["rows"]}
    for init in ("Xavier", "He"):  # every layer of sigmoid's derivative (<= 1/4) shrinks it
        assert r["sigmoid", init]["ratio"] < 1e-2
        assert np.all(np.diff(r["sigmoid", init]["norms"]) > 0)  # layer by layer, towards the input
    assert r["tanh", "small"]["ratio"] < 1e-6
    he, large = r["relu", "He"], r["relu", "large"]
    assert 0.1 < he["ratio"] < 10 and he["diverged"] is None
    assert np.min(large["norms"]) > 100 * np.max(he["norms"]) and large["diverged"] is not None
    assert "vanishing_gradients" in r["sigmoid", "Xavier"]["flags"]
    assert "vanishing_gradients" not in he["flags"]
    assert more.verdict_vanishing(m)["large init explodes (ReLU)"]


def test_equal_initial_weights_stay_equal_and_a_random_init_does_not(measured, more):
    m = measured("symmetric_init")
    equal = [r for r in m["runs"] if r["init"].startswith("equal weights")]
    assert {r["activation"] for r in equal} == {"tanh", "relu"} and len(equal) == 3
    for r in equal:  # exactly equal after training, one distinct unit at every epoch
        assert r["spread"] == 0.0
        assert np.all(r["rank"] == 1) and np.all(r["duplicate"] == 1.0)
        assert len(r["rank"]) == m["epochs"] + 1
    collapsed = next(r for r in equal if r["data"] == "digits" and r["activation"] == "tanh")
    assert "symmetric_units" in collapsed["flags"]
    he = next(r for r in m["runs"] if r["data"] == "digits" and r["init"] == "He (random)")
    assert np.all(he["rank"] == m["width"]) and he["spread"] > 0.1
    assert he["test_acc"] > collapsed["test_acc"] + 0.3
    noisy = next(r for r in m["runs"] if "+ N(0" in r["init"])
    assert noisy["rank"][-1] > 1  # the symmetric state is unstable
    assert all(more.verdict_symmetric(m).values())


def test_momentum_weights_past_gradients_by_beta_to_the_age(measured, more):
    m = measured("momentum_memory")
    for r in m["memory"]:
        beta, w = r["beta"], r["weights"]
        np.testing.assert_allclose(w[:20], beta ** np.arange(20), rtol=1e-12, atol=1e-300)
        if 0 < beta < 0.99:
            assert r["total"] == pytest.approx(1 / (1 - beta), rel=1e-6)
            assert r["terminal"] == pytest.approx(1 / (1 - beta), rel=1e-6)
            assert r["window"] <= 1 / (1 - beta) + 1
    assert next(r for r in m["memory"] if r["beta"] == 1.0)["total"] == m["horizon"]
    one = next(r for r in m["orbits"] if r["beta"] == 1.0)
    half = next(r for r in m["orbits"] if r["beta"] == 0.5)
    assert one["settle"] is None and one["late_early"] > 0.5 and one["q_drift"] < 1e-9
    np.testing.assert_allclose(one["period"], one["period_theory"], rtol=0.02)
    assert half["settle"] is not None and half["late_early"] < 1e-6
    assert all(more.verdict_momentum_memory(m).values())


def test_lr_crawls_low_and_overshoots_past_two_over_lambda_max(measured, more):
    m = measured("lr_range")
    lsq = m["problems"][0]
    assert lsq["last_stable"] == 0.99 and lsq["onset"] == 1.1  # least squares: exactly at 2/lambda_max
    for p in m["problems"]:
        assert p["runs"][0]["final"] > 2 * p["best"]["final"]  # crawling at 0.01 x the limit
    assert lsq["runs"][-1]["diverged"] is not None  # 8 x the limit
    relu = {r["mult"]: r for r in m["problems"][1]["runs"]}
    assert relu[1.1]["diverged"] is None  # a network above its initial limit can still train
    # the limit is diagnose's: 2 over the top Hessian eigenvalue at the start
    assert lsq["lr_max"] == pytest.approx(2 / lsq["lambda_max"])
    assert m["quad_lr_max"] == pytest.approx(2 / m["quad_lambda"])
    watched = [r for r in m["problems"][1]["runs"] if r["curvature"] is not None]
    assert [r["mult"] for r in watched] == [1.1] and len(watched[0]["curvature"]["lambda_max"]) >= 5
    parts = more.verdict_lr_range(m)
    assert parts["least squares: unstable from 2/λ_max on (within 2%)"] is False  # the grid has no 1.01
    assert parts["too low an lr crawls (smallest lr: final loss > 2x the best)"]


def test_random_functions_have_fewer_minima_among_critical_points_in_more_dimensions(measured, more):
    m = measured("saddles_high_dim")
    rows = {r["n"]: r for r in m["rows"]}
    assert rows[1]["saddles"] == 0  # in 1-D a critical point is a minimum or a maximum
    assert all(r["found"] >= 3 for r in rows.values())
    assert rows[5]["share_minima"] < rows[1]["share_minima"]
    assert rows[5]["share_saddles"] > 0.5
    # the index read off diagnose's spectrum is the count of negative eigenvalues of the Hessian
    for r in rows.values():
        for p, k in zip(r["points"], r["index"], strict=True):
            assert np.sum(np.linalg.eigvalsh(r["field"].hessian(p)) < 0) == k
            assert np.linalg.norm(r["field"].grad(p)) < 1e-4
    assert all(more.verdict_saddles(m).values())


def test_the_start_decides_the_minimum(measured, more):
    m = measured("initial_point")
    two, rast = m["functions"]
    for fm in m["functions"]:
        for r in fm["rows"]:
            assert r["converged"] == 1.0 and not r["diverged"]
            assert r["distinct"] > 1
    gd = next(r for r in two["rows"] if r["optimizer"] == "sgd")
    assert 0 < gd["global"] < 1 and gd["nearest"] > 0.5
    assert all(r["nearest"] == 1.0 for r in rast["rows"])  # rastrigin: every run stays in its cell
    assert all(more.verdict_initial_point(m).values())


@pytest.mark.parametrize("name", ["two_well", "rastrigin"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_all_starts_as_one_objective_equal_separate_runs(more, name, optimizer):
    f = ds.functions.get(name)
    starts = np.array([[1.3, -0.7], [-1.9, 0.4], [0.2, 1.1]])
    ends, diverged = more._from_starts(f, starts, optimizer, 0.01, 120)
    assert not diverged
    for s, x in zip(starts, ends, strict=True):
        alone = race(f, [optimizer], lrs=0.01, steps=120, start=s).entries[0].path[-1]
        np.testing.assert_array_equal(x, alone)


#: appended to a printed command to run it small (a later flag overrides an earlier one)
SMALLER = {"race": ["--steps", "30", "--no-gif"], "train": ["--epochs", "1"], "diagnose": []}


@pytest.mark.slow
@pytest.mark.parametrize("key", list(SMALL))
def test_every_reproduce_command_runs(claims, measured, key, tmp_path, monkeypatch, capsys):
    run_reproduce(
        claims, key, measured, SMALLER, tmp_path=tmp_path, monkeypatch=monkeypatch, capsys=capsys, check=check
    )


def check(argv: list[str], out: str) -> None:
    """What a command's output says about its claim, where it says something in a few steps."""
    if argv[0] == "diagnose" and "--activation" in argv:  # the deep nets of vanishing_gradients
        ratio = float(re.search(r"first / last layer gradient norm +(\S+)", out).group(1))
        if argv[argv.index("--activation") + 1] == "sigmoid":
            assert ratio < 1e-2, out
        else:
            assert 0.1 < ratio < 10 and "vanishing_gradients" not in out, out
    if argv[0] == "race" and "momentum.momentum=1" in argv:
        folder = Path(re.search(r"wrote \d+ files to (\S+)", out).group(1))
        final = json.loads((folder / "summary.json").read_text())["results"][0]
        assert final["distance_to_nearest_minimum"] > 0.1  # still orbiting
