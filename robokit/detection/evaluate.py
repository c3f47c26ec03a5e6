"""Run a detector over KITTI frames (clean or corrupted) and score it with the KITTI AP."""

from __future__ import annotations

import numpy as np
import torch

from robokit.detection.kitti_eval import DetectionEvalResult, evaluate_kitti
from robokit.pointcloud.frames import FrameDetections

__all__ = ["evaluate_detector", "evaluate_frames", "detect_frames"]


@torch.no_grad()
def detect_frames(
    model,
    dataset,
    corruption: str | None = None,
    severity: int = 0,
    seed: int = 0,
    progress: bool = True,
    transform=None,
) -> list[FrameDetections]:
    """Camera-frame detections for every frame of ``dataset``.

    Args:
        model: a ``SecondDetector`` (put in eval mode here).
        dataset: indexable ``KittiFrame`` source with ``classes`` and ``image_shape``.
        corruption, severity: a ``robokit.pointcloud.corruptions`` name (kitti-c suite, metres) applied
            to each scan before voxelization; frame i uses ``Generator(seed + i)``.
        transform: optional ``transform(points (N, C), frame_index) -> (M, C)`` applied instead.
    """
    from tqdm import tqdm

    from robokit.detection.dataset import KITTI_IMAGE_SHAPE
    from robokit.detection.postprocess import decode_predictions, to_kitti_detections

    image_shape = getattr(dataset, "image_shape", KITTI_IMAGE_SHAPE)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    results = []
    for index in tqdm(range(len(dataset)), desc="detect", disable=not progress):
        frame = dataset[index]
        points = frame.points
        if transform is not None:
            points = transform(points, index)
        elif corruption is not None:
            from robokit.pointcloud.corruptions import corrupt

            points = corrupt(corruption, points, severity, np.random.default_rng(seed + index))
        features, coords = model.voxelize([points], device)
        if len(coords) == 0:  # no point inside the grid (an empty or fully dropped scan): no detections
            results.append(FrameDetections.empty())
            continue
        outputs = model(features, coords, 1)
        lidar = decode_predictions(outputs, model.anchors, model.config)[0]
        results.append(to_kitti_detections(lidar, frame.calib, model.config.classes, image_shape))
    model.train(was_training)
    return results


def _score(model, ground_truth, detections, eval_kwargs):
    classes = [c for c in model.config.classes if c in ("Car", "Pedestrian", "Cyclist")]
    return evaluate_kitti(ground_truth, detections, classes=classes, **eval_kwargs), detections


def evaluate_frames(model, frames, transform=None, progress: bool = False, **eval_kwargs):
    """KITTI AP on already-loaded frames (a list of ``KittiFrame``), optionally transformed."""
    detections = detect_frames(model, frames, progress=progress, transform=transform)
    return _score(model, [frame.annotations for frame in frames], detections, eval_kwargs)


def evaluate_detector(
    model,
    dataset,
    corruption: str | None = None,
    severity: int = 0,
    seed: int = 0,
    progress: bool = True,
    **eval_kwargs,
) -> tuple[DetectionEvalResult, list[FrameDetections]]:
    """KITTI AP of ``model`` on ``dataset`` (optionally corrupted); returns (result, detections)."""
    detections = detect_frames(model, dataset, corruption, severity, seed, progress)
    ground_truth = [dataset[i].annotations for i in range(len(dataset))]
    return _score(model, ground_truth, detections, eval_kwargs)
