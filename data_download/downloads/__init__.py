"""Public datasets: a registry, verified resumable downloads, and converters to hepml's ROOT layouts.

Analysts move from generated samples to the public datasets their papers cite. This package
fetches them safely and makes them readable by the same task files:

- ``registry.yaml`` lists each dataset's files with URL(s) (mirrors), published size and
  checksum (md5 / sha256 / adler32, exactly as published; an entry whose checksum we could not
  confirm says so), licence, citation and, where the format is not ROOT, a converter.
- :func:`download` streams every file with :func:`~data_download.downloads.fetch.fetch`
  (progress bar, HTTP Range resume, checksum check, rename into place only on a match), then
  runs the converter, and returns the main ROOT path.
- :func:`dataset_path` is what the data layer calls for ``files: [{download: NAME}]`` in a task
  file: the local, verified (and converted) main file, or a one-line :class:`DownloadError`
  telling the user which command to run.
- :func:`list_datasets` gives ``hepml data list`` its rows.

Files land in ``$HEPML_DATA/downloads/<name>/`` (``hepml.paths.data_home()``: ``$HEPML_DATA``,
else the user cache dir), or ``<dest>/<name>/`` with ``--dest``. ``HEPML_DOWNLOAD_BASEURL``
(or ``base_url=``) replaces every registry URL with ``<base>/<name>/<file>``: a site mirror, or
the tests' local HTTP server.

Example
-------
>>> from data_download.downloads import download, dataset_path      # doctest: +SKIP
>>> download("top_tagging", progress=True)                           # doctest: +SKIP
PosixPath('/home/me/.cache/hepml/downloads/top_tagging/train.root')
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from hepml.atomic import write_text
from hepml.errors import ConfigError, DownloadError
from hepml.paths import data_home

from . import convert as _convert
from .fetch import (CHECKSUM_KINDS, ensure_writable, fetch, part_path, read_stamp, stamp_path,
                    verify_file, write_stamp)

__all__ = [
    "REGISTRY_PATH",
    "DatasetSpec",
    "FileSpec",
    "load_registry",
    "list_datasets",
    "download",
    "dataset_path",
    "dataset_files",
    "dataset_folder",
    "fetch",
]

REGISTRY_PATH = Path(__file__).with_name("registry.yaml")
BASEURL_ENV = "HEPML_DOWNLOAD_BASEURL"
CONVERTED_STAMP = ".converted.json"

STATUS_VERIFIED = "verified"
STATUS_UNVERIFIED = "downloaded, not verified"
STATUS_PARTIAL = "partial"
STATUS_MISSING = "missing"

_HEX_LENGTH = {"md5": 32, "sha256": 64, "adler32": 8}
_DATASET_KEYS = {"title", "description", "licence", "licence_source", "citation", "homepage",
                 "convert", "main", "checksum_source", "files"}
_FILE_KEYS = {"name", "urls", "size", "md5", "sha256", "adler32", "checksum_note", "entries"}


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset, as published."""

    name: str
    urls: Tuple[str, ...]
    size: Optional[int] = None
    md5: Optional[str] = None
    sha256: Optional[str] = None
    adler32: Optional[str] = None
    checksum_note: Optional[str] = None
    entries: Optional[Tuple[str, int]] = None

    @property
    def checksums(self) -> Dict[str, str]:
        return {k: getattr(self, k) for k in CHECKSUM_KINDS if getattr(self, k)}


@dataclass(frozen=True)
class DatasetSpec:
    """One registry entry."""

    name: str
    title: str
    description: str
    licence: str
    citation: str
    files: Tuple[FileSpec, ...]
    main: str
    homepage: str = ""
    licence_source: str = ""
    convert: Optional[str] = None
    checksum_source: str = ""

    @property
    def size(self) -> Optional[int]:
        """Total published size in bytes, or ``None`` if any file's size is unpublished."""
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else int(sum(sizes))

    @property
    def checksum_kinds(self) -> str:
        """``'md5'``, ``'sha256+md5'``... or ``'not published'`` (some file has none)."""
        kinds = [k for k in CHECKSUM_KINDS if all(getattr(f, k) for f in self.files)]
        if all(f.checksums for f in self.files) and kinds:
            return "+".join(kinds)
        if any(f.checksums for f in self.files):
            return "partly published"
        return "not published"


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


def _bad(where: str, what: str, fix: str) -> ConfigError:
    return ConfigError(f"registry {where}: {what}", fix)


def _unknown_keys(where: str, got, allowed) -> None:
    for key in got:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise _bad(where, f"unknown key '{key}'{hint}", f"allowed keys: {', '.join(sorted(allowed))}")


