"""Point-cloud observations of MuJoCo scenes: points sampled on the surfaces of named geoms/sites.

:class:`SurfaceSampler` draws, at every step, points uniformly (by area) on the surface of each
chosen geom or site (capsule, cylinder, sphere, box), in world coordinates, from the current
pose in ``mjData``. Each point is ``(x, y, z, label)`` float32 (xyz first, the robokit point
convention), ``label`` being the part's label (for instance 1 for a goal, 0 for the robot,
the way a segmented sensor tags its returns). A dropout probability removes points at random,
so the number of points varies from step to step, as a real sensor's does.

:class:`ArmReachCloudEnv` (``robokit/ArmReachCloud-v0``) is ArmReach observed through such a
cloud: the arm's links and base, and the goal disc, plus the joint state as proprio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from robokit.envs.arm_reach import ArmReachEnv

#: MuJoCo geom type codes (mjtGeom) this sampler handles
SPHERE, CAPSULE, CYLINDER, BOX = 2, 3, 5, 6


@dataclass(frozen=True)
class SurfacePart:
    """One sampled part: a geom or site by name, its number of points before dropout, its label."""

    name: str
    points: int
    label: float = 0.0
    kind: str = "geom"  # "geom" or "site"


def _unit_directions(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def surface_points(geom_type: int, size: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points (n, 3) uniform by area on a primitive's surface, in its local frame (axis z).

    ``size`` is MuJoCo's: sphere (r,), capsule/cylinder (r, half-length), box (half-extents).
    """
    if geom_type == SPHERE:
        return size[0] * _unit_directions(n, rng)
    if geom_type == CAPSULE:
        radius, half = size[0], size[1]
        side = 2 * np.pi * radius * 2 * half
        on_side = rng.random(n) < side / (side + 4 * np.pi * radius**2)
        angle, z = rng.uniform(-np.pi, np.pi, n), rng.uniform(-half, half, n)
        ends = _unit_directions(n, rng) * radius
        ends[:, 2] += np.where(ends[:, 2] >= 0, half, -half)  # hemisphere caps on each end
        ring = np.stack([radius * np.cos(angle), radius * np.sin(angle), z], axis=1)
        return np.where(on_side[:, None], ring, ends)
    if geom_type == CYLINDER:
        radius, half = size[0], size[1]
        side = 2 * np.pi * radius * 2 * half
        on_side = rng.random(n) < side / (side + 2 * np.pi * radius**2)
        angle = rng.uniform(-np.pi, np.pi, n)
        r = np.where(on_side, radius, radius * np.sqrt(rng.random(n)))
        z = np.where(on_side, rng.uniform(-half, half, n), np.where(rng.random(n) < 0.5, half, -half))
        return np.stack([r * np.cos(angle), r * np.sin(angle), z], axis=1)
    if geom_type == BOX:
        half = np.asarray(size[:3], np.float64)
        areas = np.array([half[1] * half[2], half[0] * half[2], half[0] * half[1]])
        axis = rng.choice(3, size=n, p=areas / areas.sum())
        points = rng.uniform(-1.0, 1.0, (n, 3))
        points[np.arange(n), axis] = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        return points * half
    raise ValueError(f"surface_points: geom type {geom_type} is not one of sphere, capsule, cylinder, box")


