"""Exercise 6 — single tree vs random forest vs gradient boosting (slides "Random forest and gradient
boosting — what's next after decision trees?").

- A single deep tree has low bias but high variance: it carves out every noisy point.
- A random forest averages B trees grown on bootstrap samples with √F features tried per split:
  the variance of the average falls as ρσ² + (1 − ρ)σ²/B.
- Gradient boosting adds shallow trees one at a time, F_m = F_{m−1} + η f_m, each fitted to the
  gradient g_i and hessian h_i of the loss at the current F (leaf weight −G/(H + λ)).

The same three models are trained on the same noisy two-class data by the NumPy core and by the
libraries (scikit-learn's tree and forest, XGBoost with ``tree_method="exact"``); test accuracy
and ROC AUC are compared side by side. The core's boosted trees equal XGBoost's, so their
probabilities agree to float32 rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._util import check, decision_grid, draw_boundary, figure

SEED = 6
N_TREES = 30
MODELS = ("single tree", "random forest", "gradient boosting")
BOOST = {"n_estimators": 50, "max_depth": 3, "learning_rate": 0.3, "reg_lambda": 1.0, "base_score": 0.5}


def data(n: int, seed: int):
    """A circle of class 1 inside class 0 in 2-D, with 15% of the labels flipped (noise to overfit)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 2)).astype(np.float32).astype(np.float64)
    y = (np.hypot(X[:, 0] - 0.3, X[:, 1]) < 1.2).astype(int)
    flip = rng.random(n) < 0.15
    y[flip] = 1 - y[flip]
    return X, y


def models():
    """{(model, side): estimator} for the three models on the core and the library side."""
    from sklearn.ensemble import RandomForestClassifier as SkForest
    from sklearn.tree import DecisionTreeClassifier as SkTree
    from xgboost import XGBClassifier

    from ..core.decision_tree import DecisionTreeClassifier
    from ..core.gradient_boosting import GradientBoostingClassifier
    from ..core.random_forest import RandomForestClassifier

    return {
        ("single tree", "core"): DecisionTreeClassifier(seed=SEED),
        ("single tree", "scikit-learn"): SkTree(random_state=SEED),
        ("random forest", "core"): RandomForestClassifier(n_estimators=N_TREES, seed=SEED),
        ("random forest", "scikit-learn"): SkForest(n_estimators=N_TREES, random_state=SEED, n_jobs=1),
        ("gradient boosting", "core"): GradientBoostingClassifier(**BOOST, tree_method="exact", seed=SEED),
        ("gradient boosting", "xgboost"): XGBClassifier(**BOOST, tree_method="exact", n_jobs=1, random_state=SEED),
    }


def run(out_dir) -> dict:
    """Fit all six, score them on an independent test set, check the lecture's ordering, plot."""
    from ..evaluate.metrics import roc_auc

    X, y = data(600, SEED)
    X_test, y_test = data(3000, SEED + 1)
    xx, yy, pts = decision_grid(X, n=120, pad=0.0)
    table, maps, proba_test = [], {}, {}
    for (model, side), est in models().items():
        est.fit(X, y)
        p = np.asarray(est.predict_proba(X_test))[:, 1]
        proba_test[model, side] = p
        maps[model, side] = np.asarray(est.predict_proba(pts))[:, 1]
        table.append({"model": model, "side": side, "train_accuracy": float((est.predict(X) == y).mean()),
                      "test_accuracy": float(((p > 0.5) == y_test).mean()), "test_auc": roc_auc(y_test == 1, p)})
    acc = {(r["model"], r["side"]): r["test_accuracy"] for r in table}
    gb_diff = float(np.abs(proba_test["gradient boosting", "core"] - proba_test["gradient boosting", "xgboost"]).max())
    check(gb_diff < 1e-5, f"core boosting and XGBoost probabilities differ by {gb_diff}")
    for model, lib in (("single tree", "scikit-learn"), ("random forest", "scikit-learn")):
        check(abs(acc[model, "core"] - acc[model, lib]) < 0.03,
              f"{model}: core {acc[model, 'core']} vs {lib} {acc[model, lib]}")
    for side in ("core", "scikit-learn"):
        check(acc["random forest", side] > acc["single tree", side], f"{side}: the forest did not beat the single tree")
    check(acc["gradient boosting", "core"] > acc["single tree", "core"], "boosting did not beat the single tree")
    tree_train = next(r["train_accuracy"] for r in table if r["model"] == "single tree" and r["side"] == "core")
    check(tree_train == 1.0, f"the unpruned tree should fit the training set exactly, got {tree_train}")

    path = Path(out_dir) / "tree_vs_forest_vs_boosting.png"
    with figure(path, ncols=3, nrows=2, size=(6, 5.5)) as (fig, axes):
        for ax, row in zip(axes, sorted(table, key=lambda r: (r["side"] != "core", MODELS.index(r["model"])))):
            draw_boundary(ax, xx, yy, maps[row["model"], row["side"]], X, y)
            ax.set_title(f"{row['model']} ({row['side']}): test {row['test_accuracy']:.1%}", fontsize=15)
            ax.set(xlabel="$x^{(1)}$", ylabel="$x^{(2)}$")
    text = "\n".join(f"{r['model']:<18} {r['side']:<13} train {r['train_accuracy']:.3f}  test {r['test_accuracy']:.3f}"
                     f"  AUC {r['test_auc']:.3f}" for r in table)
    return {"table": text, "results": table, "max_diff_core_vs_xgboost_proba": gb_diff,
            "label_noise": 0.15, "plots": [str(path)]}
