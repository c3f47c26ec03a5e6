"""From head outputs to KITTI detections: decode, direction fix, score filter, rotated BEV NMS.

Then, for evaluation and result files, LiDAR boxes go to the camera frame with a 2D image box
(the projection of the 8 corners by P2, clipped to the image) and an observation angle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robokit.detection.box_coder import decode_boxes
from robokit.pointcloud.frames import FrameDetections

__all__ = [
    "LidarDetections",
    "decode_predictions",
    "to_kitti_detections",
    "project_boxes_to_image",
    "write_kitti_result",
]


@dataclass
class LidarDetections:
    """Detections of one frame in the LiDAR frame: boxes (D, 7), scores (D,), labels (D,) class index."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


@torch.no_grad()
def decode_predictions(
    outputs: dict[str, torch.Tensor], anchors: torch.Tensor, config
) -> list[LidarDetections]:
    """Per-frame detections from batched head outputs (see ``SecondDetector.forward``).

    Each anchor keeps its best class; anchors below ``config.score_threshold`` are dropped, the
    ``nms_pre_max`` best go through class-agnostic rotated BEV NMS at ``config.nms_iou`` and at
    most ``nms_post_max`` survive (OpenPCDet's SECOND settings).
    """
    from robokit.pointcloud.boxes import limit_period, nms_bev

    results = []
    for b in range(outputs["cls"].shape[0]):
        scores, labels = torch.sigmoid(outputs["cls"][b]).max(dim=-1)
        boxes = decode_boxes(outputs["box"][b], anchors)
        direction = outputs["dir"][b].argmax(dim=-1)
        keep = scores >= config.score_threshold
        scores, labels, boxes, direction = scores[keep], labels[keep], boxes[keep], direction[keep]
        order = torch.argsort(scores, descending=True)[: config.nms_pre_max]
        scores, labels = scores[order].cpu().double().numpy(), labels[order].cpu().numpy()
        boxes, direction = boxes[order].cpu().double().numpy(), direction[order].cpu().numpy()
        yaw = limit_period(boxes[:, 6] - config.dir_offset, 0.0, np.pi)
        boxes[:, 6] = limit_period(yaw + config.dir_offset + np.pi * direction, 0.5, 2 * np.pi)
        boxes[:, 3:6] = np.clip(boxes[:, 3:6], 1e-3, None)
        finite = np.isfinite(boxes).all(axis=1)
        boxes, scores, labels = boxes[finite], scores[finite], labels[finite]
        if len(boxes):
            kept = nms_bev(boxes, scores, config.nms_iou)[: config.nms_post_max]
            boxes, scores, labels = boxes[kept], scores[kept], labels[kept]
        results.append(LidarDetections(boxes=boxes, scores=scores, labels=labels.astype(np.int64)))
    return results


def project_boxes_to_image(
    boxes_cam: np.ndarray, P2: np.ndarray, image_shape=(375, 1242)
) -> np.ndarray:
    """2D boxes (N, 4) [x1, y1, x2, y2] pixels: projected 3D corners, clipped to the image.

    Args:
        boxes_cam: (N, 7) camera-frame [x, y_bottom, z, h, w, l, rotation_y].
    """
    if len(boxes_cam) == 0:
        return np.zeros((0, 4))
    x, y, z, h, w, length, ry = (boxes_cam[:, i : i + 1] for i in range(7))
    local_x = np.array([1, 1, -1, -1, 1, 1, -1, -1])[None] * length / 2
    local_y = np.array([0, 0, 0, 0, -1, -1, -1, -1])[None] * h
    local_z = np.array([1, -1, -1, 1, 1, -1, -1, 1])[None] * w / 2
    cos, sin = np.cos(ry), np.sin(ry)
    corners = np.stack(
        [x + cos * local_x + sin * local_z, y + local_y, z - sin * local_x + cos * local_z], axis=-1
    )
    homogeneous = np.concatenate([corners, np.ones(corners.shape[:2] + (1,))], axis=-1)
    projected = homogeneous @ np.asarray(P2, dtype=np.float64).T  # (N, 8, 3)
    depth = np.clip(projected[..., 2], 1e-3, None)
    u, v = projected[..., 0] / depth, projected[..., 1] / depth
    height, width = image_shape
    return np.stack(
        [
            np.clip(u.min(1), 0, width - 1),
            np.clip(v.min(1), 0, height - 1),
            np.clip(u.max(1), 0, width - 1),
            np.clip(v.max(1), 0, height - 1),
        ],
        axis=1,
    )


def to_kitti_detections(
    detections: LidarDetections, calib, class_names, image_shape=(375, 1242)
) -> FrameDetections:
    """LiDAR-frame detections -> camera-frame :class:`FrameDetections` with 2D boxes."""
    from robokit.pointcloud.boxes import lidar_to_camera_boxes

    if len(detections.boxes) == 0:
        return FrameDetections.empty()
    boxes_cam = lidar_to_camera_boxes(detections.boxes, calib.R0_rect, calib.Tr_velo_to_cam)
    bbox = project_boxes_to_image(boxes_cam, calib.P2, image_shape)
    names = np.array([class_names[i] for i in detections.labels], dtype=object)
    return FrameDetections(
        names=names, scores=detections.scores.astype(np.float64), bbox=bbox, boxes_cam=boxes_cam
    )


def write_kitti_result(path: str | os.PathLike, detections: FrameDetections) -> Path:
    """Write one frame's detections in the KITTI result format (16 columns, with score), atomically."""
    from robokit.core.atomic import atomic_write_text

    lines = []
    for name, score, bbox, box in zip(
        detections.names, detections.scores, detections.bbox, detections.boxes_cam, strict=True
    ):
        x, y, z, h, w, length, ry = box
        alpha = ry - np.arctan2(x, z)
        lines.append(
            f"{name} -1 -1 {alpha:.4f} {bbox[0]:.2f} {bbox[1]:.2f} {bbox[2]:.2f} {bbox[3]:.2f} "
            f"{h:.4f} {w:.4f} {length:.4f} {x:.4f} {y:.4f} {z:.4f} {ry:.4f} {score:.6f}"
        )
    atomic_write_text(Path(path), "\n".join(lines) + ("\n" if lines else ""))
    return Path(path)
