"""The PyTorch adapter against the NumPy core: same forward pass, same 100 optimiser steps, and the rest.

Equivalence is checked in float64 with one helper, :func:`max_abs_diff`, whose 1e-6 threshold is also
shown to catch a perturbed epsilon or a perturbed initial weight.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hepml.core.mlp import MLP, DeepSets  # noqa: E402
from hepml.errors import DataError, DeviceError, FrameworkError, HepmlError  # noqa: E402
from hepml.frameworks import base  # noqa: E402
from hepml.frameworks.base import Batch  # noqa: E402

from ._reference import np_transformer  # noqa: E402
from hepml.frameworks.torch import BN_EPSILON, BN_MOMENTUM, LN_EPSILON, TorchAdapter  # noqa: E402
from hepml.models import BDTSpec, DeepSetsSpec, MLPSpec, TrainSpec, TransformerSpec, initial_weights  # noqa: E402

TOL = 1e-6


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
    return X, y, r.uniform(0.5, 2.0, size=n)


def _sets(n=96, k=5, d=3, n_classes=2, seed=0):
    r = np.random.default_rng(seed)
    counts = r.integers(1, k + 1, size=n)
    mask = (np.arange(k)[None, :] < counts[:, None]).astype(float)
    S = r.normal(size=(n, k, d)) * mask[..., None]
    score = (S[..., 0] * mask).sum(1)
    y = (score > 0).astype(int) if n_classes == 2 else np.digitize(score, [-0.7, 0.7])
    return S, mask, y, r.uniform(0.5, 2.0, size=n)


def _data(spec, n_classes, seed=0):
    """(Batch of everything, core inputs X, mask) for the spec's input kind."""
    if spec.kind == "mlp":
        X, y, w = _flat(n_classes=n_classes, seed=seed)
        return Batch(X=X, set=None, mask=None, y=y, w=w), X, None
    S, M, y, w = _sets(n_classes=n_classes, seed=seed)
    return Batch(X=None, set=S, mask=M, y=y, w=w), S, M


def _sub(batch: Batch, idx) -> Batch:
    pick = lambda a: None if a is None else a[idx]  # noqa: E731
    return Batch(X=pick(batch.X), set=pick(batch.set), mask=pick(batch.mask), y=batch.y[idx], w=batch.w[idx])


def _shared(spec, n_features, n_classes, seed=1, dtype="float64"):
    """Initial weights with every array perturbed (biases non-zero too), so each name's mapping matters."""
    w = initial_weights(spec, n_features, n_classes, seed=seed, dtype=dtype)
    r = np.random.default_rng(99)
    return {k: (v + r.normal(0, 0.1, v.shape)).astype(dtype) for k, v in w.items()}


def _core(spec, train, X, y):
    """The NumPy core estimator with the same architecture and optimiser settings, built for X, y."""
    common = dict(activation=spec.activation, dropout=spec.dropout, optimizer=train.optimizer, learning_rate=train.learning_rate,
                  momentum=train.momentum, nesterov=train.nesterov, beta_1=train.beta1, beta_2=train.beta2, epsilon=train.epsilon,
                  weight_decay=train.weight_decay, dtype=train.dtype, seed=train.seed)
    if spec.kind == "mlp":
        est = MLP(hidden_sizes=tuple(spec.hidden), **common)
    else:
        est = DeepSets(phi_sizes=tuple(spec.phi), f_sizes=tuple(spec.f), pool=spec.pool, **common)
    return est.build(X, y)


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


# ----------------------------------------------------------------------------- forward pass
@pytest.mark.parametrize("spec,n_classes", [(MLP2, 2), (MLP3, 3), (DS2, 2), (DS3, 3)], ids=["mlp-2", "mlp-3", "deepsets-sum-2", "deepsets-mean-3"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-6), ("float32", 1e-4)])
def test_forward_with_shared_weights_matches_core(spec, n_classes, dtype, tol):
    batch, X, M = _data(spec, n_classes)
    train = TrainSpec(dtype=dtype)
    n_features = X.shape[-1]
    adapter = TorchAdapter.build(spec, n_features, n_classes, train=train)
    core = _core(spec, train, X, batch.y)
    w = _shared(spec, n_features, n_classes, dtype=dtype)
    adapter.set_weights(w)
    core.set_weights(w)
    p_torch, p_core = adapter.predict_proba(batch), core.predict_proba(X, mask=M)
    assert p_torch.shape == (len(batch), n_classes)
    assert p_torch.dtype == np.dtype(dtype)
    assert np.allclose(p_torch.sum(1), 1.0)
    assert np.abs(p_torch - p_core).max() <= tol
    assert max_abs_diff(adapter.get_weights(), w) == 0.0  # set/get round trip is exact
    # the validation loss is the core's weighted mean Q
    assert abs(adapter.loss(batch) - core.evaluate_loss(X, batch.y, batch.w, mask=M)) <= tol


