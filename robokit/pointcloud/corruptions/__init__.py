"""Seeded point-cloud corruptions: ModelNet-C, ModelNet40-C (mesh-free families) and KITTI scene corruptions.

One entry point::

    corrupt(name, points (N, C) float32, severity, rng) -> (M, C) float32

The LiDAR scene corruptions also exist as continuous-parameter functions (``gaussian_noise(points,
sigma_m, rng)``, ``drop_points(points, ratio, rng)``, ``drop_beams``, ``crosstalk``, ``motion_blur``,
``fov_filter``, ``local_cutout``) for callers that sweep a rate instead of a severity level.

``SUITES`` maps a suite to its corruption names and :func:`severities` gives its levels
(ModelNet-C uses 0..4 as published; ModelNet40-C and kitti-c use 1..5). Each suite module
documents its severity table with units; docs/pointcloud.md repeats them. All randomness comes
from the ``numpy.random.Generator`` passed in, so a seed fixes the result.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robokit.pointcloud.corruptions import kitti_c, modelnet40_c, modelnet_c
from robokit.pointcloud.corruptions.hdl64 import estimate_rings
from robokit.pointcloud.corruptions.kitti_c import (
    crosstalk,
    drop_beams,
    drop_points,
    fov_filter,
    gaussian_noise,
    local_cutout,
    motion_blur,
)
from robokit.pointcloud.points import check_cloud

__all__ = [
    "corrupt",
    "SUITES",
    "severities",
    "suite_of",
    "CORRUPTION_FUNCTIONS",
    # continuous-parameter LiDAR scene corruptions (metres, velodyne frame)
    "gaussian_noise",
    "drop_points",
    "drop_beams",
    "crosstalk",
    "motion_blur",
    "fov_filter",
    "local_cutout",
    "estimate_rings",
]

CorruptionFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

#: suite -> (levels, name -> function)
_SUITE_TABLE: dict[str, tuple[tuple[int, ...], dict[str, CorruptionFn]]] = {
    "modelnet-c": (modelnet_c.LEVELS, modelnet_c.CORRUPTIONS),
    "modelnet40-c": (modelnet40_c.LEVELS, modelnet40_c.CORRUPTIONS),
    "kitti-c": (kitti_c.LEVELS, kitti_c.CORRUPTIONS),
}

#: suite name -> corruption names in benchmark order
SUITES: dict[str, list[str]] = {suite: list(table) for suite, (_, table) in _SUITE_TABLE.items()}
#: corruption name -> function(points, severity, rng)
CORRUPTION_FUNCTIONS: dict[str, CorruptionFn] = {
    name: fn for _, table in _SUITE_TABLE.values() for name, fn in table.items()
}
_SUITE_OF = {name: suite for suite, names in SUITES.items() for name in names}


def severities(suite: str) -> list[int]:
    """Severity levels of ``suite`` (``[0..4]`` for modelnet-c, ``[1..5]`` for the others)."""
    if suite not in _SUITE_TABLE:
        raise KeyError(f"unknown corruption suite {suite!r}; known: {sorted(_SUITE_TABLE)}")
    return list(_SUITE_TABLE[suite][0])


def suite_of(name: str) -> str:
    """The suite a corruption name belongs to."""
    if name not in _SUITE_OF:
        raise KeyError(f"unknown corruption {name!r}; known: {sorted(_SUITE_OF)}")
    return _SUITE_OF[name]


def corrupt(name: str, points: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` to one cloud.

    Args:
        name: a corruption of one of :data:`SUITES`.
        points: (N, C) float array, xyz first (unit sphere for the object suites, metres for kitti-c).
        severity: one of ``severities(suite_of(name))``.
        rng: the only source of randomness.

    Returns:
        (M, C) float32; M differs from N for the drop/add corruptions.
    """
    suite = suite_of(name)
    if severity not in severities(suite):
        raise ValueError(
            f"corruption {name!r} ({suite}): severity {severity} not in {severities(suite)}"
        )
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    cloud = check_cloud(points, name=f"points for {name!r}", min_points=1)
    return np.asarray(CORRUPTION_FUNCTIONS[name](cloud, severity, rng), dtype=np.float32)
