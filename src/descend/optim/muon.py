"""Muon: momentum orthogonalised by a Newton–Schulz iteration, for the matrices of a model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._tree import leaf_paths
from .._validation import check_bool, check_int, check_real, invalid, wrong_type
from ._blocks import ema_
from ._rules import rule
from .base import Optimizer, OptState, Schedule

__all__ = ["Muon", "newton_schulz"]

#: the quintic's coefficients of Keller Jordan's Muon (and torch.optim.Muon)
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(
    G: np.ndarray, coefficients: tuple[float, float, float], steps: int, eps: float
) -> np.ndarray:
    r"""``steps`` Newton–Schulz iterations towards the orthogonal factor :math:`UV^\top` of the
    matrix ``G = U S V^T``, in ``G``'s dtype (torch's ``_zeropower_via_newtonschulz``).

    .. math::

        X_0 = G / \max(\lVert G \rVert_F, \epsilon), \quad A_k = X_k X_k^\top, \quad
        X_{k+1} = a X_k + (b A_k + c A_k^2) X_k

    on the wide side (``G`` transposed when it has more rows than columns). The quintic with
    the default coefficients maximises the slope at zero: singular values end up near, not
    at, 1 (about 0.7 to 1.2), which does not hurt training (Jordan et al., 2024).
    """
    a, b, c = coefficients
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / max(float(np.linalg.norm(X)), eps)
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X.T if tall else X


class Muon(Optimizer):
    r"""Muon (Jordan et al., 2024) as PyTorch's ``torch.optim.Muon``, with a companion rule for
    the leaves that are not matrices.

    .. math::

        b_t &= \mu\, b_{t-1} + (1 - \mu)\, g_t \\
        u_t &= \mu\, b_t + (1 - \mu)\, g_t \ \text{(nesterov)}, \quad u_t = b_t \text{ otherwise} \\
        p_t &= p_{t-1}(1 - \eta\lambda) - \eta\, s(A, B)\, \mathrm{NS}_k(u_t)

    where :func:`newton_schulz` replaces :math:`u_t = U S V^\top` by about :math:`U V^\top`:
    every direction of the update moves by about the same amount, however small its gradient.
    An ``A`` x ``B`` matrix's step is scaled by :math:`s = \sqrt{\max(1, A/B)}`
    (``adjust_lr_fn=None`` or ``"original"``, Jordan's) or :math:`s = 0.2 \sqrt{\max(A, B)}`
    (``"match_rms_adamw"``, Liu et al., 2025: an update of AdamW's RMS, so AdamW's lr and
    weight decay carry over).

    Which leaf goes where: every 2-D leaf is Muon's. A parameter that is one 1-D array and
    nothing else (the point of :func:`~descend.minimize` and of races) is Muon's too, as a
    1 x n matrix, whose orthogonal factor is its direction: Muon then takes steps of nearly
    fixed length along its momentum. Every other leaf (biases, scalars, tensors of 3 or more
    dimensions) goes to the ``companion``, whose buffers live in Muon's state under its name
    (``"adamw.m"``), so saving, checkpoints and resuming see one state.

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1e-3, as PyTorch; Jordan uses 0.02). momentum : in
    ``[0, 1)`` (default 0.95). weight_decay : decoupled, :math:`\eta\lambda` with the unscaled lr
    (default 0.1, as PyTorch). nesterov : default True. ns_coefficients : the quintic's
    :math:`(a, b, c)` (default ``(3.4445, -4.7750, 2.0315)``). ns_steps : ``>= 0`` iterations
    (default 5). eps : ``> 0`` floor of the norm in :func:`newton_schulz` (default 1e-7).
    adjust_lr_fn : ``None`` (default), ``"original"`` or ``"match_rms_adamw"``.
    companion : the rule for the other leaves: a registered name (default ``"adamw"``), built
    with that rule's defaults, its registry ``fit_lr`` and Muon's ``weight_decay`` and
    ``maximize``; an :class:`Optimizer` (e.g. ``ds.AdamW(lr=3e-4)``: its own lr, schedule and
    decay); or ``None``, to refuse such leaves. maximize : ascend instead (the companion too).
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : accepted for a uniform interface; Muon mixes the elements of a matrix and runs in
    NumPy, and so does its companion.

    Warning
    -------
    PyTorch runs the Newton–Schulz iteration in bfloat16, which NumPy lacks: descend runs it
    in the parameter's dtype, so its orthogonal factors are more exact than torch's and its
    steps differ from torch's by bfloat16's rounding (a few percent of a step); the tests
    compare with torch's algorithm kept in the parameter's dtype. Jordan's reference code
    divides by :math:`\lVert G \rVert_F + \epsilon`, PyTorch (and descend) by
    :math:`\max(\lVert G \rVert_F, \epsilon)`. PyTorch's documentation writes the momentum as
    :math:`b_t = \mu b_{t-1} + g_t`; its code (and descend) averages, as above. PyTorch refuses
    every leaf that is not 2-D and leaves the pairing with AdamW to the user (its example pairs
    lr 0.02 with AdamW's 3e-4); descend's default companion is AdamW at its ``fit_lr`` (3e-3).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> params = {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    >>> opt = ds.Muon(lr=0.1, weight_decay=0.0); s = opt.init(params)
    >>> sorted(s.buffers)            # Muon's momentum, and AdamW's moments for "b"
    ['adamw.m', 'adamw.v', 'b']
    >>> opt.step(params, {"W": np.array([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), "b": np.ones(2)}, s)
    >>> np.round(params["W"], 3)     # each direction moves about lr * sqrt(3/2) = 0.12
    array([[-0.092,  0.   ],
           [ 0.   , -0.139],
           [ 0.   ,  0.   ]])

    References
    ----------
    K. Jordan, Y. Jin, V. Boza, J. You, F. Cesista, L. Newhouse and J. Bernstein, "Muon: An
    optimizer for hidden layers in neural networks", 2024,
    https://kellerjordan.github.io/posts/muon/. J. Liu et al., "Muon is Scalable for LLM
    Training", 2025, https://arxiv.org/abs/2502.16982.
    """

    name = "muon"
    # measured: 0.01 trains logistic regression to within 0.3% of its optimum and an MLP best
    # among 0.005-0.1 (Jordan's 0.02 is as good on the former, 1.5% worse on the latter)
    fit_lr = 1e-2
    # a race's point is a 1 x 2 matrix: steps of about 0.7 lr along the momentum, like Adam's
    # first steps at its race lr
    race_lr = 5e-2
    color = "#dbdb8d"
    marker = "4"
    decoupled_weight_decay = True

    def __init__(
        self,
        lr: float | Schedule = 1e-3,
        momentum: float = 0.95,
        *,
        weight_decay: float = 0.1,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        ns_steps: int = 5,
        eps: float = 1e-7,
        adjust_lr_fn: str | None = None,
        companion: str | Optimizer | None = "adamw",
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        owner = self._owner
        self.momentum = check_real(owner, "momentum", momentum, low=0.0, high=1.0, high_open=True)
        self.nesterov = check_bool(owner, "nesterov", nesterov)
        if (
            isinstance(ns_coefficients, (str, bytes))
            or not hasattr(ns_coefficients, "__len__")
            or len(ns_coefficients) != 3
        ):
            raise wrong_type(owner, "ns_coefficients", ns_coefficients, "three numbers (a, b, c)")
        self.ns_coefficients = tuple(
            check_real(owner, f"ns_coefficients[{i}]", v) for i, v in enumerate(ns_coefficients)
        )
        self.ns_steps = check_int(owner, "ns_steps", ns_steps, low=0)
        self.eps = check_real(owner, "eps", eps, low=0.0, low_open=True)
        if adjust_lr_fn is not None and not (
            isinstance(adjust_lr_fn, str) and adjust_lr_fn in ("original", "match_rms_adamw")
        ):
            raise invalid(owner, "adjust_lr_fn", adjust_lr_fn, "be None, 'original' or 'match_rms_adamw'")
        self.adjust_lr_fn = adjust_lr_fn
        self.companion = self._check_companion(companion)

    def _check_companion(self, companion: Any) -> Optimizer | None:
        owner = self._owner
        if companion is None:
            return None
        if isinstance(companion, str):
            entry = rule(companion, owner=f"{owner}: companion", param="companion")
            if issubclass(entry.cls, Muon) or entry.cls.needs_objective:
                raise invalid(owner, "companion", companion, "be a rule stepped on gradients, not Muon")
            companion = entry.make(lr=entry.fit_lr, weight_decay=self.weight_decay, maximize=self.maximize)
        if not isinstance(companion, Optimizer):
            raise wrong_type(owner, "companion", companion, "a rule's name, an Optimizer or None")
        if isinstance(companion, Muon) or companion.needs_objective:
            raise invalid(owner, "companion", companion, "be a rule stepped on gradients, not Muon")
        if companion.maximize != self.maximize:
            raise invalid(owner, "companion", companion, f"have maximize={self.maximize}, as Muon has")
        return companion

    # -- which leaves are Muon's ---------------------------------------------------------------
    @staticmethod
    def _takes(shapes: list[tuple[int, ...]]) -> list[bool]:
        """Muon's leaves: the matrices, and a lone vector (as a 1 x n matrix)."""
        return [len(s) == 2 or (len(shapes) == 1 and len(s) == 1) for s in shapes]

    @property
    def _prefix(self) -> str:
        assert self.companion is not None
        return f"{self.companion.name}."

    def init(self, params: Any) -> OptState:
        state = super().init(params)
        if self.companion is None:
            for path, shape, mine in zip(
                leaf_paths(state.treedef), state.shapes, self._takes(state.shapes), strict=True
            ):
                if not mine:
                    raise ValueError(
                        f"{self._owner}.init: params{path} has shape {shape}, and Muon takes matrices "
                        "(2-D leaves) only: give a companion rule for the others (companion='adamw', "
                        "the default, or an Optimizer such as ds.AdamW(lr=3e-4)), or leave them out"
                    )
        return state

    def _buffer_names(self) -> tuple[str, ...]:
        if self.companion is None:
            return ("b",)
        return ("b", *(self._prefix + n for n in self.companion._buffer_names()))

    def _buffer_fill(self, name: str) -> float:
        if name == "b":
            return 0.0
        return self.companion._buffer_fill(name[len(self._prefix) :])

    def _buffer_shapes(self, name: str, shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        takes = self._takes(shapes)
        if name == "b":
            return [s if mine else (0,) for s, mine in zip(shapes, takes, strict=True)]
        theirs = self.companion._buffer_shapes(name[len(self._prefix) :], shapes)
        return [(0,) if mine else s for s, mine in zip(theirs, takes, strict=True)]

    def _initial_scalars(self) -> dict[str, float]:
        if self.companion is None:
            return {}
        return {self._prefix + k: v for k, v in self.companion._initial_scalars().items()}

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        if self.companion is None:
            return {}
        prefix = self._prefix
        mine = {k[len(prefix) :]: v for k, v in scalars.items() if k.startswith(prefix)}
        lr_companion = self.companion.lr_at(t - 1)
        c = self.companion._coefficients(t, lr_companion, mine)
        c.setdefault("lr", lr_companion)
        c["t"] = t
        scalars.update({prefix + k: v for k, v in mine.items()})
        return {"companion": c}

    def _reference_leaf(
        self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]
    ) -> None:
        if b["b"].shape == p.shape:  # init gave Muon's leaves their momentum, the others (0,)
            super()._reference_leaf(p, g, b, c)
            return
        prefix = self._prefix
        theirs = {k[len(prefix) :]: v for k, v in b.items() if k.startswith(prefix)}
        self.companion._reference_leaf(p, g, theirs, c["companion"])

    # -- the update of one matrix ----------------------------------------------------------------
    def _adjusted_lr(self, lr: float, shape: tuple[int, int]) -> float:
        A, B = shape
        if self.adjust_lr_fn == "match_rms_adamw":
            return lr * (0.2 * math.sqrt(max(A, B)))
        return lr * math.sqrt(max(1, A / B))

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        if p.size == 0:
            return
        buf = b["b"]
        ema_(buf, g, 1.0 - self.momentum)
        if self.nesterov:
            u = g.copy()  # g may be the caller's gradient: never written
            ema_(u, buf, self.momentum)
        else:
            u = buf
        shape = p.shape if p.ndim == 2 else (1, p.size)
        o = newton_schulz(u.reshape(shape), self.ns_coefficients, self.ns_steps, self.eps)
        p -= self._adjusted_lr(c["lr"], shape) * o.reshape(p.shape)
