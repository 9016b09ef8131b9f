"""Exercise 3 — the linear model, for regression and for classification (slides "Linear model").

Extend and reassign x ≡ [1, x_1, ..., x_K], θ ≡ [θ_0, ..., θ_K], so a(x, θ) = ⟨x, θ⟩.

Regression, Y = ℝ:
    Q(θ) = (1/N) Σ_i (⟨x_i, θ⟩ − y_i)²,   θ̂ = argmin_θ Q(θ)
minimised in closed form (least squares) and by gradient descent θ ← θ − η ∇Q(θ),
∇Q = (2/N) Xᵀ(Xθ − y); both land on the same θ̂, which scikit-learn also finds.

Classification, Y = {−1, +1}:
    Q(θ) = (1/N) Σ_i [sign⟨x_i, θ⟩ ≠ y_i]
is piecewise constant in θ (zero gradient almost everywhere), so it is minimised either
directly by the perceptron rule (θ ← θ + η y_i x_i on each mistake) or through a smooth upper
bound, the logistic loss log₂(1 + e^{−y⟨x, θ⟩}) ≥ [sign⟨x, θ⟩ ≠ y] (logistic regression).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._util import check, decision_grid, figure

SEED = 3
THETA_TRUE = np.array([0.5, 2.0])  # y = θ_0 + θ_1 x + ε


def regression_data(n: int = 60, noise: float = 0.25, seed: int = SEED):
    """x ~ U(0, 2), y = θ_0 + θ_1 x + N(0, noise²)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 2, n)
    return x[:, None], THETA_TRUE[0] + THETA_TRUE[1] * x + rng.normal(0, noise, n)


def classification_data(n: int = 200, seed: int = SEED):
    """Two Gaussian classes, y = +1 around (1, 1) and y = −1 around (−1, −1), linearly separable."""
    rng = np.random.default_rng(seed + 1)
    y = np.where(rng.random(n) < 0.5, 1, -1)
    X = rng.normal(0, 0.45, (n, 2)) + y[:, None] * np.array([1.0, 1.0])
    return X, y


def gradient_descent_path(X, y, eta: float = 0.2, steps: int = 400):
    """θ ← θ − η ∇Q(θ) from θ = 0, keeping every θ (for the plot)."""
    from ..core.linear_regression import add_bias, mse_gradient

    Xb, theta, path = add_bias(X), np.zeros(X.shape[1] + 1), []
    for _ in range(steps):
        path.append(theta)
        theta = theta - eta * mse_gradient(theta, Xb, y)
    return np.array(path + [theta])


def _regression(out_dir):
    from sklearn.linear_model import LinearRegression as SkLinearRegression

    from ..core.linear_regression import LinearRegression, add_bias, mse_loss

    X, y = regression_data()
    closed = LinearRegression(solver="lstsq").fit(X, y)
    gd = LinearRegression(solver="gd", learning_rate=0.2, tol=1e-10).fit(X, y)
    sk = SkLinearRegression().fit(X, y)
    theta_sk = np.r_[sk.intercept_, sk.coef_]
    path = gradient_descent_path(X, y)
    Xb = add_bias(X)
    Q_hat, Q_true = mse_loss(closed.theta_, Xb, y), mse_loss(THETA_TRUE, Xb, y)
    check(np.abs(gd.theta_ - closed.theta_).max() < 1e-8,
          f"gradient descent {gd.theta_} != least squares {closed.theta_}")
    check(np.abs(theta_sk - closed.theta_).max() < 1e-10, f"scikit-learn {theta_sk} != core {closed.theta_}")
    check(np.abs(path[-1] - closed.theta_).max() < 1e-6, "the explicit gradient-descent loop did not converge to θ̂")
    check(Q_hat <= Q_true, f"Q(θ̂) = {Q_hat} is not below Q(θ_true) = {Q_true}: θ̂ is not the minimum")
    check(np.abs(closed.theta_ - THETA_TRUE).max() < 0.3, f"θ̂ = {closed.theta_} is far from θ_true = {THETA_TRUE}")

    fig_path = Path(out_dir) / "linear_regression.png"
    with figure(fig_path, ncols=2) as (fig, (ax0, ax1)):
        grid = np.linspace(0, 2, 50)
        ax0.plot(X[:, 0], y, "o", label="data")
        ax0.plot(grid, closed.theta_[0] + closed.theta_[1] * grid, lw=2,
                 label=rf"$\hat a(x) = {closed.theta_[0]:.2f} + {closed.theta_[1]:.2f}\,x$")
        ax0.set(xlabel="x", ylabel="y")
        ax0.legend(fontsize=14)
        t0, t1 = np.meshgrid(np.linspace(-1, 2.5, 120), np.linspace(0, 3.5, 120))
        thetas = np.stack([t0.ravel(), t1.ravel()])
        Q = ((Xb @ thetas - y[:, None]) ** 2).mean(axis=0).reshape(t0.shape)
        ax1.contour(t0, t1, np.log10(Q), levels=15, cmap="viridis")
        ax1.plot(path[:, 0], path[:, 1], ".-", color="C3", ms=3, label=r"$\theta \leftarrow \theta - \eta\nabla Q$")
        ax1.plot(*closed.theta_, "*", ms=18, color="k", label=r"$\hat\theta$ (least squares)")
        ax1.set(xlabel=r"$\theta_0$", ylabel=r"$\theta_1$", title=r"$\log_{10} Q(\theta)$")
        ax1.legend(fontsize=14)
    return {"theta_true": THETA_TRUE, "theta_least_squares": closed.theta_, "theta_gradient_descent": gd.theta_,
            "theta_sklearn": theta_sk, "gd_iterations": len(gd.history_), "Q_at_theta_hat": Q_hat,
            "Q_at_theta_true": Q_true}, str(fig_path)


