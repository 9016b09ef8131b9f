"""The one shape every framework adapter has, and what they share (batches, devices, weights).

An adapter wraps one framework's model built from a framework-neutral spec
(:mod:`hepml.models.spec`). Neural-network adapters are driven step by step by the shared trainer
(:mod:`hepml.train`), which feeds every framework the same NumPy batches in the same order; tree
adapters (XGBoost, core GBDT) fit the whole training set at once.

Conventions every adapter follows:

- inputs arrive as a :class:`Batch` of NumPy arrays; ``predict_proba`` returns (n, n_classes)
  probabilities in class order (binary tasks too: two columns);
- binary tasks have one output logit z with p(class 1) = σ(z) and binary cross-entropy;
  multiclass tasks have C logits, softmax and cross-entropy;
- the loss of a batch is the weighted mean Σ w_i L_i / Σ w_i (no other reduction anywhere);
- weights are exchanged as ``{name: ndarray}`` in the scheme of :mod:`hepml.core.mlp`
  (``dense_i/kernel`` in Keras orientation (in, out), ``dense_i/bias``; DeepSets ``phi/...``, ``f/...``);
- the learning rate of each epoch comes from :meth:`TrainSpec.learning_rate_at` via
  :meth:`Adapter.set_learning_rate`, so schedules are identical across frameworks.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np

from ..errors import DeviceError, FrameworkError

#: framework name → adapter module (imported only when used, so `hepml --help` stays fast)
FRAMEWORKS = {
    "core": "hepml.frameworks.numpy_core",
    "torch": "hepml.frameworks.torch",
    "keras": "hepml.frameworks.keras",
    "xgboost": "hepml.frameworks.xgboost",
}
ALIASES = {"numpy": "core", "numpy_core": "core", "pytorch": "torch", "xgb": "xgboost", "tf": "keras"}


@dataclass
class Batch:
    """One batch of examples as NumPy arrays.

    Attributes
    ----------
    X : ndarray of shape (b, n_features) or None — flat features
    set : ndarray of shape (b, N, k) or None — padded objects (DeepSets, transformer)
    mask : ndarray of shape (b, N) or None — 1 for a real object, 0 for padding
    y : ndarray of shape (b,) int — class index
    w : ndarray of shape (b,) — per-example weight
    """

    X: Optional[np.ndarray]
    set: Optional[np.ndarray]
    mask: Optional[np.ndarray]
    y: np.ndarray
    w: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


PREDICT_VALUES = 1 << 16  # examples × objects per inference chunk


def predict_rows(batch: "Batch") -> int:
    """Examples per inference chunk: 65,536 flat examples, fewer when each carries N objects.

    Inference (test and train predictions, validation losses) runs chunk by chunk so that memory
    stays bounded: a 60k-jet training set of 100 constituents through a 64-wide layer in float64
    is 3 GB per activation in one piece, 34 MB per chunk (655 jets) here.
    """
    n_objects = batch.set.shape[1] if batch.set is not None and batch.set.ndim == 3 else 1
    return max(64, PREDICT_VALUES // max(n_objects, 1))


def input_kind(spec) -> str:
    """``flat`` for MLP/BDT on X, ``set`` for models over the (N, k) objects."""
    if spec.kind in ("deepsets", "transformer"):
        return "set"
    if spec.kind == "mlp" and spec.inputs == "flatten_set":
        return "flatten_set"
    return "flat"


def set_name(spec, dataset) -> str:
    """The object set a set model reads: the spec's ``set``, or the dataset's only one."""
    names = list(dataset.sets)
    if getattr(spec, "set", None):
        if spec.set not in names:
            raise FrameworkError(f"model set {spec.set!r} is not in the task's object sets {names}", "name one of them in the model spec's 'set:'")
        return spec.set
    if len(names) != 1:
        raise FrameworkError(
            f"model {spec.kind!r} needs one object set; the task has {names or 'none'}",
            "add an 'objects' group with 'as: set' to the task, or name it with 'set:' in the model spec",
        )
    return names[0]


def make_batch(dataset, index, spec, dtype=np.float32) -> Batch:
    """The examples ``index`` of ``dataset`` as the model's inputs (flat, set, or flattened set)."""
    kind = input_kind(spec)
    X = s = m = None
    if kind == "flat":
        X = dataset.X[index].astype(dtype, copy=False)
    else:
        name = set_name(spec, dataset)
        s = dataset.sets[name][index].astype(dtype, copy=False)
        m = dataset.masks[name][index].astype(dtype)
        if kind == "flatten_set":
            X, s, m = s.reshape(len(s), -1), None, None
    return Batch(X=X, set=s, mask=m, y=dataset.y[index], w=dataset.weights[index].astype(dtype))


