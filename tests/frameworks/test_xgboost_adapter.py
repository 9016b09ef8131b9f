"""XGBoost adapter: the BDT vocabulary reaches xgboost.train, weights, determinism, files, ONNX, devices."""

from __future__ import annotations

import numpy as np
import pytest

xgboost = pytest.importorskip("xgboost")

from hepml.errors import ConfigError, DataError, DeviceError, FrameworkError, InputFileError  # noqa: E402
from hepml.frameworks.base import Batch, adapter_class, resolve_device, visible_gpus  # noqa: E402
from hepml.models.spec import BDTSpec, MLPSpec, TrainSpec  # noqa: E402


def toy(n, n_classes, seed=0, *, noise=0.5):
    """Five features: x0 and x1 decide the class, x4 is constant (never worth a split)."""
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, 5)).astype(np.float32)
    X[:, 4] = 1.0
    score = X[:, 0] + 0.8 * X[:, 1] ** 2 + noise * r.normal(size=n)
    y = (score > 0.8).astype(np.int64) if n_classes == 2 else np.digitize(score, [0.0, 1.2]).astype(np.int64)
    return Batch(X=X, set=None, mask=None, y=y, w=np.ones(n, np.float32))


def build(n_classes=2, seed=7, device="cpu", precision="fp32", **spec):
    spec = BDTSpec(**{"n_estimators": 20, "max_depth": 3, "max_bin": 64, **spec})
    adapter = adapter_class("xgb").build(spec, 5, n_classes, train=TrainSpec(seed=seed), device=device, precision=precision)
    adapter.nthread = 1  # two shared cores: one thread is fastest and keeps the tests quiet
    return adapter


def bare_train(batch, params, rounds, evals_result=None):
    d = xgboost.DMatrix(batch.X, label=batch.y, weight=batch.w)
    return xgboost.train({**params, "nthread": 1}, d, rounds, evals=[(d, "train")], evals_result=evals_result, verbose_eval=False)


# ----------------------------------------------------------------------------- fit / predict
@pytest.mark.parametrize("n_classes", [2, 3])
def test_fit_predict_matches_bare_xgboost_with_translated_params(n_classes):
    train, val = toy(800, n_classes), toy(300, n_classes, seed=1)
    a = build(n_classes, n_estimators=15, max_depth=3, learning_rate=0.2, reg_lambda=2.0, gamma=0.1,
              min_child_weight=2.0, subsample=0.8, max_bin=32)
    history = a.fit_full(train, val)
    p = a.predict_proba(val)
    assert p.shape == (300, n_classes)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert (p.argmax(axis=1) == val.y).mean() > (0.8 if n_classes == 2 else 0.7)
    assert len(history["loss"]) == len(history["val_loss"]) == 15
    assert history["loss"][-1] < 0.6 * history["loss"][0]

    # the same model written in XGBoost's own words: every BDTSpec name must have been translated
    params = {"objective": "binary:logistic" if n_classes == 2 else "multi:softprob", "eta": 0.2, "max_depth": 3, "lambda": 2.0,
              "gamma": 0.1, "min_child_weight": 2.0, "subsample": 0.8, "max_bin": 32, "tree_method": "hist", "seed": 7,
              "eval_metric": "logloss" if n_classes == 2 else "mlogloss"}
    if n_classes > 2:
        params["num_class"] = n_classes
    record = {}
    bare = bare_train(train, params, 15, record).predict(xgboost.DMatrix(val.X))
    bare = np.column_stack([1 - bare, bare]) if n_classes == 2 else bare
    assert np.array_equal(p, bare)
    assert history["loss"] == pytest.approx(record["train"][params["eval_metric"]], rel=1e-12)


def test_history_is_the_weighted_mean_log_loss():
    train = toy(500, 2, seed=2)
    train.w = np.random.default_rng(3).uniform(0.2, 3.0, size=500).astype(np.float32)
    a = build(2, n_estimators=5)
    history = a.fit_full(train, train)
    p = a.predict_proba(train)[np.arange(500), train.y].astype(np.float64)
    expected = np.sum(train.w * -np.log(p)) / np.sum(train.w)
    assert history["val_loss"][-1] == pytest.approx(expected, rel=1e-5)
    assert a.loss(train) == pytest.approx(expected, rel=1e-5)


