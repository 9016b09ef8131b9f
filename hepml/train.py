"""The shared trainer: one batch order for every framework, checkpoints, resume, and the run record.

``hepml train TASK --framework F --model M`` (or :func:`train`) does, in order:

1. load the task into a Dataset and the model file (spec + training settings), check the device;
2. fit the standardiser on the training split only (saved with the model);
3. build the framework's adapter with the initial weights drawn in NumPy from the seed;
4. for each epoch: the learning rate from the schedule, then the **same index batches** for every
   framework — a permutation of the training examples drawn from ``(seed, epoch)`` — then the
   validation loss, early stopping, and an atomic checkpoint (weights, optimiser state, history), so
   ``--resume`` after a kill reaches the same final weights as an uninterrupted run;
   tree models (XGBoost, core GBDT) fit the whole training set at once instead;
5. predictions on the test split (ROOT + parquet, with spectators, labels, weights and event numbers),
   the saved model, ``history.csv`` and ``run.json`` (config, seed, versions, device, timings).

``streaming=True`` (``hepml train --streaming --chunk-size N``) never holds the task in memory: the
split comes from a hash of the event numbers, the standardiser from one streamed pass over the first
``standardize_fraction`` of every file, the training batches from a bounded shuffle buffer refilled
chunk by chunk (torch reads them through an ``IterableDataset``, XGBoost through a ``DataIter`` into a
``QuantileDMatrix``), and the validation loss and test predictions are computed chunk by chunk; see
:mod:`hepml.data.streaming`. The epoch loop, checkpoints and outputs are the same as in memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .atomic import atomic_path, write_text
from .errors import ConfigError, DataError

CHECKPOINT = "checkpoint.npz"


def batch_indices(n: int, batch_size: int, *, seed: int, epoch: int):
    """The index batches of one epoch: a permutation of ``range(n)`` from ``(seed, epoch)``, cut in order.

    Every framework consumes exactly these batches in this order; resuming at epoch e needs no saved
    random state because the permutation depends only on (seed, e).
    """
    order = np.random.default_rng([seed, epoch]).permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


@dataclass
class RunResult:
    """What a training run produced (the adapter is the trained model)."""

    adapter: object
    framework: str
    model_name: str
    history: list = field(default_factory=list)
    standardizer: object = None
    dataset: object = None
    test_proba: Optional[np.ndarray] = None
    train_proba: Optional[np.ndarray] = None
    timings: dict = field(default_factory=dict)
    device: str = "cpu"
    out: Optional[Path] = None
    record: dict = field(default_factory=dict)


def _config_hash(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _save_checkpoint(path: Path, adapter, *, epoch: int, history: list, best: dict, config_hash: str) -> None:
    arrays = {f"w/{k}": v for k, v in adapter.get_weights().items()}
    arrays.update({f"opt/{k}": np.asarray(v) for k, v in adapter.optimizer_state().items()})
    arrays.update({f"best/{k}": v for k, v in (best.get("weights") or {}).items()})
    header = {"epoch": epoch, "history": history, "best_val": best.get("val"), "best_epoch": best.get("epoch"), "config": config_hash}
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _load_checkpoint(path: Path):
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(z["header"].tobytes().decode())
        pick = lambda p: {k[len(p):]: z[k] for k in z.files if k.startswith(p)}  # noqa: E731
        return header, pick("w/"), pick("opt/"), pick("best/")


def _history_csv(history: list) -> str:
    buf = io.StringIO()
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def _progress(enabled: bool):
    from contextlib import nullcontext

    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"), transient=False)


def train(
    task,
    framework: str,
    model="mlp",
    *,
    overrides: Optional[dict] = None,
    device: str = "auto",
    precision: str = "fp32",
    out=None,
    resume: bool = False,
    progress: bool = False,
    dataset=None,
    max_entries: Optional[int] = None,
    write_predictions: bool = True,
    streaming: bool = False,
    chunk_size=None,
    standardize_fraction: float = 0.1,
    buffer_size: Optional[int] = None,
    num_workers: int = 0,
    distributed: bool = False,
) -> RunResult:
    """Train ``model`` (name, path or ModelFile) on ``task`` with ``framework``; see the module docstring.

    ``dataset`` skips reading (an already loaded Dataset of the task); ``out=None`` keeps everything
    in memory (no files). ``overrides`` changes model-file keys, e.g. ``{"train": {"epochs": 3}}``.
    ``chunk_size`` (entries, or a size such as ``"50 MB"``) is the read step; with ``streaming`` also
    the unit of memory, with ``buffer_size`` examples in the shuffle buffer and ``num_workers`` torch
    reader processes. A streamed run's ``dataset`` holds the test examples without features
    (labels, weights, events, spectators) and ``train_proba`` is None.
    ``distributed``: torch under ``torchrun`` (DDP: each rank takes its share of every global batch,
    rank 0 writes; with ``streaming`` each rank reads only its own shard of the chunks) or xgboost on
    Dask (``$HEPML_DASK_CLUSTER``); see :mod:`hepml.distributed`.
    """
    from .data import Standardizer, load_dataset, load_task
    from .frameworks.base import adapter_class, input_kind, make_batch, n_inputs, resolve_device
    from .models import load_model_file

    # -- everything that can be wrong with the inputs is checked before anything is written ---------
    if streaming and dataset is not None:
        raise ConfigError("streaming=True reads the task's files, but a loaded dataset was given too", "pass either dataset= or streaming=True")
    cfg = load_task(task) if dataset is None else None
    mf = load_model_file(model, overrides)
    spec, tspec = mf.model, mf.train
    cls = adapter_class(framework)
    cls.check_kind(spec)
    if precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"unknown precision {precision!r}", "use fp32, bf16 or fp16")
    if chunk_size is not None:
        from .data.streaming import parse_chunk_size

        parse_chunk_size(chunk_size)  # a bad value fails before anything is read
    stream = None
    if streaming:
        _check_streaming(cls, spec, standardize_fraction, num_workers)
    dev = resolve_device(device, cls.name)
    ddp = None
    if distributed:
        from .distributed import start_distributed

        if streaming and cls.name == "torch":  # DDP on streamed shards: each rank reads its own chunks
            from .distributed.ddp import start as start_ddp

            ddp = start_ddp(cls.name, dev, streaming=True)
            dev = ddp.device
        else:
            ddp, dev = start_distributed(cls.name, dev, streaming=streaming)
        progress = progress and (ddp is None or ddp.is_writer)
    if streaming:
        from .data.streaming import TaskStream

        rank_batch = tspec.batch_size if ddp is None else -(-tspec.batch_size // ddp.world_size)  # DDP: ⌈B / N⌉ a rank
        stream = TaskStream(cfg, chunk_size=chunk_size, buffer_size=buffer_size, batch_size=rank_batch, seed=tspec.seed, max_entries=max_entries)
        ds = None
    else:
        ds = dataset if dataset is not None else load_dataset(cfg, max_entries=max_entries, step_size=chunk_size)
        if ds.split is None or len(ds.split.train) == 0:
            raise DataError("the training split is empty", "lower split.validation/split.test or add data")
    model_name = Path(str(model)).stem if not hasattr(model, "model") else spec.kind
    out = Path(out) if out is not None else None
    config = {
        "task": ds.task if ds is not None else cfg.name,
        "framework": cls.name,
        "model": mf.model_dump(),
        "device": dev,
        "precision": precision,
        "task_config": (cfg.model_dump(mode="json", by_alias=True) if cfg is not None else None),
    }
    if streaming:  # only then, so that in-memory runs keep their config hash
        config["streaming"] = {"chunk_size": chunk_size, "buffer_size": stream.buffer_size, "standardize_fraction": standardize_fraction, "num_workers": num_workers}
    chash = _config_hash({k: v for k, v in config.items() if k != "device"})
    if out is not None and out.exists() and any(out.iterdir()) and not resume:
        if not (out / CHECKPOINT).exists() and not (out / "run.json").exists():
            raise ConfigError(f"output folder {out} exists and is not a hepml run", "choose another --out")
        raise ConfigError(f"output folder {out} already holds a run", "pass --resume to continue it, or choose another --out")

    # -- preprocessing fitted on the training split only ----------------------------------------------
    standardizer = None
    dtype = np.float64 if tspec.dtype == "float64" else np.float32
    work = ds
    prep_seconds = None
    if streaming:  # one streamed pass over a fraction of every file: μ, σ and the class totals
        t0 = time.perf_counter()
        standardizer = stream.fit_preprocessing(fraction=standardize_fraction, standardize=tspec.standardize and spec.kind != "bdt")
        prep_seconds = time.perf_counter() - t0
        work = stream.schema()
        train_idx = val_idx = test_idx = None
        val_batch = None
    else:
        if tspec.standardize and spec.kind != "bdt":
            standardizer = Standardizer().fit(ds.train)
            work = standardizer.transform(ds)
        train_idx, val_idx, test_idx = work.split.train, work.split.val, work.split.test
        val_batch = make_batch(work, val_idx, spec, dtype) if len(val_idx) else None

    adapter = cls.build(spec, n_inputs(spec, work), work.n_classes, train=tspec, device=dev, precision=precision)
    if ddp is not None:
        adapter = ddp.wrap(adapter)  # the module under DistributedDataParallel
    history: list = []
    best = {"val": None, "epoch": None, "weights": None}
    start_epoch = 0
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CHECKPOINT if out is not None else None
    if resume:
        if ckpt is None or not ckpt.exists():
            raise ConfigError(f"--resume was given but {ckpt or 'no --out'} has no checkpoint", "start without --resume")
        header, weights, opt, best_w = _load_checkpoint(ckpt)
        if header["config"] != chash:
            raise ConfigError(f"the checkpoint in {out} was made with a different task/model/config", "resume with the same options, or choose another --out")
        adapter.set_weights(weights)
        adapter.load_optimizer_state(opt)
        history, start_epoch = header["history"], header["epoch"] + 1
        best = {"val": header["best_val"], "epoch": header["best_epoch"], "weights": best_w or None}
    if ddp is not None and not ddp.is_writer:
        out = ckpt = None  # rank 0 alone writes checkpoints and outputs

    t_train = time.perf_counter()
    n_seen = 0
    n_streamed = {"train": None, "val": None, "test": None}  # streaming: counts, and the test predictions
    if adapter.iterative:
        patience = tspec.early_stopping
        with _progress(progress) as bar:
            task_id = bar.add_task(f"{cls.name} {spec.kind}", total=tspec.epochs, completed=start_epoch, info="") if bar else None
            for epoch in range(start_epoch, tspec.epochs):
                if patience is not None and best["epoch"] is not None and epoch - best["epoch"] > patience:
                    break
                lr = tspec.learning_rate_at(epoch)
                adapter.set_learning_rate(lr)
                t0 = time.perf_counter()
                if streaming:  # the last epoch also predicts the test examples in its validation pass
                    last = epoch == tspec.epochs - 1
                    stats = _fit_streamed_epoch(adapter, stream, epoch, spec, dtype, num_workers, n_streamed, with_test=last, ddp=ddp)
                    n_seen += n_streamed["train"]
                else:
                    order = batch_indices(len(train_idx), tspec.batch_size, seed=tspec.seed, epoch=epoch)
                    batches = (make_batch(work, train_idx[b if ddp is None else ddp.shard(b)], spec, dtype) for b in order)
                    stats = adapter.fit(batches, val_batch)
                    n_seen += len(train_idx)
                row = {"epoch": epoch, "lr": lr, "loss": stats["loss"], "seconds": time.perf_counter() - t0}
                if "val_loss" in stats:
                    row["val_loss"] = stats["val_loss"]
                    if best["val"] is None or stats["val_loss"] < best["val"]:
                        best = {"val": stats["val_loss"], "epoch": epoch, "weights": adapter.get_weights() if patience else None}
                if streaming and n_streamed["test"] is not None and patience is not None and best["epoch"] != epoch:
                    n_streamed["test"] = None  # early stopping will restore other weights: predict after the loop
                history.append(row)
                if ckpt is not None:
                    _save_checkpoint(ckpt, adapter, epoch=epoch, history=history, best=best, config_hash=chash)
                    write_text(out / "history.csv", _history_csv(history))
                if bar is not None:
                    bar.update(task_id, advance=1, info=f"loss {row['loss']:.4f}" + (f" val {row['val_loss']:.4f}" if "val_loss" in row else ""))
        if patience is not None and best["weights"] is not None:
            adapter.set_weights(best["weights"])  # early stopping keeps the best validation epoch
    elif streaming:  # XGBoost: a DataIter over the chunks into a QuantileDMatrix (see _check_streaming)
        from .data.streaming import xgboost_iter

        train_it = xgboost_iter(stream, "train")
        val_it = xgboost_iter(stream, "val") if stream.cfg.split.validation > 0 else None
        rounds = adapter.fit_iter(train_it, val_it)
        n_seen = n_streamed["train"] = train_it.n_examples
        n_streamed["val"] = val_it.n_examples if val_it is not None else 0
        keys = [k for k in ("loss", "val_loss") if rounds.get(k)]
        history = [{"epoch": i, **{k: float(rounds[k][i]) for k in keys}} for i in range(len(rounds.get("loss", [])))]
        if out is not None:
            write_text(out / "history.csv", _history_csv(history) if history else "epoch\n")
    else:
        train_batch = make_batch(work, train_idx, spec, dtype)
        if distributed:  # XGBoost on the Dask cluster of $HEPML_DASK_CLUSTER
            from .distributed.dask_xgb import dask_client, fit_full

            with dask_client() as client:
                rounds = fit_full(adapter, train_batch, val_batch, client=client)
        else:
            rounds = adapter.fit_full(train_batch, val_batch)
        n_seen = len(train_idx)
        keys = [k for k in ("loss", "val_loss") if rounds.get(k)]
        history = [{"epoch": i, **{k: float(rounds[k][i]) for k in keys}} for i in range(len(rounds.get("loss", [])))]
        if out is not None:
            write_text(out / "history.csv", _history_csv(history) if history else "epoch\n")
    train_seconds = time.perf_counter() - t_train

    t0 = time.perf_counter()
    if streaming:  # predictions chunk by chunk; the test examples are kept without their features
        test_proba, ds = n_streamed["test"] or stream.predict(adapter, "test", spec, dtype)
        test_idx = np.arange(len(ds))
        predict_seconds = time.perf_counter() - t0
        train_proba = None
        stream.close()
    else:
        test_proba = adapter.predict_proba(make_batch(work, test_idx, spec, dtype)) if len(test_idx) else np.zeros((0, work.n_classes))
        predict_seconds = time.perf_counter() - t0
        train_proba = adapter.predict_proba(make_batch(work, train_idx, spec, dtype))

    from .provenance import git_commit, machine, versions

    metrics = _metrics(ds, test_idx, test_proba)
    record = {
        **{k: v for k, v in config.items() if k != "task_config"},
        "task_config": config["task_config"],
        "model_name": model_name,
        "seed": tspec.seed,
        "input": input_kind(spec),
        "n_train": int(len(train_idx)) if not streaming else n_streamed["train"],
        "n_val": int(len(val_idx)) if not streaming else n_streamed["val"],
        "n_test": int(len(test_idx)),
        "class_names": ds.class_names,
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "metrics": metrics,
        "timings": {
            "train_seconds": train_seconds,
            "predict_seconds": predict_seconds,
            "train_examples_per_second": n_seen / train_seconds if train_seconds > 0 else None,
            "predict_examples_per_second": len(test_idx) / predict_seconds if predict_seconds > 0 else None,
            "read_seconds": ds.meta.get("read_seconds") if not streaming else prep_seconds,
        },
        "versions": versions(),
        "git_commit": git_commit(),
        "machine": machine(),
        "resumed_from_epoch": start_epoch if resume else None,
    }
    if distributed:
        record["distributed"] = (ddp.describe(streaming=True) if streaming else ddp.describe()) if ddp is not None else {"engine": "xgboost.dask"}
        if ddp is not None and streaming:  # what each rank trained on (its shards are disjoint)
            record["distributed"]["train_examples_per_rank"] = ddp.gather(n_streamed.get("rank_examples", 0))
            record["distributed"]["train_chunks_per_rank"] = ddp.gather(stream.counters["train_chunks_read"] if not num_workers else None)
    if streaming:
        record["streaming"] = {**config["streaming"], "counters": dict(stream.counters), "preprocessing": stream.prep_counts_}
    if out is not None:
        _write_model(out, adapter, standardizer, mf)
        if write_predictions and len(test_idx):
            from .predictions import write_predictions as _write

            _write(out, ds if streaming else ds.test, {f"{cls.name}_{model_name}": test_proba})
        write_text(out / "run.json", json.dumps(record, indent=1, default=_json_default))
        if ckpt is not None and ckpt.exists():
            ckpt.unlink()  # the run is complete: the final model replaces the checkpoint
    if ddp is not None:
        ddp.finish()  # every rank waits until rank 0 has written, then leaves the process group
        adapter = adapter.adapter
    return RunResult(
        adapter=adapter,
        framework=cls.name,
        model_name=model_name,
        history=history,
        standardizer=standardizer,
        dataset=ds,
        test_proba=test_proba,
        train_proba=train_proba,
        timings=record["timings"],
        device=dev,
        out=out,
        record=record,
    )


def _check_streaming(cls, spec, standardize_fraction, num_workers) -> None:
    """ConfigError for what streaming cannot do, before anything is read."""
    if not (isinstance(standardize_fraction, (int, float)) and 0 < standardize_fraction <= 1):
        raise ConfigError(f"standardize_fraction must be in (0, 1]; received {standardize_fraction!r}", "give e.g. 0.1 (the first 10% of every file)")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"num_workers must be a whole number >= 0; received {num_workers!r}", "give 0 (read in the training process) or more")
    if num_workers and cls.name != "torch":
        raise ConfigError(f"num_workers={num_workers} reader processes are for torch; the framework is {cls.name!r}", "use num_workers=0, or --framework torch")
    if spec.kind == "bdt" and cls.name != "xgboost":
        raise ConfigError(
            f"--streaming cannot train the {cls.name} BDT: it needs the whole training set in memory",
            "stream a BDT with --framework xgboost (QuantileDMatrix from a DataIter), or drop --streaming",
        )
    if spec.kind == "bdt" and spec.tree_method != "hist":
        raise ConfigError(
            f"--streaming needs tree_method 'hist' for XGBoost; the model has tree_method {spec.tree_method!r}",
            "set tree_method: hist (XGBoost bins chunk by chunk), or drop --streaming",
        )


def _fit_streamed_epoch(adapter, stream, epoch, spec, dtype, num_workers, n_streamed, *, with_test: bool = False, ddp=None) -> dict:
    """One epoch from the stream: the training batches (torch through its DataLoader), then the validation loss.

    ``with_test`` (the last epoch): the same pass over the files also predicts the test examples, kept in
    ``n_streamed["test"]``, which saves reading everything once more (the trainer drops them when early
    stopping restores another epoch's weights).
    ``ddp``: this rank reads only its shard of the epoch's chunks and steps until every rank is done
    (:meth:`~hepml.distributed.ddp.DDPContext.join`); the examples seen are summed over the ranks.
    """
    if adapter.name == "torch":
        from .data.streaming import torch_loader

        rank_shard = (0, 1) if ddp is None else (ddp.rank, ddp.world_size)
        batches = torch_loader(stream, epoch, spec, dtype, num_workers=num_workers, rank_shard=rank_shard)
    else:
        batches = stream.batches(epoch, spec, dtype)
    seen = [0]

    def counted():
        for b in batches:
            seen[0] += len(b)
            yield b

    if ddp is None:
        stats = adapter.fit(counted(), None)
    else:
        from .frameworks.base import make_batch

        empty = make_batch(stream.schema(), slice(None), spec, dtype)  # zero examples: a finished rank's step
        stats = adapter.fit(ddp.join(counted(), empty), None)
        n_streamed["rank_examples"] = n_streamed.get("rank_examples", 0) + seen[0]
        seen[0] = int(round(ddp.all_sum(seen[0])))
    if seen[0] == 0:
        raise DataError(f"the streamed training split of task {stream.cfg.name!r} is empty", "lower split.validation/split.test or add data")
    n_streamed["train"] = seen[0]
    val_loss, n_val, proba, examples = stream.evaluate(adapter, spec, dtype, loss_part="val", predict_part="test" if with_test else None)
    if with_test:
        n_streamed["test"] = (proba, examples)
    n_streamed["val"] = n_val
    if val_loss is not None:
        stats["val_loss"] = val_loss
    return stats


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _metrics(ds, test_idx, proba) -> dict:
    """Test loss and accuracy (and ROC AUC for two classes, signal = first class)."""
    if len(test_idx) == 0:
        return {}
    y, w = ds.y[test_idx], ds.weights[test_idx]
    p = np.clip(proba, 1e-12, 1)
    out = {
        "test_log_loss": float(np.sum(w * -np.log(p[np.arange(len(y)), y])) / np.sum(w)),
        "test_accuracy": float(np.sum(w * (np.argmax(proba, axis=1) == y)) / np.sum(w)),
    }
    if ds.n_classes == 2 and len(np.unique(y)) == 2:
        from sklearn.metrics import roc_auc_score

        out["test_auc"] = float(roc_auc_score(y == 0, proba[:, 0], sample_weight=w))
    return out


def _write_model(out: Path, adapter, standardizer, mf) -> None:
    """``out/model/``: the framework's files, the standardiser and the model file, renamed in at once."""
    import yaml

    final = out / "model"
    tmp = out / ".model.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        adapter.save(tmp)
        if standardizer is not None:
            standardizer.save(tmp / "standardizer.json")
        (tmp / "model.yaml").write_text(yaml.safe_dump(mf.model_dump(mode="json"), sort_keys=False))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def print_summary(result: RunResult, file=sys.stdout) -> None:
    m = result.record.get("metrics", {})
    parts = [f"{k.removeprefix('test_')} {v:.4f}" for k, v in m.items()]
    t = result.timings
    print(
        f"{result.framework} {result.model_name} on {result.record.get('task')}: " + ", ".join(parts)
        + f" | train {t['train_seconds']:.1f} s on {result.device}" + (f" -> {result.out}" if result.out else ""),
        file=file,
    )
