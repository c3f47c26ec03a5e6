"""Simulated datasets written to disk and read back through robokit's own readers."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from robokit.pointcloud.boxes import camera_to_lidar_boxes, points_in_boxes
from robokit.pointcloud.io import (
    load_modelnet_h5,
    read_kitti_calib,
    read_kitti_labels,
    read_kitti_velodyne,
    read_shape_names,
)
from robokit.simlidar.scanner import LidarConfig
from robokit.tracking.ego import read_pose_file
from robokit.tracking.io import read_tracking_labels

pytest.importorskip("mujoco")

SMALL_LIDAR = LidarConfig(pattern="hdl64e", azimuth_steps=512)


def write_box_stl(path: Path, size=(0.2, 0.1, 0.4)) -> Path:
    """A binary STL (the form MuJoCo reads) of an axis-aligned box: 12 triangles."""
    hx, hy, hz = np.asarray(size) / 2
    corners = np.array([[x, y, z] for x in (-hx, hx) for y in (-hy, hy) for z in (-hz, hz)], dtype="<f4")
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1), (2, 3, 7), (2, 7, 6),
             (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    record = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])
    triangles = np.zeros(len(faces), dtype=record)
    triangles["vertices"] = corners[np.asarray(faces)]
    path.write_bytes(b"\0" * 80 + np.uint32(len(faces)).tobytes() + triangles.tobytes())
    return path


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- objects


def test_object_scans_read_back_as_modelnet(tmp_path):
    from robokit.simlidar.objects import (
        ObjectScanConfig,
        class_meshes,
        robosuite_meshes,
        write_object_dataset,
    )

    if importlib.util.find_spec("robosuite") is None:
        pytest.skip("robosuite (the sim extra) is not installed")
    user = tmp_path / "meshes"
    user.mkdir()
    write_box_stl(user / "brick.stl")
    meshes = [m for m in robosuite_meshes() if m.stem in ("bottle", "can")] + class_meshes(user, False)
    config = ObjectScanConfig(num_points=256, min_points=16, lidar=SMALL_LIDAR)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        write_object_dataset(tmp_path / name, meshes, config, 2, 1, seed=seed, progress=False)
    data, label = load_modelnet_h5(tmp_path / "a", "train")
    test_data, test_label = load_modelnet_h5(tmp_path / "a", "test")
    assert read_shape_names(tmp_path / "a") == ["bottle", "can", "brick"]
    assert data.shape == (6, 256, 3) and test_data.shape == (3, 256, 3)
    np.testing.assert_array_equal(label, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(test_label, [0, 1, 2])
    np.testing.assert_allclose(np.linalg.norm(data, axis=2).max(axis=1), 1.0, rtol=1e-5)  # unit sphere
    assert digest(tmp_path / "a") == digest(tmp_path / "b")  # a seed makes the dataset identical
    assert not np.array_equal(load_modelnet_h5(tmp_path / "c", "train")[0], data)


def test_object_crop_is_one_side_of_the_object():
    """A 0.2 x 0.1 x 0.4 box seen from one side: its crop has the box's height:width ratio, y up."""
    from robokit.simlidar.objects import ObjectScanConfig, ObjectScanner

    mesh_dir = Path(pytest.importorskip("tempfile").mkdtemp())
    scanner = ObjectScanner(write_box_stl(mesh_dir / "brick.stl"), ObjectScanConfig(num_points=512))
    cloud, raw = scanner.scan(np.random.default_rng(0))
    assert raw >= 64
    extent = np.ptp(cloud, axis=0)  # normalised: only ratios are meaningful; y is up (ModelNet)
    assert extent[1] == pytest.approx(extent.max(), rel=0.05)  # the tall axis (0.4 m) is the longest


def test_broken_mesh_is_named():
    from robokit.simlidar.objects import load_mesh_model

    bad = Path(pytest.importorskip("tempfile").mkdtemp()) / "broken.stl"
    bad.write_text("solid nothing\nnot a facet\n")
    with pytest.raises(ValueError, match="broken.stl: not a readable mesh"):
        load_mesh_model(bad)


