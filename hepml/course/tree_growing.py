"""Exercise 5 — growing a decision tree (slides "Decision tree — algorithm / growing / regression").

Algorithm 1: start from the leaf set {X_train}; while not stopping: choose a leaf, split it
with the yes/no question x^(a) ≤ t that makes the children purest (largest impurity decrease
ΔH = w H(R) − w_L H(R_L) − w_R H(R_R), Gini H for classes), replace it by its two children.
Stopping at depth d gives the tree of depth d; every extra level refines the previous
boundary (greedy: the top splits never change), so the training accuracy can only grow.

Regression trees split on the squared error and predict the mean target of a leaf: the tree
is the piecewise-constant approximation of the slides,

    f(x) = 0 for x < 0.12,  0.35 for 0.12 ≤ x < 0.22,  0.47 for 0.22 ≤ x < 0.36, ...

here of f(x) = √x (whose values at those edges are the slide's numbers), with
2^depth steps. The core's trees are checked split for split against scikit-learn's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._util import check, decision_grid, draw_boundary, figure

SEED = 5
DEPTHS = (1, 2, 3, 4, 5, 6)
REGRESSION_DEPTHS = (1, 2, 3, 5)


def moons(n: int, seed: int):
    """Two interleaving half-moons with noise; X rounded to float32 so scikit-learn sees the same numbers."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n, noise=0.3, random_state=seed)
    return X.astype(np.float32).astype(np.float64), y


def same_splits(core_tree, sk_tree) -> bool:
    """Same node order, features, thresholds (to float32 rounding) and leaf layout."""
    a, b = core_tree.tree_, sk_tree.tree_
    internal = a.children_left != -1
    return (a.n_nodes == b.node_count and np.array_equal(a.children_left, b.children_left)
            and np.array_equal(a.feature[internal], b.feature[internal])
            and np.allclose(a.threshold[internal], b.threshold[internal], rtol=0, atol=1e-6))


def piecewise(tree, lo: float = 0.0, hi: float = 1.0):
    """A 1-D regression tree as the slide's cases: [(x_low, x_high, value), ...] from left to right."""
    internal = tree.tree_.children_left != -1
    edges = np.r_[lo, np.sort(tree.tree_.threshold[internal]), hi]
    mids = 0.5 * (edges[:-1] + edges[1:])
    return [(float(a), float(b), float(v)) for a, b, v in zip(edges[:-1], edges[1:], tree.predict(mids[:, None]))]


def format_cases(pieces) -> str:
    """f(x) = { v_0, x ≤ t_1;  v_1, t_1 < x ≤ t_2; ... } as text."""
    lines = []
    for i, (a, b, v) in enumerate(pieces):
        cond = f"x <= {b:.2f}" if i == 0 else (f"{a:.2f} < x" if i == len(pieces) - 1 else f"{a:.2f} < x <= {b:.2f}")
        lines.append(f"  {v:5.2f},  {cond}")
    return "f(x) =\n" + "\n".join(lines)


def _classification(out_dir):
    from sklearn.tree import DecisionTreeClassifier as SkTree

    from ..core.decision_tree import DecisionTreeClassifier

    X, y = moons(300, SEED)
    X_test, y_test = moons(2000, SEED + 1)
    rows, trees = [], {}
    for depth in DEPTHS:
        tree = DecisionTreeClassifier(max_depth=depth).fit(X, y)
        sk = SkTree(max_depth=depth, random_state=0).fit(X, y)
        trees[depth] = tree
        rows.append({"depth": depth, "leaves": tree.get_n_leaves(),
                     "train_accuracy": float((tree.predict(X) == y).mean()),
                     "test_accuracy": float((tree.predict(X_test) == y_test).mean()),
                     "same_splits_as_sklearn": bool(same_splits(tree, sk))})
        check(tree.get_depth() <= depth and tree.get_n_leaves() <= 2**depth, f"depth {depth}: tree too big")
        check(rows[-1]["same_splits_as_sklearn"], f"depth {depth}: core and scikit-learn trees differ")
    train = [r["train_accuracy"] for r in rows]
    check(all(b >= a for a, b in zip(train, train[1:])), f"training accuracy fell with depth: {train}")
    check(train[-1] > train[0] + 0.05, f"deeper trees did not fit better: {train}")

    path = Path(out_dir) / "tree_boundaries_by_depth.png"
    xx, yy, pts = decision_grid(X)
    with figure(path, ncols=3, nrows=2, size=(6, 5.5)) as (fig, axes):
        for ax, row in zip(axes, rows):
            draw_boundary(ax, xx, yy, trees[row["depth"]].predict_proba(pts)[:, 1], X, y)
            ax.set_title(f"depth {row['depth']}: {row['leaves']} leaves, train {row['train_accuracy']:.0%}",
                         fontsize=15)
            ax.set(xlabel="$x^{(1)}$", ylabel="$x^{(2)}$")
    return rows, str(path)


def _regression(out_dir):
    from sklearn.tree import DecisionTreeRegressor as SkTree

    from ..core.decision_tree import DecisionTreeRegressor

    rng = np.random.default_rng(SEED)
    x = np.sort(rng.uniform(0, 1, 200)).astype(np.float32).astype(np.float64)
    y = np.sqrt(x)                                  # f(x) = √x, noise-free: the tree only approximates it
    grid = np.linspace(0, 1, 1001)
    rows, curves = [], {}
    for depth in REGRESSION_DEPTHS:
        tree = DecisionTreeRegressor(max_depth=depth).fit(x[:, None], y)
        sk = SkTree(max_depth=depth, random_state=0).fit(x[:, None], y)
        pieces = piecewise(tree)
        pred = tree.predict(grid[:, None])
        curves[depth] = pred
        rows.append({"depth": depth, "steps": len(pieces), "mse": float(np.mean((tree.predict(x[:, None]) - y) ** 2)),
                     "same_splits_as_sklearn": bool(same_splits(tree, sk)), "pieces": pieces})
        check(len(pieces) == tree.get_n_leaves() == 2**depth, f"depth {depth}: {len(pieces)} steps")
        check(len(np.unique(pred)) == len(pieces), f"depth {depth}: prediction is not piecewise constant")
        check(rows[-1]["same_splits_as_sklearn"], f"depth {depth}: core and scikit-learn regression trees differ")
    mse = [r["mse"] for r in rows]
    check(all(b < a for a, b in zip(mse, mse[1:])), f"the approximation did not improve with depth: {mse}")

    path = Path(out_dir) / "regression_tree_steps.png"
    with figure(path, size=(9, 6.5)) as (fig, ax):
        ax.plot(grid, np.sqrt(grid), color="k", lw=2, label="f(x) = √x")
        for depth, pred in curves.items():
            ax.step(grid, pred, where="post", label=f"tree, depth {depth} ({2**depth} steps)")
        ax.set(xlabel="x", ylabel="f(x)")
        ax.legend(fontsize=14)
    return rows, str(path)


def run(out_dir) -> dict:
    """Grow classification trees of depth 1..6 and regression trees of depth 1, 2, 3, 5."""
    classification, cls_plot = _classification(out_dir)
    regression, reg_plot = _regression(out_dir)
    depth3 = next(r for r in regression if r["depth"] == 3)
    return {"classification_by_depth": classification, "regression_by_depth": regression,
            "piecewise_f_depth3": format_cases(depth3["pieces"]), "plots": [cls_plot, reg_plot]}
