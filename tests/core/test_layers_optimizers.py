"""Layers, losses, weight init and optimisers of the NumPy core (optimisers against torch.optim)."""

from __future__ import annotations

import numpy as np
import pytest

from hepml.core import init
from hepml.core.autograd import Tensor, numerical_grad, relative_error
from hepml.core.layers import Activation, Dense, Dropout, ReLU, Sequential, Tanh
from hepml.core.losses import binary_cross_entropy, cross_entropy, mse, weighted_mean
from hepml.core.optimizers import SGD, Adam, AdamW, make_optimizer
from hepml.errors import ConfigError, DataError


# ----------------------------------------------------------------------------- init
def test_glorot_and_he_draws_have_the_textbook_spread_and_are_seeded():
    rng = np.random.default_rng(0)
    fan_in, fan_out = 400, 200
    gu = init.draw_kernel(rng, fan_in, fan_out, "glorot_uniform")
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert gu.shape == (fan_in, fan_out) and np.abs(gu).max() <= limit and np.abs(gu).max() > 0.99 * limit
    assert abs(gu.std() - limit / np.sqrt(3)) < 0.01 * limit
    hn = init.draw_kernel(rng, fan_in, fan_out, "he_normal")
    assert abs(hn.std() - np.sqrt(2 / fan_in)) < 0.02 * np.sqrt(2 / fan_in)
    hu = init.draw_kernel(rng, fan_in, fan_out, "he_uniform", dtype="float32")
    assert hu.dtype == np.float32 and np.abs(hu).max() <= np.sqrt(6 / fan_in)
    gn = init.draw_kernel(rng, fan_in, fan_out, "glorot_normal")
    assert abs(gn.std() - np.sqrt(2 / (fan_in + fan_out))) < 0.02 * np.sqrt(2 / (fan_in + fan_out))

    a = init.init_mlp_weights(5, (8, 4), 3, seed=11, activation="relu")
    b = init.init_mlp_weights(5, (8, 4), 3, seed=11, activation="relu")
    c = init.init_mlp_weights(5, (8, 4), 3, seed=12, activation="relu")
    assert list(a) == ["dense_0/kernel", "dense_0/bias", "dense_1/kernel", "dense_1/bias", "dense_2/kernel", "dense_2/bias"]
    assert [a[k].shape for k in a] == [(5, 8), (8,), (8, 4), (4,), (4, 3), (3,)]
    assert all(np.array_equal(a[k], b[k]) for k in a) and not np.array_equal(a["dense_0/kernel"], c["dense_0/kernel"])
    assert not a["dense_0/bias"].any()
    # auto: He for ReLU hidden layers (limit √(6/5) > Glorot's √(6/13)), Glorot for the output
    assert np.abs(a["dense_0/kernel"]).max() > np.sqrt(6 / 13)
    assert np.abs(a["dense_2/kernel"]).max() <= np.sqrt(6 / 7)

    d = init.init_deepsets_weights(3, (8, 6), (5,), 1, seed=0)
    assert list(d) == [
        "phi/dense_0/kernel", "phi/dense_0/bias", "phi/dense_1/kernel", "phi/dense_1/bias",
        "f/dense_0/kernel", "f/dense_0/bias", "f/dense_1/kernel", "f/dense_1/bias",
    ]  # fmt: skip
    assert d["f/dense_0/kernel"].shape == (6, 5) and d["f/dense_1/kernel"].shape == (5, 1)


def test_init_rejects_unknown_schemes_and_empty_layers():
    with pytest.raises(ConfigError, match="scheme='xavier'"):
        init.draw_kernel(np.random.default_rng(0), 3, 2, "xavier")
    with pytest.raises(ConfigError, match=r"\(0, 2\)"):
        init.draw_kernel(np.random.default_rng(0), 0, 2)


# ----------------------------------------------------------------------------- layers
def test_dense_is_x_kernel_plus_bias_also_per_object_on_sets():
    r = np.random.default_rng(1)
    K, b = r.normal(size=(3, 4)), r.normal(size=4)
    layer = Dense(K, b)
    x = r.normal(size=(5, 3))
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ K + b, rtol=1e-14)
    xs = r.normal(size=(2, 6, 3))
    out = layer(Tensor(xs)).data
    assert out.shape == (2, 6, 4)
    np.testing.assert_allclose(out[1, 4], xs[1, 4] @ K + b, rtol=1e-14)
    with pytest.raises(ConfigError, match=r"received \(3, 4\) and \(5,\)"):
        Dense(K, np.zeros(5))


