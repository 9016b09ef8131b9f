"""Converters: the public datasets' own formats -> the ROOT layouts hepml's task files read.

A task file names branches; it should not care whether the ROOT file came from ``hepml data
generate`` or from a paper's public dataset. Each converter here therefore writes exactly the
layout of the matching generator, with uproot, atomically (:func:`hepml.atomic.atomic_path`):

``top_tagging_h5``
    The Top Quark Tagging Reference Dataset (Kasieczka, Plehn, Thompson, Russell; Zenodo
    10.5281/zenodo.2603256, used in Butter et al., SciPost Phys. 7 (2019) 014) is a pandas
    DataFrame stored under the HDF5 key ``table``: columns ``E_i, PX_i, PY_i, PZ_i`` for the 200
    leading constituents (sorted by pT, zero-padded), ``truthE, truthPX, truthPY, truthPZ`` (the
    matched top; zeros for QCD), ``ttv`` (which split) and ``is_signal_new`` (1 top, 0 QCD).
    pandas' default ``format="fixed"`` stores it as ``table/axis0`` (column names),
    ``table/axis1`` (row index) and one ``table/blockN_items`` + ``table/blockN_values`` pair per
    dtype (floats in one 2-D block, integers in another). That layout is read here with h5py,
    so PyTables is not needed; a plain layout (datasets ``E, PX, PY, PZ`` of shape
    ``(n_jets, n_constituents)`` and ``is_signal_new``, optionally ``truthPX, truthPY``) is
    accepted too. Output: tree ``Events``, one entry per jet, as
    ``data_download/generators/top_tagging.py`` writes it: ``event`` (int64), ``is_signal``
    (int32), ``FatJet_pt, FatJet_eta, FatJet_phi, FatJet_mass`` (the four-vector sum of the
    constituents), ``FatJet_tau1..3`` (N-subjettiness, R0 = 0.8), ``truth_top_pt`` (0 for QCD),
    and ``nPart`` + jagged ``Part_E, Part_px, Part_py, Part_pz`` (float32, real constituents only,
    pT-descending, at most 200). One ROOT file per HDF5 file (``train.h5`` -> ``train.root``), so
    the official train/val/test split survives.

``top_landscape_parquet``
    The same reference jets as repackaged by the Particle Transformer authors (``TopLandscape.tar``,
    converted from Zenodo 2603256 and published with an md5 in jet-universe/particle_transformer):
    a tar archive holding ``train_file.parquet``, ``val_file.parquet`` and ``test_file.parquet``
    with jagged per-particle ``part_px, part_py, part_pz, part_energy`` (real constituents only)
    and ``label`` (1 top, 0 QCD); other columns (``jet_*``, ``part_deta``...) are ignored. The
    archive is extracted safely (as ``untar``) and each Parquet file becomes a ROOT file beside it
    in the ``top_tagging_h5`` layout (``train_file.parquet`` -> ``train_file.root``, train first).
    The Parquet files carry no truth top, so ``truth_top_pt`` is 0 for every jet.

``quark_gluon_npz``
    The Pythia quark/gluon jets (Komiske, Metodiev, Thaler, JHEP 01 (2019) 121; Zenodo
    10.5281/zenodo.3164691) are NumPy ``.npz`` files with ``X`` of shape ``(n_jets,
    max_particles, 4)`` holding ``(pt, y, phi, pid)`` per particle, zero-padded, and ``y`` (1
    quark, 0 gluon). Output: tree ``Jets``, one entry per jet: ``event`` (int64), ``is_quark``
    (int32), ``jet_pt, jet_y, jet_phi, jet_mass`` (sum of the constituents, each taken massless
    as the files carry no mass) and ``nPart`` + jagged ``Part_pt, Part_y, Part_phi`` (float32),
    ``Part_pid`` (int32), pT-descending. All files go into one ROOT file.

``untar``
    JetClass (Qu, Li, Qian, arXiv:2202.03772; Zenodo 10.5281/zenodo.6619768) already ships ROOT
    files, packed in a tar archive; they are extracted with the standard library's ``data``
    filter (no absolute paths, no ``..``, no links out of the folder).
"""

from __future__ import annotations

