"""Training-time corruptions: saliency-targeted (INTACT), random (plain curriculum), PGD (adversarial).

All functions work on a batch of equal-size clouds ``points`` (B,N,3) float32 in
the unit sphere and return a batch of the same shape, so a model always sees N
points: after removing points a cloud is refilled to N by repeating survivors
(:func:`resample_to`), which leaves a max-pooled feature unchanged.

:func:`targeted_corruption` is shared by INTACT and the plain curriculum. With a
saliency map it targets the points the model depends on; with ``saliency=None``
every point weighs the same and the very same operations become untargeted, so
the two methods differ *only* in targeting. The operations, at strength ``s`` in
[0, 1] (one is drawn per cloud):

=========  ==============================================================================
drop       remove ``s * max_drop`` of the points, drawn without replacement with
           probability proportional to ``exp(sharpness * saliency)`` (Gumbel top-k)
noise      Gaussian displacement of every point with sigma ``s * max_sigma * 2 * saliency``
           (mean sigma ``s * max_sigma`` when saliency is uniform 0.5), units of the cloud
displace   move ``s * max_displace_fraction`` of the points (drawn as for drop) by Gaussian
           offsets of sigma ``s * displace_sigma``
=========  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robokit.pointcloud.spconv_patch import eval_with_input_grads

TARGETED_OPS = ("drop", "noise", "displace")


@dataclass(frozen=True)
class TargetedCorruptionConfig:
    """Maxima of the targeted operations (reached at strength 1)."""

    max_drop: float = 0.75
    max_sigma: float = 0.06
    max_displace_fraction: float = 0.3
    displace_sigma: float = 0.15
    sharpness: float = 5.0
    ops: tuple[str, ...] = TARGETED_OPS


def resample_to(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``n`` rows of ``points`` (M,C): a random subset if M >= n, else all rows plus repeats.

    Raises:
        ValueError: when the cloud is empty.
    """
    m = len(points)
    if m == 0:
        raise ValueError("cannot resample an empty point cloud")
    if m >= n:
        return points[rng.choice(m, size=n, replace=False)]
    extra = rng.choice(m, size=n - m, replace=True)
    return np.concatenate([points, points[extra]], axis=0)


