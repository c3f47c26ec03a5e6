"""Roll out a policy in N gymnasium envs and return :class:`Episode` objects.

Seeding: episode ``k`` is reset with ``seed + k`` and, for the random policy, draws its actions
from a copy of the action space seeded by ``(seed, k)`` (a stochastic checkpoint policy samples
from the agent's stream reseeded with ``seed + k`` when episode k starts); so the same seed gives
the same episodes for any number of envs ``num_envs``, sync or async (see :mod:`robokit.envs.vector`),
and fanned out one episode per task over Ray workers (``--distributed ray``, one env per worker).
A stochastic checkpoint policy with ``num_envs > 1`` shares that stream between the running
episodes, so its episodes depend on ``num_envs``. Episodes end on ``terminated`` or ``truncated``
(the env's time limit) or after ``max_steps`` steps (marked truncated). An env that names its task
(``info["task"]`` at reset, as the multi-task envs do) gives episodes that carry it (``Episode.task``).
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


def checkpoint_policy(path: str, deterministic: bool = True) -> Callable[[int], Policy]:
    """``make_policy(episode_seed)``: actions from a robokit RL checkpoint (``robokit.algos.load_agent``);
    a stochastic policy's sampling stream is reseeded with ``episode_seed`` when its episode starts."""
    from robokit.algos import load_agent

    agent = load_agent(path)

    def make_policy(episode_seed: int) -> Policy:
        if not deterministic:
            agent.generator.manual_seed(int(episode_seed))
        return lambda obs: agent.act(obs, deterministic=deterministic)

    return make_policy


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
                     pixels: Any = None, options: Any = None) -> list[Episode]:
    """Collect ``episodes`` episodes of ``policy`` ("random" or "checkpoint") in ``num_envs``
    parallel copies of ``env_id`` (``vector`` "sync" or "async"); returns them in seed order.

    ``options`` (:class:`robokit.distributed.options.DistributedOptions`) fans the episodes out
    over Ray workers instead, one episode per task in one env per worker (so it needs
    ``num_envs == 1``); they come back in episode order, equal to one process's.

    Raises:
        ConfigError: ``--distributed ray`` with ``num_envs > 1``.
    """
    from tqdm import tqdm

    from robokit.distributed.fanout import fan_out
    from robokit.distributed.options import check_fan_out

    if policy not in ("random", "checkpoint"):
        raise ValueError(f"unknown policy {policy!r} (random, checkpoint)")
    if policy == "checkpoint" and not checkpoint:
        raise ValueError("--policy checkpoint needs --checkpoint PATH")
    check_fan_out(options, num_envs)
    setup_args = (env_id, seed, policy, checkpoint, max_steps, deterministic, num_envs, vector, pixels)
    with tqdm(total=episodes, desc=f"collect {env_id}", unit="ep", disable=not progress) as bar:
        def done(episode: Any) -> None:  # an EpisodeTrace here, an Episode from a Ray worker
            bar.set_postfix(steps=len(episode), ret=f"{episode.total_return:.1f}")
            bar.update(1)

        if options is not None and options.enabled:
            return fan_out(_collect_setup, setup_args, _collect_episode, list(range(episodes)), options,
                           progress=done, teardown=_close_env)
        state = _collect_setup(*setup_args)
        try:
            return _run(state, list(range(episodes)), done)
        finally:
            _close_env(state)


def _collect_setup(env_id: str, seed: int, policy: str, checkpoint: str | None, max_steps: int | None,
                   deterministic: bool, num_envs: int, vector: str, pixels: Any) -> tuple:
    """(vector env, ``make_policy(k)``, seed, max_steps) of one collecting process or Ray worker."""
    from functools import partial

    from robokit.envs.vector import episode_random_policy, make_vector_env

    venv = make_vector_env(partial(make_env, env_id, max_steps, pixels), num_envs, vector)  # type: ignore[arg-type]
    try:
        if policy == "random":
            make_policy = episode_random_policy(venv.single_action_space, seed)
        else:
            act = checkpoint_policy(str(checkpoint), deterministic)
            make_policy = lambda k: act(seed + k)  # noqa: E731
    except BaseException:
        venv.close()
        raise
    return venv, make_policy, seed, max_steps


def _run(state: tuple, indices: list[int], on_episode: Any = None) -> list[Episode]:
    """Episodes ``indices`` (episode k reset with ``seed + k``, acted in by ``make_policy(k)``)."""
    from robokit.envs.vector import run_episodes

    venv, make_policy, seed, max_steps = state
    traces = run_episodes(venv, [seed + k for k in indices], lambda i: make_policy(indices[i]), max_steps,
                          on_episode=on_episode)
    space = venv.single_observation_space
    return [trace_to_episode(trace, f"rollout seed {trace.seed}", space) for trace in traces]


def _collect_episode(state: tuple, index: int) -> Episode:
    """Episode ``index`` alone: one Ray task of ``robokit collect --distributed ray``."""
    return _run(state, [index])[0]


def _close_env(state: tuple) -> None:
    state[0].close()
