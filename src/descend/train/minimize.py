"""minimize(): run an update rule on a function of an array until it converges or diverges."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_bool, check_choice, check_int, check_real, describe
from ..errors import DivergenceError
from ..optim import LBFGS, Optimizer, OptState
from ..optim import resolve as resolve_optimizer
from .history import ITERATE_COLUMNS, Columns, History
from .stopping import Divergence, DivergenceGuard

__all__ = [
    "History",
    "MinimizeResult",
    "central_difference_grad",
    "global_norm",
    "minimize",
    "safe_norm",
]

#: above this many coordinates the path of iterates is not recorded unless asked for.
PATH_MAX_DIM = 10


@dataclass
class MinimizeResult:
    """Outcome of :func:`minimize` (named like :class:`scipy.optimize.OptimizeResult`)."""

    x: np.ndarray
    fun: float
    nit: int
    success: bool
    message: str
    history: History
    diverged: bool = False
    grad_method: str = "analytic"
    optimizer: Optimizer | None = None
    state: OptState | None = field(default=None, repr=False)
    #: evaluations of ``fun`` with its gradient (each ``2n + 1`` calls of ``fun`` by central
    #: differences); a first-order rule makes one per step, L-BFGS one or more
    nfev: int | None = None
    #: a rule with a separate evaluation point (Schedule-Free): the point it took gradients at
    #: (y, what the history records); ``x`` is then its average (``opt.eval_params``, the
    #: package's ``optimizer.eval()``) and ``fun`` the value there, one evaluation more. ``None``
    #: for every other rule.
    train_x: np.ndarray | None = field(default=None, repr=False)

    @property
    def grad_norm(self) -> float:
        return float(self.history.grad_norm[-1])


def central_difference_grad(fun: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Gradient by central differences, step ``h_i = eps**(1/3) * max(1, |x_i|)`` (2n calls)."""
    x = np.asarray(x, dtype=np.float64)
    g = np.empty_like(x)
    xf = x.reshape(-1)
    gf = g.reshape(-1)
    h0 = np.finfo(np.float64).eps ** (1.0 / 3.0)
    for i in range(xf.size):
        h = h0 * max(1.0, abs(xf[i]))
        orig = xf[i]
        xf[i] = orig + h
        f_plus = float(fun(x))
        xf[i] = orig - h
        f_minus = float(fun(x))
        xf[i] = orig
        gf[i] = (f_plus - f_minus) / (2.0 * h)
    return g


def global_norm(arrays: Iterable[np.ndarray]) -> float:
    """Euclidean norm of all entries of ``arrays`` taken together, without concatenating them.

    Large finite entries do not overflow it (the sum is rescaled when the plain one overflows);
    inf and NaN propagate, so a non-finite result means a non-finite entry or a true overflow.
    """
    arrays = list(arrays)
    sq = 0.0
    for a in arrays:  # vdot flattens without a copy and does not warn on overflow
        sq += float(np.vdot(a, a))
    if math.isfinite(sq):
        return math.sqrt(sq)
    flats = [np.asarray(a).reshape(-1) for a in arrays]
    with np.errstate(over="ignore", invalid="ignore"):
        m = max((float(np.max(np.abs(f))) for f in flats if f.size), default=0.0)
        if not math.isfinite(m):
            return m
        return m * math.sqrt(sum(float(np.sum(np.square(f / m))) for f in flats))


def safe_norm(g: np.ndarray) -> float:
    """Euclidean norm of one array that does not overflow for large finite entries."""
    sq = float(np.vdot(g, g))  # global_norm's first try, inline: minimize calls this every step
    return math.sqrt(sq) if math.isfinite(sq) else global_norm([g])


def _evaluator(fun: Any, grad: Any) -> tuple[Callable[[np.ndarray], tuple[float, np.ndarray]], str]:
    if not callable(fun):
        raise TypeError(f"minimize: fun must be callable, got {describe(fun)}")
    if grad is True:

        def both(x: np.ndarray) -> tuple[float, np.ndarray]:
            out = fun(x)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(
                    f"minimize: with grad=True, fun(x) must return (value, gradient), got {describe(out)}"
                )
            return out

        return both, "analytic"
    if grad is None and callable(getattr(fun, "value_and_grad", None)):
        return fun.value_and_grad, "analytic"
    if grad is None and callable(getattr(fun, "grad", None)):
        grad = fun.grad
    if grad is None:
        return (lambda x: (fun(x), central_difference_grad(fun, x))), "central differences"
    if isinstance(grad, (bool, np.bool_)) or not callable(grad):
        raise TypeError(f"minimize: grad must be None, True or a callable, got {describe(grad)}")
    return (lambda x: (fun(x), grad(x))), "analytic"


