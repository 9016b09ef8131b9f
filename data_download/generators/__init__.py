"""Monte Carlo sample generators, one per physics task, written to ROOT by one framework.

Every generator is a module that defines

``TREE``
    the name of the tree it fills (``"Events"``, ``"Tracks"``...);
``CHUNK``
    how many examples one call makes. It is fixed, so the file does not depend on the number
    of worker processes: chunk ``i`` always gets the same size and the same derived seed;
``generate_chunk(n, seed) -> dict[str, array]``
    ``n`` examples from the integer ``seed``: NumPy arrays (flat branches) and/or awkward
    arrays with one level of jaggedness. Jagged branches named ``Jet_pt``, ``Jet_eta``... are
    written NanoAOD-style, with one counter branch ``nJet``;
``BRANCH_DOCS`` (optional)
    branch -> one line with its meaning and units.

:func:`generate` splits the requested number of examples into chunks, derives one seed per
chunk with :class:`numpy.random.SeedSequence` (same ``seed`` and ``events`` give the same
content whatever ``workers`` is), runs the chunks in-process or in a process pool, numbers
the examples globally in an ``event`` branch (int64, 0..N-1) and writes them, in chunk order,
atomically with uproot: a failed run leaves no file behind.
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import importlib
import inspect
import os
from pathlib import Path

import numpy as np

from hepml.errors import ConfigError, FrameworkError, OutputFileError

__all__ = ["GENERATORS", "MAX_SEED", "OutputFileError", "chunk_plan", "describe", "generate", "load"]

#: Generator name -> module path, imported only when the generator is used.
GENERATORS = {
    "ttbar_vs_qcd": "data_download.generators.ttbar_vs_qcd",
    "jet_flavour": "data_download.generators.jet_flavour",
    "top_tagging": "data_download.generators.top_tagging",
    "particle_id": "data_download.generators.particle_id",
}

#: Largest seed handed to ``generate_chunk``: Pythia8's ``Random:seed`` accepts 0..900 000 000.
MAX_SEED = 900_000_000


def _module_path(name: str) -> str:
    if not isinstance(name, str) or name not in GENERATORS:
        valid = ", ".join(GENERATORS)
        close = difflib.get_close_matches(str(name), list(GENERATORS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown generator {name!r}", f"{hint}choose one of: {valid}")
    return GENERATORS[name]


def load(name: str):
    """Import and return the generator module registered as ``name``.

    Unknown names raise :class:`~hepml.errors.ConfigError` listing the valid ones; a generator
    whose optional dependency (pythia8, fastjet) is missing raises
    :class:`~hepml.errors.FrameworkError` saying what to install.
    """
    path = _module_path(name)
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name and (path == exc.name or path.startswith(exc.name + ".")):
            raise  # the generator module itself is missing: a packaging bug, not a user mistake
        raise FrameworkError(
            f"generator {name!r} needs the package {exc.name!r}, which is not installed",
            "install the generator extras: pip install 'hepml[generators]'",
        ) from exc
    for attr in ("TREE", "CHUNK", "generate_chunk"):
        if not hasattr(module, attr):
            raise AttributeError(f"generator module {path} does not define {attr}")
    return module


def describe(name: str) -> str:
    """The first paragraph of the generator's docstring: what it simulates, in one breath."""
    doc = inspect.getdoc(load(name)) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def chunk_plan(events: int, chunk: int, seed: int) -> list[tuple[int, int, int]]:
    """``(offset, size, chunk_seed)`` for every chunk of ``events`` examples.

    Chunk ``i`` holds examples ``i*chunk ...`` (the last one smaller) and its seed is the
    ``i``-th child of ``SeedSequence(seed)`` folded into ``[0, MAX_SEED]``, so a chunk's content
    depends only on ``(seed, i, size)``, never on how chunks are spread over processes.
    """
    n_chunks = -(-events // chunk)
    children = np.random.SeedSequence(seed).spawn(n_chunks)
    plan = []
    for i, child in enumerate(children):
        offset = i * chunk
        size = min(chunk, events - offset)
        chunk_seed = int(child.generate_state(1, dtype=np.uint64)[0] % (MAX_SEED + 1))
        plan.append((offset, size, chunk_seed))
    return plan


def _run_chunk(module_path: str, n: int, seed: int) -> dict:
    """Worker entry point (top level so a spawned process can unpickle it)."""
    module = importlib.import_module(module_path)
    return module.generate_chunk(n, seed)


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; received {name}={value!r}",
                          f"pass {name}={minimum} or more")
    return int(value)


def _check_output(out) -> Path:
    out = Path(out).expanduser()
    if out.is_dir():
        raise OutputFileError(f"output path {str(out)!r} is a folder", "give a file name such as sample.root")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFileError(f"cannot create the output folder {str(out.parent)!r} ({exc.strerror or exc})",
                              "choose an --out path in a writable folder") from exc
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise OutputFileError(f"output folder {str(out.parent)!r} is not writable",
                              "choose an --out path in a writable folder")
    return out


