"""Streaming vs in-memory training on a dataset ten times the memory budget: peak RSS and throughput.

The bench writes (with uproot, in pieces, uncompressed) a ROOT dataset of two Gaussian classes with
``--features`` float32 features whose flat features alone are ``--factor`` × the budget, then trains
the NumPy-core MLP for one epoch twice, each in its own child process, so that each peak is its own:

- ``streaming``: ``train(..., streaming=True, chunk_size="<budget> MB")``;
- ``in-memory``: ``train(...)`` (load_dataset of everything, then the usual trainer).

Each child imports everything first, notes its resident memory (VmRSS) as the baseline, trains, and
reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (cross-checked with VmHWM). The memory of the
data path is peak − baseline (the interpreter with numpy/uproot/awkward/sklearn alone is a few hundred
MB whatever the data). The dataset is written by a child too: on Linux a child's ``ru_maxrss`` starts
from the RSS its parent had when it forked (the pre-exec image counts), so the parent stays small.
Throughput is training examples per second of the trainer's epoch loop (``train_seconds``: the
streamed one includes its reading, standardising and the streamed validation pass) and end to end
(the whole ``train()`` call, reading included). Printed: both ratios and whether the goals
(peak ≤ 2 × budget, throughput ≥ 0.8 × in memory) are met.

Run: ``.venv/bin/python bench/bench_streaming.py [--budget-mb 50] [--factor 10] [--features 50]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_FILES = 4
PIECE = 250_000  # entries per uproot extend() call
MODEL = {"model": {"hidden": [32]}, "train": {"epochs": 1, "batch_size": 2048, "learning_rate": 1e-3}}


def write_dataset(folder: Path, n_entries: int, n_features: int, seed: int = 7) -> Path:
    """``N_FILES`` ROOT files of ``n_entries`` in all (written piece by piece), and the task YAML."""
    import numpy as np
    import uproot
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_file = math.ceil(n_entries / N_FILES)
    shift = np.linspace(0.1, 0.6, n_features, dtype=np.float32)
    event = 0
    for k in range(N_FILES):
        n_file = min(per_file, n_entries - k * per_file)
        with uproot.recreate(folder / f"part_{k}.root", compression=None) as f:
            f.mktree("Events", {**{f"f{i}": np.float32 for i in range(n_features)}, "label": np.int32, "event": np.int64})
            for a in range(0, n_file, PIECE):
                m = min(PIECE, n_file - a)
                y = rng.integers(0, 2, m).astype(np.int32)
                X = rng.standard_normal((m, n_features), dtype=np.float32) + shift * y[:, None]
                f["Events"].extend({**{f"f{i}": X[:, i] for i in range(n_features)}, "label": y, "event": np.arange(event, event + m, dtype=np.int64)})
                event += m
    task = {
        "name": "bench_streaming",
        "files": [f"part_{k}.root" for k in range(N_FILES)],
        "label": {"branch": "label", "classes": {"signal": 1, "background": 0}},
        "features": [f"f{i}" for i in range(n_features)],
        "split": {"validation": 0.1, "test": 0.1},
    }
    (folder / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return folder / "task.yaml"


def _proc_status(key: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak) of this process, in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def child(mode: str, task: str, budget_mb: float) -> None:
    """One training run; prints one JSON line with its memory and timings."""
    import awkward  # noqa: F401  (everything train() imports, so that the baseline includes it)
    import numpy  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import uproot  # noqa: F401

    import hepml.core.mlp  # noqa: F401
    import hepml.data.streaming  # noqa: F401
    import hepml.frameworks.numpy_core  # noqa: F401
    import hepml.provenance  # noqa: F401
    from hepml.train import train

    baseline = _proc_status("VmRSS")
    t0 = time.perf_counter()
    if mode == "streaming":
        res = train(task, "core", "mlp", overrides=MODEL, streaming=True, chunk_size=f"{budget_mb} MB", device="cpu")
    else:
        res = train(task, "core", "mlp", overrides=MODEL, device="cpu")
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rec = res.record
    print(json.dumps({
        "mode": mode, "baseline_rss": baseline, "peak_rss": peak, "extra_rss": peak - baseline, "vm_hwm": _proc_status("VmHWM"), "wall_seconds": wall,
        "train_seconds": rec["timings"]["train_seconds"], "n_train": rec["n_train"], "n_val": rec["n_val"], "n_test": rec["n_test"],
        "train_examples_per_second": rec["timings"]["train_examples_per_second"], "end_to_end_examples_per_second": rec["n_train"] / wall,
        "test_auc": rec["metrics"].get("test_auc"), "streaming": rec.get("streaming"),
    }, default=str))


def run_child(*args) -> dict:
    cmd = [sys.executable, __file__, *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-mb", type=float, default=50.0, help="memory budget of the streamed data (the chunk budget), MB")
    ap.add_argument("--factor", type=float, default=10.0, help="flat float32 features = factor x budget")
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the dataset (default: a temporary folder, removed)")
    ap.add_argument("--child", choices=["streaming", "memory", "generate"], help=argparse.SUPPRESS)
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--entries", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "generate":
        t0 = time.perf_counter()
        task = write_dataset(args.workdir, args.entries, args.features)
        print(json.dumps({"task": str(task), "seconds": time.perf_counter() - t0}))
        return
    if args.child:
        child(args.child, args.task, args.budget_mb)
        return

    budget = args.budget_mb * 1e6
    n_entries = math.ceil(args.factor * budget / (4 * args.features))
    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="hepml_bench_stream_"))
    try:
        gen = run_child("--child", "generate", "--workdir", tmp, "--entries", n_entries, "--features", args.features)
        task = gen["task"]
        size = sum(p.stat().st_size for p in tmp.glob("*.root"))
        print(f"dataset: {n_entries:,} entries x {args.features} float32 features = {n_entries * args.features * 4 / 1e6:.0f} MB of features, "
              f"{size / 1e6:.0f} MB in {N_FILES} ROOT files (written in {gen['seconds']:.0f} s); budget {args.budget_mb:g} MB")
        s = run_child("--child", "streaming", "--task", task, "--budget-mb", args.budget_mb)
        m = run_child("--child", "memory", "--task", task, "--budget-mb", args.budget_mb)
    finally:
        if args.workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    mb = lambda b: f"{b / 1e6:7.0f} MB"  # noqa: E731
    print(f"{'':10} {'baseline':>10} {'peak RSS':>10} {'VmHWM':>10} {'peak-base':>10} {'train loop':>14} {'end to end':>14} {'wall':>7}  AUC")
    for r in (s, m):
        print(f"{r['mode']:10} {mb(r['baseline_rss']):>10} {mb(r['peak_rss']):>10} {mb(r['vm_hwm']):>10} {mb(r['extra_rss']):>10} "
              f"{r['train_examples_per_second'] / 1e3:9.0f} k/s {r['end_to_end_examples_per_second'] / 1e3:9.0f} k/s {r['wall_seconds']:6.1f}s  {r['test_auc']:.4f}")
    mem_ratio = s["extra_rss"] / budget
    loop_ratio = s["train_examples_per_second"] / m["train_examples_per_second"]
    e2e_ratio = s["end_to_end_examples_per_second"] / m["end_to_end_examples_per_second"]
    print(f"streaming peak - baseline = {mem_ratio:.2f} x budget (goal <= 2: {'met' if mem_ratio <= 2 else 'NOT met'}); "
          f"in memory: {m['extra_rss'] / budget:.1f} x budget")
    print(f"throughput streaming / in memory, end to end: {e2e_ratio:.2f} (goal >= 0.8: {'met' if e2e_ratio >= 0.8 else 'NOT met'}); "
          f"train loop alone: {loop_ratio:.2f} (the streamed loop reads the files, the in-memory one had them loaded before)")
    print(f"streaming details: {json.dumps(s['streaming'])}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}")


if __name__ == "__main__":
    main()
