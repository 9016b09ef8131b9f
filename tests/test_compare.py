"""hepml compare: the report's numbers are asserted against the metrics recomputed from its own files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from hepml.cli import main
from hepml.compare import compare, flavour_classes
from hepml.evaluate import metrics as M

from .conftest import write_root

REPO = Path(__file__).resolve().parents[1]

FAST = {"train": {"epochs": 2, "batch_size": 128, "learning_rate": 0.01}, "model": {"hidden": [16]}}


def _task(d, name, branches, body):
    write_root(d / f"{name}.root", branches)
    (d / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "files": [f"{name}.root"], **body}, sort_keys=False))
    return d / f"{name}.yaml"


@pytest.fixture(scope="module")
def binary_task(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    rng = np.random.default_rng(11)
    n = 3000
    y = rng.integers(0, 2, n).astype(np.int32)
    x = rng.normal(size=(n, 3)) + 0.9 * y[:, None]
    return _task(
        d, "blobs",
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "cls": y, "event": np.arange(n, dtype=np.int64), "mass": rng.uniform(0, 1, n)},
        {"label": {"branch": "cls", "classes": {"signal": 1, "background": 0}}, "features": ["a", "b", "c"], "spectators": ["mass"]},
    )


def test_binary_report_numbers_match_prediction_file(binary_task, tmp_path):
    out = tmp_path / "cmp"
    s = compare(binary_task, frameworks=["core"], models=["mlp"], out=out, overrides={"mlp": FAST}, kfold=2)
    for name in ("report.html", "summary.json", "predictions.root", "predictions.parquet", "roc.png", "rejection.png", "training_curves.png", "output_core_mlp.png", "features.png", "correlation_signal.png", "kfold_roc_core_mlp.png", "importance_core_mlp.png"):
        assert (out / name).exists(), name
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # the temp folder is gone
    pred = uproot.open(out / "predictions.root")["Predictions"].arrays(library="np")
    assert {"event", "label", "weight", "mass", "core_mlp", "core_mlp_p_signal"} <= set(pred)
    sig = pred["label"] == 0
    e = s["entries"]["core mlp"]
    assert e["auc_test"] == pytest.approx(M.roc_auc(sig, pred["core_mlp"], pred["weight"]), abs=1e-9)
    assert e["eff_s_at_10pct_test"] == pytest.approx(M.signal_efficiency_at(sig, pred["core_mlp"], pred["weight"], background_efficiency=0.1)[0], abs=1e-9)
    for es in (0.3, 0.5):  # 1/ε_B at fixed ε_S, the top-tagging working points
        rej, err = M.background_rejection_at(sig, pred["core_mlp"], pred["weight"], signal_efficiency=es)
        assert e[f"bkg_rejection_at_{int(es * 100)}pct_test"] == pytest.approx(rej, rel=1e-9)
        assert e[f"bkg_rejection_at_{int(es * 100)}pct_test_err"] == pytest.approx(err, rel=1e-9)
    assert e["bkg_rejection_at_30pct_test"] > e["bkg_rejection_at_50pct_test"] > 1  # tighter cut, more rejection
    assert 0.75 < e["auc_test"] < 0.95 and abs(e["auc_test"] - e["auc_train"]) < 0.05
    assert set(e["ks_probability"]) == {"signal", "background"}
    assert len(s["kfold"]) == 1 and len([k for k in s["kfold"][0] if k.startswith("AUC fold")]) == 2
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["entries"]["core mlp"]["auc_test"] == e["auc_test"]
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 8 and html.count('class="metrics"') >= 4
    assert "max |Δ score|" not in html or "core vs" in html


def test_two_frameworks_agreement_table(binary_task, tmp_path):
    pytest.importorskip("torch")
    s = compare(binary_task, frameworks=["core", "torch"], models=["mlp"], out=tmp_path / "c2", overrides={"mlp": {**FAST, "train": {**FAST["train"], "dtype": "float64"}}})
    (row,) = s["agreement"]
    assert row["pair"] == "core vs torch"
    assert row["max |Δ score| (test)"] < 1e-6  # same init, same batches, float64
    assert abs(row["Δ AUC"]) < 1e-6


@pytest.fixture(scope="module")
def flavour_task(tmp_path_factory):
    d = tmp_path_factory.mktemp("flav")
    rng = np.random.default_rng(12)
    n = 4000
    flav = rng.choice(np.array([5, 4, 0], np.int32), n, p=[0.3, 0.2, 0.5])
    d0 = rng.exponential(1.0, n) * np.select([flav == 5, flav == 4], [4.0, 2.0], 1.0)
    svm = rng.normal(np.select([flav == 5, flav == 4], [2.0, 1.2], 0.5), 1.0)
    pt = rng.exponential(50, n) + 20
    return _task(
        d, "flav",
        {"d0sig": d0, "sv_mass": svm, "jet_pt": pt, "jet_eta": rng.uniform(-2.5, 2.5, n), "hadronFlavour": flav},
        {"label": {"branch": "hadronFlavour", "classes": {"b": 5, "c": 4, "light": 0}}, "features": ["d0sig", "sv_mass"], "spectators": ["jet_pt", "jet_eta"]},
    )


def test_flavour_section(flavour_task, tmp_path):
    out = tmp_path / "f"
    s = compare(flavour_task, frameworks=["core"], models=["mlp"], out=out, overrides={"mlp": FAST}, fc=0.05)
    for name in ("light_rejection.png", "c_rejection.png", "fc_scan.png", "efficiency_vs_pT.png", "efficiency_vs_eta.png", "confusion_core_mlp.png", "ovr_roc_core_mlp.png"):
        assert (out / name).exists(), name
    wp = s["flavour"]["core mlp"]["working_points"]["70"]
    pred = uproot.open(out / "predictions.root")["Predictions"].arrays(library="np")
    d = M.b_discriminant(pred["core_mlp_p_b"], pred["core_mlp_p_c"], pred["core_mlp_p_light"], fc=0.05)
    cut = M.working_point(d, pred["label"] == 0, 0.70, pred["weight"])
    assert wp["cut"] == pytest.approx(cut)
    assert wp["light_rejection"] == pytest.approx(1 / np.mean(d[pred["label"] == 2] >= cut))
    assert 3 < wp["light_rejection"] < np.inf  # the toy separates b from light, not perfectly
    assert len(s["flavour"]["core mlp"]["fc_scan"]["fc"]) == 26
    assert flavour_classes(["b", "c", "light"]) == {"b": 0, "c": 1, "light": 2}
    assert flavour_classes(["e", "mu", "pi"]) is None


def test_multiclass_pid_like_section(tmp_path):
    rng = np.random.default_rng(13)
    n = 3000
    y = rng.integers(0, 4, n).astype(np.int32)
    X = rng.normal(size=(n, 3)) + np.eye(4)[y][:, :3] * 2
    task = _task(tmp_path, "pid", {"f0": X[:, 0], "f1": X[:, 1], "f2": X[:, 2], "TrackP": rng.exponential(20, n) + 2, "lab": y},
                 {"label": {"branch": "lab", "classes": {"e": 0, "mu": 1, "pi": 2, "K": 3}}, "features": ["f0", "f1", "f2"], "spectators": ["TrackP"]})
    s = compare(task, frameworks=["core"], models=["mlp"], out=tmp_path / "m", overrides={"mlp": FAST})
    e = s["entries"]["core mlp"]
    pred = uproot.open(tmp_path / "m" / "predictions.root")["Predictions"].arrays(library="np")
    proba = np.column_stack([pred[f"core_mlp_p_{c}"] for c in ("e", "mu", "pi", "K")])
    assert e["log_loss_test"] == pytest.approx(M.log_loss(pred["label"], proba, pred["weight"]), rel=1e-6)
    assert e["log_loss_test"] < np.log(4)
    assert (tmp_path / "m" / "efficiency_vs_p_core_mlp.png").exists()
    assert any(r["as"] == "pi" and r["true"] == "K" for r in s["multiclass"]["misid"])
    # K/π versus momentum: recompute the first bin's K efficiency and π → K misID from the files
    kp = s["multiclass"]["kaon_pion"]["core mlp"]
    assert (tmp_path / "m" / "kaon_pion_vs_p_core_mlp.png").exists()
    edges = np.asarray(kp["momentum_edges"])
    cut = M.working_point(proba[:, 3], pred["label"] == 3, 0.90, pred["weight"])
    in_bin = (pred["TrackP"] >= edges[0]) & (pred["TrackP"] < edges[1])
    kaons, pions = in_bin & (pred["label"] == 3), in_bin & (pred["label"] == 2)
    assert kp["K_efficiency"][0] == pytest.approx(np.mean(proba[kaons, 3] >= cut), abs=1e-12)
    assert kp["pi_as_K"][0] == pytest.approx(np.mean(proba[pions, 3] >= cut), abs=1e-12)
    assert len(kp["K_efficiency"]) == len(kp["K_as_pi"]) == len(edges) - 1
    assert np.nanmean(kp["K_efficiency"]) == pytest.approx(0.9, abs=0.05)  # the 90 % working point
    assert np.nanmean(kp["pi_as_K"]) < np.nanmean(kp["K_efficiency"])
    table = _make_results().table(tmp_path / "m")
    first = next(line for line in table.splitlines() if line.startswith(f"| {edges[0]:.1f}–{edges[1]:.1f} |"))
    assert f"{kp['K_efficiency'][0]:.3f} ± {kp['K_efficiency_err'][0]:.3f}" in first


def test_bad_input_leaves_nothing(binary_task, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["compare", str(binary_task), "--frameworks", "core,tensorflw", "--out", str(out)]) == 2
    assert "unknown framework 'tensorflw'" in capsys.readouterr().err
    assert main(["compare", str(binary_task), "--frameworks", "xgboost", "--models", "mlp", "--out", str(out)]) == 2
    assert "no framework among" in capsys.readouterr().err
    assert not out.exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    assert main(["compare", str(binary_task), "--frameworks", "core", "--models", "mlp", "--out", str(tmp_path / "other")]) == 2
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"


def test_rejection_without_background_left_is_none_not_infinity(tmp_path):
    """Perfectly separated classes: no background passes the ε_S = 30 % cut, so 1/ε_B is
    reported as None (summary.json stays strict JSON) and the report says so in words."""
    rng = np.random.default_rng(2)
    n = 600
    y = (np.arange(n) % 2).astype(np.int32)
    x = rng.normal(size=(n, 2)) * 0.1 + 10.0 * y[:, None]
    task = _task(tmp_path, "separable", {"a": x[:, 0], "b": x[:, 1], "cls": y, "event": np.arange(n, dtype=np.int64)},
                 {"label": {"branch": "cls", "classes": {"signal": 1, "background": 0}}, "features": ["a", "b"]})
    s = compare(task, frameworks=["xgboost"], models=["bdt"], out=tmp_path / "sep",
                overrides={"bdt": {"model": {"n_estimators": 5}}})
    e = s["entries"]["xgboost bdt"]
    assert e["auc_test"] == pytest.approx(1.0)
    assert e["bkg_rejection_at_30pct_test"] is None and e["bkg_rejection_at_30pct_test_err"] is None
    json.loads((tmp_path / "sep" / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert "no background left" in (tmp_path / "sep" / "report.html").read_text()


def _make_results():
    """docs/make_results.py as a module (it is a docs script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_results", REPO / "docs" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_tables_are_made_from_summary(binary_task, tmp_path):
    """docs/make_results.py (the tables of docs/results.md) prints what summary.json holds."""
    make_results = _make_results()
    out = tmp_path / "blobs-run"
    s = compare(binary_task, frameworks=["xgboost"], models=["bdt"], out=out, overrides={"bdt": {"model": {"n_estimators": 10}}})
    e = s["entries"]["xgboost bdt"]
    text = make_results.table(out)
    row = next(line for line in text.splitlines() if line.startswith("| xgboost bdt |"))
    assert f"{e['auc_test']:.4f} ± {e['auc_test_err']:.4f}" in row
    assert f"{e['bkg_rejection_at_30pct_test']:.0f} ± {e['bkg_rejection_at_30pct_test_err']:.0f}" in row
    assert "1/ε_B @ ε_S = 30 %" in text and "`blobs-run`" in text
