"""The PyTorch adapter: MLP, DeepSets and a small transformer as ``torch.nn`` modules.

The networks are written so that their parameters map one to one onto the shared weight names
(:mod:`hepml.models`): a ``torch.nn.Linear`` holds ``weight = kernel.T`` and ``bias``, a LayerNorm
``weight = gamma`` and ``bias = beta``, a BatchNorm also its running statistics (``moving_mean``,
``moving_var``). Initial weights come from :func:`hepml.models.initial_weights` (drawn in NumPy), the
optimisers are ``torch.optim`` SGD / Adam / AdamW with the TrainSpec values, and the loss is the
weighted mean Σ w_i L_i / Σ w_i of BCE-with-logits (two classes) or cross-entropy (more), so that a
float64 run follows the NumPy core step by step.

Choices every framework must share (the Keras adapter uses the same numbers):

- activation after every Φ layer of DeepSets, pooled with the mask (mean: divided by max(n, 1));
- transformer: pre-LayerNorm blocks ``h += o(attn(ln1(h)))``, ``h += ff_1(relu(ff_0(ln2(h))))``,
  attention with explicit q/k/v/o projections, scores q·k/√(dim/heads), padded keys masked out;
  then ``final_ln``, masked mean pooling and the head MLP (ReLU); LayerNorm ε = :data:`LN_EPSILON`;
- batch norm (MLP): after each hidden Dense, before the activation, ε = :data:`BN_EPSILON`, running
  statistics updated as ``m ← (1 − BN_MOMENTUM) m + BN_MOMENTUM x̄`` (torch's convention);
- dropout after each hidden activation (not after the last Φ layer), and on both residual branches
  of a transformer block. Its masks come from a ``torch.Generator`` owned by the adapter and seeded
  from ``train.seed``, so a run is reproducible whatever else uses torch's global random state, and the
  generator state travels with the optimiser state (a resumed run draws the same masks).
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..atomic import atomic_path
from ..npz import read_npz, write_npz
from ..errors import DataError, DeviceError, FrameworkError
from .base import Adapter, Batch, n_outputs, predict_rows, resolve_device

LN_EPSILON = 1e-5
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.01
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


# ============================================================================= building blocks
class _Dropout(nn.Module):
    """Inverted dropout with the adapter's own generator: zero with probability ``rate``, scale by 1/(1 − rate)."""

    def __init__(self, rate: float, generator_holder: dict):
        super().__init__()
        self.rate = float(rate)
        self._holder = generator_holder  # {"gen": torch.Generator}; a dict so nn.Module does not try to register it

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        keep = torch.rand(x.shape, generator=self._holder["gen"], device=x.device) >= self.rate
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.rate))


class _DenseStack(nn.Module):
    """Dense → [BatchNorm] → g → [Dropout] → ... → Dense; ``final_activation`` also applies g at the end.

    The layers run as one ``nn.Sequential`` (no Python branching per step); ``dense`` and ``bn`` are plain
    lists pointing at the same modules, for the weight names.
    """

    def __init__(self, sizes, *, activation="relu", dropout=0.0, batch_norm=False, final_activation=False, holder=None):
        super().__init__()
        self.dense = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.bn = [nn.BatchNorm1d(b, eps=BN_EPSILON, momentum=BN_MOMENTUM) for b in sizes[1:-1]] if batch_norm else []
        layers = []
        for i, layer in enumerate(self.dense):
            hidden = i < len(self.dense) - 1
            layers.append(layer)
            if hidden and batch_norm:
                layers.append(self.bn[i])
            if (hidden or final_activation) and activation != "linear":
                layers.append(_ACTIVATIONS[activation]())
            if hidden and dropout > 0:
                layers.append(_Dropout(dropout, holder))
        self.seq = nn.Sequential(*layers)

    def forward(self, x):
        return self.seq(x)

    def named_weights(self, prefix):
        for i, layer in enumerate(self.dense):
            yield f"{prefix}dense_{i}/kernel", layer.weight, "kernel"
            yield f"{prefix}dense_{i}/bias", layer.bias, "vector"
        for i, bn in enumerate(self.bn):
            yield f"bn_{i}/gamma", bn.weight, "vector"
            yield f"bn_{i}/beta", bn.bias, "vector"
            yield f"bn_{i}/moving_mean", bn.running_mean, "buffer"
            yield f"bn_{i}/moving_var", bn.running_var, "buffer"


