"""Throughput of the Pythia8 + FastJet generators: ``ttbar_vs_qcd`` events per second through the
framework's ``generate`` with 1 and 2 worker processes (same seed: the two files must be identical),
plus the raw rate of ttbar generation with jet clustering, the part the issue's goal is about.

Run: ``.venv/bin/python bench/bench_pythia.py [--events 1000] [--seed 1]``. Not a test; the figures
go to docs/benchmarks.md together with the machine that produced them. Wall-clock rates depend on
what else the machine runs (the load average is printed); rates per CPU second do not, and times
the number of dedicated cores bound what ``--workers`` can reach.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _rate_generate(events: int, seed: int, workers: int, out: Path) -> tuple[float, float]:
    """(events per wall-clock second, events per CPU second) of one ``generate`` call."""
    from data_download.generators import generate

    start, cpu = time.perf_counter(), _cpu_seconds()
    generate("ttbar_vs_qcd", events=events, seed=seed, out=out, workers=workers)
    return events / (time.perf_counter() - start), events / (_cpu_seconds() - cpu)


def _rate_raw_ttbar(n: int, seed: int) -> tuple[float, float]:
    """Generated ttbar events/s (Pythia + final state + anti-kT R=0.4 + tracks) and the preselection efficiency."""
    import numpy as np

    from data_download.generators import _pythia as P
    from data_download.generators import ttbar_vs_qcd

    pythia = P.make_pythia(ttbar_vs_qcd.TTBAR_SETTINGS, P.pythia_seed(seed, 1))
    rng = np.random.default_rng(seed)
    start = time.process_time()
    batch = P.generate_batch(pythia, n)
    kept = len(ttbar_vs_qcd.reconstruct(batch, rng)["MET_pt"])
    return n / (time.process_time() - start), kept / n


def _same_content(a: Path, b: Path) -> bool:
    import awkward as ak
    import uproot

    ta, tb = uproot.open(a)["Events"], uproot.open(b)["Events"]
    if sorted(ta.keys()) != sorted(tb.keys()):
        return False
    return all(ak.to_list(ta[k].array()) == ak.to_list(tb[k].array()) for k in ta.keys())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events per run (>= 2 chunks of 500 for 2 workers)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    raw, eff = _rate_raw_ttbar(400, args.seed)
    print(f"raw ttbar (Pythia 13 TeV + jets + tracks): {raw:7.1f} generated events per CPU second, "
          f"preselection efficiency {eff:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for workers in (1, 2):
            paths[workers] = Path(tmp) / f"ttbar_vs_qcd_w{workers}.root"
            wall, per_cpu = _rate_generate(args.events, args.seed, workers, paths[workers])
            print(f"ttbar_vs_qcd --workers {workers}: {wall:7.1f} preselected events/s wall clock, "
                  f"{per_cpu:6.1f} per CPU second ({args.events} events)")
        print(f"workers 1 and 2 give identical files: {_same_content(paths[1], paths[2])}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
