"""Checkpoints written atomically, so a killed run always leaves a loadable file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from robokit.core.atomic import atomic_path

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or of the wrong format."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Save ``state`` (tensors, state dicts, numpy arrays, plain data) atomically."""
    path = Path(path)
    payload = {"robokit_checkpoint": FORMAT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: naming the file, when it is missing, truncated or foreign.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises several types for damaged zip archives
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(payload, dict) or payload.get("robokit_checkpoint") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a robokit checkpoint (format {FORMAT_VERSION})")
    payload.pop("robokit_checkpoint")
    return payload


def latest_checkpoint(directory: str | os.PathLike, pattern: str = "step_*.pt") -> Path | None:
    """The newest checkpoint in ``directory`` by the step number in its name, or None."""
    candidates = []
    for path in Path(directory).glob(pattern):
        digits = "".join(ch for ch in path.stem if ch.isdigit())
        if digits:
            candidates.append((int(digits), path))
    return max(candidates)[1] if candidates else None
