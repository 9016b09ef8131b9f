"""The array autodiff: the slides' worked backprop example, and every op against finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hepml.core.autograd import Tensor, numerical_grad, relative_error
from hepml.core.optimizers import SGD
from hepml.errors import DeviceError

TOL = 1e-6  # relative error of analytic vs central-difference gradients, float64


def test_worked_backprop_example_from_the_slides():
    """x=1, w=0.1, b=1, y_target=2, η=0.1: y=1.1, Q=0.81, all derivatives −1.8, w→0.28, b→1.18."""
    x = Tensor(1.0, requires_grad=False)
    w, b = Tensor(0.1), Tensor(1.0)
    y = w * x + b
    Q = (y - 2.0) ** 2
    Q.backward()
    assert abs(float(y.data) - 1.1) < 1e-12
    assert abs(float(Q.data) - 0.81) < 1e-12
    assert abs(float(y.grad) - (-1.8)) < 1e-12
    assert abs(float(w.grad) - (-1.8)) < 1e-12
    assert abs(float(b.grad) - (-1.8)) < 1e-12
    assert x.grad is None  # inputs that do not require a gradient get none
    SGD([w, b], lr=0.1).step()
    assert abs(float(w.data) - 0.28) < 1e-12
    assert abs(float(b.data) - 1.18) < 1e-12


def _rng():
    return np.random.default_rng(12345)


def _away_from_zero(shape, rng):
    """Values with |v| ≥ 0.1, so ReLU's kink and log(0) are far from the ±h probes."""
    v = rng.uniform(0.1, 1.5, size=shape)
    return v * rng.choice([-1.0, 1.0], size=shape)


