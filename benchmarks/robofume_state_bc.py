"""Can the reset-free pairs be learned from their demos at all? BC on the privileged state (docs/robofume_envs.md).

A task/data check below every pixel learner: per env and seed, ``make_robofume_data`` at the
benchmark's recipe (``--prior-demos`` per prior instruction, ``--target-demos`` each way, demos
collected reset-free), then a plain MLP (2 x 256, tanh output) fit by squared error from the
privileged proprio (pusher xy and velocity, the object's state) and the instruction one-hot to the
demo actions, then ``--episodes`` forward episodes of its deterministic policy, each from a real
(hard) reset as the RoboFuME evaluation starts them. If BC on the exact state cannot reach the
forward success, a pixel policy pretrained on the same demos will not either: the problem is in
the task or the data, not the learner. Outcomes of failed episodes are classed by the object's path
(Push: ``off_line`` the block left the line to the zone by > 3 cm, ``overshoot`` beyond it).

Peer, in the same run: the scripted expert from the same real resets (the demos' source).

Usage: ``python benchmarks/robofume_state_bc.py [--quick] [--envs ID ...] [--seeds ...]``; the
last line is the benchmark JSON (``robokit``: BC-on-state forward success on the first env).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

ENVS = ("robokit/PushBackForth-v0", "robokit/PushBackForth-v1", "robokit/DrawerOpenClose-v0")


def demo_arrays(env_id: str, root: Path, seed: int, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """``(X (N, P + K), Y (N, A))``: privileged proprio + one-hot, and the action, of every demo step."""
    from robokit.robofume.data import PARTS, load_robofume_data, make_robofume_data

    make_robofume_data(env_id, root, prior_tasks_demos=args.prior_demos, target_demos=args.target_demos,
                       failures=2, seed=seed, env_kwargs={"image_size": 16, "privileged_proprio": True},
                       progress=False)
    data = load_robofume_data(root)
    episodes = [e for part in PARTS for e in getattr(data, part)]
    x = np.concatenate([np.concatenate([e.observations["proprio"][:-1], e.observations["task"][:-1]], 1)
                        for e in episodes])
    return x.astype(np.float32), np.concatenate([e.actions for e in episodes]).astype(np.float32)


def fit_bc(x: np.ndarray, y: np.ndarray, steps: int, seed: int):
    """An MLP fit to ``y`` by squared error (Adam 1e-3, batch 256); returns (net, train MSE)."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, y.shape[1]), torch.nn.Tanh())
    optimiser = torch.optim.Adam(net.parameters(), 1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        index = torch.randint(len(xt), (256,), generator=generator)
        loss = ((net(xt[index]) - yt[index]) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return net, float(((net(xt) - yt) ** 2).mean())


def forward_episodes(env_id: str, act, episodes: int, seed: int) -> list[str]:
    """Outcome of each forward episode from a real reset: ``ok`` or how it failed."""
    from robokit.envs import make_env

    env = make_env(env_id, image_size=16, privileged_proprio=True, reset_every=1)
    unwrapped = env.unwrapped
    outcomes = []
    try:
        for episode in range(episodes):
            unwrapped.set_instruction(0)
            obs, _ = env.reset(seed=10_000 + 1000 * seed + episode)
            path, ok, truncated = [], False, False
            while not (ok or truncated):
                obs, _, _, truncated, info = env.step(act(obs))
                ok = bool(info["success"])
                path.append(info["state"][4:6])
            outcomes.append("ok" if ok else _failure(env_id, np.array(path)))
    finally:
        env.close()
    return outcomes


def _failure(env_id: str, path: np.ndarray) -> str:
    """(T, 2) object path -> a failure class (Push: off_line / overshoot / short; else timeout)."""
    if "Push" not in env_id:
        return "timeout"
    if np.abs(path[:, 1]).max() > 0.03:
        return "off_line"
    return "overshoot" if path[:, 0].max() > 0.13 else "short"


def one(env_id: str, seed: int, args: argparse.Namespace) -> dict:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        x, y = demo_arrays(env_id, Path(tmp) / "data", seed, args)
    net, mse = fit_bc(x, y, args.steps, seed)

    def bc(obs) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(np.concatenate([obs["proprio"], obs["task"]])[None]))[0].numpy()

    from robokit.envs import make_env

    bc_outcomes = forward_episodes(env_id, bc, args.episodes, seed)
    expert_env = make_env(env_id, image_size=16, reset_every=1)
    try:
        expert_outcomes = _expert_episodes(expert_env, args.episodes, seed)
    finally:
        expert_env.close()
    return {"env": env_id, "seed": seed, "transitions": len(x), "train_mse": round(mse, 4),
            "action_var": round(float(y.var(0).mean()), 4),
            "bc_success": bc_outcomes.count("ok") / len(bc_outcomes), "bc_outcomes": dict(Counter(bc_outcomes)),
            "expert_success": expert_outcomes.count("ok") / len(expert_outcomes)}


def _expert_episodes(env, episodes: int, seed: int) -> list[str]:
    """The noiseless scripted expert's forward outcome from the same real resets as the BC episodes."""
    unwrapped, outcomes = env.unwrapped, []
    for episode in range(episodes):
        unwrapped.set_instruction(0)
        env.reset(seed=10_000 + 1000 * seed + episode)
        ok = truncated = False
        while not (ok or truncated):
            _, _, _, truncated, info = env.step(unwrapped.expert_action(0))
            ok = bool(info["success"])
        outcomes.append("ok" if ok else "timeout")
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one env, one seed, 300 steps, 4 episodes")
    parser.add_argument("--envs", nargs="+", default=None, help=f"env ids (default {' '.join(ENVS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=(0, 1, 2))
    parser.add_argument("--prior-demos", type=int, default=2, help="demos per prior instruction (benchmark: 2)")
    parser.add_argument("--target-demos", type=int, default=10, help="demos each way (paper: 10)")
    parser.add_argument("--steps", type=int, default=3000, help="BC gradient steps")
    parser.add_argument("--episodes", type=int, default=20, help="forward episodes from real resets")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.quick:
        args.envs, args.seeds, args.steps, args.episodes = args.envs or ENVS[1:2], (0,), 300, 4
    started = time.perf_counter()
    rows = []
    for env_id in args.envs or ENVS:
        for seed in args.seeds:
            rows.append(one(env_id, seed, args))
            print(json.dumps(rows[-1]), flush=True)
    first = [r for r in rows if r["env"] == rows[0]["env"]]
    print(json.dumps({"benchmark": "robofume_state_bc", "unit": "forward success rate", "higher_is_better": True,
                      "robokit": round(float(np.mean([r["bc_success"] for r in first])), 3),
                      "peers": {"scripted_expert": round(float(np.mean([r["expert_success"] for r in first])), 3)},
                      "bound": 1.0,
                      "notes": f"BC on the privileged state, {rows[0]['env']}, {len(first)} seeds x {args.episodes} "
                               f"episodes from real resets; {args.target_demos} target demos each way, "
                               f"{args.prior_demos} per prior instruction; {time.perf_counter() - started:.0f}s"}))


if __name__ == "__main__":
    main()
