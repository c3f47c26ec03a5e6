"""Readers and writers for point-cloud files: KITTI object data, ModelNet40 HDF5, OFF meshes, PCD/PLY.

Every reader checks what it reads and raises ``ValueError`` (or ``FileNotFoundError``) naming
the file, and the line for text formats, instead of returning silently wrong arrays.
Writers go through :mod:`robokit.core.atomic`, so a crash never leaves half a file.

Frames (KITTI): velodyne x forward, y left, z up (metres); rectified camera x right, y down,
z forward. ``velo_to_rect(p) = R0_rect @ (Tr_velo_to_cam @ [p; 1])``.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "KittiObject",
    "KittiCalib",
    "read_kitti_velodyne",
    "read_kitti_labels",
    "read_kitti_calib",
    "load_modelnet_h5",
    "write_modelnet_h5",
    "read_shape_names",
    "read_off",
    "sample_mesh_surface",
    "read_point_cloud",
]

PathLike = str | os.PathLike


def _existing_file(path: PathLike) -> Path:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    return file


# --------------------------------------------------------------------------- KITTI
def read_kitti_velodyne(path: PathLike) -> np.ndarray:
    """Read a KITTI velodyne scan: a flat float32 array of ``x, y, z, reflectance`` records.

    Returns:
        (N, 4) float32; x, y, z in metres in the velodyne frame, reflectance in [0, 1].
    Raises:
        ValueError: the size is not a multiple of 16 bytes (a truncated or foreign file), or a
            value is NaN/inf (the first bad point index is named).
    """
    file = _existing_file(path)
    size = file.stat().st_size
    if size % 16 != 0:
        raise ValueError(
            f"{file}: size {size} bytes is not a multiple of 16 (4 float32 per point); the file is "
            "truncated or not a KITTI velodyne scan"
        )
    points = np.fromfile(file, dtype="<f4").reshape(-1, 4)
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        raise ValueError(f"{file}: point {int(np.flatnonzero(~finite)[0])} has a NaN or inf value")
    return points


@dataclass(frozen=True)
class KittiObject:
    """One line of a KITTI ``label_2`` file (camera-frame box, metres and radians)."""

    type: str
    truncated: float
    occluded: int
    alpha: float
    bbox2d: np.ndarray  # (4,) left, top, right, bottom in image pixels
    dimensions_hwl: np.ndarray  # (3,) height, width, length
    location_cam: np.ndarray  # (3,) bottom-centre x, y, z in the rectified camera frame
    rotation_y: float  # yaw about the camera y axis, [-pi, pi]
    score: float = 1.0  # detection confidence; 1.0 for ground truth


def read_kitti_labels(path: PathLike) -> list[KittiObject]:
    """Parse a KITTI ``label_2`` file (15 fields per line, 16 with a score).

    Raises:
        ValueError: naming the file and line when a line has the wrong field count or a
            non-numeric / non-finite value.
    """
    file = _existing_file(path)
    objects = []
    for line_no, line in enumerate(file.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (15, 16):
            raise ValueError(
                f"{file}:{line_no}: expected 15 or 16 fields, got {len(fields)}: {line!r}"
            )
        try:
            values = np.array([float(v) for v in fields[1:]], dtype=np.float64)
        except ValueError as err:
            raise ValueError(f"{file}:{line_no}: non-numeric field ({err}): {line!r}") from None
        if not np.isfinite(values).all():
            raise ValueError(f"{file}:{line_no}: NaN or inf in {line!r}")
        objects.append(
            KittiObject(
                type=fields[0],
                truncated=float(values[0]),
                occluded=int(values[1]),
                alpha=float(values[2]),
                bbox2d=values[3:7].copy(),
                dimensions_hwl=values[7:10].copy(),
                location_cam=values[10:13].copy(),
                rotation_y=float(values[13]),
                score=float(values[14]) if len(values) == 15 else 1.0,
            )
        )
    return objects


@dataclass(frozen=True)
class KittiCalib:
    """KITTI calibration: camera 2 projection, rectification and velodyne->camera transform."""

    P2: np.ndarray  # (3, 4) projection of rectified camera coordinates into image 2
    R0_rect: np.ndarray  # (3, 3) rectifying rotation
    Tr_velo_to_cam: np.ndarray  # (3, 4) rigid velodyne -> (unrectified) camera 0
    Tr_imu_to_velo: np.ndarray | None = None  # (3, 4) rigid IMU -> velodyne, when the file has it

    def velo_to_rect(self, points: np.ndarray) -> np.ndarray:
        """Velodyne-frame points (N, 3) -> rectified camera frame (N, 3), float64."""
        xyz = np.asarray(points, dtype=np.float64)[:, :3]
        cam = xyz @ self.Tr_velo_to_cam[:, :3].T + self.Tr_velo_to_cam[:, 3]
        return cam @ self.R0_rect.T

    def rect_to_velo(self, points: np.ndarray) -> np.ndarray:
        """Rectified camera-frame points (N, 3) -> velodyne frame (N, 3), float64."""
        rect = np.asarray(points, dtype=np.float64)[:, :3]
        cam = np.linalg.solve(self.R0_rect, rect.T).T
        rotation, translation = self.Tr_velo_to_cam[:, :3], self.Tr_velo_to_cam[:, 3]
        return (cam - translation) @ np.linalg.inv(rotation).T

    def project_rect_to_image(self, points: np.ndarray) -> np.ndarray:
        """Rectified camera points (N, 3) -> image-2 pixel coordinates (N, 2)."""
        rect = np.asarray(points, dtype=np.float64)[:, :3]
        homog = rect @ self.P2[:, :3].T + self.P2[:, 3]
        return homog[:, :2] / homog[:, 2:3]


#: calib keys and their shapes; the second name is the one used by the KITTI tracking files
_CALIB_KEYS = {
    "P2": ("P2", (3, 4)),
    "R0_rect": ("R_rect", (3, 3)),
    "Tr_velo_to_cam": ("Tr_velo_cam", (3, 4)),
}
#: keys read when present (the IMU extrinsic, needed for ego motion from oxts)
_OPTIONAL_CALIB_KEYS = {"Tr_imu_to_velo": ("Tr_imu_velo", (3, 4))}


def read_kitti_calib(path: PathLike) -> KittiCalib:
    """Parse a KITTI calib file (``key: v1 v2 ...`` per line).

    Accepts the object-benchmark keys (``P2``, ``R0_rect``, ``Tr_velo_to_cam``, optional
    ``Tr_imu_to_velo``) and the tracking-benchmark aliases (``R_rect``, ``Tr_velo_cam``,
    ``Tr_imu_velo``).

    Raises:
        ValueError: naming the file (and line) for a missing key, a wrong value count or a
            non-numeric value.
    """
    file = _existing_file(path)
    entries: dict[str, tuple[int, np.ndarray]] = {}
    for line_no, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        if not sep:
            key, _, rest = line.strip().partition(" ")  # tracking calib files omit the colon
        try:
            entries[key.strip()] = (
                line_no,
                np.array([float(v) for v in rest.split()], dtype=np.float64),
            )
        except ValueError as err:
            raise ValueError(f"{file}:{line_no}: non-numeric value ({err}) in {line!r}") from None
    matrices = {}
    for name, (alias, shape) in (_CALIB_KEYS | _OPTIONAL_CALIB_KEYS).items():
        key = name if name in entries else alias
        if key not in entries:
            if name in _OPTIONAL_CALIB_KEYS:
                continue
            raise ValueError(f"{file}: missing calibration key {name!r} (or {alias!r})")
        line_no, values = entries[key]
        if values.size != int(np.prod(shape)):
            raise ValueError(
                f"{file}:{line_no}: {key} needs {int(np.prod(shape))} values, got {values.size}"
            )
        if not np.isfinite(values).all():
            raise ValueError(f"{file}:{line_no}: {key} has NaN or inf")
        matrices[name] = values.reshape(shape)
    return KittiCalib(**matrices)


# --------------------------------------------------------------------------- ModelNet40 HDF5
def _natural_key(path: Path) -> list:
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", path.name)]


def _modelnet_files(path: Path, split: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such ModelNet40 HDF5 file or folder")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    files = sorted(path.glob(f"ply_data_{split}*.h5"), key=_natural_key)
    if not files:
        raise FileNotFoundError(f"{path}: no ply_data_{split}*.h5 files (ModelNet40 HDF5 layout)")
    return files


def _read_modelnet_file(file: Path) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    try:
        with h5py.File(file, "r") as handle:
            for key in ("data", "label"):
                if key not in handle:
                    raise ValueError(
                        f"{file}: missing dataset {key!r} (has {sorted(handle.keys())})"
                    )
            data = np.asarray(handle["data"][...])
            label = np.asarray(handle["label"][...])
    except OSError as err:
        raise ValueError(f"{file}: not a readable HDF5 file ({err})") from None
    if data.ndim != 3 or data.shape[2] < 3:
        raise ValueError(f"{file}: 'data' must have shape [N, P, 3], got {data.shape}")
    label = label.reshape(label.shape[0], -1) if label.ndim > 1 else label[:, None]
    if label.shape != (data.shape[0], 1):
        raise ValueError(
            f"{file}: 'label' must have shape [N, 1] with N={data.shape[0]}, got {label.shape}"
        )
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"{file}: 'label' must be integer, got {label.dtype}")
    finite = np.isfinite(data).reshape(data.shape[0], -1).all(axis=1)
    if not finite.all():
        raise ValueError(f"{file}: 'data' cloud {int(np.flatnonzero(~finite)[0])} has NaN or inf")
    return data[:, :, :3].astype(np.float32), label[:, 0].astype(np.int64)


def load_modelnet_h5(path_or_dir: PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load ModelNet40-layout HDF5: a single file, or every ``ply_data_{split}*.h5`` of a folder.

    Returns:
        data (N, P, 3) float32 and label (N,) int64, files concatenated in natural name order.
    """
    files = _modelnet_files(Path(path_or_dir), split)
    parts = [_read_modelnet_file(file) for file in files]
    num_points = {p[0].shape[1] for p in parts}
    if len(num_points) != 1:
        raise ValueError(f"{path_or_dir}: files disagree on points per cloud: {sorted(num_points)}")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def write_modelnet_h5(path: PathLike, data: np.ndarray, label: np.ndarray) -> Path:
    """Write ``data`` (N, P, 3) float32 and ``label`` (N,) or (N, 1) ints as ModelNet40 HDF5, atomically.

    The file holds ``data`` [N, P, 3] float32 and ``label`` [N, 1] uint8 (int64 when a label is
    above 255), as in ``modelnet40_ply_hdf5_2048``.
    """
    import h5py

    from robokit.core.atomic import atomic_path

    clouds = np.asarray(data)
    labels = np.asarray(label).reshape(-1)
    if clouds.ndim != 3 or clouds.shape[2] != 3:
        raise ValueError(f"data must have shape (N, P, 3), got {clouds.shape}")
    if labels.shape[0] != clouds.shape[0]:
        raise ValueError(f"label has {labels.shape[0]} entries for {clouds.shape[0]} clouds")
    if not np.isfinite(clouds).all():
        raise ValueError("data has NaN or inf")
    label_dtype = (
        np.uint8 if labels.size == 0 or (labels.min() >= 0 and labels.max() <= 255) else np.int64
    )
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("data", data=clouds.astype(np.float32))
        handle.create_dataset("label", data=labels.astype(label_dtype)[:, None])
    return Path(path)


