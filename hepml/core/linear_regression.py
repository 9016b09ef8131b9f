"""Linear regression, as on the slides.

Extend and reassign: x ≡ [1, f_1(x), ..., f_K(x)], θ ≡ [θ_0, ..., θ_K], so the bias θ_0 is
folded into the scalar product and the model is

    a(x, θ) = ⟨x, θ⟩

fitted by minimising the mean squared error (weights w_i optional, Σ w_i L_i / Σ w_i):

    L(θ) = (⟨x, θ⟩ − y)²,      Q(θ) = (1/N) Σ_i (⟨x_i, θ⟩ − y_i)²,      θ̂ = argmin_θ Q(θ)

Two ways to the minimum:

- closed form: ∇Q = 0 gives the normal equation XᵀX θ = Xᵀy (``solver="normal"``), or,
  better conditioned, the least-squares solution of X θ ≈ y (``solver="lstsq"``, SVD);
- gradient descent θ ← θ − η ∇Q(θ) with ∇Q = (2/N) Xᵀ(Xθ − y) (``solver="gd"``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError
from .autograd import array_module

__all__ = ["add_bias", "mse_loss", "mse_gradient", "LinearRegression"]


def add_bias(X):
    """x → [1, x_1, ..., x_K]: the column of ones that carries θ_0."""
    xp = array_module(X)
    return xp.concatenate([xp.ones((X.shape[0], 1), dtype=X.dtype), X], axis=1)


def _weights(w, n, xp):
    return xp.full(n, 1.0 / n) if w is None else w / w.sum()


def mse_loss(theta, X, y, sample_weight=None) -> float:
    """Q(θ) = Σ_i w_i (⟨x_i, θ⟩ − y_i)² / Σ_i w_i on bias-extended X (plain mean if w is None)."""
    xp = array_module(X)
    r = X @ theta - y
    r2 = r * r if r.ndim == 1 else (r * r).mean(axis=1)
    return float(_weights(sample_weight, len(X), xp) @ r2)


def mse_gradient(theta, X, y, sample_weight=None):
    """∇Q(θ) = 2 Σ_i w_i (⟨x_i, θ⟩ − y_i) x_i / Σ_i w_i  (= (2/N) Xᵀ(Xθ − y) for w_i = 1)."""
    xp = array_module(X)
    r = X @ theta - y
    v = _weights(sample_weight, len(X), xp)
    g = 2 * X.T @ (v[:, None] * r if r.ndim == 2 else v * r)
    return g / r.shape[1] if r.ndim == 2 else g


class LinearRegression:
    """Least-squares linear model a(x, θ) = ⟨x, θ⟩.

    Parameters
    ----------
    fit_intercept : bool — fold a bias θ_0 into θ (x gets a leading 1)
    solver : 'lstsq' (SVD least squares), 'normal' (normal equation) or 'gd'
    learning_rate : float — η of gradient descent (standardise X first)
    max_iter : int — gradient-descent iterations at most
    tol : float — stop gradient descent when max |∇Q| < tol

    Attributes
    ----------
    theta_ : ndarray of shape (K+1,) or (K+1, n_targets) — θ including θ_0 (if fit_intercept)
    coef_, intercept_ : as scikit-learn (coef_ of shape (K,) or (n_targets, K))
    history_ : list of float — Q(θ) per gradient-descent iteration (one value for closed forms)
    """

    _SOLVERS = ("lstsq", "normal", "gd")

    def __init__(self, *, fit_intercept=True, solver="lstsq", learning_rate=0.1, max_iter=10000, tol=1e-10):
        self.fit_intercept, self.solver = fit_intercept, solver
        self.learning_rate, self.max_iter, self.tol = learning_rate, max_iter, tol

    def _design(self, X):
        xp = array_module(X)
        X = xp.asarray(X, dtype=xp.float64)
        if X.ndim != 2:
            raise DataError(f"X must have shape (n_examples, n_features); received shape {X.shape}", "reshape X")
        if not bool(xp.isfinite(X).all()):
            raise DataError("X contains NaN/inf values", "fill or drop them first")
        if hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise DataError(f"X has {X.shape[1]} features, the model was fitted on {self.n_features_in_}", "use the same features")
        return add_bias(X) if self.fit_intercept else X

    def fit(self, X, y, sample_weight=None):
        """Find θ̂ = argmin Q(θ); returns ``self``."""
        if self.solver not in self._SOLVERS:
            raise ConfigError(f"LinearRegression: unknown solver={self.solver!r}", f"use one of {self._SOLVERS}")
        if hasattr(self, "n_features_in_"):
            del self.n_features_in_
        Xt = self._design(X)
        xp = array_module(Xt)
        y = xp.asarray(y, dtype=xp.float64)
        if y.shape[0] != Xt.shape[0]:
            raise DataError(f"y has {y.shape[0]} entries for {Xt.shape[0]} examples", "pass one target per example")
        w = None if sample_weight is None else xp.asarray(sample_weight, dtype=xp.float64).reshape(-1)
        if w is not None and (w.shape[0] != len(Xt) or bool((w < 0).any()) or not float(w.sum()) > 0):
            raise DataError(f"sample_weight needs {len(Xt)} non-negative values with a positive sum", "check the weights")
        self.n_features_in_ = Xt.shape[1] - int(self.fit_intercept)

        if self.solver == "lstsq":  # minimise ‖√W (Xθ − y)‖²
            s = xp.ones(len(Xt)) if w is None else xp.sqrt(w)
            theta = xp.linalg.lstsq(Xt * s[:, None], y * (s if y.ndim == 1 else s[:, None]), rcond=None)[0]
            self.history_ = [mse_loss(theta, Xt, y, w)]
        elif self.solver == "normal":  # XᵀWX θ = XᵀW y
            Xw = Xt if w is None else Xt * w[:, None]
            theta = xp.linalg.solve(Xw.T @ Xt, Xw.T @ y)
            self.history_ = [mse_loss(theta, Xt, y, w)]
        else:  # gradient descent θ ← θ − η ∇Q(θ)
            theta = xp.zeros(Xt.shape[1:2] + y.shape[1:])
            self.history_ = []
            for it in range(self.max_iter):
                with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                    self.history_.append(mse_loss(theta, Xt, y, w))
                if not np.isfinite(self.history_[-1]):
                    raise ConfigError(
                        f"gradient descent diverged at iteration {it} with learning_rate={self.learning_rate}",
                        "lower learning_rate or standardise X",
                    )
                grad = mse_gradient(theta, Xt, y, w)
                if float(xp.abs(grad).max()) < self.tol:
                    break
                theta = theta - self.learning_rate * grad
        self.theta_ = theta
        return self

    @property
    def coef_(self):
        theta = self.theta_[1:] if self.fit_intercept else self.theta_
        return theta.T

    @property
    def intercept_(self):
        return self.theta_[0] if self.fit_intercept else 0.0 * self.theta_[0]

    def predict(self, X):
        """a(x, θ̂) = ⟨x, θ̂⟩ for each row of X."""
        if not hasattr(self, "theta_"):
            raise ConfigError("this LinearRegression is not fitted yet", "call fit(X, y) first")
        return self._design(X) @ self.theta_
