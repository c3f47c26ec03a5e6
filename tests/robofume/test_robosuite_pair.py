"""robokit/RobosuiteLiftPlace-v0: robosuite's Lift as a reset-free pair (the contract on a real
robosuite scene; the experts' full lift-and-place run is the slow test)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("robosuite", reason="robosuite not installed (make robosuite)")

import robokit.envs  # noqa: E402,F401  (registers the ids)
from robokit.robofume.data import rollout, scripted_policy  # noqa: E402

ENV_ID = "robokit/RobosuiteLiftPlace-v0"


@pytest.fixture(scope="module")
def env():
    env = gym.make(ENV_ID, reset_every=20)  # building robosuite's model takes ~10-20 s: one env for the module
    yield env
    env.close()


def test_observation_and_reset_free_contract(env):
    unwrapped = env.unwrapped
    obs, info = env.reset(seed=0)
    assert info["hard_reset"] and obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert obs["proprio"].shape == (5,) and obs["task"].tolist() == [1.0, 0.0, 0.0]
    assert env.observation_space.contains(obs) and env.action_space.shape == (4,)
    first = unwrapped.hard_resets
    for _ in range(5):
        obs, reward, terminated, _, info = env.step(np.array([0.0, 0.0, -1.0, -1.0], np.float32))
    moved = unwrapped.state()
    _, info = env.reset()
    assert not info["hard_reset"] and unwrapped.hard_resets == first
    np.testing.assert_array_equal(unwrapped.state(), moved)
    unwrapped.set_instruction(unwrapped.backward)  # switches without touching the state
    np.testing.assert_array_equal(unwrapped.state(), moved)
    for _ in range(15):
        env.step(np.zeros(4, np.float32))
    _, info = env.reset()  # 20 steps since the real reset: K reached
    assert info["hard_reset"] and unwrapped.hard_resets == first + 1


def test_seeded_resets_repeat_and_success_rules_follow_the_cube(env):
    unwrapped = env.unwrapped
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(first["image"], again["image"])
    assert not unwrapped.success(unwrapped.forward)
    assert unwrapped.success(unwrapped.backward)  # cube resting mid-table, hand far above
    sim, joint = unwrapped.suite_env.sim, unwrapped.suite_env.cube.joints[0]
    qpos = sim.data.get_joint_qpos(joint).copy()
    qpos[2] = unwrapped.table_z + 0.1  # cube lifted 10 cm
    sim.data.set_joint_qpos(joint, qpos)
    sim.forward()
    unwrapped._refresh()
    assert unwrapped.success(unwrapped.forward) and not unwrapped.success(unwrapped.backward)
    with pytest.raises(ValueError, match="action must be 4 finite numbers"):
        env.step(np.zeros(2, np.float32))


@pytest.mark.slow
def test_experts_lift_and_put_down_reset_free(env):
    unwrapped = env.unwrapped
    env.reset(seed=1)
    for name in (unwrapped.forward, unwrapped.backward):
        episode = rollout(env, name, scripted_policy(env, name, noise=0.05, rng=np.random.default_rng(0)))
        assert episode.is_terminated and episode.infos["success"][-1], name
