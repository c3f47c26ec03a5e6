"""Ego-motion compensation: per-frame poses from KITTI oxts, pose files or ROS odometry.

A *pose* here is a ``(4, 4)`` rigid transform taking points from the frame the boxes are
given in (the rectified camera frame for KITTI tracking files) at one frame into a fixed world
frame. From two consecutive poses, :func:`frame_to_frame` gives the transform
``T_cur_prev = inv(pose[t]) @ pose[t - 1]``, and :func:`transform_states` moves every
predicted track from the previous frame's coordinates into the current frame's before
matching (AB3DMOT's ``ego_com``; AB3DMOT moves the centre only, robokit also turns heading,
velocity and their covariance).

Sources of poses:

* KITTI oxts (``oxts/<seq>.txt``: 30 numbers per line, ``lat lon alt roll pitch yaw vn ve vf
  vl vu ax ay az af al au wx wy wz wf wl wu pos_accuracy vel_accuracy navstat numsats posmode
  velmode orimode``): IMU poses by the KITTI devkit's Mercator projection (scale from the
  first latitude; rotation ``Rz(yaw) Ry(pitch) Rx(roll)``; first position at the origin), as
  in pykitti and AB3DMOT's ``kitti_oxts.py``; then moved to the camera with the sequence's
  calibration (``R_rect``, ``Tr_velo_cam``, ``Tr_imu_velo``): :func:`camera_poses_from_oxts`.
* A pose file (:func:`read_pose_file`): one pose per line, 12 numbers (the top 3x4 rows,
  row-major, the KITTI odometry ``poses.txt`` layout) or 16 (the full 4x4), line ``t`` for
  frame ``t``, the box frame's pose in any fixed world frame.
* ROS odometry (:func:`poses_from_odometry`): ``nav_msgs/Odometry`` messages as ``(stamp,
  position, quaternion)``, interpolated at the frame stamps, times the box frame's pose in the
  odometry child frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "OXTS_FIELDS",
    "camera_poses_from_oxts",
    "frame_to_frame",
    "imu_to_camera",
    "oxts_to_poses",
    "poses_from_odometry",
    "read_oxts",
    "read_pose_file",
    "transform_states",
]

OXTS_FIELDS = 30
EARTH_RADIUS = 6378137.0  # metres, as in the KITTI devkit
_POSITION = [0, 1, 2]
_VELOCITY = [7, 8, 9]
_THETA = 3


# ----------------------------------------------------------------------------- transforms


def transform_states(mean: np.ndarray, cov: np.ndarray, ego: np.ndarray) -> None:
    """Move Kalman track states into another frame, in place.

    Args:
        mean: ``(K, 10)`` states ``[x, y_bottom, z, theta, l, w, h, vx, vy, vz]`` in camera
            coordinates (x right, y down, z forward; theta = KITTI rotation_y about y).
        cov: ``(K, 10, 10)`` covariances.
        ego: ``(4, 4)`` rigid transform from the states' frame to the new frame.
    """
    if len(mean) == 0:
        return
    rotation, translation = ego[:3, :3], ego[:3, 3]
    mean[:, _POSITION] = mean[:, _POSITION] @ rotation.T + translation
    mean[:, _VELOCITY] = mean[:, _VELOCITY] @ rotation.T
    theta = mean[:, _THETA]
    heading = np.stack([np.cos(theta), np.zeros_like(theta), -np.sin(theta)], axis=1) @ rotation.T
    turned = np.arctan2(-heading[:, 2], heading[:, 0])
    mean[:, _THETA] = (turned + np.pi) % (2 * np.pi) - np.pi
    jacobian = np.eye(mean.shape[1])
    jacobian[np.ix_(_POSITION, _POSITION)] = rotation
    jacobian[np.ix_(_VELOCITY, _VELOCITY)] = rotation
    cov[:] = jacobian @ cov @ jacobian.T


def frame_to_frame(poses: np.ndarray, num_frames: int) -> list[np.ndarray | None]:
    """Per frame, the ``(4, 4)`` transform from the previous frame's box coordinates.

    Args:
        poses: ``(F, 4, 4)`` box-frame poses in a world frame, ``F >= num_frames``.
    Returns:
        ``num_frames`` entries: None for frame 0, ``inv(poses[t]) @ poses[t - 1]`` after.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"poses: expected shape (F, 4, 4), got {poses.shape}")
    if len(poses) < num_frames:
        raise ValueError(f"poses: {len(poses)} poses for {num_frames} frames")
    inverse = invert_rigid(poses[:num_frames])
    return [None] + [inverse[t] @ poses[t - 1] for t in range(1, num_frames)]