def _classification(out_dir):
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression

    from ..core.linear_regression import add_bias
    from ..core.logistic_regression import LogisticRegression, Perceptron, logistic_upper_bound, sign_loss

    X, y = classification_data()
    Xb = add_bias(X)
    perceptron = Perceptron(max_iter=100).fit(X, y)
    logistic = LogisticRegression(C=1.0, solver="newton").fit(X, y)
    sk = SkLogisticRegression(C=1.0, tol=1e-10).fit(X, y)
    theta_sk = np.r_[sk.intercept_, sk.coef_[0]]
    Q_perceptron, Q_logistic = sign_loss(perceptron.theta_, Xb, y), sign_loss(logistic.theta_, Xb, y)
    bound = logistic_upper_bound(logistic.theta_, Xb, y)
    check(Q_perceptron == 0.0, f"the perceptron left Q = {Q_perceptron} on separable data")
    check(perceptron.history_[-1] == 0.0 and len(perceptron.history_) < 100, "the perceptron did not converge")
    check(Q_logistic <= 0.01, f"logistic regression's sign loss Q = {Q_logistic}")
    check(bound >= Q_logistic, f"the logistic bound {bound} is below the sign loss {Q_logistic}")
    check(np.abs(theta_sk - logistic.theta_).max() < 1e-4, f"scikit-learn {theta_sk} != core {logistic.theta_}")

    fig_path = Path(out_dir) / "linear_classification.png"
    with figure(fig_path, ncols=2) as (fig, (ax0, ax1)):
        xx, yy, pts = decision_grid(X)
        z = (add_bias(pts) @ logistic.theta_).reshape(xx.shape)
        ax0.contourf(xx, yy, np.sign(z), levels=[-2, 0, 2], colors=["C1", "C0"], alpha=0.15)
        for label, marker in ((1, "o"), (-1, "s")):
            sel = y == label
            ax0.plot(X[sel, 0], X[sel, 1], marker, ms=5, label=f"y = {label:+d}")
        for theta, name, ls in ((perceptron.theta_, "perceptron", "--"), (logistic.theta_, "logistic", "-")):
            gx = np.linspace(xx.min(), xx.max(), 2)
            ax0.plot(gx, -(theta[0] + theta[1] * gx) / theta[2], ls, color="k",
                     label=rf"$\langle x,\theta\rangle = 0$ ({name})")
        ax0.set(xlabel="$x_1$", ylabel="$x_2$", xlim=(xx.min(), xx.max()), ylim=(yy.min(), yy.max()))
        ax0.legend(fontsize=13, loc="upper left")
        m = np.linspace(-3, 3, 301)
        ax1.plot(m, (m <= 0).astype(float), lw=2, label=r"sign loss $[\mathrm{sign}\,m \neq 1]$")
        ax1.plot(m, np.logaddexp(0, -m) / np.log(2), lw=2, label=r"$\log_2(1+e^{-m})$")
        ax1.set(xlabel=r"margin $m = y\,\langle x, \theta\rangle$", ylabel=r"$\mathcal{L}$")
        ax1.legend(fontsize=14)
    return {"sign_loss_perceptron": Q_perceptron, "perceptron_epochs": len(perceptron.history_),
            "sign_loss_logistic": Q_logistic, "logistic_upper_bound": bound, "theta_logistic": logistic.theta_,
            "theta_logistic_sklearn": theta_sk, "theta_perceptron": perceptron.theta_}, str(fig_path)


def run(out_dir) -> dict:
    """Fit both linear models, check them against the lecture's claims and scikit-learn, plot."""
    regression, reg_plot = _regression(out_dir)
    classification, cls_plot = _classification(out_dir)
    return {"regression": regression, "classification": classification, "plots": [reg_plot, cls_plot]}
