"""Helpers shared by the corruption suites (all take an explicit ``numpy.random.Generator``)."""

from __future__ import annotations

import numpy as np

__all__ = ["split_count", "extra_channels_for", "remove_nearest_clusters", "level_value"]


def level_value(table: tuple, severity: int, first_level: int, name: str):
    """Entry of a per-severity parameter table, with a clear error for an unknown level."""
    index = int(severity) - first_level
    if not 0 <= index < len(table):
        levels = list(range(first_level, first_level + len(table)))
        raise ValueError(f"corruption {name!r}: severity {severity} not in {levels}")
    return table[index]


def split_count(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` items among ``parts`` groups, each item to a uniformly random group.

    Returns (parts,) int64 summing to ``total`` (ModelNet-C's cluster-size rule).
    """
    return np.bincount(rng.integers(0, parts, size=total), minlength=parts)


def extra_channels_for(new_xyz: np.ndarray, cloud: np.ndarray) -> np.ndarray:
    """Give new points (M, 3) the non-xyz channels of their nearest original point.

    Returns (M, C) float32 for a (N, C) ``cloud``; for C == 3 just the xyz.
    """
    new_xyz = np.asarray(new_xyz, dtype=np.float32)
    if cloud.shape[1] == 3 or len(new_xyz) == 0:
        return (
            new_xyz.reshape(-1, 3)
            if cloud.shape[1] == 3
            else np.zeros((0, cloud.shape[1]), np.float32)
        )
    from scipy.spatial import cKDTree

    _, nearest = cKDTree(cloud[:, :3]).query(new_xyz)
    return np.hstack([new_xyz, cloud[nearest, 3:]]).astype(np.float32)


def remove_nearest_clusters(
    cloud: np.ndarray, cluster_sizes, rng: np.random.Generator, keep_fraction: float = 0.0
) -> np.ndarray:
    """For each size K: pick a random remaining point and remove its K nearest remaining neighbours.

    With ``keep_fraction`` > 0, a random ``keep_fraction`` of each neighbourhood survives
    (local density decrease). Returns the remaining (M, C) points in their original order.
    """
    xyz = np.asarray(cloud[:, :3], dtype=np.float64)
    squared_norms = (xyz * xyz).sum(axis=1)
    alive = np.ones(len(cloud), dtype=bool)
    for size in cluster_sizes:
        alive_idx = np.flatnonzero(alive)
        size = int(min(size, len(alive_idx)))
        if size <= 0:
            continue
        centre = xyz[alive_idx[rng.integers(len(alive_idx))]]
        squared = squared_norms - 2.0 * (xyz @ centre) + centre @ centre
        squared[~alive] = np.inf
        hood = np.argpartition(squared, size - 1)[:size] if size < len(squared) else alive_idx
        if keep_fraction > 0:
            hood = rng.choice(hood, size=size - int(round(keep_fraction * size)), replace=False)
        alive[hood] = False
    return cloud[alive]
