"""Turn a task's file references into local ROOT paths.

A reference is a path or glob (relative to the task file), ``{generated: NAME, events: N, seed: S}``
(made with ``hepml data generate`` on first use and cached under ``$HEPML_DATA/generated``), or
``{download: NAME}`` (a verified download from the registry, see ``hepml data list``).
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

from ..errors import InputFileError
from ..paths import data_home


def generated_path(name: str, events: int, seed: int) -> Path:
    """Where the cached generated sample for (name, events, seed) lives."""
    return data_home() / "generated" / f"{name}_n{events}_s{seed}.root"


def ensure_generated(name: str, events: int, seed: int, *, workers: int | None = None) -> Path:
    """The cached generated sample, generating it first if it is not there yet."""
    path = generated_path(name, events, seed)
    if not path.exists():
        import os

        from data_download.generators import generate

        print(f"hepml: generating {name} ({events} examples, seed {seed}) into {path} (first use, cached)", file=sys.stderr)
        workers = workers or max(1, min(4, os.cpu_count() or 1))
        generate(name, events=events, seed=seed, out=path, workers=workers, progress=sys.stderr.isatty())
    return path


def resolve_files(refs, base_dir) -> list[Path]:
    """Expand every reference into existing local paths (sorted within each glob, order kept)."""
    from .task_config import DownloadRef, GeneratedRef

    out: list[Path] = []
    for ref in refs:
        if isinstance(ref, GeneratedRef):
            out.append(ensure_generated(ref.generated, ref.events, ref.seed))
        elif isinstance(ref, DownloadRef):
            from data_download.downloads import dataset_files

            out.extend(Path(p) for p in dataset_files(ref.download))
        else:
            pattern = Path(ref).expanduser()
            if not pattern.is_absolute():
                pattern = Path(base_dir) / pattern
            if glob.has_magic(str(pattern)):
                matches = sorted(Path(p) for p in glob.glob(str(pattern)))
                if not matches:
                    raise InputFileError(f"no file matches {ref!r} (looked in {pattern.parent})", "check the glob pattern and folder")
                out.extend(matches)
            else:
                if not pattern.exists():
                    raise InputFileError(
                        f"file not found: {pattern}", "check the path (relative paths are relative to the task file)"
                    )
                out.append(pattern)
    return out
