"""A LiDAR sensor on a MuJoCo body: one ``mujoco.mj_multiRay`` call per scan.

A scan casts every ray of a :class:`~robokit.simlidar.patterns.BeamPattern` from the sensor
origin (the body's frame, moved by ``mount_pos``) and turns each hit into a KITTI point
``x, y, z, intensity`` in the sensor frame. The sensor model, per returned ray at range ``r``
with incidence angle ``t`` (between the ray and the surface normal):

* range noise: Gaussian, ``sigma = sqrt(sigma0^2 + (r * div * tan t / 2)^2)``; ``sigma0`` is
  the ranging accuracy (HDL-64E S2 datasheet: < 2 cm), the second term the range spread of a
  beam of divergence ``div`` across a tilted surface (its footprint is ``r * div`` wide).
* intensity: ``rho * |cos t| * exp(-alpha * r)``, clipped to [0, 1]: Lambertian reflection of
  a surface of reflectivity ``rho`` (per geom, :attr:`LidarScanner.reflectivity`) and the
  atmospheric attenuation CARLA's ray-cast LiDAR uses (``exp(-0.004 d)``, its
  ``atmosphere_attenuation_rate`` default).
* dropout, three seeded causes: a uniform rate ``dropout`` (CARLA's ``dropoff_general_rate``);
  weak returns, dropped with probability ``weak_dropout * (1 - I / weak_limit)`` below
  intensity ``weak_limit`` (CARLA's ``dropoff_zero_intensity`` / ``dropoff_intensity_limit``
  rule); and beam-divergence edge loss: where the ranges of two neighbouring azimuth steps of
  one beam differ by more than ``edge_gap`` metres, the far return's footprint is partly
  blocked by the near surface, and it is dropped with probability
  ``min(1, div / step) / 2`` (``step`` = azimuth spacing in radians).
* ego motion (optional): with ``ego_velocity`` given, the sweep is cast in ``motion_sectors``
  azimuth sectors, each from the pose the sensor had when that sector fired (the sweep ends
  at the current pose and lasts ``sweep_period``); points stay in the sensor frame of their
  own firing time, uncompensated, like a raw KITTI scan. This is the one case that makes
  more than one ``mj_multiRay`` call (one per sector).

Geom groups choose what the sensor sees (``geomgroup``, as in ``mjvOption``); the sensor's
own body is excluded with ``exclude_body`` (``mj_multiRay``'s ``bodyexclude``: one body; put
a multi-body robot's geoms in a group and leave that group out). Geoms with ``rgba`` alpha 0
are invisible to MuJoCo's ray casts, so to this sensor too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from robokit.simlidar.patterns import BeamPattern, make_pattern

__all__ = ["LidarConfig", "LidarScanner"]


@dataclass(frozen=True)
class LidarConfig:
    """Sensor settings; defaults are an HDL-64E S2 at 10 Hz (sources in the module doc)."""

    pattern: str = "hdl64e"
    azimuth_steps: int | None = None  # None: the pattern's default (2048 for hdl64e)
    beams: int | None = None  # rows of the solid_state grid
    max_range: float = 120.0  # HDL-64E S2 datasheet
    min_range: float = 0.9
    range_noise_std: float = 0.02  # HDL-64E S2 datasheet: accuracy < 2 cm
    divergence_mrad: float = 3.3  # MAVS hdl64e.cpp beam spot, wide axis
    dropout: float = 0.0  # uniform loss rate (CARLA dropoff_general_rate)
    weak_dropout: float = 0.1  # loss probability of a zero-intensity return
    weak_limit: float = 0.05  # returns at or above this intensity are never weak-dropped
    edge_gap: float = 0.5  # metres: a range jump this large between neighbours is an edge
    attenuation: float = 0.004  # 1/m, CARLA atmosphere_attenuation_rate
    reflectivity: float = 0.5  # default per-geom reflectivity
    sweep_period: float = 0.1  # s (10 Hz)
    motion_sectors: int = 16
    mount_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)  # sensor origin in the body frame
    geomgroup: tuple[int, ...] | None = None  # 6 flags (mjvOption.geomgroup); None: all groups
    exclude_body: bool = True

    def beam_pattern(self) -> BeamPattern:
        return make_pattern(self.pattern, self.azimuth_steps, self.beams)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first setting out of range."""
        rates = {"dropout": self.dropout, "weak_dropout": self.weak_dropout}
        for key, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"lidar config: {key} must lie in [0, 1], got {value}")
        positive = {"max_range": self.max_range, "sweep_period": self.sweep_period,
                    "weak_limit": self.weak_limit, "edge_gap": self.edge_gap}
        for key, value in positive.items():
            if not value > 0:
                raise ValueError(f"lidar config: {key} must be > 0, got {value}")
        if not 0.0 <= self.min_range < self.max_range:
            raise ValueError(f"lidar config: need 0 <= min_range < max_range, got {self.min_range}, {self.max_range}")
        nonnegative = {"range_noise_std": self.range_noise_std, "divergence_mrad": self.divergence_mrad,
                       "attenuation": self.attenuation, "reflectivity": self.reflectivity}
        for key, value in nonnegative.items():
            if not value >= 0:
                raise ValueError(f"lidar config: {key} must be >= 0, got {value}")
        if self.motion_sectors < 1:
            raise ValueError(f"lidar config: motion_sectors must be >= 1, got {self.motion_sectors}")
        if self.geomgroup is not None and len(self.geomgroup) != 6:
            raise ValueError(f"lidar config: geomgroup needs 6 flags, got {len(self.geomgroup)}")


