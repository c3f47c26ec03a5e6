"""The pixel wrapper: real MuJoCo frames rendered offscreen (EGL), frame-stacked, deterministic for a seed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robokit.envs import make_env
from robokit.envs.pixels import PixelObservation, PixelOptions, make_pixel_env


@pytest.fixture(scope="module")
def egl() -> None:
    env = gym.make("InvertedPendulum-v5", render_mode="rgb_array", width=16, height=16)
    env.reset(seed=0)
    try:
        env.render()
    except Exception as err:  # no EGL on this machine
        pytest.skip(f"offscreen rendering unavailable: {err}")
    finally:
        env.close()


def _frames(env: gym.Env, seed: int, steps: int = 6) -> list:
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for _ in range(steps):
        frames.append(env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[0])
    return frames


def test_frames_are_uint8_stacked_oldest_first_and_read_as_an_image_spec(egl):
    from robokit.nets.obs_spec import ImageSpec, spec_from_space

    env = make_pixel_env("robokit/ArmReach-v0", PixelOptions(size=24, frame_stack=3))
    assert env.observation_space == gym.spaces.Box(0, 255, (3, 24, 24, 3), np.uint8)
    assert spec_from_space(env.observation_space) == ImageSpec(24, 24, 3, 3)
    obs, _ = env.reset(seed=1)
    assert obs.dtype == np.uint8 and obs.shape == (3, 24, 24, 3) and obs.std() > 0
    np.testing.assert_array_equal(obs[0], obs[2])  # after a reset: the first frame k times
    first = obs[2].copy()
    obs, *_ = env.step(np.ones(2, np.float32))
    np.testing.assert_array_equal(obs[1], first)  # the previous newest frame moved one slot older
    np.testing.assert_array_equal(obs[2], env.render())  # the newest frame is the current render
    assert not np.array_equal(obs[2], first) and env.observation_space.contains(obs)
    single = make_pixel_env("robokit/ArmReach-v0", PixelOptions(size=24, frame_stack=1))
    assert single.observation_space.shape == (24, 24, 3)
    env.close()
    single.close()


def test_same_seed_same_frames_other_seed_other_frames(egl):
    env = make_pixel_env("InvertedPendulum-v5", PixelOptions(size=32, frame_stack=2))
    a, b, c = _frames(env, 5), _frames(env, 5), _frames(env, 6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c, strict=True))
    other = make_pixel_env("InvertedPendulum-v5", PixelOptions(size=32, frame_stack=2))  # a fresh renderer
    np.testing.assert_array_equal(_frames(other, 5)[-1], a[-1])
    env.close()
    other.close()


def test_dict_output_keeps_the_state_as_proprio(egl):
    env = make_env("robokit/ArmReach-v0", pixels=PixelOptions(size=16, frame_stack=1, proprio=True))
    state_env = make_env("robokit/ArmReach-v0")
    obs, _ = env.reset(seed=3)
    state, _ = state_env.reset(seed=3)
    assert set(obs) == {"image", "proprio"} and obs["image"].shape == (16, 16, 3)
    np.testing.assert_array_equal(obs["proprio"], state)
    assert env.observation_space.contains(obs)
    env.close()


def test_registered_pixel_ids_pass_the_env_checker(egl):
    from gymnasium.utils.env_checker import check_env

    for env_id, shape in (("robokit/ArmReachDensePixels-v0", (3, 64, 64, 3)),
                          ("robokit/InvertedPendulumPixels-v0", (3, 32, 32, 3)),
                          ("robokit/InvertedPendulumPixels-v1", (3, 32, 32, 3))):
        env = make_env(env_id)
        assert env.observation_space.shape == shape
        with pytest.warns(UserWarning):  # gymnasium warns that a wrapped env is checked
            check_env(env, skip_render_check=True)
        env.close()


def test_action_repeat_steps_k_times_sums_rewards_and_stops_at_the_end(egl):
    """Against the plain env stepped by hand with the same actions and seed."""
    repeated = make_pixel_env("InvertedPendulum-v5", PixelOptions(size=16, frame_stack=1, action_repeat=2))
    plain = gym.make("InvertedPendulum-v5")
    repeated.reset(seed=4)
    plain.reset(seed=4)
    action = np.array([0.7], np.float32)
    for _ in range(50):
        _, reward, terminated, truncated, _ = repeated.step(action)
        expected, done = 0.0, False
        for _ in range(2):
            _, r, term, trunc, _ = plain.step(action)
            expected, done = expected + r, term or trunc
            if done:
                break
        np.testing.assert_array_equal(repeated.unwrapped.data.qpos, plain.unwrapped.data.qpos)
        assert reward == expected and (terminated or truncated) == done
        if done:
            break
    assert done  # a constant push topples the pole: the early stop was exercised
    repeated.close()
    plain.close()


def test_bad_pixel_options_and_non_rendering_envs_raise():
    with pytest.raises(ValueError, match="--frame-stack must be >= 1"):
        PixelOptions(frame_stack=0)
    with pytest.raises(ValueError, match="action_repeat must be >= 1"):
        PixelOptions(action_repeat=0)
    with pytest.raises(ValueError, match="--pixel-size must be >= 8"):
        PixelOptions(size=2)
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        PixelObservation(gym.make("InvertedPendulum-v5"))
    with pytest.raises(ValueError, match="cannot make env 'robokit/Nope-v0'"):
        make_pixel_env("robokit/Nope-v0")
