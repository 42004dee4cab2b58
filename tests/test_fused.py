"""The fused kernels against the NumPy reference, for every rule and option in the registry;
no allocations per step; non-finite gradients; the fallback when numba is missing; the cache."""

from __future__ import annotations

import copy
import itertools
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from optim_registry import FUSED, STEPPED, decay, ids

import descend as ds
from descend.optim import _backend

pytest.importorskip("numba")

SRC = Path(ds.__file__).resolve().parents[1]


def configurations(info):
    """Every setting the registry lists for a rule, each also maximizing and on a schedule."""
    out = []
    for kwargs in [info.quadratic, info.rosenbrock, *info.variants]:
        out.append(dict(kwargs))
        out.append({**kwargs, "maximize": True})
        lr = kwargs["lr"]
        if not callable(lr):
            out.append({**kwargs, "lr": decay(lr, 20)})
        if not kwargs.get("weight_decay"):
            out.append({**kwargs, "weight_decay": 0.05})
    return out


CASES = [(info, kw) for info in FUSED for kw in configurations(info)]
CASE_IDS = [f"{info.name}-{i}" for info in FUSED for i, _ in enumerate(configurations(info))]


def make_params(dtype, big=5_000):
    rng = np.random.default_rng(3)
    return {
        "W": rng.normal(size=(7, 5)).astype(dtype),
        "big": rng.normal(size=(big,)).astype(dtype),  # cut into pieces across threads
        "layers": [rng.normal(size=(3, 2, 2)).astype(dtype), np.array(0.4, dtype=dtype)],
        "b": rng.normal(size=(9,)).astype(dtype),
    }


def gradients(params, k):
    """A gradient that changes sign and scale from step to step, like a noisy objective's."""
    leaves, treedef = ds._tree.flatten(params)
    rng = np.random.default_rng(100 + k)
    grads = [
        np.asarray((i + 1.0) * p + np.sin(3.0 * p) + rng.normal(scale=0.5, size=p.shape), dtype=p.dtype)
        for i, p in enumerate(leaves)
    ]
    return ds._tree.unflatten(treedef, grads)


@pytest.fixture
def four_threads(monkeypatch):
    """Spread even small steps over more threads than this machine may have, so that pieces
    cut leaves and cross from one leaf to the next."""
    monkeypatch.setattr(_backend, "MIN_PER_THREAD", 1000)
    monkeypatch.setattr(_backend, "MIN_BYTES_PER_THREAD", 1)
    monkeypatch.setattr(_backend, "_plans", {})
    before = _backend._threads
    ds.optim.set_backend(threads=4)
    yield
    ds.optim.set_backend(threads=before)


def run(opt, params, steps):
    state = opt.init(params)
    for k in range(steps):
        opt.step(params, gradients(params, k), state)
    return state


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("info", "kwargs"), CASES, ids=CASE_IDS)
def test_fused_equals_reference(info, kwargs, dtype, four_threads):
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    fast, slow = make_params(dtype), make_params(dtype)
    s_fast = run(info.make(**kwargs, fused=True), fast, 25)
    s_slow = run(info.make(**kwargs, fused=False), slow, 25)
    assert s_fast.t == s_slow.t == 25
    for a, b in zip(ds._tree.flatten(fast)[0], ds._tree.flatten(slow)[0], strict=True):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)
    assert set(s_fast.buffers) == set(s_slow.buffers)
    for name in s_fast.buffers:
        for a, b in zip(s_fast.buffers[name], s_slow.buffers[name], strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0)
    assert s_fast.scalars == s_slow.scalars


@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_every_elementwise_rule_has_a_fused_kernel(info):
    if not info.cls.elementwise:
        assert info.cls._kernel is None, "a kernel updates each element on its own: elementwise rules only"
        return
    assert info.cls._kernel is not None, f"{info.cls.__name__} is elementwise but has no fused kernel"
    assert set(info.make(**info.variants[0]).init(np.zeros(2)).buffers) <= set(info.cls._kernel_buffers)


