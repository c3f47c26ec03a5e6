"""Corruptions against their severity tables, seeding, error handling, and the CE/mCE metrics."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robokit.pointcloud.corruptions import (
    SUITES,
    corrupt,
    hdl64,
    kitti_c,
    modelnet40_c,
    modelnet_c,
    severities,
)
from robokit.pointcloud.corruptions.metrics import (
    DGCNN_MODELNET_C_OA,
    corruption_errors,
    reference_from_accuracies,
)
from robokit.pointcloud.procedural import make_procedural_dataset

N = 1024


@pytest.fixture(scope="module")
def cloud():
    return make_procedural_dataset(1, num_points=N, seed=5, classes=("chair",))[0][0]


@pytest.fixture(scope="module")
def scan(shared_data):
    from robokit.pointcloud.io import read_kitti_velodyne

    return read_kitti_velodyne(shared_data / "kitti/object/training/velodyne/000000.bin")


def rng(seed=0):
    return np.random.default_rng(seed)


def is_subset(part, whole):
    return set(map(tuple, part.tolist())) <= set(map(tuple, whole.tolist()))


def undo_similarity(clean, out):
    """Scale s and shift mu with clean ~ s * out + mu, robust to a minority of moved points."""
    pairs = rng(9).integers(0, len(clean), size=(2000, 2))
    ratio = np.linalg.norm(clean[pairs[:, 0]] - clean[pairs[:, 1]], axis=1) / np.maximum(
        np.linalg.norm(out[pairs[:, 0]] - out[pairs[:, 1]], axis=1), 1e-9
    )
    s = np.median(ratio)
    return s * out + np.median(clean - s * out, axis=0)


# --------------------------------------------------------------------------- suites and API
def test_suites_and_levels():
    assert SUITES["modelnet-c"] == [
        "scale",
        "jitter",
        "rotate",
        "dropout_global",
        "dropout_local",
        "add_global",
        "add_local",
    ]
    assert len(SUITES["modelnet40-c"]) == 13 and len(SUITES["kitti-c"]) == 7
    assert severities("modelnet-c") == [0, 1, 2, 3, 4]
    assert severities("modelnet40-c") == severities("kitti-c") == [1, 2, 3, 4, 5]


def test_every_corruption_is_seeded_and_float32(cloud, scan):
    for suite, names in SUITES.items():
        data = scan[:20000] if suite == "kitti-c" else cloud
        level = severities(suite)[2]
        for name in names:
            first = corrupt(name, data, level, rng(7))
            assert first.dtype == np.float32 and first.shape[1] == data.shape[1], name
            np.testing.assert_array_equal(first, corrupt(name, data, level, rng(7)), err_msg=name)
            if name != "fov_filter":  # the only deterministic one
                other = corrupt(name, data, level, rng(8))
                assert other.shape != first.shape or not np.array_equal(other, first), name


def test_extra_channels_survive_object_corruptions(cloud):
    with_channel = np.hstack([cloud, np.arange(N, dtype=np.float32)[:, None]])
    original_values = set(with_channel[:, 3].tolist())
    for name in SUITES["modelnet-c"] + SUITES["modelnet40-c"]:
        out = corrupt(
            name,
            with_channel,
            severities("modelnet40-c" if name in SUITES["modelnet40-c"] else "modelnet-c")[-1],
            rng(),
        )
        assert out.shape[1] == 4 and set(out[:, 3].tolist()) <= original_values, name


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("jitter", None, 5), ValueError, r"severity 5 not in \[0, 1, 2, 3, 4\]"),
        (("gaussian", None, 0), ValueError, r"severity 0 not in \[1, 2, 3, 4, 5\]"),
        (("snow", None, 1), KeyError, "unknown corruption 'snow'"),
    ],
)
def test_bad_arguments(cloud, args, error, message):
    name, _, level = args
    with pytest.raises(error, match=message):
        corrupt(name, cloud, level, rng())


def test_bad_points_and_rng(cloud):
    broken = cloud.copy()
    broken[17, 2] = np.inf
    with pytest.raises(ValueError, match="row 17"):
        corrupt("jitter", broken, 0, rng())
    with pytest.raises(ValueError, match="shape"):
        corrupt("jitter", cloud[:, :2], 0, rng())
    with pytest.raises(TypeError, match="Generator"):
        corrupt("jitter", cloud, 0, np.random.RandomState(0))


# --------------------------------------------------------------------------- ModelNet-C
@pytest.mark.parametrize("level", [0, 2, 4])
def test_modelnet_c_point_counts(cloud, level):
    k = level + 1
    assert len(corrupt("dropout_global", cloud, level, rng())) == int(
        N * (1 - modelnet_c.DROPOUT_GLOBAL_RATE[level])
    )
    assert len(corrupt("dropout_local", cloud, level, rng())) == N - 100 * k
    assert len(corrupt("add_global", cloud, level, rng())) == N + 10 * k
    assert len(corrupt("add_local", cloud, level, rng())) == N + 100 * k
    for name in ("dropout_global", "dropout_local"):
        assert is_subset(corrupt(name, cloud, level, rng()), cloud)


def test_modelnet_c_added_points_stay_in_unit_ball(cloud):
    for name in ("add_global", "add_local"):
        out = corrupt(name, cloud, 4, rng())
        np.testing.assert_array_equal(out[:N], cloud)
        assert np.linalg.norm(out[N:], axis=1).max() <= 1.0 + 1e-6


def test_dropout_local_removes_compact_clusters(cloud):
    out = corrupt("dropout_local", cloud, 4, rng(3))
    kept = set(map(tuple, out.tolist()))
    removed = np.array([p for p in cloud.tolist() if tuple(p) not in kept])
    assert len(removed) == 500
    # removed points hug each other far more tightly than random points do
    from scipy.spatial import cKDTree

    nearest_removed = cKDTree(removed).query(removed, k=2)[0][:, 1].mean()
    random_pick = cloud[rng(1).choice(N, 500, replace=False)]
    nearest_random = cKDTree(random_pick).query(random_pick, k=2)[0][:, 1].mean()
    assert nearest_removed < 0.8 * nearest_random


@pytest.mark.parametrize("level", range(5))
def test_jitter_sigma_matches_table(cloud, level):
    shift = corrupt("jitter", cloud, level, rng(level)) - cloud
    assert shift.std() == pytest.approx(modelnet_c.JITTER_SIGMA[level], rel=0.05)
    assert abs(shift.mean()) < 0.2 * modelnet_c.JITTER_SIGMA[level]


@pytest.mark.parametrize("level", range(5))
def test_rotate_angles_within_theta(cloud, level):
    theta = modelnet_c.ROTATE_THETA_RAD[level]
    for seed in range(5):
        out = corrupt("rotate", cloud, level, rng(seed))
        matrix = np.linalg.lstsq(cloud.astype(np.float64), out.astype(np.float64), rcond=None)[0]
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-5)
        angles = Rotation.from_matrix(matrix).as_euler("ZYX")  # matrix = Rz Ry Rx
        assert np.abs(angles).max() <= theta + 1e-5


@pytest.mark.parametrize("level", range(5))
def test_scale_axis_ratios_within_table(cloud, level):
    s = modelnet_c.SCALE_S[level]
    for seed in range(5):
        out = corrupt("scale", cloud, level, rng(seed))
        np.testing.assert_allclose(np.linalg.norm(out, axis=1).max(), 1.0, atol=1e-5)
        factors = out.std(axis=0) / cloud.std(axis=0)
        assert factors.max() / factors.min() <= s * s + 1e-4


# --------------------------------------------------------------------------- ModelNet40-C
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_modelnet40_c_point_counts(cloud, severity):
    i = severity - 1
    assert (
        len(corrupt("background", cloud, severity, rng()))
        == N + N // modelnet40_c.BACKGROUND_DIVISOR[i]
    )
    assert (
        len(corrupt("upsampling", cloud, severity, rng()))
        == N + N // modelnet40_c.UPSAMPLING_DIVISOR[i]
    )
    assert len(corrupt("cutout", cloud, severity, rng())) == N - 30 * modelnet40_c.CUTOUT_REGIONS[i]
    assert len(corrupt("density", cloud, severity, rng())) == N - 75 * severity
    inc = corrupt("density_inc", cloud, severity, rng())
    assert len(inc) == N // 2 and is_subset(inc, cloud)
    assert is_subset(corrupt("cutout", cloud, severity, rng()), cloud)


@pytest.mark.parametrize("severity", range(1, 6))
def test_gaussian_sigma_matches_table(severity):
    inner = make_procedural_dataset(1, num_points=N, seed=5, classes=("torus",))[0][0] * 0.5
    shift = corrupt("gaussian", inner, severity, rng(severity)) - inner  # far from the clip
    assert shift.std() == pytest.approx(modelnet40_c.GAUSSIAN_SIGMA[severity - 1], rel=0.05)


@pytest.mark.parametrize("severity", [1, 5])
def test_impulse_moves_exact_count_by_a_tenth(cloud, severity):
    out = corrupt("impulse", cloud, severity, rng(2))
    shift = undo_similarity(cloud, out) - cloud
    moved = np.abs(shift).max(axis=1) > 0.05
    assert moved.sum() == N // modelnet40_c.IMPULSE_DIVISOR[severity - 1]
    np.testing.assert_allclose(np.abs(shift[moved]), 0.1, atol=0.01)


@pytest.mark.parametrize("severity", [1, 5])
def test_uniform_noise_is_bounded(cloud, severity):
    c = modelnet40_c.UNIFORM_HALF_WIDTH[severity - 1]
    shift = undo_similarity(cloud, corrupt("uniform", cloud, severity, rng(4))) - cloud
    assert np.abs(shift).max() < 1.1 * c and np.abs(shift).max() > 0.8 * c


@pytest.mark.parametrize("severity", range(1, 6))
def test_rotation_angles_match_table(cloud, severity):
    centre = modelnet40_c.ROTATION_CENTRE_DEG[severity - 1]
    out = corrupt("rotation", cloud, severity, rng(severity)).astype(np.float64)
    clean = cloud.astype(np.float64)
    design = np.hstack([clean, np.ones((N, 1))])
    fit = np.linalg.lstsq(design, out, rcond=None)[0][:3]
    matrix = fit / np.cbrt(np.linalg.det(fit))
    angles = np.degrees(np.abs(Rotation.from_matrix(matrix).as_euler("XYZ")))  # matrix = Rx Ry Rz
    assert np.all(angles >= centre - 2.5 - 1e-3) and np.all(angles <= centre + 2.5 + 1e-3)


@pytest.mark.parametrize("severity", range(1, 6))
def test_shear_matrix_matches_table(cloud, severity):
    centre = modelnet40_c.SHEAR_CENTRE[severity - 1]
    out = corrupt("shear", cloud, severity, rng(severity)).astype(np.float64)
    design = np.hstack([cloud.astype(np.float64), np.ones((N, 1))])
    fit = np.linalg.lstsq(design, out, rcond=None)[0][:3]
    matrix = fit / fit[0, 0]
    free = np.abs(matrix[[0, 1, 1, 2], [2, 0, 2, 0]])
    assert np.all(free >= centre - 0.05 - 1e-4) and np.all(free <= centre + 0.05 + 1e-4)
    np.testing.assert_allclose(matrix[[0, 2], [1, 1]], 0.0, atol=1e-5)


def test_ffd_and_rbf_warps_interpolate_their_controls():
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 5)] * 3, indexing="ij"), axis=-1)
    displacement = rng(0).uniform(-0.3, 0.3, size=(5, 5, 5, 3))
    corners = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, -1.0]])
    expected = corners + displacement[[0, 4, 0], [0, 4, 4], [0, 4, 0]]
    np.testing.assert_allclose(modelnet40_c.ffd_warp(corners, displacement), expected, atol=1e-12)
    inner = rng(1).uniform(-1, 1, size=(50, 3))
    np.testing.assert_allclose(modelnet40_c.ffd_warp(inner, np.zeros((5, 5, 5, 3))), inner)
    source = grid.reshape(-1, 3)
    target = source + rng(2).normal(scale=0.05, size=source.shape)
    for kernel in (modelnet40_c._multiquadric, modelnet40_c._inverse_multiquadric):
        np.testing.assert_allclose(
            modelnet40_c.rbf_warp(source, source, target, kernel), target, atol=1e-8
        )
        np.testing.assert_allclose(
            modelnet40_c.rbf_warp(inner, source, source, kernel), inner, atol=1e-8
        )


# --------------------------------------------------------------------------- KITTI scene corruptions
def test_gaussian_noise_in_metres_on_xyz_only(scan):
    for sigma in (0.02, 0.1):
        out = kitti_c.gaussian_noise(scan, sigma, rng())
        assert (out[:, :3] - scan[:, :3]).std() == pytest.approx(sigma, rel=0.02)
        np.testing.assert_array_equal(out[:, 3], scan[:, 3])
    for severity, sigma in zip(range(1, 6), kitti_c.GAUSSIAN_SIGMA_M, strict=True):
        out = corrupt("gaussian_noise", scan, severity, rng())
        assert (out[:, :3] - scan[:, :3]).std() == pytest.approx(sigma, rel=0.02)


def test_drop_points_any_ratio_up_to_090(scan):
    for ratio in (0.0, 0.25, 0.5, 0.9):
        out = kitti_c.drop_points(scan, ratio, rng())
        assert len(out) == len(scan) - round(ratio * len(scan))
    with pytest.raises(ValueError, match="0.9"):
        kitti_c.drop_points(scan, 0.95, rng())
    sizes = [len(corrupt("drop_points", scan, s, rng())) for s in range(1, 6)]
    assert sizes == [len(scan) - round(r * len(scan)) for r in kitti_c.DROP_RATIO]


def test_ring_estimate_agrees_with_scan_order(shared_data):
    """Fit the ring model on two real scans, check it on the third (exact rings from file order)."""
    from robokit.pointcloud.io import read_kitti_velodyne

    folder = shared_data / "kitti/object/training/velodyne"
    scans = [read_kitti_velodyne(folder / f"00000{i}.bin") for i in range(3)]
    for held_out in range(3):
        exact = hdl64.rings_from_scan_order(scans[held_out])
        assert exact.max() == 63  # 64 lasers
        elevations, offsets = hdl64.fit_ring_model(
            [s for i, s in enumerate(scans) if i != held_out]
        )
        estimated = hdl64.estimate_rings(scans[held_out], elevations, offsets)
        assert np.mean(estimated == exact) > 0.99 and np.abs(estimated - exact).max() <= 1
    # the shipped constants are that fit on all three scans
    elevations, offsets = hdl64.fit_ring_model(scans)
    np.testing.assert_allclose(elevations, hdl64.HDL64_ELEVATIONS_DEG, atol=2e-3)
    np.testing.assert_allclose(offsets, hdl64.HDL64_BLOCK_OFFSETS_DEG_M, atol=1e-2)


def test_beam_missing_drops_whole_rings(scan):
    rings = hdl64.estimate_rings(scan)
    for fraction in (0.1, 0.5):
        out = kitti_c.drop_beams(scan, fraction, rng(1))
        gone = set(np.unique(rings)) - set(np.unique(hdl64.estimate_rings(out)))
        assert len(out) == np.isin(rings, sorted(set(range(64)) - gone)).sum()
        assert (
            len(gone) <= round(fraction * 64) and len(gone) >= round(fraction * 64) - 1
        )  # a ring may be empty


def test_crosstalk_moves_the_listed_fraction_by_metres(scan):
    out = kitti_c.crosstalk(scan, 0.02, rng())
    moved = np.any(out[:, :3] != scan[:, :3], axis=1)
    assert moved.sum() == int(0.02 * len(scan))
    assert (out[moved, :3] - scan[moved, :3]).std() == pytest.approx(3.0, rel=0.05)


def test_motion_blur_shifts_along_x_by_speed_times_time(scan):
    out = kitti_c.motion_blur(scan, 20.0, rng())
    shift = out[:, :3] - scan[:, :3]
    np.testing.assert_array_equal(shift[:, 1:], 0.0)
    assert shift[:, 0].min() >= -20.0 * 0.1 - 1e-4 and shift[:, 0].max() <= 0.0
    azimuth = np.arctan2(scan[:, 1], scan[:, 0])
    expected = -20.0 * 0.1 * (1.0 - np.mod(azimuth, 2 * np.pi) / (2 * np.pi))
    np.testing.assert_allclose(shift[:, 0], expected, atol=1e-4)
    # the sweep starts facing forward: points just left of +x were seen first (shifted ~2 m),
    # points just right of +x last (barely shifted), as in the scan's storage order
    ahead = np.abs(azimuth) < 0.05
    assert (
        shift[ahead & (azimuth > 0), 0].mean() < -1.9
        and shift[ahead & (azimuth < 0), 0].mean() > -0.1
    )


def test_fov_filter_keeps_exactly_the_cone(scan):
    azimuth = np.degrees(np.arctan2(scan[:, 1], scan[:, 0]))
    for severity, half in zip(range(1, 6), kitti_c.FOV_HALF_DEG, strict=True):
        out = corrupt("fov_filter", scan, severity, rng())
        assert len(out) == (np.abs(azimuth) <= half).sum()
        assert np.abs(np.degrees(np.arctan2(out[:, 1], out[:, 0]))).max() <= half


def test_local_cutout_counts(scan):
    for severity, regions in zip((1, 5), (2, 10), strict=True):
        out = corrupt("local_cutout", scan, severity, rng())
        assert len(out) == len(scan) - regions * int(0.02 * len(scan))


# --------------------------------------------------------------------------- metrics
def test_reference_model_scores_one():
    accuracies = {k: v for k, v in DGCNN_MODELNET_C_OA.items() if k != "clean"}
    result = corruption_errors(DGCNN_MODELNET_C_OA["clean"], accuracies)
    assert result["mCE"] == pytest.approx(1.0) and result["RmCE"] == pytest.approx(1.0)


def test_published_pointnet_mce():
    """PointNet's published ModelNet-C accuracies give its published mCE of 1.422."""
    pointnet = {
        "scale": 0.881,
        "jitter": 0.797,
        "rotate": 0.591,
        "dropout_global": 0.876,
        "dropout_local": 0.778,
        "add_global": 0.121,
        "add_local": 0.562,
    }
    assert corruption_errors(0.907, pointnet)["mCE"] == pytest.approx(1.422, abs=1e-3)


