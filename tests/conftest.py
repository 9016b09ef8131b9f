"""Shared fixtures: paths, and small ROOT files written by the tests themselves with uproot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CMS_FILE = SHARED / "data" / "opendata_muons_skimmed.root"

# Keep TensorFlow quiet and single-threaded-ish in tests; never touch the network.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def _hepml_data_home(tmp_path_factory, monkeypatch):
    """Every test gets its own $HEPML_DATA so caches never leak between tests or into ~/.cache."""
    if "HEPML_DATA" not in os.environ or os.environ.get("HEPML_TEST_SHARED_CACHE") is None:
        monkeypatch.setenv("HEPML_DATA", str(tmp_path_factory.mktemp("hepml_data")))


@pytest.fixture(scope="session")
def cms_file() -> Path:
    assert CMS_FILE.exists(), f"the shared CMS file is missing: {CMS_FILE} (CI puts ../shared beside the repo)"
    return CMS_FILE


def write_root(path, branches: dict, tree: str = "Events") -> Path:
    """Write ``branches`` (NumPy or awkward arrays) as one TTree; records ``Jet`` become nJet + Jet_*."""
    from hepml.data.root_io import write_tree

    write_tree(path, branches, tree=tree)
    return Path(path)


def jet_events(n: int, seed: int = 0, *, signal: bool | None = None):
    """A toy NanoAOD-like event sample: jagged Jet_* (0-6 jets), flat MET_pt, event number."""
    import awkward as ak

    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 7, size=n)
    total = int(counts.sum())
    shift = 0.0 if signal is None else (15.0 if signal else 0.0)
    pt = rng.exponential(40.0, total).astype(np.float32) + 20.0 + shift
    eta = rng.uniform(-2.5, 2.5, total).astype(np.float32)
    flav = rng.choice(np.array([0, 4, 5], dtype=np.int32), total, p=[0.6, 0.15, 0.25])
    return {
        "event": np.arange(n, dtype=np.int64) + seed * 1_000_000,
        "MET_pt": rng.exponential(30.0, n).astype(np.float32),
        "Jet": ak.zip(
            {
                "pt": ak.unflatten(pt, counts),
                "eta": ak.unflatten(eta, counts),
                "hadronFlavour": ak.unflatten(flav, counts),
            }
        ),
    }
