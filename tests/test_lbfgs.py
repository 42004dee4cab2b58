"""L-BFGS (``ds.LBFGS``, "lbfgs"): torch.optim.LBFGS iterate by iterate through ``ds.minimize``,
the reference of tests/reference.py, its state saved and loaded mid-run, and the places that
refuse it (``step``, mini-batch ``fit``, ``lr_find``) or run it (races, full-batch ``fit``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ref
from optim_registry import BY_NAME
from peers import need

import descend as ds
from descend.lab import lr_find
from descend.lab.race import race

#: the settings compared with torch and the reference, by id (the registry entry's)
CASES = list(BY_NAME["lbfgs"].reference.items())
SURFACES = ds.functions.names()
MAX_STEPS = 200
RTOL = 1e-10


@pytest.fixture(scope="module")
def torch():
    return need("torch")


def fun_and_grad(f):
    return lambda p: (f(p), f.grad(p))


def repeats(moved: bool, n_before: int, n_after: int) -> bool:
    """minimize's rule for the end of an L-BFGS run: a call that moved nothing, after the first
    iteration (or in which none began), would be repeated by every later call."""
    return not moved and (n_before > 0 or n_after == n_before)


def torch_run(torch, f, x0, kwargs, max_calls=MAX_STEPS):
    """torch.optim.LBFGS on ``f`` from ``x0``, ``step(closure)`` called until a call repeats
    (see :func:`repeats`) or ``max_calls``, or torch fails (it indexes past a bracket whose loss
    is NaN). Returns its iterates, ``n_iter``, ``func_evals`` and whether it ended by repeating."""

    class Recording(torch.optim.LBFGS):
        """Records every iterate: each ``_add_grad`` but the line search's trial points."""

        def _add_grad(self, step_size, update):
            super()._add_grad(step_size, update)
            self.iterates.append(torch.cat([q.detach().reshape(-1) for q in self._params]).numpy().copy())

        def _directional_evaluate(self, closure, x, t, d):
            out = super()._directional_evaluate(closure, x, t, d)
            self.iterates.pop()
            return out

    p = torch.tensor(np.array(x0, dtype=np.float64), requires_grad=True)
    opt = Recording([p], **kwargs)
    opt.iterates = []

    def closure():
        opt.zero_grad()
        x = p.detach().numpy().copy()
        with np.errstate(over="ignore", invalid="ignore"):  # as minimize evaluates
            p.grad = torch.from_numpy(np.asarray(f.grad(x), dtype=np.float64))
            return float(f(x))

    ended = False
    for _ in range(max_calls):
        before, n_before = p.detach().numpy().copy(), opt.state[p].get("n_iter", 0)
        try:
            opt.step(closure)
        except IndexError:
            break
        if repeats(not np.array_equal(p.detach().numpy(), before), n_before, opt.state[p]["n_iter"]):
            ended = True
            break
    state = opt.state[p]
    return np.array(opt.iterates).reshape(-1, p.numel()), state["n_iter"], state["func_evals"], ended


def reference_run(f, x0, kwargs, max_calls=MAX_STEPS):
    """reference.LBFGS driven as torch_run drives torch (it fails, too, once a loss is NaN)."""
    r = ref.LBFGS(**kwargs)
    x = [float(v) for v in x0]
    ended = False
    for _ in range(max_calls):
        n_before, before = r.n_iter, x
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # as minimize evaluates
                x = r.step(lambda z: (float(f(np.array(z))), f.grad(np.array(z)).tolist()), x)
        except (ValueError, OverflowError, ZeroDivisionError):
            break
        if repeats(x != before, n_before, r.n_iter):
            ended = True
            break
    return np.array(r.iterates).reshape(-1, len(x0)), r.n_iter, r.func_evals, ended


