"""Object scans for classification: real meshes on a ground plane, scanned from random viewpoints.

Each class is one mesh file: by default the object meshes shipped with robosuite
(``robosuite/models/assets/objects/meshes``: bottle, bread, can, cereal, cube, cylinder, handles,
lemon, milk, sphere8), plus every ``.obj``/``.stl`` of a user folder. A mesh is scaled so its
largest extent is 1 m and stood upright on the ground (z up) with a random yaw; the LiDAR
(default HDL-64E, 2048 steps) stands at a random azimuth, at a horizontal distance drawn from
``distance`` metres and a height drawn from ``height`` metres. The scan is cropped to the
object's axis-aligned world box (2 cm margin, ground returns excluded), so the cloud is what a
real scanner sees of the object: one side only, self-occluded, denser near the sensor.

Each crop is then brought to the ModelNet40 HDF5 convention as the procedural set
(:mod:`robokit.pointcloud.procedural`) is: turned by the object's ``-yaw`` about its box centre
(objects of a class share their orientation), y up, centred and scaled to the unit sphere, and
resampled to ``num_points`` (without replacement when the crop has enough points, else with).
A viewpoint whose crop has fewer than ``min_points`` points is redrawn (at most 20 times).
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from robokit.simlidar.scanner import LidarConfig, LidarScanner

__all__ = ["MESH_SUFFIXES", "ObjectScanConfig", "ObjectScanner", "class_meshes", "find_meshes", "load_mesh_model",
           "robosuite_meshes",
           "write_object_dataset"]

MESH_SUFFIXES = (".obj", ".stl")


@dataclass(frozen=True)
class ObjectScanConfig:
    """Viewpoints and output size of the object set."""

    num_points: int = 1024
    min_points: int = 64
    distance: tuple[float, float] = (2.0, 6.0)  # m, horizontal
    height: tuple[float, float] = (0.5, 2.0)  # m, sensor above ground
    lidar: LidarConfig = field(default_factory=LidarConfig)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        if self.num_points < 1 or self.min_points < 1:
            raise ValueError(f"object config: num_points and min_points must be >= 1, got "
                             f"{self.num_points}, {self.min_points}")
        for key in ("distance", "height"):
            low, high = getattr(self, key)
            if not 0 < low <= high:
                raise ValueError(f"object config: {key} must be 0 < low <= high, got {getattr(self, key)}")
        self.lidar.check()


def robosuite_meshes() -> list[Path]:
    """robosuite's object meshes, one per name (``.stl`` preferred over ``.obj``), sorted by name."""
    spec = importlib.util.find_spec("robosuite")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("robosuite is not installed: pass --meshes DIR or install robokit[sim]")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models" / "assets" / "objects" / "meshes"
    by_name: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in MESH_SUFFIXES and (path.stem not in by_name or path.suffix == ".stl"):
            by_name[path.stem] = path
    return [by_name[name] for name in sorted(by_name)]


def find_meshes(folder: str | os.PathLike) -> list[Path]:
    """The ``.obj``/``.stl`` files of ``folder`` (not recursive), sorted.

    Raises:
        FileNotFoundError: ``folder`` is not a folder, or holds no mesh file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--meshes {folder}: not a folder")
    meshes = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
    if not meshes:
        raise FileNotFoundError(f"--meshes {folder}: no .obj or .stl file")
    return meshes


def _mesh_xml(path: Path, scale: float) -> str:
    return (f'<mujoco><asset><mesh name="object" file="{path}" scale="{scale} {scale} {scale}"/></asset>'
            '<worldbody><geom name="ground" type="plane" size="50 50 0.1"/>'
            '<body name="object" mocap="true"><geom name="object" type="mesh" mesh="object"/></body>'
            '<body name="sensor" mocap="true"/></worldbody></mujoco>')


def load_mesh_model(path: Path):
    """Compile ``path`` into the scanning scene at 1 m largest extent.

    Raises:
        ValueError: naming the file when MuJoCo cannot read it or it has no extent.
    """
    import mujoco

    try:
        probe = mujoco.MjModel.from_xml_string(_mesh_xml(path, 1.0))
    except ValueError as err:
        reason = str(err).splitlines()[-1].strip()
        raise ValueError(f"{path}: not a readable mesh ({reason})") from None
    extent = float(np.ptp(probe.mesh_vert, axis=0).max())
    if not np.isfinite(extent) or extent <= 0:
        raise ValueError(f"{path}: the mesh has no extent")
    return mujoco.MjModel.from_xml_string(_mesh_xml(path, 1.0 / extent))


class ObjectScanner:
    """One mesh in its scanning scene; :meth:`scan` returns one normalised crop."""

    def __init__(self, path: Path, config: ObjectScanConfig) -> None:
        import mujoco

        self._mujoco = mujoco
        self.path = path
        self.config = config
        self.model = load_mesh_model(path)
        self.data = mujoco.MjData(self.model)
        self.scanner = LidarScanner(self.model, "sensor", config.lidar)
        geom = self.model.geom("object").id
        self._geom = geom
        start = self.model.mesh_vertadr[0]
        self._vertices = self.model.mesh_vert[start:start + self.model.mesh_vertnum[0]].astype(np.float64)

    def _place(self, yaw: float, sensor_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stand the object on the ground at the origin turned by ``yaw``; return its world box (lo, hi)."""
        mujoco, data = self._mujoco, self.data
        data.mocap_pos[0] = 0.0
        data.mocap_quat[0] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        data.mocap_pos[1] = sensor_xyz
        mujoco.mj_kinematics(self.model, data)
        world = self._world_vertices()
        data.mocap_pos[0, 2] = -world[:, 2].min()
        mujoco.mj_kinematics(self.model, data)
        world = self._world_vertices()
        return world.min(axis=0), world.max(axis=0)

    def _world_vertices(self) -> np.ndarray:
        rotation = self.data.geom_xmat[self._geom].reshape(3, 3)
        return self._vertices @ rotation.T + self.data.geom_xpos[self._geom]

    def scan(self, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """One crop ``(num_points, 3)`` float32 (unit sphere, y up) and its raw point count.

        Raises:
            ValueError: naming the mesh when 20 viewpoints all give fewer than ``min_points`` points.
        """
        cfg = self.config
        for _attempt in range(20):
            yaw, azimuth = rng.uniform(-np.pi, np.pi, size=2)
            distance, height = rng.uniform(*cfg.distance), rng.uniform(*cfg.height)
            sensor = np.array([distance * np.cos(azimuth), distance * np.sin(azimuth), height])
            low, high = self._place(yaw, sensor)
            points = self.scanner.scan(self.data, rng=rng)
            world = points[:, :3].astype(np.float64) + sensor  # the sensor body is not rotated
            inside = np.all((world >= low - 0.02) & (world <= high + 0.02), axis=1) & (world[:, 2] > 0.01)
            if inside.sum() >= cfg.min_points:
                return self._normalise(world[inside], (low + high) / 2, yaw, rng), int(inside.sum())
        raise ValueError(f"{self.path}: fewer than {cfg.min_points} points on the object in 20 scans "
                         "(too thin or too small for the scanner?)")

    def _normalise(self, world: np.ndarray, centre: np.ndarray, yaw: float, rng) -> np.ndarray:
        from robokit.pointcloud.points import normalize_unit_sphere

        cos, sin = np.cos(-yaw), np.sin(-yaw)
        local = (world - centre) @ np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]]).T
        y_up = np.stack([local[:, 0], local[:, 2], -local[:, 1]], axis=1)
        chosen = rng.choice(len(y_up), size=self.config.num_points, replace=len(y_up) < self.config.num_points)
        return normalize_unit_sphere(y_up[chosen].astype(np.float32))