def minimize(
    fun: Callable[..., Any],
    x0: Any,
    grad: Callable[[np.ndarray], np.ndarray] | bool | None = None,
    optimizer: str | Optimizer = "adam",
    lr: Any = None,
    max_steps: int = 1000,
    tol: float | None = 1e-6,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    *,
    options: dict[str, Any] | None = None,
    noise: float = 0.0,
    seed: int | None = 0,
    record_path: bool | None = None,
    on_divergence: str = "raise",
) -> MinimizeResult:
    """Minimise ``fun`` from ``x0`` with an update rule: a first-order one, or L-BFGS.

    Parameters
    ----------
    fun : ``fun(x) -> float``; or ``fun(x) -> (value, gradient)`` with ``grad=True``
        (SciPy's ``jac=True``). A :mod:`descend.functions` objective brings its own gradient.
    x0 : starting point (array-like of floats; not modified).
    grad : callable ``grad(x) -> array``, ``True`` (see ``fun``), or ``None``: use
        ``fun.grad`` if it exists, else central differences (``result.grad_method`` says so).
    optimizer : a name from :func:`descend.optim.names` or an :class:`~descend.optim.Optimizer`.
    lr : learning rate or schedule for a named optimizer (default: the optimizer's own).
    max_steps : maximum number of updates, ``>= 0``.
    tol : stop with ``success=True`` once the gradient norm is ``<= tol``; ``None`` runs
        ``max_steps`` updates and counts that as success.
    callback : called after each update with a dict (``step``, ``x``, ``loss``, ``grad``,
        ``lr``); returning ``True`` stops the run.
    options : further hyperparameters for a named optimizer, e.g. ``{"momentum": 0.9}``.
    noise : standard deviation of Gaussian noise added to every gradient (a stand-in for
        mini-batch noise); drawn from ``np.random.default_rng(seed)``.
    record_path : keep every iterate in ``history.path`` (default: when ``x`` has at most
        10 coordinates).
    on_divergence : ``"raise"`` a :class:`~descend.DivergenceError` when the loss or gradient
        stops being finite, or ``"stop"`` and return ``success=False, diverged=True``. Either
        way ``x`` is the last iterate whose loss and gradient were finite.

    A Schedule-Free rule takes its gradients at y and predicts with its average x: ``x`` and
    ``fun`` are the average's (one evaluation more), ``train_x`` is y, where the history's
    losses, gradient norms and path were measured.

    L-BFGS
    ------
    ``optimizer="lbfgs"`` (:class:`~descend.LBFGS`, torch's ``LBFGS``) needs ``fun`` at trial
    points. One step is one of its iterations (torch's ``n_iter``: a direction, then a fixed
    step or a strong Wolfe line search, which may evaluate ``fun`` several times), and the run
    is what calling torch's ``LBFGS.step(closure)`` again and again does, each call making up
    to ``max_iter`` iterations; the iterates are the same to the last bit on the built-in 2-D
    surfaces. ``nit`` counts iterations that reached a new iterate, ``nfev`` the evaluations
    (torch's ``func_evals``, plus one when the run ends on a fixed step torch had not
    evaluated yet), ``history.lr`` holds the step lengths ``t``. The run also ends when
    L-BFGS stops moving (its ``tolerance_grad`` or ``tolerance_change`` tests), with
    ``success`` as ``tol`` says; ``noise`` is drawn for every evaluation. On divergence the
    state is left as after the failed iteration.

    Examples
    --------
    >>> import descend as ds
    >>> f = ds.functions.get("rosenbrock")
    >>> res = ds.minimize(f, f.start, optimizer="adam", lr=0.02, max_steps=5000, tol=1e-6)
    >>> res.success, bool(abs(res.x - 1).max() < 1e-4)
    (True, True)
    >>> opts = {"line_search_fn": "strong_wolfe", "tolerance_change": 1e-14}
    >>> res = ds.minimize(f, f.start, optimizer="lbfgs", options=opts)
    >>> res.success, res.nit, res.nfev
    (True, 36, 46)
    """
    owner = "minimize"
    max_steps = check_int(owner, "max_steps", max_steps, low=0)
    if tol is not None:
        tol = check_real(owner, "tol", tol, low=0.0)
    noise = check_real(owner, "noise", noise, low=0.0)
    on_divergence = check_choice(owner, "on_divergence", on_divergence, ("raise", "stop"))
    if record_path is not None:
        record_path = check_bool(owner, "record_path", record_path)
    if callback is not None and not callable(callback):
        raise TypeError(f"{owner}: callback must be callable or None, got {describe(callback)}")
    opt = resolve_optimizer(optimizer, lr, options, owner=owner)
    evaluate, grad_method = _evaluator(fun, grad)

    x0_arr = np.asarray(x0)
    if x0_arr.size == 0 or not (
        np.issubdtype(x0_arr.dtype, np.floating) or np.issubdtype(x0_arr.dtype, np.integer)
    ):
        raise ValueError(f"{owner}: x0 must be a non-empty array of real numbers, got {describe(x0)}")
    if not np.all(np.isfinite(x0_arr)):
        raise ValueError(f"{owner}: x0 must be finite, got {describe(x0)}")
    dtype = x0_arr.dtype if np.issubdtype(x0_arr.dtype, np.floating) else np.float64
    x = np.array(x0_arr, dtype=dtype, copy=True)
    if record_path is None:
        record_path = x.size <= PATH_MAX_DIM
    rng = np.random.default_rng(seed) if noise > 0 else None

    state = opt.init(x)
    evaluate = _Counted(evaluate)
    rec = _Recorder(record_path, (opt, evaluate) if opt.separate_eval_point else None)
    guard = DivergenceGuard(None)  # fit's and lr_find's guard, on finiteness alone
    # Overflow on the way to divergence is expected and detected below; numpy need not warn.
    with np.errstate(over="ignore", invalid="ignore"):
        if opt.needs_objective:
            run = _ObjectiveRun(opt, evaluate, x, state, rec, rng, noise, grad_method, guard)
            return run.loop(tol, max_steps, callback, on_divergence)
        prev = _Snapshot(x, state)
        k = 0
        while True:
            value, g = _checked(evaluate(x), x, k, rng, noise)
            gnorm = safe_norm(g)
            if (found := guard.check(value, gnorm)) is not None:
                # roll back to the last iterate whose loss and gradient were finite
                if k > 0:
                    prev.restore()
                return _diverged(rec, x, k, found, opt, state, grad_method, evaluate.n, on_divergence)
            rec.add(k, value, gnorm, x)
            if tol is not None and gnorm <= tol:
                message = f"converged: gradient norm {gnorm:.3g} <= tol {tol:g} after {k} steps"
                return rec.result(x, k, True, message, False, grad_method, opt, state, evaluate.n)
            if k >= max_steps:
                success, message = _out_of_steps(max_steps, tol, gnorm)
                return rec.result(x, k, success, message, False, grad_method, opt, state, evaluate.n)
            lr_k = opt.lr_at(int(state.t))
            rec.leave(lr_k)
            prev.save()
            if k == 0:
                opt.step(x, g, state)  # validates once; the structure cannot change afterwards
            else:
                opt._apply([x], [g], state, check_finite=False)  # gnorm was checked finite above
            k += 1
            if (
                callback is not None
                and callback({"step": k, "x": x, "loss": value, "grad": g, "lr": lr_k}) is True
            ):
                value, g = evaluate(x)
                rec.add(k, float(value), safe_norm(np.asarray(g)), x)
                message = f"stopped by callback after {k} steps"
                return rec.result(x, k, True, message, False, grad_method, opt, state, evaluate.n)


