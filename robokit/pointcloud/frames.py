"""Per-frame KITTI objects shared by detection and tracking: ground truth and detections.

Both types hold the KITTI label / result columns as arrays, one row per object, in the camera
frame: ``boxes_cam`` is ``(N, 7)`` ``[x, y_bottom, z, h, w, l, rotation_y]`` and ``bbox`` is the
``(N, 4)`` 2D image box ``[x1, y1, x2, y2]`` in pixels. Built from
:func:`robokit.pointcloud.io.read_kitti_labels` records; evaluated by
:func:`robokit.detection.kitti_eval.evaluate_kitti`; written by
:func:`robokit.detection.postprocess.write_kitti_result`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FrameDetections", "FrameGroundTruth", "object_arrays"]


@dataclass
class FrameGroundTruth:
    """Ground-truth objects of one frame (all label lines, DontCare included).

    Attributes:
        names: (G,) class names as in ``label_2`` ("Car", "Van", "DontCare", ...).
        truncated: (G,) float in [0, 1]; occluded: (G,) int in {0, 1, 2, 3}.
        bbox: (G, 4) float [x1, y1, x2, y2] 2D box in pixels.
        boxes_cam: (G, 7) float camera-frame boxes (DontCare rows are never used in 3D).
    """

    names: np.ndarray
    truncated: np.ndarray
    occluded: np.ndarray
    bbox: np.ndarray
    boxes_cam: np.ndarray

    @classmethod
    def from_objects(cls, objects: Sequence) -> FrameGroundTruth:
        """Build from ``KittiObject`` records (``robokit.pointcloud.io.read_kitti_labels``)."""
        if len(objects) == 0:
            return cls.empty()
        names, bbox, boxes_cam = object_arrays(objects)
        truncated = np.array([float(o.truncated) for o in objects])
        occluded = np.array([int(o.occluded) for o in objects])
        return cls(
            names=names, truncated=truncated, occluded=occluded, bbox=bbox, boxes_cam=boxes_cam
        )

    @classmethod
    def empty(cls) -> FrameGroundTruth:
        return cls(
            np.zeros(0, dtype=object),
            np.zeros(0),
            np.zeros(0, dtype=np.int64),
            np.zeros((0, 4)),
            np.zeros((0, 7)),
        )


@dataclass
class FrameDetections:
    """Detections of one frame in the KITTI result format.

    Attributes:
        names: (D,) class names; scores: (D,) float confidence (higher first).
        bbox: (D, 4) 2D box in pixels (projection of the 3D box, clipped to the image).
        boxes_cam: (D, 7) camera-frame boxes.
    """

    names: np.ndarray
    scores: np.ndarray
    bbox: np.ndarray
    boxes_cam: np.ndarray

    @classmethod
    def from_objects(cls, objects: Sequence) -> FrameDetections:
        """Build from result-file lines read with ``read_kitti_labels`` (score column required)."""
        if len(objects) == 0:
            return cls.empty()
        scores = [getattr(o, "score", None) for o in objects]
        if any(score is None for score in scores):
            raise ValueError("detections need the 16th (score) column on every line")
        names, bbox, boxes_cam = object_arrays(objects)
        return cls(
            names=names, scores=np.array(scores, dtype=np.float64), bbox=bbox, boxes_cam=boxes_cam
        )

    @classmethod
    def empty(cls) -> FrameDetections:
        return cls(np.zeros(0, dtype=object), np.zeros(0), np.zeros((0, 4)), np.zeros((0, 7)))


def object_arrays(objects) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """names (N,), 2D boxes (N, 4) and camera-frame boxes (N, 7) of ``KittiObject`` records."""
    names = np.array([o.type for o in objects], dtype=object)
    bbox = np.array([np.asarray(o.bbox2d, dtype=np.float64) for o in objects]).reshape(-1, 4)
    boxes_cam = np.array([_object_box(o) for o in objects]).reshape(-1, 7)
    return names, bbox, boxes_cam


def _object_box(obj) -> np.ndarray:
    loc = np.asarray(obj.location_cam, dtype=np.float64)
    h, w, length = np.asarray(obj.dimensions_hwl, dtype=np.float64)
    return np.array([loc[0], loc[1], loc[2], h, w, length, float(obj.rotation_y)])
