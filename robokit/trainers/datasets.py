"""Dataset recipe: turn an online SAC run into "medium-replay" and "medium" datasets.

``robokit train --algo sac --env ENV --online-steps N --save-datasets DIR`` trains SAC
online for N env steps, then writes (Minari format, via :func:`robokit.data.save_minari`):

- ``DIR/medium-replay``: every transition of the run's replay, split into its episodes;
- ``DIR/medium``: ``--dataset-episodes`` rollouts of the final (stochastic) policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def replay_to_episodes(buffer: Any, reward_scale: float = 1.0, reward_bias: float = 0.0) -> list:
    """Episodes stored in a (non-wrapped) ReplayBuffer, in insertion order, with raw rewards
    ``(stored - reward_bias) / reward_scale``.

    The grouping is :func:`robokit.data.formats.common.buffer_to_episodes`; the last episode, if
    it was still running, ends with ``truncated=True``. Infos (a stored ``mc_return`` was computed
    on the scaled rewards) are not carried over.
    """
    from robokit.data import Episode
    from robokit.data.formats.common import buffer_to_episodes

    if buffer.total_added > buffer.capacity:
        raise ValueError(f"replay wrapped around ({buffer.total_added} added, capacity {buffer.capacity}); "
                         "raise --replay-capacity to keep the whole replay")
    return [Episode(ep.observations, ep.actions,
                    (ep.rewards - np.float32(reward_bias)) / np.float32(reward_scale),
                    ep.terminated, ep.truncated)
            for ep in buffer_to_episodes(buffer)]


def collect_episodes(env: Any, policy: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int = 0) -> list:
    """``episodes`` episodes of ``policy(obs (O,)) -> action (A,)`` in ``env`` (reset seeds seed, seed+1, ...)
    as :class:`robokit.data.Episode` objects; ``infos["success"]`` is kept when the env reports it."""
    from robokit.data import Episode

    out = []
    for k in range(episodes):
        obs, info = env.reset(seed=seed + k)
        observations, actions, rewards, successes = [obs], [], [], []
        while True:
            action = np.asarray(policy(obs), dtype=np.float32)
            obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            successes.append(bool(info.get("success", False)))
            if terminated or truncated:
                break
        steps = len(actions)
        flags_term, flags_trunc = np.zeros(steps, bool), np.zeros(steps, bool)
        flags_term[-1], flags_trunc[-1] = bool(terminated), bool(truncated and not terminated)
        infos = {"success": np.array(successes)} if "success" in info else {}
        stacked = ({key: np.stack([o[key] for o in observations]) for key in observations[0]}
                   if isinstance(observations[0], dict) else np.stack(observations))  # dict observations per part
        out.append(Episode(stacked, np.stack(actions), np.array(rewards, np.float32),
                           flags_term, flags_trunc, infos))
    return out


def rollout_episodes(agent: Any, env: Any, episodes: int, seed: int = 0, deterministic: bool = False) -> list:
    """``episodes`` rollouts of ``agent`` (stochastic by default, like D4RL's "medium" data)."""
    return collect_episodes(env, lambda obs: agent.act(obs, deterministic=deterministic), episodes, seed)