def test_layouts_the_kernels_cannot_take_fall_back_leaf_by_leaf():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 4))
    params = {"T": base.T.copy(order="C").T, "h": base[:, 0].astype(np.float16), "ok": base.copy()}
    assert not params["T"].flags.c_contiguous
    ref = copy.deepcopy(params)
    for opt, p in ((ds.Adam(lr=0.1, fused=True), params), (ds.Adam(lr=0.1, fused=False), ref)):
        st = opt.init(p)
        for k in range(5):
            g = {key: (v * (k + 1)).astype(v.dtype) for key, v in p.items()}
            g["ok"] = g["ok"].T.copy().T  # a non-contiguous gradient is fine too
            opt.step(p, g, st)
    for key in params:
        np.testing.assert_array_equal(params[key], ref[key])


def test_mixed_dtype_gradients_are_cast_like_the_reference():
    p32, q32 = np.linspace(-1, 1, 50, dtype=np.float32), np.linspace(-1, 1, 50, dtype=np.float32)
    g64 = np.cos(np.arange(50.0)) * 3
    for opt, p in ((ds.RMSprop(lr=0.01, fused=True), p32), (ds.RMSprop(lr=0.01, fused=False), q32)):
        st = opt.init(p)
        for _ in range(4):
            opt.step(p, g64, st)
    assert p32.dtype == np.float32
    np.testing.assert_array_equal(p32, q32)


# -- allocation -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("info", "kwargs"),
    [(info, kw) for info in FUSED for kw in [info.quadratic, *info.variants]],
    ids=[f"{info.name}-{i}" for info in FUSED for i in range(1 + len(info.variants))],
)
def test_fused_step_allocates_nothing_parameter_sized(info, kwargs):
    params = make_params(np.float64, big=400_000)  # 3.2 MB per array
    opt = info.make(**kwargs, fused=True)
    state = opt.init(params)
    grads = [gradients(params, k) for k in range(3)]
    opt.step(params, grads[0], state)  # compiles or loads the kernels, builds the layout
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for g in grads[1:]:
            opt.step(params, g, state)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 64_000, f"{peak - base} bytes allocated during a step"


def test_reference_step_would_show_up_in_that_measurement():
    params = make_params(np.float64, big=400_000)
    opt = ds.Adam(lr=0.01, fused=False)
    state = opt.init(params)
    g = gradients(params, 0)
    opt.step(params, g, state)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        opt.step(params, g, state)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base > 400_000 * 8


# -- non-finite gradients ---------------------------------------------------------------------------
def snapshot(params, state):
    return copy.deepcopy(params), state.copy()


def assert_unchanged(params, state, snap):
    before, st = snap
    for a, b in zip(ds._tree.flatten(params)[0], ds._tree.flatten(before)[0], strict=True):
        assert a.tobytes() == b.tobytes()
    assert state.t == st.t
    for name in state.buffers:
        for a, b in zip(state.buffers[name], st.buffers[name], strict=True):
            assert a.tobytes() == b.tobytes()
    assert state.scalars == st.scalars


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_nonfinite_gradient_is_refused_and_changes_nothing(info, fused, four_threads):
    for kwargs in [info.quadratic, *info.variants]:
        params = make_params(np.float64)
        opt = info.make(**kwargs, fused=fused)
        state = opt.init(params)
        for k in range(3):
            opt.step(params, gradients(params, k), state)
        for leaf, where, value in [("big", (4_999,), np.nan), ("W", (2, 3), -np.inf), ("b", (0,), np.inf)]:
            snap = snapshot(params, state)
            g = gradients(params, 3)
            g[leaf][where] = value
            expected = f"grads['{leaf}'] has a non-finite value ({value!r} at index "
            with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace("[", r"\[")):
                opt.step(params, g, state)
            assert_unchanged(params, state, snap)
        opt.step(params, gradients(params, 3), state)  # and the next finite step goes ahead
        assert state.t == 4


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_nonfinite_skip_leaves_the_run_as_if_the_step_never_came(info, fused):
    kwargs = info.variants[0]
    params, clean = make_params(np.float64), make_params(np.float64)
    opt = info.make(**kwargs, fused=fused, nonfinite="skip")
    state, clean_state = opt.init(params), opt.init(clean)
    for k in range(6):
        if k == 2:
            g = gradients(params, k)
            g["layers"][1][()] = np.nan
            opt.step(params, g, state)
            assert state.t == 2 and state.scalars["nonfinite_skipped"] == 1.0
        opt.step(params, gradients(params, k), state)
        opt.step(clean, gradients(clean, k), clean_state)
    for a, b in zip(ds._tree.flatten(params)[0], ds._tree.flatten(clean)[0], strict=True):
        assert a.tobytes() == b.tobytes()
    assert state.t == clean_state.t == 6
    assert "nonfinite='skip'" in repr(opt)


