"""robokit/ArmReachCloud-v0: a MuJoCo task observed as points sampled on its bodies' surfaces."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robokit.envs import make_env
from robokit.envs.arm_reach import MJCF_PATH
from robokit.envs.point_cloud import (
    ARM_REACH_PARTS,
    BOX,
    CAPSULE,
    CYLINDER,
    SPHERE,
    SurfacePart,
    SurfaceSampler,
    surface_points,
)

ENV_ID = "robokit/ArmReachCloud-v0"


def test_passes_gymnasiums_env_checker():
    from gymnasium.utils.env_checker import check_env

    env = make_env(ENV_ID)
    check_env(env.unwrapped, skip_render_check=True)


def test_points_vary_in_number_and_lie_on_the_scene():
    env = make_env(ENV_ID)
    obs, _ = env.reset(seed=0)
    counts = []
    for _ in range(10):
        points = obs["points"]
        assert points.dtype == np.float32 and points.shape[1] == 4 and obs["proprio"].shape == (6,)
        assert env.observation_space.contains(obs)
        assert np.abs(points[:, :2]).max() < 0.23 and np.abs(points[:, 2]).max() < 0.0125  # planar arm, reach 0.21 m
        counts.append(len(points))
        obs, *_ = env.step(env.action_space.sample())
    assert len(set(counts)) > 1 and max(counts) <= sum(p.points for p in ARM_REACH_PARTS)


def test_goal_points_sit_on_the_goal_disc():
    env = make_env(ENV_ID)
    obs, _ = env.reset(seed=4)
    goal = env.unwrapped._goal
    disc = obs["points"][obs["points"][:, 3] == 1.0]
    assert len(disc) > 40
    assert np.linalg.norm(disc[:, :2] - goal, axis=1).max() <= 0.05 + 1e-5  # goal site radius 0.05 m
    arm = obs["points"][obs["points"][:, 3] == 0.0]
    tip = env.unwrapped._fingertip_xy()
    assert np.linalg.norm(arm[:, :2] - tip, axis=1).min() < 0.025  # link1 ends 1 cm before the fingertip site


def test_same_seed_same_clouds():
    def clouds(seed):
        env = make_env(ENV_ID)
        obs, _ = env.reset(seed=seed)
        out = [obs["points"]]
        for _ in range(3):
            out.append(env.step(np.full(2, 0.5, np.float32))[0]["points"])
        return out

    for a, b in zip(clouds(1), clouds(1), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(clouds(1)[0], clouds(2)[0])


@pytest.mark.parametrize("kind,size,check", [
    (SPHERE, [0.1, 0, 0], lambda p: np.linalg.norm(p, axis=1) - 0.1),
    (CYLINDER, [0.1, 0.2, 0], lambda p: np.minimum(np.abs(np.hypot(p[:, 0], p[:, 1]) - 0.1),
                                                     np.abs(np.abs(p[:, 2]) - 0.2))),
    (CAPSULE, [0.1, 0.2, 0], lambda p: np.hypot(np.hypot(p[:, 0], p[:, 1]),
                                                np.maximum(np.abs(p[:, 2]) - 0.2, 0)) - 0.1),
    (BOX, [0.1, 0.2, 0.3], lambda p: np.min(np.abs(np.abs(p) - [0.1, 0.2, 0.3]), axis=1)),
])
def test_surface_samples_lie_on_the_primitive(kind, size, check):
    points = surface_points(kind, np.array(size), 2000, np.random.default_rng(0))
    assert points.shape == (2000, 3)
    np.testing.assert_allclose(check(points), 0.0, atol=1e-9)


def test_capsule_sides_get_points_in_proportion_to_area():
    radius, half = 0.1, 0.2
    points = surface_points(CAPSULE, np.array([radius, half]), 20000, np.random.default_rng(1))
    on_side = np.mean(np.abs(points[:, 2]) < half)
    side = 2 * np.pi * radius * 2 * half
    assert on_side == pytest.approx(side / (side + 4 * np.pi * radius**2), abs=0.015)


def test_bad_parts_raise_naming_them():
    model = mujoco.MjModel.from_xml_path(str(MJCF_PATH))
    with pytest.raises(ValueError, match="no geom named 'elbow'"):
        SurfaceSampler(model, (SurfacePart("elbow", 10),))
    with pytest.raises(ValueError, match="dropout must be in"):
        SurfaceSampler(model, ARM_REACH_PARTS, dropout=1.0)
    with pytest.raises(ValueError, match="geom type 0"):
        surface_points(0, np.ones(3), 4, np.random.default_rng(0))


def test_v1_passes_the_checker_is_seeded_and_has_the_light_cloud():
    from gymnasium.utils.env_checker import check_env

    from robokit.envs.point_cloud import ARM_REACH_PARTS_LIGHT

    env = make_env("robokit/ArmReachCloud-v1")
    check_env(env.unwrapped, skip_render_check=True)

    def rollout(seed):
        env = make_env("robokit/ArmReachCloud-v1")
        clouds = [env.reset(seed=seed)[0]["points"]]
        for action in np.random.default_rng(0).uniform(-1, 1, (5, 2)).astype(np.float32):
            clouds.append(env.step(action)[0]["points"])
        return clouds

    first, again, other = rollout(3), rollout(3), rollout(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(len(a) == len(b) and np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    assert max(len(c) for c in first) <= sum(p.points for p in ARM_REACH_PARTS_LIGHT) == 72
    assert env.unwrapped.control == "tip"
    with pytest.raises(ValueError, match="cloud"):
        make_env("robokit/ArmReachCloud-v1", cloud="dense")
