"""Anchor target assignment by BEV IoU (OpenPCDet's ``AxisAlignedTargetAssigner`` rules).

For each class separately, anchors of that class are compared with ground truth of that class:

* positive: IoU >= the class's matched threshold, or the anchor(s) of highest IoU for a ground
  truth (when that IoU is above zero), so every reachable object gets at least one anchor;
* negative (background): best IoU < the unmatched threshold;
* ignored: in between (label -1, no loss).

``iou="nearest_bev"`` (the default, as in SECOND and OpenPCDet) turns each box to its nearest
axis-aligned pose (swapping l and w when |yaw| is closer to pi/2) and takes the axis-aligned
IoU; ``iou="rotated_bev"`` uses the exact rotated BEV IoU of :mod:`robokit.pointcloud.boxes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robokit.detection.anchors import AnchorClass
from robokit.detection.box_coder import encode_boxes

__all__ = ["Targets", "assign_targets", "nearest_bev_iou", "direction_targets"]


@dataclass
class Targets:
    """Per-anchor training targets for one frame (A anchors, flattened in the head's order).

    labels: (A,) int64, 0 background, k+1 for class k, -1 ignored.
    box_residuals: (A, 7) float32 encoded ground truth (zeros where not positive).
    matched_gt: (A,) int64 index of the matched ground truth, -1 if none.
    """

    labels: np.ndarray
    box_residuals: np.ndarray
    matched_gt: np.ndarray


def _nearest_axis_aligned(boxes: np.ndarray) -> np.ndarray:
    """(N, 7) -> (N, 4) [x1, y1, x2, y2] of the box turned to its nearest axis."""
    from robokit.pointcloud.boxes import limit_period

    yaw = np.abs(limit_period(boxes[:, 6], 0.5, np.pi))
    swap = yaw > np.pi / 4
    length = np.where(swap, boxes[:, 4], boxes[:, 3])
    width = np.where(swap, boxes[:, 3], boxes[:, 4])
    return np.stack(
        [
            boxes[:, 0] - length / 2,
            boxes[:, 1] - width / 2,
            boxes[:, 0] + length / 2,
            boxes[:, 1] + width / 2,
        ],
        axis=1,
    )


def nearest_bev_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) axis-aligned BEV IoU after turning both box sets to their nearest axis."""
    from robokit.detection.kitti_eval import image_box_overlap

    return image_box_overlap(
        _nearest_axis_aligned(np.asarray(a, np.float64)),
        _nearest_axis_aligned(np.asarray(b, np.float64)),
    )


def _iou(anchors: np.ndarray, gt: np.ndarray, iou: str) -> np.ndarray:
    if iou == "nearest_bev":
        return nearest_bev_iou(anchors, gt)
    if iou == "rotated_bev":
        from robokit.pointcloud.boxes import bev_iou

        return bev_iou(anchors, gt)
    raise ValueError(f"iou must be 'nearest_bev' or 'rotated_bev', got {iou!r}")


def assign_targets(
    anchors: np.ndarray,
    gt_boxes: np.ndarray,
    gt_classes: np.ndarray,
    anchor_classes: Sequence[AnchorClass],
    iou: str = "nearest_bev",
) -> Targets:
    """Label anchors and encode their box targets.

    Args:
        anchors: (ny, nx, K * R, 7) from :func:`robokit.detection.anchors.generate_anchors`.
        gt_boxes: (M, 7) LiDAR-frame boxes; gt_classes: (M,) int class index in [0, K).
        anchor_classes: the K anchor settings (thresholds per class).

    Returns:
        :class:`Targets` over the A = ny * nx * K * R anchors, flattened in (y, x, anchor) order.
    """
    num_per_loc = anchors.shape[2]
    rotations = num_per_loc // len(anchor_classes)
    flat = anchors.reshape(-1, 7)
    labels = np.zeros(len(flat), dtype=np.int64)
    matched = np.full(len(flat), -1, dtype=np.int64)
    slot = np.tile(np.arange(num_per_loc), anchors.shape[0] * anchors.shape[1])
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 7)
    gt_classes = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
    for k, spec in enumerate(anchor_classes):
        anchor_rows = np.flatnonzero(slot // rotations == k)
        gt_rows = np.flatnonzero(gt_classes == k)
        if len(gt_rows) == 0:
            continue
        overlaps = _iou(flat[anchor_rows], gt_boxes[gt_rows], iou)  # (A_k, M_k)
        best_gt = overlaps.argmax(axis=1)
        best_iou = overlaps[np.arange(len(anchor_rows)), best_gt]
        positive = best_iou >= spec.matched_iou
        gt_best = overlaps.max(axis=0)
        forced_anchor, forced_gt = np.nonzero(
            (overlaps == gt_best[None, :]) & (gt_best[None, :] > 0)
        )
        ignored = (best_iou >= spec.unmatched_iou) & ~positive
        labels[anchor_rows[ignored]] = -1
        matched[anchor_rows[positive]] = gt_rows[best_gt[positive]]
        matched[anchor_rows[forced_anchor]] = gt_rows[forced_gt]
        labels[anchor_rows[positive]] = k + 1
        labels[anchor_rows[forced_anchor]] = k + 1
    residuals = np.zeros((len(flat), 7), dtype=np.float32)
    pos = matched >= 0
    if pos.any():
        residuals[pos] = encode_boxes(gt_boxes[matched[pos]], flat[pos].astype(np.float64))
    return Targets(labels=labels, box_residuals=residuals, matched_gt=matched)


def direction_targets(yaw: np.ndarray, offset: float = np.pi / 4) -> np.ndarray:
    """Direction bin (0 or 1) of a heading: which half-turn ``yaw - offset`` lies in."""
    from robokit.pointcloud.boxes import limit_period

    return (limit_period(np.asarray(yaw) - offset, 0.0, 2 * np.pi) // np.pi).astype(np.int64)