def _masked_pool(h, mask, mean: bool):
    """Σ_j m_j h_j over the objects (or divided by max(Σ_j m_j, 1)): padding contributes nothing."""
    m = mask.unsqueeze(-1)
    if mean:
        m = m / torch.clamp(m.sum(dim=1, keepdim=True), min=1.0)
    return (h * m).sum(dim=1)


class _MLPNet(nn.Module):
    def __init__(self, spec, n_in, n_out, holder):
        super().__init__()
        self.net = _DenseStack((n_in, *spec.hidden, n_out), activation=spec.activation, dropout=spec.dropout,
                               batch_norm=spec.batch_norm, holder=holder)

    def forward(self, x):
        return self.net(x)

    def named_weights(self):
        yield from self.net.named_weights("")


class _DeepSetsNet(nn.Module):
    """F(pool_j Φ(x_j)) with the activation after every Φ layer (as the NumPy core)."""

    def __init__(self, spec, n_in, n_out, holder):
        super().__init__()
        self.mean = spec.pool == "mean"
        self.phi = _DenseStack((n_in, *spec.phi), activation=spec.activation, dropout=spec.dropout, final_activation=True, holder=holder)
        self.f = _DenseStack((spec.phi[-1], *spec.f, n_out), activation=spec.activation, dropout=spec.dropout, holder=holder)

    def forward(self, x, mask):
        return self.f(_masked_pool(self.phi(x), mask, self.mean))

    def named_weights(self):
        yield from self.phi.named_weights("phi/")
        yield from self.f.named_weights("f/")


class _Block(nn.Module):
    """Pre-LN encoder block: h + o(MultiHead(ln1 h)), then h + ff_1(relu(ff_0(ln2 h)))."""

    def __init__(self, dim, heads, ff, dropout, holder):
        super().__init__()
        self.heads, self.scale = heads, 1.0 / math.sqrt(dim // heads)
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=LN_EPSILON), nn.LayerNorm(dim, eps=LN_EPSILON)
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.ff_0, self.ff_1 = nn.Linear(dim, ff), nn.Linear(ff, dim)
        self.drop = _Dropout(dropout, holder) if dropout > 0 else None

    def _heads(self, t):  # (b, n, dim) -> (b, heads, n, dim/heads)
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, h, keep):
        a = self.ln1(h)
        q, k, v = self._heads(self.q(a)), self._heads(self.k(a)), self._heads(self.v(a))
        scores = (q @ k.transpose(-2, -1)) * self.scale  # (b, heads, n_query, n_key)
        scores = scores.masked_fill(~keep[:, None, None, :], torch.finfo(scores.dtype).min)
        att = torch.softmax(scores, dim=-1) @ v
        a = self.o(att.transpose(1, 2).flatten(2))
        h = h + (self.drop(a) if self.drop is not None else a)
        f = self.ff_1(torch.relu(self.ff_0(self.ln2(h))))
        return h + (self.drop(f) if self.drop is not None else f)

    def named_weights(self, p):
        for ln in ("ln1", "ln2"):
            yield f"{p}{ln}/gamma", getattr(self, ln).weight, "vector"
            yield f"{p}{ln}/beta", getattr(self, ln).bias, "vector"
        for proj in ("q", "k", "v", "o"):
            yield f"{p}attn/{proj}/kernel", getattr(self, proj).weight, "kernel"
            yield f"{p}attn/{proj}/bias", getattr(self, proj).bias, "vector"
        for i, layer in enumerate((self.ff_0, self.ff_1)):
            yield f"{p}ff/dense_{i}/kernel", layer.weight, "kernel"
            yield f"{p}ff/dense_{i}/bias", layer.bias, "vector"