class _Snapshot:
    """``x`` and the optimizer state as they were before a step, to roll a divergent step back.

    Saved every step, so it copies array to array with no checks: the pairs are made once, which
    holds because a step updates ``x`` and the buffers in place and never rebinds them (rules
    whose state grows, L-BFGS, take the objective loop instead)."""

    def __init__(self, x: np.ndarray, state: OptState):
        self.state, self.saved = state, state.copy()
        self.pairs = [(x.copy(), x)]
        for name, bufs in state.buffers.items():
            self.pairs += zip(self.saved.buffers[name], bufs, strict=True)

    def save(self) -> None:
        for mine, live in self.pairs:
            np.copyto(mine, live)
        self.saved.t = self.state.t
        if self.state.scalars:
            self.saved.scalars = dict(self.state.scalars)

    def restore(self) -> None:
        mine, x = self.pairs[0]
        np.copyto(x, mine)
        self.state.restore_from(self.saved)  # the buffers, t and the scalars


class _Counted:
    """The objective's evaluator, counting its calls (``nfev``)."""

    def __init__(self, evaluate: Callable[[np.ndarray], tuple[float, np.ndarray]]):
        self.evaluate = evaluate
        self.n = 0

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.n += 1
        return self.evaluate(x)


def _checked(
    out: tuple[Any, Any], x: np.ndarray, k: int, rng: np.random.Generator | None, noise: float
) -> tuple[float, np.ndarray]:
    """An evaluation as the loops use it: the loss a float, the gradient of x's shape, plus noise."""
    value, g = out
    g = np.asarray(g)
    if g.shape != x.shape:
        raise ValueError(f"minimize: gradient has shape {g.shape}, x has shape {x.shape} (step {k})")
    if rng is not None:
        g = g + rng.normal(0.0, noise, size=g.shape)
    return float(value), g


def _out_of_steps(max_steps: int, tol: float | None, gnorm: float) -> tuple[bool, str]:
    if tol is None:
        return True, f"completed max_steps={max_steps}"
    return False, f"max_steps={max_steps} reached with gradient norm {gnorm:.3g} > tol {tol:g}"


def _diverged(rec, x, k, found: Divergence, opt, state, grad_method, nfev, on_divergence) -> MinimizeResult:
    """The result (or the raised error) of a run whose loss or gradient at step ``k`` is not finite
    (what the guard ``found``); ``x`` and ``state`` are already those of the last finite iterate."""
    message = f"diverged: the {found.cause} at step {k} with {opt!r}; try a smaller learning rate"
    result = rec.result(x, max(k - 1, 0), False, message, True, grad_method, opt, state, nfev)
    if on_divergence == "raise":
        err = DivergenceError(message, step=k, quantity=found.quantity, cause=found.cause)
        err.result = result
        raise err
    return result


class _ObjectiveRun:
    """minimize() for a rule that needs the objective at trial points (L-BFGS).

    One step is one of its iterations (torch's ``n_iter``: a direction, then a fixed step or a
    line search). The run is what calling torch's ``LBFGS.step(closure)`` again and again does,
    each call (:meth:`~descend.LBFGS.minimize_step`) making up to ``max_iter`` iterations; every
    iterate gets its row, and the evaluation that ends one row is handed to the next call as its
    first (torch's closure call at the start of ``step``), so ``nfev`` counts what torch counts
    (``func_evals``), plus one where the run ends on a fixed step torch had not evaluated yet.
    """

    def __init__(self, opt: LBFGS, evaluate, x, state, rec, rng, noise, grad_method, guard):
        self.opt, self.evaluate, self.x, self.state, self.rec = opt, evaluate, x, state, rec
        self.rng, self.noise, self.grad_method, self.guard = rng, noise, grad_method, guard
        self.k = 0  # iterations made
        self.last = x.copy()  # the last iterate whose loss and gradient were finite

    def fun_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return _checked(self.evaluate(x), x, self.k + 1, self.rng, self.noise)

    def result(self, success: bool, message: str) -> MinimizeResult:
        args = (self.grad_method, self.opt, self.state, self.evaluate.n)
        return self.rec.result(self.x, self.k, success, message, False, *args)

    def loop(self, tol, max_steps, callback, on_divergence) -> MinimizeResult:
        x, rec = self.x, self.rec
        value, g = _checked(self.evaluate(x), x, 0, self.rng, self.noise)
        gnorm = safe_norm(g)
        args = (self.opt, self.state, self.grad_method, self.evaluate.n, on_divergence)
        if (found := self.guard.check(value, gnorm)) is not None:
            return _diverged(rec, x, 0, found, *args)
        rec.add(0, value, gnorm, x)
        evaluated: tuple[float, np.ndarray] | None = (value, g)
        stop: dict[str, Any] = {}

        def on_iterate(loss: float | None, flat_grad: np.ndarray | None, t: float) -> bool | None:
            nonlocal value, g, gnorm, evaluated
            self.k += 1
            rec.leave(float(t))
            left = (value, g)
            if loss is None:  # torch's next step() evaluates here first: hand it this evaluation
                value, g = evaluated = self.fun_and_grad(x)
            else:
                value, g, evaluated = float(loss), flat_grad.reshape(x.shape), None
            gnorm = safe_norm(g)
            if (found := self.guard.check(value, gnorm)) is not None:
                stop["diverged"] = found
                return True
            rec.add(self.k, value, gnorm, x)
            np.copyto(self.last, x)
            if (tol is not None and gnorm <= tol) or self.k >= max_steps:
                return True
            info = {"step": self.k, "x": x, "loss": left[0], "grad": left[1], "lr": float(t)}
            if callback is not None and callback(info) is True:
                stop["callback"] = True
                return True
            return None

        while True:
            if tol is not None and gnorm <= tol:
                message = f"converged: gradient norm {gnorm:.3g} <= tol {tol:g} after {self.k} steps"
                return self.result(True, message)
            if self.k >= max_steps:
                return self.result(*_out_of_steps(max_steps, tol, gnorm))
            before, n_iter = x.copy(), int(self.state.t)
            self.opt.minimize_step(
                self.fun_and_grad, x, self.state, evaluated=evaluated, on_iterate=on_iterate
            )
            if stop.get("diverged"):
                np.copyto(x, self.last)
                args = (self.opt, self.state, self.grad_method, self.evaluate.n, on_divergence)
                return _diverged(rec, x, self.k, stop["diverged"], *args)
            if stop.get("callback"):
                return self.result(True, f"stopped by callback after {self.k} steps")
            if np.array_equal(x, before) and (n_iter > 0 or int(self.state.t) == n_iter):
                # a call that moved nothing, from a state past its first iteration (whose step
                # is scaled, unlike the rest) or in which no iteration began, ends every later
                # call the same way: the rule's own tests (tolerance_grad, tolerance_change) or
                # a line search that found no step
                return self.result(tol is None or gnorm <= tol, self._no_progress(g, gnorm))

    def _no_progress(self, g: np.ndarray, gnorm: float) -> str:
        opt, gmax = self.opt, float(np.max(np.abs(g)))
        head = (
            f"stopped: {opt._owner} makes no more progress after {self.k} steps (gradient norm {gnorm:.3g})"
        )
        if gmax <= opt.tolerance_grad:
            return f"{head}: its largest gradient entry {gmax:.3g} <= tolerance_grad {opt.tolerance_grad:g}"
        return (
            f"{head}: tolerance_change {opt.tolerance_change:g} ends each of its steps where it "
            "begins (the slope along its direction, the step or the loss change is below it), or "
            "its line search finds no step; a smaller tolerance_change lets it go further"
        )