def class_meshes(user_folder: str | os.PathLike | None, use_robosuite: bool) -> list[Path]:
    """The mesh of every class: robosuite's (if asked) then the user folder's; names must be unique."""
    meshes = (robosuite_meshes() if use_robosuite else []) + (find_meshes(user_folder) if user_folder else [])
    if not meshes:
        raise ValueError("no meshes: pass --meshes DIR or leave robosuite's objects on")
    seen: dict[str, Path] = {}
    for path in meshes:
        if path.stem in seen:
            raise ValueError(f"{path}: class name {path.stem!r} is also {seen[path.stem]}; rename one of them")
        seen[path.stem] = path
    return meshes


def write_object_dataset(out: str | os.PathLike, meshes: list[Path], config: ObjectScanConfig,
                         train_per_class: int, test_per_class: int, seed: int, progress: bool = True) -> dict:
    """Scan every mesh and write ``ply_data_{train,test}0.h5``, ``shape_names.txt`` and ``objects.json``.

    Every mesh is compiled before anything is written, so a broken file stops the run with its
    name and an empty ``out``. Sample ``i`` of class ``c`` in split ``s`` (0 train, 1 test) uses the
    generator ``default_rng([seed, s, c, i])``: a seed makes the dataset identical.
    """
    from tqdm import tqdm

    from robokit.core.atomic import atomic_write_text
    from robokit.pointcloud.io import write_modelnet_h5

    config.check()
    if train_per_class < 0 or test_per_class < 0 or train_per_class + test_per_class == 0:
        raise ValueError(f"need per-class counts >= 0 and at least one sample, got {train_per_class}, {test_per_class}")
    scanners = [ObjectScanner(path, config) for path in meshes]
    splits = {"train": (0, train_per_class), "test": (1, test_per_class)}
    bar = tqdm(total=len(scanners) * (train_per_class + test_per_class), desc="sim-lidar objects", unit="scan",
               disable=not progress)
    results = {}
    for split, (split_id, count) in splits.items():
        data = np.zeros((len(scanners) * count, config.num_points, 3), dtype=np.float32)
        labels = np.repeat(np.arange(len(scanners)), count)
        raw = np.zeros(len(labels), dtype=np.int64)
        for row, (label, index) in enumerate(zip(labels, np.tile(np.arange(count), len(scanners)), strict=True)):
            data[row], raw[row] = scanners[label].scan(np.random.default_rng([seed, split_id, label, index]))
            bar.update(1)
        results[split] = (data, labels, raw)
    bar.close()
    out = Path(out)
    summary = {"classes": [p.stem for p in meshes], "meshes": [str(p) for p in meshes], "seed": seed,
               "config": asdict(config), "splits": {}}
    for split, (data, labels, raw) in results.items():
        if len(labels):
            write_modelnet_h5(out / f"ply_data_{split}0.h5", data, labels)
            atomic_write_text(out / f"{split}_files.txt", f"ply_data_{split}0.h5\n")
        summary["splits"][split] = {"clouds": int(len(labels)),
                                    "raw_points_mean": float(raw.mean()) if len(raw) else 0.0,
                                    "raw_points_min": int(raw.min()) if len(raw) else 0}
    atomic_write_text(out / "shape_names.txt", "".join(f"{p.stem}\n" for p in meshes))
    atomic_write_text(out / "objects.json", json.dumps(summary, indent=2, default=list) + "\n")
    return summary
