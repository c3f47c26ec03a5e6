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
intact       as curriculum, but each corrupted cloud gets the *adversarial* corruption of its family
             within the level's budget, aimed by the saliency of a meta-learned teacher (first-order
             MAML or Reptile) adapted to the current student before each batch
             (:class:`~robokit.intact.hooks.CurriculumHooks`)
===========  ==================================================================================

Every method but standard acts through a :class:`~robokit.intact.hooks.TrainingHooks` object,
the same protocol the detector's trainer calls. The curriculum methods train on clean clouds
for ``warmup_epochs`` first; after each later epoch the student's accuracy on a held-out
validation split, corrupted at the current level in the method's own way, is reported to the
curriculum.

Data: ``points`` (N,P,3) float32 in the unit sphere, ``labels`` (N,) int64; each
step feeds ``num_points`` random points of every cloud (a fresh subset each time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robokit.core.config import check_ranges
from robokit.core.seeding import seed_everything
from robokit.intact.attacks import pgd_attack, random_drop, resample_to, targeted_corruption
from robokit.intact.curriculum import Curriculum
from robokit.intact.hooks import CurriculumHooks, IntactConfig, TrainingHooks, flat_intact_config
from robokit.intact.saliency import SaliencyTeacher, loss_point_grads
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
    """run folder: config.yaml, metrics.csv, checkpoints/step_*.pt, final.pt (robokit.core.runs)"""
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
    meta_rule: Literal["fomaml", "reptile"] = "fomaml"
    """intact: outer rule of the teacher's meta-learning (first-order MAML or Reptile)"""
    adapt_steps: int = 4
    """intact: inner Adam steps of the teacher, in meta-learning and before targeting a batch"""
    saliency_target: Literal["gradient", "removal"] = "gradient"
    """intact: the teacher's target: loss-gradient norm per point, or the removal saliency map (Zheng et al.)"""
    adapt_teacher: bool = True
    """intact: target with the teacher adapted to the batch (--no-adapt-teacher: the meta-learned initialisation)"""
    drop_candidates: int = 4
    """intact: saliency-weighted drop sets scored by the student's loss (the highest is kept)"""
    attack_steps: int = 3
    """intact: projected gradient steps of the noise / displace families on the salient points"""
    progress: bool = True
    """show a progress bar"""
    overwrite: bool = False
    """replace the files of a previous run in --out (without it, or --resume, a non-empty --out is refused)"""
    resume: bool = False
    """continue from the newest intact checkpoint in --out/checkpoints"""
    checkpoint_every: int = 1
    """epochs between checkpoints/step_*.pt (step = epoch; the last epoch always writes one, and final.pt)"""
    logger: tuple[Literal["console", "csv", "wandb", "none"], ...] = ("csv",)
    """logger adapters (as robokit train)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("epochs", "batch_size", "lr", "num_points", "width", "train_per_class",
                                     "test_per_class", "dataset_points", "meta_every", "dgcnn_k", "meta_tasks",
                                     "task_classes", "task_clouds", "levels", "drop_candidates",
                                     "checkpoint_every"),
                     non_negative=("weight_decay", "warmup_epochs", "pgd_eps", "pgd_steps", "snapshots",
                                   "adapt_steps", "attack_steps"),
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


class ClassificationTask:
    """The classifier as INTACT sees it (:class:`~robokit.intact.hooks.StudentTask`): equal-size clouds."""

    fixed_size = True
    coordinate_scale = 1.0

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.data: Dataset | None = None

    def attach(self, data: Dataset) -> None:
        self.data = data

    def losses(self, model: nn.Module, clouds: list[np.ndarray], targets) -> np.ndarray:
        """(B,) cross-entropy of each cloud (eval mode, no gradient)."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = model(torch.from_numpy(np.stack(clouds).astype(np.float32)))
                return F.cross_entropy(logits, torch.as_tensor(np.asarray(targets)), reduction="none").numpy()
        finally:
            model.train(was_training)

    def point_grads(self, model: nn.Module, clouds: list[np.ndarray], targets) -> list[np.ndarray]:
        points = torch.from_numpy(np.stack(clouds).astype(np.float32))
        return list(loss_point_grads(model, points, torch.as_tensor(np.asarray(targets))).numpy())

    def task_clouds(self, rng: np.random.Generator) -> tuple[list[np.ndarray], list]:
        """``task_clouds`` training clouds of ``task_classes`` random classes, ``num_points`` each."""
        assert self.data is not None, "ClassificationTask.attach(data) first"
        labels = self.data.train_labels
        classes = np.unique(labels)
        chosen = rng.choice(classes, size=min(self.cfg.task_classes, len(classes)), replace=False)
        rows = np.flatnonzero(np.isin(labels, chosen))
        rows = rng.choice(rows, size=min(self.cfg.task_clouds, len(rows)), replace=False)
        clouds = subsample_batch(self.data.train_points[rows], self.cfg.num_points, rng)
        return list(clouds), list(labels[rows])

    def baseline_corruption(self, clouds, strength, rng):
        return list(targeted_corruption(np.stack(clouds), None, strength, rng))

    def robust_score(self, model, corrupt, rng) -> float:
        """Validation accuracy with every cloud corrupted by ``corrupt``."""
        assert self.data is not None, "ClassificationTask.attach(data) first"
        clouds = subsample_batch(self.data.val_points, self.cfg.num_points, rng)
        corrupted = corrupt(list(clouds), list(self.data.val_labels))
        return accuracy(model, np.stack(corrupted), self.data.val_labels)


class PGDHooks:
    """The adversarial baseline as :class:`~robokit.intact.hooks.TrainingHooks`: random drop, then PGD."""

    def __init__(self, cfg: TrainConfig, generator: torch.Generator) -> None:
        self.cfg = cfg
        self.generator = generator

    def begin(self, model, data) -> None:
        return None

    def corrupt_batch(self, clouds, targets, model, epoch, rng):
        chosen = np.flatnonzero(rng.random(len(clouds)) >= self.cfg.clean_fraction)
        out = list(clouds)
        if len(chosen):
            dropped = random_drop(np.stack([clouds[i] for i in chosen]), self.cfg.adv_max_drop, rng)
            labels = torch.as_tensor(np.asarray([targets[i] for i in chosen]))
            adv = pgd_attack(model, torch.from_numpy(dropped), labels, self.cfg.pgd_eps, self.cfg.pgd_steps,
                             generator=self.generator).numpy()
            for row, cloud in zip(chosen, adv, strict=True):
                out[row] = cloud
        return out

    def after_step(self, model, step, rng) -> dict[str, float]:
        return {}

    def end_epoch(self, model, epoch, rng) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}  # its randomness is the trainer's (saved with the trainer)

    def load_state_dict(self, state: dict) -> None:
        return None


