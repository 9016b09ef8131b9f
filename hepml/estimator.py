"""A scikit-learn-style front door to every framework.

>>> clf = hepml.Classifier(framework="torch", model="mlp", hidden=[32, 32], epochs=5)
>>> clf.fit("dimuon_charge").predict_proba(X)          # X: Dataset, or (n, n_features) array

Hyperparameters are stored unchanged by the constructor and checked in ``fit`` against the model
spec and the training settings (``hidden``, ``epochs``, ``learning_rate``...); an unknown one is a
one-line ConfigError with the closest valid name.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError


class Classifier:
    """Train ``model`` with ``framework`` through the shared trainer; predict on new data.

    Parameters
    ----------
    framework : 'core', 'torch', 'keras' or 'xgboost'
    model : a model name under ``configs/models`` or a YAML path
    device, precision : as for ``hepml train``
    **hyperparameters : keys of the model spec (e.g. ``hidden``, ``max_depth``) or of the training
        settings (e.g. ``epochs``, ``batch_size``, ``learning_rate``; for a ``bdt`` model
        ``learning_rate`` is the boosting rate)

    Attributes
    ----------
    result_ : hepml.train.RunResult
    classes_ : list of class names
    """

    def __init__(self, *, framework: str = "core", model: str = "mlp", device: str = "cpu", precision: str = "fp32", **hyperparameters):
        self.framework = framework
        self.model = model
        self.device = device
        self.precision = precision
        self.hyperparameters = dict(hyperparameters)

    def get_params(self, deep: bool = True) -> dict:
        return {"framework": self.framework, "model": self.model, "device": self.device, "precision": self.precision, **self.hyperparameters}

    def _overrides(self) -> dict:
        from .models import load_model_file
        from .models.spec import TrainSpec

        spec = load_model_file(self.model).model
        model_keys, train_keys = set(type(spec).model_fields) - {"kind"}, set(TrainSpec.model_fields)
        over: dict = {"model": {}, "train": {}}
        for key, value in self.hyperparameters.items():
            if key in model_keys:
                over["model"][key] = list(value) if isinstance(value, tuple) else value
            elif key in train_keys:
                over["train"][key] = value
            else:
                from .data.root_io import closest

                close = closest(key, sorted(model_keys | train_keys))
                raise ConfigError(
                    f"Classifier got an unknown hyperparameter {key!r} for model {self.model!r}",
                    f"did you mean {close[0]!r}?" if close else "see configs/models/" + str(self.model) + ".yaml",
                )
        return {k: v for k, v in over.items() if v}

    def fit(self, data) -> "Classifier":
        """Train on a task (name or path), a TaskConfig, or a loaded Dataset; returns ``self``."""
        from .data import Dataset
        from .train import train

        kwargs = {"dataset": data} if isinstance(data, Dataset) else {}
        task = None if isinstance(data, Dataset) else data
        self.result_ = train(task, self.framework, self.model, overrides=self._overrides(), device=self.device, precision=self.precision, **kwargs)
        self.classes_ = list(self.result_.dataset.class_names)
        return self

    def _batch(self, X, mask=None):
        from .data import Dataset
        from .frameworks.base import Batch, input_kind, make_batch

        if not hasattr(self, "result_"):
            raise ConfigError("this Classifier is not fitted yet", "call fit(task_or_dataset) first")
        r = self.result_
        spec = r.adapter.spec
        dtype = np.float64 if r.adapter.train.dtype == "float64" else np.float32
        if isinstance(X, Dataset):
            ds = r.standardizer.transform(X) if r.standardizer is not None else X
            return make_batch(ds, np.arange(len(ds)), spec, dtype)
        X = np.asarray(X, dtype=dtype)
        kind = input_kind(spec)
        if kind != "flat":
            raise ConfigError(f"model {spec.kind!r} reads object sets", "pass a Dataset (hepml.load_dataset) to predict_proba")
        if X.ndim != 2 or X.shape[1] != r.dataset.n_features:
            raise ConfigError(f"X must have shape (n, {r.dataset.n_features}); received {X.shape}", "pass the task's features in order")
        if r.standardizer is not None:
            X = ((X - r.standardizer.mean_) / r.standardizer.std_).astype(dtype)
        n = len(X)
        return Batch(X=X, set=None, mask=None, y=np.zeros(n, dtype=np.int64), w=np.ones(n, dtype=dtype))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes) for a Dataset or a raw (n, n_features) array."""
        batch = self._batch(X)  # raises a one-line ConfigError when not fitted
        return self.result_.adapter.predict_proba(batch)

    def predict(self, X) -> np.ndarray:
        """The most probable class index of each example."""
        return np.argmax(self.predict_proba(X), axis=1)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.hyperparameters.items())
        return f"Classifier(framework={self.framework!r}, model={self.model!r}{extra})"
