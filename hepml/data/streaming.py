"""Streaming: train on a task whose files do not fit in memory, one chunk of entries at a time.

``hepml train TASK --streaming --chunk-size N`` reads the task's files in ranges of entries (N entries,
or, given as a size such as ``"50 MB"``, a memory budget shared by the shuffle buffer and the range
being read; see :class:`TaskStream`), never all at once. Each range goes through the same per-chunk
processing as :func:`~hepml.data.load_dataset` (selections, labels, weights, features, top-N objects,
NaN policy; flat-only tasks are read as NumPy, without the awkward layer), and then:

1. **split by event number** — every example goes to train/validation/test from a hash of
   (event number, split seed) mapped to a uniform u in [0, 1): test if u < ``split.test``, validation if
   u < ``split.test + split.validation``, train otherwise (k-fold: test is ``event % kfold == fold``).
   This needs no pass over the data and does not depend on the chunk size or the order the files are
   read in. It is *not* the stratified split of the in-memory path (class fractions per split are
   only statistically equal), but it is just as reproducible; objects of one event share their split.
2. **preprocessing from one streamed pass** — :meth:`TaskStream.fit_preprocessing` reads the first
   ``fraction`` of the entries of *every* file (so every sample and class is represented) and learns
   μ, σ of the training examples with running (Chan/Welford) moments; the result is an ordinary
   :class:`~hepml.data.Standardizer`, saved with the model. ``balance_classes`` uses the class
   weight totals seen in the same pass (exact when the fraction is 1).
3. **a bounded shuffle buffer** — for a training epoch the ranges of all files are interleaved in a
   file order drawn from (seed, epoch) (weaver-core's fetch-step idea: the buffer mixes files, so
   samples stored one class per file are mixed too); standardised examples fill a buffer of
   ``buffer_size`` examples, which is shuffled with a generator from (seed, epoch) and emptied in
   batches. At most ``buffer_size + one chunk`` examples are held (``counters["peak_buffered"]``).

Every framework consumes the same :class:`~hepml.frameworks.base.Batch` stream: the NumPy core and
Keras iterate :meth:`TaskStream.batches` directly, torch through :class:`TorchStreamDataset` (an
``IterableDataset``; with ``num_workers`` > 0 each worker reads every K-th range of the epoch and has
its own buffer, so batches differ from ``num_workers=0`` but are reproducible for a given K), and
XGBoost through :func:`xgboost_iter` (an ``xgboost.DataIter`` feeding a ``QuantileDMatrix``).
Validation losses and test predictions are computed streamed as well (:meth:`TaskStream.evaluate`:
with an event-number branch, entries of the other splits are dropped before processing; the trainer
folds the last epoch's validation pass and the test predictions into one pass over the files).

Memory: the process's resident size follows what is allocated only if freed chunks go back to the
system, so a stream sets glibc's mmap threshold to 1 MiB and trims the heap after each read and each
emptied buffer (see :func:`_bound_heap`). ``bench/bench_streaming.py`` measures the result.
"""

from __future__ import annotations

import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError, InputFileError
from . import root_io
from .dataset import Dataset
from .preprocessing import Standardizer
from .task import _iter_files, _process_chunk, file_plan
from .task_config import load_task

PARTS = ("train", "val", "test")
_BLOCK = 65536  # rows per block when standardising or accumulating moments (bounds float64 temporaries)
_OPEN_FILES = 8  # ROOT files kept open per process (interleaved reading switches file every range)
_READ_COPIES = 2  # reading + processing a range holds about this many copies of its raw and processed bytes

__all__ = ["TaskStream", "stream_split", "split_uniform", "parse_chunk_size", "RunningMoments", "xgboost_iter", "torch_loader", "TorchStreamDataset"]


# ============================================================================= the split
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 whose output bits all depend on every input bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def split_uniform(event, seed: int) -> np.ndarray:
    """u in [0, 1) from a hash of (event number, seed): the same event and seed always give the same u."""
    with np.errstate(over="ignore"):
        key = _mix64(np.array([seed], dtype=np.int64).view(np.uint64) + _GOLDEN)
        z = _mix64(np.asarray(event, dtype=np.int64).view(np.uint64) ^ key)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def stream_split(event, *, validation: float = 0.2, test: float = 0.2, seed: int = 1, kfold=None, fold: int = 0) -> np.ndarray:
    """Split code per example — 0 train, 1 validation, 2 test — from its event number alone.

    Random mode: test if u < ``test``, validation if u < ``test + validation`` (u from
    :func:`split_uniform`). k-fold mode: test if ``event % kfold == fold``, and of the rest a
    ``validation`` fraction (by u) validates.
    """
    event = np.asarray(event, dtype=np.int64)
    u = split_uniform(event, seed)
    code = np.zeros(len(event), dtype=np.int8)
    if kfold is not None:
        code[u < validation] = 1
        code[(event % kfold) == fold] = 2
    else:
        code[u < test + validation] = 1
        code[u < test] = 2
    return code