def _as_branches(chunk: dict, size: int, offset: int, module_path: str) -> dict:
    """Check one chunk and shape it for uproot: ``event`` first, jagged ``X_*`` zipped as ``X``."""
    import awkward as ak

    if not isinstance(chunk, dict) or not chunk:
        raise TypeError(f"{module_path}.generate_chunk must return a non-empty dict, got {type(chunk).__name__}")
    flat, jagged = {}, collections.defaultdict(dict)
    for key, value in chunk.items():
        if key == "event":
            continue  # numbered globally below
        if isinstance(value, ak.Array):
            if value.ndim == 1:
                value = ak.to_numpy(value)
            elif value.ndim == 2:
                group, _, field = key.partition("_")
                jagged[group][field or ""] = value
                continue
            else:
                raise ValueError(f"{module_path}: branch {key!r} has {value.ndim} dimensions; "
                                 "only flat or one-level jagged arrays can be written")
        value = np.asarray(value)
        if value.ndim != 1:
            raise ValueError(f"{module_path}: branch {key!r} has shape {value.shape}; branches must be 1-d")
        flat[key] = value
    branches = {"event": np.arange(offset, offset + size, dtype=np.int64)}
    for key, value in flat.items():
        branches[key] = value
    for group, fields in jagged.items():
        if "" in fields:
            if len(fields) > 1:
                raise ValueError(f"{module_path}: jagged branch {group!r} clashes with {group}_* branches")
            value = fields[""]
        else:
            try:
                value = ak.zip(fields)
            except ValueError as exc:
                raise ValueError(f"{module_path}: the jagged {group}_* branches have different "
                                 f"counts per entry, so they cannot share the counter n{group}") from exc
        counter = "n" + group
        counts = ak.to_numpy(ak.num(value, axis=1))
        if counter in branches:  # the generator wrote its own counter: keep uproot's, check they agree
            if not np.array_equal(np.asarray(branches.pop(counter)), counts):
                raise ValueError(f"{module_path}: branch {counter!r} disagrees with the lengths of {group}_*")
        branches[group] = value
    for key, value in branches.items():
        if len(value) != size:
            raise ValueError(f"{module_path}.generate_chunk({size}, ...) returned {len(value)} entries "
                             f"for branch {key!r}")
    return branches


def _branch_types(branches: dict) -> dict:
    """NumPy dtypes for flat branches, awkward types for jagged ones (what ``mktree`` wants)."""
    import awkward as ak

    return {key: (value.type if isinstance(value, ak.Array) else value.dtype) for key, value in branches.items()}


def _chunks(module_path: str, plan, workers: int):
    """Yield each chunk's arrays in order, from this process or from a bounded process pool."""
    if workers == 1:
        for _offset, size, seed in plan:
            yield _run_chunk(module_path, size, seed)
        return
    import concurrent.futures
    import multiprocessing

    # spawn: safe whatever threads the parent runs (torch, pytest plugins); costs one import per worker
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = collections.deque()
        todo = iter(plan)
        try:
            for _offset, size, seed in todo:
                pending.append(pool.submit(_run_chunk, module_path, size, seed))
                if len(pending) >= 2 * workers:  # bound memory: at most 2 chunks per worker in flight
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def generate(name: str, *, events: int, seed: int, out, workers: int = 1, progress: bool = False) -> Path:
    """Generate ``events`` examples of the sample ``name`` and write them to the ROOT file ``out``.

    Parameters
    ----------
    name : str
        One of :data:`GENERATORS` (``ttbar_vs_qcd``, ``jet_flavour``, ``top_tagging``, ``particle_id``).
    events : int
        Number of examples (events, jets or tracks, depending on the generator), >= 1.
    seed : int
        Non-negative master seed; same ``seed`` and ``events`` give identical arrays.
    out : path-like
        Output ROOT file, written through a temporary file and renamed into place.
    workers : int
        Processes to run chunks in parallel; the content does not depend on it.
    progress : bool
        Show a rich progress bar on stderr.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    module = load(name)
    module_path = GENERATORS[name]
    events = _check_int("events", events, 1)
    seed = _check_int("seed", seed, 0)
    workers = _check_int("workers", workers, 1)
    chunk = int(module.CHUNK)
    if chunk < 1:
        raise ValueError(f"{module_path}.CHUNK must be >= 1, got {chunk}")
    out = _check_output(out)
    plan = chunk_plan(events, chunk, seed)
    workers = min(workers, len(plan))

    import uproot

    from hepml.atomic import atomic_path

    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn(f"[bold]{name}[/]"), BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), console=Console(stderr=True), transient=False)
    with atomic_path(out) as tmp:
        task = None
        if bar is not None:
            bar.start()
            task = bar.add_task(name, total=events)
        try:
            chunks = _chunks(module_path, plan, workers)
            with contextlib.closing(chunks), uproot.recreate(tmp) as file:  # closing: stop the pool on error
                tree = None
                for (offset, size, _seed), arrays in zip(plan, chunks):
                    branches = _as_branches(arrays, size, offset, module_path)
                    if tree is None:
                        # mktree, not file[TREE] = ...: uproot >= 5.7 writes an RNTuple for the latter
                        tree = file.mktree(module.TREE, _branch_types(branches))
                    tree.extend(branches)
                    if bar is not None:
                        bar.advance(task, size)
        finally:
            if bar is not None:
                bar.stop()
    return out
