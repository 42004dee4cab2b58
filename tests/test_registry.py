"""One registry, one source of truth: every per-rule fact comes from a rule's class or its entry.

These tests play a contributor adding an update rule (a Lion-like toy, registered for the length
of one test): each piece left out fails with a message saying what is missing, and once the
rule is registered with its facts, ``fit``, the estimators, races, drawings and the CLI all use
them with no table of their own. One name normalisation serves every look-up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_optim
import test_reference
from optim_registry import REGISTRY, coverage_problems, registry_mismatch, unregistered
from typer.testing import CliRunner

import descend as ds
from descend.cli import app
from descend.lab.race import race
from descend.sklearn import DescendClassifier
from descend.viz import optimizer_style

README = Path(__file__).resolve().parents[1] / "README.md"


class ToyLion(ds.Optimizer):
    """Lion (Chen et al., 2023), the issue's example of a new rule: the sign of an interpolated
    momentum, decoupled weight decay. NumPy path only (no kernel), enough to be trained with."""

    name = "toy_lion"
    elementwise = True
    decoupled_weight_decay = True

    def __init__(
        self,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.betas = betas

    def _buffer_names(self) -> tuple[str, ...]:
        return ("m",)

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        m = b["m"]
        p -= c["lr"] * np.sign(beta1 * m + (1.0 - beta1) * g)
        m *= beta2
        m += (1.0 - beta2) * g


FACTS = {"fit_lr": 3e-3, "race_lr": 2e-2, "color": "#123456", "marker": "*"}


class ToyLionWithFacts(ToyLion):
    name = "toy_lion"
    fit_lr = FACTS["fit_lr"]
    race_lr = FACTS["race_lr"]
    color = FACTS["color"]
    marker = FACTS["marker"]


@contextmanager
def registered(cls: type, **facts: Any) -> Iterator[ds.optim.Rule]:
    """``cls`` in the library's registry for the length of the block, as if its entry were in
    src/descend/optim/__init__.py."""
    entry = ds.optim.register(cls, **facts)
    try:
        yield entry
    finally:
        ds.optim.unregister(entry.name)


def test_every_rule_is_covered():
    """Every rule class is registered; every registered rule has its generic tests, its scalar
    reference and settings to compare it at."""
    problems = coverage_problems()
    assert not problems, "\n".join(problems)


# -- a contributor adds a rule --------------------------------------------------------------------
def test_a_rule_without_a_registry_entry_fails_naming_the_entry_to_add():
    assert unregistered([ToyLion], ds.optim.names()) == [
        "test_registry.ToyLion is an update rule with no registry entry: add register(ToyLion) to "
        "src/descend/optim/__init__.py and its facts (fit_lr, race_lr, color, marker) to the class"
    ]
    assert unregistered([ds.Adam, ds.AdamW], ds.optim.names()) == []


def test_a_rule_without_its_facts_fails_at_registration_naming_each_one():
    before = ds.optim.names()
    with pytest.raises(ValueError) as e:
        ds.optim.register(ToyLion)
    assert str(e.value) == (
        "optimizer registry: rule 'toy_lion' (test_registry.ToyLion) does not state fit_lr, "
        "race_lr, color, marker:\n"
        "  fit_lr: the lr fit() and the sklearn estimators use when given none (one that trains "
        "standardized data well)\n"
        "  race_lr: the lr a race uses when given none (one that moves visibly but stably on the "
        "built-in 2-D surfaces)\n"
        "  color: its colour in every drawing ('#rrggbb', distinct from every other rule's)\n"
        "  marker: its matplotlib marker in every drawing\n"
        "set them on the class (ToyLion.fit_lr = ...) or give them to its registry entry "
        "(register(ToyLion, fit_lr=...) in src/descend/optim/__init__.py); a subclass does not "
        "inherit its parent's"
    )
    # one fact left out: only that one is named
    with pytest.raises(ValueError, match=r"does not state fit_lr:\n  fit_lr: the lr fit\(\)"):
        ds.optim.register(ToyLion, race_lr=0.02, color="#123456", marker="*")

    # a rule built on Adam does not get Adam's tuned numbers by inheritance
    class AdamVariant(ds.Adam):
        name = "adam_variant"

    with pytest.raises(
        ValueError, match=r"rule 'adam_variant' \(.*AdamVariant\) does not state fit_lr, race_lr"
    ):
        ds.optim.register(AdamVariant)
    # a colour another rule has (the new rule took Adamax's look)
    with pytest.raises(
        ValueError, match=r"color '#7F7F7F' is already rule 'adamax''s; every rule has its own colour"
    ):
        ds.optim.register(ToyLion, **{**FACTS, "color": "#7F7F7F"})
    with pytest.raises(
        ValueError, match=r"rule .toy_lion.: fit_lr must satisfy fit_lr > 0 \(finite\), got 0"
    ):
        ds.optim.register(ToyLion, **{**FACTS, "fit_lr": 0})
    with pytest.raises(TypeError, match=r"unknown facts \['default_lr'\]"):
        ds.optim.register(ToyLion, **FACTS, default_lr=1e-3)
    with pytest.raises(
        ValueError, match=r"optimizer registry: 'adam' is already registered \(Adam\); pick another name"
    ):
        ds.optim.register(ds.Adam)
    assert ds.optim.names() == before  # a refused entry leaves nothing behind


def test_a_registered_rule_without_tests_or_reference_fails_ci_saying_what_is_missing():
    with registered(ToyLionWithFacts):
        with pytest.raises(AssertionError) as e:
            test_optim.test_test_registry_equals_the_librarys()
        assert str(e.value).startswith(
            "optimizer 'toy_lion' is registered in descend but has no OptimizerInfo in "
            "tests/optim_registry.py REGISTRY: add one (settings that converge on the test "
            "problems, variants, bad inputs, settings to compare with its scalar reference) so "
            "the generic tests run for it"
        )
        with pytest.raises(AssertionError) as e:
            test_every_rule_is_covered()
        assert (
            "optimizer 'toy_lion' has no scalar reference: write one in tests/reference.py from "
            "the paper or the peer library's code (never importing descend) and add it to "
            "REFERENCES under 'toy_lion'\n"
        ) in str(e.value) + "\n"
        with pytest.raises(AssertionError, match=r"registered: .*'toy_lion'"):
            test_reference.test_every_rule_is_compared_with_its_reference()
    # ... and the other way: a test entry for a rule descend does not register
    assert registry_mismatch(["sgd"], REGISTRY[:2]) == [
        "tests/optim_registry.py REGISTRY has 'momentum', which descend does not register "
        "(ds.optim.names()): register the rule in src/descend/optim/__init__.py, or remove the entry"
    ]


def test_a_registered_rule_is_used_everywhere_with_its_own_facts():
    """Nothing outside the class and its entry needs editing: fit, the estimators, races,
    drawings and the CLI read the facts from the entry."""
    X = np.random.default_rng(0).normal(size=(64, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    with registered(ToyLionWithFacts) as entry:
        assert (entry.name, entry.fit_lr, entry.race_lr) == ("toy_lion", 3e-3, 2e-2)
        run = ds.fit(ds.models.LogisticRegression(), (X, y), optimizer=" Toy-Lion", epochs=1, progress=False)
        assert isinstance(run.optimizer, ToyLionWithFacts) and run.optimizer.lr == FACTS["fit_lr"]
        clf = DescendClassifier(optimizer="toy_lion", epochs=1, random_state=0).fit(X, y)
        assert clf.run_.optimizer.lr == FACTS["fit_lr"]
        r = race("booth", ["TOY_LION"], steps=5)
        assert r.entries[0].optimizer == "toy_lion" and r.entries[0].lr == FACTS["race_lr"]
        assert optimizer_style("toy_lion") == {"color": "#123456", "marker": "*"}
        out = CliRunner().invoke(app, ["optimizers"], env={"COLUMNS": "200"}).output
        assert "toy_lion" in out and "betas=(0.9, 0.99)" in out
    assert "toy_lion" not in ds.optim.names()
    with pytest.raises(ValueError, match="unknown optimizer 'toy_lion'"):
        optimizer_style("toy_lion")


# -- one normalisation ---------------------------------------------------------------------------
def test_every_lookup_reads_names_one_way():
    X = np.random.default_rng(1).normal(size=(80, 3))
    y = (X @ [1.0, -2.0, 0.5] > 0).astype(np.int64)
    runs = [
        ds.fit(ds.models.LogisticRegression(), (X, y), optimizer=name, epochs=2, progress=False)
        for name in ("adam", " adam", "ADAM ")
    ]
    assert {r.optimizer.lr for r in runs} == {ds.optim.rule("adam").fit_lr}
    for r in runs[1:]:
        assert r.params["W"].tobytes() == runs[0].params["W"].tobytes()
    clfs = [DescendClassifier(optimizer=n, epochs=2, random_state=0).fit(X, y) for n in ("adam", " Adam")]
    assert clfs[1].run_.optimizer.lr == clfs[0].run_.optimizer.lr == 3e-3
    np.testing.assert_array_equal(clfs[0].coef_, clfs[1].coef_)
    r = race("booth", [" Adam", "Nesterov"], steps=5, lrs={"nesterov ": 1e-4})
    assert [(e.optimizer, e.lr) for e in r.entries] == [("adam", 5e-2), ("nesterov", 1e-4)]
    assert ds.optim.get(" AMSGrad") is ds.Adam and ds.optimizer("AMSGrad ").amsgrad
    assert optimizer_style(" ADAM") == optimizer_style("adam")


# -- listings ------------------------------------------------------------------------------------
def test_readme_lists_every_registered_rule():
    row = next(line for line in README.read_text().splitlines() if line.startswith("| update rules"))
    listed = re.findall(r'\("(\w+)"\)', row)
    assert sorted(listed) == sorted(ds.optim.names()), (
        f"README's update rules row lists {listed}; descend registers {ds.optim.names()}"
    )
    for name in listed:
        assert f"`{ds.optim.get(name).__name__}" in row, f"README does not name the class of {name!r}"


def test_cli_lists_every_registered_rule_with_its_defaults():
    out = CliRunner().invoke(app, ["optimizers"], env={"COLUMNS": "250"}).output
    for name in ds.optim.names():
        assert re.search(rf"^\W*{name}\W", out, re.M), f"`descend optimizers` does not list {name!r}"
    assert "amsgrad=True" in out
