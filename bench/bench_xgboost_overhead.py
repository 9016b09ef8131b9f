"""Training throughput of hepml's XGBoost adapter vs a bare ``xgboost.train`` call.

Both train the same BDT (same arrays, same parameters, same seed and threads) from NumPy arrays,
DMatrix construction included, measured side by side and interleaved in one run (best of N). The
adapter additionally checks the inputs and evaluates the weighted training log-loss every round
(its history); the bare call is shown without and with that evaluation, so the ratio is the price
of the adapter itself. Run: ``.venv/bin/python bench/bench_xgboost_overhead.py [--rows N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import xgboost

from hepml.frameworks.base import Batch, adapter_class
from hepml.frameworks.xgboost import xgboost_params
from hepml.models.spec import BDTSpec, TrainSpec


def toy(n_rows: int, n_features: int, seed: int = 0) -> Batch:
    """Signal vs background: a few informative features, the rest noise; weights ~ U(0.5, 1.5)."""
    r = np.random.default_rng(seed)
    X = r.normal(size=(n_rows, n_features)).astype(np.float32)
    score = X[:, 0] + 0.7 * X[:, 1] * X[:, 2] + 0.5 * np.abs(X[:, 3]) + r.normal(size=n_rows)
    return Batch(X=X, set=None, mask=None, y=(score > 0.5).astype(np.int64), w=r.uniform(0.5, 1.5, n_rows).astype(np.float32))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--nthread", type=int, default=None, help="default: all cores this process may use")
    args = ap.parse_args()

    data = toy(args.rows, args.features)
    spec = BDTSpec(n_estimators=args.rounds, max_depth=6, learning_rate=0.1, tree_method="hist", max_bin=256)
    train = TrainSpec(seed=1)
    params = xgboost_params(spec, 2, seed=train.seed, nthread=args.nthread)

    def ours():
        a = adapter_class("xgboost").build(spec, args.features, 2, train=train)
        a.nthread = args.nthread
        a.fit_full(data)
        return a.predict_proba(Batch(data.X[:1000], None, None, data.y[:1000], data.w[:1000]))

    def bare(with_eval: bool):
        d = xgboost.DMatrix(data.X, label=data.y, weight=data.w, nthread=params["nthread"])
        b = xgboost.train(params, d, args.rounds, evals=[(d, "train")] if with_eval else (), verbose_eval=False)
        return b.inplace_predict(data.X[:1000])

    runs = {"hepml adapter": ours, "bare xgboost.train": lambda: bare(False), "bare + train logloss": lambda: bare(True)}
    wall, cpu, outputs = {k: [] for k in runs}, {k: [] for k in runs}, {}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits every variant alike
        for name, fn in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            outputs[name] = fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    same = np.array_equal(outputs["hepml adapter"][:, 1], outputs["bare xgboost.train"])

    print(f"xgboost {xgboost.__version__}, {platform.processor() or platform.machine()}, nthread={params['nthread']}")
    print(f"{args.rows:,} rows x {args.features} features, {args.rounds} rounds, max_depth 6, hist, best of {args.repeats}")
    for label, timings in (("wall", wall), ("cpu", cpu)):
        best = {k: min(v) for k, v in timings.items()}
        for name, t in best.items():
            print(f"{label} {name:22s}: {t:7.3f} s  ({args.rows * args.rounds / t / 1e6:6.2f} M row-rounds/s)")
        print(f"{label} throughput ratio hepml/bare: {best['bare xgboost.train'] / best['hepml adapter']:.3f} "
              f"(vs bare with the same per-round evaluation: {best['bare + train logloss'] / best['hepml adapter']:.3f})")
    print(f"identical predictions: {same}")
    print("(cpu = process time, summed over threads: the robust figure on a shared machine)")

if __name__ == "__main__":
    main()
