"""XGBoost adapter: gradient-boosted trees from a :class:`~hepml.models.spec.BDTSpec`.

The BDT vocabulary maps one to one onto ``xgboost.train`` (lecture names on the left)::

    n_estimators → num_boost_round     learning_rate (η) → eta       reg_lambda (λ) → lambda
    gamma (γ) → gamma                  min_child_weight → min_child_weight
    max_depth, subsample, max_bin, tree_method → the same names

Binary tasks use ``binary:logistic`` (one margin z, p = σ(z)), C > 2 classes ``multi:softprob``
(C margins per round, softmax); the training and validation losses are XGBoost's weighted
log-loss Σ w_i L_i / Σ w_i, the same definition as every other adapter's. The model is saved in
XGBoost's own UBJSON format (no pickle) and exported to ONNX through the framework-neutral tree
description of :func:`booster_trees` and :func:`hepml.onnx_export.trees_to_onnx`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import numpy as np
import xgboost

from ..errors import ConfigError, DataError, FrameworkError, InputFileError
from .base import Adapter, Batch

__all__ = ["XGBoostAdapter", "booster_trees", "base_margin", "xgboost_params", "ADAPTER"]

MODEL_FILE = "model.ubj"


def xgboost_params(spec, n_classes: int, *, seed: int, device: str = "cpu", nthread: Optional[int] = None) -> dict:
    """The ``xgboost.train`` parameters of a BDTSpec (also used by the overhead benchmark)."""
    params = {
        "objective": "binary:logistic" if n_classes == 2 else "multi:softprob",
        "eval_metric": "logloss" if n_classes == 2 else "mlogloss",
        "max_depth": spec.max_depth,
        "eta": spec.learning_rate,
        "lambda": spec.reg_lambda,
        "gamma": spec.gamma,
        "min_child_weight": spec.min_child_weight,
        "subsample": spec.subsample,
        "tree_method": spec.tree_method,
        "seed": int(seed),
        "nthread": int(nthread or _all_cores()),
        "device": "cuda" + device[4:] if device.startswith("cuda") else "cpu",
        "validate_parameters": True,
    }
    if n_classes > 2:
        params["num_class"] = int(n_classes)
    if spec.base_score is not None:
        params["base_score"] = float(spec.base_score)
    if spec.tree_method == "hist":  # the exact method has no bins
        params["max_bin"] = spec.max_bin
    return params


def _all_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def base_margin(booster, n_classes: int) -> np.ndarray:
    """The margin z₀ every prediction starts from, one per logit (what the trees add to).

    XGBoost keeps ``base_score`` in probability space for ``binary:logistic`` (z₀ = logit(p₀)),
    and as margins for ``multi:softprob`` (one per class since XGBoost 3, one shared before).
    """
    text = json.loads(booster.save_config())["learner"]["learner_model_param"]["base_score"]
    values = np.array([float(v) for v in text.strip("[]").split(",")], dtype=np.float64)
    if n_classes == 2:
        p = float(values[0])
        return np.array([np.log(p) - np.log1p(-p)])
    return np.broadcast_to(values, (n_classes,)).copy()


def booster_trees(booster, n_classes: int) -> tuple[list, np.ndarray]:
    """A booster's trees in the framework-neutral description of :func:`hepml.onnx_export.check_trees`.

    Read from ``get_dump(dump_format="json")``: a split sends x to ``yes`` when x < split_condition
    (rule ``"<"``) and a missing value to ``missing``; leaves hold η·w already. Node ids are
    renumbered depth-first (pruning can leave gaps). Tree i of C > 2 classes adds to logit i mod C.
    Returns (trees, base margin).
    """
    names = list(booster.feature_names or [])
    n_out = 1 if n_classes == 2 else n_classes
    trees = []
    for t, text in enumerate(booster.get_dump(dump_format="json")):
        nodes = {k: [] for k in ("feature", "threshold", "left", "right", "missing", "value")}
        index = {}

        def visit(node):
            i = index[node["nodeid"]] = len(nodes["feature"])
            for k in nodes:
                nodes[k].append(-1 if k in ("feature", "left", "right", "missing") else 0.0)
            if "leaf" in node:
                nodes["value"][i] = float(node["leaf"])
                return i
            split = node["split"]
            nodes["feature"][i] = names.index(split) if split in names else int(str(split).lstrip("f"))
            nodes["threshold"][i] = float(node["split_condition"])
            children = {c["nodeid"]: visit(c) for c in node["children"]}
            nodes["left"][i], nodes["right"][i] = children[node["yes"]], children[node["no"]]
            nodes["missing"][i] = children[node["missing"]]
            return i

        visit(json.loads(text))
        nodes["output"] = t % n_out
        trees.append(nodes)
    return trees, base_margin(booster, n_classes)


class XGBoostAdapter(Adapter):
    """XGBoost's ``xgboost.train`` behind the hepml adapter surface (trained by :meth:`fit_full`).

    Attributes after fitting: ``booster_`` (xgboost.Booster), ``history_`` ({'loss', 'val_loss'} per
    round), ``best_iteration_`` (the last kept round, 0-based). ``nthread`` (default: all cores
    this process may use) can be set on the adapter before fitting.
    """

    name = "xgboost"
    kinds = ("bdt",)
    iterative = False
    nthread: Optional[int] = None

    def _build(self) -> None:
        if self.precision != "fp32":
            raise FrameworkError(f"precision {self.precision!r} was asked for xgboost", "mixed precision is for torch and Keras; use --precision fp32 for xgboost")
        if self.n_classes < 2:
            raise FrameworkError(f"xgboost needs at least two classes; received n_classes={self.n_classes}", "check the task's labels")
        if self.device.startswith("cuda") and self.spec.tree_method == "exact":
            raise FrameworkError(f"tree_method 'exact' was asked on device {self.device!r}", "XGBoost's GPU grows trees with tree_method: hist; use it or --device cpu")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise FrameworkError(f"xgboost cannot run on device {self.device!r}", "use --device cpu or cuda")
        self.booster_ = None

    def params(self) -> dict:
        """The ``xgboost.train`` parameters of this adapter's spec, seed, device and threads."""
        return xgboost_params(self.spec, self.n_classes, seed=self.train.seed, device=self.device, nthread=self.nthread)

    # -- training ----------------------------------------------------------------------------------
    def _features(self, batch: Batch, what: str) -> np.ndarray:
        """The batch's flat features, checked against the build (NaN allowed: missing values)."""
        if batch.X is None:
            raise FrameworkError(f"the {what} batch has no flat features X (it holds an object set)", "BDTs read the task's flat features; give the BDT a task with flat features")
        X = np.asarray(batch.X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataError(f"the {what} features have shape {X.shape}; the model was built for (n, {self.n_features})", "use the same features as at build time")
        if np.isinf(X).any():
            raise DataError(f"the {what} features contain {int(np.isinf(X).sum())} infinite values", "clip or drop them (NaN is fine: it is a missing value for trees)")
        return X

    def _matrix(self, batch: Batch, what: str):
        """A DMatrix with labels and weights, after checking them.

        A plain DMatrix (XGBoost bins it inside ``train`` for ``hist``): a QuantileDMatrix would hold
        less memory but was ~15 % slower end to end (50k rows, 50 rounds, 1 thread; see
        bench/bench_xgboost_overhead.py).
        """
        X = self._features(batch, what)
        y, w = np.asarray(batch.y), np.asarray(batch.w, dtype=np.float64)
        if len(X) == 0:
            raise DataError(f"the {what} batch is empty", "check the selection and the split")
        if y.shape != (len(X),) or w.shape != (len(X),):
            raise DataError(f"the {what} batch has {len(X)} examples but labels {y.shape} and weights {w.shape}", "pass one label and one weight per example")
        wrong = (y < 0) | (y >= self.n_classes) | (y != np.round(y))
        if wrong.any():
            raise DataError(f"the {what} labels contain {y[wrong][0].item()!r}, outside the classes 0..{self.n_classes - 1}", "encode labels as class indices")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise DataError(f"the {what} weights must be finite, >= 0 and not all zero; received min {float(w.min())!r}, sum {float(w.sum())!r}", "fix the task's weight expression")
        return xgboost.DMatrix(X, label=y, weight=w, nthread=self.params()["nthread"])

    def fit_full(self, train: Batch, val: Optional[Batch] = None) -> dict:
        """Boost ``n_estimators`` rounds on ``train`` (early stopping on ``val`` when the spec asks).

        Returns the per-round history {'loss': [...], 'val_loss': [...]} of weighted log-losses; with
        early stopping the booster keeps the rounds up to the best validation loss.
        """
        self._check_early_stopping(val is not None)
        dtrain = self._matrix(train, "training")
        evals = [(dtrain, "train")] + ([(self._matrix(val, "validation"), "val")] if val is not None else [])
        params = self.params()
        if self.spec.base_score is None and self.n_classes == 2:
            # the same starting point as the core GBDT: the weighted fraction of the second class
            params["base_score"] = float(np.sum(train.w * (train.y == 1)) / np.sum(train.w))
        return self._boost(params, dtrain, evals)

    def _check_early_stopping(self, has_val: bool) -> None:
        rounds = self.spec.early_stopping_rounds
        if rounds and not has_val:
            raise ConfigError(f"early_stopping_rounds={rounds} needs a validation set, and none was given", "give the run a validation split or remove early_stopping_rounds")

    def _boost(self, params: dict, dtrain, evals: list) -> dict:
        """``xgboost.train`` with the history of weighted log-losses; early stopping keeps the best round."""
        rounds = self.spec.early_stopping_rounds
        record: dict = {}
        booster = xgboost.train(
            params, dtrain, num_boost_round=self.spec.n_estimators, evals=evals, evals_result=record,
            early_stopping_rounds=rounds, verbose_eval=False,
        )
        metric = params["eval_metric"]
        self.history_ = {"loss": [float(v) for v in record["train"][metric]]}
        if "val" in record:
            self.history_["val_loss"] = [float(v) for v in record["val"][metric]]
        best = booster.num_boosted_rounds() - 1
        if rounds:
            best = int(booster.best_iteration)
            booster = booster[: best + 1]
        self.booster_, self.best_iteration_ = booster, best
        return self.history_

    def fit_iter(self, train_iter, val_iter=None) -> dict:
        """Boost from ``xgboost.DataIter`` objects: the data arrive chunk by chunk (streaming).

        The training chunks go into a ``QuantileDMatrix``: XGBoost sketches the quantiles in one pass
        over the iterator and bins the values in a second, keeping only the bins (one byte per value for
        ``max_bin`` ≤ 256, a quarter of float32), never the chunks. Validation data reuse the training
        bins (``ref``). Needs ``tree_method: hist`` (``exact`` sorts all raw values). Returns the history
        as :meth:`fit_full` does.
        """
        if self.spec.tree_method != "hist":
            raise ConfigError(f"training from a data iterator needs tree_method 'hist'; the model has {self.spec.tree_method!r}", "set tree_method: hist in the BDT model file")
        self._check_early_stopping(val_iter is not None)
        nthread = self.params()["nthread"]
        dtrain = xgboost.QuantileDMatrix(train_iter, max_bin=self.spec.max_bin, nthread=nthread)
        evals = [(dtrain, "train")]
        if val_iter is not None:
            evals.append((xgboost.QuantileDMatrix(val_iter, max_bin=self.spec.max_bin, nthread=nthread, ref=dtrain), "val"))
        return self._boost(self.params(), dtrain, evals)

    # -- inference ---------------------------------------------------------------------------------
    def _check_fitted(self) -> xgboost.Booster:
        if self.booster_ is None:
            raise FrameworkError("this xgboost model is not trained yet", "call fit_full(train) or load(folder) first")
        return self.booster_

    def predict_proba(self, batch: Batch) -> np.ndarray:
        """p(class) of shape (n, n_classes); two columns [1 − p, p] for binary tasks."""
        booster = self._check_fitted()
        X = self._features(batch, "prediction")
        if self.device.startswith("cuda"):  # host data: a DMatrix avoids the device-mismatch fallback
            p = booster.predict(xgboost.DMatrix(X, nthread=self.params()["nthread"]))
        else:
            p = booster.inplace_predict(X)
        p = np.asarray(p)
        if self.n_classes == 2:
            p = p.reshape(-1)
            return np.column_stack([1.0 - p, p])
        return p.reshape(len(p), self.n_classes)

    def importance(self) -> dict:
        """Feature importance {'gain': {i: v}, 'cover': {i: v}} for every feature index i.

        XGBoost's definitions: ``gain`` is the mean loss reduction of the splits on a feature,
        ``cover`` the mean Hessian sum (number of examples for unit weights) they saw; features
        never used for a split get 0.
        """
        booster = self._check_fitted()
        names = list(booster.feature_names or [])
        out = {}
        for kind in ("gain", "cover"):
            score = booster.get_score(importance_type=kind)
            values = {i: 0.0 for i in range(self.n_features)}
            for key, v in score.items():
                values[names.index(key) if key in names else int(key.lstrip("f"))] = float(v)
            out[kind] = values
        return out

    # -- files -------------------------------------------------------------------------------------
    def save(self, folder) -> None:
        """``folder/model.ubj``: XGBoost's own binary JSON format (trees, base score, parameters)."""
        booster = self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        booster.save_model(folder / MODEL_FILE)

    def load(self, folder) -> None:
        """Read ``folder/model.ubj`` into this adapter (checks classes and features match the build)."""
        path = Path(folder) / MODEL_FILE
        if not path.is_file():
            raise InputFileError(f"no XGBoost model at {path}", "point to a folder written by save() of an xgboost run")
        booster = xgboost.Booster()
        try:
            booster.load_model(path)
        except xgboost.core.XGBoostError as exc:
            raise InputFileError(f"{path} is not a readable XGBoost model ({str(exc).splitlines()[0][:120]})", "re-run the training that wrote it") from None
        cfg = json.loads(booster.save_config())["learner"]["learner_model_param"]
        n_class, n_feat = max(2, int(cfg["num_class"])), int(cfg["num_feature"])
        if n_class != self.n_classes or n_feat != self.n_features:
            raise FrameworkError(
                f"{path} holds a model for {n_class} classes and {n_feat} features; this one was built for {self.n_classes} and {self.n_features}",
                "load it into an adapter built for the same task",
            )
        p = self.params()
        booster.set_param({"device": p["device"], "nthread": p["nthread"]})
        self.booster_ = booster
        self.best_iteration_ = booster.num_boosted_rounds() - 1

    def export_onnx(self, path) -> None:
        """ONNX ``TreeEnsembleClassifier`` (input ``X`` float32, output ``proba``) of the trees."""
        from ..onnx_export import trees_to_onnx

        trees, base = booster_trees(self._check_fitted(), self.n_classes)
        trees_to_onnx(trees, self.n_features, self.n_classes, base, path, rule="<")


ADAPTER = XGBoostAdapter
