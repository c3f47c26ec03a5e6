"""robokit/LidarNav-v0: a real MuJoCo task observed only through the simulated LiDAR."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robokit.envs import ENV_SPECS

ENV_ID = "robokit/LidarNav-v0"
pytest.importorskip("mujoco")


def test_registered_and_passes_gymnasium_checker():
    assert ENV_ID in gym.registry and ENV_ID in ENV_SPECS
    env = gym.make(ENV_ID)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"points", "proprio"}
    assert obs["points"].shape[1] == 4 and 100 < len(obs["points"]) <= 16 * 90  # every return, ragged
    assert obs["points"].dtype == np.float32
    assert obs["proprio"].shape == (5,) and info["distance"] >= 3.0
    assert env.observation_space.contains(obs)
    fixed = gym.make(ENV_ID, num_points=128)
    check_env(fixed.unwrapped, skip_render_check=True)
    assert fixed.reset(seed=0)[0]["points"].shape == (128, 4)


def test_voxel_sampling_keeps_one_return_per_voxel_of_the_full_scan():
    full = gym.make(ENV_ID).reset(seed=5)[0]["points"]
    env = gym.make("robokit/LidarNavVoxel64-v0")
    check_env(env.unwrapped, skip_render_check=True)
    points = env.reset(seed=5)[0]["points"]  # same seed: same scan, then the voxel draw
    assert points.shape == (64, 4)
    cells = np.floor(points[:, :3] / 0.5).astype(int)
    assert len(np.unique(cells, axis=0)) == 64  # ~150 occupied voxels: 64 distinct ones, no repeats
    assert (points[:, None] == full[None]).all(-1).any(1).all()  # every point is a return of the full scan
    random = gym.make(ENV_ID, num_points=64).reset(seed=5)[0]["points"]
    assert len(np.unique(np.floor(random[:, :3] / 0.5).astype(int), axis=0)) < 64  # dense voxels repeat
    with pytest.raises(ValueError, match="sampling"):
        gym.make(ENV_ID, num_points=64, sampling="grid")


def test_same_seed_same_observations():
    def rollout(seed):
        env = gym.make(ENV_ID)
        obs, _ = env.reset(seed=seed)
        clouds = [obs["points"]]
        for action in np.random.default_rng(0).uniform(-1, 1, (5, 2)).astype(np.float32):
            clouds.append(env.step(action)[0]["points"])
        return np.concatenate(clouds)

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3), rollout(4))


def test_goal_post_shows_in_the_intensity_channel_where_it_stands():
    env = gym.make(ENV_ID).unwrapped
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        offset = env.data.mocap_pos[env._goal_mocap, :2] - env.data.qpos[:2]
        yaw = env.data.qpos[2]
        local = np.array([np.cos(yaw) * offset[0] + np.sin(yaw) * offset[1],
                          -np.sin(yaw) * offset[0] + np.cos(yaw) * offset[1]])
        bright = obs["points"][obs["points"][:, 3] > 0.5]  # only the goal post reflects above 0.3
        if len(bright):  # visible (not hidden behind an obstacle): its returns sit at the post
            assert np.linalg.norm(bright[:, :2].mean(axis=0) - local) < 0.3
            return
    pytest.fail("the goal post was hidden in all ten episodes")


def test_scripted_controller_reaches_goals_and_random_does_not():
    env = gym.make(ENV_ID)
    wins = {"scripted": 0, "random": 0}
    for seed in range(4):
        for name in wins:
            obs, info = env.reset(seed=seed)
            env.action_space.seed(seed)
            done = False
            while not done:
                action = env.unwrapped.scripted_action() if name == "scripted" else env.action_space.sample()
                obs, reward, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            wins[name] += info["success"]
    assert wins["scripted"] >= 3 and wins["random"] <= 1


def test_passes_the_checker_render_check_and_renders():
    env = gym.make(ENV_ID, render_mode="rgb_array")
    try:
        env.reset(seed=0)
        frame = env.render()
    except Exception as err:  # noqa: BLE001 - no EGL/OSMesa on this machine
        pytest.skip(f"offscreen rendering unavailable: {err}")
    assert frame.shape == (240, 240, 3) and frame.dtype == np.uint8 and frame.std() > 0
    check_env(gym.make(ENV_ID).unwrapped)  # with the render check


@pytest.mark.slow
def test_sac_trains_on_the_ragged_lidar_clouds_end_to_end(tmp_path):
    """robokit train: ragged clouds into the replay, through the PointNet encoder, finite updates, a checkpoint."""
    import csv

    from robokit.cli import main

    out = tmp_path / "run"
    code = main(["train", "--algo", "sac", "--env", ENV_ID, "--encoder", "pointnet", "--online-steps", "8",
                 "--warmup-steps", "4", "--agent.batch-size", "4", "--eval-every", "1000", "--eval-episodes", "1",
                 "--out", str(out), "--no-progress", "--logger", "csv", "--threads", "1"])
    assert code == 0 and (out / "final.pt").is_file()
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert rows and all(np.isfinite(float(v)) for row in rows for v in row.values() if v not in ("", None))


def test_corrupted_scans_follow_their_severity():
    """kitti-c corruptions on the scan before sampling; beam_missing removes whole rings of the 16."""
    from robokit.envs.lidar_nav import corrupt_scan
    from robokit.simlidar.patterns import make_pattern

    clean = gym.make(ENV_ID).reset(seed=2)[0]["points"]
    dropped = gym.make(ENV_ID, corruption="drop_points", severity=3).reset(seed=2)[0]["points"]
    assert len(dropped) == len(clean) - round(0.5 * len(clean))  # kitti-c severity 3: half the points
    table = make_pattern("vlp16", 90).elevation_deg
    rings = np.argmin(np.abs(np.degrees(np.arctan2(clean[:, 2], np.hypot(clean[:, 0], clean[:, 1])))[:, None]
                             - table[None]), axis=1)
    kept = corrupt_scan(clean, "beam_missing", 5, np.random.default_rng(0), table)
    kept_rings = np.argmin(np.abs(np.degrees(np.arctan2(kept[:, 2], np.hypot(kept[:, 0], kept[:, 1])))[:, None]
                                  - table[None]), axis=1)
    lost = set(rings) - set(kept_rings)
    assert len(lost) >= 6 and len(kept) == np.isin(rings, list(set(kept_rings))).sum()  # 8 of 16 rings chosen
    with pytest.raises(ValueError, match="corruption"):
        gym.make(ENV_ID, corruption="snow")
    with pytest.raises(ValueError, match="severity"):
        gym.make(ENV_ID, corruption="crosstalk", severity=9)


@pytest.mark.slow
def test_wsrl_from_a_collected_lidar_dataset_end_to_end(tmp_path):
    """robokit collect writes LiDAR clouds to robokit's .npz replay format; WSRL pretrains on it and goes online."""
    from robokit.cli import main

    data, out = tmp_path / "lidar.npz", tmp_path / "run"
    assert main(["collect", "--env", "robokit/LidarNavVoxel64-v0", "--episodes", "2", "--max-steps", "10",
                 "--out", str(data)]) == 0
    code = main(["train", "--algo", "wsrl", "--env", "robokit/LidarNavVoxel64-v0", "--dataset", str(data),
                 "--encoder", "pointnet", "--agent.encoder.pointnet-widths", "16", "32", "--agent.batch-size", "4",
                 "--offline-steps", "4", "--online-steps", "6", "--eval-every", "1000", "--eval-episodes", "1",
                 "--out", str(out), "--no-progress", "--logger", "csv", "--threads", "1"])
    assert code == 0 and (out / "final.pt").is_file()


