"""The Keras 3 adapter against the NumPy core: same forward pass, same 100 optimiser steps, and the rest.

The in-process tests run on Keras' default backend (TensorFlow); the torch backend is fixed when keras
is first imported, so its checks run once in a subprocess with ``KERAS_BACKEND=torch`` (one module
fixture, several tests reading its report). Equivalence is one helper, :func:`max_abs_diff`, with a
1e-6 threshold that is also shown to catch a perturbed epsilon, Keras' own epsilon rule, and a
perturbed initial weight.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from hepml.errors import DataError, DeviceError, FrameworkError  # noqa: E402
from hepml.frameworks import base  # noqa: E402
from hepml.frameworks.base import Batch  # noqa: E402

from ._reference import np_transformer  # noqa: E402
from hepml.frameworks.keras import BN_EPSILON, LN_EPSILON, KerasAdapter  # noqa: E402
from hepml.frameworks.numpy_core import CoreAdapter  # noqa: E402
from hepml.models import BDTSpec, DeepSetsSpec, MLPSpec, TrainSpec, TransformerSpec, initial_weights  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TOL = 1e-6
EXACT = 1e-12  # what the bridged float64 updates reach (rounding only): catches a constant rounded through float32


# ----------------------------------------------------------------------------- helpers
def max_abs_diff(a: dict, b: dict) -> float:
    """The equivalence check: same weight names, largest |Δ| over every entry of every array."""
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a)


def _flat(n=96, d=5, n_classes=2, seed=0):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, d))
    score = X[:, 0] * X[:, 1] + 0.5 * X[:, 2]
    y = (score > 0).astype(int) if n_classes == 2 else np.digitize(score, [-0.4, 0.4])
    return Batch(X=X, set=None, mask=None, y=y, w=r.uniform(0.5, 2.0, size=n))


def _sets(n=96, k=5, d=3, n_classes=2, seed=0):
    r = np.random.default_rng(seed)
    counts = r.integers(1, k + 1, size=n)
    mask = (np.arange(k)[None, :] < counts[:, None]).astype(float)
    S = r.normal(size=(n, k, d)) * mask[..., None]
    score = (S[..., 0] * mask).sum(1)
    y = (score > 0).astype(int) if n_classes == 2 else np.digitize(score, [-0.7, 0.7])
    return Batch(X=None, set=S, mask=mask, y=y, w=r.uniform(0.5, 2.0, size=n))


def _data(spec, n_classes, seed=0) -> Batch:
    return _flat(n_classes=n_classes, seed=seed) if spec.kind == "mlp" else _sets(n_classes=n_classes, seed=seed)


def _n_features(batch: Batch) -> int:
    return (batch.X if batch.X is not None else batch.set).shape[-1]


def _sub(batch: Batch, idx) -> Batch:
    pick = lambda a: None if a is None else a[idx]  # noqa: E731
    return Batch(X=pick(batch.X), set=pick(batch.set), mask=pick(batch.mask), y=batch.y[idx], w=batch.w[idx])


def _shared(spec, n_features, n_classes, seed=1, dtype="float64"):
    """Initial weights with every array perturbed (biases non-zero too), so each name's mapping matters."""
    w = initial_weights(spec, n_features, n_classes, seed=seed, dtype=dtype)
    r = np.random.default_rng(99)
    return {k: (v + r.normal(0, 0.1, v.shape)).astype(dtype) for k, v in w.items()}


def _steps(n, n_steps, batch_size=16, seed=5):
    r = np.random.default_rng(seed)
    out = []
    while len(out) < n_steps:
        order = r.permutation(n)
        out += [order[s : s + batch_size] for s in range(0, n, batch_size)]
    return out[:n_steps]


MLP2 = MLPSpec(hidden=[8, 6], activation="tanh")
MLP3 = MLPSpec(hidden=[7], activation="relu")
DS2 = DeepSetsSpec(phi=[6, 5], f=[6], pool="sum", activation="tanh")
DS3 = DeepSetsSpec(phi=[6], f=[5], pool="mean", activation="relu")
TF = TransformerSpec(dim=8, heads=2, layers=2, ff=12, head=[6])
TF1 = TransformerSpec(dim=4, heads=2, layers=1, ff=4, head=[], dropout=0.1)  # trained in-process: one small block traces faster


