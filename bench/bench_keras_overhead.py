"""Benchmark: an epoch of the hepml Keras adapter vs plain ``model.fit`` on the same model and data (CPU).

Same network (20 → 64 → 64 → 1, ReLU, BCE on logits, weighted mean Σ w L / Σ w), same initial
weights, batches of 256, Keras' Adam (ε = 1e-8), float32, on Keras' default backend (TensorFlow).
The adapter epoch is what the trainer runs: for each index batch a NumPy
:class:`~hepml.frameworks.base.Batch` is cut from the arrays and ``fit`` makes the compiled custom
train step (checks, torch's ε placement, the loss read back once per epoch). The plain epoch is
``model.fit(X, y, sample_weight=w, batch_size=256)`` on a second copy of the same Keras model,
compiled with ``BinaryCrossentropy(from_logits=True, reduction="mean_with_sample_weight")``; only
the epoch itself is timed (a callback from epoch begin to epoch end), not fit's set-up.

The machine may be shared, so the two alternate epoch by epoch (a slow moment hits both alike);
each epoch is timed by the process CPU time and by the wall clock, and the first epoch of each (the
tracing) is not counted. Prints the median time per epoch and the throughput ratio adapter / plain
fit (goal ≥ 0.95).

    python bench/bench_keras_overhead.py [--examples 20000] [--epochs 6] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _toy import index_batches, make_data  # noqa: E402






def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow intra-/inter-op threads (0: TensorFlow's default)")
    args = parser.parse_args()

    import keras

    if keras.backend.backend() == "tensorflow" and args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from hepml.frameworks.base import Batch
    from hepml.frameworks.keras import KerasAdapter
    from hepml.models import MLPSpec, TrainSpec

    X, y, w = make_data(args.examples, args.features)
    spec = MLPSpec(hidden=list(args.hidden), activation="relu")
    train = TrainSpec(optimizer="adam", learning_rate=1e-3, epsilon=1e-8, dtype="float32", batch_size=args.batch_size, seed=0)
    adapter = KerasAdapter.build(spec, args.features, 2, train=train)
    plain = KerasAdapter.build(spec, args.features, 2, train=train).model  # the same Keras model, a second copy
    plain.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-8),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True, reduction="mean_with_sample_weight"))
    y_float = y.astype(np.float32)

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.c0, self.t0 = time.process_time(), time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.cpu, self.wall = time.process_time() - self.c0, time.perf_counter() - self.t0

    timer = EpochTimer()
    times = {"adapter": {"cpu": [], "wall": []}, "plain": {"cpu": [], "wall": []}}
    for epoch in range(args.epochs + 1):  # epoch 0 traces both
        batches = index_batches(args.examples, args.batch_size, seed=epoch)
        c0, t0 = time.process_time(), time.perf_counter()
        adapter.fit(Batch(X=X[idx], set=None, mask=None, y=y[idx], w=w[idx]) for idx in batches)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        plain.fit(X, y_float, sample_weight=w, batch_size=args.batch_size, epochs=1, shuffle=True, verbose=0, callbacks=[timer])
        if epoch:
            times["adapter"]["cpu"].append(cpu)
            times["adapter"]["wall"].append(wall)
            times["plain"]["cpu"].append(timer.cpu)
            times["plain"]["wall"].append(timer.wall)

    n_steps = len(batches)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, keras {keras.__version__} "
          f"({keras.backend.backend()}), threads {args.threads or 'default'}, float32, CPU")
    print(f"model {args.features}-{'-'.join(map(str, args.hidden))}-1, batch {args.batch_size}, {n_steps} steps/epoch, Adam, "
          f"{args.epochs} epochs each (medians)")
    for label in ("cpu", "wall"):
        a, p = float(np.median(times["adapter"][label])), float(np.median(times["plain"][label]))
        print(f"{label + ' time':9s}: adapter {a * 1e3:7.1f} ms/epoch ({args.examples / a:7.0f} ex/s), "
              f"model.fit {p * 1e3:7.1f} ms/epoch ({args.examples / p:7.0f} ex/s), throughput ratio {p / a:.3f}")
    a, p = float(np.median(times["adapter"]["cpu"])), float(np.median(times["plain"]["cpu"]))
    print(f"throughput ratio adapter / model.fit (CPU time): {p / a:.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
