"""Minari datasets, read and written through minari's own local storage API
(``minari.dataset.minari_storage.MinariStorage``; no network).

A dataset directory ``DIR`` holds ``DIR/data/metadata.json`` and
``DIR/data/main_data.hdf5``; :func:`save_minari` writes it atomically (temporary
directory, then rename) and ``minari.load_dataset(DIR.name)`` reads it when
``MINARI_DATASETS_PATH`` is ``DIR``'s parent (name it like ``my-data-v0``);
``minari.MinariDataset(DIR / "data")`` always reads it. Images are stored
losslessly (``jpeg_encoding=False``). Infos follow Minari's convention of T+1 entries
(the reset's info first; robokit writes zeros there) and are read back as T entries.
An episode's task (``Episode.task``) is stored as Minari's per-episode reset options,
``options={"task": ...}`` (HDF5 attribute ``options/task`` of the episode group), since
that is how the multi-task envs choose a task at reset.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from robokit.data.episode import Episode
from robokit.data.errors import DataError, where
from robokit.data.formats.common import as_episodes, atomic_directory, flat_observations

DATASET_ID = re.compile(r"^(?:[\w:.-]+/)*[\w:.-]+-v\d+$")


def minari_data_dir(path: str | Path) -> Path | None:
    """The ``data`` folder of a Minari dataset at ``path`` (dataset dir, data dir or main_data.hdf5)."""
    path = Path(path)
    for candidate in (path / "data", path, path.parent):
        if (candidate / "metadata.json").is_file():
            return candidate
    return None


def load_minari(path: str | Path) -> list[Episode]:
    """Episodes of the Minari dataset at ``path``.

    Raises:
        DataError: naming the path for a missing/corrupt dataset, and episode and key for bad content.
    """
    from robokit.optional import require

    require("minari", "sim")
    from minari import MinariDataset

    data_dir = minari_data_dir(Path(path).absolute())
    if data_dir is None:
        raise DataError(f"{path}: not a Minari dataset (no data/metadata.json)")
    check_minari_metadata(data_dir / "metadata.json")
    try:
        dataset = MinariDataset(data_dir)
        episodes = list(dataset.iterate_episodes())
        metadata = list(dataset.storage.get_episode_metadata([ep.id for ep in episodes]))
    except (OSError, KeyError, ValueError, TypeError, AttributeError, AssertionError) as err:
        raise DataError(f"{data_dir}: cannot read Minari dataset, truncated or corrupt "
                        f"({type(err).__name__}: {err})") from err
    return [_to_episode(ep, data_dir, meta.get("options", {}).get("task"))
            for ep, meta in zip(episodes, metadata, strict=True)]


#: metadata.json keys minari reads, with the JSON types it asserts
METADATA_TYPES: dict[str, tuple[type, ...]] = {
    "dataset_id": (str,), "minari_version": (str,), "data_format": (str,), "observation_space": (str,),
    "action_space": (str,), "total_episodes": (int,), "total_steps": (int,), "env_spec": (str, type(None)),
}
METADATA_OPTIONAL = ("env_spec",)


def check_minari_metadata(path: Path) -> dict[str, Any]:
    """The parsed ``metadata.json`` of a Minari dataset, checked before minari reads it.

    Raises:
        DataError: naming the file and key when it is not JSON, not an object, or a key minari
            needs is missing or of the wrong type (minari itself would fail with an assertion).
    """
    import json

    try:
        metadata = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(metadata, dict):
        raise DataError(f"{path}: expected a JSON object, got a {type(metadata).__name__}")
    for key, types in METADATA_TYPES.items():
        if key not in metadata:
            if key in METADATA_OPTIONAL:
                continue
            raise DataError(f"{where(str(path), key)}: missing")
        value = metadata[key]
        if not isinstance(value, types) or isinstance(value, bool):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise DataError(f"{where(str(path), key)}: expected {expected}, got {type(value).__name__}")
    return metadata


def _to_episode(data: Any, data_dir: Path, task: Any = None) -> Episode:
    return Episode(data.observations, data.actions, data.rewards, data.terminations, data.truncations,
                   step_infos(data.infos or {}, len(data.rewards)),
                   source=f"{data_dir / 'main_data.hdf5'}: episode_{data.id}", task=task)


def step_infos(infos: dict[str, Any], steps: int, prefix: str = "") -> dict[str, np.ndarray]:
    """Minari infos (T+1 entries: the reset's info first, as minari's DataCollector records them;
    nested dicts allowed) as robokit infos: ``(T, ...)`` per step, nested keys joined with '/'.
    Entries of any other length are left out."""
    out: dict[str, np.ndarray] = {}
    for key, value in infos.items():
        if isinstance(value, dict):
            out.update(step_infos(value, steps, f"{prefix}{key}/"))
            continue
        array = np.asarray(value)
        if array.ndim and len(array) == steps + 1:
            out[f"{prefix}{key}"] = array[1:]
        elif array.ndim and len(array) == steps:
            out[f"{prefix}{key}"] = array
    return out


def minari_infos(infos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """robokit infos ``(T, ...)`` in Minari's convention: T+1 entries, a zero reset entry first."""
    return {k: np.concatenate([np.zeros_like(v[:1]), v]) for k, v in infos.items()}