def invert_rigid(transforms: np.ndarray) -> np.ndarray:
    """Inverse of rigid ``(..., 4, 4)`` transforms: ``[R^T, -R^T t]``."""
    rotation_t = np.swapaxes(transforms[..., :3, :3], -1, -2)
    inverse = np.zeros_like(transforms)
    inverse[..., :3, :3] = rotation_t
    inverse[..., :3, 3] = -(rotation_t @ transforms[..., :3, 3:4])[..., 0]
    inverse[..., 3, 3] = 1.0
    return inverse


def _rigid(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations and ``(..., 3)`` translations -> ``(..., 4, 4)``."""
    out = np.zeros(rotation.shape[:-2] + (4, 4))
    out[..., :3, :3] = rotation
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


def _homogeneous(matrix: np.ndarray) -> np.ndarray:
    """A ``(3, 3)`` or ``(3, 4)`` matrix as ``(4, 4)``."""
    out = np.eye(4)
    out[:3, : matrix.shape[1]] = matrix
    return out


# ----------------------------------------------------------------------------- KITTI oxts


def read_oxts(path) -> np.ndarray:
    """Read a KITTI oxts file -> ``(F, 30)`` float64, one row per frame (format in the module doc).

    Raises:
        ValueError: naming the file and line of a row without 30 numbers.
    """
    from robokit.tracking.io import parse_numbers, read_lines

    path = Path(path)
    rows = []
    for line_no, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != OXTS_FIELDS:
            raise ValueError(
                f"{path}:{line_no}: expected {OXTS_FIELDS} oxts fields, got {len(fields)}"
            )
        numbers = parse_numbers(fields, path, line_no, "oxts")
        if not np.isfinite(numbers[:6]).all():
            raise ValueError(f"{path}:{line_no}: NaN or infinite lat/lon/alt/roll/pitch/yaw")
        rows.append(numbers)
    if not rows:
        raise ValueError(f"{path}: no oxts rows")
    return np.asarray(rows, dtype=np.float64)


def _rot_x(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([one, zero, zero, zero, c, -s, zero, s, c], axis=-1).reshape(-1, 3, 3)


def _rot_y(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([c, zero, s, zero, one, zero, -s, zero, c], axis=-1).reshape(-1, 3, 3)


def _rot_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    return np.stack([c, -s, zero, s, c, zero, zero, zero, one], axis=-1).reshape(-1, 3, 3)


def oxts_to_poses(oxts: np.ndarray) -> np.ndarray:
    """``(F, >= 6)`` oxts rows -> ``(F, 4, 4)`` IMU poses in a local east-north-up frame.

    The KITTI devkit's conversion (``convertOxtsToPose.m``; pykitti; AB3DMOT): Mercator
    projection with the scale of the first latitude, altitude as up, rotation
    ``Rz(yaw) Ry(pitch) Rx(roll)``, and the first frame's position as the origin.
    """
    oxts = np.asarray(oxts, dtype=np.float64)
    lat, lon, alt = oxts[:, 0], oxts[:, 1], oxts[:, 2]
    scale = np.cos(lat[0] * np.pi / 180.0)
    east = scale * lon * np.pi * EARTH_RADIUS / 180.0
    north = scale * EARTH_RADIUS * np.log(np.tan((90.0 + lat) * np.pi / 360.0))
    position = np.stack([east, north, alt], axis=1)
    rotation = _rot_z(oxts[:, 5]) @ _rot_y(oxts[:, 4]) @ _rot_x(oxts[:, 3])
    return _rigid(rotation, position - position[0])


def imu_to_camera(calib_path) -> np.ndarray:
    """``(4, 4)`` IMU -> rectified camera transform ``R_rect Tr_velo_cam Tr_imu_velo`` of a calib file."""
    from robokit.pointcloud.io import read_kitti_calib

    calib = read_kitti_calib(calib_path)
    if calib.Tr_imu_to_velo is None:
        raise ValueError(
            f"{calib_path}: missing calibration key 'Tr_imu_velo' (or 'Tr_imu_to_velo')"
        )
    return (
        _homogeneous(calib.R0_rect)
        @ _homogeneous(calib.Tr_velo_to_cam)
        @ _homogeneous(calib.Tr_imu_to_velo)
    )


def camera_poses_from_oxts(oxts_path, calib_path) -> np.ndarray:
    """Rectified-camera poses ``(F, 4, 4)`` of a KITTI tracking sequence from its oxts and calib."""
    imu_poses = oxts_to_poses(read_oxts(oxts_path))
    return imu_poses @ invert_rigid(imu_to_camera(calib_path))


# ----------------------------------------------------------------------------- pose files


def read_pose_file(path) -> np.ndarray:
    """Read one pose per line (12 numbers: 3x4 row-major; or 16: 4x4) -> ``(F, 4, 4)``.

    Raises:
        ValueError: naming the file and line of a row of the wrong length or whose rotation
            is not orthonormal (tolerance 1e-3).
    """
    from robokit.tracking.io import parse_numbers, read_lines

    path = Path(path)
    poses = []
    for line_no, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.replace(",", " ").split()
        if len(fields) not in (12, 16):
            raise ValueError(
                f"{path}:{line_no}: expected 12 (3x4) or 16 (4x4) numbers, got {len(fields)}"
            )
        numbers = np.asarray(parse_numbers(fields, path, line_no, "pose"))
        pose = _homogeneous(numbers.reshape(-1, 4)[:3])
        if len(fields) == 16 and not np.allclose(numbers[12:], [0, 0, 0, 1]):
            raise ValueError(f"{path}:{line_no}: last row of a 4x4 pose must be 0 0 0 1")
        rotation = pose[:3, :3]
        if not np.isfinite(pose).all() or not np.allclose(
            rotation @ rotation.T, np.eye(3), atol=1e-3
        ):
            raise ValueError(f"{path}:{line_no}: rotation is not orthonormal (or not finite)")
        poses.append(pose)
    if not poses:
        raise ValueError(f"{path}: no poses")
    return np.stack(poses)


# ----------------------------------------------------------------------------- ROS odometry


def poses_from_odometry(
    messages: Sequence[tuple[float, Sequence[float], Sequence[float]]],
    frame_stamps: Sequence[float] | None = None,
    extrinsic: np.ndarray | None = None,
) -> np.ndarray:
    """Box-frame poses from ``nav_msgs/Odometry`` messages.

    Args:
        messages: ``(stamp_seconds, (x, y, z), (qx, qy, qz, qw))`` per message: the
            ``header.stamp``, ``pose.pose.position`` and ``pose.pose.orientation`` (ROS's
            x, y, z, w order) of the child frame in the odometry frame.
        frame_stamps: ``(F,)`` stamps of the tracked frames; the pose is interpolated there
            (linear in position, spherical-linear in rotation). None: one pose per message.
        extrinsic: ``(4, 4)`` pose of the box frame in the odometry child frame (e.g.
            ``base_link`` -> LiDAR); identity by default.
    Returns:
        ``(F, 4, 4)`` poses for :func:`robokit.tracking.track_sequence`.
    Raises:
        ValueError: unsorted stamps, a zero quaternion, or a frame stamp outside the messages.
    """
    from scipy.spatial.transform import Rotation, Slerp

    if len(messages) == 0:
        raise ValueError("odometry: no messages")
    stamps = np.asarray([m[0] for m in messages], dtype=np.float64)
    positions = np.asarray([m[1] for m in messages], dtype=np.float64).reshape(-1, 3)
    quaternions = np.asarray([m[2] for m in messages], dtype=np.float64).reshape(-1, 4)
    if np.any(np.diff(stamps) <= 0):
        raise ValueError("odometry: message stamps must increase strictly")
    norms = np.linalg.norm(quaternions, axis=1)
    if np.any(norms < 1e-9):
        raise ValueError(f"odometry: message {int(np.argmin(norms))} has a zero quaternion")
    rotations = Rotation.from_quat(quaternions / norms[:, None])
    if frame_stamps is None:
        rotation, position = rotations.as_matrix(), positions
    else:
        when = np.asarray(frame_stamps, dtype=np.float64)
        outside = (when < stamps[0]) | (when > stamps[-1])
        if outside.any():
            raise ValueError(
                f"odometry: frame stamp {when[outside][0]:.6f} is outside the messages "
                f"[{stamps[0]:.6f}, {stamps[-1]:.6f}]"
            )
        if len(stamps) == 1:
            rotation, position = (
                np.repeat(rotations.as_matrix(), len(when), 0),
                positions[[0] * len(when)],
            )
        else:
            rotation = Slerp(stamps, rotations)(when).as_matrix()
            position = np.stack([np.interp(when, stamps, positions[:, k]) for k in range(3)], 1)
    poses = _rigid(rotation, position)
    if extrinsic is not None:
        poses = poses @ np.asarray(extrinsic, dtype=np.float64)
    return poses
