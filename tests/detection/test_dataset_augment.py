"""The KITTI object dataset on the real scans, its error surface, and the augmentations."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from robokit.detection.augment import (
    GroundTruthSampler,
    global_rotation,
    global_scaling,
    random_flip,
)
from robokit.detection.dataset import KittiObjectDataset


@pytest.fixture(scope="module")
def object_root(shared_data):
    return shared_data / "kitti" / "object"


def test_real_frames_boxes_and_classes(object_root):
    dataset = KittiObjectDataset(object_root)
    assert dataset.frame_ids == ["000000", "000001", "000002"]  # no ImageSets: every frame
    frame0, frame1, frame2 = dataset[0], dataset[1], dataset[2]
    # 000000: one pedestrian 8.4 m ahead (camera z) -> about 8.7 m along LiDAR x, 1.9 m to the right
    assert frame0.gt_classes.tolist() == [1]
    np.testing.assert_allclose(
        frame0.gt_boxes[0, [0, 1, 3, 4, 5]], [8.73, -1.86, 1.2, 0.48, 1.89], atol=0.02
    )
    # 000001: the truck is not a trained class; car and cyclist are; DontCare kept for evaluation only
    assert frame1.gt_classes.tolist() == [0, 2]
    assert list(frame1.annotations.names).count("DontCare") == 4
    assert frame2.gt_classes.tolist() == [0]
    for frame in (frame0, frame1, frame2):
        assert frame.points.dtype == np.float32 and frame.points.shape[1] == 4
        assert (frame.points[:, 0] > 0).all()  # FOV filter: only points in front of the camera
        assert 10_000 < len(frame.points) < 40_000  # the full scans have 115k-127k points
    # the camera-frame box goes LiDAR-frame and back
    from robokit.pointcloud.boxes import lidar_to_camera_boxes

    back = lidar_to_camera_boxes(frame2.gt_boxes, frame2.calib.R0_rect, frame2.calib.Tr_velo_to_cam)
    np.testing.assert_allclose(back, frame2.annotations.boxes_cam[[1]], atol=1e-4)


def test_full_scan_without_fov_filter(object_root):
    assert len(KittiObjectDataset(object_root, fov_only=False)[0].points) > 100_000


def _copy_layout(object_root, tmp_path):
    root = tmp_path / "kitti"
    shutil.copytree(object_root / "training", root / "training")
    for path in (root / "training").rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return root


def test_imagesets_split_is_respected(object_root, tmp_path):
    root = _copy_layout(object_root, tmp_path)
    (root / "ImageSets").mkdir()
    (root / "ImageSets" / "val.txt").write_text("000002\n2\n\n")
    assert KittiObjectDataset(root, split="val").frame_ids == ["000002", "000002"]
    (root / "ImageSets" / "bad.txt").write_text("000001\nframe7\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        KittiObjectDataset(root, split="bad")


def test_malformed_label_line_names_file_and_line(object_root, tmp_path):
    root = _copy_layout(object_root, tmp_path)
    label = root / "training" / "label_2" / "000001.txt"
    lines = label.read_text().splitlines()
    lines[2] = "Cyclist 0.00 3 -1.65 676.60 163.95 688.98"  # truncated line
    label.write_text("\n".join(lines) + "\n")
    dataset = KittiObjectDataset(root)
    dataset[0]  # other frames still load
    with pytest.raises(ValueError, match=r"000001\.txt.*(line 3|:3)"):
        dataset[1]
    lines[2] = (
        "Cyclist 0.00 3 -1.65 676.60 163.95 688.98 193.93 1.86 0.60 2.02 4.59 nan 45.84 -1.55"
    )
    label.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"000001\.txt"):
        dataset[1]


def test_truncated_scan_names_the_file(object_root, tmp_path):
    root = _copy_layout(object_root, tmp_path)
    scan = root / "training" / "velodyne" / "000000.bin"
    scan.write_bytes(scan.read_bytes()[:-6])
    with pytest.raises(ValueError, match=r"000000\.bin"):
        KittiObjectDataset(root)[0]


def test_missing_layout_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no KITTI object layout"):
        KittiObjectDataset(tmp_path)


def _scene(rng):
    points = rng.uniform([0, -10, -2, 0], [20, 10, 1, 1], size=(2000, 4)).astype(np.float32)
    boxes = np.array(
        [[5.0, 2.0, -1.0, 4.0, 1.8, 1.5, 0.3], [12.0, -4.0, -0.8, 0.8, 0.6, 1.7, -1.0]],
        dtype=np.float32,
    )
    return points, boxes


def test_flip_rotation_scaling_keep_points_in_their_boxes():
    from robokit.pointcloud.boxes import points_in_boxes

    rng = np.random.default_rng(0)
    points, boxes = _scene(rng)
    inside = points_in_boxes(points[:, :3], boxes)
    for transform in (
        lambda p, b: random_flip(p, b, rng, probability=1.0),
        lambda p, b: global_rotation(p, b, rng),
        lambda p, b: global_scaling(p, b, rng, (0.9, 1.1)),
    ):
        new_points, new_boxes = transform(points, boxes)
        assert not np.allclose(new_points[:, :3], points[:, :3])
        # a point strictly inside stays inside (boundary points may move by rounding)
        strict = points_in_boxes(
            new_points[:, :3],
            np.hstack([new_boxes[:, :3], new_boxes[:, 3:6] * 1.001, new_boxes[:, 6:]]),
        )
        assert (strict[inside]).all()
        np.testing.assert_allclose(new_points[:, 3], points[:, 3])  # reflectance untouched
    twice, boxes_twice = random_flip(*random_flip(points, boxes, rng, 1.0), rng, 1.0)
    np.testing.assert_array_equal(twice, points)
    np.testing.assert_array_equal(boxes_twice, boxes)


def test_ground_truth_sampler_pastes_without_overlap():
    from types import SimpleNamespace

    from robokit.pointcloud.boxes import bev_iou, points_in_boxes

    rng = np.random.default_rng(0)
    points, boxes = _scene(rng)
    source = SimpleNamespace(points=points, gt_boxes=boxes, gt_classes=np.array([0, 1]))
    sampler = GroundTruthSampler([source], samples_per_class=(1, 1), min_points=1)
    assert len(sampler) == 2
    shifted = boxes.copy()
    shifted[:, 1] += 30.0  # the target scene's own objects sit elsewhere: both pastes fit
    scene_points = points + np.array([0, 30.0, 0, 0], dtype=np.float32)
    out_points, out_boxes, out_classes = sampler.sample(
        scene_points, shifted, np.array([0, 1]), rng
    )
    assert len(out_boxes) == 4 and out_classes.tolist() == [0, 1, 0, 1]
    pasted_inside = points_in_boxes(out_points[:, :3], out_boxes[2:]).sum(axis=0)
    assert (pasted_inside == points_in_boxes(points[:, :3], boxes).sum(axis=0)).all()
    # pasting into the source scene itself: every candidate overlaps an existing box and is skipped
    same_points, same_boxes, _ = sampler.sample(points, boxes, np.array([0, 1]), rng)
    assert len(same_boxes) == 2 and same_points is points
    assert bev_iou(out_boxes, out_boxes)[np.triu_indices(4, 1)].max() == 0.0
