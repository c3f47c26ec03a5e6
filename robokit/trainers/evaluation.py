"""Deterministic policy evaluation: mean/std return, success rate, optional video."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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


def episode_seed(seed: int, k: int) -> int:
    """Reset seed of evaluation episode ``k`` of an evaluation seeded ``seed``."""
    return EVAL_SEED_OFFSET + seed * 1000 + k


def evaluate_episode(agent: Any, env: Any, seed: int, k: int, deterministic: bool = True,
                     frames: list | None = None) -> dict[str, float]:
    """Episode ``k`` of an evaluation seeded ``seed`` with ``agent.act``; see :func:`run_episode`.

    Agents that act on a history (``reset_context``/``observe_reward``, see
    :mod:`robokit.algos.sequence`) start a fresh context and hear every reward.
    """
    reset_context = getattr(agent, "reset_context", None)
    if reset_context is not None:
        reset_context()
    return run_episode(env, lambda o: agent.act(o, deterministic), episode_seed(seed, k), frames,
                       getattr(agent, "observe_reward", None))


def episode_metrics(results: list[dict[str, float]]) -> dict[str, float]:
    """``eval/return_mean``, ``eval/return_std``, ``eval/length_mean`` and, when every episode
    reported ``info["success"]``, ``eval/success_rate`` of per-episode results (in episode order)."""
    returns = np.array([r["return"] for r in results])
    metrics = {"eval/return_mean": float(returns.mean()), "eval/return_std": float(returns.std()),
               "eval/length_mean": float(np.mean([r["length"] for r in results]))}
    if all(r["has_success"] for r in results):
        metrics["eval/success_rate"] = float(np.mean([r["success"] for r in results]))
    return metrics


def evaluate(agent: Any, env: Any, episodes: int, seed: int = 0, deterministic: bool = True,
             video_path: str | os.PathLike | None = None) -> dict[str, float]:
    """Run ``episodes`` episodes with ``agent.act``; returns :func:`episode_metrics`.

    With ``video_path`` the first episode is recorded (env must have ``render_mode="rgb_array"``).
    """
    if episodes <= 0:
        raise ValueError(f"evaluation needs at least one episode, got {episodes}")
    results = []
    for k in range(episodes):
        frames: list | None = [] if (video_path is not None and k == 0) else None
        results.append(evaluate_episode(agent, env, seed, k, deterministic, frames))
        if frames:
            write_video(video_path, frames, fps=int(env.metadata.get("render_fps", 30)))
    return episode_metrics(results)


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
