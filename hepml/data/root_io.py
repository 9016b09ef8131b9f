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
    """Every TTree/TNtuple (and RNTuple, ROOT's new columnar format) in the file, at any depth."""
    names = []
    for key, cls in file.classnames(recursive=True).items():
        if cls in ("TTree", "TNtuple", "TNtupleD", "ROOT::RNTuple"):
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


def is_rntuple(tree) -> bool:
    return "RNTuple" in type(tree).__name__


def branch_names(tree) -> set[str]:
    """All readable branch (TTree) or field (RNTuple, dotted for sub-fields) names."""
    if is_rntuple(tree):
        return set(tree.keys())
    return set(tree.keys(recursive=True, full_paths=True)) | set(tree.keys(recursive=True, full_paths=False))


def get_field(chunk, name: str):
    """``chunk[name]``; for RNTuple sub-fields (``Jet.pt``) walk the record fields."""
    try:
        return chunk[name]
    except Exception:
        value = chunk
        for part in name.split("."):
            value = value[part]
        return value


def check_branches(tree, names, path=None) -> None:
    """Raise :class:`MissingKeyError` for the first of ``names`` that the tree lacks."""
    available = branch_names(tree)
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
        if is_rntuple(t):
            info.branches = [b for b in _rntuple_fields(t) if not branch_filter or fnmatch.fnmatch(b.name, branch_filter)]
            infos.append(info)
            continue
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


def _rntuple_fields(ntuple) -> list[BranchInfo]:
    """Fields of an RNTuple with their kind, from the awkward type of its (empty) first slice."""
    import awkward as ak

    sample = ntuple.arrays(entry_stop=min(1, ntuple.num_entries))
    out = []

    def walk(prefix, typ, depth):
        inner = typ
        while isinstance(inner, (ak.types.ListType, ak.types.RegularType, ak.types.OptionType)):
            depth += not isinstance(inner, ak.types.OptionType)
            inner = inner.content
        if isinstance(inner, ak.types.RecordType):
            for field, ftype in zip(inner.fields, inner.contents):
                walk(f"{prefix}.{field}" if prefix else field, ftype, depth)
            return
        kind = {0: "flat", 1: "jagged"}.get(depth, "nested")
        out.append(BranchInfo(prefix, kind, ("var * " * depth) + str(inner)))

    walk("", sample.type.content, 0)
    return out


def write_tree(path, branches: dict, *, tree: str = "Events") -> None:
    """Write ``branches`` as a TTree (not an RNTuple), atomically.

    Flat NumPy arrays become flat branches; an awkward record array ``Jet`` of lists becomes
    NanoAOD-style ``nJet`` + ``Jet_pt``, ``Jet_eta``...; a plain jagged array ``x`` gets a counter ``nx``.
    (uproot 5.7 writes an RNTuple when a dict is assigned to a file key, so ``mktree`` is explicit here.)
    """
    import uproot

    from ..atomic import atomic_path

    with atomic_path(path) as tmp:
        with uproot.recreate(tmp) as f:
            types = {k: (v.type.content if hasattr(v, "type") and hasattr(v.type, "content") else v.dtype) for k, v in branches.items()}
            f.mktree(tree, types)
            f[tree].extend(branches)
