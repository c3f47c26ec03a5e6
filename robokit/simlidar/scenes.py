"""Moving street scenes for detection and tracking, scanned from a moving ego vehicle at 10 Hz.

A scene is a ground plane with a straight road along +x: the ego vehicle drives in lane
``y = 0`` at constant speed with the LiDAR 1.73 m above the ground (KITTI's mounting height);
cars drive in four lanes (``y = -3.5, 0`` with the ego, ``y = 3.5, 7`` against it) or stand
parked at ``|y| = 9.5``, cyclists ride at ``|y| = 8``, pedestrians walk or stand on the
sidewalks (``10.5 <= |y| <= 12``), and buildings and poles line the street from ``|y| = 13``.
Cars of one lane share its speed, so moving cars never run into each other.

Actors are composite proxies (boxes, cylinders, capsules, spheres) of the KITTI class sizes:
length, width, height 3.9 x 1.6 x 1.56 m (Car), 0.8 x 0.6 x 1.73 m (Pedestrian) and
1.76 x 0.6 x 1.73 m (Cyclist), the KITTI anchor sizes of OpenPCDet's ``second.yaml``, each
instance scaled by a factor in [0.9, 1.1]. Every geom of an actor lies inside its labelled box,
2 cm in from its sides and top (:data:`GEOM_INSET`).

A frame's labels are the actors whose box centre projects into the simulated camera image
(:mod:`robokit.simlidar.kitti`), closer than ``max_label_range``, with at least ``min_points``
LiDAR returns; the occlusion level is read from the return count (>= 50: 0, >= 15: 1, else 2).
Track ids are the actor indices, stable over the sequence.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from robokit.simlidar.scanner import LidarConfig, LidarScanner

__all__ = ["ACTOR_SIZES", "Actor", "SceneConfig", "SceneFrame", "MovingScene", "write_scene_dataset"]

#: KITTI class -> (length, width, height) metres (OpenPCDet KITTI anchor sizes)
ACTOR_SIZES: dict[str, tuple[float, float, float]] = {
    "Car": (3.9, 1.6, 1.56),
    "Pedestrian": (0.8, 0.6, 1.73),
    "Cyclist": (1.76, 0.6, 1.73),
}
REFLECTIVITY = {"Car": 0.7, "Pedestrian": 0.35, "Cyclist": 0.45, "ground": 0.2, "building": 0.4}
LIDAR_HEIGHT = 1.73
#: the geoms of an actor fill its box less this (l, w, h), so surface points lie strictly inside the label
GEOM_INSET = np.array([0.04, 0.04, 0.02])


@dataclass(frozen=True)
class Actor:
    """One moving (or standing) object: straight-line motion at constant velocity."""

    kind: str
    size: np.ndarray  # (3,) length, width, height
    start: np.ndarray  # (2,) xy at t = 0
    velocity: np.ndarray  # (2,) m/s
    yaw: float  # heading, radians (along the velocity when moving)

    def position(self, time: float) -> np.ndarray:
        """Box bottom-centre xy at ``time`` seconds."""
        return self.start + self.velocity * time


@dataclass(frozen=True)
class SceneConfig:
    """What a scene holds and how it is scanned."""

    frames: int = 40
    cars: int = 10
    pedestrians: int = 8
    cyclists: int = 3
    ego_speed: tuple[float, float] = (4.0, 10.0)  # m/s, drawn per sequence
    rate_hz: float = 10.0
    ego_motion: bool = False  # motion distortion during each sweep
    min_points: int = 5
    max_label_range: float = 70.0
    lidar: LidarConfig = field(default_factory=LidarConfig)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        for key in ("frames", "rate_hz", "max_label_range"):
            if not getattr(self, key) > 0:
                raise ValueError(f"scene config: {key} must be > 0, got {getattr(self, key)}")
        for key in ("cars", "pedestrians", "cyclists", "min_points"):
            if getattr(self, key) < 0:
                raise ValueError(f"scene config: {key} must be >= 0, got {getattr(self, key)}")
        low, high = self.ego_speed
        if not 0 <= low <= high:
            raise ValueError(f"scene config: ego_speed must be 0 <= low <= high, got {self.ego_speed}")
        self.lidar.check()


@dataclass(frozen=True)
class SceneFrame:
    """One scan and its labels, in the sensor frame of the scan's end."""

    points: np.ndarray  # (N, 4) float32
    boxes: np.ndarray  # (M, 7) LiDAR-frame boxes of the labelled actors
    types: list[str]  # M class names
    track_ids: np.ndarray  # (M,) int64 actor index
    num_points: np.ndarray  # (M,) int64 returns on each labelled actor
    sensor_pose: np.ndarray  # (4, 4) sensor -> world