def test_building_float64_leaves_torch_default_dtype_alone():
    before = torch.get_default_dtype()
    adapter = TorchAdapter.build(MLP2, 5, 2, train=TrainSpec(dtype="float64"))
    assert torch.get_default_dtype() == before == torch.float32
    assert {p.dtype for p in adapter.model.parameters()} == {torch.float64}
    assert base.adapter_class("pytorch") is TorchAdapter


# ----------------------------------------------------------------------------- 100 optimiser steps
OPTIMISERS = {
    "sgd-momentum": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd-nesterov": dict(optimizer="sgd", learning_rate=0.05, momentum=0.8, nesterov=True),
    "adam": dict(optimizer="adam", learning_rate=1e-2, beta1=0.85, beta2=0.99, epsilon=1e-8, weight_decay=1e-3),
    "adamw": dict(optimizer="adamw", learning_rate=1e-2, epsilon=1e-8, weight_decay=5e-2),
}


def _train_both(spec, n_classes, train, *, n_steps=100, perturb_adapter=None, adapter_train=None):
    """100 steps on the same batches with the same init; the learning rate halves after 50 steps."""
    batch, X, M = _data(spec, n_classes)
    n_features = X.shape[-1]
    adapter = TorchAdapter.build(spec, n_features, n_classes, train=adapter_train or train)
    core = _core(spec, train, X, batch.y)
    w0 = initial_weights(spec, n_features, n_classes, seed=train.seed, dtype=train.dtype)
    core.set_weights(w0)
    adapter.set_weights(perturb_adapter(dict(w0)) if perturb_adapter else w0)
    for step, idx in enumerate(_steps(len(batch), n_steps)):
        if step == n_steps // 2:
            adapter.set_learning_rate(train.learning_rate / 2)
            core.optimizer_.lr = train.learning_rate / 2
        b = _sub(batch, idx)
        loss_t = adapter.train_step(b)
        loss_c = core.train_step(b.X if b.set is None else b.set, b.y, b.w, mask_batch=b.mask)
        if perturb_adapter is None and adapter_train is None:
            assert abs(loss_t - loss_c) <= TOL
    return adapter, core


@pytest.mark.parametrize("name", list(OPTIMISERS))
def test_100_steps_match_core_mlp(name):
    train = TrainSpec(dtype="float64", seed=3, **OPTIMISERS[name])
    adapter, core = _train_both(MLP2, 2, train)
    w0 = initial_weights(MLP2, 5, 2, seed=3, dtype="float64")
    assert max_abs_diff(adapter.get_weights(), w0) > 1e-2  # the weights did move
    assert max_abs_diff(adapter.get_weights(), core.get_weights()) <= TOL
    assert adapter.optimizer.param_groups[0]["lr"] == train.learning_rate / 2


@pytest.mark.parametrize("spec,n_classes,name", [(DS2, 2, "adam"), (DS3, 3, "sgd-momentum"), (MLP3, 3, "adamw")])
def test_100_steps_match_core_deepsets_and_multiclass(spec, n_classes, name):
    train = TrainSpec(dtype="float64", seed=4, **OPTIMISERS[name])
    adapter, core = _train_both(spec, n_classes, train)
    assert max_abs_diff(adapter.get_weights(), core.get_weights()) <= TOL


def test_check_catches_a_perturbed_epsilon():
    """Keras' default ε = 1e-7 against torch's 1e-8: the 1e-6 check must fail."""
    train = TrainSpec(dtype="float64", seed=3, **OPTIMISERS["adam"])
    adapter, core = _train_both(MLP2, 2, train, adapter_train=train.model_copy(update={"epsilon": 1e-7}))
    assert max_abs_diff(adapter.get_weights(), core.get_weights()) > TOL


