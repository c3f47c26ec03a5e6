"""The reset-free task pairs (docs/robofume_envs.md): step+render rate and scripted-expert success.

Rate: env steps per second of wall time and of process CPU time, each step rendering the
64x64 RGB observation offscreen (EGL; on this machine a CPU renderer), with a random policy.
Peer, in the same run: gymnasium's ``Pusher-v5`` (MuJoCo, the closest packaged pushing task)
observed as 64x64 frames through robokit's PixelObservation (one frame, proprio on).

Experts: each pair's forward and backward instructions alternate reset-free (as RoboFuME's online
loop runs) and each prior instruction is attempted in turn, ``--attempts`` times per instruction,
with Gaussian action noise ``--noise``; an attempt succeeds when the instruction's success
(simulator truth) is reached within the episode limit. Mean steps to success are over successes.

The robosuite pair (``--robosuite``) gets a fifth of the steps and attempts (it is ~10x slower).

Usage: ``python benchmarks/robofume_envs.py [--quick] [--robosuite] [--envs ID ...] [--frames PNG]``;
the last line is the benchmark JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

PAIRS = ("robokit/PushBackForth-v0", "robokit/PushBackForth-v1", "robokit/DrawerOpenClose-v0")


def rate(env, steps: int, seed: int = 0) -> dict[str, float]:
    """Steps per second (wall and CPU) of ``env`` under uniform random actions, resets included."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"steps": steps, "steps_per_s_wall": steps / wall, "steps_per_s_cpu": steps / cpu}


def expert_success(env_id: str, attempts: int, noise: float, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per instruction: attempts, success rate, mean steps to success (reset-free, in turns)."""
    import gymnasium as gym

    from robokit.robofume.data import rollout, scripted_policy, undo

    env = gym.make(env_id)
    unwrapped = env.unwrapped
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    names = unwrapped.instructions
    results: dict[str, list[int]] = {name: [] for name in names}
    order = [names[0], names[1]] * attempts + [name for _ in range(attempts) for name in names[2:]]
    for name in order:
        if unwrapped.success(name):  # undo it first, as the data maker does
            undo(env, name)
        episode = rollout(env, name, scripted_policy(env, name, noise, rng))
        results[name].append(len(episode) if episode.is_terminated else -1)
    env.close()
    return {name: {"attempts": len(r), "success_rate": float(np.mean([s > 0 for s in r])),
                   "mean_steps_to_success": float(np.mean([s for s in r if s > 0])) if any(s > 0 for s in r)
                   else float("nan")} for name, r in results.items()}


def sample_frames(env_id: str, seed: int = 0) -> np.ndarray:
    """(64, 4*64, 3) uint8: the start, mid-forward, forward success and backward success frames."""
    import gymnasium as gym

    from robokit.robofume.data import rollout, scripted_policy

    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    frames = [obs["image"]]
    for name in (env.unwrapped.forward, env.unwrapped.backward):
        episode = rollout(env, name, scripted_policy(env, name))
        images = episode.observations["image"]
        frames += [images[len(images) // 2], images[-1]] if name == env.unwrapped.forward else [images[-1]]
    env.close()
    return np.concatenate(frames, axis=1)


def main() -> None:
    import gymnasium as gym

    import robokit.envs  # noqa: F401
    from robokit.envs.pixels import PixelOptions, make_pixel_env

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 steps per rate, 10 attempts per instruction")
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--robosuite", action="store_true", help="also the robosuite pair")
    parser.add_argument("--frames", help="write a PNG of sample frames (rows: envs) to this path")
    parser.add_argument("--envs", nargs="+", help="measure only these ids (default: the own pairs)")
    args = parser.parse_args()
    steps, attempts = (500, 10) if args.quick else (2000, 50)
    ids = tuple(args.envs or PAIRS) + (("robokit/RobosuiteLiftPlace-v0",) if args.robosuite else ())
    report: dict = {"benchmark": "robofume_envs", "quick": args.quick, "noise": args.noise, "envs": {}}
    for env_id in ids:
        env = gym.make(env_id)
        report["envs"][env_id] = {"rate": rate(env, steps if "Robosuite" not in env_id else steps // 5),
                                  "experts": expert_success(env_id, attempts if "Robosuite" not in env_id
                                                            else max(2, attempts // 5), args.noise)}
        env.close()
        print(env_id, json.dumps(report["envs"][env_id]), flush=True)
    if args.frames:
        from PIL import Image

        strip = np.concatenate([sample_frames(env_id) for env_id in ids], axis=0)
        Image.fromarray(strip).resize((strip.shape[1] * 3, strip.shape[0] * 3), Image.NEAREST).save(args.frames)
    peer = make_pixel_env("Pusher-v5", PixelOptions(size=64, frame_stack=1, proprio=True))
    report["peer"] = {"Pusher-v5 (64x64 pixels)": rate(peer, steps)}
    peer.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