class LidarScanner:
    """A LiDAR mounted on a MuJoCo body.

    Args:
        model: the ``mujoco.MjModel``.
        body: name of the body carrying the sensor.
        config: sensor settings.
        seed: seeds the sensor's own generator (noise and dropout) when ``scan`` gets none.
    Raises:
        ValueError: ``body`` is not in the model, or a setting is out of range (named).
    """

    def __init__(self, model, body: str, config: LidarConfig | None = None, seed: int = 0) -> None:
        import mujoco

        self._mujoco = mujoco
        self.config = config or LidarConfig()
        self.config.check()
        self.pattern = self.config.beam_pattern()
        self.model = model
        self.body_id = _body_id(model, body)
        self.body_name = body
        self.rng = np.random.default_rng(seed)
        self.reflectivity = np.full(model.ngeom, self.config.reflectivity, dtype=np.float64)
        self._local = self.pattern.directions()
        count = self.pattern.num_rays
        self._world = np.empty((count, 3))
        self._dist = np.empty(count)
        self._geom = np.empty(count, dtype=np.int32)
        self._normal = np.empty((count, 3))
        self._world_rotation: np.ndarray | None = None  # rotation self._world was built for (whole sweeps)
        self._gaussian = np.empty(count)
        self._uniform = np.empty(count, dtype=np.float32)
        self._index = np.empty(count, dtype=np.int32)
        self._group = None if self.config.geomgroup is None else np.asarray(self.config.geomgroup, np.uint8)
        self._mount = np.asarray(self.config.mount_pos, dtype=np.float64)
        cfg = self.config
        self._params = np.array([cfg.min_range, cfg.max_range, cfg.range_noise_std, 0.5e-3 * cfg.divergence_mrad,
                                 cfg.attenuation, cfg.dropout, cfg.weak_dropout, cfg.weak_limit, cfg.edge_gap,
                                 self._edge_probability()])

    @property
    def exclude_id(self) -> int:
        return self.body_id if self.config.exclude_body else -1

    def pose(self, data) -> tuple[np.ndarray, np.ndarray]:
        """Sensor origin ``(3,)`` and rotation ``(3, 3)`` (sensor -> world) from ``data``."""
        rotation = data.xmat[self.body_id].reshape(3, 3)
        return data.xpos[self.body_id] + rotation @ self._mount, rotation.copy()

    def cast(self, data, origin: np.ndarray, rotation: np.ndarray, rays: slice = slice(None)) -> None:
        """Cast ``rays`` (a slice of the pattern) from ``origin``; fills the distance/geom/normal buffers.

        The world-frame ray table is rebuilt only when the rotation differs from the one it was
        built for (a sensor that does not turn, like the scenes' ego vehicle, reuses it).
        """
        world = self._world[rays]
        whole = rays == slice(None)
        if not (whole and self._world_rotation is not None and np.array_equal(rotation, self._world_rotation)):
            np.matmul(self._local[rays], rotation.T, out=world)
            self._world_rotation = rotation.copy() if whole else None
        count = world.shape[0]
        self._mujoco.mj_multiRay(
            self.model, data, origin, world.reshape(-1), self._group, 1, self.exclude_id,
            self._geom[rays], self._dist[rays], self._normal[rays].reshape(-1), count, self.config.max_range,
        )

    def scan(self, data, rng: np.random.Generator | None = None, organised: bool = False,
             ego_velocity: tuple[np.ndarray, np.ndarray] | None = None, return_geom_ids: bool = False):
        """One sweep.

        Args:
            data: the ``mujoco.MjData`` (positions must be current: ``mj_forward``/``mj_kinematics``).
            rng: noise and dropout generator (default: the scanner's own, seeded at construction).
            organised: return the ``(B, A, 4)`` grid (beam, azimuth step) with NaN rows for
                rays without a return, instead of the ``(N, 4)`` list.
            ego_velocity: ``(linear (3,), angular (3,))`` world-frame sensor velocity during the
                sweep (m/s, rad/s); enables the motion-distortion model (module doc).
            return_geom_ids: also return the geom id hit by each point (``(N,)`` int32, or
                ``(B, A)`` with -1 for no return).
        Returns:
            ``(N, 4)`` float32 x, y, z, intensity in the sensor frame (azimuth-major order), or
            the organised grid; with ``return_geom_ids`` a tuple ``(points, geom_ids)``.
        """
        rng = self.rng if rng is None else rng
        origin, rotation = self.pose(data)
        if ego_velocity is None:
            self.cast(data, origin, rotation)
        else:
            self._cast_moving(data, origin, rotation, ego_velocity)
        points, index = self._returns(rng)
        if organised:
            return self._organise(index, points, return_geom_ids)
        return (points, self._geom[index]) if return_geom_ids else points

    def _returns(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Points ``(N, 4)`` float32 and their ray indices ``(N,)`` from the cast buffers (module doc).

        The kernel writes the points straight into a new ``(rays, 4)`` array and the result is its
        first ``N`` rows (no copy; the caller owns it). The indices are a view of the scanner's own
        buffer, valid until the next scan (``scan`` only reads them).
        """
        rng.standard_normal(out=self._gaussian)
        rng.random(out=self._uniform, dtype=np.float32)
        points = np.empty((self.pattern.num_rays, 4), dtype=np.float32)
        kept = _returns_kernel(self._local, self._world, self._dist, self._normal, self._geom, self.reflectivity,
                               self._gaussian, self._uniform, self.pattern.num_beams, self._params, points,
                               self._index)
        return points[:kept], self._index[:kept]

    def _edge_probability(self) -> float:
        """Loss probability of a return beside a depth edge: ``min(1, divergence / azimuth step) / 2``."""
        if self.pattern.num_steps < 2:
            return 0.0
        step = np.deg2rad(abs(self.pattern.azimuth_deg[1] - self.pattern.azimuth_deg[0]))
        return min(1.0, 1e-3 * self.config.divergence_mrad / step) / 2.0

    def _cast_moving(self, data, origin, rotation, ego_velocity) -> None:
        """Cast the sweep sector by sector from the poses of their firing times."""
        linear, angular = (np.asarray(v, dtype=np.float64).reshape(3) for v in ego_velocity)
        sectors = min(self.config.motion_sectors, self.pattern.num_steps)
        bounds = np.linspace(0, self.pattern.num_steps, sectors + 1).astype(int)
        beams = self.pattern.num_beams
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            mid = 0.5 * (start + stop) / self.pattern.num_steps
            age = (1.0 - mid) * self.config.sweep_period  # seconds before the sweep's end
            turn = _rotation_from_vector(-angular * age)
            self.cast(data, origin - linear * age, turn @ rotation, slice(start * beams, stop * beams))

    def _organise(self, hit: np.ndarray, points: np.ndarray, return_geom_ids: bool):
        """The ``(B, A, 4)`` grid (NaN where no return) and optionally the ``(B, A)`` geom ids (-1)."""
        steps, beams = self.pattern.num_steps, self.pattern.num_beams
        grid = np.full((steps * beams, 4), np.nan, dtype=np.float32)
        grid[hit] = points
        grid = grid.reshape(steps, beams, 4).transpose(1, 0, 2).copy()
        if not return_geom_ids:
            return grid
        ids = np.full(steps * beams, -1, dtype=np.int32)
        ids[hit] = self._geom[hit]
        return grid, ids.reshape(steps, beams).T.copy()


@njit(cache=True, fastmath=True)
def _returns_kernel(local, world, dist, normal, geom, reflectivity, gaussian, uniform, beams, params,
                    points, index):  # pragma: no cover - compiled
    """One pass over the cast rays: noise, intensity, dropout; writes the kept points, returns their count.

    ``params`` = min_range, max_range, sigma0, half divergence (rad), attenuation, dropout,
    weak_dropout, weak_limit, edge_gap, edge probability.
    """
    min_range, max_range, sigma0, half_div, alpha = params[0], params[1], params[2], params[3], params[4]
    dropout, weak_drop, weak_limit, edge_gap, edge_p = params[5], params[6], params[7], params[8], params[9]
    count = dist.shape[0]
    kept = 0
    for k in range(count):
        r = dist[k]
        if r < min_range or r > max_range:
            continue
        cos_t = abs(normal[k, 0] * world[k, 0] + normal[k, 1] * world[k, 1] + normal[k, 2] * world[k, 2])
        cos_t = min(max(cos_t, 0.05), 1.0)
        intensity = min(reflectivity[geom[k]] * cos_t * np.exp(-alpha * r), 1.0)
        keep = 1.0 - dropout
        if intensity < weak_limit:
            keep *= 1.0 - weak_drop * (1.0 - intensity / weak_limit)
        # beam-divergence edge loss: the same beam one azimuth step away returned from a nearer surface
        before, after = k - beams, k + beams
        if (before >= 0 and 0 < dist[before] < r - edge_gap) or (after < count and 0 < dist[after] < r - edge_gap):
            keep *= 1.0 - edge_p
        if uniform[k] >= keep:  # lost with probability 1 - keep: its noise is never needed
            continue
        spread = half_div * r * np.sqrt(1.0 - cos_t * cos_t) / cos_t  # r * div / 2 * tan(incidence)
        noisy = r + np.sqrt(sigma0 * sigma0 + spread * spread) * gaussian[k]
        if noisy > 0:
            points[kept, 0] = local[k, 0] * noisy
            points[kept, 1] = local[k, 1] * noisy
            points[kept, 2] = local[k, 2] * noisy
            points[kept, 3] = intensity
            index[kept] = k
            kept += 1
    return kept


def _body_id(model, body: str) -> int:
    import mujoco

    body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
    if body_id < 0:
        names = [model.body(i).name for i in range(model.nbody)]
        raise ValueError(f"lidar sensor body {body!r}: no such body in the model (bodies: {names})")
    return int(body_id)


def _rotation_from_vector(vector: np.ndarray) -> np.ndarray:
    """Rodrigues: the rotation by ``|vector|`` radians about ``vector``, ``(3, 3)``."""
    angle = float(np.linalg.norm(vector))
    if angle < 1e-12:
        return np.eye(3)
    axis = vector / angle
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
