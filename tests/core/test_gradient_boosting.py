"""The core GBDT equals XGBoost tree for tree: same split features and float32 thresholds at every
node, leaf values and predictions within 1e-6 (tree_method exact and hist)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb

from hepml.core.gradient_boosting import (GradientBoostingClassifier, GradientBoostingRegressor, leaf_weight,
                                          logistic_grad_hess, quantile_cuts, softmax_grad_hess, split_gain,
                                          squared_error_grad_hess, structure_score)
from hepml.errors import ConfigError, DataError

f32 = np.float32
OBJECTIVES = {"binary": "binary:logistic", "multi": "multi:softprob", "reg": "reg:squarederror"}


def make_data(kind, n=1000, n_features=5, seed=0, weighted=False):
    """Continuous float32 features without ties; a binary, 3-class or real target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(f32)
    z = X[:, 0] + X[:, 1] * X[:, 2] + 0.5 * rng.normal(size=n)
    y = {"binary": (z > 0).astype(float), "multi": np.digitize(z, [-0.5, 0.5]).astype(float),
         "reg": X[:, 0] + np.sin(2 * X[:, 1]) + 0.3 * rng.normal(size=n)}[kind]
    w = rng.uniform(0.5, 1.5, n).astype(f32) if weighted else None
    return X, y, w


def xgboost_trees(booster):
    """XGBoost's trees as the arrays of its JSON model (exact float32 values, unlike text dumps)."""
    return json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]


def tree_differences(ours: dict, theirs: dict, leaf_atol=1e-6):
    """Walk both trees from the root; list every node whose split feature or float32 threshold
    differs, where one is a leaf and the other is not, or whose leaf values differ by > leaf_atol."""
    out, stack = [], [(0, 0, "root")]
    while stack:
        i, j, path = stack.pop()
        leaf_i, leaf_j = ours["left_children"][i] == -1, theirs["left_children"][j] == -1
        if leaf_i != leaf_j:
            out.append(f"{path}: leaf in {'core' if leaf_i else 'xgboost'} only")
        elif leaf_i:
            if abs(f32(ours["split_conditions"][i]) - f32(theirs["split_conditions"][j])) > leaf_atol:
                out.append(f"{path}: leaf {ours['split_conditions'][i]} != {theirs['split_conditions'][j]}")
        elif (ours["split_indices"][i] != theirs["split_indices"][j]
              or f32(ours["split_conditions"][i]) != f32(theirs["split_conditions"][j])):
            out.append(f"{path}: f{ours['split_indices'][i]} < {ours['split_conditions'][i]!r} != "
                       f"f{theirs['split_indices'][j]} < {theirs['split_conditions'][j]!r}")
        else:
            stack += [(ours["left_children"][i], theirs["left_children"][j], path + "L"),
                      (ours["right_children"][i], theirs["right_children"][j], path + "R")]
    return out


def fit_both(kind, *, rounds=10, xgb_params=None, core_params=None, hist_cuts="xgboost", weighted=False, data=None):
    """Train xgboost (1 thread) and the core on the same data and parameters."""
    X, y, w = data if data is not None else make_data(kind, weighted=weighted)
    params = {"max_depth": 4, "learning_rate": 0.3, "reg_lambda": 1.0, "gamma": 0.0, "min_child_weight": 1.0,
              "base_score": 0.5, "tree_method": "exact", **(xgb_params or {})}
    xgb_params = {**params, "objective": OBJECTIVES[kind], "nthread": 1}
    if kind == "multi":
        xgb_params["num_class"] = 3
    dtrain = xgb.DMatrix(X, label=y, weight=w)
    booster = xgb.train(xgb_params, dtrain, rounds)
    fit_kw = {}
    if params["tree_method"] == "hist" and hist_cuts == "xgboost":
        fit_kw["bin_cuts"] = dtrain.get_quantile_cut()   # XGBoost's own bin edges, after training
    Estimator = GradientBoostingRegressor if kind == "reg" else GradientBoostingClassifier
    core = Estimator(n_estimators=rounds, **{**params, **(core_params or {})}).fit(X, y, sample_weight=w, **fit_kw)
    return X, booster, core