import difflib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from hepml.atomic import atomic_path
from hepml.errors import DataError, InputFileError

TOP_TREE = "Events"
QG_TREE = "Jets"
MAX_CONSTITUENTS = 200
TAU_R0 = 0.8
CHUNK_ROWS = 50_000

# ---------------------------------------------------------------------------------------------
# N-subjettiness
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Top tagging HDF5 reader
# ---------------------------------------------------------------------------------------------

_CONSTITUENT_PREFIXES = ("E", "PX", "PY", "PZ")


def _decode(names) -> List[str]:
    return [n.decode() if isinstance(n, (bytes, np.bytes_)) else str(n) for n in names]


class TopTaggingTable:
    """Row-chunked access to a top-tagging HDF5 file in the pandas ``fixed`` or the plain layout.

    ``read(start, stop)`` returns ``E, PX, PY, PZ`` of shape ``(m, n_constituents)`` (float32),
    ``is_signal`` (int32), and ``truth_px, truth_py`` (float64, zeros when the file has none).
    """

    def __init__(self, path, key: str = "table"):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise InputFileError(f"HDF5 file not found: {self.path}", "check the path or download it again")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise InputFileError(
                f"{self.path} is not a readable HDF5 file ({exc})",
                "the download may be corrupt; delete it and run `hepml data download` again",
            ) from exc
        try:
            self._open_layout(key)
        except Exception:
            self._file.close()
            raise

    # -- layouts -----------------------------------------------------------------------------
    def _open_layout(self, key: str) -> None:
        f = self._file
        group = f[key] if key in f else None
        if group is not None and "block0_items" in group:
            self.layout = "pandas-fixed"
            self._columns = {}
            i = 0
            while f"block{i}_items" in group:
                for j, name in enumerate(_decode(group[f"block{i}_items"][()])):
                    self._columns[name] = (group[f"block{i}_values"], j)
                i += 1
            self.n_rows = group["block0_values"].shape[0]
        elif group is not None and "table" in group:
            raise DataError(
                f"{self.path} stores '{key}' in pandas' 'table' format (a PyTables table)",
                "convert it with pandas (`pd.read_hdf(path, key).to_hdf(out, key=key, format='fixed')`) "
                "or install PyTables; hepml reads the 'fixed' format and a plain h5py layout",
            )
        else:
            root = group if group is not None else f
            if all(p in root for p in _CONSTITUENT_PREFIXES) and "is_signal_new" in root:
                self.layout = "plain"
                self._plain = root
                self.n_rows = root["E"].shape[0]
            else:
                present = sorted(list(f.keys()))
                raise DataError(
                    f"{self.path} has neither a pandas '{key}' group nor datasets E/PX/PY/PZ/is_signal_new "
                    f"(found: {present[:8]})",
                    "pass the top-tagging reference file (train.h5, val.h5 or test.h5 from Zenodo 2603256)",
                )
        if self.layout == "pandas-fixed":
            n = 0
            while all(f"{p}_{n}" in self._columns for p in _CONSTITUENT_PREFIXES):
                n += 1
            if n == 0:
                names = list(self._columns)
                close = difflib.get_close_matches("E_0", names, n=3)
                raise DataError(
                    f"{self.path}: no constituent columns E_0/PX_0/PY_0/PZ_0 in '{key}'"
                    + (f" (closest: {', '.join(close)})" if close else f" (columns start {names[:6]})"),
                    "this is not the top-tagging reference layout",
                )
            if "is_signal_new" not in self._columns:
                close = difflib.get_close_matches("is_signal_new", list(self._columns), n=3)
                raise DataError(
                    f"{self.path}: label column 'is_signal_new' missing"
                    + (f"; closest: {', '.join(close)}" if close else ""),
                    "this is not the top-tagging reference layout",
                )
            self.n_constituents = n
        else:
            self.n_constituents = self._plain["E"].shape[1]
        if self.n_constituents > MAX_CONSTITUENTS:
            raise DataError(
                f"{self.path} has {self.n_constituents} constituents per jet, more than {MAX_CONSTITUENTS}",
                "the reference layout stores at most 200; check the file",
            )

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- reading -----------------------------------------------------------------------------
    def _read_block_rows(self, cache, dataset, start, stop):
        key = id(dataset)
        if key not in cache:
            try:
                cache[key] = dataset[start:stop]
            except OSError as exc:
                raise DataError(
                    f"cannot read {self.path} ({exc})",
                    "the file may use an HDF5 compression filter h5py lacks (e.g. blosc): "
                    "`pip install hdf5plugin` and `import hdf5plugin` before converting",
                ) from exc
        return cache[key]

    def _column(self, cache, name, start, stop, default=None):
        if name not in self._columns:
            if default is None:
                raise DataError(f"{self.path}: column '{name}' missing", "this is not the reference layout")
            return np.full(stop - start, default)
        dataset, j = self._columns[name]
        return self._read_block_rows(cache, dataset, start, stop)[:, j]

    def read(self, start: int, stop: int) -> Dict[str, np.ndarray]:
        stop = min(stop, self.n_rows)
        out = {}
        if self.layout == "pandas-fixed":
            cache = {}
            for p in _CONSTITUENT_PREFIXES:
                out[p] = np.stack(
                    [self._column(cache, f"{p}_{i}", start, stop) for i in range(self.n_constituents)], axis=1
                ).astype(np.float32)
            out["is_signal"] = self._column(cache, "is_signal_new", start, stop).astype(np.int32)
            out["truth_px"] = self._column(cache, "truthPX", start, stop, default=0.0).astype(np.float64)
            out["truth_py"] = self._column(cache, "truthPY", start, stop, default=0.0).astype(np.float64)
        else:
            g = self._plain
            for p in _CONSTITUENT_PREFIXES:
                out[p] = np.asarray(g[p][start:stop], dtype=np.float32)
            out["is_signal"] = np.asarray(g["is_signal_new"][start:stop]).astype(np.int32)
            for name, key in (("truth_px", "truthPX"), ("truth_py", "truthPY")):
                out[name] = (np.asarray(g[key][start:stop], dtype=np.float64) if key in g
                             else np.zeros(stop - start))
        return out


