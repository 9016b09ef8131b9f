"""Reverse-mode automatic differentiation over arrays: micrograd, vectorised.

A :class:`Tensor` wraps an array (``.data``) and, after :meth:`Tensor.backward`, holds
``.grad`` = ∂Q/∂data of the same shape. Every operation creates a new Tensor that remembers
its parents and a ``_backward`` closure applying the *local* derivative, i.e. one link of the
chain rule from the lecture:

    ∂f(t(x))/∂x = ∂f/∂t · ∂t/∂x

``backward()`` sorts the graph topologically and calls the closures from the output back to
the inputs ("backpropagation": collect the derivatives once, reuse them for every weight).

Habits kept from micrograd: each op's forward line sits right above its ``_backward``;
gradients accumulate with ``+=`` (a node used twice gets both contributions); derived ops
(``-``, ``/``, ``mean``) are built from primitives and need no backward of their own.
Over arrays one more rule appears: an operand that was *broadcast* in the forward pass gets
its gradient summed back over the broadcast axes (:func:`_unbroadcast`).

The array module ``xp`` is NumPy, or CuPy when the data live on a GPU: every op uses the
module of its own data (:func:`array_module`), so the same code runs on both.
"""

from __future__ import annotations

import numpy as np

from ..errors import DeviceError

__all__ = [
    "Tensor",
    "array_module",
    "get_xp",
    "to_numpy",
    "numerical_grad",
    "relative_error",
]


# ----------------------------------------------------------------------------- array module
def get_xp(device: str = "cpu"):
    """The array module for ``device``: NumPy for ``"cpu"``, CuPy for ``"gpu"``/``"cuda"``."""
    if device == "cpu":
        return np
    if device in ("gpu", "cuda"):
        try:
            import cupy  # noqa: PLC0415  (optional, only on GPU machines)
        except ImportError as exc:
            raise DeviceError(
                f"device={device!r} needs CuPy, which is not installed ({exc})",
                "install cupy for your CUDA version, or use device='cpu'",
            ) from None
        return cupy
    raise DeviceError(f"unknown device={device!r}", "use device='cpu' or device='gpu'")


def array_module(*arrays):
    """NumPy, or CuPy if any of ``arrays`` is a CuPy array (duck-typed, no import needed)."""
    for a in arrays:
        if not isinstance(a, np.ndarray) and type(a).__module__.startswith("cupy"):
            import cupy  # noqa: PLC0415

            return cupy
    return np


def to_numpy(a) -> np.ndarray:
    """A NumPy array from a NumPy/CuPy array or a Tensor (copies from the GPU if needed)."""
    if isinstance(a, Tensor):
        a = a.data
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def _unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # leading axes added
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


