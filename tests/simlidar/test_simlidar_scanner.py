"""The simulated LiDAR against hand-computed geometry, on real MuJoCo scenes (no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.simlidar.patterns import hdl64e_elevations, make_pattern
from robokit.simlidar.scanner import LidarConfig, LidarScanner

mujoco = pytest.importorskip("mujoco")

#: a wall whose front face is the plane x = 10 (group 2), a sensor body 1 m up with a box cage around it
WALL_XML = """
<mujoco><worldbody>
  <geom name="wall" type="box" pos="10.5 0 0" size="0.5 50 50" group="2"/>
  <body name="sensor" mocap="true" pos="0 0 1">
    <geom name="cage" type="box" size="0.5 0.5 0.5" contype="0" conaffinity="0" group="{cage_group}"/>
  </body>
</worldbody></mujoco>
"""


def wall_scene(cage_group: int = 0):
    model = mujoco.MjModel.from_xml_string(WALL_XML.format(cage_group=cage_group))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data


def quiet(**overrides) -> LidarConfig:
    """Pattern vlp16 x 360 steps, no noise, no dropout."""
    settings = dict(pattern="vlp16", azimuth_steps=360, range_noise_std=0.0, divergence_mrad=0.0,
                    weak_dropout=0.0, dropout=0.0)
    return LidarConfig(**(settings | overrides))


# ----------------------------------------------------------------------------- beam tables


def test_beam_tables_match_the_datasheets():
    hdl64 = hdl64e_elevations()
    assert hdl64.shape == (64,) and hdl64[0] == 2.0 and hdl64[-1] == pytest.approx(-24.8)
    np.testing.assert_allclose(np.diff(hdl64), -26.8 / 63)  # 0.42540 deg, equal steps
    # MAVS's two-block table: upper 32 beams +2.0 .. -11.1873, lower 32 beams -11.6127 .. -24.8
    assert hdl64[31] == pytest.approx(-11.1873, abs=1e-4) and hdl64[32] == pytest.approx(-11.6127, abs=1e-4)
    np.testing.assert_array_equal(make_pattern("vlp16").elevation_deg, [15, 13, 11, 9, 7, 5, 3, 1, -1, -3, -5, -7,
                                                                        -9, -11, -13, -15])
    hdl32 = make_pattern("hdl32e").elevation_deg
    assert hdl32.shape == (32,) and hdl32[0] == pytest.approx(10.67) and hdl32[-1] == pytest.approx(-30.67)
    np.testing.assert_allclose(np.diff(hdl32), -4 / 3, atol=1e-3)
    solid = make_pattern("solid_state")
    assert (solid.num_beams, solid.num_steps) == (125, 600) and not solid.spinning
    assert make_pattern("hdl64e").num_rays == 64 * 2048


def test_ray_directions_against_hand_computed_angles():
    pattern = make_pattern("vlp16", azimuth_steps=4)  # azimuths 180, 90, 0, -90 degrees
    np.testing.assert_allclose(pattern.azimuth_deg, [180, 90, 0, -90])
    rays = pattern.directions().reshape(4, 16, 3)  # azimuth-major: ray j * B + i
    c15, s15 = np.cos(np.deg2rad(15)), np.sin(np.deg2rad(15))
    np.testing.assert_allclose(rays[1, 0], [0, c15, s15], atol=1e-12)  # left, top beam (+15)
    np.testing.assert_allclose(rays[2, 15], [c15, 0, -s15], atol=1e-12)  # forward, bottom beam (-15)
    np.testing.assert_allclose(rays[0, 7], [-np.cos(np.deg2rad(1)), 0, np.sin(np.deg2rad(1))], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(pattern.directions(), axis=1), 1.0)
    assert pattern.firing_fraction()[2] == 0.5


@pytest.mark.parametrize("kwargs, needle", [
    (dict(name="solid_state", beams=0), "solid_state"),
    (dict(name="hdl64e", azimuth_steps=0), "azimuth_steps"),
    (dict(name="hdl64e", beams=32), "fixed table"),
    (dict(name="lux"), "unknown beam pattern"),
])
def test_bad_patterns_are_named(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        make_pattern(**kwargs)


# ----------------------------------------------------------------------------- ranges


def test_wall_at_known_distance_without_noise():
    model, data = wall_scene()
    scanner = LidarScanner(model, "sensor", quiet())
    points = scanner.scan(data)
    forward = points[:, 0] > 0
    assert forward.sum() > 1000
    np.testing.assert_allclose(points[forward, 0], 10.0, atol=1e-4)  # every front return lies on x = 10
    # the level ray straight ahead does not exist on vlp16 (odd degrees); the +1 degree beam at azimuth 0:
    grid = scanner.scan(data, organised=True)
    beam = list(scanner.pattern.elevation_deg).index(1.0)
    step = list(scanner.pattern.azimuth_deg).index(0.0)
    np.testing.assert_allclose(np.linalg.norm(grid[beam, step, :3]), 10.0 / np.cos(np.deg2rad(1.0)), rtol=1e-6)
    # intensity rho * cos(incidence) * exp(-0.004 r): rho 0.5, incidence 1 degree
    r = 10.0 / np.cos(np.deg2rad(1.0))
    assert grid[beam, step, 3] == pytest.approx(0.5 * np.cos(np.deg2rad(1.0)) * np.exp(-0.004 * r), rel=1e-5)


def test_range_noise_follows_its_sigma():
    model, data = wall_scene()
    scanner = LidarScanner(model, "sensor", quiet(range_noise_std=0.05), seed=3)
    points = scanner.scan(data)
    front = points[points[:, 0] > 5]
    unit = front[:, :3] / np.linalg.norm(front[:, :3], axis=1, keepdims=True)
    error = np.linalg.norm(front[:, :3], axis=1) - 10.0 / unit[:, 0]  # measured - true range
    assert len(error) > 1000
    assert abs(error.mean()) < 4 * 0.05 / np.sqrt(len(error))
    assert error.std() == pytest.approx(0.05, rel=0.08)


def test_beam_divergence_widens_noise_on_tilted_surfaces():
    model, data = wall_scene()
    scanner = LidarScanner(model, "sensor", quiet(range_noise_std=0.0, divergence_mrad=10.0), seed=0)
    grid = scanner.scan(data, organised=True)
    unit = grid[..., :3] / np.linalg.norm(grid[..., :3], axis=-1, keepdims=True)
    error = np.linalg.norm(grid[..., :3], axis=-1) - 10.0 / unit[..., 0]
    azimuth = scanner.pattern.azimuth_deg
    head_on, oblique = np.abs(azimuth) < 10, (np.abs(azimuth) > 50) & (np.abs(azimuth) < 70)
    assert np.nanstd(error[:, oblique]) > 5 * np.nanstd(error[:, head_on])


# ----------------------------------------------------------------------------- what it sees


def test_own_body_is_excluded_unless_asked():
    model, data = wall_scene()
    seen = LidarScanner(model, "sensor", quiet(exclude_body=False, min_range=0.0)).scan(data)
    assert np.abs(seen[:, :3]).max() <= 0.5 * np.sqrt(3) + 1e-6  # every ray stops at the cage
    excluded, geoms = LidarScanner(model, "sensor", quiet()).scan(data, return_geom_ids=True)
    assert set(geoms.tolist()) == {model.geom("wall").id}


def test_geom_groups_choose_what_it_sees():
    model, data = wall_scene()
    config = quiet(exclude_body=False, min_range=0.0, geomgroup=(1, 1, 0, 1, 1, 1))  # wall (group 2) hidden
    _, geoms = LidarScanner(model, "sensor", config).scan(data, return_geom_ids=True)
    assert set(geoms.tolist()) == {model.geom("cage").id}
    config = quiet(exclude_body=False, geomgroup=(0, 0, 1, 0, 0, 0))  # only the wall
    _, geoms = LidarScanner(model, "sensor", config).scan(data, return_geom_ids=True)
    assert set(geoms.tolist()) == {model.geom("wall").id}


def test_missing_body_is_named():
    model, _ = wall_scene()
    with pytest.raises(ValueError, match="'lidar_top'.*no such body"):
        LidarScanner(model, "lidar_top")


# ----------------------------------------------------------------------------- dropout


def test_uniform_dropout_follows_its_seeded_rate():
    model, data = wall_scene()
    full = len(LidarScanner(model, "sensor", quiet()).scan(data))
    kept = len(LidarScanner(model, "sensor", quiet(dropout=0.3), seed=1).scan(data))
    sigma = np.sqrt(full * 0.3 * 0.7)
    assert abs((full - kept) - 0.3 * full) < 4 * sigma
    a = LidarScanner(model, "sensor", quiet(dropout=0.3, range_noise_std=0.02), seed=7).scan(data)
    b = LidarScanner(model, "sensor", quiet(dropout=0.3, range_noise_std=0.02), seed=7).scan(data)
    c = LidarScanner(model, "sensor", quiet(dropout=0.3, range_noise_std=0.02), seed=8).scan(data)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_weak_returns_drop_at_their_rate():
    model, data = wall_scene()
    scanner = LidarScanner(model, "sensor", quiet(weak_dropout=0.6), seed=2)
    scanner.reflectivity[:] = 0.0  # every return has intensity 0: lost with probability weak_dropout
    full = len(LidarScanner(model, "sensor", quiet()).scan(data))
    kept = len(scanner.scan(data))
    assert abs(kept / full - 0.4) < 4 * np.sqrt(0.24 / full)


def test_edge_returns_behind_a_near_surface_can_drop():
    xml = WALL_XML.format(cage_group=0).replace(
        "</worldbody>", '<geom name="post" type="box" pos="5 0 0" size="0.2 0.2 50"/></worldbody>')
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    config = quiet(divergence_mrad=1000.0)  # footprint far wider than a step: edge returns lost with p = 1/2
    lost = []
    for seed in range(20):
        grid = LidarScanner(model, "sensor", config, seed=seed).scan(data, organised=True)
        lost.append(np.isnan(grid[:, :, 0]).sum())
    clean = np.isnan(LidarScanner(model, "sensor", quiet()).scan(data, organised=True)[:, :, 0]).sum()
    assert np.mean(lost) > clean  # wall returns beside the post's edges go missing


# ----------------------------------------------------------------------------- forms


def test_organised_grid_holds_the_same_points():
    model, data = wall_scene()
    scanner = LidarScanner(model, "sensor", quiet(range_noise_std=0.02), seed=4)
    points = scanner.scan(data)
    scanner.rng = np.random.default_rng(4)
    grid, geoms = scanner.scan(data, organised=True, return_geom_ids=True)
    assert grid.shape == (16, 360, 4) and grid.dtype == np.float32 and geoms.shape == (16, 360)
    flat = grid.transpose(1, 0, 2).reshape(-1, 4)  # back to azimuth-major firing order
    np.testing.assert_array_equal(flat[np.isfinite(flat[:, 0])], points)
    assert ((geoms >= 0) == np.isfinite(grid[..., 0])).all()


def test_ego_motion_shifts_returns_by_the_distance_driven():
    model, data = wall_scene()
    speed, steps = 10.0, 360
    config = quiet(motion_sectors=steps)
    scanner = LidarScanner(model, "sensor", config)
    grid = scanner.scan(data, organised=True, ego_velocity=(np.array([speed, 0, 0]), np.zeros(3)))
    for step in (120, 180, 240):  # azimuths +60, 0, -60 degrees
        age = (1 - (step + 0.5) / steps) * config.sweep_period  # seconds before the sweep's end
        x = grid[:, step, 0][np.isfinite(grid[:, step, 0])]
        np.testing.assert_allclose(x, 10.0 + speed * age, atol=1e-4)  # the wall was that much farther


def test_turning_sensor_rebuilds_its_ray_table():
    """The cached world-frame rays follow the sensor when it turns (and after a moving sweep)."""
    model, data = wall_scene()
    scanner = LidarScanner(model, "sensor", quiet())
    ahead = scanner.scan(data, organised=True)
    data.mocap_quat[0] = [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]  # turn left by 90 degrees
    mujoco.mj_kinematics(model, data)
    turned = scanner.scan(data, organised=True)
    # the wall (x = 10 in the world) now lies to the sensor's right: y = -10 in its own frame
    right = turned[..., 1][np.isfinite(turned[..., 1]) & (turned[..., 1] < 0)]
    np.testing.assert_allclose(right, -10.0, atol=1e-4)
    assert not np.allclose(np.nan_to_num(ahead), np.nan_to_num(turned))
    scanner.scan(data, ego_velocity=(np.zeros(3), np.array([0, 0, 1.0])))
    data.mocap_quat[0] = [1, 0, 0, 0]
    mujoco.mj_kinematics(model, data)
    np.testing.assert_array_equal(np.isnan(scanner.scan(data, organised=True)), np.isnan(ahead))


#: Seeded scans of the street scene (frame 0, seed 0, HDL-64E x 256 steps, dropout 0.05) made by
#: the scanner before its sensor model was trimmed (no output copy, noise computed only for kept
#: returns, parameters packed once), which the trimmed one reproduced bit for bit (numba 0.68.1,
#: MuJoCo 3.9.0, numpy 2.3.5, x86-64). Pinned here as exact shapes, NaN counts and geom-id
#: hashes, and float sums to a tolerance that a last-bit change on another CPU passes but a
#: change of the sensor model (noise drawn for other points, another dropout order: ~2 m per
#: column sum) does not: {name: (shape, NaN count, per-column sums, sum of |values|)}.
PRE_TRIM_SCANS = {
    "points": ((15071, 4), 0, (356.9925024434924, 583.698953025043, -20915.93022549525, 1966.3115090988576),
               234525.04344503582),
    "grid": ((64, 256, 4), 5408, (1808.0458025336266, 309.4698551148176, -20877.584595071152, 1964.6105819828808),
             233257.75564034842),
    "moving": ((15143, 4), 0, (2915.5726554989815, 129.3494982123375, -20970.417454382405, 1972.249802869279),
               235927.8088410073),
}
PRE_TRIM_GEOM_IDS = {"geom_ids": ((15071,), "b70294a9539c9b53"), "grid_geom_ids": ((64, 256), "07092e6c46b691eb")}


def test_seeded_scans_equal_the_pre_trim_scanner():
    import hashlib

    from robokit.simlidar.scenes import MovingScene, SceneConfig

    scene = MovingScene(SceneConfig(frames=3, lidar=LidarConfig(pattern="hdl64e", azimuth_steps=256, dropout=0.05)),
                        seed=0)
    scene.place(0)
    scanner = scene.scanner
    first = scanner.scan(scene.data, rng=np.random.default_rng(1))
    kept = first.copy()
    scanner.scan(scene.data, rng=np.random.default_rng(2))  # a later scan must not touch the first's array
    points, ids = scanner.scan(scene.data, rng=np.random.default_rng(1), return_geom_ids=True)
    grid, grid_ids = scanner.scan(scene.data, rng=np.random.default_rng(3), organised=True, return_geom_ids=True)
    moving = scanner.scan(scene.data, rng=np.random.default_rng(4),
                          ego_velocity=(np.array([8.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.3])))
    for name, array in {"geom_ids": ids, "grid_geom_ids": grid_ids}.items():
        shape, digest = PRE_TRIM_GEOM_IDS[name]
        array = np.ascontiguousarray(array)
        assert array.shape == shape and hashlib.sha256(array.tobytes()).hexdigest()[:16] == digest, name
    for name, array in {"points": points, "grid": grid, "moving": moving}.items():
        shape, nans, column_sums, abs_sum = PRE_TRIM_SCANS[name]
        values = np.nan_to_num(array.astype(np.float64))
        assert array.shape == shape and int(np.isnan(array).sum()) == nans, name
        np.testing.assert_allclose(values.sum(axis=tuple(range(array.ndim - 1))), column_sums, rtol=0, atol=0.05,
                                   err_msg=name)
        assert np.abs(values).sum() == pytest.approx(abs_sum, rel=1e-6), name
    assert np.array_equal(first, kept) and np.array_equal(first, points) and first.dtype == np.float32
