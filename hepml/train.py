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
) -> RunResult:
    """Train ``model`` (name, path or ModelFile) on ``task`` with ``framework``; see the module docstring.

    ``dataset`` skips reading (an already loaded Dataset of the task); ``out=None`` keeps everything
    in memory (no files). ``overrides`` changes model-file keys, e.g. ``{"train": {"epochs": 3}}``.
    """
    from .data import Standardizer, load_dataset, load_task
    from .frameworks.base import adapter_class, input_kind, make_batch, n_inputs, resolve_device
    from .models import load_model_file

    # -- everything that can be wrong with the inputs is checked before anything is written ---------
    cfg = load_task(task) if dataset is None else None
    mf = load_model_file(model, overrides)
    spec, tspec = mf.model, mf.train
    cls = adapter_class(framework)
    cls.check_kind(spec)
    if precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"unknown precision {precision!r}", "use fp32, bf16 or fp16")
    dev = resolve_device(device, cls.name)
    ds = dataset if dataset is not None else load_dataset(cfg, max_entries=max_entries)
    if ds.split is None or len(ds.split.train) == 0:
        raise DataError("the training split is empty", "lower split.validation/split.test or add data")
    model_name = Path(str(model)).stem if not hasattr(model, "model") else spec.kind
    out = Path(out) if out is not None else None
    config = {
        "task": ds.task,
        "framework": cls.name,
        "model": mf.model_dump(),
        "device": dev,
        "precision": precision,
        "task_config": (cfg.model_dump(mode="json", by_alias=True) if cfg is not None else None),
    }
    chash = _config_hash({k: v for k, v in config.items() if k != "device"})
    if out is not None and out.exists() and any(out.iterdir()) and not resume:
        if not (out / CHECKPOINT).exists() and not (out / "run.json").exists():
            raise ConfigError(f"output folder {out} exists and is not a hepml run", "choose another --out")
        raise ConfigError(f"output folder {out} already holds a run", "pass --resume to continue it, or choose another --out")

    # -- preprocessing fitted on the training split only ----------------------------------------------
    standardizer = None
    dtype = np.float64 if tspec.dtype == "float64" else np.float32
    work = ds
    if tspec.standardize and spec.kind != "bdt":
        standardizer = Standardizer().fit(ds.train)
        work = standardizer.transform(ds)
    train_idx, val_idx, test_idx = work.split.train, work.split.val, work.split.test
    val_batch = make_batch(work, val_idx, spec, dtype) if len(val_idx) else None

    adapter = cls.build(spec, n_inputs(spec, work), work.n_classes, train=tspec, device=dev, precision=precision)
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

    t_train = time.perf_counter()
    n_seen = 0
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
                batches = (make_batch(work, train_idx[b], spec, dtype) for b in batch_indices(len(train_idx), tspec.batch_size, seed=tspec.seed, epoch=epoch))
                stats = adapter.fit(batches, val_batch)
                n_seen += len(train_idx)
                row = {"epoch": epoch, "lr": lr, "loss": stats["loss"], "seconds": time.perf_counter() - t0}
                if "val_loss" in stats:
                    row["val_loss"] = stats["val_loss"]
                    if best["val"] is None or stats["val_loss"] < best["val"]:
                        best = {"val": stats["val_loss"], "epoch": epoch, "weights": adapter.get_weights() if patience else None}
                history.append(row)
                if ckpt is not None:
                    _save_checkpoint(ckpt, adapter, epoch=epoch, history=history, best=best, config_hash=chash)
                    write_text(out / "history.csv", _history_csv(history))
                if bar is not None:
                    bar.update(task_id, advance=1, info=f"loss {row['loss']:.4f}" + (f" val {row['val_loss']:.4f}" if "val_loss" in row else ""))
        if patience is not None and best["weights"] is not None:
            adapter.set_weights(best["weights"])  # early stopping keeps the best validation epoch
    else:
        train_batch = make_batch(work, train_idx, spec, dtype)
        rounds = adapter.fit_full(train_batch, val_batch)
        n_seen = len(train_idx)
        keys = [k for k in ("loss", "val_loss") if rounds.get(k)]
        history = [{"epoch": i, **{k: float(rounds[k][i]) for k in keys}} for i in range(len(rounds.get("loss", [])))]
        if out is not None:
            write_text(out / "history.csv", _history_csv(history) if history else "epoch\n")
    train_seconds = time.perf_counter() - t_train

    t0 = time.perf_counter()
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
        "n_train": int(len(train_idx)),
        "n_val": int(len(val_idx)),
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
            "read_seconds": ds.meta.get("read_seconds"),
        },
        "versions": versions(),
        "git_commit": git_commit(),
        "machine": machine(),
        "resumed_from_epoch": start_epoch if resume else None,
    }
    if out is not None:
        _write_model(out, adapter, standardizer, mf)
        if write_predictions and len(test_idx):
            from .predictions import write_predictions as _write

            _write(out, ds.test, {f"{cls.name}_{model_name}": test_proba})
        write_text(out / "run.json", json.dumps(record, indent=1, default=_json_default))
        if ckpt is not None and ckpt.exists():
            ckpt.unlink()  # the run is complete: the final model replaces the checkpoint
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
