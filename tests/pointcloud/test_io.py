"""Readers on real KITTI files and on broken files; ModelNet40 HDF5, OFF, PCD/PLY round trips."""

import shutil

import h5py
import numpy as np
import pytest

from robokit.pointcloud.io import (
    load_modelnet_h5,
    read_kitti_calib,
    read_kitti_labels,
    read_kitti_velodyne,
    read_off,
    read_point_cloud,
    sample_mesh_surface,
    write_modelnet_h5,
)


@pytest.fixture(scope="module")
def kitti(shared_data):
    return shared_data / "kitti" / "object" / "training"


def test_real_velodyne_scan(kitti):
    path = kitti / "velodyne" / "000000.bin"
    scan = read_kitti_velodyne(path)
    assert scan.shape == (path.stat().st_size // 16, 4) and scan.dtype == np.float32
    assert 100_000 < len(scan) < 130_000
    assert scan[:, 3].min() >= 0.0 and scan[:, 3].max() <= 1.0  # reflectance
    assert np.abs(scan[:, :2]).max() < 130.0  # metres; HDL-64E range is ~120 m


def test_truncated_velodyne_names_the_file(kitti, tmp_path):
    broken = tmp_path / "000000.bin"
    broken.write_bytes((kitti / "velodyne" / "000000.bin").read_bytes()[:-6])
    with pytest.raises(ValueError, match=r"000000\.bin.*multiple of 16"):
        read_kitti_velodyne(broken)
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        read_kitti_velodyne(tmp_path / "missing.bin")


def test_nan_in_velodyne_is_reported_with_index(tmp_path):
    points = np.zeros((5, 4), np.float32)
    points[3, 1] = np.nan
    path = tmp_path / "nan.bin"
    points.tofile(path)
    with pytest.raises(ValueError, match="point 3"):
        read_kitti_velodyne(path)


def test_real_labels(kitti):
    objects = read_kitti_labels(kitti / "label_2" / "000000.txt")
    assert len(objects) == 1
    ped = objects[0]
    assert ped.type == "Pedestrian" and ped.occluded == 0 and ped.score == 1.0
    np.testing.assert_allclose(ped.bbox2d, [712.40, 143.00, 810.73, 307.92])
    np.testing.assert_allclose(ped.dimensions_hwl, [1.89, 0.48, 1.20])
    np.testing.assert_allclose(ped.location_cam, [1.84, 1.47, 8.41])
    assert ped.rotation_y == pytest.approx(0.01)
    types = [o.type for o in read_kitti_labels(kitti / "label_2" / "000001.txt")]
    assert types.count("DontCare") == 4 and "Truck" in types


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Car 0.0 0 1.0 1 2 3 4 1.5 1.6 3.9 1 2\n", "expected 15 or 16 fields"),
        ("Car 0.0 0 1.0 1 2 3 4 1.5 1.6 3.9 1 2 abc 0.1\n", "non-numeric"),
        ("Car 0.0 0 1.0 1 2 3 4 1.5 nan 3.9 1 2 20 0.1\n", "NaN"),
    ],
)
def test_bad_label_line_is_reported_with_line_number(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(
        "Car 0.00 0 -1.58 587 173 614 200 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n" + line
    )
    with pytest.raises(ValueError, match=rf"bad\.txt:2: {message}"):
        read_kitti_labels(path)


def test_calib_round_trip_and_projection(kitti):
    calib = read_kitti_calib(kitti / "calib" / "000000.txt")
    assert (
        calib.P2.shape == (3, 4)
        and calib.R0_rect.shape == (3, 3)
        and calib.Tr_velo_to_cam.shape == (3, 4)
    )
    rng = np.random.default_rng(0)
    velo = rng.uniform(-50, 50, size=(100, 3))
    np.testing.assert_allclose(calib.rect_to_velo(calib.velo_to_rect(velo)), velo, atol=1e-9)
    ped = read_kitti_labels(kitti / "label_2" / "000000.txt")[0]
    # the pedestrian's bottom centre projects between the left and right edge of its 2D box
    u, v = calib.project_rect_to_image(ped.location_cam[None])[0]
    assert ped.bbox2d[0] < u < ped.bbox2d[2] and abs(v - ped.bbox2d[3]) < 15
    # and in the velodyne frame it stands about 8.7 m ahead, on the ground (~1.7 m below the sensor)
    x, _, z = calib.rect_to_velo(ped.location_cam[None])[0]
    assert 8.0 < x < 9.5 and -2.0 < z < -1.4


def test_calib_missing_key_and_bad_value(kitti, tmp_path):
    text = (kitti / "calib" / "000000.txt").read_text().splitlines()
    missing = tmp_path / "missing.txt"
    missing.write_text("\n".join(line for line in text if not line.startswith("R0_rect")))
    with pytest.raises(ValueError, match=r"missing\.txt: missing calibration key 'R0_rect'"):
        read_kitti_calib(missing)
    short = tmp_path / "short.txt"
    short.write_text("\n".join(line if not line.startswith("P2") else "P2: 1 2 3" for line in text))
    with pytest.raises(ValueError, match=r"short\.txt:3: P2 needs 12 values, got 3"):
        read_kitti_calib(short)


def test_modelnet_h5_round_trip_and_split_listing(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(5, 32, 3)).astype(np.float32)
    label = np.array([0, 3, 39, 1, 2])
    write_modelnet_h5(tmp_path / "ply_data_train0.h5", data[:3], label[:3])
    write_modelnet_h5(tmp_path / "ply_data_train1.h5", data[3:], label[3:])
    write_modelnet_h5(tmp_path / "ply_data_test0.h5", data[:1], label[:1])
    with h5py.File(tmp_path / "ply_data_train0.h5") as handle:
        assert handle["data"].shape == (3, 32, 3) and handle["data"].dtype == np.float32
        assert handle["label"].shape == (3, 1)
    loaded, loaded_label = load_modelnet_h5(tmp_path, "train")
    np.testing.assert_array_equal(loaded, data)
    np.testing.assert_array_equal(loaded_label, label)
    assert loaded_label.dtype == np.int64
    assert load_modelnet_h5(tmp_path, "test")[0].shape == (1, 32, 3)
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temporary files


def test_modelnet_h5_errors_name_file_and_key(tmp_path):
    path = tmp_path / "ply_data_train0.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("data", data=np.zeros((2, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"ply_data_train0\.h5: missing dataset 'label'"):
        load_modelnet_h5(path)
    good = tmp_path / "good.h5"
    write_modelnet_h5(good, np.zeros((2, 4, 3)), [0, 1])
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"truncated\.h5: not a readable HDF5"):
        load_modelnet_h5(truncated)
    with h5py.File(tmp_path / "nan.h5", "w") as handle:
        handle.create_dataset("data", data=np.full((2, 4, 3), np.nan, np.float32))
        handle.create_dataset("label", data=np.zeros((2, 1), np.uint8))
    with pytest.raises(ValueError, match=r"nan\.h5: 'data' cloud 0 has NaN"):
        load_modelnet_h5(tmp_path / "nan.h5")
    with pytest.raises(FileNotFoundError, match="ply_data_test"):
        load_modelnet_h5(tmp_path, "test")


