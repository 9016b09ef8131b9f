"""Prediction files: one row per test example with its label, weight, event number, spectators and
every model's class probabilities, written as ROOT (tree ``Predictions``) and parquet, atomically.

Columns: ``event``, ``label`` (class index), ``weight``, each spectator, and per model ``NAME`` =
probability of the first class (the signal in two-class tasks, as in TMVA) plus ``NAME_p_CLASS``
for every class.
"""

from __future__ import annotations

import re

import numpy as np

from .atomic import atomic_path


def column_name(text: str) -> str:
    """A branch-safe name: letters, digits and underscores."""
    return re.sub(r"\W+", "_", str(text)).strip("_") or "x"


def prediction_columns(dataset, scores: dict) -> dict:
    """The columns described in the module docstring, as NumPy arrays."""
    cols = {
        "event": np.asarray(dataset.event if dataset.event is not None else np.arange(len(dataset)), dtype=np.int64),
        "label": dataset.y.astype(np.int32),
        "weight": dataset.weights.astype(np.float64),
    }
    for name, values in dataset.spectators.items():
        cols[column_name(f"spectator_{name}") if column_name(name) in cols else column_name(name)] = np.asarray(values)
    for name, proba in scores.items():
        proba = np.asarray(proba, dtype=np.float64)
        base = column_name(name)
        cols[base] = proba[:, 0]
        for i, cname in enumerate(dataset.class_names):
            cols[f"{base}_p_{column_name(cname)}"] = proba[:, i]
    return cols


def write_predictions(folder, dataset, scores: dict, *, stem: str = "predictions") -> list:
    """Write ``stem.root`` and ``stem.parquet`` into ``folder``; returns the two paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .data.root_io import write_tree

    from pathlib import Path

    folder = Path(folder)
    cols = prediction_columns(dataset, scores)
    root_path, parquet_path = folder / f"{stem}.root", folder / f"{stem}.parquet"
    write_tree(root_path, cols, tree="Predictions")
    with atomic_path(parquet_path) as tmp:
        pq.write_table(pa.table(cols), tmp)
    return [root_path, parquet_path]
