"""Throughput of the sample generators, measured end to end (generate + write ROOT).

Run ``python bench/bench_generators.py`` (or ``make bench``). Each ``bench_*`` function times one
generator through :func:`data_download.generators.generate` into a temporary folder and returns a
dict of figures; :data:`BENCHES` lists them in the order they run. Record what it prints, with
the machine, in ``docs/benchmarks.md``. Goal: the particle-ID generator makes ≥ 1 M tracks/min.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout

PID_GOAL_PER_MIN = 1_000_000


def _timed_generate(name: str, events: int, workers: int, seed: int = 1) -> tuple[float, int]:
    from data_download.generators import generate

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        out = generate(name, events=events, seed=seed, out=Path(folder) / f"{name}.root", workers=workers)
        seconds = time.perf_counter() - start
        size = out.stat().st_size
    return seconds, size


def bench_particle_id(events: int = 1_000_000, workers: int = 1) -> dict:
    """PID tracks per minute: one ``generate_chunk`` call alone, then the full generate-and-write."""
    from data_download.generators import particle_id

    start = time.perf_counter()
    particle_id.generate_chunk(particle_id.CHUNK, 1)
    chunk_seconds = time.perf_counter() - start
    seconds, size = _timed_generate("particle_id", events, workers)
    per_min = events / seconds * 60.0
    return {
        "name": "particle_id",
        "events": events,
        "workers": workers,
        "seconds": seconds,
        "per_min": per_min,
        "physics_only_per_min": particle_id.CHUNK / chunk_seconds * 60.0,
        "file_MB": size / 1e6,
        "goal_per_min": PID_GOAL_PER_MIN,
        "meets_goal": per_min >= PID_GOAL_PER_MIN,
    }


#: (function, default keyword arguments); a generator's benchmark is added here.
BENCHES = [
    (bench_particle_id, {}),
]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="override every benchmark's size")
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    args = parser.parse_args(argv)
    print(f"machine: {_machine()}")
    for function, kwargs in BENCHES:
        kwargs = dict(kwargs)
        if args.events is not None:
            kwargs["events"] = args.events
        if args.workers is not None:
            kwargs["workers"] = args.workers
        r = function(**kwargs)
        line = (f"{r['name']}: {r['events']:,} in {r['seconds']:.2f} s with {r['workers']} worker(s) "
                f"= {r['per_min'] / 1e6:.2f} M/min end to end")
        if "physics_only_per_min" in r:
            line += f" (physics alone {r['physics_only_per_min'] / 1e6:.1f} M/min)"
        if "file_MB" in r:
            line += f", {r['file_MB']:.0f} MB"
        if "goal_per_min" in r:
            line += f"; goal {r['goal_per_min'] / 1e6:.1f} M/min {'met' if r['meets_goal'] else 'NOT met'}"
        print(line)
    return 0


if __name__ == "__main__":  # the guard also keeps spawned workers from re-running the benchmark
    sys.exit(main())
