"""Every ``descend`` command in the Reproduce blocks of docs/claims.md's first ten claims runs as
printed (with flags appended that make it small: a later flag overrides an earlier one).

The commands are those the page prints, made by each claim's own section function from a small
measurement (the numbers in them, such as a tuned lr, come from the measurement). The claims of
docs/claims_more.py and docs/claims_timing.py have the same test in their own test files.
"""

from __future__ import annotations

from typing import Any

import pytest
from claims_driver import loaded, measured_once, run_reproduce

#: small measurements of the first ten claims (the page's sizes are the functions' defaults)
SMALL: dict[str, dict[str, Any]] = {
    "batching": {"epochs": 2},
    "gradient_noise": {"batch_sizes": (1, 8, 64), "draws": 100},
    "saddle": {"steps": 200, "seeds": 5, "noise": 2.0},
    "zigzag": {"kappa": 50.0, "steps": 250},
    "momentum_overshoot": {"steps": 200},
    "nesterov_bounces": {"steps": 200},
    "adagrad_rmsprop": {"steps": 1000, "noises": (0.0, 1.0)},
    "linear_decay": {"epochs": 5, "grid": (0.1,)},
    "lr_choice": {
        "grid": (0.3, 1.0, 3.0, 10.0),
        "steps": 300,
        "early": 50,
        "l2s": (0.0,),
        "lr_find_steps": 30,
    },
    "two_well": {"noisy": (("sgd", 0.05, 3.0),), "lrs": (0.05,), "steps": 1000, "seeds": 20},
}
#: appended to a printed command to run it small
SMALLER = {
    "race": ["--steps", "30", "--no-gif"],
    "train": ["--epochs", "1"],
    "compare-batching": ["--epochs", "1"],
    "lr-find": ["--steps", "20"],
    "schedule": [],
}


@pytest.fixture(scope="module")
def claims():
    with loaded("descend_docs_claims_reproduce") as module:
        yield module


def test_every_claim_of_the_first_ten_has_a_small_setting(claims):
    first = [k for k in claims.CLAIMS if k in SMALL]
    assert first == list(SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("key", list(SMALL))
def test_every_reproduce_command_runs(claims, key, tmp_path, monkeypatch, capsys):
    # the script's own command is run by test_claims
    measured = measured_once(claims, SMALL)
    kw = dict(tmp_path=tmp_path, monkeypatch=monkeypatch, capsys=capsys, script=False)
    run_reproduce(claims, key, measured, SMALLER, **kw)  # gradient_noise's is the script alone