def test_check_catches_one_perturbed_initial_weight():
    def nudge(w):
        w["dense_1/kernel"] = w["dense_1/kernel"].copy()
        w["dense_1/kernel"][2, 3] += 1e-4
        return w

    batch, X, _ = _data(MLP2, 2)
    train = TrainSpec(dtype="float64", seed=3, **OPTIMISERS["sgd-momentum"])
    a = TorchAdapter.build(MLP2, 5, 2, train=train)
    core = _core(MLP2, train, X, batch.y)
    w0 = initial_weights(MLP2, 5, 2, seed=3, dtype="float64")
    core.set_weights(w0)
    a.set_weights(nudge(dict(w0)))
    assert np.abs(a.predict_proba(batch) - core.predict_proba(X)).max() > TOL
    adapter, core = _train_both(MLP2, 2, train, n_steps=100, perturb_adapter=nudge)
    assert max_abs_diff(adapter.get_weights(), core.get_weights()) > TOL


# ----------------------------------------------------------------------------- gradient clipping
def _core_clipped_step(core, b: Batch, max_norm: float) -> float:
    """The core's step with torch's rule written out: g ← g · min(1, c / (‖g‖₂ + 1e-6)), ‖g‖ over all parameters."""
    core.network_.train()
    core.optimizer_.zero_grad()
    loss = core.loss_(core._forward(b.X, None), core._encode_y(b.y), b.w)
    loss.backward()
    params = core.network_.parameters()
    norm = float(np.sqrt(sum(float((p.grad**2).sum()) for p in params)))
    coef = min(1.0, max_norm / (norm + 1e-6))
    for p in params:
        p.grad = p.grad * coef
    core.optimizer_.step()
    return norm


def test_gradient_clipping_by_global_norm_matches_hand_computation():
    batch, X, _ = _data(MLP2, 2)
    clip = 0.05
    train = TrainSpec(dtype="float64", seed=3, clip_grad_norm=clip, **OPTIMISERS["adam"])
    adapter = TorchAdapter.build(MLP2, 5, 2, train=train)
    unclipped = TorchAdapter.build(MLP2, 5, 2, train=train.model_copy(update={"clip_grad_norm": None}))
    core = _core(MLP2, train, X, batch.y)
    core.set_weights(initial_weights(MLP2, 5, 2, seed=3, dtype="float64"))
    norms = []
    for idx in _steps(len(batch), 40):
        b = _sub(batch, idx)
        adapter.train_step(b)
        unclipped.train_step(b)
        norms.append(_core_clipped_step(core, b, clip))
    assert min(norms) > clip  # clipping was active on every step
    assert max_abs_diff(adapter.get_weights(), core.get_weights()) <= TOL
    assert max_abs_diff(unclipped.get_weights(), core.get_weights()) > TOL


def test_one_clipped_sgd_step_by_hand():
    """Plain SGD, one step: Δθ = −η g c/‖g‖ with the gradient from torch autograd on a copy."""
    batch, _, _ = _data(MLP2, 2)
    b = _sub(batch, np.arange(16))
    train = TrainSpec(dtype="float64", optimizer="sgd", learning_rate=0.1, clip_grad_norm=0.01)
    a = TorchAdapter.build(MLP2, 5, 2, train=train)
    w0 = a.get_weights()
    ref = TorchAdapter.build(MLP2, 5, 2, train=train)
    loss = ref._loss(ref.model(*ref._inputs(b)), *ref._targets(b))
    loss.backward()
    grads = {n: (p.grad.numpy().T if kind == "kernel" else p.grad.numpy()) for n, p, kind in ref._params}
    norm = np.sqrt(sum((g**2).sum() for g in grads.values()))
    assert norm > 0.01
    a.train_step(b)
    expected = {n: w0[n] - 0.1 * grads[n] * 0.01 / (norm + 1e-6) for n in w0}
    assert max_abs_diff(a.get_weights(), expected) <= 1e-12


def test_fit_pass_validation_loss_and_chunked_prediction(monkeypatch):
    import hepml.frameworks.torch as torch_adapter

    batch, _, _ = _data(MLP3, 3)
    train = TrainSpec(dtype="float64", optimizer="adam", learning_rate=1e-2)
    a, b = TorchAdapter.build(MLP3, 5, 3, train=train), TorchAdapter.build(MLP3, 5, 3, train=train)
    parts = [_sub(batch, idx) for idx in _steps(len(batch), 6)]
    stats = a.fit(parts, val=batch)
    losses = [b.train_step(p) for p in parts]
    assert stats["loss"] == pytest.approx(np.average(losses, weights=[p.w.sum() for p in parts]), abs=1e-12)
    p = a.predict_proba(batch)
    nll = -np.log(p[np.arange(len(batch)), batch.y])
    assert stats["val_loss"] == pytest.approx(np.sum(batch.w * nll) / batch.w.sum(), abs=1e-10)
    monkeypatch.setattr(torch_adapter, "predict_rows", lambda batch: 7)  # 96 examples in 14 chunks
    assert np.abs(a.predict_proba(batch) - p).max() <= 1e-12


