"""The core CART tree: purity functions, and split-for-split equality with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier as SkClassifier
from sklearn.tree import DecisionTreeRegressor as SkRegressor

from hepml.core.decision_tree import DecisionTreeClassifier, DecisionTreeRegressor, entropy, gini, mse
from hepml.errors import ConfigError, DataError


def make_data(n=500, n_features=4, seed=0):
    """Continuous features without ties (float32-exact, as scikit-learn rounds X to float32),
    a 3-class label, a regression target, and dyadic weights (k/64: sums are exact, so a pure
    node has impurity exactly 0 in both implementations, and weighted counts do not tie)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32).astype(np.float64)
    y_class = ((X[:, 0] + X[:, 1] * X[:, 2] + 0.5 * rng.normal(size=n)) > 0).astype(int) + (X[:, 3] > 1)
    w = rng.integers(32, 128, n) / 64
    y_reg = X[:, 0] + np.sin(X[:, 1]) + 0.1 * rng.normal(size=n)
    X_test = rng.normal(size=(2000, n_features))
    return X, y_class, y_reg, w, X_test


def assert_same_tree(ours, sk):
    """Node by node (both number nodes in pre-order): children, feature, threshold, bookkeeping."""
    a, b = ours.tree_, sk.tree_
    assert a.n_nodes == b.node_count
    np.testing.assert_array_equal(a.children_left, b.children_left)
    np.testing.assert_array_equal(a.children_right, b.children_right)
    internal = a.children_left != -1
    np.testing.assert_array_equal(a.feature[internal], b.feature[internal])
    np.testing.assert_allclose(a.threshold[internal], b.threshold[internal], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.n_node_samples, b.n_node_samples)
    np.testing.assert_allclose(a.weighted_n_node_samples, b.weighted_n_node_samples, rtol=1e-12)
    np.testing.assert_allclose(a.impurity, b.impurity, rtol=1e-9, atol=1e-12)