def assert_follows(res, f, iterates: np.ndarray, n_iter: int, func_evals: int, ended: bool):
    """Every iterate of the descend run is the peer's to RTOL (relative); a run that ended where
    the peer's ended took as many iterations and evaluations; one that diverged stopped where the
    peer's loss or gradient stopped being finite."""
    path = res.history.path[1:]
    n = min(len(path), len(iterates))
    if n:
        want = iterates[:n]
        err = np.abs(path[:n] - want) / np.maximum(1.0, np.abs(want))
        assert err.max() <= RTOL, f"iterate {int(np.argmax(err.max(axis=1))) + 1} differs by {err.max():.3g}"
    if "no more progress" in res.message:
        assert ended and len(path) == len(iterates), (len(path), len(iterates), res.message)
        assert int(res.state.t) == n_iter and res.nfev == func_evals
    elif res.diverged:  # the peer went on into inf/NaN (or failed there)
        with np.errstate(over="ignore", invalid="ignore"):
            assert len(iterates) == n or not np.all(np.isfinite([f(iterates[n]), *f.grad(iterates[n])]))
    else:
        assert res.nit == MAX_STEPS and len(iterates) >= MAX_STEPS


def run(f, kwargs, **options):
    return ds.minimize(
        f,
        f.start,
        optimizer="lbfgs",
        options=kwargs,
        tol=None,
        max_steps=MAX_STEPS,
        on_divergence="stop",
        **options,
    )


# -- torch.optim.LBFGS and the reference ------------------------------------------------------------
@pytest.mark.parametrize("name", SURFACES)
@pytest.mark.parametrize(("case", "kwargs"), CASES, ids=[c for c, _ in CASES])
def test_minimize_follows_torch_iterate_by_iterate(torch, name, case, kwargs):
    f = ds.functions.get(name)
    res = run(f, kwargs)
    assert_follows(res, f, *torch_run(torch, f, f.start, kwargs))


@pytest.mark.parametrize("name", [n for n in SURFACES if n not in ("saddle", "monkey_saddle")])
@pytest.mark.parametrize(("case", "kwargs"), CASES, ids=[c for c, _ in CASES])
def test_minimize_matches_the_reference(name, case, kwargs):
    f = ds.functions.get(name)
    res = run(f, kwargs)
    assert_follows(res, f, *reference_run(f, f.start, kwargs))
    assert len(res.history) > 1


def test_the_comparisons_cover_small_histories_and_both_line_searches():
    settings = [kw for _, kw in CASES]
    assert {kw.get("line_search_fn") for kw in settings} == {None, "strong_wolfe"}
    assert {1, 2, 3} <= {kw.get("history_size", 100) for kw in settings}
    # the ring of pairs wraps around in these runs: more iterations than pairs kept
    res = run(ds.functions.get("rosenbrock"), {"history_size": 2})
    assert res.nit > 10 and res.state.scalars["count"] == 2


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"line_search_fn": "strong_wolfe"}, {"line_search_fn": "strong_wolfe", "tolerance_change": 1e-14}],
    ids=["defaults", "strong-wolfe", "strong-wolfe-tol"],
)
def test_converges_on_rosenbrock_in_the_iterations_torch_takes(torch, kwargs):
    f = ds.functions.get("rosenbrock")
    res = ds.minimize(f, f.start, optimizer="lbfgs", options=kwargs, tol=1e-6)
    iterates, _, func_evals, _ = torch_run(torch, f, f.start, kwargs)
    norms = [float(np.linalg.norm(f.grad(x))) for x in iterates]
    reached = next((k + 1 for k, g in enumerate(norms) if g <= 1e-6), None)
    assert np.abs(res.x - 1.0).max() < 1e-4
    if reached is None:  # torch's own tolerances stop it first: so they stop descend
        assert not res.success and "no more progress" in res.message
        assert res.nit == len(iterates) and res.nfev == func_evals
    else:
        assert res.success and res.nit == reached
    np.testing.assert_allclose(res.x, iterates[res.nit - 1], rtol=RTOL)