class _TransformerNet(nn.Module):
    """embed → pre-LN blocks (padded keys masked) → final_ln → masked mean over objects → head MLP."""

    def __init__(self, spec, n_in, n_out, holder):
        super().__init__()
        self.embed = nn.Linear(n_in, spec.dim)
        self.blocks = nn.ModuleList(_Block(spec.dim, spec.heads, spec.ff, spec.dropout, holder) for _ in range(spec.layers))
        self.final_ln = nn.LayerNorm(spec.dim, eps=LN_EPSILON)
        self.head = _DenseStack((spec.dim, *spec.head, n_out), activation="relu", dropout=spec.dropout, holder=holder)

    def forward(self, x, mask):
        keep = mask > 0.5
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, keep)
        return self.head(_masked_pool(self.final_ln(h), mask.to(h.dtype), mean=True))

    def named_weights(self):
        yield "embed/kernel", self.embed.weight, "kernel"
        yield "embed/bias", self.embed.bias, "vector"
        for b, block in enumerate(self.blocks):
            yield from block.named_weights(f"block_{b}/")
        yield "final_ln/gamma", self.final_ln.weight, "vector"
        yield "final_ln/beta", self.final_ln.bias, "vector"
        yield from self.head.named_weights("head/")


_NETS = {"mlp": _MLPNet, "deepsets": _DeepSetsNet, "transformer": _TransformerNet}


class _Proba(nn.Module):
    """The network followed by σ (two columns 1 − p, p) or softmax: what ONNX files output."""

    def __init__(self, net, binary: bool):
        super().__init__()
        self.net, self.binary = net, binary

    def forward(self, *inputs):
        z = self.net(*inputs)
        if self.binary:
            p = torch.sigmoid(z)
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(z, dim=1)


