"""robokit/ArmReach-v0: a real MuJoCo scene with a sparse, success-terminated reward."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest

from robokit.envs import ENV_SPECS, make_env

ENV_ID = "robokit/ArmReach-v0"


def test_registered_and_spaces():
    assert ENV_ID in gym.registry and ENV_ID in ENV_SPECS
    env = make_env(ENV_ID)
    assert env.observation_space.shape == (12,) and env.action_space.shape == (2,)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (12,)
    assert info["success"] is False and info["distance"] > 0.05
    np.testing.assert_allclose(obs[10:12], obs[8:10] - obs[6:8], atol=1e-6)  # goal - fingertip


def test_same_seed_same_trajectory():
    def rollout(seed):
        env = make_env(ENV_ID)
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        trajectory = [obs]
        for _ in range(10):
            trajectory.append(env.step(rng.uniform(-1, 1, 2).astype(np.float32))[0])
        return np.stack(trajectory)

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3), rollout(4))


def test_truncates_after_50_steps_with_zero_reward_when_idle():
    env = make_env(ENV_ID)
    env.reset(seed=1)
    rewards, steps = [], 0
    while True:
        _, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
        rewards.append(reward)
        steps += 1
        if terminated or truncated:
            break
    assert steps == 50 and truncated and not terminated
    assert set(rewards) == {0.0} and info["success"] is False


def test_success_gives_reward_one_and_terminates():
    """The scripted inverse-kinematics PD controller reaches the goal: reward 1, terminated."""
    env = make_env(ENV_ID)
    env.reset(seed=2)
    for _ in range(50):
        _, reward, terminated, truncated, info = env.step(env.unwrapped.scripted_action())
        if terminated or truncated:
            break
    assert terminated and reward == 1.0 and info["success"] and info["distance"] < 0.05


def test_scripted_controller_success_rate():
    env = make_env(ENV_ID)
    successes = 0
    for seed in range(20):
        env.reset(seed=seed)
        while True:
            _, _, terminated, truncated, info = env.step(env.unwrapped.scripted_action())
            if terminated or truncated:
                break
        successes += info["success"]
    assert successes >= 14  # 85% over seeds 0..39; random actions succeed in about 6%


def test_bad_actions_and_unknown_env_raise():
    env = make_env(ENV_ID)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="2 finite numbers"):
        env.unwrapped.step(np.zeros(3))
    with pytest.raises(ValueError, match="cannot make env 'robokit/Nope-v0'"):
        make_env("robokit/Nope-v0")


def test_renders_rgb_frames():
    os.environ.setdefault("MUJOCO_GL", "egl")
    env = make_env(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    try:
        frame = env.render()
    except Exception as err:  # no EGL/OSMesa on this machine
        pytest.skip(f"offscreen rendering unavailable: {err}")
    assert frame.shape == (240, 240, 3) and frame.dtype == np.uint8 and frame.std() > 0
    env.close()


def test_import_robokit_envs_does_not_import_mujoco():
    import subprocess
    import sys

    code = "import sys, robokit.envs; print('mujoco' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_hopper_actions_are_in_unit_box():
    env = make_env("Hopper-v5")
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)


def _rollout(env_id: str, seed: int, steps: int = 10) -> np.ndarray:
    env = make_env(env_id)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    observations = [obs]
    for _ in range(steps):
        observations.append(env.step(rng.uniform(-1, 1, 2).astype(np.float32))[0])
    return np.stack(observations)


def test_velocity_control_v1_passes_checker_and_is_seeded():
    from gymnasium.utils.env_checker import check_env

    env = make_env("robokit/ArmReachDense-v1")
    check_env(env.unwrapped, skip_render_check=True)
    np.testing.assert_array_equal(_rollout("robokit/ArmReachDense-v1", 3), _rollout("robokit/ArmReachDense-v1", 3))
    assert not np.array_equal(_rollout("robokit/ArmReachDense-v1", 3), _rollout("robokit/ArmReachDense-v1", 4))
    # same reset draws as v0: only the actuators differ
    np.testing.assert_array_equal(make_env("robokit/ArmReachDense-v1").reset(seed=5)[0],
                                  make_env("robokit/ArmReachDense-v0").reset(seed=5)[0])


def test_velocity_actions_set_joint_speeds_and_zero_holds_the_arm():
    env = make_env("robokit/ArmReachDense-v0", control="velocity").unwrapped
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.array([1.0, -0.5], np.float32))
    # steady state of gain * (max_speed * ctrl - qdot) - damping * qdot = 0 (gain 0.3, joint damping 0.01)
    np.testing.assert_allclose(env.data.qvel[:2], np.array([1.0, -0.5]) * 2 * np.pi * 0.3 / 0.31, rtol=0.02)
    for _ in range(3):
        env.step(np.zeros(2, np.float32))
    assert np.abs(env.data.qvel[:2]).max() < 0.05
    torque = make_env("robokit/ArmReachDense-v0").unwrapped  # a torque-driven arm coasts on (damping 0.01)
    torque.reset(seed=0)
    for action in ([1.0, -0.5],) * 3 + ([0.0, 0.0],) * 3:
        torque.step(np.array(action, np.float32))
    assert np.abs(torque.data.qvel[:2]).max() > 0.5
    with pytest.raises(ValueError, match="control"):
        make_env("robokit/ArmReachDense-v0", control="position")


def test_tip_actions_move_the_fingertip_along_the_commanded_direction():
    env = make_env("robokit/ArmReachDense-v1").unwrapped
    for seed, direction in ((0, [1.0, 0.0]), (1, [0.0, -1.0]), (2, [-0.6, 0.8])):
        env.reset(seed=seed)
        env.data.qpos[:2] = [0.3, 1.5]  # elbow bent: far from the straight and folded singular poses
        env.data.qvel[:2] = 0.0
        env._mujoco.mj_forward(env.model, env.data)
        before = env._fingertip_xy()
        for _ in range(3):
            env.step(np.array(direction, np.float32) * 0.5)
        moved = env._fingertip_xy() - before
        # 3 steps of 0.02 s at 0.5 m/s, less the servo's lag in the first step
        assert 0.02 < np.linalg.norm(moved) < 0.031
        assert moved @ np.array(direction) / np.linalg.norm(moved) > 0.98  # cos of the angle to the command
        for _ in range(3):
            env.step(np.zeros(2, np.float32))
        assert np.abs(env.data.qvel[:2]).max() < 0.05


def test_greedy_tip_policy_reaches_every_goal_and_random_does_not():
    """v1's actions make reaching a matter of pointing at the goal: the policy 'towards goal - tip'
    succeeds in every episode (what SAC has to find), a random one seldom."""
    env = make_env("robokit/ArmReachDense-v1")
    greedy, random = [], []
    for seed in range(10):
        for policy, results in ((lambda o: np.clip(o[10:12] / 0.02, -1, 1), greedy),
                                (lambda o: env.action_space.sample(), random)):
            obs, _ = env.reset(seed=seed)
            env.action_space.seed(seed)
            while True:
                obs, _, terminated, truncated, info = env.step(policy(obs).astype(np.float32))
                if terminated or truncated:
                    break
            results.append(info["success"])
    assert np.mean(greedy) == 1.0 and np.mean(random) <= 0.3
