"""Helpers for batches: dicts of arrays (possibly nested for dict observations).

A ragged point-cloud entry ``name`` (sum N, C) always travels with
``name_offsets`` (B+1,) int64: row i's points are ``name[offsets[i]:offsets[i+1]]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OFFSETS_SUFFIX = "_offsets"


def concat_batches(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate batches row-wise (ragged offsets are shifted; nested dicts recurse)."""
    batches = [b for b in batches if b]
    if len(batches) == 1:
        return batches[0]
    keys = list(batches[0])
    for other in batches[1:]:
        if set(other) != set(keys):
            raise KeyError(f"cannot concatenate batches with keys {sorted(keys)} and {sorted(other)}")
    out: dict[str, Any] = {}
    for key in keys:
        values = [b[key] for b in batches]
        if isinstance(values[0], dict):
            out[key] = concat_batches(values)
        elif key.endswith(OFFSETS_SUFFIX):
            out[key] = concat_offsets(values)
        else:
            out[key] = np.concatenate(values, axis=0)
    return out


def concat_offsets(offsets: list[np.ndarray]) -> np.ndarray:
    parts, shift = [np.zeros(1, np.int64)], 0
    for off in offsets:
        parts.append(off[1:] + shift)
        shift += int(off[-1])
    return np.concatenate(parts)


def nest_obs(batch: dict[str, Any]) -> dict[str, Any]:
    """Group ``obs/<key>`` entries into ``batch['obs'][key]`` (dict observations)."""
    if not any("/" in key for key in batch):
        return batch
    out: dict[str, Any] = {}
    for key, value in batch.items():
        prefix, _, sub = key.partition("/")
        if sub:
            out.setdefault(prefix, {})[sub] = value
        else:
            out[key] = value
    return out


def split_ragged(points: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """``points`` (sum N, C) and ``offsets`` (B+1,) -> list of B arrays (N_i, C) (views)."""
    return [points[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def batch_rows(batch: dict[str, Any]) -> int:
    """Number of rows B of a batch (from its first non-ragged entry)."""
    for key, value in batch.items():
        if isinstance(value, dict):
            return batch_rows(value)
        if key.endswith(OFFSETS_SUFFIX):
            return len(value) - 1
        if f"{key}{OFFSETS_SUFFIX}" not in batch:
            return len(value)
    return 0


def to_torch(batch: dict[str, Any], device: Any = "cpu") -> dict[str, Any]:
    """Convert every numpy array of ``batch`` (nested dicts too) to a ``torch.Tensor`` on ``device``.

    dtypes are kept (float32 stays float32, bool stays bool, uint8 images stay uint8).
    Tensors are contiguous: strided views (a replay batch's packed columns) and read-only
    arrays (offline data) are copied first.
    """
    import torch

    target = None if device is None or device == "cpu" else torch.device(device)
    if target is not None and target.type == "cpu":
        target = None
    return _to_torch(batch, target, torch.from_numpy)


def _to_torch(batch: dict[str, Any], target: Any, from_numpy: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if type(value) is np.ndarray:  # the common case first: one check per array
            array = value
        elif isinstance(value, dict):
            out[key] = _to_torch(value, target, from_numpy)
            continue
        elif isinstance(value, np.ndarray | np.generic):
            array = np.asarray(value)
        elif isinstance(value, list):
            import torch

            out[key] = [torch.as_tensor(v, device=target) for v in value]
            continue
        else:
            out[key] = value
            continue
        flags = array.flags
        if not (flags.c_contiguous and flags.writeable):
            array = np.array(array, order="C")  # packed-row views -> contiguous tensors (.view() works)
        tensor = from_numpy(array)
        out[key] = tensor if target is None else tensor.to(target, non_blocking=True)
    return out