# ----------------------------------------------------------------------------- files and determinism
def _run(seed=7, n_steps=12, spec=None, batch=None):
    spec = spec or MLPSpec(hidden=[16, 8], dropout=0.3, batch_norm=True)
    batch = batch or _data(spec, 2)[0]
    a = TorchAdapter.build(spec, 5, 2, train=TrainSpec(dtype="float32", seed=seed, optimizer="adam", learning_rate=1e-2))
    for idx in _steps(len(batch), n_steps):
        a.train_step(_sub(batch, idx))
    return a, batch


def test_two_runs_with_the_same_seed_are_bit_identical(tmp_path):
    torch.manual_seed(1234)  # the global torch RNG must not matter: dropout has its own generator
    a, batch = _run()
    torch.rand(1000)
    b, _ = _run()
    c, _ = _run(seed=8)
    wa, wb = a.get_weights(), b.get_weights()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert np.array_equal(a.predict_proba(batch), b.predict_proba(batch))
    assert max_abs_diff(wa, c.get_weights()) > 1e-3  # another seed: other init and dropout masks
    assert not np.array_equal(wa["bn_0/moving_mean"], np.zeros(16, np.float32))  # batch norm statistics were updated
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    for name in ("weights.npz", "optimizer.npz", "torch_model.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_save_load_round_trip_and_resume_are_bit_identical(tmp_path):
    a, batch = _run(n_steps=6)
    a.save(tmp_path / "model")
    fresh = TorchAdapter.build(a.spec, 5, 2, train=a.train)
    fresh.load(tmp_path / "model")
    wa, wf = a.get_weights(), fresh.get_weights()
    assert all(np.array_equal(wa[k], wf[k]) for k in wa)
    assert np.array_equal(a.predict_proba(batch), fresh.predict_proba(batch))
    sa, sf = a.optimizer_state(), fresh.optimizer_state()
    assert sorted(sa) == sorted(sf) and all(np.array_equal(sa[k], sf[k]) for k in sa)
    # resuming: the same next steps (Adam moments, step count and dropout masks restored) give the same weights
    for idx in _steps(len(batch), 5, seed=11):
        assert a.train_step(_sub(batch, idx)) == fresh.train_step(_sub(batch, idx))
    wa, wf = a.get_weights(), fresh.get_weights()
    assert all(np.array_equal(wa[k], wf[k]) for k in wa)
    # files are plain arrays, no pickle
    with np.load(tmp_path / "model" / "weights.npz", allow_pickle=False) as z:
        assert "dense_0/kernel" in z.files and z["dense_0/kernel"].shape == (5, 16)


def test_load_rejects_another_model(tmp_path):
    a, _ = _run(n_steps=1)
    a.save(tmp_path / "m")
    other = TorchAdapter.build(MLPSpec(hidden=[4]), 5, 2)
    with pytest.raises(FrameworkError, match="does not match") as err:
        other.load(tmp_path / "m")
    assert "\n" not in str(err.value)
    with pytest.raises(FrameworkError, match="no torch model"):
        other.load(tmp_path / "empty")


# ----------------------------------------------------------------------------- devices and precision
def test_asking_for_a_missing_gpu_is_a_one_line_error():
    with pytest.raises(DeviceError) as err:
        base.resolve_device("cuda", "torch", available=0)
    assert "\n" not in str(err.value) and "'cuda'" in str(err.value) and "--device cpu" in str(err.value)
    if torch.cuda.device_count() == 0:
        with pytest.raises(DeviceError, match="no GPU is visible"):
            TorchAdapter.build(MLP2, 5, 2, device="cuda")
    else:
        n = torch.cuda.device_count()
        with pytest.raises(DeviceError, match=f"only {n} GPU"):
            TorchAdapter.build(MLP2, 5, 2, device=f"cuda:{n}")


@pytest.mark.parametrize(
    "dtype,precision,match",
    [("float64", "bf16", "float64 makes no sense"), ("float32", "fp16", "fp16 needs a CUDA GPU"), ("float32", "fp8", "unknown precision")],
)
def test_precision_combinations_that_make_no_sense(dtype, precision, match):
    if precision == "fp16" and torch.cuda.device_count():
        pytest.skip("fp16 is allowed where a GPU is present")
    with pytest.raises(FrameworkError, match=match) as err:
        TorchAdapter.build(MLP2, 5, 2, train=TrainSpec(dtype=dtype), precision=precision)
    assert isinstance(err.value, HepmlError) and "\n" not in str(err.value)


def test_bf16_autocast_on_cpu_trains_close_to_fp32():
    batch, _, _ = _data(MLP2, 2)
    train = TrainSpec(dtype="float32", optimizer="sgd", learning_rate=0.05, seed=2)
    a32 = TorchAdapter.build(MLP2, 5, 2, train=train)
    a16 = TorchAdapter.build(MLP2, 5, 2, train=train, precision="bf16")
    for idx in _steps(len(batch), 5):
        l32, l16 = a32.train_step(_sub(batch, idx)), a16.train_step(_sub(batch, idx))
        assert abs(l32 - l16) < 0.05
    p32, p16 = a32.predict_proba(batch), a16.predict_proba(batch)
    assert p16.dtype == np.float32 and np.isfinite(p16).all()
    assert 0 < np.abs(p32 - p16).max() < 0.05  # bf16 rounding is visible, but small


# ----------------------------------------------------------------------------- batch norm
def test_batch_norm_eval_forward_and_running_statistics():
    spec = MLPSpec(hidden=[4], activation="tanh", batch_norm=True)
    batch, X, _ = _data(spec, 2)
    a = TorchAdapter.build(spec, 5, 2, train=TrainSpec(dtype="float64", optimizer="sgd", learning_rate=1e-9))
    w = _shared(spec, 5, 2)
    w["bn_0/moving_var"] = np.abs(w["bn_0/moving_var"]) + 0.5
    a.set_weights(w)
    h = X @ w["dense_0/kernel"] + w["dense_0/bias"]
    bn = (h - w["bn_0/moving_mean"]) / np.sqrt(w["bn_0/moving_var"] + BN_EPSILON) * w["bn_0/gamma"] + w["bn_0/beta"]
    z = (np.tanh(bn) @ w["dense_1/kernel"] + w["dense_1/bias"])[:, 0]
    assert np.abs(a.predict_proba(batch)[:, 1] - 1 / (1 + np.exp(-z))).max() <= 1e-12
    b = _sub(batch, np.arange(32))
    a.train_step(b)
    hb = b.X @ w["dense_0/kernel"] + w["dense_0/bias"]
    expected = (1 - BN_MOMENTUM) * w["bn_0/moving_mean"] + BN_MOMENTUM * hb.mean(0)
    assert np.abs(a.get_weights()["bn_0/moving_mean"] - expected).max() <= 1e-6


# ----------------------------------------------------------------------------- transformer
TF = TransformerSpec(dim=8, heads=2, layers=2, ff=12, head=[6])


def _np_transformer(w, spec, S, M):
    return np_transformer(w, spec, S, M, ln_epsilon=LN_EPSILON)


def test_transformer_forward_matches_numpy_reference():
    S, M, y, w = _sets(n=10, k=5, d=3, n_classes=3)
    a = TorchAdapter.build(TF, 3, 3, train=TrainSpec(dtype="float64"))
    weights = _shared(TF, 3, 3)
    a.set_weights(weights)
    p = a.predict_proba(Batch(X=None, set=S, mask=M, y=y, w=w))
    assert p.shape == (10, 3) and np.allclose(p.sum(1), 1.0, atol=1e-12)
    assert np.abs(p - _np_transformer(weights, TF, S, M)).max() <= 1e-10


def test_transformer_padding_does_not_change_the_output():
    S, M, y, w = _sets(n=12, k=5, d=3)
    spec = TF.model_copy(update={"dropout": 0.1})  # active in training only
    a = TorchAdapter.build(spec, 3, 2, train=TrainSpec(dtype="float64", optimizer="adam", learning_rate=1e-2))
    a.set_weights(_shared(spec, 3, 2))
    p = a.predict_proba(Batch(X=None, set=S, mask=M, y=y, w=w))
    assert p.shape == (12, 2) and np.allclose(p.sum(1), 1.0)
    r = np.random.default_rng(3)
    junk = np.where(M[..., None] > 0, S, r.normal(size=S.shape) * 5)  # padded slots hold garbage
    S2 = np.concatenate([junk, r.normal(size=(12, 3, 3))], axis=1)  # and three more padded slots
    M2 = np.concatenate([M, np.zeros((12, 3))], axis=1)
    assert np.abs(a.predict_proba(Batch(X=None, set=S2, mask=M2, y=y, w=w)) - p).max() <= 1e-12
    # the same garbage counted as real objects does change it (the check can fail)
    assert np.abs(a.predict_proba(Batch(X=None, set=S2, mask=np.ones_like(M2), y=y, w=w)) - p).max() > 1e-3
    perm = r.permutation(5)  # and a set model does not care about the order of its objects
    assert np.abs(a.predict_proba(Batch(X=None, set=S[:, perm], mask=M[:, perm], y=y, w=w)) - p).max() <= 1e-12
    before = a.loss(Batch(X=None, set=S, mask=M, y=y, w=w))
    for _ in range(10):
        a.train_step(Batch(X=None, set=S, mask=M, y=y, w=w))
    assert a.loss(Batch(X=None, set=S, mask=M, y=y, w=w)) < before


# ----------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize(
    "spec,n_classes",
    [(MLPSpec(hidden=[8], batch_norm=True, dropout=0.2), 2), (DS3, 3), (TransformerSpec(dim=8, heads=2, layers=1, ff=8, head=[4]), 2)],
    ids=["mlp-bn", "deepsets", "transformer"],
)
def test_onnx_export_matches_predict_proba(spec, n_classes, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    batch, X, _ = _data(spec, n_classes, seed=4)
    a = TorchAdapter.build(spec, X.shape[-1], n_classes, train=TrainSpec(dtype="float32", optimizer="adam", learning_rate=1e-2))
    for idx in _steps(len(batch), 3):
        a.train_step(_sub(batch, idx))  # non-trivial weights and batch-norm statistics
    b = _sub(batch, np.arange(7))  # a batch size other than the exported example's
    a.export_onnx(tmp_path / "model.onnx")
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["proba"]
    if b.set is None:
        feeds = {"x": b.X.astype(np.float32)}
    else:
        feeds = {"set": b.set[:, :4].astype(np.float32), "mask": b.mask[:, :4].astype(np.float32)}  # 4 objects, not 3
        b = Batch(X=None, set=b.set[:, :4], mask=b.mask[:, :4], y=b.y, w=b.w)
    assert [i.name for i in sess.get_inputs()] == list(feeds)
    got = sess.run(["proba"], feeds)[0]
    assert got.shape == (7, n_classes)
    assert np.abs(got - a.predict_proba(b)).max() <= 1e-5
    a.train_step(_sub(batch, np.arange(16)))
    a.export_onnx(tmp_path / "again.onnx")
    assert a.model.training  # export switched to eval mode only for the trace


# ----------------------------------------------------------------------------- user mistakes
def test_bad_inputs_are_one_line_errors():
    a = TorchAdapter.build(MLP2, 5, 2)
    X, y, w = _flat()
    cases = [
        (lambda: a.train_step(Batch(X=X[:, :4], set=None, mask=None, y=y, w=w)), DataError, "built for \\(n, 5\\)"),
        (lambda: a.train_step(Batch(X=X, set=None, mask=None, y=y + 1, w=w)), DataError, "class labels must be 0..1"),
        (lambda: a.train_step(Batch(X=X, set=None, mask=None, y=y, w=0 * w)), DataError, "sum to 0.0"),
        (lambda: a.set_weights({"dense_0/kernel": np.zeros((5, 8))}), FrameworkError, "missing"),
        (lambda: a.set_weights({**a.get_weights(), "dense_0/kernel": np.zeros((4, 8))}), FrameworkError, "shape \\(4, 8\\)"),
        (lambda: TorchAdapter.build(DS2, 3, 2).predict_proba(Batch(X=X, set=None, mask=None, y=y, w=w)), DataError, "padded object set"),
        (lambda: TorchAdapter.build(BDTSpec(), 5, 2), FrameworkError, "cannot build model 'bdt'"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match) as err:
            call()
        assert "\n" not in str(err.value) and err.value.fix

