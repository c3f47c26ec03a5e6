"""Shared helpers for dataset readers and writers: safe HDF5 access, atomic
directory writes, and turning a replay buffer back into episodes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from robokit.core.atomic import TMP_SUFFIX, remove_stale_temporaries, temporary_prefix
from robokit.data.batch import OFFSETS_SUFFIX, concat_offsets, nest_obs, split_ragged
from robokit.data.episode import Episode
from robokit.data.errors import DataError, check_finite
from robokit.data.replay_types import BOOKKEEPING, stack_rows


@contextlib.contextmanager
def open_hdf5(path: Path) -> Iterator[Any]:
    """Open ``path`` read-only with h5py; a missing, truncated or corrupt file raises
    :class:`DataError` naming it."""
    import h5py

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: cannot open as HDF5, truncated or corrupt ({err})") from err
    try:
        yield handle
    finally:
        handle.close()


def read_optional(group: Any, key: str, path: Path) -> np.ndarray | None:
    """:func:`read_dataset`, or None when ``key`` is absent."""
    return read_dataset(group, key, path) if key in group else None


def read_dataset(group: Any, key: str, path: Path) -> np.ndarray:
    """``group[key][()]`` as a numeric array, or a :class:`DataError` naming file and key when
    it is missing, unreadable (damaged chunks), not numeric, or holds NaN/inf."""
    import h5py

    full_key = f"{group.name.rstrip('/')}/{key}".lstrip("/")
    if key not in group:
        raise DataError(f"{path}: key '{full_key}' missing")
    node = group[key]
    if not isinstance(node, h5py.Dataset):
        raise DataError(f"{path}: key '{full_key}' is a group, expected a dataset")
    try:
        array = node[()]
    except (OSError, RuntimeError, ValueError) as err:
        raise DataError(f"{path}: key '{full_key}': cannot read data, corrupt ({err})") from err
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"{path}: key '{full_key}': dtype {array.dtype} is not numeric")
    check_finite(array, full_key, str(path))
    return array


@contextlib.contextmanager
def atomic_directory(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it replaces ``target``.

    An existing ``target`` is kept untouched unless ``overwrite`` (and even then it is
    only removed after the new directory is complete), so a crash loses nothing.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (pass overwrite=True / --overwrite to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)  # left by a killed earlier writer of this dataset
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(target), suffix=TMP_SUFFIX, dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the dataset should get normal permissions
    try:
        yield tmp
        if target.exists():
            # the old data is moved aside, never deleted, until the new directory is in place
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            if old.exists():  # left by an earlier crash at this very point: its copy is stale
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def split_by_ends(ends: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of episodes in a flat dataset; an episode ends after a
    row whose ``ends`` flag is set; rows after the last flag form a final episode."""
    stops = (np.flatnonzero(ends) + 1).tolist()
    if not stops or stops[-1] != len(ends):
        stops.append(len(ends))
    starts = [0, *stops[:-1]]
    return [(a, b) for a, b in zip(starts, stops, strict=True) if b > a]


def buffer_to_episodes(buffer: Any) -> list[Episode]:
    """The live transitions of a :class:`~robokit.data.ReplayBuffer`, grouped back into episodes
    (oldest first). An episode whose first steps were overwritten starts where the data does; the
    episode still being collected (no end flag yet, including transitions a ``store_mc_return``
    buffer holds back) is returned with ``truncated`` set on its last step, so nothing is lost."""
    storage = buffer.storage
    slots = storage.live_slots()
    batches: list[tuple[dict, int]] = []  # (transition batch, task index of its first step)
    if len(slots):  # episodes of interleaved add() streams are regrouped by id, steps in order
        episode_ids, steps = storage.dense("episode")[slots], storage.dense("step")[slots]
        order = np.lexsort((steps, episode_ids))
        slots, episode_ids = slots[order], episode_ids[order]
        cuts = np.flatnonzero(np.diff(episode_ids)) + 1
        task_of = storage.dense("task")
        batches = [(buffer.gather_transitions(part), int(task_of[part[0]])) for part in np.split(slots, cuts)]
    for stream in buffer.unfinished_streams:  # add() transitions held back for mc_return
        rows = buffer.pending_rows(stream)
        if rows:
            batches.append((_pending_batch(buffer, rows), int(rows[0]["task"])))
    episodes = []
    for batch, task in batches:
        truncated = batch["truncated"].astype(bool)
        terminated = batch["terminated"].astype(bool)
        if not (terminated[-1] or truncated[-1]):
            truncated[-1] = True
        infos = {"mc_return": batch["mc_return"]} if "mc_return" in batch else {}
        episodes.append(Episode(_episode_observations(buffer, batch), batch["action"], batch["reward"],
                                terminated, truncated, infos, task=buffer.tasks[task] if task >= 0 else None))
    return episodes


def _pending_batch(buffer: Any, rows: list[dict]) -> dict[str, Any]:
    """An unfinished episode held back by a store_mc_return buffer, as a transition batch; its
    mc_return treats the newest step as the end (the rest of the episode is unknown)."""
    block = stack_rows(rows, buffer.ragged_fields)
    batch = {k: v for k, v in block.items() if k not in BOOKKEEPING}
    for key in ("terminated", "truncated", "reward"):
        batch[key] = np.asarray(batch[key], np.float32)
    batch["mc_return"] = buffer._returns(batch["reward"], batch["terminated"])
    for key in buffer.ragged_fields:
        clouds = batch[key]
        batch[f"{key}_offsets"] = concat_offsets([np.array([0, len(c)]) for c in clouds])
        channels = buffer.storage.specs[key].shape[1]
        batch[key] = np.concatenate(clouds) if clouds else np.zeros((0, channels), np.float32)
    return nest_obs(batch)


def _episode_observations(buffer: Any, batch: dict[str, Any]) -> Any:
    if isinstance(batch["obs"], dict):
        obs, following = batch["obs"], batch["next_obs"]
        return {k: _steps(obs, following, k) for k in obs if not k.endswith(OFFSETS_SUFFIX)}
    return _steps(batch, batch, "obs", "next_obs")


def _steps(obs: dict[str, Any], following: dict[str, Any], key: str, next_key: str | None = None) -> Any:
    """The T+1 observations of one part: T from ``obs[key]`` and the last from ``following``;
    a ragged part (with ``<key>_offsets``) becomes a list of clouds."""
    next_key = next_key or key
    if f"{key}{OFFSETS_SUFFIX}" in obs:
        clouds = split_ragged(obs[key], obs[f"{key}{OFFSETS_SUFFIX}"])
        last = split_ragged(following[next_key], following[f"{next_key}{OFFSETS_SUFFIX}"])[-1]
        return [*clouds, last]
    return np.concatenate([obs[key], following[next_key][-1:]])


def as_episodes(data: Any) -> list[Episode]:
    """Episodes from a list of episodes or a replay buffer."""
    if hasattr(data, "storage") and hasattr(data, "gather_transitions"):
        return buffer_to_episodes(data)
    episodes = list(data)
    for i, episode in enumerate(episodes):
        if not isinstance(episode, Episode):
            raise TypeError(f"item {i} is {type(episode).__name__}, expected robokit.data.Episode")
    return episodes


def flat_observations(episode: Episode, source: str) -> Any:
    """Observations of an episode for formats that cannot hold ragged point clouds."""
    if episode.is_ragged:
        raise DataError(f"{source}: ragged point-cloud observations cannot be stored in this format "
                        f"(use ReplayBuffer.save for point-cloud data)")
    return episode.observations