# ----------------------------------------------------------------------------- sampling


def _lane_actors(kind: str, count: int, lanes, x_range, rng, gap: float) -> list[Actor]:
    """``count`` actors in ``lanes`` = [(y, speed_x)], spaced at least their length + ``gap`` apart."""
    actors: list[Actor] = []
    taken: dict[int, list[tuple[float, float]]] = {}
    for _ in range(count):
        size = np.asarray(ACTOR_SIZES[kind]) * rng.uniform(0.9, 1.1)
        for _attempt in range(50):
            lane = int(rng.integers(len(lanes)))
            x = rng.uniform(*x_range)
            if all(abs(x - other) > (size[0] + length) / 2 + gap for other, length in taken.get(lane, [])):
                break
        else:
            continue  # no room left in any lane: fewer actors than asked
        taken.setdefault(lane, []).append((x, size[0]))
        y, speed = lanes[lane]
        yaw = 0.0 if speed > 0 else np.pi
        if speed == 0:
            yaw = float(rng.choice([0.0, np.pi]) + rng.normal(0, 0.05))
        actors.append(Actor(kind, size, np.array([x, y + rng.normal(0, 0.1)]), np.array([speed, 0.0]), yaw))
    return actors


def sample_actors(config: SceneConfig, ego_speed: float, rng: np.random.Generator) -> list[Actor]:
    """The scene's cars, cyclists and pedestrians (module doc); deterministic in ``rng``."""
    travel = ego_speed * config.frames / config.rate_hz
    x_range = (-30.0, travel + 60.0)
    same, fast = ego_speed, ego_speed + rng.uniform(-2.0, 4.0)
    oncoming = -rng.uniform(5.0, 12.0, size=2)
    car_lanes = [(-3.5, fast), (3.5, oncoming[0]), (7.0, oncoming[1]), (-9.5, 0.0), (9.5, 0.0)]
    actors = _lane_actors("Car", config.cars, car_lanes, x_range, rng, gap=4.0)
    if config.cars:  # a car ahead in the ego lane, keeping its distance
        ahead = _lane_actors("Car", 1, [(0.0, same)], (12.0, 40.0), rng, gap=0.0)
        actors = ahead + actors[: max(config.cars - 1, 0)]
    bike_lanes = [(-8.0, rng.uniform(3.0, 6.0)), (8.0, -rng.uniform(3.0, 6.0))]
    actors += _lane_actors("Cyclist", config.cyclists, bike_lanes, x_range, rng, gap=2.0)
    walks = [(side * rng.uniform(10.5, 12.0), rng.choice([-1, 1]) * rng.uniform(0.8, 1.6) * (rng.random() > 0.25))
             for side in (-1, 1, -1, 1, -1, 1)]
    actors += _lane_actors("Pedestrian", config.pedestrians, walks, x_range, rng, gap=0.5)
    return actors


# ----------------------------------------------------------------------------- MJCF


