"""ModelNet40-C (Sun et al., 2022): the 13 corruption families that need no mesh, severities 1..5.

Parameters per severity (index = severity - 1), N = points in the input cloud, lengths in
unit-sphere units:

=================== ============================================================ ==========================================
corruption          what it does                                                 severity 1 .. 5
=================== ============================================================ ==========================================
gaussian            xyz += N(0, sigma^2), then clip to [-1, 1]                    sigma = 0.01, 0.015, 0.02, 0.025, 0.03
uniform             xyz += U(-c, c)                                              c = 0.01, 0.02, 0.03, 0.04, 0.05
background          add points uniform in the cube [-1, 1]^3                     N//45, N//40, N//35, N//30, N//20 points
impulse             move random points by +-0.1 on each axis                     N//30, N//25, N//20, N//15, N//10 points
upsampling          add copies of random points + U(-0.05, 0.05)                 N//5, N//4, N//3, N//2, N points
cutout              remove the 30 nearest neighbours of k random points          k = 2, 3, 5, 7, 10
density             among the 100 nearest neighbours of k random points,         k = 1, 2, 3, 4, 5
                    remove 75
density_inc         keep k kNN patches in full, subsample the rest: output N//2  k = 1, 2, 3, 4, 5 patches of round(100 N/2048)
rotation            Euler angles +-U(c-2.5, c+2.5) degrees about x, y, z         c = 2.5, 5, 7.5, 10, 15 degrees
shear               xyz @ [[1,0,b],[d,1,e],[f,0,1]], |b|,|d|,|e|,|f| ~ U(c-.05,c+.05) c = 0.05, 0.1, 0.15, 0.2, 0.25
distortion          free-form deformation, 5x5x5 Bernstein lattice on [-1,1]^3,  c = 0.1, 0.2, 0.3, 0.4, 0.5
                    control displacements U(-c, c) x box length (2)
distortion_rbf      RBF warp (multiquadric sqrt(r^2 + 0.5^2) + affine) moving    d = 0.025, 0.05, 0.075, 0.1, 0.125
                    the 5x5x5 grid on [-1,1]^3 by distance d in random directions
distortion_rbf_inv  the same with the inverse multiquadric 1/sqrt(r^2 + 0.5^2)   d = 0.025 .. 0.125
=================== ============================================================ ==========================================

Signs are drawn uniformly for rotation and shear. After uniform, background, impulse,
upsampling, rotation, shear and the distortions, the cloud is re-normalised. One deliberate
difference from the published generator: robokit re-normalises to the unit sphere (centroid,
max norm 1), the convention of the clean data, where ModelNet40-C scales the bounding box to
[-1, 1]; so the corruption is the only change. ``density_inc`` was generated from 2048-point
clouds down to 1024 in the original; robokit treats its N-point input the same way (output
N//2). The two mesh-based families (occlusion, lidar) need the ModelNet40 meshes and are absent.
"""

from __future__ import annotations

import numpy as np

from robokit.pointcloud.corruptions._common import (
    extra_channels_for,
    level_value,
    remove_nearest_clusters,
)
from robokit.pointcloud.points import nearest_indices, normalize_unit_sphere, rotation_matrix_xyz

LEVELS = (1, 2, 3, 4, 5)
GAUSSIAN_SIGMA = (0.01, 0.015, 0.02, 0.025, 0.03)
UNIFORM_HALF_WIDTH = (0.01, 0.02, 0.03, 0.04, 0.05)
BACKGROUND_DIVISOR = (45, 40, 35, 30, 20)
IMPULSE_DIVISOR = (30, 25, 20, 15, 10)
IMPULSE_STEP = 0.1
UPSAMPLING_DIVISOR = (5, 4, 3, 2, 1)
UPSAMPLING_HALF_WIDTH = 0.05
CUTOUT_REGIONS = (2, 3, 5, 7, 10)
CUTOUT_POINTS = 30
DENSITY_REGIONS = (1, 2, 3, 4, 5)
DENSITY_PATCH = 100
DENSITY_REMOVED_FRACTION = 0.75
ROTATION_CENTRE_DEG = (2.5, 5.0, 7.5, 10.0, 15.0)
SHEAR_CENTRE = (0.05, 0.1, 0.15, 0.2, 0.25)
FFD_HALF_WIDTH = (0.1, 0.2, 0.3, 0.4, 0.5)
FFD_LATTICE = 5
RBF_DISTANCE = (0.025, 0.05, 0.075, 0.1, 0.125)
RBF_GRID = 5
RBF_RADIUS = 0.5


def _param(table, severity, name):
    return level_value(table, severity, LEVELS[0], name)


def _with_xyz(points: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :3] = xyz
    return out


