"""Initial weights drawn in NumPy from a seed (Glorot / He), shared by every framework.

Drawing the initial weights once, here, and loading the same arrays into the NumPy core,
PyTorch and Keras is what makes their training curves comparable step by step. The draw is
deterministic: layers in order, kernel before bias, one ``numpy.random.Generator`` per model.

Schemes (fan_in, fan_out = kernel shape (in, out)):

- ``glorot_uniform``  U(−a, a), a = √(6 / (fan_in + fan_out))     (Keras default, Xavier)
- ``glorot_normal``   N(0, σ²), σ = √(2 / (fan_in + fan_out))
- ``he_uniform``      U(−a, a), a = √(6 / fan_in)                  (for ReLU)
- ``he_normal``       N(0, σ²), σ = √(2 / fan_in)                  (torch ``kaiming_normal_``)

The normal schemes are *not* truncated (Keras truncates; torch does not): we choose one
definition and every framework receives the same numbers anyway. Biases start at zero.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = [
    "SCHEMES",
    "draw_kernel",
    "default_scheme",
    "init_dense_stack",
    "init_mlp_weights",
    "init_deepsets_weights",
]


def _glorot_uniform(rng, fan_in, fan_out):
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=(fan_in, fan_out))


def _glorot_normal(rng, fan_in, fan_out):
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


def _he_uniform(rng, fan_in, fan_out):
    a = np.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, size=(fan_in, fan_out))


def _he_normal(rng, fan_in, fan_out):
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


SCHEMES = {
    "glorot_uniform": _glorot_uniform,
    "glorot_normal": _glorot_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
}


def default_scheme(activation: str) -> str:
    """He for ReLU (keeps the variance of ReLU layers), Glorot for tanh/sigmoid/linear."""
    return "he_uniform" if activation == "relu" else "glorot_uniform"


def draw_kernel(rng: np.random.Generator, fan_in: int, fan_out: int, scheme: str = "glorot_uniform", dtype="float64"):
    """One kernel of shape (fan_in, fan_out) drawn with ``scheme``."""
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown weight init scheme={scheme!r}", f"use one of {sorted(SCHEMES)}")
    if fan_in < 1 or fan_out < 1:
        raise ConfigError(f"a layer needs at least one input and output; received ({fan_in}, {fan_out})", "check the layer sizes")
    return SCHEMES[scheme](rng, fan_in, fan_out).astype(dtype)


def init_dense_stack(sizes, *, rng, schemes, prefix: str = "", dtype="float64") -> dict[str, np.ndarray]:
    """Weights of a stack of Dense layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths including the input width, e.g. ``(n_features, 64, 64, 1)``.
    rng : numpy.random.Generator
        Consumed in layer order (kernel of layer 0, kernel of layer 1, ...).
    schemes : str or sequence of str
        One scheme for all layers, or one per layer (``len(sizes) - 1``).
    prefix : str
        Prepended to the names, e.g. ``"phi/"`` for the DeepSets per-object network.

    Returns
    -------
    dict of str to ndarray
        ``{prefix}dense_i/kernel`` of shape (in, out) and ``{prefix}dense_i/bias`` of shape (out,).
    """
    n_layers = len(sizes) - 1
    if isinstance(schemes, str):
        schemes = [schemes] * n_layers
    weights = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weights[f"{prefix}dense_{i}/kernel"] = draw_kernel(rng, int(fan_in), int(fan_out), schemes[i], dtype)
        weights[f"{prefix}dense_{i}/bias"] = np.zeros(int(fan_out), dtype=dtype)
    return weights


def _layer_schemes(n_hidden: int, activation: str, init: str) -> list[str]:
    """``init="auto"``: hidden layers by activation (He for ReLU), output layer Glorot."""
    if init == "auto":
        return [default_scheme(activation)] * n_hidden + ["glorot_uniform"]
    return [init] * (n_hidden + 1)


def init_mlp_weights(
    n_features: int, hidden_sizes, n_outputs: int, *, seed: int, activation: str = "relu", init: str = "auto", dtype="float64"
) -> dict[str, np.ndarray]:
    """Initial MLP weights ``dense_0/...`` to ``dense_L/...`` (L = len(hidden_sizes)) from ``seed``."""
    sizes = (n_features, *hidden_sizes, n_outputs)
    rng = np.random.default_rng(seed)
    return init_dense_stack(sizes, rng=rng, schemes=_layer_schemes(len(hidden_sizes), activation, init), dtype=dtype)


def init_deepsets_weights(
    n_features: int, phi_sizes, f_sizes, n_outputs: int, *, seed: int, activation: str = "relu", init: str = "auto", dtype="float64"
) -> dict[str, np.ndarray]:
    """Initial DeepSets weights from ``seed``: ``phi/dense_i/...`` first, then ``f/dense_i/...``.

    Every Φ layer is followed by the activation (the latent space is the last Φ width); F is
    an MLP from that latent width through ``f_sizes`` to a linear output.
    """
    rng = np.random.default_rng(seed)
    phi_schemes = [default_scheme(activation) if init == "auto" else init] * len(phi_sizes)
    weights = init_dense_stack((n_features, *phi_sizes), rng=rng, schemes=phi_schemes, prefix="phi/", dtype=dtype)
    f_sizes_all = (phi_sizes[-1], *f_sizes, n_outputs)
    weights.update(
        init_dense_stack(f_sizes_all, rng=rng, schemes=_layer_schemes(len(f_sizes), activation, init), prefix="f/", dtype=dtype)
    )
    return weights