def read_shape_names(folder: PathLike) -> list[str]:
    """Class names from ``shape_names.txt`` of a ModelNet40-layout folder (line i = label i)."""
    file = _existing_file(Path(folder) / "shape_names.txt")
    return [line.strip() for line in file.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- OFF meshes
def _off_tokens(file: Path):
    """Yield (line_no, tokens) of an OFF file without comments and blank lines."""
    with open(file) as handle:
        for line_no, line in enumerate(handle, start=1):
            tokens = line.split("#", 1)[0].split()
            if tokens:
                yield line_no, tokens


def read_off(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an OFF mesh; polygons are fan-triangulated.

    Also accepts ModelNet40's known defect where the counts follow ``OFF`` on the first line
    (``OFF490 518 0``).

    Returns:
        vertices (V, 3) float64 and faces (F, 3) int64.
    Raises:
        ValueError: naming the file and line for a bad header, a short file, a non-numeric value
            or a face index out of range.
    """
    file = _existing_file(path)
    lines = _off_tokens(file)
    try:
        line_no, tokens = next(lines)
    except StopIteration:
        raise ValueError(f"{file}: empty file, expected an 'OFF' header") from None
    head = tokens[0]
    if not head.startswith("OFF"):
        raise ValueError(f"{file}:{line_no}: expected 'OFF' header, got {head!r}")
    counts = ([head[3:]] if len(head) > 3 else []) + tokens[1:]
    if not counts:
        try:
            line_no, counts = next(lines)
        except StopIteration:
            raise ValueError(f"{file}: missing the vertex/face count line") from None
    try:
        num_vertices, num_faces = int(counts[0]), int(counts[1])
    except (ValueError, IndexError):
        raise ValueError(f"{file}:{line_no}: bad count line {counts!r} (want 'V F E')") from None
    vertices = np.empty((num_vertices, 3))
    for index in range(num_vertices):
        line_no, tokens = _next_line(lines, file, f"vertex {index} of {num_vertices}")
        try:
            vertices[index] = [float(t) for t in tokens[:3]]
        except ValueError:
            raise ValueError(f"{file}:{line_no}: bad vertex {tokens!r}") from None
        if len(tokens) < 3 or not np.isfinite(vertices[index]).all():
            raise ValueError(f"{file}:{line_no}: vertex needs 3 finite numbers, got {tokens!r}")
    triangles = []
    for index in range(num_faces):
        line_no, tokens = _next_line(lines, file, f"face {index} of {num_faces}")
        try:
            size = int(tokens[0])
            corners = [int(t) for t in tokens[1 : 1 + size]]
        except ValueError:
            raise ValueError(f"{file}:{line_no}: bad face {tokens!r}") from None
        if size < 3 or len(corners) != size:
            raise ValueError(f"{file}:{line_no}: face declares {size} corners, has {len(corners)}")
        if min(corners) < 0 or max(corners) >= num_vertices:
            raise ValueError(
                f"{file}:{line_no}: face index out of range 0..{num_vertices - 1}: {corners}"
            )
        triangles += [(corners[0], corners[k], corners[k + 1]) for k in range(1, size - 1)]
    return vertices, np.asarray(triangles, dtype=np.int64).reshape(-1, 3)


def _next_line(lines, file: Path, what: str):
    try:
        return next(lines)
    except StopIteration:
        raise ValueError(f"{file}: file ends before {what} (truncated?)") from None


def sample_mesh_surface(
    vertices: np.ndarray, faces: np.ndarray, num_points: int, rng: np.random.Generator
) -> np.ndarray:
    """Sample ``num_points`` points uniformly over a triangle mesh's surface (area-weighted).

    Args:
        vertices: (V, 3) float; faces: (F, 3) int vertex indices.
    Returns:
        (num_points, 3) float32. Triangles are picked with probability proportional to their
        area, then a point is drawn uniformly inside (square-root barycentric trick).
    """
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if areas.size == 0 or areas.sum() <= 0:
        raise ValueError("mesh has no triangle with positive area")
    chosen = rng.choice(len(areas), size=num_points, p=areas / areas.sum())
    u, v = rng.uniform(size=(2, num_points))
    root = np.sqrt(u)
    a, b, c = tri[chosen, 0], tri[chosen, 1], tri[chosen, 2]
    points = (1 - root)[:, None] * a + (root * (1 - v))[:, None] * b + (root * v)[:, None] * c
    return points.astype(np.float32)


# --------------------------------------------------------------------------- generic
def read_point_cloud(path: PathLike, num_mesh_points: int = 2048, seed: int = 0) -> np.ndarray:
    """Read a point cloud by extension: ``.bin`` (KITTI), ``.pcd``/``.ply`` (open3d), ``.off``
    (surface-sampled, ``num_mesh_points`` points), ``.npy``, ``.npz`` (its ``points`` array, as
    ``robokit ros bag-to-clouds`` writes) or ``.txt``/``.xyz`` (whitespace or comma separated columns).

    Returns:
        (N, C) float32 with xyz first (KITTI and PCD/PLY with an intensity field: C = 4).
    """
    file = _existing_file(path)
    suffix = file.suffix.lower()
    if suffix == ".bin":
        return read_kitti_velodyne(file)
    if suffix == ".off":
        vertices, faces = read_off(file)
        return sample_mesh_surface(vertices, faces, num_mesh_points, np.random.default_rng(seed))
    if suffix in (".pcd", ".ply"):
        return _read_open3d(file)
    if suffix in (".npy", ".npz"):
        return _checked_cloud(_load_numpy_cloud(file), file)
    if suffix in (".txt", ".xyz", ".csv"):
        return _read_text_cloud(file)
    raise ValueError(f"{file}: unsupported point-cloud extension {suffix!r}")


def _load_numpy_cloud(file: Path) -> np.ndarray:
    """The array of a ``.npy`` file, or the ``points`` array of a ``.npz`` file."""
    try:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return loaded
        with loaded:
            arrays = {name: loaded[name] for name in loaded.files if name == "points"}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{file}: not a readable {file.suffix} file ({err})") from None
    if "points" not in arrays:
        raise ValueError(f"{file}: no 'points' array in the .npz file")
    return arrays["points"]


def _checked_cloud(array: np.ndarray, file: Path) -> np.ndarray:
    from robokit.pointcloud.points import check_cloud

    try:
        return check_cloud(array, name=str(file))
    except ValueError as err:
        raise ValueError(str(err)) from None


def _read_text_cloud(file: Path) -> np.ndarray:
    rows = []
    width = None
    for line_no, line in enumerate(file.read_text().splitlines(), start=1):
        tokens = line.replace(",", " ").split()
        if not tokens or tokens[0].startswith("#"):
            continue
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            raise ValueError(f"{file}:{line_no}: non-numeric value in {line!r}") from None
        width = width or len(values)
        if len(values) != width or width < 3 or not np.isfinite(values).all():
            raise ValueError(
                f"{file}:{line_no}: expected {max(width, 3)} finite columns, got {line!r}"
            )
        rows.append(values)
    if not rows:
        raise ValueError(f"{file}: no points")
    return np.asarray(rows, dtype=np.float32)


def _read_open3d(file: Path) -> np.ndarray:
    from robokit.optional import require

    o3d = require("open3d", "lidar")
    cloud = o3d.t.io.read_point_cloud(str(file))
    if "positions" not in cloud.point or len(cloud.point["positions"]) == 0:
        raise ValueError(f"{file}: open3d read no points (corrupt or empty {file.suffix} file)")
    xyz = cloud.point["positions"].numpy().astype(np.float32)
    columns = [xyz]
    for field in ("intensity", "intensities", "reflectance"):
        if field in cloud.point:
            columns.append(
                cloud.point[field].numpy().reshape(len(xyz), -1)[:, :1].astype(np.float32)
            )
            break
    return _checked_cloud(np.hstack(columns), file)
