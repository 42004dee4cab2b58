r"""Diagnose an optimization problem at a point: curvature, saddles, gradient noise, layers, lr.

:func:`diagnose` measures, at given parameters, the problems the study notes name for gradient
descent, each by an exact, documented definition, and says which of them it finds
(:attr:`Diagnosis.flags`) with the notes' fix for each (:meth:`Diagnosis.verdicts`):

- ``ill_conditioned``: the steps the rule needs per e-fold of its flattest direction,
  :math:`\kappa/2` for gradient descent or :math:`\sqrt\kappa/2` with momentum, exceed
  :data:`ILL_CONDITIONED_STEPS`. Fix: momentum or Nesterov; standardised inputs or an adaptive
  rule when the features are unscaled.
- ``lr_above_stability``: ``lr`` above the rule's stability limit :math:`c/\lambda_{\max}`
  (:func:`stability_constant`). Fix: a smaller lr.
- ``lr_too_small``: ``lr`` below :data:`LR_TOO_SMALL_FRACTION` of that limit. Fix: a larger lr.
- ``saddle`` / ``flat``: a small gradient with clearly negative / about zero
  :math:`\lambda_{\min}`. Fix: momentum, the noise of small batches, an adaptive rule.
- ``noise_dominated``: :math:`B_\text{simple}` above :data:`NOISE_DOMINATED_RATIO` times the
  batch size. Fix: a larger batch, or a decaying lr.
- ``vanishing_gradients`` / ``exploding_gradients``: the first layer's gradient norm below
  :data:`VANISHING_RATIO` / above :data:`EXPLODING_RATIO` times the last layer's. Fix: ReLU
  and He/Xavier init / a smaller init scale, clipping.
- ``dead_relu``, ``saturated_units``, ``symmetric_units``: a hidden layer with more than
  :data:`DEAD_RELU_FRACTION` dead ReLUs, :data:`SATURATED_FRACTION` saturated sigmoid/tanh
  pre-activations, :data:`SYMMETRIC_FRACTION` duplicate units. Fix: He init and a smaller lr;
  ReLU, Xavier init and standardised inputs; a random init.

Everything is measured in float64 (params and data are cast) on a *probe*: all rows of the data,
or a seeded sample of :data:`PROBE_ROWS` of them. Thresholds are the module constants below.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .. import functions as fns
from .. import models as mdl
from .._validation import check_choice, check_int, invalid, wrong_type
from ..data._moments import varies
from ..data.base import DataSource
from ..models.base import Model
from ..models.mlp import MLP
from ..models.task import infer_task
from ..optim import SGD, Optimizer
from ..optim import optimizer as make_optimizer
from ._curvature import (
    HVP,
    SpectralDensity,
    central_difference_hvp,
    dense_hessian,
    hutchinson,
    lanczos,
    rademacher,
    spectral_density,
)

__all__ = [
    "DEAD_RELU_FRACTION",
    "DENSE_MAX_PARAMS",
    "EXPLODING_RATIO",
    "EXPLODING_STEP",
    "FEATURE_SCALE_RATIO",
    "FLAGS",
    "HUTCHINSON_PROBES",
    "ILL_CONDITIONED_STEPS",
    "LANCZOS_STEPS",
    "LR_TOO_SMALL_FRACTION",
    "NEGATIVE_CURVATURE_RTOL",
    "NOISE_DOMINATED_RATIO",
    "OSCILLATION_FLIP_FRACTION",
    "POSITIVE_CURVATURE_RTOL",
    "PROBE_ROWS",
    "SATURATED_FRACTION",
    "SATURATION_DERIVATIVE",
    "SLQ_PROBES",
    "STATIONARY_GRAD",
    "SYMMETRIC_FRACTION",
    "SYMMETRIC_RTOL",
    "TOP_K",
    "VANISHING_RATIO",
    "ZERO_EIGENVALUE_RTOL",
    "Diagnosis",
    "NoiseEstimate",
    "Oscillation",
    "Verdict",
    "diagnose",
    "noise_two_batch",
    "oscillation",
    "stability_constant",
    "update_ratio",
]

# ---- thresholds and sizes: every number a verdict uses ---------------------------------------------

#: the flags :func:`diagnose` can raise
FLAGS = (
    "ill_conditioned",
    "lr_above_stability",
    "lr_too_small",
    "saddle",
    "flat",
    "noise_dominated",
    "vanishing_gradients",
    "exploding_gradients",
    "dead_relu",
    "saturated_units",
    "symmetric_units",
)

#: rows of the data the measurements use: all of them up to this many, else a seeded sample
PROBE_ROWS = 2048
#: the Hessian is formed (``n`` products, or the test function's own) and fully decomposed up to
#: this many parameters; beyond it Lanczos, Hutchinson and stochastic Lanczos quadrature
DENSE_MAX_PARAMS = 500
#: Lanczos steps (Hessian-vector products) per run: the top few eigenvalues converge in 20-40
LANCZOS_STEPS = 30
#: how many of the largest eigenvalues :attr:`Diagnosis.hessian_top` lists
TOP_K = 5
#: Rademacher probes of Hutchinson's trace estimate
HUTCHINSON_PROBES = 30
#: Lanczos runs of the spectral density (the run for the top eigenvalues is the first)
SLQ_PROBES = 3
#: eigenvalues within this fraction of the largest magnitude count as zero (a dense
#: decomposition's rounding is ~1e-15 of it): the "positive spectrum" starts above
ZERO_EIGENVALUE_RTOL = 1e-10
#: the gradient is "small" (a stationary point) when its norm is at most this times max(1, |loss|)
STATIONARY_GRAD = 1e-4
#: at a small gradient, lambda_min below -this x max|lambda| is clearly negative: a saddle
NEGATIVE_CURVATURE_RTOL = 1e-3
#: ... above +this x max|lambda| clearly positive: a minimum; in between ~ 0: flat (a plateau)
POSITIVE_CURVATURE_RTOL = 1e-6
#: ill-conditioned when the rule needs more steps than this per e-fold of its slowest direction:
#: kappa / 2 for gradient descent (so kappa > 1000), sqrt(kappa) / 2 with momentum
ILL_CONDITIONED_STEPS = 500
#: crawling: lr below this fraction of the rule's stability limit
LR_TOO_SMALL_FRACTION = 0.01
#: noise-dominated when B_simple exceeds this many times the batch size: the batch gradient's
#: noise, in squared norm, is then NOISE_DOMINATED_RATIO times its signal
NOISE_DOMINATED_RATIO = 10.0
#: vanishing when the first layer's gradient norm is below this times the last layer's
VANISHING_RATIO = 1e-3
#: exploding when it is above this times the last layer's
EXPLODING_RATIO = 1e3
#: exploding, whatever the ratio, when one step of the run's lr would move some layer by more
#: than this fraction of its weights' norm (lr * |g_layer| / |w_layer|: every layer's gradient
#: can blow up alike, as with ReLU and too large an init scale, leaving the ratio near 1)
EXPLODING_STEP = 1.0
#: a ReLU unit is dead when it outputs 0 on every probe row; flag above this fraction in a layer
DEAD_RELU_FRACTION = 0.25
#: a sigmoid/tanh pre-activation is saturated where the derivative is below this fraction of its
#: maximum, phi'(z) < 0.05 phi'(0): |z| > 4.36 for sigmoid, |z| > 2.18 for tanh
SATURATION_DERIVATIVE = 0.05
#: flag when more than this fraction of a layer's (row, unit) pre-activations are saturated
SATURATED_FRACTION = 0.5
#: two hidden units are duplicates when their incoming weights and bias agree to this fraction of
#: the layer's largest such column (the symmetric-init collapse makes them equal)
SYMMETRIC_RTOL = 1e-6
#: flag when more than this fraction of a layer's units duplicate another unit
SYMMETRIC_FRACTION = 0.1
#: unscaled features: the largest column std over the smallest (non-constant) above this
FEATURE_SCALE_RATIO = 10.0
#: a loss history oscillates when at least this fraction of consecutive changes flip sign
OSCILLATION_FLIP_FRACTION = 0.5
#: the two-batch noise estimator's batch sizes (capped at the probe's rows) and repeats
NOISE_SMALL_BATCH = 16
NOISE_BIG_BATCH = 256
NOISE_REPEATS = 32

_OWNER = "diagnose"

# the notes' fixes, one sentence each, shared by the verdicts that give them
_FIX = {
    "ill_conditioned": "momentum or Nesterov (steps per e-fold ~ sqrt(kappa)/2 instead of kappa/2)",
    "unscaled": "standardise the inputs, or an adaptive rule (AdaGrad, RMSprop, Adam) scaling each weight",
    "lr_above_stability": "a smaller lr: below the stability limit (half of it is a safe start)",
    "lr_too_small": "a larger lr (up to about half the stability limit), or an lr range test",
    "saddle": "momentum, or the noise of small batches (SGD), to leave along the negative curvature",
    "flat": "momentum or an adaptive rule (RMSprop, Adam) to cross the plateau; another init",
    "noise_dominated": "a larger batch (up to about the critical batch), or a decaying lr",
    "vanishing_gradients": "ReLU activations and He/Xavier init (proper weight initialization)",
    "exploding_gradients": "a smaller init scale (He/Xavier), gradient clipping or a smaller lr",
    "dead_relu": "He init with zero biases, a smaller lr, or leaky ReLU",
    "saturated_units": "ReLU, Xavier init, and standardised inputs",
    "symmetric_units": "a random init (He/Xavier): equal weights get equal updates forever",
}


# ---- results -----------------------------------------------------------------------------------------


class Verdict(NamedTuple):
    """One row of :meth:`Diagnosis.verdicts`: a measurement, its value, the threshold it is judged
    by, what the value means, the fix the notes give, and the flag raised (None if none)."""

    measurement: str
    value: float
    threshold: str
    meaning: str
    fix: str
    flag: str | None


@dataclass
class Diagnosis:
    r"""What :func:`diagnose` measured at one point, and the problems it found.

    Curvature
        ``hessian_top``: the largest eigenvalues of the Hessian, descending (up to :data:`TOP_K`);
        ``hessian_min``: the smallest. With ``spectrum_method == "dense"`` these are exact (the
        whole spectrum, in ``spectrum``); with ``"lanczos"`` they are Ritz values, inside the
        spectrum (``hessian_top`` a lower and ``hessian_min`` an upper bound of the extremes) and
        within ``hessian_top_residual`` of an eigenvalue. ``condition_number``: :math:`\kappa =
        \lambda_{\max} / \lambda_{\min}^+` over the positive spectrum (eigenvalues above
        :data:`ZERO_EIGENVALUE_RTOL` of the largest magnitude; nan without one), with
        ``condition_number_kind``: ``"exact"`` (dense), ``"lower bound"`` (Lanczos with
        :math:`\theta_{\min} > 0`: :math:`\theta_{\max}/\theta_{\min} \le \kappa`) or
        ``"estimate"`` (the smallest positive Ritz value, an interior one, stands in for
        :math:`\lambda_{\min}^+`; never flagged on). ``gd_rate`` :math:`= (\kappa - 1)/(\kappa + 1)`,
        gradient descent's contraction per step at its best lr on a quadratic of this spectrum.
        ``hessian_trace`` and its standard error (0 when exact), ``spectrum``: the spectral
        density as nodes and weights. ``critical_point``, where the gradient norm is at most
        :data:`STATIONARY_GRAD` x max(1, |loss|): ``"saddle"`` when :math:`\lambda_{\min} <
        -`:data:`NEGATIVE_CURVATURE_RTOL` :math:`\max|\lambda|`, ``"minimum"`` when it is above
        :data:`POSITIVE_CURVATURE_RTOL` :math:`\max|\lambda|`, ``"flat"`` in between,
        ``"maximum"`` when even :math:`\lambda_{\max}` is clearly negative; else None.
    Learning rate
        ``rule``, ``lr`` and ``lr_max``: the largest stable lr of the rule
        (:func:`stability_constant` over :math:`\lambda_{\max}`, plus SGD's weight decay), None
        where the rule has none (adaptive rules).
    Gradient noise
        ``noise_scale``: :math:`B_\text{simple} = \operatorname{tr}\Sigma / \lVert G \rVert^2`
        (McCandlish et al., 2018), ``grad_noise_trace``: :math:`\operatorname{tr}\Sigma`, the
        per-sample gradient covariance over the probe, ``layer_snr``: per layer
        :math:`\lVert G_\ell \rVert^2 / \operatorname{tr}\Sigma_\ell`, one sample's gradient
        signal-to-noise (a batch of B has B times it); nan for a function.
    Layers
        ``layer_grad_norms``: the loss gradient's norm per layer, input layer first;
        ``grad_norm_ratio``: first over last; ``dead_fraction``, ``saturated_fraction``,
        ``duplicate_fraction``: per hidden layer of an MLP (empty otherwise).
    Inputs
        ``feature_scale_ratio``: the largest feature std over the smallest (constant features
        left out); ``feature_offset``: the largest |mean| / std of a feature.

    ``flags`` holds the flags raised, ``timings`` the seconds each instrument took.
    """

    subject: str
    n_params: int
    loss: float
    grad_norm: float
    hvp_method: str
    spectrum_method: str
    hessian_top: np.ndarray
    hessian_top_residual: np.ndarray
    hessian_min: float
    condition_number: float
    condition_number_kind: str
    gd_rate: float
    hessian_trace: float
    hessian_trace_se: float
    spectrum: SpectralDensity
    critical_point: str | None
    rule: str | None = None
    lr: float | None = None
    lr_max: float | None = None
    batch_size: int | None = None
    probe_rows: int = 0
    noise_scale: float = math.nan
    grad_noise_trace: float = math.nan
    noise_method: str | None = None
    layer_snr: dict[str, float] = field(default_factory=dict)
    layer_grad_norms: dict[str, float] = field(default_factory=dict)
    layer_weight_norms: dict[str, float] = field(default_factory=dict)
    grad_norm_ratio: float = math.nan
    dead_fraction: dict[str, float] = field(default_factory=dict)
    saturated_fraction: dict[str, float] = field(default_factory=dict)
    duplicate_fraction: dict[str, float] = field(default_factory=dict)
    feature_scale_ratio: float = math.nan
    feature_offset: float = math.nan
    flags: set[str] = field(default_factory=set)
    #: seconds each instrument took
    timings: dict[str, float] = field(default_factory=dict)
    _verdicts: list[Verdict] = field(default_factory=list, repr=False)

    @property
    def critical_batch_size(self) -> float:
        """The batch size beyond which a larger batch stops buying fewer steps, :math:`\\approx
        B_\\text{simple}` (McCandlish et al. find :math:`B_\\text{crit} \\approx B_\\text{noise}`,
        which :math:`B_\\text{simple}` equals when the Hessian is a multiple of the identity)."""
        return self.noise_scale

    def verdicts(self) -> list[Verdict]:
        """One row per measurement judged: value, threshold, meaning, and the notes' fix."""
        return list(self._verdicts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (arrays as lists, non-finite numbers as None)."""

        def plain(x: Any) -> Any:
            if isinstance(x, np.ndarray):
                return [plain(v) for v in x.tolist()]
            if isinstance(x, (float, np.floating)):
                return float(x) if math.isfinite(x) else None
            if isinstance(x, (np.integer,)):
                return int(x)
            if isinstance(x, dict):
                return {k: plain(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [plain(v) for v in x]
            return x

        out = {k: plain(v) for k, v in vars(self).items() if not k.startswith("_")}
        out["spectrum"] = {"nodes": plain(self.spectrum.nodes), "weights": plain(self.spectrum.weights)}
        out["flags"] = sorted(self.flags)
        out["verdicts"] = [plain(v._asdict()) for v in self._verdicts]
        return out

    def __str__(self) -> str:
        head = f"diagnosis of {self.subject} ({self.n_params} params): "
        head += ", ".join(sorted(self.flags)) if self.flags else "no problem found"
        rows = [("", "measurement", "value", "threshold", "meaning", "fix")]
        for v in self._verdicts:
            rows.append(
                ("!" if v.flag else "", v.measurement, f"{v.value:.4g}", v.threshold, v.meaning, v.fix)
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [head]
        for r in rows:
            cells = [r[i].ljust(widths[i]) for i in range(4)]
            lines.append("  ".join(cells) + "  " + r[4] + ("" if not r[5] else f"  -> {r[5]}"))
        return "\n".join(lines)


# ---- helpers on histories and snapshots ---------------------------------------------------------------


def update_ratio(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    r"""Update-to-weight ratios :math:`\lVert w_1 - w_0 \rVert / \lVert w_0 \rVert` per param,
    and over all params as ``"total"`` (inf where :math:`w_0 = 0` and it moved, 0 if neither).

    Around :math:`10^{-3}` per step is the usual healthy range; far above, the lr is large for
    that layer; far below, it barely trains.

    >>> update_ratio({"W": np.array([3.0, 4.0])}, {"W": np.array([3.0, 4.5])})
    {'W': 0.1, 'total': 0.1}
    """
    if not isinstance(before, Mapping) or not isinstance(after, Mapping) or set(before) != set(after):
        raise invalid("update_ratio", "after", after, "have the keys of before")
    out: dict[str, float] = {}
    total_d = total_w = 0.0
    for key in before:
        w0 = np.asarray(before[key], dtype=np.float64)
        w1 = np.asarray(after[key], dtype=np.float64)
        if w0.shape != w1.shape:
            raise ValueError(f"update_ratio: {key!r} has shape {w0.shape} before and {w1.shape} after")
        d = float(np.sum((w1 - w0) ** 2))
        w = float(np.sum(w0**2))
        total_d, total_w = total_d + d, total_w + w
        out[key] = _ratio(math.sqrt(d), math.sqrt(w))
    out["total"] = _ratio(math.sqrt(total_d), math.sqrt(total_w))
    return out


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return 0.0 if num == 0 else math.inf


class Oscillation(NamedTuple):
    """Sign flips of consecutive loss changes: their fraction, and whether it reaches the threshold."""

    flip_fraction: float
    oscillating: bool
    changes: int


def oscillation(losses: Iterable[float], *, window: int | None = None) -> Oscillation:
    """Whether a loss history oscillates: the fraction of consecutive changes that flip sign.

    Over the last ``window`` losses (all by default), changes :math:`d_t = L_{t+1} - L_t` that
    are exactly 0 are dropped; a flip is :math:`d_t d_{t+1} < 0`. A smooth descent has none,
    a loss bouncing between two values all; independent noise about 2/3. Oscillating at
    :data:`OSCILLATION_FLIP_FRACTION` or more: read it on full-batch or per-epoch losses, as
    mini-batch losses are noisy by construction.

    >>> oscillation([4, 3, 3.5, 2.5, 3.0, 2.0]).oscillating
    True
    >>> oscillation([4, 3, 2.5, 2.2, 2.1]).flip_fraction
    0.0
    """
    x = np.asarray(list(losses), dtype=np.float64)
    if window is not None:
        x = x[-check_int("oscillation", "window", window, low=3) :]
    d = np.diff(x)
    d = d[np.isfinite(d) & (d != 0)]
    if len(d) < 2:
        return Oscillation(math.nan, False, len(d))
    frac = float(np.mean(d[1:] * d[:-1] < 0))
    return Oscillation(frac, frac >= OSCILLATION_FLIP_FRACTION, len(d))


def stability_constant(optimizer: Optimizer) -> float | None:
    r"""``c`` such that the rule is stable on a quadratic of top curvature :math:`\lambda` exactly
    when :math:`\text{lr} \cdot \lambda < c`; None where no such limit is set by the rule alone.

    For :class:`~descend.SGD` (PyTorch's form, ``b = mu b + (1 - tau) g``, ``p -= lr b``),
    from the 2x2 recurrence of one eigendirection:

    - plain gradient descent: :math:`c = 2`;
    - heavy-ball momentum :math:`\mu`: :math:`c = 2 + 2\mu`;
    - Nesterov: :math:`c = (2 + 2\mu) / (1 + 2\mu)`;
    - dampening :math:`\tau` scales the step by :math:`1 - \tau`, so c is divided by it.

    Adaptive rules (AdaGrad, RMSprop, Adam and their kin) divide each coordinate's step by a
    running gradient size, so the lr at which they go unstable is not set by the Hessian alone:
    None. Each rule states its own (:meth:`descend.optim.Optimizer.stability_constant`).

    >>> import descend as ds
    >>> stability_constant(ds.SGD(lr=0.1)), stability_constant(ds.Momentum(lr=0.1, momentum=0.9))
    (2.0, 3.8)
    >>> stability_constant(ds.Adam()) is None
    True
    """
    return optimizer.stability_constant()


# ---- gradient noise --------------------------------------------------------------------------------


class NoiseEstimate(NamedTuple):
    r""":math:`\operatorname{tr}\Sigma` and :math:`\lVert G \rVert^2`, in total and per layer, and how."""

    trace: float
    grad_sq: float
    layer_trace: dict[str, float]
    layer_grad_sq: dict[str, float]
    method: str

    @property
    def b_simple(self) -> float:
        return _ratio(self.trace, self.grad_sq) if self.trace > 0 else 0.0


def noise_two_batch(
    batch_grad: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    layers: Mapping[str, np.ndarray] | None = None,
    small: int = NOISE_SMALL_BATCH,
    big: int = NOISE_BIG_BATCH,
    repeats: int = NOISE_REPEATS,
    rng: np.random.Generator,
) -> NoiseEstimate:
    r"""Gradient noise from gradients at two batch sizes (McCandlish et al., 2018, appendix A).

    ``batch_grad(idx)`` is the mean gradient (flat) over rows ``idx`` of ``n``. Batches are
    drawn *with replacement*, so a batch of :math:`B` has
    :math:`\mathbb E \lVert G_B \rVert^2 = \lVert G \rVert^2 + \operatorname{tr}\Sigma / B`
    exactly, with :math:`G` the mean and :math:`\Sigma` the (population) covariance of the
    per-row gradients; from the averages of ``repeats`` batches at ``small`` and ``big``:

    .. math::

        \lVert G \rVert^2 \approx \frac{B_b \overline{\lVert G_{B_b} \rVert^2}
            - B_s \overline{\lVert G_{B_s} \rVert^2}}{B_b - B_s}, \qquad
        \operatorname{tr}\Sigma \approx \frac{\overline{\lVert G_{B_s} \rVert^2}
            - \overline{\lVert G_{B_b} \rVert^2}}{1/B_s - 1/B_b}

    both unbiased (their ratio, :math:`B_\text{simple}`, is not quite). ``layers`` maps layer
    names to index arrays of the flat gradient, for per-layer values.
    """
    small = check_int("noise_two_batch", "small", small, low=1)
    big = check_int("noise_two_batch", "big", big, low=small + 1)
    groups = dict(layers) if layers is not None else {}
    sums = {B: {"all": 0.0, **dict.fromkeys(groups, 0.0)} for B in (small, big)}
    for _ in range(repeats):
        for B in (small, big):
            g = np.asarray(batch_grad(rng.integers(0, n, size=B)), dtype=np.float64)
            sums[B]["all"] += float(g @ g)
            for name, idx in groups.items():
                sums[B][name] += float(g[idx] @ g[idx])
    est: dict[str, tuple[float, float]] = {}
    for name in sums[small]:
        s, b = sums[small][name] / repeats, sums[big][name] / repeats
        grad_sq = (big * b - small * s) / (big - small)
        trace = (s - b) / (1.0 / small - 1.0 / big)
        est[name] = (max(trace, 0.0), max(grad_sq, 0.0))
    return NoiseEstimate(
        est["all"][0],
        est["all"][1],
        {k: est[k][0] for k in groups},
        {k: est[k][1] for k in groups},
        f"two batch sizes ({small}, {big}; {repeats} repeats, with replacement)",
    )


# ---- the problem at a point: loss, gradient, Hessian-vector products, layers ----------------------------


@dataclass
class _Problem:
    subject: str
    theta: np.ndarray
    loss: float
    grad: np.ndarray
    hvp: HVP
    hvp_method: str
    hessian: np.ndarray | None = None  # exact, where the objective has one
    layers: dict[str, np.ndarray] = field(default_factory=dict)  # layer name -> flat indices


class _Packer:
    """Flat float64 vectors <-> params dicts with the keys, order and shapes of ``params``."""

    def __init__(self, params: Mapping[str, np.ndarray]) -> None:
        self.keys = list(params)
        self.shapes = [np.shape(params[k]) for k in self.keys]
        sizes = [math.prod(s) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.size = int(self.offsets[-1])

    def vec(self, tree: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(tree[k], dtype=np.float64).ravel() for k in self.keys])

    def tree(self, v: np.ndarray) -> dict[str, np.ndarray]:
        return {
            k: v[self.offsets[i] : self.offsets[i + 1]].reshape(self.shapes[i])
            for i, k in enumerate(self.keys)
        }

    def indices(self, keys: Sequence[str]) -> np.ndarray:
        parts = [
            np.arange(self.offsets[self.keys.index(k)], self.offsets[self.keys.index(k) + 1]) for k in keys
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=int)


def _function_problem(f: Any, x: Any, grad: Any) -> _Problem:
    """A test function (exact Hessian) or any objective with a gradient, at ``x``."""
    theta = np.array(x, dtype=np.float64).ravel() if x is not None else None
    if theta is None:
        start = getattr(f, "start", None)
        if start is None:
            raise invalid(_OWNER, "params", x, "be the point to diagnose the objective at")
        theta = np.asarray(start, dtype=np.float64)
    if not np.all(np.isfinite(theta)):
        raise invalid(_OWNER, "params", x, "be finite")
    if isinstance(f, fns.Objective):
        loss, g = f.value_and_grad(theta)
        H = f.hessian(theta) if len(theta) <= DENSE_MAX_PARAMS else None
        if H is not None:
            return _Problem(f.name, theta, loss, g, lambda v: H @ v, "exact (the function's Hessian)", H)
        hvp = central_difference_hvp(f.grad, theta)
        return _Problem(f.name, theta, loss, g, hvp, "central difference of gradients")
    if grad is True:

        def value_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
            value, g = f(w)
            return float(value), np.asarray(g, dtype=np.float64)

        grad_fn: Callable[[np.ndarray], np.ndarray] = lambda w: value_grad(w)[1]  # noqa: E731
        loss, g = value_grad(theta)
    else:
        grad_fn = grad if callable(grad) else getattr(f, "grad", None)
        if not callable(grad_fn):
            raise wrong_type(
                _OWNER, "grad", grad, "a gradient function, or True when the objective returns (value, grad)"
            )
        loss, g = float(f(theta)), np.asarray(grad_fn(theta), dtype=np.float64)
    hess = getattr(f, "hessian", None)
    if callable(hess) and len(theta) <= DENSE_MAX_PARAMS:
        H = np.asarray(hess(theta), dtype=np.float64)
        return _Problem(getattr(f, "__name__", "objective"), theta, loss, g, lambda v: H @ v, "exact", H)
    hvp = central_difference_hvp(grad_fn, theta)
    return _Problem(
        getattr(f, "__name__", "objective"), theta, loss, g, hvp, "central difference of gradients"
    )


def _as_float64(model: Model) -> Model:
    kw = model.hyperparameters()
    if kw.get("dtype") == "float64":
        return model
    if "dtype" not in kw:
        raise invalid(_OWNER, "model", model, "take a dtype argument (its measurements run in float64)")
    return type(model)(**{**kw, "dtype": "float64"})


def _without_l2(model: Model) -> Model:
    kw = model.hyperparameters()
    return model if not kw.get("l2") else type(model)(**{**kw, "l2": 0.0})


def _probe(data: Any, rows: int, seed: int, classes: Any) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) in float64 / labels: all rows up to ``rows``, else a seeded sample (arrays) or the
    first batch of ``rows`` of a seeded epoch order (a ds.data source)."""
    if isinstance(data, DataSource):
        Xs, ys = [], []
        want, have = min(rows, int(data.n_samples)), 0
        for batch in data.batches(0, rows, shuffle=True, seed=seed):  # the first batch, in parts
            Xs.append(np.asarray(batch.X))
            ys.append(np.asarray(batch.y))
            have += len(Xs[-1])
            if have >= want:
                break
        if not Xs:
            raise invalid(_OWNER, "data", data, "have at least one row")
        X, y = np.concatenate(Xs), np.concatenate(ys)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = np.asarray(data[0]), np.asarray(data[1])
        if X.ndim != 2 or len(y) != len(X):
            raise invalid(
                _OWNER, "data", data, f"be (X, y) with X 2-D and one y per row; got X {X.shape}, y {y.shape}"
            )
        if len(X) > rows:
            idx = np.sort(np.random.default_rng([seed, 19]).choice(len(X), rows, replace=False))
            X, y = X[idx], y[idx]
    else:
        raise wrong_type(_OWNER, "data", data, "(X, y) arrays or a descend.data source")
    if len(X) == 0:
        raise invalid(_OWNER, "data", data, "have at least one row")
    if X.dtype.kind not in "biuf":
        raise invalid(_OWNER, "data", f"X of dtype {X.dtype}", "have numeric features")
    X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        row = int(np.argwhere(~np.isfinite(X))[0][0])
        raise invalid(_OWNER, "data", f"a non-finite feature in probe row {row}", "be finite")
    if classes is not None:
        labels = np.asarray(classes)
        pos = np.searchsorted(labels, y) if np.all(labels[:-1] <= labels[1:]) else None
        if pos is None or np.any(pos >= len(labels)) or np.any(labels[np.minimum(pos, len(labels) - 1)] != y):
            missing = sorted(set(np.unique(y).tolist()) - set(labels.tolist()))
            raise invalid(
                _OWNER,
                "classes",
                classes,
                f"be the sorted labels, holding every label of y (missing {missing[:5]})",
            )
        y = pos.astype(np.int64)
    elif y.dtype.kind in "USO":
        raise invalid(
            _OWNER, "classes", None, "be given (the sorted labels, e.g. run.classes) when y holds strings"
        )
    return X, y


def _resolve_model(model: Any, y: np.ndarray) -> Model:
    if isinstance(model, str):
        model = mdl.get(model)
    if not isinstance(model, Model):
        raise wrong_type(_OWNER, "model", model, "a descend model, a model name, or a test function")
    if model.task == "unresolved" and isinstance(model, MLP):
        kind = infer_task(y).kind
        model = model.with_output(
            {"regression": "regression", "binary": "binary", "multiclass": "softmax"}[kind]
        )
    return model


def _check_params(params: Any, model: Model, n_features: int) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping) or not params:
        raise wrong_type(_OWNER, "params", params, "the model's params dict (run.params or model.init(...))")
    out = {}
    for key, value in params.items():
        a = np.array(value, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise invalid(_OWNER, "params", f"{key!r} with non-finite values", "be finite")
        out[key] = a
    # the output width is the last weight matrix's; init gives the keys and shapes expected
    n_outputs = next((a.shape[1] for a in reversed(list(out.values())) if a.ndim == 2), 1)
    expected = model.init(np.random.default_rng(0), n_features, n_outputs)
    if list(expected) != list(out) or any(expected[k].shape != out[k].shape for k in out):
        want = ", ".join(f"{k}{expected[k].shape}" for k in expected)
        have = ", ".join(f"{k}{out[k].shape}" for k in out)
        raise invalid(_OWNER, "params", have, f"match {model!r} on {n_features} features: {want}")
    return out


def _model_problem(model: Model, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> _Problem:
    pack = _Packer(params)
    loss, g = model.loss_and_grad(params, X, y)
    theta = pack.vec(params)
    product = model.hvp_at(params, X, y)
    try:
        product({k: np.zeros_like(v) for k, v in params.items()})
    except NotImplementedError:
        flat_grad = lambda w: pack.vec(model.loss_and_grad(pack.tree(w), X, y)[1])  # noqa: E731
        hvp = central_difference_hvp(flat_grad, theta)
        method = "central difference of gradients"
    else:
        hvp = lambda v: pack.vec(product(pack.tree(v)))  # noqa: E731
        method = "exact (R-operator)"
    layers = {name: pack.indices(keys) for name, keys in model.layer_keys(params).items()}
    return _Problem(model.name, theta, float(loss), pack.vec(g), hvp, method, None, layers)


# ---- the instruments -------------------------------------------------------------------------------------


class _Curvature(NamedTuple):
    top: np.ndarray
    top_residual: np.ndarray
    min: float
    min_positive: float
    kappa_kind: str  # "exact", "lower bound" or "estimate" (see Diagnosis.condition_number)
    trace: float
    trace_se: float
    density: SpectralDensity
    method: str


def _curvature(
    problem: _Problem, method: str, rng: np.random.Generator, timings: dict[str, float]
) -> _Curvature:
    n = len(problem.theta)
    dense = method == "dense" or (method == "auto" and n <= DENSE_MAX_PARAMS)
    if dense:
        t0 = time.perf_counter()
        H = problem.hessian if problem.hessian is not None else dense_hessian(problem.hvp, n)
        if not np.all(np.isfinite(H)):
            raise invalid(
                _OWNER,
                "params",
                "a point where the Hessian is not finite",
                "be a point where the objective is twice differentiable",
            )
        lam = np.linalg.eigvalsh(0.5 * (H + H.T))
        timings["hessian"] = time.perf_counter() - t0
        top = lam[::-1][:TOP_K].copy()
        cut = ZERO_EIGENVALUE_RTOL * float(np.max(np.abs(lam)))
        pos = lam[lam > cut]
        return _Curvature(
            top,
            np.zeros(len(top)),
            float(lam[0]),
            float(pos[0]) if len(pos) else math.nan,
            "exact",
            float(np.trace(H)),
            0.0,
            SpectralDensity(lam, np.full(n, 1.0 / n)),
            "dense",
        )
    t0 = time.perf_counter()
    run = lanczos(problem.hvp, rademacher(rng, n), LANCZOS_STEPS)
    timings["lanczos"] = time.perf_counter() - t0
    if not np.all(np.isfinite(run.theta)):
        raise invalid(
            _OWNER,
            "params",
            "a point where the Hessian is not finite",
            "be a point where the objective is twice differentiable",
        )
    t0 = time.perf_counter()
    trace = hutchinson(problem.hvp, n, HUTCHINSON_PROBES, rng)
    timings["hutchinson"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    density = spectral_density(problem.hvp, n, probes=SLQ_PROBES, steps=LANCZOS_STEPS, rng=rng, first=run)
    timings["density"] = time.perf_counter() - t0
    theta = run.theta
    order = np.argsort(theta)[::-1][:TOP_K]
    cut = ZERO_EIGENVALUE_RTOL * float(np.max(np.abs(theta)))
    pos = theta[theta > cut]
    return _Curvature(
        theta[order].copy(),
        run.residual[order].copy(),
        float(theta[0]),
        float(pos.min()) if len(pos) else math.nan,
        # theta_max <= lambda_max and theta_min >= lambda_min: with theta_min > 0 their ratio
        # bounds kappa from below; an interior Ritz value only estimates lambda_min^+
        "lower bound" if theta[0] > cut else "estimate",
        trace.value,
        trace.standard_error,
        density,
        "lanczos",
    )


def _exact_noise(
    model: Model, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, grad: dict[str, np.ndarray]
) -> NoiseEstimate:
    """tr(Sigma) from per-sample gradient norms: mean_i |g_i|^2 - |mean_i g_i|^2, per param."""
    data_model = _without_l2(model)
    sq = data_model.per_sample_sq_norms(params, X, y)
    mean = data_model.loss_and_grad(params, X, y)[1]
    key_trace = {k: max(float(np.mean(sq[k])) - float(np.vdot(mean[k], mean[k])), 0.0) for k in params}
    layer_trace, layer_grad_sq = {}, {}
    for name, keys in model.layer_keys(params).items():
        layer_trace[name] = sum(key_trace[k] for k in keys)
        layer_grad_sq[name] = sum(float(np.vdot(grad[k], grad[k])) for k in keys)
    total_sq = sum(float(np.vdot(g, g)) for g in grad.values())
    return NoiseEstimate(
        sum(key_trace.values()), total_sq, layer_trace, layer_grad_sq, "exact (per-sample gradients)"
    )


def _noise(
    model: Model,
    params: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    problem: _Problem,
    rng: np.random.Generator,
) -> NoiseEstimate:
    pack = _Packer(params)
    grad = pack.tree(problem.grad)
    try:
        return _exact_noise(model, params, X, y, grad)
    except NotImplementedError:
        pass
    n = len(X)
    big = min(NOISE_BIG_BATCH, max(n, 2))
    small = min(NOISE_SMALL_BATCH, big - 1)
    return noise_two_batch(
        lambda idx: pack.vec(model.loss_and_grad(params, X[idx], y[idx])[1]),
        n,
        layers=problem.layers,
        small=small,
        big=big,
        rng=rng,
    )


def _dup_fraction(W: np.ndarray, b: np.ndarray) -> float:
    C = np.vstack([W, b[None, :]]).T  # one row per unit: its incoming weights and bias
    scale = float(np.max(np.linalg.norm(C, axis=1)))
    if scale == 0.0:
        return 1.0 if len(C) > 1 else 0.0
    keys = np.round(C / (SYMMETRIC_RTOL * scale))
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    return float(np.mean(counts[inverse.ravel()] > 1))


def _units(model: MLP, params: dict[str, np.ndarray], X: np.ndarray) -> tuple[dict, dict, dict]:
    """Dead-ReLU, saturated and duplicate fractions of each hidden layer."""
    dead: dict[str, float] = {}
    saturated: dict[str, float] = {}
    dup: dict[str, float] = {}
    for i, z in enumerate(model.preactivations(params, X)):
        name = f"layer{i}"
        if model.activation == "relu":
            dead[name] = float(np.mean(np.all(z <= 0, axis=0)))
        elif model.activation == "sigmoid":
            h = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
            saturated[name] = float(np.mean(4.0 * h * (1.0 - h) < SATURATION_DERIVATIVE))
        elif model.activation == "tanh":
            h = np.tanh(z)
            saturated[name] = float(np.mean(1.0 - h * h < SATURATION_DERIVATIVE))
        dup[name] = _dup_fraction(params[f"W{i}"], params[f"b{i}"])
    return dead, saturated, dup


def _feature_scale(X: np.ndarray) -> tuple[float, float]:
    """Largest over smallest std of the non-constant columns (:func:`varies`: fit's rule, so a
    column fit would not scale is not counted here either), and the largest |mean| / std."""
    mean, sd = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
    live = varies(mean, sd)
    if len(X) < 2 or not live.any():
        return math.nan, math.nan
    mean = np.abs(mean)[live]
    return float(sd[live].max() / sd[live].min()), float(np.max(mean / sd[live]))


def _rule(optimizer: Any, lr: Any) -> tuple[Optimizer | None, float | None]:
    """The update rule (plain GD when only ``lr`` is given) and the lr of its first step."""
    if lr is not None:
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (int, float, np.integer, np.floating)):
            raise wrong_type(_OWNER, "lr", lr, "a positive real number")
        if not (math.isfinite(lr) and lr > 0):
            raise invalid(_OWNER, "lr", lr, "be a positive finite number")
    if optimizer is None:
        return (SGD(lr=float(lr)) if lr is not None else None), (float(lr) if lr is not None else None)
    if isinstance(optimizer, Optimizer):
        return optimizer, float(lr) if lr is not None else optimizer.lr_at(0)
    if isinstance(optimizer, str):
        opt = make_optimizer(optimizer, **({"lr": float(lr)} if lr is not None else {}))
        return opt, float(lr) if lr is not None else opt.lr_at(0)
    raise wrong_type(_OWNER, "optimizer", optimizer, "an optimizer name or instance")


# ---- the diagnosis ---------------------------------------------------------------------------------------


def diagnose(
    model: Any,
    params: Any = None,
    data: Any = None,
    *,
    optimizer: Any = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    grad: Any = None,
    method: str = "auto",
    probe_rows: int = PROBE_ROWS,
    classes: Any = None,
) -> Diagnosis:
    r"""Measure, at ``params``, the problems the notes name for gradient descent, and judge each.

    ``diagnose(model, params, data)``: a model (instance or name; ``MLP(output=None)`` takes
    its output from the targets) at its params (e.g. ``run.params``) on ``data``, ``(X, y)``
    arrays or a :mod:`descend.data` source, in the space the params live in (standardise ``X``
    as the run did). ``diagnose(f, x)``: a test function (``ds.functions.get(name)``, exact
    Hessian) or any objective with a gradient (``f.grad``, ``grad=callable``, or ``grad=True``
    when ``f`` returns ``(value, grad)``, as in :func:`~descend.minimize`) at the point ``x``.

    Parameters
    ----------
    optimizer, lr : the run's update rule (name or instance) and lr: judged against the rule's
        stability limit. Only ``lr``: plain gradient descent. Neither: no lr verdict.
    batch_size : the run's batch size, judged against the noise scale (None: full batch).
    seed : seeds the probe sample, Lanczos start and trace probes (results are reproducible).
    method : ``"auto"`` (a dense Hessian up to :data:`DENSE_MAX_PARAMS` params, else Lanczos),
        ``"dense"`` or ``"lanczos"``.
    probe_rows : rows measured (:data:`PROBE_ROWS`). classes : the sorted labels when ``y``
        holds labels other than ``0..K-1`` (e.g. ``run.classes``).

    How each number is measured
    ---------------------------
    - Hessian-vector products: exact for the built-in models (Pearlmutter's R-operator,
      :meth:`~descend.models.Model.hvp`) and test functions (their Hessians); otherwise a
      central difference of gradients (:func:`~descend.lab._curvature.central_difference_hvp`).
    - Spectrum: dense :func:`numpy.linalg.eigvalsh`, or :data:`LANCZOS_STEPS` Lanczos steps with
      full reorthogonalization from a seeded Rademacher start (top eigenvalues, and the
      bottom Ritz value as :math:`\lambda_{\min}`, an upper bound of it), Hutchinson's trace
      with :data:`HUTCHINSON_PROBES` probes, and the density by stochastic Lanczos quadrature
      with :data:`SLQ_PROBES` runs.
    - Noise: exact per-sample gradient norms (:meth:`~descend.models.Model.per_sample_sq_norms`;
      :math:`\operatorname{tr}\Sigma = \overline{\lVert g_i \rVert^2} - \lVert \bar g \rVert^2`
      over the probe, the penalty excluded as it does not vary), else :func:`noise_two_batch`.
      :math:`\lVert G \rVert^2` is the full gradient's, penalty included.

    >>> import descend as ds
    >>> d = ds.lab.diagnose(ds.functions.get("saddle"), [0.0, 0.0])
    >>> sorted(d.flags), d.hessian_top, d.hessian_min
    (['saddle'], array([ 2., -2.]), -2.0)
    >>> d = ds.lab.diagnose(ds.functions.get("quadratic", kappa=1e4), [1.0, 1.0], lr=1e-3)
    >>> sorted(d.flags), d.condition_number, d.lr_max
    (['ill_conditioned', 'lr_above_stability'], 10000.0, 0.0002)
    """
    seed = check_int(_OWNER, "seed", seed, low=0)
    method = check_choice(_OWNER, "method", method, ("auto", "dense", "lanczos"))
    probe_rows = check_int(_OWNER, "probe_rows", probe_rows, low=1)
    if batch_size is not None:
        batch_size = check_int(_OWNER, "batch_size", batch_size, low=1)
    rule, lr_value = _rule(optimizer, lr)
    rng = np.random.default_rng([seed, 23])
    timings: dict[str, float] = {}

    if isinstance(model, str) and data is None and model.lower().replace("-", "_") in fns.names():
        model = fns.get(model)
    is_function = isinstance(model, fns.Objective) or (
        callable(model) and not isinstance(model, (Model, str))
    )
    t0 = time.perf_counter()
    if is_function:
        if data is not None:
            raise invalid(_OWNER, "data", data, "be None for a function (diagnose(f, x))")
        problem = _function_problem(model, params, grad)
        m64 = p64 = X = y = None
    else:
        if data is None:
            raise invalid(_OWNER, "data", None, "be (X, y) arrays or a descend.data source for a model")
        X, y = _probe(data, probe_rows, seed, classes)
        m64 = _as_float64(_resolve_model(model, y))
        p64 = _check_params(params, m64, X.shape[1])
        problem = _model_problem(m64, p64, X, y)
    timings["gradient"] = time.perf_counter() - t0

    if not (math.isfinite(problem.loss) and np.all(np.isfinite(problem.grad))):
        raise invalid(
            _OWNER,
            "params",
            f"a point with loss {problem.loss} and a non-finite gradient",
            "be a point where the loss and gradient are finite",
        )
    curv = _curvature(problem, method, rng, timings)
    grad_norm = float(np.linalg.norm(problem.grad))
    lam_max = float(curv.top[0])
    kappa = lam_max / curv.min_positive if lam_max > 0 and math.isfinite(curv.min_positive) else math.nan
    critical = _critical_point(grad_norm, problem.loss, lam_max, curv.min)

    d = Diagnosis(
        subject=problem.subject,
        n_params=len(problem.theta),
        loss=problem.loss,
        grad_norm=grad_norm,
        hvp_method=problem.hvp_method,
        spectrum_method=curv.method,
        hessian_top=curv.top,
        hessian_top_residual=curv.top_residual,
        hessian_min=curv.min,
        condition_number=kappa,
        condition_number_kind=curv.kappa_kind,
        gd_rate=(kappa - 1) / (kappa + 1) if math.isfinite(kappa) else math.nan,
        hessian_trace=curv.trace,
        hessian_trace_se=curv.trace_se,
        spectrum=curv.density,
        critical_point=critical,
        rule=rule.name if rule is not None else None,
        lr=lr_value,
        batch_size=batch_size,
        timings=timings,
    )
    if rule is not None:
        c = stability_constant(rule)
        if c is not None:
            lam_eff = lam_max + (float(rule.weight_decay) if not rule.decoupled_weight_decay else 0.0)
            d.lr_max = c / lam_eff if lam_eff > 0 else math.inf

    if not is_function:
        assert m64 is not None and p64 is not None and X is not None and y is not None
        _measure_data(d, m64, p64, X, y, problem, rng)
    d._verdicts = _judge(d, rule)
    d.flags = {v.flag for v in d._verdicts if v.flag}
    return d


def _measure_data(
    d: Diagnosis,
    model: Model,
    params: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    problem: _Problem,
    rng: np.random.Generator,
) -> None:
    """The measurements that need data: gradient noise, layers, units, feature scales."""
    d.probe_rows = len(X)
    t0 = time.perf_counter()
    noise = _noise(model, params, X, y, problem, rng)
    d.timings["noise"] = time.perf_counter() - t0
    d.noise_scale, d.grad_noise_trace, d.noise_method = noise.b_simple, noise.trace, noise.method
    d.layer_snr = {
        k: _ratio(noise.layer_grad_sq[k], noise.layer_trace[k]) if noise.layer_trace[k] > 0 else math.inf
        for k in noise.layer_trace
    }
    t0 = time.perf_counter()
    d.layer_grad_norms = {k: float(np.linalg.norm(problem.grad[idx])) for k, idx in problem.layers.items()}
    d.layer_weight_norms = {k: float(np.linalg.norm(problem.theta[idx])) for k, idx in problem.layers.items()}
    norms = list(d.layer_grad_norms.values())
    if len(norms) > 1:
        d.grad_norm_ratio = _ratio(norms[0], norms[-1])
    if isinstance(model, MLP):
        d.dead_fraction, d.saturated_fraction, d.duplicate_fraction = _units(model, params, X)
    d.timings["layers"] = time.perf_counter() - t0
    d.feature_scale_ratio, d.feature_offset = _feature_scale(X)


def _critical_point(grad_norm: float, loss: float, lam_max: float, lam_min: float) -> str | None:
    if grad_norm > STATIONARY_GRAD * max(1.0, abs(loss)):
        return None
    scale = max(abs(lam_max), abs(lam_min))
    if lam_max < -NEGATIVE_CURVATURE_RTOL * scale:
        return "maximum"
    if lam_min < -NEGATIVE_CURVATURE_RTOL * scale:
        return "saddle"
    return "minimum" if lam_min > POSITIVE_CURVATURE_RTOL * scale else "flat"


def _judge(d: Diagnosis, rule: Optimizer | None) -> list[Verdict]:
    """The verdict rows of a diagnosis, each with its flag (None if its threshold is not crossed)."""
    rows: list[Verdict] = []
    kappa = d.condition_number
    unscaled = d.feature_scale_ratio > FEATURE_SCALE_RATIO or d.feature_offset > FEATURE_SCALE_RATIO

    # conditioning, judged by the steps the rule needs per e-fold of its slowest direction, where
    # the Hessian is positive semidefinite and kappa is exact or bounded from below
    c = stability_constant(rule) if rule is not None else 2.0
    if math.isfinite(kappa):
        momentum = isinstance(rule, SGD) and rule.momentum > 0
        steps = math.sqrt(kappa) / 2 if momentum else kappa / 2
        flag = None
        if d.critical_point == "saddle" or d.hessian_min < -NEGATIVE_CURVATURE_RTOL * float(
            max(abs(d.hessian_top[0]), abs(d.hessian_min))
        ):
            meaning = (
                f"kappa = {kappa:.3g} over the positive spectrum, but the Hessian is indefinite "
                f"(lambda_min = {d.hessian_min:.3g}): not judged outside a convex region"
            )
        elif c is None:
            assert rule is not None
            meaning = (
                f"kappa = {kappa:.3g}; {rule.name} rescales each coordinate: kappa of H does not set its rate"
            )
        elif d.condition_number_kind == "estimate":
            meaning = (
                f"kappa ~ {kappa:.3g}, estimated from an interior Ritz value (method='dense' gives it "
                "exactly): not judged"
            )
        else:
            flag = "ill_conditioned" if steps > ILL_CONDITIONED_STEPS else None
            meaning = (
                f"error along the flattest direction shrinks by (kappa-1)/(kappa+1) = {d.gd_rate:.6g} per "
                f"GD step at best: ~{steps:.3g} steps per e-fold"
                + (" with momentum (sqrt(kappa)/2)" if momentum else "")
                + (" (kappa: a lower bound)" if d.condition_number_kind == "lower bound" else "")
            )
        rows.append(
            Verdict(
                "condition number kappa",
                kappa,
                f"steps per e-fold > {ILL_CONDITIONED_STEPS} (kappa > {2 * ILL_CONDITIONED_STEPS} for GD)",
                meaning,
                (_FIX["unscaled"] if unscaled else _FIX["ill_conditioned"]) if flag else "",
                flag,
            )
        )

    # learning rate against the stability limit of the rule
    if rule is not None and d.lr is not None:
        if d.lr_max is None:
            rows.append(
                Verdict(
                    "lr / stability limit",
                    math.nan,
                    "not defined by this rule",
                    f"{rule.name} divides each step by a running gradient size: no 2/lr-type limit",
                    "",
                    None,
                )
            )
        else:
            frac = d.lr / d.lr_max if d.lr_max > 0 else math.inf
            flag = (
                "lr_above_stability" if frac > 1 else "lr_too_small" if frac < LR_TOO_SMALL_FRACTION else None
            )
            cst = stability_constant(rule)
            meaning = (
                f"lr = {d.lr:.4g} against the largest stable lr {d.lr_max:.4g} = {cst:.4g}/lambda_max "
                f"(lambda_max = {float(d.hessian_top[0]):.4g}): "
                + (
                    "steps along the top eigenvector grow: divergence or oscillation"
                    if flag == "lr_above_stability"
                    else "crawling: many more steps than needed"
                    if flag == "lr_too_small"
                    else "stable"
                )
            )
            rows.append(
                Verdict(
                    "lr / stability limit",
                    frac,
                    f"> 1 unstable; < {LR_TOO_SMALL_FRACTION:g} too small",
                    meaning,
                    _FIX[flag] if flag else "",
                    flag,
                )
            )

    # stationary points
    if d.critical_point is not None:
        kind = d.critical_point
        meaning = {
            "saddle": "a stationary point with a descending direction: GD stalls here before escaping",
            "flat": "a stationary point with no clear curvature: a plateau where GD crawls",
            "minimum": "a local minimum (no clearly negative curvature)",
            "maximum": "a local maximum (every direction descends): GD rests here only at the "
            "exact point, and any noise sends it away",
        }[kind]
        rows.append(
            Verdict(
                "lambda_min at a small gradient",
                d.hessian_min,
                f"< -{NEGATIVE_CURVATURE_RTOL:g} max|lambda|: saddle; <= {POSITIVE_CURVATURE_RTOL:g} x: flat",
                meaning,
                _FIX.get(kind, "") if kind in ("saddle", "flat") else "",
                kind if kind in ("saddle", "flat") else None,
            )
        )

    # gradient noise
    if math.isfinite(d.noise_scale):
        B = d.batch_size
        flag = None
        if B is not None and B < d.probe_rows and d.noise_scale > NOISE_DOMINATED_RATIO * B:
            flag = "noise_dominated"
        where = (
            f"at batch {B} the gradient's noise is {d.noise_scale / B:.3g} x its signal (squared norms)"
            if B is not None
            else "full batch: no sampling noise"
        )
        rows.append(
            Verdict(
                "noise scale B_simple",
                d.noise_scale,
                f"> {NOISE_DOMINATED_RATIO:g} x batch_size",
                f"critical batch ~ B_simple = {d.noise_scale:.4g}; {where}",
                _FIX["noise_dominated"] if flag else "",
                flag,
            )
        )

    # layers
    r = d.grad_norm_ratio
    if math.isfinite(r) or r == math.inf:
        flag = (
            "vanishing_gradients"
            if r < VANISHING_RATIO
            else "exploding_gradients"
            if r > EXPLODING_RATIO
            else None
        )
        rows.append(
            Verdict(
                "first / last layer gradient norm",
                r,
                f"< {VANISHING_RATIO:g} vanishing; > {EXPLODING_RATIO:g} exploding",
                f"the first layer's gradient is {r:.3g} x the last's: it learns "
                + (
                    "far slower"
                    if flag == "vanishing_gradients"
                    else "far faster"
                    if flag
                    else "at a like pace"
                ),
                _FIX[flag] if flag else "",
                flag,
            )
        )
    if d.lr and d.layer_weight_norms and len(d.layer_grad_norms) > 1:
        steps = {
            k: d.lr * g / w if w > 0 else (math.inf if g > 0 else 0.0)
            for (k, g), w in zip(d.layer_grad_norms.items(), d.layer_weight_norms.values(), strict=True)
        }
        worst = max(steps, key=lambda k: steps[k])
        big = steps[worst] > EXPLODING_STEP and d.grad_norm_ratio <= EXPLODING_RATIO
        flag = "exploding_gradients" if big else None
        rows.append(
            Verdict(
                "largest lr x |g| / |w| of a layer",
                steps[worst],
                f"> {EXPLODING_STEP:g}: one step moves a layer by more than its size",
                f"one step at lr {d.lr:g} moves {worst} by {steps[worst]:.3g} x its weights' norm"
                + (": the gradients have blown up in every layer alike" if big else ""),
                _FIX["exploding_gradients"] if big else "",
                flag,
            )
        )
    for attr, limit, name, flag_name, what in (
        (
            "dead_fraction",
            DEAD_RELU_FRACTION,
            "dead ReLU units",
            "dead_relu",
            "units output 0 on every probe row",
        ),
        (
            "saturated_fraction",
            SATURATED_FRACTION,
            "saturated pre-activations",
            "saturated_units",
            f"pre-activations have phi'(z) < {SATURATION_DERIVATIVE:g} phi'(0)",
        ),
        (
            "duplicate_fraction",
            SYMMETRIC_FRACTION,
            "duplicate hidden units",
            "symmetric_units",
            "units have another unit's incoming weights",
        ),
    ):
        fractions = getattr(d, attr)
        if not fractions:
            continue
        worst = max(fractions, key=fractions.get)
        value = fractions[worst]
        flag = flag_name if value > limit else None
        rows.append(
            Verdict(
                name,
                value,
                f"> {limit:g} of a layer",
                f"{value:.0%} of {worst}'s {what}",
                _FIX[flag_name] if flag else "",
                flag,
            )
        )
    if math.isfinite(d.feature_scale_ratio):
        rows.append(
            Verdict(
                "feature scales (largest / smallest std)",
                d.feature_scale_ratio,
                f"> {FEATURE_SCALE_RATIO:g} (or |mean| / std above it)",
                "unscaled inputs stretch the loss surface along some weights"
                if unscaled
                else "inputs on comparable scales",
                _FIX["unscaled"] if unscaled else "",
                None,
            )
        )
    return rows
