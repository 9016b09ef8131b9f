"""DDP on streamed shards (``hepml train --distributed --streaming``), 2 CPU processes under torchrun, gloo.

One torchrun job trains a toy task of three ROOT files of different sizes (so the ranks' shards differ
in size) three epochs, logging in each rank which entry ranges it read for training and how many of
its steps were empty; then the same run is stopped in its third epoch and resumed. The tests check
that the ranks read disjoint shards that together cover every range, that the examples are counted
over all ranks, that rank 0 alone writes, that the model trains, and that the resumption ends with
the weights of the uninterrupted run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch was built without torch.distributed", allow_module_level=True)

from hepml.data.streaming import TaskStream, TorchStreamDataset  # noqa: E402
from hepml.models import load_model_file  # noqa: E402

from ..conftest import write_root  # noqa: E402

ENTRIES = (500, 300, 250)  # per file; with CHUNK = 100: 5 + 3 + 3 = 11 ranges an epoch (6 for rank 0, 5 for rank 1)
CHUNK = 100
OVER = {"model": {"hidden": [16]}, "train": {"epochs": 3, "batch_size": 32, "learning_rate": 0.02, "early_stopping": None}}

RUNNER = textwrap.dedent(
    """
    import json, sys
    import torch.distributed as dist
    from hepml.data.streaming import TaskStream
    from hepml.distributed import ddp
    from hepml.train import train

    task, out, over, chunk = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
    dist.init_process_group("gloo")  # one group for the three runs
    rank = dist.get_rank()
    log = {"reads": {}, "steps": {}, "empty": {}}
    epoch_now = [None]
    batches, read, step = TaskStream.batches, TaskStream.read, ddp.DDPAdapter._step

    def logged_batches(self, epoch, *args, **kw):
        epoch_now[0] = epoch
        yield from batches(self, epoch, *args, **kw)

    def logged_read(self, f, a, b, codes=None):
        if codes == (0,):  # a read for training batches (validation/test/preprocessing read other parts)
            log["reads"].setdefault(str(epoch_now[0]), []).append([f.index, a, b])
        return read(self, f, a, b, codes=codes)

    def logged_step(self, batch):
        e = str(epoch_now[0])
        log["steps"][e] = log["steps"].get(e, 0) + 1
        log["empty"][e] = log["empty"].get(e, 0) + (len(batch) == 0)
        return step(self, batch)

    TaskStream.batches, TaskStream.read, ddp.DDPAdapter._step = logged_batches, logged_read, logged_step
    quick = dict(overrides=over, device="cpu", distributed=True, streaming=True, chunk_size=chunk)
    full = train(task, "torch", "mlp", out=out + "/full", **quick)
    print("LOG", rank, json.dumps({**log, "out": str(full.out)}), flush=True)

    class Stop(Exception):
        pass

    calls = []

    def stop_in_third_epoch(self, lr):  # every rank stops where a kill after epoch 1's checkpoint would
        calls.append(lr)
        if len(calls) == 3:
            raise Stop
        self._a.set_learning_rate(lr)

    ddp.DDPAdapter.set_learning_rate = stop_in_third_epoch
    try:
        train(task, "torch", "mlp", out=out + "/killed", write_predictions=False, **quick)
    except Stop:
        pass
    del ddp.DDPAdapter.set_learning_rate
    dist.barrier()
    resumed = train(task, "torch", "mlp", out=out + "/killed", resume=True, write_predictions=False, **quick)
    print("RESUMED", rank, json.dumps({"from": resumed.record["resumed_from_epoch"], "out": str(resumed.out)}), flush=True)
    dist.destroy_process_group()
    """
)


@pytest.fixture(scope="module")
def toy_task(tmp_path_factory):
    """Two Gaussian blobs in 4 features, in three files of 500, 300 and 250 events."""
    d = tmp_path_factory.mktemp("ddp_stream_toy")
    rng = np.random.default_rng(21)
    for k, n in enumerate(ENTRIES):
        y = rng.integers(0, 2, n).astype(np.int32)
        X = rng.normal(size=(n, 4)) + 1.0 * y[:, None]
        write_root(d / f"toy_{k}.root", {**{f"x{i}": X[:, i].astype(np.float32) for i in range(4)}, "cls": y,
                                         "event": np.arange(n, dtype=np.int64) + 10_000 * k})
    task = {"name": "toy", "files": [f"toy_{k}.root" for k in range(len(ENTRIES))],
            "label": {"branch": "cls", "classes": {"sig": 1, "bkg": 0}}, "features": ["x0", "x1", "x2", "x3"]}
    (d / "toy.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return d / "toy.yaml"


@pytest.fixture(scope="module")
def job(toy_task, tmp_path_factory):
    """The torchrun job (2 ranks) and what each rank logged."""
    d = tmp_path_factory.mktemp("ddp_stream_runs")
    runner = d / "runner.py"
    runner.write_text(RUNNER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", "--tee", "3",
           str(runner), str(toy_task), str(d), json.dumps(OVER), str(CHUNK)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=500,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-4000:]}"
    logs, resumed = {}, {}
    for line in proc.stdout.splitlines():
        for tag, into in (("LOG ", logs), ("RESUMED ", resumed)):
            if tag in line:  # "[default0]:LOG 0 {...}"
                r, text = line.split(tag, 1)[1].split(" ", 1)
                into[int(r)] = json.loads(text)
    assert set(logs) == set(resumed) == {0, 1}, proc.stdout[-3000:]
    return {"dir": d, "logs": logs, "resumed": resumed, "task": toy_task}


def _all_ranges():
    return sorted((k, a, min(a + CHUNK, n)) for k, n in enumerate(ENTRIES) for a in range(0, n, CHUNK))


@pytest.mark.slow  # one torchrun job for the four tests: ~20-60 s, mostly importing torch in 3 processes
def test_each_rank_reads_its_own_shard_of_the_chunks(job):
    logs = job["logs"]
    for epoch in ("0", "1", "2"):
        mine = [sorted(tuple(r) for r in logs[rank]["reads"][epoch]) for rank in (0, 1)]
        assert len(mine[0]) == 6 and len(mine[1]) == 5, mine  # round robin over the epoch's 11 ranges
        assert not set(mine[0]) & set(mine[1])  # disjoint ...
        assert sorted(mine[0] + mine[1]) == _all_ranges()  # ... and together every range, once
        # DDP needs every rank in every step: both ranks stepped equally often, the shorter shard with empty batches
        assert logs[0]["steps"][epoch] == logs[1]["steps"][epoch]
    assert sum(logs[r]["empty"][e] for r in (0, 1) for e in ("0", "1", "2")) > 0
    assert logs[0]["reads"]["0"] != logs[0]["reads"]["1"]  # the shards change with the epoch's order


@pytest.mark.slow
def test_examples_are_counted_over_the_ranks_and_rank_zero_writes(job):
    d, logs = job["dir"], job["logs"]
    assert sorted(p.name for p in (d / "full").iterdir()) == ["history.csv", "model", "predictions.parquet", "predictions.root", "run.json"]
    assert logs[0]["out"] == str(d / "full") and logs[1]["out"] == "None"  # rank 1 had no output folder
    rec = json.loads((d / "full/run.json").read_text())
    stream = TaskStream(job["task"], chunk_size=CHUNK)
    n_train = sum(len(c) for c in stream.chunks("train"))
    n_test = sum(len(c) for c in stream.chunks("test"))
    stream.close()
    assert rec["n_train"] == n_train and rec["n_test"] == n_test  # the all-reduced count, not rank 0's share
    dist = rec["distributed"]
    assert dist["world_size"] == 2 and dist["backend"] == "gloo" and "own shard of the chunks" in dist["batch_split"]
    per_rank = dist["train_examples_per_rank"]
    assert sum(per_rank) == 3 * n_train and min(per_rank) > 0.3 * 3 * n_train / 2
    assert dist["train_chunks_per_rank"] == [3 * 6, 3 * 5]


@pytest.mark.slow
def test_the_model_trains(job):
    rec = json.loads((job["dir"] / "full/run.json").read_text())
    hist = rec_history(job["dir"] / "full/history.csv")
    assert hist[-1]["loss"] < 0.9 * hist[0]["loss"], hist
    assert hist[-1]["val_loss"] < 0.75 * np.log(2), hist  # well below a guess (ln 2 for balanced classes)
    assert rec["metrics"]["test_auc"] > 0.75, rec["metrics"]


def rec_history(path):
    import csv

    with open(path) as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


@pytest.mark.slow
def test_resume_reaches_the_uninterrupted_weights(job):
    d, resumed = job["dir"], job["resumed"]
    assert resumed[0]["from"] == resumed[1]["from"] == 2
    assert resumed[0]["out"] == str(d / "killed") and resumed[1]["out"] == "None"
    with np.load(d / "full/model/weights.npz") as a, np.load(d / "killed/model/weights.npz") as b:
        assert set(a.files) == set(b.files)
        for k in a.files:
            np.testing.assert_array_equal(b[k], a[k])  # the shards and shuffles depend on (seed, epoch, rank) only
    assert not (d / "killed/checkpoint.npz").exists()


# ----------------------------------------------------------------------------- in process, no torchrun
def test_rank_shards_of_the_torch_dataset_split_the_training_examples(toy_task):
    """Rank r of 2 yields batches of at most ⌈32 / 2⌉; the two ranks' batches hold every training example once."""
    spec = load_model_file("mlp", OVER).model
    stream = TaskStream(toy_task, chunk_size=CHUNK, batch_size=16, seed=3)
    n_train = sum(len(c) for c in stream.chunks("train"))
    rows = []
    for rank in (0, 1):
        ds = TorchStreamDataset(stream, spec, rank_shard=(rank, 2))
        ds.set_epoch(1)
        batches = list(ds)
        assert batches and all(0 < len(b) <= 16 for b in batches)
        rows.append(np.concatenate([b.X for b in batches]))
    stream.close()
    both = np.concatenate(rows)
    assert len(both) == n_train
    assert len(np.unique(both, axis=0)) == n_train  # no example twice (the features are continuous)
    assert not {tuple(r) for r in rows[0]} & {tuple(r) for r in rows[1]}
