"""ModelNet-C's evaluation protocol: corrupt at the model's input size, classify what survives.

ModelNet-C (Ren, Pan and Liu, 2022; ``jiawei-ren/ModelNet-C``) corrupts the first 1,024 points of
every ModelNet40 test cloud (``NUM_POINTS = 1024`` in its ``build_modelnetc/corrupt.py``) and
stores each (corruption, level) split as it comes out: 768 points after a 25% global drop,
1,024 + 500 after adding 500 local points, and so on. The model is fed those clouds as they are
(its ``ModelNetC`` dataset returns ``data[item]`` unchanged), so a model whose features depend
on point density sees the drop. :func:`corrupt_clouds` does exactly that when the model's input
size is :data:`MODELNET_C_POINTS`:

1. the clean cloud is brought to 1,024 points once (a fixed random subset, or kept as it is when
   it has exactly 1,024 points, as the procedural set does);
2. the corruption is applied to those 1,024 points with ModelNet-C's parameters
   (:mod:`robokit.pointcloud.corruptions.modelnet_c`);
3. the survivors go to the model: **no resampling back to a fixed size**.

For a model with a smaller input size ``n`` (robokit's quick CPU recipes), step 3 keeps a
uniformly random ``round(M * n / 1024)`` of the ``M`` survivors, so every cloud is thinned by
the same factor: the clean cloud has ``n`` points, a 50% global drop leaves ``n / 2``, 500 added
points become ``500 n / 1024``. Relative changes in density and in point count are ModelNet-C's;
at ``n = 1024`` nothing is thinned and the protocol is ModelNet-C's exactly.

The old robokit protocol (corrupt, then resample every cloud to exactly ``n`` points) is kept as
``protocol="resample"``; under it a random global drop cannot be seen by construction (a random
subset of the survivors is distributed like a random subset of the clean cloud).

Corrupted sets are lists of (M_i, 3) float32 arrays; :func:`predict_clouds` batches clouds of
equal size together, so models are always fed real, unpadded clouds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from robokit.intact.attacks import resample_to

#: points per clean cloud that ModelNet-C corrupts (its build_modelnetc/corrupt.py, NUM_POINTS)
MODELNET_C_POINTS = 1024
#: "modelnet-c": variable-size survivors (the benchmark's protocol); "resample": robokit's old
#: protocol, every corrupted cloud resampled to the model's input size
PROTOCOLS = ("modelnet-c", "resample")

Clouds = Sequence[np.ndarray]


def modelnet_c_base(points: np.ndarray, seed: int) -> np.ndarray:
    """Clean clouds (N, P, 3) -> (N, 1024, 3) as ModelNet-C corrupts them (unchanged when P == 1024)."""
    if points.shape[1] == MODELNET_C_POINTS:
        return np.asarray(points, dtype=np.float32)
    rng = np.random.default_rng([seed, MODELNET_C_POINTS])
    return np.stack([resample_to(c, MODELNET_C_POINTS, rng) for c in points]).astype(np.float32)


def thin(cloud: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random ``max(1, round(M * factor))`` of the M points (all of them at factor >= 1)."""
    if factor >= 1.0:
        return cloud
    keep = max(1, int(round(len(cloud) * factor)))
    return cloud[np.sort(rng.choice(len(cloud), size=keep, replace=False))]


def corrupt_clouds(
    points: np.ndarray,
    name: str | None,
    severity: int,
    num_points: int,
    rng: np.random.Generator,
    protocol: str = "modelnet-c",
) -> list[np.ndarray]:
    """Corrupt every cloud of (N, P, 3) (``name=None``: clean) as ``protocol`` says.

    Returns:
        N float32 arrays (M_i, 3). Under "modelnet-c" M_i is what survives the corruption of the
        1,024-point cloud, thinned by ``num_points / 1024``; under "resample" M_i == num_points.
    """
    from robokit.pointcloud.corruptions import corrupt

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; choose from {PROTOCOLS}")
    factor = num_points / MODELNET_C_POINTS
    out = []
    for cloud in points:
        corrupted = cloud if name is None else corrupt(name, cloud, severity, rng)[:, :3]
        if len(corrupted) == 0:  # nothing left to classify: one point at the origin
            corrupted = np.zeros((1, 3), dtype=np.float32)
        if protocol == "resample":
            out.append(resample_to(corrupted, num_points, rng).astype(np.float32))
        else:
            out.append(thin(np.asarray(corrupted, dtype=np.float32), factor, rng))
    return out


