"""MLP and DeepSets of the NumPy core: gradients, equivalence with torch, learning, estimator API."""

from __future__ import annotations

import numpy as np
import pytest

from hepml.core.autograd import numerical_grad, relative_error
from hepml.core.logistic_regression import LogisticRegression
from hepml.core.mlp import MLP, DeepSets
from hepml.errors import ConfigError, DataError


def _toy(n=64, d=4, seed=0, task="binary"):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, d))
    score = X[:, 0] * X[:, 1] + 0.5 * X[:, 2]
    if task == "binary":
        y = (score > 0).astype(int)
    elif task == "multiclass":
        y = np.digitize(score, [-0.5, 0.5])
    else:
        y = score + 0.1 * r.normal(size=n)
    return X, y, r.uniform(0.5, 2.0, size=n)


def _sets(n=24, k=5, d=3, seed=0):
    """Padded sets: each example has 1..k objects, the rest zero-padded, mask 1 = real."""
    r = np.random.default_rng(seed)
    counts = r.integers(1, k + 1, size=n)
    mask = (np.arange(k)[None, :] < counts[:, None]).astype(float)
    X = r.normal(size=(n, k, d)) * mask[..., None]
    y = ((X[..., 0] * mask).sum(1) > 0).astype(int)
    return X, y, mask, r.uniform(0.5, 2.0, size=n)


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize(
    "task,activation", [("binary", "tanh"), ("multiclass", "relu"), ("regression", "sigmoid")]
)
def test_full_mlp_gradient_matches_finite_differences(task, activation):
    X, y, w = _toy(n=12, task=task)
    est = MLP(hidden_sizes=(5, 4), activation=activation, task="regression" if task == "regression" else "classification",
              dtype="float64", seed=3).build(X, y)
    net = est.network_

    def Q():
        return est.loss_(est._forward(X, None), est._encode_y(y), w)

    Q().backward()
    for name, p in net.named_parameters():
        assert relative_error(p.grad, numerical_grad(Q, p)) <= 1e-6, name


@pytest.mark.parametrize("pool", ["sum", "mean"])
def test_full_deepsets_gradient_matches_finite_differences(pool):
    X, y, mask, w = _sets(n=8)
    est = DeepSets(phi_sizes=(4, 3), f_sizes=(4,), pool=pool, activation="tanh", dtype="float64", seed=1).build(X, y)

    def Q():
        return est.loss_(est._forward(X, mask), est._encode_y(y), w)

    Q().backward()
    for name, p in est.network_.named_parameters():
        assert relative_error(p.grad, numerical_grad(Q, p)) <= 1e-6, name


# ----------------------------------------------------------------------------- equivalence with torch
def _torch_mlp(torch, weights, activation):
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[activation]
    n = len(weights) // 2
    layers = []
    for i in range(n):
        kernel = weights[f"dense_{i}/kernel"]
        lin = torch.nn.Linear(*kernel.shape).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(kernel.T))  # Keras orientation (in, out) -> torch (out, in)
            lin.bias.copy_(torch.tensor(weights[f"dense_{i}/bias"]))
        layers += [lin, act()] if i < n - 1 else [lin]
    net = torch.nn.Sequential(*layers)
    return net, lambda: {f"dense_{i}/{k}": (net[2 * i].weight.detach().numpy().T if k == "kernel" else net[2 * i].bias.detach().numpy())
                         for i in range(n) for k in ("kernel", "bias")}


def _torch_loss(torch, task, out, y, w):
    yt, wt = torch.tensor(y), torch.tensor(w)
    if task == "binary":
        per = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], yt.double(), reduction="none")
    elif task == "multiclass":
        per = torch.nn.functional.cross_entropy(out, yt.long(), reduction="none")
    else:
        per = (out[:, 0] - yt) ** 2
    return (per * wt).sum() / wt.sum()  # Σ w L / Σ w, as the core


