"""Independent scalar reference implementations of every update rule, on plain Python floats.

Written from the papers and from the pseudo-code of PyTorch's ``torch.optim`` documentation,
never from descend's code and never importing descend: ``tests/test_reference.py`` checks
descend's vectorised optimizers against these over many steps. Each rule updates one scalar
coordinate at a time; a vector parameter is a loop over its coordinates. A rule that mixes the
elements of an array (Adafactor's factored moments, Muon's orthogonalisation) overrides ``step``
and works on the whole array (nested lists in and out), in NumPy.

Conventions shared by all of them (PyTorch's order of operations):

* ``t`` counts steps from 1; the learning rate of step ``t`` is ``lr`` or ``lr(t - 1)`` when
  ``lr`` is a schedule (a callable from the number of completed steps to a rate);
* ``maximize`` negates the gradient first; L2 ``weight_decay`` is then added to the gradient,
  while decoupled weight decay (AdamW, Nadam's option) shrinks the parameter before the step.

>>> opt = SGD(lr=0.1, momentum=0.9)
>>> x = opt.step([1.0], [2.0])
>>> x, opt.step(x, [2.0])
([0.8], [0.42000000000000004])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

__all__ = [
    "ASGD",
    "LBFGS",
    "REFERENCES",
    "SGD",
    "AdaDelta",
    "AdaGrad",
    "Adafactor",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Muon",
    "Nadam",
    "Prodigy",
    "RAdam",
    "RMSprop",
    "Reference",
    "Rprop",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
]

LearningRate = float | Callable[[int], float]


class Reference:
    """Loop over coordinates; each subclass writes the update of one scalar in ``update``."""

    def __init__(self, lr: LearningRate):
        self.lr = lr
        self.t = 0  # completed steps
        self.states: list[dict] = []  # one dict of named scalars per coordinate

    def new_state(self) -> dict:
        return {}

    def step(self, params: list[float], grads: list[float]) -> list[float]:
        """The parameters after one more step (the inputs are not modified)."""
        if not self.states:
            self.states = [self.new_state() for _ in params]
        lr = float(self.lr(self.t)) if callable(self.lr) else float(self.lr)
        self.t += 1
        return [
            self.update(float(p), float(g), s, lr, self.t)
            for p, g, s in zip(params, grads, self.states, strict=True)
        ]

    def update(self, p: float, g: float, s: dict, lr: float, t: int) -> float:
        raise NotImplementedError


class SGD(Reference):
    """SGD with momentum (Polyak, or Nesterov as in Sutskever et al. 2013), PyTorch's form.

    b_1 = g_1, then b_t = momentum * b_{t-1} + (1 - dampening) * g_t; the step is lr * b_t, or
    lr * (g_t + momentum * b_t) with nesterov: lr sits outside the velocity.
    """

    def __init__(
        self, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False
    ):
        super().__init__(lr)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.maximize = maximize

    def new_state(self):
        return {"b": None}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum != 0:
            if s["b"] is None:
                s["b"] = g
            else:
                s["b"] = self.momentum * s["b"] + (1 - self.dampening) * g
            if self.nesterov:
                g = g + self.momentum * s["b"]
            else:
                g = s["b"]
        return p - lr * g


class ASGD(Reference):
    """Averaged SGD (Polyak & Juditsky 1992) with the schedule of PyTorch's ASGD (its source).

    Per run: eta_0 = lr, mu_0 = 1. Step t, with eta and mu from the step before:
    p <- p (1 - lambd eta) - eta g; the average ax <- ax + mu (p - ax), or ax <- p while mu = 1;
    then eta = lr / (1 + lambd lr t)^alpha and mu = 1 / max(1, t - t0). L2 weight_decay is added
    to the gradient. The average of each coordinate is its state's "ax".
    """

    def __init__(self, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False):
        super().__init__(lr)
        self.lambd = lambd
        self.alpha = alpha
        self.t0 = t0
        self.weight_decay = weight_decay
        self.maximize = maximize
        self.eta = None  # step-wide, as mu: the values the next step uses
        self.mu = 1.0

    def new_state(self):
        return {"ax": 0.0}

    def step(self, params, grads):
        lr = float(self.lr(self.t)) if callable(self.lr) else float(self.lr)
        if self.eta is None:
            self.eta = lr
        out = super().step(params, grads)
        t = self.t
        self.eta = lr / (1 + self.lambd * lr * t) ** self.alpha
        self.mu = 1 / max(1, t - self.t0)
        return out

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        p = p * (1 - self.lambd * self.eta) - self.eta * g
        s["ax"] = p if self.mu == 1 else s["ax"] + self.mu * (p - s["ax"])
        return p


class AdaGrad(Reference):
    """AdaGrad (Duchi, Hazan & Singer 2011) as PyTorch's Adagrad: eps outside the square root.

    lr_t = lr / (1 + (t - 1) * lr_decay); G_t = G_{t-1} + g_t^2 with G_0 = initial_accumulator;
    p_t = p_{t-1} - lr_t * g_t / (sqrt(G_t) + eps).
    """

    def __init__(
        self, lr=1e-2, eps=1e-10, initial_accumulator=0.0, lr_decay=0.0, weight_decay=0.0, maximize=False
    ):
        super().__init__(lr)
        self.eps = eps
        self.initial_accumulator = initial_accumulator
        self.lr_decay = lr_decay
        self.weight_decay = weight_decay
        self.maximize = maximize

    def new_state(self):
        return {"G": float(self.initial_accumulator)}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        clr = lr / (1 + (t - 1) * self.lr_decay)
        s["G"] = s["G"] + g * g
        return p - clr * g / (math.sqrt(s["G"]) + self.eps)


class RMSprop(Reference):
    """RMSprop (Hinton, lecture 6e), centered variant of Graves (2013), as PyTorch's RMSprop.

    v_t = alpha v_{t-1} + (1 - alpha) g_t^2; centered: a_t = alpha a_{t-1} + (1 - alpha) g_t and
    v~ = v_t - a_t^2; with momentum: b_t = momentum b_{t-1} + g_t / (sqrt(v~) + eps) and
    p_t = p_{t-1} - lr b_t; otherwise p_t = p_{t-1} - lr g_t / (sqrt(v~) + eps).
    """

    def __init__(
        self, lr=1e-2, alpha=0.99, eps=1e-8, centered=False, momentum=0.0, weight_decay=0.0, maximize=False
    ):
        super().__init__(lr)
        self.alpha = alpha
        self.eps = eps
        self.centered = centered
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.maximize = maximize

    def new_state(self):
        return {"v": 0.0, "a": 0.0, "b": 0.0}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        s["v"] = self.alpha * s["v"] + (1 - self.alpha) * g * g
        v_tilde = s["v"]
        if self.centered:
            s["a"] = self.alpha * s["a"] + (1 - self.alpha) * g
            v_tilde = v_tilde - s["a"] * s["a"]
        if self.momentum > 0:
            s["b"] = self.momentum * s["b"] + g / (math.sqrt(v_tilde) + self.eps)
            return p - lr * s["b"]
        return p - lr * g / (math.sqrt(v_tilde) + self.eps)


class Adam(Reference):
    """Adam (Kingma & Ba 2015) and AMSGrad (Reddi et al. 2018) as PyTorch's Adam.

    m_t = beta1 m_{t-1} + (1 - beta1) g_t; v_t = beta2 v_{t-1} + (1 - beta2) g_t^2;
    amsgrad: vmax_t = max(vmax_{t-1}, v_t) (the uncorrected v) replaces v_t below;
    p_t = p_{t-1} - lr * (m_t / (1 - beta1^t)) / (sqrt(v_t / (1 - beta2^t)) + eps).
    Weight decay is L2 (added to the gradient); AdamW below decouples it.
    """

    decoupled = False

    def __init__(
        self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False
    ):
        super().__init__(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.amsgrad = amsgrad
        self.maximize = maximize

    def new_state(self):
        return {"m": 0.0, "v": 0.0, "vmax": 0.0}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            if self.decoupled:
                p = p * (1 - lr * self.weight_decay)
            else:
                g = g + self.weight_decay * p
        s["m"] = self.beta1 * s["m"] + (1 - self.beta1) * g
        s["v"] = self.beta2 * s["v"] + (1 - self.beta2) * g * g
        m_hat = s["m"] / (1 - self.beta1**t)
        if self.amsgrad:
            s["vmax"] = max(s["vmax"], s["v"])
            v_hat = s["vmax"] / (1 - self.beta2**t)
        else:
            v_hat = s["v"] / (1 - self.beta2**t)
        return p - lr * m_hat / (math.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): p <- p (1 - lr wd) before the Adam step; wd 1e-2."""

    decoupled = True

    def __init__(
        self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False
    ):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, maximize)