def _parse_file(ds: str, i: int, raw) -> FileSpec:
    where = f"{ds}.files[{i}]"
    if not isinstance(raw, dict):
        raise _bad(where, f"expected a mapping, got {type(raw).__name__}", "write `- name: ...` with `urls:`")
    _unknown_keys(where, raw, _FILE_KEYS)
    name = raw.get("name")
    if not name or "/" in str(name) or str(name).startswith("."):
        raise _bad(where, f"file name {name!r} is missing or not a plain file name", "give `name: file.ext`")
    urls = raw.get("urls")
    if isinstance(urls, str):
        urls = [urls]
    if not urls or not all(isinstance(u, str) and u.startswith(("https://", "http://")) for u in urls):
        raise _bad(where, f"urls must be a list of http(s) URLs, got {urls!r}", "add the published download URL")
    sums = {}
    for kind, length in _HEX_LENGTH.items():
        value = raw.get(kind)
        if value is None:
            continue
        if isinstance(value, (int, float)):  # YAML reads all-digit hex (or 0-led octal) as a number
            raise _bad(where, f"{kind} {value!r} was read as a number, not text",
                       f'quote it exactly as published: {kind}: "..."')
        value = str(value).strip().lower()
        if kind == "adler32" and value.startswith("adler32:"):
            value = value[len("adler32:"):]
        if len(value) != length or any(c not in "0123456789abcdef" for c in value):
            raise _bad(where, f"{kind} {raw.get(kind)!r} is not {length} hex digits",
                       "copy the checksum exactly as published")
        sums[kind] = value
    note = raw.get("checksum_note")
    if not sums and not note:
        raise _bad(where, "no checksum and no checksum_note",
                   "copy the published checksum, or say in checksum_note why there is none")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or size <= 0):
        raise _bad(where, f"size {size!r} is not a positive number of bytes", "copy the published size in bytes")
    entries = raw.get("entries")
    if entries is not None:
        if not (isinstance(entries, dict) and set(entries) == {"tree", "count"}
                and isinstance(entries["count"], int) and entries["count"] > 0):
            raise _bad(where, f"entries {entries!r} is not {{tree: NAME, count: N}}", "write `entries: {tree: Events, count: 1000}`")
        entries = (str(entries["tree"]), int(entries["count"]))
    return FileSpec(name=str(name), urls=tuple(urls), size=size, checksum_note=note, entries=entries, **sums)


def _parse_dataset(name: str, raw) -> DatasetSpec:
    if not isinstance(raw, dict):
        raise _bad(name, f"expected a mapping, got {type(raw).__name__}", "see the comments at the top of registry.yaml")
    _unknown_keys(name, raw, _DATASET_KEYS)
    for key in ("title", "description", "licence", "citation", "files"):
        if not raw.get(key):
            raise _bad(name, f"'{key}' is missing", f"add `{key}:` to the entry")
    files = tuple(_parse_file(name, i, f) for i, f in enumerate(raw["files"]))
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise _bad(name, f"file names repeat: {names}", "give each file a distinct name")
    main = raw.get("main") or files[0].name
    if main not in names:
        raise _bad(name, f"main file '{main}' is not one of {names}", "set `main:` to one of the file names")
    convert = raw.get("convert")
    if convert is not None and convert not in _convert.CONVERTERS:
        close = difflib.get_close_matches(str(convert), list(_convert.CONVERTERS), n=1)
        raise _bad(name, f"unknown converter '{convert}'" + (f"; did you mean '{close[0]}'?" if close else ""),
                   f"use one of: {', '.join(_convert.CONVERTERS)}")
    return DatasetSpec(
        name=name,
        title=str(raw["title"]).strip(),
        description=" ".join(str(raw["description"]).split()),
        licence=str(raw["licence"]).strip(),
        licence_source=str(raw.get("licence_source") or ""),
        citation=" ".join(str(raw["citation"]).split()),
        homepage=str(raw.get("homepage") or ""),
        convert=convert,
        main=main,
        checksum_source=" ".join(str(raw.get("checksum_source") or "").split()),
        files=files,
    )


def load_registry(path=None) -> Dict[str, DatasetSpec]:
    """Read and validate a registry YAML (default: the one shipped with hepml).

    Raises :class:`ConfigError` naming the entry and key for any malformed field.
    """
    path = Path(path) if path is not None else REGISTRY_PATH
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read registry {path} ({exc.strerror})", "check the path") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"registry {path} is not valid YAML ({exc})".replace("\n", " "),
                          "fix the YAML syntax") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("datasets"), dict):
        raise ConfigError(f"registry {path} has no 'datasets' mapping", "start the file with `datasets:`")
    return {name: _parse_dataset(name, entry) for name, entry in raw["datasets"].items()}


