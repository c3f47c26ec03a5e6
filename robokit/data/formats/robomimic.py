"""robomimic HDF5 (the layout of robosuite demonstrations after robomimic's
``dataset_states_to_obs``)::

    data/                       attrs: total (int), env_args (JSON string)
      demo_0/                   attrs: num_samples (int), [model_file (MJCF string)]
        obs/<key>               (T, ...)   observation at each step
        next_obs/<key>          (T, ...)   observation after each step
        actions                 (T, A)
        rewards                 (T,)
        dones                   (T,) int   1 on the step that ended the demo
        [states]                (T, S)     simulator states (kept as infos["states"])
    [mask/<filter>]             demo names (bytes) of a filter key, e.g. train / valid

robomimic has one ``dones`` flag. Reading maps it to ``terminated``; a demo whose
last step has ``dones == 0`` is marked ``truncated``. robokit also writes a
``truncations`` dataset per demo (ignored by robomimic) so the split survives a
round trip. A vector observation is stored as ``obs/flat`` with the demo
attribute ``robokit_flat_obs = 1`` and read back as an array.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from robokit.core.atomic import atomic_path
from robokit.data.episode import Episode
from robokit.data.errors import DataError
from robokit.data.formats.common import (
    as_episodes,
    flat_observations,
    open_hdf5,
    read_dataset,
    read_optional,
)

FLAT_KEY = "flat"


def looks_like_robomimic(handle: Any) -> bool:
    return "data" in handle and any(str(k).startswith("demo_") for k in handle["data"])


def _demo_order(names: list[str]) -> list[str]:
    def index(name: str) -> int:
        match = re.fullmatch(r"demo_(\d+)", name)
        return int(match.group(1)) if match else 1 << 62

    return sorted((n for n in names if n.startswith("demo_")), key=lambda n: (index(n), n))


def load_robomimic(path: str | Path, filter_key: str | None = None) -> list[Episode]:
    """Episodes of a robomimic HDF5 file (optionally only the demos of ``mask/<filter_key>``).

    Raises:
        DataError: naming file, key and index for a missing ``data`` group, demos without
            ``obs`` (raw robosuite demos hold only simulator states), mismatched lengths,
            non-numeric data or NaN/inf.
    """
    path = Path(path)
    with open_hdf5(path) as handle:
        if "data" not in handle:
            raise DataError(f"{path}: key 'data' missing: not a robomimic file")
        names = _demo_order(list(handle["data"].keys()))
        if filter_key is not None:
            if f"mask/{filter_key}" not in handle:
                raise DataError(f"{path}: key 'mask/{filter_key}' missing")
            wanted = {n.decode() if isinstance(n, bytes) else str(n) for n in handle[f"mask/{filter_key}"][()]}
            names = [n for n in names if n in wanted]
        return [_read_demo(handle["data"][name], path) for name in names]


def _read_demo(demo: Any, path: Path) -> Episode:
    name = demo.name.lstrip("/")
    if "obs" not in demo:
        raise DataError(f"{path}: key '{name}/obs' missing (a raw robosuite demo holds only states; "
                        f"run robomimic's dataset_states_to_obs first)")
    actions = read_dataset(demo, "actions", path)
    steps = len(actions)
    rewards = read_optional(demo, "rewards", path)
    dones = read_optional(demo, "dones", path)
    truncations = read_optional(demo, "truncations", path)
    rewards = np.zeros(steps, np.float32) if rewards is None else rewards
    terminated = np.zeros(steps, bool) if dones is None else dones.astype(bool).reshape(-1)
    if truncations is None:
        truncated = np.zeros(steps, bool)
        truncated[-1:] = not (len(terminated) and terminated[-1])
    else:
        truncated = truncations.astype(bool).reshape(-1)
    observations: dict[str, np.ndarray] = {}
    for key in demo["obs"]:
        obs = read_dataset(demo["obs"], key, path)
        if len(obs) != steps:
            raise DataError(f"{path}: key '{name}/obs/{key}': length {len(obs)}, 'actions' has {steps}")
        following = read_dataset(demo["next_obs"], key, path) if "next_obs" in demo else None
        final = following[-1:] if following is not None else obs[-1:]
        observations[key] = np.concatenate([obs, final])
    flat = bool(demo.attrs.get("robokit_flat_obs")) and set(observations) == {FLAT_KEY}
    infos = {}
    if "states" in demo:
        infos["states"] = read_dataset(demo, "states", path)
    return Episode(observations[FLAT_KEY] if flat else observations, actions, rewards, terminated, truncated, infos, source=f"{path}: {name}")


def save_robomimic(episodes: Any, path: str | Path, env_args: dict | None = None,
                   env_id: str | None = None) -> Path:
    """Write episodes (or a replay buffer) in robomimic's HDF5 layout, atomically.

    Args:
        episodes: list of :class:`Episode` or a replay buffer.
        path: output ``.hdf5``.
        env_args: robomimic ``env_args`` (``env_name``, ``type``, ``env_kwargs``); a
            gymnasium-type entry naming ``env_id`` is written when not given.
    """
    import h5py

    path = Path(path)
    episodes = as_episodes(episodes)
    if env_args is None:  # robomimic's EnvType: 1 robosuite, 2 gym, 3 ig_momart
        env_args = {"env_name": env_id or "unknown", "type": 2, "env_kwargs": {}}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        data = handle.create_group("data")
        total = 0
        for i, episode in enumerate(episodes):
            _write_demo(data.create_group(f"demo_{i}"), episode, str(path))
            total += len(episode)
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps(env_args)
        names = np.array([f"demo_{i}".encode() for i in range(len(episodes))])
        handle.create_dataset("mask/all", data=names)
    return path


def _write_demo(group: Any, episode: Episode, source: str) -> None:
    obs = flat_observations(episode, source)
    if not isinstance(obs, dict):
        obs = {FLAT_KEY: obs}
        group.attrs["robokit_flat_obs"] = 1
    for key, value in obs.items():
        group.create_dataset(f"obs/{key}", data=value[:-1])
        group.create_dataset(f"next_obs/{key}", data=value[1:])
    group.create_dataset("actions", data=episode.actions)
    group.create_dataset("rewards", data=episode.rewards)
    group.create_dataset("dones", data=episode.terminated.astype(np.int64))
    group.create_dataset("truncations", data=episode.truncated)
    if "states" in episode.infos:
        group.create_dataset("states", data=episode.infos["states"])
    group.attrs["num_samples"] = len(episode)
