"""XGBoost on a Dask cluster (``xgboost.dask``): the same BDT as the xgboost adapter, trained by several workers.

XGBoost's own distributed mode: every Dask worker holds a share of the training rows, the workers
build the histograms of their rows and sum them (XGBoost's collective all-reduce), so every worker
grows the same trees. The result is an ordinary ``xgboost.Booster``, put into the adapter
(:class:`hepml.frameworks.xgboost.XGBoostAdapter`), whose ``predict_proba``/``save``/``export_onnx``
work unchanged. Only ``tree_method: hist`` is distributed by XGBoost (``exact`` is refused). The bin
edges come from a merged quantile sketch of the workers' data instead of one sketch of all rows, so
with continuous features the trees differ slightly from a 1-process run (test-set AUC within 0.002 in
``tests/distributed/test_dask_xgb.py``); when every feature has fewer distinct values than ``max_bin``
the edges are exact and the 2-worker model equals the 1-process one to float rounding (also tested).

Which cluster (:func:`dask_client`), by configuration — an argument, or ``$HEPML_DASK_CLUSTER``:

- ``local`` or ``local:N``: a ``LocalCluster`` of N workers (default 2) in this process (threads; XGBoost
  releases the GIL), all cores shared between them;
- ``tcp://host:port`` (or ``tls://``): a running scheduler; ``file.json``: a ``--scheduler-file``;
- ``file.yaml``: ``{cluster: slurm, jobs, cores, memory, walltime, queue, account, ...}`` — a
  ``dask_jobqueue.SLURMCluster`` that submits ``jobs`` worker jobs to SLURM (what
  ``hepml cluster slurm TASK --framework xgboost`` writes).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ConfigError, FrameworkError

__all__ = ["ENV", "SLURM_KEYS", "dask_client", "fit_full", "load_cluster_config", "slurm_cluster"]

#: environment variable naming the cluster (see the module docstring)
ENV = "HEPML_DASK_CLUSTER"
#: keys a ``cluster: slurm`` YAML file may hold (passed to ``dask_jobqueue.SLURMCluster``, ``jobs`` to ``scale``)
SLURM_KEYS = ("jobs", "cores", "processes", "memory", "walltime", "queue", "account", "job_extra_directives",
              "job_script_prologue", "local_directory", "log_directory", "interface")


def _import_distributed():
    try:
        import distributed  # noqa: F401
        import xgboost.dask  # noqa: F401
    except ImportError as exc:
        raise FrameworkError(f"XGBoost on Dask needs dask.distributed (import of {getattr(exc, 'name', exc)!r} failed)",
                             "pip install 'hepml[distributed]' (dask[distributed], dask-jobqueue)") from None


def load_cluster_config(path) -> dict:
    """Read a ``cluster: slurm`` YAML file; unknown keys are a ConfigError naming the closest one."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Dask cluster file {path} does not exist", f"write it (hepml cluster slurm ... --framework xgboost does) or set ${ENV} to local")
    cfg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(cfg, dict) or cfg.get("cluster") != "slurm":
        raise ConfigError(f"{path} must be a mapping with 'cluster: slurm'; received cluster={cfg.get('cluster') if isinstance(cfg, dict) else cfg!r}",
                          "start the file with 'cluster: slurm'")
    for key in cfg:
        if key != "cluster" and key not in SLURM_KEYS:
            from ..data.root_io import closest

            close = closest(str(key), list(SLURM_KEYS))
            raise ConfigError(f"unknown key {key!r} in {path}", (f"did you mean {close[0]!r}? " if close else "") + f"known: {', '.join(SLURM_KEYS)}")
    jobs = cfg.get("jobs", 1)
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer in {path}; received jobs={jobs!r}", "give the number of SLURM worker jobs, e.g. jobs: 4")
    return cfg


