"""Random forests: many decorrelated CART trees, averaged.

A single deep tree has low bias but high variance: a small change of the training set changes
its splits. Breiman's random forest averages B trees made different in two ways:

1. **Bagging** — each tree is grown on a bootstrap sample: N draws with replacement from the N
   training examples (about 63% distinct; the rest are "out of bag"). A bootstrap count c_i
   multiplies the example's weight, so no data are copied.
2. **Feature subsampling** — at every split only ``max_features`` randomly chosen features
   are tried (√F by default for classification), so that one strong feature does not make
   all trees alike.

The forest predicts the mean of the trees' class probabilities (classification) or of their
predictions (regression): averaging B trees of variance σ² and correlation ρ leaves
ρσ² + (1−ρ)σ²/B. The trees are :class:`~hepml.core.decision_tree.DecisionTreeClassifier`
/ ``Regressor`` from this package; accuracy agrees with ``sklearn.ensemble.RandomForest*``
within statistical noise (tests/core/test_random_forest.py), though the random draws differ.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ._tree_util import Interval, Options, array_module, check_sample_weight, check_targets, check_X, validate_params
from .decision_tree import DecisionTreeClassifier, DecisionTreeRegressor

__all__ = ["RandomForestClassifier", "RandomForestRegressor"]


class _BaseForest:
    """Shared bagging loop; subclasses choose the tree class and how to average."""

    _TREE = None

    def __init__(self, *, n_estimators, criterion, max_depth, min_samples_split, min_samples_leaf, max_features,
                 bootstrap, seed):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.seed = seed

    def _fit_trees(self, X, y, sample_weight):
        validate_params(self, {**self._TREE._constraints(), "n_estimators": Interval(1, None, integer=True),
                               "bootstrap": Options(True, False)})
        X = check_X(X)
        xp = array_module(X)
        y = self._encode_targets(check_targets(y, X.shape[0], xp, numeric=self._TREE is DecisionTreeRegressor))
        w = check_sample_weight(sample_weight, X.shape[0], xp)
        self.n_features_in_ = X.shape[1]
        rng = np.random.default_rng(self.seed)
        self.estimators_ = []
        for _ in range(self.n_estimators):
            tree_w = w
            if self.bootstrap:                                   # bootstrap counts c_i as weights
                counts = np.bincount(rng.integers(0, X.shape[0], X.shape[0]), minlength=X.shape[0])
                tree_w = w * xp.asarray(counts)
            tree = self._TREE(criterion=self.criterion, max_depth=self.max_depth,
                              min_samples_split=self.min_samples_split, min_samples_leaf=self.min_samples_leaf,
                              max_features=self.max_features, seed=int(rng.integers(2**31)))
            self.estimators_.append(tree.fit(X, y, sample_weight=tree_w))
        self.feature_importances_ = np.mean([t.feature_importances_ for t in self.estimators_], axis=0)
        return self

    def _check_fitted(self, X):
        if not hasattr(self, "estimators_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet", "call fit(X, y) first")
        return check_X(X, n_features=self.n_features_in_)


class RandomForestClassifier(_BaseForest):
    """Random forest of CART classification trees.

    Parameters
    ----------
    n_estimators : int, default=100
        Number of trees B.
    criterion : {"gini", "entropy", "log_loss"}, default="gini"
    max_depth : int or None, default=None
    min_samples_split : int, default=2
    min_samples_leaf : int, default=1
    max_features : int, float, "sqrt", "log2" or None, default="sqrt"
        Features tried at each split.
    bootstrap : bool, default=True
        Grow each tree on a bootstrap sample (False: on all examples).
    seed : int or None, default=0
        Seed of the bootstrap samples and feature draws.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    estimators_ : list of DecisionTreeClassifier
    feature_importances_ : ndarray of shape (n_features,)
    """

    _TREE = DecisionTreeClassifier

    def __init__(self, *, n_estimators=100, criterion="gini", max_depth=None, min_samples_split=2, min_samples_leaf=1,
                 max_features="sqrt", bootstrap=True, seed=0):
        super().__init__(n_estimators=n_estimators, criterion=criterion, max_depth=max_depth,
                         min_samples_split=min_samples_split, min_samples_leaf=min_samples_leaf,
                         max_features=max_features, bootstrap=bootstrap, seed=seed)

    def fit(self, X, y, sample_weight=None):
        """Grow the trees.

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features)
        y : ndarray of shape (n_examples,)
            Class labels.
        sample_weight : ndarray of shape (n_examples,), optional

        Returns
        -------
        self
        """
        return self._fit_trees(X, y, sample_weight)

    def _encode_targets(self, y):
        self.classes_, y_index = np.unique(np.asarray(y), return_inverse=True)
        return y_index.reshape(-1)

    def predict_proba(self, X):
        """Mean of the trees' class probabilities, shape (n_examples, n_classes)."""
        X = self._check_fitted(X)
        proba = array_module(X).zeros((X.shape[0], self.classes_.shape[0]))
        for tree in self.estimators_:                        # a bootstrap sample may miss a class
            proba[:, tree.classes_] += tree.predict_proba(X)
        return proba / len(self.estimators_)

    def predict(self, X):
        """Most probable class of each example, shape (n_examples,)."""
        best = np.asarray(self.predict_proba(X)).argmax(axis=1)
        return self.classes_[best]


class RandomForestRegressor(_BaseForest):
    """Random forest of CART regression trees.

    Parameters
    ----------
    n_estimators, criterion, max_depth, min_samples_split, min_samples_leaf, bootstrap, seed
        As for :class:`RandomForestClassifier` (criterion: "squared_error").
    max_features : int, float, "sqrt", "log2" or None, default=1.0
        Features tried at each split (1.0: all, scikit-learn's default for regression).

    Attributes
    ----------
    estimators_ : list of DecisionTreeRegressor
    feature_importances_ : ndarray of shape (n_features,)
    """

    _TREE = DecisionTreeRegressor

    def __init__(self, *, n_estimators=100, criterion="squared_error", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, max_features=1.0, bootstrap=True, seed=0):
        super().__init__(n_estimators=n_estimators, criterion=criterion, max_depth=max_depth,
                         min_samples_split=min_samples_split, min_samples_leaf=min_samples_leaf,
                         max_features=max_features, bootstrap=bootstrap, seed=seed)

    def fit(self, X, y, sample_weight=None):
        """Grow the trees.

        Parameters
        ----------
        X : ndarray of shape (n_examples, n_features)
        y : ndarray of shape (n_examples,)
        sample_weight : ndarray of shape (n_examples,), optional

        Returns
        -------
        self
        """
        return self._fit_trees(X, y, sample_weight)

    def _encode_targets(self, y):
        return y.astype(np.float64)

    def predict(self, X):
        """Mean of the trees' predictions, shape (n_examples,)."""
        X = self._check_fitted(X)
        return sum(tree.predict(X) for tree in self.estimators_) / len(self.estimators_)