def _registry(registry) -> Dict[str, DatasetSpec]:
    if registry is None:
        return load_registry()
    if isinstance(registry, dict):
        return registry
    return load_registry(registry)


def _closest_first(name: str, names) -> List[str]:
    key = str(name).lower()
    return sorted(names, key=lambda n: (-difflib.SequenceMatcher(None, key, n.lower()).ratio(), n))


def _spec(name: str, registry) -> DatasetSpec:
    reg = _registry(registry)
    if name in reg:
        return reg[name]
    ordered = _closest_first(name, reg)
    raise ConfigError(
        f"unknown dataset '{name}'; known (closest first): {', '.join(ordered)}",
        "use one of these names (see `hepml data list`)",
    )


# ---------------------------------------------------------------------------------------------
# local state
# ---------------------------------------------------------------------------------------------


def dataset_folder(name_or_spec, dest=None, *, registry=None) -> Path:
    """Where a dataset's files live: ``<dest or $HEPML_DATA/downloads>/<name>``."""
    spec = name_or_spec if isinstance(name_or_spec, DatasetSpec) else _spec(name_or_spec, registry)
    root = Path(dest).expanduser() if dest is not None else data_home() / "downloads"
    return root / spec.name


def _file_state(path: Path) -> str:
    if path.is_file():
        stamp = read_stamp(path)
        if stamp is not None and stamp.get("verified_by"):
            return "verified"
        return "downloaded"
    if part_path(path).is_file():
        return "partial"
    return "missing"


def _read_conversion(spec: DatasetSpec, folder: Path) -> Optional[dict]:
    """The conversion stamp when every output still exists and the sources are unchanged."""
    stamp = folder / CONVERTED_STAMP
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if data.get("converter") != spec.convert:
        return None
    for fname, size in data.get("sources", {}).items():
        src = folder / fname
        if not src.is_file() or src.stat().st_size != size:
            return None
    outputs = [folder / p for p in data.get("outputs", [])] + [folder / data.get("main", "")]
    if not data.get("outputs") or not all(p.exists() for p in outputs):
        return None
    return data


def _status(spec: DatasetSpec, folder: Path) -> str:
    states = [_file_state(folder / f.name) for f in spec.files]
    if all(s == "missing" for s in states):
        return STATUS_MISSING
    if any(s in ("missing", "partial") for s in states):
        return STATUS_PARTIAL
    if spec.convert and _read_conversion(spec, folder) is None:
        return STATUS_PARTIAL
    return STATUS_VERIFIED if all(s == "verified" for s in states) else STATUS_UNVERIFIED


def _main_path(spec: DatasetSpec, folder: Path) -> Path:
    if spec.convert:
        conv = _read_conversion(spec, folder)
        if conv is not None:
            return folder / conv["main"]
        return _convert.converted_name(spec.convert, folder, folder / spec.main)
    return folder / spec.main


def list_datasets(*, registry=None, dest=None) -> List[dict]:
    """One row per registry entry for ``hepml data list``.

    Keys: ``name, title, size`` (bytes, ``None`` if unpublished), ``licence, status``
    (``verified`` / ``downloaded, not verified`` / ``partial`` / ``missing``), ``path`` (the main
    file, where it is or will be), ``description, citation, homepage, files`` (count),
    ``checksum`` (which published checksums exist, or ``not published``).
    """
    rows = []
    for spec in _registry(registry).values():
        folder = dataset_folder(spec, dest)
        rows.append({
            "name": spec.name,
            "title": spec.title,
            "size": spec.size,
            "licence": spec.licence,
            "status": _status(spec, folder),
            "path": str(_main_path(spec, folder)),
            "description": spec.description,
            "citation": spec.citation,
            "homepage": spec.homepage,
            "files": len(spec.files),
            "checksum": spec.checksum_kinds,
        })
    return rows


# ---------------------------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------------------------


def _urls(spec: DatasetSpec, f: FileSpec, base_url: Optional[str]) -> List[str]:
    base = base_url if base_url is not None else os.environ.get(BASEURL_ENV)
    if base:
        return [f"{base.rstrip('/')}/{spec.name}/{f.name}"]
    return list(f.urls)


