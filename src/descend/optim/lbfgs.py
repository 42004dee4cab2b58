"""L-BFGS as torch.optim.LBFGS: curvature pairs, the two-loop recursion and a strong Wolfe search."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import numpy as np

from .._tree import as_float_array, flatten, leaf_paths
from .._validation import check_int, check_real, describe, invalid, wrong_type
from .base import Optimizer, OptState

__all__ = ["LBFGS"]

#: ``fun_and_grad(params) -> (loss, grads)``: the objective and its gradient at ``params`` as
#: they are when it is called (``grads`` has the structure of ``params``)
FunAndGrad = Callable[[Any], tuple[Any, Any]]
#: ``on_iterate(loss, flat_grad, t)``, see :meth:`LBFGS.minimize_step`
OnIterate = Callable[[float | None, np.ndarray | None, float], Any]

# the state's vectors laid end to end live in OptState._layouts under this key (see _flat)
_FLAT = ("lbfgs:flat",)


class LBFGS(Optimizer):
    r"""L-BFGS (Liu & Nocedal, 1989) exactly as ``torch.optim.LBFGS``, driven by the objective.

    One :meth:`minimize_step` is one ``torch.optim.LBFGS.step(closure)``: up to ``max_iter``
    iterations (``max_eval`` evaluations of the objective), each of which updates the memory of
    the last ``history_size`` curvature pairs, computes a direction by the two-loop recursion
    (Nocedal & Wright, Algorithm 7.4) and moves along it:

    .. math::

        s_{k-1} &= t_{k-1} d_{k-1}, \quad y_{k-1} = g_k - g_{k-1}, \quad
        \rho_{k-1} = 1 / y_{k-1}^\top s_{k-1} \quad (\text{kept when } y^\top s > 10^{-10}) \\
        H_0 &= \frac{y_{k-1}^\top s_{k-1}}{y_{k-1}^\top y_{k-1}}, \quad
        d_k = -H_k g_k \ \text{(two loops over the pairs, newest first, then oldest first)} \\
        x_{k+1} &= x_k + t_k d_k

    with :math:`d_1 = -g_1` and :math:`t_1 = \min(1, 1/\lVert g_1\rVert_1)\,\eta`. Without a
    line search :math:`t_k = \eta` (``lr``); with ``line_search_fn="strong_wolfe"`` the step
    starts at :math:`\eta` and is found by bracketing and zooming with cubic interpolation
    until the strong Wolfe conditions (Nocedal & Wright, section 3.1) hold,

    .. math::

        f(x + t d) \le f(x) + c_1 t\, g^\top d, \qquad
        \lvert g(x + t d)^\top d\rvert \le -c_2\, g^\top d, \qquad c_1 = 10^{-4},\ c_2 = 0.9.

    A step ends early when :math:`\max_i |g_i|` <= ``tolerance_grad``, when
    :math:`g^\top d > -` ``tolerance_change``, or when the iterate or the loss changes by
    less than ``tolerance_change``. Parameters given as several arrays are laid end to end in
    one vector, in their order (torch's ``_params``), and must share one dtype.

    Driving it: ``opt.minimize_step(fun_and_grad, params, state)`` with
    ``fun_and_grad(params) -> (loss, grads)`` (torch's closure), ``ds.minimize(...,
    optimizer="lbfgs")``, where one step is one iteration (see :func:`descend.minimize`), or
    ``ds.fit(model, data, optimizer="lbfgs", batch_size=None)``: full-batch iterations over any
    source, with a strong-Wolfe line search by default (``fit_options``).
    :meth:`step` with a gradient alone is refused: the rule needs the objective at trial points.
    ``state.t`` counts iterations (torch's ``n_iter``), ``state.scalars["func_evals"]`` the
    evaluations; the curvature pairs are per-leaf buffers ``old_dirs/j``, ``old_stps/j``
    (``j`` a slot of a ring of ``history_size``: ``scalars["head"]`` is the oldest pair's slot,
    ``scalars["count"]`` how many are held, ``scalars["ro/j"]`` their :math:`\rho`), beside
    ``d``, ``prev_flat_grad``, ``t``, ``H_diag`` and ``prev_loss``: plain arrays and numbers,
    which :func:`~descend.optim.save_state` writes and :func:`~descend.optim.load_state` reads.

    Parameters
    ----------
    lr : step scale :math:`\eta`, ``>= 0`` (default 1; not a schedule). max_iter : iterations
    per :meth:`minimize_step`, ``>= 1`` (default 20). max_eval : evaluations per
    :meth:`minimize_step`, ``>= 1`` (default ``max_iter * 5 // 4``). tolerance_grad : ``>= 0``
    (default 1e-7). tolerance_change : ``>= 0`` (default 1e-9; the line search keeps its own
    1e-9, as torch's does). history_size : curvature pairs kept, ``>= 1`` (default 100).
    line_search_fn : ``None`` (default: fixed steps) or ``"strong_wolfe"``.

    Warning
    -------
    torch's defaults differ from SciPy's ``minimize(method="L-BFGS-B")``: 100 pairs, not 10;
    no bounds; no line search unless asked for (SciPy always searches, with its own
    conditions); tolerances on the largest gradient entry and on changes of the loss, not
    SciPy's ``gtol``/``ftol``. It needs ``param_bytes * (2 * history_size + 2)`` bytes of
    state once the memory is full. Weight decay and ``maximize`` are not options (as in torch):
    put them in the objective.

    Notes
    -----
    In float64 the iterates are torch's to the last bit on the built-in 2-D surfaces (tested):
    ``y += a x`` is rounded once, as torch's ``add_(x, alpha=a)`` (a fused multiply-add,
    emulated exactly), and a Python number divided by a 0-d tensor is a reciprocal times the
    number, as in torch. torch's square root (MKL) can differ from the correctly rounded one in
    the last bit, and its dot products of longer vectors add in another order: there the paths
    agree to rounding, which a chaotic surface can grow.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> f = ds.functions.get("rosenbrock")
    >>> x = f.start; opt = ds.LBFGS(line_search_fn="strong_wolfe"); s = opt.init(x)
    >>> for _ in range(2):   # each: up to 20 iterations, 25 evaluations (torch's step(closure))
    ...     loss = opt.minimize_step(lambda p: (f(p), f.grad(p)), x, s)
    >>> np.round(x, 4), int(s.t), int(s.scalars["func_evals"])
    (array([1., 1.]), 35, 44)

    References
    ----------
    D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large scale optimization",
    Mathematical Programming 45, 1989. J. Nocedal and S. J. Wright, *Numerical Optimization*,
    2nd ed., Springer 2006: chapter 7 (Algorithm 7.4, the two-loop recursion) and chapter 3
    (the strong Wolfe conditions, Algorithms 3.5 and 3.6). PyTorch's ``torch/optim/lbfgs.py``
    (after Schmidt's minFunc), which this follows operation for operation.
    """

    name = "lbfgs"
    # fit: full-batch iterations with a line search (torch's default has none: a fixed lr x
    # the direction, which overshoots on a loss as curved as a logistic regression's)
    fit_lr = 1.0
    fit_options = MappingProxyType({"line_search_fn": "strong_wolfe"})
    race_lr = 1.0
    color = "#9edae5"
    marker = "+"
    elementwise = False
    needs_objective = True
    fused = None  # no kernel: one vector, updated by NumPy

    def __init__(
        self,
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ):
        owner = self._owner
        if callable(lr) and not isinstance(lr, (bool, np.bool_)):
            raise wrong_type(owner, "lr", lr, "a non-negative real number (L-BFGS takes no schedule)")
        self.lr = check_real(owner, "lr", lr, low=0.0)
        self.max_iter = check_int(owner, "max_iter", max_iter, low=1)
        self.max_eval = (
            self.max_iter * 5 // 4 if max_eval is None else check_int(owner, "max_eval", max_eval, low=1)
        )
        self.tolerance_grad = check_real(owner, "tolerance_grad", tolerance_grad, low=0.0)
        self.tolerance_change = check_real(owner, "tolerance_change", tolerance_change, low=0.0)
        self.history_size = check_int(owner, "history_size", history_size, low=1)
        if line_search_fn is not None and line_search_fn != "strong_wolfe":
            raise invalid(owner, "line_search_fn", line_search_fn, "be None or 'strong_wolfe'")
        self.line_search_fn = line_search_fn

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "line_search_fn": self.line_search_fn}

    # -- state ------------------------------------------------------------------------------------
    def init(self, params: Any) -> OptState:
        """Fresh state for ``params`` (an array, or a list/tuple/dict of arrays of one dtype)."""
        leaves, treedef = flatten(params)
        for leaf, path in zip(leaves, leaf_paths(treedef), strict=True):
            as_float_array(leaf, what=f"{self._owner}.init: params{path}")
        dtypes = sorted({str(leaf.dtype) for leaf in leaves})
        if len(dtypes) > 1:
            raise TypeError(
                f"{self._owner}.init: every parameter array must have the same dtype (they are laid "
                f"end to end in one vector, as torch's LBFGS does), got {', '.join(dtypes)}"
            )
        if not sum(leaf.size for leaf in leaves):
            raise ValueError(f"{self._owner}.init: params must hold at least one number")
        state = OptState(
            optimizer=self.name,
            t=np.int64(0),
            treedef=treedef,
            shapes=[leaf.shape for leaf in leaves],
            dtypes=[leaf.dtype for leaf in leaves],
            scalars={"func_evals": 0.0, "count": 0.0, "head": 0.0},
        )
        _new_vector(state, "d")
        _new_vector(state, "prev_flat_grad")
        return state

    # -- the update -------------------------------------------------------------------------------
    def step(self, params: Any, grads: Any, state: OptState) -> None:
        """Refused: L-BFGS needs the objective at trial points, not a gradient alone."""
        raise TypeError(
            f"{self._owner}.step: L-BFGS needs the objective, not a gradient alone (its memory "
            "and line search evaluate it at new points): call "
            "opt.minimize_step(fun_and_grad, params, state), with fun_and_grad(params) -> "
            "(loss, grads), for one torch LBFGS.step(closure), or ds.minimize(fun, x0, "
            "optimizer='lbfgs')"
        )

    def minimize_step(
        self,
        fun_and_grad: FunAndGrad,
        params: Any,
        state: OptState,
        *,
        evaluated: tuple[Any, Any] | None = None,
        on_iterate: OnIterate | None = None,
    ) -> float:
        """One ``torch.optim.LBFGS.step(closure)``: up to ``max_iter`` iterations, in place.

        ``fun_and_grad(params) -> (loss, grads)`` is called with ``params`` as they are (moved
        to trial points in place and put back). Returns the loss at ``params`` on entry.

        ``evaluated``: ``(loss, grads)`` at ``params`` when the caller has it; it stands for
        the step's first evaluation (and counts in ``func_evals``, as torch counts it).
        ``on_iterate(loss, flat_grad, t)`` is called after every iteration that reached a new
        iterate (``params`` are there), with the loss and gradient (laid flat) there, or
        ``None`` for both where the step did not evaluate them (a fixed-step iteration that is
        the step's last, as torch), and the step length ``t`` taken; returning ``True`` ends
        the step there.
        """
        leaves = self._check_params(params, state)
        # as torch: a division by zero or an overflow gives inf/NaN, which the tests that follow
        # (and a caller watching for divergence) see; no warnings
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return self._step(fun_and_grad, params, leaves, state, evaluated, on_iterate)

    def _step(
        self,
        fun_and_grad: FunAndGrad,
        params: Any,
        leaves: list[np.ndarray],
        state: OptState,
        evaluated: tuple[Any, Any] | None,
        on_iterate: OnIterate | None,
    ) -> float:
        vec = _flat(state)
        d, prev_flat_grad = vec["d"], vec["prev_flat_grad"]
        d_leaves = state.buffers["d"]
        lr, max_iter, max_eval = self.lr, self.max_iter, self.max_eval
        tolerance_grad, tolerance_change = self.tolerance_grad, self.tolerance_change
        scalars = state.scalars

        def evaluate() -> tuple[float, np.ndarray]:
            return self._flat_loss_grad(fun_and_grad(params), state)

        # evaluate initial f(x) and df/dx
        loss, flat_grad = evaluate() if evaluated is None else self._flat_loss_grad(evaluated, state)
        orig_loss = loss
        current_evals = 1
        scalars["func_evals"] += 1
        if np.max(np.abs(flat_grad)) <= tolerance_grad:
            return orig_loss

        t = scalars.get("t", math.nan)
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state.t = np.int64(state.t + 1)

            # compute the direction
            if state.t == 1:
                np.negative(flat_grad, out=d)
                scalars["count"] = scalars["head"] = 0.0
                scalars["H_diag"] = 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = np.dot(y, s)
                if ys > 1e-10:
                    self._remember(state, y, s, 1.0 / ys)
                    scalars["H_diag"] = ys / np.dot(y, y)
                self._two_loop(state, flat_grad, d)
            np.copyto(prev_flat_grad, flat_grad)
            scalars["prev_loss"] = prev_loss = loss

            # compute the step length
            if state.t == 1:
                t = min(1.0, 1.0 / np.sum(np.abs(flat_grad))) * lr
            else:
                t = lr
            scalars["t"] = t
            gtd = np.dot(flat_grad, d)  # directional derivative
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            evaluated_here = True
            if self.line_search_fn is not None:
                x_init = [p.copy() for p in leaves]

                def obj_func(t: float, x_init: list[np.ndarray] = x_init) -> tuple[float, np.ndarray]:
                    _add_grad(leaves, t, d_leaves)
                    out = evaluate()
                    for p, x in zip(leaves, x_init, strict=True):
                        np.copyto(p, x)
                    return out

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals
                )
                scalars["t"] = t
                _add_grad(leaves, t, d_leaves)
                opt_cond = np.max(np.abs(flat_grad)) <= tolerance_grad
            else:
                _add_grad(leaves, t, d_leaves)
                opt_cond = False
                evaluated_here = n_iter != max_iter
                if evaluated_here:
                    # not after the step's last iteration: in a stochastic setting the next
                    # step's own first evaluation is the useful one
                    loss, flat_grad = evaluate()
                    opt_cond = np.max(np.abs(flat_grad)) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            scalars["func_evals"] += ls_func_evals

            if on_iterate is not None:
                seen = (loss, flat_grad) if evaluated_here else (None, None)
                if on_iterate(seen[0], seen[1], t) is True:
                    break

            # check conditions
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.max(np.abs(d * t)) <= tolerance_change:  # lack of progress
                break
            if abs(loss - prev_loss) < tolerance_change:
                break
        return orig_loss

    # -- pieces -----------------------------------------------------------------------------------
    def _check_params(self, params: Any, state: OptState) -> list[np.ndarray]:
        owner = f"{self._owner}.minimize_step"
        if not isinstance(state, OptState):
            raise TypeError(f"{owner}: state must be the OptState returned by init(), got {describe(state)}")
        if state.optimizer != self.name:
            raise ValueError(f"{owner}: state belongs to optimizer {state.optimizer!r}, not {self.name!r}")
        leaves, treedef = flatten(params)
        if treedef != state.treedef:
            raise ValueError(f"{owner}: params have a different structure from the one init() saw")
        for p, shape, dtype in zip(leaves, state.shapes, state.dtypes, strict=True):
            if not (
                isinstance(p, np.ndarray) and p.shape == shape and p.dtype == dtype and p.flags.writeable
            ):
                self._refuse_leaves(owner, leaves, leaves, state)
        return leaves

    def _flat_loss_grad(self, out: Any, state: OptState) -> tuple[float, np.ndarray]:
        """``(loss, grads)`` from ``fun_and_grad`` as a float and one new flat vector."""
        owner = f"{self._owner}.minimize_step"
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"{owner}: fun_and_grad(params) must return (loss, grads), got {describe(out)}")
        loss, grads = out
        g_leaves, g_def = flatten(grads, what="grads")
        if g_def != state.treedef:
            raise ValueError(f"{owner}: fun_and_grad returned grads of another structure than params")
        dtype = state.dtypes[0] if state.dtypes else np.float64
        parts = []
        for g, shape, path in zip(g_leaves, state.shapes, leaf_paths(state.treedef), strict=True):
            g = np.asarray(g)
            if g.shape != shape or g.dtype.kind not in "fiu":
                raise ValueError(
                    f"{owner}: grads{path} is {g.dtype}{list(g.shape)}, params{path} is {list(shape)}"
                )
            parts.append(g.reshape(-1))
        flat = np.concatenate(parts).astype(dtype, copy=False) if len(parts) != 1 else parts[0].astype(dtype)
        return float(loss), flat

    def _remember(self, state: OptState, y: np.ndarray, s: np.ndarray, ro: float) -> None:
        """Keep the pair (y, s): in a free slot, or over the oldest once ``history_size`` are held."""
        sc = state.scalars
        count, head, m = int(sc["count"]), int(sc["head"]), self.history_size
        if count == m:  # shift history by one (limited memory)
            slot = head
            sc["head"] = float((head + 1) % m)
        else:
            slot = (head + count) % m
            sc["count"] = float(count + 1)
        vec = _flat(state)
        for name, value in ((f"old_dirs/{slot}", y), (f"old_stps/{slot}", s)):
            if name not in vec:
                vec = _new_vector(state, name)
            np.copyto(vec[name], value)
        sc[f"ro/{slot}"] = ro

    def _two_loop(self, state: OptState, flat_grad: np.ndarray, out: np.ndarray) -> None:
        """``out = -H g``: the two-loop recursion over the pairs held (Nocedal & Wright, Alg. 7.4)."""
        sc, vec = state.scalars, _flat(state)
        count, head = int(sc["count"]), int(sc["head"])
        slots = [(head + i) % self.history_size for i in range(count)]  # oldest first
        old_dirs = [vec[f"old_dirs/{j}"] for j in slots]
        old_stps = [vec[f"old_stps/{j}"] for j in slots]
        ro = [sc[f"ro/{j}"] for j in slots]
        al = [0.0] * count
        q = np.negative(flat_grad)
        for i in range(count - 1, -1, -1):
            al[i] = np.dot(old_stps[i], q) * ro[i]
            _axpy(q, -al[i], old_dirs[i])
        # multiply by the initial Hessian; r is the direction
        r = q * sc["H_diag"]
        for i in range(count):
            be_i = np.dot(old_dirs[i], r) * ro[i]
            _axpy(r, al[i] - be_i, old_stps[i])
        np.copyto(out, r)


# -- the state's vectors ----------------------------------------------------------------------------
def _flat(state: OptState) -> dict[str, np.ndarray]:
    """Each buffer of ``state`` as one flat vector (the leaves end to end, torch's order), its
    per-leaf arrays being views of it, so that save_state, load_state and copies see plain
    leaf-shaped buffers. A state whose buffers are not those views (one loaded or copied) gets
    them here, its values unchanged."""
    cache = state._layouts.get(_FLAT)
    if (
        cache is None
        or len(cache) != len(state.buffers)
        or any(state.buffers.get(name) is not views for name, (views, _) in cache.items())
    ):
        cache = {}
        for name, leaves in state.buffers.items():
            flat = _concat(leaves, state)
            views = _views(flat, state)
            state.buffers[name] = views
            cache[name] = (views, flat)
        state._layouts[_FLAT] = cache
    return {name: flat for name, (_, flat) in cache.items()}


def _new_vector(state: OptState, name: str) -> dict[str, np.ndarray]:
    """Add the zero buffer ``name``; returns the state's vectors, that one included."""
    _flat(state)
    flat = np.zeros(state.size, dtype=state.dtypes[0] if state.dtypes else np.float64)
    views = _views(flat, state)
    state.buffers[name] = views
    state._layouts[_FLAT][name] = (views, flat)
    return _flat(state)


def _concat(leaves: list[np.ndarray], state: OptState) -> np.ndarray:
    dtype = state.dtypes[0] if state.dtypes else np.float64
    if not leaves:
        return np.zeros(0, dtype=dtype)
    return np.concatenate([np.asarray(b, dtype=dtype).reshape(-1) for b in leaves])


def _views(flat: np.ndarray, state: OptState) -> list[np.ndarray]:
    out, offset = [], 0
    for shape in state.shapes:
        n = math.prod(shape)
        out.append(flat[offset : offset + n].reshape(shape))
        offset += n
    return out


def _add_grad(leaves: list[np.ndarray], t: float, d_leaves: list[np.ndarray]) -> None:
    """``params += t d``, leaf by leaf (torch's ``_add_grad``)."""
    for p, d in zip(leaves, d_leaves, strict=True):
        _axpy(p, t, d)


def _axpy(y: np.ndarray, a: float, x: np.ndarray) -> None:
    """``y += a x`` rounded once, as torch's ``y.add_(x, alpha=a)`` computes it (a fused
    multiply-add on CPUs with FMA). Rounding the product first would differ in the last bit
    now and then, and L-BFGS on a curved surface grows such a bit into another path within a
    few dozen iterations."""
    if y.dtype == np.float64:
        np.copyto(y, _fma(float(a), x, y))
    else:  # float32/float16: the product is exact in float64, the sum is rounded there
        y[...] = (y.astype(np.float64) + float(y.dtype.type(a)) * x.astype(np.float64)).astype(y.dtype)


_SPLIT = 134217729.0  # 2**27 + 1, Veltkamp's splitter of a float64 into two 26-bit halves


def _fma(a: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``a x + y`` rounded once, in float64 NumPy (which has no fused multiply-add).

    The product exactly as ``p + e`` (Dekker's product of Veltkamp's halves), ``y + p``
    exactly as ``th + tl`` (Knuth's TwoSum), then ``th + RO(tl + e)`` where RO rounds to odd:
    the nearest sum moved one unit toward the exact one when it is inexact and even (Boldo &
    Melquiond, "Emulation of FMA and correctly rounded sums", IEEE Trans. Computers 57(4),
    2008). Where the halves overflow or an input is not finite this gives NaN, and the plain
    ``a x + y`` stands in; products below about 1e-290 may be off by a unit of the last place.
    """
    p = a * x
    c = _SPLIT * a
    ah = c - (c - a)
    al = a - ah
    cx = _SPLIT * x
    xh = cx - (cx - x)
    xl = x - xh
    e = ((ah * xh - p) + ah * xl + al * xh) + al * xl
    th = y + p
    z = th - y
    tl = (y - (th - z)) + (p - z)
    v = tl + e
    w = v - tl
    r = (tl - (v - w)) + (e - w)  # tl + e == v + r exactly
    even = (v.view(np.int64) & 1) == 0
    v = np.where((r != 0) & even, np.nextafter(v, np.where(r > 0, np.inf, -np.inf)), v)
    out = th + v
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = (p + y)[bad]
    return out


# -- the line search: torch's _cubic_interpolate and _strong_wolfe, on floats and NumPy vectors -------
def _cubic_interpolate(
    x1: float,
    f1: float,
    g1: float,
    x2: float,
    f2: float,
    g2: float,
    bounds: tuple[float, float] | None = None,
) -> float:
    """Minimiser of the cubic through ``(x1, f1, g1)`` and ``(x2, f2, g2)``, kept in ``bounds``
    (default: between the two points); their midpoint when the cubic has no minimiser.

    From the two points' values and slopes (Nocedal & Wright, eq. 3.59):
    ``d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2)``, ``d2 = sqrt(d1^2 - g1 g2)``,
    ``x = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)`` (x2 the farther point).
    """
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - _divide(3 * (f1 - f2), x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _divide(num: float, den: float) -> float:
    """``num / den`` as torch computes it. Numbers torch holds as 0-d tensors are NumPy scalars
    here, the others Python numbers (see _strong_wolfe); a Python number divided by a tensor is
    ``den.reciprocal() * num`` in torch (``Tensor.__rtruediv__``), which rounds twice."""
    if isinstance(den, np.generic) and not isinstance(num, np.generic):
        return np.reciprocal(den) * num
    return num / den


def _strong_wolfe(
    obj_func: Callable[[float], tuple[float, np.ndarray]],
    t: float,
    d: np.ndarray,
    f: float,
    g: np.ndarray,
    gtd: float,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, np.ndarray, float, int]:
    """A step ``t`` along ``d`` from the point with loss ``f``, gradient ``g`` and slope ``gtd``
    that satisfies the strong Wolfe conditions: bracketing, then zoom (Nocedal & Wright,
    Algorithms 3.5 and 3.6, in minFunc's form). ``obj_func(t)`` is the loss and flat gradient
    at ``x + t d``. Returns the loss, gradient and ``t`` found, and the evaluations made.

    Every gradient is a new array that nothing writes to, so none needs copying (torch clones).
    Slopes are NumPy scalars, as they are 0-d tensors in torch, and so is every step computed
    from them, while the losses and the first step are Python floats: the same numbers take
    the same roundings (see _divide).
    """
    d_norm = np.max(np.abs(d))
    # evaluate objective and gradient using initial step
    f_new, g_new = obj_func(t)
    ls_func_evals = 1
    gtd_new = np.dot(g_new, d)

    # bracket an interval containing a point satisfying the Wolfe criteria
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    bracket: list[float] = []
    bracket_f: list[float] = []
    bracket_g: list[np.ndarray] = []
    bracket_gtd: list[float] = []
    while ls_iter < max_ls:
        # check conditions
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break

        # interpolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))

        # next step
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj_func(t)
        ls_func_evals += 1
        gtd_new = np.dot(g_new, d)
        ls_iter += 1

    # reached max number of iterations?
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # zoom phase: we now have a point satisfying the criteria, or a bracket around it; refine the
    # bracket until we find the exact point satisfying the criteria
    insuf_progress = False
    # find high and low points in bracket
    # (a bracket of one point whose loss is NaN makes torch index past it: here it is that point)
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] or len(bracket) == 1 else (1, 0)
    while not done and ls_iter < max_ls:
        # line-search bracket is so small
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break

        # compute new trial value
        t = _cubic_interpolate(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )

        # test that we are making sufficient progress: if t is so close to a boundary, we mark
        # that we are making insufficient progress, and if we made insufficient progress in the
        # last step too, or t is at a boundary, we move t to 0.1 * len(bracket) away from the
        # nearest boundary point
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            # interpolation close to boundary
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                # evaluate at 0.1 away from boundary
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        # evaluate new point
        f_new, g_new = obj_func(t)
        ls_func_evals += 1
        gtd_new = np.dot(g_new, d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # Armijo condition not satisfied or not lower than lowest point
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                # Wolfe conditions satisfied
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # old high becomes new low
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]

            # new point becomes new low
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new
            bracket_gtd[low_pos] = gtd_new

    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals
