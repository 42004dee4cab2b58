"""Learning-rate schedules: callables ``step -> lr``, pure except :class:`ReduceOnPlateau`."""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from ._registry import Registry, check_keywords
from ._validation import check_choice, check_int, check_real, describe

__all__ = [
    "Constant",
    "Cosine",
    "CosineRestarts",
    "Cyclic",
    "Exponential",
    "InverseTime",
    "LinearDecay",
    "MultiStep",
    "OneCycle",
    "Polynomial",
    "ReduceOnPlateau",
    "Schedule",
    "Sequence",
    "StepDecay",
    "Warmup",
    "get",
    "names",
]

ScheduleLike = Callable[[int], float]


# -- building blocks ------------------------------------------------------------------------------
def _as_schedule(owner: str, name: str, value: Any) -> ScheduleLike:
    """A schedule from a schedule, a callable, a non-negative number (constant) or a config dict."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, Mapping):
        cfg = dict(value)
        if "name" not in cfg:
            raise ValueError(
                f"{owner}: {name} given as a dict needs a 'name' key (one of {names()}), "
                f"got keys {sorted(cfg)}"
            )
        return get(cfg.pop("name"), **cfg)
    if isinstance(value, (bool, np.bool_)) or not (isinstance(value, numbers.Real) or callable(value)):
        raise TypeError(
            f"{owner}: {name} must be a schedule, a callable step -> lr, a non-negative number "
            f"or a config dict with a 'name' key, got {describe(value)}"
        )
    if isinstance(value, numbers.Real):
        return Constant(check_real(owner, name, value, low=0.0))
    return value


def _values_of(schedule: ScheduleLike, n: int) -> np.ndarray:
    """The first ``n`` values of any schedule-like callable, as float64."""
    if isinstance(schedule, Schedule):
        return schedule.values(n)
    return np.array([float(schedule(k)) for k in range(n)], dtype=np.float64)


def _check_increasing(owner: str, name: str, values: Any, *, low: int) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, np.ndarray)):
        raise TypeError(f"{owner}: {name} must be a list of integers, got {describe(values)}")
    out = tuple(check_int(owner, f"{name}[{i}]", v, low=low) for i, v in enumerate(values))
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise ValueError(f"{owner}: {name} must be strictly increasing, got {list(out)}")
    return out


def _config_value(value: Any) -> Any:
    if isinstance(value, Schedule):
        return {"name": value.name, **value.config()}
    if isinstance(value, (list, tuple)):
        return [_config_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


class Schedule:
    """Base class: a learning rate as a function of the number of completed optimizer steps.

    Subclasses set ``name`` (their registry key) and ``_fields`` (constructor arguments, stored
    as attributes of the same name) and implement ``_lr(k)`` with NumPy operations that work
    on an integer and on an integer array alike, so one formula serves ``__call__`` and
    :meth:`values`.
    """

    name: ClassVar[str] = ""
    _fields: ClassVar[tuple[str, ...]] = ()

    def _lr(self, k: Any) -> Any:
        raise NotImplementedError

    def _check_step(self, step: Any) -> int:
        return check_int(type(self).__name__, "step", step, low=0)

    def __call__(self, step: int) -> float:
        """Learning rate for the update that follows ``step`` completed steps (a Python float)."""
        return float(self._lr(self._check_step(step)))

    def values(self, n_steps: int) -> np.ndarray:
        """The first ``n_steps`` learning rates, ``[self(k) for k in range(n_steps)]``, as float64."""
        n = check_int(f"{type(self).__name__}.values", "n_steps", n_steps, low=0)
        k = np.arange(n, dtype=np.int64)
        return np.broadcast_to(np.asarray(self._lr(k), dtype=np.float64), (n,)).copy()

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain values; nested schedules become ``{"name": ..., ...}``."""
        return {f: _config_value(getattr(self, f)) for f in self._fields}

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"


# -- pure schedules ---------------------------------------------------------------------------------
class Constant(Schedule):
    r"""The same learning rate at every step.

    .. math:: \eta_k = \text{lr}

    Parameters
    ----------
    lr : ``lr >= 0``.

    Examples
    --------
    >>> s = Constant(0.1)
    >>> s(0), s(1000)
    (0.1, 0.1)
    """

    name = "constant"
    _fields = ("lr",)

    def __init__(self, lr: float):
        self.lr = check_real("Constant", "lr", lr, low=0.0)

    def _lr(self, k: Any) -> Any:
        return np.full(np.shape(k), self.lr)


class LinearDecay(Schedule):
    r"""Linear decay from ``lr0`` to ``lr_final`` over ``tau`` steps, then held (Goodfellow et al.).

    .. math::

        \eta_k = (1 - \alpha)\,\eta_0 + \alpha\,\eta_\tau, \qquad \alpha = \min(k, \tau) / \tau

    This is the schedule of Goodfellow, Bengio & Courville, *Deep Learning* (2016), §8.3.1:
    decay linearly until iteration :math:`\tau`, then keep the rate constant. Their advice:
    set :math:`\tau` to the number of steps of a few hundred passes through the training set,
    and :math:`\eta_\tau` to roughly 1% of :math:`\eta_0`; choose :math:`\eta_0` by monitoring
    the first iterations (a little above the best-looking rate, below one that diverges).
    Same values as ``optax.linear_schedule(lr0, lr_final, tau)``.

    Parameters
    ----------
    lr0 : initial rate, ``lr0 >= 0``.
    lr_final : rate reached at step ``tau`` and kept, ``lr_final >= 0``.
    tau : length of the decay in steps, ``tau >= 1``.

    Examples
    --------
    >>> s = LinearDecay(0.1, 0.001, tau=100)
    >>> s(0), s(50), s(100), s(10_000)
    (0.1, 0.0505, 0.001, 0.001)
    """

    name = "linear_decay"
    _fields = ("lr0", "lr_final", "tau")

    def __init__(self, lr0: float, lr_final: float, tau: int):
        self.lr0 = check_real("LinearDecay", "lr0", lr0, low=0.0)
        self.lr_final = check_real("LinearDecay", "lr_final", lr_final, low=0.0)
        self.tau = check_int("LinearDecay", "tau", tau, low=1)

    def _lr(self, k: Any) -> Any:
        alpha = np.minimum(k, self.tau) / self.tau
        return (1.0 - alpha) * self.lr0 + alpha * self.lr_final


class StepDecay(Schedule):
    r"""Multiply the rate by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_k = \eta_0\, \gamma^{\lfloor k / \text{step\_size} \rfloor}

    Same as ``torch.optim.lr_scheduler.StepLR(opt, step_size, gamma)`` stepped once per update.

    Parameters
    ----------
    lr0 : initial rate, ``lr0 >= 0``.
    step_size : steps between decays, ``step_size >= 1``.
    gamma : decay factor, ``0 < gamma <= 1``.

    Examples
    --------
    >>> s = StepDecay(1.0, step_size=10, gamma=0.5)
    >>> s(9), s(10), s(25)
    (1.0, 0.5, 0.25)
    """

    name = "step_decay"
    _fields = ("lr0", "step_size", "gamma")

    def __init__(self, lr0: float, step_size: int, gamma: float = 0.1):
        self.lr0 = check_real("StepDecay", "lr0", lr0, low=0.0)
        self.step_size = check_int("StepDecay", "step_size", step_size, low=1)
        self.gamma = check_real("StepDecay", "gamma", gamma, low=0.0, high=1.0, low_open=True)

    def _lr(self, k: Any) -> Any:
        return self.lr0 * np.power(self.gamma, k // self.step_size)


class MultiStep(Schedule):
    r"""Multiply the rate by ``gamma`` at each milestone.

    .. math:: \eta_k = \eta_0\, \gamma^{\#\{m \in \text{milestones} \,:\, m \le k\}}

    Same as ``torch.optim.lr_scheduler.MultiStepLR``. optax's ``piecewise_constant_schedule``
    applies each scale one step later (strictly after its boundary).

    Parameters
    ----------
    lr0 : initial rate, ``lr0 >= 0``.
    milestones : strictly increasing steps ``>= 1`` at which the rate drops (may be empty).
    gamma : factor applied at each milestone, ``0 < gamma <= 1``.

    Examples
    --------
    >>> s = MultiStep(1.0, milestones=[3, 5], gamma=0.1)
    >>> [s(k) for k in (2, 3, 4, 5)]
    [1.0, 0.1, 0.1, 0.01]
    """

    name = "multi_step"
    _fields = ("lr0", "milestones", "gamma")

    def __init__(self, lr0: float, milestones: Any, gamma: float = 0.1):
        self.lr0 = check_real("MultiStep", "lr0", lr0, low=0.0)
        self.milestones = _check_increasing("MultiStep", "milestones", milestones, low=1)
        self.gamma = check_real("MultiStep", "gamma", gamma, low=0.0, high=1.0, low_open=True)
        self._m = np.asarray(self.milestones, dtype=np.int64)

    def _lr(self, k: Any) -> Any:
        return self.lr0 * np.power(self.gamma, np.searchsorted(self._m, k, side="right"))


class Exponential(Schedule):
    r"""Multiply the rate by ``gamma`` at every step.

    .. math:: \eta_k = \eta_0\, \gamma^{k}

    Same as ``torch.optim.lr_scheduler.ExponentialLR``; Keras/optax ``ExponentialDecay`` with
    ``decay_steps=1`` and ``decay_rate=gamma``. ``gamma > 1`` grows the rate (as an LR range
    test does); a rate that overflows to ``inf`` is then rejected by the optimizer.

    Parameters
    ----------
    lr0 : initial rate, ``lr0 >= 0``.
    gamma : per-step factor, ``gamma > 0``.

    Examples
    --------
    >>> s = Exponential(1.0, gamma=0.5)
    >>> s(0), s(3)
    (1.0, 0.125)
    """

    name = "exponential"
    _fields = ("lr0", "gamma")

    def __init__(self, lr0: float, gamma: float):
        self.lr0 = check_real("Exponential", "lr0", lr0, low=0.0)
        self.gamma = check_real("Exponential", "gamma", gamma, low=0.0, low_open=True)

    def _lr(self, k: Any) -> Any:
        with np.errstate(over="ignore", under="ignore"):
            return self.lr0 * np.power(self.gamma, np.asarray(k, dtype=np.float64))


class InverseTime(Schedule):
    r"""Inverse-time decay: the rate falls like :math:`1/k`.

    .. math::

        \eta_k = \frac{\eta_0}{1 + r\, p}, \qquad
        p = k / \text{decay\_steps} \quad (\lfloor k / \text{decay\_steps} \rfloor
        \text{ if staircase})

    with :math:`r` = ``decay_rate``. Same as Keras ``InverseTimeDecay``; ``decay_rate = lambda * lr0``
    gives the classic :math:`\eta_0 / (1 + \lambda \eta_0 k)` of Bottou's SGD recipes.

    Parameters
    ----------
    lr0 : initial rate, ``lr0 >= 0``.
    decay_rate : ``decay_rate >= 0``.
    decay_steps : unit of ``k``, ``decay_steps >= 1``.
    staircase : decay in whole units of ``decay_steps`` (keyword-only).

    Examples
    --------
    >>> s = InverseTime(1.0, decay_rate=0.5, decay_steps=10)
    >>> s(0), s(10), s(15)
    (1.0, 0.6666666666666666, 0.5714285714285714)
    >>> InverseTime(1.0, 0.5, 10, staircase=True)(15)
    0.6666666666666666
    """

    name = "inverse_time"
    _fields = ("lr0", "decay_rate", "decay_steps", "staircase")

    def __init__(self, lr0: float, decay_rate: float, decay_steps: int = 1, *, staircase: bool = False):
        self.lr0 = check_real("InverseTime", "lr0", lr0, low=0.0)
        self.decay_rate = check_real("InverseTime", "decay_rate", decay_rate, low=0.0)
        self.decay_steps = check_int("InverseTime", "decay_steps", decay_steps, low=1)
        if not isinstance(staircase, (bool, np.bool_)):
            raise TypeError(f"InverseTime: staircase must be True or False, got {describe(staircase)}")
        self.staircase = bool(staircase)

    def _lr(self, k: Any) -> Any:
        p = k // self.decay_steps if self.staircase else np.asarray(k) / self.decay_steps
        return self.lr0 / (1.0 + self.decay_rate * p)


class Polynomial(Schedule):
    r"""Polynomial decay from ``lr0`` to ``lr_final`` over ``total_steps``, then held.

    .. math::

        \eta_k = (\eta_0 - \eta_T)\,\bigl(1 - \min(k, T)/T\bigr)^{\text{power}} + \eta_T

    Same as Keras ``PolynomialDecay(lr0, decay_steps=T, end_learning_rate=lr_final, power)``
    with ``cycle=False`` (argument order follows Keras: ``total_steps`` second), and optax's
    ``polynomial_schedule`` with ``transition_begin=0``. ``power=1`` is linear decay.

    Parameters
    ----------
    lr0 : initial rate, ``lr0 >= 0``.
    total_steps : :math:`T`, steps to reach ``lr_final``, ``total_steps >= 1``.
    lr_final : final rate, ``lr_final >= 0`` (default 0).
    power : exponent, ``power > 0``.

    Examples
    --------
    >>> s = Polynomial(1.0, total_steps=10, lr_final=0.0, power=2.0)
    >>> s(0), s(5), s(10), s(11)
    (1.0, 0.25, 0.0, 0.0)
    """

    name = "polynomial"
    _fields = ("lr0", "total_steps", "lr_final", "power")

    def __init__(self, lr0: float, total_steps: int, lr_final: float = 0.0, power: float = 1.0):
        self.lr0 = check_real("Polynomial", "lr0", lr0, low=0.0)
        self.total_steps = check_int("Polynomial", "total_steps", total_steps, low=1)
        self.lr_final = check_real("Polynomial", "lr_final", lr_final, low=0.0)
        self.power = check_real("Polynomial", "power", power, low=0.0, low_open=True)

    def _lr(self, k: Any) -> Any:
        frac = 1.0 - np.minimum(k, self.total_steps) / self.total_steps
        return (self.lr0 - self.lr_final) * np.power(frac, self.power) + self.lr_final


def _cosine(lr_max: float, lr_min: float, t: Any, period: Any) -> Any:
    return lr_min + (lr_max - lr_min) * (1.0 + np.cos(np.pi * t / period)) / 2.0


class Cosine(Schedule):
    r"""Half a cosine from ``lr0`` down to ``lr_min`` over ``total_steps``, then held.

    .. math::

        \eta_k = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})
        \bigl(1 + \cos(\pi \min(k, T) / T)\bigr)

    Matches the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T,
    eta_min=lr_min)`` for ``k <= T``; torch's scheduler then rises again (its cosine keeps
    going), this one stays at ``lr_min``, like optax's ``cosine_decay_schedule`` with
    ``alpha = lr_min / lr0``.

    Parameters
    ----------
    lr0 : initial rate, ``lr0 >= 0``.
    total_steps : :math:`T`, ``total_steps >= 1``.
    lr_min : final rate, ``0 <= lr_min <= lr0``.

    Examples
    --------
    >>> s = Cosine(1.0, total_steps=100, lr_min=0.1)
    >>> s(0), s(50), s(100), s(500)
    (1.0, 0.55, 0.1, 0.1)
    """

    name = "cosine"
    _fields = ("lr0", "total_steps", "lr_min")

    def __init__(self, lr0: float, total_steps: int, lr_min: float = 0.0):
        self.lr0 = check_real("Cosine", "lr0", lr0, low=0.0)
        self.total_steps = check_int("Cosine", "total_steps", total_steps, low=1)
        self.lr_min = check_real("Cosine", "lr_min", lr_min, low=0.0, high=self.lr0)

    def _lr(self, k: Any) -> Any:
        return _cosine(self.lr0, self.lr_min, np.minimum(k, self.total_steps), self.total_steps)


class CosineRestarts(Schedule):
    r"""Cosine annealing with warm restarts (SGDR), periods growing by ``period_mult``.

    With :math:`T_i = T_0 m^i` the length of cycle :math:`i` and :math:`t` the steps since
    the start of the current cycle:

    .. math::

        \eta_k = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})\bigl(1 + \cos(\pi t / T_i)\bigr)

    so the rate jumps back to ``lr0`` at steps :math:`T_0, T_0(1+m), T_0(1+m+m^2), \dots`.
    Same as ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``
    (Loshchilov & Hutter 2017, "SGDR"); Keras ``CosineDecayRestarts`` with ``m_mul=1``.

    Parameters
    ----------
    lr0 : rate at the start of every cycle, ``lr0 >= 0``.
    first_period : :math:`T_0`, ``first_period >= 1``.
    period_mult : :math:`m`, integer ``>= 1``.
    lr_min : floor of every cycle, ``0 <= lr_min <= lr0``.

    Examples
    --------
    >>> s = CosineRestarts(1.0, first_period=4, period_mult=2)
    >>> [round(s(k), 4) for k in range(13)]
    [1.0, 0.8536, 0.5, 0.1464, 1.0, 0.9619, 0.8536, 0.6913, 0.5, 0.3087, 0.1464, 0.0381, 1.0]
    """

    name = "cosine_restarts"
    _fields = ("lr0", "first_period", "period_mult", "lr_min")

    def __init__(self, lr0: float, first_period: int, period_mult: int = 1, lr_min: float = 0.0):
        owner = "CosineRestarts"
        self.lr0 = check_real(owner, "lr0", lr0, low=0.0)
        self.first_period = check_int(owner, "first_period", first_period, low=1)
        self.period_mult = check_int(owner, "period_mult", period_mult, low=1)
        self.lr_min = check_real(owner, "lr_min", lr_min, low=0.0, high=self.lr0)

    def _position(self, k: Any) -> tuple[Any, Any]:
        """Steps since the last restart and length of the current cycle (exact integers)."""
        t0, m = self.first_period, self.period_mult
        if m == 1:
            return k % t0, t0
        # cycle starts 0, T0, T0(1+m), ... grow geometrically: few enough to list.
        starts, lengths = [0], [t0]
        top = int(np.max(k)) if np.size(k) else 0
        while starts[-1] + lengths[-1] <= top:
            starts.append(starts[-1] + lengths[-1])
            lengths.append(lengths[-1] * m)
        i = np.searchsorted(np.asarray(starts, dtype=np.int64), k, side="right") - 1
        return k - np.asarray(starts, dtype=np.int64)[i], np.asarray(lengths, dtype=np.int64)[i]

    def _lr(self, k: Any) -> Any:
        t, period = self._position(k)
        return _cosine(self.lr0, self.lr_min, t, period)


class OneCycle(Schedule):
    r"""The 1cycle policy: warm up to ``max_lr``, then anneal far below the start (two phases).

    With :math:`\eta_{\text{init}} = \eta_{\max}/\text{div\_factor}`,
    :math:`\eta_{\text{end}} = \eta_{\text{init}}/\text{final\_div\_factor}`,
    :math:`a = \text{pct\_start}\cdot T - 1` and :math:`b = T - 1`:

    .. math::

        \eta_k = \begin{cases}
          \text{anneal}(\eta_{\text{init}}, \eta_{\max}, k / a) & k \le a \\
          \text{anneal}(\eta_{\max}, \eta_{\text{end}}, (\min(k, b) - a)/(b - a)) & k > a
        \end{cases}

    where ``anneal(s, e, p)`` is :math:`e + \tfrac12(s - e)(1 + \cos \pi p)` (``"cos"``) or
    :math:`s + (e - s) p` (``"linear"``). The peak is at step :math:`a` and the last value,
    :math:`\eta_{\text{end}}`, at step :math:`T - 1`; later steps keep it. Same lr values as
    ``torch.optim.lr_scheduler.OneCycleLR(max_lr, total_steps, pct_start, anneal_strategy,
    div_factor, final_div_factor, three_phase=False)`` (momentum cycling is not done here;
    torch raises past ``total_steps`` instead of holding). Smith & Topin (2017),
    "Super-Convergence".

    Parameters
    ----------
    max_lr : peak rate, ``max_lr >= 0``.
    total_steps : :math:`T`, ``total_steps >= 2``.
    pct_start : fraction of steps spent warming up, ``0 < pct_start < 1`` with
        ``pct_start * total_steps > 1``.
    div_factor : ``> 0``; the first rate is ``max_lr / div_factor``.
    final_div_factor : ``> 0``; the last rate is ``max_lr / (div_factor * final_div_factor)``.
    anneal : ``"cos"`` or ``"linear"`` (keyword-only).

    Examples
    --------
    >>> s = OneCycle(1.0, total_steps=10, pct_start=0.5, div_factor=10, final_div_factor=100)
    >>> s(0), s(2), s(4), s(9)
    (0.1, 0.55, 1.0, 0.001)
    """

    name = "one_cycle"
    _fields = ("max_lr", "total_steps", "pct_start", "div_factor", "final_div_factor", "anneal")

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        *,
        anneal: str = "cos",
    ):
        owner = "OneCycle"
        self.max_lr = check_real(owner, "max_lr", max_lr, low=0.0)
        self.total_steps = check_int(owner, "total_steps", total_steps, low=2)
        self.pct_start = check_real(
            owner, "pct_start", pct_start, low=0.0, high=1.0, low_open=True, high_open=True
        )
        if not self.pct_start * self.total_steps > 1.0:
            raise ValueError(
                f"{owner}: pct_start must satisfy pct_start * total_steps > 1 (a warm-up of at "
                f"least one step), got pct_start={self.pct_start!r} with "
                f"total_steps={self.total_steps!r}"
            )
        self.div_factor = check_real(owner, "div_factor", div_factor, low=0.0, low_open=True)
        self.final_div_factor = check_real(
            owner, "final_div_factor", final_div_factor, low=0.0, low_open=True
        )
        self.anneal = check_choice(owner, "anneal", anneal, ("cos", "linear"))
        self.initial_lr = self.max_lr / self.div_factor
        self.final_lr = self.initial_lr / self.final_div_factor
        self._peak_step = float(self.pct_start * self.total_steps) - 1.0

    def _anneal(self, start: float, end: float, pct: Any) -> Any:
        # torch's own expressions, so the two agree to the last bit where possible
        if self.anneal == "cos":
            return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1.0)
        return (end - start) * pct + start

    def _lr(self, k: Any) -> Any:
        a, b = self._peak_step, float(self.total_steps - 1)
        up = self._anneal(self.initial_lr, self.max_lr, np.asarray(k) / a)
        down = self._anneal(self.max_lr, self.final_lr, (np.minimum(k, b) - a) / (b - a))
        return np.where(np.asarray(k) <= a, up, down)


class Cyclic(Schedule):
    r"""Cyclical learning rate (Smith 2017): triangles between ``base_lr`` and ``max_lr``.

    With :math:`u` = ``step_size_up``, :math:`d` = ``step_size_down``, cycle
    :math:`c = \lfloor k/(u+d) \rfloor + 1` and position :math:`p = k - (c-1)(u+d)`:

    .. math::

        \eta_k = \eta_{\text{base}} + (\eta_{\max} - \eta_{\text{base}})\, h_k\, s,
        \qquad h_k = \begin{cases} p/u & p \le u \\ (u + d - p)/d & p > u \end{cases}

    with amplitude scale :math:`s = 1` (``"triangular"``), :math:`s = 2^{-(c-1)}`
    (``"triangular2"``, halved every cycle) or :math:`s = \gamma^k` (``"exp_range"``). Same lr
    values as ``torch.optim.lr_scheduler.CyclicLR`` with these modes (no momentum cycling).

    Parameters
    ----------
    base_lr : lower bound, ``base_lr >= 0``.
    max_lr : upper bound, ``max_lr >= base_lr``.
    step_size_up : steps from ``base_lr`` up to ``max_lr``, ``>= 1``.
    step_size_down : steps back down, ``>= 1`` (default: ``step_size_up``).
    mode : ``"triangular"``, ``"triangular2"`` or ``"exp_range"`` (keyword-only).
    gamma : ``0 < gamma <= 1``, used by ``"exp_range"`` (keyword-only).

    Examples
    --------
    >>> s = Cyclic(0.1, 1.0, step_size_up=2, mode="triangular2")
    >>> [round(s(k), 4) for k in range(9)]
    [0.1, 0.55, 1.0, 0.55, 0.1, 0.325, 0.55, 0.325, 0.1]
    """

    name = "cyclic"
    _fields = ("base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma")

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int,
        step_size_down: int | None = None,
        *,
        mode: str = "triangular",
        gamma: float = 1.0,
    ):
        owner = "Cyclic"
        self.base_lr = check_real(owner, "base_lr", base_lr, low=0.0)
        self.max_lr = check_real(owner, "max_lr", max_lr, low=self.base_lr)
        self.step_size_up = check_int(owner, "step_size_up", step_size_up, low=1)
        self.step_size_down = (
            None if step_size_down is None else check_int(owner, "step_size_down", step_size_down, low=1)
        )
        self.mode = check_choice(owner, "mode", mode, ("triangular", "triangular2", "exp_range"))
        self.gamma = check_real(owner, "gamma", gamma, low=0.0, high=1.0, low_open=True)
        self._down = self.step_size_up if self.step_size_down is None else self.step_size_down

    def _lr(self, k: Any) -> Any:
        up, down = self.step_size_up, self._down
        total = up + down
        cycle = k // total + 1
        p = k - (cycle - 1) * total
        height = np.where(p <= up, p / up, (total - p) / down)
        if self.mode == "triangular":
            scale: Any = 1.0
        elif self.mode == "triangular2":
            scale = 1.0 / np.power(2.0, cycle - 1)
        else:
            with np.errstate(under="ignore"):
                scale = np.power(self.gamma, np.asarray(k, dtype=np.float64))
        return self.base_lr + (self.max_lr - self.base_lr) * height * scale