# ============================================================================= chunk sizes
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_chunk_size(value):
    """``1000`` / ``"1000"`` → 1000 entries; ``"50 MB"`` → 50 000 000 bytes (returned as ``("bytes", n)``)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"chunk size must be at least 1 entry; received {value}", "give e.g. --chunk-size 100000 or --chunk-size '50 MB'")
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return parse_chunk_size(int(text))
    m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([a-zA-Z]+)", text)
    if m is None or m.group(2).lower() not in _UNITS or float(m.group(1)) <= 0:
        raise ConfigError(f"chunk size {value!r} is not a number of entries or a memory size", "give e.g. --chunk-size 100000 or --chunk-size '50 MB' (units B, kB, MB, GB, KiB, MiB, GiB)")
    return ("bytes", int(float(m.group(1)) * _UNITS[m.group(2).lower()]))


# ============================================================================= running moments
class RunningMoments:
    """Mean and (population) variance per column, merged chunk by chunk (Chan et al.'s parallel rule).

    For a block b with n_b rows, mean x̄_b and M2_b = Σ (x − x̄_b)² merged into (n_a, x̄_a, M2_a)::

        δ = x̄_b − x̄_a,   n = n_a + n_b,   x̄ = x̄_a + δ n_b / n,   M2 = M2_a + M2_b + δ² n_a n_b / n

    so the result equals the two-pass ``x.mean(0)``, ``x.var(0)`` of all rows to rounding (float64).
    """

    def __init__(self, n_columns: int):
        self.n = 0
        self.mean = np.zeros(n_columns)
        self.m2 = np.zeros(n_columns)

    def update(self, x: np.ndarray) -> None:
        for start in range(0, len(x), _BLOCK):
            b = np.asarray(x[start : start + _BLOCK], dtype=np.float64)
            nb = len(b)
            if nb == 0:
                continue
            mb = b.mean(axis=0)
            m2b = ((b - mb) ** 2).sum(axis=0)
            n = self.n + nb
            delta = mb - self.mean
            self.mean = self.mean + delta * (nb / n)
            self.m2 = self.m2 + m2b + delta**2 * (self.n * nb / n)
            self.n = n

    def mean_std(self):
        """(μ, σ) with σ = 1 for a constant column, as :class:`Standardizer` does."""
        std = np.sqrt(self.m2 / self.n) if self.n else np.zeros_like(self.m2)
        return self.mean.copy(), np.where(std > 0, std, 1.0)


# ============================================================================= files and ranges
@dataclass
class _File:
    """One input file of the task: what to read from it, its global entry offset, and its ranges."""

    index: int
    path: str
    tree: str
    class_index: object
    sample_name: object
    sample_info: object
    plan: object
    branches: list
    n_entries: int
    offset: int  # entries of the files before it (event numbers when the task has no event branch)
    step: int = 1  # entries per read
    raw_bytes: float = 0.0  # branch bytes per entry (uproot's estimate), for memory budgets
    flat: bool = False  # every branch read is one number per entry: read as NumPy, no awkward layer


def _libc():
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim, _LIBC.mallopt  # glibc only  # noqa: B018
        except (OSError, AttributeError):
            _LIBC = False
    return _LIBC


def _bound_heap() -> None:
    """Let arrays of 1 MiB and more be memory-mapped, so that freeing one gives its pages back at once.

    glibc raises its mmap threshold (up to 32 MB) every time a mapped block is freed, after which
    chunk-sized arrays live in the heap, where freed blocks fragment and RSS grows well past what is
    allocated (measured in one epoch at a 50 MB budget: RSS +84 MB for a 45 MB tracemalloc peak; +52 MB
    with this). Setting the threshold (``mallopt(M_MMAP_THRESHOLD)``, as ``MALLOC_MMAP_THRESHOLD_``
    would) fixes it for the whole process. A no-op where glibc is absent.
    """
    libc = _libc()
    if libc:
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD = -3 in <malloc.h>


def _release_memory() -> None:
    """Give freed heap pages back to the system (glibc ``malloc_trim``); a no-op without glibc."""
    libc = _libc()
    if libc:
        libc.malloc_trim(0)


_LIBC = None


def _nbytes(ds: Dataset) -> int:
    """Bytes of a chunk's arrays (features, sets, masks, labels, weights, events, spectators)."""
    arrays = [ds.X, ds.y, ds.weights, ds.event, *ds.sets.values(), *ds.masks.values(), *ds.spectators.values()]
    return int(sum(np.asarray(a).nbytes for a in arrays if a is not None))


def _concat(parts: list) -> Dataset:
    """One Dataset from several chunks of the same task (no split)."""
    first = parts[0]
    if len(parts) == 1:
        return first
    cat = lambda key: np.concatenate([getattr(p, key) for p in parts])  # noqa: E731
    return Dataset(
        X=cat("X"), y=cat("y"), weights=cat("weights"), feature_names=first.feature_names, class_names=first.class_names,
        sets={k: np.concatenate([p.sets[k] for p in parts]) for k in first.sets},
        masks={k: np.concatenate([p.masks[k] for p in parts]) for k in first.masks},
        set_feature_names=first.set_feature_names,
        spectators={k: np.concatenate([p.spectators[k] for p in parts]) for k in first.spectators},
        event=cat("event"), task=first.task,
    )


def _is_scalar_branch(branch) -> bool:
    """True for a branch of one number per entry (NumPy reads it as is; jagged ones need awkward)."""
    import uproot

    try:
        interp = branch.interpretation
    except Exception:
        return False
    return isinstance(interp, uproot.AsDtype) and interp.inner_shape == ()


def _open_for_streaming(path):
    """uproot file read with ``pread`` (no memory map: mapped pages would count against the memory bound)."""
    import uproot

    try:
        return uproot.open(path, handler=uproot.source.file.MultithreadedFileSource, array_cache=None, object_cache=None)
    except Exception as exc:  # the file was readable when the stream was set up
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise InputFileError(f"{path} could not be reopened for streaming ({reason})", "check that the file was not moved or rewritten during training") from None


class TaskStream:
    """A task's examples read range by range: split by event hash, preprocessed, shuffled in a bounded buffer.

    Parameters
    ----------
    task : task name, YAML path or TaskConfig
    chunk_size : int or str; default the task's ``step_size``.
        An int is the entries per read, and the default buffer holds as many examples.
        A size such as ``"50 MB"`` is a memory budget B for the data: half of it for the shuffle buffer
        (B/2 divided by the bytes of one processed example), half for the range being read and
        processed. Reading and processing an entry costs about ``_READ_COPIES`` × (its branch bytes,
        from uproot's ``num_entries_for``, + its processed bytes, measured on a first small read),
        which sets the entries per read.
    buffer_size : int, examples in the shuffle buffer (default above, at least ``batch_size``).
        Memory holds at most ``buffer_size`` + one chunk of examples.
    batch_size, seed : the training batch size and the run's seed (epoch order and shuffles).
    max_entries : read at most this many entries per file.

    Attributes
    ----------
    standardizer_ : Standardizer or None, after :meth:`fit_preprocessing`
    class_factors_ : ndarray or None, the ``balance_classes`` weight factors per class
    counters : dict of instrumentation counters (``chunks_read``, ``entries_read``, ``train_chunks_read``
        (ranges read for training batches), ``peak_buffered``, ``examples_emitted``, ``nan_dropped``) of this process
    """

    def __init__(self, task, *, chunk_size=None, buffer_size=None, batch_size: int = 256, seed: int = 1, max_entries=None):
        self.cfg = load_task(task)
        _bound_heap()
        self.chunk_size = parse_chunk_size(chunk_size if chunk_size is not None else self.cfg.step_size)
        if buffer_size is not None and (not isinstance(buffer_size, (int, np.integer)) or isinstance(buffer_size, bool) or buffer_size < 1):
            raise ConfigError(f"buffer_size must be a positive number of examples; received {buffer_size!r}", "give e.g. buffer_size=100000")
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1; received {batch_size}", "set train.batch_size")
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.max_entries = max_entries or self.cfg.max_entries
        self.files = self._scan()
        if not self.files:
            raise DataError(f"the files of task {self.cfg.name!r} hold no entries", "check the file paths and the tree name")
        self.standardizer_ = None
        self.class_factors_ = None
        self.schema_ = None
        self._open: OrderedDict = OrderedDict()
        self._pid = os.getpid()
        self.counters = dict.fromkeys(("chunks_read", "entries_read", "train_chunks_read", "peak_buffered", "examples_emitted", "nan_dropped"), 0)
        buffer_default = max(f.step for f in self.files)
        if isinstance(self.chunk_size, tuple):
            buffer_default = self._plan_budget(self.chunk_size[1])
            self.counters = dict.fromkeys(self.counters, 0)  # the probe read is not part of the run
        self.buffer_size = int(buffer_size) if buffer_size is not None else max(buffer_default, self.batch_size)

    def _plan_budget(self, budget: int) -> int:
        """Entries per read for a memory budget (see the class docstring); returns the default buffer size."""
        f = self.files[0]
        n_probe = min(f.n_entries, 2000)
        probe = self.read(f, 0, n_probe)
        processed = _nbytes(probe)
        per_entry = processed / n_probe
        per_example = processed / len(probe) if len(probe) else per_entry
        for g in self.files:
            g.step = max(1, int(budget / 2 / (_READ_COPIES * (g.raw_bytes + per_entry))))
        self.budget_ = {"bytes": budget, "raw_bytes_per_entry": f.raw_bytes, "processed_bytes_per_entry": per_entry,
                        "entries_per_read": [g.step for g in self.files]}
        return max(1, int(budget / 2 / per_example))

    # -- setting up --------------------------------------------------------------------------------
    def _scan(self) -> list:
        """Open every file once: its plan (branches, expressions), entries, offset and range length."""
        cfg, files, offset = self.cfg, [], 0
        for i, (class_index, sample_name, sample, path, tree_name) in enumerate(_iter_files(cfg)):
            with root_io.open_file(path) as fh:
                tree = root_io.get_tree(fh, tree_name, path)
                plan, sample_info, branches = file_plan(cfg, tree, path, sample_name, sample)
                n = min(self.max_entries, tree.num_entries) if self.max_entries else tree.num_entries
                raw = 0.0
                flat = not root_io.is_rntuple(tree) and all(_is_scalar_branch(tree[b]) for b in branches)
                if isinstance(self.chunk_size, tuple):
                    wanted = set(branches)
                    step = int(tree.num_entries_for(self.chunk_size[1], filter_name=lambda b: b in wanted, entry_stop=n or None)) if n else 1
                    raw = self.chunk_size[1] / max(1, step)
                else:
                    step = self.chunk_size
            if n > 0:
                files.append(_File(i, str(path), tree_name, class_index, sample_name, sample_info, plan, branches, n, offset, max(1, step), raw, flat))
            offset += n
        return files

    def _tree(self, f: _File):
        """The file's tree, opened in this process (files are reopened after a fork: torch workers)."""
        if self._pid != os.getpid():
            self._open, self._pid = OrderedDict(), os.getpid()
        if f.index in self._open:
            self._open.move_to_end(f.index)
            return self._open[f.index][1]
        fh = _open_for_streaming(f.path)
        self._open[f.index] = (fh, root_io.get_tree(fh, f.tree, f.path))
        while len(self._open) > _OPEN_FILES:
            old, _ = self._open.popitem(last=False)[1]
            old.close()
        return self._open[f.index][1]

    def close(self) -> None:
        """Close the ROOT files this process has open."""
        if self._pid == os.getpid():
            for fh, _ in self._open.values():
                fh.close()
        self._open = OrderedDict()

    def __getstate__(self):  # open files never travel to another process
        state = dict(self.__dict__)
        state["_open"] = OrderedDict()
        return state

    def ranges(self, *, epoch=None, fraction=None) -> list:
        """(file, start, stop) entry ranges: file by file in task order, or interleaved for ``epoch``.

        For a training epoch the files are taken in an order drawn from (seed, epoch) and their ranges
        interleaved (first range of every file, then the second...), so a buffer mixes files.
        ``fraction`` keeps the first ``ceil(fraction × entries)`` entries of each file.
        """
        per_file = []
        for f in self.files:
            stop = f.n_entries if fraction is None else max(1, math.ceil(fraction * f.n_entries))
            per_file.append([(f, a, min(a + f.step, stop)) for a in range(0, stop, f.step)])
        if epoch is None:
            return [r for rs in per_file for r in rs]
        order = np.random.default_rng(self._epoch_seeds(epoch)[0]).permutation(len(per_file))
        out, depth = [], max(len(rs) for rs in per_file)
        for j in range(depth):
            out.extend(per_file[i][j] for i in order if j < len(per_file[i]))
        return out

    def _epoch_seeds(self, epoch: int):
        """(file-order seed, buffer seed) of an epoch, independent streams from (seed, epoch)."""
        return np.random.SeedSequence([self.seed, int(epoch)]).spawn(2)

    # -- reading ---------------------------------------------------------------------------------
    def split_codes(self, event) -> np.ndarray:
        """0/1/2 (train/val/test) for each event number, with the task's split settings."""
        s = self.cfg.split
        return stream_split(event, validation=s.validation, test=s.test, seed=s.seed, kfold=s.kfold, fold=s.fold)

    def read(self, f: _File, start: int, stop: int, *, codes=None) -> Dataset:
        """Entries [start, stop) of a file as processed examples (no standardisation).

        ``codes`` (split codes to keep, e.g. ``(1, 2)``): with an event-number branch, entries of other
        splits are dropped before processing (an event's examples all share its split), which makes
        the validation and test passes cheap; the caller still selects examples by split.
        """
        import awkward as ak

        tree = self._tree(f)
        wanted = set(f.branches)
        raw = tree.arrays(filter_name=lambda n: n in wanted, entry_start=start, entry_stop=stop, library="np" if f.flat else "ak", array_cache=None)
        arrays = {name: root_io.get_field(raw, name) for name in f.branches}
        del raw
        ev = arrays.get(f.plan.event_branch) if f.plan.event_branch else None
        if codes is not None and ev is not None and ev.ndim == 1:
            keep = np.isin(self.split_codes(ak.to_numpy(ev) if isinstance(ev, ak.Array) else ev), codes)
            if not keep.all():
                arrays = {k: v[keep] for k, v in arrays.items()}
        out = _process_chunk(f.plan, arrays, class_index=f.class_index, sample=f.sample_info, entry_offset=f.offset + start)
        del arrays
        self.counters["chunks_read"] += 1
        self.counters["entries_read"] += stop - start
        ds = Dataset(
            X=out["X"], y=out["y"], weights=out["weights"], feature_names=out["feature_names"], class_names=self.cfg.class_names,
            sets=out["sets"], masks=out["masks"], set_feature_names=out["set_names"], spectators=out["spectators"],
            event=out["event"], task=self.cfg.name,
        )
        ds = self._nan_policy(ds, f, start, stop)
        _release_memory()  # the temporaries of reading and processing (several times the chunk) go back
        return ds

    def _nan_policy(self, ds: Dataset, f: _File, start: int, stop: int) -> Dataset:
        """The task's ``nan:`` policy (fail / drop / fill) on one chunk, as :func:`load_dataset` applies it."""
        bad = ~np.isfinite(ds.X)
        bad_rows = bad.any(axis=1)
        for s in ds.sets.values():
            bad_rows |= ~np.isfinite(s).all(axis=(1, 2))
        if not bad_rows.any():
            return ds
        cfg = self.cfg
        if cfg.nan == "fail":
            if bad.any():
                j = int(np.argmax(bad.sum(axis=0)))
                what = f"feature {ds.feature_names[j]!r} has {int(bad[:, j].sum())} NaN/inf values"
            else:
                k = next(k for k, s in ds.sets.items() if not np.isfinite(s).all())
                what = f"objects group {k!r} has {int((~np.isfinite(ds.sets[k])).sum())} NaN/inf values"
            raise DataError(
                f"{what} in entries {start}-{stop} of {f.path}",
                "set 'nan: drop' or 'nan: fill' (with nan_fill) in the task, or fix the expression",
            )
        if cfg.nan == "drop":
            self.counters["nan_dropped"] += int(bad_rows.sum())
            return ds.subset(~bad_rows)
        fill = np.float32(cfg.nan_fill)
        ds.X = np.where(np.isfinite(ds.X), ds.X, fill)
        ds.sets = {k: np.where(np.isfinite(v), v, fill) for k, v in ds.sets.items()}
        return ds

    def chunks(self, part: str = "train", *, epoch=None, fraction=None, shard=(0, 1), preprocess: bool = True):
        """Yield the examples of ``part`` (train/val/test/all) range by range, as small Datasets.

        ``preprocess`` applies the class-balance factors and the standardiser (when fitted);
        ``shard=(k, K)`` keeps every K-th range starting at k (torch workers, DDP ranks): the shards of
        one pass are disjoint and together read every range once.
        """
        if part not in PARTS + ("all",):
            raise ConfigError(f"unknown split part {part!r}", "use train, val, test or all")
        code = None if part == "all" else PARTS.index(part)
        worker, n_workers = shard
        for f, a, b in self.ranges(epoch=epoch, fraction=fraction)[worker::n_workers]:
            ds = self.read(f, a, b, codes=None if code is None else (code,))
            if code == 0:
                self.counters["train_chunks_read"] += 1
            if code is not None:
                keep = self.split_codes(ds.event) == code
                ds = ds if keep.all() else ds.subset(keep)
            if len(ds) == 0:
                continue
            yield self._preprocess(ds) if preprocess else ds

    def _preprocess(self, ds: Dataset) -> Dataset:
        if self.class_factors_ is not None:
            ds.weights = ds.weights * self.class_factors_[ds.y]
        st = self.standardizer_
        if st is None:
            return ds
        X = ds.X if ds.X.dtype == np.float32 and ds.X.flags.writeable else ds.X.astype(np.float32)
        for a in range(0, len(X), _BLOCK):  # the same float64 arithmetic as Standardizer.transform, by blocks
            X[a : a + _BLOCK] = (X[a : a + _BLOCK] - st.mean_) / st.std_
        sets = {}
        for name, s in ds.sets.items():
            out = np.empty(s.shape, np.float32)
            m = ds.masks[name]
            for a in range(0, len(s), _BLOCK):
                z = (s[a : a + _BLOCK] - st.set_mean_[name]) / st.set_std_[name]
                out[a : a + _BLOCK] = np.where(m[a : a + _BLOCK][..., None], z, 0.0)
            sets[name] = out
        ds.X, ds.sets = X, sets
        return ds

    # -- one streamed pass: preprocessing statistics -----------------------------------------------
    def fit_preprocessing(self, *, fraction: float = 0.1, standardize: bool = True):
        """Read the first ``fraction`` of every file once; learn μ, σ (training examples) and class totals.

        Returns the fitted :class:`Standardizer` (None when ``standardize`` is False). The standardiser
        equals ``Standardizer().fit`` on the same training examples (running moments in float64).
        """
        if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
            raise ConfigError(f"standardize_fraction must be in (0, 1]; received {fraction!r}", "give e.g. 0.1 (the first 10% of every file)")
        moments, set_moments, schema = None, {}, None
        n_classes = len(self.cfg.class_names)
        totals, counts, n_train = np.zeros(n_classes), np.zeros(n_classes, dtype=np.int64), 0
        for ds in self.chunks("all", fraction=fraction, preprocess=False):
            if schema is None:
                schema = ds.subset(np.zeros(0, dtype=np.int64))
                moments = RunningMoments(ds.X.shape[1])
                set_moments = {k: RunningMoments(v.shape[-1]) for k, v in ds.sets.items()}
            totals += np.bincount(ds.y, weights=ds.weights, minlength=n_classes)
            train = self.split_codes(ds.event) == 0
            if not train.any():
                continue
            tr = ds.subset(train)
            n_train += len(tr)
            counts += np.bincount(tr.y, minlength=n_classes)
            if standardize:
                moments.update(tr.X)
                for k, v in tr.sets.items():
                    set_moments[k].update(v.reshape(-1, v.shape[-1])[tr.masks[k].reshape(-1)])
        pct = f"{100 * fraction:g}%"
        if n_train == 0:
            raise DataError(
                f"the first {pct} of the files of task {self.cfg.name!r} hold no training examples after selection",
                "raise standardize_fraction, loosen the selection, or check the split fractions",
            )
        empty = [name for name, c in zip(self.cfg.class_names, counts) if c == 0]
        if empty:
            raise DataError(
                f"class {empty[0]!r} has no training examples in the first {pct} of the files (counts: "
                + ", ".join(f"{n}={int(c)}" for n, c in zip(self.cfg.class_names, counts)) + ")",
                "raise standardize_fraction, or check label.classes and the sample files",
            )
        if self.cfg.balance_classes:
            self.class_factors_ = totals.sum() / (n_classes * totals)
        self.schema_ = schema
        self.prep_counts_ = {"train_examples": int(n_train), "class_counts": counts.tolist()}
        if not standardize:
            self.standardizer_ = None
            return None
        st = Standardizer()
        st.mean_, st.std_ = moments.mean_std()
        st.feature_names_ = list(schema.feature_names)
        for k, m in set_moments.items():
            st.set_mean_[k], st.set_std_[k] = m.mean_std() if m.n else (np.zeros(len(m.mean)), np.ones(len(m.mean)))
        self.standardizer_ = st
        return st

    def schema(self) -> Dataset:
        """A zero-length Dataset with the task's feature names, set shapes and classes (for building models)."""
        if self.schema_ is None:
            f = self.files[0]
            self.schema_ = self.read(f, 0, min(f.n_entries, f.step)).subset(np.zeros(0, dtype=np.int64))
        return self.schema_

    # -- training batches: the bounded shuffle buffer -------------------------------------------------
    def batches(self, epoch: int, spec, dtype=np.float32, *, shard=(0, 1)):
        """The training batches of ``epoch`` (Batch objects), through the shuffle buffer.

        Chunks fill the buffer until it holds ``buffer_size`` examples; then it is shuffled and emptied in
        ``batch_size`` batches, the remainder (< one batch) staying for the next fill. The last batch of
        the epoch may be smaller. ``shard=(k, K)`` reads every K-th range of the epoch from k, with a
        shuffle generator of its own from (seed, epoch, k) — a torch worker, or a DDP rank (which then
        passes its rank batch size ⌈batch_size / world⌉ as the stream's ``batch_size``).
        """
        from ..frameworks.base import make_batch

        seq = self._epoch_seeds(epoch)[1]
        worker, n_workers = shard
        rng = np.random.default_rng(seq if n_workers == 1 else seq.spawn(n_workers)[worker])
        parts, n = [], 0
        for ds in self.chunks("train", epoch=epoch, shard=shard):
            parts.append(ds)
            n += len(ds)
            self.counters["peak_buffered"] = max(self.counters["peak_buffered"], n)
            if n >= self.buffer_size:
                for batch in self._drain(parts, rng, keep_remainder=True):
                    yield make_batch(batch, slice(None), spec, dtype)
                n = sum(len(p) for p in parts)
        for batch in self._drain(parts, rng, keep_remainder=False):
            yield make_batch(batch, slice(None), spec, dtype)

    def _drain(self, parts: list, rng, *, keep_remainder: bool):
        """Shuffle the buffered examples and yield them in batches; leaves the remainder in ``parts``."""
        n = sum(len(p) for p in parts)
        if n == 0:
            return
        offsets = np.cumsum([0] + [len(p) for p in parts])
        order = rng.permutation(n)
        bs = self.batch_size
        n_out = (n // bs) * bs if keep_remainder else n
        rest = _gather(parts, offsets, order[n_out:]) if n_out < n else None
        held = list(parts)
        parts.clear()
        for a in range(0, n_out, bs):
            self.counters["examples_emitted"] += min(bs, n_out - a)
            yield _gather(held, offsets, order[a : a + bs])
        held.clear()
        _release_memory()
        if rest is not None:
            parts.append(rest)

    # -- streamed evaluation ------------------------------------------------------------------------
    def evaluate(self, adapter, spec, dtype=np.float32, *, loss_part="val", predict_part="test"):
        """The loss over ``loss_part`` and the predictions over ``predict_part``, in one pass over the files.

        Returns (loss, n_loss, proba, examples): loss = Σ w L / Σ w of ``adapter`` (None without examples),
        proba of shape (n, n_classes) in file order, examples a Dataset of the predicted examples'
        labels, weights, events and spectators with X of shape (n, 0). Either part may be None.
        """
        from ..frameworks.base import make_batch

        want = tuple(PARTS.index(p) for p in (loss_part, predict_part) if p is not None)
        total, wsum, n_loss = 0.0, 0.0, 0
        probas, summaries = [], []
        for f, a, b in self.ranges():
            ds = self.read(f, a, b, codes=want)
            code = self.split_codes(ds.event)
            for part in dict.fromkeys(p for p in (loss_part, predict_part) if p is not None):
                keep = code == PARTS.index(part)
                if not keep.any():
                    continue
                sub = self._preprocess(ds.subset(keep))
                batch = make_batch(sub, slice(None), spec, dtype)
                if part == loss_part:
                    w = float(np.sum(batch.w, dtype=np.float64))
                    total += adapter.loss(batch) * w
                    wsum += w
                    n_loss += len(sub)
                if part == predict_part:
                    probas.append(adapter.predict_proba(batch))
                    summaries.append(Dataset(
                        X=np.zeros((len(sub), 0), np.float32), y=sub.y, weights=sub.weights, feature_names=[], class_names=sub.class_names,
                        spectators=sub.spectators, event=sub.event, task=sub.task,
                    ))
        loss = total / wsum if wsum > 0 else None
        if not probas:
            empty = Dataset(X=np.zeros((0, 0), np.float32), y=np.zeros(0, np.int64), weights=np.zeros(0), feature_names=[],
                            class_names=self.cfg.class_names, event=np.zeros(0, np.int64), task=self.cfg.name)
            return loss, n_loss, np.zeros((0, len(self.cfg.class_names))), empty
        return loss, n_loss, np.concatenate(probas), _concat(summaries)

    def loss(self, adapter, part: str, spec, dtype=np.float32):
        """Weighted-mean loss Σ w L / Σ w of ``adapter`` over ``part``, chunk by chunk; (loss, n) or (None, 0)."""
        loss, n, _, _ = self.evaluate(adapter, spec, dtype, loss_part=part, predict_part=None)
        return loss, n

    def predict(self, adapter, part: str, spec, dtype=np.float32):
        """Class probabilities over ``part`` in file order, and the examples' labels, weights, events, spectators.

        Returns (proba of shape (n, n_classes), Dataset of the examples with X of shape (n, 0)).
        """
        _, _, proba, examples = self.evaluate(adapter, spec, dtype, loss_part=None, predict_part=part)
        return proba, examples


def _gather(parts: list, offsets: np.ndarray, index: np.ndarray) -> Dataset:
    """The buffered examples at global positions ``index``, in that order, without concatenating the buffer.

    Only what a training batch needs is gathered (features, sets, masks, labels, weights), straight into
    arrays of the batch's size.
    """
    which = np.searchsorted(offsets, index, side="right") - 1
    first, n = parts[0], len(index)
    empty = lambda a: np.empty((n, *a.shape[1:]), a.dtype)  # noqa: E731
    out = Dataset(
        X=empty(first.X), y=empty(first.y), weights=empty(first.weights), feature_names=first.feature_names,
        class_names=first.class_names, sets={k: empty(v) for k, v in first.sets.items()},
        masks={k: empty(v) for k, v in first.masks.items()}, set_feature_names=first.set_feature_names, task=first.task,
    )
    for p in np.unique(which):
        sel = which == p
        local = index[sel] - offsets[p]
        src = parts[p]
        out.X[sel], out.y[sel], out.weights[sel] = src.X[local], src.y[local], src.weights[local]
        for k in out.sets:
            out.sets[k][sel], out.masks[k][sel] = src.sets[k][local], src.masks[k][local]
    return out


# ============================================================================= framework feeds
def torch_loader(stream: TaskStream, epoch: int, spec, dtype=np.float32, *, num_workers: int = 0, rank_shard=(0, 1)):
    """A ``torch.utils.data.DataLoader`` over the epoch's batches (``num_workers`` processes read ranges).

    ``rank_shard=(r, R)``: DDP rank r of R reads only its own ranges (every R-th of the epoch from r).
    """
    import torch

    ds = __getattr__("TorchStreamDataset")(stream, spec, dtype, rank_shard=rank_shard)
    ds.set_epoch(epoch)
    return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=int(num_workers), collate_fn=_identity)


def _identity(x):
    return x


def _make_torch_dataset():
    import torch

    class TorchStreamDataset(torch.utils.data.IterableDataset):
        """The training batches of one epoch as a torch ``IterableDataset`` yielding :class:`Batch` objects.

        In a worker process k of K the stream keeps every K-th range of the epoch (and its own shuffle
        buffer), so no range is read twice; ``set_epoch`` chooses the epoch before iterating. Under DDP
        (``rank_shard=(r, R)``) worker k of rank r reads every (R·K)-th range from r + R·k: the rank's
        shard (every R-th range from r) split among its workers.
        """

        def __init__(self, stream, spec, dtype=np.float32, rank_shard=(0, 1)):
            super().__init__()
            self.stream, self.spec, self.dtype, self.epoch = stream, spec, dtype, 0
            self.rank_shard = (int(rank_shard[0]), int(rank_shard[1]))

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            k, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
            rank, world = self.rank_shard
            shard = (rank + world * k, world * n_workers)
            return self.stream.batches(self.epoch, self.spec, self.dtype, shard=shard)

    TorchStreamDataset.__module__ = __name__
    return TorchStreamDataset


def __getattr__(name):
    """``TorchStreamDataset`` is made on first use, so importing this module does not import torch."""
    if name == "TorchStreamDataset":
        if name not in globals():
            globals()[name] = _make_torch_dataset()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def xgboost_iter(stream: TaskStream, part: str = "train"):
    """An ``xgboost.DataIter`` handing XGBoost the examples of ``part`` one chunk at a time (flat features).

    XGBoost calls ``reset`` and iterates it again as often as it needs (sketching the quantiles, then
    binning); each pass re-reads the files, and only one chunk is held at a time.
    """
    import xgboost

    class _StreamIter(xgboost.DataIter):
        def __init__(self):
            super().__init__(release_data=True)
            self.n_examples = 0
            self._it = None

        def reset(self):
            self._it = None

        def next(self, input_data) -> bool:
            if self._it is None:
                self._it = stream.chunks(part)
                self.n_examples = 0
            ds = next(self._it, None)
            if ds is None:
                self._it = None
                return False
            w = ds.weights
            if not np.isfinite(w).all() or (w < 0).any():
                raise DataError(f"the {part} weights must be finite and >= 0 for XGBoost; received min {float(np.min(w))!r}", "fix the task's weight expression")
            self.n_examples += len(ds)
            input_data(data=ds.X, label=ds.y, weight=w)
            return True

    return _StreamIter()
