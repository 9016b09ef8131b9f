"""Load throughput of the shared CMS file: hepml's task loader vs a bare ``uproot`` ``arrays`` call.

Both read the same branches of the same file, measured side by side in one run (best of 5). hepml
additionally evaluates the selection, labels, top-N sorting/padding and the split, so the ratio is the
price of the task machinery. Run: ``.venv/bin/python bench/bench_data_load.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import uproot

from hepml.data import load_dataset, load_task

REPO = Path(__file__).resolve().parents[1]
TASK = REPO / "tasks" / "dimuon_charge.yaml"


def best_of(fn, n=5):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    cfg = load_task(TASK)
    path = REPO.parent / "shared" / "data" / "opendata_muons_skimmed.root"
    branches = ["nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge"]
    n = uproot.open(path)["Events"].num_entries
    bare = best_of(lambda: uproot.open(path)["Events"].arrays(branches, library="ak"))
    ours = best_of(lambda: load_dataset(cfg))
    print(f"entries: {n:,}")
    print(f"bare uproot.arrays : {bare * 1e3:8.1f} ms  ({n / bare / 1e6:6.2f} M entries/s)")
    print(f"hepml load_dataset : {ours * 1e3:8.1f} ms  ({n / ours / 1e6:6.2f} M entries/s)")
    print(f"throughput ratio hepml/bare: {bare / ours:.2f}")


if __name__ == "__main__":
    main()
