"""The Keras 3 adapter: MLP, DeepSets and a small transformer as Keras layers, on any Keras backend.

Keras runs on TensorFlow by default and on PyTorch when ``KERAS_BACKEND=torch`` is set before keras
is first imported (the backend is fixed per process). The layers use ``keras.ops`` only, so the same
model runs on both; the compiled train step is a ``tf.function`` on TensorFlow and an eager torch
autograd step on torch. Weights map one to one onto the shared names of :mod:`hepml.models` (Keras'
``Dense.kernel`` already has the (in, out) orientation), so a float64 run follows the NumPy core and
the torch adapter step by step. Architecture choices are the torch adapter's (see
:mod:`hepml.frameworks.torch`): LayerNorm ε = 1e-5, BatchNorm ε = 1e-3 and momentum 0.99, pre-LN
blocks with padded keys masked, masked mean pooling, dropout on hidden activations and residual
branches.

The optimisers are Keras' own ``SGD`` / ``Adam`` / ``AdamW``; three places where Keras' rules differ
from torch's (which the core follows) are bridged so that the updates are the same:

- **loss**: Keras' ``sample_weight`` reduction divides by the batch size; here the loss is
  Q = Σ w_i L_i / Σ w_i, computed in the custom train step;
- **SGD momentum**: Keras keeps m = μ m − η g and adds m, torch keeps b = μ b + g and subtracts η b,
  i.e. m = −η b as long as η is constant. When the schedule changes η, :meth:`set_learning_rate`
  rescales m by η_new/η_old, which keeps m = −η b exactly;
- **Adam ε**: Keras divides by √v + ε̂, torch by √v/√(1 − β₂ᵗ) + ε. Both are the same update when
  ε̂ = ε √(1 − β₂ᵗ), so the step sets Keras' ε to that value before each update;
- **weight decay**: for ``sgd``/``adam`` it is L2 added to the gradient (g ← g + λθ, torch), which
  Keras has not, so the step adds it; ``adamw`` uses Keras' decoupled decay θ ← θ(1 − ηλ), as torch;
- **gradient clipping** by the global norm uses torch's factor min(1, c / (‖g‖ + 1e-6)).

The learning-rate variable is created in the model's dtype, so float64 runs do not round η to float32.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
from pathlib import Path
from typing import ClassVar, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter; a user's own setting wins

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from ..atomic import atomic_path
from ..npz import read_npz, write_npz
from ..errors import DataError, DeviceError, FrameworkError
from .base import Adapter, Batch, n_outputs, predict_rows, resolve_device

LN_EPSILON = 1e-5
BN_EPSILON = 1e-3  # Keras' default, also used by the torch adapter
BN_MOMENTUM = 0.99  # Keras convention m ← 0.99 m + 0.01 x̄ (torch's momentum=0.01)
CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by ‖g‖ + 1e-6
BACKENDS = ("tensorflow", "torch")
_POLICIES = {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
#: the most negative finite value of each compute dtype: the score of a padded key (torch's finfo.min)
_LOWEST = {"float64": float(np.finfo(np.float64).min), "float32": float(np.finfo(np.float32).min), "float16": -65504.0, "bfloat16": -3.3895313892515355e38}


def _activation(name: str):
    return {"relu": keras.activations.relu, "tanh": keras.activations.tanh, "sigmoid": keras.activations.sigmoid, "linear": lambda x: x}[name]


# ============================================================================= layers
class DenseStack(keras.layers.Layer):
    """Dense → [BatchNorm] → g → [Dropout] → ... → Dense, as ``hepml.core.mlp.MLPNet``.

    ``final_activation`` also applies g after the last layer (the DeepSets Φ); dropout follows
    every hidden activation but never the last layer. Dense on a (b, N, k) input acts per object.
    """

    def __init__(self, units, *, activation="relu", final_activation=False, dropout=0.0, batch_norm=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.activation_name, self.final_activation = list(units), activation, final_activation
        self.rate, self.batch_norm, self.seed = float(dropout), bool(batch_norm), int(seed)
        policy = self.dtype_policy
        self.dense = [keras.layers.Dense(u, dtype=policy, name=f"dense_{i}") for i, u in enumerate(self.units)]
        hidden = len(self.units) - 1
        self.bn = [keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=policy, name=f"bn_{i}") for i in range(hidden)] if batch_norm else []
        self.drop = [keras.layers.Dropout(self.rate, seed=self.seed + i, dtype=policy, name=f"dropout_{i}") for i in range(hidden)] if self.rate > 0 else []
        self.g = _activation(activation)

    def call(self, x, training=False):
        last = len(self.dense) - 1
        for i, layer in enumerate(self.dense):
            x = layer(x)
            if i < last and self.bn:
                x = self.bn[i](x, training=training)
            if i < last or self.final_activation:
                x = self.g(x)
            if i < last and self.drop:
                x = self.drop[i](x, training=training)
        return x

    def named_variables(self, prefix: str = ""):
        """(name, variable) in the shared scheme; batch-norm names have no prefix (MLP only)."""
        for i, layer in enumerate(self.dense):
            yield f"{prefix}dense_{i}/kernel", layer.kernel
            yield f"{prefix}dense_{i}/bias", layer.bias
        for i, bn in enumerate(self.bn):
            yield f"bn_{i}/gamma", bn.gamma
            yield f"bn_{i}/beta", bn.beta
            yield f"bn_{i}/moving_mean", bn.moving_mean
            yield f"bn_{i}/moving_var", bn.moving_variance

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation_name, "final_activation": self.final_activation,
                "dropout": self.rate, "batch_norm": self.batch_norm, "seed": self.seed}


def masked_pool(h, mask, mean: bool):
    """Σ_j m_j h_j over the objects (axis 1), or divided by max(Σ_j m_j, 1): padding adds nothing."""
    m = ops.expand_dims(ops.cast(mask, h.dtype), -1)
    if mean:
        m = m / ops.maximum(ops.sum(m, axis=1, keepdims=True), _scalar(1.0, h.dtype))
    return ops.sum(h * m, axis=1)


class EncoderBlock(keras.layers.Layer):
    """Pre-LN block: h + o(MultiHead(ln1 h)), then h + ff_1(relu(ff_0(ln2 h))); padded keys masked.

    q/k/v/o are plain Dense layers so their kernels are the shared ``attn/{q,k,v,o}/kernel``; head
    h uses the features [h·d/H, (h+1)·d/H) of each projection (torch's split).
    """

    def __init__(self, dim, heads, ff, *, dropout=0.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heads, self.ff, self.rate, self.seed = int(dim), int(heads), int(ff), float(dropout), int(seed)
        self.scale = 1.0 / math.sqrt(self.dim // self.heads)
        policy = self.dtype_policy
        self.ln1 = keras.layers.LayerNormalization(epsilon=LN_EPSILON, dtype=policy, name="ln1")
        self.ln2 = keras.layers.LayerNormalization(epsilon=LN_EPSILON, dtype=policy, name="ln2")
        self.q, self.k, self.v, self.o = (keras.layers.Dense(self.dim, dtype=policy, name=n) for n in ("q", "k", "v", "o"))
        self.ff_0 = keras.layers.Dense(self.ff, dtype=policy, name="ff_0")
        self.ff_1 = keras.layers.Dense(self.dim, dtype=policy, name="ff_1")
        self.drop = [keras.layers.Dropout(self.rate, seed=self.seed + i, dtype=policy, name=f"dropout_{i}") for i in range(2)] if self.rate > 0 else []

    def _split(self, t):  # (b, n, dim) -> (b, heads, n, dim/heads)
        shape = ops.shape(t)
        return ops.transpose(ops.reshape(t, (shape[0], shape[1], self.heads, self.dim // self.heads)), (0, 2, 1, 3))

    def call(self, h, valid, training=False):
        a = self.ln1(h)
        q, k, v = self._split(self.q(a)), self._split(self.k(a)), self._split(self.v(a))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * _scalar(self.scale, q.dtype)  # (b, heads, n_query, n_key)
        keep = ops.expand_dims(ops.expand_dims(ops.greater(valid, 0.5), 1), 1)
        scores = ops.where(keep, scores, _scalar(_LOWEST[keras.backend.standardize_dtype(scores.dtype)], scores.dtype))
        att = ops.matmul(ops.softmax(scores, axis=-1), v)  # (b, heads, n, dim/heads)
        shape = ops.shape(att)
        att = ops.reshape(ops.transpose(att, (0, 2, 1, 3)), (shape[0], shape[2], self.dim))
        a = self.o(att)
        h = h + (self.drop[0](a, training=training) if self.drop else a)
        f = self.ff_1(keras.activations.relu(self.ff_0(self.ln2(h))))
        return h + (self.drop[1](f, training=training) if self.drop else f)

    def named_variables(self, p: str):
        for ln in ("ln1", "ln2"):
            layer = getattr(self, ln)
            yield f"{p}{ln}/gamma", layer.gamma
            yield f"{p}{ln}/beta", layer.beta
        for proj in ("q", "k", "v", "o"):
            layer = getattr(self, proj)
            yield f"{p}attn/{proj}/kernel", layer.kernel
            yield f"{p}attn/{proj}/bias", layer.bias
        for i, layer in enumerate((self.ff_0, self.ff_1)):
            yield f"{p}ff/dense_{i}/kernel", layer.kernel
            yield f"{p}ff/dense_{i}/bias", layer.bias

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "heads": self.heads, "ff": self.ff, "dropout": self.rate, "seed": self.seed}


# ============================================================================= networks
class MLPNet(keras.Model):
    """The MLP on flat features (``dense_i``, optional ``bn_i``)."""

    def __init__(self, spec, n_out, *, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.net = DenseStack((*spec.hidden, n_out), activation=spec.activation, dropout=spec.dropout, batch_norm=spec.batch_norm,
                              seed=seed, dtype=self.dtype_policy, name="mlp")

    def call(self, x, training=False):
        return self.net(x, training=training)

    def named_variables(self):
        yield from self.net.named_variables("")


class DeepSetsNet(keras.Model):
    """F(pool_j Φ(x_j)) over a padded (b, N, k) set with its (b, N) mask."""

    def __init__(self, spec, n_out, *, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.mean = spec.pool == "mean"
        self.phi = DenseStack(spec.phi, activation=spec.activation, final_activation=True, dropout=spec.dropout, seed=seed,
                              dtype=self.dtype_policy, name="phi")
        self.f = DenseStack((*spec.f, n_out), activation=spec.activation, dropout=spec.dropout, seed=seed + 100, dtype=self.dtype_policy, name="f")

    def call(self, inputs, training=False):
        x, mask = inputs
        return self.f(masked_pool(self.phi(x, training=training), mask, self.mean), training=training)

    def named_variables(self):
        yield from self.phi.named_variables("phi/")
        yield from self.f.named_variables("f/")


class TransformerNet(keras.Model):
    """embed → pre-LN blocks → final_ln → masked mean over the objects → head MLP (ReLU)."""

    def __init__(self, spec, n_out, *, seed=0, **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy
        self.embed = keras.layers.Dense(spec.dim, dtype=policy, name="embed")
        self.blocks = [EncoderBlock(spec.dim, spec.heads, spec.ff, dropout=spec.dropout, seed=seed + 10 * b, dtype=policy, name=f"block_{b}")
                       for b in range(spec.layers)]
        self.final_ln = keras.layers.LayerNormalization(epsilon=LN_EPSILON, dtype=policy, name="final_ln")
        self.head = DenseStack((*spec.head, n_out), activation="relu", dropout=spec.dropout, seed=seed + 1000, dtype=policy, name="head")

    def call(self, inputs, training=False):
        x, mask = inputs
        h = self.embed(x)
        mask = ops.cast(mask, h.dtype)
        for block in self.blocks:
            h = block(h, mask, training=training)
        return self.head(masked_pool(self.final_ln(h), mask, True), training=training)

    def named_variables(self):
        yield "embed/kernel", self.embed.kernel
        yield "embed/bias", self.embed.bias
        for b, block in enumerate(self.blocks):
            yield from block.named_variables(f"block_{b}/")
        yield "final_ln/gamma", self.final_ln.gamma
        yield "final_ln/beta", self.final_ln.beta
        yield from self.head.named_variables("head/")


_NETS = {"mlp": MLPNet, "deepsets": DeepSetsNet, "transformer": TransformerNet}


# ============================================================================= helpers
@contextlib.contextmanager
def _floatx(dtype: str):
    """Keras' default float dtype set to ``dtype`` for a moment (to create η's variable in float64 runs)."""
    before = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(before)


def _scalar(x, dtype):
    """The number ``x`` as a tensor of ``dtype``, exact in float64.

    ``ops.cast(0.001, "float64")`` on TensorFlow first makes a float32 tensor of the Python float
    (0.0010000000475): a NumPy float64 goes straight to float64.
    """
    name = keras.backend.standardize_dtype(dtype)
    return ops.cast(np.asarray(x, dtype=np.float64 if name == "float64" else np.float32), name)


def _keep_float64() -> None:
    """Let float64 stay float64 in Keras' type promotion on the torch backend.

    Keras follows JAX's default (64-bit off) on every backend but TensorFlow: its ``result_type``
    maps float64 to float32, so ``ops.matmul`` of two float64 tensors is computed in float32 and a
    float64 model silently loses precision (~1e-7 relative). hepml's float64 runs exist to compare
    frameworks at ~1e-12, so a float64 model built on the torch backend lifts that mapping for the
    process (float32 models are unaffected: they never meet a float64 operand).
    """
    from keras.src.backend.common import dtypes

    table = getattr(dtypes, "BIT64_TO_BIT32_DTYPE", None)
    if isinstance(table, dict) and table.get("float64") != "float64":
        table["float64"] = "float64"


def _stable_sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


# ============================================================================= the adapter
class KerasAdapter(Adapter):
    """MLP / DeepSets / transformer in Keras 3, weights in the shared naming scheme."""

    name = "keras"
    kinds = ("mlp", "deepsets", "transformer")
    #: ``torch`` (default): Adam's ε placed as torch does (ε̂ = ε√(1 − β₂ᵗ)); ``keras``: Keras' own √v + ε
    epsilon_convention: ClassVar[str] = "torch"

    # -- building ------------------------------------------------------------------------------------
    def _build(self) -> None:
        from ..models import initial_weights

        t = self.train
        self.backend = keras.backend.backend()
        if self.backend not in BACKENDS:
            raise FrameworkError(f"the Keras backend {self.backend!r} is not supported by hepml", "set KERAS_BACKEND=tensorflow (default) or torch")
        self._check_precision()
        if self.backend == "torch" and t.dtype == "float64":
            _keep_float64()
        self._keras_device = self._device_name()
        self._binary = n_outputs(self.n_classes) == 1
        self._set_input = self.spec.kind in ("deepsets", "transformer")
        self._dtype = t.dtype  # variables and inputs
        self._compute = "float32" if self.precision != "fp32" else t.dtype  # the loss is computed in this dtype
        policy = keras.DTypePolicy(_POLICIES.get(self.precision, t.dtype))
        with self._device():
            self.model = _NETS[self.spec.kind](self.spec, n_outputs(self.n_classes), seed=int(t.seed), dtype=policy, name=f"hepml_{self.spec.kind}")
            self.model(self._convert(self._dummy_inputs()), training=False)  # creates the variables
            self._named = dict(self.model.named_variables())
            self._trainable = list(self.model.trainable_variables)
            self.set_weights(initial_weights(self.spec, self.n_features, self.n_classes, seed=t.seed, dtype=t.dtype))
            self._inner = self._make_optimizer()
            self._opt = keras.optimizers.LossScaleOptimizer(self._inner) if self.precision == "fp16" else self._inner
            self._opt.build(self._trainable)
            self._eps_var = None
            if t.optimizer in ("adam", "adamw") and self.backend == "tensorflow":
                import tensorflow as tf

                self._eps_var = tf.Variable(t.epsilon, dtype=self._trainable[0].dtype, trainable=False, name="adam_epsilon_hat")
                self._inner.epsilon = self._eps_var  # read by Keras' Adam.update_step at run time
        self._step_fn = self._predict_fn = None

    def _check_precision(self) -> None:
        p = self.precision
        if p not in ("fp32", "bf16", "fp16"):
            raise FrameworkError(f"unknown precision {p!r}", "use fp32, bf16 or fp16")
        if p != "fp32" and self.train.dtype == "float64":
            raise FrameworkError(f"mixed precision {p} with dtype float64 makes no sense", f"use dtype: float32 with --precision {p}, or --precision fp32")

    def _device_name(self) -> str:
        """The Keras device string for ``self.device`` (resolved in place); a GPU the backend cannot see is an error, never a CPU run."""
        if self.backend == "tensorflow":
            import tensorflow as tf

            n = len(tf.config.list_physical_devices("GPU"))
            fix = "install tensorflow[and-cuda] (tensorflow-cpu sees no GPU), run with KERAS_BACKEND=torch, or use --device cpu"
        else:
            import torch

            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            fix = "install a CUDA build of torch, or use --device cpu"
        asked = str(self.device or "auto").lower()
        if asked.startswith(("cuda", "gpu")) and n == 0:
            raise DeviceError(f"device {self.device!r} was asked for but Keras' {self.backend} backend sees 0 GPUs", fix)
        self.device = resolve_device(asked, "keras", available=n)  # auto → cuda:0 when the backend sees a GPU
        if self.backend == "torch":  # torch's own names: Keras' torch variables are Parameters only on "cpu"/"cuda:N"
            return self.device
        return "cpu:0" if self.device == "cpu" else "gpu:" + self.device.split(":", 1)[1]

    def _device(self):
        return keras.device(self._keras_device)

    def _make_optimizer(self):
        """Keras' SGD / Adam / AdamW with the TrainSpec values.

        In float64 runs the hyperparameters are passed as ``np.float64``: Keras casts them with
        ``ops.cast(beta_1, variable.dtype)``, and TensorFlow turns a Python float into a float32
        tensor first (μ = 0.9 would become 0.89999998); a NumPy float64 stays exact. The
        learning-rate variable is created in the model's dtype for the same reason.
        """
        t = self.train
        f = np.float64 if self._dtype == "float64" else float
        with _floatx(self._dtype):
            if t.optimizer == "sgd":
                return keras.optimizers.SGD(learning_rate=float(t.learning_rate), momentum=f(t.momentum), nesterov=bool(t.nesterov))
            if t.optimizer == "adamw":
                return keras.optimizers.AdamW(learning_rate=float(t.learning_rate), weight_decay=f(t.weight_decay), beta_1=f(t.beta1),
                                              beta_2=f(t.beta2), epsilon=float(t.epsilon))
            return keras.optimizers.Adam(learning_rate=float(t.learning_rate), beta_1=f(t.beta1), beta_2=f(t.beta2), epsilon=float(t.epsilon))

    def _dummy_inputs(self):
        if self._set_input:
            return np.zeros((2, 3, self.n_features)), np.ones((2, 3))
        return np.zeros((2, self.n_features))

    def _convert(self, inputs):
        dt = self._dtype
        if isinstance(inputs, tuple):
            return tuple(ops.convert_to_tensor(np.asarray(a, dtype=dt), dtype=dt) for a in inputs)
        return ops.convert_to_tensor(np.asarray(inputs, dtype=dt), dtype=dt)  # explicit: torch's backend would make float32

    # -- weights -------------------------------------------------------------------------------------
    def get_weights(self) -> dict:
        """``{name: ndarray}`` in the shared scheme (kernels (in, out), as Keras stores them)."""
        return {name: np.array(ops.convert_to_numpy(v)) for name, v in self._named.items()}

    def set_weights(self, weights: dict) -> None:
        """Load weights with exactly the names and shapes of :meth:`get_weights`."""
        names = list(self._named)
        missing, unexpected = [n for n in names if n not in weights], sorted(set(weights) - set(names))
        if missing or unexpected:
            raise FrameworkError(
                f"keras {self.spec.kind}: weights missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}",
                "pass weights drawn for this model spec (hepml.models.initial_weights or another adapter's get_weights)",
            )
        for name, v in self._named.items():
            a = np.asarray(weights[name])
            if a.shape != tuple(v.shape):
                raise FrameworkError(f"weight {name} has shape {a.shape}, the model needs {tuple(v.shape)}", "pass weights drawn for this model spec")
        with self._device():
            for name, v in self._named.items():
                v.assign(np.asarray(weights[name], dtype=keras.backend.standardize_dtype(v.dtype)))

    # -- optimiser -----------------------------------------------------------------------------------
    def set_learning_rate(self, lr: float) -> None:
        """η for the next steps; SGD momentum m = −η b is rescaled by η_new/η_old to stay torch's b."""
        lr = float(lr)
        if not lr > 0:
            raise FrameworkError(f"learning rate must be > 0; received {lr!r}", "check the schedule in the model file's train: section")
        old = float(ops.convert_to_numpy(self._inner.learning_rate))
        with self._device():
            if self.train.optimizer == "sgd" and self.train.momentum > 0 and lr != old:
                for m in self._inner.momentums:
                    m.assign(m * _scalar(lr / old, m.dtype))
            self._inner.learning_rate = lr

    def optimizer_state(self) -> dict:
        """Every optimiser variable by position (``opt/i``: step count, η, slots; loss scale under fp16)."""
        return {f"opt/{i:03d}": np.array(ops.convert_to_numpy(v)) for i, v in enumerate(self._opt.variables)}

    def load_optimizer_state(self, state: dict) -> None:
        """Restore :meth:`optimizer_state` into this freshly built adapter (same spec and optimiser)."""
        variables = self._opt.variables
        keys = sorted(k for k in state if k.startswith("opt/"))
        if len(keys) != len(variables) or len(keys) != len(state):
            raise FrameworkError(f"the optimizer state has {len(state)} entries, this Keras {self.train.optimizer} has {len(variables)} variables",
                                 "load the state saved with this model and optimizer")
        for key, v in zip(keys, variables):
            a = np.asarray(state[key])
            if a.shape != tuple(v.shape):
                raise FrameworkError(f"optimizer state {key!r} has shape {a.shape}, the variable {v.path} {tuple(v.shape)}", "load the state saved with this model")
        with self._device():
            for key, v in zip(keys, variables):
                v.assign(np.asarray(state[key]).astype(keras.backend.standardize_dtype(v.dtype)))

    # -- batches -------------------------------------------------------------------------------------
    def _inputs(self, batch: Batch):
        if self._set_input:
            if batch.set is None:
                raise DataError(f"keras {self.spec.kind} needs a padded object set; the batch has only flat features", "use an 'objects' group with 'as: set' in the task")
            s = np.asarray(batch.set)
            if s.ndim != 3 or s.shape[-1] != self.n_features:
                raise DataError(f"object set of shape {s.shape}; the model was built for (n, N, {self.n_features})", "use the features the model was built with")
            mask = batch.mask if batch.mask is not None else np.any(s != 0, axis=-1)
            return np.asarray(s, dtype=self._dtype), np.asarray(mask, dtype=self._dtype)
        if batch.X is None:
            raise DataError(f"keras {self.spec.kind} needs flat features; the batch has only an object set", "use inputs: flatten_set in the model spec")
        X = np.asarray(batch.X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataError(f"features of shape {X.shape}; the model was built for (n, {self.n_features})", "use the features the model was built with")
        return np.asarray(X, dtype=self._dtype)

    def _targets(self, batch: Batch):
        """Targets as (n, n_outputs) floats (y for one logit, one-hot rows for C) and the weights."""
        y = np.asarray(batch.y)
        if len(y) and (y.min() < 0 or y.max() >= self.n_classes or not np.all(y == np.round(y))):
            raise DataError(f"class labels must be 0..{self.n_classes - 1}; received {sorted(set(np.unique(y).tolist()))[:10]}", "encode the labels as class indices")
        w = np.asarray(batch.w, dtype=self._compute)
        if not float(w.sum()) > 0:
            raise DataError(f"the example weights of a batch sum to {float(w.sum())}", "use non-negative weights with a positive sum")
        y = y.astype(np.int64)
        target = y[:, None].astype(self._compute) if self._binary else np.eye(self.n_classes, dtype=self._compute)[y]
        return target, w

    def _loss(self, z, target, w):
        """Q = Σ w_i L_i / Σ w_i with L the BCE-with-logits (1 output) or the softmax cross-entropy."""
        z = ops.cast(z, self._compute)
        if self._binary:
            per = ops.maximum(z, 0.0) - z * target + ops.log1p(ops.exp(-ops.abs(z)))
            per = per[:, 0]
        else:
            per = ops.logsumexp(z, axis=-1) - ops.sum(target * z, axis=-1)
        return ops.sum(w * per) / ops.sum(w)

    # -- training ------------------------------------------------------------------------------------
    def _adjust_gradients(self, grads, scale=None):
        """torch's clip_grad_norm_ (then L2 λθ for sgd/adam) on the true gradients; ``scale`` is the fp16 loss scale."""
        t = self.train
        l2 = t.weight_decay if t.optimizer != "adamw" and t.weight_decay > 0 else 0.0
        if t.clip_grad_norm is None and not l2:
            return grads
        if scale is not None:
            grads = [g / ops.cast(scale, g.dtype) for g in grads]
        if t.clip_grad_norm is not None:
            norm = ops.sqrt(functools.reduce(ops.add, [ops.sum(ops.square(g)) for g in grads]))  # global L2 norm
            coef = ops.minimum(_scalar(1.0, norm.dtype), _scalar(t.clip_grad_norm, norm.dtype) / (norm + _scalar(CLIP_EPS, norm.dtype)))
            grads = [g * ops.cast(coef, g.dtype) for g in grads]
        if l2:
            grads = [g + _scalar(l2, g.dtype) * ops.cast(v, g.dtype) for g, v in zip(grads, self._trainable)]
        if scale is not None:
            grads = [g * ops.cast(scale, g.dtype) for g in grads]
        return grads

    def _epsilon_hat(self, step):
        """Keras' ε for the coming step t = ``step`` + 1: ε √(1 − β₂ᵗ) turns Keras' Adam into torch's.

        ``step`` is the optimiser's step count (a float64 tensor inside the TensorFlow step, an int
        on torch); with ``epsilon_convention = "keras"`` Keras' own rule (ε as given) is kept.
        """
        t = self.train
        if self.epsilon_convention == "keras":
            return t.epsilon
        if isinstance(step, int):
            return t.epsilon * math.sqrt(1.0 - t.beta2 ** (step + 1))
        return t.epsilon * ops.sqrt(1.0 - ops.power(_scalar(t.beta2, step.dtype), step + 1.0))

    def _make_tf_step(self):
        import tensorflow as tf

        lso = self.precision == "fp16"
        eps_dtype = self._eps_var.dtype if self._eps_var is not None else None

        def step(inputs, target, w):
            with tf.GradientTape() as tape:
                loss = self._loss(self.model(inputs, training=True), target, w)
                scaled = self._opt.scale_loss(loss) if lso else loss
            grads = tape.gradient(scaled, self._trainable)
            grads = self._adjust_gradients(grads, self._opt.dynamic_scale if lso else None)
            if self._eps_var is not None:
                self._eps_var.assign(tf.cast(self._epsilon_hat(tf.cast(self._inner.iterations, tf.float64)), eps_dtype))
            self._opt.apply(grads, self._trainable)
            return loss

        return tf.function(step, input_signature=self._signature(), jit_compile=False, reduce_retracing=True)

    def _signature(self):
        import tensorflow as tf

        dt = tf.as_dtype(self._dtype)
        if self._set_input:
            inputs = (tf.TensorSpec([None, None, self.n_features], dt), tf.TensorSpec([None, None], dt))
        else:
            inputs = tf.TensorSpec([None, self.n_features], dt)
        cd = tf.as_dtype(self._compute)
        return [inputs, tf.TensorSpec([None, n_outputs(self.n_classes)], cd), tf.TensorSpec([None], cd)]

    def _torch_step(self, inputs, target, w):
        import torch

        lso = self.precision == "fp16"
        loss = self._loss(self.model(inputs, training=True), target, w)
        scaled = self._opt.scale_loss(loss) if lso else loss
        grads = list(torch.autograd.grad(scaled, [v.value for v in self._trainable]))
        with torch.no_grad():
            grads = self._adjust_gradients(grads, self._opt.dynamic_scale if lso else None)
            if self.train.optimizer in ("adam", "adamw"):
                self._inner.epsilon = self._epsilon_hat(int(ops.convert_to_numpy(self._inner.iterations)))
            self._opt.apply(grads, self._trainable)
        return loss.detach()

    def _step(self, batch: Batch):
        """One optimiser step; returns the loss as a backend tensor (not synchronised)."""
        inputs = self._inputs(batch)
        target, w = self._targets(batch)
        with self._device():
            if self.backend == "tensorflow":
                if self._step_fn is None:
                    self._step_fn = self._make_tf_step()
                return self._step_fn(inputs, target, w)
            return self._torch_step(self._convert(inputs), ops.convert_to_tensor(target, dtype=self._compute), ops.convert_to_tensor(w, dtype=self._compute))

    def train_step(self, batch: Batch) -> float:
        """Forward in training mode, Q = Σ w L / Σ w, gradients, (clip, L2), the optimiser step; returns Q."""
        return float(ops.convert_to_numpy(self._step(batch)))

    def fit(self, batches, val: Optional[Batch] = None) -> dict:
        """One pass over ``batches``; the batch losses are read once at the end (no per-step sync)."""
        losses, sizes = [], []
        for b in batches:
            losses.append(self._step(b))
            sizes.append(float(np.sum(b.w)))
        values = [float(ops.convert_to_numpy(x)) for x in losses]
        out = {"loss": float(np.average(values, weights=sizes)) if values else float("nan")}
        if val is not None:
            out["val_loss"] = self.loss(val)
        return out

    # -- inference -----------------------------------------------------------------------------------
    def _logits(self, batch: Batch) -> np.ndarray:
        inputs = self._inputs(batch)
        n, rows = len(batch), predict_rows(batch)
        chunks = []
        with self._device():
            for start in range(0, n, rows):
                part = tuple(a[start : start + rows] for a in inputs) if isinstance(inputs, tuple) else inputs[start : start + rows]
                chunks.append(np.asarray(ops.convert_to_numpy(self._forward(part)), dtype=self._dtype))
        return np.concatenate(chunks) if chunks else np.zeros((0, n_outputs(self.n_classes)), dtype=self._dtype)

    def _forward(self, inputs):
        """Inference-mode logits of one chunk (compiled on TensorFlow)."""
        if self.backend == "tensorflow":
            if self._predict_fn is None:
                import tensorflow as tf

                self._predict_fn = tf.function(lambda x: self.model(x, training=False), input_signature=self._signature()[:1], reduce_retracing=True)
            return self._predict_fn(inputs)
        import torch

        with torch.no_grad():
            return self.model(self._convert(inputs), training=False)

    def predict_proba(self, batch: Batch) -> np.ndarray:
        """(n, n_classes): [1 − σ(z), σ(z)] for two classes, softmax(z) for more; no dropout, moving BN statistics."""
        z = self._logits(batch)
        if self._binary:
            p = _stable_sigmoid(z[:, 0])
            return np.column_stack([1.0 - p, p]).astype(self._dtype)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(self._dtype)

    def loss(self, batch: Batch) -> float:
        """Weighted-mean loss from the logits in inference mode (the validation loss)."""
        z = self._logits(batch).astype(np.float64)
        y = np.asarray(batch.y).astype(np.int64)
        w = np.asarray(batch.w, dtype=np.float64)
        if self._binary:
            zz, t = z[:, 0], y.astype(np.float64)
            per = np.maximum(zz, 0) - zz * t + np.log1p(np.exp(-np.abs(zz)))
        else:
            m = z.max(axis=1)
            per = m + np.log(np.exp(z - m[:, None]).sum(axis=1)) - z[np.arange(len(y)), y]
        return float(np.sum(w * per) / np.sum(w))

    # -- files ---------------------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {"framework": "keras", "backend": self.backend, "keras": keras.__version__, "kind": self.spec.kind, "n_features": self.n_features,
                "n_classes": self.n_classes, "dtype": self.train.dtype, "precision": self.precision, "optimizer": self.train.optimizer,
                "weights": {name: list(v.shape) for name, v in sorted(self._named.items())}}

    def save(self, folder) -> None:
        """``weights.npz`` (shared names), ``optimizer.npz`` and ``keras_model.json`` in ``folder``; no pickle."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, arrays in (("weights.npz", self.get_weights()), ("optimizer.npz", self.optimizer_state())):
            write_npz(folder / name, arrays)
        with atomic_path(folder / "keras_model.json") as tmp:
            tmp.write_text(json.dumps(self._meta(), indent=1))

    def load(self, folder) -> None:
        """Read what :meth:`save` wrote (arrays only, ``allow_pickle=False``) into this built adapter."""
        folder = Path(folder)
        meta_file = folder / "keras_model.json"
        if not meta_file.is_file():
            raise FrameworkError(f"{folder} holds no Keras model (no keras_model.json)", "load a folder written by the Keras adapter's save()")
        meta, mine = json.loads(meta_file.read_text()), self._meta()
        for key in ("kind", "n_features", "n_classes", "weights"):
            if meta.get(key) != mine[key]:
                shown = "names or shapes differ" if key == "weights" else f"{meta.get(key)!r} there, {mine[key]!r} here"
                raise FrameworkError(f"the saved Keras model in {folder} does not match this one: {key} {shown}", "build the adapter with the saved model's spec")
        self.set_weights(read_npz(folder / "weights.npz", what="Keras weights"))
        if (folder / "optimizer.npz").is_file() and meta.get("optimizer") == mine["optimizer"] and meta.get("precision") == mine["precision"]:
            self.load_optimizer_state(read_npz(folder / "optimizer.npz", what="Keras optimiser state"))

    def export_onnx(self, path) -> None:
        """ONNX (inputs ``X`` or ``set`` + ``mask``, outputs ``proba`` and ``logits``) built from the weights.

        Keras' own ``model.export(format="onnx")`` needs tf2onnx; the graph is instead built by
        :mod:`hepml.onnx_export` from :meth:`get_weights`, in the model's dtype (float32 under mixed precision).
        """
        from .. import onnx_export

        dtype = "float64" if self._dtype == "float64" else "float32"
        if self.spec.kind == "mlp":
            onnx_export.mlp_to_onnx(self.get_weights(), self.spec, self.n_classes, path, batch_norm_eps=BN_EPSILON, dtype=dtype)
        elif self.spec.kind == "deepsets":
            onnx_export.deepsets_to_onnx(self.get_weights(), self.spec, self.n_classes, path, dtype=dtype)
        else:
            raise FrameworkError(f"ONNX export of a Keras {self.spec.kind} is not available (hepml.onnx_export builds mlp and deepsets)",
                                 "export the same model trained with --framework torch, or use mlp/deepsets")


ADAPTER = KerasAdapter