# ----------------------------------------------------------------------------- forward pass
@pytest.mark.parametrize("spec,n_classes", [(MLP2, 2), (MLP3, 3), (DS2, 2), (DS3, 3)], ids=["mlp-2", "mlp-3", "deepsets-sum-2", "deepsets-mean-3"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-6), ("float32", 1e-4)])
def test_forward_with_shared_weights_matches_core(spec, n_classes, dtype, tol):
    batch = _data(spec, n_classes)
    d = _n_features(batch)
    train = TrainSpec(dtype=dtype)
    a, core = KerasAdapter.build(spec, d, n_classes, train=train), CoreAdapter.build(spec, d, n_classes, train=train)
    weights = _shared(spec, d, n_classes, dtype=dtype)
    a.set_weights(weights)
    core.set_weights(weights)
    assert max_abs_diff(a.get_weights(), weights) == 0.0  # the names map one to one, kernels (in, out)
    p, q = a.predict_proba(batch), core.predict_proba(batch)
    assert p.shape == (len(batch), n_classes) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    assert np.abs(p - q).max() <= tol
    assert abs(a.loss(batch) - core.loss(batch)) <= 10 * tol
    # the check can fail: one kernel entry moved by 1e-3 shows up
    bad = dict(weights)
    bad[sorted(k for k in weights if k.endswith("kernel"))[0]] = weights[sorted(k for k in weights if k.endswith("kernel"))[0]] + 1e-3
    a.set_weights(bad)
    assert np.abs(a.predict_proba(batch) - q).max() > tol


def test_variables_have_the_model_dtype_and_global_floatx_is_untouched():
    a = KerasAdapter.build(MLP2, 5, 2, train=TrainSpec(dtype="float64", optimizer="sgd", momentum=0.9))
    assert keras.config.floatx() == "float32"
    assert {str(v.dtype) for v in a.model.weights} == {"float64"}
    assert str(a._inner.learning_rate.dtype) == "float64"  # η is not rounded to float32


# ----------------------------------------------------------------------------- 100 optimiser steps
OPTIMISERS = {
    "sgd-momentum": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd-nesterov": dict(optimizer="sgd", learning_rate=0.05, momentum=0.8, nesterov=True),
    "sgd-clipped": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, clip_grad_norm=0.05),
    "adam": dict(optimizer="adam", learning_rate=1e-2, beta1=0.85, beta2=0.99, epsilon=1e-8, weight_decay=1e-3),
    "adamw": dict(optimizer="adamw", learning_rate=1e-2, epsilon=1e-8, weight_decay=5e-2),
}


def _train_both(spec, n_classes, train, *, n_steps=100, perturb=None, keras_train=None, keras_eps=None, core_eps=None):
    """``n_steps`` on the same batches from the same init; the learning rate halves after half of them."""
    batch = _data(spec, n_classes)
    d = _n_features(batch)
    a = KerasAdapter.build(spec, d, n_classes, train=keras_train or train)
    core = CoreAdapter.build(spec, d, n_classes, train=train)
    if keras_eps:
        a.epsilon_convention = keras_eps
    if core_eps:
        core.model.optimizer_.eps_convention = core_eps
    if perturb is not None:
        a.set_weights(perturb(a.get_weights()))
    exact = perturb is None and keras_train is None and keras_eps == core_eps
    for step, idx in enumerate(_steps(len(batch), n_steps)):
        if step == n_steps // 2:
            a.set_learning_rate(train.learning_rate / 2)
            core.set_learning_rate(train.learning_rate / 2)
        b = _sub(batch, idx)
        loss_k, loss_c = a.train_step(b), core.train_step(b)
        if exact:
            assert abs(loss_k - loss_c) <= TOL, step
    return a, core


@pytest.mark.parametrize("name", list(OPTIMISERS))
def test_100_steps_match_core_mlp(name):
    train = TrainSpec(dtype="float64", **OPTIMISERS[name])
    a, core = _train_both(MLP2, 2, train)
    assert max_abs_diff(a.get_weights(), core.get_weights()) <= TOL
    assert max_abs_diff(a.get_weights(), core.get_weights()) <= EXACT
    assert float(keras.ops.convert_to_numpy(a._inner.learning_rate)) == train.learning_rate / 2
    assert max_abs_diff(a.get_weights(), initial_weights(MLP2, 5, 2, seed=train.seed, dtype="float64")) > 0.05  # it did train


@pytest.mark.parametrize("spec,n_classes,name", [(DS3, 3, "adam"), (DS2, 2, "sgd-nesterov"), (MLP3, 3, "adamw")],
                         ids=["deepsets-mean-3-adam", "deepsets-sum-2-nesterov", "mlp-3-adamw"])