def gumbel_top_k(log_weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct indices drawn with probability proportional to exp(log_weights) (Gumbel top-k)."""
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    return np.argpartition(-keys, k - 1)[:k] if k > 0 else np.zeros(0, dtype=np.int64)


def drop_budget(n: int, strength: float, config: TargetedCorruptionConfig) -> int:
    """Points a cloud of ``n`` loses to the drop op at ``strength`` (at least one survives)."""
    return min(int(round(strength * config.max_drop * n)), n - 1)


def _drop(cloud, saliency, strength, cfg, rng):
    n = len(cloud)
    k = drop_budget(n, strength, cfg)
    removed = gumbel_top_k(cfg.sharpness * saliency, k, rng)
    keep = np.ones(n, dtype=bool)
    keep[removed] = False
    return resample_to(cloud[keep], n, rng)


def _noise(cloud, saliency, strength, cfg, rng):
    sigma = strength * cfg.max_sigma * 2.0 * saliency
    out = cloud.copy()
    out[:, :3] += rng.normal(size=(len(cloud), 3)).astype(np.float32) * sigma[:, None].astype(np.float32)
    return out


def _displace(cloud, saliency, strength, cfg, rng):
    k = int(round(strength * cfg.max_displace_fraction * len(cloud)))
    moved = gumbel_top_k(cfg.sharpness * saliency, k, rng)
    out = cloud.copy()
    out[moved, :3] += rng.normal(scale=strength * cfg.displace_sigma, size=(k, 3)).astype(np.float32)
    return out


_OPS = {"drop": _drop, "noise": _noise, "displace": _displace}


def targeted_corruption(
    points: np.ndarray,
    saliency: np.ndarray | None,
    strength: float,
    rng: np.random.Generator,
    config: TargetedCorruptionConfig = TargetedCorruptionConfig(),
) -> np.ndarray:
    """Corrupt each cloud with one randomly chosen operation at ``strength``.

    Args:
        points: (B,N,3) float32.
        saliency: (B,N) in [0,1] (the teacher's), or None for untargeted (uniform 0.5).
        strength: 0..1, typically the curriculum's current strength.
        rng: the only source of randomness.

    Returns:
        (B,N,3) float32.
    """
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"targeted_corruption expects (B, N, 3) points, got {points.shape}")
    if saliency is None:
        saliency = np.full(points.shape[:2], 0.5, dtype=np.float32)
    if saliency.shape != points.shape[:2]:
        raise ValueError(
            f"saliency shape {saliency.shape} does not match points {points.shape[:2]}"
        )
    unknown = set(config.ops) - set(_OPS)
    if unknown:
        raise ValueError(f"unknown targeted ops {sorted(unknown)}; choose from {TARGETED_OPS}")
    out = np.empty_like(points)
    for i, (cloud, weights) in enumerate(zip(points, saliency, strict=True)):
        op = config.ops[rng.integers(len(config.ops))]
        out[i] = _OPS[op](cloud, weights.astype(np.float64), float(strength), config, rng)
    return out.astype(np.float32)


def corrupt_cloud(
    cloud: np.ndarray,
    saliency: np.ndarray | None,
    op: str,
    strength: float,
    rng: np.random.Generator,
    config: TargetedCorruptionConfig = TargetedCorruptionConfig(),
) -> np.ndarray:
    """One cloud through one named operation of :func:`targeted_corruption`: (N, C) -> (N, C).

    ``C >= 3``: x, y, z in the unit sphere first (noise and displacement move only those; the
    other channels, such as a LiDAR's intensity, travel with their point). ``saliency`` (N,) in
    [0, 1], or None for the untargeted twin (uniform 0.5), as in :func:`targeted_corruption`.
    """
    if op not in _OPS:
        raise ValueError(f"unknown targeted op {op!r}; choose from {TARGETED_OPS}")
    if cloud.ndim != 2 or cloud.shape[1] < 3:
        raise ValueError(f"corrupt_cloud expects (N, C >= 3) points, got {cloud.shape}")
    weights = np.full(len(cloud), 0.5) if saliency is None else np.asarray(saliency, np.float64)
    if weights.shape != (len(cloud),):
        raise ValueError(f"saliency shape {weights.shape} does not match points ({len(cloud)},)")
    return _OPS[op](np.asarray(cloud, np.float32), weights, float(strength), config, rng).astype(np.float32)


def random_drop(points: np.ndarray, max_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Drop a fraction U(0, max_fraction) of each cloud's points uniformly, refill to N: (B,N,3)."""
    out = np.empty_like(points)
    n = points.shape[1]
    for i, cloud in enumerate(points):
        keep = max(1, n - int(round(rng.uniform(0, max_fraction) * n)))
        out[i] = resample_to(cloud[rng.choice(n, size=keep, replace=False)], n, rng)
    return out


def pgd_attack(
    model: nn.Module,
    points: torch.Tensor,
    labels: torch.Tensor,
    eps: float = 0.05,
    steps: int = 3,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L-infinity PGD on point coordinates: maximise cross-entropy within ``eps`` of ``points``.

    Args:
        points: (B,N,3) float32; labels: (B,) int64.
        eps: per-coordinate bound (cloud units); steps: ascent steps; step_size: default 2.5*eps/steps.
        generator: for the random start inside the eps-ball.

    Returns:
        (B,N,3) adversarial points, detached. The model runs in eval mode (BN statistics
        are not touched) and its parameters get no gradient.
    """
    step_size = 2.5 * eps / max(steps, 1) if step_size is None else step_size
    start = (torch.rand(points.shape, generator=generator, device=points.device) * 2 - 1) * eps
    adv = (points + start).detach()
    with eval_with_input_grads(model):
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), labels)
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() + step_size * grad.sign()
            adv = points + (adv - points).clamp(-eps, eps)
    return adv.detach()


def choose(options: Sequence[str], rng: np.random.Generator) -> str:
    """One element of ``options`` drawn with ``rng``."""
    return options[int(rng.integers(len(options)))]
