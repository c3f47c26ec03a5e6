"""INTACT on a LidarNav range-scan policy's input (benchmarks/lidar_nav_sac.py ``--intact``):
saliency-targeted drops empty the bins a policy reads, random drops of the same budget do not.
The policy is a stand-in that reads one bin (no training); the env and the corruption are real."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import robokit.envs  # noqa: F401  (registers the ids)

pytest.importorskip("mujoco")
_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "lidar_nav_sac.py"
_SPEC = importlib.util.spec_from_file_location("lidar_nav_sac", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


class ReadsOneBin:
    """Steers by one bin's range and intensity; remembers every single observation it acted on."""

    def __init__(self, index: int, bins: int = 90) -> None:
        self.index, self.bins, self.seen = index, bins, []

    def act(self, obs: dict) -> np.ndarray:
        scan = np.asarray(obs["scan"])
        if scan.ndim == 1:
            self.seen.append(scan.copy())
        return np.stack([scan[..., self.index], scan[..., self.bins + self.index]], axis=-1).astype(np.float32)


def test_policy_saliency_marks_the_bin_it_reads_and_targeted_drops_empty_it():
    env = gym.make("robokit/LidarNavRange-v0")
    obs, _ = env.reset(seed=0)
    nearest = int(np.argmin(obs["scan"][:90]))  # a bin full of returns (the nearest surface)
    assert obs["scan"][nearest] < 0.5
    agent = ReadsOneBin(nearest)
    saliency = bench.scan_saliency(agent, obs, 90)
    assert saliency.argmax() == nearest and np.count_nonzero(saliency) == 1
    emptied = {}
    for targeted in (True, False):
        agent.seen.clear()
        for seed in range(5):
            bench.intact_policy(agent, "drop", 1.0, targeted, seed=seed)(env)(obs)
        emptied[targeted] = sum(scan[nearest] == 1.0 for scan in agent.seen)
    # 75% of the points dropped either way; targeted: the read bin goes first, random: it keeps some
    assert emptied[True] == 5 and emptied[False] == 0
