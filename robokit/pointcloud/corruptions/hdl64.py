"""Laser-ring model of KITTI's Velodyne HDL-64E: which of the 64 lasers produced each point.

A laser k fires at a fixed elevation ``theta_k``, but from a point ``h`` above the velodyne
frame's origin, so seen from the origin a point at horizontal range r appears at elevation
``theta_k + h / r`` (small-angle, in degrees when ``h`` is in degree-metres). The HDL-64E has
two blocks of 32 lasers with different heights. :func:`estimate_rings` undoes the offset and
picks the nearest laser elevation.

The 64 elevations and the two block offsets were fitted by :func:`fit_ring_model` on the three
KITTI object scans in ``../shared/data`` (000000-000002), whose exact rings are known from the
order the points are stored in (:func:`rings_from_scan_order`). Leave-one-scan-out, the
estimate matched the exact ring for 99.5 %, 99.97 % and 99.97 % of the points and was never
more than one ring off. The fitted offsets, 11.6 and 6.7 degree-metres, put the upper and
lower laser blocks about 0.20 m and 0.12 m above the frame origin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "HDL64_ELEVATIONS_DEG",
    "HDL64_BLOCK_OFFSETS_DEG_M",
    "estimate_rings",
    "rings_from_scan_order",
    "fit_ring_model",
]

NUM_RINGS = 64
UPPER_BLOCK = 32  # rings 0..31 are the upper block, 32..63 the lower
_MIN_RANGE_M = 0.5
_BLOCK_OF_RING = (np.arange(NUM_RINGS) >= UPPER_BLOCK).astype(np.int64)  # 0 upper, 1 lower

#: laser elevation (degrees), ring 0 (top) to 63 (bottom), fitted on KITTI scans 000000-000002
HDL64_ELEVATIONS_DEG = np.array([
    1.973, 1.608, 1.337, 0.901, 0.608, 0.207, -0.065, -0.431, -0.784, -1.185, -1.48, -1.822,
    -2.199, -2.541, -2.87, -3.235, -3.541, -3.941, -4.223, -4.598, -4.927, -5.267, -5.63, -5.982,
    -6.356, -6.707, -7.034, -7.326, -7.722, -8.106, -8.362, -8.769, -8.986, -9.539, -10.032,
    -10.445, -10.936, -11.585, -12.108, -12.56, -13.046, -13.495, -14.067, -14.626, -15.226,
    -15.703, -16.232, -16.617, -17.262, -17.816, -18.423, -18.907, -19.444, -19.869, -20.371,
    -20.951, -21.498, -22.135, -22.654, -23.087, -23.57, -24.24, -24.795, -25.307,
])  # fmt: skip
#: elevation excess h of the (upper, lower) block, degree-metres: seen at range r, + h / r degrees
HDL64_BLOCK_OFFSETS_DEG_M = (11.59, 6.74)


def _range_and_elevation(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xyz = np.asarray(points, dtype=np.float64)[:, :3]
    horizontal = np.maximum(np.hypot(xyz[:, 0], xyz[:, 1]), _MIN_RANGE_M)
    return horizontal, np.degrees(np.arctan2(xyz[:, 2], horizontal))


def _nearest(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    order = np.argsort(table)
    ordered = table[order]
    right = np.clip(np.searchsorted(ordered, values), 1, len(ordered) - 1)
    left = right - 1
    return order[np.where(values - ordered[left] < ordered[right] - values, left, right)]


def estimate_rings(
    points: np.ndarray,
    elevations_deg: np.ndarray = HDL64_ELEVATIONS_DEG,
    block_offsets_deg_m: Sequence[float] = HDL64_BLOCK_OFFSETS_DEG_M,
) -> np.ndarray:
    """Ring index (N,) int64 of each point of a velodyne-frame cloud (N, >=3), in metres.

    Two passes: assume the upper block's offset, pick the nearest laser, then redo it with the
    offset of the block that laser belongs to.
    """
    horizontal, elevation = _range_and_elevation(points)
    upper, lower = block_offsets_deg_m
    rings = _nearest(elevation - upper / horizontal, elevations_deg)
    offset = np.where(rings < UPPER_BLOCK, upper, lower)
    return _nearest(elevation - offset / horizontal, elevations_deg)


def rings_from_scan_order(points: np.ndarray) -> np.ndarray:
    """Exact ring index (N,) of an unshuffled raw KITTI scan, from the order points are stored in.

    KITTI stores a scan laser by laser, each a full counter-clockwise turn starting facing +x,
    so the ring changes where the azimuth wraps from negative to non-negative. Only valid on
    files as recorded (not after shuffling or cropping).
    """
    azimuth = np.arctan2(points[:, 1], points[:, 0])
    starts = np.zeros(len(points), dtype=np.int64)
    starts[1:] = (azimuth[:-1] < 0) & (azimuth[1:] >= 0)
    return np.cumsum(starts)


def fit_ring_model(
    scans: Sequence[np.ndarray], min_range_m: float = 2.0, inlier_deg: float = 0.3
) -> tuple[np.ndarray, tuple[float, float]]:
    """Fit the 64 elevations and the two block offsets to raw scans with known scan order.

    Least squares of ``elevation = theta_ring + h_block / range`` over all points beyond
    ``min_range_m``, refitted twice on the points within ``inlier_deg`` of the model (drops the
    few returns that wrap across a ring boundary).

    Returns:
        (elevations (64,) degrees, (h_upper, h_lower) degree-metres).
    """
    ranges, elevations, rings = [], [], []
    for scan in scans:
        ring = rings_from_scan_order(scan)
        if ring.max() != NUM_RINGS - 1:
            raise ValueError(
                f"a scan has {ring.max() + 1} rings by scan order, expected {NUM_RINGS}"
            )
        horizontal, elevation = _range_and_elevation(scan)
        keep = horizontal > min_range_m
        ranges.append(horizontal[keep])
        elevations.append(elevation[keep])
        rings.append(ring[keep])
    horizontal, e, k = (np.concatenate(x) for x in (ranges, elevations, rings))
    inverse_range = 1.0 / horizontal
    inliers = np.ones(len(e), dtype=bool)
    for _ in range(3):
        elevations_k, offsets = _fixed_effects_fit(e[inliers], inverse_range[inliers], k[inliers])
        predicted = elevations_k[k] + offsets[_BLOCK_OF_RING[k]] * inverse_range
        inliers = np.abs(e - predicted) < inlier_deg
    return elevations_k, (float(offsets[0]), float(offsets[1]))


def _fixed_effects_fit(elevation, inverse_range, ring):
    """Least squares of ``elevation = theta[ring] + h[block] * inverse_range`` in closed form.

    With one intercept per ring, each block's slope is the regression of the within-ring
    deviations of elevation on those of 1/r; each intercept is then its ring's mean residual.
    """
    counts = np.maximum(np.bincount(ring, minlength=NUM_RINGS), 1)
    mean_e = np.bincount(ring, weights=elevation, minlength=NUM_RINGS) / counts
    mean_x = np.bincount(ring, weights=inverse_range, minlength=NUM_RINGS) / counts
    dev_e, dev_x = elevation - mean_e[ring], inverse_range - mean_x[ring]
    block = _BLOCK_OF_RING[ring]
    offsets = np.bincount(block, weights=dev_x * dev_e, minlength=2) / np.bincount(
        block, weights=dev_x * dev_x, minlength=2
    )
    return mean_e - offsets[_BLOCK_OF_RING] * mean_x, offsets
