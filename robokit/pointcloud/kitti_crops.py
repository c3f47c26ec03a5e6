"""Object crops from real KITTI scans: the points inside each labelled 3D box, as a classification set.

For each labelled object (``DontCare`` skipped) the camera-frame box is moved to the LiDAR
frame with the scan's calibration (:func:`robokit.pointcloud.boxes.camera_to_lidar_boxes`), slightly
enlarged (``margin_m`` on every side), and the points inside it
(:func:`robokit.pointcloud.boxes.points_in_boxes`) are

1. centred on the box centre and turned by ``-yaw`` so every object faces +x,
2. scaled to the unit sphere (centroid, max norm 1, as ModelNet40),
3. resampled to ``num_points`` (without replacement when there are enough points, else with).

Objects with fewer than ``min_points`` points are skipped. The result has the layout of the
procedural and ModelNet40 sets (``data`` (N, P, 3), ``label`` (N,)), so the same classifiers run
on it. With the three scans in ``../shared/data`` it is tiny (a handful of objects); it is a
real-data smoke test, not a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robokit.pointcloud.io import read_kitti_calib, read_kitti_labels, read_kitti_velodyne
from robokit.pointcloud.points import normalize_unit_sphere

__all__ = ["KITTI_CROP_CLASSES", "KittiCrops", "make_kitti_crops", "prepare_kitti_crops"]

#: KITTI object types used as classes (label = index); other types are skipped
KITTI_CROP_CLASSES: tuple[str, ...] = (
    "Car",
    "Van",
    "Truck",
    "Pedestrian",
    "Person_sitting",
    "Cyclist",
    "Tram",
    "Misc",
)


@dataclass(frozen=True)
class KittiCrops:
    """A crop set: clouds, labels and where each crop came from."""

    data: np.ndarray  # (N, P, 3) float32, unit sphere, heading along +x
    label: np.ndarray  # (N,) int64 index into KITTI_CROP_CLASSES
    frame: np.ndarray  # (N,) str frame id, e.g. "000001"
    object_index: np.ndarray  # (N,) int64 line of the object in its label file (0-based)
    raw_points: np.ndarray  # (N,) int64 number of LiDAR points inside the box before resampling


def _frame_ids(root: Path) -> list[str]:
    velodyne = root / "velodyne"
    if not velodyne.is_dir():
        raise FileNotFoundError(
            f"{root}: expected a KITTI object folder with velodyne/, label_2/, calib/"
        )
    return sorted(path.stem for path in velodyne.glob("*.bin"))


def _crop_object(points: np.ndarray, box: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Points (K, 3) of one box, centred and turned so the box heading is +x."""
    local = points[inside, :3].astype(np.float64) - box[:3]
    cos, sin = np.cos(-box[6]), np.sin(-box[6])
    turned = local @ np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]])
    return turned.astype(np.float32)


def make_kitti_crops(
    root: str | Path,
    num_points: int = 1024,
    min_points: int = 50,
    margin_m: float = 0.1,
    seed: int = 0,
    classes: tuple[str, ...] = KITTI_CROP_CLASSES,
) -> KittiCrops:
    """Cut every labelled object of a KITTI ``object/training``-style folder into a crop.

    Args:
        root: folder holding ``velodyne/*.bin``, ``label_2/*.txt`` and ``calib/*.txt``.
        num_points: points per crop after resampling.
        min_points: objects with fewer LiDAR points inside their box are skipped.
        margin_m: metres added on every side of the box before selecting points.
        seed: seeds the resampling.
        classes: KITTI types to keep (label = index in this tuple).
    """
    from robokit.pointcloud.boxes import camera_to_lidar_boxes, points_in_boxes

    root = Path(root)
    rng = np.random.default_rng(seed)
    clouds, labels, frames, indices, counts = [], [], [], [], []
    for frame in _frame_ids(root):
        objects = read_kitti_labels(root / "label_2" / f"{frame}.txt")
        keep = [i for i, obj in enumerate(objects) if obj.type in classes]
        if not keep:
            continue
        calib = read_kitti_calib(root / "calib" / f"{frame}.txt")
        scan = read_kitti_velodyne(root / "velodyne" / f"{frame}.bin")
        boxes_cam = np.array(
            [
                np.r_[objects[i].location_cam, objects[i].dimensions_hwl, objects[i].rotation_y]
                for i in keep
            ]
        )
        boxes = camera_to_lidar_boxes(boxes_cam, calib.R0_rect, calib.Tr_velo_to_cam)
        grown = boxes.copy()
        grown[:, 3:6] += 2 * margin_m
        inside = points_in_boxes(scan[:, :3], grown)
        for column, object_index in enumerate(keep):
            crop = _crop_object(scan, boxes[column], inside[:, column])
            if len(crop) < min_points:
                continue
            chosen = rng.choice(len(crop), size=num_points, replace=len(crop) < num_points)
            clouds.append(normalize_unit_sphere(crop[chosen]))
            labels.append(classes.index(objects[object_index].type))
            frames.append(frame)
            indices.append(object_index)
            counts.append(len(crop))
    return KittiCrops(
        data=np.asarray(clouds, dtype=np.float32).reshape(-1, num_points, 3),
        label=np.asarray(labels, dtype=np.int64),
        frame=np.asarray(frames, dtype=str),
        object_index=np.asarray(indices, dtype=np.int64),
        raw_points=np.asarray(counts, dtype=np.int64),
    )


def prepare_kitti_crops(out_dir: str | Path, root: str | Path, **kwargs) -> Path:
    """Write the crops of ``root`` as ``ply_data_test0.h5`` + ``shape_names.txt`` (ModelNet40 layout)."""
    from robokit.core.atomic import atomic_write_text
    from robokit.pointcloud.io import write_modelnet_h5

    crops = make_kitti_crops(root, **kwargs)
    if len(crops.label) == 0:
        raise ValueError(f"{root}: no labelled object with enough points to crop")
    out = Path(out_dir)
    write_modelnet_h5(out / "ply_data_test0.h5", crops.data, crops.label)
    atomic_write_text(
        out / "shape_names.txt", "\n".join(kwargs.get("classes", KITTI_CROP_CLASSES)) + "\n"
    )
    return out
