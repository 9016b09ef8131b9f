"""Logistic regression, and beside it the perceptron's sign-loss view from the slides.

Classification with the linear model a(x, θ) = ⟨x, θ⟩ (x ≡ [1, x_1, ..., x_K]):

- The slides' loss is the 0-1 *sign loss*  L(θ) = [sign⟨x, θ⟩ ≠ y],  y ∈ {−1, +1},
  Q(θ) = (1/N) Σ_i [sign⟨x_i, θ⟩ ≠ y_i]. It is piecewise constant: its gradient is zero
  almost everywhere, so gradient descent cannot use it. Rosenblatt's :class:`Perceptron`
  instead nudges θ ← θ + η y_i x_i on each misclassified example.
- Logistic regression replaces it by a smooth loss. With p = σ(⟨x, θ⟩), σ(z) = 1/(1+e⁻ᶻ),
  and y ∈ {0, 1}, the binary cross-entropy (log-loss)

      L(θ) = −[y log p + (1 − y) log(1 − p)] = log(1 + e^{−m}),   m = (2y − 1)⟨x, θ⟩

  is a convex function of the margin m; divided by log 2 it upper-bounds the sign loss
  (``logistic_upper_bound``). Its gradient is ∇L = (p − y) x.

Objective with sample weights w_i and the optional L2 penalty of scikit-learn (the bias θ_0
is not penalised), normalised per unit weight:

    Q(θ) = Σ_i w_i L_i / Σ_i w_i + ‖θ_{1:}‖² / (2 C Σ_i w_i)

This is sklearn's  C Σ_i w_i L_i + ½ ‖θ_{1:}‖²  divided by C Σ_i w_i: same minimum, so the
same ``C`` reproduces ``sklearn.linear_model.LogisticRegression(C=C)``.
Solvers: full-batch gradient descent (``gd``), mini-batch SGD (``sgd``), and Newton's method
(``newton``, iteratively reweighted least squares, using the Hessian Xᵀ diag(w p(1−p)) X —
the same second-order idea as XGBoost's gain G²/(H+λ)).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError
from .linear_regression import add_bias

__all__ = [
    "sigmoid",
    "log_loss",
    "log_loss_gradient",
    "sign_loss",
    "logistic_upper_bound",
    "LogisticRegression",
    "Perceptron",
]


def sigmoid(z):
    """σ(z) = 1/(1 + e⁻ᶻ), evaluated without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def _penalty_vector(theta, C, fit_intercept):
    if C is None:
        return np.zeros_like(theta)
    r = theta / C
    if fit_intercept:
        r[0] = 0.0
    return r


def log_loss(theta, X, y, sample_weight=None, *, C=None, fit_intercept=True) -> float:
    """Q(θ) on bias-extended X with y ∈ {0,1}: weighted mean log-loss + ‖θ_{1:}‖²/(2CΣw)."""
    w = np.ones(len(X)) if sample_weight is None else sample_weight
    z = X @ theta
    per_example = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))  # log(1 + e^z) − y z
    return float(w @ per_example / w.sum() + 0.5 * theta @ _penalty_vector(theta, C, fit_intercept) / w.sum())


def log_loss_gradient(theta, X, y, sample_weight=None, *, C=None, fit_intercept=True):
    """∇Q(θ) = Σ_i w_i (p_i − y_i) x_i / Σ w + [0, θ_{1:}] / (C Σ w)."""
    w = np.ones(len(X)) if sample_weight is None else sample_weight
    return (X.T @ (w * (sigmoid(X @ theta) - y)) + _penalty_vector(theta, C, fit_intercept)) / w.sum()


def sign_loss(theta, X, y_pm) -> float:
    """The slides' Q(θ) = (1/N) Σ [sign⟨x_i, θ⟩ ≠ y_i] with y ∈ {−1, +1} (sign 0 counts as wrong)."""
    return float(np.mean(np.sign(X @ theta) != y_pm))


def logistic_upper_bound(theta, X, y_pm) -> float:
    """(1/N) Σ log₂(1 + e^{−y_i⟨x_i, θ⟩}) ≥ sign loss: the log-loss seen as a smooth bound."""
    m = y_pm * (X @ theta)
    return float(np.mean(np.logaddexp(0.0, -m)) / np.log(2.0))


