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
from robokit.intact.scan import scan_saliency

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
    saliency = scan_saliency(lambda batch: agent.act(batch), obs, 90)
    assert saliency.argmax() == nearest and np.count_nonzero(saliency) == 1
    emptied = {}
    for targeted in (True, False):
        agent.seen.clear()
        for seed in range(5):
            bench.intact_policy(agent, "drop", 1.0, targeted, seed=seed)(env)(obs)
        emptied[targeted] = sum(scan[nearest] == 1.0 for scan in agent.seen)
    # 75% of the points dropped either way; targeted: the read bin goes first, random: it keeps some
    assert emptied[True] == 5 and emptied[False] == 0


def test_compare_tabulates_two_result_files_side_by_side(tmp_path, capsys):
    """--compare on the two committed --intact result files: a row per condition and arm, every
    seed's figures, a PNG, and the clean / mean-corrupted success of each file."""
    import json

    docs = Path(__file__).resolve().parents[2] / "docs"
    files = [docs / "sim_lidar_intact_scan_only.json", docs / "sim_lidar_intact_policy.json"]
    line = bench.compare(files, ["scan", "goal"], tmp_path / "cmp.png")
    table = capsys.readouterr().out.splitlines()
    parts = [json.loads(f.read_text())["table"] for f in files]
    assert len([r for r in table if r.startswith("| drop/1/targeted |")]) == 2
    assert "| clean | scan | 6.61 +- 8.66 | 0.50 | 8.65 / 0.6 ; 8.60 / 0.6 ; 2.59 / 0.3 |" in table
    assert line["clean"] == {"scan": parts[0]["clean"]["success"]["mean"], "goal": parts[1]["clean"]["success"]["mean"]}
    assert line["mean_corrupted"]["scan"] == pytest.approx(np.mean([v["success"]["mean"] for k, v in parts[0].items()
                                                                     if k != "clean"]))
    assert (tmp_path / "cmp.png").stat().st_size > 1000
    with pytest.raises(SystemExit, match="labels"):
        bench.compare(files, ["one"], None)


def test_curves_start_offline_to_online_runs_at_their_pretrained_policy():
    """``--curves`` plots a WSRL run from its last offline evaluation (env step 0) on, labelled by its config class."""
    curve = {"env_steps": [0.0, 0.0, 0.0, 500.0], "offline_steps": [500.0, 1000.0, 2000.0, 2000.0],
             "mean": [1.0, 2.0, 3.0, 4.0], "std": [0.0] * 4, "success": [0.0, 0.1, 0.2, 0.3]}
    assert bench._online_part(curve)["mean"] == [3.0, 4.0]
    assert bench._online_part({k: v[3:] for k, v in curve.items()})["mean"] == [4.0]
    header = "# robokit.trainers.trainer.TrainWSRLConfig\nenv: x\n"
    assert bench._run_kind(header, {"dataset": "d.npz", "offline_steps": 2000}) == " WSRL from data"
    assert bench._run_kind(header, {"dataset": None, "offline_steps": 0}) == ""