# ----------------------------------------------------------------------------- scenes


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from robokit.simlidar.scenes import SceneConfig, write_scene_dataset

    root = tmp_path_factory.mktemp("scenes")
    config = SceneConfig(frames=3, lidar=SMALL_LIDAR)
    summary = write_scene_dataset(root / "a", config, sequences=1, seed=5, object_stride=2, progress=False)
    write_scene_dataset(root / "b", config, sequences=1, seed=5, object_stride=2, progress=False)
    return root, config, summary


def test_scene_files_read_back_with_the_labelled_boxes(scenes):
    from robokit.simlidar.scenes import MovingScene

    root, config, summary = scenes
    track = root / "a" / "tracking" / "training"
    labels = read_tracking_labels(track / "label_02" / "0000.txt")
    calib = read_kitti_calib(track / "calib" / "0000.txt")
    poses = read_pose_file(track / "poses" / "0000.txt")
    assert labels.num_frames == 3 and poses.shape == (3, 4, 4) and len(labels) == summary["sequences"][0]["labels"]
    scene = MovingScene(config, seed=int(np.random.SeedSequence([5, 0]).generate_state(1)[0]))
    for frame in range(3):
        rows = labels.select(labels.frame == frame)
        boxes = camera_to_lidar_boxes(rows.boxes, calib.R0_rect, calib.Tr_velo_to_cam)
        truth = scene.actor_boxes(frame)[rows.track_id]
        np.testing.assert_allclose(boxes[:, :6], truth[:, :6], atol=2e-6)
        np.testing.assert_allclose(np.cos(boxes[:, 6] - truth[:, 6]), 1.0, atol=1e-9)
        assert set(rows.obj_type) <= {"Car", "Pedestrian", "Cyclist"}
        points = read_kitti_velodyne(track / "velodyne" / "0000" / f"{frame:06d}.bin")
        assert points.shape[1] == 4 and len(points) > 10000
    obj = root / "a" / "object" / "training"
    objects = read_kitti_labels(obj / "label_2" / "000001.txt")  # frame 2 of sequence 0 (stride 2)
    frame2 = labels.select(labels.frame == 2)
    np.testing.assert_allclose([o.location_cam for o in objects], frame2.boxes[:, :3], atol=1e-5)
    np.testing.assert_allclose(read_kitti_velodyne(obj / "velodyne" / "000001.bin"),
                               read_kitti_velodyne(track / "velodyne" / "0000" / "000002.bin"))
    assert digest(root / "a") == digest(root / "b")  # a seed makes the dataset identical


def test_scene_labels_agree_with_the_scan(scenes):
    """Labelled actors are the ones the scan sees; each actor's returns lie in its own labelled box."""
    from robokit.simlidar.scenes import MovingScene

    _, config, _ = scenes
    scene = MovingScene(config, seed=11)
    record = scene.frame(1)
    assert len(record.boxes) >= 3 and (record.num_points >= config.min_points).all()
    scene.place(1)
    points, geoms = scene.scanner.scan(scene.data, return_geom_ids=True)
    actor = scene._geom_actor[geoms]
    boxes = scene.actor_boxes(1)
    np.testing.assert_allclose(boxes[record.track_ids], record.boxes)
    grown = boxes.copy()
    grown[:, 3:6] += 0.1  # 5 cm beyond each face for the 2 cm range noise
    on_actor = actor >= 0
    own = points_in_boxes(points[on_actor], grown)[np.arange(on_actor.sum()), actor[on_actor]]
    # all but grazing returns, whose range spread (beam divergence x tan(incidence)) can reach decimetres
    assert own.mean() > 0.99
    for track, count in zip(record.track_ids, record.num_points, strict=True):
        assert own[actor[on_actor] == track].sum() >= 0.8 * count
    unlabelled = np.setdiff1d(np.arange(len(boxes)), record.track_ids)
    seen = np.bincount(actor[on_actor], minlength=len(boxes))[unlabelled] >= config.min_points
    centre = boxes[unlabelled[seen], :2]
    bearing = np.degrees(np.abs(np.arctan2(centre[:, 1], centre[:, 0])))
    # an actor the scan sees well but without a label is outside the camera (half FOV ~40 deg) or range
    assert ((bearing > 38) | (np.linalg.norm(centre, axis=1) > config.max_label_range)).all()
