"""Learning-rate schedules: hand-computed tables, properties, ReduceOnPlateau, errors, torch."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import descend as ds
from descend import schedules as S

SQRT2 = 1.4142135623730951  # written out so the tables below do not call the code under test
TOL = 1e-12


def check_table(schedule, table):
    for k, expected in table.items():
        got = schedule(k)
        assert type(got) is float, (schedule, k, type(got))
        assert got == pytest.approx(expected, rel=TOL, abs=TOL), (schedule, k)


# -- tables worked out by hand ----------------------------------------------------------------------
TABLES = [
    (S.Constant(0.25), {0: 0.25, 1: 0.25, 1000: 0.25}),
    # (1 - k/4) * 1.0 + (k/4) * 0.01, held from k = 4
    (S.LinearDecay(1.0, 0.01, tau=4), {0: 1.0, 1: 0.7525, 2: 0.505, 3: 0.2575, 4: 0.01, 9: 0.01}),
    (S.StepDecay(2.0, step_size=3, gamma=0.5), {0: 2.0, 2: 2.0, 3: 1.0, 5: 1.0, 6: 0.5, 10: 0.25}),
    (S.MultiStep(1.0, milestones=[2, 5], gamma=0.1), {0: 1.0, 1: 1.0, 2: 0.1, 4: 0.1, 5: 0.01, 50: 0.01}),
    (S.MultiStep(1.0, milestones=[]), {0: 1.0, 99: 1.0}),
    (S.Exponential(2.0, gamma=0.5), {0: 2.0, 1: 1.0, 4: 0.125}),
    # 1 / (1 + 0.5 k / 2)
    (S.InverseTime(1.0, 0.5, decay_steps=2), {0: 1.0, 1: 0.8, 2: 2 / 3, 4: 0.5, 6: 0.4}),
    (S.InverseTime(1.0, 0.5, 2, staircase=True), {0: 1.0, 1: 1.0, 2: 2 / 3, 3: 2 / 3, 5: 0.5}),
    # 0.8 (1 - k/4)^2 + 0.2
    (
        S.Polynomial(1.0, total_steps=4, lr_final=0.2, power=2.0),
        {0: 1.0, 1: 0.65, 2: 0.4, 3: 0.25, 4: 0.2, 10: 0.2},
    ),
    (S.Polynomial(1.0, total_steps=4, lr_final=0.2, power=0.5), {2: 0.2 + 0.4 * SQRT2, 4: 0.2}),
    (S.Polynomial(3.0, total_steps=3), {0: 3.0, 1: 2.0, 2: 1.0, 3: 0.0, 7: 0.0}),
    # 0.2 + 0.4 (1 + cos(pi k / 4))
    (
        S.Cosine(1.0, total_steps=4, lr_min=0.2),
        {0: 1.0, 1: 0.6 + 0.2 * SQRT2, 2: 0.6, 3: 0.6 - 0.2 * SQRT2, 4: 0.2, 7: 0.2},
    ),
    # cycles [0, 2), [2, 6), [6, 14), [14, 30)
    (
        S.CosineRestarts(1.0, first_period=2, period_mult=2),
        {
            0: 1.0,
            1: 0.5,
            2: 1.0,
            3: 0.5 + SQRT2 / 4,
            4: 0.5,
            5: 0.5 - SQRT2 / 4,
            6: 1.0,
            10: 0.5,
            14: 1.0,
            22: 0.5,
        },
    ),
    # 0.1 + 0.45 (1 + cos(pi t / 3)), t = k mod 3
    (
        S.CosineRestarts(1.0, first_period=3, lr_min=0.1),
        {0: 1.0, 1: 0.775, 2: 0.325, 3: 1.0, 4: 0.775, 302: 0.325},
    ),
    # init 0.1, peak 1.0 at a = 0.5 * 8 - 1 = 3, final 0.001 at b = 7
    (
        S.OneCycle(1.0, total_steps=8, pct_start=0.5, div_factor=10, final_div_factor=100),
        {
            0: 0.1,
            1: 1.0 - 0.45 * 1.5,
            2: 1.0 - 0.45 * 0.5,
            3: 1.0,
            4: 0.5005 + 0.24975 * SQRT2,
            5: 0.5005,
            6: 0.5005 - 0.24975 * SQRT2,
            7: 0.001,
            100: 0.001,
        },
    ),
    (
        S.OneCycle(1.0, 8, 0.5, 10, 100, anneal="linear"),
        {0: 0.1, 1: 0.4, 2: 0.7, 3: 1.0, 4: 0.75025, 5: 0.5005, 6: 0.25075, 7: 0.001, 8: 0.001},
    ),
    (
        S.Cyclic(0.1, 1.0, step_size_up=2, step_size_down=4),
        {0: 0.1, 1: 0.55, 2: 1.0, 3: 0.775, 4: 0.55, 5: 0.325, 6: 0.1, 8: 1.0},
    ),
    (S.Cyclic(0.1, 1.0, 2, mode="triangular2"), {1: 0.55, 2: 1.0, 4: 0.1, 6: 0.55, 10: 0.325, 14: 0.2125}),
    # 0.1 + 0.9 * height * 0.5^k
    (S.Cyclic(0.1, 1.0, 2, mode="exp_range", gamma=0.5), {0: 0.1, 1: 0.325, 2: 0.325, 3: 0.15625, 4: 0.1}),
    (S.Warmup(0.4, warmup_steps=4, start_factor=0.5), {0: 0.2, 1: 0.25, 2: 0.3, 3: 0.35, 4: 0.4, 9: 0.4}),
    (S.Warmup(S.StepDecay(1.0, 2, 0.5), 3), {0: 0.0, 1: 1 / 3, 2: 2 / 3, 3: 1.0, 4: 1.0, 5: 0.5, 7: 0.25}),
    (S.Warmup(0.3, warmup_steps=0), {0: 0.3, 5: 0.3}),
    (
        S.Sequence([0.5, S.Exponential(1.0, 0.5), S.LinearDecay(0.2, 0.0, 2)], boundaries=[2, 5]),
        {0: 0.5, 1: 0.5, 2: 1.0, 3: 0.5, 4: 0.25, 5: 0.2, 6: 0.1, 7: 0.0, 9: 0.0},
    ),
    (S.Sequence([0.7], boundaries=[]), {0: 0.7, 12: 0.7}),
    (S.ReduceOnPlateau(0.3), {0: 0.3, 10: 0.3}),
]


@pytest.mark.parametrize(("schedule", "table"), TABLES, ids=[repr(s)[:50] for s, _ in TABLES])
def test_hand_computed_table(schedule, table):
    check_table(schedule, table)


@pytest.mark.parametrize(("schedule", "table"), TABLES, ids=[repr(s)[:50] for s, _ in TABLES])
def test_values_equals_calls(schedule, table):
    n = max(table) + 3
    v = schedule.values(n)
    assert v.dtype == np.float64 and v.shape == (n,)
    np.testing.assert_allclose(v, [schedule(k) for k in range(n)], rtol=1e-14, atol=1e-16)
    assert schedule.values(0).shape == (0,)
    np.testing.assert_allclose(schedule.values(1), [schedule(0)], rtol=1e-14)


def test_numpy_integer_steps_accepted():
    s = S.Cosine(1.0, 4)
    assert s(np.int64(2)) == s(2) and type(s(np.int32(2))) is float


# -- properties ----------------------------------------------------------------------------------------
def test_linear_decay_endpoints_and_hold():
    s = S.LinearDecay(0.3, 0.003, tau=700)
    assert s(0) == 0.3 and s(700) == 0.003
    assert all(s(k) == 0.003 for k in (701, 800, 10**6))
    v = s.values(701)
    assert np.all(np.diff(v) < 0)
    np.testing.assert_allclose(np.diff(v), -(0.3 - 0.003) / 700, rtol=1e-9)


def test_cosine_reaches_lr_min_at_total_steps():
    s = S.Cosine(0.5, total_steps=37, lr_min=0.01)
    assert s(37) == 0.01 and s(38) == 0.01 and s(1000) == 0.01
    assert s(36) > 0.01
    assert np.all(np.diff(s.values(38)) < 0)


def test_cosine_restarts_restart_steps_with_period_mult_2():
    s = S.CosineRestarts(1.0, first_period=5, period_mult=2, lr_min=0.1)
    v = s.values(80)
    rises = [k for k in range(1, 80) if v[k] > v[k - 1]]
    assert rises == [5, 15, 35, 75]  # periods 5, 10, 20, 40
    assert all(v[k] == 1.0 for k in [0, *rises])
    assert v[14] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 9 / 10)), rel=TOL)


def test_one_cycle_peak_and_end():
    s = S.OneCycle(0.8, total_steps=100, pct_start=0.25, div_factor=20, final_div_factor=50)
    v = s.values(100)
    assert int(np.argmax(v)) == 24 and v[24] == 0.8
    assert v[0] == pytest.approx(0.04, rel=TOL)
    assert v[99] == pytest.approx(0.8 / (20 * 50), rel=TOL)
    assert np.all(np.diff(v[:25]) > 0) and np.all(np.diff(v[24:]) < 0)
    assert s(100) == s(5000) == v[99]


def test_cyclic_triangular2_halves_amplitude_each_cycle():
    s = S.Cyclic(0.1, 0.9, step_size_up=3, step_size_down=5, mode="triangular2")
    v = s.values(8 * 5)
    peaks = v[3::8] - 0.1
    np.testing.assert_allclose(peaks, [0.8, 0.4, 0.2, 0.1, 0.05], rtol=TOL)
    np.testing.assert_allclose(v[::8], 0.1, rtol=TOL)


def test_sequence_switches_at_boundaries_with_restarted_counts():
    a, b, c = S.Cosine(1.0, 10), S.LinearDecay(0.5, 0.1, 4), S.Exponential(0.2, 0.9)
    s = S.Sequence([a, b, c], boundaries=[10, 16])
    for k in range(10):
        assert s(k) == a(k)
    for j in range(6):
        assert s(10 + j) == b(j)
    for j in range(20):
        assert s(16 + j) == c(j)


def test_warmup_ramp_then_inner_schedule():
    inner = S.Cosine(0.6, 20, lr_min=0.06)
    s = S.Warmup(inner, warmup_steps=8, start_factor=0.25)
    ramp = s.values(8)
    np.testing.assert_allclose(np.diff(ramp), 0.6 * 0.75 / 8, rtol=1e-12)
    assert ramp[0] == pytest.approx(0.15, rel=TOL)
    assert all(s(8 + j) == inner(j) for j in range(30))


def test_pure_schedules_have_no_hidden_state():
    s = S.Warmup(S.CosineRestarts(1.0, 3, 2), 4)
    first = s.values(50)
    assert [s(k) for k in (30, 2, 30)] == [first[30], first[2], first[30]]
    np.testing.assert_array_equal(s.values(50), first)


# -- ReduceOnPlateau ---------------------------------------------------------------------------------------
def feed(s, losses):
    out = []
    for loss in losses:
        s.observe(loss)
        out.append(s(0))
    return out


def test_plateau_patience_and_relative_threshold():
    s = S.ReduceOnPlateau(1.0, factor=0.5, patience=2, threshold=0.1)
    # best 10; 9.5 !< 9; 8.9 < 9 (best); 8.5 !< 8.01 x3 -> cut; 8.0 < 8.01 (best); 7.5 !< 7.2 x3 -> cut
    losses = [10, 9.5, 8.9, 8.5, 8.5, 8.5, 8.0, 7.5, 7.5, 7.5]
    reduced = []
    lrs = []
    for loss in losses:
        reduced.append(s.observe(loss))
        lrs.append(s(0))
    assert lrs == [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert [i for i, r in enumerate(reduced) if r] == [5, 9]
    assert s.best == 8.0 and s.num_reductions == 2 and s.last_epoch == 10


def test_plateau_absolute_threshold():
    # best 5; 4.6 !< 4.5; 4.4 < 4.5 (best); 4.0 !< 3.9; 3.95 !< 3.9 -> second bad value > patience 1
    s = S.ReduceOnPlateau(1.0, factor=0.1, patience=1, threshold=0.5, threshold_mode="abs")
    assert feed(s, [5, 4.6, 4.4, 4.0, 3.95]) == [1, 1, 1, 1, 0.1]
    # the same values in "rel" mode: 4.6 !< 2.5, so bad values start right away
    s = S.ReduceOnPlateau(1.0, factor=0.1, patience=1, threshold=0.5, threshold_mode="rel")
    assert feed(s, [5, 4.6, 4.4]) == pytest.approx([1, 1, 0.1], rel=TOL)


def test_plateau_cooldown():
    s = S.ReduceOnPlateau(1.0, factor=0.5, patience=0, threshold=0.0, cooldown=2)
    # obs 1 sets best; obs 2 bad -> cut, 2 cooldown values ignored; obs 5 cut; obs 8 cut
    assert feed(s, [1.0] * 8) == [1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    assert s.in_cooldown and s.cooldown_counter == 2


def test_plateau_min_lr_and_eps():
    s = S.ReduceOnPlateau(1.0, factor=0.1, patience=0, threshold=0.0, min_lr=0.05)
    lrs = feed(s, [1.0] * 5)
    assert lrs == pytest.approx([1.0, 0.1, 0.05, 0.05, 0.05], rel=TOL)
    assert s.num_reductions == 2  # as torch: a cut that changes nothing is not applied
    # torch's eps: a cut smaller than eps is skipped
    s = S.ReduceOnPlateau(1e-8, factor=0.5, patience=0, threshold=0.0)
    assert feed(s, [1.0, 1.0]) == [1e-8, 1e-8]
    s = S.ReduceOnPlateau(1e-8, factor=0.5, patience=0, threshold=0.0, eps=0.0)
    assert feed(s, [1.0, 1.0]) == [1e-8, 5e-9]


def test_plateau_max_mode():
    # best .5; .54 !> .55; .56 > .55 (best); .6 !> .616; .61 !> .616 -> cut
    s = S.ReduceOnPlateau(1.0, mode="max", factor=0.5, patience=1, threshold=0.1)
    assert feed(s, [0.5, 0.54, 0.56, 0.6, 0.61]) == [1, 1, 1, 1, 0.5]


def torch_plateau_reference(
    lr, losses, *, factor, patience, threshold, threshold_mode, mode, cooldown, min_lr
):
    """ReduceLROnPlateau.step transcribed from torch, acting on a plain float lr."""
    best = math.inf if mode == "min" else -math.inf
    bad = cool = 0
    out = []
    for a in losses:
        if mode == "min" and threshold_mode == "rel":
            better = a < best * (1.0 - threshold)
        elif mode == "min":
            better = a < best - threshold
        elif threshold_mode == "rel":
            better = a > best * (threshold + 1.0)
        else:
            better = a > best + threshold
        if better:
            best, bad = a, 0
        else:
            bad += 1
        if cool > 0:
            cool -= 1
            bad = 0
        if bad > patience:
            new = max(lr * factor, min_lr)
            if lr - new > 1e-8:
                lr = new
            cool, bad = cooldown, 0
        out.append(lr)
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        {"factor": 0.5, "patience": 3, "threshold": 1e-2, "threshold_mode": "rel", "mode": "min"},
        {
            "factor": 0.3,
            "patience": 0,
            "threshold": 0.05,
            "threshold_mode": "abs",
            "mode": "min",
            "cooldown": 2,
        },
        {
            "factor": 0.7,
            "patience": 2,
            "threshold": 0.0,
            "threshold_mode": "rel",
            "mode": "max",
            "min_lr": 0.02,
        },
        {
            "factor": 0.1,
            "patience": 1,
            "threshold": 0.1,
            "threshold_mode": "abs",
            "mode": "max",
            "cooldown": 1,
        },
    ],
)
def test_plateau_against_transcribed_torch_rule(kwargs):
    rng = np.random.default_rng(0)
    losses = list(np.cumsum(rng.normal(0.0, 0.1, 300)) + 5.0)
    full = {"cooldown": 0, "min_lr": 0.0, **kwargs}
    expected = torch_plateau_reference(0.5, losses, **full)
    s = S.ReduceOnPlateau(0.5, **kwargs)
    np.testing.assert_allclose(feed(s, losses), expected, rtol=1e-12)
    assert s.num_reductions > 0


def test_plateau_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(3)
    losses = list(np.abs(np.cumsum(rng.normal(0.0, 0.2, 120))) + 1.0)
    kw = {"factor": 0.5, "patience": 2, "cooldown": 1, "threshold": 0.01, "min_lr": 1e-3}
    a = S.ReduceOnPlateau(S.Cosine(1.0, 200, 0.01), **kw)
    assert a.state_dict()["best"] is None
    json.dumps(a.state_dict(), allow_nan=False)
    feed(a, losses[:60])
    saved = json.loads(json.dumps(a.state_dict(), allow_nan=False))
    b = S.ReduceOnPlateau(S.Cosine(1.0, 200, 0.01), **kw)
    b.load_state_dict(saved)
    assert b.state_dict() == a.state_dict()
    for k, loss in enumerate(losses[60:], start=60):
        assert a.observe(loss) == b.observe(loss)
        assert a(k) == b(k)
        assert a.state_dict() == b.state_dict()
    assert a.num_reductions >= 2


def test_plateau_reset():
    s = S.ReduceOnPlateau(1.0, factor=0.5, patience=0, threshold=0.0)
    feed(s, [1.0, 1.0, 1.0])
    assert s(0) == 0.25
    s.reset()
    assert s(0) == 1.0 and s.state_dict() == S.ReduceOnPlateau(1.0).state_dict()


def test_plateau_wraps_a_schedule():
    base = S.LinearDecay(1.0, 0.0, tau=10)
    s = S.ReduceOnPlateau(base, factor=0.5, patience=0, threshold=0.0, min_lr=0.2)
    np.testing.assert_array_equal(s.values(11), base.values(11))
    assert s.step(3.0) is False and s.step(3.0) is True  # `step` is an alias of observe
    assert s(2) == pytest.approx(0.4, rel=TOL)  # 0.8 * 0.5
    assert s(8) == pytest.approx(0.2, rel=TOL)  # 0.2 * 0.5 floored at min_lr
    assert s(9) == pytest.approx(0.1, rel=TOL)  # base below min_lr: not lifted
    assert s(10) == 0.0
    np.testing.assert_allclose(s.values(11), [s(k) for k in range(11)], rtol=1e-14)


def test_plateau_rejects_bad_loss_without_changing_state():
    s = S.ReduceOnPlateau(1.0, patience=0)
    s.observe(2.0)
    before = s.state_dict()
    for bad in (math.nan, math.inf, -math.inf, np.float32("nan")):
        with pytest.raises(ValueError, match=r"ReduceOnPlateau\.observe: loss must be finite, got"):
            s.observe(bad)
    for bad in (True, "1.0", None):
        with pytest.raises(TypeError, match="loss must be a real number"):
            s.observe(bad)
    assert s.state_dict() == before
    s.observe(np.array(1.0))  # 0-d arrays are fine
    assert s.best == 1.0


def test_plateau_load_state_dict_validates_before_changing():
    s = S.ReduceOnPlateau(1.0)
    good = s.state_dict()
    with pytest.raises(ValueError, match="exactly the keys"):
        s.load_state_dict({**good, "extra": 1})
    with pytest.raises(ValueError, match=r"scale must satisfy 0 <= scale <= 1, got 2\.0"):
        s.load_state_dict({**good, "scale": 2.0, "last_epoch": 7})
    with pytest.raises(TypeError, match="num_bad_epochs must be an integer"):
        s.load_state_dict({**good, "num_bad_epochs": 1.5})
    assert s.state_dict() == good


# -- configuration and registry ----------------------------------------------------------------------------
def test_names():
    assert S.names() == [
        "constant",
        "linear_decay",
        "step_decay",
        "multi_step",
        "exponential",
        "inverse_time",
        "polynomial",
        "cosine",
        "cosine_restarts",
        "warmup",
        "one_cycle",
        "cyclic",
        "sequence",
        "reduce_on_plateau",
    ]


@pytest.mark.parametrize(("schedule", "table"), TABLES, ids=[repr(s)[:50] for s, _ in TABLES])
def test_config_round_trips_through_json_and_get(schedule, table):
    cfg = json.loads(json.dumps(schedule.config()))
    rebuilt = S.get(schedule.name, **cfg)
    assert type(rebuilt) is type(schedule) and repr(rebuilt) == repr(schedule)
    np.testing.assert_array_equal(rebuilt.values(20), schedule.values(20))


def test_get_builds_nested_schedules_and_normalises_names():
    s = S.get("Warmup", schedule={"name": "cosine", "lr0": 1.0, "total_steps": 10}, warmup_steps=2)
    assert (
        repr(s)
        == "Warmup(schedule=Cosine(lr0=1.0, total_steps=10, lr_min=0.0), warmup_steps=2, start_factor=0.0)"
    )
    assert isinstance(S.get("one-cycle", max_lr=0.1, total_steps=50), S.OneCycle)


def test_repr_is_readable():
    assert repr(S.LinearDecay(0.1, 0.001, 100)) == "LinearDecay(lr0=0.1, lr_final=0.001, tau=100)"
    assert repr(S.ReduceOnPlateau(0.1)).startswith("ReduceOnPlateau(lr=0.1, factor=0.1, patience=10,")


# -- errors --------------------------------------------------------------------------------------------
ERRORS = [
    (lambda: S.LinearDecay(0.1, 0.001, tau=0), ValueError, "LinearDecay: tau must satisfy tau >= 1, got 0"),
    (
        lambda: S.LinearDecay(True, 0.001, 5),
        TypeError,
        "LinearDecay: lr0 must be a real number, got True (bool)",
    ),
    (lambda: S.LinearDecay(0.1, -0.1, 5), ValueError, "LinearDecay: lr_final must satisfy lr_final >= 0"),
    (lambda: S.Constant(math.nan), ValueError, "Constant: lr must satisfy lr >= 0 (finite), got nan"),
    (lambda: S.Constant("0.1"), TypeError, "Constant: lr must be a real number, got '0.1' (str)"),
    (lambda: S.StepDecay(0.1, 0), ValueError, "StepDecay: step_size must satisfy step_size >= 1, got 0"),
    (
        lambda: S.StepDecay(0.1, 5, gamma=1.5),
        ValueError,
        "StepDecay: gamma must satisfy 0 < gamma <= 1, got 1.5",
    ),
    (
        lambda: S.MultiStep(0.1, [5, 5]),
        ValueError,
        "MultiStep: milestones must be strictly increasing, got [5, 5]",
    ),
    (
        lambda: S.MultiStep(0.1, [0, 3]),
        ValueError,
        "MultiStep: milestones[0] must satisfy milestones[0] >= 1, got 0",
    ),
    (lambda: S.MultiStep(0.1, [2, 3.5]), TypeError, "MultiStep: milestones[1] must be an integer, got 3.5"),
    (lambda: S.MultiStep(0.1, "12"), TypeError, "MultiStep: milestones must be a list of integers"),
    (
        lambda: S.Exponential(0.1, math.inf),
        ValueError,
        "Exponential: gamma must satisfy gamma > 0 (finite), got inf",
    ),
    (
        lambda: S.Exponential(0.1, 0.0),
        ValueError,
        "Exponential: gamma must satisfy gamma > 0 (finite), got 0.0",
    ),
    (
        lambda: S.InverseTime(0.1, 0.5, staircase=1),
        TypeError,
        "InverseTime: staircase must be True or False, got 1",
    ),
    (lambda: S.InverseTime(0.1, -1.0), ValueError, "InverseTime: decay_rate must satisfy decay_rate >= 0"),
    (
        lambda: S.Polynomial(0.1, 10, power=0),
        ValueError,
        "Polynomial: power must satisfy power > 0 (finite), got 0",
    ),
    (
        lambda: S.Polynomial(0.1, 0),
        ValueError,
        "Polynomial: total_steps must satisfy total_steps >= 1, got 0",
    ),
    (
        lambda: S.Cosine(0.1, 10, lr_min=0.2),
        ValueError,
        "Cosine: lr_min must satisfy 0 <= lr_min <= 0.1, got 0.2",
    ),
    (
        lambda: S.CosineRestarts(0.1, 10, 1.5),
        TypeError,
        "CosineRestarts: period_mult must be an integer, got 1.5",
    ),
    (
        lambda: S.CosineRestarts(0.1, 0),
        ValueError,
        "CosineRestarts: first_period must satisfy first_period >= 1",
    ),
    (
        lambda: S.OneCycle(0.1, 10, pct_start=0.05),
        ValueError,
        "OneCycle: pct_start must satisfy pct_start * total_steps > 1",
    ),
    (
        lambda: S.OneCycle(0.1, 10, pct_start=1.0),
        ValueError,
        "OneCycle: pct_start must satisfy 0 < pct_start < 1, got 1.0",
    ),
    (
        lambda: S.OneCycle(0.1, 10, anneal="cosine"),
        ValueError,
        "OneCycle: anneal must be one of 'cos', 'linear', got 'cosine'",
    ),
    (
        lambda: S.OneCycle(0.1, 10, div_factor=0),
        ValueError,
        "OneCycle: div_factor must satisfy div_factor > 0",
    ),
    (
        lambda: S.Cyclic(0.1, 0.05, 3),
        ValueError,
        "Cyclic: max_lr must satisfy max_lr >= 0.1 (finite), got 0.05",
    ),
    (
        lambda: S.Cyclic(0.1, 1.0, 3, mode="tri"),
        ValueError,
        "Cyclic: mode must be one of 'triangular', 'triangular2', 'exp_range', got 'tri'",
    ),
    (
        lambda: S.Cyclic(0.1, 1.0, 3, 0),
        ValueError,
        "Cyclic: step_size_down must satisfy step_size_down >= 1, got 0",
    ),
    (lambda: S.Warmup("fast", 3), TypeError, "Warmup: schedule must be a schedule, a callable"),
    (lambda: S.Warmup(-0.1, 3), ValueError, "Warmup: schedule must satisfy schedule >= 0 (finite), got -0.1"),
    (
        lambda: S.Warmup(0.1, 3, start_factor=1.5),
        ValueError,
        "Warmup: start_factor must satisfy 0 <= start_factor <= 1, got 1.5",
    ),
    (lambda: S.Warmup({"lr": 0.1}, 3), ValueError, "Warmup: schedule given as a dict needs a 'name' key"),
    (
        lambda: S.Sequence([0.1, 0.2], [3, 4]),
        ValueError,
        "Sequence: boundaries must have len(schedules) - 1 = 1 entries, got 2",
    ),
    (
        lambda: S.Sequence([0.1, 0.2, 0.3], [4, 3]),
        ValueError,
        "Sequence: boundaries must be strictly increasing, got [4, 3]",
    ),
    (lambda: S.Sequence([], []), ValueError, "Sequence: schedules must hold at least one schedule"),
    (lambda: S.Sequence(0.1, []), TypeError, "Sequence: schedules must be a list of schedules, got 0.1"),
    (lambda: S.Sequence([0.1, None], [3]), TypeError, "Sequence: schedules[1] must be a schedule"),
    (
        lambda: S.ReduceOnPlateau(0.1, factor=1.0),
        ValueError,
        "ReduceOnPlateau: factor must satisfy 0 < factor < 1, got 1.0",
    ),
    (
        lambda: S.ReduceOnPlateau(0.1, patience=-1),
        ValueError,
        "ReduceOnPlateau: patience must satisfy patience >= 0, got -1",
    ),
    (
        lambda: S.ReduceOnPlateau(0.1, mode="minimum"),
        ValueError,
        "ReduceOnPlateau: mode must be one of 'min', 'max', got 'minimum'",
    ),
    (
        lambda: S.ReduceOnPlateau(0.1, threshold_mode="pct"),
        ValueError,
        "ReduceOnPlateau: threshold_mode must be one of",
    ),
    (
        lambda: S.ReduceOnPlateau(-1.0),
        ValueError,
        "ReduceOnPlateau: lr must satisfy lr >= 0 (finite), got -1.0",
    ),
    (
        lambda: S.ReduceOnPlateau(0.1, min_lr=math.nan),
        ValueError,
        "ReduceOnPlateau: min_lr must satisfy min_lr >= 0",
    ),
    (lambda: S.get("nope"), ValueError, "schedules.get: unknown schedule 'nope'; known: constant, linear"),
    (lambda: S.get("cosine", lr0=0.1), TypeError, "total_steps"),
]


@pytest.mark.parametrize(("make", "exc", "message"), ERRORS, ids=[m[:60] for _, _, m in ERRORS])
def test_bad_parameters_fail_at_construction(make, exc, message):
    with pytest.raises(exc) as info:
        make()
    assert message in str(info.value)


STEP_CHECKED = [
    S.Cosine(1.0, 10),
    S.Warmup(S.Cosine(1.0, 10), 3),
    S.Sequence([0.1, 0.2], [3]),
    S.ReduceOnPlateau(S.Cosine(1.0, 10)),
]


@pytest.mark.parametrize("schedule", STEP_CHECKED, ids=lambda s: type(s).__name__)
def test_bad_step_names_the_schedule(schedule):
    name = type(schedule).__name__
    with pytest.raises(ValueError, match=rf"^{name}: step must satisfy step >= 0, got -1$"):
        schedule(-1)
    with pytest.raises(TypeError, match=rf"^{name}: step must be an integer, got 2\.5$"):
        schedule(2.5)
    with pytest.raises(TypeError, match=rf"^{name}: step must be an integer, got True \(bool\)$"):
        schedule(True)
    with pytest.raises(ValueError, match=rf"^{name}\.values: n_steps must satisfy n_steps >= 0, got -1$"):
        schedule.values(-1)


# -- with an optimizer ----------------------------------------------------------------------------------
def test_optimizer_uses_schedule_value_at_each_step():
    sched = S.LinearDecay(1.0, 0.0, tau=4)
    p = np.array([0.0])
    opt = ds.SGD(lr=sched)
    st = opt.init(p)
    opt.step(p, np.array([1.0]), st)
    assert p[0] == -1.0  # -sched(0)
    opt.step(p, np.array([1.0]), st)
    assert p[0] == -1.75  # -sched(0) - sched(1)
    for _ in range(5):
        opt.step(p, np.array([1.0]), st)
    assert p[0] == -2.5  # 1 + 0.75 + 0.5 + 0.25 + 0 + 0 + 0


def test_schedule_keeps_float32_params_float32():
    p = np.ones(3, dtype=np.float32)
    opt = ds.SGD(lr=S.Cosine(0.1, 10), momentum=0.9)
    st = opt.init(p)
    for _ in range(3):
        opt.step(p, np.ones(3, dtype=np.float32), st)
    assert p.dtype == np.float32


def test_optimizer_sees_plateau_reductions():
    sched = S.ReduceOnPlateau(1.0, factor=0.5, patience=0, threshold=0.0)
    p = np.array([0.0])
    opt = ds.SGD(lr=sched)
    st = opt.init(p)
    opt.step(p, np.array([1.0]), st)
    sched.observe(1.0)
    sched.observe(1.0)  # no improvement: lr halves
    opt.step(p, np.array([1.0]), st)
    assert p[0] == -1.5


# -- torch itself ---------------------------------------------------------------------------------------
def _torch_lrs(torch, make, n, lr=0.1, losses=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt)
        out = []
        for k in range(n):
            if losses is None:
                out.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
            else:
                sched.step(losses[k])
                out.append(opt.param_groups[0]["lr"])
    return out


def test_matches_torch_schedulers():
    torch = pytest.importorskip("torch")
    L = torch.optim.lr_scheduler
    n = 200
    cases = [
        (S.StepDecay(0.1, 7, 0.5), lambda o: L.StepLR(o, step_size=7, gamma=0.5)),
        (
            S.MultiStep(0.1, [20, 50, 120], 0.3),
            lambda o: L.MultiStepLR(o, milestones=[20, 50, 120], gamma=0.3),
        ),
        (S.Exponential(0.1, 0.98), lambda o: L.ExponentialLR(o, gamma=0.98)),
        (S.Cosine(0.1, n - 1, 0.001), lambda o: L.CosineAnnealingLR(o, T_max=n - 1, eta_min=0.001)),
        (
            S.CosineRestarts(0.1, 5, 2, 0.001),
            lambda o: L.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=0.001),
        ),
        (S.CosineRestarts(0.1, 9), lambda o: L.CosineAnnealingWarmRestarts(o, T_0=9)),
        (
            S.OneCycle(0.5, n, 0.3, 25.0, 1e4),
            lambda o: L.OneCycleLR(o, max_lr=0.5, total_steps=n, pct_start=0.3, cycle_momentum=False),
        ),
        (
            S.OneCycle(0.5, n, 0.37, 10.0, 100.0, anneal="linear"),
            lambda o: L.OneCycleLR(
                o,
                max_lr=0.5,
                total_steps=n,
                pct_start=0.37,
                anneal_strategy="linear",
                div_factor=10.0,
                final_div_factor=100.0,
                cycle_momentum=False,
            ),
        ),
        (S.Cyclic(0.01, 0.1, 7), lambda o: L.CyclicLR(o, 0.01, 0.1, step_size_up=7, cycle_momentum=False)),
        (
            S.Cyclic(0.01, 0.1, 5, 11, mode="triangular2"),
            lambda o: L.CyclicLR(o, 0.01, 0.1, 5, 11, mode="triangular2", cycle_momentum=False),
        ),
        (
            S.Cyclic(0.01, 0.1, 6, mode="exp_range", gamma=0.99),
            lambda o: L.CyclicLR(o, 0.01, 0.1, 6, mode="exp_range", gamma=0.99, cycle_momentum=False),
        ),
    ]
    for ours, make in cases:
        np.testing.assert_allclose(
            ours.values(n), _torch_lrs(torch, make, n), rtol=1e-10, atol=1e-14, err_msg=repr(ours)
        )

    rng = np.random.default_rng(1)
    losses = [float(x) for x in np.cumsum(rng.normal(0.0, 0.1, n)) + 5.0]
    for kw in [
        {"factor": 0.5, "patience": 3, "threshold": 1e-2},
        {
            "factor": 0.3,
            "patience": 1,
            "threshold": 0.05,
            "threshold_mode": "abs",
            "cooldown": 2,
            "min_lr": 1e-3,
        },
        {"factor": 0.7, "patience": 2, "mode": "max", "cooldown": 1},
    ]:
        ours = S.ReduceOnPlateau(0.1, **kw)
        theirs = _torch_lrs(torch, lambda o, kw=kw: L.ReduceLROnPlateau(o, **kw), n, losses=losses)
        np.testing.assert_allclose(feed(ours, losses), theirs, rtol=1e-12, err_msg=repr(kw))