def test_dense_stack_gradient_on_sets_matches_finite_differences():
    r = np.random.default_rng(2)
    net = Sequential(Dense(r.normal(size=(3, 4)), r.normal(size=4)), Tanh(), Dense(r.normal(size=(4, 2)), r.normal(size=2)))
    x = Tensor(r.normal(size=(2, 5, 3)), requires_grad=False)

    def Q():
        return (net(x) ** 2).mean()

    Q().backward()
    for name, p in net.named_parameters():
        assert relative_error(p.grad, numerical_grad(Q, p)) <= 1e-6, name


def test_dropout_is_inverted_seeded_and_off_in_eval_mode():
    x = Tensor(np.ones((200, 50)), requires_grad=False)
    drop = Dropout(0.25, rng=np.random.default_rng(3))
    out = drop(x).data
    assert set(np.unique(out)) == {0.0, 1 / 0.75}
    assert abs((out == 0).mean() - 0.25) < 0.02
    again = Dropout(0.25, rng=np.random.default_rng(3))(x).data
    np.testing.assert_array_equal(out, again)
    drop.eval()
    np.testing.assert_array_equal(drop(x).data, x.data)
    with pytest.raises(ConfigError, match="rate=1.0"):
        Dropout(1.0, rng=np.random.default_rng(0))


def test_modules_offer_parameters_zero_grad_weights_and_a_torch_like_repr():
    r = np.random.default_rng(4)
    net = Sequential(Dense(r.normal(size=(2, 3)), np.zeros(3)), ReLU(), Dense(r.normal(size=(3, 1)), np.zeros(1)))
    assert [n for n, _ in net.named_parameters()] == ["0/kernel", "0/bias", "2/kernel", "2/bias"]
    assert len(net.parameters()) == 4
    net(Tensor(r.normal(size=(4, 2)), requires_grad=False)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert repr(net) == (
        "Sequential(\n  (0): Dense(in_features=2, out_features=3, dtype=float64)\n  (1): ReLU()\n"
        "  (2): Dense(in_features=3, out_features=1, dtype=float64)\n)"
    )
    w = net.get_weights()
    w["0/kernel"] = w["0/kernel"] + 1.0
    net.set_weights(w)
    np.testing.assert_array_equal(net[0].kernel.data, w["0/kernel"])
    with pytest.raises(ConfigError, match=r"missing \['2/bias'\], unexpected \['2/bais'\]"):
        net.set_weights({**{k: v for k, v in w.items() if k != "2/bias"}, "2/bais": np.zeros(1)})
    with pytest.raises(ConfigError, match=r"0/bias has shape \(4,\), the model needs \(3,\)"):
        net.set_weights({**w, "0/bias": np.zeros(4)})
    with pytest.raises(ConfigError, match="activation='swish'"):
        Activation("swish")


# ----------------------------------------------------------------------------- losses
def test_losses_are_weighted_means_and_invariant_to_weight_scale():
    r = np.random.default_rng(5)
    z = r.normal(size=(6, 1))
    y = np.array([1, 0, 1, 1, 0, 0.0])
    w = r.uniform(0.2, 2.0, size=6)
    per = np.logaddexp(0, z[:, 0]) - y * z[:, 0]
    assert abs(float(binary_cross_entropy(Tensor(z), y, w).data) - (w @ per) / w.sum()) < 1e-14
    assert abs(float(binary_cross_entropy(Tensor(z), y).data) - per.mean()) < 1e-14

    grads = []
    for scale in (1.0, 1000.0):
        t = Tensor(z.copy())
        binary_cross_entropy(t, y, scale * w).backward()
        grads.append(t.grad)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)

    pred = r.normal(size=(6, 2))
    target = r.normal(size=(6, 2))
    expected = w @ ((pred - target) ** 2).mean(axis=1) / w.sum()
    assert abs(float(mse(Tensor(pred), target, w).data) - expected) < 1e-14
    logits = r.normal(size=(6, 3))
    labels = np.array([0, 2, 1, 1, 0, 2])
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(w * logp[np.arange(6), labels]).sum() / w.sum()
    assert abs(float(cross_entropy(Tensor(logits), labels.astype(float), w).data) - expected) < 1e-13


@pytest.mark.parametrize("loss", ["mse", "bce", "ce"])
def test_weighted_losses_match_finite_differences(loss):
    r = np.random.default_rng(6)
    w = r.uniform(0.2, 2.0, size=5)
    if loss == "mse":
        z, f = Tensor(r.normal(size=(5, 2))), lambda t: mse(t, r_target, w)
        r_target = r.normal(size=(5, 2))
    elif loss == "bce":
        z, f = Tensor(r.normal(size=(5, 1))), lambda t: binary_cross_entropy(t, np.array([1, 0, 1, 0, 1]), w)
    else:
        z, f = Tensor(r.normal(size=(5, 4))), lambda t: cross_entropy(t, np.array([3, 0, 1, 1, 2]), w)
    f(z).backward()
    assert relative_error(z.grad, numerical_grad(lambda: f(z), z)) <= 1e-6