class _Recorder:
    """Collects the history rows of a minimize() run: one per iterate (:data:`ITERATE_COLUMNS`),
    its lr filled in when a step leaves it."""

    def __init__(self, record_path: bool, separate: tuple[Optimizer, Callable[..., Any]] | None = None):
        self.record_path = record_path
        self.separate = separate  # the rule and evaluator of a rule with a separate evaluation point
        self.rows = Columns(ITERATE_COLUMNS)
        self.columns = self.rows.lists(ITERATE_COLUMNS)
        self.lrs = self.rows["lr"]
        self.path: list[np.ndarray] = []
        self.t0 = time.perf_counter()

    def add(self, k: int, value: float, gnorm: float, x: np.ndarray) -> None:
        steps, losses, lrs, gnorms, seconds = self.columns
        steps.append(k)
        losses.append(value)
        lrs.append(math.nan)
        gnorms.append(gnorm)
        seconds.append(time.perf_counter() - self.t0)
        if self.record_path:
            self.path.append(x.copy())

    def leave(self, lr: float) -> None:
        """The lr (L-BFGS: the step length) of the step that leaves the last iterate."""
        self.lrs[-1] = lr

    def result(self, x, nit, success, message, diverged, grad_method, opt, state, nfev) -> MinimizeResult:
        losses = self.rows["loss"]
        fun, train_x = (float(losses[-1]) if losses else math.nan), None
        if self.separate is not None:  # Schedule-Free: the answer is its average x, not y
            opt_, evaluate = self.separate
            train_x, x = x, opt_.eval_params(x, state)
            fun, nfev = float(evaluate(x)[0]), nfev + 1
        return MinimizeResult(
            x=x,
            fun=fun,
            nit=nit,
            success=success,
            message=message,
            history=History.of(self.rows, self.path),
            diverged=diverged,
            grad_method=grad_method,
            optimizer=opt,
            state=state,
            nfev=nfev,
            train_x=train_x,
        )
