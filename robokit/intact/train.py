"""Robust training of point-cloud classifiers: standard, adversarial, curriculum and INTACT.

All four methods share the backbone, the optimiser, the number of epochs and
the batch schedule; they differ only in what the student sees (see
``docs/intact.md``):

===========  ==================================================================================
standard     clean clouds
adversarial  half of each batch clean, half randomly dropped (U(0, adv_max_drop)) then PGD on
             the coordinates (L-inf ``pgd_eps``, ``pgd_steps`` steps)
curriculum   half clean, half corrupted by :func:`~robokit.intact.attacks.targeted_corruption`
             *without* saliency (uniform), at the strength of a gated :class:`Curriculum`
intact       as curriculum, but the corruption is targeted by the saliency of a teacher
             meta-trained (Reptile) during training on tasks = class subset x corruption x model
===========  ==================================================================================

The curriculum methods train on clean clouds for ``warmup_epochs`` first; after each
later epoch the student's accuracy on a held-out validation split, corrupted at the
current level in the method's own way, is reported to the curriculum.

Data: ``points`` (N,P,3) float32 in the unit sphere, ``labels`` (N,) int64; each
step feeds ``num_points`` random points of every cloud (a fresh subset each time).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robokit.core.config import check_ranges
from robokit.core.rundir import check_run_dir, clear_run_dir
from robokit.intact.attacks import (
    TargetedCorruptionConfig,
    choose,
    pgd_attack,
    random_drop,
    resample_to,
    targeted_corruption,
)
from robokit.intact.curriculum import Curriculum
from robokit.intact.saliency import ReptileMetaTrainer, SaliencyTeacher, make_task, teacher_saliency
from robokit.pointcloud.backbones import build_classifier

METHODS = ("standard", "adversarial", "curriculum", "intact")
CHECKPOINT_KIND = "robokit-robustness-classifier"


@dataclass(frozen=True)
class TrainConfig:
    """Robust training of a point-cloud classifier (``robokit robustness train``)."""

    method: Literal["standard", "adversarial", "curriculum", "intact"] = "intact"
    """training method; all share backbone, optimiser, epochs and batches"""
    dataset: str = "procedural"
    """'procedural' (generated) or a folder in ModelNet40 HDF5 layout"""
    backbone: Literal["sparse", "pointnet", "dgcnn"] = "pointnet"
    """classifier backbone: 'pointnet' (max-pooled MLP), 'sparse' (spconv voxel backbone) or 'dgcnn'"""
    dgcnn_k: int = 20
    """dgcnn only: neighbours of the dynamic kNN graph (official 20; smaller runs faster on CPU)"""
    out: Path = Path("runs/robustness")
    """run folder: config.yaml, metrics.csv, model.pt"""
    seed: int = 0
    """seed of the run (initialisation, batches, corruptions)"""
    epochs: int = 30
    """training epochs"""
    batch_size: int = 32
    """clouds per step"""
    lr: float = 1e-3
    """Adam learning rate (peak of the cosine schedule)"""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """cosine: anneal the learning rate to 0 over ``epochs`` (steadier final models)"""
    weight_decay: float = 1e-4
    """Adam weight decay"""
    num_points: int = 512
    """points per cloud fed to the model"""
    width: float = 1.0
    """channel multiplier of the backbone"""
    train_per_class: int = 40
    """procedural only: training objects per class"""
    test_per_class: int = 20
    """procedural only: test objects per class"""
    dataset_points: int = 1024
    """procedural only: points sampled per object"""
    data_seed: int = 0
    """procedural only: the dataset (not the run) seed"""
    val_fraction: float = 0.15
    """share of the training set held out for curriculum gating"""
    clean_fraction: float = 0.5
    """share of each batch left clean (robust methods)"""
    warmup_epochs: int = 3
    """curriculum methods: clean-only epochs before corruption starts"""
    levels: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    """curriculum strengths in (0, 1], strictly increasing"""
    threshold: float = 0.7
    """robust validation accuracy needed to advance a curriculum level"""
    pgd_eps: float = 0.05
    """adversarial: L-inf radius of the PGD perturbation of the coordinates"""
    pgd_steps: int = 3
    """adversarial: PGD steps"""
    adv_max_drop: float = 0.5
    """adversarial: random drop rate drawn from U(0, adv_max_drop) before PGD"""
    meta_every: int = 2
    """intact: a teacher meta-step every this many student steps"""
    meta_tasks: int = 2
    """intact: tasks per meta-step"""
    task_classes: int = 4
    """intact: classes per meta-learning task"""
    task_clouds: int = 16
    """intact: clouds per task (half support, half query)"""
    snapshots: int = 3
    """intact: past students kept as extra task models"""
    progress: bool = True
    """show a progress bar"""
    overwrite: bool = False
    """replace the files of a previous run in --out (without it a non-empty --out is refused)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("epochs", "batch_size", "lr", "num_points", "width", "train_per_class",
                                     "test_per_class", "dataset_points", "meta_every", "dgcnn_k", "meta_tasks",
                                     "task_classes", "task_clouds", "levels"),
                     non_negative=("weight_decay", "warmup_epochs", "pgd_eps", "pgd_steps", "snapshots"),
                     unit_interval=("val_fraction", "clean_fraction", "threshold", "adv_max_drop"))