def test_privileged_state_variant_is_seeded_and_holds_the_goal_in_the_robot_frame():
    env = gym.make("robokit/LidarNavState-v0")
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=2)
    assert obs.shape == (23,) and obs.dtype == np.float32
    assert np.linalg.norm(obs[:2]) == pytest.approx(info["distance"], rel=1e-5)
    robot = env.unwrapped
    # the goal ahead of the robot after turning to face it: body-frame x = distance, y = 0
    offset = robot.data.mocap_pos[robot._goal_mocap, :2] - robot.data.qpos[:2]
    robot.data.qpos[2] = np.arctan2(offset[1], offset[0])
    np.testing.assert_allclose(robot._state()[:2], [info["distance"], 0.0], atol=1e-5)
    same = gym.make("robokit/LidarNavState-v0")
    actions = np.random.default_rng(0).uniform(-1, 1, (5, 2)).astype(np.float32)
    runs = []
    for e in (gym.make("robokit/LidarNavState-v0"), same):
        first = e.reset(seed=7)[0]
        runs.append(np.stack([first] + [e.step(a)[0] for a in actions]))
    np.testing.assert_array_equal(*runs)
    with pytest.raises(ValueError, match="observation"):
        gym.make("robokit/LidarNav-v0", observation="image")


def test_range_scan_by_hand():
    from robokit.envs.lidar_nav import range_bins, range_scan

    # 4 bins of 90 deg from -180: behind-right, right-front... points ahead (+x) fall in bin 2
    points = np.array([[2.0, 0.1, 0.0, 0.3], [3.0, -0.1, 0.5, 0.9], [0.0, 6.0, 0.0, 0.3], [-1.0, -0.5, 0.0, 0.2]],
                      np.float32)
    np.testing.assert_array_equal(range_bins(points, 4), [2, 1, 3, 0])
    scan = range_scan(points, 4, max_range=8.0)
    assert scan.dtype == np.float32 and scan.shape == (8,)
    np.testing.assert_allclose(scan[:4], [np.hypot(1, 0.5) / 8, np.hypot(3, 0.1) / 8, np.hypot(2, 0.1) / 8, 6 / 8],
                               rtol=1e-6)
    np.testing.assert_allclose(scan[4:], [0.2, 0.9, 0.3, 0.3])
    empty = range_scan(np.zeros((0, 4), np.float32), 4, 8.0)  # no return: far and dark
    np.testing.assert_array_equal(empty, [1, 1, 1, 1, 0, 0, 0, 0])


