"""Terminal output of the CLI (rich tables). Kept apart so the library never prints."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console()


def _size(n) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def print_inspection(info) -> None:
    """Trees and branches of a file, like a friendlier ``TTree::Print``."""
    console.print(f"[bold]{info.path}[/bold]  ({_size(info.size_bytes)}, {len(info.trees)} tree(s))")
    for tree in info.trees:
        table = Table(title=f"tree {tree.name!r}: {tree.entries:,} entries", title_justify="left")
        table.add_column("branch")
        table.add_column("kind")
        table.add_column("type")
        for br in tree.branches:
            table.add_row(br.name, br.kind, br.typename)
        console.print(table)


def print_dataset(ds) -> None:
    """Shapes, classes, split sizes and what was read for a loaded Dataset."""
    meta = ds.meta
    console.print(
        f"[bold]task {ds.task!r}[/bold]: {len(ds):,} examples from {meta.get('entries_read', '?'):,} entries "
        f"in {len(meta.get('files', []))} file(s) ({meta.get('read_seconds', 0):.2f} s)"
    )
    table = Table(title="classes", title_justify="left")
    for col in ("class", "examples", "sum of weights"):
        table.add_column(col)
    import numpy as np

    for i, (name, count) in enumerate(ds.class_counts().items()):
        table.add_row(name, f"{count:,}", f"{ds.weights[ds.y == i].sum():,.1f}")
    console.print(table)
    console.print(f"X: {ds.X.shape} float32; features: {', '.join(ds.feature_names[:12])}{' ...' if ds.n_features > 12 else ''}")
    for name, s in ds.sets.items():
        console.print(f"set {name!r}: {s.shape} (mask {ds.masks[name].shape}, fields {ds.set_feature_names[name]})")
    if ds.spectators:
        console.print("spectators: " + ", ".join(ds.spectators))
    if ds.split is not None:
        console.print("split: " + ", ".join(f"{k} {v:,}" for k, v in ds.split.sizes().items()))
    dropped = {k: meta[k] for k in ("dropped_unlabelled", "dropped_nan") if meta.get(k)}
    if dropped:
        console.print("dropped: " + ", ".join(f"{k.removeprefix('dropped_')} {v:,}" for k, v in dropped.items()))
    del np


def print_registry(rows) -> None:
    """The download registry: name, size, licence, local status."""
    table = Table(title="public datasets (hepml data download NAME)", title_justify="left")
    for col in ("name", "size", "licence", "status", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], _size(r.get("size")), str(r.get("licence", "")), str(r.get("status", "")), str(r.get("description", ""))[:60])
    console.print(table)
