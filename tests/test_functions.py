"""Tests for descend.functions: values against naive formulas, derivatives against finite differences."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from descend import functions as F

# ---- naive references, written from the textbook formulas with scalar math -------------------------


def ref_quadratic(x, dim=2, kappa=10.0):
    lam = [kappa ** (i / (dim - 1)) if dim > 1 else 1.0 for i in range(dim)]
    return 0.5 * sum(lam[i] * x[i] ** 2 for i in range(dim))


def ref_sphere(x, dim=2):
    return 0.5 * sum(xi**2 for xi in x)


def ref_rosenbrock(x, dim=2, a=1.0, b=100.0):
    return sum(b * (x[i + 1] - x[i] ** 2) ** 2 + (a - x[i]) ** 2 for i in range(dim - 1))


def ref_beale(p):
    x, y = p
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def ref_booth(p):
    x, y = p
    return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2


def ref_himmelblau(p):
    x, y = p
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def ref_rastrigin(x, dim=2):
    return 10 * dim + sum(xi**2 - 10 * math.cos(2 * math.pi * xi) for xi in x)


def ref_ackley(p):
    x, y = p
    return (
        -20 * math.exp(-0.2 * math.sqrt(0.5 * (x**2 + y**2)))
        - math.exp(0.5 * (math.cos(2 * math.pi * x) + math.cos(2 * math.pi * y)))
        + math.e
        + 20
    )


def ref_goldstein_price(p):
    x, y = p
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
    return a * b


def ref_six_hump_camel(p):
    x, y = p
    return (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2


def ref_styblinski_tang(x, dim=2):
    return 0.5 * sum(xi**4 - 16 * xi**2 + 5 * xi for xi in x)


def ref_saddle(p):
    return p[0] ** 2 - p[1] ** 2


def ref_monkey_saddle(p):
    return p[0] ** 3 - 3 * p[0] * p[1] ** 2


def ref_two_well(p):
    return (p[0] ** 2 - 1) ** 2 + 0.3 * p[0] + p[1] ** 2


REFERENCES = {name[4:]: fn for name, fn in globals().items() if name.startswith("ref_")}

# name, params, (number of global minima, number of minima listed)
CASES = [
    ("quadratic", {}, (1, 1)),
    ("quadratic", {"dim": 6, "kappa": 100.0}, (1, 1)),
    ("sphere", {}, (1, 1)),
    ("sphere", {"dim": 4}, (1, 1)),
    ("rosenbrock", {}, (1, 1)),
    ("rosenbrock", {"dim": 3}, (1, 1)),
    ("rosenbrock", {"dim": 5}, (1, 2)),
    ("rosenbrock", {"a": 2.0, "b": 10.0}, (1, 1)),
    ("beale", {}, (1, 1)),
    ("booth", {}, (1, 1)),
    ("himmelblau", {}, (4, 4)),
    ("rastrigin", {}, (1, 121)),
    ("rastrigin", {"dim": 3}, (1, 1331)),
    ("ackley", {}, (1, 121)),
    ("goldstein_price", {}, (1, 4)),
    ("six_hump_camel", {}, (2, 6)),
    ("styblinski_tang", {}, (1, 4)),
    ("styblinski_tang", {"dim": 3}, (1, 8)),
    ("saddle", {}, (0, 0)),
    ("monkey_saddle", {}, (0, 0)),
    ("two_well", {}, (1, 2)),
]
IDS = [n + "".join(f"-{k}{v}" for k, v in p.items()) for n, p, _ in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    name, params, counts = request.param
    return F.get(name, **params), params, counts


def sample(f, n, seed=0):
    """``n`` seeded points uniformly in the plotting domain."""
    lo, hi = np.array(f.domain).T
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, f.dim))


def fd_jacobian(fun, x):
    """Fourth-order central differences, column j = d fun / d x_j."""
    cols = []
    for j in range(len(x)):
        h = 1e-3 * max(1.0, abs(x[j]))
        e = np.zeros_like(x)
        e[j] = h
        d = (
            np.asarray(fun(x - 2 * e))
            - 8 * np.asarray(fun(x - e))
            + 8 * np.asarray(fun(x + e))
            - np.asarray(fun(x + 2 * e))
        )
        cols.append(d / (12 * h))
    return np.stack(cols, axis=-1)


def test_every_name_has_a_case_and_a_reference():
    assert names_covered() == set(F.names())
    assert set(REFERENCES) == set(F.names())
    assert len(F.names()) == 14


def names_covered():
    return {name for name, _, _ in CASES}


# ---- values and derivatives ----------------------------------------------------------------------


def test_value_matches_naive_formula(case):
    f, params, _ = case
    ref = REFERENCES[f.name]
    for x in sample(f, 20):
        want = ref(list(x), **params)
        assert f(x) == pytest.approx(want, rel=1e-12, abs=1e-12)
        assert isinstance(f(x), float)


def test_gradient_matches_finite_differences(case):
    f, _, _ = case
    for x in sample(f, 8, seed=1):
        g = f.grad(x)
        assert g.shape == (f.dim,) and g.dtype == np.float64
        fd = fd_jacobian(f, x)
        scale = max(1.0, np.max(np.abs(g)), 1e-3 * abs(f(x)))
        np.testing.assert_allclose(g, fd, rtol=0, atol=1e-6 * scale)


def test_hessian_matches_finite_differences_and_is_symmetric(case):
    f, _, _ = case
    for x in sample(f, 6, seed=2):
        H = f.hessian(x)
        assert H.shape == (f.dim, f.dim) and H.dtype == np.float64
        scale = max(1.0, np.max(np.abs(H)))
        np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-13 * scale)
        fd = fd_jacobian(f.grad, x)
        np.testing.assert_allclose(H, fd, rtol=0, atol=1e-6 * max(scale, np.max(np.abs(f.grad(x)))))


def test_value_and_grad_agree_with_call_and_grad(case):
    f, _, _ = case
    for x in sample(f, 3, seed=3):
        v, g = f.value_and_grad(x)
        assert v == f(x)
        np.testing.assert_array_equal(g, f.grad(x))


def test_grid_matches_pointwise_calls(case):
    f, _, _ = case
    if f.dim != 2:
        with pytest.raises(ValueError, match=rf"{f.name}: grid\(\) needs a 2-D objective.*dim={f.dim}"):
            f.grid(np.zeros((2, 2)), np.zeros((2, 2)))
        return
    (x0, x1), (y0, y1) = f.domain
    X, Y = np.meshgrid(np.linspace(x0, x1, 7), np.linspace(y0, y1, 5))
    Z = f.grid(X, Y)
    assert Z.shape == X.shape
    want = np.array([[f([a, b]) for a, b in zip(xr, yr, strict=True)] for xr, yr in zip(X, Y, strict=True)])
    np.testing.assert_allclose(Z, want, rtol=1e-14, atol=1e-14)


def test_inputs_accept_lists_and_ints(case):
    f, _, _ = case
    x = [1] * f.dim
    assert f(x) == f(np.ones(f.dim))
    np.testing.assert_array_equal(f.grad(x), f.grad(np.ones(f.dim)))


# ---- minima -------------------------------------------------------------------------------------


def test_minima_are_stationary_strict_and_ordered(case):
    f, _, (n_global, n_total) = case
    minima = f.minima
    assert len(f.global_minima) == n_global
    assert len(minima) == n_total
    for a, b in zip(minima[:n_global], f.global_minima, strict=True):
        np.testing.assert_array_equal(a, b)
    if not minima:
        assert f.minimum_value is None
        return
    assert f.minimum_value is not None
    values = [f(m) for m in minima]
    for i, m in enumerate(minima):
        assert m.shape == (f.dim,) and m.dtype == np.float64
        if f.name == "ackley" and not m.any():
            continue  # not differentiable at the origin; see test_ackley_origin_convention
        H = f.hessian(m)
        scale = max(1.0, np.max(np.abs(H)) * max(1.0, np.max(np.abs(m))))
        assert np.linalg.norm(f.grad(m)) <= 1e-10 * scale, (i, m)
        assert np.linalg.eigvalsh(H)[0] > 0, (i, m)
    tol = 1e-12 * max(1.0, abs(f.minimum_value))
    for v in values[:n_global]:
        assert v == pytest.approx(f.minimum_value, abs=tol)
    for v in values[n_global:]:
        assert v > f.minimum_value + tol  # no local minimum at or below the global value
    assert values[n_global:] == sorted(values[n_global:])
    distinct = np.unique(np.round(np.stack(minima), 8), axis=0)
    assert len(distinct) == len(minima)


def test_minima_are_lower_than_their_neighbourhood(case):
    f, _, _ = case
    rng = np.random.default_rng(4)
    for m in f.minima[:50]:
        for _ in range(5):
            step = rng.normal(size=f.dim)
            step *= 1e-3 / np.linalg.norm(step)
            assert f(m + step) > f(m)


def test_nearest_minimum(case):
    f, _, _ = case
    if not f.minima:
        with pytest.raises(ValueError, match=f"{f.name}: has no minima"):
            f.nearest_minimum(f.start)
        return
    for m in f.minima[:10]:
        found, dist = f.nearest_minimum(m + 1e-4)
        np.testing.assert_array_equal(found, m)
        assert dist == pytest.approx(1e-4 * math.sqrt(f.dim))


def test_attributes_and_immutability(case):
    f, params, _ = case
    assert f.name in F.names()
    assert all(f.params[k] == v for k, v in params.items())
    assert len(f.domain) == f.dim and all(lo < hi for lo, hi in f.domain)
    lo, hi = np.array(f.domain).T
    assert np.all((lo <= f.start) & (f.start <= hi))
    assert isinstance(f.log_scale, bool) and f.description and "\n" not in f.description
    s = f.start
    s += 100.0  # an in-place optimizer may write to it
    assert not np.array_equal(f.start, s)
    for m in f.minima[:3]:
        with pytest.raises(ValueError):
            m[0] = 5.0
    assert repr(f).startswith(f"Objective({f.name!r}")


# ---- individual functions -----------------------------------------------------------------------


def test_known_values():
    assert F.get("rosenbrock")(F.get("rosenbrock").start) == pytest.approx(24.2)
    np.testing.assert_array_equal(F.get("rosenbrock", dim=5).start, [-1.2, 1, -1.2, 1, -1.2])
    gp = F.get("goldstein_price")
    assert [gp(m) for m in gp.minima] == pytest.approx([3.0, 30.0, 84.0, 840.0], rel=1e-14)
    np.testing.assert_array_equal(gp.global_minima[0], [0.0, -1.0])
    camel = F.get("six_hump_camel")
    assert camel.minimum_value == pytest.approx(-1.0316284534898774, rel=1e-14)
    np.testing.assert_allclose(
        camel.global_minima, [[-0.0898420131, 0.7126564030], [0.0898420131, -0.7126564030]]
    )
    st = F.get("styblinski_tang", dim=3)
    assert st.minimum_value == pytest.approx(-39.16616570377142 * 3, rel=1e-12)
    np.testing.assert_allclose(F.get("himmelblau").minima[0], [3.0, 2.0], atol=1e-14)
    np.testing.assert_allclose(F.get("beale").minima[0], [3.0, 0.5])
    np.testing.assert_allclose(F.get("booth").minima[0], [1.0, 3.0])
    np.testing.assert_array_equal(F.get("rosenbrock", a=2.0, b=10.0).minima[0], [2.0, 4.0])


def test_quadratic_spectrum():
    f = F.get("quadratic", dim=6, kappa=100.0)
    lam = np.linalg.eigvalsh(f.hessian(np.zeros(6)))
    np.testing.assert_allclose(lam, np.geomspace(1, 100, 6))
    assert lam[-1] / lam[0] == pytest.approx(100.0)
    np.testing.assert_array_equal(F.get("sphere", dim=3).hessian([1, 2, 3]), np.eye(3))


def test_rosenbrock_local_minimum_in_4_to_7_dimensions():
    for dim in (4, 5, 6, 7):
        f = F.get("rosenbrock", dim=dim)
        assert len(f.minima) == 2
        local = f.minima[1]
        assert local[0] < -0.7 and np.all(local[1:] > 0)  # near (-1, 1, ..., 1)
    assert F.get("rosenbrock", dim=4).minima[1] == pytest.approx([-0.7756, 0.6131, 0.3821, 0.1459], abs=1e-3)


def test_rosenbrock_minima_cheap_in_high_dimension():
    f = F.get("rosenbrock", dim=3000)
    glob, local = f.minima
    np.testing.assert_array_equal(glob, np.ones(3000))
    assert np.linalg.norm(f.grad(local)) < 1e-9
    assert f(local) == pytest.approx(3.9866238543, rel=1e-9)


def test_lattice_listing_limits():
    f = F.get("rastrigin", dim=4)  # 11**4 minima: only those one coordinate away are listed
    assert len(f.minima) == 1 + 4 * 10
    assert all(np.count_nonzero(m) <= 1 for m in f.minima)
    assert len(F.get("rastrigin", dim=300).minima) == 1  # 3000 neighbours: too many
    st = F.get("styblinski_tang", dim=12)
    assert len(st.minima) == 1 + 12
    assert st.minimum_value == pytest.approx(12 * -39.16616570377142, rel=1e-12)


def test_two_well_plain_gd_ends_in_shallow_minimum():
    f = F.get("two_well")
    deep, shallow = f.minima
    assert f(shallow) > f(deep) == f.minimum_value
    np.testing.assert_array_equal(f.global_minima, [deep])
    x = f.start
    for _ in range(3000):
        x -= 0.01 * f.grad(x)
    m, dist = f.nearest_minimum(x)
    np.testing.assert_array_equal(m, shallow)
    assert dist < 1e-8
    # the minima are the stationary points of the quartic, x-roots of 4x^3 - 4x + 0.3
    for p in (deep, shallow):
        assert 4 * p[0] ** 3 - 4 * p[0] + 0.3 == pytest.approx(0.0, abs=1e-14) and p[1] == 0


def test_saddle():
    f = F.get("saddle")
    np.testing.assert_array_equal(f.grad([0.0, 0.0]), [0.0, 0.0])
    lam = np.linalg.eigvalsh(f.hessian([0.0, 0.0]))
    assert lam[0] < 0 < lam[1]
    assert f.minima == [] and f.minimum_value is None
    x = f.start  # GD crawls to the saddle, lingers, then escapes along y
    for _ in range(300):
        x -= 0.01 * f.grad(x)
    assert np.linalg.norm(x) < 0.05
    for _ in range(400):
        x -= 0.01 * f.grad(x)
    assert abs(x[1]) > 1


def test_monkey_saddle():
    f = F.get("monkey_saddle")
    np.testing.assert_array_equal(f.grad([0.0, 0.0]), [0.0, 0.0])
    np.testing.assert_array_equal(f.hessian([0.0, 0.0]), np.zeros((2, 2)))
    assert f([-10.0, 0.0]) < f([-1.0, 0.0]) < f([0.0, 0.0])  # unbounded below
    assert f.minimum_value is None


def test_ackley_origin_convention():
    f = F.get("ackley")
    assert f([0.0, 0.0]) == 0.0
    np.testing.assert_array_equal(f.grad([0.0, 0.0]), [0.0, 0.0])
    assert np.isnan(f.hessian([0.0, 0.0])).all()
    # next to the origin the gradient has the cone's slope, not 0
    assert np.linalg.norm(f.grad([1e-9, 0.0])) == pytest.approx(2 * math.sqrt(2), rel=1e-6)


# ---- errors -------------------------------------------------------------------------------------


def test_names_and_case_insensitive_get():
    assert F.get("Rosenbrock").name == "rosenbrock"
    assert F.get("SIX-HUMP-CAMEL").name == "six_hump_camel"


def test_unknown_name():
    listed = ", ".join(F.names())
    msg = f"functions.get: unknown function 'xyz'; known: {listed}"
    with pytest.raises(ValueError, match=re.escape(msg)):
        F.get("xyz")
    with pytest.raises(ValueError, match=r"did you mean 'rosenbrock'\? known: quadratic"):
        F.get("rosenbrok")
    with pytest.raises(ValueError, match=r"functions\.get: unknown function 3; known: "):
        F.get(3)


@pytest.mark.parametrize("method", ["__call__", "grad", "hessian", "value_and_grad", "nearest_minimum"])
def test_wrong_input_length(method):
    f = F.get("rosenbrock", dim=3)
    msg = "rosenbrock: x must have shape (3,) since dim=3, got shape (2,)"
    with pytest.raises(ValueError, match=re.escape(msg)):
        getattr(f, method)([1.0, 2.0])
    with pytest.raises(ValueError, match=re.escape("got shape (3, 1)")):
        getattr(f, method)(np.ones((3, 1)))


def test_non_numeric_input():
    f = F.get("beale")
    for bad in (["a", "b"], [1 + 2j, 0.0], [None, 1.0], [True, False], [[1.0], [1.0, 2.0]]):
        with pytest.raises(TypeError, match="beale: x must be an array-like of 2 real numbers"):
            f(bad)


def test_grid_shape_mismatch():
    with pytest.raises(ValueError, match=r"booth: grid\(\) needs X and Y of the same shape"):
        F.get("booth").grid(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize(
    ("name", "params", "exc", "msg"),
    [
        (
            "quadratic",
            {"kappa": 0.5},
            ValueError,
            "quadratic: kappa must satisfy kappa >= 1 (finite), got 0.5",
        ),
        ("quadratic", {"kappa": float("nan")}, ValueError, "quadratic: kappa must satisfy kappa >= 1"),
        ("quadratic", {"kappa": True}, TypeError, "quadratic: kappa must be a real number, got True (bool)"),
        ("quadratic", {"dim": 0}, ValueError, "quadratic: dim must satisfy dim >= 1, got 0"),
        ("quadratic", {"dim": 2.0}, TypeError, "quadratic: dim must be an integer, got 2.0"),
        ("quadratic", {"dim": 1, "kappa": 10.0}, ValueError, "quadratic: kappa must be 1 when dim=1"),
        ("sphere", {"dim": -1}, ValueError, "sphere: dim must satisfy dim >= 1, got -1"),
        ("rosenbrock", {"dim": 1}, ValueError, "rosenbrock: dim must satisfy dim >= 2, got 1"),
        ("rosenbrock", {"b": 0.0}, ValueError, "rosenbrock: b must satisfy b > 0 (finite), got 0.0"),
        ("rosenbrock", {"a": float("inf")}, ValueError, "rosenbrock: a must satisfy a finite, got inf"),
        ("rosenbrock", {"dim": 3, "a": 2.0}, ValueError, "rosenbrock: a must be 1 when dim > 2"),
        ("rastrigin", {"dim": False}, TypeError, "rastrigin: dim must be an integer, got False (bool)"),
        ("styblinski_tang", {"dim": 0}, ValueError, "styblinski_tang: dim must satisfy dim >= 1, got 0"),
        ("beale", {"dim": 3}, TypeError, "functions.get: 'beale' takes no parameters, got 'dim'"),
        ("sphere", {"kappa": 2.0}, TypeError, "functions.get: 'sphere' takes parameters 'dim', got 'kappa'"),
    ],
)
def test_bad_parameters(name, params, exc, msg):
    with pytest.raises(exc, match=re.escape(msg)):
        F.get(name, **params)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("rosenbrock", {}),
        ("rosenbrock", {"a": 0.5, "b": 3.0}),
        ("rosenbrock", {"dim": 5}),
        ("beale", {}),
        ("quadratic", {}),
        ("quadratic", {"kappa": 1000.0}),
        ("quadratic", {"dim": 3}),
        ("sphere", {}),
    ],
)
def test_value_and_grad_fast_path_gives_the_array_paths_bits(name, params):
    """The scalar value_and_grad of the 2-D surfaces (every loop step's call) has the bits of
    _value and _grad: the same operations in the same order, overflow included."""
    f = F.get(name, **params)
    rng = np.random.default_rng(7)
    points = [
        *rng.uniform(-5.0, 5.0, (3000, f.dim)),
        *rng.normal(0.0, 1e-3, (300, f.dim)),
        *rng.uniform(-1e6, 1e6, (300, f.dim)),
        *(np.full(f.dim, v) for v in (0.0, -0.0, 1e110, -1e200, np.inf, np.nan)),
        f.start,
    ]
    with np.errstate(all="ignore"):
        for p in points:
            value, grad = f.value_and_grad(p)
            want_value, want_grad = float(f._value(np.asarray(p))), f._grad(np.asarray(p))
            assert type(value) is float and grad.dtype == np.float64 and grad.shape == (f.dim,)
            assert np.array_equal([value], [want_value], equal_nan=True), (p, value, want_value)
            assert np.signbit(value) == np.signbit(want_value) or np.isnan(value)
            assert np.array_equal(grad, want_grad, equal_nan=True), (p, grad, want_grad)
