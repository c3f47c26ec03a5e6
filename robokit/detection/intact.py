"""INTACT for detector training: the shared teacher, meta-learning and adversarial curriculum.

The detector gets the very same :class:`~robokit.intact.hooks.CurriculumHooks` as the classifier
(meta-learned teacher adapted to the current detector before each batch, adversarial corruption of
the salient points within the curriculum's budget, level gated on the robust score); this module
only says what the detector is to INTACT (:class:`DetectionTask`, a
:class:`~robokit.intact.hooks.StudentTask`):

* **Point gradients** (:meth:`DetectionTask.point_grads`): a voxel's feature is the mean of its
  points, so the gradient of the detection loss with respect to a point's xyz is its voxel's
  feature gradient divided by the voxel's point count (zero outside the grid). Their norms, as
  per-scan rank percentiles, are the teacher's saliency targets (:func:`detector_point_saliency`)
  and their signs drive the noise / displace families' projected gradient steps.
* **Losses** (:meth:`DetectionTask.losses`): the detection loss of each scan on its own, for the
  loss-greedy choice among drop candidates. Dropped points are removed (the detector takes any
  point count).
* **Tasks**: ``task_scenes`` random training scans (half support, half query) x family x detector
  snapshot; teacher inputs are xyz / ``coordinate_scale`` (40 m per unit), ``task_points`` random
  points per scan after the targets are computed.
* **Robust score**: mean BEV AP / 100 (moderate, or easy where a class has no moderate object)
  over the classes with objects, on the training scans (the first ``score_frames`` of them, or all)
  corrupted in the method's own way at the current strength (the tiny-data check has no held-out split).

``method="random"`` is the plain-curriculum baseline (the classifier's untargeted drop / noise /
displace, unchanged); ``method="standard"`` trains on clean clouds (no hooks). Point clouds are
``(N, C)`` float32 in metres, xyz first; reflectance follows its point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from robokit.pointcloud.spconv_patch import eval_with_input_grads

__all__ = [
    "DetectionTask",
    "IntactDetectionConfig",
    "carry_channels",
    "detection_hooks",
    "detector_point_saliency",
    "point_voxel_index",
]


@dataclass(frozen=True)
class IntactDetectionConfig:
    """Settings of INTACT for detection (the shared :class:`~robokit.intact.hooks.IntactConfig` plus scans)."""

    method: Literal["standard", "random", "intact"] = "intact"
    warmup_epochs: int = 10
    clean_fraction: float = 0.5
    coordinate_scale: float = 40.0
    """metres per teacher input unit (the teacher was designed for unit-sphere clouds)."""
    curriculum_levels: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    curriculum_threshold: float = 0.7
    curriculum_gate: Literal["absolute", "relative"] = "absolute"
    """``"relative"``: advance when robust / clean score on the same scans >= the threshold
    (robokit's deviation for detectors whose clean score is below the threshold; docs/intact.md)."""
    meta_rule: Literal["fomaml", "reptile"] = "fomaml"
    adapt_steps: int = 4
    adapt_teacher: bool = True
    saliency_target: Literal["gradient", "removal"] = "gradient"
    attack_steps: int = 3
    drop_candidates: int = 4
    meta_every: int = 2
    meta_tasks: int = 1
    task_scenes: int = 2
    task_points: int = 4096
    snapshots: int = 2
    score_frames: int | None = None
    """training scans the robust score is measured on (the first N; None: all of them)."""
    seed: int = 0


def point_voxel_index(
    points: np.ndarray, coords: np.ndarray, voxel_size, point_range
) -> np.ndarray:
    """(N,) index into ``coords`` (V, 3 or 4, ``[.., z, y, x]``) of each point's voxel, -1 if none."""
    from robokit.pointcloud.voxelizer import grid_shape

    nz, ny, nx = (int(v) for v in grid_shape(voxel_size, point_range))
    low = np.asarray(point_range[:3], dtype=np.float64)
    ijk = np.floor(
        (points[:, :3].astype(np.float64) - low) / np.asarray(voxel_size, dtype=np.float64)
    )
    ijk = ijk.astype(np.int64)
    inside = (ijk >= 0).all(axis=1) & (ijk[:, 0] < nx) & (ijk[:, 1] < ny) & (ijk[:, 2] < nz)
    point_ids = (ijk[:, 2] * ny + ijk[:, 1]) * nx + ijk[:, 0]
    zyx = np.asarray(coords)[:, -3:].astype(np.int64)
    voxel_ids = (zyx[:, 0] * ny + zyx[:, 1]) * nx + zyx[:, 2]
    order = np.argsort(voxel_ids)
    slot = np.clip(np.searchsorted(voxel_ids[order], point_ids), 0, len(order) - 1)
    found = inside & (voxel_ids[order][slot] == point_ids)
    return np.where(found, order[slot], -1)


@torch.enable_grad()
def detector_point_grads(model, clouds: list[np.ndarray], targets: list) -> list[np.ndarray]:
    """Per scan, the (N_i, 3) gradient of the batch's detection loss w.r.t. each point's xyz (eval-mode BN).

    ``targets`` are (boxes (M,7), classes (M,)) per scan; boxes outside the grid are ignored.
    Gradients are on here, so it works under ``torch.no_grad()`` (the robust score's evaluation).
    """
    from robokit.detection.losses import detection_loss
    from robokit.detection.train import boxes_in_range, build_targets

    with eval_with_input_grads(model):
        device = next(model.parameters()).device
        features, coords = model.voxelize(clouds, device)
        features = features.clone().requires_grad_(True)
        keeps = [boxes_in_range(boxes, model.config.point_range) for boxes, _ in targets]
        labels, residuals, directions = (
            t.to(device)
            for t in build_targets(
                model, [b[k] for (b, _), k in zip(targets, keeps, strict=True)],
                [c[k] for (_, c), k in zip(targets, keeps, strict=True)],
            )
        )
        loss = detection_loss(
            model(features, coords, len(clouds)), labels, residuals, directions, model.num_classes
        )["loss"]
        (grad,) = torch.autograd.grad(loss, features)
    coords_np, grad_np = coords.cpu().numpy(), grad[:, :3].cpu().numpy()
    out = []
    for b, cloud in enumerate(clouds):
        rows = np.flatnonzero(coords_np[:, 0] == b)
        if len(rows) == 0:  # nothing of this scan is inside the grid
            out.append(np.zeros((len(cloud), 3), dtype=np.float32))
            continue
        index = point_voxel_index(cloud, coords_np[rows], model.config.voxel_size, model.config.point_range)
        counts = np.bincount(index[index >= 0], minlength=len(rows)).clip(min=1)
        per_voxel = grad_np[rows] / counts[:, None]
        out.append(np.where((index >= 0)[:, None], per_voxel[np.clip(index, 0, None)], 0.0).astype(np.float32))
    return out


def detector_point_saliency(
    model, points: np.ndarray, boxes: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """(N,) float32 rank-percentile saliency of each point for the detection loss (eval-mode BN).

    Points outside the grid (or beyond ``max_voxels``) get gradient 0, so they rank lowest.
    """
    from robokit.intact.saliency import rank_normalise

    (grad,) = detector_point_grads(model, [points], [(boxes, classes)])
    scores = np.linalg.norm(grad, axis=1)
    return rank_normalise(torch.from_numpy(scores[None].astype(np.float32)))[0].numpy()


def carry_channels(original: np.ndarray, corrupted_xyz: np.ndarray) -> np.ndarray:
    """Re-attach the non-xyz channels after ``targeted_corruption`` (which sees xyz only).

    Rows copied unchanged (drop refills with survivors) take their source row's channels; moved
    rows (noise, displace keep the row order) keep the channels of the same row.
    """
    if original.shape[1] == 3:
        return corrupted_xyz.astype(np.float32)
    source = {row.tobytes(): i for i, row in enumerate(np.ascontiguousarray(original[:, :3]))}
    rows = np.ascontiguousarray(corrupted_xyz.astype(original.dtype))
    index = np.array([source.get(row.tobytes(), i) for i, row in enumerate(rows)], dtype=np.int64)
    return np.hstack([rows, original[index, 3:]]).astype(np.float32)


class DetectionTask:
    """The detector as INTACT sees it (:class:`~robokit.intact.hooks.StudentTask`)."""

    fixed_size = False

    def __init__(self, config: IntactDetectionConfig) -> None:
        self.config = config
        self.coordinate_scale = config.coordinate_scale
        self.frames: list = []

    def attach(self, frames) -> None:
        self.frames = frames

    def point_grads(self, model, clouds, targets) -> list[np.ndarray]:
        return detector_point_grads(model, clouds, targets)

    def losses(self, model, clouds, targets) -> np.ndarray:
        """(B,) detection loss of each scan on its own (eval mode, no gradient)."""
        from robokit.detection.losses import detection_loss
        from robokit.detection.train import boxes_in_range, build_targets

        was_training = model.training
        model.eval()
        out = []
        try:
            device = next(model.parameters()).device
            with torch.no_grad():
                for cloud, (boxes, classes) in zip(clouds, targets, strict=True):
                    keep = boxes_in_range(boxes, model.config.point_range)
                    features, coords = model.voxelize([cloud], device)
                    labels, residuals, directions = (
                        t.to(device) for t in build_targets(model, [boxes[keep]], [classes[keep]])
                    )
                    outputs = model(features, coords, 1)
                    out.append(detection_loss(outputs, labels, residuals, directions, model.num_classes)["loss"].item())
        finally:
            model.train(was_training)
        return np.asarray(out)

    def task_clouds(self, rng: np.random.Generator) -> tuple[list[np.ndarray], list]:
        """``task_scenes`` random training scans and their (boxes, classes)."""
        count = min(self.config.task_scenes, len(self.frames))
        frames = [self.frames[int(i)] for i in rng.choice(len(self.frames), size=count, replace=False)]
        return [f.points for f in frames], [(f.gt_boxes, f.gt_classes) for f in frames]

    def baseline_corruption(self, clouds, strength, rng) -> list[np.ndarray]:
        """The plain curriculum's untargeted drop / noise / displace, one scan at a time."""
        from robokit.intact.attacks import targeted_corruption

        return [
            carry_channels(c, targeted_corruption(c[None, :, :3].astype(np.float32), None, strength, rng)[0])
            for c in clouds
        ]

    def robust_score(self, model, corrupt, rng) -> float:
        """Mean BEV AP / 100 (classes with objects) on the training scans corrupted by ``corrupt``."""
        from robokit.detection.evaluate import evaluate_frames

        frames = self.frames[: self.config.score_frames]

        def transform(points, index):
            frame = frames[index]
            return corrupt([points], [(frame.gt_boxes, frame.gt_classes)])[0]

        result, _ = evaluate_frames(model, frames, transform=transform)
        values = [
            per_metric["bev"][difficulty]
            for class_name, per_metric in result.ap.items()
            for difficulty in ("moderate", "easy")
            if result.num_gt[class_name][difficulty] > 0
            and (difficulty == "moderate" or result.num_gt[class_name]["moderate"] == 0)
        ]
        return float(np.mean(values)) / 100.0 if values else 0.0


def detection_hooks(config: IntactDetectionConfig):
    """None for ``standard``, else :class:`~robokit.intact.hooks.CurriculumHooks` on a :class:`DetectionTask`."""
    from robokit.intact.hooks import CurriculumHooks, flat_intact_config

    if config.method == "standard":
        return None
    shared = flat_intact_config(config, config.method, config.curriculum_levels, config.curriculum_threshold,
                                config.task_points, gate=config.curriculum_gate)
    return CurriculumHooks(DetectionTask(config), shared)
