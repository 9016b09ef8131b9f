"""Framework-neutral model specs and training settings (``configs/models/*.yaml``).

One spec describes a model that every framework builds the same way; initial weights are drawn once
in NumPy from the seed (:func:`hepml.models.initial_weights`) and loaded into every framework, so the
frameworks start from identical parameters. Specs are validated like task files: unknown keys and bad
values are one-line :class:`~hepml.errors.ConfigError` naming the key and the YAML line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, model_validator

from ..config import StrictModel, YamlDocument, load_yaml, validate
from ..errors import ConfigError

Activation = Literal["relu", "tanh", "sigmoid", "linear"]
Init = Literal["auto", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal"]


class MLPSpec(StrictModel):
    """Dense layers on the flat features: hidden sizes, activation, dropout, optional batch norm."""

    kind: Literal["mlp"] = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [64, 64], min_length=1)
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batch_norm: bool = False
    init: Init = "auto"
    inputs: Literal["flat", "flatten_set"] = "flat"
    set: Optional[str] = None  # with inputs: flatten_set, which object set to flatten (default: the only one)


class DeepSetsSpec(StrictModel):
    """Particle-Flow Network: per-object Φ, masked sum/mean pooling over the (N, k) set, then F."""

    kind: Literal["deepsets"] = "deepsets"
    phi: list[int] = Field(default_factory=lambda: [64, 64], min_length=1)
    f: list[int] = Field(default_factory=lambda: [64], min_length=0)
    pool: Literal["sum", "mean"] = "sum"
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    init: Init = "auto"
    set: Optional[str] = None  # which object set of the Dataset (default: the only one)


class TransformerSpec(StrictModel):
    """A small transformer encoder over the objects of a set, masked mean pooling, then a head."""

    kind: Literal["transformer"] = "transformer"
    dim: int = Field(64, ge=4)
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    ff: int = Field(128, ge=4)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    head: list[int] = Field(default_factory=lambda: [64])
    set: Optional[str] = None

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.dim % self.heads:
            raise ValueError(f"dim must be a multiple of heads, got dim={self.dim}, heads={self.heads}")
        return self


class BDTSpec(StrictModel):
    """Gradient-boosted trees, one vocabulary for XGBoost and the core GBDT."""

    kind: Literal["bdt"] = "bdt"
    n_estimators: int = Field(200, ge=1)
    max_depth: int = Field(4, ge=1)
    learning_rate: float = Field(0.1, gt=0.0)
    reg_lambda: float = Field(1.0, ge=0.0)
    gamma: float = Field(0.0, ge=0.0)
    min_child_weight: float = Field(1.0, ge=0.0)
    subsample: float = Field(1.0, gt=0.0, le=1.0)
    max_bin: int = Field(256, ge=2)
    tree_method: Literal["hist", "exact"] = "hist"
    bins: Literal["own", "xgboost"] = "own"  # core hist: its own quantile cuts, or XGBoost's sketch (same bins ⇒ same trees)
    base_score: Optional[float] = None  # initial prediction (a probability for two classes); None: from the data
    early_stopping_rounds: Optional[int] = Field(None, ge=1)


ModelSpec = Annotated[Union[MLPSpec, DeepSetsSpec, TransformerSpec, BDTSpec], Field(discriminator="kind")]


class TrainSpec(StrictModel):
    """Optimiser and loop settings shared by the neural-network frameworks (identical everywhere)."""

    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    learning_rate: float = Field(1e-3, gt=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    epsilon: float = Field(1e-8, gt=0.0)  # explicit: Keras defaults to 1e-7, torch to 1e-8
    batch_size: int = Field(256, ge=1)
    epochs: int = Field(10, ge=1)
    schedule: Literal["constant", "cosine", "step", "exponential"] = "constant"
    step_every: int = Field(10, ge=1)
    decay: float = Field(0.5, gt=0.0, le=1.0)
    early_stopping: Optional[int] = Field(None, ge=1)  # patience in epochs on the validation loss
    clip_grad_norm: Optional[float] = Field(None, gt=0.0)
    dtype: Literal["float32", "float64"] = "float32"
    standardize: bool = True
    seed: int = 1

    @model_validator(mode="after")
    def _nesterov(self):
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs optimizer: sgd with momentum > 0")
        return self

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (0-based) under the schedule; every framework uses this."""
        import math

        lr = self.learning_rate
        if self.schedule == "cosine":
            return 0.5 * lr * (1 + math.cos(math.pi * epoch / max(1, self.epochs)))
        if self.schedule == "step":
            return lr * self.decay ** (epoch // self.step_every)
        if self.schedule == "exponential":
            return lr * self.decay**epoch
        return lr


class ModelFile(StrictModel):
    """A ``configs/models/*.yaml`` file: ``model:`` (the spec) and optional ``train:`` settings."""

    model: ModelSpec
    train: TrainSpec = Field(default_factory=TrainSpec)


def models_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "configs" / "models"


def available_models() -> dict[str, Path]:
    """Model name → file under ``configs/models``."""
    d = models_dir()
    return {p.stem: p for p in sorted(d.glob("*.y*ml"))} if d.is_dir() else {}


def load_model_file(model, overrides: Optional[dict] = None) -> ModelFile:
    """A model by name (``mlp``), path, or ModelFile, with optional key overrides (``{"train": {...}}``)."""
    if isinstance(model, ModelFile):
        data, source = model.model_dump(), "<model>"
        doc = YamlDocument(data, {}, source)
    else:
        p = Path(str(model))
        if p.suffix not in (".yaml", ".yml"):
            known = available_models()
            if str(model) not in known:
                from ..data.root_io import closest

                close = closest(str(model), known)
                hint = f"did you mean {', '.join(close)}?" if close else "known models: " + ", ".join(known)
                raise ConfigError(f"unknown model {str(model)!r}", hint + " (or give a model YAML path)")
            p = known[str(model)]
        doc = load_yaml(p)
    if overrides:
        doc = YamlDocument(_merge(doc.data, overrides), doc.lines, doc.source)
    return validate(ModelFile, doc, what="model file")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