def test_100_steps_match_core_deepsets_and_multiclass(spec, n_classes, name):
    a, core = _train_both(spec, n_classes, TrainSpec(dtype="float64", **OPTIMISERS[name]))
    assert max_abs_diff(a.get_weights(), core.get_weights()) <= EXACT


def test_clipping_is_active_in_the_clipped_configuration():
    """In the clipped run the core's weights differ from an unclipped run: matching it tests the clipping."""
    batch = _flat()
    runs = []
    for clip in (0.05, None):
        core = CoreAdapter.build(MLP2, 5, 2, train=TrainSpec(dtype="float64", **{**OPTIMISERS["sgd-clipped"], "clip_grad_norm": clip}))
        for idx in _steps(len(batch), 20):
            core.train_step(_sub(batch, idx))
        runs.append(core.get_weights())
    assert max_abs_diff(*runs) > 1e-3


def test_check_catches_a_perturbed_epsilon():
    """Keras' default ε = 1e-7 against torch's 1e-8: the 1e-6 check must fail."""
    train = TrainSpec(dtype="float64", **OPTIMISERS["adam"])
    a, core = _train_both(MLP2, 2, train, keras_train=train.model_copy(update={"epsilon": 1e-7}))
    assert max_abs_diff(a.get_weights(), core.get_weights()) > TOL


def test_keras_own_epsilon_rule_is_what_the_adapter_bridges():
    """Keras' Adam divides by √v + ε: it equals the core's ``eps_convention="keras"``, not torch's rule."""
    train = TrainSpec(dtype="float64", optimizer="adam", learning_rate=1e-2, epsilon=1e-4)
    a, core_keras = _train_both(MLP2, 2, train, keras_eps="keras", core_eps="keras")
    assert max_abs_diff(a.get_weights(), core_keras.get_weights()) <= TOL
    batch = _flat()
    core_torch = CoreAdapter.build(MLP2, 5, 2, train=train)
    for step, idx in enumerate(_steps(len(batch), 100)):
        if step == 50:
            core_torch.set_learning_rate(train.learning_rate / 2)
        core_torch.train_step(_sub(batch, idx))
    assert max_abs_diff(a.get_weights(), core_torch.get_weights()) > TOL


def test_check_catches_one_perturbed_initial_weight():
    def nudge(w):
        w = dict(w)
        w["dense_1/kernel"] = w["dense_1/kernel"].copy()
        w["dense_1/kernel"][0, 0] += 1e-4
        return w

    a, core = _train_both(MLP2, 2, TrainSpec(dtype="float64", **OPTIMISERS["adam"]), perturb=nudge)
    assert max_abs_diff(a.get_weights(), core.get_weights()) > TOL


def test_loss_is_the_weighted_mean_over_the_sum_of_weights():
    """Q = Σ w L / Σ w (Keras' own sample_weight reduction divides by n): rescaling w changes nothing."""
    batch = _flat(n=16)
    a = KerasAdapter.build(MLP2, 5, 2, train=TrainSpec(dtype="float64", optimizer="sgd", learning_rate=0.1))
    b2 = KerasAdapter.build(MLP2, 5, 2, train=TrainSpec(dtype="float64", optimizer="sgd", learning_rate=0.1))
    p = a.predict_proba(batch)[:, 1]
    per = -(batch.y * np.log(p) + (1 - batch.y) * np.log(1 - p))
    expected = np.sum(batch.w * per) / np.sum(batch.w)
    assert abs(a.train_step(batch) - expected) <= 1e-12
    assert abs(np.mean(batch.w * per) - expected) > 1e-3  # Keras' default reduction would differ
    scaled = Batch(X=batch.X, set=None, mask=None, y=batch.y, w=batch.w * 7.0)
    b2.train_step(scaled)
    assert max_abs_diff(a.get_weights(), b2.get_weights()) <= 1e-14


# ----------------------------------------------------------------------------- transformer and masking
def _np_transformer(w, spec, S, M):
    return np_transformer(w, spec, S, M, ln_epsilon=LN_EPSILON)


def test_transformer_forward_matches_numpy_reference():
    batch = _sets(n=10, n_classes=3)
    a = KerasAdapter.build(TF, 3, 3, train=TrainSpec(dtype="float64"))
    weights = _shared(TF, 3, 3)
    a.set_weights(weights)
    assert sorted(a.get_weights()) == sorted(initial_weights(TF, 3, 3, seed=1))
    p = a.predict_proba(batch)
    assert p.shape == (10, 3) and np.allclose(p.sum(1), 1.0, atol=1e-12)
    assert np.abs(p - _np_transformer(weights, TF, batch.set, batch.mask)).max() <= 1e-10


