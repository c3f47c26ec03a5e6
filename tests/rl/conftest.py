"""Fixtures for RL tests: a small real ArmReach dataset in Minari format."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ENV_ID = "robokit/ArmReach-v0"


@pytest.fixture(scope="session")
def arm_dataset(tmp_path_factory):
    """20 episodes of random Gaussian actions in the real ArmReach env."""
    from robokit.data import save_minari
    from robokit.envs import make_env
    from robokit.trainers.datasets import collect_episodes

    rng = np.random.default_rng(0)
    episodes = collect_episodes(make_env(ENV_ID), lambda _obs: np.clip(rng.normal(0, 0.6, 2), -1, 1), 20)
    return save_minari(episodes, tmp_path_factory.mktemp("arm") / "random", env_id=ENV_ID)


def _run_killed_and_resumed(args: list[str], tmp_path: Path, checkpoint_globs: tuple[str, ...]) -> tuple[Path, Path, str]:
    """``robokit train *args`` run to the end in tmp_path/full, and in tmp_path/killed killed with SIGKILL
    once a checkpoint matching one of ``checkpoint_globs`` exists, then run again with --resume.

    Returns (full run dir, resumed run dir, stdout of the resumed run).
    """
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "robokit", "train", *args, "--out"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run([*command, str(full)], check=True, env=env, capture_output=True, timeout=600)
    proc = subprocess.Popen([*command, str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and \
            not any(list((killed / "checkpoints").glob(pattern)) for pattern in checkpoint_globs):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "final.pt").exists(), "the run finished before it could be killed"
    resumed = subprocess.run([*command, str(killed), "--resume"], check=True, env=env, capture_output=True,
                             text=True, timeout=600)
    return full, killed, resumed.stdout


@pytest.fixture
def run_killed_and_resumed():
    """The kill-and-resume driver (:func:`_run_killed_and_resumed`) for resume tests."""
    return _run_killed_and_resumed
