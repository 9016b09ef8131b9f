"""Multilayer perceptron and DeepSets (Particle-Flow Network) on the NumPy core.

Networks (:class:`MLPNet`, :class:`DeepSetsNet`) are Modules; the estimators (:class:`MLP`,
:class:`DeepSets`) wrap them with the scikit-learn surface (``fit``, ``predict``,
``predict_proba``) and a ``train_step`` for an external trainer that feeds batches.

Heads: binary classification → 1 logit, p = σ(z), binary cross-entropy; multiclass → C
logits, softmax, cross-entropy; regression → linear outputs, mean squared error. Losses
are weighted means Σ w_i L_i / Σ w_i (:mod:`hepml.core.losses`).

Weight naming scheme (every framework adapter uses the same names and shapes)
----------------------------------------------------------------------------
MLP with hidden sizes (h_0, ..., h_{L-1}), L + 1 Dense layers::

    dense_i/kernel   (in_i, out_i)   Keras orientation; torch ``Linear.weight`` is kernel.T
    dense_i/bias     (out_i,)
    i = 0 .. L, where dense_L is the output layer.

DeepSets: the per-object network Φ (activation after *every* layer, so the latent space is
non-negative for ReLU), a masked sum (or mean) over the objects, then F (an MLP)::

    phi/dense_i/kernel, phi/dense_i/bias     i = 0 .. len(phi_sizes) - 1
    f/dense_i/kernel,   f/dense_i/bias       i = 0 .. len(f_sizes); the last is the output

Initial weights come from :mod:`hepml.core.init` (``init_mlp_weights`` /
``init_deepsets_weights``) with the estimator's ``seed``: the same arrays can be loaded into
torch and Keras.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..errors import ConfigError, DataError
from . import losses
from .autograd import Tensor, get_xp, to_numpy
from .init import SCHEMES, init_deepsets_weights, init_mlp_weights
from .layers import ACTIVATIONS, Activation, Dense, Dropout, Module, Sequential
from .optimizers import OPTIMIZERS, make_optimizer

__all__ = ["MLPNet", "DeepSetsNet", "MLP", "DeepSets"]


# ============================================================================= networks
class MLPNet(Module):
    """Dense → g → [Dropout] → ... → Dense, from a weights dict ``{prefix}dense_i/...``.

    ``final_activation=True`` also applies g (and no dropout) after the last layer, as in
    the DeepSets Φ network.
    """

    def __init__(self, weights: dict, *, prefix: str = "", activation: str = "relu", final_activation: bool = False,
                 dropout: float = 0.0, rng=None, dtype=None, xp=np):
        n_layers = 0
        while f"{prefix}dense_{n_layers}/kernel" in weights:
            n_layers += 1
        if n_layers == 0:
            raise ConfigError(
                f"no '{prefix}dense_0/kernel' among the weights {sorted(weights)}", "draw them with hepml.core.init"
            )
        self.prefix = prefix
        self.dense = []
        layers = []
        for i in range(n_layers):
            kernel, bias = weights[f"{prefix}dense_{i}/kernel"], weights[f"{prefix}dense_{i}/bias"]
            dt = dtype or np.asarray(kernel).dtype
            self.dense.append(Dense(np.asarray(kernel, dtype=dt), np.asarray(bias, dtype=dt), xp=xp))
            layers.append(self.dense[-1])
            hidden = i < n_layers - 1
            if hidden or final_activation:
                layers.append(Activation(activation))
            if hidden and dropout > 0:
                layers.append(Dropout(dropout, rng=rng if rng is not None else np.random.default_rng(0), xp=xp))
        self.net = Sequential(*layers)

    def _children(self):
        return [("net", self.net)]

    def named_parameters(self, prefix: str = ""):
        for i, layer in enumerate(self.dense):
            yield from layer.named_parameters(f"{prefix}{self.prefix}dense_{i}/")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def __repr__(self) -> str:
        return repr(self.net).replace("Sequential", "MLPNet", 1)


class DeepSetsNet(Module):
    """DeepSets / PFN: F( pool_j Φ(x_j) ) over the objects j of each example.

    Input x of shape (N, k, d) (k padded object slots, d features) and mask (N, k) with 1
    for real objects; pooling is the masked sum (``pool="sum"``, the Energy-Flow PFN) or the
    masked mean. The output does not depend on the order of the objects.
    """

    def __init__(self, weights: dict, *, activation: str = "relu", pool: str = "sum", dropout: float = 0.0,
                 rng=None, dtype=None, xp=np):
        if pool not in ("sum", "mean"):
            raise ConfigError(f"unknown pool={pool!r}", "use pool='sum' or pool='mean'")
        self.pool = pool
        common = {"activation": activation, "dropout": dropout, "rng": rng, "dtype": dtype, "xp": xp}
        self.phi = MLPNet(weights, prefix="phi/", final_activation=True, **common)
        self.f = MLPNet(weights, prefix="f/", **common)

    def _children(self):
        return [("phi", self.phi), ("f", self.f)]

    def named_parameters(self, prefix: str = ""):
        yield from self.phi.named_parameters(prefix)
        yield from self.f.named_parameters(prefix)

    def forward(self, x: Tensor, mask=None) -> Tensor:
        latent = self.phi(x)  # (N, k, ℓ)
        pooled = latent.sum_pool(mask, axis=1, mean=self.pool == "mean")  # (N, ℓ)
        return self.f(pooled)

    def __repr__(self) -> str:
        def indent(r):
            return r.replace("\n", "\n  ")

        return f"DeepSetsNet(\n  (phi): {indent(repr(self.phi))}\n  (pool): {self.pool}\n  (f): {indent(repr(self.f))}\n)"


# ============================================================================= estimators
def _positive_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0


def _sizes(v, allow_empty):
    return isinstance(v, (tuple, list)) and (allow_empty or len(v) > 0) and all(_positive_int(s) for s in v)


def _number(v, lo, hi, lo_open=False, hi_open=True):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        return False
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


# name -> (check, what a valid value looks like)
_CONSTRAINTS = {
    "hidden_sizes": (lambda v: _sizes(v, True), "a tuple of positive ints, e.g. (64, 64)"),
    "phi_sizes": (lambda v: _sizes(v, False), "a non-empty tuple of positive ints, e.g. (64, 64)"),
    "f_sizes": (lambda v: _sizes(v, True), "a tuple of positive ints, e.g. (64,)"),
    "pool": (lambda v: v in ("sum", "mean"), "'sum' or 'mean'"),
    "task": (lambda v: v in ("classification", "regression"), "'classification' or 'regression'"),
    "activation": (lambda v: v in ACTIVATIONS, f"one of {ACTIVATIONS}"),
    "dropout": (lambda v: _number(v, 0, 1), "a number in [0, 1)"),
    "init": (lambda v: v == "auto" or v in SCHEMES, f"'auto' or one of {sorted(SCHEMES)}"),
    "optimizer": (lambda v: v in OPTIMIZERS, f"one of {sorted(OPTIMIZERS)}"),
    "learning_rate": (lambda v: _number(v, 0, np.inf, lo_open=True), "a positive number, e.g. 1e-3"),
    "momentum": (lambda v: _number(v, 0, 1), "a number in [0, 1), e.g. 0.9"),
    "nesterov": (lambda v: isinstance(v, bool), "True or False"),
    "beta_1": (lambda v: _number(v, 0, 1), "a number in [0, 1), e.g. 0.9"),
    "beta_2": (lambda v: _number(v, 0, 1), "a number in [0, 1), e.g. 0.999"),
    "epsilon": (lambda v: _number(v, 0, np.inf), "a number >= 0, e.g. 1e-8 (torch) or 1e-7 (Keras)"),
    "weight_decay": (lambda v: _number(v, 0, np.inf), "a number >= 0"),
    "batch_size": (_positive_int, "a positive int, e.g. 256"),
    "epochs": (lambda v: _positive_int(v) or v == 0, "an int >= 0"),
    "shuffle": (lambda v: isinstance(v, bool), "True or False"),
    "seed": (lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0, "an int >= 0"),
    "dtype": (lambda v: v in ("float32", "float64"), "'float32' or 'float64'"),
    "device": (lambda v: v in ("cpu", "gpu", "cuda"), "'cpu' or 'gpu'"),
    "verbose": (lambda v: isinstance(v, bool), "True or False"),
}


class _NetworkEstimator:
    """Shared fit/predict machinery; subclasses define ``_input_ndim`` and ``_init_weights``."""

    _input_ndim = 2

    # -- sklearn plumbing -----------------------------------------------------------------
    @classmethod
    def _param_names(cls):
        return [p.name for p in inspect.signature(cls.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY]

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self._param_names():
                raise ConfigError(f"{type(self).__name__} has no parameter {name!r}", f"use one of {self._param_names()}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [
            f"{k}={v!r}" for k, v in self.get_params().items() if not (isinstance(v, type(defaults[k])) and v == defaults[k])
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _validate_params(self):
        for name in self._param_names():
            check, valid = _CONSTRAINTS[name]
            value = getattr(self, name)
            if not check(value):
                raise ConfigError(f"{type(self).__name__}: invalid {name}={value!r}", f"use {valid}")

    # -- data checks ----------------------------------------------------------------------
    def _check_X(self, X, mask=None):
        X = np.asarray(to_numpy(X), dtype=self.dtype)
        if X.ndim != self._input_ndim:
            shape = "(n_examples, n_features)" if self._input_ndim == 2 else "(n_examples, n_objects, n_features)"
            raise DataError(f"{type(self).__name__} needs X of shape {shape}; received shape {X.shape}", "reshape the input")
        if not np.isfinite(X).all():
            raise DataError(f"X contains {int((~np.isfinite(X)).sum())} NaN/inf values", "fill or drop them before training")
        if hasattr(self, "n_features_in_") and X.shape[-1] != self.n_features_in_:
            raise DataError(f"X has {X.shape[-1]} features, the model was built for {self.n_features_in_}", "use the same features")
        if self._input_ndim == 3:
            mask = np.any(X != 0, axis=-1) if mask is None else np.asarray(to_numpy(mask))
            if mask.shape != X.shape[:2]:
                raise DataError(
                    f"mask has shape {mask.shape}, X has (n_examples, n_objects) = {X.shape[:2]}",
                    "pass one mask entry per object slot",
                )
            mask = mask.astype(self.dtype)
        return X, mask

    def _check_y_w(self, y, sample_weight, n):
        y = np.asarray(to_numpy(y))
        if y.shape[0] != n:
            raise DataError(f"y has {y.shape[0]} entries for {n} examples", "pass one target per example")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise DataError(f"y contains {int((~np.isfinite(y)).sum())} NaN/inf values", "fill or drop them before training")
        if sample_weight is not None:
            sample_weight = np.asarray(to_numpy(sample_weight), dtype=np.float64).reshape(-1)
            if sample_weight.shape[0] != n:
                raise DataError(f"sample_weight has {sample_weight.shape[0]} entries for {n} examples", "pass one weight per example")
            if not (np.isfinite(sample_weight).all() and (sample_weight >= 0).all() and sample_weight.sum() > 0):
                raise DataError(
                    f"sample_weight must be finite and >= 0 with a positive sum; received min={sample_weight.min()}, "
                    f"sum={sample_weight.sum()}",
                    "check the event weights",
                )
        return y, sample_weight

    def _encode_y(self, y):
        """Targets as the loss wants them: 0/1 floats (binary), class indices, or floats."""
        y = np.asarray(to_numpy(y))
        if self.task == "regression":
            y = y.astype(self.dtype)
            return y.reshape(len(y), -1)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        unknown = self.classes_[idx] != y
        if unknown.any():
            raise DataError(
                f"label {y[unknown][0].item()!r} is not one of the classes {self.classes_.tolist()}",
                "use the labels seen in fit/build",
            )
        return idx.astype(self.dtype).reshape(-1, 1) if len(self.classes_) == 2 else idx

    # -- building and training ------------------------------------------------------------
    def build(self, X, y):
        """Set up the network (weights drawn from ``seed``) and the optimiser for X's shape
        and y's classes, without training: afterwards ``train_step`` can be called."""
        self._validate_params()
        if hasattr(self, "n_features_in_"):  # a new build forgets the previous input width
            del self.n_features_in_
        X, _ = self._check_X(X)
        y, _ = self._check_y_w(y, None, len(X))
        self.xp_ = get_xp(self.device)
        if self.task == "classification":
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise DataError(
                    f"classification needs at least two classes; y has only {self.classes_.tolist()}",
                    "check the labels or the selection",
                )
            n_outputs = 1 if len(self.classes_) == 2 else len(self.classes_)
            self.loss_ = losses.binary_cross_entropy if n_outputs == 1 else losses.cross_entropy
        else:
            n_outputs = 1 if y.ndim == 1 else y.shape[1]
            self.loss_ = losses.mse
        self.n_features_in_ = X.shape[-1]
        self.n_outputs_ = n_outputs
        self._y_1d = y.ndim == 1
        self._dropout_rng = np.random.default_rng([self.seed, 1])
        weights = self._init_weights(self.n_features_in_, n_outputs)
        self.network_ = self._make_network(weights)
        self.optimizer_ = self._make_optimizer()
        self.history_ = {"loss": []}
        return self

    def _make_optimizer(self):
        params = self.network_.parameters()
        if self.optimizer == "sgd":
            extra = {"momentum": self.momentum, "nesterov": self.nesterov}
        else:
            extra = {"betas": (self.beta_1, self.beta_2), "eps": self.epsilon}
        return make_optimizer(self.optimizer, params, lr=self.learning_rate, weight_decay=self.weight_decay, **extra)

    def _check_built(self):
        if not hasattr(self, "network_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet", "call fit(X, y) (or build(X, y)) first")

    def _tensor(self, a):
        return Tensor(self.xp_.asarray(a, dtype=self.dtype), requires_grad=False)

    def _forward(self, X, mask):
        x = self._tensor(X)
        if self._input_ndim == 3:
            return self.network_(x, self.xp_.asarray(mask, dtype=self.dtype))
        return self.network_(x)

    def train_step(self, X_batch, y_batch, w_batch=None, *, mask_batch=None) -> float:
        """One optimiser step on one batch: forward, Q, backward, update. Returns Q.

        An external trainer that draws its own index batches calls this after ``build``.
        """
        self._check_built()
        if self._input_ndim == 3 and mask_batch is None:
            mask_batch = np.any(np.asarray(to_numpy(X_batch)) != 0, axis=-1)
        self.network_.train()
        self.optimizer_.zero_grad()
        loss = self.loss_(self._forward(X_batch, mask_batch), self.xp_.asarray(self._encode_y(y_batch)), w_batch)
        loss.backward()
        self.optimizer_.step()
        return float(loss.data)

    def fit(self, X, y, sample_weight=None, *, mask=None, validation_data=None):
        """Train for ``epochs`` passes over shuffled mini-batches; returns ``self``.

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features) — for DeepSets (n_examples, n_objects, n_features)
        y : ndarray of shape (n_examples,) — labels, or targets (n_examples, n_outputs) for regression
        sample_weight : ndarray of shape (n_examples,), optional
        mask : ndarray of shape (n_examples, n_objects), optional (DeepSets: 1 = real object;
            default: objects with any non-zero feature)
        validation_data : tuple (X_val, y_val[, w_val[, mask_val]]) — its loss per epoch goes
            to ``history_["val_loss"]``

        ``history_["loss"]`` holds, per epoch, the weighted mean of the batch losses (each
        batch weighted by its Σw), i.e. Q over the epoch's examples as the weights saw them.
        """
        self.build(X, y)
        X, mask = self._check_X(X, mask)
        y, w = self._check_y_w(y, sample_weight, len(X))
        w = np.ones(len(X)) if w is None else w
        if validation_data is not None:
            self.history_["val_loss"] = []
        order_rng = np.random.default_rng([self.seed, 2])
        for epoch in range(self.epochs):
            order = order_rng.permutation(len(X)) if self.shuffle else np.arange(len(X))
            total, weight = 0.0, 0.0
            for start in range(0, len(X), self.batch_size):
                idx = order[start : start + self.batch_size]
                if w[idx].sum() <= 0:
                    continue
                batch_loss = self.train_step(X[idx], y[idx], w[idx], mask_batch=None if mask is None else mask[idx])
                total += batch_loss * w[idx].sum()
                weight += w[idx].sum()
            self.history_["loss"].append(total / weight)
            if validation_data is not None:
                X_val, y_val, *rest = validation_data
                w_val, mask_val = (list(rest) + [None, None])[:2]
                self.history_["val_loss"].append(self.evaluate_loss(X_val, y_val, w_val, mask=mask_val))
            if self.verbose:
                print(f"epoch {epoch + 1}/{self.epochs}: loss {self.history_['loss'][-1]:.6g}")
        return self

    # -- prediction -----------------------------------------------------------------------
    def _outputs(self, X, mask) -> np.ndarray:
        """Network outputs (n_examples, n_outputs) in evaluation mode, a chunk at a time.

        A chunk holds at most 65,536 values per feature (examples × objects), so a large test or
        validation set never builds one huge graph: memory stays that of a few batches.
        """
        self.network_.eval()
        rows = max(64, (1 << 16) // (X.shape[1] if X.ndim == 3 else 1))
        chunks = []
        for start in range(0, len(X), rows):
            sl = slice(start, start + rows)
            out = self._forward(X[sl], None if mask is None else mask[sl])
            chunks.append(to_numpy(out.data))
            out.release_graph()  # no backward at inference: free the chunk's activations now
        return np.concatenate(chunks) if chunks else np.zeros((0, self.n_outputs_), dtype=self.dtype)

    def decision_function(self, X, *, mask=None) -> np.ndarray:
        """Raw network outputs (logits); shape (n_examples,) for one output."""
        self._check_built()
        X, mask = self._check_X(X, mask)
        out = self._outputs(X, mask)
        return out[:, 0] if self.n_outputs_ == 1 and (self.task == "classification" or self._y_1d) else out

    def predict_proba(self, X, *, mask=None) -> np.ndarray:
        """Class probabilities, shape (n_examples, n_classes), columns in ``classes_`` order."""
        self._check_built()
        if self.task != "classification":
            raise ConfigError(
                f"predict_proba is for classification; this {type(self).__name__} has task='regression'", "use predict"
            )
        z = self.decision_function(X, mask=mask)
        if len(self.classes_) == 2:
            p = to_numpy(Tensor(z, requires_grad=False).sigmoid().data)
            return np.column_stack([1 - p, p])
        return to_numpy(Tensor(z, requires_grad=False).softmax(axis=-1).data)

    def predict(self, X, *, mask=None) -> np.ndarray:
        """Predicted class labels (classification) or outputs (regression)."""
        self._check_built()
        if self.task == "classification":
            return self.classes_[np.argmax(self.predict_proba(X, mask=mask), axis=1)]
        return self.decision_function(X, mask=mask)

    def evaluate_loss(self, X, y, sample_weight=None, *, mask=None) -> float:
        """Q on (X, y) in evaluation mode (no dropout): the weighted mean loss."""
        self._check_built()
        X, mask = self._check_X(X, mask)
        y, w = self._check_y_w(y, sample_weight, len(X))
        logits = self._tensor(self._outputs(X, mask))
        return float(self.loss_(logits, self.xp_.asarray(self._encode_y(y)), w).data)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Weights as ``{name: ndarray}`` in the scheme of this module's docstring."""
        self._check_built()
        return self.network_.get_weights()

    def set_weights(self, weights: dict) -> None:
        """Load weights (same names and shapes as ``get_weights``), e.g. from another framework."""
        self._check_built()
        self.network_.set_weights(weights)


class MLP(_NetworkEstimator):
    """Feed-forward network ŷ = w^T g(W x) (and deeper), trained by backpropagation.

    Parameters (keyword-only, stored unchanged; validated in ``fit``)
    ----------------------------------------------------------------
    hidden_sizes : tuple of int — widths of the hidden layers, e.g. (64, 64)
    task : 'classification' (1 sigmoid output for two classes, softmax for more) or 'regression'
    activation : 'relu', 'tanh', 'sigmoid' or 'linear'
    dropout : float — dropout rate after each hidden activation
    init : 'auto' (He for ReLU, Glorot otherwise; Glorot for the output) or a scheme name
    optimizer : 'sgd', 'adam' or 'adamw'; learning_rate, momentum, nesterov (SGD),
        beta_1, beta_2, epsilon (Adam), weight_decay (L2 for sgd/adam, decoupled for adamw)
    batch_size, epochs, shuffle, seed, dtype ('float32'/'float64'), device ('cpu'/'gpu'), verbose

    Attributes
    ----------
    network_, optimizer_, classes_, n_features_in_, n_outputs_, history_
    """

    def __init__(self, *, hidden_sizes=(64, 64), task="classification", activation="relu", dropout=0.0, init="auto",
                 optimizer="adam", learning_rate=1e-3, momentum=0.9, nesterov=False, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, weight_decay=0.0, batch_size=256, epochs=10, shuffle=True, seed=0, dtype="float32",
                 device="cpu", verbose=False):
        self.hidden_sizes, self.task, self.activation, self.dropout, self.init = hidden_sizes, task, activation, dropout, init
        self.optimizer, self.learning_rate, self.momentum, self.nesterov = optimizer, learning_rate, momentum, nesterov
        self.beta_1, self.beta_2, self.epsilon, self.weight_decay = beta_1, beta_2, epsilon, weight_decay
        self.batch_size, self.epochs, self.shuffle, self.seed = batch_size, epochs, shuffle, seed
        self.dtype, self.device, self.verbose = dtype, device, verbose

    def _init_weights(self, n_features, n_outputs):
        return init_mlp_weights(
            n_features, tuple(self.hidden_sizes), n_outputs,
            seed=self.seed, activation=self.activation, init=self.init, dtype=self.dtype,
        )  # fmt: skip

    def _make_network(self, weights):
        return MLPNet(
            weights, activation=self.activation, dropout=self.dropout, rng=self._dropout_rng, dtype=self.dtype, xp=self.xp_
        )


class DeepSets(_NetworkEstimator):
    """DeepSets / Particle-Flow Network for sets of objects (particles, tracks, jets).

    ŷ = F( Σ_j m_j Φ(x_j) ) on padded input X (n_examples, n_objects, n_features) with mask m
    (1 = real object). Parameters as :class:`MLP`, with ``phi_sizes`` (Φ widths, the last is
    the latent size), ``f_sizes`` (F hidden widths) and ``pool`` ('sum' or 'mean').
    """

    _input_ndim = 3

    def __init__(self, *, phi_sizes=(64, 64), f_sizes=(64,), pool="sum", task="classification", activation="relu",
                 dropout=0.0, init="auto", optimizer="adam", learning_rate=1e-3, momentum=0.9, nesterov=False,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0, batch_size=256, epochs=10, shuffle=True,
                 seed=0, dtype="float32", device="cpu", verbose=False):
        self.phi_sizes, self.f_sizes, self.pool = phi_sizes, f_sizes, pool
        self.task, self.activation, self.dropout, self.init = task, activation, dropout, init
        self.optimizer, self.learning_rate, self.momentum, self.nesterov = optimizer, learning_rate, momentum, nesterov
        self.beta_1, self.beta_2, self.epsilon, self.weight_decay = beta_1, beta_2, epsilon, weight_decay
        self.batch_size, self.epochs, self.shuffle, self.seed = batch_size, epochs, shuffle, seed
        self.dtype, self.device, self.verbose = dtype, device, verbose

    def _init_weights(self, n_features, n_outputs):
        return init_deepsets_weights(n_features, tuple(self.phi_sizes), tuple(self.f_sizes), n_outputs, seed=self.seed,
                                     activation=self.activation, init=self.init, dtype=self.dtype)

    def _make_network(self, weights):
        return DeepSetsNet(
            weights, activation=self.activation, pool=self.pool, dropout=self.dropout,
            rng=self._dropout_rng, dtype=self.dtype, xp=self.xp_,
        )  # fmt: skip
