"""Fixtures for RL tests: a small real ArmReach dataset in Minari format."""

from __future__ import annotations

import numpy as np
import pytest

ENV_ID = "robokit/ArmReach-v0"


@pytest.fixture(scope="session")
def arm_dataset(tmp_path_factory):
    """20 episodes of random Gaussian actions in the real ArmReach env."""
    from robokit.data import Episode, save_minari
    from robokit.envs import make_env

    env = make_env(ENV_ID)
    rng = np.random.default_rng(0)
    episodes = []
    for k in range(20):
        obs, _ = env.reset(seed=k)
        observations, actions, rewards, successes = [obs], [], [], []
        while True:
            action = np.clip(rng.normal(0, 0.6, 2), -1, 1).astype(np.float32)
            obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            successes.append(info["success"])
            if terminated or truncated:
                break
        steps = len(actions)
        term = np.zeros(steps, bool)
        trunc = np.zeros(steps, bool)
        term[-1], trunc[-1] = terminated, truncated and not terminated
        episodes.append(Episode(np.stack(observations), np.stack(actions), np.array(rewards, np.float32), term, trunc,
                                {"success": np.array(successes)}))
    return save_minari(episodes, tmp_path_factory.mktemp("arm") / "random", env_id=ENV_ID)