CUBE_OFF = """OFF
# unit cube, quads
8 6 0
0 0 0
1 0 0
1 1 0
0 1 0
0 0 1
1 0 1
1 1 1
0 1 1
4 0 3 2 1
4 4 5 6 7
4 0 1 5 4
4 1 2 6 5
4 2 3 7 6
4 3 0 4 7
"""


def test_off_cube_is_triangulated_and_sampled_on_the_surface(tmp_path):
    path = tmp_path / "cube.off"
    path.write_text(CUBE_OFF)
    vertices, faces = read_off(path)
    assert vertices.shape == (8, 3) and faces.shape == (12, 3)
    points = sample_mesh_surface(vertices, faces, 6000, np.random.default_rng(0))
    on_face = np.isclose(points, 0.0, atol=1e-6) | np.isclose(points, 1.0, atol=1e-6)
    assert on_face.any(axis=1).all()
    # equal-area faces -> about 1000 points on each of the 6 faces
    per_face = [np.isclose(points[:, a], v, atol=1e-6).sum() for a in range(3) for v in (0.0, 1.0)]
    assert min(per_face) > 850 and max(per_face) < 1150


def test_mesh_sampling_is_area_weighted():
    vertices = np.array(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [13, 0, 0], [10, 1, 0]], float
    )
    faces = np.array([[0, 1, 2], [3, 4, 5]])  # areas 0.5 and 1.5
    points = sample_mesh_surface(vertices, faces, 8000, np.random.default_rng(0))
    assert (points[:, 0] >= 10).mean() == pytest.approx(0.75, abs=0.02)