def _train_both(task, activation, optimizer, core_kwargs, torch_kwargs, *, perturb=None, steps=100):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    X, y, w = _toy(task=task)
    est = MLP(hidden_sizes=(8, 6), activation=activation, task="regression" if task == "regression" else "classification",
              optimizer=optimizer, dtype="float64", seed=5, **core_kwargs).build(X, y)
    init = est.get_weights()
    if perturb is not None:
        init = {k: v.copy() for k, v in init.items()}
        init[perturb][0, 0] += 1e-3
    net, torch_weights = _torch_mlp(torch, init, activation)
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer]
    topt = opt_cls(net.parameters(), **torch_kwargs)
    batches = np.random.default_rng(9).integers(0, len(X), size=(steps, 16))  # one shared batch order
    y_enc = y.astype(float)
    for idx in batches:
        est.train_step(X[idx], y[idx], w[idx])
        topt.zero_grad()
        _torch_loss(torch, task, net(torch.tensor(X[idx])), y_enc[idx], w[idx]).backward()
        topt.step()
    ours, theirs = est.get_weights(), torch_weights()
    return max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours), ours, init


@pytest.mark.parametrize(
    "task,activation,optimizer,core_kwargs,torch_kwargs",
    [
        ("binary", "relu", "sgd", {"learning_rate": 0.05, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.9}),
        ("binary", "tanh", "adam", {"learning_rate": 0.01}, {"lr": 0.01, "eps": 1e-8}),
        ("multiclass", "relu", "adam", {"learning_rate": 0.01, "weight_decay": 1e-3}, {"lr": 0.01, "weight_decay": 1e-3}),
        ("regression", "tanh", "sgd", {"learning_rate": 0.01, "momentum": 0.8, "nesterov": True},
         {"lr": 0.01, "momentum": 0.8, "nesterov": True}),
    ],
)
def test_100_steps_give_the_same_weights_as_torch(task, activation, optimizer, core_kwargs, torch_kwargs):
    diff, final, init = _train_both(task, activation, optimizer, core_kwargs, torch_kwargs)
    assert diff <= 1e-6
    assert max(np.abs(final[k] - init[k]).max() for k in final) > 1e-2  # training really moved the weights


def test_the_torch_comparison_detects_a_wrong_epsilon_or_init_weight():
    """The negative controls: Keras' ε = 1e-7 against torch's 1e-8, and one init weight off by 1e-3."""
    adam = ({"learning_rate": 0.01, "epsilon": 1e-7}, {"lr": 0.01, "eps": 1e-8})
    diff_eps, _, _ = _train_both("binary", "tanh", "adam", *adam)
    assert diff_eps > 1e-6  # the ≤ 1e-6 comparison above would fail
    sgd = ({"learning_rate": 0.05, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.9})
    diff_init, _, _ = _train_both("binary", "relu", "sgd", *sgd, perturb="dense_1/kernel")
    assert diff_init > 1e-6


