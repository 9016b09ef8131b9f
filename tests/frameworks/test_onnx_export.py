"""ONNX export from NumPy weights and tree descriptions, run with onnxruntime.

Each exported graph is checked against a NumPy forward pass written here from the same weights (and
against the NumPy core's MLP/DeepSets loaded with ``set_weights``); the perturbation tests show the
comparisons are sharp enough to catch one wrong weight, a wrong batch-norm ε or a wrong split rule.
"""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from hepml.core.mlp import MLP, DeepSets  # noqa: E402
from hepml.errors import ConfigError, FrameworkError  # noqa: E402
from hepml.models import DeepSetsSpec, MLPSpec, initial_weights  # noqa: E402
from hepml.onnx_export import deepsets_to_onnx, mlp_to_onnx, trees_decision_function, trees_to_onnx  # noqa: E402

TOL32 = 1e-5


def run(path, output="proba", **inputs):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run([output], inputs)[0]


def act(name, x):
    return {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "linear": lambda v: v}[name](x)


def proba(z, n_classes):
    """Reference head: [1 − σ(z), σ(z)] for two classes, softmax for more."""
    if n_classes == 2:
        p = 1 / (1 + np.exp(-z[:, 0]))
        return np.column_stack([1 - p, p])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def dense_stack(w, prefix, h, activation, *, last_activation, bn=None, eps=None):
    n = 0
    while f"{prefix}dense_{n}/kernel" in w:
        n += 1
    for i in range(n):
        h = h @ w[f"{prefix}dense_{i}/kernel"] + w[f"{prefix}dense_{i}/bias"]
        if i < n - 1 and bn:
            h = w[f"bn_{i}/gamma"] * (h - w[f"bn_{i}/moving_mean"]) / np.sqrt(w[f"bn_{i}/moving_var"] + eps) + w[f"bn_{i}/beta"]
        if i < n - 1 or last_activation:
            h = act(activation, h)
    return h


def ref_logits(w, spec, X, eps=1e-3):
    return dense_stack(w, "", X.astype(np.float64), spec.activation, last_activation=False, bn=spec.batch_norm, eps=eps)


def ref_mlp(w, spec, n_classes, X, eps=1e-3):
    return proba(ref_logits(w, spec, X, eps), n_classes)


def ref_deepsets(w, spec, n_classes, S, M):
    latent = dense_stack(w, "phi/", S.astype(np.float64), spec.activation, last_activation=True)
    pooled = (latent * M[..., None]).sum(axis=1)
    if spec.pool == "mean":
        pooled = pooled / np.maximum(M.sum(axis=1, keepdims=True), 1)
    return proba(dense_stack(w, "f/", pooled, spec.activation, last_activation=False), n_classes)


def weights_for(spec, n_in, n_classes, seed=0):
    """Initial weights with random biases (zero biases would hide a missing Add) and BN statistics."""
    w = initial_weights(spec, n_in, n_classes, seed=seed, dtype="float64")
    r = np.random.default_rng(seed + 100)
    for k in w:
        if k.endswith("/bias") or k.endswith("/beta") or k.endswith("/moving_mean"):
            w[k] = r.normal(0, 0.3, size=w[k].shape)
        elif k.endswith("/gamma"):
            w[k] = r.uniform(0.5, 1.5, size=w[k].shape)
        elif k.endswith("/moving_var"):
            w[k] = r.uniform(1e-4, 3e-3, size=w[k].shape)  # small variances make ε matter
    return w


def padded_sets(n=40, N=6, k=3, seed=0):
    """Sets of 0..N objects; padded slots hold large garbage (the mask, not zeros, must hide them)."""
    r = np.random.default_rng(seed)
    counts = r.integers(0, N + 1, size=n)
    counts[0] = 0  # an event without objects: the mean pool divides by max(0, 1)
    M = (np.arange(N)[None, :] < counts[:, None]).astype(np.float64)
    S = np.where(M[..., None] > 0, r.normal(size=(n, N, k)), r.normal(50, 10, size=(n, N, k)))
    return S, M


