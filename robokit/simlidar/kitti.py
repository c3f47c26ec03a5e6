"""KITTI file writers for simulated scans: velodyne ``.bin``, ``label_2``, tracking ``label_02``, calib, poses.

The files are the ones robokit's readers take (``read_kitti_velodyne``, ``read_kitti_labels``,
``read_kitti_calib``, ``read_tracking_labels``, ``read_pose_file``); every write is atomic.

Calibration: the simulated camera 2 sits at the LiDAR origin looking forward, so
``Tr_velo_to_cam`` is the pure axis change (x_cam = -y_velo, y_cam = -z_velo, z_cam = x_velo),
``R0_rect`` is the identity and ``P2`` a pinhole with KITTI's typical intrinsics (focal 721.5 px,
principal point (609.6, 172.9), image 1242 x 375). One calib serves every frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robokit.core.atomic import atomic_path, atomic_write_text

__all__ = ["IMAGE_SHAPE", "SIM_CALIB", "LabelRow", "calib_text", "label_rows", "write_velodyne",
           "write_calib", "write_object_labels", "write_tracking_labels", "write_poses"]

#: image height, width of the simulated camera 2 (KITTI's)
IMAGE_SHAPE = (375, 1242)

#: calibration matrices of every simulated frame (module doc)
SIM_CALIB = {
    "P2": np.array([[721.5377, 0.0, 609.5593, 0.0], [0.0, 721.5377, 172.854, 0.0], [0.0, 0.0, 1.0, 0.0]]),
    "R0_rect": np.eye(3),
    "Tr_velo_to_cam": np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0]]),
}

#: one label: (type, truncated, occluded, alpha, bbox (4,), camera box [x, y_bottom, z, h, w, l, ry] (7,))
LabelRow = tuple[str, float, int, float, np.ndarray, np.ndarray]


def calib_text() -> str:
    """The calib file of :data:`SIM_CALIB`, with the keys of the object benchmark (P0-P3 all P2)."""
    flat = lambda matrix: " ".join(f"{v:.12e}" for v in np.asarray(matrix).reshape(-1))  # noqa: E731
    lines = [f"P{i}: {flat(SIM_CALIB['P2'])}" for i in range(4)]
    lines += [f"R0_rect: {flat(SIM_CALIB['R0_rect'])}", f"Tr_velo_to_cam: {flat(SIM_CALIB['Tr_velo_to_cam'])}",
              f"Tr_imu_to_velo: {flat(np.eye(4)[:3])}"]
    return "\n".join(lines) + "\n"


def write_velodyne(path: str | os.PathLike, points: np.ndarray) -> Path:
    """Write ``(N, 4)`` float32 x, y, z, intensity as a KITTI velodyne ``.bin`` (little-endian float32)."""
    array = np.ascontiguousarray(points, dtype="<f4")
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{path}: velodyne points must have shape (N, 4), got {array.shape}")
    with atomic_path(path) as tmp:
        array.tofile(tmp)
    return Path(path)


def label_rows(boxes_lidar: np.ndarray, types: list[str], occluded: np.ndarray) -> list[LabelRow]:
    """KITTI label rows for LiDAR-frame boxes under :data:`SIM_CALIB`.

    Args:
        boxes_lidar: ``(M, 7)`` ``[x, y, z_center, l, w, h, yaw]``.
        types: ``M`` KITTI class names.
        occluded: ``(M,)`` occlusion levels 0..3.
    Returns:
        rows with the 2D box (projected corners clipped to the image), truncation (the share of
        the projected box outside the image) and alpha (``rotation_y - atan2(x, z)``).
    """
    from robokit.pointcloud.boxes import boxes_to_corners3d, lidar_to_camera_boxes

    boxes_cam = lidar_to_camera_boxes(boxes_lidar, SIM_CALIB["R0_rect"], SIM_CALIB["Tr_velo_to_cam"])
    corners = boxes_to_corners3d(boxes_lidar).reshape(-1, 3)
    rect = corners @ SIM_CALIB["Tr_velo_to_cam"][:, :3].T
    projected = rect @ SIM_CALIB["P2"][:, :3].T
    uv = (projected[:, :2] / np.maximum(projected[:, 2:3], 1e-3)).reshape(-1, 8, 2)
    rows = []
    height, width = IMAGE_SHAPE
    for index, box in enumerate(boxes_cam):
        low, high = uv[index].min(axis=0), uv[index].max(axis=0)
        clipped = np.clip(np.r_[low, high], 0, [width - 1, height - 1, width - 1, height - 1])
        full = max((high - low).prod(), 1e-9)
        truncated = float(np.clip(1.0 - (clipped[2:] - clipped[:2]).prod() / full, 0.0, 1.0))
        alpha = float(box[6] - np.arctan2(box[0], box[2]))
        rows.append((types[index], truncated, int(occluded[index]), alpha, clipped, box))
    return rows


def _fields(row: LabelRow) -> str:
    name, truncated, occluded, alpha, bbox, box = row
    x, y, z, h, w, length, ry = box
    return (f"{name} {truncated:.2f} {occluded} {alpha:.6f} {bbox[0]:.2f} {bbox[1]:.2f} {bbox[2]:.2f} "
            f"{bbox[3]:.2f} {h:.6f} {w:.6f} {length:.6f} {x:.6f} {y:.6f} {z:.6f} {ry:.6f}")


def write_object_labels(path: str | os.PathLike, rows: list[LabelRow]) -> Path:
    """Write one frame's ``label_2`` file (15 fields per object)."""
    atomic_write_text(path, "".join(_fields(row) + "\n" for row in rows))
    return Path(path)


def write_tracking_labels(path: str | os.PathLike, frames: list[list[tuple[int, LabelRow]]]) -> Path:
    """Write a ``label_02`` sequence: ``frames[f]`` lists ``(track_id, row)``; 17 fields per line.

    The truncation field is written as the tracking benchmark's level (0: < 0.15, 1: < 0.5, else 2).
    """
    lines = []
    for frame, objects in enumerate(frames):
        for track_id, (name, truncated, occluded, alpha, bbox, box) in objects:
            level = 0 if truncated < 0.15 else (1 if truncated < 0.5 else 2)
            text = _fields((name, truncated, occluded, alpha, bbox, box)).split(" ", 2)[2]
            lines.append(f"{frame} {track_id} {name} {level} {text}\n")
    atomic_write_text(path, "".join(lines))
    return Path(path)


def write_poses(path: str | os.PathLike, poses: np.ndarray) -> Path:
    """Write ``(F, 4, 4)`` poses one per line as 12 numbers (3x4 row-major), the KITTI odometry layout."""
    atomic_write_text(path, "".join(" ".join(f"{v:.9e}" for v in pose[:3].reshape(-1)) + "\n" for pose in poses))
    return Path(path)


def write_calib(path: str | os.PathLike) -> Path:
    """Write :func:`calib_text` to ``path``."""
    atomic_write_text(path, calib_text())
    return Path(path)
