"""KITTI object crops from the real scans: which objects, how many points, normalisation, layout."""

import numpy as np
import pytest

from robokit.pointcloud.io import (
    load_modelnet_h5,
    read_kitti_calib,
    read_kitti_labels,
    read_kitti_velodyne,
    read_shape_names,
)
from robokit.pointcloud.kitti_crops import KITTI_CROP_CLASSES, make_kitti_crops, prepare_kitti_crops


@pytest.fixture(scope="module")
def kitti(shared_data):
    return shared_data / "kitti" / "object" / "training"


@pytest.fixture(scope="module")
def crops(kitti):
    return make_kitti_crops(kitti, num_points=256, min_points=50)


def test_crops_of_the_labelled_objects(crops):
    names = [KITTI_CROP_CLASSES[i] for i in crops.label]
    # near objects have enough points; the far car (58 m) and cyclist (46 m) in 000001 do not
    assert list(zip(crops.frame.tolist(), names, strict=True)) == [
        ("000000", "Pedestrian"),
        ("000001", "Truck"),
        ("000002", "Misc"),
        ("000002", "Car"),
    ]
    assert crops.data.shape == (4, 256, 3) and crops.data.dtype == np.float32
    assert np.all(crops.raw_points >= 50)
    np.testing.assert_allclose(np.linalg.norm(crops.data, axis=2).max(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(crops.data.mean(axis=1), 0.0, atol=1e-5)


def test_pedestrian_crop_is_upright_and_narrow(crops):
    ped = crops.data[0]
    extent = np.ptp(ped, axis=0)  # x along the heading, z up (LiDAR frame)
    assert extent[2] > 1.5 * extent[1]  # taller than wide (1.89 m x 0.48 m box)


def test_points_really_come_from_inside_the_box(kitti, crops):
    from robokit.pointcloud.boxes import camera_to_lidar_boxes, points_in_boxes

    ped = read_kitti_labels(kitti / "label_2" / "000000.txt")[0]
    calib = read_kitti_calib(kitti / "calib" / "000000.txt")
    box = camera_to_lidar_boxes(
        np.r_[ped.location_cam, ped.dimensions_hwl, ped.rotation_y][None],
        calib.R0_rect,
        calib.Tr_velo_to_cam,
    )
    box[:, 3:6] += 0.2
    scan = read_kitti_velodyne(kitti / "velodyne" / "000000.bin")
    assert points_in_boxes(scan[:, :3], box)[:, 0].sum() == crops.raw_points[0]


def test_min_points_filters_and_prepare_writes_layout(kitti, tmp_path):
    # with a lower threshold the cyclist at 46 m (18 points) joins; the car at 58 m has fewer than 10
    assert len(make_kitti_crops(kitti, num_points=64, min_points=10).label) == 5
    out = prepare_kitti_crops(tmp_path / "crops", kitti, num_points=64)
    data, label = load_modelnet_h5(out, "test")
    assert data.shape == (4, 64, 3) and label.tolist() == [3, 2, 7, 0]
    assert read_shape_names(out) == list(KITTI_CROP_CLASSES)
    with pytest.raises(ValueError, match="no labelled object"):
        prepare_kitti_crops(tmp_path / "none", kitti, min_points=10**6)
