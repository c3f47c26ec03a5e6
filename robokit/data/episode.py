"""One episode of interaction, with ``terminated`` and ``truncated`` kept apart.

Shapes (T = number of steps, ``len(episode)``):

- ``observations``: ``(T+1, *obs_shape)`` array (includes the final observation),
  or ``dict[str, (T+1, ...)]``, or, for point clouds, a list of ``T+1`` arrays
  ``(N_t, C)`` float32 (ragged: each step has its own number of points); a dict part
  may be such a list too (``{"points": [(N_t, C)] * (T+1), "proprio": (T+1, P)}``).
- ``actions`` ``(T, A)`` float32, ``rewards`` ``(T,)`` float32,
  ``terminated`` ``(T,)`` bool, ``truncated`` ``(T,)`` bool: only the last step
  may be ``True`` in either; ``terminated`` means a true end (no bootstrap),
  ``truncated`` a time limit or reset (bootstrap from the final observation).
- ``infos``: ``dict[str, (T, ...)]``, e.g. ``infos["success"]`` ``(T,)`` bool.
- ``task``: the episode's task, a task id or an instruction string (None: single-task data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robokit.data.errors import DataError, check_finite, check_length, where

Observations = np.ndarray | dict[str, np.ndarray] | list[np.ndarray]


class Episode:
    """A validated episode; see the module docstring for shapes.

    Args:
        observations, actions, rewards, terminated, truncated, infos: as above.
        source: where the data came from (a file name), used in error messages.
        task: the task the episode performs (an id or an instruction; stored as a string).

    Raises:
        DataError: naming source, key and index for wrong lengths, wrong dtypes,
            NaN/inf, or an end flag set before the last step.
    """

    __slots__ = ("observations", "actions", "rewards", "terminated", "truncated", "infos", "task")

    def __init__(self, observations: Observations, actions: Any, rewards: Any, terminated: Any,
                 truncated: Any, infos: Mapping[str, Any] | None = None, source: str | None = None,
                 task: str | int | None = None):
        self.actions = _as_numeric(actions, "actions", source, np.float32)
        if self.actions.ndim == 1:
            self.actions = self.actions[:, None]
        steps = len(self.actions)
        self.rewards = _as_numeric(rewards, "rewards", source, np.float32).reshape(-1)
        self.terminated = _as_flags(terminated, "terminated", source)
        self.truncated = _as_flags(truncated, "truncated", source)
        self.observations = _as_observations(observations, steps + 1, source)
        self.infos = {str(k): np.asarray(v) for k, v in (infos or {}).items()}
        self.task = _as_task(task, source)
        for key, array in (("rewards", self.rewards), ("terminated", self.terminated),
                           ("truncated", self.truncated)):
            check_length(array, steps, key, source)
        for key, array in self.infos.items():
            check_length(array, steps, f"infos/{key}", source)
        for key in ("terminated", "truncated"):
            _check_end_only_at_last(getattr(self, key), key, source)

    def __len__(self) -> int:
        return len(self.actions)

    def __repr__(self) -> str:
        task = f", task={self.task!r}" if self.task is not None else ""
        return (f"Episode(T={len(self)}, obs={describe_observations(self.observations)}, "
                f"action_dim={self.action_dim}, return={self.total_return:.3f}, "
                f"terminated={self.is_terminated}, truncated={self.is_truncated}{task})")

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def total_return(self) -> float:
        """Undiscounted sum of rewards."""
        return float(self.rewards.sum(dtype=np.float64))

    @property
    def is_terminated(self) -> bool:
        return bool(len(self) and self.terminated[-1])

    @property
    def is_truncated(self) -> bool:
        return bool(len(self) and self.truncated[-1])

    @property
    def is_ragged(self) -> bool:
        """True when observations are (or, for a dict, hold) a list of point clouds."""
        obs = self.observations
        return isinstance(obs, list) or (isinstance(obs, dict) and any(isinstance(v, list) for v in obs.values()))

    def observation(self, index: int | np.ndarray | slice) -> Any:
        """Observation(s) at ``index`` (works for arrays, dicts and ragged lists)."""
        obs = self.observations
        if isinstance(obs, dict):
            return {k: _index(v, index) for k, v in obs.items()}
        return _index(obs, index)


def _index(obs: np.ndarray | list[np.ndarray], index: int | np.ndarray | slice) -> Any:
    if isinstance(obs, list):
        if isinstance(index, slice):
            return obs[index]
        if np.ndim(index):
            return [obs[int(i)] for i in np.asarray(index)]
        return obs[int(index)]
    return obs[index]


def _as_task(task: Any, source: str | None) -> str | None:
    if task is None:
        return None
    if isinstance(task, bytes):
        task = task.decode()
    if isinstance(task, bool) or not isinstance(task, str | int | np.integer | np.str_):
        raise DataError(f"{where(source, 'task')}: expected a task id or instruction string, "
                        f"got {type(task).__name__}")
    text = str(task)
    if not text.strip():
        raise DataError(f"{where(source, 'task')}: empty task name")
    return text


def describe_observations(obs: Observations) -> str:
    """A one-line description such as ``(101, 17) float32`` or ``ragged 11x(N,4)``."""
    if isinstance(obs, dict):
        return "{" + ", ".join(f"{k}: {describe_observations(v)}" for k, v in obs.items()) + "}"
    if isinstance(obs, list):
        channels = obs[0].shape[1] if obs else 0
        return f"ragged {len(obs)}x(N,{channels}) {obs[0].dtype if obs else 'float32'}"
    return f"{tuple(obs.shape)} {obs.dtype}"


def _as_numeric(value: Any, key: str, source: str | None, dtype: type) -> np.ndarray:
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"{where(source, key)}: dtype {array.dtype} is not numeric")
    array = array.astype(dtype, copy=False)
    check_finite(array, key, source)
    return array


def _as_flags(value: Any, key: str, source: str | None) -> np.ndarray:
    array = np.asarray(value).reshape(-1)
    if array.dtype != np.bool_:
        if not np.issubdtype(array.dtype, np.number):
            raise DataError(f"{where(source, key)}: dtype {array.dtype} is not bool")
        bad = np.flatnonzero((array != 0) & (array != 1))
        if bad.size:
            raise DataError(f"{where(source, key, int(bad[0]))}: value {array[bad[0]]} is not 0/1")
        array = array.astype(bool)
    return array


def _check_end_only_at_last(flags: np.ndarray, key: str, source: str | None) -> None:
    early = np.flatnonzero(flags[:-1])
    if early.size:
        raise DataError(f"{where(source, key, int(early[0]))}: episode ends before its last step "
                        f"(T={len(flags)}); split it into episodes first")


def _as_observations(obs: Any, expected: int, source: str | None, key: str = "observations") -> Observations:
    if isinstance(obs, Mapping) and key == "observations":
        return {str(k): _as_observations(v, expected, source, f"observations/{k}")  # type: ignore[misc]
                for k, v in obs.items()}
    if isinstance(obs, Sequence) and not isinstance(obs, np.ndarray) and _looks_ragged(obs):
        check_length(obs, expected, key, source)
        return [_as_point_cloud(cloud, i, source, key) for i, cloud in enumerate(obs)]
    return _as_observation_array(obs, expected, key, source)


def _looks_ragged(obs: Sequence) -> bool:
    """A list of 2-D arrays is a sequence of point clouds (each ``(N_t, C)``)."""
    return len(obs) > 0 and all(isinstance(o, np.ndarray) and o.ndim == 2 for o in obs)


def _as_observation_array(value: Any, expected: int, key: str, source: str | None) -> np.ndarray:
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"{where(source, key)}: dtype {array.dtype} is not numeric")
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    check_length(array, expected, key, source)
    check_finite(array, key, source)
    return array


def _as_point_cloud(cloud: np.ndarray, index: int, source: str | None, key: str = "observations") -> np.ndarray:
    if cloud.ndim != 2 or cloud.shape[1] < 3:
        raise DataError(f"{where(source, key, index)}: point cloud shape {cloud.shape}, expected (N, C>=3)")
    if not np.issubdtype(cloud.dtype, np.floating):
        raise DataError(f"{where(source, key, index)}: point cloud dtype {cloud.dtype}, expected float32")
    cloud = cloud.astype(np.float32, copy=False)
    finite = np.isfinite(cloud)
    if not finite.all():
        row, col = (int(i) for i in np.argwhere(~finite)[0])
        raise DataError(f"{where(source, key, index)}: point {row} column {col} is {cloud[row, col]}")
    return cloud
