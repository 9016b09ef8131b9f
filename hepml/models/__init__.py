"""Framework-neutral model specs and their initial weights, drawn once in NumPy from the seed.

Every framework loads the same arrays from :func:`initial_weights`, so the NumPy core, PyTorch and
Keras start from identical parameters (the basis of the equivalence tests).

Weight names (shared by every adapter; kernels in Keras orientation (in, out)):

- ``mlp``: ``dense_i/kernel``, ``dense_i/bias`` for i = 0..L (the last is the output layer);
  with ``batch_norm``, ``bn_i/gamma``, ``bn_i/beta``, ``bn_i/moving_mean``, ``bn_i/moving_var``
  after each hidden Dense (before the activation);
- ``deepsets``: ``phi/dense_i/...`` then ``f/dense_i/...``;
- ``transformer`` (pre-LayerNorm encoder): ``embed/kernel``, ``embed/bias``; per block b:
  ``block_b/ln1/gamma``, ``block_b/ln1/beta``, ``block_b/attn/{q,k,v,o}/kernel`` (dim, dim) and
  ``/bias``, ``block_b/ln2/gamma``, ``block_b/ln2/beta``, ``block_b/ff/dense_0/...`` (dim → ff),
  ``block_b/ff/dense_1/...`` (ff → dim); then ``final_ln/gamma``, ``final_ln/beta``, masked mean
  pooling over the objects, and the head ``head/dense_i/...`` (the last is the output layer).
"""

from __future__ import annotations

import numpy as np

from .spec import BDTSpec, DeepSetsSpec, MLPSpec, ModelFile, TrainSpec, TransformerSpec, available_models, load_model_file

__all__ = [
    "BDTSpec",
    "DeepSetsSpec",
    "MLPSpec",
    "ModelFile",
    "TrainSpec",
    "TransformerSpec",
    "available_models",
    "initial_weights",
    "load_model_file",
]


def initial_weights(spec, n_inputs: int, n_classes: int, *, seed: int, dtype="float64") -> dict:
    """Initial weights of ``spec`` for ``n_inputs`` features (per object for set models).

    Glorot/He as the spec's ``init`` says (``auto``: He for ReLU hidden layers, Glorot otherwise
    and for the output layer); biases zero; batch-norm γ=1, β=0, running mean 0 and variance 1.
    """
    from ..core.init import init_deepsets_weights, init_dense_stack, init_mlp_weights

    n_out = 1 if n_classes == 2 else n_classes
    if spec.kind == "mlp":
        w = init_mlp_weights(n_inputs, tuple(spec.hidden), n_out, seed=seed, activation=spec.activation, init=spec.init, dtype=dtype)
        if spec.batch_norm:
            for i, width in enumerate(spec.hidden):
                w[f"bn_{i}/gamma"] = np.ones(width, dtype)
                w[f"bn_{i}/beta"] = np.zeros(width, dtype)
                w[f"bn_{i}/moving_mean"] = np.zeros(width, dtype)
                w[f"bn_{i}/moving_var"] = np.ones(width, dtype)
        return w
    if spec.kind == "deepsets":
        return init_deepsets_weights(
            n_inputs, tuple(spec.phi), tuple(spec.f), n_out, seed=seed, activation=spec.activation, init=spec.init, dtype=dtype
        )
    if spec.kind == "transformer":
        rng = np.random.default_rng(seed)
        d = spec.dim
        w = init_dense_stack((n_inputs, d), rng=rng, schemes=["glorot_uniform"], prefix="embed/", dtype=dtype)
        w = {k.replace("embed/dense_0/", "embed/"): v for k, v in w.items()}
        for b in range(spec.layers):
            p = f"block_{b}/"
            for ln in ("ln1", "ln2"):
                w[f"{p}{ln}/gamma"], w[f"{p}{ln}/beta"] = np.ones(d, dtype), np.zeros(d, dtype)
            for proj in ("q", "k", "v", "o"):
                part = init_dense_stack((d, d), rng=rng, schemes=["glorot_uniform"], prefix=f"{p}attn/{proj}/", dtype=dtype)
                w.update({k.replace("dense_0/", ""): v for k, v in part.items()})
            w.update(init_dense_stack((d, spec.ff, d), rng=rng, schemes=["he_uniform", "glorot_uniform"], prefix=f"{p}ff/", dtype=dtype))
        w["final_ln/gamma"], w["final_ln/beta"] = np.ones(d, dtype), np.zeros(d, dtype)
        head_sizes = (d, *spec.head, n_out)
        schemes = ["he_uniform"] * len(spec.head) + ["glorot_uniform"]
        w.update(init_dense_stack(head_sizes, rng=rng, schemes=schemes, prefix="head/", dtype=dtype))
        return w
    raise ValueError(f"model kind {spec.kind!r} has no weight arrays")
