"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint holds only data that ``weights_only`` unpickling accepts: tensors, numbers,
strings, booleans, ``None``, and lists, tuples and dicts of these (``docs/checkpoints.md``).
:func:`save_checkpoint` turns numpy arrays into tensors, numpy scalars into Python numbers
and paths/enums into strings, and refuses anything else, naming its key. :func:`load_checkpoint`
never runs code from the file: a file that names any Python object (a class, a function) is
refused with a :class:`CheckpointError`, so a crafted ``.pt`` cannot execute anything.
"""

from __future__ import annotations

import enum
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robokit.core.atomic import atomic_path, remove_stale_temporaries
from robokit.core.errors import CheckpointError, UnsafeCheckpointError

__all__ = ["CheckpointError", "UnsafeCheckpointError", "checkpoint_data", "save_checkpoint", "load_checkpoint",
           "checkpoint_steps", "latest_checkpoint", "intact_checkpoints"]

FORMAT_VERSION = 1
PLAIN_TYPES = (bool, int, float, str, type(None), torch.Tensor)


def checkpoint_data(value: Any, key: str = "state") -> Any:
    """``value`` as plain data that ``torch.load(weights_only=True)`` reads back.

    numpy arrays become tensors, numpy scalars Python numbers, paths and enums strings;
    dict keys must be strings or integers.

    Raises:
        TypeError: naming the key of a value of any other type.
    """
    if isinstance(value, np.generic):  # before the plain types: np.float64 is a float subclass
        return value.item()
    if isinstance(value, PLAIN_TYPES):
        return value
    if isinstance(value, dict):
        for name in value:
            if not isinstance(name, str | int):
                raise TypeError(f"checkpoint {key}: key {name!r} is a {type(name).__name__}, not str or int")
        return {name: checkpoint_data(item, f"{key}.{name}") for name, item in value.items()}
    if isinstance(value, list | tuple):
        items = [checkpoint_data(item, f"{key}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return checkpoint_data(value.value, key)
    raise TypeError(f"checkpoint {key}: a {type(value).__module__}.{type(value).__qualname__} cannot be "
                    "stored (checkpoints hold tensors and plain data only)")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Save ``state`` (tensors, state dicts, numpy arrays, plain data) atomically."""
    path = Path(path)
    payload = {"robokit_checkpoint": FORMAT_VERSION, **checkpoint_data(state)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, executing nothing from the file.

    Raises:
        CheckpointError: naming the file, when it is missing, truncated, foreign, or holds
            Python objects other than tensors and plain data.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for damaged zip archives
        raise _load_failure(path, err) from err
    if not isinstance(payload, dict) or payload.get("robokit_checkpoint") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a robokit checkpoint (format {FORMAT_VERSION})")
    payload.pop("robokit_checkpoint")
    return payload


def _load_failure(path: Path, err: Exception) -> CheckpointError:
    """The one-line error for a file ``torch.load`` refused."""
    refused = re.search(r"Unsupported global: GLOBAL (\S+)|Unsupported operand \S+", str(err))
    if refused:
        what = refused.group(1) or "an unsupported pickle operation"
        return UnsafeCheckpointError(
            f"{path}: refused: the file holds Python objects ({what}); robokit checkpoints hold only "
            "tensors and plain data and are never loaded with code execution")
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return CheckpointError(f"{path}: cannot read checkpoint ({type(err).__name__}: {first_line})")


def checkpoint_steps(directory: str | os.PathLike, pattern: str = "step_*.pt") -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in ``directory``, by the step number in their names, newest first."""
    candidates = []
    for path in Path(directory).glob(pattern):
        digits = "".join(ch for ch in path.stem if ch.isdigit())
        if digits:
            candidates.append((int(digits), path))
    return sorted(candidates, reverse=True)


def latest_checkpoint(directory: str | os.PathLike, pattern: str = "step_*.pt") -> Path | None:
    """The newest checkpoint in ``directory`` by the step number in its name, or None."""
    steps = checkpoint_steps(directory, pattern)
    return steps[0][1] if steps else None


def intact_checkpoints(directory: str | os.PathLike, pattern: str = "step_*.pt",
                       map_location: str | torch.device = "cpu",
                       prog: str = "robokit") -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, state) of the readable checkpoints in ``directory``, newest first.

    A damaged one (a run killed by a full disk, a file cut short by a copy) is renamed to
    ``<name>.corrupt``, so later resumes and pruning skip it, and said so on stderr; the
    caller takes the first state it can use.
    """
    for _, path in checkpoint_steps(directory, pattern):
        try:
            state = load_checkpoint(path, map_location)
        except UnsafeCheckpointError:
            raise  # a planted file: stop and say so rather than train past it
        except CheckpointError as err:
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            print(f"{prog}: skipping damaged checkpoint ({err}); moved it to {aside.name}", file=sys.stderr)
            continue
        yield path, state
