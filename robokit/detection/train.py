"""Training loop for the SECOND-style detector (the trainer owns the loop, logger and checkpoints).

Defaults follow OpenPCDet's ``second.yaml`` where they apply (AdamW with a one-cycle schedule,
peak learning rate 3e-3, weight decay 0.01, gradient norm clipped at 10, flip / rotation
pi/4 / scaling 0.95-1.05 augmentation); epochs and batch size are small for CPU runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from robokit.core.config import check_ranges
from robokit.detection.model import DetectorConfig, SecondDetector, preset_config

__all__ = ["TrainDetectorConfig", "train_detector", "build_targets", "load_detector", "frame_batch"]

#: splits up to this many frames are decoded once and kept in memory
IN_MEMORY_FRAMES = 256


@dataclass(frozen=True)
class TrainDetectorConfig:
    """``robokit kitti train-detector`` options."""

    data: Path
    """KITTI object folder (holding training/{velodyne,label_2,calib})."""
    out: Path
    """run folder: config.yaml, metrics.csv, checkpoints/step_*.pt, final.pt (robokit.core.runs)."""
    split: str = "train"
    """ImageSets split (all frames when ImageSets/<split>.txt is absent)."""
    preset: Literal["second", "cpu-small", "cpu-tiny"] = "second"
    """network/grid preset (see robokit.detection.model)."""
    point_range: tuple[float, float, float, float, float, float] | None = None
    """override the preset's [xmin, ymin, zmin, xmax, ymax, zmax] (metres)."""
    voxel_size: tuple[float, float, float] | None = None
    """override the preset's voxel size (metres)."""
    classes: tuple[str, ...] | None = None
    """override the preset's trained classes (e.g. Car only: a third of the anchors)."""
    epochs: int = 80
    """training epochs"""
    batch_size: int = 1
    """scans per step"""
    lr: float = 3e-3
    """peak learning rate of the one-cycle schedule (AdamW)"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    grad_clip: float = 10.0
    """gradient norm clip"""
    augment: bool = True
    """flip, global rotation and scaling."""
    gt_sampling: bool = False
    """paste ground-truth objects from other frames (SECOND's database sampling)."""
    device: Literal["cpu", "cuda"] = "cpu"
    """train on this device"""
    seed: int = 0
    """seed of initialisation, frame order and augmentation"""
    max_frames: int | None = None
    """use only the first N frames of the split (quick runs)."""
    checkpoint_every: int = 10
    """epochs between checkpoints/step_*.pt (the last epoch always writes one, and final.pt)."""
    eval_at_end: bool = True
    """evaluate AP on the training split when done (the overfit check)."""
    resume: bool = False
    """continue from the newest intact checkpoint in --out/checkpoints."""
    robust_method: Literal["standard", "random", "intact"] = "standard"
    """'intact': the shared INTACT hooks (adapted meta-learned teacher, adversarial curriculum;
    robokit.detection.intact); 'random': the plain curriculum, untargeted; 'standard': clean."""
    robust_warmup_epochs: int = 10
    """clean epochs before the corruption curriculum starts (random / intact)."""
    robust_gate: Literal["absolute", "relative"] = "absolute"
    """the curriculum's gate (random / intact): 'absolute' advances when the robust score reaches
    0.7; 'relative' when robust / clean on the same scans does, once clean >= 0.1 (for detectors
    whose clean score stays below 0.7; docs/intact.md)."""
    overwrite: bool = False
    """replace the files of a previous run in --out (without it, or --resume, a non-empty --out is refused)."""
    logger: tuple[Literal["console", "csv", "wandb", "none"], ...] = ("console", "csv")
    """logger adapters (as robokit train)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("epochs", "batch_size", "lr", "checkpoint_every", "max_frames",
                                     "voxel_size"),
                     non_negative=("weight_decay", "grad_clip", "robust_warmup_epochs"))


def build_targets(model: SecondDetector, frames_boxes, frames_classes):
    """Stack per-frame anchor targets: labels (B, A), residuals (B, A, 7), direction bins (B, A)."""
    from robokit.detection.target_assign import assign_targets, direction_targets

    anchors = model.anchors.cpu().numpy().reshape(*model.bev_shape, model.anchors_per_location, 7)
    anchor_classes = model.config.anchor_classes()
    labels, residuals, directions = [], [], []
    for boxes, classes in zip(frames_boxes, frames_classes, strict=True):
        targets = assign_targets(anchors, boxes, classes, anchor_classes)
        gt_yaw = np.zeros(len(targets.labels))
        matched = targets.matched_gt >= 0
        gt_yaw[matched] = np.asarray(boxes)[targets.matched_gt[matched], 6]
        labels.append(targets.labels)
        residuals.append(targets.box_residuals)
        directions.append(direction_targets(gt_yaw, model.config.dir_offset))
    return (
        torch.from_numpy(np.stack(labels)),
        torch.from_numpy(np.stack(residuals)),
        torch.from_numpy(np.stack(directions)),
    )


def boxes_in_range(boxes: np.ndarray, point_range) -> np.ndarray:
    """(M,) bool: box centres inside the BEV part of ``point_range``."""
    xmin, ymin, _, xmax, ymax, _ = point_range
    return (
        (boxes[:, 0] >= xmin) & (boxes[:, 0] < xmax) & (boxes[:, 1] >= ymin) & (boxes[:, 1] < ymax)
    )


def frame_batch(
    frames,
    config: TrainDetectorConfig,
    model: SecondDetector,
    rng: np.random.Generator,
    sampler=None,
):
    """Augmented clouds, in-range boxes and classes of a list of ``KittiFrame``."""
    from robokit.detection.augment import augment_frame

    clouds, boxes, classes = [], [], []
    for frame in frames:
        points, frame_boxes, frame_classes = frame.points, frame.gt_boxes, frame.gt_classes
        if config.augment or sampler is not None:
            points, frame_boxes, frame_classes = augment_frame(
                points,
                frame_boxes,
                frame_classes,
                rng,
                sampler=sampler,
                flip=config.augment,
                rotation=np.pi / 4 if config.augment else 0.0,
                scale_range=(0.95, 1.05) if config.augment else (1.0, 1.0),
            )
        keep = boxes_in_range(frame_boxes, model.config.point_range)
        clouds.append(points)
        boxes.append(frame_boxes[keep])
        classes.append(frame_classes[keep])
    return clouds, boxes, classes


def _detector_config(config: TrainDetectorConfig) -> DetectorConfig:
    return preset_config(
        config.preset, point_range=config.point_range, voxel_size=config.voxel_size,
        classes=config.classes,
    )


def load_detector(checkpoint_path, device: str = "cpu") -> SecondDetector:
    """Rebuild a detector from a checkpoint written by :func:`train_detector`."""
    from robokit.core.checkpoint import CheckpointError, load_checkpoint

    state = load_checkpoint(checkpoint_path, map_location=device)
    if "detector_config" not in state or "model" not in state:
        raise CheckpointError(
            f"{checkpoint_path}: not a robokit detector checkpoint (no detector_config/model)"
        )
    detector_config = DetectorConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in state["detector_config"].items()}
    )
    model = SecondDetector(detector_config)
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def _training_state(model, optimizer, scheduler, epoch: int, step: int, rng, detector_config,
                    hooks) -> dict:
    """The checkpoint: everything :func:`train_detector` needs to continue (plain data)."""
    from dataclasses import asdict

    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "step": step,
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "detector_config": asdict(detector_config),
        "hooks": None if hooks is None else hooks.state_dict(),
    }


def _restore(state: dict, model, optimizer, scheduler, rng, hooks) -> tuple[int, int]:
    """Load a :func:`_training_state` checkpoint in place; returns (epoch, step)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    if hooks is not None and state.get("hooks") is not None:
        hooks.load_state_dict(state["hooks"])
    return int(state["epoch"]), int(state["step"])


def train_detector(config: TrainDetectorConfig, progress: bool = True, hooks=None) -> dict:
    """Train; returns headline numbers (first/last epoch loss, AP when ``eval_at_end``, paths).

    ``hooks`` (optional, a :class:`robokit.intact.hooks.TrainingHooks`, e.g. from
    :func:`robokit.detection.intact.detection_hooks`) is called as by the classifier's
    trainer: ``begin(model, frames)`` once, ``corrupt_batch(clouds, [(boxes, classes), ...], model,
    epoch, rng)`` before each step, ``after_step(model, step, rng)`` after it and
    ``end_epoch(model, epoch, rng)`` after each epoch (their dicts are logged).
    ``hooks.state_dict()`` / ``load_state_dict`` go into checkpoints.

    The run follows :mod:`robokit.core.runs`: seeding, ``--resume`` / ``--overwrite``, loggers,
    ``checkpoints/step_*.pt`` (step = optimiser steps) and ``final.pt``.
    """
    from tqdm import tqdm

    from robokit.core.runs import FINAL_CHECKPOINT, save_step_checkpoint, start_run
    from robokit.detection.dataset import KittiObjectDataset
    from robokit.detection.losses import detection_loss

    device = torch.device(config.device)
    run = start_run(config, "robokit kitti train-detector", map_location=device)
    out, rng, logger = run.out, run.seeds.np_rng, run.logger
    detector_config = _detector_config(config)
    dataset = KittiObjectDataset(config.data, split=config.split, classes=detector_config.classes)
    frame_ids = dataset.frame_ids[: config.max_frames] if config.max_frames else dataset.frame_ids
    dataset = KittiObjectDataset(config.data, classes=detector_config.classes, frame_ids=frame_ids)
    # small splits stay decoded in memory; large ones (full KITTI) are read frame by frame
    frames = (
        [dataset[i] for i in range(len(dataset))] if len(dataset) <= IN_MEMORY_FRAMES else dataset
    )
    sampler = None
    if config.gt_sampling:
        from robokit.detection.augment import GroundTruthSampler

        every_frame = (
            frames[i] for i in tqdm(range(len(frames)), desc="gt database", disable=not progress)
        )
        per_class = (15, 10, 10)[: len(detector_config.classes)]
        sampler = GroundTruthSampler(every_frame, samples_per_class=per_class)
    model = SecondDetector(detector_config).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.95, 0.99), weight_decay=config.weight_decay
    )
    steps_per_epoch = int(np.ceil(len(frames) / config.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.lr,
        total_steps=config.epochs * steps_per_epoch,
        pct_start=0.4,
        div_factor=10.0,
        base_momentum=0.85,
        max_momentum=0.95,
    )
    start_epoch, step = 0, 0
    if run.resumed is not None:
        start_epoch, step = _restore(run.resumed[1], model, optimizer, scheduler, rng, hooks)
    history: list[float] = []
    started = time.perf_counter()
    if hooks is not None:
        hooks.begin(model, frames)
    epochs = tqdm(range(start_epoch, config.epochs), desc="train-detector", disable=not progress)
    for epoch in epochs:
        model.train()
        order = rng.permutation(len(frames))
        epoch_losses = []
        for first in range(0, len(order), config.batch_size):
            batch_frames = [frames[i] for i in order[first : first + config.batch_size]]
            clouds, boxes, classes = frame_batch(batch_frames, config, model, rng, sampler)
            if hooks is not None:
                clouds = hooks.corrupt_batch(clouds, list(zip(boxes, classes, strict=True)), model, epoch, rng)
            features, coords = model.voxelize(clouds, device)
            if len(coords) == 0:  # every scan of the batch is empty: nothing to learn from
                continue
            labels, residuals, directions = (
                t.to(device) for t in build_targets(model, boxes, classes)
            )
            outputs = model(features, coords, len(clouds))
            losses = detection_loss(outputs, labels, residuals, directions, model.num_classes)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            epoch_losses.append(losses["loss"].item())
            if hooks is not None:
                hook_metrics = hooks.after_step(model, step, rng)
                if hook_metrics:
                    logger.log(hook_metrics, step)
            logger.log(
                {
                    "losses/total": losses["loss"].item(),
                    "losses/cls": losses["cls"].item(),
                    "losses/loc": losses["loc"].item(),
                    "losses/dir": losses["dir"].item(),
                    "train/num_positive": losses["num_positive"].item(),
                    "train/lr": scheduler.get_last_lr()[0],
                    "train/epoch": epoch,
                },
                step,
            )
        history.append(float(np.mean(epoch_losses)))
        epochs.set_postfix(loss=f"{history[-1]:.3f}")
        if hooks is not None:
            logger.log(hooks.end_epoch(model, epoch, rng), step)
        if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs:
            state = _training_state(model, optimizer, scheduler, epoch + 1, step, rng,
                                    detector_config, hooks)
            save_step_checkpoint(out, step, state, final=epoch + 1 == config.epochs)
    logger.close()
    summary = {
        "first_epoch_loss": history[0] if history else None,
        "last_epoch_loss": history[-1] if history else None,
        "epochs": config.epochs,
        "frames": len(frames),
        "train_seconds": time.perf_counter() - started,
        "checkpoint": str(out / FINAL_CHECKPOINT),
    }
    if config.eval_at_end:
        from robokit.detection.evaluate import evaluate_detector

        source = replace_frames(dataset, frames) if isinstance(frames, list) else dataset
        result, _ = evaluate_detector(model.eval(), source, progress=progress)
        summary["ap"] = result.ap
        summary["num_gt"] = result.num_gt
    return summary


def replace_frames(dataset, frames):
    """A sequence view that serves already-loaded frames (avoids re-reading the scans)."""

    class _Loaded:
        def __init__(self) -> None:
            self.classes = dataset.classes
            self.image_shape = dataset.image_shape
            self.frame_ids = [f.frame_id for f in frames]

        def __len__(self) -> int:
            return len(frames)

        def __getitem__(self, index: int):
            return frames[index]

    return _Loaded()


def overfit_config(data: Path, out: Path, epochs: int = 60, **overrides) -> TrainDetectorConfig:
    """The CPU overfit recipe on a handful of scans: cpu-small preset, no augmentation, all three
    scans in one batch (so BatchNorm's training and running statistics agree)."""
    return replace(
        TrainDetectorConfig(
            data=data,
            out=out,
            preset="cpu-small",
            epochs=epochs,
            augment=False,
            batch_size=3,
            checkpoint_every=max(epochs, 1),
        ),
        **overrides,
    )