# ----------------------------------------------------------------------------- MLP
@pytest.mark.parametrize("n_classes,activation", [(2, "relu"), (2, "tanh"), (4, "relu"), (4, "tanh"), (3, "sigmoid")])
def test_mlp_onnx_matches_numpy_and_core(tmp_path, n_classes, activation):
    spec = MLPSpec(hidden=[7, 5], activation=activation)
    w = weights_for(spec, 4, n_classes)
    X = np.random.default_rng(1).normal(size=(33, 4))
    ref = ref_mlp(w, spec, n_classes, X)

    mlp_to_onnx(w, spec, n_classes, tmp_path / "m32.onnx")
    p32 = run(tmp_path / "m32.onnx", X=X.astype(np.float32))
    assert p32.shape == (33, n_classes) and p32.dtype == np.float32
    assert np.abs(p32 - ref).max() <= TOL32

    mlp_to_onnx(w, spec, n_classes, tmp_path / "m64.onnx", dtype="float64")
    assert np.abs(run(tmp_path / "m64.onnx", X=X) - ref).max() <= 1e-12

    core = MLP(hidden_sizes=(7, 5), activation=activation, dtype="float64").build(X, np.arange(len(X)) % n_classes)
    core.set_weights(w)
    assert np.abs(core.predict_proba(X) - p32).max() <= TOL32

    # dynamic batch axis: one example, then a batch of another size
    assert np.abs(run(tmp_path / "m32.onnx", X=X[:1].astype(np.float32)) - ref[:1]).max() <= TOL32


def test_mlp_onnx_batch_norm_uses_the_given_epsilon(tmp_path):
    spec = MLPSpec(hidden=[6, 6], batch_norm=True, activation="relu")
    w = weights_for(spec, 3, 2)
    X = np.random.default_rng(2).normal(size=(20, 3))
    for eps in (1e-5, 1e-3):  # torch, Keras
        mlp_to_onnx(w, spec, 2, tmp_path / f"bn{eps}.onnx", batch_norm_eps=eps, dtype="float64")
        z, ref = run(tmp_path / f"bn{eps}.onnx", "logits", X=X), ref_logits(w, spec, X, eps=eps)
        assert np.abs(z - ref).max() <= 1e-12 * np.abs(ref).max()
        mlp_to_onnx(w, spec, 2, tmp_path / f"bn{eps}_32.onnx", batch_norm_eps=eps)
        z32 = run(tmp_path / f"bn{eps}_32.onnx", "logits", X=X.astype(np.float32))
        assert np.abs(z32 - ref).max() <= 1e-5 * np.abs(ref).max()
    # the two ε give visibly different networks: a wrong ε would be caught
    z = run(tmp_path / "bn1e-05.onnx", "logits", X=X)
    assert np.abs(z - ref_logits(w, spec, X, eps=1e-3)).max() > 1e-2 * np.abs(z).max()


def test_mlp_onnx_check_catches_one_perturbed_weight(tmp_path):
    spec = MLPSpec(hidden=[8], activation="tanh")
    w = weights_for(spec, 4, 3)
    X = np.random.default_rng(3).normal(size=(50, 4))
    bad = {k: v.copy() for k, v in w.items()}
    bad["dense_1/kernel"][2, 1] += 1e-3
    mlp_to_onnx(bad, spec, 3, tmp_path / "bad.onnx")
    assert np.abs(run(tmp_path / "bad.onnx", X=X.astype(np.float32)) - ref_mlp(w, spec, 3, X)).max() > TOL32