@torch.no_grad()
def predict_clouds(model: nn.Module, clouds: Clouds | np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Class predictions (N,) int64 of clouds of any sizes, model in eval mode.

    Clouds of equal size are batched together (eval-mode BatchNorm makes each prediction
    independent of its batch), so no cloud is padded or resampled.
    """
    sizes = np.array([len(c) for c in clouds])
    predictions = np.empty(len(clouds), dtype=np.int64)
    was_training = model.training
    model.eval()
    try:
        for size in np.unique(sizes):
            rows = np.flatnonzero(sizes == size)
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                batch = np.stack([np.asarray(clouds[i], dtype=np.float32) for i in chunk])
                predictions[chunk] = model(torch.from_numpy(batch)).argmax(1).numpy()
    finally:
        model.train(was_training)
    return predictions


def suite_pairs(suite: str) -> list[tuple[str | None, int]]:
    """The (corruption, severity) pairs of ``suite`` in order, clean (None, -1) first."""
    from robokit.pointcloud.corruptions import SUITES, severities

    if suite not in SUITES:
        raise KeyError(f"unknown suite {suite!r}; known: {sorted(SUITES)}")
    return [(None, -1)] + [(name, s) for name in SUITES[suite] for s in severities(suite)]


def pair_rng(seed: int, position: int, severity: int) -> np.random.Generator:
    """The random stream of the pair at ``position`` of a suite: it depends on nothing else, so the
    pairs can be corrupted in any order, in any process (``--distributed ray``)."""
    return np.random.default_rng([seed, position, severity + 1])


def build_suite(
    points: np.ndarray,
    num_points: int,
    seed: int = 0,
    suite: str = "modelnet-c",
    protocol: str = "modelnet-c",
    progress: bool = False,
) -> dict[tuple[str, int], list[np.ndarray]]:
    """Every corrupted copy of a test set (N, P, 3): {(name, severity): N clouds}, ("clean", -1) first.

    Under "modelnet-c" the clouds are first brought to ModelNet-C's 1,024 points
    (:func:`modelnet_c_base`). The random stream of a (corruption, severity) pair depends only on
    ``seed``, its position in the suite and the severity (:func:`pair_rng`), so every model is
    scored on the same clouds.
    """
    from tqdm import tqdm

    pairs = suite_pairs(suite)
    if protocol == "modelnet-c":
        points = modelnet_c_base(points, seed)
    sets = {}
    for position, (name, severity) in enumerate(
        tqdm(pairs, desc=f"corrupting ({suite}, {protocol})", disable=not progress, leave=False)
    ):
        rng = pair_rng(seed, position, severity)
        sets[(name or "clean", severity)] = corrupt_clouds(points, name, severity, num_points, rng, protocol)
    return sets


def accuracy_clouds(model: nn.Module, clouds: Clouds | np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy (0..1) on clouds of any sizes."""
    return float((predict_clouds(model, clouds) == np.asarray(labels)).mean())


def mean_ci95(values: Sequence[float]) -> dict[str, float]:
    """Mean and 95% confidence half-width over seeds (Student t, n - 1 degrees of freedom).

    Returns {"mean", "ci95", "std", "n", "low", "high"}; ci95 is 0 for a single value.
    """
    from scipy import stats

    data = np.asarray(list(values), dtype=np.float64)
    if data.size == 0:
        raise ValueError("mean_ci95 needs at least one value")
    mean = float(data.mean())
    std = float(data.std(ddof=1)) if data.size > 1 else 0.0
    half = float(stats.t.ppf(0.975, data.size - 1) * std / np.sqrt(data.size)) if data.size > 1 else 0.0
    return {"mean": mean, "ci95": half, "std": std, "n": int(data.size), "low": mean - half, "high": mean + half}