class SurfaceSampler:
    """Sample labelled surface points of named parts of a MuJoCo model.

    Args:
        model: ``mujoco.MjModel``.
        parts: the geoms/sites to sample.
        dropout: probability of removing each point (0 keeps a fixed number of points).

    Raises:
        ValueError: naming a part that is not in the model, or a dropout outside [0, 1).
    """

    def __init__(self, model: Any, parts: tuple[SurfacePart, ...], dropout: float = 0.0) -> None:
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"SurfaceSampler: dropout must be in [0, 1), got {dropout}")
        self.parts, self.dropout = tuple(parts), float(dropout)
        self._ids = []
        for part in self.parts:
            try:
                index = (model.geom if part.kind == "geom" else model.site)(part.name).id
            except KeyError as err:
                raise ValueError(f"SurfaceSampler: the model has no {part.kind} named '{part.name}'") from err
            kind = model.geom_type[index] if part.kind == "geom" else model.site_type[index]
            size = model.geom_size[index] if part.kind == "geom" else model.site_size[index]
            self._ids.append((index, int(kind), np.array(size, np.float64)))

    @property
    def max_points(self) -> int:
        return sum(part.points for part in self.parts)

    def sample(self, data: Any, rng: np.random.Generator) -> np.ndarray:
        """Points ``(N, 4)`` float32 ``(x, y, z, label)`` in world coordinates; N <= ``max_points``."""
        clouds = []
        for part, (index, kind, size) in zip(self.parts, self._ids, strict=True):
            local = surface_points(kind, size, part.points, rng)
            pos = data.geom_xpos[index] if part.kind == "geom" else data.site_xpos[index]
            rot = (data.geom_xmat[index] if part.kind == "geom" else data.site_xmat[index]).reshape(3, 3)
            world = local @ rot.T + pos
            clouds.append(np.concatenate([world, np.full((part.points, 1), part.label)], axis=1))
        cloud = np.concatenate(clouds).astype(np.float32)
        if self.dropout > 0:
            cloud = cloud[rng.random(len(cloud)) >= self.dropout]
        return cloud


#: the parts of the ArmReach scene in its cloud: links and base (label 0) and the goal disc (label 1)
ARM_REACH_PARTS = (SurfacePart("link0", 48), SurfacePart("link1", 48), SurfacePart("base", 8),
                   SurfacePart("goal", 64, label=1.0, kind="site"))
#: the same parts with 72 points instead of 168 (v1): a PointNet update reads fewer than half the points
ARM_REACH_PARTS_LIGHT = (SurfacePart("link0", 24), SurfacePart("link1", 24), SurfacePart("base", 8),
                         SurfacePart("goal", 16, label=1.0, kind="site"))
ARM_REACH_CLOUDS = {"full": ARM_REACH_PARTS, "light": ARM_REACH_PARTS_LIGHT}


def point_cloud_space(channels: int) -> gym.spaces.Sequence:
    """A gymnasium space for ``(N, channels)`` float32 clouds of any N (a stacked Sequence of points)."""
    point = gym.spaces.Box(-np.inf, np.inf, (channels,), np.float32)
    return gym.spaces.Sequence(point, stack=True)


class ArmReachCloudEnv(ArmReachEnv):
    """ArmReach observed as a point cloud: ``{"points": (N, 4) float32, "proprio": (6,) float32}``.

    ``points``: (x, y, z, label) on the surfaces of the two links and the base (label 0) and of
    the goal disc (label 1), 168 (or 72) before dropout, each dropped with probability ``dropout`` (0.1),
    so N varies per step. ``proprio``: cos q (2), sin q (2), joint velocities (2). The goal and
    the fingertip appear only in the cloud. Reward, termination and actions as ArmReach
    (dense reward by default here: minus the fingertip-goal distance).

    ``cloud``: ``"full"`` (168 points, :data:`ARM_REACH_PARTS`) or ``"light"`` (72,
    :data:`ARM_REACH_PARTS_LIGHT`, v1).
    """

    def __init__(self, dropout: float = 0.1, reward: str = "dense", cloud: str = "full", **kwargs: Any) -> None:
        super().__init__(reward=reward, **kwargs)
        if cloud not in ARM_REACH_CLOUDS:
            raise ValueError(f"ArmReachCloud: cloud must be one of {sorted(ARM_REACH_CLOUDS)}, got {cloud!r}")
        self.sampler = SurfaceSampler(self.model, ARM_REACH_CLOUDS[cloud], dropout)
        self.observation_space = gym.spaces.Dict({
            "points": point_cloud_space(4),
            "proprio": gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)})

    def _observation(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        qpos, qvel = self.data.qpos[:2], self.data.qvel[:2]
        proprio = np.concatenate([np.cos(qpos), np.sin(qpos), qvel]).astype(np.float32)
        return {"points": self.sampler.sample(self.data, self.np_random), "proprio": proprio}