# -- combinators ------------------------------------------------------------------------------------
class Warmup(Schedule):
    r"""Linear warm-up for ``warmup_steps`` steps, then ``schedule`` started from its step 0.

    With :math:`w` = ``warmup_steps``, :math:`f` = ``start_factor`` and :math:`S` the wrapped
    schedule:

    .. math::

        \eta_k = \begin{cases}
          S(0)\,\bigl(f + (1 - f)\,k / w\bigr) & k < w \\
          S(k - w) & k \ge w
        \end{cases}

    The ramp starts at :math:`f\,S(0)` and would reach :math:`S(0)` at :math:`k = w`, which is
    where :math:`S` takes over, so the curve is continuous. Equivalent to torch's
    ``SequentialLR([LinearLR(start_factor=f, total_iters=w), S], milestones=[w])`` and to
    ``optax.join_schedules([optax.linear_schedule(f*S(0), S(0), w), S], [w])``.

    Parameters
    ----------
    schedule : the schedule after warm-up: a schedule, any callable ``step -> lr``, a number
        ``>= 0`` (a :class:`Constant`) or a config dict with a ``"name"`` key.
    warmup_steps : :math:`w`, ``warmup_steps >= 0`` (0: no warm-up).
    start_factor : :math:`f`, ``0 <= start_factor <= 1``.

    Examples
    --------
    >>> s = Warmup(Cosine(1.0, total_steps=10), warmup_steps=4)
    >>> s(0), s(1), s(3), s(4), s(9)
    (0.0, 0.25, 0.75, 1.0, 0.5)
    """

    name = "warmup"
    _fields = ("schedule", "warmup_steps", "start_factor")

    def __init__(self, schedule: Any, warmup_steps: int, start_factor: float = 0.0):
        self.schedule = _as_schedule("Warmup", "schedule", schedule)
        self.warmup_steps = check_int("Warmup", "warmup_steps", warmup_steps, low=0)
        self.start_factor = check_real("Warmup", "start_factor", start_factor, low=0.0, high=1.0)

    def _ramp(self, k: Any) -> Any:
        f, w = self.start_factor, self.warmup_steps
        return float(self.schedule(0)) * (f + (1.0 - f) * k / w)

    def __call__(self, step: int) -> float:
        k = self._check_step(step)
        if k < self.warmup_steps:
            return float(self._ramp(k))
        return float(self.schedule(k - self.warmup_steps))

    def values(self, n_steps: int) -> np.ndarray:
        n = check_int("Warmup.values", "n_steps", n_steps, low=0)
        w = min(n, self.warmup_steps)
        ramp = self._ramp(np.arange(w, dtype=np.int64)) if w else np.zeros(0)
        return np.concatenate([ramp, _values_of(self.schedule, n - w)])


