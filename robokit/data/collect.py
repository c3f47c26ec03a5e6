"""Roll out a policy in a gymnasium env and return :class:`Episode` objects.

Seeding: episode ``i`` resets the env with ``seed + i`` and draws its random actions from
the action space seeded with ``seed + i`` (a stochastic checkpoint policy samples from a stream
seeded the same way), so every episode depends only on its own seed: the same seed gives the
same episodes in one process and fanned out over Ray workers (``--distributed ray``). Episodes end on ``terminated`` or ``truncated`` (the env's time limit)
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
                     deterministic: bool = True, options: Any = None) -> list[Episode]:
    """Collect ``episodes`` episodes of ``policy`` ("random" or "checkpoint") in ``env_id``.

    ``options`` (:class:`robokit.distributed.options.DistributedOptions`) fans the episodes out
    over Ray workers; they come back in episode order.
    """
    from tqdm import tqdm

    from robokit.distributed.fanout import fan_out

    if policy not in ("random", "checkpoint"):
        raise ValueError(f"unknown policy {policy!r} (random, checkpoint)")
    if policy == "checkpoint" and not checkpoint:
        raise ValueError("--policy checkpoint needs --checkpoint PATH")
    with tqdm(total=episodes, desc=f"collect {env_id}", unit="ep", disable=not progress) as bar:
        def tick(episode: Episode) -> None:
            bar.set_postfix(steps=len(episode), ret=f"{episode.total_return:.1f}")
            bar.update(1)

        return fan_out(_collect_setup, (env_id, policy, checkpoint, max_steps, deterministic), _collect_episode,
                       [seed + index for index in range(episodes)], options, progress=tick, teardown=_close_env)


def _collect_setup(env_id: str, policy: str, checkpoint: str | None, max_steps: int | None,
                   deterministic: bool) -> tuple:
    """(env, agent or None, max_steps, deterministic) of one collecting worker."""
    from robokit.algos import load_agent

    env = make_env(env_id, max_steps)
    agent = load_agent(checkpoint) if policy == "checkpoint" else None
    return env, agent, max_steps, deterministic


def _collect_episode(state: tuple, episode_seed: int) -> Episode:
    """The episode reset with ``episode_seed``, its action stream seeded with it too."""
    env, agent, max_steps, deterministic = state
    if agent is None:
        env.action_space.seed(episode_seed)
        act = random_policy(env)
    else:
        if not deterministic:
            agent.generator.manual_seed(episode_seed)
        act = lambda obs: agent.act(obs, deterministic=deterministic)  # noqa: E731
    return rollout(env, act, episode_seed, max_steps)


def _close_env(state: tuple) -> None:
    state[0].close()
