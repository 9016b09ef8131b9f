"""The NumPy core behind the adapter shape: MLP and DeepSets from :mod:`hepml.core.mlp`, and the
core GBDT from :mod:`hepml.core.gradient_boosting`.

The core is the reference the other frameworks are checked against: same initial weights, same
batches, the optimiser update rules of ``torch.optim`` written out in :mod:`hepml.core.optimizers`.
On ``--device cuda`` it runs on CuPy (when installed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import FrameworkError
from ..npz import read_npz, write_npz
from .base import Adapter, Batch


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients by min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ the global L2 norm (torch's rule)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = float(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads) ** 0.5)
    coef = min(1.0, max_norm / (total + 1e-6))
    for p in params:
        if p.grad is not None:
            p.grad = p.grad * coef
    return total


class CoreAdapter(Adapter):
    name = "core"
    kinds = ("mlp", "deepsets", "bdt")

    def _build(self) -> None:
        from ..models import initial_weights

        spec, t = self.spec, self.train
        if self.precision != "fp32":
            raise FrameworkError(f"the NumPy core has no mixed precision (received {self.precision!r})", "use --precision fp32 with core")
        if spec.kind == "bdt":
            self.iterative = False
            self.model = self._make_gbdt()
            return
        if spec.kind == "mlp" and spec.batch_norm:
            raise FrameworkError("batch_norm is not part of the NumPy core MLP", "set batch_norm: false, or use torch/keras")
        from ..core.mlp import MLP, DeepSets

        common = dict(
            activation=spec.activation, dropout=spec.dropout, init=spec.init, optimizer=t.optimizer, learning_rate=t.learning_rate,
            momentum=t.momentum if t.optimizer == "sgd" else 0.9, nesterov=t.nesterov, beta_1=t.beta1, beta_2=t.beta2,
            epsilon=t.epsilon, weight_decay=t.weight_decay, batch_size=t.batch_size, epochs=t.epochs, seed=t.seed,
            dtype=t.dtype, device="gpu" if self.device.startswith("cuda") else "cpu",
        )
        if spec.kind == "mlp":
            self.model = MLP(hidden_sizes=tuple(spec.hidden), **common)
            X = np.zeros((self.n_classes, self.n_features))
        else:
            self.model = DeepSets(phi_sizes=tuple(spec.phi), f_sizes=tuple(spec.f), pool=spec.pool, **common)
            X = np.ones((self.n_classes, 1, self.n_features))
        self.model.build(X, np.arange(self.n_classes))
        self.model.set_weights(initial_weights(spec, self.n_features, self.n_classes, seed=t.seed, dtype=t.dtype))

    def _make_gbdt(self):
        from ..core.gradient_boosting import GradientBoostingClassifier

        s = self.spec
        if s.early_stopping_rounds is not None:
            raise FrameworkError("early_stopping_rounds is not implemented by the core GBDT", "remove it, or use xgboost")
        return GradientBoostingClassifier(
            n_estimators=s.n_estimators, max_depth=s.max_depth, learning_rate=s.learning_rate, reg_lambda=s.reg_lambda,
            gamma=s.gamma, min_child_weight=s.min_child_weight, subsample=s.subsample, max_bin=s.max_bin,
            tree_method=s.tree_method, base_score=s.base_score, seed=self.train.seed,
        )

    def _bin_cuts(self, train: Batch) -> dict:
        """``bins: xgboost``: XGBoost's weighted quantile-sketch cut points, so both BDTs see the same bins."""
        if self.spec.tree_method != "hist" or self.spec.bins != "xgboost":
            return {}
        try:
            import xgboost
        except ImportError:
            raise FrameworkError("bins: xgboost needs the xgboost package", "install xgboost, or set bins: own") from None
        sketch = xgboost.QuantileDMatrix(np.asarray(train.X, np.float32), weight=train.w, max_bin=self.spec.max_bin)
        return {"bin_cuts": sketch.get_quantile_cut()}

    def _staged_loss(self, batch: Batch) -> list:
        """Weighted cross-entropy after each boosting round (the BDT's training curve)."""
        from ..core.gradient_boosting import sigmoid, softmax

        m = self.model
        X = np.asarray(batch.X, dtype=np.float32)
        margin = np.broadcast_to(m.base_margin_, (len(X), m.n_groups_)).astype(np.float32).copy()
        out = []
        rows = np.arange(len(X))
        for i, tree in enumerate(m.trees_):
            margin[:, i % m.n_groups_] += tree.value[tree.apply(X, strict=True), 0]
            if (i + 1) % m.n_groups_ == 0:
                p = np.column_stack([1 - sigmoid(margin[:, 0]), sigmoid(margin[:, 0])]) if m.n_groups_ == 1 else softmax(margin)
                nll = -np.log(np.clip(p[rows, batch.y].astype(np.float64), 1e-12, 1))
                out.append(float(np.sum(batch.w * nll) / np.sum(batch.w)))
        return out

    def _inputs(self, batch: Batch):
        return (batch.X, None) if batch.set is None else (batch.set, batch.mask)

    # -- weights and optimiser ---------------------------------------------------------------------
    def get_weights(self) -> dict:
        if self.spec.kind == "bdt":
            return super().get_weights()
        return {k: np.array(v) for k, v in self.model.get_weights().items()}

    def set_weights(self, weights: dict) -> None:
        if self.spec.kind == "bdt":
            return super().set_weights(weights)
        self.model.set_weights(weights)

    def set_learning_rate(self, lr: float) -> None:
        if self.spec.kind != "bdt":
            self.model.optimizer_.lr = lr

    def optimizer_state(self) -> dict:
        if self.spec.kind == "bdt":
            return {}
        state = self.model.optimizer_.state_dict()
        out = {"t": np.asarray(state["t"])}
        for i, s in enumerate(state["state"]):
            for k, v in s.items():
                out[f"{i}/{k}"] = np.asarray(v)
        return out

    def load_optimizer_state(self, state: dict) -> None:
        if self.spec.kind == "bdt" or not state:
            return
        per = [{} for _ in self.model.optimizer_.params]
        for key, v in state.items():
            if key != "t":
                i, k = key.split("/", 1)
                per[int(i)][k] = v
        self.model.optimizer_.load_state_dict({"t": int(state["t"]), "state": per})

    # -- training ------------------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> float:
        """Forward, Q = Σ w L / Σ w, chain rule backwards, (clip), optimiser step; returns Q."""
        m = self.model
        X, mask = self._inputs(batch)
        m.network_.train()
        m.optimizer_.zero_grad()
        loss = m.loss_(m._forward(X, mask), m.xp_.asarray(m._encode_y(batch.y)), batch.w)
        loss.backward()
        if self.train.clip_grad_norm is not None:
            clip_grad_norm(m.optimizer_.params, self.train.clip_grad_norm)
        m.optimizer_.step()
        return float(loss.data)

    def fit_full(self, train: Batch, val: Batch | None = None) -> dict:
        """Boost on the whole training set; the history is the loss after every round."""
        if len(np.unique(train.y)) != self.n_classes:
            from ..errors import DataError

            raise DataError(f"the training split holds {len(np.unique(train.y))} of {self.n_classes} classes", "add data or change the split")
        self.model.fit(train.X, train.y, sample_weight=train.w, **self._bin_cuts(train))
        history = {"loss": self._staged_loss(train)}
        if val is not None and len(val):
            history["val_loss"] = self._staged_loss(val)
        return history

    # -- inference -----------------------------------------------------------------------------------
    def loss(self, batch: Batch) -> float:
        """The validation loss from the logits (exact even where a probability underflows)."""
        if self.spec.kind == "bdt":
            return super().loss(batch)
        X, mask = self._inputs(batch)
        return float(self.model.evaluate_loss(X, batch.y, batch.w, mask=mask))

    def predict_proba(self, batch: Batch) -> np.ndarray:
        X, mask = self._inputs(batch)
        if self.spec.kind == "bdt":
            return self.model.predict_proba(X)
        return self.model.predict_proba(X, mask=mask)

    # -- files -----------------------------------------------------------------------------------------
    def save(self, folder) -> None:
        folder = Path(folder)
        if self.spec.kind == "bdt":
            self._save_gbdt(folder)
            return
        write_npz(folder / "weights.npz", self.get_weights())

    def load(self, folder) -> None:
        folder = Path(folder)
        if self.spec.kind == "bdt":
            self._load_gbdt(folder)
            return
        self.set_weights(read_npz(folder / "weights.npz", what="core weights"))

    _TREE_FIELDS = ("children_left", "children_right", "feature", "threshold", "value", "loss_changes", "sum_hessian", "base_weights")

    def _save_gbdt(self, folder: Path) -> None:
        """Trees as arrays in ``gbdt.npz`` and the fitted state in ``gbdt.json`` (no pickle)."""
        m = self.model
        write_npz(folder / "gbdt.npz", {f"{i}/{k}": np.asarray(getattr(t, k)) for i, t in enumerate(m.trees_) for k in self._TREE_FIELDS})
        state = {
            "n_trees": len(m.trees_), "classes": np.asarray(m.classes_).tolist(), "base_margin": m.base_margin_.tolist(),
            "n_groups": m.n_groups_, "objective": m.objective_, "n_features_in": m.n_features_in_,
        }
        (folder / "gbdt.json").write_text(json.dumps(state))

    def _load_gbdt(self, folder: Path) -> None:
        from ..core.gradient_boosting import BoostedTree

        state = json.loads((folder / "gbdt.json").read_text())
        m = self.model
        z = read_npz(folder / "gbdt.npz", what="core GBDT trees")
        m.trees_ = [BoostedTree(**{k: z[f"{i}/{k}"] for k in self._TREE_FIELDS}) for i in range(state["n_trees"])]
        m.classes_, m.base_margin_ = np.asarray(state["classes"]), np.asarray(state["base_margin"], dtype=np.float32)
        m.n_groups_, m.objective_, m.n_features_in_ = state["n_groups"], state["objective"], state["n_features_in"]

    def trees_description(self) -> list:
        """The trees in the framework-neutral form of :func:`hepml.onnx_export.check_trees`."""
        return [
            {"feature": t.feature, "threshold": t.threshold, "left": t.children_left, "right": t.children_right, "value": t.value[:, 0]}
            for t in self.model.trees_
        ]

    def export_onnx(self, path) -> None:
        from .. import onnx_export

        if self.spec.kind == "mlp":
            onnx_export.mlp_to_onnx(self.get_weights(), self.spec, self.n_classes, path)
        elif self.spec.kind == "deepsets":
            onnx_export.deepsets_to_onnx(self.get_weights(), self.spec, self.n_classes, path)
        else:
            onnx_export.trees_to_onnx(self.trees_description(), self.n_features, self.n_classes, self.model.base_margin_, path)


ADAPTER = CoreAdapter
