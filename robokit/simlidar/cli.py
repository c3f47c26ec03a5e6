"""``robokit sim-lidar {make-objects, make-scenes, scan}``: simulated LiDAR datasets and scans.

Examples::

    robokit sim-lidar make-objects --out data/sim_objects --train-per-class 40 --test-per-class 10
    robokit sim-lidar make-scenes --out data/sim_scenes --sequences 2 --frames 40
    robokit sim-lidar scan --model envs/lidar_nav/lidar_nav.xml --body robot --out scan.bin

Bad input (a sensor on a missing body, zero beams, a mesh file MuJoCo cannot read, an
occupied ``--out``) ends with one line naming it and exit code 2. Datasets are built in a
hidden staging folder beside ``--out`` and moved into place only when complete, so a failed
run writes nothing and an ``--overwrite`` run keeps the old folder until the new one is done.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from robokit.core.cli_errors import run_command

PROG = "robokit sim-lidar"


@dataclass(frozen=True)
class SensorArgs:
    """Beam pattern options shared by every subcommand."""

    pattern: str = "hdl64e"
    """beam pattern: hdl64e (KITTI's HDL-64E S2), hdl32e, vlp16 or solid_state"""
    azimuth_steps: int | None = None
    """azimuth steps per sweep (default: the pattern's; 2048 for hdl64e)"""
    beams: int | None = None
    """rows of the solid_state grid (spinning units have fixed tables)"""
    range_noise: float = 0.02
    """range noise sigma0, metres"""
    dropout: float = 0.0
    """uniform return loss rate"""

    def lidar(self, **extra):
        from robokit.simlidar.scanner import LidarConfig

        config = LidarConfig(pattern=self.pattern, azimuth_steps=self.azimuth_steps, beams=self.beams,
                             range_noise_std=self.range_noise, dropout=self.dropout, **extra)
        config.check()
        config.beam_pattern()  # zero beams / steps / unknown pattern fail here, before any work
        return config


@dataclass(frozen=True)
class DatasetArgs(SensorArgs):
    """Options of both dataset commands."""

    seed: int = 0
    """the dataset is a function of the seed (same seed, identical files)"""
    overwrite: bool = False
    """replace a non-empty --out (the old folder stays until the new one is complete)"""
    progress: bool = True
    """show a progress bar"""


@dataclass(frozen=True)
class MakeObjects(DatasetArgs):
    """Scan real object meshes from random viewpoints into a ModelNet-style HDF5 set."""

    out: Path = Path("sim_objects")
    """dataset folder (refused when it holds files, unless --overwrite)"""
    meshes: Path | None = None
    """a folder of .obj/.stl meshes, one class each (added to robosuite's objects)"""
    robosuite: bool = True
    """include robosuite's object meshes (bottle, bread, can, cereal, ...)"""
    train_per_class: int = 40
    """scans per class in ply_data_train0.h5"""
    test_per_class: int = 10
    """scans per class in ply_data_test0.h5"""
    num_points: int = 1024
    """points per cloud after resampling"""


@dataclass(frozen=True)
class MakeScenes(DatasetArgs):
    """Scan moving street scenes into KITTI object and tracking layouts."""

    out: Path = Path("sim_scenes")
    """dataset folder (refused when it holds files, unless --overwrite)"""
    sequences: int = 2
    """scenes to scan (tracking sequences 0000, 0001, ...)"""
    frames: int = 40
    """frames per sequence (10 Hz)"""
    cars: int = 10
    """cars per scene (moving in four lanes or parked)"""
    pedestrians: int = 8
    """pedestrians per scene (walking or standing on the sidewalks)"""
    cyclists: int = 3
    """cyclists per scene (bike lanes)"""
    ego_motion: bool = False
    """distort each sweep by the ego vehicle's motion (raw, uncompensated, like KITTI)"""
    object_stride: int = 5
    """every N-th frame also goes to the object layout"""


@dataclass(frozen=True)
class Scan(SensorArgs):
    """Scan a MuJoCo model (MJCF) once from a body and write the cloud (.bin KITTI, or .npy)."""

    model: Path = Path("model.xml")
    """MJCF file"""
    body: str = "lidar"
    """body carrying the sensor"""
    out: Path = Path("scan.bin")
    """.bin (KITTI float32 x, y, z, intensity) or .npy ((N, 4), or (B, A, 4) with --organised)"""
    organised: bool = False
    """write the (beams, azimuth, 4) grid, NaN where no return (.npy only)"""
    geomgroup: tuple[int, int, int, int, int, int] | None = None
    """six 0/1 flags: geom groups the sensor sees (default: all)"""
    exclude_body: bool = True
    """the sensor's own body is invisible to it"""
    seed: int = 0
    """seed of the range noise and dropout"""
    overwrite: bool = False
    """replace an existing --out file"""


@contextlib.contextmanager
def staged_folder(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out``; on success it replaces ``out``.

    Raises:
        RunDirError: ``out`` holds files and ``overwrite`` is False (checked before anything is made).
    """
    from robokit.core.rundir import check_run_dir

    check_run_dir(out, overwrite=overwrite, resumable=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def _make_objects(args: MakeObjects) -> int:
    from robokit.simlidar.objects import ObjectScanConfig, class_meshes, write_object_dataset

    config = ObjectScanConfig(num_points=args.num_points, lidar=args.lidar())
    config.check()
    meshes = class_meshes(args.meshes, args.robosuite)
    with staged_folder(args.out, args.overwrite) as staging:
        summary = write_object_dataset(staging, meshes, config, args.train_per_class, args.test_per_class,
                                       args.seed, progress=args.progress)
    splits = ", ".join(f"{name} {s['clouds']} (mean {s['raw_points_mean']:.0f} raw points)"
                       for name, s in summary["splits"].items())
    print(f"wrote {args.out}: {len(summary['classes'])} classes; {splits}")
    return 0


def _make_scenes(args: MakeScenes) -> int:
    from robokit.simlidar.scenes import SceneConfig, write_scene_dataset

    config = SceneConfig(frames=args.frames, cars=args.cars, pedestrians=args.pedestrians, cyclists=args.cyclists,
                         ego_motion=args.ego_motion, lidar=args.lidar())
    config.check()
    if args.sequences < 1 or args.object_stride < 1:
        raise ValueError(f"--sequences and --object-stride must be >= 1, got {args.sequences}, {args.object_stride}")
    with staged_folder(args.out, args.overwrite) as staging:
        summary = write_scene_dataset(staging, config, args.sequences, args.seed, args.object_stride,
                                      progress=args.progress)
    labels = sum(s["labels"] for s in summary["sequences"])
    print(f"wrote {args.out}: {args.sequences} sequences x {args.frames} frames, {labels} labelled boxes, "
          f"{summary['object_frames']} object frames")
    return 0


def _scan(args: Scan) -> int:
    import mujoco
    import numpy as np

    from robokit.core.atomic import atomic_path
    from robokit.simlidar.kitti import write_velodyne
    from robokit.simlidar.scanner import LidarScanner

    suffix = args.out.suffix.lower()
    if suffix not in (".bin", ".npy") or (args.organised and suffix != ".npy"):
        raise ValueError(f"--out {args.out}: must end in .bin or .npy (.npy with --organised)")
    if args.out.exists() and not args.overwrite:
        raise FileExistsError(f"--out {args.out}: exists; pass --overwrite to replace it")
    if not args.model.is_file():
        raise FileNotFoundError(f"--model {args.model}: no such file")
    try:
        model = mujoco.MjModel.from_xml_path(str(args.model))
    except ValueError as err:
        raise ValueError(f"--model {args.model}: MuJoCo cannot load it ({str(err).splitlines()[0]})") from None
    config = args.lidar(geomgroup=args.geomgroup, exclude_body=args.exclude_body)
    scanner = LidarScanner(model, args.body, config, seed=args.seed)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    cloud = scanner.scan(data, organised=args.organised)
    if suffix == ".bin":
        write_velodyne(args.out, cloud)
    else:
        with atomic_path(args.out) as tmp, open(tmp, "wb") as handle:
            np.save(handle, cloud)
    returns = int(np.isfinite(cloud[..., 0]).sum())
    print(f"wrote {args.out}: {returns} returns of {scanner.pattern.num_rays} rays ({config.pattern})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit sim-lidar``."""
    return run_command(PROG, argv, _main)


def _main(args: list[str]) -> int:
    import tyro

    commands = {"make-objects": MakeObjects, "make-scenes": MakeScenes, "scan": Scan}
    cfg = tyro.extras.subcommand_cli_from_dict(commands, args=args, prog=PROG,
                                               description="Simulated LiDAR: object and scene datasets, scans.")
    handlers = {MakeObjects: _make_objects, MakeScenes: _make_scenes, Scan: _scan}
    return handlers[type(cfg)](cfg)
