"""Voxelize point clouds with a numba hash table: mean feature per voxel, ``[z, y, x]`` coordinates.

The grid covers the half-open box ``[xmin, xmax) x [ymin, ymax) x [zmin, zmax)``; points
outside it are dropped. Voxel ``(ix, iy, iz) = floor((p - min) / voxel_size)`` and the grid has
``round((max - min) / voxel_size)`` cells per axis, which is the convention of spconv's
``PointToVoxel`` and OpenPCDet. Voxels are numbered in the order their first point appears
(also spconv's order), so ``max_voxels`` keeps the voxels first touched by the point stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

__all__ = ["voxelize", "voxelize_batch", "grid_shape"]

# Fibonacci hashing constant (2**64 / golden ratio)
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def _as_range_and_size(voxel_size, point_range) -> tuple[np.ndarray, np.ndarray]:
    size = np.asarray(voxel_size, dtype=np.float64).reshape(-1)
    bounds = np.asarray(point_range, dtype=np.float64).reshape(-1)
    if size.shape != (3,) or bounds.shape != (6,):
        raise ValueError(
            f"voxel_size must have 3 values (x, y, z) and point_range 6 values "
            f"[xmin, ymin, zmin, xmax, ymax, zmax]; got {size.shape} and {bounds.shape}"
        )
    if not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ValueError(f"voxel_size must be finite and positive, got {size.tolist()}")
    if not np.all(np.isfinite(bounds)) or np.any(bounds[3:] <= bounds[:3]):
        raise ValueError(
            f"point_range must be finite with max > min on every axis, got {bounds.tolist()}"
        )
    return size, bounds


def grid_shape(voxel_size, point_range) -> np.ndarray:
    """Number of voxels per axis, ordered ``[nz, ny, nx]`` (int64, shape (3,))."""
    size, bounds = _as_range_and_size(voxel_size, point_range)
    cells_xyz = np.round((bounds[3:] - bounds[:3]) / size).astype(np.int64)
    return cells_xyz[::-1].copy()


@numba.njit(cache=True, nogil=True)
def _assign_voxels(xyz, range_min, voxel_size, cells_xyz, max_voxels):
    """Map each point to a voxel id (-1 when out of range or over ``max_voxels``).

    Returns ``(point_voxel (N,) int32, coords (V,3) int32 [z,y,x], first_bad_row)``, where
    ``first_bad_row`` is the first row with a NaN/inf coordinate (-1 when all are finite).
    """
    n = xyz.shape[0]
    nx, ny, nz = cells_xyz[0], cells_xyz[1], cells_xyz[2]
    table_size = 1
    while table_size < 2 * n + 2:
        table_size *= 2
    mask = np.uint64(table_size - 1)
    table_keys = np.full(table_size, -1, np.int64)
    table_ids = np.empty(table_size, np.int32)
    point_voxel = np.full(n, -1, np.int32)
    capacity = min(n, max_voxels)
    coords = np.empty((capacity, 3), np.int32)
    num_voxels = 0
    for i in range(n):
        if not (np.isfinite(xyz[i, 0]) and np.isfinite(xyz[i, 1]) and np.isfinite(xyz[i, 2])):
            return point_voxel, coords[:0], i
        ix = int(np.floor((xyz[i, 0] - range_min[0]) / voxel_size[0]))
        iy = int(np.floor((xyz[i, 1] - range_min[1]) / voxel_size[1]))
        iz = int(np.floor((xyz[i, 2] - range_min[2]) / voxel_size[2]))
        if ix < 0 or ix >= nx or iy < 0 or iy >= ny or iz < 0 or iz >= nz:
            continue
        key = (iz * ny + iy) * nx + ix
        slot = (np.uint64(key) * _HASH_MULTIPLIER) & mask
        while True:
            stored = table_keys[slot]
            if stored == key:
                point_voxel[i] = table_ids[slot]
                break
            if stored == -1:
                if num_voxels < capacity:
                    table_keys[slot] = key
                    table_ids[slot] = num_voxels
                    coords[num_voxels, 0] = iz
                    coords[num_voxels, 1] = iy
                    coords[num_voxels, 2] = ix
                    point_voxel[i] = num_voxels
                    num_voxels += 1
                break
            slot = (slot + np.uint64(1)) & mask
    return point_voxel, coords[:num_voxels], -1


@numba.njit(cache=True, nogil=True)
def _mean_features(points, point_voxel, num_voxels):
    """Per-voxel mean of all point channels (float64 sums) and point counts."""
    channels = points.shape[1]
    sums = np.zeros((num_voxels, channels), np.float64)
    counts = np.zeros(num_voxels, np.int32)
    for i in range(points.shape[0]):
        v = point_voxel[i]
        if v < 0:
            continue
        counts[v] += 1
        for c in range(channels):
            sums[v, c] += points[i, c]
    features = np.empty((num_voxels, channels), np.float32)
    for v in range(num_voxels):
        for c in range(channels):
            features[v, c] = sums[v, c] / counts[v]
    return features, counts


def _check_points(points: np.ndarray, name: str = "points") -> np.ndarray:
    array = np.asarray(points)
    if array.ndim != 2 or array.shape[1] < 3:
        raise ValueError(f"{name} must have shape (N, C>=3) with xyz first, got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be floating point, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)  # finiteness is checked in the kernel


def voxelize(
    points: np.ndarray,
    voxel_size: Sequence[float],
    point_range: Sequence[float],
    max_voxels: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average the points that fall in each occupied voxel.

    Args:
        points: (N, C) float array, xyz in metres (or unit-sphere units) first, then any extra
            channels (reflectance, ...). A non-finite xyz raises ``ValueError`` naming the row.
        voxel_size: (3,) voxel edge lengths along x, y, z.
        point_range: (6,) ``[xmin, ymin, zmin, xmax, ymax, zmax]``; points outside are dropped.
        max_voxels: keep at most this many voxels (the first ones touched in point order).

    Returns:
        features: (V, C) float32, mean of the points in each voxel (all channels).
        coords: (V, 3) int32 voxel indices ``[z, y, x]``.
        counts: (V,) int32 number of points in each voxel (>= 1).
    """
    cloud = _check_points(points)
    size, bounds = _as_range_and_size(voxel_size, point_range)
    cells_xyz = grid_shape(size, bounds)[::-1].copy()
    if np.any(cells_xyz < 1) or float(np.prod(cells_xyz.astype(np.float64))) >= 2.0**62:
        raise ValueError(
            f"grid of {cells_xyz[::-1].tolist()} voxels (z, y, x) is empty or too large for 64-bit "
            "voxel keys; check voxel_size against point_range"
        )
    limit = cloud.shape[0] if max_voxels is None else int(max_voxels)
    if limit < 0:
        raise ValueError(f"max_voxels must be >= 0, got {max_voxels}")
    # float32 arithmetic, as spconv and OpenPCDet do, so boundary points land in the same voxel
    point_voxel, coords, bad = _assign_voxels(
        cloud[:, :3], bounds[:3].astype(np.float32), size.astype(np.float32), cells_xyz, limit
    )
    if bad >= 0:
        raise ValueError(f"points has a non-finite xyz at row {bad}: {cloud[bad, :3].tolist()}")
    features, counts = _mean_features(cloud, point_voxel, coords.shape[0])
    return features, coords, counts