class _LinearClassifier:
    """Shared input checks and binary label handling (labels → classes_[0], classes_[1])."""

    def _design(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise DataError(f"X must have shape (n_examples, n_features); received shape {X.shape}", "reshape X")
        if not np.isfinite(X).all():
            raise DataError("X contains NaN/inf values", "fill or drop them first")
        if hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise DataError(f"X has {X.shape[1]} features, the model was fitted on {self.n_features_in_}", "use the same features")
        return add_bias(X) if self.fit_intercept else X

    def _binary_targets(self, X, y, sample_weight):
        if hasattr(self, "n_features_in_"):
            del self.n_features_in_
        Xt = self._design(X)
        y = np.asarray(y)
        if y.shape != (len(Xt),):
            raise DataError(f"y must have shape ({len(Xt)},); received {y.shape}", "pass one label per example")
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise DataError(
                f"{type(self).__name__} is a binary classifier; y has classes {self.classes_.tolist()}",
                "use two classes (or hepml.core.mlp.MLP with a softmax head for more)",
            )
        w = np.ones(len(Xt)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (len(Xt),) or (w < 0).any() or not w.sum() > 0:
            raise DataError(f"sample_weight needs {len(Xt)} non-negative values with a positive sum", "check the weights")
        self.n_features_in_ = Xt.shape[1] - int(self.fit_intercept)
        return Xt, (y == self.classes_[1]).astype(np.float64), w

    def _check_fitted(self):
        if not hasattr(self, "theta_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet", "call fit(X, y) first")

    @property
    def coef_(self):
        return (self.theta_[1:] if self.fit_intercept else self.theta_)[None, :]

    @property
    def intercept_(self):
        return np.array([self.theta_[0] if self.fit_intercept else 0.0])

    def decision_function(self, X):
        """⟨x, θ̂⟩ for each row (positive → classes_[1])."""
        self._check_fitted()
        return self._design(X) @ self.theta_

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


class LogisticRegression(_LinearClassifier):
    """Binary logistic regression p(y=1 | x) = σ(⟨x, θ⟩), minimising the log-loss Q(θ).

    Parameters
    ----------
    C : float or None — inverse L2 strength as in scikit-learn; None = no penalty
    fit_intercept : bool
    solver : 'gd' (full batch), 'sgd' (mini-batch) or 'newton' (IRLS)
    learning_rate : float — η for gd / sgd
    max_iter : int — iterations (gd, newton) or epochs (sgd)
    tol : float — stop when max |∇Q| < tol (gd, newton)
    batch_size, seed : mini-batch size and shuffling seed for 'sgd'

    Attributes
    ----------
    theta_, coef_ (1, K), intercept_ (1,), classes_, history_ (Q per iteration / epoch)
    """

    _SOLVERS = ("gd", "sgd", "newton")

    def __init__(self, *, C=1.0, fit_intercept=True, solver="gd", learning_rate=1.0, max_iter=10000, tol=1e-10, batch_size=32, seed=0):
        self.C, self.fit_intercept, self.solver = C, fit_intercept, solver
        self.learning_rate, self.max_iter, self.tol = learning_rate, max_iter, tol
        self.batch_size, self.seed = batch_size, seed

    def fit(self, X, y, sample_weight=None):
        """Minimise Q(θ); returns ``self``."""
        if self.solver not in self._SOLVERS:
            raise ConfigError(f"LogisticRegression: unknown solver={self.solver!r}", f"use one of {self._SOLVERS}")
        if self.C is not None and not self.C > 0:
            raise ConfigError(f"LogisticRegression: invalid C={self.C!r}", "use C > 0, or C=None for no penalty")
        X, y, w = self._binary_targets(X, y, sample_weight)
        kw = {"C": self.C, "fit_intercept": self.fit_intercept}
        theta = np.zeros(X.shape[1])
        self.history_ = []
        if self.solver == "sgd":
            rng = np.random.default_rng(self.seed)
            for _ in range(self.max_iter):
                order = rng.permutation(len(X))
                for start in range(0, len(X), self.batch_size):
                    b = order[start : start + self.batch_size]
                    # batch estimate of ∇Q: the batch's weighted mean log-loss gradient + the full penalty term
                    g = X[b].T @ (w[b] * (sigmoid(X[b] @ theta) - y[b])) / w[b].sum()
                    g += _penalty_vector(theta, self.C, self.fit_intercept) / w.sum()
                    theta = theta - self.learning_rate * g
                self.history_.append(log_loss(theta, X, y, w, **kw))
        else:
            for _ in range(self.max_iter):
                self.history_.append(log_loss(theta, X, y, w, **kw))
                grad = log_loss_gradient(theta, X, y, w, **kw)
                if np.abs(grad).max() < self.tol:
                    break
                if self.solver == "gd":  # θ ← θ − η ∇Q
                    theta = theta - self.learning_rate * grad
                else:  # Newton: θ ← θ − H⁻¹ ∇Q,  H = Xᵀ diag(w p (1−p)) X / Σw + diag(penalty)
                    p = sigmoid(X @ theta)
                    hessian = (X.T * (w * p * (1 - p))) @ X / w.sum()
                    if self.C is not None:
                        reg = np.full(X.shape[1], 1.0 / (self.C * w.sum()))
                        if self.fit_intercept:
                            reg[0] = 0.0
                        hessian += np.diag(reg)
                    theta = theta - np.linalg.lstsq(hessian, grad, rcond=None)[0]
        self.theta_ = theta
        return self

    def predict_proba(self, X):
        """Columns [1 − p, p] with p = σ(⟨x, θ̂⟩), in ``classes_`` order."""
        p = sigmoid(self.decision_function(X))
        return np.column_stack([1 - p, p])


class Perceptron(_LinearClassifier):
    """Rosenblatt's perceptron: a(x) = sign⟨x, θ⟩, trained on the sign loss directly.

    For each misclassified example (sign⟨x_i, θ⟩ ≠ y_i, y ∈ {−1, +1}) update
    θ ← θ + η y_i x_i; stop after an epoch without mistakes (the data are then separated)
    or after ``max_iter`` epochs. ``history_`` holds the sign loss Q(θ) after each epoch.
    """

    def __init__(self, *, fit_intercept=True, learning_rate=1.0, max_iter=100, seed=0):
        self.fit_intercept, self.learning_rate, self.max_iter, self.seed = fit_intercept, learning_rate, max_iter, seed

    def fit(self, X, y):
        """Run the perceptron rule until an epoch makes no mistake; returns ``self``."""
        X, y01, _ = self._binary_targets(X, y, None)
        y_pm = 2 * y01 - 1
        rng = np.random.default_rng(self.seed)
        theta = np.zeros(X.shape[1])
        self.history_ = []
        for _ in range(self.max_iter):
            mistakes = 0
            for i in rng.permutation(len(X)):
                if np.sign(X[i] @ theta) != y_pm[i]:
                    theta = theta + self.learning_rate * y_pm[i] * X[i]
                    mistakes += 1
            self.history_.append(sign_loss(theta, X, y_pm))
            if mistakes == 0:
                break
        self.theta_ = theta
        return self
