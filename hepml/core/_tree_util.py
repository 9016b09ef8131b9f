"""Private helpers shared by the tree algorithms (decision tree, random forest, GBDT).

Not public API: hyperparameter checks that raise :class:`~hepml.errors.ConfigError`, input
checks that raise :class:`~hepml.errors.DataError`, and :class:`TreeArrays`, the flat
array form of a binary tree (one entry per node, as in ``sklearn.tree._tree.Tree``) with a
vectorised ``apply`` that walks all examples down the tree one level at a time.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from .autograd import array_module

__all__ = ["array_module", "Interval", "Options", "validate_params", "check_X", "check_sample_weight",
           "check_targets", "presort", "partition_sorted", "TreeArrays", "LEAF"]

LEAF = -1  # children_left / children_right / feature of a leaf


# ----------------------------------------------------------------------------- hyperparameters
class Interval:
    """A numeric constraint ``low (<|<=) value (<|<=) high``; ``integer`` demands an int."""

    def __init__(self, low=None, high=None, *, closed="both", integer=False, none_ok=False):
        self.low, self.high, self.closed, self.integer, self.none_ok = low, high, closed, integer, none_ok

    def __call__(self, value) -> bool:
        if value is None:
            return self.none_ok
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or value != value:
            return False
        left_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        right_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return left_ok and right_ok

    def describe(self, name: str) -> str:
        kind = "an integer" if self.integer else "a number"
        lo = "" if self.low is None else f" {self.low} {'<=' if self.closed in ('both', 'left') else '<'}"
        hi = "" if self.high is None else f" {'<=' if self.closed in ('both', 'right') else '<'} {self.high}"
        bounds = f"{lo} {name}{hi}" if (lo or hi) else ""
        return kind + bounds + (" (or None)" if self.none_ok else "")


class Options:
    """One of a fixed set of values (strings, usually)."""

    def __init__(self, *values):
        self.values = values

    def __call__(self, value) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def describe(self, name: str) -> str:
        return f"{name} one of " + ", ".join(repr(v) for v in self.values)


def validate_params(estimator, constraints: dict) -> None:
    """Check each hyperparameter against its constraint(s); the first violation raises ConfigError.

    ``constraints`` maps a parameter name to a constraint or a tuple of alternatives (any may hold),
    like scikit-learn's ``_parameter_constraints`` table.
    """
    name_of = type(estimator).__name__
    for name, rule in constraints.items():
        rules = rule if isinstance(rule, tuple) else (rule,)
        value = getattr(estimator, name)
        if not any(r(value) for r in rules):
            raise ConfigError(f"{name_of}: invalid {name}={value!r}",
                              "use " + ", or ".join(r.describe(name) for r in rules))


# ----------------------------------------------------------------------------- data
def check_X(X, *, n_features=None, dtype=np.float64, name="X"):
    """``X`` as a finite 2-D array of ``dtype`` (NumPy or CuPy); DataError otherwise."""
    xp = array_module(X)
    X = xp.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D (n_examples, n_features); got shape {X.shape}",
                        "reshape it, e.g. X.reshape(-1, 1) for a single feature")
    if X.shape[0] == 0:
        raise DataError(f"{name} has no examples (shape {X.shape})", "pass at least one example")
    if n_features is not None and X.shape[1] != n_features:
        raise DataError(f"{name} has {X.shape[1]} features but the model was fitted with {n_features}",
                        "pass the same feature columns, in the same order, as in fit")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name} must be numeric; got dtype {X.dtype}", "convert the features to floats")
    X = X.astype(dtype, copy=False)
    if not bool(xp.isfinite(X).all()):
        raise DataError(f"{name} contains NaN or infinite values",
                        "remove or impute them first (the core trees have no missing-value branch)")
    return X


def check_sample_weight(sample_weight, n: int, xp=np):
    """Per-example weights w_i >= 0 with a positive sum (ones when ``None``); DataError otherwise."""
    if sample_weight is None:
        return xp.ones(n)
    w = xp.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.shape[0] != n:
        raise DataError(f"sample_weight has {w.shape[0]} entries for {n} examples", "pass one weight per example")
    if not bool(xp.isfinite(w).all()) or bool((w < 0).any()) or not float(w.sum()) > 0:
        raise DataError(f"sample_weight must be finite and >= 0 with a positive sum; got sum {float(w.sum())!r}",
                        "fix the event weights (negative weights are not supported by the trees)")
    return w


def check_targets(y, n: int, xp=np, *, numeric=False):
    """``y`` as a 1-D array of length ``n`` (finite numbers if ``numeric``); DataError otherwise."""
    y = xp.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"y must have shape ({n},); got {y.shape}", "pass one target per example of X")
    if numeric and (y.dtype.kind not in "biuf" or not bool(xp.isfinite(y).all())):
        raise DataError(f"regression targets must be finite numbers; got dtype {y.dtype}",
                        "convert y to floats and remove NaN/inf values")
    return y


# ----------------------------------------------------------------------------- presorted columns
def presort(X):
    """Row ids that sort each column of X, shape (n, F); stable, so tied values keep row order.

    Sorting once and then *partitioning* the sorted ids at every split (:func:`partition_sorted`)
    keeps each leaf's columns sorted in O(m F) instead of re-sorting in O(m F log m).
    """
    return array_module(X).argsort(X, axis=0, kind="stable")


def partition_sorted(sorted_rows, go_left):
    """Split per-column sorted row ids (m, F) into the left and right child's, each still sorted.

    ``go_left`` is a boolean array indexed by row id (only the rows in ``sorted_rows`` are read).
    Every column holds the same rows, so each keeps the same number m_L of left rows.
    """
    mask = go_left[sorted_rows].T                      # (F, m); boolean indexing walks it column by column
    n_features, n_left = sorted_rows.shape[1], int(mask[0].sum())
    left = sorted_rows.T[mask].reshape(n_features, n_left).T
    right = sorted_rows.T[~mask].reshape(n_features, -1).T
    return left, right


# ----------------------------------------------------------------------------- tree arrays
@dataclass
class TreeArrays:
    """A binary tree as flat arrays indexed by node id (node 0 is the root).

    Attributes
    ----------
    children_left, children_right : ndarray of shape (n_nodes,)
        Child node ids, ``LEAF`` (-1) for leaves.
    feature : ndarray of shape (n_nodes,)
        Split feature of an internal node, ``LEAF`` for leaves.
    threshold : ndarray of shape (n_nodes,)
        Split threshold t of an internal node.
    value : ndarray of shape (n_nodes, n_outputs)
        Prediction of the node (class probabilities, mean target, or boosting leaf weight).
    """

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.children_left.shape[0])

    @property
    def n_leaves(self) -> int:
        return int((self.children_left == LEAF).sum())

    @property
    def max_depth(self) -> int:
        depth = np.zeros(self.n_nodes, dtype=np.int64)
        for node in range(self.n_nodes):  # parents always have smaller ids than their children
            if self.children_left[node] != LEAF:
                depth[self.children_left[node]] = depth[self.children_right[node]] = depth[node] + 1
        return int(depth.max())

    def apply(self, X, *, strict: bool = False):
        """Leaf id reached by each example: go left if x_f <= t (``strict``: if x_f < t, as in XGBoost).

        Vectorised over examples; the Python loop runs once per tree level.
        """
        xp = array_module(X)
        left, right = xp.asarray(self.children_left), xp.asarray(self.children_right)
        feature, threshold = xp.asarray(self.feature), xp.asarray(self.threshold)
        node = xp.zeros(X.shape[0], dtype=np.int64)
        active = xp.arange(X.shape[0])
        while active.shape[0]:
            here = node[active]
            internal = left[here] != LEAF
            active, here = active[internal], here[internal]
            x = X[active, feature[here]]
            go_left = x < threshold[here] if strict else x <= threshold[here]
            node[active] = xp.where(go_left, left[here], right[here])
        return node
