"""Voxelizer: hand-placed example, range handling, batching, and agreement with brute force."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from robokit.pointcloud.voxelizer import grid_shape, voxelize, voxelize_batch

UNIT = [1.0, 1.0, 1.0]
BOX = [0.0, 0.0, 0.0, 2.0, 2.0, 2.0]


def test_hand_placed_points_give_expected_voxels():
    points = np.array(
        [
            [0.1, 0.1, 0.1, 1.0],  # voxel x0 y0 z0
            [0.3, 0.5, 0.7, 3.0],  # same voxel
            [1.5, 0.5, 0.5, 2.0],  # x1 y0 z0
            [0.5, 1.5, 1.2, 4.0],  # x0 y1 z1
            [5.0, 0.5, 0.5, 9.0],  # out of range (x)
            [-0.1, 0.5, 0.5, 9.0],  # out of range (x < min)
        ],
        dtype=np.float32,
    )
    features, coords, counts = voxelize(points, UNIT, BOX)
    assert coords.dtype == np.int32 and counts.dtype == np.int32 and features.dtype == np.float32
    np.testing.assert_array_equal(coords, [[0, 0, 0], [0, 0, 1], [1, 1, 0]])  # [z, y, x]
    np.testing.assert_array_equal(counts, [2, 1, 1])
    np.testing.assert_allclose(features[0], [0.2, 0.3, 0.4, 2.0], rtol=1e-6)
    np.testing.assert_allclose(features[1], [1.5, 0.5, 0.5, 2.0])
    np.testing.assert_allclose(features[2], [0.5, 1.5, 1.2, 4.0])


def test_range_is_half_open_and_grid_shape_is_zyx():
    points = np.array([[0.0, 0.0, 0.0], [2.0, 0.5, 0.5], [1.999, 1.999, 1.999]], dtype=np.float32)
    _, coords, counts = voxelize(points, UNIT, BOX)
    np.testing.assert_array_equal(coords, [[0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(counts, [1, 1])
    np.testing.assert_array_equal(
        grid_shape([0.05, 0.05, 0.1], [0, -40, -3, 70.4, 40, 1]), [40, 1600, 1408]
    )


def test_batch_prepends_batch_index():
    a = np.array([[0.5, 0.5, 0.5]], dtype=np.float32)
    b = np.array([[1.5, 1.5, 0.5], [1.6, 1.6, 0.6]], dtype=np.float32)
    features, coords, counts = voxelize_batch([a, b], UNIT, BOX)
    np.testing.assert_array_equal(coords, [[0, 0, 0, 0], [1, 0, 1, 1]])
    np.testing.assert_array_equal(counts, [1, 2])
    np.testing.assert_allclose(features[1], [1.55, 1.55, 0.55], rtol=1e-6)


def test_max_voxels_keeps_first_touched():
    points = np.array(
        [[0.5, 0.5, 0.5], [1.5, 0.5, 0.5], [0.6, 0.6, 0.6], [1.5, 1.5, 1.5]], np.float32
    )
    features, coords, counts = voxelize(points, UNIT, BOX, max_voxels=2)
    np.testing.assert_array_equal(coords, [[0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(counts, [2, 1])


def brute_force_check(points, size, box):
    """Compare voxelize with numpy unique/bincount (same float32 index arithmetic)."""
    features, coords, counts = voxelize(points, size, box)
    lower, step = np.array(box[:3], np.float32), np.array(size, np.float32)
    idx = np.floor((points[:, :3] - lower) / step).astype(int)
    inside = np.all((idx >= 0) & (idx < grid_shape(size, box)[::-1]), axis=1)
    keys, inverse = np.unique(idx[inside][:, ::-1], axis=0, return_inverse=True)
    expected_counts = np.bincount(inverse.ravel())
    expected_mean = (
        np.stack(
            [
                np.bincount(inverse.ravel(), weights=points[inside, c])
                for c in range(points.shape[1])
            ],
            axis=1,
        )
        / expected_counts[:, None]
    )
    order = np.lexsort(coords.T[::-1])
    np.testing.assert_array_equal(coords[order], keys)
    np.testing.assert_array_equal(counts[order], expected_counts)
    np.testing.assert_allclose(features[order], expected_mean, rtol=1e-5, atol=1e-5)


def test_matches_brute_force_on_random_cloud():
    rng = np.random.default_rng(3)
    points = rng.uniform(-1.2, 1.2, size=(5000, 4)).astype(np.float32)
    brute_force_check(points, [0.1, 0.2, 0.25], [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    count=st.integers(1, 400),
    size=st.tuples(*[st.floats(0.05, 1.0)] * 3),
    lower=st.tuples(*[st.floats(-3.0, 0.0)] * 3),
    span=st.tuples(*[st.floats(0.5, 4.0)] * 3),
)
def test_matches_brute_force_for_any_grid(seed, count, size, lower, span):
    # a span shorter than half a voxel rounds to zero cells: an empty grid, which voxelize rejects
    # (test_bad_grid_arguments_raise); here every axis has at least one cell, counted by the
    # voxelizer's own grid_shape (its float32 arithmetic: a span of 0.5000000000000001 voxel is
    # 0.5 there and rounds to 0, where Python's float64 round gives 1; hypothesis found that case)
    point_range = [*lower, *(lo + sp for lo, sp in zip(lower, span, strict=True))]
    assume(bool(np.all(grid_shape(list(size), point_range) >= 1)))
    points = np.random.default_rng(seed).uniform(-4, 4, size=(count, 3)).astype(np.float32)
    brute_force_check(points, list(size), point_range)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (np.array([[0.1, 0.1, np.nan]], np.float32), "row 0"),
        (np.zeros((3, 2), np.float32), "shape"),
        (np.zeros((3, 3), np.int32), "floating"),
    ],
)
def test_bad_points_raise_clear_errors(points, message):
    with pytest.raises(ValueError, match=message):
        voxelize(points, UNIT, BOX)


def test_bad_grid_arguments_raise():
    points = np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match="voxel_size"):
        voxelize(points, [1.0, 0.0, 1.0], BOX)
    with pytest.raises(ValueError, match="point_range"):
        voxelize(points, UNIT, [0, 0, 0, -1, 1, 1])
    with pytest.raises(ValueError, match="too large"):
        voxelize(points, [1e-9, 1e-9, 1e-9], [0, 0, 0, 1e3, 1e3, 1e3])
    with pytest.raises(ValueError, match="cloud 1"):
        voxelize_batch([points, np.full((1, 3), np.inf, np.float32)], UNIT, BOX)


def test_agrees_with_spconv_point_to_voxel_on_kitti(shared_data):
    spconv_utils = pytest.importorskip("spconv.pytorch.utils")
    import torch

    from robokit.pointcloud.io import read_kitti_velodyne

    scan = read_kitti_velodyne(shared_data / "kitti/object/training/velodyne/000000.bin")
    size, box = [0.2, 0.2, 0.4], [0.0, -40.0, -3.0, 70.4, 40.0, 1.0]
    _, coords, counts = voxelize(scan, size, box)
    generator = spconv_utils.PointToVoxel(
        vsize_xyz=size,
        coors_range_xyz=box,
        num_point_features=4,
        max_num_voxels=200000,
        max_num_points_per_voxel=1000,
    )
    _, ref_coords, ref_counts = generator(torch.from_numpy(scan))
    ours = {tuple(c): n for c, n in zip(coords.tolist(), counts.tolist(), strict=True)}
    theirs = {
        tuple(c): n
        for c, n in zip(ref_coords.numpy().tolist(), ref_counts.numpy().tolist(), strict=True)
    }
    assert ours == theirs