def _append(f, tree: str, branches: Dict[str, object]) -> None:
    """Append one chunk to TTree ``tree`` (created from the first chunk's types).

    ``mktree`` is explicit: uproot 5.7 writes an RNTuple when a dict is assigned to a file key.
    A record of jagged arrays ``Part`` becomes NanoAOD-style ``nPart`` + ``Part_E``, ``Part_px``...
    """
    if tree not in f:
        types = {k: (v.type.content if hasattr(v, "type") else np.asarray(v).dtype) for k, v in branches.items()}
        f.mktree(tree, types)
    f[tree].extend(branches)


# ---------------------------------------------------------------------------------------------
# Top tagging conversion
# ---------------------------------------------------------------------------------------------


def _sorted_constituents(E, PX, PY, PZ):
    """Real constituents (E > 0) of each jet, pT-descending, as jagged float32 awkward arrays."""
    import awkward as ak

    real = E > 0
    pt = np.hypot(PX, PY)
    order = np.argsort(np.where(real, -pt, np.inf), axis=1, kind="stable")
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    real_sorted = take(real)
    counts = real.sum(axis=1)
    parts = {}
    for name, arr in (("E", E), ("px", PX), ("py", PY), ("pz", PZ)):
        parts[name] = ak.unflatten(take(arr)[real_sorted].astype(np.float32), counts)
    return parts, counts