def slurm_cluster(cfg: dict, **options):
    """A ``dask_jobqueue.SLURMCluster`` from a cluster file's keys (``jobs`` is for ``scale``); no job is submitted yet."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise FrameworkError("a SLURM Dask cluster needs dask-jobqueue, which is not installed", "pip install 'hepml[distributed]'") from None
    return SLURMCluster(**{k: v for k, v in cfg.items() if k not in ("cluster", "jobs")}, **options)


@contextlib.contextmanager
def dask_client(cluster: Optional[str] = None, *, threads_per_worker: Optional[int] = None):
    """A ``distributed.Client`` on the configured cluster; closes what it started on exit.

    Parameters
    ----------
    cluster : str or None — ``local[:N]``, a scheduler address, a scheduler file (.json) or a
        SLURM cluster file (.yaml); None reads ``$HEPML_DASK_CLUSTER`` (default ``local``).
    threads_per_worker : int or None — for ``local``: threads of each worker (default: the cores
        this process may use, shared evenly).
    """
    _import_distributed()
    from distributed import Client, LocalCluster

    spec = str(cluster if cluster is not None else os.environ.get(ENV, "local")).strip()
    if spec == "local" or spec.startswith("local:"):
        try:
            n = int(spec.split(":", 1)[1]) if ":" in spec else 2
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"Dask cluster {spec!r} is not understood", "write local or local:N with N >= 1 workers")
        from ..frameworks.xgboost import _all_cores

        threads = threads_per_worker or max(1, _all_cores() // n)
        # in-process workers: no copies of the data between processes, and no worker start-up cost
        with LocalCluster(n_workers=n, threads_per_worker=threads, processes=False, dashboard_address=None) as lc, Client(lc) as client:
            yield client
        return
    if spec.startswith(("tcp://", "tls://", "inproc://")):
        with Client(spec, timeout="60s") as client:
            yield client
        return
    if spec.endswith(".json"):
        if not Path(spec).is_file():
            raise ConfigError(f"Dask scheduler file {spec} does not exist", "start the scheduler with --scheduler-file first")
        with Client(scheduler_file=spec, timeout="60s") as client:
            yield client
        return
    if spec.endswith((".yaml", ".yml")):
        cfg = load_cluster_config(spec)
        with slurm_cluster(cfg) as sc, Client(sc) as client:
            sc.scale(jobs=cfg.get("jobs", 1))
            client.wait_for_workers(cfg.get("jobs", 1) * int(cfg.get("processes") or 1))  # every job's workers hold rows
            yield client
        return
    raise ConfigError(f"Dask cluster {spec!r} is not understood",
                      "use local, local:N, tcp://host:port, a scheduler file (.json) or a SLURM cluster file (.yaml)")


def _scatter(client, arrays: tuple, workers: list):
    """Dask arrays whose row blocks live one per worker (XGBoost trains on the rows each worker holds).

    ``DaskDMatrix`` never moves data, and ``from_array`` may leave every block on one worker, so the
    blocks are scattered explicitly, one contiguous share of the rows per worker.
    """
    import dask.array as da

    n = len(arrays[0])
    parts = [p for p in np.array_split(np.arange(n), len(workers)) if len(p)]
    out = []
    for a in arrays:
        blocks = []
        for p, w in zip(parts, workers):
            future = client.scatter(np.ascontiguousarray(a[p[0] : p[-1] + 1]), workers=[w], broadcast=False)
            blocks.append(da.from_delayed(future, shape=(len(p), *a.shape[1:]), dtype=a.dtype))
        out.append(da.concatenate(blocks))
    return out


def fit_full(adapter, train, val=None, *, client) -> dict:
    """Train ``adapter`` (an XGBoostAdapter) on ``train`` with ``xgboost.dask`` on ``client``'s workers.

    The same parameters as the adapter's own :meth:`fit_full` (threads per worker are the worker's);
    early stopping on ``val`` as there. Sets ``booster_``, ``history_``, ``best_iteration_`` on the
    adapter and returns the per-round history {'loss': [...], 'val_loss': [...]} of weighted log-losses.
    """
    _import_distributed()
    import xgboost
    import xgboost.dask as dxgb

    if getattr(adapter, "name", None) != "xgboost":
        raise FrameworkError(f"Dask training is for the xgboost framework; received {getattr(adapter, 'name', adapter)!r}", "use -f xgboost, or torchrun DDP for torch")
    if adapter.spec.tree_method == "exact":
        raise FrameworkError("tree_method 'exact' was asked for Dask training, which XGBoost cannot distribute", "use tree_method: hist in the model file (--set model.tree_method=hist)")
    rounds = adapter.spec.early_stopping_rounds
    if rounds and val is None:
        raise ConfigError(f"early_stopping_rounds={rounds} needs a validation set, and none was given", "give the run a validation split or remove early_stopping_rounds")
    adapter._matrix(train, "training")  # the adapter's own checks of features, labels and weights
    if val is not None:
        adapter._matrix(val, "validation")
    workers = list(client.scheduler_info()["workers"])
    if not workers:
        raise ConfigError("the Dask cluster has no workers", "wait for the workers to start, or check the SLURM worker jobs")
    params = {k: v for k, v in adapter.params().items() if k != "nthread"}  # each worker uses its own threads

    def matrix(batch):
        X, y, w = _scatter(client, (np.asarray(batch.X), np.asarray(batch.y), np.asarray(batch.w, dtype=np.float64)), workers)
        return dxgb.DaskDMatrix(client, X, y, weight=w)

    dtrain = matrix(train)
    evals = [(dtrain, "train")] + ([(matrix(val), "val")] if val is not None else [])
    out = dxgb.train(client, params, dtrain, num_boost_round=adapter.spec.n_estimators, evals=evals,
                     early_stopping_rounds=rounds, verbose_eval=False)
    booster: xgboost.Booster = out["booster"]
    record, metric = out["history"], params["eval_metric"]
    history = {"loss": [float(v) for v in record["train"][metric]]}
    if val is not None:
        history["val_loss"] = [float(v) for v in record["val"][metric]]
    best = booster.num_boosted_rounds() - 1
    if rounds:
        best = int(booster.best_iteration)
        booster = booster[: best + 1]
    booster.set_param({"nthread": adapter.params()["nthread"]})  # predictions run here, with this process's cores
    adapter.booster_, adapter.history_, adapter.best_iteration_ = booster, history, best
    return history
