"""Linear and logistic regression of the NumPy core against scikit-learn; the perceptron view."""

from __future__ import annotations

import numpy as np
import pytest

from hepml.core.linear_regression import LinearRegression, add_bias, mse_gradient, mse_loss
from hepml.core.logistic_regression import (
    LogisticRegression,
    Perceptron,
    log_loss,
    log_loss_gradient,
    logistic_upper_bound,
    sign_loss,
)
from hepml.errors import ConfigError, DataError


def _central_diff(f, theta, h=1e-6):
    g = np.zeros_like(theta)
    for i in np.ndindex(*theta.shape):
        e = np.zeros_like(theta)
        e[i] = h
        g[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return g


def _rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b))


@pytest.fixture(scope="module")
def regression_data():
    r = np.random.default_rng(0)
    X = r.normal(size=(200, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 0.5]
    y = X @ [1.5, -0.7, 2.0, 0.1] + 3.0 + r.normal(scale=0.3, size=200)
    w = r.uniform(0.2, 3.0, size=200)
    return X, y, w


@pytest.fixture(scope="module")
def classification_data():
    r = np.random.default_rng(1)
    X = r.normal(size=(300, 3))
    y = (X @ [1.0, -2.0, 0.5] + 0.3 + r.normal(size=300) > 0).astype(int)
    w = r.uniform(0.5, 2.0, size=300)
    return X, y, w


# ----------------------------------------------------------------------------- linear regression
@pytest.mark.parametrize("solver", ["lstsq", "normal"])
@pytest.mark.parametrize("weighted", [False, True])
def test_closed_form_matches_sklearn_to_1e8(regression_data, solver, weighted):
    from sklearn.linear_model import LinearRegression as SkLinearRegression

    X, y, w = regression_data
    w = w if weighted else None
    ours = LinearRegression(solver=solver).fit(X, y, sample_weight=w)
    ref = SkLinearRegression().fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-8)
    assert abs(ours.intercept_ - ref.intercept_) < 1e-8
    np.testing.assert_allclose(ours.predict(X[:5]), ref.predict(X[:5]), rtol=0, atol=1e-8)
    assert ours.theta_.shape == (5,)  # θ = [θ_0, θ_1..θ_K]: the bias is folded in


def test_gradient_descent_reaches_the_closed_form_and_q_decreases(regression_data):
    X, y, _ = regression_data
    Xs = (X - X.mean(0)) / X.std(0)  # gradient descent wants standardised features
    gd = LinearRegression(solver="gd", learning_rate=0.2).fit(Xs, y)
    exact = LinearRegression(solver="lstsq").fit(Xs, y)
    np.testing.assert_allclose(gd.theta_, exact.theta_, rtol=0, atol=1e-8)
    assert np.all(np.diff(gd.history_) <= 1e-15) and len(gd.history_) < gd.max_iter
    with pytest.raises(ConfigError, match="diverged .* learning_rate=5.0"):
        LinearRegression(solver="gd", learning_rate=5.0).fit(X, y)


def test_multi_target_and_no_intercept_match_sklearn(regression_data):
    from sklearn.linear_model import LinearRegression as SkLinearRegression

    X, y, _ = regression_data
    Y = np.column_stack([y, 2 * y - X[:, 0]])
    ours, ref = LinearRegression().fit(X, Y), SkLinearRegression().fit(X, Y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-8)
    ours, ref = LinearRegression(fit_intercept=False).fit(X, y), SkLinearRegression(fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-8)


def test_mse_gradient_matches_finite_differences(regression_data):
    X, y, w = regression_data
    Xt = add_bias(X[:30])
    theta = np.random.default_rng(2).normal(size=5)
    for weights in (None, w[:30]):
        g = mse_gradient(theta, Xt, y[:30], weights)
        assert _rel(g, _central_diff(lambda t: mse_loss(t, Xt, y[:30], weights), theta)) <= 1e-6


