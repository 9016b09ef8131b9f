"""TaskConfig → Dataset: read only the branches the task needs, chunk by chunk, and build arrays.

The order of operations for every chunk of every file:

1. object selections (``collections.<name>.selection``) mask the objects of that collection;
2. the entry selection (and the sample's) keeps entries (a per-object selection with a per-object
   ``example`` masks objects instead);
3. one example per entry, or per object of the ``example`` collection (per-object values flattened,
   per-entry values broadcast onto the objects);
4. labels (by sample, or by mapping a branch's values), weights, features, top-N object groups
   (sorted by a key, padded, kept as sets and/or flattened) and spectators are computed.

Then, over all chunks: NaN/inf policy, empty-selection and empty-class checks, optional class
balancing of the weights, and the deterministic split. Reading is vectorised (uproot + awkward; no
Python loop over entries).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import awkward as ak
import numpy as np

from ..errors import DataError, ExpressionError, MissingKeyError
from . import root_io
from .dataset import Dataset, make_split
from .expressions import Expression
from .sources import resolve_files
from .task_config import Feature, TaskConfig, load_task


@dataclass
class _Source:
    """One computed quantity: a branch read as-is, or an expression over branches."""

    name: str
    text: str
    expr: Expression | None  # None: ``text`` is a branch name

    def evaluate(self, arrays):
        return arrays[self.text] if self.expr is None else self.expr.evaluate(arrays)


def _source(item, what: str, keys: set[str]) -> _Source:
    name, text = (item.name, item.expr) if isinstance(item, Feature) else (item, item)
    if text in keys:
        return _Source(name, text, None)
    expr = Expression(text, what=f"{what} {name!r}")
    return _Source(name, text, expr)


class _Plan:
    """What one tree must provide for a task: the sources of every output and the branches to read."""

    def __init__(self, cfg: TaskConfig, keys: set[str], path):
        self.cfg = cfg
        s = lambda item, what: _source(item, what, keys)  # noqa: E731
        self.features = [s(f, "feature") for f in cfg.features]
        self.spectators = [s(f, "spectator") for f in cfg.spectators]
        self.groups = {
            gname: ([s(f, f"objects.{gname} field") for f in g.fields], s(g.sort_by, f"objects.{gname}.sort_by") if g.sort_by else None, g)
            for gname, g in cfg.objects.items()
        }
        self.label = s(cfg.label.branch, "label") if cfg.label is not None else None
        self.weight = s(cfg.weight, "weight") if cfg.weight else None
        self.selection = s(cfg.selection, "selection") if cfg.selection else None
        self.object_selections = {
            name: s(c.selection, f"collections.{name}.selection") for name, c in cfg.collections.items() if c.selection
        }
        self.event_branch = cfg.event or ("event" if "event" in keys else None)
        needed: set[str] = set()
        for src in self.all_sources():
            needed |= {src.text} if src.expr is None else set(src.expr.names)
        if self.event_branch:
            needed.add(self.event_branch)
        missing = sorted(needed - keys)
        if missing:
            raise MissingKeyError(
                f"branch {missing[0]!r} (used by the task) not found in tree {cfg.tree!r} of {path}",
                root_io._did_you_mean(missing[0], sorted(keys)),
            )
        self.example_ref = None
        if cfg.example != "event":
            prefix = cfg.prefix(cfg.example)
            members = sorted(k for k in keys if k.startswith(prefix))
            if not members:
                raise MissingKeyError(
                    f"example: {cfg.example!r} but no branch of tree {cfg.tree!r} starts with {prefix!r} in {path}",
                    "set 'example:' to a collection name (e.g. Jet for Jet_pt) or 'event', or give collections."
                    f"{cfg.example}.prefix",
                )
            used = sorted(n for n in needed if n.startswith(prefix))
            self.example_ref = (used or members)[0]
            needed.add(self.example_ref)
        self.branches = sorted(needed)

    def all_sources(self):
        yield from self.features
        yield from self.spectators
        for fields, key, _ in self.groups.values():
            yield from fields
            if key is not None:
                yield key
        for src in (self.label, self.weight, self.selection, *self.object_selections.values()):
            if src is not None:
                yield src


def _depth(x) -> int:
    if isinstance(x, ak.Array):
        return x.ndim
    return np.ndim(x)


def _is_record(x) -> bool:
    return isinstance(x, ak.Array) and x.fields != []


def _flat_numpy(x, what: str) -> np.ndarray:
    """A per-entry awkward/NumPy value as a NumPy array (None → NaN)."""
    if _is_record(x):
        raise ExpressionError(f"{what} evaluates to records (four-vectors?)", "take a component, e.g. p4(...).mass or .pt")
    if isinstance(x, ak.Array):
        if x.ndim != 1:
            raise ExpressionError(f"{what} is nested {x.ndim} levels deep ({x.type})", "reduce it with sum()/max()/nth()")
        if isinstance(x.layout, ak.contents.IndexedOptionArray) or "?" in str(x.type):
            x = ak.fill_none(x, np.nan)
        return ak.to_numpy(x)
    return np.asarray(x)


class _Chunk:
    """The arrays of one chunk and how examples are formed from them."""

    def __init__(self, plan: _Plan, arrays: dict, n_entries: int):
        self.plan, self.arrays, self.n_entries = plan, arrays, n_entries
        self.counts = None  # per-entry object counts in per-object mode

    def column(self, value, what: str) -> np.ndarray:
        """One value per example: flatten per-object values, broadcast per-entry ones."""
        if not isinstance(value, ak.Array) and np.ndim(value) == 0:
            n = self.n_entries if self.counts is None else int(self.counts.sum())
            return np.full(n, value)
        if _is_record(value):
            raise ExpressionError(f"{what} evaluates to records (four-vectors?)", "take a component, e.g. p4(...).mass")
        depth = _depth(value)
        if self.counts is None:
            if depth >= 2:
                raise ExpressionError(
                    f"{what} is per-object ({ak.type(value).content}) but examples are one per entry",
                    "reduce it (sum(), max(), nth(x, 0)), put it in an 'objects' group, or set example: <collection>",
                )
            return _flat_numpy(value, what)
        if depth == 1:
            return np.repeat(_flat_numpy(value, what), self.counts)
        if depth == 2:
            if not np.array_equal(ak.to_numpy(ak.num(value, axis=1)), self.counts):
                raise ExpressionError(
                    f"{what} has a different number of objects than the example collection {self.plan.cfg.example!r}",
                    "use branches of that collection (or per-entry values, which are broadcast)",
                )
            return _flat_numpy(ak.flatten(value, axis=1), what)
        raise ExpressionError(f"{what} is nested {depth} levels deep", "reduce the inner level first (sum/max/nth)")


def _apply_object_mask(arrays: dict, prefix: str, mask, what: str) -> dict:
    if _depth(mask) != 2:
        raise ExpressionError(f"{what} must be per-object (one boolean per object)", "compare a collection branch, e.g. Jet_pt > 30")
    return {k: (v[mask] if k.startswith(prefix) and _depth(v) >= 2 else v) for k, v in arrays.items()}


def _process_chunk(plan: _Plan, arrays: dict, *, class_index, sample, entry_offset: int) -> dict:
    """Turn one chunk of raw arrays into NumPy example arrays (see the module docstring for the order)."""
    cfg = plan.cfg
    n_read = len(next(iter(arrays.values())))
    event = arrays[plan.event_branch] if plan.event_branch else np.arange(entry_offset, entry_offset + n_read)
    arrays = dict(arrays)
    for name, src in plan.object_selections.items():
        arrays = _apply_object_mask(arrays, cfg.prefix(name), src.evaluate(arrays), f"collections.{name}.selection")
    selections = [src for src in (plan.selection, sample and sample[1]) if src is not None]
    keep = np.ones(n_read, dtype=bool)
    for src in selections:
        mask = src.evaluate(arrays)
        if _depth(mask) == 2 and cfg.example != "event":
            arrays = _apply_object_mask(arrays, cfg.prefix(cfg.example), mask, f"selection {src.text!r}")
        elif _depth(mask) == 2:
            raise ExpressionError(
                f"selection {src.text!r} is per-object but examples are one per entry",
                "wrap it in any()/all(), or move it under collections.<name>.selection",
            )
        else:
            keep &= _flat_numpy(mask, f"selection {src.text!r}").astype(bool)
    arrays = {k: v[keep] for k, v in arrays.items()}
    event = np.asarray(event)[keep] if not isinstance(event, ak.Array) else ak.to_numpy(event[keep])
    chunk = _Chunk(plan, arrays, int(keep.sum()))
    if cfg.example != "event":
        chunk.counts = ak.to_numpy(ak.num(arrays[plan.example_ref], axis=1)).astype(np.int64)
    n = chunk.n_entries if chunk.counts is None else int(chunk.counts.sum())

    out = {"n_read": n_read, "n_selected": n}
    out["event"] = chunk.column(event, "event").astype(np.int64)
    # labels
    if plan.label is not None:
        values = chunk.column(plan.label.evaluate(arrays), f"label {plan.label.text!r}")
        y = np.full(n, -1, dtype=np.int64)
        for i, vals in enumerate(cfg.label.values().values()):
            y[np.isin(values, vals)] = i
        out["unmapped_values"] = np.unique(values[y < 0])[:5].tolist()
    else:
        y = np.full(n, class_index, dtype=np.int64)
        out["unmapped_values"] = []
    out["y"] = y
    # weights
    w = np.ones(n, dtype=np.float64)
    if plan.weight is not None:
        w = w * chunk.column(plan.weight.evaluate(arrays), f"weight {plan.weight.text!r}")
    if sample is not None:
        sw = sample[2]
        w = w * (chunk.column(sw.evaluate(arrays), f"sample weight {sw.text!r}") if isinstance(sw, _Source) else sw)
    out["weights"] = w
    # flat features, then object groups
    columns, names = [chunk.column(src.evaluate(arrays), f"feature {src.name!r}") for src in plan.features], [
        src.name for src in plan.features
    ]
    out["sets"], out["masks"], out["set_names"] = {}, {}, {}
    for gname, (fields, key, g) in plan.groups.items():
        values = [src.evaluate(arrays) for src in fields]
        for src, v in zip(fields, values):
            if _depth(v) != 2:
                raise ExpressionError(f"objects.{gname} field {src.name!r} is not per-object", "use branches of one collection")
        if key is not None:
            order = ak.argsort(key.evaluate(arrays), axis=1, ascending=g.ascending, stable=True)
            values = [v[order] for v in values]
        padded = [ak.pad_none(v, g.max, axis=1, clip=True) for v in values]
        mask = ak.to_numpy(~ak.is_none(padded[0], axis=1))
        block = np.stack(
            [ak.to_numpy(ak.fill_none(p, g.pad)).astype(np.float32) for p in padded], axis=-1
        ) if len(values[0]) else np.zeros((0, g.max, len(values)), np.float32)
        if g.as_ in ("set", "both"):
            out["sets"][gname], out["masks"][gname] = block, mask.reshape(len(block), g.max)
            out["set_names"][gname] = [src.name for src in fields]
        if g.as_ in ("flat", "both"):
            for j, src in enumerate(fields):
                for i in range(g.max):
                    columns.append(block[:, i, j])
                    names.append(f"{src.name}_{i}")
    out["X"] = np.stack([c.astype(np.float32) for c in columns], axis=1) if columns else np.zeros((n, 0), np.float32)
    out["feature_names"] = names
    out["spectators"] = {src.name: chunk.column(src.evaluate(arrays), f"spectator {src.name!r}") for src in plan.spectators}
    # drop examples whose label value is not mapped
    labelled = y >= 0
    if not labelled.all():
        if cfg.label.unmapped == "fail":
            raise DataError(
                f"label.branch {cfg.label.branch!r} has values {out['unmapped_values']} not in label.classes",
                "map them to a class, or set label.unmapped: drop",
            )
        out = _take(out, labelled)
    out["n_unmapped"] = int((~labelled).sum())
    return out


_PER_EXAMPLE = ("event", "y", "weights", "X")


def _take(out: dict, index) -> dict:
    out = dict(out)
    for k in _PER_EXAMPLE:
        out[k] = out[k][index]
    for k in ("sets", "masks", "spectators"):
        out[k] = {name: v[index] for name, v in out[k].items()}
    return out


def _iter_files(cfg: TaskConfig):
    """(class_index or None, sample tuple or None, path, tree name) for every input file."""
    if cfg.samples is not None:
        for i, (name, sample) in enumerate(cfg.samples.items()):
            for path in resolve_files(sample.files, cfg.base_dir):
                yield i, name, sample, path, sample.tree or cfg.tree
    else:
        for path in resolve_files(cfg.files, cfg.base_dir):
            yield None, None, None, path, cfg.tree


def file_plan(cfg: TaskConfig, tree, path, sample_name=None, sample=None):
    """What to read from one file: its _Plan, the sample's (name, selection, weight) and the branch list.

    Every branch the task (and the file's sample) needs is checked against the tree first, so a
    missing one is a MissingKeyError with the closest names before anything is read.
    """
    keys = root_io.branch_names(tree)
    plan = _Plan(cfg, keys, path)
    if sample is None:
        return plan, None, plan.branches
    sel = _source(sample.selection, f"samples.{sample_name}.selection", keys) if sample.selection else None
    sw = _source(sample.weight, f"samples.{sample_name}.weight", keys) if isinstance(sample.weight, str) else sample.weight
    needed = set(plan.branches)
    for src in (sel, sw):
        if isinstance(src, _Source):
            needed |= {src.text} if src.expr is None else set(src.expr.names)
    root_io.check_branches(tree, sorted(needed), path)
    return plan, (sample_name, sel, sw), sorted(needed)


def iterate_chunks(task, *, max_entries=None, step_size=None):
    """Yield processed chunks (dicts of NumPy arrays) file by file, ``step_size`` entries/bytes at a time.

    This is the bounded-memory path (``uproot`` ``iterate``); :func:`load_dataset` concatenates it.
    """
    cfg = load_task(task)
    max_entries = max_entries or cfg.max_entries
    step_size = step_size or cfg.step_size
    entry_offset = 0
    for class_index, sample_name, sample, path, tree_name in _iter_files(cfg):
        file = root_io.open_file(path)
        tree = root_io.get_tree(file, tree_name, path)
        plan, sample_info, branches = file_plan(cfg, tree, path, sample_name, sample)
        stop = min(max_entries, tree.num_entries) if max_entries else None
        wanted = set(branches)
        for raw in tree.iterate(filter_name=lambda n: n in wanted, step_size=step_size, entry_stop=stop, library="ak"):
            arrays = {name: root_io.get_field(raw, name) for name in branches}
            chunk = _process_chunk(plan, arrays, class_index=class_index, sample=sample_info, entry_offset=entry_offset)
            chunk["path"] = str(path)
            entry_offset += chunk["n_read"]
            yield chunk


def load_dataset(task, *, max_entries=None, step_size=None) -> Dataset:
    """Read a task (name, path or TaskConfig) into a :class:`Dataset` with its split."""
    cfg = load_task(task)
    t0 = time.perf_counter()
    chunks = list(iterate_chunks(cfg, max_entries=max_entries, step_size=step_size))
    read_seconds = time.perf_counter() - t0
    n_read = sum(c["n_read"] for c in chunks)
    n_selected = sum(c["n_selected"] for c in chunks)
    files = sorted({c["path"] for c in chunks})
    if n_selected == 0:
        sel = f"selection {cfg.selection!r}" if cfg.selection else "the selections"
        raise DataError(
            f"{sel} kept 0 of {n_read} entries in {len(files)} file(s) of task {cfg.name!r}",
            "loosen the selection or check the branch values with `hepml inspect`",
        )
    feature_names = chunks[0]["feature_names"]
    cat = lambda key: np.concatenate([c[key] for c in chunks])  # noqa: E731
    X, y, w, event = cat("X"), cat("y"), cat("weights"), cat("event")
    sets = {k: np.concatenate([c["sets"][k] for c in chunks]) for k in chunks[0]["sets"]}
    masks = {k: np.concatenate([c["masks"][k] for c in chunks]) for k in chunks[0]["masks"]}
    spectators = {k: np.concatenate([c["spectators"][k] for c in chunks]) for k in chunks[0]["spectators"]}
    n_unmapped = sum(c["n_unmapped"] for c in chunks)

    # NaN / inf policy over flat features and set fields (padding never is NaN)
    bad = ~np.isfinite(X)
    bad_rows = bad.any(axis=1)
    for k, s in sets.items():
        bad_rows |= ~np.isfinite(s).all(axis=(1, 2))
    n_nan_dropped = 0
    if bad_rows.any():
        if cfg.nan == "fail":
            if bad.any():
                j = int(np.argmax(bad.sum(axis=0)))
                what = f"feature {feature_names[j]!r} has {int(bad[:, j].sum())} NaN/inf values"
            else:
                k = next(k for k, s in sets.items() if not np.isfinite(s).all())
                what = f"objects group {k!r} has {int((~np.isfinite(sets[k])).sum())} NaN/inf values"
            raise DataError(
                f"{what} (of {len(X)} examples; {int(bad_rows.sum())} examples affected)",
                "set 'nan: drop' or 'nan: fill' (with nan_fill) in the task, or fix the expression",
            )
        if cfg.nan == "drop":
            keep = ~bad_rows
            n_nan_dropped = int(bad_rows.sum())
            X, y, w, event = X[keep], y[keep], w[keep], event[keep]
            sets = {k: v[keep] for k, v in sets.items()}
            masks = {k: v[keep] for k, v in masks.items()}
            spectators = {k: v[keep] for k, v in spectators.items()}
        else:
            X = np.where(np.isfinite(X), X, np.float32(cfg.nan_fill))
            sets = {k: np.where(np.isfinite(v), v, np.float32(cfg.nan_fill)) for k, v in sets.items()}
    if len(y) == 0:
        raise DataError(f"no examples left in task {cfg.name!r} after dropping NaN/inf", "use 'nan: fill' or fix the features")
    counts = np.bincount(y, minlength=len(cfg.class_names))
    empty = [name for name, c in zip(cfg.class_names, counts) if c == 0]
    if empty:
        raise DataError(
            f"class {empty[0]!r} has no examples after selection in task {cfg.name!r} (counts: "
            + ", ".join(f"{n}={int(c)}" for n, c in zip(cfg.class_names, counts)) + ")",
            "check label.classes values / the sample files, or loosen the selection",
        )
    if cfg.balance_classes:
        totals = np.bincount(y, weights=w, minlength=len(counts))
        w = w * (totals.sum() / (len(counts) * totals))[y]
    s = cfg.split
    split = make_split(y, validation=s.validation, test=s.test, seed=s.seed, stratify=s.stratify, kfold=s.kfold, fold=s.fold, event=event)
    return Dataset(
        X=X,
        y=y,
        weights=w,
        feature_names=list(feature_names),
        class_names=cfg.class_names,
        sets=sets,
        masks=masks,
        set_feature_names=dict(chunks[0]["set_names"]),
        spectators=spectators,
        event=event,
        split=split,
        task=cfg.name,
        meta={
            "files": files,
            "entries_read": n_read,
            "examples_selected": n_selected,
            "dropped_unlabelled": n_unmapped,
            "dropped_nan": n_nan_dropped,
            "read_seconds": read_seconds,
        },
    )
