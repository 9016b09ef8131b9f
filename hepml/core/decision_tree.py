"""Decision trees (CART), grown greedily as Algorithm 1 on the slides.

Algorithm 1 (Decision tree)::

    leaf set = {X_train}
    while not stopping criteria:
        leaf to split = Choose(leaf set)
        left leaf, right leaf = Split(leaf to split)
        add left leaf, right leaf to leaf set; remove leaf to split

``Choose`` takes the most recently added leaf (depth first, left child first), so nodes are
numbered in the same pre-order as scikit-learn. ``Split`` tries every feature a and every
threshold t half-way between two neighbouring sorted values and keeps the question
``x^(a) <= t`` that makes the children purest: it maximises the impurity decrease

    ΔH = w H(R) − w_L H(R_L) − w_R H(R_R)            (w = Σ_i w_i over the examples in R)

with a purity function H: :func:`gini`, :func:`entropy` (classification) or :func:`mse`
(regression). The search is vectorised: the examples of every leaf are kept sorted along every
feature (sorted once at the root, then partitioned at each split), and cumulative sums of the
per-example statistics give the left-child statistics of *all* thresholds at once (no Python
loop over examples). A leaf stops being split when it is pure,
too deep (``max_depth``), too small (``min_samples_split``), or when no threshold leaves
``min_samples_leaf`` examples on both sides.

On data without ties these trees equal ``sklearn.tree.DecisionTreeClassifier`` /
``DecisionTreeRegressor`` split for split (tests/core/test_decision_tree.py). Details kept
from scikit-learn for that: feature values closer than 1e-7 count as equal; the threshold is
x_p/2 + x_{p+1}/2; ties between thresholds go to the smallest, between features to the lowest
index (scikit-learn visits features in a random order instead, so a tie can differ there);
examples with zero weight are dropped. scikit-learn rounds X to float32 first; hepml keeps float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ._tree_util import (LEAF, Interval, Options, TreeArrays, array_module, check_sample_weight, check_targets,
                         check_X, partition_sorted, presort, validate_params)

__all__ = ["gini", "entropy", "mse", "DecisionTreeClassifier", "DecisionTreeRegressor", "CartTree"]

FEATURE_THRESHOLD = 1e-7  # feature values closer than this are treated as one value (as in scikit-learn)
EPSILON = np.finfo(np.float64).eps  # a node with impurity <= EPSILON is pure


# ----------------------------------------------------------------------------- purity functions
def gini(class_weights):
    """Gini impurity H(R) = 1 − Σ_k p_k², with p_k = w_k / Σ_k w_k.

    Parameters
    ----------
    class_weights : ndarray of shape (..., n_classes)
        Weighted class counts w_k of one or many (e.g. all candidate) regions R.
    """
    xp = array_module(class_weights)
    total = class_weights.sum(axis=-1, keepdims=True)
    p = class_weights / xp.where(total > 0, total, 1.0)
    return 1.0 - (p * p).sum(axis=-1)


def entropy(class_weights):
    """Entropy H(R) = −Σ_k p_k log₂ p_k (0 log 0 = 0), with p_k = w_k / Σ_k w_k.

    Parameters
    ----------
    class_weights : ndarray of shape (..., n_classes)
    """
    xp = array_module(class_weights)
    total = class_weights.sum(axis=-1, keepdims=True)
    p = class_weights / xp.where(total > 0, total, 1.0)
    return -(p * xp.log2(xp.where(p > 0, p, 1.0))).sum(axis=-1)


def mse(moments):
    """Mean squared error of predicting the mean: H(R) = ⟨y²⟩ − ⟨y⟩² (the weighted variance).

    Parameters
    ----------
    moments : ndarray of shape (..., 3)
        (Σ w_i, Σ w_i y_i, Σ w_i y_i²) over the examples of one or many regions R.
    """
    xp = array_module(moments)
    w = xp.where(moments[..., 0] > 0, moments[..., 0], 1.0)
    mean = moments[..., 1] / w
    return moments[..., 2] / w - mean * mean


@dataclass
class CartTree(TreeArrays):
    """:class:`TreeArrays` plus the per-node bookkeeping of ``sklearn.tree._tree.Tree``.

    Attributes
    ----------
    impurity : ndarray of shape (n_nodes,)
        H of the examples reaching the node.
    n_node_samples : ndarray of shape (n_nodes,)
        Number of training examples reaching the node.
    weighted_n_node_samples : ndarray of shape (n_nodes,)
        Their summed weight w.
    """

    impurity: np.ndarray = None
    n_node_samples: np.ndarray = None
    weighted_n_node_samples: np.ndarray = None


@dataclass
class _Leaf:
    """A member of the leaf set: its examples (row ids sorted along every feature), depth, and parent."""

    sorted_rows: np.ndarray  # (m, F): column a lists the leaf's examples in increasing x^(a)
    depth: int
    parent: int
    is_left: bool


class _BaseDecisionTree:
    """Shared CART machinery; subclasses define the per-example statistics and node values."""

    _CRITERIA: dict = {}

    def __init__(self, *, criterion, max_depth=None, min_samples_split=2, min_samples_leaf=1,
                 max_features=None, seed=0):
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.seed = seed

    # -- hyperparameters
    @classmethod
    def _constraints(cls) -> dict:
        return {
            "criterion": Options(*cls._CRITERIA),
            "max_depth": Interval(1, None, integer=True, none_ok=True),
            "min_samples_split": Interval(2, None, integer=True),
            "min_samples_leaf": Interval(1, None, integer=True),
            "max_features": (Interval(1, None, integer=True, none_ok=True), Interval(0, 1, closed="right"),
                             Options("sqrt", "log2")),
            "seed": Interval(0, None, integer=True, none_ok=True),
        }

    def _validate(self):
        validate_params(self, self._constraints())

    def _n_split_features(self, n_features: int) -> int:
        m = self.max_features
        if m is None:
            return n_features
        if m == "sqrt":
            return max(1, int(np.sqrt(n_features)))
        if m == "log2":
            return max(1, int(np.log2(n_features)))
        if isinstance(m, float):
            return max(1, int(m * n_features))
        if m > n_features:
            raise ConfigError(f"{type(self).__name__}: max_features={m} exceeds the {n_features} features of X",
                              f"use max_features <= {n_features}")
        return m

    # -- Algorithm 1
    def _grow(self, X, stats, weight_of):
        """Grow the tree on X (n, F) with per-example statistics ``stats`` (n, C)."""
        xp = array_module(X)
        impurity_of = self._CRITERIA[self.criterion]
        rng = np.random.default_rng(self.seed)
        k_features = self._n_split_features(X.shape[1])
        max_depth = np.inf if self.max_depth is None else self.max_depth
        nodes = {k: [] for k in ("left", "right", "feature", "threshold", "stats", "n", "decrease")}

        go_left = xp.zeros(X.shape[0], dtype=bool)                 # side of each row at the current split
        leaf_set = [_Leaf(presort(X), depth=0, parent=LEAF, is_left=False)]  # {X_train}, sorted once
        while leaf_set:                                            # stopping criterion: nothing left to split
            leaf = leaf_set.pop()                                  # Choose: the last leaf added (depth first)
            node = len(nodes["left"])
            examples = leaf.sorted_rows[:, 0]
            node_stats = stats[examples].sum(axis=0)
            for key, val in (("left", LEAF), ("right", LEAF), ("feature", LEAF), ("threshold", -2.0),
                             ("stats", node_stats), ("n", examples.shape[0]), ("decrease", 0.0)):
                nodes[key].append(val)
            if leaf.parent != LEAF:
                nodes["left" if leaf.is_left else "right"][leaf.parent] = node

            n = examples.shape[0]
            if (leaf.depth >= max_depth or n < self.min_samples_split or n < 2 * self.min_samples_leaf
                    or float(impurity_of(node_stats)) <= EPSILON):
                continue                                           # a final leaf
            features = np.arange(X.shape[1])
            if k_features < X.shape[1]:                            # random-forest style feature subsample
                features = np.sort(rng.choice(X.shape[1], size=k_features, replace=False))
            split = self._split(X, stats, leaf.sorted_rows[:, features], features, impurity_of, weight_of)  # Split
            if split is None:
                continue
            feature, threshold, decrease = split
            nodes["feature"][node], nodes["threshold"][node], nodes["decrease"][node] = feature, threshold, decrease
            go_left[examples] = X[examples, feature] <= threshold
            left_rows, right_rows = partition_sorted(leaf.sorted_rows, go_left)
            leaf_set.append(_Leaf(right_rows, leaf.depth + 1, node, is_left=False))
            leaf_set.append(_Leaf(left_rows, leaf.depth + 1, node, is_left=True))  # chosen next: left first

        node_stats = xp.stack(nodes["stats"])
        decrease = np.zeros(X.shape[1])
        np.add.at(decrease, [f for f in nodes["feature"] if f != LEAF],
                  [d for f, d in zip(nodes["feature"], nodes["decrease"]) if f != LEAF])
        self.feature_importances_ = decrease / decrease.sum() if decrease.sum() > 0 else decrease
        self.tree_ = CartTree(
            children_left=np.asarray(nodes["left"], dtype=np.int64),
            children_right=np.asarray(nodes["right"], dtype=np.int64),
            feature=np.asarray(nodes["feature"], dtype=np.int64),
            threshold=np.asarray(nodes["threshold"], dtype=np.float64),
            value=self._node_value(node_stats),
            impurity=impurity_of(node_stats),
            n_node_samples=np.asarray(nodes["n"], dtype=np.int64),
            weighted_n_node_samples=weight_of(node_stats),
        )

    def _split(self, X, stats, sorted_rows, features, impurity_of, weight_of):
        """Split(R): the best question x^(a) <= t over ``features``, or None when there is none.

        ``sorted_rows`` (m, F') lists the leaf's examples sorted along each of ``features``.
        Returns (feature, threshold, impurity decrease ΔH).
        """
        xp = array_module(X)
        m = sorted_rows.shape[0]
        xs = X[sorted_rows, xp.asarray(features)[None, :]]  # (m, F') each column sorted
        S = stats[sorted_rows]                              # (m, F', C) statistics in sorted order
        left = xp.cumsum(S, axis=0)[:-1]                    # R_L = first p+1 examples, p = 0..m-2
        total = stats[sorted_rows[:, 0]].sum(axis=0)
        right = total - left
        n_left = xp.arange(1, m)[:, None]
        valid = ((xs[1:] > xs[:-1] + FEATURE_THRESHOLD)    # a threshold between two distinct values
                 & (n_left >= self.min_samples_leaf) & (m - n_left >= self.min_samples_leaf))
        if not bool(valid.any()):
            return None
        w_left, w_right = weight_of(left), weight_of(right)
        # maximise −(w_L H(R_L) + w_R H(R_R)), i.e. ΔH up to the constant w H(R) of the parent
        score = xp.where(valid, -(w_left * impurity_of(left) + w_right * impurity_of(right)), -np.inf)
        best_p = xp.argmax(score, axis=0)                   # first (smallest) threshold per feature
        best_f = int(xp.argmax(score[best_p, xp.arange(len(features))]))  # lowest feature on ties
        p = int(best_p[best_f])
        lo, hi = float(xs[p, best_f]), float(xs[p + 1, best_f])
        threshold = lo / 2.0 + hi / 2.0
        if threshold == hi or not np.isfinite(threshold):
            threshold = lo
        decrease = float(weight_of(total) * impurity_of(total) + score[p, best_f])
        return int(features[best_f]), threshold, decrease

    def _check_fitted(self):
        if not hasattr(self, "tree_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet", "call fit(X, y) first")

    def apply(self, X):
        """Leaf id of each example.

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features)

        Returns
        -------
        ndarray of shape (n_examples,)
        """
        self._check_fitted()
        return self.tree_.apply(check_X(X, n_features=self.n_features_in_))

    def get_depth(self) -> int:
        """Depth of the fitted tree (a single leaf has depth 0)."""
        self._check_fitted()
        return self.tree_.max_depth

    def get_n_leaves(self) -> int:
        """Number of leaves of the fitted tree."""
        self._check_fitted()
        return self.tree_.n_leaves

    def _prepare(self, X, y, sample_weight, numeric=False):
        self._validate()
        X = check_X(X)
        xp = array_module(X)
        y = check_targets(y, X.shape[0], xp, numeric=numeric)
        w = check_sample_weight(sample_weight, X.shape[0], xp)
        keep = w > 0                                        # zero-weight examples play no part
        self.n_features_in_ = X.shape[1]
        return X[keep], y[keep], w[keep]


class DecisionTreeClassifier(_BaseDecisionTree):
    """CART classification tree (Algorithm 1) with the Gini or entropy purity.

    Parameters
    ----------
    criterion : {"gini", "entropy", "log_loss"}, default="gini"
        Purity function H; "log_loss" is another name for "entropy".
    max_depth : int or None, default=None
        Leaves at this depth are not split; None grows until the leaves are pure or small.
    min_samples_split : int, default=2
        A leaf with fewer examples is not split.
    min_samples_leaf : int, default=1
        Every child keeps at least this many examples.
    max_features : int, float, "sqrt", "log2" or None, default=None
        Features tried at each split, drawn afresh per node (random forests); None tries all.
    seed : int or None, default=0
        Seed of the feature draws (only used when ``max_features`` is set).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    tree_ : CartTree
        Node arrays; ``tree_.value`` holds the weighted class fractions of each node.
    feature_importances_ : ndarray of shape (n_features,)
        Total ΔH per feature, normalised to sum 1 (as scikit-learn's).
    """

    _CRITERIA = {"gini": gini, "entropy": entropy, "log_loss": entropy}

    def __init__(self, *, criterion="gini", max_depth=None, min_samples_split=2, min_samples_leaf=1,
                 max_features=None, seed=0):
        super().__init__(criterion=criterion, max_depth=max_depth, min_samples_split=min_samples_split,
                         min_samples_leaf=min_samples_leaf, max_features=max_features, seed=seed)

    def fit(self, X, y, sample_weight=None):
        """Grow the tree.

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features)
        y : ndarray of shape (n_examples,)
            Class labels (any sortable values).
        sample_weight : ndarray of shape (n_examples,), optional
            Event weights w_i >= 0.

        Returns
        -------
        self
        """
        X, y, w = self._prepare(X, y, sample_weight)
        xp = array_module(X)
        self.classes_, y_index = xp.unique(y, return_inverse=True)
        self.n_classes_ = int(self.classes_.shape[0])
        stats = xp.zeros((X.shape[0], self.n_classes_))
        stats[xp.arange(X.shape[0]), y_index] = w              # weighted one-hot: class counts add up
        self._grow(X, stats, weight_of=lambda s: s.sum(axis=-1))
        return self

    def _node_value(self, node_stats):
        return node_stats / node_stats.sum(axis=-1, keepdims=True)

    def predict_proba(self, X):
        """Class probabilities: the weighted class fractions of the leaf reached.

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features)

        Returns
        -------
        ndarray of shape (n_examples, n_classes)
        """
        leaves = self.apply(X)
        return self.tree_.value[leaves]

    def predict(self, X):
        """Most probable class of each example, shape (n_examples,)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class DecisionTreeRegressor(_BaseDecisionTree):
    """CART regression tree (Algorithm 1) with the squared-error purity :func:`mse`.

    Parameters
    ----------
    criterion : {"squared_error"}, default="squared_error"
    max_depth, min_samples_split, min_samples_leaf, max_features, seed
        As for :class:`DecisionTreeClassifier`.

    Attributes
    ----------
    tree_ : CartTree
        Node arrays; ``tree_.value[:, 0]`` is the weighted mean target of each node.
    feature_importances_ : ndarray of shape (n_features,)
    """

    _CRITERIA = {"squared_error": mse}

    def __init__(self, *, criterion="squared_error", max_depth=None, min_samples_split=2, min_samples_leaf=1,
                 max_features=None, seed=0):
        super().__init__(criterion=criterion, max_depth=max_depth, min_samples_split=min_samples_split,
                         min_samples_leaf=min_samples_leaf, max_features=max_features, seed=seed)

    def fit(self, X, y, sample_weight=None):
        """Grow the tree.

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features)
        y : ndarray of shape (n_examples,)
            Real-valued targets.
        sample_weight : ndarray of shape (n_examples,), optional

        Returns
        -------
        self
        """
        X, y, w = self._prepare(X, y, sample_weight, numeric=True)
        xp = array_module(X)
        y = y.astype(np.float64)
        stats = xp.stack([w, w * y, w * y * y], axis=1)        # moments (Σw, Σwy, Σwy²) add up
        self._grow(X, stats, weight_of=lambda s: s[..., 0])
        return self

    def _node_value(self, node_stats):
        return (node_stats[:, 1] / node_stats[:, 0])[:, None]

    def predict(self, X):
        """Weighted mean target of the leaf reached, shape (n_examples,)."""
        leaves = self.apply(X)
        return self.tree_.value[leaves, 0]