def _actor_geoms(kind: str, size: np.ndarray) -> list[str]:
    """MJCF geoms of one actor in its body frame (origin at the box's bottom centre, x forward)."""
    length, width, height = size
    if kind == "Car":
        wheel = 0.25 * height
        geoms = [f'<geom type="box" size="{length / 2} {width / 2} {0.2 * height}" pos="0 0 {0.45 * height}"/>',
                 f'<geom type="box" size="{0.28 * length} {0.45 * width} {0.175 * height}" '
                 f'pos="{-0.05 * length} 0 {0.825 * height}"/>']
        geoms += [f'<geom type="cylinder" size="{wheel} {0.1 * width}" pos="{sx * 0.33 * length} {sy * 0.4 * width} '
                  f'{wheel}" euler="90 0 0"/>' for sx in (-1, 1) for sy in (-1, 1)]
        return geoms
    head = 0.065 * height
    if kind == "Pedestrian":
        leg = 0.07 * width / 0.6
        return [
            f'<geom type="capsule" size="{leg}" fromto="{0.3 * length} {-0.15 * width} {leg} 0 {-0.15 * width} '
            f'{0.47 * height}"/>',
            f'<geom type="capsule" size="{leg}" fromto="{-0.3 * length} {0.15 * width} {leg} 0 {0.15 * width} '
            f'{0.47 * height}"/>',
            f'<geom type="box" size="{0.15 * length} {0.35 * width} {0.17 * height}" pos="0 0 {0.64 * height}"/>',
            f'<geom type="capsule" size="{0.75 * leg}" fromto="0 {0.4 * width} {0.78 * height} {0.25 * length} '
            f'{0.4 * width} {0.5 * height}"/>',
            f'<geom type="capsule" size="{0.75 * leg}" fromto="0 {-0.4 * width} {0.78 * height} {-0.25 * length} '
            f'{-0.4 * width} {0.5 * height}"/>',
            f'<geom type="sphere" size="{head}" pos="0 0 {height - head}"/>',
        ]
    wheel = 0.18 * height
    return [
        *(f'<geom type="cylinder" size="{wheel} 0.03" pos="{sx * (length / 2 - wheel)} 0 {wheel}" euler="90 0 0"/>'
          for sx in (-1, 1)),
        f'<geom type="box" size="{0.3 * length} 0.04 0.04" pos="0 0 {0.32 * height}"/>',
        f'<geom type="capsule" size="0.1" fromto="{-0.1 * length} 0 {0.5 * height} {0.05 * length} 0 '
        f'{0.8 * height}"/>',
        f'<geom type="capsule" size="0.06" fromto="{-0.1 * length} {0.12 * width} {0.5 * height} {0.05 * length} '
        f'{0.12 * width} {0.2 * height}"/>',
        f'<geom type="sphere" size="{head}" pos="{0.08 * length} 0 {height - head}"/>',
    ]


def _street_geoms(x_range: tuple[float, float], rng: np.random.Generator) -> list[str]:
    """Buildings from ``|y| = 13`` and poles at ``|y| = 12.5``, static."""
    geoms = []
    for side in (-1, 1):
        x = x_range[0]
        while x < x_range[1]:
            length, depth, height = rng.uniform(8, 25), rng.uniform(6, 12), rng.uniform(4, 15)
            y = side * (13.0 + depth / 2)
            geoms.append(f'<geom type="box" size="{length / 2} {depth / 2} {height / 2}" '
                         f'pos="{x + length / 2} {y} {height / 2}" class="building"/>')
            x += length + rng.uniform(1.0, 6.0)
        for pole in np.arange(x_range[0], x_range[1], rng.uniform(12.0, 20.0)):
            geoms.append(f'<geom type="cylinder" size="0.12 3" pos="{pole} {side * 12.5} 3" class="building"/>')
    return geoms


def scene_xml(actors: list[Actor], street: list[str]) -> str:
    """The MJCF of a scene: ground, street geoms, the ego body ``ego`` and one mocap body per actor."""
    bodies = [f'<body name="actor{i}" mocap="true">{"".join(_actor_geoms(a.kind, a.size - GEOM_INSET))}</body>'
              for i, a in enumerate(actors)]
    ego = (f'<body name="ego" mocap="true" pos="0 0 {LIDAR_HEIGHT}">'
           f'<geom type="box" size="2.0 0.85 0.6" pos="0 0 -1.0"/></body>')
    return ('<mujoco><default><default class="building"><geom rgba=".6 .6 .6 1"/></default></default>'
            '<worldbody><geom name="ground" type="plane" size="500 500 0.1"/>'
            f'{"".join(street)}{ego}{"".join(bodies)}</worldbody></mujoco>')


