"""The hidden-context pixel envs (docs/pretrain_envs.md): rate, expert success, demo speed, probe.

Rate: env steps per second (wall and process CPU) under random actions, each step rendering the
64x64 RGB observation offscreen (EGL; on this machine a CPU renderer). Peer, in the same run:
gymnasium's ``Reacher-v5`` (MuJoCo; its goal is drawn) observed as 64x64 frames through robokit's
PixelObservation.

Experts: :func:`robokit.pretrain.demos.make_demos` over every context, ``--episodes`` episodes per
context, for each action-noise level (std 0, 0.3, 1.0); success = the episode terminated (goal
reached) within the time limit. Demo speed: episodes and transitions per second of make_demos.

Probe: :func:`robokit.pretrain.probe.context_probe` (ridge classifier on 16x16-pooled first
frames, 16 resets per context, even/odd split): accuracy with the goal hidden (reset seeds from
base seeds 0-3) and drawn (base seed 0).

``--png PATH`` also writes a sample-frame figure: per family, the first frame with the goal
hidden, the same frame with the goal drawn, and frames 5, 10, 15 of the expert's episode.

Usage: ``python benchmarks/pretrain_envs.py [--quick] [--png docs/pretrain_envs.png]``; the last
line is the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from robofume_envs import rate  # benchmarks/ is the script dir

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

FAMILIES = ("robokit/PointMassGoal-v0", "robokit/PushHidden-v0")
NOISES = (0.0, 0.3, 1.0)
PROBE_SEEDS = (0, 1, 2, 3)


def expert_figures(env_id: str, episodes: int, noise: float, seed: int = 0) -> dict[str, float]:
    """Success rate, mean length and make_demos speed over ``episodes`` per context."""
    import gymnasium as gym

    from robokit.pretrain.demos import make_demos, success_rate

    contexts = gym.make(env_id).unwrapped.num_contexts
    wall = time.perf_counter()
    demos = make_demos(env_id, list(range(contexts)), episodes, seed=seed, noise=noise)
    wall = time.perf_counter() - wall
    steps = sum(len(e) for e in demos)
    return {"noise": noise, "episodes": len(demos), "success_rate": success_rate(demos),
            "mean_length": steps / len(demos), "episodes_per_s": len(demos) / wall,
            "transitions_per_s": steps / wall}


def sample_figure(path: str, seed: int = 3) -> None:
    """Write the sample-frame figure (rows: families; columns: hidden, drawn, expert frames 5/10/15)."""
    import gymnasium as gym
    from PIL import Image

    from robokit.envs.hidden_context import expert_policy

    rows = []
    for env_id in FAMILIES:
        shown = gym.make(env_id, show_goal=True)
        hidden = gym.make(env_id)
        obs, info = hidden.reset(seed=seed, options={"context": 1})
        tiles = [obs, shown.reset(seed=seed, options={"context": 1})[0]]
        act = expert_policy(hidden)
        for step in range(1, 16):
            obs, _, terminated, truncated, info = hidden.step(act(obs, info))
            if step in (5, 10, 15):
                tiles.append(obs)
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], 1))
        shown.close()
        hidden.close()
    Image.fromarray(np.concatenate(rows, 0)).resize((4 * rows[0].shape[1], 4 * 2 * rows[0].shape[0]),
                                                    Image.NEAREST).save(path)


def main() -> None:
    import gymnasium as gym

    import robokit.envs  # noqa: F401
    from robokit.envs.pixels import PixelOptions, make_pixel_env
    from robokit.pretrain.probe import context_probe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 steps per rate, 5 episodes per context")
    parser.add_argument("--png", default=None, help="also write the sample-frame figure here")
    args = parser.parse_args()
    steps, episodes = (300, 5) if args.quick else (2000, 25)
    report: dict = {"benchmark": "pretrain_envs", "quick": args.quick, "episodes_per_context": episodes, "envs": {}}
    for env_id in FAMILIES:
        env = gym.make(env_id)
        report["envs"][env_id] = {
            "rate": rate(env, steps),
            "experts": [expert_figures(env_id, episodes, noise) for noise in NOISES],
            "probe_hidden": [context_probe(env_id, show_goal=False, seed=seed) for seed in PROBE_SEEDS],
            "probe_goal_drawn": context_probe(env_id, show_goal=True)}
        env.close()
        print(env_id, json.dumps(report["envs"][env_id]), flush=True)
    peer = make_pixel_env("Reacher-v5", PixelOptions(size=64, frame_stack=1))
    report["peer"] = {"Reacher-v5 (64x64 pixels)": rate(peer, steps)}
    peer.close()
    if args.png:
        sample_figure(args.png)
        report["png"] = args.png
    print(json.dumps(report))


if __name__ == "__main__":
    main()
