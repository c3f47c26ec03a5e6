"""Preallocated ring storage: a dict of fixed-shape arrays plus ragged point fields.

A :class:`RingStorage` owns ``capacity`` slots. Each named field is either a dense
array ``(capacity, *shape)`` of one dtype (vectors, uint8 images, flags) or a
:class:`RaggedField` holding one variable-size point cloud ``(N_i, C)`` per slot
in a single flat point pool with per-slot offsets (no padding to the maximum).
Slots are written in order and the oldest are overwritten once full. Dense float32
fields share one ``(capacity, width)`` slab (:class:`PackedColumns`), each field being a
view of its columns, so reading a batch of rows is a single gather.

Storage knows nothing about sampling or views; samplers pick slot indices and
views turn indices into batches (see :mod:`robokit.data.samplers` and
:mod:`robokit.data.views`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robokit.data.errors import DataError, check_length


@dataclass(frozen=True)
class FieldSpec:
    """One stored field: ``shape`` per slot (``(None, C)`` for a ragged point cloud) and dtype."""

    shape: tuple
    dtype: np.dtype = np.dtype(np.float32)

    @property
    def ragged(self) -> bool:
        return len(self.shape) > 0 and self.shape[0] is None


class RaggedField:
    """Variable-size point clouds ``(N_i, C)`` in one flat pool, one cloud per slot.

    Clouds are laid out in write order at increasing *virtual* offsets; a cloud's
    pool position is its virtual start modulo the pool size, and a cloud that
    would straddle the end of the pool starts at the next lap instead. The live
    clouds therefore always occupy one virtual interval, so a new cloud fits when
    that interval stays within the pool; otherwise the pool doubles (live clouds
    are compacted into the new pool in order).

    Args:
        capacity: number of slots.
        channels: C, values per point (xyz first).
        points_capacity: initial pool size in points.
        dtype: point dtype (float32).
    """

    def __init__(self, capacity: int, channels: int, points_capacity: int, dtype=np.float32):
        self.capacity = int(capacity)
        self.channels = int(channels)
        self.pool = np.zeros((max(int(points_capacity), 1), self.channels), dtype)
        self.vstart = np.zeros(self.capacity, np.int64)
        self.length = np.zeros(self.capacity, np.int64)
        self.head = 0  # virtual offset one past the newest cloud

    @property
    def points_capacity(self) -> int:
        return len(self.pool)

    def write(self, slot: int, cloud: np.ndarray, oldest_live: int | None) -> None:
        """Store ``cloud`` (N, C) in ``slot``; ``oldest_live`` is the oldest slot still live
        after this write (None when ``slot`` is the only one)."""
        n = len(cloud)
        if cloud.ndim != 2 or cloud.shape[1] != self.channels:
            raise DataError(f"point cloud for slot {slot}: shape {cloud.shape}, expected (N, {self.channels})")
        low = self.head if oldest_live is None else int(self.vstart[oldest_live])
        start = self._placement(self.head, n)
        if start + n - low > len(self.pool):
            self._grow(start + n - low, slot, oldest_live)
            low = self.head if oldest_live is None else int(self.vstart[oldest_live])
            start = self._placement(self.head, n)
        begin = start % len(self.pool)
        self.pool[begin:begin + n] = cloud
        self.vstart[slot] = start
        self.length[slot] = n
        self.head = start + n

    def _placement(self, head: int, n: int) -> int:
        """Virtual start for ``n`` points at ``head``, moved to the next lap if it would wrap."""
        size = len(self.pool)
        if n and head % size + n > size:
            return (head // size + 1) * size
        return head

    def _grow(self, needed: int, slot: int, oldest_live: int | None) -> None:
        """Move the live clouds, oldest first, to the start of a pool of at least ``2 * needed``."""
        live = self._live_slots(slot, oldest_live)
        points, offsets = self.gather(live)
        pool = np.zeros((max(2 * len(self.pool), 2 * needed), self.channels), self.pool.dtype)
        pool[:len(points)] = points
        self.vstart[live] = offsets[:-1]
        self.pool = pool
        self.head = int(offsets[-1])

    def _live_slots(self, slot: int, oldest_live: int | None) -> np.ndarray:
        """Slots still live before ``slot`` is written, oldest first."""
        if oldest_live is None:
            return np.zeros(0, np.int64)
        count = (slot - oldest_live) % self.capacity
        return (oldest_live + np.arange(count)) % self.capacity

    def get(self, slot: int) -> np.ndarray:
        """The cloud in ``slot`` as an ``(N, C)`` view."""
        begin = int(self.vstart[slot]) % len(self.pool)
        return self.pool[begin:begin + int(self.length[slot])]

    def gather(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clouds of ``slots`` (B,) as ``(points (sum N, C), offsets (B+1,) int64)``."""
        slots = np.asarray(slots, np.int64).reshape(-1)
        lengths = self.length[slots]
        offsets = np.zeros(len(slots) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        begins = self.vstart[slots] % len(self.pool)
        rows = np.repeat(begins - offsets[:-1], lengths) + np.arange(offsets[-1])
        return self.pool[rows], offsets

    def freeze(self) -> None:
        for array in (self.pool, self.vstart, self.length):
            array.flags.writeable = False


@dataclass
class PackedColumns:
    """Dense float32 fields laid side by side in one ``(capacity, width)`` slab.

    A uniform batch then costs one row gather of ``width`` contiguous floats per
    transition instead of one scattered read per field; random access into a
    large buffer is bound by cache-line and TLB misses, so this is several times
    faster than gathering each field on its own. Each field is a view
    ``(capacity, *shape)`` of its columns.
    """

    slab: np.ndarray
    columns: dict[str, tuple[int, int]]
    shapes: dict[str, tuple]

    def view(self, rows: np.ndarray, name: str, shape: tuple) -> np.ndarray:
        """Field ``name`` of ``rows`` (R, width) as an (R, *shape) view."""
        start, stop = self.columns[name]
        if shape == ():
            return rows[:, start]
        if len(shape) == 1:
            return rows[:, start:stop]
        return rows[:, start:stop].reshape(len(rows), *shape)

    def views(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Every packed field of ``rows`` (R, width) as views (the per-batch hot path)."""
        return {name: self.view(rows, name, shape) for name, shape in self.shapes.items()}


def _pack_float32_fields(capacity: int, specs: dict[str, FieldSpec]) -> PackedColumns:
    columns, width = {}, 0
    for name, spec in specs.items():
        if not spec.ragged and np.dtype(spec.dtype) == np.float32:
            size = int(np.prod(spec.shape, dtype=np.int64))
            columns[name] = (width, width + size)
            width += size
    shapes = {name: tuple(specs[name].shape) for name in columns}
    return PackedColumns(np.zeros((capacity, width), np.float32), columns, shapes)


class RingStorage:
    """Preallocated ring of ``capacity`` slots with named dense or ragged fields.

    Args:
        capacity: number of slots.
        specs: field name -> :class:`FieldSpec`.
        points_capacity: initial pool size for ragged fields (grows when needed);
            default ``min(capacity * 1024, 4M)`` points.
    """

    def __init__(self, capacity: int, specs: dict[str, FieldSpec], points_capacity: int | None = None):
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.specs = dict(specs)
        self.fields: dict[str, np.ndarray | RaggedField] = {}
        self.packed = _pack_float32_fields(self.capacity, self.specs)
        self.slab = self.packed.slab
        for name, spec in self.specs.items():
            if spec.ragged:
                pool = points_capacity if points_capacity is not None else min(self.capacity * 1024, 1 << 22)
                self.fields[name] = RaggedField(self.capacity, spec.shape[1], pool, spec.dtype)
            elif name in self.packed.columns:
                self.fields[name] = self.packed.view(self.slab, name, tuple(spec.shape))
            else:
                self.fields[name] = np.zeros((self.capacity, *spec.shape), spec.dtype)
        self.size = 0
        self.pointer = 0  # next slot to write
        self.frozen = False

    def __len__(self) -> int:
        return self.size

    @property
    def oldest(self) -> int:
        """Slot index of the oldest live entry."""
        return (self.pointer - self.size) % self.capacity

    def live_slots(self) -> np.ndarray:
        """Live slot indices, oldest first (size,)."""
        return (self.oldest + np.arange(self.size)) % self.capacity

    def reserve(self, count: int) -> np.ndarray:
        """Claim the next ``count`` slots (overwriting the oldest when full); return them (count,)."""
        if self.frozen:
            raise PermissionError("this storage is read-only (offline data); write to the online buffer")
        slots = (self.pointer + np.arange(count)) % self.capacity
        self.pointer = (self.pointer + count) % self.capacity
        self.size = min(self.size + count, self.capacity)
        return slots

    def write(self, values: dict[str, Any]) -> np.ndarray:
        """Append ``count`` entries: each dense value ``(count, *shape)``, each ragged value a
        list of ``count`` clouds. Returns the slots written (count,)."""
        count = _block_length(values)
        if count > self.capacity:  # only the newest ``capacity`` entries survive
            values = {k: v[count - self.capacity:] for k, v in values.items()}
            count = self.capacity
        values = self._checked(values)  # everything is checked before any slot changes
        slots = self.reserve(count)
        for name, field in self.fields.items():
            if isinstance(field, RaggedField):
                self._write_ragged(field, slots, values[name])
            else:
                _write_dense(field, slots, values[name])
        return slots

    def write_row(self, row: dict[str, np.ndarray | float]) -> int:
        """Append one entry whose values the caller has already checked (dense values shaped
        like one slot, ragged values ``(N, C)``); returns its slot. The fast path for one
        environment step."""
        if len(row) != len(self.fields):
            missing = sorted(set(self.fields) - set(row))
            raise DataError(f"write is missing fields {missing} (have {sorted(row)})")
        slot = int(self.reserve(1)[0])
        for name, field in self.fields.items():
            if isinstance(field, RaggedField):
                field.write(slot, np.asarray(row[name]), self.oldest if self.size > 1 else None)
            else:
                field[slot] = row[name]
        return slot

    def _checked(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with dense entries as arrays, after checking names and per-entry shapes."""
        missing = set(self.fields) - set(values)
        if missing:
            raise DataError(f"write is missing fields {sorted(missing)} (have {sorted(values)})")
        checked: dict[str, Any] = {}
        for name, field in self.fields.items():
            if isinstance(field, RaggedField):
                for i, cloud in enumerate(values[name]):
                    shape = np.shape(cloud)
                    if len(shape) != 2 or shape[1] != field.channels:
                        raise DataError(f"field '{name}' index {i}: point cloud shape {shape}, "
                                        f"expected (N, {field.channels})")
                checked[name] = values[name]
            else:
                value = np.asarray(values[name])
                if value.shape[1:] != field.shape[1:]:
                    raise DataError(f"field '{name}': shape {value.shape[1:]} per entry, "
                                    f"expected {field.shape[1:]}")
                checked[name] = value
        return checked

    def _write_ragged(self, field: RaggedField, slots: np.ndarray, clouds: list) -> None:
        """Write clouds in order, telling the field which older clouds must be preserved:
        entries that survive this block (oldest first) and the block's earlier entries."""
        check_length(clouds, len(slots), "ragged field", None)
        survivors = self.size - len(slots)
        for i, slot in enumerate(slots):
            oldest_live: int | None = self.oldest if survivors > 0 else (int(slots[0]) if i > 0 else None)
            field.write(int(slot), np.asarray(clouds[i]), oldest_live)

    def gather_packed(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """All packed float32 fields of ``slots`` (B,) with one row gather: ``name -> (B, *shape)``
        views into a fresh ``(B, row_width)`` array."""
        return self.packed.views(self.slab.take(slots, axis=0))

    def dense(self, name: str) -> np.ndarray:
        """The ``(capacity, *shape)`` array of dense field ``name``."""
        field = self.fields[name]
        if isinstance(field, RaggedField):
            raise TypeError(f"field '{name}' is ragged")
        return field

    def freeze(self) -> None:
        """Make every array read-only (used for offline data)."""
        self.frozen = True
        self.slab.flags.writeable = False
        for field in self.fields.values():
            if isinstance(field, RaggedField):
                field.freeze()
            else:
                field.flags.writeable = False


def _block_length(values: dict) -> int:
    lengths = {k: len(v) for k, v in values.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"fields of one write have different lengths: {lengths}")
    return next(iter(lengths.values()))


def _write_dense(target: np.ndarray, slots: np.ndarray, value: np.ndarray) -> None:
    """Copy ``value`` (count, ...) into consecutive ring ``slots`` (two copies when they wrap)."""
    first, count = int(slots[0]), len(slots)
    head = min(count, len(target) - first)
    target[first:first + head] = value[:head]
    if head < count:
        target[:count - head] = value[head:]