@pytest.mark.parametrize("spec", [DS2, TF1], ids=["deepsets", "transformer"])
def test_padding_and_object_order_do_not_change_the_output(spec):
    batch = _sets(n=12)
    a = KerasAdapter.build(spec, 3, 2, train=TrainSpec(dtype="float64", optimizer="adam", learning_rate=1e-2))
    a.set_weights(_shared(spec, 3, 2))
    p = a.predict_proba(batch)
    r = np.random.default_rng(3)
    S, M = batch.set, batch.mask
    junk = np.where(M[..., None] > 0, S, r.normal(size=S.shape) * 5)  # padded slots hold garbage
    S2 = np.concatenate([junk, r.normal(size=(12, 3, 3))], axis=1)  # and three more padded slots
    M2 = np.concatenate([M, np.zeros((12, 3))], axis=1)
    assert np.abs(a.predict_proba(Batch(X=None, set=S2, mask=M2, y=batch.y, w=batch.w)) - p).max() <= 1e-12
    # the same garbage counted as real objects does change it (the check can fail)
    assert np.abs(a.predict_proba(Batch(X=None, set=S2, mask=np.ones_like(M2), y=batch.y, w=batch.w)) - p).max() > 1e-3
    perm = r.permutation(5)
    assert np.abs(a.predict_proba(Batch(X=None, set=S[:, perm], mask=M[:, perm], y=batch.y, w=batch.w)) - p).max() <= 1e-12
    empty = Batch(X=None, set=np.zeros((2, 5, 3)), mask=np.zeros((2, 5)), y=np.array([0, 1]), w=np.ones(2))
    assert np.isfinite(a.predict_proba(empty)).all()  # an event without objects is not NaN
    before = a.loss(batch)
    for _ in range(8):
        a.train_step(batch)
    assert a.loss(batch) < before


# ----------------------------------------------------------------------------- batch norm
def test_batch_norm_forward_and_moving_statistics_follow_keras_convention():
    """Inference: γ (x − μ)/√(σ² + 1e-3) + β; training updates μ ← 0.99 μ + 0.01 x̄, σ² with the biased variance."""
    spec = MLPSpec(hidden=[4], activation="relu", batch_norm=True)
    batch = _flat(n=32)
    a = KerasAdapter.build(spec, 5, 2, train=TrainSpec(dtype="float64", optimizer="sgd", learning_rate=1e-12))
    w = _shared(spec, 5, 2)
    w["bn_0/moving_var"] = np.abs(w["bn_0/moving_var"]) + 0.5
    a.set_weights(w)
    h = batch.X @ w["dense_0/kernel"] + w["dense_0/bias"]
    bn = (h - w["bn_0/moving_mean"]) / np.sqrt(w["bn_0/moving_var"] + BN_EPSILON) * w["bn_0/gamma"] + w["bn_0/beta"]
    z = np.maximum(bn, 0) @ w["dense_1/kernel"] + w["dense_1/bias"]
    assert np.abs(a.predict_proba(batch)[:, 1] - 1 / (1 + np.exp(-z[:, 0]))).max() <= 1e-12
    a.train_step(batch)
    after = a.get_weights()
    assert np.abs(after["bn_0/moving_mean"] - (0.99 * w["bn_0/moving_mean"] + 0.01 * h.mean(0))).max() <= 1e-12
    assert np.abs(after["bn_0/moving_var"] - (0.99 * w["bn_0/moving_var"] + 0.01 * h.var(0))).max() <= 1e-12


# ----------------------------------------------------------------------------- determinism and files
DROPOUT = MLPSpec(hidden=[8, 6], dropout=0.3)


def _run(seed=7, n_steps=12, spec=DROPOUT):
    batch = _flat()
    a = KerasAdapter.build(spec, 5, 2, train=TrainSpec(dtype="float32", seed=seed, optimizer="adam", learning_rate=1e-2))
    a.fit(_sub(batch, idx) for idx in _steps(len(batch), n_steps))
    return a, batch


