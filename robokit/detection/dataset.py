"""The KITTI 3D object dataset in its standard layout, with boxes in the LiDAR frame.

Layout (``root`` may be the folder holding ``training/`` or the ``training`` folder itself)::

    root/training/velodyne/000000.bin   (N, 4) float32 x, y, z, reflectance
    root/training/label_2/000000.txt    camera-frame boxes (KITTI label format)
    root/training/calib/000000.txt      P2, R0_rect, Tr_velo_to_cam
    root/ImageSets/train.txt            frame ids of a split (optional: without it, all frames)

Readers come from :mod:`robokit.pointcloud.io`; their errors (truncated scans, malformed label lines)
name the file and line and pass through unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robokit.pointcloud.frames import FrameGroundTruth

__all__ = ["KittiFrame", "KittiObjectDataset", "in_camera_fov", "KITTI_IMAGE_SHAPE"]

#: (height, width) of KITTI's left colour images; used to clip projected boxes and for the FOV
#: filter when the images themselves are absent (frames vary by a few pixels: 370-376 x 1224-1242).
KITTI_IMAGE_SHAPE = (375, 1242)


@dataclass
class KittiFrame:
    """One frame.

    points: (N, 4) float32 LiDAR x, y, z (metres), reflectance.
    gt_boxes: (M, 7) float32 LiDAR-frame boxes of the trained classes.
    gt_classes: (M,) int64 index into the dataset's ``classes``.
    annotations: every label line (DontCare included) in camera frame, for evaluation.
    calib: the frame's ``KittiCalib``.
    """

    frame_id: str
    points: np.ndarray
    gt_boxes: np.ndarray
    gt_classes: np.ndarray
    annotations: FrameGroundTruth
    calib: object


def in_camera_fov(
    points: np.ndarray, calib, image_shape: Sequence[int] = KITTI_IMAGE_SHAPE
) -> np.ndarray:
    """(N,) bool: points in front of the camera whose projection by P2 lands inside the image."""
    rect = np.asarray(calib.velo_to_rect(np.asarray(points[:, :3], dtype=np.float64)))
    homogeneous = np.hstack([rect, np.ones((len(rect), 1))])
    projected = homogeneous @ np.asarray(calib.P2, dtype=np.float64).T
    depth = projected[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = projected[:, 0] / depth, projected[:, 1] / depth
    height, width = image_shape
    return (depth > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)


def _resolve_training_dir(root: Path) -> Path:
    for candidate in (root / "training", root):
        if (candidate / "velodyne").is_dir():
            return candidate
    raise FileNotFoundError(
        f"{root}: no KITTI object layout found (expected training/velodyne/ or velodyne/)"
    )


class KittiObjectDataset:
    """Frames of a KITTI object split.

    Args:
        root: dataset folder (see the module docstring).
        split: ImageSets split name; when ``root/ImageSets/<split>.txt`` is absent, every frame
            with a velodyne file is used.
        classes: trained class names (ground truth of other classes is kept only for evaluation).
        fov_only: keep only points inside the camera image (KITTI labels exist only there).
        image_shape: (height, width) for the FOV filter and 2D box clipping.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        classes: Sequence[str] = ("Car", "Pedestrian", "Cyclist"),
        fov_only: bool = True,
        image_shape: Sequence[int] = KITTI_IMAGE_SHAPE,
        frame_ids: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.training_dir = _resolve_training_dir(self.root)
        self.classes = tuple(classes)
        self.fov_only = fov_only
        self.image_shape = tuple(int(v) for v in image_shape)
        self.frame_ids = list(frame_ids) if frame_ids is not None else self._split_ids(split)
        if not self.frame_ids:
            raise FileNotFoundError(f"{self.training_dir / 'velodyne'}: no frames found")

    def _split_ids(self, split: str) -> list[str]:
        split_file = self.training_dir.parent / "ImageSets" / f"{split}.txt"
        if split_file.is_file():
            ids = []
            for number, line in enumerate(split_file.read_text().splitlines(), start=1):
                text = line.strip()
                if not text:
                    continue
                if not text.isdigit():
                    raise ValueError(
                        f"{split_file}:{number}: expected a frame id of digits, got {text!r}"
                    )
                ids.append(text.zfill(6))
            return ids
        return sorted(p.stem for p in (self.training_dir / "velodyne").glob("*.bin"))

    def __len__(self) -> int:
        return len(self.frame_ids)

    def paths(self, frame_id: str) -> dict[str, Path]:
        return {
            "velodyne": self.training_dir / "velodyne" / f"{frame_id}.bin",
            "label": self.training_dir / "label_2" / f"{frame_id}.txt",
            "calib": self.training_dir / "calib" / f"{frame_id}.txt",
        }

    def __getitem__(self, index: int) -> KittiFrame:
        from robokit.pointcloud.boxes import camera_to_lidar_boxes
        from robokit.pointcloud.io import read_kitti_calib, read_kitti_labels, read_kitti_velodyne

        frame_id = self.frame_ids[index]
        paths = self.paths(frame_id)
        points = read_kitti_velodyne(paths["velodyne"])
        calib = read_kitti_calib(paths["calib"])
        objects = read_kitti_labels(paths["label"]) if paths["label"].is_file() else []
        if self.fov_only and len(points):
            points = points[in_camera_fov(points, calib, self.image_shape)]
        annotations = FrameGroundTruth.from_objects(objects)
        keep = np.array([o.type in self.classes for o in objects], dtype=bool)
        boxes_cam = annotations.boxes_cam[keep] if len(objects) else np.zeros((0, 7))
        gt_boxes = (
            camera_to_lidar_boxes(boxes_cam, calib.R0_rect, calib.Tr_velo_to_cam)
            if len(boxes_cam)
            else np.zeros((0, 7))
        )
        gt_classes = np.array(
            [self.classes.index(o.type) for o in objects if o.type in self.classes], dtype=np.int64
        )
        return KittiFrame(
            frame_id=frame_id,
            points=np.ascontiguousarray(points, dtype=np.float32),
            gt_boxes=gt_boxes.astype(np.float32),
            gt_classes=gt_classes,
            annotations=annotations,
            calib=calib,
        )
