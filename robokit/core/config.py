"""Typed, frozen dataclass configs: parse from the command line, save beside outputs.

Configs are plain ``@dataclass(frozen=True)`` classes. :func:`parse` turns one
into a command line with tyro (every field becomes ``--field``); :func:`save_config`
writes the resolved values as YAML next to a run's outputs so the run can be
reproduced; :func:`load_config` reads them back into the dataclass.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from robokit.core.atomic import atomic_write_text

C = TypeVar("C")

CONFIG_FILE = "config.yaml"


def parse(cls: type[C], args: Sequence[str] | None = None, description: str | None = None,
          prog: str | None = None) -> C:
    """Build ``cls`` from command-line ``args`` (tyro), with ``--help`` for free."""
    import tyro

    return tyro.cli(cls, args=args, description=description, prog=prog)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-data view of a (nested) dataclass config: paths and enums become strings."""
    return _plain(dataclasses.asdict(config)) if dataclasses.is_dataclass(config) else _plain(config)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def save_config(config: Any, run_dir: str | os.PathLike, name: str = CONFIG_FILE) -> Path:
    """Write the resolved config as YAML in ``run_dir`` (atomically); return its path."""
    path = Path(run_dir) / name
    header = f"# {type(config).__module__}.{type(config).__qualname__}\n"
    atomic_write_text(path, header + yaml.safe_dump(to_dict(config), sort_keys=False))
    return path


def load_config(cls: type[C], path: str | os.PathLike) -> C:
    """Read a YAML file written by :func:`save_config` back into ``cls``.

    Unknown keys raise, so a config from another version fails loudly.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    return from_dict(cls, data)


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build a (possibly nested) dataclass from plain data, restoring Paths, tuples and enums."""
    import typing

    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    return cls(**{name: _coerce(hints.get(name, Any), value) for name, value in data.items()})


def _coerce(annotation: Any, value: Any) -> Any:
    """Turn plain YAML data back into the annotated type where that is unambiguous."""
    import typing

    if value is None:
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        candidates = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _coerce(candidates[0], value) if len(candidates) == 1 else value
    if dataclasses.is_dataclass(annotation) and isinstance(value, dict):
        return from_dict(annotation, value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if isinstance(annotation, type):
        if issubclass(annotation, os.PathLike | Path):
            return Path(value)
        if issubclass(annotation, enum.Enum):
            return annotation(value)
    return value
