"""The Dataset every framework trains on, and its deterministic train/validation/test split.

A :class:`Dataset` holds NumPy arrays only; nothing downstream of it re-reads ROOT. Flat features
are ``X`` of shape (n_examples, n_features); top-N object groups kept as sets are ``sets[name]`` of
shape (n_examples, N, k) with a boolean ``masks[name]`` of shape (n_examples, N).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import DataError


@dataclass
class Split:
    """Index arrays of the train, validation and test examples (disjoint, sorted)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


@dataclass
class Dataset:
    """Features, labels, weights, names and spectators of one task, plus its split.

    Attributes
    ----------
    X : ndarray of shape (n_examples, n_features), float32
    y : ndarray of shape (n_examples,), int64 class index
    weights : ndarray of shape (n_examples,), float64
    feature_names : list of str, one per column of X
    class_names : list of str, ``class_names[y]`` is the class of each example
    sets : dict name -> ndarray of shape (n_examples, N, k), float32
    masks : dict name -> ndarray of shape (n_examples, N), bool (True = a real object, False = padding)
    set_feature_names : dict name -> list of k str
    spectators : dict name -> ndarray of shape (n_examples,), carried to the output, never trained on
    event : ndarray of shape (n_examples,), int64 event number (k-fold splits use it)
    split : Split or None
    """

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    feature_names: list
    class_names: list
    sets: dict = field(default_factory=dict)
    masks: dict = field(default_factory=dict)
    set_feature_names: dict = field(default_factory=dict)
    spectators: dict = field(default_factory=dict)
    event: np.ndarray | None = None
    split: Split | None = None
    task: str = ""
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=self.n_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts)}

    def subset(self, index) -> "Dataset":
        """The examples at ``index`` (an index or boolean array), without a split."""
        index = np.asarray(index)
        return replace(
            self,
            X=self.X[index],
            y=self.y[index],
            weights=self.weights[index],
            sets={k: v[index] for k, v in self.sets.items()},
            masks={k: v[index] for k, v in self.masks.items()},
            spectators={k: v[index] for k, v in self.spectators.items()},
            event=None if self.event is None else self.event[index],
            split=None,
        )

    def part(self, name: str) -> "Dataset":
        """``train``, ``val`` or ``test`` examples as their own Dataset."""
        if self.split is None:
            raise DataError("this dataset has no split", "call make_split() or load it with load_dataset()")
        return self.subset(getattr(self.split, name))

    def save(self, path) -> None:
        """Write every array to one ``.npz`` (atomically; names and meta as JSON, no pickle)."""
        import json

        from ..atomic import atomic_path

        arrays = {"X": self.X, "y": self.y, "weights": self.weights}
        for k in self.sets:
            arrays[f"set/{k}"], arrays[f"mask/{k}"] = self.sets[k], self.masks[k]
        for k, v in self.spectators.items():
            arrays[f"spectator/{k}"] = v
        if self.event is not None:
            arrays["event"] = self.event
        if self.split is not None:
            for k in ("train", "val", "test"):
                arrays[f"split/{k}"] = getattr(self.split, k)
        header = {
            "task": self.task,
            "feature_names": list(self.feature_names),
            "class_names": list(self.class_names),
            "set_feature_names": self.set_feature_names,
            "meta": self.meta,
        }
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    @classmethod
    def load(cls, path) -> "Dataset":
        """Read a Dataset written by :meth:`save`."""
        import json

        with np.load(path, allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode())
            get = lambda prefix: {k[len(prefix):]: z[k] for k in z.files if k.startswith(prefix)}  # noqa: E731
            split = get("split/")
            return cls(
                X=z["X"],
                y=z["y"],
                weights=z["weights"],
                feature_names=header["feature_names"],
                class_names=header["class_names"],
                sets=get("set/"),
                masks=get("mask/"),
                set_feature_names=header["set_feature_names"],
                spectators=get("spectator/"),
                event=z["event"] if "event" in z.files else None,
                split=Split(**split) if split else None,
                task=header["task"],
                meta=header["meta"],
            )

    @property
    def train(self) -> "Dataset":
        return self.part("train")

    @property
    def val(self) -> "Dataset":
        return self.part("val")

    @property
    def test(self) -> "Dataset":
        return self.part("test")


def make_split(y, *, validation=0.2, test=0.2, seed=1, stratify=True, kfold=None, fold=0, event=None) -> Split:
    """Deterministic split of ``len(y)`` examples.

    Random mode: within each class (if ``stratify``) a seeded permutation gives ``test`` and
    ``validation`` fractions, the rest trains. k-fold mode (TMVA's convention): the test set is
    ``event % kfold == fold``; a seeded, stratified ``validation`` fraction of the remaining examples
    validates and the rest trains.
    """
    y = np.asarray(y)
    n = len(y)
    rng = np.random.default_rng(seed)
    if kfold is not None:
        if event is None:
            raise DataError("k-fold split needs event numbers", "set 'event:' in the task to an event-number branch")
        in_test = (np.asarray(event) % kfold) == fold
        test_idx = np.flatnonzero(in_test)
        rest = np.flatnonzero(~in_test)
        val_idx, train_idx = _stratified_take(rest, y[rest], validation, rng, stratify)
        return Split(train=np.sort(train_idx), val=np.sort(val_idx), test=np.sort(test_idx))
    test_idx, rest = _stratified_take(np.arange(n), y, test, rng, stratify)
    val_frac = validation / (1.0 - test) if test < 1 else 0.0
    val_idx, train_idx = _stratified_take(rest, y[rest], val_frac, rng, stratify)
    return Split(train=np.sort(train_idx), val=np.sort(val_idx), test=np.sort(test_idx))


def _stratified_take(index, y, fraction, rng, stratify):
    """Split ``index`` into (taken, rest) with ``fraction`` taken, per class if ``stratify``."""
    groups = [index[y == c] for c in np.unique(y)] if stratify else [index]
    taken, rest = [], []
    for g in groups:
        perm = rng.permutation(g)
        k = int(round(fraction * len(g)))
        taken.append(perm[:k])
        rest.append(perm[k:])
    cat = lambda parts: np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)  # noqa: E731
    return cat(taken).astype(np.int64), cat(rest).astype(np.int64)
