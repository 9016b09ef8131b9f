"""Benchmark: the hepml torch adapter's training step vs a hand-written torch training loop (CPU).

Same model (20 → 64 → 64 → 1, ReLU, BCE on logits, weighted mean), same initial weights, same
index batches (256 examples), same optimiser (Adam), float32, one thread. The adapter step is what
the trainer runs: a NumPy :class:`~hepml.frameworks.base.Batch` cut from the arrays for the index
batch, then ``train_step`` (checks, tensors, forward, loss, backward, step, loss as a float). The
hand step indexes tensors prepared once and calls ``loss.item()``, as a logging loop does.

The machine this runs on may be shared, so the two loops alternate *step by step* over the same
epochs (each trains its own copy of the model on the same batches): a slow moment hits both alike.
Every step is timed by the process CPU time (waiting for a core is not counted) and by the wall
clock; the first epoch warms both up. Prints the time per epoch of each and the throughput ratio
adapter / hand loop (goal ≥ 0.95).

    python bench/bench_torch_overhead.py [--examples 20000] [--epochs 8]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from _toy import index_batches, make_data  # noqa: E402






def hand_setup(torch, weights, lr):
    """nn.Sequential of Linear/ReLU with the adapter's initial weights, and torch.optim.Adam."""
    n_layers = len([k for k in weights if k.endswith("/kernel")])
    layers = []
    for i in range(n_layers):
        kernel = weights[f"dense_{i}/kernel"]
        lin = torch.nn.Linear(*kernel.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(kernel.T.copy()))
            lin.bias.copy_(torch.from_numpy(weights[f"dense_{i}/bias"]))
        layers.append(lin)
        if i < n_layers - 1:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    return net, torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()

    import torch

    from hepml.frameworks.base import Batch
    from hepml.frameworks.torch import TorchAdapter
    from hepml.models import MLPSpec, TrainSpec

    torch.set_num_threads(1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    X, y, w = make_data(args.examples, args.features)
    spec = MLPSpec(hidden=list(args.hidden), activation="relu")
    train = TrainSpec(optimizer="adam", learning_rate=1e-3, epsilon=1e-8, dtype="float32", seed=0)
    adapter = TorchAdapter.build(spec, args.features, 2, train=train)
    net, opt = hand_setup(torch, adapter.get_weights(), lr=1e-3)
    Xt, yt, wt = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32)), torch.from_numpy(w)

    def adapter_step(idx):
        adapter.train_step(Batch(X=X[idx], set=None, mask=None, y=y[idx], w=w[idx]))

    def hand_step(idx):
        it = torch.from_numpy(idx)
        xb, yb, wb = Xt[it], yt[it], wt[it]
        opt.zero_grad(set_to_none=True)
        loss = (bce(net(xb)[:, 0], yb, reduction="none") * wb).sum() / wb.sum()
        loss.backward()
        opt.step()
        loss.item()

    steps = {"adapter": adapter_step, "hand": hand_step}
    cpu = {k: 0 for k in steps}
    wall = {k: 0 for k in steps}
    n_steps = 0
    for epoch in range(args.epochs + 1):  # epoch 0 warms both up
        idx_batches = index_batches(args.examples, args.batch_size, seed=epoch)
        for s, idx in enumerate(idx_batches):
            order = ("adapter", "hand") if s % 2 else ("hand", "adapter")
            for name in order:
                c0, t0 = time.process_time_ns(), time.perf_counter_ns()
                steps[name](idx)
                if epoch:
                    cpu[name] += time.process_time_ns() - c0
                    wall[name] += time.perf_counter_ns() - t0
        n_steps = len(idx_batches)

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread, float32, CPU")
    print(f"model {args.features}-{'-'.join(map(str, args.hidden))}-1, batch {args.batch_size}, {n_steps} steps/epoch, Adam, {args.epochs} epochs each")
    for label, t in (("CPU time", cpu), ("wall time", wall)):
        a, h = t["adapter"] / args.epochs / 1e9, t["hand"] / args.epochs / 1e9
        print(f"{label:9s}: adapter {a * 1e3:7.1f} ms/epoch ({args.examples / a:7.0f} ex/s), "
              f"hand loop {h * 1e3:7.1f} ms/epoch ({args.examples / h:7.0f} ex/s), throughput ratio {h / a:.3f}")
    print(f"throughput ratio adapter / hand loop (CPU time): {cpu['hand'] / cpu['adapter']:.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
