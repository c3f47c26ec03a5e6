"""Saving and loading a :class:`~robokit.data.replay.ReplayBuffer` as one ``.npz`` file.

The file is written through :func:`robokit.core.atomic.atomic_path` (temporary
file, fsync, rename), so a process killed during a save leaves the previous file
intact. Slot layout, counters, sampler state and the RNG's bit-generator state
are all stored, so the loaded buffer's next batch equals the original's.

Layout (no pickles): ``meta`` (JSON string), ``field.<name>`` dense arrays for
slots ``[0, size)``, ``ragged.<name>.points`` / ``ragged.<name>.offsets`` for
ragged fields in slot order, ``sampler.<key>`` and ``pending.<name>`` (add()
transitions waiting for their episode's end).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from robokit.core.atomic import atomic_path
from robokit.data.errors import DataError
from robokit.data.replay_types import Stream, config_from_json
from robokit.data.storage import RaggedField

FORMAT = "robokit-replay-v2"  # v2: per-slot next-step links and per-stream state


def save_replay(buffer: Any, path: Path) -> Path:
    """Write ``buffer`` to ``path`` atomically; returns ``path``."""
    storage = buffer.storage
    size = storage.size
    arrays: dict[str, np.ndarray] = {}
    for name, field in storage.fields.items():
        if isinstance(field, RaggedField):
            points, offsets = field.gather(np.arange(size))
            arrays[f"ragged.{name}.points"], arrays[f"ragged.{name}.offsets"] = points, offsets
        else:
            arrays[f"field.{name}"] = field[:size]
    for key, value in buffer.sampler.state().items():
        arrays[f"sampler.{key}"] = np.asarray(value)
    arrays.update(_pack_pending(buffer.pending_rows(), buffer.ragged_fields))
    arrays["index_stream"] = buffer.indices.remaining()
    streams = {str(key): {"episode": source.episode, "step": source.step, "last_slot": source.last_slot,
                          "pending": len(source.pending)} for key, source in sorted(buffer._streams.items())}
    meta = {"format": FORMAT, "config": buffer.config(), "size": size, "pointer": storage.pointer,
            "next_episode_id": buffer.next_episode_id, "total_added": buffer.total_added,
            "streams": streams, "read_only": storage.frozen, "rng": buffer.rng.bit_generator.state,
            "tasks": list(buffer.tasks)}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return path


def load_replay(cls: type, path: Path) -> Any:
    """Read a file written by :func:`save_replay` into a new ``cls`` instance.

    Raises:
        DataError: naming the file (and key) when it is missing, truncated, or not a
            robokit replay file, or when an array has the wrong shape.
    """
    arrays = _read_npz(path)
    meta = _read_meta(arrays, path)
    try:
        buffer = cls(**config_from_json(meta["config"]))
        _restore(buffer, arrays, meta, path)
    except DataError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise DataError(f"{path}: inconsistent replay file ({type(err).__name__}: {err})") from err
    return buffer


def _restore(buffer: Any, arrays: dict[str, np.ndarray], meta: dict, path: Path) -> None:
    """Fill a fresh ``buffer`` with the saved arrays, counters and RNG state."""
    storage = buffer.storage
    size, pointer = int(meta["size"]), int(meta["pointer"])
    if not (0 <= size <= storage.capacity and 0 <= pointer < storage.capacity):
        raise DataError(f"{path}: key 'meta': size {size} / pointer {pointer} do not fit capacity {storage.capacity}")
    for name, field in storage.fields.items():
        if isinstance(field, RaggedField):
            points = _array(arrays, f"ragged.{name}.points", path)
            offsets = _array(arrays, f"ragged.{name}.offsets", path)
            _check_shape(offsets, (size + 1,), f"ragged.{name}.offsets", path)
            _restore_ragged(field, points, offsets, size, pointer, storage.capacity)
        elif name == "task" and "field.task" not in arrays:  # written before tasks were stored: no task
            field[:size] = -1
        else:
            value = _array(arrays, f"field.{name}", path)
            _check_shape(value, (size, *field.shape[1:]), f"field.{name}", path)
            field[:size] = value
    storage.size, storage.pointer = size, pointer
    sampler_state = {k.split(".", 1)[1]: arrays[k] for k in arrays if k.startswith("sampler.")}
    buffer.sampler.load_state(sampler_state)
    buffer.next_episode_id = int(meta["next_episode_id"])
    buffer.total_added = int(meta["total_added"])
    buffer.tasks = [str(task) for task in meta.get("tasks", [])]
    _restore_streams(buffer, arrays, meta["streams"])
    buffer.rng.bit_generator.state = meta["rng"]
    buffer.indices.restore(_array(arrays, "index_stream", path))
    if meta.get("read_only"):
        buffer.freeze()


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: no such replay file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise DataError(f"{path}: cannot read replay file, truncated or corrupt ({type(err).__name__}: {err})") \
            from err


def _read_meta(arrays: dict[str, np.ndarray], path: Path) -> dict:
    if "meta" not in arrays:
        raise DataError(f"{path}: key 'meta' missing: not a robokit replay file")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: key 'meta' is not valid JSON ({err})") from err
    found = meta.get("format") if isinstance(meta, dict) else None
    if found != FORMAT:
        raise DataError(f"{path}: key 'meta': format {found!r}, expected {FORMAT!r}")
    return meta


def _array(arrays: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    if key not in arrays:
        raise DataError(f"{path}: key '{key}' missing")
    return arrays[key]


def _check_shape(value: np.ndarray, expected: tuple, key: str, path: Path) -> None:
    if tuple(value.shape) != tuple(expected):
        raise DataError(f"{path}: key '{key}': shape {value.shape}, expected {expected}")


def _restore_ragged(field: RaggedField, points: np.ndarray, offsets: np.ndarray, size: int, pointer: int,
                    capacity: int) -> None:
    """Lay the saved clouds (slot order) out in the pool oldest-first, as writes would have."""
    total = int(offsets[-1])
    if len(points) != total:
        raise DataError(f"ragged field: {len(points)} points stored, offsets say {total}")
    if total > field.points_capacity:
        field.pool = np.zeros((2 * total, field.channels), field.pool.dtype)
    oldest = (pointer - size) % capacity
    cursor = 0
    for i in range(size):
        slot = (oldest + i) % capacity
        n = int(offsets[slot + 1] - offsets[slot])
        field.pool[cursor:cursor + n] = points[offsets[slot]:offsets[slot + 1]]
        field.vstart[slot], field.length[slot] = cursor, n
        cursor += n
    field.head = cursor


def _restore_streams(buffer: Any, arrays: dict[str, np.ndarray], streams: dict[str, dict]) -> None:
    """Unfinished add() episodes, with their held-back rows (saved in stream order)."""
    counts = [int(state["pending"]) for state in streams.values()]
    rows = _unpack_pending(arrays, sum(counts))
    begin = 0
    for (key, state), count in zip(streams.items(), counts, strict=True):
        buffer._streams[int(key)] = Stream(episode=int(state["episode"]), step=int(state["step"]),
                                            last_slot=int(state["last_slot"]), pending=rows[begin:begin + count])
        begin += count


def _pack_pending(rows: list[dict], ragged_fields: frozenset[str]) -> dict[str, np.ndarray]:
    if not rows:
        return {}
    packed = {}
    for name in rows[0]:
        values = [np.asarray(row[name]) for row in rows]
        if name in ragged_fields:
            offsets = np.concatenate([[0], np.cumsum([len(v) for v in values])]).astype(np.int64)
            packed[f"pending.{name}.points"] = np.concatenate(values)
            packed[f"pending.{name}.offsets"] = offsets
        else:
            packed[f"pending.{name}"] = np.stack(values)
    return packed


def _unpack_pending(arrays: dict[str, np.ndarray], count: int) -> list[dict]:
    if count == 0:
        return []
    rows: list[dict] = [{} for _ in range(count)]
    for key, value in arrays.items():
        if not key.startswith("pending.") or key.endswith(".offsets"):
            continue
        name = key[len("pending."):]
        if name.endswith(".points"):
            name = name[: -len(".points")]
            offsets = arrays[f"pending.{name}.offsets"]
            for i, row in enumerate(rows):
                row[name] = value[offsets[i]:offsets[i + 1]]
        else:
            for i, row in enumerate(rows):
                row[name] = value[i]
    return rows
