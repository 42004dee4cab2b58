"""Every ``descend`` command in the Reproduce blocks of docs/claims.md's first ten claims runs as
printed (with flags appended that make it small: a later flag overrides an earlier one).

The commands are those the page prints, made by each claim's own section function from a small
measurement (the numbers in them, such as a tuned lr, come from the measurement). The claims of
docs/claims_more.py and docs/claims_timing.py have the same test in their own test files.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from descend.cli import main

CLAIMS_PY = Path(__file__).resolve().parents[1] / "docs" / "claims.py"

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
    spec = importlib.util.spec_from_file_location("descend_docs_claims_reproduce", CLAIMS_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        for name in (spec.name, "claims_more", "claims_timing"):
            sys.modules.pop(name, None)


def test_every_claim_of_the_first_ten_has_a_small_setting(claims):
    first = [k for k in claims.CLAIMS if k in SMALL]
    assert first == list(SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("key", list(SMALL))
def test_every_reproduce_command_runs(claims, key, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    measure, _, section = claims.CLAIMS[key]
    commands = section(measure(**SMALL[key])).commands
    assert commands[0] == f"{claims.SCRIPT} --only {key}"  # the script itself: run by test_claims
    for command in commands[1:]:
        if command.startswith("#"):
            continue
        words = shlex.split(command)
        assert words[0] == "descend", command
        argv = words[1:] + SMALLER[words[1]]
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, (command, out, err)
        assert "Traceback" not in out + err