# ----------------------------------------------------------------------------- DeepSets
@pytest.mark.parametrize("pool,n_classes,activation", [("sum", 2, "relu"), ("mean", 2, "tanh"), ("sum", 3, "tanh"), ("mean", 5, "relu")])
def test_deepsets_onnx_matches_numpy_and_core_with_padding(tmp_path, pool, n_classes, activation):
    spec = DeepSetsSpec(phi=[6, 4], f=[5], pool=pool, activation=activation)
    w = weights_for(spec, 3, n_classes)
    S, M = padded_sets()
    ref = ref_deepsets(w, spec, n_classes, S, M)

    deepsets_to_onnx(w, spec, n_classes, tmp_path / "d.onnx")
    p = run(tmp_path / "d.onnx", set=S.astype(np.float32), mask=M.astype(np.float32))
    assert p.shape == (len(S), n_classes)
    assert np.abs(p - ref).max() <= TOL32

    deepsets_to_onnx(w, spec, n_classes, tmp_path / "d64.onnx", dtype="float64")
    assert np.abs(run(tmp_path / "d64.onnx", set=S, mask=M) - ref).max() <= 1e-12

    core = DeepSets(phi_sizes=(6, 4), f_sizes=(5,), pool=pool, activation=activation, dtype="float64")
    core.build(S, np.arange(len(S)) % n_classes)
    core.set_weights(w)
    assert np.abs(core.predict_proba(S, mask=M) - p).max() <= TOL32

    # padding really is ignored: other garbage in the padded slots, same probabilities
    S2 = np.where(M[..., None] > 0, S, -S)
    assert np.abs(run(tmp_path / "d.onnx", set=S2.astype(np.float32), mask=M.astype(np.float32)) - p).max() <= 1e-6
    # the object axis is dynamic too: the same events with two more padded slots
    S3 = np.concatenate([S, np.full((len(S), 2, 3), 7.0)], axis=1)
    M3 = np.concatenate([M, np.zeros((len(S), 2))], axis=1)
    assert np.abs(run(tmp_path / "d.onnx", set=S3.astype(np.float32), mask=M3.astype(np.float32)) - p).max() <= 1e-6


def test_deepsets_onnx_check_catches_wrong_pooling(tmp_path):
    spec = DeepSetsSpec(phi=[4], f=[], pool="sum", activation="relu")
    w = weights_for(spec, 3, 2)
    S, M = padded_sets(seed=4)
    deepsets_to_onnx(w, spec.model_copy(update={"pool": "mean"}), 2, tmp_path / "mean.onnx")
    p = run(tmp_path / "mean.onnx", set=S.astype(np.float32), mask=M.astype(np.float32))
    assert np.abs(p - ref_deepsets(w, spec, 2, S, M)).max() > TOL32


# ----------------------------------------------------------------------------- errors
def test_export_errors_are_one_line_and_leave_no_file(tmp_path):
    spec = MLPSpec(hidden=[4])
    w = weights_for(spec, 3, 2)
    target = tmp_path / "m.onnx"
    with pytest.raises(FrameworkError, match=r"dense_0/kernel has shape \(3, 4\).*needs \(3, 5\)"):
        mlp_to_onnx(w, MLPSpec(hidden=[5]), 2, target)
    with pytest.raises(FrameworkError, match=r"dense_1/kernel has shape \(4, 1\).*needs \(4, 3\)"):
        mlp_to_onnx(w, spec, 3, target)  # weights drawn for 2 classes, exported as 3
    with pytest.raises(FrameworkError, match="'dense_2/kernel' is beyond the spec's 2 layers"):
        mlp_to_onnx(dict(w, **{"dense_2/kernel": np.ones((1, 1))}), spec, 2, target)
    bad = dict(w)
    del bad["dense_1/bias"]
    with pytest.raises(FrameworkError, match="'dense_1/bias' is missing"):
        mlp_to_onnx(bad, spec, 2, target)
    with pytest.raises(ConfigError, match="dtype='float16'"):
        mlp_to_onnx(w, spec, 2, target, dtype="float16")
    with pytest.raises(ConfigError, match="n_classes=1"):
        mlp_to_onnx(w, spec, 1, target)
    with pytest.raises(FrameworkError, match="kind='mlp'"):
        deepsets_to_onnx(w, spec, 2, target)
    with pytest.raises(FrameworkError, match="bn_0/gamma"):
        mlp_to_onnx(w, MLPSpec(hidden=[4], batch_norm=True), 2, target)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- trees
def stump(feature, threshold, left, right, *, missing=None, output=None):
    t = {"feature": [feature, -1, -1], "threshold": [threshold, 0, 0], "left": [1, -1, -1], "right": [2, -1, -1], "value": [0, left, right]}
    if missing is not None:
        t["missing"] = [missing, -1, -1]
    if output is not None:
        t["output"] = output
    return t


DEEP = {  # x0 ? (x1 ? -1 : 2) : 0.5; NaN goes left at the root, right at the x1 split
    "feature": [0, 1, -1, -1, -1], "threshold": [0.25, -1.0, 0, 0, 0],
    "left": [1, 3, -1, -1, -1], "right": [2, 4, -1, -1, -1], "missing": [1, 4, -1, -1, -1], "value": [0, 0, 0.5, -1.0, 2.0],
}


