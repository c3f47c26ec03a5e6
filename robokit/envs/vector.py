"""Vectorised environments (gymnasium's vector API) for collection and evaluation.

:func:`make_vector_env` builds N copies of an env in one :class:`gymnasium.vector.SyncVectorEnv`
(same process) or :class:`gymnasium.vector.AsyncVectorEnv` (one worker process each), with
automatic resets disabled: :func:`run_episodes` resets each sub-env itself, with the seed of
the next episode it hands out.

Determinism: episode ``k`` is always reset with ``seeds[k]`` and acted in by
``make_policy(k)``, whichever sub-env runs it, so the episodes depend only on the seeds and the
policy, not on N or on sync/async; they equal one env's episodes for the same seeds (tested).
Policies must therefore keep their randomness per episode (see :func:`episode_random_policy`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import gymnasium as gym
import numpy as np

Policy = Callable[[Any], np.ndarray]
VectorMode = Literal["sync", "async"]
#: reset seed of a sub-env that has no episode left to run (its outputs are ignored)
IDLE_SEED = 0


def make_vector_env(make_one: Callable[[], gym.Env], num_envs: int, mode: VectorMode = "sync") -> gym.vector.VectorEnv:
    """N sub-envs from ``make_one`` (a picklable callable for ``async``), autoreset disabled.

    Async workers are spawned (not forked), and use pipes instead of shared memory when the
    observation space cannot live in shared memory (point clouds of variable size).

    Raises:
        ValueError: for ``num_envs < 1`` or an unknown mode.
    """
    if num_envs < 1:
        raise ValueError(f"--num-envs must be >= 1, got {num_envs}")
    fns = [make_one] * int(num_envs)
    disabled = gym.vector.AutoresetMode.DISABLED
    if mode == "sync":
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=disabled)
    if mode == "async":
        probe = make_one()
        fixed = _fixed_size(probe.observation_space)
        probe.close()
        # "spawn": a forked worker would inherit the parent's EGL/OpenGL state and hang when it renders
        return gym.vector.AsyncVectorEnv(fns, shared_memory=fixed, autoreset_mode=disabled, context="spawn")
    raise ValueError(f"--vector must be 'sync' or 'async', got {mode!r}")


def _fixed_size(space: gym.spaces.Space) -> bool:
    if isinstance(space, gym.spaces.Dict):
        return all(_fixed_size(s) for s in space.spaces.values())
    return isinstance(space, gym.spaces.Box | gym.spaces.Discrete | gym.spaces.MultiBinary)


def env_maker(env_id: str, **kwargs: Any) -> Callable[[], gym.Env]:
    """A picklable ``() -> robokit.envs.make_env(env_id, **kwargs)`` for (async) vector envs."""
    return partial(_make_robokit_env, env_id, kwargs)


def _make_robokit_env(env_id: str, kwargs: dict) -> gym.Env:
    from robokit.envs import make_env

    return make_env(env_id, **kwargs)


def episode_random_policy(action_space: gym.spaces.Space, seed: int) -> Callable[[int], Policy]:
    """``make_policy(k)``: uniform random actions from a copy of ``action_space`` seeded by
    ``(seed, k)``, so episode k's actions do not depend on which env or order it runs in."""
    def make_policy(index: int) -> Policy:
        space = copy.deepcopy(action_space)
        space.seed(int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))
        return lambda _obs: space.sample()
    return make_policy


@dataclass
class EpisodeTrace:
    """What :func:`run_episodes` records of one episode (observations only when asked)."""

    seed: int
    observations: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    success: list = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    has_success: bool = False
    task: Any = None

    @property
    def total_return(self) -> float:
        return float(sum(self.rewards, 0.0))  # summed in step order, as a single-env loop does

    def __len__(self) -> int:
        return len(self.rewards)


def env_slice(batch: Any, index: int) -> Any:
    """Sub-env ``index``'s part of a batched observation (arrays, dicts, tuples of clouds)."""
    if isinstance(batch, dict):
        return {key: env_slice(value, index) for key, value in batch.items()}
    return batch[index]