def test_per_level_lists_and_custom_reference():
    reference = reference_from_accuracies(0.9, {"jitter": [0.8, 0.7, 0.6]})
    assert reference["jitter"] == pytest.approx(0.7)
    result = corruption_errors(0.95, {"jitter": [0.9, 0.8, 0.7]}, reference)
    row = result["per_corruption"]["jitter"]
    assert row["OA"] == pytest.approx(0.8)
    assert row["CE"] == pytest.approx(0.2 / 0.3)
    assert row["RCE"] == pytest.approx(0.15 / 0.2)
    with pytest.raises(KeyError, match="scale"):
        corruption_errors(0.9, {"scale": 0.5}, reference)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corruption_errors(0.9, {"jitter": 1.5}, reference)


def test_tables_are_the_published_parameters():
    """The tables the functions read are the benchmark's own (guards against silent edits)."""
    assert modelnet_c.SCALE_S == (1.6, 1.7, 1.8, 1.9, 2.0)
    assert modelnet_c.JITTER_SIGMA == (0.01, 0.02, 0.03, 0.04, 0.05)
    np.testing.assert_allclose(modelnet_c.ROTATE_THETA_RAD, np.pi / 30 * np.arange(1, 6))
    assert modelnet_c.DROPOUT_GLOBAL_RATE == (0.25, 0.375, 0.5, 0.625, 0.75)
    assert (
        modelnet_c.DROPOUT_LOCAL_POINTS == modelnet_c.ADD_LOCAL_POINTS == (100, 200, 300, 400, 500)
    )
    assert modelnet_c.ADD_GLOBAL_POINTS == (10, 20, 30, 40, 50)
    assert modelnet_c.ADD_LOCAL_SIGMA_RANGE == (0.075, 0.125) and modelnet_c.MAX_CLUSTERS == 7
    assert modelnet40_c.GAUSSIAN_SIGMA == (0.01, 0.015, 0.02, 0.025, 0.03)
    assert modelnet40_c.BACKGROUND_DIVISOR == (45, 40, 35, 30, 20)
    assert modelnet40_c.IMPULSE_DIVISOR == (30, 25, 20, 15, 10)
    assert modelnet40_c.UPSAMPLING_DIVISOR == (5, 4, 3, 2, 1)
    assert modelnet40_c.CUTOUT_REGIONS == (2, 3, 5, 7, 10)
    assert modelnet40_c.ROTATION_CENTRE_DEG == (2.5, 5.0, 7.5, 10.0, 15.0)
    assert modelnet40_c.RBF_DISTANCE == (0.025, 0.05, 0.075, 0.1, 0.125)
    assert kitti_c.GAUSSIAN_SIGMA_M == (0.02, 0.04, 0.06, 0.08, 0.10)
    assert kitti_c.FOV_HALF_DEG == (105.0, 90.0, 75.0, 60.0, 45.0)
    assert max(kitti_c.DROP_RATIO) == kitti_c.MAX_DROP_RATIO == 0.9


def test_inputs_are_never_modified(cloud, scan):
    for suite, names in SUITES.items():
        data = scan[:5000] if suite == "kitti-c" else cloud
        before = data.copy()
        for name in names:
            corrupt(name, data, severities(suite)[-1], rng())
            np.testing.assert_array_equal(data, before, err_msg=name)


def test_tiny_clouds_do_not_crash(cloud, scan):
    """Corruptions sized for 1,024 points still give finite float32 output on 40 points."""
    for suite, names in SUITES.items():
        data = scan[::3000][:40] if suite == "kitti-c" else cloud[:40]
        for name in names:
            for level in severities(suite):
                out = corrupt(name, data, level, rng())
                assert out.dtype == np.float32 and np.isfinite(out).all(), (name, level)
                assert out.shape[1] == data.shape[1]