def test_two_runs_with_the_same_seed_are_bit_identical(tmp_path):
    (a, batch), (b, _) = _run(), _run()
    wa, wb = a.get_weights(), b.get_weights()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert np.array_equal(a.predict_proba(batch), b.predict_proba(batch))
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    for name in ("weights.npz", "optimizer.npz", "keras_model.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert max_abs_diff(wa, initial_weights(DROPOUT, 5, 2, seed=7)) > 1e-2  # it trained


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_save_load_round_trip_and_resume_are_bit_identical(tmp_path, optimizer):
    """A saved model predicts the same; a resumed run (moments, step count, η) reaches the same weights."""
    batch = _flat()
    train = TrainSpec(dtype="float32", optimizer=optimizer, learning_rate=0.05, momentum=0.9 if optimizer == "sgd" else 0.0, seed=3)
    a = KerasAdapter.build(MLP2, 5, 2, train=train)
    a.fit(_sub(batch, idx) for idx in _steps(len(batch), 6))
    a.save(tmp_path / "m")
    b = KerasAdapter.build(MLP2, 5, 2, train=train)
    b.load(tmp_path / "m")
    assert np.array_equal(a.predict_proba(batch), b.predict_proba(batch))
    for x in (a, b):  # the next epoch with a halved learning rate (rescales SGD's momentum)
        x.set_learning_rate(0.025)
        x.fit(_sub(batch, idx) for idx in _steps(len(batch), 5, seed=11))
    wa, wb = a.get_weights(), b.get_weights()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    if optimizer == "adam":  # the same weights without the optimiser state: another run (the check can fail)
        fresh = KerasAdapter.build(MLP2, 5, 2, train=train)
        with np.load(tmp_path / "m" / "weights.npz") as z:
            fresh.set_weights({k: z[k] for k in z.files})
        fresh.set_learning_rate(0.025)
        fresh.fit(_sub(batch, idx) for idx in _steps(len(batch), 5, seed=11))
        assert max_abs_diff(fresh.get_weights(), wa) > 1e-6


def test_load_rejects_another_model_and_bad_weights(tmp_path):
    a, _ = _run(n_steps=1, spec=MLP2)
    a.save(tmp_path / "m")
    other = KerasAdapter.build(MLPSpec(hidden=[8, 5], activation="tanh"), 5, 2, train=TrainSpec())
    with pytest.raises(FrameworkError, match="does not match"):
        other.load(tmp_path / "m")
    with pytest.raises(FrameworkError, match="no keras_model.json"):
        a.load(tmp_path)
    with pytest.raises(FrameworkError, match="missing"):
        a.set_weights({"dense_0/kernel": np.zeros((5, 8))})
    w = a.get_weights()
    w["dense_0/kernel"] = np.zeros((4, 8))
    with pytest.raises(FrameworkError, match=r"dense_0/kernel has shape \(4, 8\)"):
        a.set_weights(w)
    with pytest.raises(FrameworkError, match="optimizer state"):
        a.load_optimizer_state({"opt/000": np.zeros(3)})


# ----------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("spec,n_classes,dtype", [(MLPSpec(hidden=[6, 4], batch_norm=True), 2, "float32"), (DS3, 3, "float64")],
                         ids=["mlp-bn-2-float32", "deepsets-mean-3-float64"])
def test_onnx_export_matches_predict_proba(tmp_path, spec, n_classes, dtype):
    ort = pytest.importorskip("onnxruntime")
    batch = _data(spec, n_classes)
    a = KerasAdapter.build(spec, _n_features(batch), n_classes, train=TrainSpec(dtype=dtype, optimizer="adam", learning_rate=1e-2))
    a.fit(_sub(batch, idx) for idx in _steps(len(batch), 6))  # moving statistics away from 0 / 1
    path = tmp_path / "model.onnx"
    a.export_onnx(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"X": batch.X.astype(dtype)} if spec.kind == "mlp" else {"set": batch.set.astype(dtype), "mask": batch.mask.astype(dtype)}
    proba = sess.run(["proba"], feeds)[0]
    assert proba.shape == (len(batch), n_classes)
    assert np.abs(proba - a.predict_proba(batch)).max() <= 1e-5


def test_onnx_export_of_a_transformer_is_a_one_line_error(tmp_path):
    a = KerasAdapter.build(TF, 3, 2, train=TrainSpec())
    with pytest.raises(FrameworkError, match="ONNX export of a Keras transformer") as exc:
        a.export_onnx(tmp_path / "t.onnx")
    assert "\n" not in str(exc.value) and not (tmp_path / "t.onnx").exists()