def test_large_finite_gradient_is_not_mistaken_for_overflow():
    p = np.zeros(10, dtype=np.float32)
    g = np.full(10, 3e38, dtype=np.float32)  # its float32 sum overflows, the values are finite
    for fused in (True, False):
        opt = ds.SGD(lr=1e-40, fused=fused)
        st = opt.init(p)
        opt.step(p, g, st)
        assert st.t == 1


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
def test_nonfinite_propagate_does_not_look(fused):
    p = np.ones(5)
    opt = ds.Adam(lr=0.1, fused=fused, nonfinite="propagate")
    st = opt.init(p)
    with np.errstate(invalid="ignore"):
        opt.step(p, np.array([1.0, np.nan, 1.0, 1.0, 1.0]), st)
    assert st.t == 1 and np.isnan(p[1]) and np.isfinite(np.delete(p, 1)).all()
    assert "nonfinite='propagate'" in repr(opt)


def test_nonfinite_option_is_validated():
    with pytest.raises(
        ValueError, match=r"Adam: nonfinite must be one of 'raise', 'skip', 'propagate', got 'ignore'"
    ):
        ds.Adam(nonfinite="ignore")
    with pytest.raises(TypeError, match=r"SGD: fused must be True, False or None"):
        ds.SGD(fused="yes")


# -- backend selection, fallback and cache -----------------------------------------------------------
def test_set_backend_selects_the_path():
    assert ds.optim.get_backend() == "numba"
    ds.optim.set_backend("numpy")
    try:
        assert ds.optim.get_backend() == "numpy"
        assert not _backend.use_fused(None) and _backend.use_fused(True)
    finally:
        ds.optim.set_backend("auto")
    with pytest.raises(ValueError, match="set_backend: name must be one of 'auto', 'numba', 'numpy'"):
        ds.optim.set_backend("cuda")
    with pytest.raises(ValueError, match="set_backend: threads must satisfy threads >= 1"):
        ds.optim.set_backend(threads=0)


