"""The shared trainer: outputs, determinism, resume after SIGKILL, early stopping, clean errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import hepml
from hepml.cli import main
from hepml.train import batch_indices, train

from .conftest import write_root


@pytest.fixture(scope="module")
def toy_task(tmp_path_factory):
    """Two Gaussian blobs in 4 features, 4000 events, with an event number and a spectator."""
    d = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(5)
    n = 4000
    y = rng.integers(0, 2, n).astype(np.int32)
    X = rng.normal(size=(n, 4)) + 0.8 * y[:, None]
    write_root(d / "toy.root", {**{f"x{i}": X[:, i].astype(np.float32) for i in range(4)}, "cls": y, "event": np.arange(n, dtype=np.int64), "run": np.full(n, 7, np.int32)})
    task = {
        "name": "toy",
        "files": ["toy.root"],
        "label": {"branch": "cls", "classes": {"sig": 1, "bkg": 0}},
        "features": ["x0", "x1", "x2", "x3"],
        "spectators": ["run"],
    }
    (d / "toy.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return d / "toy.yaml"


FAST = {"model": {"hidden": [16, 16]}, "train": {"epochs": 3, "batch_size": 128, "learning_rate": 0.01}}


def test_batch_sampler_is_a_seeded_permutation():
    a = list(batch_indices(10, 4, seed=1, epoch=0))
    assert [len(b) for b in a] == [4, 4, 2] and sorted(np.concatenate(a)) == list(range(10))
    assert all(np.array_equal(x, y) for x, y in zip(a, batch_indices(10, 4, seed=1, epoch=0)))
    assert not np.array_equal(np.concatenate(a), np.concatenate(list(batch_indices(10, 4, seed=1, epoch=1))))


def test_train_writes_run_folder(toy_task, tmp_path):
    out = tmp_path / "run"
    res = train(toy_task, "core", "mlp", overrides=FAST, out=out)
    for name in ("run.json", "history.csv", "predictions.root", "predictions.parquet", "model/weights.npz", "model/standardizer.json", "model/model.yaml"):
        assert (out / name).exists(), name
    assert not (out / "checkpoint.npz").exists()  # replaced by the final model
    rec = json.loads((out / "run.json").read_text())
    assert rec["framework"] == "core" and rec["device"] == "cpu" and rec["seed"] == 1
    assert "numpy" in rec["versions"] and rec["timings"]["train_seconds"] > 0
    assert rec["metrics"]["test_auc"] > 0.8  # separable blobs
    assert rec["task_config"]["name"] == "toy"
    assert len(res.history) == 3 and all("val_loss" in h for h in res.history)
    import uproot

    pred = uproot.open(out / "predictions.root")["Predictions"].arrays(library="np")
    assert set(pred) >= {"event", "label", "weight", "run", "core_mlp", "core_mlp_p_sig", "core_mlp_p_bkg"}
    assert len(pred["event"]) == rec["n_test"]
    np.testing.assert_allclose(pred["core_mlp_p_sig"] + pred["core_mlp_p_bkg"], 1, atol=1e-6)
    np.testing.assert_array_equal(pred["run"], 7)
    import pandas as pd

    pq = pd.read_parquet(out / "predictions.parquet")
    np.testing.assert_allclose(pq["core_mlp"], pred["core_mlp"])


def test_same_seed_gives_bit_identical_model_and_predictions(toy_task, tmp_path):
    a = train(toy_task, "core", "mlp", overrides=FAST, out=tmp_path / "a")
    b = train(toy_task, "core", "mlp", overrides=FAST, out=tmp_path / "b")
    assert (tmp_path / "a/model/weights.npz").read_bytes() == (tmp_path / "b/model/weights.npz").read_bytes()
    assert np.array_equal(a.test_proba, b.test_proba)
    c = train(toy_task, "core", "mlp", overrides={**FAST, "train": {**FAST["train"], "seed": 2}})
    assert not np.array_equal(a.test_proba, c.test_proba)


def test_resume_after_sigkill_reaches_same_weights(toy_task, tmp_path):
    over = ["--set", "model.hidden=[64,64]", "--set", "train.epochs=8", "--set", "train.batch_size=32", "--set", "train.early_stopping=null"]
    base = [sys.executable, "-m", "hepml.cli", "train", str(toy_task), "-f", "core"]
    full = tmp_path / "full"
    subprocess.run(base + over + ["--out", str(full)], check=True, capture_output=True, timeout=300)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(base + over + ["--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = killed / "checkpoint.npz"
    deadline = time.time() + 240
    epochs_done = 0
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and (killed / "history.csv").exists():
            epochs_done = len((killed / "history.csv").read_text().strip().splitlines()) - 1
            if epochs_done >= 2:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed; make it longer"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "run.json").exists() and ckpt.exists()
    res = subprocess.run(base + over + ["--out", str(killed), "--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rec = json.loads((killed / "run.json").read_text())
    assert rec["resumed_from_epoch"] >= 2
    with np.load(full / "model/weights.npz") as a, np.load(killed / "model/weights.npz") as b:
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


def test_resume_refuses_other_config(toy_task, tmp_path):
    out = tmp_path / "r"
    from hepml.train import CHECKPOINT

    with pytest.raises(hepml.errors.ConfigError, match="no checkpoint"):
        train(toy_task, "core", "mlp", overrides=FAST, out=out, resume=True)
    train(toy_task, "core", "mlp", overrides=FAST, out=out)
    assert not (out / CHECKPOINT).exists()
    with pytest.raises(hepml.errors.ConfigError, match="already holds a run"):
        train(toy_task, "core", "mlp", overrides=FAST, out=out)


def test_early_stopping_keeps_best_epoch(toy_task):
    over = {"model": {"hidden": [32]}, "train": {"epochs": 30, "early_stopping": 2, "learning_rate": 0.05, "batch_size": 64}}
    res = train(toy_task, "core", "mlp", overrides=over)
    vals = [h["val_loss"] for h in res.history]
    best = int(np.argmin(vals))
    assert res.record["best_epoch"] == best
    assert len(vals) <= best + 3 + 0  # stopped within patience (+1) after the best epoch
    from hepml.frameworks.base import make_batch

    work = res.standardizer.transform(res.dataset)
    batch = make_batch(work, work.split.val, res.adapter.spec)
    assert abs(res.adapter.loss(batch) - vals[best]) < 1e-5  # the best weights were restored


def test_gpu_request_without_gpu_fails_cleanly(toy_task, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    out = tmp_path / "gpu"
    rc = main(["train", str(toy_task), "-f", "core", "--device", "cuda", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "no GPU is visible" in err and "--device cpu" in err
    assert not out.exists()


def test_unknown_framework_and_model(toy_task, tmp_path, capsys):
    assert main(["train", str(toy_task), "-f", "pytorh", "--out", str(tmp_path / "x")]) == 2
    assert "unknown framework 'pytorh'" in capsys.readouterr().err
    assert main(["train", str(toy_task), "-f", "core", "-m", "mpl", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean mlp" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_classifier_front_door(toy_task):
    clf = hepml.Classifier(framework="core", model="mlp", hidden=[8], epochs=2)
    assert "hidden=[8]" in repr(clf)
    clf.fit(toy_task)
    ds = clf.result_.dataset
    np.testing.assert_allclose(clf.predict_proba(ds.test), clf.result_.test_proba)
    np.testing.assert_allclose(clf.predict_proba(ds.test.X), clf.result_.test_proba, rtol=1e-5, atol=1e-6)
    assert clf.predict(ds.test.X).shape == (len(ds.test),)
    with pytest.raises(hepml.errors.ConfigError, match="did you mean 'hidden'"):
        hepml.Classifier(hiden=[3]).fit(toy_task)
    with pytest.raises(hepml.errors.ConfigError, match="not fitted"):
        hepml.Classifier().predict_proba(np.zeros((1, 4)))
