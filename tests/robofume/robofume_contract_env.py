"""A tiny reset-free env with the RoboFuME env contract (docs/robofume_envs.md), for the loop's tests.

It stands in at the env boundary (rfenv's MuJoCo task pairs are tested on their own): a point on a
line, "forward" succeeds at x >= 0.6, "backward" at x <= -0.6; observations are
``{"image": (16, 16, 3) uint8 (a bright column at x), "proprio": (1,), "task": (2,) one-hot}``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ENV_ID = "robokit-test/LineBackForth-v0"
INSTRUCTIONS = ("move right", "move left")


class LineBackForthEnv(gym.Env):
    """Reset-free: ``reset()`` restores x = 0 only on the first call, every ``reset_every`` env steps,
    or with ``options={"hard": True}``; otherwise the state carries over."""

    metadata = {"render_modes": []}

    def __init__(self, reset_every: int = 1000, render_mode: str | None = None) -> None:
        self.instructions = INSTRUCTIONS
        self.reset_every = int(reset_every)
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
            "proprio": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
            "task": gym.spaces.Box(0.0, 1.0, (2,), np.float32)})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.x, self.task, self.hard_resets, self.since_hard, self.started = 0.0, 0, 0, 0, False

    def set_instruction(self, name_or_index) -> None:
        self.task = name_or_index if isinstance(name_or_index, int) else self.instructions.index(name_or_index)

    def success(self) -> bool:
        return self.x >= 0.6 if self.task == 0 else self.x <= -0.6

    def _obs(self) -> dict:
        image = np.zeros((16, 16, 3), np.uint8)
        image[:, int(round((self.x + 1) * 7.5))] = 255
        return {"image": image, "proprio": np.array([self.x], np.float32), "task": np.eye(2, dtype=np.float32)[self.task]}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        hard = not self.started or self.since_hard >= self.reset_every or bool((options or {}).get("hard"))
        if hard:
            self.x, self.since_hard, self.started = 0.0, 0, True
            self.hard_resets += 1
        info = {"success": self.success(), "instruction": self.instructions[self.task], "hard_reset": hard}
        return self._obs(), info

    def step(self, action):
        self.x = float(np.clip(self.x + 0.3 * float(np.asarray(action).reshape(-1)[0]), -1.0, 1.0))
        self.since_hard += 1
        success = self.success()
        info = {"success": success, "instruction": self.instructions[self.task], "hard_reset": False}
        return self._obs(), float(success), False, False, info


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=LineBackForthEnv, max_episode_steps=10)


def scripted_episodes(instruction: int, count: int, seed: int = 0, noise: float = 0.2):
    """``count`` demos of ``instruction`` in the line env (push towards its side with noise), as Episodes."""
    from robokit.data import Episode

    rng = np.random.default_rng(seed)
    env = gym.make(ENV_ID, reset_every=1)
    episodes = []
    for _ in range(count):
        env.unwrapped.set_instruction(instruction)
        obs, _ = env.reset(seed=int(rng.integers(1000)))
        frames, actions, rewards = [obs], [], []
        while True:
            direction = 1.0 if instruction == 0 else -1.0
            action = np.clip(direction + noise * rng.standard_normal(1), -1, 1).astype(np.float32)
            obs, reward, terminated, truncated, info = env.step(action)
            frames.append(obs)
            actions.append(action)
            rewards.append(reward)
            if info["success"] or truncated:
                break
        observations = {key: np.stack([f[key] for f in frames]) for key in frames[0]}
        steps = len(actions)
        episodes.append(Episode(observations, np.stack(actions), np.array(rewards, np.float32),
                                np.array([False] * (steps - 1) + [bool(info["success"])]),
                                np.array([False] * (steps - 1) + [not info["success"]]),
                                task=INSTRUCTIONS[instruction]))
    return episodes
