"""A two-task env family for multi-task learning: ArmReach with two fixed goals.

``robokit/ArmReachMultiTask-v0`` observes ``{"proprio": (8,), "task": (2,)}``: the arm's joint
state and fingertip, and a one-hot task vector saying which goal to reach. The goal itself is
not observed, so a policy that ignores the task vector can solve at most one task reliably;
one conditioned on it can solve both. The task is chosen at reset: ``options={"task": name or
index}``, else the env's fixed ``task`` (a constructor argument), else drawn from the env's RNG
(so seeded resets give a reproducible task mix).
``info["task"]`` names the episode's task.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robokit.envs.arm_reach import ArmReachEnv

#: task name -> goal xy [m] (both inside the arm's reach of 0.21 m, on opposite sides)
TASKS: dict[str, tuple[float, float]] = {"reach-left": (-0.08, 0.12), "reach-right": (0.12, -0.08)}


def task_index(task: Any, names: tuple[str, ...], kind: str = "task") -> int:
    """The index of ``task`` (a name or an index) in ``names``; ``kind`` names it in the error.

    Raises:
        ValueError: naming the task and the known ones.
    """
    if isinstance(task, str) and task in names:
        return names.index(task)
    if isinstance(task, int | np.integer) and not isinstance(task, bool) and 0 <= int(task) < len(names):
        return int(task)
    raise ValueError(f"unknown {kind} {task!r}; {kind}s are {list(names)} (or their indices)")


class ArmReachMultiTaskEnv(ArmReachEnv):
    """ArmReach with the goal fixed by a task; observation ``{"proprio": (8,), "task": (K,) one-hot}``.

    ``proprio``: cos q (2), sin q (2), joint velocities (2), fingertip xy (2). Reward (sparse by
    default), termination and actions as ArmReach.
    """

    def __init__(self, tasks: dict[str, tuple[float, float]] | None = None, task: str | int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tasks = dict(tasks or TASKS)
        self.task_names = tuple(self.tasks)
        self.fixed_task = None if task is None else task_index(task, self.task_names)
        self.task = 0
        self.observation_space = gym.spaces.Dict({
            "proprio": gym.spaces.Box(-np.inf, np.inf, (8,), np.float32),
            "task": gym.spaces.Box(0.0, 1.0, (len(self.task_names),), np.float32)})

    def _sample_goal(self, options: dict | None) -> np.ndarray:
        chosen = (options or {}).get("task", self.fixed_task)
        self.task = int(self.np_random.integers(len(self.task_names))) if chosen is None \
            else task_index(chosen, self.task_names)
        return np.array(self.tasks[self.task_names[self.task]], np.float64)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "task": self.task_names[self.task]}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "task": self.task_names[self.task]}

    def _observation(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        qpos, qvel = self.data.qpos[:2], self.data.qvel[:2]
        proprio = np.concatenate([np.cos(qpos), np.sin(qpos), qvel, self._fingertip_xy()]).astype(np.float32)
        one_hot = np.zeros(len(self.task_names), np.float32)
        one_hot[self.task] = 1.0
        return {"proprio": proprio, "task": one_hot}