@pytest.mark.parametrize("rule", ["<", "<="])
def test_trees_onnx_split_rule_and_missing_values(tmp_path, rule):
    trees = [DEEP, stump(1, 0.0, 0.3, -0.2)]
    X = np.array([[0.25, -1.0], [0.0, -1.0], [0.0, -2.0], [1.0, 0.0], [np.nan, np.nan], [0.0, np.nan], [-1, 0.5]])
    z = trees_decision_function(trees, X, 2, 0.1, rule=rule)
    # row 0 sits on both thresholds of the deep tree: "<" sends it right at the root (0.5),
    # "<=" left twice (−1); the stump sees x1 = −1 < 0 (0.3) either way
    assert z[0, 0] == pytest.approx(0.1 + (0.5 if rule == "<" else -1.0) + 0.3)
    assert z[4, 0] == pytest.approx(0.1 + 2.0 + 0.3)  # NaN: left at the root (missing=1), right in x1 (missing=4); stump: left
    trees_to_onnx(trees, 2, 2, 0.1, tmp_path / "t.onnx", rule=rule)
    p = run(tmp_path / "t.onnx", X=X.astype(np.float32))
    assert np.abs(p[:, 1] - 1 / (1 + np.exp(-z[:, 0]))).max() <= 1e-6
    assert np.allclose(p.sum(axis=1), 1, atol=1e-6)


def test_trees_onnx_multiclass_outputs_and_float64_thresholds(tmp_path):
    trees = [stump(0, 0.1, 1.0, -1.0, output=2), stump(1, 0.5, 0.2, 0.4, output=0), stump(0, 0.1, -0.3, 0.3, output=1)]
    base = [0.1, -0.2, 0.05]
    # row 0 is below the float64 threshold 0.1 but rounds to float32(0.1): only double thresholds route it left
    X = np.array([[0.1 - 1e-10, 0.0], [0.3, 1.0], [-0.3, 0.5]])
    z = trees_decision_function(trees, X, 3, base)
    assert z[0].tolist() == pytest.approx([0.1 + 0.2, -0.2 - 0.3, 0.05 + 1.0])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    ref = e / e.sum(axis=1, keepdims=True)
    trees_to_onnx(trees, 2, 3, base, tmp_path / "t64.onnx", dtype="float64")
    assert np.abs(run(tmp_path / "t64.onnx", X=X) - ref).max() <= 1e-6
    assert run(tmp_path / "t64.onnx", "label", X=X).tolist() == ref.argmax(axis=1).tolist()
    trees_to_onnx(trees, 2, 3, base, tmp_path / "t32.onnx")
    p32 = run(tmp_path / "t32.onnx", X=X.astype(np.float32))
    assert np.abs(p32[1:] - ref[1:]).max() <= 1e-6 and np.abs(p32[0] - ref[0]).max() > 0.1


def test_tree_description_errors():
    good = stump(0, 0.0, 1.0, -1.0)
    with pytest.raises(FrameworkError, match="split feature 3"):
        trees_to_onnx([stump(3, 0.0, 1.0, 2.0)], 2, 2, 0.0, "/nonexistent/x.onnx")
    with pytest.raises(FrameworkError, match="do not point at later nodes"):
        trees_decision_function([dict(good, left=[5, -1, -1])], np.zeros((1, 2)), 2, 0.0)
    with pytest.raises(FrameworkError, match="neither its left nor its right"):
        trees_decision_function([dict(DEEP, missing=[3, 4, -1, -1, -1])], np.zeros((1, 2)), 2, 0.0)
    with pytest.raises(FrameworkError, match="only one child"):
        trees_decision_function([dict(good, right=[-1, -1, -1])], np.zeros((1, 2)), 2, 0.0)
    with pytest.raises(FrameworkError, match="output=3"):
        trees_decision_function([dict(good, output=3)], np.zeros((1, 2)), 3, 0.0)
    with pytest.raises(FrameworkError, match="base_score has 2 values for 3"):
        trees_decision_function([good], np.zeros((1, 2)), 3, [0.0, 1.0])
    with pytest.raises(ConfigError, match="rule='=<'"):
        trees_decision_function([good], np.zeros((1, 2)), 2, 0.0, rule="=<")
    with pytest.raises(FrameworkError, match="empty"):
        trees_decision_function([], np.zeros((1, 2)), 2, 0.0)
