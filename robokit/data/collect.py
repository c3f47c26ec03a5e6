"""Roll out a policy in a gymnasium env and return :class:`Episode` objects.

Seeding: the env is reset with ``seed + episode_index`` and the action space is
seeded with ``seed``, so the same seed gives the same episodes for a random
policy. Episodes end on ``terminated`` or ``truncated`` (the env's time limit)
or after ``max_steps`` steps (marked truncated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robokit.data.episode import Episode

Policy = Callable[[Any], np.ndarray]


def make_env(env_id: str, max_steps: int | None = None) -> Any:
    """``gymnasium.make(env_id)``, registering robokit's own ids first when needed.

    Raises:
        ValueError: naming the env id when gymnasium does not know it (or cannot build it).
    """
    import gymnasium as gym

    if env_id.startswith("robokit/"):
        import robokit.envs  # noqa: F401  (registers robokit/* ids)
    try:
        return gym.make(env_id, max_episode_steps=max_steps) if max_steps else gym.make(env_id)
    except gym.error.Error as err:
        raise ValueError(f"--env '{env_id}': {err}") from err


def random_policy(env: Any) -> Policy:
    """Uniform random actions from the env's (seeded) action space."""
    return lambda obs: env.action_space.sample()


def checkpoint_policy(path: str, deterministic: bool = True) -> Policy:
    """Actions from a robokit RL checkpoint (``robokit.algos.load_agent``)."""
    from robokit.algos import load_agent

    agent = load_agent(path)
    return lambda obs: agent.act(obs, deterministic=deterministic)


def rollout(env: Any, policy: Policy, seed: int, max_steps: int | None = None) -> Episode:
    """One episode from ``env.reset(seed=seed)``."""
    obs, info = env.reset(seed=seed)
    observations: list[Any] = [obs]
    actions: list[np.ndarray] = []
    rewards: list[float] = []
    terminated: list[bool] = []
    truncated: list[bool] = []
    success: list[bool] = []
    while True:
        action = np.asarray(policy(obs), dtype=np.float32)
        obs, reward, term, trunc, info = env.step(action)
        if max_steps is not None and len(actions) + 1 >= max_steps:
            trunc = True
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        terminated.append(bool(term))
        truncated.append(bool(trunc) and not term)
        success.append(bool(info.get("success", info.get("is_success", False))))
        if term or trunc:
            break
    infos = {"success": np.array(success)} if any(k in info for k in ("success", "is_success")) else {}
    return Episode(_stack(observations), np.stack(actions), np.array(rewards, np.float32), terminated, truncated,
                   infos, source=f"rollout seed {seed}")


def _stack(observations: list) -> Any:
    if isinstance(observations[0], dict):
        return {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return np.stack(observations)


def collect_episodes(env_id: str, episodes: int, seed: int = 0, policy: str = "random",
                     checkpoint: str | None = None, max_steps: int | None = None, progress: bool = True,
                     deterministic: bool = True) -> list[Episode]:
    """Collect ``episodes`` episodes of ``policy`` ("random" or "checkpoint") in ``env_id``."""
    from tqdm import tqdm

    env = make_env(env_id, max_steps)
    env.action_space.seed(seed)
    if policy == "random":
        act = random_policy(env)
    elif policy == "checkpoint":
        if not checkpoint:
            raise ValueError("--policy checkpoint needs --checkpoint PATH")
        act = checkpoint_policy(checkpoint, deterministic)
    else:
        raise ValueError(f"unknown policy {policy!r} (random, checkpoint)")
    collected = []
    with tqdm(total=episodes, desc=f"collect {env_id}", unit="ep", disable=not progress) as bar:
        for index in range(episodes):
            episode = rollout(env, act, seed + index, max_steps)
            collected.append(episode)
            bar.set_postfix(steps=len(episode), ret=f"{episode.total_return:.1f}")
            bar.update(1)
    env.close()
    return collected
