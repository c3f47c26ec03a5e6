"""LiDAR scene corruptions for KITTI scans (metres, velodyne frame), severities 1..5.

Every corruption is a continuous-parameter function (what the detection code calls at chosen
rates) plus a severity wrapper with this table:

================ ================================================================= =====================================
corruption       what it does (continuous function)                               severity 1 .. 5
================ ================================================================= =====================================
gaussian_noise   xyz += N(0, sigma^2), metres; reflectance untouched              sigma = 0.02, 0.04, 0.06, 0.08, 0.10 m
                 (:func:`gaussian_noise`)
drop_points      drop a random fraction of points (:func:`drop_points`, any ratio ratio = 0.1, 0.3, 0.5, 0.7, 0.9
                 in [0, 0.9])
beam_missing     drop whole laser rings (ring from :func:`estimate_rings`)          fraction of the 64 rings = 0.1, 0.2,
                 (:func:`drop_beams`, :func:`estimate_rings`)                      0.3, 0.4, 0.5
crosstalk        displace a fraction of points by N(0, (3 m)^2) per axis          fraction = 0.004, 0.008, 0.012,
                 (:func:`crosstalk`)                                              0.016, 0.020
motion_blur      uncompensated ego motion: a point seen at sweep time t (from     speed = 5, 10, 15, 20, 25 m/s
                 its azimuth, one 0.1 s sweep from +x counter-clockwise) shifts    (jitter sigma = 0.01 m x severity)
                 by -v (0.1 - t) along x, + N(0, sigma^2) (:func:`motion_blur`)
fov_filter       keep points with |azimuth| <= half_fov (0 deg = +x, forward)     half_fov = 105, 90, 75, 60, 45 deg
                 (:func:`fov_filter`)
local_cutout     remove the kNN balls (each 2 % of N) of k random points          k = 2, 3, 5, 7, 10
                 (:func:`local_cutout`)
================ ================================================================= =====================================

Sources: gaussian sigma, crosstalk fraction and 3 m spread, FOV half-angles and the cutout
regions follow Dong et al., "Benchmarking Robustness of 3D Object Detection to Common
Corruptions in Autonomous Driving" (CVPR 2023). The drop ratios (up to 0.9), beam fractions and
the motion-blur speeds are robokit's choices. Laser rings come from the HDL-64E model of
:mod:`robokit.pointcloud.corruptions.hdl64` (64 elevations and two laser-block heights fitted on
real KITTI scans; 99.5 % or more of the points get their exact ring on a held-out scan).
"""

from __future__ import annotations

import numpy as np

from robokit.pointcloud.corruptions._common import level_value, remove_nearest_clusters
from robokit.pointcloud.corruptions.hdl64 import (
    HDL64_ELEVATIONS_DEG,
    estimate_rings,
)

LEVELS = (1, 2, 3, 4, 5)
GAUSSIAN_SIGMA_M = (0.02, 0.04, 0.06, 0.08, 0.10)
DROP_RATIO = (0.1, 0.3, 0.5, 0.7, 0.9)
MAX_DROP_RATIO = 0.9
BEAM_FRACTION = (0.1, 0.2, 0.3, 0.4, 0.5)
CROSSTALK_FRACTION = (0.004, 0.008, 0.012, 0.016, 0.020)
CROSSTALK_SIGMA_M = 3.0
MOTION_SPEED_MPS = (5.0, 10.0, 15.0, 20.0, 25.0)
MOTION_JITTER_M = (0.01, 0.02, 0.03, 0.04, 0.05)
SWEEP_SECONDS = 0.1
FOV_HALF_DEG = (105.0, 90.0, 75.0, 60.0, 45.0)
CUTOUT_REGIONS = (2, 3, 5, 7, 10)
CUTOUT_FRACTION = 0.02


def _param(table, severity, name):
    return level_value(table, severity, LEVELS[0], name)


# --------------------------------------------------------------------------- continuous functions
def gaussian_noise(points: np.ndarray, sigma_m: float, rng: np.random.Generator) -> np.ndarray:
    """Add N(0, sigma_m^2) to x, y, z (metres); other channels unchanged. Returns (N, C) float32."""
    if sigma_m < 0:
        raise ValueError(f"sigma_m must be >= 0, got {sigma_m}")
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :3] += (sigma_m * rng.standard_normal(size=(len(out), 3))).astype(np.float32)
    return out


