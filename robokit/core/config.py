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


class ConfigError(Exception):
    """An option with a value out of its range; the message names the flag (``--batch-size``).

    Not a ``ValueError`` on purpose: tyro renders a ``ValueError`` raised while building a
    config as a multi-line box; this one reaches :func:`robokit.core.cli_errors.run_command`,
    which prints it as the one-line error every robokit command uses.
    """


def flag(name: str, prefix: str = "") -> str:
    """The command-line flag of field ``name`` (``batch_size`` -> ``--batch-size``)."""
    return "--" + (prefix + name).replace("_", "-")


def check_ranges(config: Any, *, positive: Sequence[str] = (), non_negative: Sequence[str] = (),
                 unit_interval: Sequence[str] = (), prefix: str = "") -> None:
    """Refuse counts and fractions out of range; call it from a config's ``__post_init__``.

    Fields set to None (an optional count left to its default) are not checked.

    Args:
        positive: fields that must be > 0 (batch sizes, episodes, epochs, intervals).
        non_negative: fields that must be >= 0 (step counts, warm-up lengths).
        unit_interval: fields that must lie in [0, 1] (fractions).
        prefix: the flag prefix of a nested config (``"agent."``).

    Raises:
        ConfigError: naming the first flag out of range and its value.
    """
    rules = ([(name, "> 0", lambda v: v > 0) for name in positive]
             + [(name, ">= 0", lambda v: v >= 0) for name in non_negative]
             + [(name, "in [0, 1]", lambda v: 0 <= v <= 1) for name in unit_interval])
    for name, text, ok in rules:
        value = getattr(config, name)
        if value is None:
            continue
        values = value if isinstance(value, tuple | list) else (value,)
        if not all(isinstance(v, int | float) and ok(v) for v in values):
            raise ConfigError(f"{flag(name, prefix)} must be {text}, got {value}")


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