def test_forward_with_shared_weights_equals_torch_for_mlp_and_deepsets():
    torch = pytest.importorskip("torch")
    X, y, _ = _toy(task="multiclass")
    est = MLP(hidden_sizes=(8, 6), activation="tanh", dtype="float64", seed=2).build(X, y)
    net, _ = _torch_mlp(torch, est.get_weights(), "tanh")
    with torch.no_grad():
        logits = net(torch.tensor(X))
        probs = torch.softmax(logits, dim=1).numpy()
    np.testing.assert_allclose(est.decision_function(X), logits.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.predict_proba(X), probs, rtol=0, atol=1e-12)

    Xs, ys, mask, _ = _sets()
    ds = DeepSets(phi_sizes=(6, 4), f_sizes=(5,), activation="relu", dtype="float64", seed=3).build(Xs, ys)
    wts = ds.get_weights()
    phi, _ = _torch_mlp(torch, {k[4:]: v for k, v in wts.items() if k.startswith("phi/")}, "relu")
    f, _ = _torch_mlp(torch, {k[2:]: v for k, v in wts.items() if k.startswith("f/")}, "relu")
    with torch.no_grad():
        latent = torch.relu(phi(torch.tensor(Xs)))  # Φ has an activation after its last layer too
        out = f((latent * torch.tensor(mask)[..., None]).sum(dim=1))[:, 0].numpy()
    np.testing.assert_allclose(ds.decision_function(Xs, mask=mask), out, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- DeepSets properties
def test_deepsets_is_permutation_and_padding_invariant():
    Xs, ys, mask, _ = _sets()
    ds = DeepSets(phi_sizes=(6, 4), f_sizes=(5,), dtype="float64", seed=4).build(Xs, ys)
    ref = ds.decision_function(Xs, mask=mask)
    perm = np.random.default_rng(0).permutation(Xs.shape[1])
    np.testing.assert_allclose(ds.decision_function(Xs[:, perm], mask=mask[:, perm]), ref, atol=1e-12)
    # three more object slots full of junk, masked out: nothing changes
    junk = np.random.default_rng(1).normal(size=(len(Xs), 3, Xs.shape[2]))
    padded = np.concatenate([Xs, junk], axis=1)
    np.testing.assert_allclose(ds.decision_function(padded, mask=np.pad(mask, ((0, 0), (0, 3)))), ref, atol=1e-12)
    # default mask: objects with any non-zero feature are real (zero padding)
    np.testing.assert_allclose(ds.decision_function(Xs), ref, atol=1e-12)
    # the mean pool of an example with one object repeated twice equals that of the object alone
    mean = DeepSets(phi_sizes=(6, 4), f_sizes=(5,), pool="mean", dtype="float64", seed=4).build(Xs, ys)
    one = np.zeros((1, 5, 3))
    one[0, 0] = Xs[0, 0]
    two = one.copy()
    two[0, 1] = Xs[0, 0]
    np.testing.assert_allclose(mean.decision_function(one), mean.decision_function(two), atol=1e-12)


def test_deepsets_learns_a_set_sum_task():
    Xs, ys, mask, w = _sets(n=200, seed=5)
    ds = DeepSets(phi_sizes=(16, 16), f_sizes=(16,), epochs=40, batch_size=32, learning_rate=1e-2, seed=0)
    ds.fit(Xs, ys, sample_weight=w, mask=mask)
    assert (ds.predict(Xs, mask=mask) == ys).mean() > 0.9
    assert ds.history_["loss"][-1] < 0.5 * ds.history_["loss"][0]


# ----------------------------------------------------------------------------- learning
def test_mlp_learns_xor_which_a_linear_model_cannot():
    r = np.random.default_rng(0)
    X = r.uniform(-1, 1, size=(400, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # XOR of the signs
    linear = LogisticRegression(solver="newton").fit(X, y)
    assert (linear.predict(X) == y).mean() < 0.7
    mlp = MLP(hidden_sizes=(16, 16), epochs=60, batch_size=32, learning_rate=1e-2, seed=0).fit(X, y)
    assert (mlp.predict(X) == y).mean() > 0.95
    X_test = r.uniform(-1, 1, size=(400, 2))
    assert (mlp.predict(X_test) == (X_test[:, 0] * X_test[:, 1] > 0)).mean() > 0.9


def test_regression_and_dropout_training():
    X, y, _ = _toy(n=300, task="regression")
    reg = MLP(hidden_sizes=(32,), task="regression", activation="tanh", dropout=0.1, epochs=60, batch_size=32,
              learning_rate=1e-2, seed=0).fit(X, y, validation_data=(X[:50], y[:50]))
    pred = reg.predict(X)
    assert pred.shape == (300,) and pred.dtype == np.float32
    assert np.mean((pred - y) ** 2) < 0.25 * np.var(y)
    assert len(reg.history_["val_loss"]) == 60 and reg.history_["val_loss"][-1] < reg.history_["val_loss"][0]
    with pytest.raises(ConfigError, match="predict_proba is for classification"):
        reg.predict_proba(X)


# ----------------------------------------------------------------------------- estimator surface
def test_fit_is_seeded_and_follows_the_sklearn_surface():
    X, y, w = _toy(n=120)
    labels = np.where(y == 1, "signal", "background")
    a = MLP(hidden_sizes=(8,), epochs=3, batch_size=16, seed=7)
    assert a.fit(X, labels, sample_weight=w) is a
    b = MLP(hidden_sizes=(8,), epochs=3, batch_size=16, seed=7).fit(X, labels, sample_weight=w)
    assert all(np.array_equal(a.get_weights()[k], b.get_weights()[k]) for k in a.get_weights())
    assert a.classes_.tolist() == ["background", "signal"] and len(a.history_["loss"]) == 3
    proba = a.predict_proba(X)
    assert proba.shape == (120, 2) and np.allclose(proba.sum(1), 1) and set(a.predict(X)) <= {"background", "signal"}
    assert a.get_weights()["dense_0/kernel"].dtype == np.float32
    assert a.get_params()["hidden_sizes"] == (8,) and repr(a) == "MLP(hidden_sizes=(8,), batch_size=16, epochs=3, seed=7)"
    assert a.set_params(epochs=5).epochs == 5
    # an external trainer: build once, then feed its own batches to train_step
    ext = MLP(hidden_sizes=(8,), learning_rate=0.05, seed=7).build(X, labels)
    losses = [ext.train_step(X[:32], labels[:32], w[:32]) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert abs(ext.evaluate_loss(X[:32], labels[:32], w[:32]) - ext.train_step(X[:32], labels[:32], w[:32])) < 1e-6


def test_set_weights_round_trip_and_multiclass_softmax_head():
    X, y, _ = _toy(task="multiclass")
    est = MLP(hidden_sizes=(6,), dtype="float64", seed=1).build(X, y)
    assert est.n_outputs_ == 3 and est.get_weights()["dense_1/kernel"].shape == (6, 3)
    weights = {k: v + 0.5 for k, v in est.get_weights().items()}
    other = MLP(hidden_sizes=(6,), dtype="float64", seed=2).build(X, y)
    assert np.abs(other.predict_proba(X) - est.predict_proba(X)).max() > 1e-3  # different seeds, different nets
    other.set_weights(weights)
    np.testing.assert_array_equal(other.get_weights()["dense_0/bias"], weights["dense_0/bias"])
    est.set_weights(weights)
    np.testing.assert_allclose(est.predict_proba(X), other.predict_proba(X), atol=0)
    np.testing.assert_allclose(est.predict_proba(X).sum(1), 1.0, atol=1e-12)


def test_user_mistakes_raise_hepml_errors_with_the_value():
    X, y, _ = _toy(n=20)
    with pytest.raises(ConfigError, match=r"MLP: invalid hidden_sizes=\(64, 0\)"):
        MLP(hidden_sizes=(64, 0)).fit(X, y)
    with pytest.raises(ConfigError, match="invalid optimizer='rmsprop'"):
        MLP(optimizer="rmsprop").fit(X, y)
    with pytest.raises(ConfigError, match="invalid dropout=1.5"):
        MLP(dropout=1.5).fit(X, y)
    with pytest.raises(ConfigError, match="not fitted yet"):
        MLP().predict(X)
    with pytest.raises(ConfigError, match="no parameter 'hidden'"):
        MLP().set_params(hidden=(3,))
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(DataError, match="1 NaN/inf values"):
        MLP().fit(bad, y)
    with pytest.raises(DataError, match="only \\[1\\]"):
        MLP().fit(X, np.ones(20, dtype=int))
    with pytest.raises(DataError, match=r"shape \(n_examples, n_objects, n_features\); received shape \(20, 4\)"):
        DeepSets().fit(X, y)
    with pytest.raises(DataError, match="min=-1.0"):
        MLP().fit(X, y, sample_weight=-np.ones(20))
    est = MLP(epochs=1).fit(X, y)
    with pytest.raises(DataError, match="label 7 is not one of the classes"):
        est.evaluate_loss(X, np.full(20, 7))
    with pytest.raises(DataError, match="X has 3 features, the model was built for 4"):
        est.predict(X[:, :3])


def test_inference_runs_in_chunks_with_the_same_numbers():
    """1,200 objects per example: inference goes 54 examples at a time (65,536 // 1,200), and the
    validation loss and probabilities equal those of one forward pass over all 200 examples."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(200, 1200, 3))
    y = rng.integers(0, 3, 200)
    w = rng.uniform(0.5, 2.0, 200)
    ds = DeepSets(phi_sizes=(5,), f_sizes=(4,), dtype="float64", seed=2).build(X, y)
    whole = ds._forward(X, np.ones(X.shape[:2]))  # one graph over everything
    p = whole.softmax(axis=-1).data
    assert np.allclose(ds.predict_proba(X), p, atol=1e-13, rtol=0)
    nll = -np.log(p[np.arange(200), y])
    assert ds.evaluate_loss(X, y, w) == pytest.approx(np.sum(w * nll) / np.sum(w), abs=1e-12)
