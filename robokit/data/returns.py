"""Per-episode returns: discounted Monte-Carlo return-to-go (with Cal-QL's sparse
failure rule) and generalised advantage estimation (GAE).

Cal-QL's rule (Nakamoto et al. 2023, ``calc_return_to_go`` in the authors' code):
in a sparse-reward task, an episode whose rewards are *all* equal to the failure
reward ``r_fail`` never reaches the goal, so the finite sum would understate how
bad it is; its return-to-go is set to ``r_fail / (1 - gamma)`` at *every* step (the
value of failing forever). Every other episode gets the ordinary backward sum
``G_t = r_t + gamma * (1 - terminated_t) * G_{t+1}`` with ``G_T = 0``. A truncated
episode is summed to its last step like a terminated one: there is no value
function to bootstrap from when the return is a Monte-Carlo target, and the
authors' code does not bootstrap either. (Truncation versus termination does
matter for TD targets: see the n-step view and :func:`gae`.)
"""

from __future__ import annotations

import numpy as np


def discounted_returns(rewards: np.ndarray, terminated: np.ndarray | None, discount: float,
                       sparse_failure_value: float | None = None) -> np.ndarray:
    """Monte-Carlo return-to-go of one episode.

    Args:
        rewards: ``(T,)`` rewards of the episode, in order.
        terminated: ``(T,)`` bool or None; a True entry stops the backward sum
            (only the last step of an episode can be True, so this is rarely
            needed, but it keeps the formula exact for concatenated input).
        discount: gamma in [0, 1).
        sparse_failure_value: the task's failure reward ``r_fail`` (after any
            reward scale/bias) when the task has sparse rewards, else None. When
            every reward equals it, every step gets ``r_fail / (1 - gamma)``.

    Returns:
        ``(T,)`` float32 returns.
    """
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    steps = len(rewards)
    if steps == 0:
        return np.zeros(0, np.float32)
    if sparse_failure_value is not None and np.all(rewards == np.float64(np.float32(sparse_failure_value))):
        return np.full(steps, sparse_failure_value / (1.0 - discount), np.float32)
    live = np.ones(steps) if terminated is None else 1.0 - np.asarray(terminated, dtype=np.float64)
    out = np.empty(steps, np.float64)
    running = 0.0
    for t in range(steps - 1, -1, -1):
        running = rewards[t] + discount * live[t] * running
        out[t] = running
    return out.astype(np.float32)


def gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminated: np.ndarray,
        episode_ends: np.ndarray, discount: float, gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over a rollout of one or more environments.

    ``delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)`` and
    ``A_t = delta_t + gamma * lambda * (1 - end_t) * A_{t+1}``, where ``end_t`` is
    True when step t is the last of its episode (terminated *or* truncated). For a
    truncated step ``V(s_{t+1})`` is the value of the real final observation,
    so the time limit is bootstrapped; for a terminated step it is masked.

    Args:
        rewards, values, next_values, terminated, episode_ends: ``(T,)`` or
            ``(T, E)`` for E parallel environments; ``next_values[t]`` is
            ``V(s_{t+1})`` of the observation that followed step t.
        discount, gae_lambda: gamma and lambda.

    Returns:
        ``(advantages, returns)`` float32 with the input's shape; ``returns = A + V``.
    """
    rewards = np.asarray(rewards, np.float64)
    values = np.asarray(values, np.float64)
    next_values = np.asarray(next_values, np.float64)
    live = 1.0 - np.asarray(terminated, np.float64)
    carry = 1.0 - np.asarray(episode_ends, np.float64)
    deltas = rewards + discount * live * next_values - values
    advantages = np.empty_like(deltas)
    running = np.zeros_like(deltas[0])
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + discount * gae_lambda * carry[t] * running
        advantages[t] = running
    return advantages.astype(np.float32), (advantages + values).astype(np.float32)