def assert_equal_to_xgboost(X, booster, core, *, kind):
    theirs = xgboost_trees(booster)
    assert len(core.trees_) == len(theirs)
    for m, (ours, their) in enumerate(zip(core.trees_, theirs)):
        assert tree_differences(ours.to_xgboost_json(), their) == [], f"tree {m}"
    dm = xgb.DMatrix(X)
    expected = booster.predict(dm)
    got = {"binary": lambda: core.predict_proba(X)[:, 1], "multi": lambda: core.predict_proba(X),
           "reg": lambda: core.predict(X)}[kind]()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(core.decision_function(X), booster.predict(dm, output_margin=True), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- exact greedy
@pytest.mark.parametrize("kind, params, weighted", [
    ("binary", {"base_score": 0.3, "reg_lambda": 1.3}, True),
    ("binary", {"gamma": 1.5, "min_child_weight": 3.0, "max_depth": 5}, False),
    ("multi", {"gamma": 0.3, "min_child_weight": 2.0}, True),
    ("reg", {"gamma": 0.5, "min_child_weight": 5.0, "max_depth": 5, "base_score": 0.1, "learning_rate": 0.1}, False),
])
def test_exact_trees_equal_xgboost(kind, params, weighted):
    X, booster, core = fit_both(kind, xgb_params=params, weighted=weighted)
    assert_equal_to_xgboost(X, booster, core, kind=kind)
    theirs = xgboost_trees(booster)
    assert sum(len(t["left_children"]) for t in theirs) > 10 * len(theirs)  # real trees, not stumps
    if params.get("gamma", 0) > 0:  # gamma pruned something, and the same thing in both
        n_nodes = sum(t.n_nodes for t in core.trees_)
        _, _, unpruned = fit_both(kind, xgb_params={**params, "gamma": 0.0}, weighted=weighted)
        assert sum(t.n_nodes for t in unpruned.trees_) > n_nodes


def test_deeper_exact_trees_and_split_gains_equal_xgboost():
    """40 rounds of depth-6 trees on 3000 examples: still equal, including XGBoost's Gain and Cover."""
    data = make_data("binary", n=3000, weighted=True, seed=1)
    X, booster, core = fit_both("binary", rounds=40, xgb_params={"max_depth": 6, "base_score": 0.4}, data=data)
    assert_equal_to_xgboost(X, booster, core, kind="binary")
    ours = core.get_dump()[7]
    theirs = json.loads(booster.get_dump(dump_format="json", with_stats=True)[7])

    def same(a, b):
        if "leaf" in a:
            return "leaf" in b and a["leaf"] == pytest.approx(b["leaf"], abs=1e-6)
        return (a["split"] == b["split"] and f32(a["split_condition"]) == f32(b["split_condition"])
                and a["gain"] == pytest.approx(b["gain"], rel=1e-5)
                and a["cover"] == pytest.approx(b["cover"], rel=1e-6)
                and same(a["children"][0], b["children"][0]) and same(a["children"][1], b["children"][1]))

    assert same(ours, theirs)


def test_a_changed_parameter_makes_the_comparison_fail():
    """The equality test can fail: the core run with reg_lambda=2 instead of 1 no longer matches."""
    X, booster, core = fit_both("binary", core_params={"reg_lambda": 2.0})
    with pytest.raises(AssertionError):
        assert_equal_to_xgboost(X, booster, core, kind="binary")
    first = tree_differences(core.trees_[0].to_xgboost_json(), xgboost_trees(booster)[0])
    assert any("leaf" in d for d in first)  # λ changes the leaf weights −G/(H+λ) (and here even a split)


# ----------------------------------------------------------------------------- histogram
@pytest.mark.parametrize("kind, params", [
    ("binary", {"max_bin": 32, "base_score": 0.3}),
    ("multi", {"max_bin": 64, "gamma": 0.3, "min_child_weight": 2.0}),
    ("reg", {"max_bin": 16, "gamma": 0.5, "min_child_weight": 3.0, "base_score": 0.0}),
])
def test_hist_trees_equal_xgboost_hist_on_the_same_bins(kind, params):
    """Continuous features binned with XGBoost's own cut points (``DMatrix.get_quantile_cut()``)."""
    X, booster, core = fit_both(kind, xgb_params={"tree_method": "hist", **params}, weighted=kind == "binary")
    assert_equal_to_xgboost(X, booster, core, kind=kind)


def test_hist_own_bins_equal_xgboost_bins_for_prebinned_features():
    """Features with <= max_bin distinct values: the core's quantile_cuts are XGBoost's cut points
    exactly, so without being handed any bins the core's hist trees equal XGBoost's."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2000, 5))
    X = np.floor(z * 8).astype(f32)                              # about 50 distinct values per feature
    y = (z[:, 0] + z[:, 1] * z[:, 2] + 0.5 * rng.normal(size=2000) > 0).astype(float)
    X, booster, core = fit_both("binary", rounds=15, data=(X, y, None), hist_cuts="own",
                                xgb_params={"tree_method": "hist", "max_bin": 64, "max_depth": 5})
    dtrain = xgb.DMatrix(X, label=y)
    xgb.train({"tree_method": "hist", "max_bin": 64}, dtrain, 1)
    indptr, values = dtrain.get_quantile_cut()
    np.testing.assert_array_equal(core.bin_cuts_[0].astype(np.int64), indptr.astype(np.int64))
    np.testing.assert_array_equal(core.bin_cuts_[1], values)
    assert_equal_to_xgboost(X, booster, core, kind="binary")


def test_quantile_cuts_make_balanced_bins():
    x = np.random.default_rng(0).normal(size=(10000, 2))
    indptr, values = quantile_cuts(x, max_bin=20)
    assert indptr.tolist() == [0, 21, 42]
    edges = values[:21]
    counts = np.histogram(x[:, 0], bins=edges)[0]
    assert counts.sum() == 10000 and counts.min() > 400 and counts.max() < 600  # ~500 per bin
    assert edges[0] < x[:, 0].min() and edges[-1] > x[:, 0].max()


# ----------------------------------------------------------------------------- formulas
def test_gradients_and_hessians_are_the_loss_derivatives():
    F = np.linspace(-4, 4, 9).astype(f32)
    one = np.ones(9, f32)
    for y in (0.0, 1.0):
        g, h = logistic_grad_hess(F, np.full(9, y, f32), one)
        log_loss = lambda m: np.logaddexp(0, m) - y * m  # noqa: E731
        eps = 1e-4
        F64 = F.astype(np.float64)
        np.testing.assert_allclose(g, (log_loss(F64 + eps) - log_loss(F64 - eps)) / (2 * eps), atol=1e-5)
        np.testing.assert_allclose(h, (log_loss(F64 + eps) - 2 * log_loss(F64) + log_loss(F64 - eps)) / eps**2,
                                   atol=1e-3)
    g, h = squared_error_grad_hess(F, one, 2 * one)
    np.testing.assert_array_equal(g, 2 * (F - 1))
    np.testing.assert_array_equal(h, 2 * one)
    margins = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]], f32)
    g, h = softmax_grad_hess(margins, np.array([1, 0]), np.ones(2, f32))
    p = np.exp(margins) / np.exp(margins).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g, p - np.eye(3)[[1, 0]], atol=1e-6)
    np.testing.assert_allclose(h, 2 * p * (1 - p), atol=1e-6)  # XGBoost's factor 2


def test_leaf_weight_and_split_gain_formulas():
    G_L, H_L, G_R, H_R, lam = -12.5, 30.0, 20.0, 14.0, 1.5
    G, H = G_L + G_R, H_L + H_R
    assert leaf_weight(G, H, lam) == pytest.approx(-G / (H + lam), rel=1e-7)
    assert structure_score(np.float64(G), np.float64(H), lam) == pytest.approx(G**2 / (H + lam), rel=1e-6)
    bracket = G_L**2 / (H_L + lam) + G_R**2 / (H_R + lam) - G**2 / (H + lam)
    parent = structure_score(np.float64(G), np.float64(H), lam)
    assert split_gain(np.float64(G_L), np.float64(H_L), np.float64(G_R), np.float64(H_R), parent, lam) == \
        pytest.approx(bracket, rel=1e-5)


# ----------------------------------------------------------------------------- behaviour and errors
@pytest.mark.parametrize("tree_method", ["exact", "hist"])
def test_subsample_is_seeded_and_learning_works(tree_method):
    X, y, _ = make_data("binary", n=600)
    kw = {"n_estimators": 8, "max_depth": 3, "tree_method": tree_method, "max_bin": 32}
    a = GradientBoostingClassifier(subsample=0.7, seed=1, **kw).fit(X, y).predict_proba(X)
    b = GradientBoostingClassifier(subsample=0.7, seed=1, **kw).fit(X, y).predict_proba(X)
    c = GradientBoostingClassifier(subsample=0.7, seed=2, **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a.argmax(axis=1) == y).mean() > 0.8
    reg = GradientBoostingRegressor(n_estimators=20, max_depth=3, learning_rate=0.3)
    Xr, yr, _ = make_data("reg", n=600)
    assert np.mean((reg.fit(Xr, yr).predict(Xr) - yr) ** 2) < 0.3 * yr.var()
    assert reg.base_margin_[0] == pytest.approx(yr.mean(), abs=1e-5)  # base_score=None: the mean target


@pytest.mark.parametrize("name, value", [
    ("n_estimators", 0), ("learning_rate", 0.0), ("max_depth", 0), ("min_child_weight", -1.0), ("reg_lambda", -0.1),
    ("gamma", -1.0), ("subsample", 0.0), ("subsample", 1.5), ("tree_method", "approx"), ("max_bin", 1),
    ("base_score", "0.5"), ("seed", 1.5),
])
def test_bad_hyperparameters_raise_config_error(name, value):
    X, y, _ = make_data("binary", n=50)
    with pytest.raises(ConfigError, match=f"invalid {name}={value!r}"):
        GradientBoostingClassifier(**{name: value}).fit(X, y)


def test_bad_inputs():
    X, y, _ = make_data("binary", n=50)
    with pytest.raises(ConfigError, match="base_score=1.5"):
        GradientBoostingClassifier(base_score=1.5).fit(X, y)
    with pytest.raises(ConfigError, match="bin_cuts"):
        GradientBoostingClassifier().fit(X, y, bin_cuts=quantile_cuts(X))
    with pytest.raises(DataError, match="bin_cuts"):
        GradientBoostingClassifier(tree_method="hist").fit(X, y, bin_cuts=quantile_cuts(X[:, :3]))
    with pytest.raises(DataError, match="single class"):
        GradientBoostingClassifier().fit(X, np.ones(50))
    with pytest.raises(DataError, match="NaN"):
        GradientBoostingRegressor().fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(DataError, match="regression targets"):
        GradientBoostingRegressor().fit(X, np.where(y > 0, np.nan, y))
    with pytest.raises(ConfigError, match="not fitted"):
        GradientBoostingRegressor().predict(X)
