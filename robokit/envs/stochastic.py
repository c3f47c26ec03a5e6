"""Small stochastic problems where conditioning on a return misleads (and one deterministic twin).

Discrete problems are exposed with robokit's Box conventions so every agent can use them:
observations are one-hot vectors, actions are vectors in [-1, 1]^n whose argmax is the
discrete action (datasets store ``2 * one_hot - 1``). README cards: ``envs/bernoulli_bandit``,
``envs/frozen_lake``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def one_hot_action(index: int, count: int) -> np.ndarray:
    """Discrete action -> its Box encoding, (count,) float32 with +1 at ``index`` and -1 elsewhere."""
    action = -np.ones(count, np.float32)
    action[int(index)] = 1.0
    return action


class BernoulliBanditEnv(gym.Env):
    """One-step bandit: arm k pays reward 1 with probability ``probs[k]``, else 0.

    Defaults follow the DoC code's bandit (dice_rl ``BernoulliBandit(bernoulli_prob=0.1)``:
    two arms paying with probability 0.1 and 0.9). Observation: (1,) zeros.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, probs: tuple[float, ...] = (0.1, 0.9), render_mode: str | None = None):
        self.probs = np.asarray(probs, np.float64)
        if self.probs.ndim != 1 or len(self.probs) < 2 or ((self.probs < 0) | (self.probs > 1)).any():
            raise ValueError(f"probs must be >= 2 probabilities, got {probs}")
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(self.probs),), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        arm = int(np.argmax(action))
        reward = float(self.np_random.random() < self.probs[arm])
        return np.zeros(1, np.float32), reward, True, False, {"arm": arm}


class OneHotDiscrete(gym.Wrapper):
    """Discrete observations -> one-hot float32 vectors; Box(-1, 1, (n,)) actions -> argmax."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.states = int(env.observation_space.n)
        self.actions = int(env.action_space.n)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.states,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.actions,), np.float32)

    def encode(self, state: int) -> np.ndarray:
        obs = np.zeros(self.states, np.float32)
        obs[int(state)] = 1.0
        return obs

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        state, info = self.env.reset(**kwargs)
        return self.encode(state), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        state, reward, terminated, truncated, info = self.env.step(int(np.argmax(action)))
        return self.encode(state), float(reward), terminated, truncated, info


def frozen_lake(map_name: str = "4x4", is_slippery: bool = True, max_episode_steps: int = 100, **kwargs: Any) -> gym.Env:
    """gymnasium ``FrozenLake-v1`` behind :class:`OneHotDiscrete` (slippery: the intended move
    happens with probability 1/3, each perpendicular one with 1/3)."""
    return OneHotDiscrete(gym.make("FrozenLake-v1", map_name=map_name, is_slippery=is_slippery,
                                   max_episode_steps=max_episode_steps, **kwargs))


def frozen_lake_optimal_policy(env: gym.Env, discount: float = 0.99, sweeps: int = 1000) -> np.ndarray:
    """Greedy policy of value iteration on FrozenLake's known transition table: (states,) int actions."""
    table = env.unwrapped.P
    states, actions = len(table), len(table[0])
    values = np.zeros(states)
    for _ in range(sweeps):
        q = np.array([[sum(p * (r + discount * values[s2] * (not done)) for p, s2, r, done in table[s][a])
                       for a in range(actions)] for s in range(states)])
        new = q.max(axis=1)
        if np.abs(new - values).max() < 1e-10:
            break
        values = new
    return q.argmax(axis=1)


def frozen_lake_8x8(**kwargs: Any) -> gym.Env:
    """The larger slippery map (8x8, 200-step limit)."""
    return frozen_lake("8x8", True, max_episode_steps=200, **kwargs)


def frozen_lake_deterministic(**kwargs: Any) -> gym.Env:
    """The 4x4 map without slipping: every move happens as chosen (the deterministic control)."""
    return frozen_lake("4x4", False, **kwargs)


class NoisyInvertedPendulum(gym.Wrapper):
    """MuJoCo ``InvertedPendulum-v5`` made stochastic, seeded by the env's reset seed.

    After each step: with probability ``push_prob`` the pole gets an angular-velocity kick
    ~ N(0, push_scale^2) rad/s (transition noise the agent cannot prevent), and with probability
    ``burst_prob`` the reward gets ``burst_reward`` added (a reward burst it cannot earn).
    ``info["push"]`` and ``info["burst"]`` say when they happened.
    """

    def __init__(self, env: gym.Env, push_prob: float = 0.1, push_scale: float = 1.0, burst_prob: float = 0.05,
                 burst_reward: float = 10.0):
        super().__init__(env)
        self.push_prob, self.push_scale = float(push_prob), float(push_scale)
        self.burst_prob, self.burst_reward = float(burst_prob), float(burst_reward)
        self.observation_space = gym.spaces.Box(np.float32(-np.inf), np.float32(np.inf), env.observation_space.shape, np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        sim, rng = self.env.unwrapped, self.env.unwrapped.np_random
        info = {**info, "push": False, "burst": False}
        if not terminated and rng.random() < self.push_prob:
            qvel = sim.data.qvel.copy()
            qvel[1] += rng.normal(0.0, self.push_scale)
            sim.set_state(sim.data.qpos.copy(), qvel)
            obs, info["push"] = sim._get_obs(), True
        if rng.random() < self.burst_prob:
            reward, info["burst"] = float(reward) + self.burst_reward, True
        return obs.astype(np.float32), float(reward), terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        return obs.astype(np.float32), info


def inverted_pendulum(**kwargs: Any) -> gym.Env:
    """Deterministic control twin: ``InvertedPendulum-v5`` with a 100-step limit, float32 obs."""
    return NoisyInvertedPendulum(gym.make("InvertedPendulum-v5", max_episode_steps=100, **kwargs),
                                 push_prob=0.0, burst_prob=0.0)


def noisy_inverted_pendulum(**kwargs: Any) -> gym.Env:
    """``InvertedPendulum-v5``, 100 steps, with seeded pole kicks and reward bursts (defaults above)."""
    return NoisyInvertedPendulum(gym.make("InvertedPendulum-v5", max_episode_steps=100, **kwargs))