def test_off_modelnet_header_defect_and_errors(tmp_path):
    fused = tmp_path / "fused.off"
    fused.write_text("OFF3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    assert read_off(fused)[1].tolist() == [[0, 1, 2]]
    cases = {
        "header.off": ("PLY\n", r"header\.off:1: expected 'OFF'"),
        "short.off": ("OFF\n3 1 0\n0 0 0\n1 0 0\n", r"short\.off: file ends before vertex 2"),
        "index.off": (
            "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n",
            r"index\.off:6: face index out of range",
        ),
        "vertex.off": ("OFF\n3 1 0\n0 0 0\n1 x 0\n0 1 0\n3 0 1 2\n", r"vertex\.off:4: bad vertex"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            read_off(tmp_path / name)


def test_pcd_and_ply_round_trip_through_open3d(tmp_path):
    o3d = pytest.importorskip("open3d")
    rng = np.random.default_rng(2)
    xyz = rng.normal(size=(200, 3)).astype(np.float32)
    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(xyz))
    cloud.point["intensity"] = o3d.core.Tensor(rng.uniform(size=(200, 1)).astype(np.float32))
    for suffix in (".pcd", ".ply"):
        path = tmp_path / f"cloud{suffix}"
        o3d.t.io.write_point_cloud(str(path), cloud)
        loaded = read_point_cloud(path)
        assert loaded.shape == (200, 4)
        np.testing.assert_allclose(loaded[:, :3], xyz, rtol=1e-6)
        np.testing.assert_allclose(loaded[:, 3:], cloud.point["intensity"].numpy(), rtol=1e-6)
    garbage = tmp_path / "garbage.pcd"
    garbage.write_text("this is not a point cloud\n")
    with pytest.raises(ValueError, match=r"garbage\.pcd: open3d read no points"):
        read_point_cloud(garbage)


def test_read_point_cloud_dispatch(kitti, tmp_path):
    shutil.copy(kitti / "velodyne" / "000002.bin", tmp_path / "scan.bin")
    assert read_point_cloud(tmp_path / "scan.bin").shape[1] == 4
    (tmp_path / "cloud.xyz").write_text("0 0 0\n1 2 3\n# comment\n4 5 6\n")
    assert read_point_cloud(tmp_path / "cloud.xyz").tolist() == [[0, 0, 0], [1, 2, 3], [4, 5, 6]]
    (tmp_path / "bad.xyz").write_text("0 0 0\n1 2\n")
    with pytest.raises(ValueError, match=r"bad\.xyz:2"):
        read_point_cloud(tmp_path / "bad.xyz")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"bad\.npy: not a readable \.npy"):
        read_point_cloud(tmp_path / "bad.npy")
    np.savez(tmp_path / "cloud.npz", points=np.ones((3, 4), np.float32), stamp_ns=np.int64(5))
    assert read_point_cloud(tmp_path / "cloud.npz").shape == (3, 4)
    np.savez(tmp_path / "other.npz", xyz=np.ones((3, 3), np.float32))
    with pytest.raises(ValueError, match=r"other\.npz: no 'points' array"):
        read_point_cloud(tmp_path / "other.npz")
    np.save(tmp_path / "flat.npy", np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"flat\.npy must have shape"):
        read_point_cloud(tmp_path / "flat.npy")
    with pytest.raises(ValueError, match="unsupported"):
        (tmp_path / "cloud.las").write_text("")
        read_point_cloud(tmp_path / "cloud.las")


def test_calib_accepts_tracking_key_names(kitti, tmp_path):
    """KITTI tracking calib files write 'R_rect' and 'Tr_velo_cam', without a colon."""
    lines = (kitti / "calib" / "000000.txt").read_text().splitlines()
    renamed = []
    for line in lines:
        key, _, values = line.partition(":")
        key = {"R0_rect": "R_rect", "Tr_velo_to_cam": "Tr_velo_cam"}.get(key, key)
        renamed.append(f"{key} {values.strip()}" if key in ("R_rect", "Tr_velo_cam") else line)
    (tmp_path / "0000.txt").write_text("\n".join(renamed) + "\n")
    tracking = read_kitti_calib(tmp_path / "0000.txt")
    reference = read_kitti_calib(kitti / "calib" / "000000.txt")
    np.testing.assert_array_equal(tracking.R0_rect, reference.R0_rect)
    np.testing.assert_array_equal(tracking.Tr_velo_to_cam, reference.Tr_velo_to_cam)
