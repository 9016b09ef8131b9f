"""Exercise 7 — under- and over-fitting (backup slides "overtraining": Underfitting / Desired /
Overfitting).

Capacity grows with the polynomial degree d of a linear model on features [1, P_1(x), ..., P_d(x)]
(Legendre polynomials, so that the least-squares problem stays well conditioned). The models are
nested, so the training loss Q_train(d) can only fall with d; the validation loss on independent
data falls while the model learns the function, then rises again when it starts to learn the
noise of the 20 training points: the classic U-shape. The best capacity is the minimum of the
validation loss, not of the training loss. With the tree depth as the capacity, a tree grown until
every leaf holds one point reaches zero training loss while its validation loss stays above 2σ²
(σ² of the new point's noise, σ² of the memorised training point's noise, plus the steps between
the points): the gap between the two curves is the overfit.
The curves are medians over 25 training samples, drawn from the same function.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._util import check, figure

SEED = 7
DEGREES = tuple(range(0, 16))
TREE_DEPTHS = tuple(range(1, 11))
NOISE = 0.15
N_DRAWS = 25


def target(x):
    """The true function the data are drawn from."""
    return np.cos(1.5 * np.pi * x)


def data(n: int, seed: int):
    """x ~ U(−1, 1), y = cos(1.5πx) + N(0, 0.15²)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    return x, target(x) + rng.normal(0, NOISE, n)


def features(x, degree: int):
    """[P_1(x), ..., P_d(x)] (the constant P_0 is the fitted intercept θ_0)."""
    return np.polynomial.legendre.legvander(x, degree)[:, 1:]


def polynomial_scan(x, y, x_val, y_val):
    """Least-squares fits of every degree; Q_train and Q_val (mean squared errors) per degree."""
    from ..core.linear_regression import LinearRegression

    rows, fits = [], {}
    for d in DEGREES:
        if d == 0:
            pred_train, pred_val, model = np.full_like(y, y.mean()), np.full_like(y_val, y.mean()), None
        else:
            model = LinearRegression(solver="lstsq").fit(features(x, d), y)
            pred_train, pred_val = model.predict(features(x, d)), model.predict(features(x_val, d))
        fits[d] = model
        rows.append({"degree": d, "train_mse": float(np.mean((pred_train - y) ** 2)),
                     "val_mse": float(np.mean((pred_val - y_val) ** 2))})
    return rows, fits


def tree_scan(x, y, x_val, y_val):
    """Regression trees of growing depth on the same data."""
    from ..core.decision_tree import DecisionTreeRegressor

    rows = []
    for depth in TREE_DEPTHS:
        tree = DecisionTreeRegressor(max_depth=depth).fit(x[:, None], y)
        rows.append({"depth": depth, "train_mse": float(np.mean((tree.predict(x[:, None]) - y) ** 2)),
                     "val_mse": float(np.mean((tree.predict(x_val[:, None]) - y_val) ** 2))})
    return rows


def run(out_dir) -> dict:
    """Scan the capacity, check the U-shape, draw the three regimes and the loss curves.

    One training sample of 20 points is shown in the three panels; the loss curves are the
    medians over ``N_DRAWS`` independent training samples (one sample alone gives a jagged curve).
    """
    x_val, y_val = data(500, SEED + 1000)
    draws = [data(20, SEED + k) for k in range(N_DRAWS)]
    scans = [polynomial_scan(x, y, x_val, y_val) for x, y in draws]
    x, y = draws[0]
    fits = scans[0][1]
    train_all = np.array([[r["train_mse"] for r in rows] for rows, _ in scans])
    val_all = np.array([[r["val_mse"] for r in rows] for rows, _ in scans])
    train, val = np.median(train_all, axis=0), np.median(val_all, axis=0)
    poly = [{"degree": d, "train_mse_median": float(t), "val_mse_median": float(v)}
            for d, t, v in zip(DEGREES, train, val)]
    best = int(DEGREES[int(np.argmin(val))])
    check(np.all(np.diff(train_all, axis=1) <= 1e-12), "training loss rose with capacity in some sample")
    check(3 <= best <= 10, f"the best degree {best} is at the edge of the scan")
    check(val[1] > 2 * val[best], f"degree 1 does not underfit: {val[1]} vs {val[best]}")
    check(val[-1] > 2 * val[best] and train[-1] < train[best], f"degree {DEGREES[-1]} does not overfit")
    check(val[best] < 2 * NOISE**2, f"the best validation loss {val[best]} is far above the noise {NOISE**2}")
    tree_all = [tree_scan(xd, yd, x_val, y_val) for xd, yd in draws]
    tree_train = np.median([[r["train_mse"] for r in rows] for rows in tree_all], axis=0)
    tree_val = np.median([[r["val_mse"] for r in rows] for rows in tree_all], axis=0)
    trees = [{"depth": d, "train_mse_median": float(t), "val_mse_median": float(v)}
             for d, t, v in zip(TREE_DEPTHS, tree_train, tree_val)]
    check(np.all(np.diff(tree_train) <= 1e-12) and tree_train[-1] < 1e-12,
          f"deep trees should fit the 20 points exactly: {tree_train}")
    check(tree_val[-1] > 2 * NOISE**2, f"a fully grown tree should pay for the noise it memorised: {tree_val[-1]}")

    regimes = {"Underfitting": 1, "Desired": best, "Overfitting": DEGREES[-1]}
    fits_path = Path(out_dir) / "under_desired_over.png"
    grid = np.linspace(-1, 1, 400)
    with figure(fits_path, ncols=3, size=(6.5, 5.5)) as (fig, axes):
        for ax, (name, d) in zip(axes, regimes.items()):
            ax.plot(grid, target(grid), color="k", ls=":", label="true f(x)")
            ax.plot(x, y, "o", color="C0", label="training data")
            ax.plot(grid, fits[d].predict(features(grid, d)), color="C3", lw=2, label=f"degree {d}")
            ax.set(xlabel="x", ylabel="y", ylim=(-2, 2), title=name)
            ax.legend(fontsize=13, loc="lower center")
    curve_path = Path(out_dir) / "loss_vs_capacity.png"
    with figure(curve_path, ncols=2, size=(8, 6)) as (fig, (ax0, ax1)):
        ax0.semilogy(DEGREES, train, "o-", label="train")
        ax0.semilogy(DEGREES, val, "s-", label="validation")
        ax0.axvline(best, color="grey", ls="--", label=f"best degree {best}")
        ax0.set(xlabel="capacity: polynomial degree", ylabel=f"Q (median of {N_DRAWS} samples)", ylim=(1e-3, 10))
        ax0.legend(fontsize=14)
        ax1.semilogy(TREE_DEPTHS, np.maximum(tree_train, 1e-6), "o-", label="train")
        ax1.semilogy(TREE_DEPTHS, tree_val, "s-", label="validation")
        ax1.axhline(2 * NOISE**2, color="k", ls=":", label=r"$2\sigma^2_{noise}$")
        ax1.set(xlabel="capacity: tree depth", ylabel=f"Q (median of {N_DRAWS} samples)", ylim=(1e-3, 10))
        ax1.legend(fontsize=14)
    return {"polynomial": poly, "best_degree": best, "trees": trees,
            "noise_variance": NOISE**2, "n_train": int(x.size), "n_val": int(x_val.size), "n_draws": N_DRAWS,
            "plots": [str(fits_path), str(curve_path)]}