def test_several_parameter_arrays_are_one_vector_in_their_order(torch):
    """A dict of arrays runs as the vector of its leaves end to end (torch's order of params)."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(7, 7))
    H = A @ A.T + np.eye(7)
    c = rng.normal(size=7)

    def value_grad(v):
        return 0.5 * v @ H @ v - c @ v, H @ v - c

    def tree_fun(p):
        value, g = value_grad(np.concatenate([p["W"].ravel(), p["b"]]))
        return value, {"W": g[:4].reshape(2, 2), "b": g[4:]}

    opt = ds.LBFGS(history_size=4, line_search_fn="strong_wolfe")
    params = {"W": np.ones((2, 2)), "b": np.zeros(3)}
    flat = np.concatenate([params["W"].ravel(), params["b"]])
    s_tree, s_flat = opt.init(params), opt.init(flat)
    tW, tb = torch.ones(2, 2, dtype=torch.float64, requires_grad=True), torch.zeros(3, dtype=torch.float64)
    tb.requires_grad_(True)
    topt = torch.optim.LBFGS([tW, tb], history_size=4, line_search_fn="strong_wolfe")

    def closure():
        value, g = value_grad(np.concatenate([tW.detach().numpy().ravel(), tb.detach().numpy()]))
        tW.grad, tb.grad = torch.from_numpy(g[:4].reshape(2, 2).copy()), torch.from_numpy(g[4:].copy())
        return value

    for _ in range(3):
        opt.minimize_step(tree_fun, params, s_tree)
        opt.minimize_step(lambda v: value_grad(v), flat, s_flat)
        topt.step(closure)
        assert np.concatenate([params["W"].ravel(), params["b"]]).tobytes() == flat.tobytes()
        np.testing.assert_allclose(params["W"], tW.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(params["b"], tb.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(flat, np.linalg.solve(H, c), rtol=1e-3)  # as near as torch gets
    assert s_tree["d"]["W"].shape == (2, 2)  # per-leaf buffers, as every rule's


# -- state ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs", [{"history_size": 3, "max_iter": 4}, {"line_search_fn": "strong_wolfe", "max_iter": 3}]
)
def test_state_saved_mid_run_continues_bit_for_bit(tmp_path, kwargs):
    f = ds.functions.get("rosenbrock")
    opt = ds.LBFGS(**kwargs)
    x = f.start
    state = opt.init(x)
    for _ in range(4):
        opt.minimize_step(fun_and_grad(f), x, state)
    ds.optim.save_state(state, tmp_path / "lbfgs.npz")
    loaded = ds.optim.load_state(tmp_path / "lbfgs.npz")
    copied = state.copy()
    y, z = x.copy(), x.copy()
    for _ in range(6):
        opt.minimize_step(fun_and_grad(f), x, state)
        opt.minimize_step(fun_and_grad(f), y, loaded)
        opt.minimize_step(fun_and_grad(f), z, copied)
        assert x.tobytes() == y.tobytes() == z.tobytes()
    saved, again = ds.optim.save_state(state), ds.optim.save_state(loaded)
    assert saved.keys() == again.keys() and any(k.startswith("buffer/old_dirs/") for k in saved)
    for key in saved:
        np.testing.assert_array_equal(saved[key], again[key], err_msg=key)
    assert int(state.t) > 12 and state.scalars["func_evals"] >= int(state.t)


def test_the_state_holds_plain_arrays_and_numbers():
    opt = ds.LBFGS(history_size=2)
    x = np.array([3.0, -1.0])
    state = opt.init(x)
    for _ in range(2):
        opt.minimize_step(lambda p: (float(p @ p), 2 * p), x, state)
    assert set(state.scalars) >= {"func_evals", "count", "head", "t", "H_diag", "prev_loss", "ro/0"}
    for name, leaves in state.buffers.items():
        assert name in ("d", "prev_flat_grad") or name.split("/")[0] in ("old_dirs", "old_stps")
        assert [leaf.shape for leaf in leaves] == [(2,)]


# -- interface and refusals -------------------------------------------------------------------------
def test_step_with_a_gradient_alone_is_refused_pointing_to_minimize_step():
    opt = ds.LBFGS()
    x = np.ones(2)
    with pytest.raises(TypeError) as e:
        opt.step(x, np.ones(2), opt.init(x))
    msg = str(e.value)
    assert msg.startswith("LBFGS.step: L-BFGS needs the objective")
    assert "opt.minimize_step(fun_and_grad, params, state)" in msg and "optimizer='lbfgs'" in msg


def test_defaults_are_torchs(torch):
    opt, peer = ds.LBFGS(), torch.optim.LBFGS([torch.zeros(1)]).defaults
    for key in ("lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change", "history_size"):
        assert getattr(opt, key) == peer[key], key
    assert opt.line_search_fn is peer["line_search_fn"] is None
    assert ds.LBFGS(max_iter=7).max_eval == 8  # max_iter * 5 // 4


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        (
            {"line_search_fn": "wolfe"},
            ValueError,
            "LBFGS: line_search_fn must be None or 'strong_wolfe', got 'wolfe'",
        ),
        (
            {"line_search_fn": True},
            ValueError,
            "LBFGS: line_search_fn must be None or 'strong_wolfe', got True (bool)",
        ),
        (
            {"lr": lambda k: 1.0},
            TypeError,
            "LBFGS: lr must be a non-negative real number (L-BFGS takes no schedule)",
        ),
        ({"history_size": 0}, ValueError, "LBFGS: history_size must satisfy history_size >= 1, got 0"),
    ],
)
def test_bad_hyperparameters_name_the_parameter(kwargs, exc, text):
    with pytest.raises(exc) as e:
        ds.LBFGS(**kwargs)
    assert str(e.value).startswith(text)


def test_bad_params_and_gradients_are_refused_clearly():
    opt = ds.LBFGS()
    with pytest.raises(TypeError, match=r"LBFGS.init: every parameter array must have the same dtype"):
        opt.init({"a": np.ones(2), "b": np.ones(2, dtype=np.float32)})
    x = np.ones(3)
    state = opt.init(x)
    with pytest.raises(ValueError, match=r"grads is float64\[2\], params is \[3\]"):
        opt.minimize_step(lambda p: (0.0, np.ones(2)), x, state)
    with pytest.raises(TypeError, match=r"must return \(loss, grads\)"):
        opt.minimize_step(lambda p: 1.0, x, state)
    with pytest.raises(ValueError, match=r"belongs to optimizer 'adam'"):
        opt.minimize_step(lambda p: (0.0, p), x, ds.Adam().init(x))


def test_fit_takes_it_full_batch_only():
    """fit runs it on the full-batch objective (tests/test_fit_lbfgs.py); a mini-batch is refused
    naming batch_size, whichever way the rule is given."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    for optimizer in ("lbfgs", " L-BFGS".replace("-", ""), ds.LBFGS()):
        with pytest.raises(ds.errors.ParameterError) as e:
            ds.fit(ds.models.LogisticRegression(), (X, y), optimizer=optimizer, epochs=1, progress=False)
        assert e.value.param == "batch_size"
        model = ds.models.LogisticRegression()
        run = ds.fit(model, (X, y), optimizer=optimizer, batch_size=None, epochs=2, progress=False)
        assert run.steps_completed == 2 and run.history.steps["loss"][1] < run.history.steps["loss"][0]


