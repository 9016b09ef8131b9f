"""The course reproduced: every exercise of the lecture "Machine Learning: short introduction
(trees and NN)" as a module with ``run(out_dir) -> dict``.

Each module computes its numbers, checks the lecture's claim (raising
:class:`~hepml.course._util.CourseCheckError` if it is not reproduced), writes its plots as
PNG and returns the numbers. ``run(name, out_dir)`` puts them under ``out_dir/name/`` with a
``results.json``; ``hepml course list`` / ``hepml course run NAME|all`` are the command line,
``docs/course/*.ipynb`` the notebooks.

Modules are imported only when their exercise runs (PyTorch and Keras are slow to import).
"""

from __future__ import annotations

import difflib
import importlib
import json
import time
from pathlib import Path

from ..atomic import write_text
from ..errors import ConfigError

__all__ = ["EXERCISES", "list_exercises", "load", "run", "run_all"]

#: name -> (module, one-line title), in lecture order.
EXERCISES = {
    "backprop": ("hepml.course.backprop",
                 "Worked backprop example (backup slide): core autograd, PyTorch and Keras side by side"),
    "sigmoid_chain_rule": ("hepml.course.sigmoid_chain_rule",
                           "Sigmoid derivative by the chain rule through f(g(h(p(x)))), checked numerically"),
    "linear_models": ("hepml.course.linear_models",
                      "Linear regression and linear classification: the slides' Q(theta), minimised"),
    "nonlinearity": ("hepml.course.nonlinearity",
                     "Stacked linear layers stay linear; a nonlinearity g(Wx) separates what they cannot"),
    "tree_growing": ("hepml.course.tree_growing",
                     "Growing a decision tree: boundaries for depth 1..N and the piecewise-constant f(x)"),
    "ensembles": ("hepml.course.ensembles",
                  "Single tree vs random forest vs gradient boosting, core and libraries side by side"),
    "overfitting": ("hepml.course.overfitting",
                    "Under- and over-fitting: train and validation loss versus capacity"),
    "keras_snippets": ("hepml.course.keras_snippets",
                       "The slides' Keras snippets in Keras 3, each next to PyTorch and the core"),
    "particle_id": ("hepml.course.particle_id",
                    "HEP classification from the backup slides: kaon vs pion identification"),
}


def _check_name(name) -> str:
    if not isinstance(name, str) or name not in EXERCISES:
        close = difflib.get_close_matches(str(name), list(EXERCISES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown exercise {name!r}", f"{hint}choose one of: {', '.join(EXERCISES)} (or 'all')")
    return name


def list_exercises() -> list[tuple[str, str]]:
    """``(name, title)`` of every exercise, in lecture order."""
    return [(name, title) for name, (_, title) in EXERCISES.items()]


def load(name: str):
    """The exercise's module (imported on first use)."""
    return importlib.import_module(EXERCISES[_check_name(name)][0])


def run(name: str, out_dir="course_output") -> dict:
    """Run one exercise into ``out_dir/name/``; returns its numbers (also written to ``results.json``).

    The returned dict has the exercise's own keys plus ``name``, ``seconds`` (wall time) and
    ``plots`` (paths of the PNGs written).
    """
    from ._util import plain

    module = load(name)
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = module.run(folder)
    results = plain({"name": name, **results, "seconds": round(time.perf_counter() - t0, 3)})
    results.setdefault("plots", [])
    write_text(folder / "results.json", json.dumps(results, indent=1, allow_nan=True) + "\n")
    return results


def run_all(out_dir="course_output") -> dict:
    """Run every exercise in lecture order; ``{name: results}``."""
    return {name: run(name, out_dir) for name in EXERCISES}
