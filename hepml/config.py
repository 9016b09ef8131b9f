"""YAML configuration files, validated before anything is opened.

:func:`load_yaml` keeps the line of every key, so :func:`validate` can turn a pydantic error into one
line ``task.yaml:12: features[2].sort_by: <problem>; <fix>``. Unknown keys are rejected with the
closest valid key (``unknown key 'lables'; did you mean 'labels'?``).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that records the line of every mapping key and sequence item."""


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    mapping, table = {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise ConfigError(
                f"line {key_node.start_mark.line + 1}: key {key!r} appears twice", "keep one of them"
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        table[key] = key_node.start_mark.line + 1
    loader._lines[id(mapping)] = table
    return mapping


def _construct_sequence(loader, node, deep=False):
    seq = [loader.construct_object(child, deep=True) for child in node.value]
    loader._lines[id(seq)] = {i: child.start_mark.line + 1 for i, child in enumerate(node.value)}
    return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class YamlDocument:
    """Parsed YAML data plus the line of each key path."""

    def __init__(self, data: Any, lines: dict[tuple, int], source: str):
        self.data = data
        self.lines = lines
        self.source = source

    def line_of(self, loc: tuple) -> int | None:
        """The line of the deepest known key along ``loc``."""
        for n in range(len(loc), -1, -1):
            if tuple(loc[:n]) in self.lines:
                return self.lines[tuple(loc[:n])]
        return None


def load_yaml(path_or_text, *, source: str | None = None) -> YamlDocument:
    """Read YAML from a path (or a text if ``source`` is given), keeping line numbers."""
    if source is None:
        path = Path(path_or_text)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}", "check the path or the task name (`hepml tasks`)")
        text, source = path.read_text(), str(path)
    else:
        text = path_or_text
    loader = _LineLoader(text)
    loader._lines = {}
    try:
        data = loader.get_single_data()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.what}", exc.fix) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: malformed YAML ({problem})", "fix the indentation/quoting on that line") from None
    finally:
        loader.dispose()
    lines: dict[tuple, int] = {}

    def walk(obj, prefix):
        table = loader._lines.get(id(obj), {})
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in table:
                    lines[prefix + (k,)] = table[k]
                walk(v, prefix + (k,))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                if i in table:
                    lines[prefix + (i,)] = table[i]
                walk(v, prefix + (i,))

    walk(data, ())
    return YamlDocument(data, lines, source)


def _loc_text(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _clean_loc(loc: tuple) -> tuple:
    # pydantic adds union-member tags (e.g. 'str', 'FileRef', 'function-after[...]') into loc paths
    return tuple(p for p in loc if isinstance(p, int) or not (p[:1].isupper() or "[" in p or p in ("str", "int", "float", "bool", "list", "dict")))


def validate(model: type[BaseModel], doc: YamlDocument, *, what: str = "config"):
    """Validate ``doc.data`` against ``model``; the first problem becomes one-line :class:`ConfigError`."""
    if not isinstance(doc.data, dict):
        raise ConfigError(
            f"{doc.source}: a {what} must be a YAML mapping, got {type(doc.data).__name__}",
            "start the file with keys such as 'name:' and 'tree:'",
        )
    try:
        return model.model_validate(doc.data, context={"source": doc.source})
    except ValidationError as exc:
        errors = exc.errors()
        # prefer the most specific error: unknown keys and missing fields before union noise
        errors.sort(key=lambda e: (e["type"] not in ("extra_forbidden", "missing"), -len(e["loc"])))
        err = errors[0]
        loc = _clean_loc(err["loc"])
        line = doc.line_of(loc)
        where = f"{doc.source}:{line}" if line else doc.source
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        if err["type"] == "extra_forbidden":
            key = loc[-1]
            allowed = _allowed_keys(model, loc[:-1], doc.data)
            close = difflib.get_close_matches(str(key), allowed, n=1)
            fix = f"did you mean {close[0]!r}?" if close else "allowed keys: " + ", ".join(allowed)
            raise ConfigError(f"{where}: unknown key {key!r} in {_loc_text(loc[:-1])}{more}", fix) from None
        if err["type"] == "missing":
            raise ConfigError(f"{where}: missing required key {_loc_text(loc)!r}{more}", f"add '{loc[-1]}:' to the {what}") from None
        msg = err["msg"].removeprefix("Value error, ")
        received = err.get("input")
        shown = f" (received {received!r})" if received is not None and not isinstance(received, (dict, list)) else ""
        if not loc:
            raise ConfigError(f"{where}: {msg}{more}", f"edit the {what}") from None
        raise ConfigError(f"{where}: {_loc_text(loc)}: {msg}{shown}{more}", f"fix '{_loc_text(loc)}' in the {what}") from None


def _allowed_keys(model: type[BaseModel], loc: tuple, data) -> list[str]:
    """Field names of the sub-model found by walking ``loc`` (best effort, for suggestions)."""
    import typing

    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", {})
        if part not in fields:
            break
        ann = fields[part].annotation
        candidates = [ann]
        while candidates:
            a = candidates.pop()
            if isinstance(a, type) and issubclass(a, BaseModel):
                current = a
                break
            candidates.extend(typing.get_args(a))
    return list(getattr(current, "model_fields", {}))