@dataclass
class Dataset:
    """Train / validation / test splits: points (N,P,3) float32, labels (N,) int64."""

    train_points: np.ndarray
    train_labels: np.ndarray
    val_points: np.ndarray
    val_labels: np.ndarray
    test_points: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]


def load_dataset(cfg: TrainConfig) -> Dataset:
    """Procedural set (train seed 2*data_seed, test seed 2*data_seed+1) or a ModelNet40-layout folder."""
    if cfg.dataset == "procedural":
        from robokit.pointcloud.procedural import PROCEDURAL_CLASSES, make_procedural_dataset

        train = make_procedural_dataset(
            cfg.train_per_class, cfg.dataset_points, seed=2 * cfg.data_seed
        )
        test = make_procedural_dataset(
            cfg.test_per_class, cfg.dataset_points, seed=2 * cfg.data_seed + 1
        )
        names = list(PROCEDURAL_CLASSES)
    else:
        from robokit.pointcloud.io import load_modelnet_h5

        train = load_modelnet_h5(cfg.dataset, split="train")
        test = load_modelnet_h5(cfg.dataset, split="test")
        names = _class_names(Path(cfg.dataset), int(max(train[1].max(), test[1].max())) + 1)
    for split, (points, labels) in {"train": train, "test": test}.items():
        _check_split(cfg.dataset, split, points, labels)
    val_mask = _stratified_mask(train[1], cfg.val_fraction, np.random.default_rng(cfg.data_seed))
    if not val_mask.any():  # validation accuracy is logged every epoch and gates the curriculum
        raise ValueError(f"{cfg.dataset}: no validation split with --val-fraction {cfg.val_fraction} of "
                         f"{len(val_mask)} training clouds: raise --val-fraction (a class needs >= 2 clouds)")
    return Dataset(
        train[0][~val_mask],
        train[1][~val_mask],
        train[0][val_mask],
        train[1][val_mask],
        test[0],
        test[1],
        names,
    )


def _class_names(folder: Path, count: int) -> list[str]:
    names_file = folder / "shape_names.txt"
    if names_file.is_file():
        names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
        if len(names) >= count:
            return names
    return [f"class_{i}" for i in range(count)]


def _check_split(source: str, split: str, points: np.ndarray, labels: np.ndarray) -> None:
    if points.ndim != 3 or points.shape[-1] != 3 or len(points) != len(labels) or len(points) == 0:
        raise ValueError(
            f"{source} ({split}): expected data (N,P,3) and label (N,), got "
            f"{points.shape} and {labels.shape}"
        )
    finite = np.isfinite(points).all(axis=(1, 2))
    if not finite.all():
        raise ValueError(
            f"{source} ({split}): cloud {int(np.flatnonzero(~finite)[0])} has NaN/inf coordinates"
        )
    if labels.min() < 0:
        raise ValueError(f"{source} ({split}): negative label at index {int(np.argmin(labels))}")


