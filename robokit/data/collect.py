"""Roll out a policy in N gymnasium envs and return :class:`Episode` objects.

Seeding: episode ``k`` is reset with ``seed + k`` and, for the random policy, draws its actions
from a copy of the action space seeded by ``(seed, k)``; so the same seed gives the same
episodes for any number of envs ``num_envs``, sync or async (see :mod:`robokit.envs.vector`).
Episodes end on ``terminated`` or ``truncated`` (the env's time limit) or after ``max_steps``
steps (marked truncated). An env that names its task (``info["task"]`` at reset, as the
multi-task envs do) gives episodes that carry it (``Episode.task``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robokit.data.episode import Episode

Policy = Callable[[Any], np.ndarray]


def make_env(env_id: str, max_steps: int | None = None, pixels: Any = None) -> Any:
    """``gymnasium.make(env_id)``, registering robokit's own ids first when needed; with
    ``pixels`` (a :class:`robokit.envs.pixels.PixelOptions`) the env observes rendered frames.

    Raises:
        ValueError: naming the env id when gymnasium does not know it (or cannot build it).
    """
    import gymnasium as gym

    if env_id.startswith("robokit/"):
        import robokit.envs  # noqa: F401  (registers robokit/* ids)
    limit = {"max_episode_steps": max_steps} if max_steps else {}
    if pixels is not None:
        from robokit.envs.pixels import make_pixel_env

        return make_pixel_env(env_id, pixels, **limit)
    try:
        return gym.make(env_id, **limit)
    except gym.error.Error as err:
        raise ValueError(f"--env '{env_id}': {err}") from err


def has_point_clouds(env_id: str, pixels: Any = None) -> bool:
    """Whether ``env_id`` observes point clouds (a gymnasium ``Sequence`` space, or a dict part of one)."""
    import gymnasium as gym

    env = make_env(env_id, pixels=pixels)
    space = env.observation_space
    env.close()
    parts = space.spaces.values() if isinstance(space, gym.spaces.Dict) else [space]
    return any(isinstance(part, gym.spaces.Sequence) for part in parts)


def checkpoint_policy(path: str, deterministic: bool = True) -> Policy:
    """Actions from a robokit RL checkpoint (``robokit.algos.load_agent``)."""
    from robokit.algos import load_agent

    agent = load_agent(path)
    return lambda obs: agent.act(obs, deterministic=deterministic)


def trace_to_episode(trace: Any, source: str, space: Any = None) -> Episode:
    """An :class:`Episode` from a recorded :class:`robokit.envs.vector.EpisodeTrace`; observations
    of a ``Sequence`` part of the observation ``space`` (point clouds) stay a list of clouds."""
    steps = len(trace)
    terminated, truncated = np.zeros(steps, bool), np.zeros(steps, bool)
    terminated[-1], truncated[-1] = trace.terminated, trace.truncated
    infos = {"success": np.array(trace.success)} if trace.has_success else {}
    return Episode(_stack(trace.observations, space), np.stack(trace.actions), np.array(trace.rewards, np.float32),
                   terminated, truncated, infos, source=source, task=trace.task)


def _stack(observations: list, space: Any = None) -> Any:
    """T+1 observations as one array, a dict of arrays, or (point clouds) a list / dict of lists."""
    import gymnasium as gym

    if isinstance(observations[0], dict):
        spaces = space.spaces if isinstance(space, gym.spaces.Dict) else {}
        return {k: _stack([o[k] for o in observations], spaces.get(k)) for k in observations[0]}
    if isinstance(space, gym.spaces.Sequence):
        return [np.asarray(o, np.float32) for o in observations]
    return np.stack(observations)


def collect_episodes(env_id: str, episodes: int, seed: int = 0, policy: str = "random",
                     checkpoint: str | None = None, max_steps: int | None = None, progress: bool = True,
                     deterministic: bool = True, num_envs: int = 1, vector: str = "sync",
                     pixels: Any = None) -> list[Episode]:
    """Collect ``episodes`` episodes of ``policy`` ("random" or "checkpoint") in ``num_envs``
    parallel copies of ``env_id`` (``vector`` "sync" or "async"); returns them in seed order."""
    from functools import partial

    from tqdm import tqdm

    from robokit.envs.vector import episode_random_policy, make_vector_env, run_episodes

    make_one = partial(make_env, env_id, max_steps, pixels)
    venv = make_vector_env(make_one, num_envs, vector)  # type: ignore[arg-type]
    try:
        if policy == "random":
            make_policy = episode_random_policy(venv.single_action_space, seed)
        elif policy == "checkpoint":
            if not checkpoint:
                raise ValueError("--policy checkpoint needs --checkpoint PATH")
            act = checkpoint_policy(checkpoint, deterministic)
            make_policy = lambda _index: act  # noqa: E731
        else:
            raise ValueError(f"unknown policy {policy!r} (random, checkpoint)")
        with tqdm(total=episodes, desc=f"collect {env_id}", unit="ep", disable=not progress) as bar:
            def done(trace: Any) -> None:
                bar.set_postfix(steps=len(trace), ret=f"{trace.total_return:.1f}")
                bar.update(1)
            traces = run_episodes(venv, [seed + k for k in range(episodes)], make_policy, max_steps,
                                  on_episode=done)
    finally:
        venv.close()
    space = venv.single_observation_space
    return [trace_to_episode(trace, f"rollout seed {trace.seed}", space) for trace in traces]
