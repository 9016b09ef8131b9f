"""PyTorch DistributedDataParallel for ``hepml train ... --distributed``, launched by ``torchrun``.

``torchrun --nproc-per-node N -m hepml.cli train TASK -f torch --distributed`` starts N processes
(ranks); each one runs the ordinary trainer (:func:`hepml.train.train`) with three changes:

1. **the same global batches, split by rank** — every rank draws the permutation of the shared
   sampler :func:`hepml.train.batch_indices` from ``(seed, epoch)`` and takes its contiguous share
   of each global batch (:meth:`DDPContext.shard`), so N ranks together see exactly the batches of
   a 1-process run;
2. **the gradient of the global loss** — the torch adapter's ``nn.Module`` is wrapped in
   ``torch.nn.parallel.DistributedDataParallel``, which averages the ranks' gradients. Rank r
   back-propagates N · Σ_{i∈r} w_i L_i / W with W = Σ_{all ranks} w_i (one all-reduce of (Σ w, Σ w L)
   per step), so the average is ∇ of Q = Σ w_i L_i / W, the 1-process loss of the global batch —
   also when the shares or their weight sums differ. The optimiser step is the adapter's own,
   identical on every rank, so all ranks hold the same weights: in float64 a 2-process run gives
   the weights of the 1-process run to 3e-16 (``tests/distributed/test_ddp.py`` asserts ≤ 1e-12);
3. **rank 0 writes** — checkpoints, ``history.csv``, the model, predictions and ``run.json``; every
   rank resumes from that checkpoint (a shared file system), including each rank's dropout stream.

With ``--streaming`` (:func:`hepml.train.train` with ``streaming=True``) no rank holds the task: rank r
reads only its own shard of the epoch's chunks (every N-th entry range of the epoch's interleaved order,
from r; :meth:`hepml.data.streaming.TaskStream.batches` with ``shard=(r, N)``), shuffles them in its own
buffer (generator from (seed, epoch, r)) and steps with batches of ⌈batch_size / N⌉ examples. Shards
differ in size, so a rank that has run out keeps stepping with empty batches until an all-reduce says
every rank is done (:meth:`DDPContext.join`); the step's weights W are still those of all ranks, so each
step is the gradient of the loss of the union of the ranks' batches. The standardiser pass, the
validation loss and the test predictions read the full stream on every rank (same numbers everywhere),
and rank 0 writes.

Seeds per rank: initial weights and batches come from the run's seed on every rank; the dropout
generator of rank r > 0 is seeded from (seed, r) (:func:`rank_seed`), so the ranks draw independent
masks (with dropout a DDP run is the 1-process model in distribution, not bit for bit).

Backends: gloo on CPU, NCCL on GPUs (one GPU per process: ``cuda:LOCAL_RANK``). Batch norm uses
``SyncBatchNorm`` (statistics of the global batch), which torch implements on GPUs only, so batch norm
with several CPU processes is refused rather than silently trained on per-rank statistics.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import ConfigError, DeviceError, FrameworkError

__all__ = ["DDPAdapter", "DDPContext", "rank_seed", "start", "TORCHRUN_VARS"]

#: what torchrun sets in every process it starts
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def rank_seed(seed: int, rank: int) -> int:
    """The dropout seed of ``rank``: the run's seed on rank 0 (a 1-process run is unchanged), else from (seed, rank)."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass
class DDPContext:
    """This process's place in the torchrun job, and what the trainer asks of it."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: str
    owns_group: bool = False

    @property
    def is_writer(self) -> bool:
        """Rank 0 alone writes files (checkpoints, model, predictions, run record)."""
        return self.rank == 0

    def shard(self, index: np.ndarray) -> np.ndarray:
        """This rank's contiguous share of one global batch of indices (shares differ by at most one)."""
        return np.array_split(np.asarray(index), self.world_size)[self.rank]

    def wrap(self, adapter) -> "DDPAdapter":
        """The torch adapter with its module under DistributedDataParallel (see :class:`DDPAdapter`)."""
        return DDPAdapter(adapter, self)

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def all_sum(self, value: float) -> float:
        """Σ over the ranks of one number (float64), the same result on every rank."""
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t[0])

    def gather(self, obj) -> list:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def join(self, batches, empty):
        """This rank's batches, then ``empty`` until every rank has run out (one small all-reduce a step).

        With streamed shards the ranks hold different numbers of batches; DDP needs every rank in every
        step, so a finished rank steps with a zero-example batch (no loss, no weight, zero gradient)
        while the others still have data, and all stop together.
        """
        it = iter(batches)
        while True:
            batch = next(it, None)
            if self.all_sum(0.0 if batch is None else 1.0) == 0:
                return
            yield empty if batch is None else batch

    def finish(self) -> None:
        """Wait for every rank (rank 0 has written its files), then leave the process group."""
        import torch.distributed as dist

        if dist.is_initialized():
            self.barrier()
            if self.owns_group:
                dist.destroy_process_group()

    def describe(self, streaming: bool = False) -> dict:
        """What ``run.json`` records about the job."""
        split = ("own shard of the chunks per rank (every N-th range of the epoch), batches of ceil(batch_size / N)"
                 if streaming else "contiguous share of each global batch per rank")
        return {"engine": "torch DistributedDataParallel", "world_size": self.world_size, "backend": self.backend,
                "batch_split": split}


def start(framework: str, device: str, *, environ: Optional[dict] = None, streaming: bool = False) -> DDPContext:
    """Join the process group torchrun prepared (``RANK``, ``WORLD_SIZE``, ... in the environment).

    ``device`` is the trainer's resolved device: ``cpu`` → gloo; ``cuda[:i]`` → NCCL on
    ``cuda:LOCAL_RANK`` (one GPU a process). Errors are one line: not torch, not under torchrun,
    more local ranks than GPUs, a device without a backend. ``streaming`` only words the errors.
    """
    env = os.environ if environ is None else environ
    if framework != "torch":
        fix = ("XGBoost trains on Dask with --distributed, not under torchrun; run it without torchrun"
               if framework == "xgboost" else "use -f torch for DDP (Keras: see docs/cluster.md, one node with MirroredStrategy)")
        raise FrameworkError(f"--distributed with torchrun is for the torch framework; received {framework!r}", fix)
    missing = [v for v in TORCHRUN_VARS if v not in env]
    if missing:
        flags = "--distributed together with --streaming" if streaming else "--distributed"
        raise ConfigError(f"{flags} needs the environment torchrun sets; missing {', '.join(missing)}",
                          "launch with: torchrun --nproc-per-node N -m hepml.cli train TASK -f torch --distributed"
                          + (" --streaming" if streaming else "") + " ...")
    rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"])
    import torch
    import torch.distributed as dist

    if device == "cpu":
        backend, dev = "gloo", "cpu"
    elif device.startswith("cuda"):
        n = torch.cuda.device_count()
        if local >= n:
            raise DeviceError(f"local rank {local} needs its own GPU but this node shows {n}", f"start at most {n} processes a node (--nproc-per-node {n})")
        backend, dev = "nccl", f"cuda:{local}"
        torch.cuda.set_device(local)
    else:
        raise DeviceError(f"device {device!r} has no distributed backend", "use --device cpu (gloo) or cuda (NCCL)")
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=datetime.timedelta(minutes=30),
                                **({"device_id": torch.device(dev)} if backend == "nccl" else {}))
        owns = True
    return DDPContext(rank=rank, world_size=world, local_rank=local, backend=backend, device=dev, owns_group=owns)


