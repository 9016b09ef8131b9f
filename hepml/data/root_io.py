"""Open, inspect and read ROOT files with uproot, with errors that name the closest keys.

A missing tree or branch raises :class:`~hepml.errors.MissingKeyError` listing the closest names
(edit distance, then case-insensitive substring), like uproot's own ``KeyInFileError`` but in one line
with the fix.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputFileError, MissingKeyError


def closest(name: str, candidates, n: int = 3) -> list[str]:
    """The ``n`` candidates closest to ``name``: edit distance first, then case-insensitive substrings."""
    candidates = list(dict.fromkeys(candidates))
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    lower = name.lower()
    for c in candidates:
        if len(found) >= n:
            break
        if c not in found and (lower in c.lower() or c.lower() in lower):
            found.append(c)
    return found


def _did_you_mean(name, candidates) -> str:
    close = closest(name, candidates)
    if close:
        return "closest: " + ", ".join(close)
    shown = sorted(candidates)[:8]
    return "available: " + (", ".join(shown) + (" ..." if len(candidates) > 8 else "") if shown else "none")


def open_file(path):
    """Open a ROOT file for reading, or raise one clear :class:`InputFileError`."""
    import uproot

    path = Path(path)
    if not path.exists():
        raise InputFileError(f"file not found: {path}", "check the path (relative paths in a task file are relative to the task file)")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a ROOT file", "give a .root file, or a glob such as 'dir/*.root'")
    try:
        return uproot.open(path)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise InputFileError(
            f"{path} is not a readable ROOT file ({reason})",
            "check that the file is complete ROOT (re-download or regenerate it)",
        ) from None


def tree_names(file) -> list[str]:
    """Every TTree/TNtuple in the file, at any depth, without cycle numbers."""
    names = []
    for key, cls in file.classnames(recursive=True).items():
        if cls in ("TTree", "TNtuple", "TNtupleD"):
            name = key.rsplit(";", 1)[0]
            if name not in names:
                names.append(name)
    return names


def get_tree(file, name: str, path=None):
    """The tree ``name`` from an open file; :class:`MissingKeyError` with the closest trees if absent."""
    trees = tree_names(file)
    if name not in trees:
        where = f" in {path}" if path else ""
        raise MissingKeyError(
            f"tree {name!r} not found{where}",
            (_did_you_mean(name, trees) if trees else "the file holds no TTree") + "; set 'tree:' in the task file",
        )
    return file[name]


def check_branches(tree, names, path=None) -> None:
    """Raise :class:`MissingKeyError` for the first of ``names`` that the tree lacks."""
    available = set(tree.keys(recursive=True, full_paths=True)) | set(tree.keys(recursive=True, full_paths=False))
    for name in names:
        if name not in available:
            where = f" in tree {tree.name!r}" + (f" of {path}" if path else "")
            raise MissingKeyError(f"branch {name!r} not found{where}", _did_you_mean(name, sorted(available)))


def branch_kind(branch) -> str:
    """``flat``, ``array[k]`` (fixed-size), ``jagged`` (one variable-length level) or ``nested``."""
    import uproot

    interp = branch.interpretation
    if len(branch.branches) > 0:
        return "nested"
    if isinstance(interp, uproot.interpretation.numerical.AsDtype):
        shape = interp.inner_shape
        return "flat" if not shape else "array[" + "x".join(map(str, shape)) + "]"
    if isinstance(interp, uproot.interpretation.jagged.AsJagged):
        inner = interp.content
        if isinstance(inner, uproot.interpretation.numerical.AsDtype) and inner.inner_shape:
            return "nested"
        return "jagged"
    if isinstance(interp, uproot.interpretation.strings.AsStrings):
        return "string"
    return "nested"


@dataclass
class BranchInfo:
    name: str
    kind: str
    typename: str


@dataclass
class TreeInfo:
    name: str
    entries: int
    branches: list[BranchInfo] = field(default_factory=list)


@dataclass
class FileInspection:
    path: str
    size_bytes: int
    trees: list[TreeInfo]


def inspect_file(path, *, tree: str | None = None, branch_filter: str | None = None) -> FileInspection:
    """Trees with entry counts and branches with their kind, like a friendlier ``TTree::Print``."""
    file = open_file(path)
    names = tree_names(file) if tree is None else [tree]
    infos = []
    for name in names:
        t = get_tree(file, name, path)
        info = TreeInfo(name=name, entries=int(t.num_entries))
        for br in t.itervalues(recursive=True):
            if branch_filter and not fnmatch.fnmatch(br.name, branch_filter):
                continue
            try:
                kind = branch_kind(br)
            except Exception:  # exotic streamers: still list the branch
                kind = "nested"
            info.branches.append(BranchInfo(br.name, kind, str(br.typename)))
        infos.append(info)
    return FileInspection(path=str(path), size_bytes=Path(path).stat().st_size, trees=infos)
