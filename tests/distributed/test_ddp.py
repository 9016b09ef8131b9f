"""DDP under torchrun (2 CPU processes, gloo): the 1-process weights, rank-0-only files, exact resume.

One torchrun job (import time dominates on small machines) runs, in the same two processes:
``hepml train --distributed`` through the command line, compared with an in-process 1-process run of
the same global batches; then, with dropout, a run uninterrupted, one interrupted after two epochs,
and its resumption.
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

from hepml.distributed.ddp import DDPContext, rank_seed, start  # noqa: E402
from hepml.errors import ConfigError, FrameworkError  # noqa: E402
from hepml.train import batch_indices, train  # noqa: E402

from ..conftest import write_root  # noqa: E402

#: float64, Adam, an odd global batch (the last one of each epoch splits 15/14 ...) and per-example weights
OVER = {"model": {"hidden": [16, 16]}, "train": {"dtype": "float64", "epochs": 4, "batch_size": 30, "learning_rate": 0.01, "early_stopping": None}}
SETS = ["--set", "model.hidden=[16,16]", "--set", "train.dtype=float64", "--set", "train.epochs=4", "--set", "train.batch_size=30",
        "--set", "train.learning_rate=0.01", "--set", "train.early_stopping=null"]
DROPOUT = {"model": {"hidden": [16, 16], "dropout": 0.2}, "train": {**OVER["train"], "epochs": 5}}
TOLERANCE = 1e-12  # max |Δw| between the 2-process and the 1-process run, float64 (measured: 3e-16)

RUNNER = textwrap.dedent(
    """
    import json, os, sys
    import torch.distributed as dist
    from hepml.cli import main
    from hepml.distributed import ddp
    from hepml.train import train

    task, out, sets, over = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    dist.init_process_group("gloo")  # one group for all four runs (the trainer joins it and leaves it up)
    rank = dist.get_rank()

    # 1. the command line, as a user types it after torchrun
    assert main(["train", task, "-f", "torch", "--device", "cpu", "--distributed", *sets, "--out", out + "/ddp"]) == 0

    # 2. with dropout: uninterrupted, then interrupted after two epochs and resumed
    quick = dict(overrides=over, device="cpu", distributed=True, write_predictions=False)  # the weights are what is compared
    full = train(task, "torch", "mlp", out=out + "/full", **quick)

    class Stop(Exception):
        pass

    calls = []

    def stop_in_third_epoch(self, lr):  # every rank stops where a SIGKILL after epoch 1's checkpoint would
        calls.append(lr)
        if len(calls) == 3:
            raise Stop
        self._a.set_learning_rate(lr)

    ddp.DDPAdapter.set_learning_rate = stop_in_third_epoch
    try:
        train(task, "torch", "mlp", out=out + "/killed", **quick)
    except Stop:
        pass
    del ddp.DDPAdapter.set_learning_rate
    dist.barrier()
    left = sorted(os.listdir(out + "/killed"))
    resumed = train(task, "torch", "mlp", out=out + "/killed", resume=True, **quick)
    print("STATE", rank, json.dumps({"left": left, "resumed_from": resumed.record["resumed_from_epoch"],
                                      "out": str(resumed.out), "world": resumed.record["distributed"]["world_size"]}), flush=True)
    dist.destroy_process_group()
    """
)


@pytest.fixture(scope="module")
def toy_task(tmp_path_factory):
    """Two Gaussian blobs in 4 features, 1500 events, weights in [0.5, 2]."""
    d = tmp_path_factory.mktemp("ddp_toy")
    rng = np.random.default_rng(5)
    n = 1500
    y = rng.integers(0, 2, n).astype(np.int32)
    X = rng.normal(size=(n, 4)) + 0.8 * y[:, None]
    write_root(d / "toy.root", {**{f"x{i}": X[:, i].astype(np.float32) for i in range(4)}, "cls": y,
                                "wt": rng.uniform(0.5, 2.0, n).astype(np.float32), "event": np.arange(n, dtype=np.int64)})
    task = {"name": "toy", "files": ["toy.root"], "label": {"branch": "cls", "classes": {"sig": 1, "bkg": 0}},
            "features": ["x0", "x1", "x2", "x3"], "weight": "wt"}
    (d / "toy.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return d / "toy.yaml"


@pytest.fixture(scope="module")
def runs(toy_task, tmp_path_factory):
    """One torchrun job (2 ranks) running the four DDP runs, and the 1-process reference computed meanwhile."""
    d = tmp_path_factory.mktemp("ddp_runs")
    runner = d / "runner.py"
    runner.write_text(RUNNER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", "--tee", "3",
           str(runner), str(toy_task), str(d), json.dumps(SETS), json.dumps(DROPOUT)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    ref = train(toy_task, "torch", "mlp", overrides=OVER, device="cpu", out=d / "single")
    log = proc.communicate(timeout=500)[0]
    assert proc.returncode == 0, f"torchrun failed:\n{log[-4000:]}"
    return {"dir": d, "ref": ref, "log": log}


def weights(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.slow  # one torchrun job for the three: ~20-50 s, mostly importing torch in 3 processes
def test_two_processes_give_the_one_process_weights(runs):
    d = runs["dir"]
    one, two = weights(d / "single/model/weights.npz"), weights(d / "ddp/model/weights.npz")
    assert set(one) == set(two) and all(v.dtype == np.float64 for v in two.values())
    diff = max(float(np.max(np.abs(one[k] - two[k]))) for k in one)
    moved = max(float(np.max(np.abs(one[k] - w0))) for k, w0 in weights_at_start(runs).items())
    print(f"max |Δw| 2 processes vs 1 process: {diff:.2e} (weights moved by up to {moved:.2f})")
    assert moved > 0.05  # the runs did train
    assert diff <= TOLERANCE
    rec1, rec2 = (json.loads((d / f"{r}/run.json").read_text()) for r in ("single", "ddp"))
    hist1, hist2 = (np.array([[h["loss"], h["val_loss"]] for h in rec]) for rec in (runs["ref"].history, load_history(d / "ddp/history.csv")))
    np.testing.assert_allclose(hist2, hist1, rtol=1e-9)  # the epoch loss is the global batches' loss on every rank
    assert rec2["distributed"]["world_size"] == 2 and rec2["distributed"]["backend"] == "gloo"
    assert "distributed" not in rec1
    assert abs(rec2["metrics"]["test_auc"] - rec1["metrics"]["test_auc"]) < 1e-9


def weights_at_start(runs):
    from hepml.models import initial_weights

    a = runs["ref"].adapter
    return initial_weights(a.spec, 4, 2, seed=1, dtype="float64")


def load_history(path):
    import csv

    with open(path) as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


@pytest.mark.slow
def test_rank_zero_alone_writes(runs):
    d, log = runs["dir"], runs["log"]
    assert sorted(p.name for p in (d / "ddp").iterdir()) == ["history.csv", "model", "predictions.parquet", "predictions.root", "run.json"]
    summary = [line for line in log.splitlines() if "torch mlp on toy:" in line]
    assert len(summary) == 2, log[-2000:]
    rank0 = [s for s in summary if s.startswith("[default0]")]
    rank1 = [s for s in summary if s.startswith("[default1]")]
    assert rank0 and rank0[0].endswith(f"-> {d / 'ddp'}")  # rank 0 wrote the run folder ...
    assert rank1 and "->" not in rank1[0]  # ... rank 1 ran with no output folder at all
    assert not any(p.name.startswith(".") for p in (d / "ddp").iterdir())  # no temporary file left


@pytest.mark.slow
def test_resume_with_dropout_reaches_the_uninterrupted_weights(runs):
    d, log = runs["dir"], runs["log"]
    states = {}
    for line in log.splitlines():
        if "STATE " in line:  # "[default0]:STATE 0 {...}"
            r, text = line.split("STATE ", 1)[1].split(" ", 1)
            states[int(r)] = json.loads(text)
    assert set(states) == {0, 1}, log[-2000:]
    assert states[0]["left"] == ["checkpoint.npz", "history.csv"]  # killed after two epochs: no run.json yet
    assert states[0]["resumed_from"] == states[1]["resumed_from"] == 2 and states[0]["world"] == 2
    assert states[0]["out"].endswith("killed") and states[1]["out"] == "None"
    full, resumed = weights(d / "full/model/weights.npz"), weights(d / "killed/model/weights.npz")
    for k in full:
        np.testing.assert_array_equal(resumed[k], full[k])  # every rank's dropout stream was restored
    assert not (d / "killed/checkpoint.npz").exists()


# ----------------------------------------------------------------------------- in-process checks
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_cover_each_global_batch_once(world):
    for n, b in ((10, 4), (7, 3), (1, 1), (31, 30)):
        for batch in batch_indices(n, b, seed=3, epoch=1):
            parts = [DDPContext(rank=r, world_size=world, local_rank=r, backend="gloo", device="cpu").shard(batch) for r in range(world)]
            np.testing.assert_array_equal(np.concatenate(parts), batch)  # in order: rank 0's share first
            sizes = [len(p) for p in parts]
            assert max(sizes) - min(sizes) <= 1


def test_rank_seeds():
    assert rank_seed(7, 0) == 7  # a 1-process run keeps its dropout stream
    seeds = {rank_seed(7, r) for r in range(1, 64)}
    assert len(seeds) == 63 and 7 not in seeds and all(0 <= s < 2**63 for s in seeds)
    assert rank_seed(7, 3) == rank_seed(7, 3) != rank_seed(8, 3)


def test_distributed_without_torchrun_is_one_clear_error(toy_task, monkeypatch, tmp_path):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="missing RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; launch with: torchrun"):
        train(toy_task, "torch", "mlp", overrides=OVER, device="cpu", out=tmp_path / "x", distributed=True)
    assert not (tmp_path / "x").exists()
    with pytest.raises(FrameworkError, match="--distributed is for torch .* received .core."):
        train(toy_task, "core", "mlp", overrides=OVER, distributed=True)
    with pytest.raises(ConfigError, match="--distributed together with --streaming needs the environment torchrun sets; missing RANK"):
        train(toy_task, "torch", "mlp", overrides=OVER, device="cpu", distributed=True, streaming=True)
    with pytest.raises(FrameworkError, match="torchrun is for the torch framework; received 'keras'"):
        start("keras", "cpu", environ={})


def test_batch_norm_on_several_cpu_processes_is_refused():
    from hepml.frameworks.base import adapter_class
    from hepml.models.spec import MLPSpec

    adapter = adapter_class("torch").build(MLPSpec(hidden=[4], batch_norm=True), 3, 2)
    ctx = DDPContext(rank=0, world_size=2, local_rank=0, backend="gloo", device="cpu")
    with pytest.raises(FrameworkError, match="SyncBatchNorm runs on GPUs only"):
        ctx.wrap(adapter)