def run_episodes(venv: gym.vector.VectorEnv, seeds: Sequence[int], make_policy: Callable[[int], Policy],
                 max_steps: int | None = None, record: bool = True,
                 on_episode: Callable[[EpisodeTrace], None] | None = None) -> list[EpisodeTrace]:
    """Run ``len(seeds)`` episodes on the sub-envs of ``venv``; returns their traces in seed order.

    Episode k is reset with ``seeds[k]`` and acted in by ``make_policy(k)``; a free sub-env takes
    the lowest-numbered episode not yet started. An episode ends on ``terminated``/``truncated``
    or after ``max_steps`` steps (then marked truncated). ``record=False`` keeps returns,
    lengths and success only (evaluation). ``on_episode`` hears each finished episode.
    """
    seeds = [int(s) for s in seeds]
    n = venv.num_envs
    traces: list[EpisodeTrace | None] = [None] * len(seeds)
    running: list[int | None] = [None] * n
    policies: list[Policy | None] = [None] * n
    next_episode = 0
    obs = None
    pending = np.ones(n, bool)  # sub-envs that need a new episode
    while True:
        reset_seeds: list[int | None] = [None] * n
        for i in np.flatnonzero(pending):
            running[i] = None
            reset_seeds[i] = IDLE_SEED  # a sub-env with nothing left to run is reset too, to stay steppable
            if next_episode < len(seeds):
                running[i], policies[i] = next_episode, make_policy(next_episode)
                reset_seeds[i] = seeds[next_episode]
                traces[next_episode] = EpisodeTrace(seeds[next_episode])
                next_episode += 1
        if all(k is None for k in running):
            break
        if pending.any():
            obs = _reset(venv, obs, reset_seeds, pending, traces, running, record)
        pending[:] = False
        actions = np.stack([np.asarray(policies[i](env_slice(obs, i))) if running[i] is not None
                            else _idle_action(venv) for i in range(n)])
        obs, rewards, terminated, truncated, infos = venv.step(actions)
        for i, k in enumerate(running):
            if k is None:
                continue
            trace = traces[k]
            assert trace is not None
            _record_step(trace, actions[i], obs, rewards, infos, i, record)
            ended = bool(terminated[i]) or bool(truncated[i]) or (max_steps is not None and len(trace) >= max_steps)
            if ended:
                trace.terminated = bool(terminated[i])
                trace.truncated = not trace.terminated
                pending[i] = True
                if on_episode is not None:
                    on_episode(trace)
    return [t for t in traces if t is not None]


def _reset(venv: gym.vector.VectorEnv, obs: Any, seeds: list, mask: np.ndarray, traces: list,
           running: list, record: bool) -> Any:
    """Reset the sub-envs in ``mask`` with their seeds; record each new episode's first observation."""
    mask = mask.copy()
    if obs is None:  # the first reset: every sub-env (idle ones' outputs are ignored)
        obs, infos = venv.reset(seed=seeds)
    else:
        fresh, infos = venv.reset(seed=seeds, options={"reset_mask": mask})
        obs = fresh if obs is None else _merge(obs, fresh, mask)
    for i in np.flatnonzero(mask):
        if running[i] is None:
            continue
        trace = traces[running[i]]
        trace.task = _info_value(infos, "task", i)
        if record:
            trace.observations.append(_copy(env_slice(obs, i)))
    return obs


def _merge(old: Any, fresh: Any, mask: np.ndarray) -> Any:
    """Batched observations with the sub-envs in ``mask`` taken from ``fresh``."""
    if isinstance(old, dict):
        return {key: _merge(old[key], fresh[key], mask) for key in old}
    if isinstance(old, tuple):
        return tuple(f if m else o for o, f, m in zip(old, fresh, mask, strict=True))
    return np.where(mask.reshape(-1, *([1] * (np.ndim(old) - 1))), fresh, old)


def _record_step(trace: EpisodeTrace, action: np.ndarray, obs: Any, rewards: np.ndarray, infos: dict,
                 index: int, record: bool) -> None:
    trace.rewards.append(float(rewards[index]))
    success = _info_value(infos, "success", index)
    if success is None:
        success = _info_value(infos, "is_success", index)
    trace.has_success = success is not None
    trace.success.append(bool(success) if success is not None else False)
    if record:
        trace.actions.append(np.asarray(action, np.float32))
        trace.observations.append(_copy(env_slice(obs, index)))


def _info_value(infos: dict, key: str, index: int) -> Any:
    """Sub-env ``index``'s ``infos[key]`` of a vector env (None when that env did not report it)."""
    if key not in infos or not infos.get(f"_{key}", np.ones(index + 1, bool))[index]:
        return None
    value = infos[key][index]
    return value.item() if isinstance(value, np.generic) else value


def _copy(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {key: np.array(value) for key, value in obs.items()}
    return np.array(obs)


def _idle_action(venv: gym.vector.VectorEnv) -> np.ndarray:
    """The action given to a sub-env with no episode left to run (its outputs are ignored)."""
    space = venv.single_action_space
    if isinstance(space, gym.spaces.Box):
        return np.clip(np.zeros(space.shape, space.dtype), space.low, space.high)
    return np.asarray(space.sample())