def top_tagging_chunk(columns: Dict[str, np.ndarray], *, event_offset: int = 0) -> Dict[str, object]:
    """One chunk of reference-dataset rows -> the generator's branches (see the module docstring)."""
    import awkward as ak

    E, PX, PY, PZ = (columns[p] for p in _CONSTITUENT_PREFIXES)
    n = E.shape[0]
    parts, counts = _sorted_constituents(E, PX, PY, PZ)
    real = E > 0
    jet = {k: np.where(real, a, 0).astype(np.float64).sum(axis=1)
           for k, a in (("E", E), ("px", PX), ("py", PY), ("pz", PZ))}
    jet_pt = np.hypot(jet["px"], jet["py"])
    jet_eta = np.arcsinh(np.divide(jet["pz"], jet_pt, out=np.zeros(n), where=jet_pt > 0))
    jet_phi = np.arctan2(jet["py"], jet["px"])
    jet_mass = np.sqrt(np.maximum(jet["E"] ** 2 - jet["px"] ** 2 - jet["py"] ** 2 - jet["pz"] ** 2, 0.0))
    from data_download.generators.top_tagging import nsubjettiness  # one definition for generated and real jets

    taus = nsubjettiness(parts["px"], parts["py"], parts["pz"], parts["E"], R0=TAU_R0, N=3)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return {
        "event": np.arange(event_offset, event_offset + n, dtype=np.int64),
        "is_signal": columns["is_signal"].astype(np.int32),
        "FatJet_pt": f32(jet_pt),
        "FatJet_eta": f32(jet_eta),
        "FatJet_phi": f32(jet_phi),
        "FatJet_mass": f32(jet_mass),
        "FatJet_tau1": f32(taus[0]),
        "FatJet_tau2": f32(taus[1]),
        "FatJet_tau3": f32(taus[2]),
        "truth_top_pt": f32(np.hypot(columns["truth_px"], columns["truth_py"])),
        "Part": ak.zip({"E": parts["E"], "px": parts["px"], "py": parts["py"], "pz": parts["pz"]}),
    }


def top_tagging_h5_to_root(source, out, *, key: str = "table", chunk_rows: int = CHUNK_ROWS) -> Path:
    """Convert one reference HDF5 file to the generator's top-tagging ROOT layout (atomically).

    Reads ``chunk_rows`` jets at a time, so memory stays bounded for the 1.2M-jet training file.
    """
    import uproot

    out = Path(out)
    with TopTaggingTable(source, key=key) as table:
        if table.n_rows == 0:
            raise DataError(f"{source} holds no jets", "download the file again")
        with atomic_path(out) as tmp:
            with uproot.recreate(tmp) as f:
                for start in range(0, table.n_rows, chunk_rows):
                    branches = top_tagging_chunk(table.read(start, start + chunk_rows), event_offset=start)
                    _append(f, TOP_TREE, branches)
    return out


# ---------------------------------------------------------------------------------------------
# Top tagging, Parquet repackaging (TopLandscape)
# ---------------------------------------------------------------------------------------------

_LANDSCAPE_COLUMNS = {"E": "part_energy", "PX": "part_px", "PY": "part_py", "PZ": "part_pz"}


def _padded(jagged, width: int) -> np.ndarray:
    """Jagged per-jet values -> (n_jets, width) float32, zero-padded (the HDF5 layout's shape)."""
    import awkward as ak

    return ak.to_numpy(ak.fill_none(ak.pad_none(jagged, width, axis=1, clip=True), 0.0)).astype(np.float32)


