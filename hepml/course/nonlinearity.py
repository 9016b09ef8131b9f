"""Exercise 4 — why stacking linear layers stays linear, and how a nonlinearity fixes it
(slides "Neural Network — automating FE").

A linear block generating features x̃ = W x feeding a linear model gives

    ŷ = wᵀ x̃ = wᵀ (W x) = (wᵀ W) x = w'ᵀ x

— still a linear model: the input feature space has not changed, only the weights. With biases,
Dense(W, b) then Dense(w, c) is Dense(W w, b w + c). Adding a nonlinear g applied elementwise,

    ŷ = wᵀ g(W x),

is the simplest neural network. Shown numerically: (1) the two products agree to rounding and
a trained all-linear network collapses into one Dense layer; (2) on two concentric classes, which
no line separates, the all-linear network is no better than logistic regression — both are no
better than guessing the larger class — while the same network with g = tanh separates them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._util import check, decision_grid, draw_boundary, figure

SEED = 4


def circles(n: int = 800, seed: int = SEED):
    """Class 1 inside radius ~1, class 0 on a ring of radius ~1.8: not linearly separable."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(int)
    r = np.where(y == 1, rng.uniform(0, 1.0, n), rng.uniform(1.4, 2.2, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi)]), y


def stacked_equals_single(seed: int = SEED) -> dict:
    """wᵀ(W x) versus (wᵀ W) x, and a two-layer linear core network versus its collapsed layer."""
    from ..core.autograd import Tensor
    from ..core.layers import Dense, Sequential

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(6, 3))                                   # 6 examples x ∈ ℝ³
    W, w = rng.normal(size=(3, 5)), rng.normal(size=(5, 1))       # W: ℝ³ → ℝ⁵ (kernel orientation), w: ℝ⁵ → ℝ
    stacked = (X @ W) @ w                                         # ŷ = wᵀ (W x)
    w_prime = W @ w                                               # w' = (wᵀ W)ᵀ
    single = X @ w_prime                                          # ŷ = w'ᵀ x
    b, c = rng.normal(size=5), rng.normal(size=1)
    net = Sequential(Dense(W, b), Dense(w, c))                    # no activation in between
    collapsed = Dense(w_prime, b @ w + c)
    x = Tensor(X, requires_grad=False)
    d_products = float(np.abs(stacked - single).max())
    d_network = float(np.abs(net(x).data - collapsed(x).data).max())
    check(d_products < 1e-12 and d_network < 1e-12, f"stacked and single differ: {d_products}, {d_network}")
    # with g = tanh in between, no single linear layer reproduces the output: least squares leaves a residual
    Xg = rng.normal(size=(200, 3))
    g_out = np.tanh(Xg @ W + b) @ w + c
    A = np.column_stack([Xg, np.ones(len(Xg))])
    residual = float(np.sqrt(np.mean((A @ np.linalg.lstsq(A, g_out, rcond=None)[0] - g_out) ** 2)))
    check(residual > 0.05, f"tanh network looks linear (rms residual {residual})")
    return {"max_diff_products": d_products, "max_diff_network_vs_collapsed": d_network, "w_prime": w_prime[:, 0],
            "rms_residual_best_linear_fit_to_tanh_network": residual}


def _collapse(weights: dict):
    """Multiply out an all-linear MLP's layers into one (kernel, bias)."""
    K, b, i = None, None, 0
    while f"dense_{i}/kernel" in weights:
        Ki, bi = weights[f"dense_{i}/kernel"], weights[f"dense_{i}/bias"]
        K, b = (Ki, bi) if K is None else (K @ Ki, b @ Ki + bi)
        i += 1
    return K, b


def run(out_dir) -> dict:
    """Part 1 with fixed random matrices, part 2 with three models on the circles."""
    from ..core.logistic_regression import LogisticRegression
    from ..core.mlp import MLP

    algebra = stacked_equals_single()
    X, y = circles()
    X_test, y_test = circles(2000, seed=SEED + 1)
    common = dict(hidden_sizes=(16, 16), optimizer="adam", learning_rate=0.01, epochs=60, batch_size=64,
                  dtype="float64", seed=SEED)
    models = {
        "logistic regression": LogisticRegression(C=None, solver="newton"),
        "linear layers (no g)": MLP(activation="linear", **common),
        "tanh network": MLP(activation="tanh", **common),
    }
    accuracy = {}
    for name, model in models.items():
        model.fit(X, y)
        accuracy[name] = float((model.predict(X_test) == y_test).mean())
    K, b = _collapse(models["linear layers (no g)"].get_weights())
    d_collapsed = float(np.abs(models["linear layers (no g)"].decision_function(X_test) - (X_test @ K + b)[:, 0]).max())
    check(d_collapsed < 1e-10, f"the trained linear network is not one linear layer (max diff {d_collapsed})")
    chance = float(max(y_test.mean(), 1 - y_test.mean()))  # always guessing the larger class
    check(accuracy["linear layers (no g)"] < chance + 0.05,
          f"linear layers beat guessing ({accuracy}, chance {chance})")
    check(accuracy["linear layers (no g)"] <= accuracy["logistic regression"] + 0.03,
          f"stacked linear layers beat the best linear model ({accuracy})")
    check(accuracy["tanh network"] > 0.97, f"the tanh network did not separate the circles ({accuracy})")

    path = Path(out_dir) / "nonlinearity_boundaries.png"
    xx, yy, pts = decision_grid(X)
    with figure(path, ncols=3, size=(6.5, 6.5)) as (fig, axes):
        for ax, (name, model) in zip(axes, models.items()):
            draw_boundary(ax, xx, yy, model.predict_proba(pts)[:, 1], X, y)
            ax.set(xlabel="$x_1$", ylabel="$x_2$", title=f"{name}: {accuracy[name]:.1%}")
            ax.title.set_fontsize(16)
        axes[0].legend(fontsize=13, loc="upper left")
        fig.suptitle(f"test accuracy (guessing the larger class: {chance:.1%})", fontsize=18)
    return {"algebra": algebra, "test_accuracy": accuracy, "chance_accuracy": chance,
            "max_diff_trained_linear_net_vs_collapsed": d_collapsed,
            "collapsed_kernel": K[:, 0], "collapsed_bias": float(b[0]), "plots": [str(path)]}
