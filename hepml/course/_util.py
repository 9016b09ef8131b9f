"""Private helpers shared by the course exercises: figures, checks, framework imports.

Figures are :class:`matplotlib.figure.Figure` objects drawn under the mplhep CMS style inside a
``style context`` (no pyplot, no global state changed in the caller's process, so a notebook
or another plot is unaffected) and written as PNG atomically (:func:`save_png`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import FrameworkError

__all__ = ["CourseCheckError", "check", "figure", "save_png", "plain", "import_keras", "import_torch", "keras_floatx",
           "decision_grid", "draw_boundary"]


class CourseCheckError(AssertionError):
    """An exercise's own invariant failed: the lecture's claim was not reproduced (a bug, not a user mistake)."""


def check(ok, what: str) -> None:
    """Raise :class:`CourseCheckError` with ``what`` unless ``ok`` (unlike ``assert``, never skipped by -O)."""
    if not bool(ok):
        raise CourseCheckError(what)


@contextlib.contextmanager
def _style():
    import matplotlib.style
    import mplhep

    with matplotlib.style.context(mplhep.style.CMS):
        yield


@contextlib.contextmanager
def figure(path, *, ncols: int = 1, nrows: int = 1, size=(8.0, 6.5), **subplot_kw):
    """Yield ``(fig, axes)`` styled as CMS; on leaving the block, write the PNG to ``path`` atomically.

    ``axes`` is a single Axes for one panel, else a flat array; ``size`` is per panel (inches).
    """
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw).ravel()
        yield fig, (axes[0] if axes.size == 1 else axes)
        save_png(fig, path)


def save_png(fig, path) -> str:
    """Write ``fig`` to ``path`` (PNG) through a temporary file renamed into place; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=72)
    return str(path)


def plain(obj):
    """NumPy scalars/arrays → Python floats/ints/lists, recursively, so results can go to JSON."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def import_torch():
    """``torch``, or a FrameworkError saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise FrameworkError(f"this exercise needs PyTorch, which is not installed ({exc})",
                             "install it: pip install 'hepml[torch]'") from None
    return torch


def import_keras():
    """``(keras, tensorflow)`` with the TensorFlow backend (the exercises use ``tf.GradientTape``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up banner quiet
    try:
        import keras
    except ImportError as exc:
        raise FrameworkError(f"this exercise needs Keras 3, which is not installed ({exc})",
                             "install it: pip install 'hepml[keras]'") from None
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise FrameworkError(f"this exercise needs the Keras TensorFlow backend; received KERAS_BACKEND={backend!r}",
                             "run with KERAS_BACKEND=tensorflow")
    import tensorflow as tf

    return keras, tf


@contextlib.contextmanager
def keras_floatx(dtype: str = "float64"):
    """Run Keras with ``floatx=dtype`` (weights, optimizer variables, learning rate), then restore it.

    Keras stores even the learning rate in ``floatx``: with the default float32, η = 0.1 is
    0.100000001490116..., and a float64 weight update is then no longer the slide's number.
    The global dtype *policy* (what new layers compute in) is fixed from floatx the first time a
    layer is made and not updated by ``set_floatx`` afterwards, so it is set and restored too.
    """
    keras, _ = import_keras()
    old_floatx, old_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield keras
    finally:
        keras.config.set_floatx(old_floatx)
        keras.config.set_dtype_policy(old_policy)


def decision_grid(X, n: int = 150, pad: float = 0.3):
    """A regular grid covering the 2-D points ``X``: ``(xx, yy, points)`` for decision-boundary maps."""
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def draw_boundary(ax, xx, yy, proba, X, y) -> None:
    """p(class 1 | x) on the grid as filled contours (0.5 is the decision boundary) and the points on top."""
    ax.contourf(xx, yy, proba.reshape(xx.shape), levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35)
    ax.contour(xx, yy, proba.reshape(xx.shape), levels=[0.5], colors="k", linewidths=1.5)
    ax.plot(X[y == 1, 0], X[y == 1, 1], "o", ms=4, mfc="C3", mec="k", mew=0.4, label="class 1")
    ax.plot(X[y == 0, 0], X[y == 0, 1], "s", ms=4, mfc="C0", mec="k", mew=0.4, label="class 0")
