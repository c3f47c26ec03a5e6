"""Ego-motion compensation on synthetic sequences whose answer is known.

Objects stand still or drive straight in a world frame while the ego vehicle drives and swerves
(turning left and right by 8 degrees a frame). The detections are those world boxes seen from
the moving camera. With the ego poses, every object keeps one identity; without them the
apparent motion breaks tracks. Poses reach the tracker from KITTI oxts + calib files (written
here from the known motion: the shared data has no oxts), from a pose file and from ROS
odometry messages, and each source must give back the known motion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robokit.tracking import track_sequence
from robokit.tracking.ego import (
    camera_poses_from_oxts,
    frame_to_frame,
    invert_rigid,
    oxts_to_poses,
    poses_from_odometry,
    read_oxts,
    read_pose_file,
    transform_states,
)
from robokit.tracking.io import TrackObjects
from robokit.tracking.tracker import TRACKER_PRESETS

FRAMES = 24
#: a real KITTI calibration (object benchmark 000000; the tracking files hold the same keys)
CALIB = """P2: 7.070493e+02 0.0 6.040814e+02 4.575831e+01 0.0 7.070493e+02 1.805066e+02 -3.454157e-01 0.0 0.0 1.0 4.981016e-03
R0_rect: 9.999128e-01 1.009263e-02 -8.511932e-03 -1.012729e-02 9.999406e-01 -4.037671e-03 8.470675e-03 4.123522e-03 9.999556e-01
Tr_velo_to_cam: 6.927964e-03 -9.999722e-01 -2.757829e-03 -2.457729e-02 -1.162982e-03 2.749836e-03 -9.999955e-01 -6.127237e-02 9.999753e-01 6.931141e-03 -1.143899e-03 -3.321029e-01
Tr_imu_to_velo: 9.999976e-01 7.553071e-04 -2.035826e-03 -8.086759e-01 -7.854027e-04 9.998898e-01 -1.482298e-02 3.195559e-01 2.024406e-03 1.482454e-02 9.998881e-01 -7.997231e-01
"""


def rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def camera_poses(frames: int = FRAMES) -> np.ndarray:
    """Camera poses in the world (the camera frame at frame 0): forward 1.2 m/frame, swerving."""
    poses = np.zeros((frames, 4, 4))
    heading, position = 0.0, np.zeros(3)
    for t in range(frames):
        poses[t, :3, :3] = rot_y(heading)
        poses[t, :3, 3] = position
        poses[t, 3, 3] = 1.0
        position = position + rot_y(heading) @ np.array([0.0, 0.0, 1.2])
        heading += math.radians(8.0) * (1 if (t // 3) % 2 == 0 else -1)  # left 3, right 3, ...
    return poses


#: world boxes [x, y_bottom, z, h, w, l, ry] at frame 0 and their velocity per frame (m)
OBJECTS = [
    (np.array([-4.0, 1.7, 22.0, 1.5, 1.6, 4.0, 0.0]), np.zeros(3)),  # parked
    (np.array([5.0, 1.7, 30.0, 1.5, 1.6, 4.0, math.pi / 2]), np.zeros(3)),  # parked
    (np.array([0.0, 1.7, 45.0, 1.5, 1.6, 4.0, -math.pi / 2]), np.array([0.0, 0.0, 0.8])),  # ahead
]


def detections(poses: np.ndarray) -> tuple[TrackObjects, np.ndarray]:
    """The objects' boxes in each frame's camera coordinates, and the object index of each row."""
    rows, owner = [], []
    for t, pose in enumerate(poses):
        to_camera = invert_rigid(pose)
        for index, (box, velocity) in enumerate(OBJECTS):
            centre = box[:3] + t * velocity
            seen = to_camera[:3, :3] @ centre + to_camera[:3, 3]
            ry = box[6] - math.atan2(pose[0, 2], pose[0, 0])  # heading minus the camera's yaw
            rows.append([t, *seen, *box[3:6], ry])
            owner.append(index)
    rows = np.asarray(rows)
    count = len(rows)
    objects = TrackObjects(
        frame=rows[:, 0].astype(np.int64), track_id=np.full(count, -1),
        obj_type=np.full(count, "Car"), truncated=np.zeros(count),
        occluded=np.zeros(count, dtype=np.int64), alpha=np.zeros(count),
        bbox2d=np.tile([100.0, 100.0, 200.0, 180.0], (count, 1)), boxes=rows[:, 1:],
        score=np.full(count, 5.0),
    )  # fmt: skip
    return objects, np.asarray(owner)


def identities(out: TrackObjects, owner_boxes: TrackObjects, owner: np.ndarray) -> dict:
    """Object index -> the set of track ids reported on it (nearest detection, same frame)."""
    found: dict[int, set[int]] = {i: set() for i in range(len(OBJECTS))}
    for row in range(len(out)):
        same = np.flatnonzero(owner_boxes.frame == out.frame[row])
        gap = np.linalg.norm(owner_boxes.boxes[same, :3] - out.boxes[row, :3], axis=1)
        if gap.min() < 1.0:
            found[int(owner[same[np.argmin(gap)]])].add(int(out.track_id[row]))
    return found


@pytest.mark.parametrize("preset", ["robokit", "ab3dmot"])
def test_identities_hold_with_ego_motion_and_break_without(preset):
    poses = camera_poses()
    dets, owner = detections(poses)
    config = TRACKER_PRESETS[preset]
    with_ego = identities(track_sequence(dets, config, poses=poses).objects, dets, owner)
    assert all(len(ids) == 1 for ids in with_ego.values()), with_ego
    without = identities(track_sequence(dets, config).objects, dets, owner)
    assert sum(len(ids) for ids in without.values()) > len(OBJECTS), without


def test_compensated_prediction_lands_on_the_static_object():
    poses = camera_poses(4)
    ego = frame_to_frame(poses, 4)[3]  # frame 2 -> frame 3, during a left turn
    box = OBJECTS[1][0]
    seen = [invert_rigid(p)[:3, :3] @ box[:3] + invert_rigid(p)[:3, 3] for p in poses[2:4]]
    yaw = [box[6] - math.atan2(p[0, 2], p[0, 0]) for p in poses[2:4]]
    mean = np.zeros((1, 10))
    mean[0, :3], mean[0, 3], mean[0, 4:7] = seen[0], yaw[0], box[[5, 4, 3]]
    mean[0, 7:] = [0.0, 0.0, 1.0]  # a velocity turns with the frame
    cov = np.broadcast_to(np.diag(np.arange(1.0, 11.0)), (1, 10, 10)).copy()
    transform_states(mean, cov, ego)
    np.testing.assert_allclose(mean[0, :3], seen[1], atol=1e-9)
    assert math.cos(mean[0, 3] - yaw[1]) == pytest.approx(1.0)
    np.testing.assert_allclose(mean[0, 7:], ego[:3, :3] @ [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(
        cov[0, :3, :3], ego[:3, :3] @ np.diag([1.0, 2.0, 3.0]) @ ego[:3, :3].T, atol=1e-12
    )


def relative(poses: np.ndarray) -> np.ndarray:
    return np.stack([e for e in frame_to_frame(poses, len(poses))[1:]])


def write_oxts(path, camera: np.ndarray, cam_from_imu: np.ndarray) -> None:
    """Write a KITTI oxts file for these camera poses (inverse of the devkit's Mercator step)."""
    earth, lat0, lon0 = 6378137.0, 49.011, 8.423  # Karlsruhe
    scale = math.cos(math.radians(lat0))
    imu = camera @ cam_from_imu
    start = invert_rigid(imu[0])
    yaw0 = np.eye(4)
    yaw0[:3, :3] = Rotation.from_euler("z", 0.7).as_matrix()  # the IMU faces north-east
    imu = yaw0 @ start @ imu  # an east-north-up world with the IMU at the origin at frame 0
    x0 = scale * lon0 * math.pi * earth / 180.0
    y0 = scale * earth * math.log(math.tan((90.0 + lat0) * math.pi / 360.0))
    lines = []
    for pose in imu:
        east, north, up = pose[:3, 3]
        lon = (x0 + east) * 180.0 / (scale * math.pi * earth)
        lat = 360.0 / math.pi * math.atan(math.exp((y0 + north) / (scale * earth))) - 90.0
        yaw, pitch, roll = Rotation.from_matrix(pose[:3, :3]).as_euler("ZYX")
        rest = [0.0] * 19 + [4, 10, 4, 4, 0]
        lines.append(" ".join(f"{v:.12f}" for v in [lat, lon, 120.0 + up, roll, pitch, yaw] + rest))
    path.write_text("\n".join(lines) + "\n")


def test_oxts_round_trip_gives_the_camera_motion(tmp_path):
    from robokit.tracking.ego import imu_to_camera

    (tmp_path / "calib.txt").write_text(CALIB)
    cam_from_imu = imu_to_camera(tmp_path / "calib.txt")
    poses = camera_poses()
    write_oxts(tmp_path / "oxts.txt", poses, cam_from_imu)
    assert read_oxts(tmp_path / "oxts.txt").shape == (FRAMES, 30)
    recovered = camera_poses_from_oxts(tmp_path / "oxts.txt", tmp_path / "calib.txt")
    np.testing.assert_allclose(relative(recovered), relative(poses), atol=2e-6)
    imu = oxts_to_poses(read_oxts(tmp_path / "oxts.txt"))
    np.testing.assert_allclose(imu[0, :3, 3], 0.0, atol=1e-9)  # first frame at the origin


def test_oxts_devkit_conversion_of_hand_values():
    row = np.zeros((2, 30))
    row[:, 0], row[:, 1] = 0.0, [0.0, 1e-5]  # on the equator, 1e-5 degree of longitude east
    row[1, 5] = math.pi / 2  # then facing north
    poses = oxts_to_poses(row)
    east = 1e-5 * math.pi * 6378137.0 / 180.0  # 1.113 m
    np.testing.assert_allclose(poses[1, :3, 3], [east, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(poses[1, :3, :3] @ [1.0, 0, 0], [0.0, 1.0, 0.0], atol=1e-12)


def test_pose_file_round_trip_and_errors(tmp_path):
    poses = camera_poses(5)
    path = tmp_path / "poses.txt"
    path.write_text("\n".join(" ".join(f"{v:.12e}" for v in p[:3].ravel()) for p in poses))
    np.testing.assert_allclose(read_pose_file(path), poses, atol=1e-12)
    full = tmp_path / "full.txt"
    full.write_text("\n".join(" ".join(f"{v:.12e}" for v in p.ravel()) for p in poses))
    np.testing.assert_allclose(read_pose_file(full), poses, atol=1e-12)
    bad = tmp_path / "bad.txt"
    bad.write_text("1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0 0 0 1 0 0\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 12"):
        read_pose_file(bad)
    bad.write_text("2 0 0 0 0 1 0 0 0 0 1 0\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: rotation is not orthonormal"):
        read_pose_file(bad)
    with pytest.raises(ValueError, match="7 poses for 8 frames"):
        frame_to_frame(np.stack([np.eye(4)] * 7), 8)


def test_oxts_errors_name_file_and_line(tmp_path):
    path = tmp_path / "0000.txt"
    path.write_text(" ".join(["0"] * 30) + "\n" + " ".join(["0"] * 29) + "\n")
    with pytest.raises(ValueError, match=r"0000.txt:2: expected 30 oxts fields, got 29"):
        read_oxts(path)
    path.write_text(" ".join(["0"] * 30) + "\n")
    (tmp_path / "calib.txt").write_text("\n".join(CALIB.splitlines()[:3]))
    with pytest.raises(ValueError, match="Tr_imu_velo"):
        camera_poses_from_oxts(tmp_path / "0000.txt", tmp_path / "calib.txt")


def test_ros_odometry_poses_with_extrinsic_and_interpolation():
    poses = camera_poses(9)
    base_from_camera = np.eye(4)  # ROS base_link (x forward, y left, z up) <- camera
    base_from_camera[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    base_from_camera[:3, 3] = [1.5, 0.0, 1.7]
    odometry = poses @ invert_rigid(base_from_camera)  # base_link in the odometry frame
    stamps = 100.0 + 0.05 * np.arange(9)  # 20 Hz odometry
    messages = [
        (s, p[:3, 3], Rotation.from_matrix(p[:3, :3]).as_quat())
        for s, p in zip(stamps, odometry, strict=True)
    ]
    at_messages = poses_from_odometry(messages, extrinsic=base_from_camera)
    np.testing.assert_allclose(at_messages, poses, atol=1e-9)
    frames = poses_from_odometry(messages, stamps[::2], extrinsic=base_from_camera)  # 10 Hz
    np.testing.assert_allclose(frames, poses[::2], atol=1e-9)
    between = poses_from_odometry(messages, [stamps[0] + 0.025])[0]  # halfway, first turn
    first, second = odometry[0, :3, :3], odometry[1, :3, :3]
    half_turn = Rotation.from_matrix(first.T @ second).as_rotvec() / 2
    np.testing.assert_allclose(
        between[:3, :3], first @ Rotation.from_rotvec(half_turn).as_matrix(), atol=1e-9
    )
    np.testing.assert_allclose(between[:3, 3], odometry[:2, :3, 3].mean(axis=0), atol=1e-9)
    with pytest.raises(ValueError, match="outside the messages"):
        poses_from_odometry(messages, [stamps[-1] + 1.0])
    with pytest.raises(ValueError, match="increase"):
        poses_from_odometry(messages[::-1])


def test_track_cli_with_oxts_and_with_a_pose_file(tmp_path):
    from robokit.cli import main as robokit_main
    from robokit.tracking.ego import imu_to_camera
    from robokit.tracking.io import read_tracking_results

    poses = camera_poses()
    dets, owner = detections(poses)
    for name in ("detections", "oxts", "calib", "poses"):
        (tmp_path / name).mkdir()
    lines = [
        f"{f},2,100,100,200,180,5.0,{h},{w},{length},{x},{y},{z},{ry},0.0"
        for f, (x, y, z, h, w, length, ry) in zip(dets.frame, dets.boxes, strict=True)
    ]
    (tmp_path / "detections" / "0000.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "calib" / "0000.txt").write_text(CALIB)
    write_oxts(
        tmp_path / "oxts" / "0000.txt", poses, imu_to_camera(tmp_path / "calib" / "0000.txt")
    )
    (tmp_path / "poses" / "0000.txt").write_text(
        "\n".join(" ".join(f"{v:.12e}" for v in p[:3].ravel()) for p in poses) + "\n"
    )
    base = ["kitti", "track", "--detections", str(tmp_path / "detections")]
    runs = {
        "oxts": ["--oxts", str(tmp_path / "oxts"), "--calib", str(tmp_path / "calib")],
        "poses": ["--poses", str(tmp_path / "poses")],
        "none": [],
    }
    for name, flags in runs.items():
        assert robokit_main([*base, "--out", str(tmp_path / f"out_{name}"), *flags]) == 0
    for name in ("oxts", "poses"):
        found = identities(
            read_tracking_results(tmp_path / f"out_{name}" / "0000.txt"), dets, owner
        )
        assert all(len(ids) == 1 for ids in found.values()), (name, found)
    found = identities(read_tracking_results(tmp_path / "out_none" / "0000.txt"), dets, owner)
    assert sum(len(ids) for ids in found.values()) > len(OBJECTS)
