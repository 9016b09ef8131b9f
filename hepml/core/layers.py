"""Layers built on :mod:`hepml.core.autograd`: Dense, activations, Dropout, Sequential.

A layer is a :class:`Module`: it owns parameter Tensors, exposes them with ``parameters()``
(for the optimiser) and ``named_parameters()`` (for ``get_weights``), and maps an input
Tensor to an output Tensor in ``forward``. The lecture's network ŷ = wᵀ g(W x) is
``Sequential(Dense(d, d'), Activation(g), Dense(d', 1))``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .autograd import Tensor, to_numpy

__all__ = ["Module", "Dense", "Activation", "ReLU", "Tanh", "Sigmoid", "Dropout", "Sequential", "ACTIVATIONS"]


class Module:
    """Base class: parameters, zero_grad, train/eval mode, ``module(x)`` calls ``forward``."""

    training = True

    def named_parameters(self, prefix: str = ""):
        """(name, Tensor) pairs, children's names joined with ``/``."""
        for name, child in self._children():
            yield from child.named_parameters(f"{prefix}{name}/")

    def _children(self):
        return []

    def parameters(self) -> list[Tensor]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        """Forget the accumulated gradients (as ``torch``'s ``zero_grad(set_to_none=True)``)."""
        for p in self.parameters():
            p.grad = None

    def get_weights(self) -> dict[str, np.ndarray]:
        """Parameters as ``{name: NumPy array}`` (copies), names from ``named_parameters``."""
        return {name: to_numpy(p.data).copy() for name, p in self.named_parameters()}

    def set_weights(self, weights: dict) -> None:
        """Load ``{name: array}``: exactly the names of ``get_weights()``, same shapes."""
        params = dict(self.named_parameters())
        missing, unexpected = sorted(set(params) - set(weights)), sorted(set(weights) - set(params))
        if missing or unexpected:
            raise ConfigError(
                f"{type(self).__name__}.set_weights: missing {missing}, unexpected {unexpected}",
                f"pass exactly the names {sorted(params)}",
            )
        for name, p in params.items():
            value = np.asarray(to_numpy(weights[name]))
            if value.shape != p.shape:
                raise ConfigError(
                    f"{type(self).__name__}.set_weights: {name} has shape {value.shape}, the model needs {p.shape}",
                    "pass weights drawn for this architecture",
                )
            p.data = p.xp.array(value, dtype=p.dtype)

    def train(self, mode: bool = True):
        """Training mode (Dropout active) or, with ``mode=False``, evaluation mode."""
        self.training = mode
        for _, child in self._children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


class Dense(Module):
    """Fully connected layer ``y = x · kernel + bias`` (no activation: add one after it).

    Parameters
    ----------
    kernel : ndarray of shape (in_features, out_features)
        Keras orientation; torch's ``Linear.weight`` is its transpose.
    bias : ndarray of shape (out_features,)

    Inputs with more than two axes (e.g. objects of a set, (N, k, in)) are flattened to
    (N·k, in) for one matrix product and reshaped back.
    """

    def __init__(self, kernel, bias, *, xp=np):
        self.kernel = Tensor(xp.array(kernel))
        self.bias = Tensor(xp.array(bias, dtype=self.kernel.dtype))
        if self.kernel.ndim != 2 or self.bias.shape != (self.kernel.shape[1],):
            raise ConfigError(
                f"Dense needs kernel (in, out) and bias (out,); received {self.kernel.shape} and {self.bias.shape}",
                "check the weight shapes",
            )

    @property
    def in_features(self) -> int:
        return self.kernel.shape[0]

    @property
    def out_features(self) -> int:
        return self.kernel.shape[1]

    def named_parameters(self, prefix: str = ""):
        yield f"{prefix}kernel", self.kernel
        yield f"{prefix}bias", self.bias

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim > 2:
            lead = x.shape[:-1]
            return (x.reshape(-1, x.shape[-1]) @ self.kernel + self.bias).reshape(*lead, self.out_features)
        return x @ self.kernel + self.bias

    def __repr__(self) -> str:
        return f"Dense(in_features={self.in_features}, out_features={self.out_features}, dtype={self.kernel.dtype})"


class Activation(Module):
    """Elementwise nonlinearity g(·) by name: ``relu``, ``tanh``, ``sigmoid`` or ``linear``."""

    def __init__(self, name: str):
        if name not in ACTIVATIONS:
            raise ConfigError(f"unknown activation={name!r}", f"use one of {sorted(ACTIVATIONS)}")
        self.name = name

    def forward(self, x: Tensor) -> Tensor:
        return x if self.name == "linear" else getattr(x, self.name)()

    def __repr__(self) -> str:
        return {"relu": "ReLU()", "tanh": "Tanh()", "sigmoid": "Sigmoid()", "linear": "Identity()"}[self.name]


ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")


def ReLU():  # noqa: N802  (torch-like constructor name)
    return Activation("relu")


def Tanh():  # noqa: N802
    return Activation("tanh")


def Sigmoid():  # noqa: N802
    return Activation("sigmoid")


class Dropout(Module):
    """Inverted dropout: in training, zero each value with probability ``rate`` and scale the
    survivors by 1/(1 − rate) so the expected activation is unchanged; identity in eval mode.

    The mask comes from ``rng`` (a ``numpy.random.Generator``), so runs are reproducible.
    """

    def __init__(self, rate: float, *, rng: np.random.Generator, xp=np):
        if not 0.0 <= rate < 1.0:
            raise ConfigError(f"dropout rate must be in [0, 1); received rate={rate!r}", "use e.g. rate=0.1")
        self.rate, self.rng, self.xp = float(rate), rng, xp

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = self.rng.random(x.shape) >= self.rate
        mask = self.xp.asarray(keep, dtype=x.dtype) * (1.0 / (1.0 - self.rate))
        return x * Tensor(mask, requires_grad=False)

    def __repr__(self) -> str:
        return f"Dropout(p={self.rate})"


class Sequential(Module):
    """Layers applied one after another; children are named by their position."""

    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def _children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __repr__(self) -> str:
        body = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{body}\n)"