# op name -> (input arrays, function of the input Tensors returning a Tensor)
def _cases():
    r = _rng()
    mask = np.array([[1, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    labels = np.array([2, 0, 1, 1])
    probs = r.dirichlet(np.ones(3), size=4)
    return {
        "add_broadcast": ([r.normal(size=(4, 3)), r.normal(size=(3,))], lambda a, b: a + b),
        "add_broadcast_keepdim": ([r.normal(size=(4, 3)), r.normal(size=(4, 1))], lambda a, b: a + b),
        "sub": ([r.normal(size=(4, 3)), r.normal(size=(1, 3))], lambda a, b: a - b),
        "mul_broadcast": ([r.normal(size=(2, 4, 3)), r.normal(size=(4, 1))], lambda a, b: a * b),
        "div": ([r.normal(size=(4, 3)), _away_from_zero((4, 3), r)], lambda a, b: a / b),
        "rsub_rdiv_scalar": ([_away_from_zero((3, 2), r)], lambda a: 2.0 - 3.0 / a),
        "neg": ([r.normal(size=(3, 2))], lambda a: -a),
        "pow": ([r.uniform(0.5, 2.0, size=(3, 2))], lambda a: a**3 + a**-0.5),
        "matmul_2d": ([r.normal(size=(4, 3)), r.normal(size=(3, 5))], lambda a, b: a @ b),
        "matmul_3d_by_2d": ([r.normal(size=(2, 4, 3)), r.normal(size=(3, 5))], lambda a, b: a @ b),
        "matmul_batched": ([r.normal(size=(2, 4, 3)), r.normal(size=(2, 3, 2))], lambda a, b: a @ b),
        "matmul_vector": ([r.normal(size=(4, 3)), r.normal(size=(3,))], lambda a, b: a @ b),
        "vector_matmul": ([r.normal(size=(3,)), r.normal(size=(3, 2))], lambda a, b: a @ b),
        "sum_all": ([r.normal(size=(3, 4))], lambda a: a.sum()),
        "sum_axis": ([r.normal(size=(2, 3, 4))], lambda a: a.sum(axis=1)),
        "sum_keepdims": ([r.normal(size=(2, 3, 4))], lambda a: a.sum(axis=(0, 2), keepdims=True)),
        "mean_axis": ([r.normal(size=(3, 4))], lambda a: a.mean(axis=0)),
        "reshape": ([r.normal(size=(2, 6))], lambda a: a.reshape(3, 4) * np.arange(12.0).reshape(3, 4)),
        "exp": ([r.normal(size=(3, 2))], lambda a: a.exp()),
        "log": ([r.uniform(0.2, 3.0, size=(3, 2))], lambda a: a.log()),
        "sigmoid": ([r.normal(scale=3, size=(3, 4))], lambda a: a.sigmoid()),
        "tanh": ([r.normal(size=(3, 4))], lambda a: a.tanh()),
        "relu": ([_away_from_zero((3, 4), r)], lambda a: a.relu()),
        "softmax": ([r.normal(size=(4, 3))], lambda a: a.softmax(axis=-1)),
        "bce_with_logits": ([r.normal(scale=3, size=(5, 1))], lambda z: z.bce_with_logits(np.array([[1], [0], [1], [1], [0.0]]))),
        "cross_entropy_labels": ([r.normal(size=(4, 3))], lambda z: z.cross_entropy_with_logits(labels)),
        "cross_entropy_probs": ([r.normal(size=(4, 3))], lambda z: z.cross_entropy_with_logits(probs)),
        "sum_pool_masked": ([r.normal(size=(3, 4, 2))], lambda a: a.sum_pool(mask, axis=1)),
        "mean_pool_masked": ([r.normal(size=(3, 4, 2))], lambda a: a.sum_pool(mask, axis=1, mean=True)),
        "sum_pool_nomask": ([r.normal(size=(3, 4, 2))], lambda a: a.sum_pool(None, axis=1)),
        "used_twice": ([r.normal(size=(3, 3))], lambda a: a * a + a @ a),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_every_op_matches_central_finite_differences(name):
    arrays, f = _cases()[name]
    inputs = [Tensor(a.astype(np.float64).copy()) for a in arrays]
    out_shape = f(*inputs).shape
    # Q = Σ R ⊙ f(inputs) with a fixed random R, so the upstream gradient is not just ones
    R = np.random.default_rng(7).normal(size=out_shape)

    def Q():
        return (f(*inputs) * R).sum()

    Q().backward()
    for t in inputs:
        numeric = numerical_grad(Q, t)
        assert t.grad.shape == t.shape
        assert relative_error(t.grad, numeric) <= TOL, name


def test_gradients_accumulate_for_a_node_used_twice_and_across_backward_calls():
    a = Tensor(np.array([1.0, -2.0, 3.0]))
    (a * a).sum().backward()  # d/da Σ a² = 2a: both factors contribute
    np.testing.assert_allclose(a.grad, 2 * a.data, rtol=0, atol=1e-15)
    (a * a).sum().backward()  # without zero_grad the second pass adds on top
    np.testing.assert_allclose(a.grad, 4 * a.data, rtol=0, atol=1e-15)
    a.zero_grad()
    assert a.grad is None


def test_forward_values_match_the_formulas():
    r = _rng()
    z = r.normal(scale=4, size=(6, 3))
    np.testing.assert_allclose(Tensor(z).sigmoid().data, 1 / (1 + np.exp(-z)), rtol=1e-14)
    s = Tensor(z).softmax().data
    np.testing.assert_allclose(s, np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), rtol=1e-13)
    y = np.array([0, 2, 1, 1, 0, 2])
    np.testing.assert_allclose(Tensor(z).cross_entropy_with_logits(y).data, -np.log(s[np.arange(6), y]), rtol=1e-12)
    t = (z[:, :1] > 0).astype(float)
    p = 1 / (1 + np.exp(-z[:, :1]))
    np.testing.assert_allclose(Tensor(z[:, :1]).bce_with_logits(t).data, -(t * np.log(p) + (1 - t) * np.log(1 - p)), rtol=1e-10)
    x = r.normal(size=(2, 3, 4))
    mask = np.array([[1, 0, 1], [0, 0, 0]])
    np.testing.assert_allclose(Tensor(x).sum_pool(mask).data, [x[0, 0] + x[0, 2], np.zeros(4)], atol=1e-15)
    np.testing.assert_allclose(Tensor(x).sum_pool(mask, mean=True).data[0], (x[0, 0] + x[0, 2]) / 2, atol=1e-15)


def test_extreme_logits_stay_finite_without_warnings():
    z = Tensor(np.array([[-800.0], [800.0], [0.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow / divide warning fails the test
        loss = z.bce_with_logits(np.array([[1.0], [0.0], [1.0]]))
        loss.sum().backward()
        p = Tensor(np.array([-800.0, 800.0])).sigmoid().data
        ce = Tensor(np.array([[1000.0, -1000.0]])).cross_entropy_with_logits(np.array([1]))
    np.testing.assert_allclose(loss.data[:, 0], [800.0, 800.0, np.log(2)])
    np.testing.assert_allclose(z.grad[:, 0], [-1.0, 1.0, -0.5])
    assert p[0] == 0.0 and p[1] == 1.0
    np.testing.assert_allclose(ce.data, [2000.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_through_ops_and_gradients(dtype):
    a = Tensor(np.ones((3, 2), dtype=dtype))
    b = Tensor(np.ones((2,), dtype=dtype))
    out = ((a * 2.0 + b).tanh() @ np.ones((2, 1), dtype=dtype)).sigmoid().mean()
    out.backward()
    assert out.data.dtype == dtype and a.grad.dtype == dtype and b.grad.dtype == dtype


def test_numpy_operands_on_the_left_and_integer_data():
    a = Tensor(np.array([1, 2, 3]))  # integers become float64
    assert a.dtype == np.float64
    out = np.array([1.0, 1.0, 1.0]) + a * np.array([2.0, 2.0, 2.0])
    assert isinstance(out, Tensor)
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0, 2.0])


def test_repr_names_the_op_and_shows_values():
    a = Tensor(np.array([1.0, 2.0]))
    assert repr(a) == "Tensor([1., 2.], dtype=float64, requires_grad=True)"
    assert "op='+'" in repr(a + 1.0)


def test_pow_rejects_a_tensor_exponent_and_gpu_without_cupy_is_a_device_error():
    with pytest.raises(TypeError, match="exponent"):
        Tensor(1.0) ** Tensor(2.0)
    from hepml.core.autograd import get_xp

    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(DeviceError, match="device='gpu'"):
            get_xp("gpu")
    with pytest.raises(DeviceError, match="unknown device='tpu'"):
        get_xp("tpu")


def test_backward_releases_the_graph_and_retain_graph_keeps_it():
    """After backward the activations are freed by reference counting alone (no cycle collector):
    each node's closure refers back to the node, so the graph must be cut, as PyTorch does."""
    import gc
    import weakref

    gc.disable()
    try:
        x = Tensor(np.array([0.1, -0.4, 0.7]))
        h = (x * 2.0).tanh()
        alive = weakref.ref(h)
        loss = h.sum()
        loss.backward()
        del h, loss
        assert alive() is None
        assert np.allclose(x.grad, 2.0 / np.cosh(2.0 * x.data) ** 2)

        x.zero_grad()
        q = (x * x).sum()
        q.backward(retain_graph=True)
        q.backward()  # the kept graph accumulates a second time
        assert np.allclose(x.grad, 4.0 * x.data)

        y = (x * 3.0).exp()
        kept = weakref.ref(y)
        z = y.sum()
        z.release_graph()  # inference: nothing to backpropagate, free it now
        del y, z
        assert kept() is None
    finally:
        gc.enable()