def test_linear_regression_input_errors(regression_data):
    X, y, _ = regression_data
    with pytest.raises(DataError, match="y has 199 entries for 200 examples"):
        LinearRegression().fit(X, y[:-1])
    with pytest.raises(ConfigError, match="solver='svd'"):
        LinearRegression(solver="svd").fit(X, y)
    with pytest.raises(ConfigError, match="not fitted"):
        LinearRegression().predict(X)
    fitted = LinearRegression().fit(X, y)
    with pytest.raises(DataError, match="X has 3 features, the model was fitted on 4"):
        fitted.predict(X[:, :3])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        LinearRegression().fit(bad, y)


# ----------------------------------------------------------------------------- logistic regression
@pytest.mark.parametrize("solver", ["gd", "newton"])
@pytest.mark.parametrize("C", [0.05, 1.0, np.inf])
def test_logistic_regression_matches_sklearn_lbfgs_to_1e5(classification_data, solver, C):
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression

    X, y, w = classification_data
    ref = SkLogisticRegression(C=C, solver="lbfgs", tol=1e-12, max_iter=10000).fit(X, y, sample_weight=w)
    ours = LogisticRegression(C=C, solver=solver).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X[:10]), ref.predict_proba(X[:10]), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_minibatch_sgd_gets_close_to_the_optimum(classification_data):
    X, y, w = classification_data
    exact = LogisticRegression(C=1.0, solver="newton").fit(X, y, sample_weight=w)
    sgd = LogisticRegression(C=1.0, solver="sgd", learning_rate=0.5, max_iter=30, batch_size=32).fit(X, y, sample_weight=w)
    assert 0 <= sgd.history_[-1] - exact.history_[-1] < 1e-3  # Newton's Q is the minimum
    assert sgd.history_[-1] < sgd.history_[0] < np.log(2)  # below Q(θ=0) = log 2 and still improving
    np.testing.assert_allclose(sgd.theta_, exact.theta_, atol=0.2)


def test_log_loss_gradient_matches_finite_differences(classification_data):
    X, y, w = classification_data
    Xt = add_bias(X[:40])
    theta = np.random.default_rng(3).normal(size=4)
    for C in (None, 0.3):
        kw = {"C": C, "fit_intercept": True}
        g = log_loss_gradient(theta, Xt, y[:40], w[:40], **kw)
        assert _rel(g, _central_diff(lambda t: log_loss(t, Xt, y[:40], w[:40], **kw), theta)) <= 1e-6


def test_labels_are_kept_and_multiclass_is_refused(classification_data):
    X, y, _ = classification_data
    labels = np.where(y == 1, "signal", "background")
    model = LogisticRegression(solver="newton").fit(X, labels)
    assert model.classes_.tolist() == ["background", "signal"]
    assert set(model.predict(X)) == {"background", "signal"}
    with pytest.raises(DataError, match=r"classes \[0, 1, 2\]"):
        LogisticRegression().fit(X, np.arange(len(X)) % 3)
    with pytest.raises(ConfigError, match="C=0"):
        LogisticRegression(C=0).fit(X, y)


# ----------------------------------------------------------------------------- perceptron / sign loss
def test_perceptron_separates_separable_data_with_zero_sign_loss():
    r = np.random.default_rng(4)
    X = r.normal(size=(200, 2))
    margin = X @ [1.0, -1.0] + 0.2
    keep = np.abs(margin) > 0.3  # a gap between the classes: the perceptron must converge
    X, y = X[keep], np.where(margin[keep] > 0, 1, -1)
    p = Perceptron(max_iter=200).fit(X, y)
    assert p.history_[-1] == 0.0 and len(p.history_) < 200
    assert sign_loss(p.theta_, add_bias(X), y) == 0.0
    np.testing.assert_array_equal(p.predict(X), y)


def test_log_loss_is_a_smooth_upper_bound_of_the_sign_loss(classification_data):
    X, y, _ = classification_data
    Xt, y_pm = add_bias(X), 2 * y - 1
    r = np.random.default_rng(5)
    for theta in r.normal(scale=2.0, size=(20, 4)):
        assert logistic_upper_bound(theta, Xt, y_pm) >= sign_loss(theta, Xt, y_pm)
    assert sign_loss(np.zeros(4), Xt, y_pm) == 1.0  # sign 0 is never a correct answer
    assert abs(logistic_upper_bound(np.zeros(4), Xt, y_pm) - 1.0) < 1e-12