def n_inputs(spec, dataset) -> int:
    """Features per example (flat) or per object (set) that the model's first layer sees."""
    kind = input_kind(spec)
    if kind == "flat":
        return dataset.n_features
    s = dataset.sets[set_name(spec, dataset)]
    return int(np.prod(s.shape[1:])) if kind == "flatten_set" else s.shape[-1]


def n_outputs(n_classes: int) -> int:
    """One logit for two classes (σ), C logits for C > 2 (softmax)."""
    return 1 if n_classes == 2 else n_classes


class Adapter(ABC):
    """One framework's model: same methods in every framework.

    Subclasses set ``name`` and ``kinds`` (model kinds they build) and implement the abstract
    methods; ``iterative`` adapters are trained by :meth:`train_step` on batches, the others by
    :meth:`fit_full` on the whole training set.
    """

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple] = ()
    iterative: ClassVar[bool] = True

    def __init__(self, spec, train, *, n_features: int, n_classes: int, device: str = "cpu", precision: str = "fp32"):
        self.spec, self.train, self.n_features, self.n_classes = spec, train, n_features, n_classes
        self.device, self.precision = device, precision

    @classmethod
    def build(cls, spec, n_features: int, n_classes: int, *, train=None, device: str = "cpu", precision: str = "fp32"):
        """Build the model for ``n_features`` inputs (per object for set models) and ``n_classes``."""
        from ..models.spec import TrainSpec

        cls.check_kind(spec)
        self = cls(spec, train or TrainSpec(), n_features=n_features, n_classes=n_classes, device=device, precision=precision)
        self._build()
        return self

    @classmethod
    def check_kind(cls, spec) -> None:
        """FrameworkError unless this framework builds ``spec.kind`` (checked before any data is read)."""
        if spec.kind not in cls.kinds:
            raise FrameworkError(
                f"framework {cls.name!r} cannot build model {spec.kind!r}", f"{cls.name} builds: {', '.join(cls.kinds)}"
            )

    @abstractmethod
    def _build(self) -> None:
        """Create the model (and optimiser) with weights from :func:`hepml.models.initial_weights`."""

    # -- weights ---------------------------------------------------------------------------------
    def get_weights(self) -> dict:
        """``{name: ndarray}`` in the shared naming scheme (see the module docstring)."""
        raise FrameworkError(f"{self.name} models have no weight arrays", "use save()/load()")

    def set_weights(self, weights: dict) -> None:
        raise FrameworkError(f"{self.name} models have no weight arrays", "use save()/load()")

    # -- training ----------------------------------------------------------------------------------
    def set_learning_rate(self, lr: float) -> None:
        """Set the optimiser's learning rate (called by the trainer at every epoch start)."""

    def train_step(self, batch: Batch) -> float:
        """One optimiser step on ``batch``; returns the batch loss before the step."""
        raise FrameworkError(f"{self.name} is not trained step by step", "call fit_full()")

    def fit(self, batches, val: Optional[Batch] = None) -> dict:
        """One pass over ``batches`` (iterable of Batch); returns {'loss': mean train loss, 'val_loss'}."""
        losses, sizes = [], []
        for b in batches:
            losses.append(self.train_step(b))
            sizes.append(float(b.w.sum()))
        out = {"loss": float(np.average(losses, weights=sizes)) if losses else float("nan")}
        if val is not None:
            out["val_loss"] = self.loss(val)
        return out

    def fit_full(self, train: Batch, val: Optional[Batch] = None) -> dict:
        """Train on the whole training set (tree models); returns the per-round history."""
        raise FrameworkError(f"{self.name} is trained step by step", "use the trainer's epoch loop")

    def optimizer_state(self) -> dict:
        """Optimiser state as ``{name: ndarray}`` for checkpoints (empty when stateless)."""
        return {}

    def load_optimizer_state(self, state: dict) -> None:
        """Restore what :meth:`optimizer_state` returned."""

    # -- inference ---------------------------------------------------------------------------------
    @abstractmethod
    def predict_proba(self, batch: Batch) -> np.ndarray:
        """Class probabilities of shape (n, n_classes), in inference mode (no dropout)."""

    def loss(self, batch: Batch) -> float:
        """Weighted-mean loss of ``batch`` in inference mode (the validation loss)."""
        p = np.clip(self.predict_proba(batch).astype(np.float64), np.finfo(np.float64).tiny, 1.0)
        nll = -np.log(p[np.arange(len(batch)), batch.y])
        return float(np.sum(batch.w * nll) / np.sum(batch.w))

    # -- files -------------------------------------------------------------------------------------
    @abstractmethod
    def save(self, folder) -> None:
        """Write the model into ``folder`` (no pickle; the caller makes the folder atomic)."""

    @abstractmethod
    def load(self, folder) -> None:
        """Read what :meth:`save` wrote into this (already built) adapter."""

    def export_onnx(self, path) -> None:
        raise FrameworkError(f"ONNX export is not available for {self.name} {self.spec.kind}", "export another framework's model")


