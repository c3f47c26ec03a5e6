"""On-policy rollout storage with GAE, for PPO-style algorithms.

:class:`RolloutBuffer` holds ``n_steps`` steps of ``n_envs`` parallel
environments, then computes advantages with :func:`robokit.data.returns.gae`
and yields shuffled minibatches.

Truncation is bootstrapped, termination is not: for a step that ended its
episode by a time limit, pass ``final_value`` = V(real final observation) (the
observation before the automatic reset); the next observation in the rollout
belongs to a new episode and is never used for that step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from robokit.data.errors import DataError, check_finite
from robokit.data.returns import gae


class RolloutBuffer:
    """``n_steps x n_envs`` rollout with GAE.

    Args:
        n_steps: steps per environment per rollout.
        n_envs: parallel environments E.
        obs_shape: per-env observation shape.
        action_dim: A.
        discount: gamma (0.99, as in SB3/CleanRL PPO defaults).
        gae_lambda: lambda (0.95, same source).
        obs_dtype: observation dtype.
    """

    def __init__(self, n_steps: int, n_envs: int, obs_shape: tuple, action_dim: int, discount: float = 0.99,
                 gae_lambda: float = 0.95, obs_dtype: Any = np.float32):
        self.n_steps, self.n_envs = int(n_steps), int(n_envs)
        self.discount, self.gae_lambda = float(discount), float(gae_lambda)
        shape = (self.n_steps, self.n_envs)
        self.obs = np.zeros(shape + tuple(obs_shape), obs_dtype)
        self.actions = np.zeros(shape + (int(action_dim),), np.float32)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, bool)
        self.truncated = np.zeros(shape, bool)
        self.values = np.zeros(shape, np.float32)
        self.log_probs = np.zeros(shape, np.float32)
        self.final_values = np.zeros(shape, np.float32)
        self.advantages = np.zeros(shape, np.float32)
        self.returns = np.zeros(shape, np.float32)
        self.pos = 0
        self.ready = False

    @property
    def full(self) -> bool:
        return self.pos == self.n_steps

    def reset(self) -> None:
        """Start a new rollout (arrays are reused)."""
        self.pos = 0
        self.ready = False

    def add(self, obs: Any, action: Any, reward: Any, terminated: Any, truncated: Any, value: Any,
            log_prob: Any, final_value: Any = None) -> None:
        """Store one step of every env: obs (E, *obs_shape), action (E, A), the rest (E,).

        ``final_value`` (E,) is V(final observation) for envs whose episode was truncated
        at this step; it is required when any env is truncated.
        """
        if self.full:
            raise RuntimeError(f"rollout is full ({self.n_steps} steps); call reset() after training on it")
        t = self.pos
        truncated = np.asarray(truncated, bool).reshape(self.n_envs)
        if truncated.any() and final_value is None:
            raise ValueError("RolloutBuffer.add: an env was truncated; pass final_value = V(final observation) "
                             "so the time limit is bootstrapped")
        for name, target, value_in in (("obs", self.obs, obs), ("action", self.actions, action),
                                       ("reward", self.rewards, reward), ("value", self.values, value),
                                       ("log_prob", self.log_probs, log_prob)):
            array = np.asarray(value_in).reshape(target.shape[1:])
            check_finite(array.astype(np.float32, copy=False), name, f"rollout step {t}")
            target[t] = array
        self.terminated[t] = np.asarray(terminated, bool).reshape(self.n_envs)
        self.truncated[t] = truncated
        self.final_values[t] = 0.0 if final_value is None else np.asarray(final_value, np.float32).reshape(-1)
        self.pos += 1

    def compute_returns_and_advantages(self, last_value: Any) -> None:
        """GAE over the stored steps; ``last_value`` (E,) is V(observation after the last step)."""
        if not self.full:
            raise RuntimeError(f"rollout has {self.pos}/{self.n_steps} steps; fill it before computing GAE")
        last_value = np.asarray(last_value, np.float32).reshape(self.n_envs)
        next_values = np.concatenate([self.values[1:], last_value[None]], axis=0)
        ended = self.terminated | self.truncated
        next_values = np.where(self.truncated, self.final_values, np.where(ended, 0.0, next_values))
        self.advantages, self.returns = gae(self.rewards, self.values, next_values, self.terminated, ended,
                                            self.discount, self.gae_lambda)
        self.ready = True

    def minibatches(self, batch_size: int, rng: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
        """Shuffled minibatches over all ``n_steps * n_envs`` samples (the last may be smaller).

        Keys: ``obs`` (B, ...), ``action`` (B, A), ``log_prob``, ``value``, ``advantage``, ``return`` (B,).
        """
        if not self.ready:
            raise DataError("compute_returns_and_advantages() must run before minibatches()")
        total = self.n_steps * self.n_envs
        flat = {"obs": self.obs.reshape(total, *self.obs.shape[2:]), "action": self.actions.reshape(total, -1),
                "log_prob": self.log_probs.reshape(total), "value": self.values.reshape(total),
                "advantage": self.advantages.reshape(total), "return": self.returns.reshape(total)}
        order = rng.permutation(total)
        for begin in range(0, total, batch_size):
            rows = order[begin:begin + batch_size]
            yield {key: value[rows] for key, value in flat.items()}
