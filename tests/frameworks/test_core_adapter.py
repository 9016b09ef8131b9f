"""The NumPy-core adapter: MLP/DeepSets steps, GBDT via the trainer, save/load, ONNX, clipping."""

from __future__ import annotations

import numpy as np
import pytest

from hepml.errors import FrameworkError
from hepml.frameworks.base import Batch, adapter_class
from hepml.frameworks.numpy_core import clip_grad_norm
from hepml.models import BDTSpec, DeepSetsSpec, MLPSpec, TrainSpec


def _flat(n=600, k=4, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = (rng.normal(size=(n, k)) + y[:, None] * 0.8).astype(np.float32)
    return Batch(X=X, set=None, mask=None, y=y, w=np.ones(n, np.float32))


@pytest.mark.parametrize("classes", [2, 3])
def test_gbdt_fit_save_load_onnx(tmp_path, classes):
    import onnxruntime as ort

    core = adapter_class("core")
    spec = BDTSpec(n_estimators=15, max_depth=3, tree_method="hist", max_bin=64)
    a = core.build(spec, 4, classes, train=TrainSpec())
    assert a.iterative is False
    train, val = _flat(classes=classes), _flat(classes=classes, seed=1)
    hist = a.fit_full(train, val)
    assert len(hist["loss"]) == 15 and len(hist["val_loss"]) == 15
    assert hist["loss"][-1] < hist["loss"][0]
    p = a.predict_proba(val)
    assert p.shape == (600, classes) and np.allclose(p.sum(1), 1, atol=1e-6)
    a.save(tmp_path)
    b = core.build(spec, 4, classes, train=TrainSpec())
    b.load(tmp_path)
    np.testing.assert_array_equal(b.predict_proba(val), p)
    a.export_onnx(tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    out = sess.run(["proba"], {sess.get_inputs()[0].name: val.X})[0]
    assert np.abs(out - p).max() <= 1e-5


def test_mlp_and_deepsets_steps_reduce_the_loss(tmp_path):
    core = adapter_class("core")
    a = core.build(MLPSpec(hidden=[8]), 4, 2, train=TrainSpec(learning_rate=0.05))
    b = _flat()
    first = a.train_step(b)
    for _ in range(30):
        last = a.train_step(b)
    assert last < first
    a.save(tmp_path)
    c = core.build(MLPSpec(hidden=[8]), 4, 2, train=TrainSpec())
    c.load(tmp_path)
    np.testing.assert_array_equal(c.predict_proba(b), a.predict_proba(b))
    rng = np.random.default_rng(0)
    s = rng.normal(size=(50, 5, 3)).astype(np.float32)
    mask = (rng.random((50, 5)) > 0.3).astype(np.float32)
    ds = core.build(DeepSetsSpec(phi=[8], f=[8]), 3, 2, train=TrainSpec())
    sb = Batch(X=None, set=s, mask=mask, y=rng.integers(0, 2, 50), w=np.ones(50, np.float32))
    p = ds.predict_proba(sb)
    s2 = s.copy()
    s2[mask == 0] = 99.0  # padding content must not matter
    np.testing.assert_allclose(ds.predict_proba(Batch(X=None, set=s2, mask=mask, y=sb.y, w=sb.w)), p, atol=1e-6)


def test_optimizer_state_roundtrip_and_lr():
    core = adapter_class("core")
    a = core.build(MLPSpec(hidden=[8]), 4, 2, train=TrainSpec(optimizer="adam"))
    b = _flat()
    a.train_step(b)
    state = a.optimizer_state()
    c = core.build(MLPSpec(hidden=[8]), 4, 2, train=TrainSpec(optimizer="adam"))
    c.set_weights(a.get_weights())
    c.load_optimizer_state(state)
    a.train_step(b)
    c.train_step(b)
    for k, v in a.get_weights().items():
        np.testing.assert_array_equal(c.get_weights()[k], v)
    a.set_learning_rate(0.123)
    assert a.model.optimizer_.lr == 0.123


def test_clip_grad_norm_matches_torch_rule():
    from hepml.core.autograd import Tensor

    p1, p2 = Tensor(np.zeros(3)), Tensor(np.zeros(2))
    p1.grad, p2.grad = np.array([3.0, 0.0, 0.0]), np.array([0.0, 4.0])
    total = clip_grad_norm([p1, p2], 1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(p1.grad, [3 / (5 + 1e-6), 0, 0])
    p1.grad = np.array([0.1, 0.0, 0.0])
    clip_grad_norm([p1], 1.0)
    np.testing.assert_allclose(p1.grad, [0.1, 0, 0])  # below the limit: unchanged


def test_core_refuses_what_it_lacks():
    core = adapter_class("core")
    with pytest.raises(FrameworkError, match="batch_norm"):
        core.build(MLPSpec(batch_norm=True), 4, 2)
    with pytest.raises(FrameworkError, match="no mixed precision"):
        core.build(MLPSpec(), 4, 2, precision="bf16")
    with pytest.raises(FrameworkError, match="cannot build model 'transformer'"):
        from hepml.models import TransformerSpec

        core.build(TransformerSpec(), 4, 2)
