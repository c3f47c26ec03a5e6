"""A recorded LiDAR topic -> one point-cloud file per scan (``robokit ros bag-to-clouds``).

Each ``sensor_msgs/PointCloud2`` message (or ``sensor_msgs/LaserScan``, as ``x, y, 0``
points) of one topic becomes a file of (N, 4) float32 ``x, y, z, intensity`` points, in bag
order, named ``000000.EXT``, ``000001.EXT``, ...:

========  =================================================================================
format    file
========  =================================================================================
kitti     ``.bin``: the KITTI velodyne layout, N x 4 little-endian float32, no header
pcd       ``.pcd``: PCD v0.7, ``DATA binary``, fields x y z intensity (F, 4 bytes each)
npz       ``.npz``: ``points`` (N, 4) float32 and ``stamp_ns`` (int64)
========  =================================================================================

All three read back through :func:`robokit.pointcloud.io.read_point_cloud`. ``stamps.csv`` lists
per file the header stamp and the bag's log time (ns). Points with a non-finite coordinate
are dropped (ROS marks missing returns with NaN); a cloud without an intensity field gets 0.
Scans left with no point are skipped and counted. The folder is built under a temporary name
beside ``out`` and renamed when complete, so a failed export writes nothing.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robokit.ros import convert
from robokit.ros.bagfile import BagFile
from robokit.ros.config import ConfigError

CLOUD_FORMATS = {"kitti": ".bin", "pcd": ".pcd", "npz": ".npz"}
CLOUD_TYPES = ("sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/LaserScan")
#: PointCloud2 field names taken as the intensity channel, in order of preference
INTENSITY_FIELDS = ("intensity", "intensities", "reflectance", "i")


@dataclass
class CloudExport:
    """What :func:`bag_to_clouds` wrote."""

    out: Path
    written: int
    empty: int
    points: int
    seconds: float


def pcd_bytes(points: np.ndarray, fields: tuple[str, ...] = ("x", "y", "z", "intensity")) -> bytes:
    """A binary PCD v0.7 file of (N, C) float32 points, one named field per column."""
    points = np.ascontiguousarray(points, dtype="<f4")
    count = len(points)
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(fields)}\nSIZE {' '.join(['4'] * len(fields))}\n"
        f"TYPE {' '.join(['F'] * len(fields))}\nCOUNT {' '.join(['1'] * len(fields))}\n"
        f"WIDTH {count}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {count}\nDATA binary\n"
    )
    return header.encode("ascii") + points.tobytes()


def cloud_points(msg: Any, msgtype: str) -> np.ndarray:
    """(N, 4) float32 ``x, y, z, intensity`` of a PointCloud2 or LaserScan; non-finite points dropped."""
    if msgtype.endswith("LaserScan"):
        return convert.laser_scan_to_points(msg)
    names = [convert.get_field(f, "name") for f in convert.get_field(msg, "fields")]
    intensity = next((n for n in INTENSITY_FIELDS if n in names), None)
    columns = ("x", "y", "z") + ((intensity,) if intensity else ())
    points = convert.pointcloud2_to_points(msg, columns, remove_invalid=True)
    if intensity is None:
        points = np.concatenate([points, np.zeros((len(points), 1), np.float32)], axis=1)
    return points


def _write_cloud(folder: Path, index: int, fmt: str, points: np.ndarray, stamp_ns: int) -> str:
    name = f"{index:06d}{CLOUD_FORMATS[fmt]}"
    if fmt == "kitti":
        points.astype("<f4").tofile(folder / name)
    elif fmt == "pcd":
        (folder / name).write_bytes(pcd_bytes(points))
    else:
        np.savez(folder / name, points=points, stamp_ns=np.int64(stamp_ns))
    return name


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: folder is not empty (pass --overwrite to replace it)")


def _check_topic(bag: BagFile, topic: str) -> str:
    """The topic's message type; ConfigError naming bag, topic and type if it is not a cloud."""
    types = bag.topics()
    clouds = sorted(t for t, kind in types.items() if kind in CLOUD_TYPES)
    if topic not in types:
        raise ConfigError(f"{bag.path}: topic {topic} not in the bag; its point-cloud topics: {clouds}")
    if types[topic] not in CLOUD_TYPES:
        raise ConfigError(f"{bag.path}: topic {topic} is {types[topic]}, not sensor_msgs/PointCloud2 or "
                          f"LaserScan; point-cloud topics: {clouds}")
    return types[topic]


def bag_to_clouds(bag_path: str | Path, topic: str, out: str | Path, fmt: str = "kitti",
                  intensity_scale: float = 1.0, overwrite: bool = False,
                  progress: bool = True) -> CloudExport:
    """Write every scan of ``topic`` in ``bag_path`` to ``out`` as ``fmt`` files (see module doc).

    ``intensity_scale`` multiplies the intensity column (e.g. 1/255 turns 8-bit Velodyne
    intensities into KITTI's [0, 1] reflectance). Returns counts and the wall time.
    """
    if fmt not in CLOUD_FORMATS:
        raise ValueError(f"--format {fmt!r} not in {sorted(CLOUD_FORMATS)}")
    out = Path(out)
    _check_out(out, overwrite)
    start = time.perf_counter()
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    written = empty = points_total = 0
    try:
        with BagFile(bag_path) as bag:
            msgtype = _check_topic(bag, topic)
            staging.mkdir(parents=True)
            rows = ["file,stamp_ns,log_ns"]
            messages = tqdm(bag.messages([topic]), total=bag.message_count([topic]), unit="scan",
                            desc=f"{Path(bag_path).name} {topic}", disable=not progress, leave=False)
            for index, (_, log_ns, msg) in enumerate(messages):
                try:
                    points = cloud_points(msg, msgtype)
                except convert.MessageError as err:
                    raise ConfigError(f"{bag.path}: {topic} message {index}: {err}") from err
                if len(points) == 0:
                    empty += 1
                    continue
                if intensity_scale != 1.0:
                    points[:, 3] *= intensity_scale
                stamp = convert.header_stamp_ns(msg) or log_ns
                rows.append(f"{_write_cloud(staging, written, fmt, points, stamp)},{stamp},{log_ns}")
                written += 1
                points_total += len(points)
            if not written:
                raise ConfigError(f"{bag.path}: topic {topic} ({msgtype}) has no scan with a valid point "
                                  f"({empty} empty scan(s))")
            (staging / "stamps.csv").write_text("\n".join(rows) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CloudExport(out, written, empty, points_total, time.perf_counter() - start)