class Sequence(Schedule):
    r"""Join schedules end to end; each one counts its steps from its own start.

    With boundaries :math:`b_1 < \dots < b_{n-1}` (and :math:`b_0 = 0`), for
    :math:`b_i \le k < b_{i+1}`:

    .. math:: \eta_k = S_i(k - b_i)

    Same as ``optax.join_schedules(schedules, boundaries)`` and torch's ``SequentialLR``.

    Parameters
    ----------
    schedules : ``n >= 1`` schedules (or callables, numbers ``>= 0``, config dicts).
    boundaries : ``n - 1`` strictly increasing steps ``>= 1`` where the next schedule starts.

    Examples
    --------
    >>> s = Sequence([0.1, LinearDecay(1.0, 0.0, tau=4)], boundaries=[2])
    >>> [s(k) for k in range(7)]
    [0.1, 0.1, 1.0, 0.75, 0.5, 0.25, 0.0]
    """

    name = "sequence"
    _fields = ("schedules", "boundaries")

    def __init__(self, schedules: Any, boundaries: Any):
        owner = "Sequence"
        if isinstance(schedules, (str, bytes, Mapping)) or not isinstance(schedules, (list, tuple)):
            raise TypeError(f"{owner}: schedules must be a list of schedules, got {describe(schedules)}")
        if len(schedules) == 0:
            raise ValueError(f"{owner}: schedules must hold at least one schedule, got []")
        self.schedules = tuple(_as_schedule(owner, f"schedules[{i}]", s) for i, s in enumerate(schedules))
        self.boundaries = _check_increasing(owner, "boundaries", boundaries, low=1)
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"{owner}: boundaries must have len(schedules) - 1 = {len(self.schedules) - 1} "
                f"entries, got {len(self.boundaries)}: {list(self.boundaries)}"
            )

    def __call__(self, step: int) -> float:
        k = self._check_step(step)
        i = bisect.bisect_right(self.boundaries, k)
        start = self.boundaries[i - 1] if i else 0
        return float(self.schedules[i](k - start))

    def values(self, n_steps: int) -> np.ndarray:
        n = check_int("Sequence.values", "n_steps", n_steps, low=0)
        edges = [0, *self.boundaries, math.inf]
        pieces = []
        for s, lo, hi in zip(self.schedules, edges, edges[1:], strict=False):
            if lo >= n:
                break
            pieces.append(_values_of(s, int(min(hi, n) - lo)))
        return np.concatenate(pieces) if pieces else np.zeros(0)