def gaussian(points, severity, rng):
    """Gaussian noise on xyz, clipped to the [-1, 1] cube."""
    sigma = _param(GAUSSIAN_SIGMA, severity, "gaussian")
    noisy = points[:, :3] + sigma * rng.standard_normal(size=(len(points), 3))
    return _with_xyz(points, np.clip(noisy, -1.0, 1.0))


def uniform(points, severity, rng):
    """Uniform noise U(-c, c) on xyz, then re-normalised."""
    half = _param(UNIFORM_HALF_WIDTH, severity, "uniform")
    noisy = points[:, :3] + rng.uniform(-half, half, size=(len(points), 3))
    return normalize_unit_sphere(_with_xyz(points, noisy))


def background(points, severity, rng):
    """Add N // divisor points uniform in the [-1, 1] cube, then re-normalise."""
    count = len(points) // _param(BACKGROUND_DIVISOR, severity, "background")
    added = extra_channels_for(rng.uniform(-1.0, 1.0, size=(count, 3)), points)
    return normalize_unit_sphere(np.vstack([points, added]))


def impulse(points, severity, rng):
    """Move N // divisor random points by +-0.1 along each axis, then re-normalise."""
    count = len(points) // _param(IMPULSE_DIVISOR, severity, "impulse")
    out = np.array(points, dtype=np.float32, copy=True)
    chosen = rng.choice(len(out), size=count, replace=False)
    out[chosen, :3] += IMPULSE_STEP * rng.choice([-1.0, 1.0], size=(count, 3)).astype(np.float32)
    return normalize_unit_sphere(out)


def upsampling(points, severity, rng):
    """Add N // divisor jittered copies of random points, then re-normalise."""
    count = len(points) // _param(UPSAMPLING_DIVISOR, severity, "upsampling")
    chosen = rng.choice(len(points), size=count, replace=False)
    copies = np.array(points[chosen], dtype=np.float32, copy=True)
    copies[:, :3] += rng.uniform(-UPSAMPLING_HALF_WIDTH, UPSAMPLING_HALF_WIDTH, size=(count, 3))
    return normalize_unit_sphere(np.vstack([points, copies]))


def cutout(points, severity, rng):
    """Remove the 30 nearest neighbours of k random points (one after another)."""
    regions = _param(CUTOUT_REGIONS, severity, "cutout")
    return remove_nearest_clusters(points, [CUTOUT_POINTS] * regions, rng)


def density(points, severity, rng):
    """Thin k kNN patches of 100 points to a quarter of their density."""
    regions = _param(DENSITY_REGIONS, severity, "density")
    return remove_nearest_clusters(
        points, [DENSITY_PATCH] * regions, rng, keep_fraction=1.0 - DENSITY_REMOVED_FRACTION
    )


def density_inc(points, severity, rng):
    """Keep k kNN patches at full density and subsample the rest; N//2 points out."""
    regions = _param(DENSITY_REGIONS, severity, "density_inc")
    target = len(points) // 2
    patch = max(1, int(round(DENSITY_PATCH * len(points) / 2048)))
    dense = np.zeros(len(points), dtype=bool)
    for _ in range(regions):
        candidates = np.flatnonzero(~dense)
        if len(candidates) == 0:
            break
        centre = points[rng.choice(candidates), :3]
        hood = candidates[nearest_indices(points[candidates, :3], centre, patch)]
        dense[hood] = True
    kept = np.flatnonzero(dense)[:target]
    rest = np.flatnonzero(~dense)
    filler = rng.choice(rest, size=min(target - len(kept), len(rest)), replace=False)
    return np.asarray(points[np.concatenate([kept, filler])], dtype=np.float32)


def rotation(points, severity, rng):
    """Rotate by three Euler angles of magnitude U(c - 2.5, c + 2.5) degrees, random signs."""
    centre = _param(ROTATION_CENTRE_DEG, severity, "rotation")
    ax, ay, az = np.deg2rad(
        rng.uniform(centre - 2.5, centre + 2.5, size=3) * rng.choice([-1, 1], size=3)
    )
    # the published generator applies x, then y, then z to row vectors: p @ Rx @ Ry @ Rz
    matrix = (
        rotation_matrix_xyz((ax, 0.0, 0.0))
        @ rotation_matrix_xyz((0.0, ay, 0.0))
        @ rotation_matrix_xyz((0.0, 0.0, az))
    )
    return normalize_unit_sphere(_with_xyz(points, points[:, :3] @ matrix))


def shear(points, severity, rng):
    """Shear xyz by the matrix [[1,0,b],[d,1,e],[f,0,1]], entries of magnitude U(c +- 0.05)."""
    centre = _param(SHEAR_CENTRE, severity, "shear")
    b, d, e, f = rng.uniform(centre - 0.05, centre + 0.05, size=4) * rng.choice([-1, 1], size=4)
    matrix = np.array([[1.0, 0.0, b], [d, 1.0, e], [f, 0.0, 1.0]])
    return normalize_unit_sphere(_with_xyz(points, points[:, :3] @ matrix))


