"""The task definition: what to read, how to label it, and what the features are.

A task is a YAML file (under ``tasks/`` or anywhere, given by path). It is validated here, before any
ROOT file is opened. The keys, with their defaults, are documented on :class:`TaskConfig`; a full
example lives in the README. Expressions are checked by :mod:`hepml.data.expressions` (never ``eval``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional, Union

import re

from pydantic import Field, PrivateAttr, field_validator, model_validator

from ..config import StrictModel, load_yaml, validate
from ..errors import ConfigError
from .expressions import Expression


_BRANCH_LIKE = re.compile(r"^[\w.\-/:\[\]]+$")


def check_expression(text: str, what: str) -> None:
    """Parse ``text`` now; a string that only looks like an odd branch name (``Jet.PT``) is read as-is later."""
    try:
        Expression(text, what=what)
    except Exception:
        if not _BRANCH_LIKE.match(text):
            raise


class GeneratedRef(StrictModel):
    """A Monte Carlo sample made by ``hepml data generate`` on first use, then cached."""

    generated: str
    events: int = Field(20_000, ge=1)
    seed: int = 1


class DownloadRef(StrictModel):
    """A public dataset from the download registry (``hepml data list``)."""

    download: str


FileRef = Union[str, GeneratedRef, DownloadRef]


class Sample(StrictModel):
    """One class made of whole files (labels by sample), e.g. ``signal: {files: [ttbar*.root]}``."""

    files: list[FileRef] = Field(min_length=1)
    tree: Optional[str] = None
    weight: Union[float, str] = 1.0
    selection: Optional[str] = None


class Label(StrictModel):
    """Labels from a branch or expression, mapping values to class names (order = class index)."""

    branch: str
    classes: dict[str, Union[int, float, list[Union[int, float]]]] = Field(min_length=2)
    unmapped: Literal["drop", "fail"] = "drop"

    def values(self) -> dict[str, list[float]]:
        return {name: (v if isinstance(v, list) else [v]) for name, v in self.classes.items()}


class Collection(StrictModel):
    """A jagged collection: the branches sharing ``prefix`` (default ``<name>_``), with an object selection."""

    prefix: Optional[str] = None
    selection: Optional[str] = None


class Feature(StrictModel):
    """A named derived feature: ``{name: HT, expr: "sum(Jet_pt)"}``."""

    name: str
    expr: str


class ObjectGroup(StrictModel):
    """Top-N objects of a collection as a fixed-size array: ``var * float32`` → ``N * float32``."""

    fields: list[Union[str, Feature]] = Field(min_length=1)
    max: int = Field(ge=1)
    sort_by: Optional[str] = None
    ascending: bool = False
    pad: float = 0.0
    as_: Literal["flat", "set", "both"] = Field("flat", alias="as")


class Split(StrictModel):
    """Train/validation/test split: stratified by class from ``seed``, or k-fold by event number."""

    validation: float = Field(0.2, ge=0.0, lt=1.0)
    test: float = Field(0.2, ge=0.0, lt=1.0)
    seed: int = 1
    stratify: bool = True
    kfold: Optional[int] = Field(None, ge=2)
    fold: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self):
        if self.kfold is None and self.validation + self.test >= 1.0:
            raise ValueError(f"validation + test must be < 1, got {self.validation} + {self.test}")
        if self.kfold is not None and self.fold >= self.kfold:
            raise ValueError(f"fold must be < kfold, got fold={self.fold}, kfold={self.kfold}")
        return self


class TaskConfig(StrictModel):
    """A task file. Give either ``files`` + ``label`` (labels by branch) or ``samples`` (by sample).

    ``example`` is ``event`` (one example per entry) or a collection name (one example per object:
    per-object branches flattened, per-entry branches broadcast onto the objects).
    """

    name: str
    description: str = ""
    tree: str = "Events"
    files: Optional[list[FileRef]] = None
    samples: Optional[dict[str, Sample]] = None
    label: Optional[Label] = None
    example: str = "event"
    collections: dict[str, Collection] = Field(default_factory=dict)
    selection: Optional[str] = None
    features: list[Union[str, Feature]] = Field(default_factory=list)
    objects: dict[str, ObjectGroup] = Field(default_factory=dict)
    weight: Optional[str] = None
    balance_classes: bool = False
    spectators: list[Union[str, Feature]] = Field(default_factory=list)
    event: Optional[str] = None
    split: Split = Field(default_factory=Split)
    nan: Literal["fail", "drop", "fill"] = "fail"
    nan_fill: float = 0.0
    max_entries: Optional[int] = Field(None, ge=1)
    step_size: Union[int, str] = "200 MB"
    _base_dir: str = PrivateAttr(".")

    @property
    def base_dir(self) -> Path:
        """Folder that relative file paths are resolved against (the task file's folder)."""
        return Path(self._base_dir)

    @field_validator("selection", "weight")
    @classmethod
    def _parse(cls, v, info):
        if v is not None:
            Expression(v, what=info.field_name)
        return v

    @model_validator(mode="after")
    def _check(self):
        if (self.files is None) == (self.samples is None):
            raise ValueError("give either 'files' (with 'label') or 'samples' (one class per sample), not both or neither")
        if self.files is not None and self.label is None:
            raise ValueError("'files' needs 'label: {branch: ..., classes: {...}}' (or use 'samples')")
        if self.samples is not None and self.label is not None:
            raise ValueError("'label' conflicts with 'samples': samples already label by file; remove one")
        if self.samples is not None and len(self.samples) < 2:
            raise ValueError(f"'samples' needs at least two classes, got {list(self.samples)}")
        if not self.features and not self.objects:
            raise ValueError("declare at least one entry under 'features' or 'objects'")
        if self.example != "event" and self.objects:
            raise ValueError("'objects' groups need example: event (per-object examples are already one object each)")
        for expr, what in self.expressions():
            check_expression(expr, what)
        return self

    # -- derived views ---------------------------------------------------------------------------

    @property
    def class_names(self) -> list[str]:
        return list(self.samples) if self.samples is not None else list(self.label.classes)

    def collection(self, name: str) -> Collection:
        return self.collections.get(name, Collection())

    def prefix(self, name: str) -> str:
        return self.collection(name).prefix or f"{name}_"

    def expressions(self):
        """Every (expression, description) pair in the task, for checking and branch discovery."""
        for f in self.features:
            yield (f, f"feature {f!r}") if isinstance(f, str) else (f.expr, f"feature {f.name!r}")
        for gname, g in self.objects.items():
            for f in g.fields:
                yield (f, f"objects.{gname} field {f!r}") if isinstance(f, str) else (f.expr, f"objects.{gname} field {f.name!r}")
            if g.sort_by:
                yield g.sort_by, f"objects.{gname}.sort_by"
        for s in self.spectators:
            yield (s, f"spectator {s!r}") if isinstance(s, str) else (s.expr, f"spectator {s.name!r}")
        if self.label is not None:
            yield self.label.branch, "label.branch"
        for cname, c in self.collections.items():
            if c.selection:
                yield c.selection, f"collections.{cname}.selection"
        for sname, s in (self.samples or {}).items():
            if s.selection:
                yield s.selection, f"samples.{sname}.selection"
            if isinstance(s.weight, str):
                yield s.weight, f"samples.{sname}.weight"
        if self.selection:
            yield self.selection, "selection"
        if self.weight:
            yield self.weight, "weight"


def task_search_path() -> list[Path]:
    """Folders searched for a task given by name: ``$HEPML_TASKS``, the repo's ``tasks/``, ``./tasks``."""
    dirs = [Path(p) for p in os.environ.get("HEPML_TASKS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "tasks")
    dirs.append(Path.cwd() / "tasks")
    return [d for d in dict.fromkeys(dirs)]


def available_tasks() -> dict[str, Path]:
    """Task name → file, over the search path (first wins)."""
    found: dict[str, Path] = {}
    for d in task_search_path():
        for p in sorted(d.glob("*.y*ml")) if d.is_dir() else []:
            found.setdefault(p.stem, p)
    return found


def resolve_task_path(task) -> Path:
    """A task name (``jet_flavour``) or a path to a YAML file → the file's path."""
    p = Path(task)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise ConfigError(f"task file not found: {p}", "check the path, or give a task name from `hepml tasks`")
        return p
    known = available_tasks()
    if str(task) in known:
        return known[str(task)]
    from .root_io import closest

    close = closest(str(task), known)
    hint = f"did you mean {', '.join(close)}?" if close else "known tasks: " + (", ".join(sorted(known)) or "none")
    raise ConfigError(f"unknown task {str(task)!r}", hint + " (or give the path to a task YAML)")


def load_task(task) -> TaskConfig:
    """Read and validate a task file (by name or path). Nothing is opened but the YAML itself."""
    if isinstance(task, TaskConfig):
        return task
    path = resolve_task_path(task)
    doc = load_yaml(path)
    cfg = validate(TaskConfig, doc, what="task file")
    cfg._base_dir = str(path.resolve().parent)
    return cfg


def with_generated_events(cfg: TaskConfig, events: int) -> TaskConfig:
    """A copy of ``cfg`` whose generated samples have ``events`` examples (quick vs full presets)."""
    def resize(refs):
        return [r.model_copy(update={"events": int(events)}) if isinstance(r, GeneratedRef) else r for r in refs]

    new = cfg.model_copy(deep=True)
    if new.files is not None:
        new.files = resize(new.files)
    for sample in (new.samples or {}).values():
        sample.files = resize(sample.files)
    new._base_dir = cfg._base_dir
    return new


def with_download(cfg: TaskConfig, name: str) -> TaskConfig:
    """A copy of ``cfg`` reading registry dataset ``name`` instead of its own files.

    This is how a preset made for generated jets runs unchanged on a public dataset in the same
    layout (``hepml compare top_tagging-full --data top_tagging``). Only tasks that label by
    branch have one file list to replace; a task labelled by sample is refused.
    """
    if cfg.samples is not None:
        raise ConfigError(
            f"task {cfg.name!r} labels examples by sample ({', '.join(cfg.samples)}), so --data {name} "
            "cannot stand in for its files",
            "point each sample's files at the dataset in a copy of the task file",
        )
    from data_download.downloads import load_registry

    registry = load_registry()
    if name not in registry:
        from .root_io import closest

        close = closest(name, sorted(registry))
        raise ConfigError(
            f"unknown dataset {name!r} for --data" + (f"; did you mean {close[0]!r}?" if close else ""),
            "`hepml data list` shows the registry's datasets",
        )
    new = cfg.model_copy(deep=True)
    new.files = [DownloadRef(download=name)]
    new._base_dir = cfg._base_dir
    return new


def task_from_dict(data: dict, *, base_dir=".", source: str = "<task>") -> TaskConfig:
    """Build a task from a Python dict (for notebooks and tests), with the same validation."""
    from ..config import YamlDocument

    cfg = validate(TaskConfig, YamlDocument(data, {}, source), what="task")
    cfg._base_dir = str(Path(base_dir).resolve())
    return cfg