def intact_config(cfg: TrainConfig) -> IntactConfig:
    """The shared INTACT settings from the classifier's flat config."""
    return flat_intact_config(cfg, cfg.method, cfg.levels, cfg.threshold, task_points=cfg.num_points)


def build_hooks(cfg: TrainConfig, generator: torch.Generator) -> TrainingHooks | None:
    """None for standard training, else the method's hooks."""
    if cfg.method == "standard":
        return None
    if cfg.method == "adversarial":
        return PGDHooks(cfg, generator)
    return CurriculumHooks(ClassificationTask(cfg), intact_config(cfg))


class RobustTrainer:
    """Owns the student and its optimiser; the method acts through :class:`TrainingHooks`."""

    def __init__(self, cfg: TrainConfig, num_classes: int, hooks: TrainingHooks | None = None) -> None:
        """``hooks`` replaces the method's own (:func:`build_hooks`) when given."""
        if cfg.method not in METHODS:
            raise ValueError(f"unknown method {cfg.method!r}; choose from {METHODS}")
        self.cfg = cfg
        seeds = seed_everything(cfg.seed)  # parameter initialisers draw from the global generator
        self.rng, self.torch_gen = seeds.np_rng, seeds.torch_gen
        self.model = build_classifier(cfg.backbone, num_classes, cfg.width, cfg.dgcnn_k)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.scheduler = None
        if cfg.lr_schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(cfg.epochs, 1))
        self.hooks = hooks if hooks is not None else build_hooks(cfg, self.torch_gen)
        self.begun = False
        self.step = 0
        self.epoch = 0

    @property
    def curriculum(self) -> Curriculum | None:
        return getattr(self.hooks, "curriculum", None)

    @property
    def teacher(self) -> SaliencyTeacher | None:
        return getattr(self.hooks, "teacher", None)

    def make_batch(self, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """What the student sees in one step: (B,P,3) raw clouds -> (B,num_points,3)."""
        batch = subsample_batch(points, self.cfg.num_points, self.rng)
        if self.hooks is None:
            return batch
        return np.stack(self.hooks.corrupt_batch(list(batch), list(labels), self.model, self.epoch, self.rng))

    def student_step(self, points: np.ndarray, labels: np.ndarray) -> float:
        self.model.train()
        logits = self.model(torch.from_numpy(points))
        loss = F.cross_entropy(logits, torch.from_numpy(labels))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return float(loss.detach())

    def train_epoch(self, data: Dataset) -> dict[str, float]:
        if self.hooks is not None and not self.begun:
            self.hooks.begin(self.model, data)
            self.begun = True
        order = self.rng.permutation(len(data.train_labels))
        losses, step_logs = [], []
        for start in range(0, len(order), self.cfg.batch_size):
            rows = order[start : start + self.cfg.batch_size]
            if len(rows) < 2:  # BatchNorm needs two samples
                continue
            labels = data.train_labels[rows]
            losses.append(self.student_step(self.make_batch(data.train_points[rows], labels), labels))
            if self.hooks is not None:
                step_logs.append(self.hooks.after_step(self.model, self.step, self.rng))
        metrics = {"losses/student": float(np.mean(losses))}
        for key in {k for log in step_logs for k in log}:
            metrics[key] = float(np.mean([log[key] for log in step_logs if key in log]))
        return metrics

    def end_epoch(self, data: Dataset) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.hooks is not None:
            metrics.update(self.hooks.end_epoch(self.model, self.epoch, self.rng))
        val = subsample_batch(data.val_points, self.cfg.num_points, self.rng)
        metrics["eval/val_clean_acc"] = accuracy(self.model, val, data.val_labels)
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
            "curriculum": None if self.curriculum is None else self.curriculum.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
        }

    def training_state(self) -> dict:
        """What a resumed run needs beyond :meth:`checkpoint_state` (plain data for a checkpoint)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "hooks": None if self.hooks is None else self.hooks.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_gen": self.torch_gen.get_state(),
            "torch_global": torch.get_rng_state(),
        }

    def load_state(self, state: dict) -> None:
        """Continue from a checkpoint written by :func:`train` (``checkpoint_state`` + ``training``)."""
        training = state["training"]
        self.model.load_state_dict(state["model"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.optimizer.load_state_dict(training["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(training["scheduler"])
        if self.hooks is not None:
            self.hooks.load_state_dict(training["hooks"])
        self.rng.bit_generator.state = training["rng"]
        self.torch_gen.set_state(training["torch_gen"])
        torch.set_rng_state(training["torch_global"])


def predict(model: nn.Module, points: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Class predictions (N,) int64 for clouds (N,P,3) or a list of (M_i,3), model in eval mode."""
    from robokit.intact.protocol import predict_clouds

    return predict_clouds(model, points, batch_size)


