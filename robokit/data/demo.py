"""Demo stage ``data``: collect a small MuJoCo dataset and load it into the replay layer.

Steps: roll out a seeded random policy in gymnasium's Hopper-v5 (real MuJoCo
physics), write the episodes as a Minari dataset, read them back with
:func:`robokit.data.load_episodes`, fill a :class:`ReplayBuffer` (with Cal-QL
Monte-Carlo returns), sample a batch and a mixed offline/online batch, and save
and reload the buffer to show that the next batch is identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ENV_ID = "Hopper-v5"


def run_demo(run_dir: Path, episodes: int = 20, seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
    """Run the stage under ``run_dir``; returns headline numbers."""
    from robokit.data import MixedReplay, ReplayBuffer, load_episodes, save_minari
    from robokit.data.collect import collect_episodes
    from robokit.data.formats import episodes_to_buffer
    from robokit.data.summary import describe_batch, format_table, summarize_episodes

    run_dir = Path(run_dir)
    collected = collect_episodes(ENV_ID, episodes, seed=seed)
    dataset_dir = save_minari(collected, run_dir / "hopper-random-v0", env_id=ENV_ID,
                              algorithm_name="random", overwrite=True)
    loaded = load_episodes(dataset_dir)
    summary = summarize_episodes(loaded)
    print(format_table(summary, f"Minari dataset {dataset_dir} ({ENV_ID}, random policy, seed {seed})"))

    offline = episodes_to_buffer(loaded, seed=seed, store_mc_return=True)
    batch = offline.sample(batch_size)
    print(format_table(describe_batch(batch), f"replay: {len(offline)} transitions; one batch of {batch_size}"))

    online = ReplayBuffer(10_000, offline.obs_shape, offline.action_dim, seed=seed, store_mc_return=True)
    for episode in collect_episodes(ENV_ID, 2, seed=seed + 1000, progress=False):
        online.add_episode(episode)
    mixed = MixedReplay(offline, online, offline_fraction=0.5, seed=seed).sample(batch_size)
    n_offline = int(mixed["is_offline"].sum())
    print(f"mixed batch: {n_offline} offline + {batch_size - n_offline} online rows; "
          f"offline data read-only: {not offline.storage.fields['obs'].flags.writeable}")

    path = offline.save(run_dir / "replay.npz")
    expected = offline.sample(batch_size)
    resumed = ReplayBuffer.load(path).sample(batch_size)
    identical = all(np.array_equal(expected[k], resumed[k]) for k in expected)
    print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB); reloaded buffer gives the same next batch: "
          f"{identical}")
    return {"episodes": summary["episodes"], "transitions": summary["transitions"],
            "return_mean": round(summary["return_mean"], 3), "obs_shape": list(offline.obs_shape),
            "action_dim": offline.action_dim, "mc_return_mean": round(float(batch["mc_return"].mean()), 3),
            "mixed_offline_rows": n_offline, "resume_identical": identical, "dataset": str(dataset_dir)}