def test_sample_weights_are_honoured():
    train, test = toy(600, 2, seed=4, noise=1.5), toy(400, 2, seed=5, noise=1.5)
    plain = build(2)
    plain.fit_full(train)
    heavy = build(2)
    train.w = np.where(train.y == 1, 2.0, 1.0).astype(np.float32)  # doubling the weights of class 1
    heavy.fit_full(train)
    shift = heavy.predict_proba(test)[:, 1].mean() - plain.predict_proba(test)[:, 1].mean()
    assert shift > 0.05


# ----------------------------------------------------------------------------- determinism, files
def test_same_seed_gives_identical_model_files_and_predictions(tmp_path):
    train, test = toy(600, 3, seed=6), toy(200, 3, seed=7)
    runs = []
    for i, seed in enumerate((11, 11, 12)):
        a = build(3, seed=seed, subsample=0.7)  # row subsampling draws from the seed
        a.fit_full(train)
        a.save(tmp_path / f"run{i}")
        runs.append((a.predict_proba(test), (tmp_path / f"run{i}" / "model.ubj").read_bytes()))
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert not np.array_equal(runs[0][0], runs[2][0])  # the seed is really used


def test_save_load_gives_identical_predictions(tmp_path):
    train, test = toy(500, 2, seed=8), toy(200, 2, seed=9)
    a = build(2)
    a.fit_full(train)
    a.save(tmp_path / "model")
    b = build(2)
    b.load(tmp_path / "model")
    assert np.array_equal(a.predict_proba(test), b.predict_proba(test))
    assert b.importance() == a.importance()

    with pytest.raises(FrameworkError, match="holds a model for 2 classes and 5 features; this one was built for 3"):
        build(3).load(tmp_path / "model")
    with pytest.raises(InputFileError, match="no XGBoost model at"):
        build(2).load(tmp_path / "elsewhere")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.ubj").write_bytes(b"not a model")
    with pytest.raises(InputFileError, match="is not a readable XGBoost model"):
        build(2).load(tmp_path / "broken")


def test_early_stopping_keeps_the_best_round():
    train, val = toy(400, 2, seed=10, noise=3.0), toy(400, 2, seed=11, noise=3.0)
    a = build(2, n_estimators=200, max_depth=6, learning_rate=0.5, early_stopping_rounds=3)
    history = a.fit_full(train, val)
    best = int(np.argmin(history["val_loss"]))
    assert len(history["val_loss"]) < 200 and len(history["val_loss"]) == best + 4
    assert a.best_iteration_ == best and a.booster_.num_boosted_rounds() == best + 1
    with pytest.raises(ConfigError, match="early_stopping_rounds=3 needs a validation set"):
        build(2, early_stopping_rounds=3).fit_full(train)


def test_importance_is_keyed_by_feature_index():
    a = build(2)
    a.fit_full(toy(600, 2, seed=12))
    imp = a.importance()
    assert set(imp) == {"gain", "cover"}
    assert sorted(imp["gain"]) == sorted(imp["cover"]) == [0, 1, 2, 3, 4]
    assert max(imp["gain"], key=imp["gain"].get) in (0, 1)  # the features that decide the class
    assert imp["gain"][4] == 0.0 and imp["cover"][4] == 0.0  # the constant one is never split on


# ----------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("n_classes,tree_method", [(2, "hist"), (3, "hist"), (2, "exact"), (3, "exact")])
def test_onnx_export_matches_predict_proba(tmp_path, n_classes, tree_method):
    ort = pytest.importorskip("onnxruntime")
    train = toy(600, n_classes, seed=13)
    train.X[::9, 1] = np.nan  # missing values: XGBoost learns a default direction per split
    a = build(n_classes, tree_method=tree_method, max_depth=4)
    a.fit_full(train)
    test = toy(300, n_classes, seed=14)
    test.X[::5, 0] = np.nan
    a.export_onnx(tmp_path / "bdt.onnx")
    sess = ort.InferenceSession(str(tmp_path / "bdt.onnx"), providers=["CPUExecutionProvider"])
    proba, label = sess.run(["proba", "label"], {"X": test.X})
    p = a.predict_proba(test)
    assert proba.shape == p.shape
    assert np.abs(proba - p).max() <= 1e-5
    assert np.array_equal(label, p.argmax(axis=1))