# -- the stateful one ---------------------------------------------------------------------------------
class ReduceOnPlateau(Schedule):
    r"""Cut the rate by ``factor`` when a monitored loss stops improving (torch semantics).

    The rate is the base rate times a scale that starts at 1,

    .. math:: \eta_k = \max\bigl(B(k)\, s,\ \min(B(k), \text{min\_lr})\bigr)

    where :math:`B` is ``lr`` (a number or another schedule). :meth:`observe` (alias
    :meth:`step`) takes one loss value, e.g. once per epoch, and follows
    ``torch.optim.lr_scheduler.ReduceLROnPlateau.step`` exactly: a value is an improvement if
    it beats ``best`` by the threshold (``mode="min"``, ``"rel"``: ``loss < best * (1 -
    threshold)``; ``"abs"``: ``loss < best - threshold``; mirrored for ``"max"``); otherwise the
    count of bad values grows. Values seen during cooldown do not count. When the count exceeds
    ``patience`` the scale is multiplied by ``factor``, cooldown starts and the count resets.
    ``min_lr`` is a floor for the reduced rate (it never lifts a base rate that is already
    below it). For a numeric ``lr``, as in torch, a reduction that would lower the rate by no
    more than ``eps`` is skipped.

    Unlike every other schedule, this one has state: :meth:`state_dict` gives it as plain
    JSON-serialisable numbers, :meth:`load_state_dict` restores it, :meth:`reset` starts over.

    Parameters
    ----------
    lr : base rate: a number ``>= 0`` or a schedule (or config dict).
    factor : ``0 < factor < 1``.
    patience : bad values tolerated before a reduction, ``>= 0``.
    threshold : ``>= 0``; ``threshold_mode`` is ``"rel"`` or ``"abs"``.
    mode : ``"min"`` (loss) or ``"max"`` (e.g. accuracy).
    cooldown : values ignored after a reduction, ``>= 0``.
    min_lr : floor, ``>= 0``.
    eps : smallest change of a numeric rate that counts as a reduction, ``>= 0``.

    Examples
    --------
    >>> s = ReduceOnPlateau(1.0, factor=0.5, patience=1)
    >>> for loss in [3.0, 2.0, 2.0, 2.0]:
    ...     _ = s.observe(loss)
    >>> s(0)
    0.5
    """

    name = "reduce_on_plateau"
    _fields = (
        "lr",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "mode",
        "cooldown",
        "min_lr",
        "eps",
    )
    _state_keys = (
        "scale",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
        "last_epoch",
        "num_reductions",
    )

    def __init__(
        self,
        lr: Any,
        *,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        mode: str = "min",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ):
        owner = "ReduceOnPlateau"
        self._base = _as_schedule(owner, "lr", lr)
        numeric = isinstance(lr, numbers.Real) and not isinstance(lr, (bool, np.bool_))
        self.lr: Any = self._base.lr if numeric else self._base  # type: ignore[union-attr]
        self.factor = check_real(owner, "factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
        self.patience = check_int(owner, "patience", patience, low=0)
        self.threshold = check_real(owner, "threshold", threshold, low=0.0)
        self.threshold_mode = check_choice(owner, "threshold_mode", threshold_mode, ("rel", "abs"))
        self.mode = check_choice(owner, "mode", mode, ("min", "max"))
        self.cooldown = check_int(owner, "cooldown", cooldown, low=0)
        self.min_lr = check_real(owner, "min_lr", min_lr, low=0.0)
        self.eps = check_real(owner, "eps", eps, low=0.0)
        self.reset()

    # -- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every observed value: scale 1, no best value, counters at 0."""
        self.scale = 1.0
        self.best: float | None = None
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self.num_reductions = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def state_dict(self) -> dict[str, Any]:
        """The mutable state as plain Python numbers (``best`` is None before any value)."""
        return {key: getattr(self, key) for key in self._state_keys}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; everything is checked before anything changes."""
        owner = "ReduceOnPlateau.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{owner}: state must be a dict, got {describe(state)}")
        if set(state) != set(self._state_keys):
            raise ValueError(
                f"{owner}: state must have exactly the keys {list(self._state_keys)}, got {sorted(state)}"
            )
        scale = check_real(owner, "scale", state["scale"], low=0.0, high=1.0)
        best = state["best"]
        best = None if best is None else check_real(owner, "best", best)
        counters = {
            key: check_int(owner, key, state[key], low=0)
            for key in ("num_bad_epochs", "cooldown_counter", "last_epoch", "num_reductions")
        }
        self.scale, self.best = scale, best
        for key, value in counters.items():
            setattr(self, key, value)

    # -- feeding the metric ---------------------------------------------------------------------
    def _is_better(self, a: float) -> bool:
        best = self.best
        if best is None:
            return True
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _reduce(self) -> bool:
        new_scale = self.scale * self.factor
        if isinstance(self._base, Constant):
            b = self._base.lr
            floor = min(b, self.min_lr)
            old, new = max(b * self.scale, floor), max(b * new_scale, floor)
            if not old - new > self.eps:
                return False
        self.scale = new_scale
        self.num_reductions += 1
        return True

    def observe(self, loss: float) -> bool:
        """Feed one value of the monitored metric; return True if the rate was reduced."""
        owner = "ReduceOnPlateau.observe"
        if isinstance(loss, np.ndarray) and loss.ndim == 0:
            loss = loss.item()
        if isinstance(loss, (bool, np.bool_)) or not isinstance(loss, numbers.Real):
            raise TypeError(f"{owner}: loss must be a real number, got {describe(loss)}")
        current = float(loss)
        if not math.isfinite(current):
            raise ValueError(
                f"{owner}: loss must be finite, got {current!r} (at observation "
                f"{self.last_epoch + 1}); the run has diverged: try a smaller lr"
            )
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        reduced = False
        if self.num_bad_epochs > self.patience:
            reduced = self._reduce()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return reduced

    step = observe

    # -- the rate -----------------------------------------------------------------------------
    def _combine(self, b: Any) -> Any:
        return np.maximum(b * self.scale, np.minimum(b, self.min_lr))

    def __call__(self, step: int) -> float:
        """The current rate at ``step`` (depends on the values observed so far)."""
        return float(self._combine(float(self._base(self._check_step(step)))))

    def values(self, n_steps: int) -> np.ndarray:
        n = check_int("ReduceOnPlateau.values", "n_steps", n_steps, low=0)
        return self._combine(_values_of(self._base, n))


# -- registry ---------------------------------------------------------------------------------------
_REGISTRY: Registry[type[Schedule]] = Registry(
    "schedule",
    {
        cls.name: cls
        for cls in (
            Constant,
            LinearDecay,
            StepDecay,
            MultiStep,
            Exponential,
            InverseTime,
            Polynomial,
            Cosine,
            CosineRestarts,
            Warmup,
            OneCycle,
            Cyclic,
            Sequence,
            ReduceOnPlateau,
        )
    },
    owner="schedules.get",
)


def names() -> list[str]:
    """Names accepted by :func:`get`, in snake_case."""
    return _REGISTRY.names()


def get(name: str, **kwargs: Any) -> Schedule:
    """Build the schedule registered under ``name`` (``"cosine"``, ``"one-cycle"``, ...).

    Nested schedules may be given as config dicts, so ``get(s.name, **s.config())`` rebuilds ``s``.

    >>> get("cosine", lr0=0.1, total_steps=100)
    Cosine(lr0=0.1, total_steps=100, lr_min=0.0)
    """
    key = _REGISTRY.key(name)
    cls = _REGISTRY[key]
    check_keywords("schedules.get", repr(key), cls, kwargs)
    return cls(**kwargs)