def accuracy(model: nn.Module, points: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy (0..1) of ``model`` on (N,P,3) clouds or a list of (M_i,3) clouds."""
    return float((predict(model, points) == labels).mean())


def train(cfg: TrainConfig, data: Dataset | None = None, hooks: TrainingHooks | None = None) -> dict:
    """Train per ``cfg`` (``hooks`` overrides the method's) into ``cfg.out`` (:mod:`robokit.core.runs`; step = epoch).

    Every ``checkpoint_every`` epochs (and at the end) ``checkpoints/step_<epoch>.pt`` holds
    :meth:`RobustTrainer.checkpoint_state` plus ``training`` (optimiser, scheduler, hooks, RNG
    streams), so ``resume`` continues exactly; ``final.pt`` is the last one, what
    ``robokit robustness eval`` loads.

    Returns:
        {"checkpoint": final.pt path, "test_clean_acc": float, "seconds": float, "final_level": int,
        "trainer": the RobustTrainer (model, teacher, curriculum), "resumed_from": path or None}
    """
    from tqdm import tqdm

    from robokit.core.runs import FINAL_CHECKPOINT, save_step_checkpoint, start_run

    data = data or load_dataset(cfg)
    run = start_run(cfg, "robokit robustness train", step_of=lambda state: int(state["epoch"]))
    trainer = RobustTrainer(cfg, num_classes=len(data.class_names), hooks=hooks)
    if run.resumed is not None:
        trainer.load_state(run.resumed[1])
    started = time.perf_counter()
    bar = tqdm(
        range(trainer.epoch, cfg.epochs),
        desc=f"{cfg.method}/{cfg.backbone} seed {cfg.seed}",
        disable=not cfg.progress,
        leave=False,
    )
    for _ in bar:
        metrics = trainer.train_epoch(data)
        metrics.update(trainer.end_epoch(data))
        run.logger.log(metrics, step=trainer.epoch)
        bar.set_postfix(
            loss=f"{metrics['losses/student']:.3f}",
            val=f"{metrics['eval/val_clean_acc']:.2f}",
            level=0 if trainer.curriculum is None else trainer.curriculum.level,
        )
        last = trainer.epoch == cfg.epochs
        if trainer.epoch % cfg.checkpoint_every == 0 or last:
            state = {**trainer.checkpoint_state(data.class_names), "training": trainer.training_state()}
            save_step_checkpoint(run.out, trainer.epoch, state, final=last)
    run.logger.close()
    test_points = subsample_batch(
        data.test_points, cfg.num_points, np.random.default_rng(cfg.seed + 1)
    )
    return {
        "checkpoint": run.out / FINAL_CHECKPOINT,
        "test_clean_acc": accuracy(trainer.model, test_points, data.test_labels),
        "seconds": time.perf_counter() - started,
        "final_level": 0 if trainer.curriculum is None else trainer.curriculum.level,
        "trainer": trainer,
        "resumed_from": None if run.resumed is None else str(run.resumed[0]),
    }
