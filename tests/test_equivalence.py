"""The headline: one model, four frameworks, the same numbers — through the shared trainer.

Every framework × model it can build is trained on the real CMS dimuon task with the same initial
weights and batches (float64); the networks' test predictions must agree to 1e-6 with the NumPy
core, every exported ONNX model must reproduce its framework to 1e-5, and a deliberately changed
epsilon must be caught.
"""

from __future__ import annotations

import numpy as np
import pytest

from hepml.frameworks.base import make_batch
from hepml.train import train

NET = {"train": {"epochs": 2, "batch_size": 256, "dtype": "float64", "optimizer": "adam", "learning_rate": 0.003, "early_stopping": None}}
OVERRIDES = {
    "mlp": {**NET, "model": {"hidden": [16, 8]}},
    "deepsets": {**NET, "model": {"phi": [8, 8], "f": [8]}},
    "bdt": {"model": {"n_estimators": 10, "max_depth": 3, "bins": "xgboost"}},
}
COMBOS = [("core", "mlp"), ("torch", "mlp"), ("keras", "mlp"), ("core", "deepsets"), ("torch", "deepsets"), ("keras", "deepsets"), ("core", "bdt"), ("xgboost", "bdt")]


@pytest.fixture(scope="module")
def dimuon():
    from hepml.data import load_dataset

    return load_dataset("dimuon_charge", max_entries=6000)


@pytest.fixture(scope="module")
def runs(dimuon):
    return {(fw, m): train(None, fw, m, overrides=OVERRIDES[m], dataset=dimuon) for fw, m in COMBOS}


@pytest.mark.parametrize("model", ["mlp", "deepsets"])
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_networks_agree_with_the_core(runs, framework, model):
    core, other = runs[("core", model)], runs[(framework, model)]
    assert np.abs(other.test_proba - core.test_proba).max() <= 1e-6
    for k, v in core.adapter.get_weights().items():
        assert np.abs(other.adapter.get_weights()[k] - v).max() <= 1e-6, k
    for a, b in zip(core.history, other.history):
        assert abs(a["loss"] - b["loss"]) <= 1e-6 and abs(a["val_loss"] - b["val_loss"]) <= 1e-6


def test_bdts_agree_on_the_same_bins(runs, dimuon):
    """Same bins (XGBoost's sketch), same base score: the core GBDT grows XGBoost's trees."""
    assert np.abs(runs[("core", "bdt")].test_proba - runs[("xgboost", "bdt")].test_proba).max() <= 1e-6
    own = train(None, "core", "bdt", overrides={"model": {**OVERRIDES["bdt"]["model"], "bins": "own"}}, dataset=dimuon)
    from hepml.evaluate.metrics import roc_auc

    y, w = dimuon.y[dimuon.split.test] == 0, dimuon.weights[dimuon.split.test]
    aucs = [roc_auc(y, r.test_proba[:, 0], w) for r in (own, runs[("xgboost", "bdt")])]
    assert abs(aucs[0] - aucs[1]) <= 0.01  # its own quantile cuts: other trees, same performance


@pytest.mark.parametrize("framework, model", COMBOS)
def test_onnx_export_reproduces_the_framework(runs, dimuon, framework, model, tmp_path):
    import onnxruntime as ort

    r = runs[(framework, model)]
    work = r.standardizer.transform(dimuon) if r.standardizer is not None else dimuon
    batch = make_batch(work, work.split.test, r.adapter.spec, np.float32)
    path = tmp_path / "m.onnx"
    r.adapter.export_onnx(path)
    sess = ort.InferenceSession(str(path))
    inputs = sess.get_inputs()
    arrays = (batch.X,) if batch.set is None else (batch.set, batch.mask)
    # a float64 model may export a float64 graph: feed each input in the type it declares
    feeds = {i.name: a.astype(np.float64 if i.type == "tensor(double)" else np.float32) for i, a in zip(inputs, arrays)}
    out = sess.run(["proba"], feeds)[0]
    assert out.shape == r.test_proba.shape
    assert np.abs(out - r.test_proba).max() <= 1e-5


def test_a_different_epsilon_is_caught(runs, dimuon):
    over = {**OVERRIDES["mlp"], "train": {**NET["train"], "epsilon": 1e-7}}
    perturbed = train(None, "torch", "mlp", overrides=over, dataset=dimuon)
    assert np.abs(perturbed.test_proba - runs[("core", "mlp")].test_proba).max() > 1e-6
