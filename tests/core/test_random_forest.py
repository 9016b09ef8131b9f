"""The core random forest: as accurate as scikit-learn's within statistical noise, and seeded."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier as SkForestClassifier
from sklearn.ensemble import RandomForestRegressor as SkForestRegressor

from hepml.core.decision_tree import DecisionTreeClassifier, DecisionTreeRegressor
from hepml.core.random_forest import RandomForestClassifier, RandomForestRegressor
from hepml.errors import ConfigError


def make_data(n, seed):
    """A non-linear signal/background problem: label = [x0 + x1 x2 − |x3| + noise > −0.5]."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    z = X[:, 0] + X[:, 1] * X[:, 2] - np.abs(X[:, 3])
    return X, (z + 0.7 * rng.normal(size=n) > -0.5).astype(int), z + 0.3 * rng.normal(size=n)


@pytest.fixture(scope="module")
def data():
    X, y, t = make_data(1000, seed=0)
    X_test, y_test, t_test = make_data(2000, seed=1)
    return X, y, t, X_test, y_test, t_test


def test_accuracy_within_noise_of_sklearn(data):
    """|acc_core − acc_sklearn| <= 3σ with σ = sqrt(2 p (1 − p) / n_test): the spread of the
    difference of two accuracies measured on independent test sets of n_test examples."""
    X, y, _, X_test, y_test, _ = data
    params = {"n_estimators": 25, "min_samples_leaf": 2, "max_features": "sqrt"}
    core = RandomForestClassifier(seed=0, **params).fit(X, y)
    sk = SkForestClassifier(random_state=0, **params).fit(X, y)
    acc_core, acc_sk = (core.predict(X_test) == y_test).mean(), (sk.predict(X_test) == y_test).mean()
    sigma = np.sqrt(2 * acc_sk * (1 - acc_sk) / len(y_test))
    assert abs(acc_core - acc_sk) <= 3 * sigma, (acc_core, acc_sk, sigma)
    # the forest is worth it: clearly better than one fully grown core tree
    acc_tree = (DecisionTreeClassifier(min_samples_leaf=2).fit(X, y).predict(X_test) == y_test).mean()
    assert acc_core > acc_tree + 3 * sigma / np.sqrt(2), (acc_core, acc_tree)
    proba = core.predict_proba(X_test)
    assert proba.shape == (len(y_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # both forests find the same informative features (x0..x3); x4..x7 are noise
    top4 = [set(np.argsort(model.feature_importances_)[-4:].tolist()) for model in (core, sk)]
    assert top4[0] == top4[1] == {0, 1, 2, 3}


def test_regression_mse_within_noise_of_sklearn(data):
    """|MSE_core − MSE_sklearn| <= 3σ with σ² = (Var(e²_core) + Var(e²_sk)) / n_test."""
    X, _, t, X_test, _, t_test = data
    params = {"n_estimators": 15, "min_samples_leaf": 3, "max_features": 0.5}
    e_core = (RandomForestRegressor(seed=0, **params).fit(X, t).predict(X_test) - t_test) ** 2
    e_sk = (SkForestRegressor(random_state=0, **params).fit(X, t).predict(X_test) - t_test) ** 2
    sigma = np.sqrt((e_core.var() + e_sk.var()) / len(t_test))
    assert abs(e_core.mean() - e_sk.mean()) <= 3 * sigma, (e_core.mean(), e_sk.mean(), sigma)
    assert e_core.mean() < 0.5 * t_test.var()  # it explains most of the variance


def test_without_bootstrap_and_subsampling_every_tree_is_the_cart_tree(data):
    """The randomness is all in the bootstrap and the feature draws: remove both and B equal trees remain."""
    X, y, t, X_test, _, _ = data
    forest = RandomForestClassifier(n_estimators=3, bootstrap=False, max_features=None, max_depth=5).fit(X, y)
    tree = DecisionTreeClassifier(max_depth=5).fit(X, y)
    np.testing.assert_allclose(forest.predict_proba(X_test), tree.predict_proba(X_test), atol=1e-12)
    reg = RandomForestRegressor(n_estimators=2, bootstrap=False, max_depth=4).fit(X, t)
    np.testing.assert_allclose(reg.predict(X_test), DecisionTreeRegressor(max_depth=4).fit(X, t).predict(X_test))


def test_seeded_and_weighted(data):
    X, y, _, X_test, _, _ = data
    a = RandomForestClassifier(n_estimators=5, max_depth=6, seed=7).fit(X, y).predict_proba(X_test)
    b = RandomForestClassifier(n_estimators=5, max_depth=6, seed=7).fit(X, y).predict_proba(X_test)
    c = RandomForestClassifier(n_estimators=5, max_depth=6, seed=8).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # weighting the signal class up moves the probabilities towards it
    w = np.where(y == 1, 3.0, 1.0)
    up = RandomForestClassifier(n_estimators=5, max_depth=6, seed=7).fit(X, y, sample_weight=w).predict_proba(X_test)
    assert up[:, 1].mean() > a[:, 1].mean() + 0.05


def test_a_class_missing_from_a_bootstrap_sample_keeps_the_columns():
    X, _, _ = make_data(60, seed=3)
    y = np.zeros(60, dtype=int)
    y[0] = 2  # one example of class 2: most bootstrap samples miss it
    y[1:10] = 1
    forest = RandomForestClassifier(n_estimators=10, seed=0).fit(X, y)
    proba = forest.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("name, value", [
    ("n_estimators", 0), ("bootstrap", "yes"), ("max_features", "all"), ("min_samples_leaf", 0), ("criterion", "mse"),
])
def test_bad_hyperparameters_raise_config_error(name, value):
    X, y, _ = make_data(30, seed=0)
    with pytest.raises(ConfigError, match=f"RandomForestClassifier: invalid {name}={value!r}"):
        RandomForestClassifier(**{name: value}).fit(X, y)
    with pytest.raises(ConfigError, match="not fitted"):
        RandomForestClassifier().predict(X)