def save_minari(episodes: Any, out_dir: str | Path, env_id: str | None = None, dataset_id: str | None = None,
                algorithm_name: str | None = None, author: str | None = None, description: str | None = None,
                overwrite: bool = False) -> Path:
    """Write episodes (or a replay buffer) as a Minari dataset in ``out_dir``; returns ``out_dir``.

    Args:
        episodes: list of :class:`Episode` (array or dict observations) or a ReplayBuffer.
        out_dir: the dataset directory to create.
        env_id: gymnasium id the data came from (stored as the env spec, so
            ``dataset.recover_environment()`` works); spaces are taken from the env.
        dataset_id: Minari id; default ``out_dir.name`` when it looks like ``name-vN``,
            else ``robokit/<name>-v0``.
        overwrite: replace an existing ``out_dir`` (only after the new one is complete).
    """
    from robokit.optional import require

    require("minari", "sim")
    from minari import __version__ as minari_version
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    out_dir = Path(out_dir).absolute()  # minari's get_size() joins a relative data path twice
    episodes = as_episodes(episodes)
    if not episodes:
        raise DataError(f"{out_dir}: no episodes to write")
    for ep in episodes:
        flat_observations(ep, str(out_dir))
    env_spec, observation_space, action_space = _spaces(episodes, env_id)
    safe_name = re.sub(r"[^\w.-]", "-", out_dir.name)
    dataset_id = dataset_id or (out_dir.name if DATASET_ID.match(out_dir.name) else f"robokit/{safe_name}-v0")
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        storage = MinariStorage.new(tmp / "data", observation_space=observation_space, action_space=action_space,
                                    env_spec=env_spec, data_format="hdf5", jpeg_encoding=False)
        storage.update_episodes(EpisodeBuffer(id=i, observations=ep.observations, actions=ep.actions,
                                              rewards=ep.rewards, terminations=ep.terminated,
                                              truncations=ep.truncated, infos=minari_infos(ep.infos),
                                              options=None if ep.task is None else {"task": ep.task})
                                for i, ep in enumerate(episodes))
        metadata: dict[str, Any] = {"dataset_id": dataset_id, "minari_version": minari_version,
                                    "algorithm_name": algorithm_name or "unknown",
                                    "description": description or "written by robokit"}
        if author:
            metadata["author"] = {author}
        storage.update_metadata(metadata)
    return out_dir


def _spaces(episodes: list[Episode], env_id: str | None) -> tuple[Any, Any, Any]:
    """(env_spec or None, observation space, action space): from the env when it can be made,
    else Boxes that fit the data."""
    import gymnasium as gym

    if env_id:
        if env_id.startswith("robokit/"):
            import robokit.envs  # noqa: F401  (registers robokit/* ids)
        try:
            spec = gym.spec(env_id)
            env = gym.make(env_id)
            spaces = env.observation_space, env.action_space
            env.close()
            return spec, *spaces
        except Exception as err:  # noqa: BLE001 - any failure to build the env falls back to data spaces
            import warnings

            warnings.warn(f"could not make env {env_id!r} ({err}); using spaces inferred from the data",
                          stacklevel=3)
    return None, _space_for(episodes[0].observations), _box_for(episodes[0].actions[0])


def _space_for(obs: Any) -> Any:
    import gymnasium as gym

    if isinstance(obs, dict):
        return gym.spaces.Dict({k: _box_for(v[0]) for k, v in obs.items()})
    return _box_for(obs[0])


def _box_for(sample: np.ndarray) -> Any:
    import gymnasium as gym

    sample = np.asarray(sample)
    if sample.dtype == np.uint8:
        return gym.spaces.Box(0, 255, sample.shape, np.uint8)
    return gym.spaces.Box(-np.inf, np.inf, sample.shape, sample.dtype if sample.dtype.kind == "f" else np.float32)