def _bernstein(u: np.ndarray, degree: int) -> np.ndarray:
    """Bernstein basis values (N, degree + 1) at u in [0, 1]."""
    from scipy.special import comb

    k = np.arange(degree + 1)
    return comb(degree, k) * u[:, None] ** k * (1.0 - u[:, None]) ** (degree - k)


def ffd_warp(xyz: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """Free-form deformation of (N, 3) points in the box [-1, 1]^3.

    Args:
        displacement: (L, L, L, 3) control-point displacements (same units as xyz).
    Returns:
        (N, 3): ``xyz + sum_ijk B_i(u) B_j(v) B_k(w) displacement[i, j, k]``, u = (x + 1) / 2.
    """
    degree = displacement.shape[0] - 1
    unit = np.clip((xyz + 1.0) / 2.0, 0.0, 1.0)
    bu, bv, bw = (_bernstein(unit[:, axis], degree) for axis in range(3))
    return xyz + np.einsum("ni,nj,nk,ijkc->nc", bu, bv, bw, displacement, optimize=True)


def distortion(points, severity, rng):
    """Free-form deformation with random control displacements, then re-normalised."""
    half = _param(FFD_HALF_WIDTH, severity, "distortion")
    box_length = 2.0
    displacement = rng.uniform(-half, half, size=(FFD_LATTICE,) * 3 + (3,)) * box_length
    return normalize_unit_sphere(
        _with_xyz(points, ffd_warp(points[:, :3].astype(np.float64), displacement))
    )


def rbf_warp(xyz: np.ndarray, source: np.ndarray, target: np.ndarray, kernel) -> np.ndarray:
    """Radial-basis warp mapping control points ``source`` (K, 3) exactly onto ``target`` (K, 3).

    The map is ``sum_k w_k kernel(|x - s_k|) + A [1, x]``; weights and the affine part solve the
    usual augmented system with the side condition that the weights are orthogonal to affine maps.
    """
    count = len(source)
    kernel_matrix = kernel(np.linalg.norm(source[:, None] - source[None], axis=-1))
    affine = np.hstack([np.ones((count, 1)), source])
    system = np.zeros((count + 4, count + 4))
    system[:count, :count], system[:count, count:], system[count:, :count] = (
        kernel_matrix,
        affine,
        affine.T,
    )
    rhs = np.vstack([target, np.zeros((4, 3))])
    coeffs = np.linalg.solve(system, rhs)
    basis = kernel(np.linalg.norm(xyz[:, None] - source[None], axis=-1))
    return basis @ coeffs[:count] + np.hstack([np.ones((len(xyz), 1)), xyz]) @ coeffs[count:]


def _multiquadric(r):
    return np.sqrt(r**2 + RBF_RADIUS**2)


def _inverse_multiquadric(r):
    return 1.0 / np.sqrt(r**2 + RBF_RADIUS**2)


def _rbf_distortion(points, severity, rng, kernel, name):
    distance = _param(RBF_DISTANCE, severity, name)
    axis = np.linspace(-1.0, 1.0, RBF_GRID)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    alpha = rng.uniform(-np.pi, np.pi, size=len(grid))
    gamma = rng.uniform(-np.pi, np.pi, size=len(grid))
    step = distance * np.stack(
        [np.cos(alpha) * np.sin(gamma), np.sin(alpha) * np.sin(gamma), np.cos(gamma)], axis=1
    )
    warped = rbf_warp(points[:, :3].astype(np.float64), grid, grid + step, kernel)
    return normalize_unit_sphere(_with_xyz(points, warped))


def distortion_rbf(points, severity, rng):
    """RBF (multiquadric) warp of a 5x5x5 control grid moved by distance d, re-normalised."""
    return _rbf_distortion(points, severity, rng, _multiquadric, "distortion_rbf")


def distortion_rbf_inv(points, severity, rng):
    """RBF (inverse multiquadric) warp of a 5x5x5 control grid moved by distance d, re-normalised."""
    return _rbf_distortion(points, severity, rng, _inverse_multiquadric, "distortion_rbf_inv")


CORRUPTIONS = {
    "gaussian": gaussian,
    "uniform": uniform,
    "background": background,
    "impulse": impulse,
    "upsampling": upsampling,
    "cutout": cutout,
    "density": density,
    "density_inc": density_inc,
    "rotation": rotation,
    "shear": shear,
    "distortion": distortion,
    "distortion_rbf": distortion_rbf,
    "distortion_rbf_inv": distortion_rbf_inv,
}