def _check_entries(path: Path, f: FileSpec, label: str) -> None:
    """Compare a ROOT file's tree entry count with the published one; delete the file if it differs."""
    if f.entries is None:
        return
    tree, count = f.entries
    stamp = read_stamp(path) or {}
    if stamp.get("entries") == count:
        return
    import uproot

    try:
        with uproot.open(path) as root_file:
            got = root_file[tree].num_entries
    except Exception as exc:  # noqa: BLE001 - any failure to read means a bad file
        got = f"unreadable ({exc.__class__.__name__})"
    if got != count:
        path.unlink()
        stamp_path(path).unlink(missing_ok=True)
        raise DownloadError(
            f"{label}: tree '{tree}' has {got} entries, expected {count} ({path.name} deleted)",
            "the file is not the published one; run the download again and report it if it persists",
        )
    stamp["entries"] = count
    write_stamp(path, stamp)


def _convert_dataset(spec: DatasetSpec, folder: Path, local: List[Path]) -> Path:
    conv = _read_conversion(spec, folder)
    if conv is not None:
        return folder / conv["main"]
    main, outputs = _convert.run_converter(spec.convert, local, folder, folder / spec.main)
    record = {
        "converter": spec.convert,
        "main": str(main.relative_to(folder)),
        "outputs": [str(p.relative_to(folder)) for p in outputs],
        "sources": {p.name: p.stat().st_size for p in local},
    }
    write_text(folder / CONVERTED_STAMP, json.dumps(record, indent=1) + "\n")
    return main


def download(name: str, dest=None, progress: bool = False, timeout: float = 30.0, *,
             registry=None, base_url: Optional[str] = None, retries: int = 2) -> Path:
    """Download (resumably, verified) and convert a registry dataset; return its main path.

    The returned path is what a task file gets for ``files: [{download: NAME}]``: the converted
    ROOT file of the registry's ``main`` file when a converter applies (for ``untar`` datasets,
    the extracted folder; :func:`dataset_files` lists its ROOT files), else the ``main`` file
    itself. Files already downloaded and verified are not fetched again.

    Raises :class:`ConfigError` for an unknown name (closest names first) and
    :class:`DownloadError` for HTTP errors, timeouts, checksum mismatches and unwritable folders.
    """
    spec = _spec(name, registry)
    folder = ensure_writable(dataset_folder(spec, dest))
    local = []
    for f in spec.files:
        label = f"{spec.name}/{f.name}"
        path = fetch(_urls(spec, f, base_url), folder / f.name, sha256=f.sha256, md5=f.md5,
                     adler32=f.adler32, size=f.size, timeout=timeout, progress=progress,
                     retries=retries, label=label)
        _check_entries(path, f, label)
        local.append(path)
    if spec.convert:
        return _convert_dataset(spec, folder, local)
    return folder / spec.main


def _require_local(spec: DatasetSpec, folder: Path) -> None:
    status = _status(spec, folder)
    if status == STATUS_MISSING:
        raise DownloadError(f"dataset {spec.name} is not downloaded",
                            f"run `hepml data download {spec.name}`")
    if status == STATUS_PARTIAL:
        raise DownloadError(f"dataset {spec.name} is only partly downloaded (or not converted) in {folder}",
                            f"run `hepml data download {spec.name}` to finish it")
    # a file placed by hand, without our stamp: verify it now against the published checksum
    for f in spec.files:
        path = folder / f.name
        if f.checksums and read_stamp(path) is None:
            write_stamp(path, verify_file(path, size=f.size, label=f"{spec.name}/{f.name}", **f.checksums))


def dataset_path(name: str, *, dest=None, registry=None) -> Path:
    """The local, verified (and converted) main file of registry dataset ``name``.

    Raises :class:`DownloadError` ``dataset X is not downloaded; run `hepml data download X```
    when it is missing or incomplete, and :class:`ConfigError` for an unknown name.
    """
    spec = _spec(name, registry)
    folder = dataset_folder(spec, dest)
    _require_local(spec, folder)
    return _main_path(spec, folder)


def dataset_files(name: str, *, dest=None, registry=None) -> List[Path]:
    """Every local ROOT file of dataset ``name`` (all splits / all extracted files), main first."""
    spec = _spec(name, registry)
    folder = dataset_folder(spec, dest)
    _require_local(spec, folder)
    main = _main_path(spec, folder)
    if spec.convert:
        outputs = [folder / p for p in _read_conversion(spec, folder)["outputs"]]
    else:
        outputs = [folder / f.name for f in spec.files if f.name.endswith(".root")]
    return sorted(outputs, key=lambda p: (p != main, str(p)))
