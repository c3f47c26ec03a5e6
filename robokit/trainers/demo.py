"""The RL stage of ``robokit demo``: a short WSRL run whose learning is visible in a minute.

1. an offline dataset of 100 random-policy episodes in gymnasium's MuJoCo
   ``InvertedPendulum-v5``, saved in Minari format;
2. WSRL: CQL pretraining (WSRL's recipe for dense rewards; Cal-QL is for sparse ones) on a
   10-member LayerNorm Q ensemble -> a warm-up of online steps by the pretrained policy with no
   updates -> SAC fine-tuning without offline data (UTD 2);
3. the learning curve PNG and a short summary.

The sparse ArmReach task is not used here: at a demo's budget no method learns to reach
(docs/rl.md). Budgets are far below the paper's (seconds of CPU, not hours).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

ENV_ID = "InvertedPendulum-v5"


def random_episodes(episodes: int, seed: int) -> list:
    """``episodes`` episodes of a uniform random policy (force in [-3, 3] N) in ``ENV_ID``."""
    from robokit.envs import make_env
    from robokit.trainers.datasets import collect_episodes

    env = make_env(ENV_ID)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    return collect_episodes(env, lambda _obs: rng.uniform(low, high).astype(np.float32), episodes,
                            seed=seed * 1000)


def run_demo(run_dir: Path, offline_steps: int = 500, online_steps: int = 4000, seed: int = 0) -> dict:
    """Run the short WSRL demo under ``run_dir``; returns headline numbers."""
    import torch

    from robokit.algos import WSRLConfig
    from robokit.data import save_minari
    from robokit.trainers.trainer import config_class_for, train

    torch.set_num_threads(1)
    run_dir = Path(run_dir).resolve()
    start = time.perf_counter()
    episodes = random_episodes(100, seed=seed)
    dataset = save_minari(episodes, run_dir / "dataset", env_id=ENV_ID)
    data_return = float(np.mean([ep.rewards.sum() for ep in episodes]))
    agent = WSRLConfig(hidden_dims=(64, 64), batch_size=64, cql_n_actions=4, utd_ratio=2,
                       warmup_steps=200, calql=False)
    config = config_class_for("wsrl")(
        env=ENV_ID, dataset=dataset, offline_steps=offline_steps, online_steps=online_steps,
        seed=seed, out=run_dir / "wsrl", logger=("csv",), eval_every=500, eval_episodes=5,
        log_every=500, checkpoint_every=10**9, progress=False, agent=agent)
    summary = train("wsrl", config)
    result = {
        "dataset_episodes": len(episodes),
        "dataset_return": round(data_return, 1),
        "pretrained_return": summary.get("pretrained_return"),
        "final_return": summary.get("final_return"),
        "offline_steps": offline_steps,
        "online_steps": online_steps,
        "curve_png": str(run_dir / "wsrl" / "learning_curve.png"),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(f"WSRL on {ENV_ID}: dataset return {data_return:.1f} ({len(episodes)} random episodes); "
          f"eval return after {offline_steps} offline CQL steps {result['pretrained_return']:.1f}; "
          f"after {online_steps} online steps (200 warm-up) {result['final_return']:.1f}; "
          f"curve: {result['curve_png']} ({result['seconds']} s)")
    return result
