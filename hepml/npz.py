"""Deterministic, pickle-free ``.npz`` files: the same arrays always give the same bytes.

``np.savez`` stamps the current time into the zip entries, so two identical runs would save
different files; here every entry gets a fixed timestamp, and ``allow_pickle=False`` both ways.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import InputFileError


def write_npz(path, arrays: dict) -> None:
    """Write ``{name: array}`` to ``path`` atomically (0-d arrays stay 0-d)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with zf.open(info, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asarray(value, order="C"), allow_pickle=False)


def read_npz(path, *, what: str = "arrays") -> dict:
    """``{name: array}`` from a file written by :func:`write_npz` (or ``np.savez``)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"no {path.name} in {path.parent} ({what})", "load a folder written by the matching save()")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
