"""Batched observations that are not one tensor: ragged point clouds and dicts of named parts.

Agents index, split, repeat and concatenate observation batches (minibatches, CQL's N actions
per state, IQL's ``torch.cat([obs, next_obs])``). A plain tensor does all of that; the two
containers here do it too, so the same algorithm code runs on every observation kind:

- :class:`PointBatch`: B clouds as one flat ``points`` (sum N, C) float32 tensor plus
  ``offsets`` (B+1,) int64 (cloud i is ``points[offsets[i]:offsets[i+1]]``), ready for
  PointNet (segment pooling) or voxelization for spconv. No padding to the largest cloud.
- :class:`ObsDict`: a ``dict`` of named parts (tensors or point batches) with the same B rows.

Both support ``len``, ``chunk``, ``split``, ``repeat_interleave(n, dim=0)``, ``to(device)``,
``torch.cat`` and ``torch.Tensor``-style row indexing by slices or index tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from robokit.data.batch import OFFSETS_SUFFIX, to_torch

OBS_KEYS = ("obs", "next_obs", "future_obs")


class PointBatch:
    """B ragged point clouds: ``points`` (sum N, C) float32 and ``offsets`` (B+1,) int64."""

    def __init__(self, points: torch.Tensor, offsets: torch.Tensor) -> None:
        self.points, self.offsets = points, offsets

    @classmethod
    def from_clouds(cls, clouds: Sequence[np.ndarray | torch.Tensor]) -> PointBatch:
        """From B arrays (N_i, C)."""
        tensors = [torch.as_tensor(np.asarray(c, np.float32)) for c in clouds]
        lengths = torch.tensor([len(t) for t in tensors], dtype=torch.int64)
        offsets = torch.zeros(len(tensors) + 1, dtype=torch.int64)
        torch.cumsum(lengths, 0, out=offsets[1:])
        return cls(torch.cat(tensors), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __repr__(self) -> str:
        return f"PointBatch(B={len(self)}, points={tuple(self.points.shape)})"

    @property
    def lengths(self) -> torch.Tensor:
        """(B,) points per cloud."""
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def batch_index(self) -> torch.Tensor:
        """(sum N,) the cloud each point belongs to."""
        return torch.repeat_interleave(torch.arange(len(self), device=self.points.device), self.lengths)

    def __getitem__(self, rows: Any) -> PointBatch:
        """The clouds of ``rows`` (a slice, or an index tensor/array of B' rows)."""
        index = torch.arange(len(self))[rows] if isinstance(rows, slice) else torch.as_tensor(rows).reshape(-1)
        index = index.to(self.offsets.device)
        lengths = self.lengths[index]
        offsets = torch.zeros(len(index) + 1, dtype=torch.int64, device=self.offsets.device)
        torch.cumsum(lengths, 0, out=offsets[1:])
        starts = self.offsets[:-1][index]
        point_rows = torch.repeat_interleave(starts - offsets[:-1], lengths) + torch.arange(
            int(offsets[-1]), device=self.offsets.device)
        return PointBatch(self.points[point_rows], offsets)

    def to(self, *args: Any, **kwargs: Any) -> PointBatch:
        points = self.points.to(*args, **kwargs)
        return PointBatch(points, self.offsets.to(points.device))

    def repeat_interleave(self, repeats: int, dim: int = 0) -> PointBatch:
        _check_dim(dim)
        return self[torch.arange(len(self)).repeat_interleave(int(repeats))]

    def split(self, size: int | Sequence[int], dim: int = 0) -> tuple[PointBatch, ...]:
        _check_dim(dim)
        return tuple(self[rows] for rows in _row_slices(len(self), size))

    def chunk(self, count: int, dim: int = 0) -> tuple[PointBatch, ...]:
        _check_dim(dim)
        size = -(-len(self) // int(count))
        return self.split(size)

    @staticmethod
    def cat(batches: Sequence[PointBatch]) -> PointBatch:
        shifts = [0]
        for batch in batches[:-1]:
            shifts.append(shifts[-1] + int(batch.offsets[-1]))
        offsets = torch.cat([batches[0].offsets[:1]] + [b.offsets[1:] + s for b, s in zip(batches, shifts, strict=True)])
        return PointBatch(torch.cat([b.points for b in batches]), offsets)

    @classmethod
    def __torch_function__(cls, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        return _dispatch(cls, func, args, kwargs or {})


class ObsDict(dict):
    """Named observation parts with the same B rows; row operations apply to every part."""

    def __len__(self) -> int:  # rows, as for a tensor (the number of parts is len(self.keys()))
        return len(next(iter(self.values())))

    def _map(self, fn: Callable[[Any], Any]) -> ObsDict:
        return ObsDict({key: fn(value) for key, value in self.items()})

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        return self._map(lambda value: value[key])

    def to(self, *args: Any, **kwargs: Any) -> ObsDict:
        return self._map(lambda value: value.to(*args, **kwargs))

    def repeat_interleave(self, repeats: int, dim: int = 0) -> ObsDict:
        _check_dim(dim)
        return self._map(lambda value: value.repeat_interleave(repeats, dim=0))

    def split(self, size: int | Sequence[int], dim: int = 0) -> tuple[ObsDict, ...]:
        _check_dim(dim)
        return tuple(self[rows] for rows in _row_slices(len(self), size))

    def chunk(self, count: int, dim: int = 0) -> tuple[ObsDict, ...]:
        _check_dim(dim)
        return self.split(-(-len(self) // int(count)))

    @staticmethod
    def cat(batches: Sequence[ObsDict]) -> ObsDict:
        return ObsDict({key: torch.cat([b[key] for b in batches]) for key in batches[0]})

    @classmethod
    def __torch_function__(cls, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        return _dispatch(cls, func, args, kwargs or {})

    # len() means rows, so dict's own equality/repr helpers that use it are spelled out
    def __repr__(self) -> str:
        return f"ObsDict({dict(self.items())!r})"


def _dispatch(cls: type, func: Callable, args: tuple, kwargs: dict) -> Any:
    """``torch.cat`` (dim 0) of containers; any other torch function is refused with its name."""
    if func is torch.cat:
        batches = list(args[0] if args else kwargs["tensors"])
        _check_dim(kwargs.get("dim", args[1] if len(args) > 1 else 0))
        return cls.cat(batches)
    for name in ("split", "chunk", "repeat_interleave"):
        if func is getattr(torch, name, None) or func is getattr(torch.Tensor, name, None):
            return getattr(args[0], name)(*args[1:], **kwargs)
    raise TypeError(f"{cls.__name__} does not support torch.{getattr(func, '__name__', func)}")


def _check_dim(dim: int) -> None:
    if dim != 0:
        raise ValueError(f"observation batches only support row operations (dim 0), got dim {dim}")


def _row_slices(rows: int, size: int | Sequence[int]) -> list[slice]:
    sizes = [int(size)] * (-(-rows // int(size))) if isinstance(size, int | np.integer) else [int(s) for s in size]
    slices, start = [], 0
    for length in sizes:
        stop = min(start + length, rows)
        slices.append(slice(start, stop))
        start = stop
    return slices


def structure(batch: dict[str, Any]) -> dict[str, Any]:
    """Torch batch -> agent batch: each ragged ``<key>`` with ``<key>_offsets`` becomes one
    :class:`PointBatch` (the offsets key is dropped) and each nested dict an :class:`ObsDict`
    (recursively). Tensors are not copied."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if key.endswith(OFFSETS_SUFFIX) and key[: -len(OFFSETS_SUFFIX)] in batch:
            continue
        offsets = batch.get(key + OFFSETS_SUFFIX)
        if offsets is not None:
            out[key] = PointBatch(value, offsets)
        elif isinstance(value, dict) and not isinstance(value, ObsDict):
            out[key] = ObsDict(structure(value))
        else:
            out[key] = value
    return out


def agent_batch(batch: dict[str, Any], device: Any = "cpu") -> dict[str, Any]:
    """A replay batch (numpy) -> torch tensors structured for an agent (see :func:`structure`).

    Images stay uint8 (converted to float inside the encoder), clouds stay one flat tensor."""
    return structure(to_torch(batch, device))
