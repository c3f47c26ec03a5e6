"""Training augmentations for LiDAR detection (SECOND's set), all from an explicit Generator.

* :func:`random_flip`: mirror across the x axis (y -> -y, yaw -> -yaw) with probability 0.5.
* :func:`global_rotation`: turn the scene about z by an angle in ``[-pi/4, pi/4]``.
* :func:`global_scaling`: scale the scene by a factor in ``[0.95, 1.05]``.
* :class:`GroundTruthSampler`: paste objects (their points and boxes) cut from other frames,
  skipping any that would overlap an existing box in BEV, and removing scene points that
  fall inside a pasted box.

Points are ``(N, C)`` float32 with xyz first; boxes are LiDAR-frame ``(M, 7)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "random_flip",
    "global_rotation",
    "global_scaling",
    "GroundTruthSampler",
    "augment_frame",
]


def random_flip(
    points: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, probability: float = 0.5
):
    """Mirror across the x axis with ``probability``; returns new (points, boxes)."""
    if rng.random() >= probability:
        return points, boxes
    points, boxes = points.copy(), boxes.copy()
    points[:, 1] = -points[:, 1]
    boxes[:, 1] = -boxes[:, 1]
    boxes[:, 6] = -boxes[:, 6]
    return points, boxes


def global_rotation(
    points: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, max_angle: float = np.pi / 4
):
    """Rotate the whole scene about +z by a uniform angle in ``[-max_angle, max_angle]``."""
    angle = rng.uniform(-max_angle, max_angle)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]], dtype=np.float64)
    points, boxes = points.copy(), boxes.copy()
    points[:, :2] = (points[:, :2].astype(np.float64) @ rotation.T).astype(points.dtype)
    boxes[:, :2] = boxes[:, :2] @ rotation.T
    boxes[:, 6] = boxes[:, 6] + angle
    return points, boxes


def global_scaling(
    points: np.ndarray,
    boxes: np.ndarray,
    rng: np.random.Generator,
    scale_range: Sequence[float] = (0.95, 1.05),
):
    """Scale positions and sizes by one uniform factor from ``scale_range``."""
    factor = rng.uniform(*scale_range)
    points, boxes = points.copy(), boxes.copy()
    points[:, :3] *= factor
    boxes[:, :6] *= factor
    return points, boxes


@dataclass
class _DatabaseObject:
    points: np.ndarray  # (P, C) the object's points where they were cut (scene frame)
    box: np.ndarray  # (7,)
    class_index: int


class GroundTruthSampler:
    """A database of objects cut from training frames, pasted into other frames.

    Args:
        frames: iterable of objects with ``points``, ``gt_boxes``, ``gt_classes`` (``KittiFrame``).
        samples_per_class: how many objects of each class to try to paste per frame.
        min_points: objects with fewer points are left out of the database.
    """

    def __init__(self, frames, samples_per_class: Sequence[int], min_points: int = 5) -> None:
        from robokit.pointcloud.boxes import points_in_boxes

        self.samples_per_class = tuple(int(n) for n in samples_per_class)
        self.database: list[list[_DatabaseObject]] = [[] for _ in self.samples_per_class]
        for frame in frames:
            if len(frame.gt_boxes) == 0:
                continue
            inside = points_in_boxes(frame.points[:, :3], frame.gt_boxes)
            for column, (box, class_index) in enumerate(
                zip(frame.gt_boxes, frame.gt_classes, strict=True)
            ):
                cut = frame.points[inside[:, column]]
                if len(cut) >= min_points and class_index < len(self.database):
                    self.database[class_index].append(
                        _DatabaseObject(cut.copy(), box.copy(), int(class_index))
                    )

    def __len__(self) -> int:
        return sum(len(objects) for objects in self.database)

    def sample(
        self, points: np.ndarray, boxes: np.ndarray, classes: np.ndarray, rng: np.random.Generator
    ):
        """Paste sampled objects that do not overlap existing boxes; returns (points, boxes, classes)."""
        from robokit.pointcloud.boxes import bev_iou, points_in_boxes

        new_boxes, new_points, new_classes = [], [], []
        current = boxes.astype(np.float64)
        for class_index, count in enumerate(self.samples_per_class):
            pool = self.database[class_index]
            if count <= 0 or not pool:
                continue
            for choice in rng.choice(len(pool), size=min(count, len(pool)), replace=False):
                item = pool[int(choice)]
                candidate = item.box[None].astype(np.float64)
                if len(current) and bev_iou(candidate, current).max() > 0:
                    continue
                current = np.vstack([current, candidate]) if len(current) else candidate
                new_boxes.append(item.box)
                new_points.append(item.points)
                new_classes.append(class_index)
        if not new_boxes:
            return points, boxes, classes
        pasted = np.stack(new_boxes).astype(boxes.dtype)
        covered = points_in_boxes(points[:, :3], pasted).any(axis=1)
        points = np.concatenate([points[~covered], *new_points], axis=0)
        return (
            points,
            np.vstack([boxes, pasted]),
            np.concatenate([classes, np.asarray(new_classes, dtype=classes.dtype)]),
        )


def augment_frame(
    points: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    rng: np.random.Generator,
    sampler: GroundTruthSampler | None = None,
    flip: bool = True,
    rotation: float = np.pi / 4,
    scale_range: Sequence[float] = (0.95, 1.05),
):
    """GT sampling (optional), flip, rotation, scaling in SECOND's order; returns (points, boxes, classes)."""
    if sampler is not None:
        points, boxes, classes = sampler.sample(points, boxes, classes, rng)
    if flip:
        points, boxes = random_flip(points, boxes, rng)
    if rotation > 0:
        points, boxes = global_rotation(points, boxes, rng, rotation)
    if scale_range[0] != 1.0 or scale_range[1] != 1.0:
        points, boxes = global_scaling(points, boxes, rng, scale_range)
    return points, boxes, classes
