"""Keras data parallelism on the devices of one node: ``tf.distribute.MirroredStrategy`` (TensorFlow backend).

``hepml train TASK -f keras --distributed`` (no torchrun: one process) builds the Keras adapter's
model under a ``MirroredStrategy`` over the node's GPUs (or the given devices; the CPU when there is
no GPU), so every variable is mirrored on every device. Each step splits the trainer's global batch
into one contiguous share per replica and runs the adapter's model on all replicas at once
(``strategy.run``). Replica r differentiates Σ_{i∈r} w_i L_i / W with W the global batch's weight
sum; the gradients are summed across replicas (all-reduce), then the adapter's own gradient rules
(torch-style clipping, L2) act on that global gradient, and the adapter's Keras optimiser updates the
mirrored variables identically on every device — the same update as a 1-device step on the global
batch (float64: to ~1e-15 on two logical CPU devices in ``tests/distributed/test_keras_dp.py``).

Limits (documented in docs/cluster.md):

- one node only: MirroredStrategy copies variables between the GPUs of one machine; across nodes
  use the torch framework with DDP (``hepml cluster slurm -f torch``);
- TensorFlow backend only. ``keras.distribution.DataParallel`` is Keras' data parallelism for the
  JAX backend, which hepml's Keras adapter does not run on (it supports TensorFlow and torch); on
  ``KERAS_BACKEND=torch`` use ``-f torch --distributed`` (DDP) instead;
- ``--precision fp16`` (dynamic loss scaling) is refused here; fp32 and bf16 work;
- batch norm statistics are per replica (``tf.distribute`` has no synchronised Keras BatchNorm
  here), so with batch norm the run is not the 1-device model; it is refused with several replicas;
- dropout masks come from each replica's own Keras seed generator: the run is the 1-device
  model in distribution only.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import DeviceError, FrameworkError

__all__ = ["KerasDPContext", "MirroredKeras", "mirrored_strategy", "build_mirrored", "start"]

_STRATEGIES: dict = {}


def mirrored_strategy(devices: Optional[list] = None):
    """The ``tf.distribute.MirroredStrategy`` over ``devices`` (default: every GPU, else the CPU), one per device set."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise FrameworkError(
            f"Keras data parallelism in hepml is MirroredStrategy on the TensorFlow backend; the backend is {keras.backend.backend()!r}",
            "unset KERAS_BACKEND (TensorFlow), or use -f torch --distributed (DDP) on the torch backend",
        )
    import tensorflow as tf

    if devices is None:
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or ["/cpu:0"]
    def short(name: str) -> str:  # "/job:localhost/replica:0/task:0/device:GPU:1", "/gpu:1", "GPU:1" -> "gpu:1"
        return name.lower().split("device:")[-1].rsplit("/", 1)[-1]

    known = sorted(short(d.name) for d in tf.config.list_logical_devices())
    for d in devices:
        if short(d) not in known:
            raise DeviceError(f"device {d!r} is not visible to TensorFlow", f"use some of {known}")
    key = tuple(short(d) for d in devices)
    if key not in _STRATEGIES:  # one strategy a device set: two would share collective instance keys
        _STRATEGIES[key] = tf.distribute.MirroredStrategy(devices)
    return _STRATEGIES[key]


def build_mirrored(spec, n_features: int, n_classes: int, *, train=None, device: str = "cpu", precision: str = "fp32", devices: Optional[list] = None) -> "MirroredKeras":
    """The Keras adapter for ``spec`` built under a MirroredStrategy over ``devices``, ready to train."""
    from ..frameworks.keras import KerasAdapter

    strategy = mirrored_strategy(devices)
    _check(spec, precision, strategy.num_replicas_in_sync)
    with strategy.scope():
        adapter = KerasAdapter.build(spec, n_features, n_classes, train=train, device=device, precision=precision)
    return MirroredKeras(adapter, strategy)


def _check(spec, precision: str, replicas: int) -> None:
    if precision == "fp16":
        raise FrameworkError("--precision fp16 with Keras data parallelism: loss scaling is not set up for MirroredStrategy here",
                             "use --precision bf16 or fp32")
    if getattr(spec, "batch_norm", False) and replicas > 1:
        raise FrameworkError(f"batch_norm with {replicas} Keras replicas would use per-replica statistics",
                             "train on one device, or with --set model.batch_norm=false")


