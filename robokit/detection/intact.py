"""INTACT applied to detector training: saliency teacher + gated curriculum of targeted corruption.

The parts come from robokit's INTACT implementation (:mod:`robokit.intact.saliency`,
:mod:`robokit.intact.curriculum`, :func:`robokit.intact.attacks.targeted_corruption`); this module
plugs them into the detector's training loop (``train_detector(..., hooks=IntactHooks(...))``):

1. **Saliency target** (:func:`detector_point_saliency`): the norm of the gradient of the
   detection loss with respect to each point's xyz. A voxel's feature is the mean of its
   points, so a point's gradient is its voxel's feature gradient divided by the voxel's point
   count. Norms become per-scan rank percentiles in [0, 1].
2. **Teacher**: a :class:`~robokit.intact.saliency.SaliencyTeacher` (per-point PointNet) fitted by
   regression to that target on the training scans (xyz divided by ``coordinate_scale``), refitted
   every ``refresh_every`` epochs so it follows the student. Reduced from the paper's setting:
   a plain fit on the detector's own scans, not Reptile meta-training over tasks (there is one
   task here: three scans and one detector).
3. **Targeted corruption**: after ``warmup_epochs`` clean epochs, each training cloud is, with
   probability ``1 - clean_fraction``, corrupted by ``targeted_corruption`` (drop / noise /
   displace, drawn per cloud) at the curriculum's strength, aimed at the teacher's salient points.
   ``method="random"`` is the plain-curriculum baseline (same operations, uniform saliency);
   ``method="standard"`` trains on clean clouds.
4. **Curriculum gate**: after each epoch past warm-up the student's robust score (mean BEV AP / 100
   over the classes with objects, on the training scans corrupted at the current strength) is
   reported to the :class:`~robokit.intact.curriculum.Curriculum`, which raises the strength when the
   score reaches its threshold.

Point clouds are ``(N, C)`` float32 in metres, xyz first; the corruption moves xyz only and the
other channels (reflectance) follow their points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

__all__ = ["IntactDetectionConfig", "IntactHooks", "detector_point_saliency", "point_voxel_index"]


@dataclass(frozen=True)
class IntactDetectionConfig:
    """Settings of INTACT for detection (defaults: robokit's choices for the tiny-data check)."""

    method: Literal["standard", "random", "intact"] = "intact"
    warmup_epochs: int = 10
    clean_fraction: float = 0.5
    refresh_every: int = 5
    teacher_steps: int = 30
    teacher_lr: float = 1e-3
    coordinate_scale: float = 40.0
    """metres per teacher input unit (the teacher was designed for unit-sphere clouds)."""
    curriculum_levels: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    curriculum_threshold: float = 0.7
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


def detector_point_saliency(
    model, points: np.ndarray, boxes: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """(N,) float32 rank-percentile saliency of each point for the detection loss (eval-mode BN).

    Points outside the grid (or beyond ``max_voxels``) get saliency 0 before ranking.
    """
    from robokit.detection.losses import detection_loss
    from robokit.detection.train import build_targets
    from robokit.intact.saliency import rank_normalise

    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        features, coords = model.voxelize([points], device)
        features = features.clone().requires_grad_(True)
        labels, residuals, directions = (
            t.to(device) for t in build_targets(model, [boxes], [classes])
        )
        loss = detection_loss(
            model(features, coords, 1), labels, residuals, directions, model.num_classes
        )["loss"]
        (grad,) = torch.autograd.grad(loss, features)
    finally:
        model.train(was_training)
    index = point_voxel_index(
        points, coords.cpu().numpy(), model.config.voxel_size, model.config.point_range
    )
    counts = np.bincount(index[index >= 0], minlength=len(features)).clip(min=1)
    voxel_norm = grad[:, :3].norm(dim=1).cpu().numpy() / counts
    scores = np.where(index >= 0, voxel_norm[np.clip(index, 0, None)], 0.0)
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


class IntactHooks:
    """Training hooks for :func:`robokit.detection.train.train_detector`."""

    def __init__(self, config: IntactDetectionConfig) -> None:
        from robokit.intact.curriculum import Curriculum
        from robokit.intact.saliency import SaliencyTeacher

        self.config = config
        generator = torch.Generator().manual_seed(config.seed)
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            self.teacher = SaliencyTeacher()
        self.teacher_optimizer = torch.optim.Adam(self.teacher.parameters(), lr=config.teacher_lr)
        self.curriculum = Curriculum(
            levels=config.curriculum_levels, threshold=config.curriculum_threshold
        )
        self.teacher_fitted = False

    # ----- corruption ------------------------------------------------------------------------
    def teacher_input(self, points: np.ndarray) -> torch.Tensor:
        """(N, C) metres -> (1, N, 3) teacher input (xyz divided by ``coordinate_scale``)."""
        return torch.from_numpy(
            points[None, :, :3].astype(np.float32) / self.config.coordinate_scale
        )

    def corrupt_cloud(
        self, points: np.ndarray, strength: float, rng: np.random.Generator
    ) -> np.ndarray:
        """One cloud corrupted at ``strength`` (targeted for ``intact``, uniform for ``random``)."""
        from robokit.intact.attacks import targeted_corruption
        from robokit.intact.saliency import teacher_saliency

        saliency = None
        if self.config.method == "intact" and self.teacher_fitted:
            saliency = teacher_saliency(self.teacher, self.teacher_input(points)).numpy()
        xyz = targeted_corruption(points[None, :, :3].astype(np.float32), saliency, strength, rng)[
            0
        ]
        return carry_channels(points, xyz)

    def active(self, epoch: int) -> bool:
        return self.config.method != "standard" and epoch >= self.config.warmup_epochs

    def corrupt_batch(self, clouds, boxes, classes, model, epoch: int, rng: np.random.Generator):
        if not self.active(epoch):
            return clouds
        out = []
        for cloud in clouds:
            corrupt = rng.random() >= self.config.clean_fraction
            out.append(
                self.corrupt_cloud(cloud, self.curriculum.strength, rng) if corrupt else cloud
            )
        return out

    # ----- teacher and curriculum -----------------------------------------------------------------
    def fit_teacher(self, model, frames) -> float:
        """Refit the teacher to the detector's current saliency on ``frames``; returns the last loss."""
        from robokit.detection.train import boxes_in_range
        from robokit.intact.saliency import saliency_loss

        targets = []
        for frame in frames:
            keep = boxes_in_range(frame.gt_boxes, model.config.point_range)
            target = detector_point_saliency(
                model, frame.points, frame.gt_boxes[keep], frame.gt_classes[keep]
            )
            targets.append((self.teacher_input(frame.points), torch.from_numpy(target[None])))
        self.teacher.train()
        loss = torch.zeros(())
        for step in range(self.config.teacher_steps):
            inputs, target = targets[step % len(targets)]
            loss = saliency_loss(self.teacher(inputs), target)
            self.teacher_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.teacher_optimizer.step()
        self.teacher_fitted = True
        return loss.item()

    def robust_score(self, model, frames, rng: np.random.Generator) -> float:
        """Mean BEV AP / 100 (classes with objects) on ``frames`` corrupted at the current strength."""
        from robokit.detection.evaluate import evaluate_frames

        result, _ = evaluate_frames(
            model,
            frames,
            transform=lambda points, _: self.corrupt_cloud(points, self.curriculum.strength, rng),
        )
        values = [
            per_metric["bev"][difficulty]
            for class_name, per_metric in result.ap.items()
            for difficulty in ("moderate", "easy")
            if result.num_gt[class_name][difficulty] > 0
            and (difficulty == "moderate" or result.num_gt[class_name]["moderate"] == 0)
        ]
        return float(np.mean(values)) / 100.0 if values else 0.0

    def end_epoch(self, model, frames, epoch: int, rng: np.random.Generator) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if (
            self.config.method == "intact"
            and epoch + 1 >= self.config.warmup_epochs
            and (not self.teacher_fitted or (epoch + 1) % self.config.refresh_every == 0)
        ):
            metrics["teacher_loss"] = self.fit_teacher(model, frames)
        if self.active(epoch + 1) and epoch + 1 > self.config.warmup_epochs:
            score = self.robust_score(model, frames, rng)
            metrics["robust_bev_ap"] = score
            self.curriculum.report(score)
        metrics["strength"] = self.curriculum.strength if self.active(epoch + 1) else 0.0
        return metrics
