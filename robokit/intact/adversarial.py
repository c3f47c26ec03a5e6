"""Adversarial corruption of salient points: the budget is the curriculum's, the choice maximises the loss.

The curriculum fixes *how much* a cloud may be corrupted at strength ``s`` (the maxima of
:class:`~robokit.intact.attacks.TargetedCorruptionConfig`, the same budgets as the plain
curriculum's random corruption); the teacher's saliency says *where*; this module chooses
*which* corruption within that budget by the student's loss:

=========  ===========================================================================================
drop       remove ``k = s * max_drop * N`` points. ``drop_candidates`` drop sets are drawn without
           replacement with probability proportional to ``exp(sharpness * saliency)`` (Gumbel top-k);
           the set whose removal gives the student the highest loss is kept (loss-greedy choice)
noise      every point may move within an L-inf box of half-width ``s * max_sigma * 2 * saliency``
           (the random op's per-point sigma); ``pgd_steps`` projected sign-gradient ascent steps on
           the loss from a uniform random start in the box
displace   ``k = s * max_displace_fraction * N`` points, drawn as for drop, may move within a box of
           half-width ``s * displace_sigma``; the others stay; PGD as for noise
=========  ===========================================================================================

``pgd_steps=0`` (the uniform random start only) and ``drop_candidates=1`` with uniform saliency are
random corruptions of the very same budget, which is how the tests and docs compare them.

The student is reached only through a :class:`LossOracle` (per-cloud losses and per-point loss
gradients), so the classifier and the detector share this code. Clouds are a list of (N_i, C)
float32 arrays, xyz first; only xyz moves, other channels follow their points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from torch import nn

from robokit.intact.attacks import TargetedCorruptionConfig, drop_budget, gumbel_top_k, resample_to

FAMILIES = ("drop", "noise", "displace")
DEFAULT_BUDGET = TargetedCorruptionConfig()


class LossOracle(Protocol):
    """What the adversary needs of a student: losses and point gradients (model in eval mode)."""

    fixed_size: bool
    """True when every cloud must keep its point count (dropped points are refilled by repeats)."""

    def losses(self, model: nn.Module, clouds: list[np.ndarray], targets: Sequence) -> np.ndarray:
        """(B,) loss of each cloud against its target, no gradient."""
        ...

    def point_grads(self, model: nn.Module, clouds: list[np.ndarray], targets: Sequence) -> list[np.ndarray]:
        """Per cloud, the (N_i, 3) gradient of the summed loss with respect to each point's xyz."""
        ...


@dataclass(frozen=True)
class AdversarialConfig:
    """How hard the adversary searches within the budget."""

    drop_candidates: int = 4
    pgd_steps: int = 3
    step_scale: float = 2.5
    """PGD step = step_scale * bound / pgd_steps, as robokit's PGD baseline (Madry et al.'s 2.5 eps / steps)."""


def _without(cloud: np.ndarray, removed: np.ndarray, refill: bool, rng: np.random.Generator) -> np.ndarray:
    keep = np.ones(len(cloud), dtype=bool)
    keep[removed] = False
    return resample_to(cloud[keep], len(cloud), rng) if refill else cloud[keep]


def adversarial_drop(
    model: nn.Module,
    oracle: LossOracle,
    clouds: list[np.ndarray],
    targets: Sequence,
    saliency: list[np.ndarray],
    strength: float,
    rng: np.random.Generator,
    corruption: TargetedCorruptionConfig = DEFAULT_BUDGET,
    candidates: int = 4,
) -> list[np.ndarray]:
    """Per cloud, the highest-loss of ``candidates`` saliency-weighted drop sets of the budget's size."""
    options: list[np.ndarray] = []
    for cloud, weights in zip(clouds, saliency, strict=True):
        k = drop_budget(len(cloud), strength, corruption)
        for _ in range(candidates):
            removed = gumbel_top_k(corruption.sharpness * weights.astype(np.float64), k, rng)
            options.append(_without(cloud, removed, oracle.fixed_size, rng))
    if candidates == 1:
        return options
    losses = oracle.losses(model, options, [t for t in targets for _ in range(candidates)])
    best = losses.reshape(len(clouds), candidates).argmax(axis=1)
    return [options[i * candidates + int(j)] for i, j in enumerate(best)]


def saliency_pgd(
    model: nn.Module,
    oracle: LossOracle,
    clouds: list[np.ndarray],
    targets: Sequence,
    bounds: list[np.ndarray],
    rng: np.random.Generator,
    steps: int = 3,
    step_scale: float = 2.5,
) -> list[np.ndarray]:
    """L-inf PGD on xyz with a per-point bound ``bounds[i]`` (N_i,) (0 = the point stays).

    Starts uniformly inside the box; ``steps=0`` returns that random start.
    """
    origin = [cloud[:, :3].astype(np.float32) for cloud in clouds]
    box = [b.astype(np.float32)[:, None] for b in bounds]
    delta = [rng.uniform(-1.0, 1.0, size=o.shape).astype(np.float32) * b for o, b in zip(origin, box, strict=True)]
    for _ in range(steps):
        moved = [_with_xyz(c, o + d) for c, o, d in zip(clouds, origin, delta, strict=True)]
        grads = oracle.point_grads(model, moved, targets)
        delta = [
            np.clip(d + step_scale * b / steps * np.sign(g), -b, b)
            for d, b, g in zip(delta, box, grads, strict=True)
        ]
    return [_with_xyz(c, o + d) for c, o, d in zip(clouds, origin, delta, strict=True)]


def _with_xyz(cloud: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    out = cloud.astype(np.float32, copy=True)
    out[:, :3] = xyz
    return out


def perturbation_bounds(
    family: str,
    saliency: list[np.ndarray],
    strength: float,
    rng: np.random.Generator,
    corruption: TargetedCorruptionConfig = DEFAULT_BUDGET,
) -> list[np.ndarray]:
    """Per-point L-inf bounds (N_i,) of the ``noise`` or ``displace`` family at ``strength``."""
    bounds = []
    for weights in saliency:
        if family == "noise":
            bounds.append(strength * corruption.max_sigma * 2.0 * weights)
        elif family == "displace":
            k = int(round(strength * corruption.max_displace_fraction * len(weights)))
            bound = np.zeros(len(weights))
            bound[gumbel_top_k(corruption.sharpness * weights.astype(np.float64), k, rng)] = (
                strength * corruption.displace_sigma
            )
            bounds.append(bound)
        else:
            raise ValueError(f"no perturbation bounds for family {family!r}; choose noise or displace")
    return bounds


def adversarial_corruption(
    model: nn.Module,
    oracle: LossOracle,
    clouds: list[np.ndarray],
    targets: Sequence,
    saliency: list[np.ndarray],
    family: str,
    strength: float,
    rng: np.random.Generator,
    corruption: TargetedCorruptionConfig = DEFAULT_BUDGET,
    config: AdversarialConfig = AdversarialConfig(),
) -> list[np.ndarray]:
    """Corrupt every cloud with ``family`` at ``strength``, choosing within the budget to maximise the loss."""
    if family not in FAMILIES:
        raise ValueError(f"unknown corruption family {family!r}; choose from {FAMILIES}")
    if not clouds:
        return []
    if family == "drop":
        return adversarial_drop(
            model, oracle, clouds, targets, saliency, strength, rng, corruption, config.drop_candidates
        )
    bounds = perturbation_bounds(family, saliency, strength, rng, corruption)
    return saliency_pgd(model, oracle, clouds, targets, bounds, rng, config.pgd_steps, config.step_scale)
