"""ModelNet-C (Ren, Pan and Liu, 2022): 7 corruptions of unit-sphere object clouds, levels 0..4.

Parameters per level (index = level), as published with the benchmark:

=============== ====================================================== =================================
corruption      what it does                                           level 0 .. 4
=============== ====================================================== =================================
scale           xyz *= U(1/s, s) per axis, re-normalise to unit sphere s = 1.6, 1.7, 1.8, 1.9, 2.0
jitter          xyz += N(0, sigma^2) per coordinate (unit-sphere units) sigma = 0.01 .. 0.05
rotate          Euler angles U(-theta, theta) about x, y, z (R=RzRyRx)  theta = pi/30 .. pi/6 (6..30 deg)
dropout_global  drop a random fraction of points                       0.25, 0.375, 0.5, 0.625, 0.75
dropout_local   remove K points as kNN balls round 1..7 random centres K = 100, 200, 300, 400, 500
add_global      add points uniform in the unit ball                    10, 20, 30, 40, 50 points
add_local       add K points in 1..7 Gaussian clusters around random   K = 100 .. 500,
                cloud points, sigma ~ U(0.075, 0.125) per cluster;      points outside the unit sphere
                                                                        are inverted: p / |p|^2
=============== ====================================================== =================================

The number of clusters is uniform in 1..7 and each of the K points goes to a uniformly random
cluster (ModelNet-C's rule). Every function takes ``(points (N, C), level, rng)`` and returns a
new float32 array; only xyz changes, added points copy the extra channels of their nearest point.
"""

from __future__ import annotations

import numpy as np

from robokit.pointcloud.corruptions._common import (
    extra_channels_for,
    level_value,
    remove_nearest_clusters,
    split_count,
)
from robokit.pointcloud.points import (
    normalize_unit_sphere,
    rotation_matrix_xyz,
    sample_in_unit_ball,
)

LEVELS = (0, 1, 2, 3, 4)
SCALE_S = (1.6, 1.7, 1.8, 1.9, 2.0)
JITTER_SIGMA = (0.01, 0.02, 0.03, 0.04, 0.05)
ROTATE_THETA_RAD = tuple(np.pi / 30 * k for k in range(1, 6))
DROPOUT_GLOBAL_RATE = (0.25, 0.375, 0.5, 0.625, 0.75)
DROPOUT_LOCAL_POINTS = (100, 200, 300, 400, 500)
ADD_GLOBAL_POINTS = (10, 20, 30, 40, 50)
ADD_LOCAL_POINTS = (100, 200, 300, 400, 500)
ADD_LOCAL_SIGMA_RANGE = (0.075, 0.125)
MAX_CLUSTERS = 7


def _param(table, level, name):
    return level_value(table, level, LEVELS[0], name)


def scale(points: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Anisotropic scaling by U(1/s, s) per axis, then back to the unit sphere."""
    s = _param(SCALE_S, level, "scale")
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :3] *= rng.uniform(1.0 / s, s, size=3).astype(np.float32)
    return normalize_unit_sphere(out, copy=False)


def jitter(points: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of std ``sigma`` on every coordinate."""
    sigma = _param(JITTER_SIGMA, level, "jitter")
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :3] += np.float32(sigma) * rng.standard_normal(size=(len(out), 3), dtype=np.float32)
    return out


def rotate(points: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Rotation by Euler angles drawn from U(-theta, theta)."""
    theta = _param(ROTATE_THETA_RAD, level, "rotate")
    out = np.array(points, dtype=np.float32, copy=True)
    rotation = rotation_matrix_xyz(rng.uniform(-theta, theta, size=3))
    out[:, :3] = out[:, :3] @ rotation.astype(np.float32)
    return out


def dropout_global(points: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Keep ``int(N * (1 - rate))`` random points."""
    rate = _param(DROPOUT_GLOBAL_RATE, level, "dropout_global")
    keep = int(len(points) * (1.0 - rate))
    return np.asarray(points, dtype=np.float32)[rng.permutation(len(points))[:keep]]


def dropout_local(points: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Remove K points as the nearest-neighbour balls of 1..7 random centres."""
    total = min(_param(DROPOUT_LOCAL_POINTS, level, "dropout_local"), len(points))
    sizes = split_count(total, int(rng.integers(1, MAX_CLUSTERS + 1)), rng)
    return remove_nearest_clusters(np.asarray(points, dtype=np.float32), sizes, rng)


def add_global(points: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Append points drawn uniformly in the unit ball."""
    count = _param(ADD_GLOBAL_POINTS, level, "add_global")
    cloud = np.asarray(points, dtype=np.float32)
    return np.vstack([cloud, extra_channels_for(sample_in_unit_ball(count, rng), cloud)])


def add_local(points: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Append K points in Gaussian clusters centred on random points of the cloud."""
    total = _param(ADD_LOCAL_POINTS, level, "add_local")
    cloud = np.asarray(points, dtype=np.float32)
    num_clusters = int(rng.integers(1, MAX_CLUSTERS + 1))
    sizes = split_count(total, num_clusters, rng)
    centres = cloud[
        rng.choice(len(cloud), size=num_clusters, replace=len(cloud) < num_clusters), :3
    ]
    sigmas = rng.uniform(*ADD_LOCAL_SIGMA_RANGE, size=num_clusters)
    owner = np.repeat(np.arange(num_clusters), sizes)
    added = centres[owner] + sigmas[owner, None] * rng.standard_normal(size=(total, 3))
    squared = (added**2).sum(axis=1, keepdims=True)
    added = np.where(squared > 1.0, added / np.maximum(squared, 1e-12), added)
    return np.vstack([cloud, extra_channels_for(added, cloud)])


CORRUPTIONS = {
    "scale": scale,
    "jitter": jitter,
    "rotate": rotate,
    "dropout_global": dropout_global,
    "dropout_local": dropout_local,
    "add_global": add_global,
    "add_local": add_local,
}
