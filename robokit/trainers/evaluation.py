"""Deterministic policy evaluation: mean/std return, success rate, optional video."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

#: eval episodes use seeds EVAL_SEED_OFFSET + seed * 1000 + k, apart from training seeds
EVAL_SEED_OFFSET = 10_000_000


def run_episode(env: Any, policy: Any, seed: int, frames: list | None = None,
                on_reward: Any = None) -> dict[str, float]:
    """One episode with ``policy(obs (O,)) -> action (A,)``; returns return, length, success.
    ``on_reward(reward)`` (optional) hears each reward, for policies that keep a history."""
    obs, info = env.reset(seed=seed)
    total, length, success = 0.0, 0, bool(info.get("success", False))
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        if on_reward is not None:
            on_reward(reward)
        total += float(reward)
        length += 1
        success = success or bool(info.get("success", False))
        if frames is not None:
            frames.append(env.render())
        if terminated or truncated:
            return {"return": total, "length": float(length), "success": float(success),
                    "has_success": float("success" in info)}


def evaluate_episode(agent: Any, env: Any, reset_seed: int, deterministic: bool = True,
                     frames: list | None = None) -> dict[str, float]:
    """One evaluation episode reset with ``reset_seed`` (an entry of :func:`eval_seeds`) with
    ``agent.act``; see :func:`run_episode`. Agents that act on a history
    (``reset_context``/``observe_reward``, see :mod:`robokit.algos.sequence`) start a fresh
    context and hear every reward. ``robokit eval --distributed ray`` runs one of these per task."""
    reset_context = getattr(agent, "reset_context", None)
    if reset_context is not None:
        reset_context()
    return run_episode(env, lambda o: agent.act(o, deterministic), reset_seed, frames,
                       getattr(agent, "observe_reward", None))


def evaluate(agent: Any, env: Any, episodes: int, seed: int = 0, deterministic: bool = True,
             video_path: str | os.PathLike | None = None) -> dict[str, float]:
    """Run ``episodes`` episodes with ``agent.act``.

    Returns ``eval/return_mean``, ``eval/return_std``, ``eval/length_mean`` and, when the env
    reports ``info["success"]``, ``eval/success_rate`` (see :func:`summarise`). With
    ``video_path`` the first episode is recorded (env must have ``render_mode="rgb_array"``).
    Episode k resets with ``eval_seeds(seed, episodes)[k]`` (see :func:`evaluate_episode`).
    """
    if episodes <= 0:
        raise ValueError(f"evaluation needs at least one episode, got {episodes}")
    if isinstance(env, gym.vector.VectorEnv):
        return evaluate_vector(agent, env, episodes, seed, deterministic)
    results = []
    for k, reset_seed in enumerate(eval_seeds(seed, episodes)):
        frames: list | None = [] if (video_path is not None and k == 0) else None
        results.append(evaluate_episode(agent, env, reset_seed, deterministic, frames))
        if frames:
            write_video(video_path, frames, fps=int(env.metadata.get("render_fps", 30)))
    return summarise(results)


def eval_seeds(seed: int, episodes: int) -> list[int]:
    """Reset seeds of the ``episodes`` evaluation episodes of run seed ``seed``."""
    return [EVAL_SEED_OFFSET + seed * 1000 + k for k in range(episodes)]


def evaluate_vector(agent: Any, venv: Any, episodes: int, seed: int = 0, deterministic: bool = True) -> dict[str, float]:
    """:func:`evaluate` on the N sub-envs of a gymnasium vector env (from
    :func:`robokit.envs.vector.make_vector_env`): the same episodes, seeds and metrics as one env
    gives (each episode k keeps its seed wherever it runs), N of them stepping at once.

    Raises:
        ValueError: for agents that act on a history (they need one env per context).
    """
    from robokit.envs.vector import run_episodes

    if getattr(agent, "reset_context", None) is not None:
        raise ValueError("agents that act on a history (reset_context) are evaluated with --num-envs 1")
    traces = run_episodes(venv, eval_seeds(seed, episodes), lambda _k: lambda o: agent.act(o, deterministic),
                          record=False)
    return summarise([{"return": t.total_return, "length": float(len(t)), "success": float(any(t.success)),
                       "has_success": float(t.has_success)} for t in traces])


def summarise(results: list[dict[str, float]]) -> dict[str, float]:
    """Eval metrics from per-episode ``return``/``length``/``success``/``has_success`` records."""
    returns = np.array([r["return"] for r in results])
    metrics = {"eval/return_mean": float(returns.mean()), "eval/return_std": float(returns.std()),
               "eval/length_mean": float(np.mean([r["length"] for r in results]))}
    if all(r["has_success"] for r in results):
        metrics["eval/success_rate"] = float(np.mean([r["success"] for r in results]))
    return metrics


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: int = 30) -> Path:
    """Write RGB frames (H, W, 3) uint8 to ``path`` (mp4 or gif by suffix) atomically."""
    import imageio.v2 as imageio

    from robokit.core.atomic import atomic_path

    path = Path(path)
    frames = [f for f in frames if f is not None]
    if not frames:
        raise ValueError(f"{path}: no frames were rendered (make the env with render_mode='rgb_array')")
    with atomic_path(path) as tmp:
        target = tmp.with_suffix(path.suffix)
        options = {"fps": fps} if path.suffix == ".gif" else {"fps": fps, "macro_block_size": 1}
        try:
            imageio.mimsave(target, frames, **options)
        except ValueError as err:  # no writer for the suffix (mp4 needs imageio-ffmpeg)
            raise ValueError(f"{path}: cannot write '{path.suffix}' video ({err}); use a .gif path, or install "
                             f"imageio-ffmpeg for .mp4") from err
        os.replace(target, tmp)
    return path
