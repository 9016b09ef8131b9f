"""ROOT files → training arrays, driven by a declarative task file.

``load_dataset("jet_flavour")`` reads a task (name under ``tasks/`` or a YAML path) into a
:class:`Dataset`; ``inspect_file(path)`` lists trees and branches; ``Standardizer`` is fitted on the
training split only and saved with the model.
"""

from .dataset import Dataset, Split, make_split
from .preprocessing import Standardizer
from .root_io import inspect_file
from .task import iterate_chunks, load_dataset
from .task_config import TaskConfig, available_tasks, load_task, task_from_dict

__all__ = [
    "Dataset",
    "Split",
    "Standardizer",
    "TaskConfig",
    "available_tasks",
    "inspect_file",
    "iterate_chunks",
    "load_dataset",
    "load_task",
    "make_split",
    "task_from_dict",
]