# ----------------------------------------------------------------------------- devices, precision, inputs
def test_asking_for_a_gpu_keras_cannot_see_is_a_one_line_error():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            pytest.skip("this TensorFlow sees a GPU")
    for device in ("cuda:0", "cuda", "gpu"):
        with pytest.raises(DeviceError, match=rf"device '{device}' was asked for but Keras' \w+ backend sees 0 GPUs") as exc:
            KerasAdapter.build(MLP2, 5, 2, train=TrainSpec(), device=device)
        assert "\n" not in str(exc.value) and "--device cpu" in str(exc.value)
    with pytest.raises(DeviceError, match="'mps'"):
        KerasAdapter.build(MLP2, 5, 2, train=TrainSpec(), device="mps")
    assert KerasAdapter.build(MLP2, 5, 2, train=TrainSpec(), device="auto").device == "cpu"  # auto without a GPU: the CPU


@pytest.mark.parametrize("dtype,precision,match", [("float64", "fp16", "with dtype float64"), ("float64", "bf16", "with dtype float64"),
                                                   ("float32", "fp8", "unknown precision")])
def test_precision_combinations_that_make_no_sense(dtype, precision, match):
    with pytest.raises(FrameworkError, match=match):
        KerasAdapter.build(MLP2, 5, 2, train=TrainSpec(dtype=dtype), precision=precision)


def test_mixed_precision_trains_close_to_fp32():
    batch = _flat(n=64)
    train = TrainSpec(dtype="float32", optimizer="sgd", learning_rate=0.05, clip_grad_norm=1.0, seed=2)
    adapters = {p: KerasAdapter.build(MLP3, 5, 2, train=train, precision=p) for p in ("fp32", "bf16", "fp16")}
    assert adapters["bf16"].model.dtype_policy.name == "mixed_bfloat16" and adapters["fp16"].model.dtype_policy.name == "mixed_float16"
    assert {str(v.dtype) for a in adapters.values() for v in a.model.weights} == {"float32"}  # float32 master weights
    for idx in _steps(len(batch), 5):
        for a in adapters.values():
            assert np.isfinite(a.train_step(_sub(batch, idx)))
    ref = adapters.pop("fp32")
    for a in adapters.values():
        assert np.abs(ref.predict_proba(batch) - a.predict_proba(batch)).max() < 0.05
        assert max_abs_diff(ref.get_weights(), a.get_weights()) > 0  # it really ran in lower precision


def test_bad_inputs_are_one_line_data_errors():
    a = KerasAdapter.build(MLP2, 5, 2, train=TrainSpec())
    with pytest.raises(DataError, match=r"features of shape \(4, 3\)"):
        a.predict_proba(Batch(X=np.zeros((4, 3)), set=None, mask=None, y=np.zeros(4, int), w=np.ones(4)))
    with pytest.raises(DataError, match="class labels must be 0..1"):
        a.train_step(Batch(X=np.zeros((4, 5)), set=None, mask=None, y=np.array([0, 1, 2, 1]), w=np.ones(4)))
    with pytest.raises(DataError, match="sum to 0.0"):
        a.train_step(Batch(X=np.zeros((4, 5)), set=None, mask=None, y=np.array([0, 1, 0, 1]), w=np.zeros(4)))
    s = KerasAdapter.build(DS2, 3, 2, train=TrainSpec())
    with pytest.raises(DataError, match="needs a padded object set"):
        s.predict_proba(Batch(X=np.zeros((4, 3)), set=None, mask=None, y=np.zeros(4, int), w=np.ones(4)))
    with pytest.raises(FrameworkError, match="cannot build model 'bdt'"):
        KerasAdapter.build(BDTSpec(), 5, 2)


def test_adapter_is_found_by_name_and_alias():
    assert base.adapter_class("keras") is KerasAdapter and base.adapter_class("tf") is KerasAdapter


def test_optimizer_state_round_trip_and_learning_rate():
    batch = _flat()
    a = KerasAdapter.build(MLP2, 5, 2, train=TrainSpec(dtype="float64", optimizer="adam", learning_rate=1e-2))
    a.fit([_sub(batch, np.arange(16))])
    state = a.optimizer_state()
    assert int(state["opt/000"]) == 1 and float(state["opt/001"]) == 1e-2  # step count, η
    b = KerasAdapter.build(MLP2, 5, 2, train=TrainSpec(dtype="float64", optimizer="adam", learning_rate=1e-2))
    b.load_optimizer_state(state)
    assert max_abs_diff(b.optimizer_state(), state) == 0.0
    a.set_learning_rate(3e-3)
    assert float(a.optimizer_state()["opt/001"]) == 3e-3
    with pytest.raises(FrameworkError, match="learning rate must be > 0"):
        a.set_learning_rate(0.0)