def test_a_second_thread_is_woken_only_for_steps_that_move_enough_memory(monkeypatch):
    """Waking a thread costs as much as one thread moving ~24 MB (MIN_BYTES_PER_THREAD), so
    a step is spread over threads by the bytes it reads and writes, not by its length."""
    monkeypatch.setattr(_backend, "_plans", {})
    before = _backend._threads
    f32, none = np.empty(8, np.float32), np.empty(0, np.float32)
    assert _backend.moved_bytes((f32, none)) == 3 * 32  # SGD: p read and written, g read
    assert _backend.moved_bytes((f32, f32, f32, none)) == 7 * 32  # Adam: and m, v
    limit = _backend.MIN_BYTES_PER_THREAD
    try:
        ds.optim.set_backend(threads=2)
        assert len(_backend._plan((limit // 12 - 1024,), limit - 1)) == 1
        big = _backend._plan((limit // 12 + 1024,), limit)
        assert len(big) == 4  # two groups per thread
        pieces = [piece for group in big for piece in group]
        assert pieces[0][1] == 0 and pieces[-1][2] == limit // 12 + 1024
        assert all(a[2] == b[1] for a, b in itertools.pairwise(pieces))  # contiguous, in order
        ds.optim.set_backend(threads=1)
        assert len(_backend._plan((limit,), 10 * limit)) == 1
    finally:
        ds.optim.set_backend(threads=before)


def test_each_step_is_planned_by_what_it_moves(monkeypatch):
    """Every leaf counts, whatever its dtype, size or place; a checked step counts the gradient
    once more, and a checked then an unchecked step on one state each get their own plan (and
    address tables), as fit takes them."""
    seen = []
    plan = _backend._plan
    monkeypatch.setattr(_backend, "_plan", lambda sizes, moved: seen.append(moved) or plan(sizes, moved))
    leaves = [np.zeros(0, np.float32), np.zeros(10, np.float32), *[np.zeros(3000) for _ in range(5)]]
    opt = ds.Adam(fused=True)
    state = opt.init(leaves)
    grads = [np.ones_like(p) for p in leaves]
    opt.step(leaves, grads, state)
    opt._apply(leaves, grads, state, check_finite=False)
    unchecked = 7 * (10 * 4 + 5 * 3000 * 8)  # p, m and v read and written, g read
    assert seen == [unchecked + (10 * 4 + 5 * 3000 * 8), unchecked]
    layout = next(iter(state._layouts.values()))
    assert {key[1] for key in layout.tables} == {True, False}  # a table set for each plan


TESTS = str(Path(__file__).parent)


def run_python(*pieces: str, **env: str) -> str:
    """Run the pieces of code (each dedented) in a fresh interpreter; return what it printed."""
    code = "\n".join(textwrap.dedent(piece) for piece in pieces)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), TESTS]), **env}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr
    return done.stdout


STEP_EVERY_RULE = """
    import numpy as np, descend as ds
    from optim_registry import STEPPED
    for info in STEPPED:
        for kwargs in [info.quadratic, *info.variants]:
            p = {"w": np.linspace(-1, 1, 70_000), "b": np.ones(3, dtype=np.float32)}
            opt = info.make(**kwargs)
            st = opt.init(p)
            for _ in range(3):
                opt.step(p, {"w": np.cos(p["w"]), "b": p["b"] * 2}, st)
            assert np.all(np.isfinite(p["w"])) and st.t == 3
"""


def test_without_numba_everything_falls_back_to_numpy():
    block = """
        import sys
        sys.modules["numba"] = None  # import numba raises ImportError
    """
    check = """
        print(ds.optim.get_backend())
        for make in (lambda: ds.Adam(fused=True), lambda: ds.optim.set_backend("numba")):
            try:
                make()
            except ImportError as exc:
                assert "numba" in str(exc), exc
            else:
                raise AssertionError("fused=True without numba must fail")
    """
    assert run_python(block, STEP_EVERY_RULE, check).split() == ["numpy"]


def test_environment_variable_chooses_the_backend():
    code = "import descend as ds, sys; print(ds.optim.get_backend(), 'numba' in sys.modules)"
    assert run_python(code, DESCEND_BACKEND="numpy").split() == ["numpy", "False"]
    assert run_python(code, DESCEND_BACKEND="auto").split() == ["numba", "True"]


def test_kernels_come_from_the_cache_in_a_new_process():
    count = """
        from descend.optim import _compile
        builds = _compile.dispatchers()
        print(sum(sum(b.stats.cache_hits.values()) for b in builds),
              sum(sum(b.stats.cache_misses.values()) for b in builds))
    """
    run_python(STEP_EVERY_RULE, count)  # compiles whatever is not cached yet
    hits, misses = map(int, run_python(STEP_EVERY_RULE, count).split())
    assert hits > 0 and misses == 0


#: STEP_EVERY_RULE for three rules of different kernels (a plain update, a rule with two buffers,
#: one with factored row and column buffers): what the cache layer does is the same for every rule
STEP_THREE_RULES = STEP_EVERY_RULE.replace(
    "for info in STEPPED:", "for info in [i for i in STEPPED if i.name in ('sgd', 'adam', 'adafactor')]:"
)


def test_unwritable_cache_directories_do_not_break_a_step(tmp_path):
    """Every kernel compiles in each process here (no cache can be read or written): three
    rules' kernels stand for all (test_kernels_come_from_the_cache_in_a_new_process steps all)."""
    assert STEP_THREE_RULES != STEP_EVERY_RULE
    refuse = """
        from numba.core import caching
        def refuse(self):
            raise PermissionError("read-only")
        caching._CacheLocator.ensure_cache_path = refuse  # no locator finds a writable directory
    """
    run_python(refuse, STEP_THREE_RULES)
    # no directory of descend's own either (a path under a file: not even root can make it)
    (tmp_path / "file").write_text("")
    check = """
        from descend.optim import _compile
        assert _compile.cache_dir() is None and _compile.dispatchers()
    """
    run_python(STEP_THREE_RULES, check, DESCEND_CACHE_DIR=str(tmp_path / "file" / "kernels"))
    run_python(STEP_THREE_RULES, check, DESCEND_CACHE_DIR="")


def test_a_forked_child_steps_with_threads_of_its_own():
    code = """
        import os, numpy as np, descend as ds
        ds.optim.set_backend(threads=2)
        p = np.linspace(-1, 1, 1_000_000)  # 64 MB moved: both threads
        opt = ds.Adam(lr=0.1)
        st = opt.init(p)
        opt.step(p, np.cos(p), st)  # the parent's pool is running
        pid = os.fork()
        if pid == 0:
            opt.step(p, np.cos(p), st)
            os._exit(0 if st.t == 2 and np.isfinite(p).all() else 1)
        _, status = os.waitpid(pid, 0)
        opt.step(p, np.cos(p), st)
        print(os.waitstatus_to_exitcode(status), int(st.t))
    """
    assert run_python(code).split() == ["0", "2"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_search_kernel_finds_every_kind_anywhere(dtype):
    """The vectorized search (a reassociated sum of x - x) answers exactly: huge finite values
    are not mistaken for overflow, and one NaN or infinity is found wherever it sits."""
    pytest.importorskip("numba")
    from descend.optim import _backend, _compile

    _backend.require_numba("test")
    search = _compile.search_unit(_backend._nonfinite_search, np.dtype(dtype))["search"]
    big = np.finfo(dtype).max
    for n in (1, 7, 1000, 65_537):
        g = np.full(n, big, dtype=dtype)
        g[::2] = -big
        assert not search(g)
        for where in {0, n // 2, n - 1}:
            for bad in (np.nan, np.inf, -np.inf):
                h = g.copy()
                h[where] = bad
                assert search(h), (n, where, bad)
    assert not search(np.zeros(0, dtype=dtype))


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("info", FUSED, ids=ids)
def test_many_leaves_of_both_dtypes_through_address_tables(info, threads, monkeypatch):
    """A step of many arrays runs as one compiled call per group of pieces (address tables):
    float32 and float64 leaves mixed in one step, leaves cut across groups, a strided
    gradient, and a NaN refused from any leaf, all as the NumPy reference does."""
    monkeypatch.setattr(_backend, "MIN_PER_THREAD", 700)
    monkeypatch.setattr(_backend, "MIN_BYTES_PER_THREAD", 1)
    monkeypatch.setattr(_backend, "_plans", {})
    before = _backend._threads
    ds.optim.set_backend(threads=threads)
    try:
        rng = np.random.default_rng(7)
        sizes = [3, 2_000, 1, 517, 64, 1_500, 9, 800]
        start = [rng.normal(size=n).astype(np.float32 if i % 2 else np.float64) for i, n in enumerate(sizes)]
        kwargs = info.variants[-1] if info.variants else info.quadratic
        fast, slow = [p.copy() for p in start], [p.copy() for p in start]
        opt_fast, opt_slow = info.make(**kwargs, fused=True), info.make(**kwargs, fused=False)
        s_fast, s_slow = opt_fast.init(fast), opt_slow.init(slow)
        for k in range(6):
            g = [np.sin(p * (k + 1)) + 0.1 * k for p in start]
            g[3] = np.repeat(g[3], 2)[::2]  # strided: read where it lies, not copied wrong
            opt_fast.step(fast, g, s_fast)
            opt_slow.step(slow, g, s_slow)
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12 if a.dtype == np.float64 else 1e-6, atol=0)
        for leaf in (0, 5, 7):
            g = [np.ones_like(p) for p in start]
            g[leaf][-1] = np.nan
            before_step = [p.copy() for p in fast]
            with pytest.raises(ValueError, match=rf"grads\[{leaf}\] has a non-finite value"):
                opt_fast.step(fast, g, s_fast)
            assert all(np.array_equal(a, b) for a, b in zip(fast, before_step, strict=True))
        assert int(s_fast.t) == 6
    finally:
        ds.optim.set_backend(threads=before)


@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
def test_a_copied_state_steps_its_own_arrays(copier):
    """A pickled or deep-copied (params, state) pair gets new arrays: its fused steps must
    update those, not the original's (the cached layouts hold views and addresses)."""
    import copy
    import pickle

    params = {f"w{i}": np.full(1000, 1.0, np.float32) for i in range(5)}
    opt = ds.Momentum(lr=0.1, fused=True)
    state = opt.init(params)
    g = {k: np.ones_like(v) for k, v in params.items()}
    opt.step(params, g, state)
    pair = (params, state)
    params2, state2 = copy.deepcopy(pair) if copier == "deepcopy" else pickle.loads(pickle.dumps(pair))
    opt.step(params2, g, state2)
    assert params["w0"][0] == np.float32(0.9)  # the original is left alone
    np.testing.assert_allclose(params2["w0"], 0.9 - 0.1 * 1.9, rtol=1e-6)
    assert int(state2.t) == 2 and int(state.t) == 1


def test_first_nonfinite_leaf_is_named_across_dtypes():
    """With float32 and float64 leaves mixed, the error names the first bad leaf in order."""
    leaves = [np.zeros(600, np.float64 if i % 2 == 0 else np.float32) for i in range(4)]
    opt = ds.Adam(fused=True)
    state = opt.init(leaves)
    g = [np.ones_like(p) for p in leaves]
    g[0][5], g[1][7] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"grads\[0\] has a non-finite value \(nan"):
        opt.step(leaves, g, state)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rprop_lets_a_nan_in_as_the_reference_does(dtype):
    """With nonfinite='propagate' a NaN gradient moves Rprop's parameter to NaN on both paths
    (its sign is neither + nor -: a kernel branching on the sign alone would leave it put)."""
    runs = []
    for fused in (True, False):
        p = np.linspace(-1.0, 1.0, 8).astype(dtype)
        opt = ds.Rprop(lr=0.1, fused=fused, nonfinite="propagate")
        state = opt.init(p)
        with np.errstate(invalid="ignore"):
            for g in ([1, -1, 0, 0, np.nan, 2, 3, 0], [1, 1, 0, 0, 1, np.nan, -3, 0]):
                opt.step(p, np.array(g, dtype=dtype), state)
        runs.append([p.tobytes(), state["prev"].tobytes(), state["step_size"].tobytes()])
    assert np.isnan(p[[4, 5]]).all() and np.isfinite(np.delete(p, [4, 5])).all()
    assert runs[0] == runs[1]