def _stratified_mask(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask selecting ``fraction`` of each class (at least one when the class has > 1)."""
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        count = int(round(fraction * len(rows)))
        if fraction > 0 and len(rows) > 1:
            count = max(count, 1)
        mask[rng.choice(rows, size=min(count, len(rows) - 1), replace=False)] = True
    return mask


def subsample_batch(points: np.ndarray, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """(B,P,3) -> (B,num_points,3): an independent random subset (or refill) per cloud."""
    return np.stack([resample_to(cloud, num_points, rng) for cloud in points]).astype(np.float32)


class RobustTrainer:
    """Owns the student, its optimiser, the curriculum and (for INTACT) the teacher."""

    def __init__(self, cfg: TrainConfig, num_classes: int) -> None:
        if cfg.method not in METHODS:
            raise ValueError(f"unknown method {cfg.method!r}; choose from {METHODS}")
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.torch_gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)  # parameter initialisers draw from the global generator
        self.model = build_classifier(cfg.backbone, num_classes, cfg.width, cfg.dgcnn_k)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.scheduler = None
        if cfg.lr_schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(cfg.epochs, 1))
        self.curriculum = Curriculum(cfg.levels, cfg.threshold)
        self.corruption = TargetedCorruptionConfig()
        self.teacher: SaliencyTeacher | None = None
        self.meta: ReptileMetaTrainer | None = None
        self.task_models: list[nn.Module] = []
        if cfg.method == "intact":
            self.teacher = SaliencyTeacher()
            self.meta = ReptileMetaTrainer(self.teacher)
        self.step = 0
        self.epoch = 0

    # ----- what the student sees -------------------------------------------------------
    @property
    def corrupting(self) -> bool:
        """Whether batches carry corrupted clouds at this epoch."""
        if self.cfg.method == "standard":
            return False
        if self.cfg.method == "adversarial":
            return True
        return self.epoch >= self.cfg.warmup_epochs

    def corrupt_for_method(
        self, points: np.ndarray, labels: np.ndarray, strength: float
    ) -> np.ndarray:
        """The method's corruption of (B,N,3) clouds (labels are needed by PGD)."""
        if self.cfg.method == "adversarial":
            dropped = random_drop(points, self.cfg.adv_max_drop, self.rng)
            adv = pgd_attack(
                self.model,
                torch.from_numpy(dropped),
                torch.from_numpy(labels),
                self.cfg.pgd_eps,
                self.cfg.pgd_steps,
                generator=self.torch_gen,
            )
            return adv.numpy()
        saliency = None
        if self.cfg.method == "intact":
            saliency = teacher_saliency(self.teacher, torch.from_numpy(points)).numpy()
        return targeted_corruption(points, saliency, strength, self.rng, self.corruption)

    def make_batch(self, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Clean + corrupted mix for one step: (B,P,3) raw clouds -> (B,num_points,3)."""
        batch = subsample_batch(points, self.cfg.num_points, self.rng)
        if not self.corrupting:
            return batch
        corrupted = self.rng.random(len(batch)) >= self.cfg.clean_fraction
        if corrupted.any():
            batch[corrupted] = self.corrupt_for_method(
                batch[corrupted], labels[corrupted], self.curriculum.strength
            )
        return batch

    # ----- updates ------------------------------------------------------------------
    def student_step(self, points: np.ndarray, labels: np.ndarray) -> float:
        self.model.train()
        logits = self.model(torch.from_numpy(points))
        loss = F.cross_entropy(logits, torch.from_numpy(labels))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return float(loss.detach())

    def meta_step(self, data: Dataset) -> dict[str, float]:
        """One Reptile step of the teacher over ``meta_tasks`` sampled tasks."""
        assert self.meta is not None
        tasks = [self._sample_task(data) for _ in range(self.cfg.meta_tasks)]
        return self.meta.outer_step(tasks)

    def _sample_task(self, data: Dataset):
        """Task = (class subset) x (corruption op and strength) x (task model: student or a snapshot)."""
        classes = np.unique(data.train_labels)
        chosen = self.rng.choice(
            classes, size=min(self.cfg.task_classes, len(classes)), replace=False
        )
        rows = np.flatnonzero(np.isin(data.train_labels, chosen))
        rows = self.rng.choice(rows, size=min(self.cfg.task_clouds, len(rows)), replace=False)
        clouds = subsample_batch(data.train_points[rows], self.cfg.num_points, self.rng)
        op = choose(("clean",) + self.corruption.ops, self.rng)
        if op != "clean":
            config = dataclasses.replace(self.corruption, ops=(op,))
            clouds = targeted_corruption(
                clouds, None, float(self.rng.uniform(0.2, 1.0)), self.rng, config
            )
        models = [self.model, *self.task_models]
        index = int(self.rng.integers(len(models)))
        name = f"classes={chosen.tolist()} op={op} model={'student' if index == 0 else f'snapshot{index}'}"
        return make_task(models[index], clouds, data.train_labels[rows], len(rows) // 2, name)

    def snapshot_student(self) -> None:
        """Keep a frozen copy of the student as an extra task model for the teacher."""
        frozen = copy.deepcopy(self.model).eval()
        for param in frozen.parameters():
            param.requires_grad_(False)
        self.task_models = (self.task_models + [frozen])[-self.cfg.snapshots :]

    # ----- the loop -----------------------------------------------------------------
    def train_epoch(self, data: Dataset) -> dict[str, float]:
        order = self.rng.permutation(len(data.train_labels))
        losses, meta_logs = [], []
        for start in range(0, len(order), self.cfg.batch_size):
            rows = order[start : start + self.cfg.batch_size]
            if len(rows) < 2:  # BatchNorm needs two samples
                continue
            labels = data.train_labels[rows]
            losses.append(
                self.student_step(self.make_batch(data.train_points[rows], labels), labels)
            )
            if self.meta is not None and self.step % self.cfg.meta_every == 0:
                meta_logs.append(self.meta_step(data))
        metrics = {
            "train/loss": float(np.mean(losses)),
            "curriculum/strength": self.curriculum.strength if self.corrupting else 0.0,
        }
        if meta_logs:
            for key in meta_logs[0]:
                metrics[key] = float(np.mean([m[key] for m in meta_logs]))
        return metrics

    def gate_curriculum(self, data: Dataset) -> dict[str, float]:
        """Report validation accuracy under the current level's corruption to the curriculum."""
        strength = self.curriculum.strength
        level = self.curriculum.level
        clouds = subsample_batch(data.val_points, self.cfg.num_points, self.rng)
        corrupted = self.corrupt_for_method(clouds, data.val_labels, strength)
        robust = accuracy(self.model, corrupted, data.val_labels)
        advanced = self.curriculum.report(robust)
        return {
            "curriculum/level": float(level),
            "curriculum/val_robust_acc": robust,
            "curriculum/advanced": float(advanced),
        }

    def end_epoch(self, data: Dataset) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.cfg.method in ("curriculum", "intact") and self.corrupting:
            metrics.update(self.gate_curriculum(data))
        if self.cfg.method == "intact":
            self.snapshot_student()
        val = subsample_batch(data.val_points, self.cfg.num_points, self.rng)
        metrics["val/clean_acc"] = accuracy(self.model, val, data.val_labels)
        metrics["train/lr"] = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        self.epoch += 1
        return metrics

    def checkpoint_state(self, class_names: list[str]) -> dict:
        from robokit.core.config import to_dict

        return {
            "kind": CHECKPOINT_KIND,
            "config": to_dict(self.cfg),
            "backbone": self.cfg.backbone,
            "width": self.cfg.width,
            "num_classes": self.model.num_classes,
            "class_names": class_names,
            "num_points": self.cfg.num_points,
            "model": self.model.state_dict(),
            "teacher": None if self.teacher is None else self.teacher.state_dict(),
            "curriculum": self.curriculum.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
        }


def predict(model: nn.Module, points: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Class predictions (N,) int64 for clouds (N,P,3) or a list of (M_i,3), model in eval mode."""
    from robokit.intact.protocol import predict_clouds

    return predict_clouds(model, points, batch_size)


def accuracy(model: nn.Module, points: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy (0..1) of ``model`` on (N,P,3) clouds or a list of (M_i,3) clouds."""
    return float((predict(model, points) == labels).mean())


def train(cfg: TrainConfig, data: Dataset | None = None) -> dict:
    """Train per ``cfg``; write config.yaml, metrics.csv and model.pt under ``cfg.out``.

    Returns:
        {"checkpoint": path, "test_clean_acc": float, "seconds": float, "final_level": int,
        "trainer": the RobustTrainer (model, teacher, curriculum)}
    """
    from tqdm import tqdm

    from robokit.core.checkpoint import save_checkpoint
    from robokit.core.config import save_config
    from robokit.core.logging import make_logger

    out = check_run_dir(cfg.out, overwrite=cfg.overwrite, resumable=False)
    data = data or load_dataset(cfg)
    out = clear_run_dir(out) if cfg.overwrite else out
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    trainer = RobustTrainer(cfg, num_classes=len(data.class_names))
    logger = make_logger(("csv",), out, None)
    started = time.perf_counter()
    bar = tqdm(
        range(cfg.epochs),
        desc=f"{cfg.method}/{cfg.backbone} seed {cfg.seed}",
        disable=not cfg.progress,
        leave=False,
    )
    for _ in bar:
        metrics = trainer.train_epoch(data)
        metrics.update(trainer.end_epoch(data))
        logger.log(metrics, step=trainer.epoch)
        bar.set_postfix(
            loss=f"{metrics['train/loss']:.3f}",
            val=f"{metrics['val/clean_acc']:.2f}",
            level=trainer.curriculum.level,
        )
    logger.close()
    checkpoint = save_checkpoint(out / "model.pt", trainer.checkpoint_state(data.class_names))
    test_points = subsample_batch(
        data.test_points, cfg.num_points, np.random.default_rng(cfg.seed + 1)
    )
    return {
        "checkpoint": checkpoint,
        "test_clean_acc": accuracy(trainer.model, test_points, data.test_labels),
        "seconds": time.perf_counter() - started,
        "final_level": trainer.curriculum.level,
        "trainer": trainer,
    }
