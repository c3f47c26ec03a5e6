"""The RL stage of ``robokit demo``: a short WSRL run on the sparse ArmReach task.

1. a small offline dataset: noisy scripted reaching (an inverse-kinematics PD controller plus
   Gaussian action noise) in the real MuJoCo env, saved in Minari format;
2. WSRL: Cal-QL pretraining on a 10-member LayerNorm Q ensemble -> warm-up with the pretrained
   policy (no updates) -> SAC fine-tuning without offline data (UTD 2);
3. the learning curve PNG and a short summary.

Budgets are far below the paper's (seconds of CPU, not hours); see docs/rl.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

ENV_ID = "robokit/ArmReach-v0"


def noisy_scripted_episodes(episodes: int, noise: float, seed: int) -> list:
    """ArmReach episodes of the scripted controller with N(0, noise) action noise."""
    from robokit.envs import make_env
    from robokit.trainers.datasets import collect_episodes

    env = make_env(ENV_ID)
    rng = np.random.default_rng(seed)

    def policy(_obs: np.ndarray) -> np.ndarray:
        return np.clip(env.unwrapped.scripted_action() + rng.normal(0, noise, 2), -1, 1)

    return collect_episodes(env, policy, episodes, seed=seed * 1000)


def run_demo(run_dir: Path, offline_steps: int = 300, online_steps: int = 1000, seed: int = 0,
             noise: float = 1.5) -> dict:
    """Run the short WSRL demo under ``run_dir``; returns headline numbers."""
    import torch

    from robokit.algos import WSRLConfig
    from robokit.data import save_minari
    from robokit.trainers.trainer import config_class_for, train

    torch.set_num_threads(1)
    run_dir = Path(run_dir).resolve()
    start = time.perf_counter()
    episodes = noisy_scripted_episodes(40, noise=noise, seed=seed)
    dataset = save_minari(episodes, run_dir / "dataset", env_id=ENV_ID)
    data_success = float(np.mean([ep.is_terminated for ep in episodes]))
    agent = WSRLConfig(hidden_dims=(64, 64), batch_size=64, cql_n_actions=4, utd_ratio=2, warmup_steps=200)
    config = config_class_for("wsrl")(env=ENV_ID, dataset=dataset, offline_steps=offline_steps,
                                      online_steps=online_steps, seed=seed, out=run_dir / "wsrl", logger=("csv",),
                                      eval_every=200, eval_episodes=20, log_every=100, checkpoint_every=10**9,
                                      sparse_reward_failure_value=0.0, progress=False, agent=agent)
    summary = train("wsrl", config)
    result = {
        "dataset_episodes": len(episodes),
        "dataset_success_rate": round(data_success, 3),
        "pretrained_success_rate": summary.get("pretrained_return"),
        "final_success_rate": summary.get("final_success_rate"),
        "offline_steps": offline_steps,
        "online_steps": online_steps,
        "curve_png": str(run_dir / "wsrl" / "learning_curve.png"),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(f"WSRL on {ENV_ID}: dataset success {data_success:.2f} ({len(episodes)} noisy scripted episodes); "
          f"success after {offline_steps} offline Cal-QL steps {result['pretrained_success_rate']:.2f}; "
          f"after {online_steps} online steps (200 warm-up) {result['final_success_rate']:.2f}; "
          f"curve: {result['curve_png']} ({result['seconds']} s)")
    return result
