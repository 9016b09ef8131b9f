"""The synthetic data the overhead benchmarks share (run them from the repo root: python bench/NAME.py)."""

from __future__ import annotations

import numpy as np


def make_data(n: int, n_features: int, seed: int = 0, *, label_dtype=np.int64):
    """Features (float32), a nonlinear binary label and positive weights."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] + 0.5 * X[:, 2] > 0).astype(label_dtype)
    w = rng.uniform(0.5, 1.5, size=n).astype(np.float32)
    return X, y, w


def index_batches(n: int, batch_size: int, seed: int) -> list:
    """One seeded permutation of range(n) cut into batches."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]