# ============================================================================= files
# ============================================================================= the adapter
class TorchAdapter(Adapter):
    """MLP / DeepSets / transformer in PyTorch, weights in the shared naming scheme."""

    name = "torch"
    kinds = ("mlp", "deepsets", "transformer")

    # -- building ------------------------------------------------------------------------------------
    def _build(self) -> None:
        from ..models import initial_weights

        t = self.train
        self.device = resolve_device(self.device, "torch", available=torch.cuda.device_count())
        if self.device == "mps" and not torch.backends.mps.is_available():
            raise DeviceError("device 'mps' was asked for but torch sees no Apple GPU", "use --device cpu")
        if self.device == "mps" and t.dtype == "float64":
            raise DeviceError("device 'mps' has no float64", "use dtype: float32 on mps, or --device cpu")
        self._dev = torch.device(self.device)
        self._dtype = torch.float64 if t.dtype == "float64" else torch.float32
        self._np_dtype = np.dtype(t.dtype)
        self._check_precision()
        self._binary = n_outputs(self.n_classes) == 1
        self._set_input = self.spec.kind in ("deepsets", "transformer")
        self._gen = {"gen": torch.Generator(device=self._dev)}
        self._gen["gen"].manual_seed(int(t.seed))
        net = _NETS[self.spec.kind](self.spec, self.n_features, n_outputs(self.n_classes), self._gen)
        self.model = net.to(device=self._dev, dtype=self._dtype)
        self._named = list(self.model.named_weights())
        self._params = [(n, p, kind) for n, p, kind in self._named if kind != "buffer"]
        self.set_weights(initial_weights(self.spec, self.n_features, self.n_classes, seed=t.seed, dtype=t.dtype))
        self.optimizer = self._make_optimizer()
        self._scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None

    def _check_precision(self) -> None:
        p = self.precision
        if p not in ("fp32", "bf16", "fp16"):
            raise FrameworkError(f"unknown precision {p!r}", "use fp32, bf16 or fp16")
        if p == "fp32":
            return
        if self._dtype == torch.float64:
            raise FrameworkError(f"mixed precision {p} with dtype float64 makes no sense", f"use dtype: float32 with --precision {p}, or --precision fp32")
        if p == "fp16" and self._dev.type != "cuda":
            raise FrameworkError(f"precision fp16 needs a CUDA GPU (loss scaling); the device is {self.device!r}", "use --precision bf16 on CPU, or --device cuda")
        if p == "bf16" and self._dev.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise FrameworkError(f"precision bf16 is not supported by the GPU {torch.cuda.get_device_name(self._dev)!r}", "use --precision fp16")

    def _make_optimizer(self):
        t = self.train
        params = [p for _, p, _ in self._params]
        if t.optimizer == "sgd":
            return torch.optim.SGD(params, lr=t.learning_rate, momentum=t.momentum, nesterov=t.nesterov, weight_decay=t.weight_decay)
        cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        return cls(params, lr=t.learning_rate, betas=(t.beta1, t.beta2), eps=t.epsilon, weight_decay=t.weight_decay)

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self._dev.type, dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)

    # -- weights -------------------------------------------------------------------------------------
    def get_weights(self) -> dict:
        """``{name: ndarray}``; kernels in (in, out) orientation (torch's ``weight.T``)."""
        out = {}
        for name, t, kind in self._named:
            a = t.detach().cpu().numpy()
            out[name] = np.array(a.T if kind == "kernel" else a)
        return out

    def set_weights(self, weights: dict) -> None:
        """Load weights with exactly the names and shapes of :meth:`get_weights`."""
        names = [n for n, _, _ in self._named]
        missing, unexpected = [n for n in names if n not in weights], sorted(set(weights) - set(names))
        if missing or unexpected:
            raise FrameworkError(
                f"torch {self.spec.kind}: weights missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}",
                "pass weights drawn for this model spec (hepml.models.initial_weights or another adapter's get_weights)",
            )
        arrays = []
        for name, t, kind in self._named:  # every shape is checked before anything is overwritten
            a = np.asarray(weights[name])
            a = a.T if kind == "kernel" else a
            if a.shape != tuple(t.shape):
                want = tuple(t.shape)[::-1] if kind == "kernel" else tuple(t.shape)
                raise FrameworkError(f"weight {name} has shape {np.shape(weights[name])}, the model needs {want}", "pass weights drawn for this model spec")
            arrays.append(a)
        with torch.no_grad():
            for (_, t, _), a in zip(self._named, arrays):
                t.copy_(torch.from_numpy(np.ascontiguousarray(a)).to(dtype=t.dtype))

    # -- optimiser -----------------------------------------------------------------------------------
    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = float(lr)

    def optimizer_state(self) -> dict:
        """``{state/weight_name: ndarray}`` (kernels' state in (in, out) orientation), the dropout generator, the loss scale."""
        out = {}
        for name, p, kind in self._params:
            for key, value in self.optimizer.state.get(p, {}).items():
                a = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
                out[f"{key}/{name}"] = np.array(a.T if kind == "kernel" and a.ndim == 2 else a)
        out["rng/dropout"] = self._gen["gen"].get_state().numpy().copy()
        if self._scaler is not None:
            s = self._scaler.state_dict()
            out["scaler/scale"], out["scaler/growth_tracker"] = np.asarray(s.get("scale", 65536.0)), np.asarray(s.get("_growth_tracker", 0))
        return out

    def load_optimizer_state(self, state: dict) -> None:
        """Restore :meth:`optimizer_state` (e.g. from a checkpoint) into this freshly built adapter."""
        by_name = {n: (i, p, kind) for i, (n, p, kind) in enumerate(self._params)}
        per = {}
        for key, value in state.items():
            if key.startswith(("rng/", "scaler/")):
                continue
            sk, _, name = key.partition("/")
            if name not in by_name:
                raise FrameworkError(f"optimizer state entry {key!r} names no weight of this torch {self.spec.kind}", "load the state saved with this model")
            i, p, kind = by_name[name]
            a = np.asarray(value)
            a = a.T if kind == "kernel" and a.ndim == 2 else a
            if sk == "step":
                per.setdefault(i, {})[sk] = torch.tensor(float(a), dtype=torch.float32)
            else:
                if a.shape != tuple(p.shape):
                    raise FrameworkError(f"optimizer state {key!r} has shape {np.shape(value)}, the weight {tuple(p.shape)}", "load the state saved with this model")
                per.setdefault(i, {})[sk] = torch.from_numpy(np.ascontiguousarray(a)).to(device=p.device, dtype=p.dtype)
        sd = self.optimizer.state_dict()
        sd["state"] = per
        self.optimizer.load_state_dict(sd)
        if "rng/dropout" in state:
            self._gen["gen"].set_state(torch.from_numpy(np.asarray(state["rng/dropout"], dtype=np.uint8).copy()))
        if self._scaler is not None and "scaler/scale" in state:
            s = self._scaler.state_dict() or {}
            s.update(scale=float(state["scaler/scale"]), _growth_tracker=int(state["scaler/growth_tracker"]))
            self._scaler.load_state_dict(s)

    # -- batches -------------------------------------------------------------------------------------
    def _tensor(self, a, dtype=None):
        """A NumPy array as a tensor of the compute dtype on the device (no copy when it already is one)."""
        a = np.asarray(a, dtype=dtype or self._np_dtype, order="C")  # NumPy converts dtypes cheaper than torch
        t = torch.from_numpy(a)
        return t if self._dev.type == "cpu" else t.to(self._dev, non_blocking=True)

    def _inputs(self, batch: Batch) -> tuple:
        if self._set_input:
            if batch.set is None:
                raise DataError(f"torch {self.spec.kind} needs a padded object set; the batch has only flat features", "use an 'objects' group with 'as: set' in the task")
            s = batch.set
            if s.ndim != 3 or s.shape[-1] != self.n_features:
                raise DataError(f"object set of shape {s.shape}; the model was built for (n, N, {self.n_features})", "use the features the model was built with")
            mask = batch.mask if batch.mask is not None else np.any(s != 0, axis=-1)
            return self._tensor(s), self._tensor(mask)
        if batch.X is None:
            raise DataError(f"torch {self.spec.kind} needs flat features; the batch has only an object set", "use inputs: flatten_set in the model spec")
        if batch.X.ndim != 2 or batch.X.shape[1] != self.n_features:
            raise DataError(f"features of shape {batch.X.shape}; the model was built for (n, {self.n_features})", "use the features the model was built with")
        return (self._tensor(batch.X),)

    def _targets(self, batch: Batch):
        y = np.asarray(batch.y)
        if len(y) and (y.min() < 0 or y.max() >= self.n_classes):
            raise DataError(f"class labels must be 0..{self.n_classes - 1}; received {sorted(set(np.unique(y).tolist()))[:10]}", "encode the labels as class indices")
        w = np.asarray(batch.w)
        if not float(w.sum()) > 0:
            raise DataError(f"the example weights of a batch sum to {float(w.sum())}", "use non-negative weights with a positive sum")
        return self._tensor(y, None if self._binary else np.int64), self._tensor(w)

    def _loss(self, z, y, w):
        """Q = Σ w_i L_i / Σ w_i with L the BCE-with-logits (1 output) or the cross-entropy."""
        z = z.to(self._dtype)
        per = F.binary_cross_entropy_with_logits(z[:, 0], y, reduction="none") if self._binary else F.cross_entropy(z, y, reduction="none")
        return (per * w).sum() / w.sum()

    # -- training ------------------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> float:
        """Forward (autocast if mixed precision), weighted loss, backward, clip the global norm, step."""
        inputs = self._inputs(batch)
        y, w = self._targets(batch)
        if not self.model.training:  # recursing over the modules every step costs more than the check
            self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            z = self.model(*inputs)
        loss = self._loss(z, y, w)
        self.backward_step(loss)
        return float(loss.detach())

    def backward_step(self, loss) -> None:
        """Backward (scaled for fp16), clip the global gradient norm, optimiser step (DDP reuses it)."""
        clip = self.train.clip_grad_norm
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
            if clip is not None:
                self._scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self._scaler.step(self.optimizer)
            self._scaler.update()
        else:
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()

    # -- inference -----------------------------------------------------------------------------------
    def _logits(self, batch: Batch):
        """Logits in inference mode, :func:`predict_rows` examples at a time (only a chunk is on the device)."""
        if self.model.training:
            self.model.eval()
        chunks, rows = [], predict_rows(batch)
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(batch), rows):
                part = slice(start, start + rows)
                pick = lambda a: None if a is None else a[part]  # noqa: E731
                inputs = self._inputs(Batch(X=pick(batch.X), set=pick(batch.set), mask=pick(batch.mask), y=batch.y[part], w=batch.w[part]))
                chunks.append(self.model(*inputs).to(self._dtype))
        return torch.cat(chunks) if chunks else torch.zeros((0, n_outputs(self.n_classes)), dtype=self._dtype, device=self._dev)

    def predict_proba(self, batch: Batch) -> np.ndarray:
        """(n, n_classes): [1 − σ(z), σ(z)] for two classes, softmax(z) for more; no dropout, running BN statistics."""
        z = self._logits(batch)
        if self._binary:
            p = torch.sigmoid(z)
            proba = torch.cat([1 - p, p], dim=1)
        else:
            proba = torch.softmax(z, dim=1)
        return proba.cpu().numpy()

    def loss(self, batch: Batch) -> float:
        """Weighted-mean loss from the logits in inference mode (the validation loss)."""
        z = self._logits(batch)
        y, w = self._targets(batch)
        with torch.inference_mode():
            return float(self._loss(z, y, w))

    # -- files ---------------------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {"framework": "torch", "kind": self.spec.kind, "n_features": self.n_features, "n_classes": self.n_classes,
                "dtype": self.train.dtype, "weights": sorted(n for n, _, _ in self._named)}

    def save(self, folder) -> None:
        """``weights.npz`` (shared names), ``optimizer.npz`` and ``torch_model.json`` in ``folder``; no pickle."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, arrays in (("weights.npz", self.get_weights()), ("optimizer.npz", self.optimizer_state())):
            write_npz(folder / name, arrays)
        with atomic_path(folder / "torch_model.json") as tmp:
            tmp.write_text(json.dumps(self._meta(), indent=1))

    def load(self, folder) -> None:
        folder = Path(folder)
        meta_file = folder / "torch_model.json"
        if not meta_file.is_file():
            raise FrameworkError(f"{folder} holds no torch model (no torch_model.json)", "load a folder written by the torch adapter's save()")
        meta, mine = json.loads(meta_file.read_text()), self._meta()
        for key in ("kind", "n_features", "n_classes", "weights"):
            if meta.get(key) != mine[key]:
                shown = "names differ" if key == "weights" else f"{meta.get(key)!r} there, {mine[key]!r} here"
                raise FrameworkError(f"the saved torch model in {folder} does not match this one: {key} {shown}", "build the adapter with the saved model's spec")
        self.set_weights(read_npz(folder / "weights.npz", what="torch weights"))
        if (folder / "optimizer.npz").is_file():
            self.load_optimizer_state(read_npz(folder / "optimizer.npz", what="torch optimiser state"))

    def export_onnx(self, path) -> None:
        """ONNX file with inputs ``x`` (flat) or ``set`` + ``mask``, output ``proba``; batch (and object) axes dynamic."""
        wrapper = _Proba(self.model, self._binary)
        if self._set_input:
            args = (torch.zeros((2, 3, self.n_features), dtype=self._dtype, device=self._dev), torch.ones((2, 3), dtype=self._dtype, device=self._dev))
            names, axes = ["set", "mask"], {"set": {0: "batch", 1: "objects"}, "mask": {0: "batch", 1: "objects"}}
        else:
            args = (torch.zeros((2, self.n_features), dtype=self._dtype, device=self._dev),)
            names, axes = ["x"], {"x": {0: "batch"}}
        axes["proba"] = {0: "batch"}
        was_training = self.model.training
        self.model.eval()
        try:
            with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
                torch.onnx.export(wrapper, args, str(tmp), input_names=names, output_names=["proba"], dynamic_axes=axes,
                                  opset_version=17, dynamo=False)
        finally:
            self.model.train(was_training)


ADAPTER = TorchAdapter