# ----------------------------------------------------------------------------- the Tensor
class Tensor:
    """An array node of the computation graph.

    Parameters
    ----------
    data : array_like
        The value; floating arrays keep their dtype (float32 or float64), anything else
        becomes float64.
    requires_grad : bool
        Whether ``backward()`` should compute ``.grad`` for this node. Inputs such as a
        batch of examples use ``False`` so that no work is spent on ∂Q/∂x.

    ``.grad`` is None until a ``backward()`` reaches the node; ``zero_grad()`` resets it.
    """

    __array_ufunc__ = None  # make ``ndarray + Tensor`` call Tensor.__radd__, not a ufunc

    def __init__(self, data, requires_grad: bool = True, _children=(), _op: str = ""):
        if not isinstance(data, np.ndarray):  # scalars, lists, Tensors, CuPy arrays
            if isinstance(data, Tensor):
                data = data.data
            data = array_module(data).asarray(data)
        if data.dtype.kind != "f":
            data = data.astype(np.float64)
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad
        self._backward = lambda: None
        self._prev = tuple(_children)
        self._op = _op

    # -- helpers ------------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def xp(self):
        return np if isinstance(self.data, np.ndarray) else array_module(self.data)

    def _wrap(self, other) -> Tensor:
        """A constant Tensor in this tensor's dtype for Python/NumPy scalars and arrays."""
        if isinstance(other, Tensor):
            return other
        return Tensor(self.xp.asarray(other, dtype=self.data.dtype), requires_grad=False)

    def _new(self, data, children, op) -> Tensor:
        requires_grad = children[0].requires_grad or (len(children) > 1 and children[1].requires_grad)
        return Tensor(data, requires_grad, children, op)

    def __repr__(self) -> str:
        op = f", op={self._op!r}" if self._op else ""
        grad = ", requires_grad=True" if self.requires_grad and not self._op else ""
        body = np.array2string(to_numpy(self.data), precision=4, threshold=20, separator=", ")
        return f"Tensor({body}, dtype={self.data.dtype}{op}{grad})"

    # -- primitive ops ------------------------------------------------------------------
    def __add__(self, other):
        other = self._wrap(other)
        out = self._new(self.data + other.data, (self, other), "+")

        def _backward():
            if self.requires_grad:
                self.grad += _unbroadcast(out.grad, self.shape)
            if other.requires_grad:
                other.grad += _unbroadcast(out.grad, other.shape)

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._wrap(other)
        out = self._new(self.data * other.data, (self, other), "*")

        def _backward():
            if self.requires_grad:
                self.grad += _unbroadcast(other.data * out.grad, self.shape)
            if other.requires_grad:
                other.grad += _unbroadcast(self.data * out.grad, other.shape)

        out._backward = _backward
        return out

    def __pow__(self, k):
        if not isinstance(k, (int, float)):
            raise TypeError(f"Tensor ** k needs a Python int or float exponent; received {type(k).__name__}")
        out = self._new(self.data**k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    def __matmul__(self, other):
        """Matrix product; 1-D operands follow NumPy's rules (a vector is a row / a column)."""
        other = self._wrap(other)
        out = self._new(self.data @ other.data, (self, other), "@")

        def _backward():
            xp = self.xp
            a = self.data[None, :] if self.ndim == 1 else self.data
            b = other.data[:, None] if other.ndim == 1 else other.data
            g = out.grad
            if self.ndim == 1:
                g = xp.expand_dims(g, -2)
            if other.ndim == 1:
                g = xp.expand_dims(g, -1)
            if self.requires_grad:  # ∂Q/∂A = ∂Q/∂C · Bᵀ
                self.grad += _unbroadcast(g @ xp.swapaxes(b, -1, -2), a.shape).reshape(self.shape)
            if other.requires_grad:  # ∂Q/∂B = Aᵀ · ∂Q/∂C (stacked A: one product over all rows)
                if b.ndim == 2 and a.ndim > 2:
                    gb = a.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1])
                else:
                    gb = _unbroadcast(xp.swapaxes(a, -1, -2) @ g, b.shape)
                other.grad += gb.reshape(other.shape)

        out._backward = _backward
        return out

    def sum(self, axis=None, keepdims: bool = False):
        out = self._new(self.data.sum(axis=axis, keepdims=keepdims), (self,), "sum")

        def _backward():
            g = out.grad
            if axis is not None and not keepdims:
                g = self.xp.expand_dims(g, axis)
            self.grad += self.xp.broadcast_to(g, self.shape)

        out._backward = _backward
        return out

    def reshape(self, *shape):
        out = self._new(self.data.reshape(*shape), (self,), "reshape")

        def _backward():
            self.grad += out.grad.reshape(self.shape)

        out._backward = _backward
        return out

    def exp(self):
        out = self._new(self.xp.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self):
        out = self._new(self.xp.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    # -- activations (elementwise) ------------------------------------------------------
    def sigmoid(self):
        """σ(x) = 1/(1+e⁻ˣ), σ' = σ(1−σ); computed from e^{−|x|} so it never overflows."""
        xp = self.xp
        e = xp.exp(-xp.abs(self.data))
        out = self._new(xp.where(self.data >= 0, 1, e) / (1 + e), (self,), "sigmoid")

        def _backward():
            self.grad += out.data * (1 - out.data) * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        """tanh' = 1 − tanh²."""
        out = self._new(self.xp.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1 - out.data * out.data) * out.grad

        out._backward = _backward
        return out

    def relu(self):
        """ReLU(x) = max(0, x); derivative 1 where x > 0, else 0 (0 at the kink, as in torch)."""
        out = self._new(self.xp.maximum(self.data, 0), (self,), "relu")

        def _backward():
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    def softmax(self, axis: int = -1):
        """softmax(z)_c = e^{z_c} / Σ_c' e^{z_c'}; backward s ⊙ (g − Σ g ⊙ s)."""
        xp = self.xp
        e = xp.exp(self.data - self.data.max(axis=axis, keepdims=True))
        out = self._new(e / e.sum(axis=axis, keepdims=True), (self,), "softmax")

        def _backward():
            s, g = out.data, out.grad
            self.grad += s * (g - (g * s).sum(axis=axis, keepdims=True))

        out._backward = _backward
        return out

    # -- fused losses on logits (numerically stable; per example, no reduction) ---------
    def bce_with_logits(self, y):
        """Binary cross-entropy per element from logits z and targets y ∈ [0, 1].

        L = −[y log σ(z) + (1−y) log(1−σ(z))] = max(z,0) − z·y + log(1 + e^{−|z|});
        ∂L/∂z = σ(z) − y. (Same as ``torch.nn.BCEWithLogitsLoss(reduction="none")``.)
        """
        xp = self.xp
        z, y = self.data, xp.asarray(y, dtype=self.data.dtype)
        out = self._new(xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z))), (self,), "bce")

        def _backward():
            e = xp.exp(-xp.abs(z))
            sigma = xp.where(z >= 0, 1, e) / (1 + e)
            self.grad += (sigma - y) * out.grad

        out._backward = _backward
        return out

    def cross_entropy_with_logits(self, y):
        """Softmax + cross-entropy per example from logits z of shape (N, C).

        ``y`` is integer class indices (N,) or target probabilities / one-hot (N, C).
        L_i = −Σ_c y_ic log softmax(z_i)_c = logsumexp(z_i) − ⟨y_i, z_i⟩ (for Σ_c y_ic = 1);
        ∂L_i/∂z_i = softmax(z_i) − y_i.
        """
        xp = self.xp
        z = self.data
        y = xp.asarray(y)
        if y.ndim == 1:  # class indices -> one-hot
            y = xp.eye(z.shape[-1], dtype=z.dtype)[y.astype(np.int64)]
        y = y.astype(z.dtype, copy=False)
        shifted = z - z.max(axis=-1, keepdims=True)
        log_softmax = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
        out = self._new(-(y * log_softmax).sum(axis=-1), (self,), "cross_entropy")

        def _backward():
            softmax = xp.exp(log_softmax)
            self.grad += (softmax * y.sum(axis=-1, keepdims=True) - y) * out.grad[..., None]

        out._backward = _backward
        return out

    # -- set pooling (DeepSets) ---------------------------------------------------------
    def sum_pool(self, mask=None, axis: int = 1, mean: bool = False):
        """Pool over the set axis of a padded (N, k, h) tensor: Σ_j m_j x_j (or its mean).

        ``mask`` (N, k) is 1 for real objects and 0 for padding, so padded slots contribute
        nothing; ``mean=True`` divides by the number of real objects (at least 1).
        """
        xp = self.xp
        axis = axis % self.ndim
        m = xp.ones(self.shape[: axis + 1], dtype=self.data.dtype) if mask is None else xp.asarray(mask, dtype=self.data.dtype)
        m = m.reshape(m.shape + (1,) * (self.ndim - m.ndim))  # (N, k) -> (N, k, 1)
        if mean:
            m = m / xp.maximum(m.sum(axis=axis, keepdims=True), 1)
        out = self._new((self.data * m).sum(axis=axis), (self,), "sum_pool")

        def _backward():
            self.grad += m * xp.expand_dims(out.grad, axis)

        out._backward = _backward
        return out

    # -- derived ops (no backward of their own) -----------------------------------------
    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-self._wrap(other))

    def __truediv__(self, other):
        return self * self._wrap(other) ** -1

    def __radd__(self, other):
        return self + other

    def __rsub__(self, other):
        return self._wrap(other) - self

    def __rmul__(self, other):
        return self * other

    def __rtruediv__(self, other):
        return self._wrap(other) / self

    def __rmatmul__(self, other):
        return self._wrap(other) @ self

    def mean(self, axis=None, keepdims: bool = False):
        n = self.data.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / n)

    # -- the chain rule -----------------------------------------------------------------
    def backward(self, grad=None, *, retain_graph: bool = False):
        """Backpropagate from this node: fill ``.grad`` of every node that requires it.

        ``grad`` is ∂Q/∂self (default ones, i.e. ``self`` is the loss Q). Gradients are
        *accumulated*: call ``zero_grad()`` on the parameters between steps.

        Afterwards the graph is released, as in PyTorch (``retain_graph=True`` keeps it for a
        second ``backward``): each node's ``_backward`` closure refers back to the node, a
        reference cycle that would otherwise keep every activation of every step alive until
        Python's cycle collector happens to run (gigabytes for a DeepSets over 100 objects).
        """
        topo = _topological_order(self)
        for node in topo:
            if node.grad is None or node._prev:  # leaves accumulate; an operation's output starts afresh
                node.grad = 0  # the first ``+=`` turns it into a fresh array of the right shape
        seed = self.xp.ones_like(self.data) if grad is None else self.xp.asarray(grad, dtype=self.data.dtype)
        self.grad += seed
        for node in reversed(topo):
            node._backward()
        if not retain_graph:
            self.release_graph()

    def release_graph(self):
        """Forget how this tensor was computed: every operation node behind it drops its
        ``_backward`` closure and its edges (leaves and their ``.grad`` are untouched).

        The closures refer back to their nodes, so a graph that is never released is freed
        only when Python's cycle collector runs; inference calls this after each chunk.
        """
        stack = [self]
        while stack:
            node = stack.pop()
            if node._prev:  # an operation's output, not a leaf
                stack.extend(node._prev)
                node._backward = _no_backward
                node._prev = ()

    def zero_grad(self):
        self.grad = None

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array."""
        return to_numpy(self.data)


def _topological_order(root) -> list:
    """The nodes behind ``root`` that require a gradient, each after the nodes it depends on.

    A depth-first post-order walk, written with an explicit stack: a recursive inner function
    would refer to itself through its closure and keep the whole list (every activation) alive
    in a reference cycle after ``backward`` returns.
    """
    topo, visited, stack = [], set(), [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            topo.append(node)
            continue
        if node in visited or not node.requires_grad:
            continue
        visited.add(node)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node._prev))
    return topo


def _no_backward():
    """The ``_backward`` of a leaf, and of a node whose graph was released."""


# ----------------------------------------------------------------------------- checking
def numerical_grad(f, x: Tensor, h: float = 1e-6):
    """Central finite differences ∂f/∂x ≈ [f(x + h) − f(x − h)] / 2h, element by element.

    ``f`` is called without arguments and must return a scalar Tensor that depends on
    ``x.data`` (which is perturbed in place and restored). Use float64.
    """
    xp = x.xp
    grad = xp.zeros_like(x.data)
    for i in np.ndindex(*x.shape):
        old = x.data[i].copy()
        x.data[i] = old + h
        f_plus = float(f().data)
        x.data[i] = old - h
        f_minus = float(f().data)
        x.data[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(a, b) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖): the measure used for every gradient check (0 if both are 0)."""
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0