def voxelize_batch(
    clouds: Sequence[np.ndarray],
    voxel_size: Sequence[float],
    point_range: Sequence[float],
    max_voxels: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxelize a list of clouds and stack the results with a batch column.

    Args:
        clouds: B arrays of shape (N_b, C) (same C for all).
        voxel_size, point_range, max_voxels: as in :func:`voxelize` (``max_voxels`` per cloud).

    Returns:
        features (V, C) float32, coords (V, 4) int32 ``[batch, z, y, x]``, counts (V,) int32,
        with the voxels of cloud 0 first, then cloud 1, ...
    """
    if len(clouds) == 0:
        raise ValueError("voxelize_batch needs at least one cloud")
    channel_counts = {np.shape(cloud)[-1] for cloud in clouds}
    if len(channel_counts) != 1:
        raise ValueError(
            f"all clouds must have the same number of channels, got {sorted(channel_counts)}"
        )
    all_features, all_coords, all_counts = [], [], []
    for batch_index, cloud in enumerate(clouds):
        try:
            features, coords, counts = voxelize(cloud, voxel_size, point_range, max_voxels)
        except ValueError as err:
            raise ValueError(f"cloud {batch_index}: {err}") from err
        batch_column = np.full((coords.shape[0], 1), batch_index, dtype=np.int32)
        all_features.append(features)
        all_coords.append(np.hstack([batch_column, coords]))
        all_counts.append(counts)
    return (
        np.concatenate(all_features, axis=0),
        np.concatenate(all_coords, axis=0).astype(np.int32, copy=False),
        np.concatenate(all_counts, axis=0),
    )
