"""Fixtures for RL tests: a small real ArmReach dataset in Minari format."""

from __future__ import annotations

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