# ----------------------------------------------------------------------------- the torch backend (subprocess)
TORCH_SCRIPT = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import keras
assert keras.backend.backend() == "torch", keras.backend.backend()
import tests.frameworks.test_keras_adapter as t
from hepml.frameworks.keras import KerasAdapter
from hepml.frameworks.numpy_core import CoreAdapter
from hepml.frameworks.torch import TorchAdapter
from hepml.models import TrainSpec

out = {"backend": keras.backend.backend(), "forward": {}, "steps": {}}
for name, spec, n_classes in [("mlp-2", t.MLP2, 2), ("mlp-3", t.MLP3, 3), ("deepsets-sum-2", t.DS2, 2), ("deepsets-mean-3", t.DS3, 3)]:
    batch = t._data(spec, n_classes)
    d = t._n_features(batch)
    a = KerasAdapter.build(spec, d, n_classes, train=TrainSpec(dtype="float64"))
    c = CoreAdapter.build(spec, d, n_classes, train=TrainSpec(dtype="float64"))
    w = t._shared(spec, d, n_classes)
    a.set_weights(w); c.set_weights(w)
    out["forward"][name] = float(np.abs(a.predict_proba(batch) - c.predict_proba(batch)).max())
    out["dtype"] = str(a.predict_proba(batch).dtype)
for name in ("adam", "sgd-momentum", "adamw"):
    a, c = t._train_both(t.MLP2, 2, TrainSpec(dtype="float64", **t.OPTIMISERS[name]))
    out["steps"][name] = t.max_abs_diff(a.get_weights(), c.get_weights())
a, c = t._train_both(t.DS3, 3, TrainSpec(dtype="float64", **t.OPTIMISERS["adam"]))
out["steps"]["deepsets-mean-3-adam"] = t.max_abs_diff(a.get_weights(), c.get_weights())
a, c = t._train_both(t.MLP2, 2, TrainSpec(dtype="float64", **t.OPTIMISERS["adam"]), keras_train=TrainSpec(dtype="float64", **{**t.OPTIMISERS["adam"], "epsilon": 1e-7}))
out["steps"]["adam-perturbed-epsilon"] = t.max_abs_diff(a.get_weights(), c.get_weights())
batch = t._sets(n=10, n_classes=3)
ka = KerasAdapter.build(t.TF, 3, 3, train=TrainSpec(dtype="float64"))
ta = TorchAdapter.build(t.TF, 3, 3, train=TrainSpec(dtype="float64"))
w = t._shared(t.TF, 3, 3)
ka.set_weights(w); ta.set_weights(w)
out["transformer_vs_torch_adapter"] = float(np.abs(ka.predict_proba(batch) - ta.predict_proba(batch)).max())
out["transformer_vs_numpy"] = float(np.abs(ka.predict_proba(batch) - t._np_transformer(w, t.TF, batch.set, batch.mask)).max())
(a1, batch), (a2, _) = t._run(), t._run()  # dropout masks from Keras' seeded generators
w1, w2 = a1.get_weights(), a2.get_weights()
out["dropout_runs_identical"] = all(np.array_equal(w1[k], w2[k]) for k in w1)
out["dropout_run_trained"] = t.max_abs_diff(w1, t.initial_weights(t.DROPOUT, 5, 2, seed=7))
b = t._sets(n=32)
ka = KerasAdapter.build(t.TF1, 3, 2, train=TrainSpec(dtype="float32", optimizer="adam", learning_rate=1e-2, clip_grad_norm=1.0))
before = ka.loss(b)
for _ in range(8):
    ka.train_step(b)
out["transformer_loss"] = [before, ka.loss(b)]
bf = KerasAdapter.build(t.MLP3, 5, 2, train=TrainSpec(dtype="float32", optimizer="sgd", learning_rate=0.05), precision="bf16")
ref = KerasAdapter.build(t.MLP3, 5, 2, train=TrainSpec(dtype="float32", optimizer="sgd", learning_rate=0.05))
for idx in t._steps(96, 5):
    bf.train_step(t._sub(batch, idx)); ref.train_step(t._sub(batch, idx))
