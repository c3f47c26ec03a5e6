"""D4RL-style HDF5: one flat table of transitions.

Datasets at the file's root (N = total transitions):
``observations`` (N, O), ``actions`` (N, A), ``rewards`` (N,), ``terminals`` (N,)
(true ends), ``timeouts`` (N,) (time limits), ``next_observations`` (N, O), and
optionally ``infos/<key>`` (N, ...). An episode ends after a row with
``terminals`` or ``timeouts`` set, and, when the file has ``next_observations``,
after a row t where ``observations[t + 1]`` differs from ``next_observations[t]``
(L2 distance above 1e-6: CORL's rule in ``get_return_to_go``, cal_ql.py; D4RL
files do not always flag time-outs, and without it Monte-Carlo returns would run
across episodes); such an episode is marked truncated. Files written by robokit
also carry the root attributes ``env_id`` and ``robokit_format``.

Without ``next_observations`` (as in some original D4RL files) the final
observation of an episode is unknown: a time-limited episode loses its last step
(as ``d4rl.qlearning_dataset`` skips it), a terminated one repeats its last
observation as a placeholder (never used: the bootstrap mask is 0). Rows after
the last end flag form a final episode marked truncated.
"""

from __future__ import annotations

import warnings
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
    split_by_ends,
)

REQUIRED = ("observations", "actions", "rewards", "terminals")
#: observations[t + 1] and next_observations[t] further apart than this (L2) start a new episode (CORL)
CONTINUITY_TOLERANCE = 1e-6


def looks_like_d4rl(handle: Any) -> bool:
    return all(key in handle for key in ("observations", "actions", "rewards"))


def load_d4rl(path: str | Path) -> list[Episode]:
    """Episodes of a D4RL-style HDF5 file.

    Raises:
        DataError: naming file, key and row for missing keys, mismatched lengths,
            non-numeric data or NaN/inf.
    """
    path = Path(path)
    with open_hdf5(path) as handle:
        arrays = {key: read_dataset(handle, key, path) for key in REQUIRED}
        timeouts = read_optional(handle, "timeouts", path)
        next_obs = read_optional(handle, "next_observations", path)
        infos = {}
        if "infos" in handle:
            infos = {key: read_dataset(handle["infos"], key, path) for key in handle["infos"]}
    total = len(arrays["rewards"])
    timeouts = np.zeros(total, bool) if timeouts is None else timeouts
    columns = {**arrays, "timeouts": timeouts, **{f"infos/{k}": v for k, v in infos.items()}}
    if next_obs is not None:
        columns["next_observations"] = next_obs
    for key, value in columns.items():
        if len(value) != total:
            raise DataError(f"{path}: key '{key}': length {len(value)}, but 'rewards' has {total} rows")
    if next_obs is not None and next_obs.shape != arrays["observations"].shape:
        raise DataError(f"{path}: key 'next_observations': shape {next_obs.shape}, but 'observations' "
                        f"has {arrays['observations'].shape}")
    return _split(path, columns, next_obs is not None)


def _split(path: Path, columns: dict[str, np.ndarray], have_next: bool) -> list[Episode]:
    terminals = _flags(columns["terminals"], "terminals", path)
    timeouts = _flags(columns["timeouts"], "timeouts", path)
    ends = terminals | timeouts
    if have_next:
        ends = ends | discontinuities(columns["observations"], columns["next_observations"])
    episodes, dropped = [], 0
    for start, stop in split_by_ends(ends):
        term, trunc = terminals[start:stop].copy(), timeouts[start:stop].copy()
        if not term[-1]:
            trunc[-1] = True  # includes rows after the last end flag: cut off by the end of the file
        obs = columns["observations"][start:stop]
        if have_next:
            final = columns["next_observations"][stop - 1:stop]
        elif term[-1]:
            final = obs[-1:]  # placeholder: never used, the bootstrap mask of a terminal step is 0
        else:  # time limit and no next_observations: the final observation is unknown, drop the step
            if stop - start < 2:
                dropped += 1
                continue
            stop, final = stop - 1, obs[-1:]
            obs, term, trunc = obs[:-1], term[:-1], trunc[:-1]
            trunc[-1] = True
        infos = {k[len("infos/"):]: v[start:stop] for k, v in columns.items() if k.startswith("infos/")}
        episodes.append(Episode(np.concatenate([obs, final]), columns["actions"][start:stop],
                                columns["rewards"][start:stop], term, trunc, infos,
                                source=f"{path} rows {start}..{stop - 1}"))
    if dropped:
        warnings.warn(f"{path}: {dropped} one-step episodes dropped (no next_observations)", stacklevel=3)
    return episodes


def discontinuities(observations: np.ndarray, next_observations: np.ndarray) -> np.ndarray:
    """(N,) bool: True at rows t where ``observations[t + 1]`` is not ``next_observations[t]``
    (L2 distance over the flattened observation above :data:`CONTINUITY_TOLERANCE`); the last row
    is False (the end of the file ends its episode anyway). Inputs (N, ...) of equal shape."""
    flags = np.zeros(len(observations), bool)
    if len(observations) > 1:
        gap = (observations[1:].astype(np.float64) - next_observations[:-1]).reshape(len(observations) - 1, -1)
        flags[:-1] = np.linalg.norm(gap, axis=1) > CONTINUITY_TOLERANCE
    return flags


def _flags(values: np.ndarray, key: str, path: Path) -> np.ndarray:
    values = values.reshape(-1)
    if values.dtype != np.bool_:
        bad = np.flatnonzero((values != 0) & (values != 1))
        if bad.size:
            raise DataError(f"{path}: key '{key}' index {int(bad[0])}: value {values[bad[0]]} is not 0/1")
    return values.astype(bool)


def save_d4rl(episodes: Any, path: str | Path, env_id: str | None = None) -> Path:
    """Write episodes (or a replay buffer) as a D4RL-style HDF5 file, atomically."""
    import h5py

    path = Path(path)
    episodes = as_episodes(episodes)
    if not episodes:
        raise DataError(f"{path}: no episodes to write")
    obs = [flat_observations(ep, str(path)) for ep in episodes]
    if isinstance(obs[0], dict):
        raise DataError(f"{path}: dict observations cannot be stored in D4RL layout (use robomimic or Minari)")
    columns = {
        "observations": np.concatenate([o[:-1] for o in obs]),
        "next_observations": np.concatenate([o[1:] for o in obs]),
        "actions": np.concatenate([ep.actions for ep in episodes]),
        "rewards": np.concatenate([ep.rewards for ep in episodes]),
        "terminals": np.concatenate([ep.terminated for ep in episodes]),
        "timeouts": np.concatenate([ep.truncated for ep in episodes]),
    }
    info_keys = set(episodes[0].infos)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        for key, value in columns.items():
            handle.create_dataset(key, data=value)
        for key in sorted(info_keys):
            handle.create_dataset(f"infos/{key}", data=np.concatenate([ep.infos[key] for ep in episodes]))
        handle.attrs["robokit_format"] = "d4rl"
        if env_id:
            handle.attrs["env_id"] = env_id
    return path