def adapter_class(framework: str):
    """The adapter class of ``framework`` (imports the framework now)."""
    name = ALIASES.get(str(framework).lower(), str(framework).lower())
    if name not in FRAMEWORKS:
        from ..data.root_io import closest

        close = closest(str(framework), list(FRAMEWORKS) + list(ALIASES))
        hint = f"did you mean {close[0]}?" if close else "choose one of " + ", ".join(FRAMEWORKS)
        raise FrameworkError(f"unknown framework {framework!r}", hint + f" (known: {', '.join(FRAMEWORKS)})")
    try:
        module = importlib.import_module(FRAMEWORKS[name])
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise FrameworkError(f"framework {name!r} is not installed (import of {missing!r} failed)", "run `make venv` or `pip install hepml[all]`") from None
    return module.ADAPTER


# -- devices --------------------------------------------------------------------------------------


def visible_gpus() -> int:
    """Number of NVIDIA GPUs the driver shows (0 without driver); no framework import needed."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and env.strip() in ("", "-1"):
        return 0
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir():
        n = len(list(gpus.iterdir()))
    elif shutil.which("nvidia-smi"):
        import subprocess

        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return 0
        n = sum(line.startswith("GPU ") for line in out.splitlines())
    else:
        return 0
    if env:
        n = min(n, len([d for d in env.split(",") if d.strip()]))
    return n


def resolve_device(device: str, framework: str, *, available: Optional[int] = None) -> str:
    """``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` → a concrete device, or a one-line DeviceError.

    Asking for a GPU that is not there is an error, never a silent CPU run. ``available`` overrides
    the GPU count (tests, and frameworks that can count their own devices).
    """
    device = (device or "auto").lower()
    n = visible_gpus() if available is None else available
    if device == "auto":
        if n == 0 or (framework == "core" and not _has_cupy()):
            return "cpu"
        return "cuda:0"
    if device == "cpu":
        return "cpu"
    if device == "mps":
        if framework != "torch":
            raise DeviceError(f"device 'mps' was asked for framework {framework!r}", "mps is only for torch on Apple silicon; use --device cpu")
        return "mps"
    if device == "gpu":
        device = "cuda"
    if device.startswith("cuda"):
        index = 0
        if ":" in device:
            try:
                index = int(device.split(":", 1)[1])
            except ValueError:
                raise DeviceError(f"device {device!r} is not understood", "write cuda or cuda:N with N a GPU index") from None
        if n == 0:
            raise DeviceError(
                f"device {device!r} was asked for but no GPU is visible on this machine",
                "use --device cpu (or auto), or run where a GPU and its driver are present",
            )
        if index >= n:
            raise DeviceError(f"device {device!r} was asked for but only {n} GPU(s) are visible", f"use cuda:0 .. cuda:{n - 1}")
        if framework == "core" and not _has_cupy():
            raise DeviceError("the NumPy core needs CuPy for a GPU, and CuPy is not installed", "pip install cupy-cuda12x, or use --device cpu")
        return f"cuda:{index}"
    raise DeviceError(f"unknown device {device!r}", "use auto, cpu, cuda, cuda:N or mps")


def _has_cupy() -> bool:
    return importlib.util.find_spec("cupy") is not None
