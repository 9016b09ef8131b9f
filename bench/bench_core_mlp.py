"""Benchmark: one training epoch of the NumPy-core MLP vs the same MLP in PyTorch (CPU).

Same model (20 → 64 → 64 → 1, ReLU, BCE on logits), same initial weights, same batches
(256 examples), same optimiser (Adam), float32, one thread each. Prints the median epoch
time of each and the ratio core / torch (goal: ≤ 2).

    python bench/bench_core_mlp.py [--examples 20000] [--repeats 5]
"""

from __future__ import annotations

import os

# One BLAS thread for NumPy: threadpoolctl when present, otherwise the environment variables
# (which only work when set before NumPy is first imported, hence here at the top).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _toy import index_batches, make_data


def _one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)






def core_epoch_seconds(model, X, y, w, idx_batches):
    t0 = time.perf_counter()
    for idx in idx_batches:
        model.train_step(X[idx], y[idx], w[idx])
    return time.perf_counter() - t0


def torch_setup(weights, lr):
    import torch

    torch.set_num_threads(1)
    layers, names = [], sorted({k.split("/")[0] for k in weights}, key=lambda s: int(s.split("_")[1]))
    for i, name in enumerate(names):
        kernel = weights[f"{name}/kernel"]
        lin = torch.nn.Linear(*kernel.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(kernel.T.copy()))
            lin.bias.copy_(torch.from_numpy(weights[f"{name}/bias"]))
        layers.append(lin)
        if i < len(names) - 1:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=lr, eps=1e-8)
    return torch, net, opt


def torch_epoch_seconds(torch, net, opt, X, y, w, idx_batches):
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    Xt, yt, wt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(w)
    t0 = time.perf_counter()
    for idx in idx_batches:
        it = torch.from_numpy(idx)
        xb, yb, wb = Xt[it], yt[it], wt[it]
        opt.zero_grad()
        loss = (bce(net(xb)[:, 0], yb) * wb).sum() / wb.sum()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from hepml.core.mlp import MLP

    X, y, w = make_data(args.examples, args.features, label_dtype=np.float32)
    model = MLP(hidden_sizes=tuple(args.hidden), optimizer="adam", learning_rate=1e-3, dtype="float32", seed=0).build(X, y)
    torch, net, opt = torch_setup(model.get_weights(), lr=1e-3)

    core_t, torch_t = [], []
    with _one_thread():
        for r in range(args.repeats + 1):  # the first round warms up both
            idx_batches = index_batches(args.examples, args.batch_size, seed=r)
            c = core_epoch_seconds(model, X, y, w, idx_batches)
            t = torch_epoch_seconds(torch, net, opt, X, y, w, idx_batches)
            if r:
                core_t.append(c)
                torch_t.append(t)
    core_med, torch_med = float(np.median(core_t)), float(np.median(torch_t))
    n_steps = len(idx_batches)
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}, torch {torch.__version__}, 1 thread, float32")
    print(f"model {args.features}-{'-'.join(map(str, args.hidden))}-1, batch {args.batch_size}, {n_steps} steps/epoch, Adam")
    print(f"core  epoch: {core_med * 1e3:8.1f} ms  ({core_med / n_steps * 1e6:6.1f} us/step)")
    print(f"torch epoch: {torch_med * 1e3:8.1f} ms  ({torch_med / n_steps * 1e6:6.1f} us/step)")
    print(f"ratio core/torch: {core_med / torch_med:.2f}  (goal <= 2)")


if __name__ == "__main__":
    main()
