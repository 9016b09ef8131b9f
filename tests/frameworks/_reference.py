"""Framework-free references the adapter tests compare against."""

from __future__ import annotations

import numpy as np


def np_transformer(w, spec, S, M, *, ln_epsilon: float = 1e-5):
    """The pre-LN encoder of the naming scheme (hepml/models/__init__.py) written in NumPy."""
    def ln(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + ln_epsilon) * w[p + "/gamma"] + w[p + "/beta"]

    def dense(x, p):
        return x @ w[p + "/kernel"] + w[p + "/bias"]

    n, k, H = S.shape[0], S.shape[1], spec.heads
    h = dense(S, "embed")
    for blk in range(spec.layers):
        p = f"block_{blk}/"
        a = ln(h, p + "ln1")
        q, kk, v = (dense(a, p + f"attn/{x}").reshape(n, k, H, -1).transpose(0, 2, 1, 3) for x in "qkv")
        s = q @ kk.transpose(0, 1, 3, 2) / np.sqrt(spec.dim // H)
        s = np.where(M[:, None, None, :] > 0, s, -np.inf)
        att = np.exp(s - s.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        h = h + dense((att @ v).transpose(0, 2, 1, 3).reshape(n, k, spec.dim), p + "attn/o")
        h = h + dense(np.maximum(dense(ln(h, p + "ln2"), p + "ff/dense_0"), 0), p + "ff/dense_1")
    h = ln(h, "final_ln")
    z = (h * M[..., None]).sum(1) / np.maximum(M.sum(1, keepdims=True), 1)
    for i in range(len(spec.head) + 1):
        z = dense(z, f"head/dense_{i}")
        z = np.maximum(z, 0) if i < len(spec.head) else z
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