def test_lr_find_refuses_it_having_no_lr_to_find():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    with pytest.raises(
        ds.errors.ParameterError, match=r"^lr_find: optimizer must be .*no learning rate to find"
    ):
        lr_find(ds.models.LogisticRegression(), (X, y), "lbfgs")


def test_the_fit_refusal_points_to_something_that_works():
    """What the message proposes: minimize_step on a model's params, on the whole data."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = (X @ [1.5, -2.0, 0.5] + 0.3 * rng.normal(size=200) > 0).astype(np.int64)
    model = ds.models.LogisticRegression(l2=1e-2)
    params = model.init(rng, 3, 1)
    opt = ds.LBFGS(line_search_fn="strong_wolfe")
    state = opt.init(params)
    for _ in range(5):
        opt.minimize_step(lambda p: model.loss_and_grad(p, X, y), params, state)
    _, g = model.loss_and_grad(params, X, y)
    assert max(float(np.abs(v).max()) for v in g.values()) < 1e-5


# -- minimize ---------------------------------------------------------------------------------------
def test_minimize_records_steps_evaluations_and_step_lengths():
    f = ds.functions.get("rosenbrock")
    res = ds.minimize(f, f.start, optimizer="lbfgs", lr=0.8, options={"history_size": 5}, tol=1e-3)
    h = res.history
    assert res.success and len(h) == res.nit + 1 and h.path.shape == (res.nit + 1, 2)
    # every evaluation is counted as torch counts it, and the last iterate's once more when
    # torch would only evaluate it at the start of its next step(closure)
    assert res.nfev - int(res.state.scalars["func_evals"]) in (0, 1) and res.nfev > res.nit
    # the first step is scaled by 1/|g|_1 (torch), the rest are lr
    g0 = f.grad(f.start)
    assert h.lr[0] == min(1.0, 1.0 / np.abs(g0).sum()) * 0.8 and np.all(h.lr[1:-1] == 0.8)
    assert math.isnan(h.lr[-1])
    np.testing.assert_allclose(h.loss, [f(x) for x in h.path])
    assert res.optimizer.lr == 0.8 and res.optimizer.history_size == 5
    # fixed steps: torch evaluates the 20th iterate of a step(closure) only in its next call
    short = ds.minimize(f, f.start, optimizer="lbfgs", max_steps=20, tol=None)
    assert (short.nit, short.nfev, short.state.scalars["func_evals"]) == (20, 21, 20.0)
    # a first-order rule makes one evaluation per step
    adam = ds.minimize(f, f.start, optimizer="adam", lr=0.02, max_steps=30, tol=None)
    assert adam.nfev == adam.nit + 1 == 31


def test_minimize_callback_sees_each_iteration_and_can_stop():
    f = ds.functions.get("booth")
    seen = []

    def cb(info):
        seen.append((info["step"], info["lr"], info["x"].copy()))
        return info["step"] == 3 or None

    res = ds.minimize(f, f.start, optimizer="lbfgs", callback=cb, options={"line_search_fn": "strong_wolfe"})
    assert [s for s, _, _ in seen] == [1, 2, 3] and res.nit == 3 and "callback" in res.message
    np.testing.assert_array_equal(seen[-1][2], res.x)
    np.testing.assert_array_equal(res.history.path[3], res.x)


def test_minimize_divergence_keeps_the_last_finite_iterate():
    f = ds.functions.get("saddle")  # unbounded below: fixed steps of lr run off to infinity
    with pytest.raises(ds.DivergenceError, match=r"non-finite at step \d+ with LBFGS") as e:
        ds.minimize(f, f.start, optimizer="lbfgs", max_steps=2000)
    res = e.value.result
    assert res.diverged and np.all(np.isfinite(res.x)) and np.isfinite(f(res.x))
    np.testing.assert_array_equal(res.x, res.history.path[-1])
    assert res.nit == e.value.step - 1 == len(res.history) - 1


def test_minimize_in_float32_stays_float32():
    f = ds.functions.get("booth")
    res = ds.minimize(f, f.start.astype(np.float32), optimizer="lbfgs", tol=1e-3)
    assert res.x.dtype == np.float32 and res.success
    assert res.state.buffers["d"][0].dtype == np.float32


def test_minimize_with_noise_is_seeded_and_ends():
    f = ds.functions.get("rosenbrock")
    a, b = (run(f, {}, noise=0.1, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.history.path, b.history.path)
    assert a.nfev == b.nfev and not a.diverged


# -- races ------------------------------------------------------------------------------------------
def test_races_run_lbfgs_with_its_path_and_evaluations():
    r = race(
        "rosenbrock", ["adam", "lbfgs"], steps=150, options={"lbfgs": {"line_search_fn": "strong_wolfe"}}
    )
    lbfgs = r.entries[1]
    assert lbfgs.lr == ds.LBFGS.race_lr == 1.0
    assert lbfgs.label == "lbfgs (lr=1, line_search_fn=strong_wolfe)"
    assert lbfgs.steps_to_tol is not None and lbfgs.steps_to_tol < 40 and lbfgs.distance < 1e-3
    assert lbfgs.path.shape == (lbfgs.result.nit + 1, 2) and lbfgs.result.nit < 150
    rows = {row["optimizer"]: row for row in r.table()}
    assert rows["adam"]["evaluations"] == 151 and rows["lbfgs"]["evaluations"] == lbfgs.result.nfev
    assert rows["lbfgs"]["evaluations"] > rows["lbfgs"]["steps"]


def test_race_pictures_draw_the_shorter_lbfgs_path(tmp_path):
    pytest.importorskip("matplotlib")
    from descend.viz import optimizer_style
    from descend.viz.race import save_race_pngs

    r = race("himmelblau", ["momentum", "lbfgs"], steps=100)
    assert len(r.entries[1].path) < len(r.entries[0].path)
    written = save_race_pngs(r, tmp_path, size=(400, 300))
    assert sorted(written) == ["contour", "loss", "surface"]
    assert all(p.stat().st_size > 0 for p in written.values())
    assert optimizer_style("lbfgs") == {"color": "#9edae5", "marker": "+"}