def drop_points(points: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Drop ``round(ratio * N)`` random points, ``0 <= ratio <= 0.9``; order of survivors kept."""
    if not 0.0 <= ratio <= MAX_DROP_RATIO:
        raise ValueError(f"drop ratio must be in [0, {MAX_DROP_RATIO}], got {ratio}")
    keep = np.sort(rng.permutation(len(points))[: len(points) - int(round(ratio * len(points)))])
    return np.asarray(points, dtype=np.float32)[keep]


def drop_beams(points: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Remove every point of ``round(fraction * 64)`` randomly chosen laser rings."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"beam fraction must be in [0, 1], got {fraction}")
    rings = estimate_rings(points)
    num_rings = len(HDL64_ELEVATIONS_DEG)
    dropped = rng.choice(num_rings, size=int(round(fraction * num_rings)), replace=False)
    return np.asarray(points, dtype=np.float32)[~np.isin(rings, dropped)]


def crosstalk(
    points: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    sigma_m: float = CROSSTALK_SIGMA_M,
) -> np.ndarray:
    """Displace a random ``fraction`` of points by N(0, sigma_m^2) per axis (interfering returns)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"crosstalk fraction must be in [0, 1], got {fraction}")
    out = np.array(points, dtype=np.float32, copy=True)
    chosen = rng.choice(len(out), size=int(fraction * len(out)), replace=False)
    out[chosen, :3] += (sigma_m * rng.standard_normal(size=(len(chosen), 3))).astype(np.float32)
    return out


def motion_blur(
    points: np.ndarray,
    speed_mps: float,
    rng: np.random.Generator,
    jitter_m: float = 0.0,
    sweep_s: float = SWEEP_SECONDS,
) -> np.ndarray:
    """Smear a scan as if the car drove at ``speed_mps`` along +x during one uncompensated sweep.

    A KITTI sweep starts and ends facing forward (+x) and turns counter-clockwise (seen in the
    storage order of the real scans: every ring runs from azimuth 0 up through +-pi back to 0).
    A point at azimuth ``a`` is therefore taken at ``t = sweep_s * (a mod 2 pi) / (2 pi)``; in
    the end-of-sweep frame it appears shifted by ``-speed_mps * (sweep_s - t)`` along x.
    Optional isotropic jitter ``N(0, jitter_m^2)`` adds the sensor's own shake.
    """
    out = np.array(points, dtype=np.float32, copy=True)
    azimuth = np.arctan2(out[:, 1], out[:, 0])
    time_left = sweep_s * (1.0 - np.mod(azimuth, 2 * np.pi) / (2 * np.pi))
    out[:, 0] -= (speed_mps * time_left).astype(np.float32)
    if jitter_m > 0:
        out[:, :3] += (jitter_m * rng.standard_normal(size=(len(out), 3))).astype(np.float32)
    return out


def fov_filter(points: np.ndarray, half_fov_deg: float) -> np.ndarray:
    """Keep points whose azimuth ``atan2(y, x)`` is within +-``half_fov_deg`` of straight ahead."""
    azimuth = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
    return np.asarray(points, dtype=np.float32)[np.abs(azimuth) <= half_fov_deg]


def local_cutout(
    points: np.ndarray,
    num_regions: int,
    rng: np.random.Generator,
    fraction: float = CUTOUT_FRACTION,
) -> np.ndarray:
    """Remove ``num_regions`` kNN balls, each of ``int(fraction * N)`` points, around random points."""
    size = int(fraction * len(points))
    return remove_nearest_clusters(np.asarray(points, dtype=np.float32), [size] * num_regions, rng)


# --------------------------------------------------------------------------- severity wrappers
def _gaussian_level(points, severity, rng):
    return gaussian_noise(points, _param(GAUSSIAN_SIGMA_M, severity, "gaussian_noise"), rng)


def _drop_level(points, severity, rng):
    return drop_points(points, _param(DROP_RATIO, severity, "drop_points"), rng)


def _beam_level(points, severity, rng):
    return drop_beams(points, _param(BEAM_FRACTION, severity, "beam_missing"), rng)


def _crosstalk_level(points, severity, rng):
    return crosstalk(points, _param(CROSSTALK_FRACTION, severity, "crosstalk"), rng)


def _motion_level(points, severity, rng):
    speed = _param(MOTION_SPEED_MPS, severity, "motion_blur")
    return motion_blur(
        points, speed, rng, jitter_m=_param(MOTION_JITTER_M, severity, "motion_blur")
    )


def _fov_level(points, severity, rng):
    return fov_filter(points, _param(FOV_HALF_DEG, severity, "fov_filter"))


def _cutout_level(points, severity, rng):
    return local_cutout(points, _param(CUTOUT_REGIONS, severity, "local_cutout"), rng)


CORRUPTIONS = {
    "gaussian_noise": _gaussian_level,
    "drop_points": _drop_level,
    "beam_missing": _beam_level,
    "crosstalk": _crosstalk_level,
    "motion_blur": _motion_level,
    "fov_filter": _fov_level,
    "local_cutout": _cutout_level,
}