class Nadam(Reference):
    """Nadam (Dozat 2016) with the momentum schedule of PyTorch's NAdam.

    mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay)); P_t = mu_1 ... mu_t (running product);
    m_t, v_t as in Adam; p_t = p_{t-1} - lr * [(1 - mu_t) g_t / (1 - P_t)
    + mu_{t+1} m_t / (1 - P_t mu_{t+1})] / (sqrt(v_t / (1 - beta2^t)) + eps).
    """

    def __init__(
        self,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        momentum_decay=4e-3,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        maximize=False,
    ):
        super().__init__(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.momentum_decay = momentum_decay
        self.weight_decay = weight_decay
        self.decoupled_weight_decay = decoupled_weight_decay
        self.maximize = maximize

    def new_state(self):
        return {"m": 0.0, "v": 0.0, "mu_product": 1.0}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                p = p * (1 - lr * self.weight_decay)
            else:
                g = g + self.weight_decay * p
        mu = self.beta1 * (1 - 0.5 * 0.96 ** (t * self.momentum_decay))
        mu_next = self.beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
        s["mu_product"] = s["mu_product"] * mu
        s["m"] = self.beta1 * s["m"] + (1 - self.beta1) * g
        s["v"] = self.beta2 * s["v"] + (1 - self.beta2) * g * g
        m_hat = mu_next * s["m"] / (1 - s["mu_product"] * mu_next) + (1 - mu) * g / (1 - s["mu_product"])
        v_hat = s["v"] / (1 - self.beta2**t)
        return p - lr * m_hat / (math.sqrt(v_hat) + self.eps)


class RAdam(Reference):
    """RAdam (Liu et al. 2020) as PyTorch's RAdam (its documented algorithm).

    m_t, v_t as in Adam; rho_inf = 2 / (1 - beta2) - 1, rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t);
    if rho_t > 5: l_t = sqrt(1 - beta2^t) / (sqrt(v_t) + eps) (eps on the uncorrected root),
    r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)) and
    p_t = p_{t-1} - lr * m_t / (1 - beta1^t) * r_t * l_t; otherwise p_t = p_{t-1} - lr * m_t / (1 - beta1^t).
    Weight decay is L2, or with decoupled_weight_decay p <- p (1 - lr wd) before the step.
    """

    def __init__(
        self,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        maximize=False,
    ):
        super().__init__(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.decoupled_weight_decay = decoupled_weight_decay
        self.maximize = maximize

    def new_state(self):
        return {"m": 0.0, "v": 0.0}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                p = p * (1 - lr * self.weight_decay)
            else:
                g = g + self.weight_decay * p
        s["m"] = self.beta1 * s["m"] + (1 - self.beta1) * g
        s["v"] = self.beta2 * s["v"] + (1 - self.beta2) * g * g
        m_hat = s["m"] / (1 - self.beta1**t)
        rho_inf = 2 / (1 - self.beta2) - 1
        rho_t = rho_inf - 2 * t * self.beta2**t / (1 - self.beta2**t)
        if rho_t > 5:
            l_t = math.sqrt(1 - self.beta2**t) / (math.sqrt(s["v"]) + self.eps)
            r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            return p - lr * m_hat * r_t * l_t
        return p - lr * m_hat


class Rprop(Reference):
    """Rprop (Riedmiller & Braun 1993) without weight-backtracking, as PyTorch's Rprop (its source).

    Per coordinate: a step size d (d_0 = lr) and the previous gradient q (q_0 = 0). If q g > 0,
    d <- d * etaplus; if q g < 0, d <- d * etaminus and g <- 0 (the coordinate stays put); then d
    is clipped to step_sizes (at every step: PyTorch's documented pseudo-code omits the clip when
    q g = 0, its code does not), p <- p - sign(g) d and q <- g. lr is read once, at the first step.
    PyTorch has no weight_decay here; descend's L2 (added to the gradient first) is included.
    """

    def __init__(self, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), weight_decay=0.0, maximize=False):
        super().__init__(lr)
        self.etaminus, self.etaplus = etas
        self.step_min, self.step_max = step_sizes
        self.weight_decay = weight_decay
        self.maximize = maximize

    def new_state(self):
        return {"d": None, "q": 0.0}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if s["d"] is None:
            s["d"] = lr
        if s["q"] * g > 0:
            s["d"] = s["d"] * self.etaplus
        elif s["q"] * g < 0:
            s["d"] = s["d"] * self.etaminus
            g = 0.0
        s["d"] = min(max(s["d"], self.step_min), self.step_max)
        s["q"] = g
        if g > 0:
            return p - s["d"]
        if g < 0:
            return p + s["d"]
        return p


class Adamax(Reference):
    """Adamax (Kingma & Ba 2015, section 7.1) as PyTorch's Adamax.

    m_t = beta1 m_{t-1} + (1 - beta1) g_t; u_t = max(beta2 u_{t-1}, |g_t| + eps);
    p_t = p_{t-1} - lr / (1 - beta1^t) * m_t / u_t.
    """

    def __init__(self, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
        super().__init__(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.maximize = maximize

    def new_state(self):
        return {"m": 0.0, "u": 0.0}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        s["m"] = self.beta1 * s["m"] + (1 - self.beta1) * g
        s["u"] = max(self.beta2 * s["u"], abs(g) + self.eps)
        return p - lr / (1 - self.beta1**t) * s["m"] / s["u"]


class AdaDelta(Reference):
    """AdaDelta (Zeiler 2012) with PyTorch's extra learning rate.

    v_t = rho v_{t-1} + (1 - rho) g_t^2; dx_t = sqrt(u_{t-1} + eps) / sqrt(v_t + eps) * g_t;
    u_t = rho u_{t-1} + (1 - rho) dx_t^2; p_t = p_{t-1} - lr dx_t.
    """

    def __init__(self, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
        super().__init__(lr)
        self.rho = rho
        self.eps = eps
        self.weight_decay = weight_decay
        self.maximize = maximize

    def new_state(self):
        return {"v": 0.0, "u": 0.0}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        s["v"] = self.rho * s["v"] + (1 - self.rho) * g * g
        dx = math.sqrt(s["u"] + self.eps) / math.sqrt(s["v"] + self.eps) * g
        s["u"] = self.rho * s["u"] + (1 - self.rho) * dx * dx
        return p - lr * dx


class Lion(Reference):
    """Lion (Chen et al. 2023) as lion-pytorch's ``update_fn``.

    p <- p (1 - lr wd) (decoupled, every step); c_t = beta1 m_{t-1} + (1 - beta1) g_t;
    p_t = p - lr sign(c_t) with sign(0) = 0 (torch.sign); m_t = beta2 m_{t-1} + (1 - beta2) g_t.
    """

    def __init__(self, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False):
        super().__init__(lr)
        self.beta1, self.beta2 = betas
        self.weight_decay = weight_decay
        self.maximize = maximize

    def new_state(self):
        return {"m": 0.0}

    def update(self, p, g, s, lr, t):
        if self.maximize:
            g = -g
        p = p * (1 - lr * self.weight_decay)
        c = self.beta1 * s["m"] + (1 - self.beta1) * g
        s["m"] = self.beta2 * s["m"] + (1 - self.beta2) * g
        return p - lr * ((c > 0) - (c < 0))


class Prodigy(Reference):
    """Prodigy (Mishchenko & Defazio 2024) as prodigyopt 1.1.2's ``Prodigy.step``, on every
    coordinate at once: d is estimated from sums over all coordinates, so ``step`` is written
    whole rather than one coordinate at a time.

    Step k (from 0): dlr = d lr rho (rho = sqrt(1 - beta2^(k+1)) / (1 - beta1^(k+1)) with
    use_bias_correction, else 1); r = beta3 r + (d / d0) dlr sum_i g_i (p0_i - p_i);
    m = beta1 m + (1 - beta1) d g; v = beta2 v + (1 - beta2) d^2 g^2; s = beta3 s + (d / d0) dlr g
    (safeguard_warmup: (d / d0) d g). If sum_i |s_i| = 0 the step ends there (d, r, k, p kept).
    d_hat = d_coef r / sum_i |s_i|; d = max(d, d_hat) while d is still d0; d_max = max(d_max,
    d_hat); d = min(d_max, growth_rate d); then with the new d: p = p - wd dlr p (decoupled
    weight decay; otherwise wd p is added to g first), p = p - dlr m / (sqrt(v) + d eps), or
    p - dlr d g / (sqrt(v) + d eps) when beta1 = 0 (no m); k += 1. An lr of 0 changes nothing.
    p0 is the first params seen; beta3 defaults to sqrt(beta2).
    """

    def __init__(
        self,
        lr=1.0,
        betas=(0.9, 0.999),
        beta3=None,
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=True,
        use_bias_correction=False,
        safeguard_warmup=False,
        d0=1e-6,
        d_coef=1.0,
        growth_rate=math.inf,
        maximize=False,
    ):
        super().__init__(lr)
        self.beta1, self.beta2 = betas
        self.beta3 = math.sqrt(self.beta2) if beta3 is None else beta3
        self.eps = eps
        self.weight_decay = weight_decay
        self.decoupled = decoupled_weight_decay
        self.use_bias_correction = use_bias_correction
        self.safeguard_warmup = safeguard_warmup
        self.d0 = d0
        self.d_coef = d_coef
        self.growth_rate = growth_rate
        self.maximize = maximize
        self.d, self.d_max, self.r, self.k = d0, d0, 0.0, 0

    def step(self, params, grads):
        p = [float(x) for x in params]
        if not self.states:
            self.states = [{"p0": x, "s": 0.0, "m": 0.0, "v": 0.0} for x in p]
        lr = float(self.lr(self.t)) if callable(self.lr) else float(self.lr)
        self.t += 1
        if lr == 0:
            return p
        g = [-float(x) if self.maximize else float(x) for x in grads]
        if self.weight_decay != 0 and not self.decoupled:
            g = [gi + self.weight_decay * pi for gi, pi in zip(g, p, strict=True)]
        d, d0, beta1, beta2, beta3 = self.d, self.d0, self.beta1, self.beta2, self.beta3
        rho = 1.0
        if self.use_bias_correction:
            rho = math.sqrt(1 - beta2 ** (self.k + 1)) / (1 - beta1 ** (self.k + 1))
        dlr = d * lr * rho
        r = beta3 * self.r + (d / d0) * dlr * sum(
            gi * (st["p0"] - pi) for gi, pi, st in zip(g, p, self.states, strict=True)
        )
        for gi, st in zip(g, self.states, strict=True):
            st["m"] = beta1 * st["m"] + (1 - beta1) * d * gi
            st["v"] = beta2 * st["v"] + (1 - beta2) * d * d * gi * gi
            weight = (d / d0) * d if self.safeguard_warmup else (d / d0) * dlr
            st["s"] = beta3 * st["s"] + weight * gi
        s_norm = sum(abs(st["s"]) for st in self.states)
        if s_norm == 0:
            return p
        d_hat = self.d_coef * r / s_norm
        if d == d0:
            d = max(d, d_hat)
        self.d_max = max(self.d_max, d_hat)
        self.d = d = min(self.d_max, d * self.growth_rate)
        self.r = r
        self.k += 1
        out = []
        for pi, gi, st in zip(p, g, self.states, strict=True):
            if self.weight_decay != 0 and self.decoupled:
                pi = pi - self.weight_decay * dlr * pi
            step = st["m"] if beta1 > 0 else d * gi
            out.append(pi - dlr * step / (math.sqrt(st["v"]) + d * self.eps))
        return out


class Adafactor(Reference):
    """Adafactor (Shazeer & Stern 2018) as PyTorch's Adafactor documents it, on whole arrays.

    w_t = t^beta2_decay; rho_t = min(lr, 1 / sqrt(t)); alpha_t = max(eps2, RMS(p_{t-1})) rho_t; then
    p <- p (1 - lr wd). An array of 2 or more dimensions keeps row and column means of g^2 over
    its last two: R_t = (1 - w_t) R + w_t mean_j g^2, C_t = (1 - w_t) C + w_t mean_i g^2,
    V_t = R_t C_t^T / max(mean_i R_t, eps1); a vector V_t = (1 - w_t) V + w_t g^2. Then
    u_t = g_t / max(sqrt(V_t), eps1) and p_t = p - alpha_t / max(1, RMS(u_t) / d) * u_t.
    eps1 = None is the machine epsilon of float64.
    """

    def __init__(self, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=False):
        super().__init__(lr)
        self.beta2_decay = beta2_decay
        self.eps1 = 2.0**-52 if eps[0] is None else eps[0]
        self.eps2 = eps[1]
        self.d = d
        self.weight_decay = weight_decay
        self.maximize = maximize
        self.R = self.C = self.V = None

    def step(self, params, grads):
        p, g = np.array(params, dtype=np.float64), np.array(grads, dtype=np.float64)
        if self.maximize:
            g = -g
        lr = float(self.lr(self.t)) if callable(self.lr) else float(self.lr)
        self.t += 1
        w = self.t**self.beta2_decay
        alpha = max(self.eps2, math.sqrt(np.mean(p * p))) * min(lr, 1 / math.sqrt(self.t))
        p = p * (1 - lr * self.weight_decay)
        if p.ndim >= 2:
            if self.R is None:
                self.R, self.C = np.zeros(p.shape[:-1]), np.zeros(p.shape[:-2] + p.shape[-1:])
            self.R = (1 - w) * self.R + w * np.mean(g * g, axis=-1)
            self.C = (1 - w) * self.C + w * np.mean(g * g, axis=-2)
            row_mean = np.maximum(np.mean(self.R, axis=-1), self.eps1)
            V = self.R[..., :, None] * self.C[..., None, :] / row_mean[..., None, None]
        else:
            self.V = (1 - w) * (0.0 if self.V is None else self.V) + w * g * g
            V = self.V
        u = g / np.maximum(np.sqrt(V), self.eps1)
        return (p - alpha / max(1.0, math.sqrt(np.mean(u * u)) / self.d) * u).tolist()


class Muon(Reference):
    """Muon (Jordan et al. 2024) as torch.optim.Muon's code, on whole matrices, in float64.

    b_t = mu b_{t-1} + (1 - mu) g_t; u_t = mu b_t + (1 - mu) g_t with nesterov, else b_t;
    X_0 = u_t / max(||u_t||_F, eps) on the wide side (transposed if it has more rows than
    columns), then ns_steps times A = X X^T, X <- a X + (b A + c A^2) X (the blog's quintic);
    p_t = p_{t-1} (1 - lr wd) - lr s X, s = sqrt(max(1, rows / cols)) or, with
    adjust_lr_fn="match_rms_adamw" (Liu et al. 2025), 0.2 sqrt(max(rows, cols)).
    A vector alone is a 1 x n matrix (descend's reading of a point); companion is not modelled.
    """

    def __init__(
        self,
        lr=1e-3,
        momentum=0.95,
        weight_decay=0.1,
        nesterov=True,
        ns_coefficients=(3.4445, -4.7750, 2.0315),
        ns_steps=5,
        eps=1e-7,
        adjust_lr_fn=None,
        maximize=False,
    ):
        super().__init__(lr)
        self.mu, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.abc, self.ns_steps, self.eps = ns_coefficients, ns_steps, eps
        self.adjust_lr_fn, self.maximize = adjust_lr_fn, maximize
        self.b = None

    def step(self, params, grads):
        p, g = np.array(params, dtype=np.float64), np.array(grads, dtype=np.float64)
        shape = p.shape
        p, g = np.atleast_2d(p), np.atleast_2d(g)
        if self.maximize:
            g = -g
        lr = float(self.lr(self.t)) if callable(self.lr) else float(self.lr)
        self.t += 1
        self.b = (1 - self.mu) * g if self.b is None else self.mu * self.b + (1 - self.mu) * g
        u = self.mu * self.b + (1 - self.mu) * g if self.nesterov else self.b
        rows, cols = u.shape
        X = u.T if rows > cols else u
        X = X / max(np.linalg.norm(X), self.eps)
        a, b, c = self.abc
        for _ in range(self.ns_steps):
            A = X @ X.T
            X = a * X + (b * A + c * A @ A) @ X
        X = X.T if rows > cols else X
        if self.adjust_lr_fn == "match_rms_adamw":
            scale = 0.2 * math.sqrt(max(rows, cols))
        else:
            scale = math.sqrt(max(1.0, rows / cols))
        p = p * (1 - lr * self.weight_decay) - lr * scale * X
        return p.reshape(shape).tolist()


#: the reference of every update rule, by the name descend registers it under: called with the
#: keyword arguments that rule takes, it builds the reference (a name that stands for a setting
#: of another rule, such as Momentum's momentum=0.9, fixes that setting here). Test code checks
#: these names equal to ``descend.optim.names()`` (tests/optim_registry.py).
class ScheduleFreeSGD(Reference):
    """Schedule-Free SGD (Defazio et al. 2024, "The Road Less Scheduled", Algorithm 1), with the
    three sequences kept as the authors' ``SGDScheduleFreeReference`` keeps them.

    At step k (from 0): gamma_k = lr * min(1, (k + 1) / warmup_steps); lr_max = max(lr_max,
    gamma_k) (starting at -1); w = (k + 1)^r * lr_max^weight_lr_power; W += w; c = w / W (0
    while W = 0). With the gradient g at y (plus weight_decay * y): z <- z - gamma_k g;
    x <- (1 - c) x + c z; y <- momentum x + (1 - momentum) z. x, y, z start at the parameters
    of the first step; ``step`` returns y (the parameters), :meth:`eval_point` x.
    """

    def __init__(
        self,
        lr=1.0,
        momentum=0.9,
        weight_decay=0.0,
        warmup_steps=0,
        r=0.0,
        weight_lr_power=2.0,
        maximize=False,
    ):
        super().__init__(lr)
        self.beta = momentum
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.r = r
        self.weight_lr_power = weight_lr_power
        self.maximize = maximize
        self.lr_max = -1.0
        self.weight_sum = 0.0

    def step(self, params, grads):
        if not self.states:
            self.states = [{"x": float(p), "z": float(p), "v": 0.0} for p in params]
        k = self.t
        lr = float(self.lr(k)) if callable(self.lr) else float(self.lr)
        if k < self.warmup_steps:
            lr = lr * ((k + 1) / self.warmup_steps)
        self.lr_max = max(lr, self.lr_max)
        weight = ((k + 1) ** self.r) * (self.lr_max**self.weight_lr_power)
        self.weight_sum = self.weight_sum + weight
        c = weight / self.weight_sum if self.weight_sum != 0 else 0.0
        self.t += 1
        out = []
        for y, g, s in zip(params, grads, self.states, strict=True):
            y, g = float(y), float(g)
            if self.maximize:
                g = -g
            self.move_z(y, g, s, lr)
            s["x"] = (1 - c) * s["x"] + c * s["z"]
            out.append(self.beta * s["x"] + (1 - self.beta) * s["z"])
        return out

    def move_z(self, y, g, s, lr):
        if self.weight_decay != 0:
            g = g + self.weight_decay * y
        s["z"] = s["z"] - lr * g

    def eval_point(self):
        """x, the average: the parameters to evaluate (the package's ``optimizer.eval()``)."""
        return [s["x"] for s in self.states]


class ScheduleFreeAdamW(ScheduleFreeSGD):
    """Schedule-Free AdamW (Defazio et al. 2024, Algorithm 2) as the authors'
    ``AdamWScheduleFreeReference`` (decay_at_z=False): the sequences and weights of
    :class:`ScheduleFreeSGD` with beta1 in place of momentum, and the z step
    z <- z - gamma_k weight_decay y; v <- beta2 v + (1 - beta2) g^2;
    z <- z - gamma_k g / (sqrt(v / (1 - beta2^(k+1))) + eps).
    """

    def __init__(
        self,
        lr=0.0025,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        warmup_steps=0,
        r=0.0,
        weight_lr_power=2.0,
        maximize=False,
    ):
        super().__init__(lr, betas[0], weight_decay, warmup_steps, r, weight_lr_power, maximize)
        self.beta2 = betas[1]
        self.eps = eps

    def move_z(self, y, g, s, lr):
        if self.weight_decay != 0:
            s["z"] = s["z"] - lr * self.weight_decay * y
        s["v"] = self.beta2 * s["v"] + (1 - self.beta2) * g * g
        denom = math.sqrt(s["v"] / (1 - self.beta2**self.t)) + self.eps
        s["z"] = s["z"] - lr * g / denom


class LBFGS:
    """L-BFGS (Liu & Nocedal 1989) as ``torch.optim.LBFGS``, on one vector of Python floats.

    Unlike the rules above it needs the objective, so its interface is torch's: ``step(closure,
    x)`` is one ``LBFGS.step(closure)`` from the point ``x`` (a list), ``closure(x) -> (loss,
    gradient list)``; it returns the point reached and appends every iterate to ``iterates``;
    ``n_iter`` and ``func_evals`` count as torch's state does.

    Each iteration keeps the pair ``s = t d``, ``y = g_new - g_old`` when ``y's > 1e-10`` (the
    ``history_size`` newest), and takes the direction ``d = -H g`` from the two-loop recursion
    (Nocedal & Wright, Numerical Optimization, 2nd ed., Algorithm 7.4) with ``H0 = s'y / y'y``
    of the newest pair; the first direction is ``-g`` with the step ``min(1, 1/|g|_1) lr``.
    The step is ``lr``, or the strong Wolfe line search (N&W Algorithms 3.5 and 3.6 in
    minFunc's form: bracketing with cubic extrapolation, then zoom with cubic interpolation and
    a safeguard 0.1 of the bracket away from its ends). Sums run left to right; ``y + a x``
    is rounded once (torch's ``add_(x, alpha=a)`` is a fused multiply-add), here exactly with
    fractions.
    """

    def __init__(
        self,
        lr=1.0,
        max_iter=20,
        max_eval=None,
        tolerance_grad=1e-7,
        tolerance_change=1e-9,
        history_size=100,
        line_search_fn=None,
    ):
        self.lr, self.max_iter = lr, max_iter
        self.max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
        self.tolerance_grad, self.tolerance_change = tolerance_grad, tolerance_change
        self.history_size, self.line_search_fn = history_size, line_search_fn
        self.n_iter = self.func_evals = 0
        self.iterates: list[list[float]] = []
        self.S: list[list[float]] = []  # s_i, oldest first
        self.Y: list[list[float]] = []  # y_i
        self.rho: list[float] = []  # 1 / y_i's_i
        self.d: list[float] = []
        self.t = 0.0
        self.gamma = 1.0  # H0 = gamma I
        self.g_old: list[float] = []

    @staticmethod
    def dot(a, b):
        total = 0.0
        for ai, bi in zip(a, b, strict=True):
            total += ai * bi
        return total

    @staticmethod
    def axpy(y, a, x):
        """``y + a x``, each coordinate rounded once."""
        from fractions import Fraction

        return [float(Fraction(yi) + Fraction(a) * Fraction(xi)) for yi, xi in zip(y, x, strict=True)]

    def direction(self, g):
        """-H g by the two-loop recursion (newest pair first, then oldest first)."""
        q = [-v for v in g]
        alpha = [0.0] * len(self.S)
        for i in reversed(range(len(self.S))):
            alpha[i] = self.dot(self.S[i], q) * self.rho[i]
            q = self.axpy(q, -alpha[i], self.Y[i])
        r = [v * self.gamma for v in q]
        for i in range(len(self.S)):
            beta = self.dot(self.Y[i], r) * self.rho[i]
            r = self.axpy(r, alpha[i] - beta, self.S[i])
        return r

    def step(self, closure, x):
        x = list(x)
        loss, g = closure(x)
        evals = 1
        self.func_evals += 1
        if max(abs(v) for v in g) <= self.tolerance_grad:
            return x
        for n in range(1, self.max_iter + 1):
            self.n_iter += 1
            if self.n_iter == 1:
                self.S, self.Y, self.rho, self.gamma = [], [], [], 1.0
                self.d = [-v for v in g]
            else:
                y = [a - b for a, b in zip(g, self.g_old, strict=True)]
                s = [v * self.t for v in self.d]
                ys = self.dot(y, s)
                if ys > 1e-10:  # curvature condition: keep the pair
                    if len(self.S) == self.history_size:
                        del self.S[0], self.Y[0], self.rho[0]
                    self.S.append(s)
                    self.Y.append(y)
                    self.rho.append(1.0 / ys)
                    self.gamma = ys / self.dot(y, y)
                self.d = self.direction(g)
            self.g_old, loss_old = list(g), loss
            self.t = min(1.0, 1.0 / sum(abs(v) for v in g)) * self.lr if self.n_iter == 1 else self.lr
            slope = self.dot(g, self.d)
            if slope > -self.tolerance_change:
                break
            if self.line_search_fn == "strong_wolfe":
                loss, g, self.t, used = self.wolfe(closure, x, loss, g, slope, self.max_eval - evals)
                x = self.axpy(x, self.t, self.d)
                done = max(abs(v) for v in g) <= self.tolerance_grad
            else:
                x = self.axpy(x, self.t, self.d)
                used, done = 0, False
                if n != self.max_iter:
                    loss, g = closure(x)
                    used, done = 1, max(abs(v) for v in g) <= self.tolerance_grad
            self.iterates.append(list(x))
            evals += used
            self.func_evals += used
            if n == self.max_iter or evals >= self.max_eval or done:
                break
            if max(abs(v * self.t) for v in self.d) <= self.tolerance_change:
                break
            if abs(loss - loss_old) < self.tolerance_change:
                break
        return x

    @staticmethod
    def cubic_min(a, fa, ga, b, fb, gb, lo=None, hi=None):
        """Minimiser of the cubic through (a, fa, ga), (b, fb, gb) (N&W eq. 3.59), in [lo, hi]."""
        if lo is None:
            lo, hi = min(a, b), max(a, b)
        d1 = ga + gb - 3 * (fa - fb) / (a - b)
        disc = d1 * d1 - ga * gb
        if disc < 0:
            return (lo + hi) / 2.0
        d2 = math.sqrt(disc)
        if a <= b:
            m = b - (b - a) * ((gb + d2 - d1) / (gb - ga + 2 * d2))
        else:
            m = a - (a - b) * ((ga + d2 - d1) / (ga - gb + 2 * d2))
        return min(max(m, lo), hi)

    def wolfe(self, closure, x, f0, g0, slope0, max_ls, c1=1e-4, c2=0.9, tol=1e-9):
        """A step t along d satisfying f(x+td) <= f0 + c1 t slope0 and |g(x+td)'d| <= -c2 slope0;
        returns (loss, gradient, t, evaluations). Its tolerance is torch's default, 1e-9."""
        d = self.d

        def at(t):
            f, g = closure(self.axpy(x, t, d))
            return f, g, self.dot(g, d)

        dmax = max(abs(v) for v in d)
        t = self.t
        f, g, s = at(t)
        evals, it = 1, 0
        prev = (0, f0, g0, slope0)
        pts = None  # bracket: [(t, f, g, slope), (t, f, g, slope)]
        while it < max_ls:  # Algorithm 3.5: extrapolate until a bracket or an acceptable step
            if f > f0 + c1 * t * slope0 or (it > 1 and f >= prev[1]):
                pts = [prev, (t, f, g, s)]
                break
            if abs(s) <= -c2 * slope0:
                return f, g, t, evals
            if s >= 0:
                pts = [prev, (t, f, g, s)]
                break
            t_next = self.cubic_min(prev[0], prev[1], prev[3], t, f, s, t + 0.01 * (t - prev[0]), t * 10)
            prev = (t, f, g, s)
            t = t_next
            f, g, s = at(t)
            evals += 1
            it += 1
        if it == max_ls:
            pts = [(0, f0, g0, None), (t, f, g, None)]
        lo = 0 if pts[0][1] <= pts[1][1] else 1
        stuck = False
        while it < max_ls:  # Algorithm 3.6: zoom
            (ta, fa, _, sa), (tb, fb, _, sb) = pts
            if abs(tb - ta) * dmax < tol:
                break
            t = self.cubic_min(ta, fa, sa, tb, fb, sb)
            top, bottom = max(ta, tb), min(ta, tb)
            margin = 0.1 * (top - bottom)
            if min(top - t, t - bottom) < margin:  # too near an end
                if stuck or t >= top or t <= bottom:
                    t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
                    stuck = False
                else:
                    stuck = True
            else:
                stuck = False
            f, g, s = at(t)
            evals += 1
            it += 1
            hi = 1 - lo
            if f > f0 + c1 * t * slope0 or f >= pts[lo][1]:
                pts[hi] = (t, f, g, s)
                lo = 0 if pts[0][1] <= pts[1][1] else 1
            else:
                if abs(s) <= -c2 * slope0:
                    return f, g, t, evals
                if s * (pts[hi][0] - pts[lo][0]) >= 0:
                    pts[hi] = pts[lo]
                pts[lo] = (t, f, g, s)
        return pts[lo][1], pts[lo][2], pts[lo][0], evals


REFERENCES: dict[str, Callable[..., Reference]] = {
    "sgd": SGD,
    "momentum": partial(SGD, momentum=0.9),
    "nesterov": partial(SGD, momentum=0.9, nesterov=True),
    "asgd": ASGD,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "rprop": Rprop,
    "adam": Adam,
    "amsgrad": partial(Adam, amsgrad=True),
    "adamw": AdamW,
    "nadam": Nadam,
    "radam": RAdam,
    "adamax": Adamax,
    "adadelta": AdaDelta,
    "adafactor": Adafactor,
    "muon": Muon,
    "schedulefree_sgd": ScheduleFreeSGD,
    "schedulefree_adamw": ScheduleFreeAdamW,
    "lion": Lion,
    "prodigy": Prodigy,
    "lbfgs": LBFGS,
}
