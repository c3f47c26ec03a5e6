"""robokit/PointMassReach-v0 and its pixel id: real MuJoCo, frames rendered offscreen (EGL)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robokit.envs import make_env
from robokit.envs.point_mass_reach import PointMassReachEnv

PIXELS = "robokit/PointMassReachPixels-v0"


@pytest.fixture(scope="module")
def egl() -> None:
    env = PointMassReachEnv(width=16, height=16, render_mode="rgb_array")
    env.reset(seed=0)
    try:
        env.render()
    except Exception as err:  # no EGL on this machine
        pytest.skip(f"offscreen rendering unavailable: {err}")
    finally:
        env.close()


def _rollout(env: gym.Env, seed: int, steps: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        out.append(env.step(rng.uniform(-1, 1, 2).astype(np.float32))[0])
    return out


def test_state_and_pixel_ids_pass_the_env_checker(egl):
    from gymnasium.utils.env_checker import check_env

    from robokit.nets.obs_spec import ImageSpec, spec_from_space

    check_env(gym.make("robokit/PointMassReach-v0").unwrapped, skip_render_check=True)
    env = make_env(PIXELS)
    assert env.observation_space == gym.spaces.Box(0, 255, (3, 32, 32, 3), np.uint8)
    assert spec_from_space(env.observation_space) == ImageSpec(32, 32, 3, 3)
    with pytest.warns(UserWarning):  # gymnasium warns that a wrapped env is checked
        check_env(env, skip_render_check=True)
    env.close()


def test_reward_is_minus_the_distance_and_only_the_time_limit_ends_an_episode():
    env = make_env("robokit/PointMassReach-v0")
    obs, info = env.reset(seed=2)
    assert info["distance"] == pytest.approx(np.linalg.norm(obs[:2] - obs[4:6]), abs=1e-6)
    for t in range(50):
        obs, reward, terminated, truncated, info = env.step(np.ones(2, np.float32))
        assert reward == pytest.approx(-np.linalg.norm(obs[:2] - obs[4:6]), abs=1e-6)
        assert reward == -info["distance"] and not terminated
        assert truncated == (t == 49)
    assert obs[0] == pytest.approx(0.26, abs=1e-3)  # pushed into the joint limit at the arena's edge
    env.close()


def test_the_pixel_id_repeats_each_action_4_times_over_the_same_50_step_episode(egl):
    """Against the state env stepped by hand: the same states, rewards summed over 4 steps, 13 actions."""
    pixels, state = make_env(PIXELS), make_env("robokit/PointMassReach-v0")
    pixels.reset(seed=3)
    state.reset(seed=3)
    rng = np.random.default_rng(1)
    for step in range(13):
        action = rng.uniform(-1, 1, 2).astype(np.float32)
        _, reward, terminated, truncated, _ = pixels.step(action)
        expected = sum(state.step(action)[1] for _ in range(min(4, 50 - 4 * step)))
        np.testing.assert_array_equal(pixels.unwrapped.data.qpos, state.unwrapped.data.qpos)
        assert reward == pytest.approx(expected) and not terminated and truncated == (step == 12)
    pixels.close()
    state.close()


def test_a_controller_that_reads_the_state_beats_random_actions():
    """The task is solvable and the random policy is not: a P controller on the state reaches the goal."""
    env = make_env("robokit/PointMassReach-v0")
    rng = np.random.default_rng(0)
    scripted, random = [], []
    for seed in range(10):
        for policy, returns in ((lambda o: np.clip(20 * (o[4:6] - o[:2]), -1, 1), scripted),
                                (lambda o: rng.uniform(-1, 1, 2), random)):
            obs, _ = env.reset(seed=seed)
            total = 0.0
            for _ in range(50):
                obs, reward, _, _, info = env.step(policy(obs).astype(np.float32))
                total += reward
            returns.append(total)
            if returns is scripted:
                assert info["success"]
    assert np.mean(scripted) > -3.5 > -8 > np.mean(random)
    env.close()


def test_frames_show_the_mass_and_the_goal_where_they_are(egl):
    """The centroids of the red (mass) and green (goal) pixels map to their xy through the top camera."""
    env = PointMassReachEnv(width=48, height=48, render_mode="rgb_array")
    for seed in range(4):
        state, _ = env.reset(seed=seed)
        frame = env.render().astype(int)
        r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
        # (mask, xy, height of the visible top [m]): the mass's centre is 0.04 m up, the goal disc on the floor
        for mask, xy, height in ((r - g > 100, state[:2], 0.04), ((g - r > 80) & (g - b > 60), state[4:6], 0.0)):
            rows, cols = np.nonzero(mask)
            assert rows.size > 10
            # top camera 0.75 m up, fovy 45: at height h, 48 px span 2 (0.75 - h) tan(22.5 deg) m; rows grow towards -y
            metres_per_px = 2 * (0.75 - height) * np.tan(np.radians(22.5)) / 48
            seen = np.array([cols.mean() + 0.5 - 24, 24 - rows.mean() - 0.5]) * metres_per_px
            np.testing.assert_allclose(seen, xy, atol=metres_per_px)
    env.close()


def test_same_seed_same_frames_other_seed_other_frames(egl):
    env, fresh = make_env(PIXELS), make_env(PIXELS)
    a, b, c = _rollout(env, 7), _rollout(fresh, 7), _rollout(env, 8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert all(not np.array_equal(x, z) for x, z in zip(a, c, strict=True))
    env.close()
    fresh.close()


def test_bad_arguments_name_the_env():
    with pytest.raises(ValueError, match="PointMassReachEnv: goal_range"):
        PointMassReachEnv(goal_range=0.5)
    with pytest.raises(ValueError, match="PointMassReachEnv: width"):
        PointMassReachEnv(width=4)
    with pytest.raises(ValueError, match="PointMassReachEnv: render_mode"):
        PointMassReachEnv(render_mode="human")
    env = PointMassReachEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="PointMassReachEnv: action"):
        env.step(np.array([np.nan, 0.0]))
