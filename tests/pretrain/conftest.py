"""A tiny numpy hidden-goal task for the pretraining tests (no MuJoCo: fast and exact).

``DotGoalEnv``: a dot at p in [-1, 1]^2 drawn as a 3x3 white square on a black ``size x size``
frame; action a in [-1, 1]^2 moves it by ``0.25 * a``; the goal (the context) is NOT drawn.
``expert(p, goal) = clip(4 (goal - p), -1, 1)``. ``info["state"]`` = (p, goal) and
``info["success"]`` = within 0.15 of the goal. Episodes are robokit ``Episode`` objects with
dict observations ``{"image", "state"}`` so the state reference can read the privileged state.
"""

from __future__ import annotations

import numpy as np
import pytest

from robokit.data.episode import Episode

GOALS = np.array([[0.6, 0.6], [-0.6, 0.6], [0.6, -0.6], [-0.6, -0.6], [0.0, 0.7], [0.7, 0.0]], np.float32)


def draw(position: np.ndarray, size: int) -> np.ndarray:
    frame = np.zeros((size, size, 3), np.uint8)
    row, col = np.clip(np.round((position + 1) / 2 * (size - 3)).astype(int), 0, size - 3)
    frame[row:row + 3, col:col + 3] = 255
    return frame


class DotGoalEnv:
    """Minimal gymnasium-style env (reset/step) with a hidden goal."""

    def __init__(self, context: int = 0, size: int = 24, horizon: int = 12) -> None:
        self.goal, self.size, self.horizon = GOALS[context], size, horizon

    def _info(self) -> dict:
        distance = float(np.linalg.norm(self.position - self.goal))
        return {"state": np.concatenate([self.position, self.goal]).astype(np.float32), "success": distance < 0.15}

    def reset(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)
        self.position = self.rng.uniform(-0.8, 0.8, 2).astype(np.float32)
        self.t = 0
        return draw(self.position, self.size), self._info()

    def step(self, action):
        self.position = np.clip(self.position + 0.25 * np.clip(action, -1, 1), -1, 1).astype(np.float32)
        self.t += 1
        info = self._info()
        reward = -float(np.linalg.norm(self.position - self.goal))
        return draw(self.position, self.size), reward, False, self.t >= self.horizon, info

    def close(self) -> None:
        pass


def expert(obs, info) -> np.ndarray:
    state = info["state"]
    return np.clip(4.0 * (state[2:] - state[:2]), -1, 1).astype(np.float32)


def dot_episodes(contexts, per_context: int, size: int = 24, seed: int = 0, noise: float = 0.0) -> list[Episode]:
    """Expert episodes of the dot task, ``task`` = the context index."""
    rng = np.random.default_rng(seed)
    episodes = []
    for context in contexts:
        for _ in range(per_context):
            env = DotGoalEnv(context, size)
            obs, info = env.reset(seed=int(rng.integers(1 << 30)))
            images, states, actions = [obs], [info["state"]], []
            done = False
            while not done:
                action = np.clip(expert(obs, info) + noise * rng.normal(size=2), -1, 1).astype(np.float32)
                obs, _, term, trunc, info = env.step(action)
                images.append(obs)
                states.append(info["state"])
                actions.append(action)
                done = term or trunc
            steps = len(actions)
            episodes.append(Episode({"image": np.stack(images), "state": np.stack(states)}, np.stack(actions),
                                    np.zeros(steps), np.zeros(steps, bool), np.arange(steps) == steps - 1,
                                    task=int(context)))
    return episodes


@pytest.fixture(scope="session")
def dot_corpus():
    from robokit.pretrain.data import demos_from_episodes

    return demos_from_episodes(dot_episodes(range(4), 6, noise=0.3), source="dot-corpus")
