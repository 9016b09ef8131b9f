"""Gradient-descent optimisers with the exact update rules of ``torch.optim``.

The lecture's step ω_{k+1} ← ω_k − η ∇Q(ω_k) is plain :class:`SGD`; momentum and Adam keep
running averages of the gradient. The formulas below are written exactly as torch applies
them (same order, same ε placement), so that the NumPy core and the torch adapter agree to
~1e-6 after many float64 steps. ``g`` is ∂Q/∂θ of the current batch, ``t`` the step count.

All optimisers update the parameter arrays in place, skip parameters without a gradient,
and can save/restore their state (``state_dict`` / ``load_state_dict``) for resuming.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from ..errors import ConfigError
from .autograd import array_module, to_numpy

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "make_optimizer", "OPTIMIZERS"]


def _check(name, value, ok, hint, owner):
    if not ok:
        raise ConfigError(f"{owner}: invalid {name}={value!r}", hint)


class Optimizer(ABC):
    """Holds the parameters (Tensors) and per-parameter state arrays; subclasses write the update rule."""

    def __init__(self, params):
        self.params = list(params)
        if not self.params:
            raise ConfigError(f"{type(self).__name__} received no parameters", "pass model.parameters()")
        self.state: list[dict] = [{} for _ in self.params]
        self.t = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.t += 1
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p.data, p.grad, state)

    @abstractmethod
    def _update(self, theta, g, state):
        """Update ``theta`` in place from its gradient ``g`` and its ``state`` dict."""

    def state_dict(self) -> dict:
        """Step count and state arrays as NumPy (copies), keyed by parameter position."""
        return {"t": self.t, "state": [{k: to_numpy(v).copy() for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state: dict):
        if len(state["state"]) != len(self.params):
            raise ConfigError(
                f"optimizer state has {len(state['state'])} parameters, the model {len(self.params)}",
                "load the state saved with this model",
            )
        self.t = int(state["t"])
        self.state = [
            {k: p.xp.asarray(v, dtype=p.dtype).copy() for k, v in s.items()} for p, s in zip(self.params, state["state"])
        ]


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

    torch.optim.SGD (μ = momentum, τ = dampening, λ = weight_decay, η = lr)::

        g ← g + λ θ                               (if λ ≠ 0)
        b ← g                                     (first step)
        b ← μ b + (1 − τ) g                       (later steps)
        g ← g + μ b   (Nesterov)  or  g ← b        (if μ ≠ 0)
        θ ← θ − η g
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(params)
        _check("lr", lr, lr > 0, "use a positive learning rate, e.g. lr=0.01", "SGD")
        _check("momentum", momentum, 0 <= momentum < 1, "use 0 <= momentum < 1, e.g. 0.9", "SGD")
        _check("weight_decay", weight_decay, weight_decay >= 0, "use weight_decay >= 0", "SGD")
        nesterov_ok = not nesterov or (momentum > 0 and dampening == 0)
        _check("nesterov", nesterov, nesterov_ok, "Nesterov needs momentum > 0 and dampening=0", "SGD")
        self.lr, self.momentum, self.dampening, self.nesterov, self.weight_decay = lr, momentum, dampening, nesterov, weight_decay

    def _update(self, theta, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * theta
        if self.momentum:
            if "momentum_buffer" not in state:
                b = state["momentum_buffer"] = g.copy()
            else:
                b = state["momentum_buffer"]
                b *= self.momentum
                b += (1 - self.dampening) * g
            g = g + self.momentum * b if self.nesterov else b
        theta -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as torch.optim.Adam (λ = weight_decay, L2)::

        g ← g + λ θ                                (if λ ≠ 0: L2 added to the gradient)
        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    ``eps_convention="keras"`` instead uses Keras' placement
    θ ← θ − η √(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε), i.e. ε is not divided by √(1 − β₂ᵗ).
    Mind the defaults: torch ε = 1e-8, Keras ε = 1e-7; pass the same ε everywhere.
    ``amsgrad=True`` replaces v in the denominator by its running maximum.
    """

    decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        *,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        eps_convention: str = "torch",
    ):
        super().__init__(params)
        name = type(self).__name__
        _check("lr", lr, lr > 0, "use a positive learning rate, e.g. lr=1e-3", name)
        _check("betas", betas, len(betas) == 2 and all(0 <= b < 1 for b in betas), "use betas=(beta1, beta2) in [0, 1)", name)
        _check("eps", eps, eps >= 0, "use eps >= 0, e.g. 1e-8 (torch) or 1e-7 (Keras)", name)
        _check("weight_decay", weight_decay, weight_decay >= 0, "use weight_decay >= 0", name)
        _check("eps_convention", eps_convention, eps_convention in ("torch", "keras"), "use 'torch' or 'keras'", name)
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.amsgrad, self.eps_convention = amsgrad, eps_convention

    def _update(self, theta, g, state):
        beta1, beta2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                theta *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * theta
        if "exp_avg" not in state:
            state["exp_avg"] = g * 0
            state["exp_avg_sq"] = g * 0
            if self.amsgrad:
                state["max_exp_avg_sq"] = g * 0
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (g - m)  # = β₁ m + (1 − β₁) g, as torch's lerp
        v *= beta2
        v += (1 - beta2) * g * g
        if self.amsgrad:
            array_module(theta).maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        bias_correction1 = 1 - beta1**self.t
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.t)
        if self.eps_convention == "torch":
            theta -= (self.lr / bias_correction1) * m / (v**0.5 / bias_correction2_sqrt + self.eps)
        else:
            theta -= (self.lr * bias_correction2_sqrt / bias_correction1) * m / (v**0.5 + self.eps)


class AdamW(Adam):
    """Adam with *decoupled* weight decay (Loshchilov & Hutter), as torch.optim.AdamW::

        θ ← θ (1 − η λ)          then the Adam step above without the L2 term.

    Default λ = 0.01 as in torch (Keras' AdamW default is 0.004: pass it explicitly).
    """

    decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        *,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        eps_convention: str = "torch",
    ):
        super().__init__(
            params, lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, eps_convention=eps_convention
        )


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, params, **kwargs) -> Optimizer:
    """An optimiser by name (``sgd``, ``adam``, ``adamw``) with keyword hyperparameters."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer={name!r}", f"use one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, **kwargs)
