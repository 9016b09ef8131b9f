"""Benchmark: the NumPy-core histogram GBDT vs XGBoost ``tree_method="hist"`` on one thread.

Same synthetic signal/background data (50k training + 50k test examples, 20 features, a
non-linear decision boundary), same hyperparameters (100 trees of depth 6, η = 0.3, λ = 1,
256 bins, base_score 0.5). The core bins with its own quantile cuts (not XGBoost's), so the
models differ slightly; the test-set ROC AUCs must agree within 0.005. Prints the training time
of each, measured side by side in this run, and the ratio core / XGBoost (goal: <= 10).

    python bench/bench_core_gbdt.py [--examples 50000] [--features 20] [--trees 100]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def make_data(n, n_features, seed):
    """Gaussian features; signal when x0 + x1·x2 − |x3| + ½ sin(3 x4) + noise > 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    z = X[:, 0] + X[:, 1] * X[:, 2] - np.abs(X[:, 3]) + 0.5 * np.sin(3 * X[:, 4]) + rng.normal(size=n)
    return X, (z > 0).astype(np.float32)


def roc_auc(y, score):
    """Area under the ROC curve = P(score_signal > score_background) (ties count ½), via ranks."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    # average ranks of tied scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    n_sig = y.sum()
    n_bkg = len(y) - n_sig
    return float((ranks[y == 1].sum() - n_sig * (n_sig + 1) / 2) / (n_sig * n_bkg))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    args = parser.parse_args()

    import xgboost as xgb

    from hepml.core.gradient_boosting import GradientBoostingClassifier

    X, y = make_data(args.examples, args.features, seed=0)
    X_test, y_test = make_data(args.examples, args.features, seed=1)
    params = {"n_estimators": args.trees, "max_depth": args.depth, "learning_rate": 0.3, "reg_lambda": 1.0,
              "min_child_weight": 1.0, "max_bin": 256, "base_score": 0.5}

    t0 = time.perf_counter()
    reference = xgb.XGBClassifier(tree_method="hist", n_jobs=1, **params).fit(X, y)
    t_xgb = time.perf_counter() - t0
    t0 = time.perf_counter()
    core = GradientBoostingClassifier(tree_method="hist", **params).fit(X, y)
    t_core = time.perf_counter() - t0

    auc_xgb = roc_auc(y_test, reference.predict_proba(X_test)[:, 1])
    auc_core = roc_auc(y_test, core.predict_proba(X_test)[:, 1])
    ratio, delta = t_core / t_xgb, auc_core - auc_xgb
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"xgboost {xgb.__version__}, numpy {np.__version__}")
    print(f"data: {args.examples} x {args.features} train (+ same test), {args.trees} trees of depth {args.depth}, "
          "hist 256 bins, 1 thread")
    print(f"train time  xgboost hist {t_xgb:7.2f} s   core hist {t_core:7.2f} s   ratio core/xgboost {ratio:5.2f}"
          f"  (goal <= 10: {'ok' if ratio <= 10 else 'MISSED'})")
    print(f"test AUC    xgboost {auc_xgb:.4f}   core {auc_core:.4f}   ΔAUC {delta:+.4f}"
          f"  (goal |ΔAUC| <= 0.005: {'ok' if abs(delta) <= 0.005 else 'MISSED'})")


if __name__ == "__main__":
    main()