class MirroredKeras:
    """A Keras adapter whose steps run on every replica of a MirroredStrategy; other methods are the adapter's."""

    def __init__(self, adapter, strategy):
        if getattr(adapter, "name", None) != "keras" or adapter.backend != "tensorflow":
            raise FrameworkError("MirroredStrategy wraps a Keras adapter on the TensorFlow backend", "use -f keras with KERAS_BACKEND=tensorflow")
        self._a, self.strategy = adapter, strategy
        self.replicas = strategy.num_replicas_in_sync
        self._fn = None

    def __getattr__(self, name):
        return getattr(self._a, name)

    @property
    def adapter(self):
        """The wrapped Keras adapter (weights, optimiser, files)."""
        return self._a

    def _make_step(self):
        import tensorflow as tf
        from keras import ops

        a, strategy, replicas = self._a, self.strategy, self.replicas

        def per_example(z, target):  # the loss of KerasAdapter._loss before its Σ w · / Σ w
            z = ops.cast(z, a._compute)
            if a._binary:
                return (ops.maximum(z, 0.0) - z * target + ops.log1p(ops.exp(-ops.abs(z))))[:, 0]
            return ops.logsumexp(z, axis=-1) - ops.sum(target * z, axis=-1)

        def replica_step(inputs, target, w, total):
            with tf.GradientTape() as tape:
                local = ops.sum(w * per_example(a.model(inputs, training=True), target))
                share = local / total  # Σ_{i∈r} w_i L_i / W: the replicas' sum is the global loss Q
            grads = tape.gradient(share, a._trainable)
            ctx = tf.distribute.get_replica_context()
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)  # ∇Q on every replica
            grads = a._adjust_gradients(grads)  # clipping and L2 act on the global gradient, as in one process
            grads = [g / tf.cast(replicas, g.dtype) for g in grads]  # Keras' optimiser sums over replicas again
            a._opt.apply(grads, a._trainable)
            return local

        def step(inputs, target, w, total):
            if a._eps_var is not None:  # Adam's ε̂ for this step, set once (cross-replica) for every replica
                a._eps_var.assign(tf.cast(a._epsilon_hat(tf.cast(a._inner.iterations, tf.float64)), a._eps_var.dtype))
            local = strategy.run(replica_step, args=(inputs, target, w, total))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, local, axis=None)

        return tf.function(step, reduce_retracing=True)

    def _distribute(self, arrays):
        """Per-replica values: replica r gets the r-th contiguous share of every array."""
        parts = [np.array_split(a, self.replicas) for a in arrays]
        return [self.strategy.experimental_distribute_values_from_function(lambda ctx, p=p: p[ctx.replica_id_in_sync_group]) for p in parts]

    def _step(self, batch):
        a = self._a
        inputs = a._inputs(batch)
        target, w = a._targets(batch)
        total = float(np.sum(w, dtype=np.float64))
        if self._fn is None:
            self._fn = self._make_step()
        if isinstance(inputs, tuple):
            s, m, target_d, w_d = self._distribute((*inputs, target, w))
            inputs_d = (s, m)
        else:
            inputs_d, target_d, w_d = self._distribute((inputs, target, w))
        loss_sum = self._fn(inputs_d, target_d, w_d, np.asarray(total, dtype=a._compute))  # the strategy places each replica
        return float(loss_sum), total

    def train_step(self, batch) -> float:
        """One optimiser step on the global ``batch`` split over the replicas; returns its loss Q."""
        loss_sum, total = self._step(batch)
        return loss_sum / total

    def fit(self, batches, val=None) -> dict:
        """One epoch; {'loss': Σ w L / Σ w over the epoch, 'val_loss'} as the adapter's own fit."""
        total = weight = 0.0
        for b in batches:
            s, w = self._step(b)
            total, weight = total + s, weight + w
        out = {"loss": total / weight if weight else float("nan")}
        if val is not None:
            out["val_loss"] = self._a.loss(val)
        return out


class KerasDPContext:
    """What the trainer asks of a distributed run (see :mod:`hepml.distributed.ddp`), for one Keras process."""

    rank, world_size, is_writer = 0, 1, True

    def __init__(self, device: str, devices: Optional[list] = None):
        self.device, self.devices = device, devices
        self.replicas = None

    def shard(self, index):
        """The whole global batch: the strategy splits it over the replicas."""
        return index

    def wrap(self, adapter) -> MirroredKeras:
        """Rebuild ``adapter`` under a MirroredStrategy (same spec, settings and initial weights)."""
        strategy = mirrored_strategy(self.devices)
        _check(adapter.spec, adapter.precision, strategy.num_replicas_in_sync)
        with strategy.scope():
            mirrored = type(adapter).build(adapter.spec, adapter.n_features, adapter.n_classes, train=adapter.train,
                                           device=adapter.device, precision=adapter.precision)
        mirrored.set_weights(adapter.get_weights())
        self.replicas = strategy.num_replicas_in_sync
        return MirroredKeras(mirrored, strategy)

    def finish(self) -> None:
        """Nothing to leave: one process."""

    def describe(self) -> dict:
        return {"engine": "tf.distribute.MirroredStrategy", "replicas": self.replicas, "world_size": 1,
                "batch_split": "contiguous share of each global batch per replica"}


def start(device: str, devices: Optional[list] = None) -> KerasDPContext:
    """The trainer's context for ``-f keras --distributed`` (checks the backend now)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        mirrored_strategy(devices)  # raises the one-line error
    return KerasDPContext(device, devices)
