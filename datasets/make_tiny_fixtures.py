"""Write one tiny dataset in every format robokit reads, from real Hopper-v5 rollouts.

    python datasets/make_tiny_fixtures.py OUT_DIR [--episodes 3] [--seed 0]

Creates ``OUT_DIR/hopper-tiny-v0`` (Minari), ``hopper-tiny.d4rl.hdf5`` (D4RL-style),
``hopper-tiny.robomimic.hdf5`` (robomimic layout) and ``hopper-tiny.npz`` (robokit
replay), then reads each back and checks it holds the same transitions. Useful for
trying loaders and converters without downloading anything.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from robokit.data import load_episodes
from robokit.data.collect import collect_episodes
from robokit.data.formats import save_episodes

TARGETS = (("hopper-tiny-v0", "minari"), ("hopper-tiny.d4rl.hdf5", "d4rl"),
           ("hopper-tiny.robomimic.hdf5", "robomimic"), ("hopper-tiny.npz", "replay"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    episodes = collect_episodes("Hopper-v5", args.episodes, seed=args.seed, progress=False)
    for name, fmt in TARGETS:
        path = save_episodes(episodes, args.out_dir / name, fmt, env_id="Hopper-v5", overwrite=True)
        back = load_episodes(path)
        same = all(np.array_equal(a.actions, b.actions) and np.array_equal(a.observations, b.observations)
                   for a, b in zip(episodes, back, strict=True))
        print(f"{fmt:<10} {path}  {len(back)} episodes, {sum(len(e) for e in back)} transitions, "
              f"round trip {'ok' if same else 'MISMATCH'}")


if __name__ == "__main__":
    main()