# ----------------------------------------------------------------------------- scene


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class MovingScene:
    """A sampled street scene: actors, the MuJoCo model, the ego's LiDAR; :meth:`frame` scans one frame.

    Args:
        config: what the scene holds.
        seed: the scene (actors, street, speeds) and its scans' noise are a function of ``seed``.
    """

    def __init__(self, config: SceneConfig, seed: int) -> None:
        import mujoco

        config.check()
        self._mujoco = mujoco
        self.config = config
        rng = np.random.default_rng([seed, 0])
        self.ego_speed = float(rng.uniform(*config.ego_speed))
        self.actors = sample_actors(config, self.ego_speed, rng)
        travel = self.ego_speed * config.frames / config.rate_hz
        self.model = mujoco.MjModel.from_xml_string(scene_xml(self.actors, _street_geoms((-60.0, travel + 90.0), rng)))
        self.data = mujoco.MjData(self.model)
        self.scanner = LidarScanner(self.model, "ego", config.lidar, seed=seed)
        self._body_actor = np.full(self.model.nbody, -1, dtype=np.int64)
        for index, actor in enumerate(self.actors):
            body = self.model.body(f"actor{index}").id
            self._body_actor[body] = index
            self.scanner.reflectivity[self.model.geom_bodyid == body] = REFLECTIVITY[actor.kind]
        self.scanner.reflectivity[self.model.geom_bodyid == 0] = REFLECTIVITY["building"]
        self.scanner.reflectivity[self.model.geom("ground").id] = REFLECTIVITY["ground"]
        self._geom_actor = self._body_actor[self.model.geom_bodyid]

    def sensor_pose(self, frame: int) -> np.ndarray:
        """``(4, 4)`` sensor -> world pose at ``frame`` (heading +x, no rotation)."""
        pose = np.eye(4)
        pose[:3, 3] = [self.ego_speed * frame / self.config.rate_hz, 0.0, LIDAR_HEIGHT]
        return pose

    def place(self, frame: int) -> None:
        """Move the ego and every actor to their poses at ``frame`` and update the kinematics."""
        time = frame / self.config.rate_hz
        self.data.mocap_pos[self.model.body("ego").mocapid[0]] = self.sensor_pose(frame)[:3, 3]
        for index, actor in enumerate(self.actors):
            mocap = self.model.body(f"actor{index}").mocapid[0]
            self.data.mocap_pos[mocap] = [*actor.position(time), 0.0]
            self.data.mocap_quat[mocap] = _yaw_quat(actor.yaw)
        self._mujoco.mj_kinematics(self.model, self.data)

    def actor_boxes(self, frame: int) -> np.ndarray:
        """``(K, 7)`` LiDAR-frame boxes of every actor at ``frame``."""
        time = frame / self.config.rate_hz
        pose = self.sensor_pose(frame)
        boxes = np.zeros((len(self.actors), 7))
        for index, actor in enumerate(self.actors):
            centre = np.r_[actor.position(time), actor.size[2] / 2]
            boxes[index, :3] = pose[:3, :3].T @ (centre - pose[:3, 3])
            boxes[index, 3:6] = actor.size
            boxes[index, 6] = actor.yaw
        return boxes

    def frame(self, frame: int) -> SceneFrame:
        """Scan ``frame`` and label it (module doc)."""
        self.place(frame)
        velocity = (np.array([self.ego_speed, 0.0, 0.0]), np.zeros(3)) if self.config.ego_motion else None
        points, geoms = self.scanner.scan(self.data, ego_velocity=velocity, return_geom_ids=True)
        hits = self._geom_actor[geoms]
        counts = np.bincount(hits[hits >= 0], minlength=len(self.actors))
        boxes = self.actor_boxes(frame)
        keep = np.flatnonzero(self._labelled(boxes, counts))
        return SceneFrame(points, boxes[keep], [self.actors[i].kind for i in keep], keep.astype(np.int64),
                          counts[keep].astype(np.int64), self.sensor_pose(frame))

    def _labelled(self, boxes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Which actors get a label: in the camera image, in range, with enough returns."""
        from robokit.simlidar.kitti import IMAGE_SHAPE, SIM_CALIB

        if len(boxes) == 0:
            return np.zeros(0, dtype=bool)
        cam = boxes[:, :3] @ SIM_CALIB["Tr_velo_to_cam"][:, :3].T
        uvw = cam @ SIM_CALIB["P2"][:, :3].T
        depth = uvw[:, 2]
        u, v = uvw[:, 0] / np.maximum(depth, 1e-6), uvw[:, 1] / np.maximum(depth, 1e-6)
        in_image = (depth > 0.5) & (u >= 0) & (u < IMAGE_SHAPE[1]) & (v >= 0) & (v < IMAGE_SHAPE[0])
        in_range = np.linalg.norm(boxes[:, :2], axis=1) <= self.config.max_label_range
        return in_image & in_range & (counts >= max(self.config.min_points, 1))


def occlusion_levels(num_points: np.ndarray) -> np.ndarray:
    """KITTI-style occlusion level from a return count: >= 50 -> 0, >= 15 -> 1, else 2."""
    return np.where(num_points >= 50, 0, np.where(num_points >= 15, 1, 2))


# ----------------------------------------------------------------------------- writing


def write_scene_dataset(out: str | Path, config: SceneConfig, sequences: int, seed: int,
                        object_stride: int = 5, progress: bool = True) -> dict:
    """Scan ``sequences`` scenes of ``config.frames`` frames and write them in the KITTI layouts.

    Layout (``seq`` = 0000, 0001, ...; every ``object_stride``-th frame also goes to ``object/``)::

        out/tracking/training/velodyne/<seq>/<frame:06d>.bin
        out/tracking/training/label_02/<seq>.txt      (track id = actor index)
        out/tracking/training/calib/<seq>.txt
        out/tracking/training/poses/<seq>.txt         (sensor -> world, 3x4 per frame)
        out/object/training/{velodyne,label_2,calib}/<index:06d>.{bin,txt}
        out/scenes.json                               (config, seed, counts)

    Sequence ``s`` is the scene of seed ``[seed, s]``, so a seed makes the dataset identical.

    Returns:
        the summary written to ``scenes.json``.
    """
    from tqdm import tqdm

    from robokit.core.atomic import atomic_write_text
    from robokit.simlidar import kitti

    if sequences < 1 or object_stride < 1:
        raise ValueError(f"need sequences >= 1 and object_stride >= 1, got {sequences}, {object_stride}")
    out = Path(out)
    track, obj = out / "tracking" / "training", out / "object" / "training"
    bar = tqdm(total=sequences * config.frames, desc="sim-lidar scenes", unit="frame", disable=not progress)
    summary = {"sequences": [], "seed": seed, "config": _jsonable(asdict(config)), "object_frames": 0}
    object_index = 0
    for sequence in range(sequences):
        name = f"{sequence:04d}"
        scene = MovingScene(config, seed=int(np.random.SeedSequence([seed, sequence]).generate_state(1)[0]))
        track_frames, poses, labels = [], [], 0
        for frame in range(config.frames):
            record = scene.frame(frame)
            rows = kitti.label_rows(record.boxes, record.types, occlusion_levels(record.num_points))
            kitti.write_velodyne(track / "velodyne" / name / f"{frame:06d}.bin", record.points)
            track_frames.append(list(zip(record.track_ids.tolist(), rows, strict=True)))
            poses.append(record.sensor_pose)
            labels += len(rows)
            if frame % object_stride == 0:
                stem = f"{object_index:06d}"
                kitti.write_velodyne(obj / "velodyne" / f"{stem}.bin", record.points)
                kitti.write_object_labels(obj / "label_2" / f"{stem}.txt", rows)
                kitti.write_calib(obj / "calib" / f"{stem}.txt")
                object_index += 1
            bar.update(1)
        kitti.write_tracking_labels(track / "label_02" / f"{name}.txt", track_frames)
        kitti.write_calib(track / "calib" / f"{name}.txt")
        kitti.write_poses(track / "poses" / f"{name}.txt", np.asarray(poses))
        summary["sequences"].append({"name": name, "ego_speed": scene.ego_speed, "actors": len(scene.actors),
                                     "labels": labels})
    bar.close()
    summary["object_frames"] = object_index
    atomic_write_text(out / "scenes.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
