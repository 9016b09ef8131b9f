"""hepml: one model, four frameworks (NumPy core, PyTorch, Keras, XGBoost), on ROOT data.

Importing ``hepml`` is cheap: frameworks are imported only when a subcommand or an
adapter needs them, so ``hepml --help`` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_task", "load_dataset"]


def __getattr__(name):
    # Lazy re-exports keep `import hepml` free of numpy/uproot until they are used.
    if name in ("load_task", "load_dataset"):
        from . import data

        return getattr(data, name)
    if name == "Classifier":
        from .estimator import Classifier

        return Classifier
    raise AttributeError(f"module 'hepml' has no attribute {name!r}")