def top_landscape_parquet_to_root(source, out, *, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Convert one TopLandscape Parquet file to the generator's top-tagging ROOT layout (atomically).

    Reads one Parquet row group at a time (jagged, compact) and pads and converts ``chunk_rows``
    jets at a time, so memory stays bounded for the 1.2M-jet training file whatever its row groups.
    """
    import awkward as ak
    import uproot

    source, out = Path(source), Path(out)
    try:
        meta = ak.metadata_from_parquet(source)
    except Exception as exc:  # pyarrow raises several unrelated types for a non-Parquet file
        raise InputFileError(
            f"{source} is not a readable Parquet file ({type(exc).__name__}: {exc})",
            "the download may be corrupt; delete it and run `hepml data download` again",
        ) from exc
    fields = list(meta["form"].fields) if hasattr(meta["form"], "fields") else []
    wanted = [*_LANDSCAPE_COLUMNS.values(), "label"]
    missing = [c for c in wanted if c not in fields]
    if missing:
        close = difflib.get_close_matches(missing[0], fields, n=3)
        raise DataError(
            f"{source.name}: column(s) {', '.join(missing)} missing"
            + (f" (closest: {', '.join(close)})" if close else f" (found: {', '.join(fields[:8])})"),
            "this is not the TopLandscape layout (part_px/part_py/part_pz/part_energy + label)",
        )
    if meta["num_rows"] == 0:
        raise DataError(f"{source} holds no jets", "download the dataset again")
    offset = 0
    with atomic_path(out) as tmp:
        with uproot.recreate(tmp) as f:
            for group in range(meta["num_row_groups"]):
                arrays = ak.from_parquet(source, columns=wanted, row_groups=[group])
                for start in range(0, len(arrays), chunk_rows):
                    part = arrays[start:start + chunk_rows]
                    columns = {key: _padded(part[col], MAX_CONSTITUENTS) for key, col in _LANDSCAPE_COLUMNS.items()}
                    columns["is_signal"] = ak.to_numpy(part["label"]).astype(np.int32)
                    columns["truth_px"] = columns["truth_py"] = np.zeros(len(part))
                    _append(f, TOP_TREE, top_tagging_chunk(columns, event_offset=offset))
                    offset += len(part)
    return out


def _split_order(path: Path):
    """train, then val, then test, then anything else (the order a task reads the splits in)."""
    rank = next((i for i, s in enumerate(("train", "val", "test")) if path.name.startswith(s)), 3)
    return rank, path.name


# ---------------------------------------------------------------------------------------------
# Quark/gluon .npz conversion
# ---------------------------------------------------------------------------------------------


def quark_gluon_chunk(X: np.ndarray, y: np.ndarray, *, event_offset: int = 0) -> Dict[str, object]:
    """EnergyFlow's ``X`` (n, m, 4: pt, y, phi, pid) and ``y`` -> the ``Jets`` tree branches."""
    import awkward as ak

    if X.ndim != 3 or X.shape[2] < 4 or len(y) != X.shape[0]:
        raise DataError(
            f"quark/gluon arrays have shapes X={X.shape}, y={np.shape(y)}",
            "expected X of shape (n_jets, max_particles, 4) and y of shape (n_jets,)",
        )
    pt, rap, phi, pid = (X[..., i] for i in range(4))
    real = pt > 0
    order = np.argsort(np.where(real, -pt, np.inf), axis=1, kind="stable")
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    real_sorted = take(real)
    counts = real.sum(axis=1)
    jag = lambda a, dt: ak.unflatten(take(a)[real_sorted].astype(dt), counts)  # noqa: E731
    # massless constituents: px = pt cos φ, py = pt sin φ, pz = pt sinh y, E = pt cosh y
    w = np.where(real, pt, 0.0).astype(np.float64)
    jpx, jpy = (w * np.cos(phi)).sum(1), (w * np.sin(phi)).sum(1)
    jpz, jE = (w * np.sinh(rap)).sum(1), (w * np.cosh(rap)).sum(1)
    jpt = np.hypot(jpx, jpy)
    n = X.shape[0]
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return {
        "event": np.arange(event_offset, event_offset + n, dtype=np.int64),
        "is_quark": np.asarray(y).astype(np.int32),
        "jet_pt": f32(jpt),
        "jet_y": f32(0.5 * np.log(np.maximum(jE + jpz, 1e-12) / np.maximum(jE - jpz, 1e-12))),
        "jet_phi": f32(np.arctan2(jpy, jpx)),
        "jet_mass": f32(np.sqrt(np.maximum(jE**2 - jpx**2 - jpy**2 - jpz**2, 0.0))),
        "Part": ak.zip({"pt": jag(pt, np.float32), "y": jag(rap, np.float32),
                        "phi": jag(phi, np.float32), "pid": jag(pid, np.int32)}),
    }


def quark_gluon_npz_to_root(sources: Sequence, out, *, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Convert EnergyFlow quark/gluon ``.npz`` files into one ROOT file with tree ``Jets``."""
    import uproot

    out = Path(out)
    offset = 0
    with atomic_path(out) as tmp:
        with uproot.recreate(tmp) as f:
            for src in sources:
                try:
                    with np.load(src, allow_pickle=False) as z:
                        X, y = z["X"], z["y"]
                except (OSError, ValueError, KeyError) as exc:
                    raise InputFileError(
                        f"{src} is not a quark/gluon .npz with arrays X and y ({exc})",
                        "delete it and run `hepml data download` again",
                    ) from exc
                for start in range(0, len(y), chunk_rows):
                    branches = quark_gluon_chunk(X[start:start + chunk_rows], y[start:start + chunk_rows],
                                                 event_offset=offset)
                    offset += len(branches["event"])
                    _append(f, QG_TREE, branches)
            if offset == 0:
                raise DataError("the quark/gluon files hold no jets", "download them again")
    return out


# ---------------------------------------------------------------------------------------------
# tar extraction
# ---------------------------------------------------------------------------------------------


def extract_tar(source, folder) -> Path:
    """Extract ``source`` into ``folder`` safely; return the extracted top folder.

    Extraction goes to a temporary folder first and is moved into place only when complete,
    so an interrupted extraction never looks finished.
    """
    source, folder = Path(source), Path(folder)
    tmp = Path(tempfile.mkdtemp(prefix=".extract.", dir=folder))
    try:
        try:
            with tarfile.open(source) as tf:
                tf.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise InputFileError(
                f"cannot extract {source.name} ({exc})",
                "the archive may be corrupt; delete it and run `hepml data download` again",
            ) from exc
        entries = sorted(tmp.iterdir())
        if not entries:
            raise DataError(f"{source.name} is an empty archive", "download it again")
        for entry in entries:
            target = folder / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(entry, target)
        return folder / entries[0].name if len(entries) == 1 and (folder / entries[0].name).is_dir() else folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------------


def _convert_top_tagging(sources: List[Path], folder: Path, main: Path) -> Tuple[Path, List[Path]]:
    outputs = []
    for src in sources:
        outputs.append(top_tagging_h5_to_root(src, src.with_suffix(".root")))
    return main.with_suffix(".root"), outputs


def _convert_quark_gluon(sources: List[Path], folder: Path, main: Path) -> Tuple[Path, List[Path]]:
    out = folder / f"{folder.name}.root"
    quark_gluon_npz_to_root(sources, out)
    return out, [out]


def _convert_untar(sources: List[Path], folder: Path, main: Path) -> Tuple[Path, List[Path]]:
    tops = [extract_tar(src, folder) for src in sources]
    top = tops[sources.index(main)] if main in sources else tops[0]
    roots = sorted(p for t in set(tops) for p in t.rglob("*.root"))
    if not roots:
        raise DataError(f"no ROOT files inside {', '.join(s.name for s in sources)}",
                        "check the registry entry's converter")
    return top, roots


def _convert_top_landscape(sources: List[Path], folder: Path, main: Path) -> Tuple[Path, List[Path]]:
    tops = [extract_tar(src, folder) for src in sources]
    parquets = sorted({p for t in tops for p in t.rglob("*.parquet")}, key=_split_order)
    if not parquets:
        raise DataError(f"no Parquet files inside {', '.join(s.name for s in sources)}",
                        "this is not the TopLandscape archive; check the registry entry's converter")
    outputs = [top_landscape_parquet_to_root(p, p.with_suffix(".root")) for p in parquets]
    return outputs[0], outputs


CONVERTERS: Dict[str, Callable[[List[Path], Path, Path], Tuple[Path, List[Path]]]] = {
    "top_tagging_h5": _convert_top_tagging,
    "top_landscape_parquet": _convert_top_landscape,
    "quark_gluon_npz": _convert_quark_gluon,
    "untar": _convert_untar,
}


def converted_name(kind: str, folder: Path, main_source: Path) -> Path:
    """Where converter ``kind`` puts its main output (without running it)."""
    if kind == "top_tagging_h5":
        return main_source.with_suffix(".root")
    if kind == "quark_gluon_npz":
        return folder / f"{folder.name}.root"
    if kind in ("untar", "top_landscape_parquet"):
        return folder  # the archive's own folder name is known only after extraction
    raise KeyError(kind)


def run_converter(kind: str, sources: Sequence, folder, main_source) -> Tuple[Path, List[Path]]:
    """Run converter ``kind``; return (main output, every ROOT file written or extracted)."""
    if kind not in CONVERTERS:
        close = difflib.get_close_matches(kind, list(CONVERTERS), n=3)
        raise DataError(
            f"unknown converter '{kind}'" + (f"; did you mean {', '.join(close)}?" if close else ""),
            f"use one of: {', '.join(CONVERTERS)}",
        )
    return CONVERTERS[kind]([Path(s) for s in sources], Path(folder), Path(main_source))
