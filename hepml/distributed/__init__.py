"""Training on several GPUs or nodes with the engines clusters already run — never a home-made one.

- :mod:`hepml.distributed.ddp` — PyTorch DistributedDataParallel under ``torchrun``
  (``hepml train ... -f torch --distributed``): same global batches as a 1-process run, split by rank;
- :mod:`hepml.distributed.dask_xgb` — XGBoost on a Dask cluster (``xgboost.dask``; ``-f xgboost
  --distributed``), local or SLURM (``dask-jobqueue``) by configuration;
- :mod:`hepml.distributed.keras_dp` — Keras data parallelism on the GPUs of one node
  (``tf.distribute.MirroredStrategy`` on TensorFlow, ``keras.distribution.DataParallel`` on JAX);
- :mod:`hepml.distributed.slurm` — sbatch scripts (``hepml cluster slurm TASK ...``).

Nothing here is imported by ``import hepml``; each engine is imported when it is used.
"""

from __future__ import annotations

from ..errors import ConfigError, FrameworkError

__all__ = ["start_distributed"]


def start_distributed(framework: str, device: str, *, streaming: bool = False):
    """What ``train(..., distributed=True)`` needs: ``(ddp_context or None, device)``.

    torch: join the torchrun process group (a :class:`~hepml.distributed.ddp.DDPContext`, device
    ``cuda:LOCAL_RANK`` on GPUs); keras: one process, a MirroredStrategy over the node's GPUs
    (:class:`~hepml.distributed.keras_dp.KerasDPContext`); xgboost: no context (the trainer fits
    on Dask, see :func:`hepml.distributed.dask_xgb.fit_full`); core: a one-line error.
    """
    if streaming:
        raise ConfigError("--distributed together with --streaming is not supported",
                          "drop --streaming (every rank reads the task and takes its share of each global batch), or train one process streamed")
    if framework == "torch":
        from .ddp import start

        ctx = start(framework, device)
        return ctx, ctx.device
    if framework == "xgboost":
        from .dask_xgb import _import_distributed

        _import_distributed()
        return None, device
    if framework == "keras":
        from .keras_dp import start as start_keras

        return start_keras(device), device
    raise FrameworkError(f"--distributed is for torch (DDP), keras (MirroredStrategy) and xgboost (Dask); received {framework!r}",
                         "the NumPy core runs in one process: train it without --distributed")