def test_onnx_export_of_trees_that_are_one_leaf(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    a = build(3, gamma=1e6, n_estimators=3)  # no split is worth γ: every tree is a single leaf
    a.fit_full(toy(300, 3))
    assert all(line.startswith("0:leaf=") for line in a.booster_.get_dump())
    a.export_onnx(tmp_path / "leaves.onnx")
    test = toy(50, 3, seed=3)
    sess = ort.InferenceSession(str(tmp_path / "leaves.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(["proba"], {"X": test.X})[0] - a.predict_proba(test)).max() <= 1e-5


def test_onnx_check_catches_wrong_base_margin_and_wrong_split_rule(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from hepml.frameworks.xgboost import booster_trees
    from hepml.onnx_export import trees_to_onnx

    train = toy(600, 2, seed=15)
    train.y[:450] = 1  # unbalanced: the base score is far from 0.5
    a = build(2, n_estimators=10)
    a.fit_full(train)
    trees, base = booster_trees(a.booster_, 2)
    assert abs(base[0]) > 0.5
    # inputs sitting exactly on the split thresholds separate x < t from x <= t
    X = np.tile(np.float32(0.0), (len(trees), 5))
    for i, t in enumerate(trees):
        X[i, t["feature"][0]] = np.float32(t["threshold"][0])
    X = np.vstack([X, toy(100, 2, seed=16).X])
    p = a.predict_proba(Batch(X, None, None, np.zeros(len(X), int), np.ones(len(X))))

    def worst(path, **kw):
        trees_to_onnx(trees, 5, 2, kw.pop("base", base), path, **kw)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.abs(sess.run(["proba"], {"X": X})[0] - p).max()

    assert worst(tmp_path / "right.onnx") <= 1e-5
    assert worst(tmp_path / "no_base.onnx", base=0.0) > 1e-3
    assert worst(tmp_path / "leq.onnx", rule="<=") > 1e-3


# ----------------------------------------------------------------------------- errors and devices
def test_user_mistakes_are_one_line_errors():
    with pytest.raises(FrameworkError, match="precision 'bf16'"):
        build(2, precision="bf16")
    with pytest.raises(FrameworkError, match="cannot build model 'mlp'"):
        adapter_class("xgboost").build(MLPSpec(), 5, 2)
    with pytest.raises(FrameworkError, match="tree_method 'exact' was asked on device 'cuda:0'"):
        build(2, device="cuda:0", tree_method="exact")
    a = build(2)
    with pytest.raises(FrameworkError, match="not trained yet"):
        a.predict_proba(toy(10, 2))
    with pytest.raises(FrameworkError, match="not trained step by step"):
        a.train_step(toy(10, 2))
    bad = toy(50, 2)
    bad.y[3] = 2
    with pytest.raises(DataError, match="labels contain 2, outside the classes 0..1"):
        a.fit_full(bad)
    bad = toy(50, 2)
    bad.X[0, 0] = np.inf
    with pytest.raises(DataError, match="1 infinite values"):
        a.fit_full(bad)
    bad = toy(50, 2)
    bad.w[:] = 0
    with pytest.raises(DataError, match="not all zero"):
        a.fit_full(bad)
    with pytest.raises(DataError, match=r"shape \(10, 3\)"):
        a.fit_full(Batch(np.zeros((10, 3), np.float32), None, None, np.zeros(10, int), np.ones(10)))


def test_asking_for_a_missing_gpu_is_an_error():
    with pytest.raises(DeviceError, match="'cuda' was asked for but no GPU is visible"):
        resolve_device("cuda", "xgboost", available=0)
    assert resolve_device("auto", "xgboost", available=0) == "cpu"
    assert build(2, device="cpu").params()["device"] == "cpu"


@pytest.mark.skipif(visible_gpus() == 0, reason="needs an NVIDIA GPU (run on the GPU machine)")
def test_gpu_training_runs_on_cuda_and_agrees_with_cpu(tmp_path):
    import json

    train, test = toy(2000, 3, seed=17), toy(500, 3, seed=18)
    device = resolve_device("cuda", "xgboost")
    gpu, cpu = build(3, device=device), build(3)
    gpu.fit_full(train)
    cpu.fit_full(train)
    assert json.loads(gpu.booster_.save_config())["learner"]["generic_param"]["device"].startswith("cuda")
    pg, pc = gpu.predict_proba(test), cpu.predict_proba(test)
    assert np.abs(pg - pc).max() < 0.05 and (pg.argmax(1) == pc.argmax(1)).mean() > 0.97
    gpu.export_onnx(tmp_path / "gpu.onnx")  # trees grown on the GPU export like any others
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(tmp_path / "gpu.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(["proba"], {"X": test.X})[0] - pg).max() <= 1e-5
