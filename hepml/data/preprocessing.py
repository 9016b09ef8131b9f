"""Preprocessing fitted on the training split only, and saved with the model.

:class:`Standardizer` centres and scales every flat feature, ``x' = (x − μ) / σ``, and every field of
every object set over the real (unmasked) objects only, so padding does not bias μ and σ. Padding
stays at 0 after the transform (masked entries are zeroed).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from ..atomic import write_text
from ..errors import DataError


def _mean_std(x):
    std = x.std(axis=0)
    return x.mean(axis=0), np.where(std > 0, std, 1.0)  # a constant feature is left unscaled


class Standardizer:
    """``x' = (x − μ) / σ`` per feature, with μ, σ learned by :meth:`fit` on training data only."""

    def __init__(self):
        self.mean_ = None
        self.std_ = None
        self.set_mean_: dict = {}
        self.set_std_: dict = {}
        self.feature_names_: list = []

    def fit(self, dataset) -> "Standardizer":
        """Learn μ and σ from ``dataset`` (pass the training split: ``ds.train``)."""
        if len(dataset) == 0:
            raise DataError("cannot fit the standardizer on 0 examples", "check the split fractions")
        X = dataset.X.astype(np.float64)
        self.mean_, self.std_ = _mean_std(X)
        self.feature_names_ = list(dataset.feature_names)
        for name, s in dataset.sets.items():
            real = dataset.masks[name].reshape(-1)
            objs = s.reshape(-1, s.shape[-1])[real].astype(np.float64)
            if len(objs) == 0:
                self.set_mean_[name], self.set_std_[name] = np.zeros(s.shape[-1]), np.ones(s.shape[-1])
            else:
                self.set_mean_[name], self.set_std_[name] = _mean_std(objs)
        return self

    def transform(self, dataset):
        """A new Dataset with standardised X and sets (labels, weights, split unchanged)."""
        if self.mean_ is None:
            raise DataError("the standardizer is not fitted", "call fit(ds.train) first")
        if list(dataset.feature_names) != self.feature_names_:
            raise DataError(
                "features differ from those the standardizer was fitted on",
                "use the same task file for training and prediction",
            )
        X = ((dataset.X - self.mean_) / self.std_).astype(np.float32)
        sets = {}
        for name, s in dataset.sets.items():
            z = (s - self.set_mean_[name]) / self.set_std_[name]
            sets[name] = np.where(dataset.masks[name][..., None], z, 0.0).astype(np.float32)
        return replace(dataset, X=X, sets=sets)

    def to_dict(self) -> dict:
        return {
            "feature_names": self.feature_names_,
            "mean": np.asarray(self.mean_).tolist(),
            "std": np.asarray(self.std_).tolist(),
            "sets": {k: {"mean": self.set_mean_[k].tolist(), "std": self.set_std_[k].tolist()} for k in self.set_mean_},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        self = cls()
        self.feature_names_ = list(d["feature_names"])
        self.mean_, self.std_ = np.asarray(d["mean"]), np.asarray(d["std"])
        for k, v in d.get("sets", {}).items():
            self.set_mean_[k], self.set_std_[k] = np.asarray(v["mean"]), np.asarray(v["std"])
        return self

    def save(self, path) -> None:
        """Write as JSON (atomically): readable, diffable, no pickle."""
        write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path) -> "Standardizer":
        with open(path) as fh:
            return cls.from_dict(json.load(fh))