def test_range_variant_shows_the_goal_bright_in_its_bearing_and_goal_vector():
    from robokit.envs.lidar_nav import range_scan

    env = gym.make("robokit/LidarNavRangeGoal-v0")
    check_env(env.unwrapped, skip_render_check=True)
    robot = env.unwrapped
    assert env.spec.max_episode_steps == 150 and robot.frame_skip == 10
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        assert set(obs) == {"scan", "proprio", "goal"} and obs["scan"].shape == (180,)
        assert env.observation_space.contains(obs)
        distance, cos, sin = obs["goal"]
        assert distance == pytest.approx(min(info["distance"] / 12.0, 1.0), rel=1e-5)
        bearing = np.arctan2(sin, cos)
        bright = np.flatnonzero(obs["scan"][90:] > 0.5)  # only the goal post reflects above 0.3
        if len(bright):  # the post seen: its bin is the goal's bearing (4-degree bins from -180)
            assert np.abs(bright - (bearing + np.pi) / (2 * np.pi) * 90).min() <= 1.0
            assert obs["scan"][bright].min() == pytest.approx(info["distance"] / 12.0, abs=0.02)
            np.testing.assert_array_equal(obs["scan"], range_scan(robot.last_points, 90, 12.0))
            break
    else:
        pytest.fail("the goal post was hidden in all ten episodes")
    scan_only = gym.make("robokit/LidarNavRange-v0")
    assert set(scan_only.reset(seed=0)[0]) == {"scan", "proprio"}
    with pytest.raises(ValueError, match="bins"):
        gym.make("robokit/LidarNavRange-v0", bins=0)
    with pytest.raises(ValueError, match="goal_vector"):
        gym.make("robokit/LidarNavState-v0", goal_vector=True)


def test_fog_on_the_range_scan_adds_near_returns_and_dims_the_goal_with_severity():
    """``corruption="fog"``: the same reset's scan (the scanner's draws do not change) gets nearer
    bins (backscatter) and a dimmer goal post (two-way attenuation), more at higher severity."""
    clean = gym.make("robokit/LidarNavRange-v0").reset(seed=3)[0]["scan"]
    nearer, brightest = [], []
    for severity in (1, 3, 5):
        scan = gym.make("robokit/LidarNavRange-v0", corruption="fog", severity=severity).reset(seed=3)[0]["scan"]
        assert np.all(scan[:90] <= clean[:90] + 1e-6)  # bright returns at <= 12 m are never lost at these alphas
        nearer.append(int((scan[:90] < clean[:90] - 0.01).sum()))
        brightest.append(float(scan[90:].max()))
    assert clean[90:].max() > 0.5  # the goal post in view
    assert 0 < nearer[0] < nearer[1] < nearer[2] and brightest[0] > brightest[1] > brightest[2]