def test_purity_functions_on_known_values():
    assert gini(np.array([5.0, 5.0])) == pytest.approx(0.5)
    assert gini(np.array([3.0, 0.0])) == 0.0
    assert gini(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(0.75)
    assert entropy(np.array([2.0, 2.0])) == pytest.approx(1.0)          # one bit
    assert entropy(np.array([4.0, 0.0])) == 0.0
    assert entropy(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(2.0)
    y, w = np.array([1.0, 2.0, 4.0, 7.0]), np.array([1.0, 2.0, 1.0, 0.5])
    moments = np.array([w.sum(), (w * y).sum(), (w * y * y).sum()])
    mean = np.average(y, weights=w)
    assert mse(moments) == pytest.approx(np.average((y - mean) ** 2, weights=w))
    # vectorised over many regions at once (the split search relies on it)
    many = np.array([[5.0, 5.0], [3.0, 0.0]])
    np.testing.assert_allclose(gini(many), [0.5, 0.0])


@pytest.mark.parametrize("criterion, params", [
    ("gini", {"min_samples_leaf": 5}),
    ("entropy", {"min_samples_leaf": 5}),
    ("gini", {"max_depth": 8, "min_samples_leaf": 3, "min_samples_split": 10}),
    ("log_loss", {"max_depth": 6, "min_samples_leaf": 4}),
])
def test_classifier_equals_sklearn_with_weights(criterion, params):
    X, y, _, w, X_test = make_data()
    ours = DecisionTreeClassifier(criterion=criterion, **params).fit(X, y, sample_weight=w)
    sk = SkClassifier(criterion=criterion, random_state=0, **params).fit(X, y, sample_weight=w)
    assert ours.get_depth() == sk.get_depth() and ours.get_n_leaves() == sk.get_n_leaves() > 10
    assert_same_tree(ours, sk)
    np.testing.assert_allclose(ours.predict_proba(X_test), sk.predict_proba(X_test), atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X_test), sk.predict(X_test))
    np.testing.assert_allclose(ours.feature_importances_, sk.feature_importances_, atol=1e-9)


def test_classifier_equals_sklearn_unweighted_string_labels():
    """Unweighted class counts tie more easily (two different cuts leaving the same counts; then
    scikit-learn's random feature order decides): with >= 20 examples per leaf this sample has none."""
    X, y, _, _, X_test = make_data(seed=1)
    labels = np.array(["b-jet", "c-jet", "light"])[y]
    ours = DecisionTreeClassifier(max_depth=4, min_samples_leaf=20).fit(X, labels)
    sk = SkClassifier(max_depth=4, min_samples_leaf=20, random_state=0).fit(X, labels)
    assert_same_tree(ours, sk)
    np.testing.assert_array_equal(ours.classes_, sk.classes_)
    np.testing.assert_array_equal(ours.predict(X_test), sk.predict(X_test))


@pytest.mark.parametrize("params, weighted", [
    ({"min_samples_leaf": 5}, True),
    ({"max_depth": 5, "min_samples_leaf": 5}, True),
    ({"max_depth": 4}, False),
])
def test_regressor_equals_sklearn(params, weighted):
    X, _, y, w, X_test = make_data()
    w = w if weighted else None
    ours = DecisionTreeRegressor(**params).fit(X, y, sample_weight=w)
    sk = SkRegressor(random_state=0, **params).fit(X, y, sample_weight=w)
    assert_same_tree(ours, sk)
    np.testing.assert_allclose(ours.tree_.value[:, 0], sk.tree_.value[:, 0, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.predict(X_test), sk.predict(X_test), rtol=1e-12, atol=1e-12)


def test_the_comparison_can_fail():
    """A different min_samples_leaf gives a different tree: the equality above is not vacuous."""
    X, y, _, w, _ = make_data()
    ours = DecisionTreeClassifier(min_samples_leaf=6).fit(X, y, sample_weight=w)
    sk = SkClassifier(min_samples_leaf=5, random_state=0).fit(X, y, sample_weight=w)
    with pytest.raises(AssertionError):
        assert_same_tree(ours, sk)


def test_stopping_rules_and_weights():
    X, y, _, w, _ = make_data()
    tree = DecisionTreeClassifier(min_samples_leaf=20, max_depth=4).fit(X, y, sample_weight=w)
    leaves = tree.tree_.children_left == -1
    assert tree.get_depth() <= 4
    assert tree.tree_.n_node_samples[leaves].min() >= 20
    # leaves are pure or could not be split further; a fully grown tree fits the training set
    full = DecisionTreeClassifier().fit(X, y)
    assert (full.predict(X) == y).all()
    # zero-weight examples are ignored, as if absent
    w0 = w.copy()
    w0[:100] = 0
    a = DecisionTreeRegressor(max_depth=4).fit(X, X[:, 0] ** 2, sample_weight=w0)
    b = DecisionTreeRegressor(max_depth=4).fit(X[100:], X[100:, 0] ** 2, sample_weight=w[100:])
    np.testing.assert_array_equal(a.tree_.threshold, b.tree_.threshold)


def test_feature_subsampling_is_seeded():
    X, y, _, _, X_test = make_data()
    one = DecisionTreeClassifier(max_features=1, seed=3).fit(X, y).predict_proba(X_test)
    same = DecisionTreeClassifier(max_features=1, seed=3).fit(X, y).predict_proba(X_test)
    other = DecisionTreeClassifier(max_features=1, seed=4).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(one, same)
    assert not np.array_equal(one, other)


@pytest.mark.parametrize("name, value", [
    ("criterion", "squared_error"), ("max_depth", 0), ("max_depth", 2.5), ("min_samples_split", 1),
    ("min_samples_leaf", 0), ("max_features", "all"), ("max_features", 0), ("max_features", 1.5), ("max_features", 9),
    ("seed", -1),
])
def test_bad_hyperparameters_raise_config_error(name, value):
    X, y, _, _, _ = make_data(n=50)
    with pytest.raises(ConfigError, match=f"{name}={value!r}"):
        DecisionTreeClassifier(**{name: value}).fit(X, y)


def test_bad_inputs():
    X, y, _, _, _ = make_data(n=50)
    with pytest.raises(ConfigError, match="not fitted"):
        DecisionTreeRegressor().predict(X)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        DecisionTreeClassifier().fit(X_nan, y)
    with pytest.raises(DataError, match="sample_weight"):
        DecisionTreeClassifier().fit(X, y, sample_weight=-np.ones(len(y)))
    tree = DecisionTreeClassifier(max_depth=2).fit(X, y)
    with pytest.raises(DataError, match="3 features"):
        tree.predict(X[:, :3])
    with pytest.raises(DataError, match="y must have shape"):
        DecisionTreeClassifier().fit(X, y[:10])
    with pytest.raises(DataError, match="regression targets"):
        DecisionTreeRegressor().fit(X, y.astype(str))