out["bf16_vs_fp32"] = float(np.abs(bf.predict_proba(batch) - ref.predict_proba(batch)).max())
print("REPORT " + json.dumps(out))
"""


@pytest.fixture(scope="module", autouse=True)
def _torch_backend_process(request, tmp_path_factory):
    """Start the torch-backend checks in a fresh interpreter (KERAS_BACKEND=torch) when the module starts,
    so they run while the TensorFlow tests do (only when a torch-backend test is selected); stopped at the end."""
    wanted = any("torch_backend" in item.name and item.module is request.module for item in request.session.items)
    try:
        import torch  # noqa: F401
    except ImportError:
        wanted = False
    if not wanted:
        yield None
        return
    log = tmp_path_factory.mktemp("keras_torch_backend")
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(log / "stdout", "w") as out, open(log / "stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", TORCH_SCRIPT, str(REPO)], cwd=REPO, env=env, stdout=out, stderr=err, text=True)
    proc.log = log
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def torch_backend_report(_torch_backend_process):
    """The report of the torch-backend subprocess (waits for it)."""
    if _torch_backend_process is None:
        pytest.skip("torch is not installed")
    _torch_backend_process.wait(timeout=400)
    stdout, stderr = ((_torch_backend_process.log / name).read_text() for name in ("stdout", "stderr"))
    lines = [line for line in stdout.splitlines() if line.startswith("REPORT ")]
    assert _torch_backend_process.returncode == 0 and lines, stderr[-3000:]
    return json.loads(lines[-1][len("REPORT "):])


def test_torch_backend_forward_matches_core(torch_backend_report):
    r = torch_backend_report
    assert r["backend"] == "torch" and r["dtype"] == "float64"
    assert set(r["forward"]) == {"mlp-2", "mlp-3", "deepsets-sum-2", "deepsets-mean-3"}
    assert max(r["forward"].values()) <= TOL


def test_torch_backend_100_steps_match_core(torch_backend_report):
    steps = torch_backend_report["steps"]
    for name in ("adam", "sgd-momentum", "adamw", "deepsets-mean-3-adam"):
        assert steps[name] <= TOL and steps[name] <= EXACT, (name, steps[name])
    assert steps["adam-perturbed-epsilon"] > TOL  # the check can fail on this backend too


def test_torch_backend_transformer_matches_torch_adapter_and_numpy(torch_backend_report):
    assert torch_backend_report["transformer_vs_torch_adapter"] <= 1e-10
    assert torch_backend_report["transformer_vs_numpy"] <= 1e-10
    before, after = torch_backend_report["transformer_loss"]
    assert after < before  # a transformer with dropout trains on this backend


def test_torch_backend_dropout_runs_are_reproducible_and_bf16_runs(torch_backend_report):
    assert torch_backend_report["dropout_runs_identical"] and torch_backend_report["dropout_run_trained"] > 1e-2
    assert 0 < torch_backend_report["bf16_vs_fp32"] < 0.05


# ----------------------------------------------------------------------------- through the shared trainer
def test_trainer_runs_keras_like_the_core(tmp_path):
    """``hepml.train.train`` with -f keras and -f core, float64 SGD-momentum with a step schedule: same predictions."""
    import yaml

    from hepml.train import train

    from ..conftest import write_root

    rng = np.random.default_rng(5)
    n = 1200
    y = rng.integers(0, 2, n).astype(np.int32)
    X = rng.normal(size=(n, 4)) + 0.8 * y[:, None]
    write_root(tmp_path / "toy.root", {**{f"x{i}": X[:, i] for i in range(4)}, "cls": y, "event": np.arange(n, dtype=np.int64)})
    task = {"name": "toy", "files": ["toy.root"], "label": {"branch": "cls", "classes": {"sig": 1, "bkg": 0}}, "features": ["x0", "x1", "x2", "x3"]}
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    over = {"model": {"hidden": [16, 8]}, "train": {"epochs": 3, "batch_size": 64, "learning_rate": 0.05, "optimizer": "sgd", "momentum": 0.9,
                                                     "schedule": "step", "step_every": 1, "decay": 0.5, "dtype": "float64"}}
    k = train(tmp_path / "toy.yaml", "keras", "mlp", overrides=over, out=tmp_path / "keras", device="cpu")
    c = train(tmp_path / "toy.yaml", "core", "mlp", overrides=over, device="cpu")
    assert [h["lr"] for h in k.history] == [0.05, 0.025, 0.0125]
    assert np.abs(k.test_proba - c.test_proba).max() <= TOL
    assert max_abs_diff(k.adapter.get_weights(), c.adapter.get_weights()) <= TOL
    assert k.record["metrics"]["test_auc"] > 0.8
    for name in ("run.json", "model/weights.npz", "model/optimizer.npz", "model/keras_model.json"):
        assert (tmp_path / "keras" / name).exists(), name
