"""Small point-cloud helpers shared by the readers, the procedural shapes and the corruptions.

Point arrays are ``(N, C)`` float32 with xyz in the first three columns.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_cloud",
    "normalize_unit_sphere",
    "sample_in_unit_ball",
    "rotation_matrix_xyz",
    "nearest_indices",
]


def check_cloud(points: np.ndarray, name: str = "points", min_points: int = 0) -> np.ndarray:
    """Validate an ``(N, C>=3)`` floating cloud with finite xyz; return it as float32.

    Raises ``ValueError`` naming the first bad row when a coordinate is NaN or inf.
    """
    array = np.asarray(points)
    if array.ndim != 2 or array.shape[1] < 3:
        raise ValueError(f"{name} must have shape (N, C>=3) with xyz first, got {array.shape}")
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.shape[0] < min_points:
        raise ValueError(f"{name} needs at least {min_points} points, got {array.shape[0]}")
    if not np.isfinite(array[:, :3]).all():
        bad = int(np.flatnonzero(~np.isfinite(array[:, :3]).all(axis=1))[0])
        raise ValueError(f"{name} has a non-finite xyz at row {bad}: {array[bad, :3].tolist()}")
    return array if array.dtype == np.float32 else array.astype(np.float32)


def normalize_unit_sphere(points: np.ndarray, copy: bool = True) -> np.ndarray:
    """Centre xyz on the centroid and scale so the farthest point has norm 1 (ModelNet40's rule).

    Args:
        points: (N, C) array; only the xyz columns change.
        copy: with False, a float32 ``points`` is normalised in place.
    Returns:
        (N, C) float32 array.
    """
    out = np.array(points, dtype=np.float32, copy=copy or points.dtype != np.float32)
    out[:, :3] -= out[:, :3].mean(axis=0, keepdims=True)
    radius = float(np.sqrt((out[:, :3] ** 2).sum(axis=1)).max()) if len(out) else 0.0
    if radius > 0:
        out[:, :3] /= radius
    return out


def sample_in_unit_ball(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points uniform in the unit ball, (count, 3) float64 (radius ~ U^(1/3))."""
    direction = rng.normal(size=(count, 3))
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    radius = rng.uniform(0.0, 1.0, size=(count, 1)) ** (1.0 / 3.0)
    return direction * radius


def rotation_matrix_xyz(angles_rad: np.ndarray) -> np.ndarray:
    """Rotation ``Rz @ Ry @ Rx`` for Euler angles ``(ax, ay, az)`` in radians, shape (3, 3)."""
    ax, ay, az = (float(a) for a in angles_rad)
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


def nearest_indices(xyz: np.ndarray, centre: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` points of ``xyz`` (N, 3) nearest to ``centre`` (3,), unordered."""
    count = int(min(max(count, 0), len(xyz)))
    if count == 0:
        return np.empty(0, dtype=np.int64)
    if count == len(xyz):
        return np.arange(len(xyz))
    squared = ((xyz - centre) ** 2).sum(axis=1)
    return np.argpartition(squared, count - 1)[:count]