class DDPAdapter:
    """A torch adapter whose module runs under DistributedDataParallel; every other method is the adapter's.

    :meth:`train_step` takes this rank's share of a global batch and returns the loss of the whole
    global batch (the same number on every rank, and the 1-process number).
    """

    def __init__(self, adapter, ctx: DDPContext):
        import torch
        from torch.nn.parallel import DistributedDataParallel

        if getattr(adapter, "name", None) != "torch":
            raise FrameworkError(f"DDP wraps the torch adapter; received {getattr(adapter, 'name', adapter)!r}", "use -f torch")
        self._a, self._ctx = adapter, ctx
        if getattr(adapter.spec, "batch_norm", False) and ctx.world_size > 1:
            if ctx.backend != "nccl":
                raise FrameworkError("batch_norm with several CPU processes: torch's SyncBatchNorm runs on GPUs only",
                                     "train on GPUs, with one process (no torchrun), or with --set model.batch_norm=false")
            adapter.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(adapter.model)  # same parameter tensors
        adapter._gen["gen"].manual_seed(rank_seed(adapter.train.seed, ctx.rank))
        self._rank_states: list = []
        ids = [ctx.local_rank] if ctx.backend == "nccl" else None
        self.ddp = DistributedDataParallel(adapter.model, device_ids=ids)  # broadcasts rank 0's weights (and buffers before each forward)
        ctx.barrier()

    def __getattr__(self, name):
        return getattr(self._a, name)

    @property
    def adapter(self):
        """The wrapped torch adapter (weights, optimiser, files)."""
        return self._a

    # -- training ----------------------------------------------------------------------------------
    def _step(self, batch):
        """One DDP step on this rank's share; returns (Σ w L, Σ w) of the global batch."""
        import torch
        import torch.distributed as dist
        from torch.nn import functional as F

        a, world = self._a, self._ctx.world_size
        inputs = a._inputs(batch)
        y = a._tensor(np.asarray(batch.y), None if a._binary else np.int64)
        w = a._tensor(np.asarray(batch.w))
        if not a.model.training:
            a.model.train()
        a.optimizer.zero_grad(set_to_none=True)
        with a._autocast():
            z = self.ddp(*inputs)
        z = z.to(a._dtype)
        per = F.binary_cross_entropy_with_logits(z[:, 0], y, reduction="none") if a._binary else F.cross_entropy(z, y, reduction="none")
        local = (per * w).sum()
        sums = torch.stack([local.detach(), w.sum()]).to(torch.float64)
        dist.all_reduce(sums)  # (Σ w L, Σ w) over the global batch
        total, weight = float(sums[0]), float(sums[1])
        if not weight > 0:
            raise FrameworkError(f"the example weights of a global batch sum to {weight}", "use non-negative weights with a positive sum")
        a.backward_step(local * (world / weight))  # DDP divides the summed gradients by world: ∇(Σ w L / W)
        return total, weight

    def train_step(self, batch) -> float:
        """One optimiser step on this rank's share of a global batch; returns the global batch's loss."""
        total, weight = self._step(batch)
        return total / weight

    def fit(self, batches, val=None) -> dict:
        """One epoch over this rank's shares; {'loss': Σ w L / Σ w over the epoch (all ranks), 'val_loss'}."""
        total = weight = 0.0
        for b in batches:
            t, w = self._step(b)
            total, weight = total + t, weight + w
        out = {"loss": total / weight if weight else float("nan")}
        if val is not None:
            out["val_loss"] = self._a.loss(val)
        self._gather_rng()
        return out

    # -- checkpoints -------------------------------------------------------------------------------
    def _gather_rng(self) -> None:
        """Every rank's dropout generator state, kept for rank 0's checkpoint (exact resume on every rank)."""
        import torch.distributed as dist

        states = [None] * self._ctx.world_size
        dist.all_gather_object(states, self._a._gen["gen"].get_state().numpy().copy())
        self._rank_states = states

    def optimizer_state(self) -> dict:
        """The adapter's optimiser state plus ``rng/dropout_rank{r}`` of every rank."""
        state = self._a.optimizer_state()
        for r, s in enumerate(self._rank_states):
            state[f"rng/dropout_rank{r}"] = s
        return state

    def load_optimizer_state(self, state: dict) -> None:
        """Restore the optimiser (same on every rank) and this rank's dropout generator."""
        import torch

        self._a.load_optimizer_state(state)
        mine = state.get(f"rng/dropout_rank{self._ctx.rank}")
        if mine is not None:
            self._a._gen["gen"].set_state(torch.from_numpy(np.asarray(mine, dtype=np.uint8).copy()))
        else:  # a checkpoint of a run with fewer ranks: a fresh stream for this rank
            self._a._gen["gen"].manual_seed(rank_seed(self._a.train.seed, self._ctx.rank))
