"""robokit/LidarNav-v0: a wheeled robot reaches a goal among obstacles, seeing only its LiDAR.

The robot (a unicycle: forward speed and turn rate) drives in a walled 10 x 10 m arena with six
obstacles. It carries a 16-beam LiDAR (VLP-16 table, 90 azimuth steps, 8 m range) and knows
its own body-frame velocity; nothing else. The goal is a retro-reflective post
(reflectivity 1.0 against 0.3 for walls and obstacles), so the policy finds it by the
intensity channel of the cloud. The floor is in a geom group the sensor leaves out (ground
removal done by the simulator). Scene: ``envs/lidar_nav/lidar_nav.xml``; card:
``envs/lidar_nav/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robokit.envs.rendering import TopCameraRendering

MJCF_PATH = Path(__file__).resolve().parents[2] / "envs" / "lidar_nav" / "lidar_nav.xml"
ARENA_HALF = 4.2  # robot, goal and obstacles are placed in [-4.2, 4.2]^2 (walls at +-5)
NUM_OBSTACLES = 6
REFLECTIVITY_GOAL, REFLECTIVITY_OTHER = 1.0, 0.3
#: bounds of the proprioception: speeds (m/s), yaw rate (rad/s), previous action
PROPRIO_BOUND = np.array([5.0, 5.0, 10.0, 1.0, 1.0], dtype=np.float32)


def corrupt_scan(points: np.ndarray, name: str, severity: int, rng: np.random.Generator,
                 elevations_deg: np.ndarray) -> np.ndarray:
    """One scan (N, 4), sensor frame, under corruption ``name`` at ``severity`` (1..5) -> (M, 4).

    ``beam_missing`` drops ``round(f * B)`` of this scanner's ``B`` rings (``elevations_deg``; kitti-c's
    fractions f = 0.1..0.5; rings by nearest elevation, the sensor at the origin) instead of kitti-c's
    64 HDL-64E rings; ``fog`` is fog / rain-like scattering (:mod:`robokit.pointcloud.corruptions.weather`);
    every other name is kitti-c's own (:mod:`robokit.pointcloud.corruptions.kitti_c`).
    """
    from robokit.pointcloud.corruptions import estimate_rings, kitti_c, weather

    table = {**kitti_c.CORRUPTIONS, **weather.CORRUPTIONS}
    if name not in table:
        raise ValueError(f"LidarNav: corruption must be one of {sorted(table)}, got {name!r}")
    if severity not in kitti_c.LEVELS:
        raise ValueError(f"LidarNav: corruption {name!r}: severity {severity} not in {kitti_c.LEVELS}")
    if name == "beam_missing":
        elevations = np.asarray(elevations_deg, dtype=np.float64)
        rings = estimate_rings(points, elevations, (0.0, 0.0))
        lost = rng.choice(len(elevations), int(round(kitti_c.BEAM_FRACTION[severity - 1] * len(elevations))),
                          replace=False)
        return np.asarray(points, dtype=np.float32)[~np.isin(rings, lost)]
    return np.asarray(table[name](points, severity, rng), dtype=np.float32)


def range_bins(points: np.ndarray, bins: int) -> np.ndarray:
    """(N, >=2) sensor-frame points -> (N,) int64 azimuth bin of each: bin ``b`` covers azimuths
    ``[-180 + 360 b / bins, -180 + 360 (b + 1) / bins)`` degrees (x forward, y left: bin
    ``bins // 2`` starts straight ahead)."""
    azimuth = np.arctan2(points[:, 1], points[:, 0])
    return np.clip(((azimuth + np.pi) / (2 * np.pi) * bins).astype(np.int64), 0, bins - 1)


def range_scan(points: np.ndarray, bins: int, max_range: float) -> np.ndarray:
    """A 1-D range scan from a cloud: (N, 4) x, y, z, intensity -> (2 * bins,) float32 in [0, 1].

    The first ``bins`` numbers: per azimuth bin (:func:`range_bins`), the nearest horizontal range
    over every beam and return, divided by ``max_range`` (1 where the bin has no return); the last
    ``bins``: the brightest intensity in the bin (0 where none). The planar laser scan of mapless
    navigation policies (Tai et al. 2017; Pfeiffer et al. 2018) with an intensity channel, in which
    the retro-reflective goal post is the only bright bin.
    """
    scan = np.concatenate([np.ones(bins, np.float32), np.zeros(bins, np.float32)])
    if len(points):
        index = range_bins(points, bins)
        horizontal = np.minimum(np.hypot(points[:, 0], points[:, 1]) / max_range, 1.0).astype(np.float32)
        np.minimum.at(scan[:bins], index, horizontal)
        np.maximum.at(scan[bins:], index, np.clip(points[:, 3], 0.0, 1.0).astype(np.float32))
    return scan


class LidarNavEnv(TopCameraRendering, gym.Env):
    """Observation: ``{"points": (N_t, 4) float32 x, y, z, intensity (sensor frame, m),
    "proprio": (5,) float32 forward and lateral speed (m/s), yaw rate (rad/s), previous action (2)}``.
    Action (2,): forward speed (1 m/s at 1) and turn rate (2 rad/s at 1), in [-1, 1].

    ``num_points=None`` (default): ``points`` holds every return of the scan (``N_t`` varies,
    a ``gymnasium.spaces.Sequence`` of ``(4,)`` points, stored ragged by robokit's replay); a
    scan without any return gives one zero point. ``num_points=P``: a fixed budget of ``P``
    points, a ``Box (P, 4)`` (the cost of a PointNet update grows with the points it reads):
    ``sampling="random"`` draws them from all returns (with replacement when fewer);
    ``sampling="voxel"`` first keeps one return per occupied ``voxel_size`` cube (the first in
    firing order), so a small object such as the goal post keeps its share of a small budget,
    then draws ``P`` of those (with replacement when fewer).

    ``corruption=NAME, severity=S`` (for robustness evaluation): every scan is corrupted before
    the sampling by :func:`corrupt_scan` (a kitti-c corruption of
    :mod:`robokit.pointcloud.corruptions`, ``beam_missing`` on this scanner's 16 rings, or ``fog``), with a
    generator drawn from the env's at ``reset``.

    ``observation="state"`` (``robokit/LidarNavState-v0``, the privileged reference that tells
    a task that SAC cannot learn from one whose LiDAR encoder is the obstacle): no scan; a
    ``Box (23,)`` of the goal's and the six obstacles' centres in the robot frame (2 + 12, m),
    the robot's position in the arena (2, m), cos and sin of its heading (2) and the proprio (5).

    ``observation="range"`` (``robokit/LidarNavRange-v0``): the cloud becomes a 1-D range scan,
    ``{"scan": (2 * bins,) float32 in [0, 1], "proprio": (5,)}`` (:func:`range_scan`: per azimuth
    bin the nearest horizontal range over all beams / ``max_range`` and the brightest intensity);
    the raw cloud of the step (after any corruption) stays readable as ``last_points``.
    ``goal_vector=True`` adds ``"goal": (3,)`` (:meth:`_goal`, the relative goal in polar form).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, num_points: int | None = None, azimuth_steps: int = 90, max_range: float = 8.0,
                 frame_skip: int = 5, success_radius: float = 0.5, render_mode: str | None = None,
                 width: int = 240, height: int = 240, sampling: str = "random", voxel_size: float = 0.5,
                 corruption: str | None = None, severity: int = 1, observation: str = "lidar",
                 bins: int = 90, goal_vector: bool = False) -> None:
        import mujoco

        from robokit.simlidar.scanner import LidarConfig, LidarScanner

        if sampling not in ("random", "voxel"):
            raise ValueError(f"LidarNav: sampling must be 'random' or 'voxel', got {sampling!r}")
        if observation not in ("lidar", "state", "range"):
            raise ValueError(f"LidarNav: observation must be 'lidar', 'state' or 'range', got {observation!r}")
        if not (isinstance(bins, int | np.integer) and bins > 0):
            raise ValueError(f"LidarNav: bins must be a positive integer, got {bins!r}")
        if goal_vector and observation == "state":
            raise ValueError("LidarNav: goal_vector adds a key to the dict observations ('lidar', 'range'), not 'state'")
        self.observation, self.bins, self.goal_vector, self.max_range = observation, int(bins), goal_vector, max_range
        self.last_points = np.zeros((0, 4), np.float32)
        if not voxel_size > 0:
            raise ValueError(f"LidarNav: voxel_size must be > 0, got {voxel_size}")
        if corruption is not None:
            corrupt_scan(np.ones((1, 4), np.float32), corruption, severity, np.random.default_rng(0), np.zeros(1))
        self._mujoco = mujoco
        self.sampling, self.voxel_size = sampling, float(voxel_size)
        self.corruption, self.severity, self._corruption_rng = corruption, int(severity), None
        self.model = mujoco.MjModel.from_xml_path(str(MJCF_PATH))
        self.data = mujoco.MjData(self.model)
        self.num_points, self.frame_skip, self.success_radius = num_points, frame_skip, success_radius
        self.render_mode, self._size, self._renderer = render_mode, (height, width), None
        config = LidarConfig(pattern="vlp16", azimuth_steps=azimuth_steps, max_range=max_range, min_range=0.1,
                             mount_pos=(0.0, 0.0, 0.2), geomgroup=(1, 1, 1, 0, 1, 1))
        self.scanner = LidarScanner(self.model, "robot", config)
        self.scanner.reflectivity[:] = REFLECTIVITY_OTHER
        self.scanner.reflectivity[self.model.geom("goal").id] = REFLECTIVITY_GOAL
        self._robot_geoms = np.flatnonzero(self.model.geom_bodyid == self.model.body("robot").id)
        self._goal_mocap = self.model.body("goal").mocapid[0]
        self._obstacle_mocaps = [self.model.body(f"obstacle{i}").mocapid[0] for i in range(NUM_OBSTACLES)]
        self._last_action = np.zeros(2)
        self._distance = 0.0
        low = np.array([-max_range - 1, -max_range - 1, -max_range - 1, 0.0], np.float32)
        high = -low + np.array([0, 0, 0, 1], np.float32)
        if num_points is None:
            points = gym.spaces.Sequence(gym.spaces.Box(low, high, dtype=np.float32), stack=True)
        else:
            points = gym.spaces.Box(np.tile(low, (num_points, 1)), np.tile(high, (num_points, 1)), dtype=np.float32)
        self._bounds = (low, high)
        self.observation_space = gym.spaces.Dict({
            "points": points,
            "proprio": gym.spaces.Box(-PROPRIO_BOUND, PROPRIO_BOUND, dtype=np.float32),
        })
        if observation == "state":
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2 * (NUM_OBSTACLES + 1) + 4 + 5,), np.float32)
        elif observation == "range":
            self.observation_space = gym.spaces.Dict({
                "scan": gym.spaces.Box(0.0, 1.0, (2 * self.bins,), np.float32),
                "proprio": self.observation_space["proprio"]})
        if goal_vector:
            self.observation_space["goal"] = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    # ------------------------------------------------------------------ layout
    def _free_spot(self, taken: list[np.ndarray], clearance: float) -> np.ndarray:
        for _ in range(200):
            spot = self.np_random.uniform(-ARENA_HALF, ARENA_HALF, 2)
            if all(np.linalg.norm(spot - other) >= clearance for other in taken):
                return spot
        return spot  # crowded: accept the last draw (never reached with six obstacles)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        mujoco, rng = self._mujoco, self.np_random
        mujoco.mj_resetData(self.model, self.data)
        robot = rng.uniform(-ARENA_HALF, ARENA_HALF, 2)
        goal = self._free_spot([robot], 3.0)
        taken = [robot, goal]
        for mocap in self._obstacle_mocaps:
            spot = self._free_spot(taken, 1.2)
            taken.append(spot)
            self.data.mocap_pos[mocap, :2] = spot
            half_yaw = rng.uniform(0, np.pi)
            self.data.mocap_quat[mocap] = [np.cos(half_yaw), 0.0, 0.0, np.sin(half_yaw)]
        self.data.mocap_pos[self._goal_mocap, :2] = goal
        self.data.qpos[:2] = robot
        self.data.qpos[2] = rng.uniform(-np.pi, np.pi)
        mujoco.mj_forward(self.model, self.data)
        self.scanner.rng = np.random.default_rng(rng.integers(2**63))
        if self.corruption is not None:  # drawn only then: clean episodes stay as they were
            self._corruption_rng = np.random.default_rng(rng.integers(2**63))
        self._last_action = np.zeros(2)
        self._distance = self._goal_distance()
        return self._observation(), self._info(False, 0)

    # ------------------------------------------------------------------ dynamics
    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            raise ValueError(f"LidarNav: action must be 2 finite numbers, got {action!r}")
        action = np.clip(action, -1.0, 1.0)
        yaw = self.data.qpos[2]
        self.data.ctrl[:] = [action[0] * np.cos(yaw), action[0] * np.sin(yaw), 2.0 * action[1]]
        self._mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        self._last_action = action
        distance = self._goal_distance()
        collisions = self._collisions()
        success = distance < self.success_radius
        reward = (self._distance - distance) - 0.01 - 0.1 * (collisions > 0) + 10.0 * success
        self._distance = distance
        return self._observation(), float(reward), bool(success), False, self._info(success, collisions)

    def _goal_distance(self) -> float:
        return float(np.linalg.norm(self.data.mocap_pos[self._goal_mocap, :2] - self.data.qpos[:2]))

    def _collisions(self) -> int:
        contacts = self.data.contact[: self.data.ncon]
        robot = np.isin(contacts.geom1, self._robot_geoms) | np.isin(contacts.geom2, self._robot_geoms)
        return int(robot.sum())

    def _info(self, success: bool, collisions: int) -> dict[str, Any]:
        return {"success": bool(success), "distance": self._distance, "collisions": collisions}

    # ------------------------------------------------------------------ observation
    def _proprio(self) -> np.ndarray:
        """(5,) forward and lateral speed (m/s), yaw rate (rad/s), previous action, clipped to its bounds."""
        yaw = self.data.qpos[2]
        vx, vy, wz = self.data.qvel[:3]
        forward, lateral = np.cos(yaw) * vx + np.sin(yaw) * vy, -np.sin(yaw) * vx + np.cos(yaw) * vy
        return np.clip(np.array([forward, lateral, wz, *self._last_action], dtype=np.float32),
                       -PROPRIO_BOUND, PROPRIO_BOUND)

    def _state(self) -> np.ndarray:
        """(23,) float32 privileged state (``observation="state"``; see the class docstring)."""
        yaw = self.data.qpos[2]
        to_body = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
        centres = self.data.mocap_pos[[self._goal_mocap, *self._obstacle_mocaps], :2] - self.data.qpos[:2]
        return np.concatenate([(centres @ to_body.T).ravel(), self.data.qpos[:2], [np.cos(yaw), np.sin(yaw)],
                               self._proprio()]).astype(np.float32)

    def _goal(self) -> np.ndarray:
        """(3,) float32 the goal's distance (divided by max_range, clipped to 1) and the cos and
        sin of its bearing in the robot frame: the relative goal in polar form (Tai et al. 2017)."""
        offset = self.data.mocap_pos[self._goal_mocap, :2] - self.data.qpos[:2]
        bearing = np.arctan2(offset[1], offset[0]) - self.data.qpos[2]
        distance = min(float(np.linalg.norm(offset)) / self.max_range, 1.0)
        return np.array([distance, np.cos(bearing), np.sin(bearing)], np.float32)

    def _observation(self) -> dict[str, np.ndarray] | np.ndarray:
        if self.observation == "state":
            return self._state()
        points = self.scanner.scan(self.data)
        if self.corruption is not None and len(points):
            points = corrupt_scan(points, self.corruption, self.severity, self._corruption_rng,
                                  self.scanner.pattern.elevation_deg)
        self.last_points = points
        extra = {"goal": self._goal()} if self.goal_vector else {}
        if self.observation == "range":
            return {"scan": range_scan(points, self.bins, self.max_range), "proprio": self._proprio(), **extra}
        if len(points) == 0:
            points = np.zeros((1 if self.num_points is None else self.num_points, 4), dtype=np.float32)
        elif self.num_points is not None:
            points = self._subsample(points)
        points = np.clip(points, *self._bounds)
        return {"points": points.astype(np.float32), "proprio": self._proprio(), **extra}

    def _subsample(self, points: np.ndarray) -> np.ndarray:
        """(N, 4) returns -> (num_points, 4), in firing order (see the class docstring)."""
        if self.sampling == "voxel":
            cells = np.floor(points[:, :3] / self.voxel_size).astype(np.int64)
            points = points[np.sort(np.unique(cells, axis=0, return_index=True)[1])]
        pick = self.np_random.choice(len(points), self.num_points, replace=len(points) < self.num_points)
        return points[np.sort(pick)]

    def scripted_action(self) -> np.ndarray:
        """A privileged go-to-goal controller (uses the goal position; for demos and tests, not a policy)."""
        offset = self.data.mocap_pos[self._goal_mocap, :2] - self.data.qpos[:2]
        heading = (np.arctan2(offset[1], offset[0]) - self.data.qpos[2] + np.pi) % (2 * np.pi) - np.pi
        return np.array([np.clip(np.cos(heading), 0.0, 1.0), np.clip(2.0 * heading, -1.0, 1.0)], np.float32)