def test_loss_input_errors_name_the_problem():
    z = Tensor(np.zeros((3, 1)))
    with pytest.raises(DataError, match="sample_weight has 2 entries for 3 examples"):
        binary_cross_entropy(z, np.ones(3), np.ones(2))
    with pytest.raises(DataError, match="sum to 0.0"):
        weighted_mean(Tensor(np.ones(3)), np.zeros(3))
    with pytest.raises(DataError, match="non-integer class indices"):
        cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.5, 1.0]))


# ----------------------------------------------------------------------------- optimisers
_CONFIGS = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.02}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "eps": 1e-3, "weight_decay": 0.05, "betas": (0.8, 0.99)}),
    ("adam", {"lr": 0.01, "amsgrad": True}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "eps": 1e-4}),
]


@pytest.mark.parametrize("name,kwargs", _CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(_CONFIGS)])
def test_optimizer_updates_equal_torch_optim_exactly(name, kwargs):
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(7)
    theta0 = r.normal(size=(4, 3))
    grads = r.normal(size=(30, 4, 3)) * np.geomspace(1e-3, 1.0, 30)[:, None, None]
    ours = Tensor(theta0.copy())
    opt = make_optimizer(name, [ours], **kwargs)
    ref = torch.nn.Parameter(torch.tensor(theta0.copy(), dtype=torch.float64))
    topt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]([ref], **kwargs)
    for g in grads:
        ours.grad = g.copy()
        opt.step()
        ref.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(ours.data, ref.detach().numpy(), rtol=0, atol=1e-13)
    assert np.abs(ours.data - theta0).max() > 1e-2  # the parameters really moved


def test_keras_epsilon_convention_follows_the_keras_formula():
    r = np.random.default_rng(8)
    theta0 = r.normal(size=5)
    grads = r.normal(size=(10, 5)) * 1e-2
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-3
    results = {}
    for convention in ("torch", "keras"):
        p = Tensor(theta0.copy())
        opt = Adam([p], lr=lr, eps=eps, eps_convention=convention)
        for g in grads:
            p.grad = g.copy()
            opt.step()
        results[convention] = p.data
    theta, m, v = theta0.copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, start=1):  # keras.optimizers.Adam.update_step
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        theta -= lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(results["keras"], theta, rtol=0, atol=1e-14)
    assert np.abs(results["keras"] - results["torch"]).max() > 1e-4  # the placement of ε matters


def test_optimizer_state_round_trip_resumes_exactly():
    r = np.random.default_rng(9)
    grads = r.normal(size=(20, 3))
    straight = Tensor(np.zeros(3))
    opt = AdamW([straight], lr=0.1)
    for g in grads:
        straight.grad = g.copy()
        opt.step()
    first = Tensor(np.zeros(3))
    opt1 = AdamW([first], lr=0.1)
    for g in grads[:10]:
        first.grad = g.copy()
        opt1.step()
    resumed = Tensor(first.data.copy())
    opt2 = AdamW([resumed], lr=0.1)
    opt2.load_state_dict(opt1.state_dict())
    for g in grads[10:]:
        resumed.grad = g.copy()
        opt2.step()
    np.testing.assert_array_equal(resumed.data, straight.data)
    with pytest.raises(ConfigError, match="2 parameters, the model 1"):
        opt2.load_state_dict({"t": 1, "state": [{}, {}]})


def test_optimizer_hyperparameter_errors_repeat_the_value():
    p = [Tensor(np.zeros(2))]
    with pytest.raises(ConfigError, match=r"SGD: invalid lr=-0.1"):
        SGD(p, lr=-0.1)
    with pytest.raises(ConfigError, match="Nesterov needs momentum"):
        SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ConfigError, match=r"Adam: invalid betas=\(0.9, 1.0\)"):
        Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ConfigError, match="optimizer='rmsprop'"):
        make_optimizer("rmsprop", p)
    with pytest.raises(ConfigError, match="no parameters"):
        Adam([])
    q = Tensor(np.ones(2))
    opt = SGD([q], lr=0.1)
    opt.step()  # no gradient yet: nothing moves (as torch skips p.grad is None)
    np.testing.assert_array_equal(q.data, np.ones(2))
