"""Anchor boxes on the BEV feature grid, one set per class (SECOND / OpenPCDet layout).

Defaults are OpenPCDet's ``second.yaml`` for KITTI: sizes (l, w, h) Car 3.9 x 1.6 x 1.56 with its
bottom at z = -1.78 m, Pedestrian 0.8 x 0.6 x 1.73 and Cyclist 1.76 x 0.6 x 1.73 with bottoms at
-0.6 m, two yaws (0 and pi/2), matched / unmatched IoU thresholds 0.6 / 0.45 for Car and
0.5 / 0.35 for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["AnchorClass", "DEFAULT_ANCHORS", "generate_anchors"]


@dataclass(frozen=True)
class AnchorClass:
    """Anchor settings of one class: size (l, w, h) metres, bottom height, yaws, IoU thresholds."""

    name: str
    size_lwh: tuple[float, float, float]
    bottom_z: float
    rotations: tuple[float, ...] = (0.0, np.pi / 2)
    matched_iou: float = 0.5
    unmatched_iou: float = 0.35


DEFAULT_ANCHORS: tuple[AnchorClass, ...] = (
    AnchorClass("Car", (3.9, 1.6, 1.56), -1.78, matched_iou=0.6, unmatched_iou=0.45),
    AnchorClass("Pedestrian", (0.8, 0.6, 1.73), -0.6),
    AnchorClass("Cyclist", (1.76, 0.6, 1.73), -0.6),
)


def generate_anchors(
    point_range: Sequence[float],
    feature_size_yx: Sequence[int],
    anchor_classes: Sequence[AnchorClass] = DEFAULT_ANCHORS,
) -> np.ndarray:
    """Anchors centred on the cells of the BEV feature map.

    Args:
        point_range: (6,) [xmin, ymin, zmin, xmax, ymax, zmax] metres, the voxel grid's range.
        feature_size_yx: (ny, nx) of the BEV feature map.
        anchor_classes: K classes, each with R rotations.

    Returns:
        (ny, nx, K * R, 7) float32 LiDAR-frame anchors [x, y, z_center, l, w, h, yaw]; along the
        third axis class k's rotations come first (index k * R + r), matching the head's layout.
    """
    ny, nx = (int(v) for v in feature_size_yx)
    xmin, ymin, _, xmax, ymax, _ = (float(v) for v in point_range)
    step_x, step_y = (xmax - xmin) / nx, (ymax - ymin) / ny
    xs = xmin + (np.arange(nx) + 0.5) * step_x
    ys = ymin + (np.arange(ny) + 0.5) * step_y
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")  # (ny, nx)
    per_class = []
    for spec in anchor_classes:
        length, width, height = spec.size_lwh
        for yaw in spec.rotations:
            box = np.empty((ny, nx, 7), dtype=np.float32)
            box[..., 0], box[..., 1] = grid_x, grid_y
            box[..., 2] = spec.bottom_z + height / 2.0
            box[..., 3:6] = (length, width, height)
            box[..., 6] = yaw
            per_class.append(box)
    return np.stack(per_class, axis=2)
