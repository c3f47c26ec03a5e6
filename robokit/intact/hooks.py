"""The training-hooks protocol both the classifier and the detector trainers call, and INTACT behind it.

A trainer owns its student, data, optimiser and loop; robustness methods change what the student
sees through four calls (:class:`TrainingHooks`):

==============================================  ======================================================
``begin(model, data)``                          once, before the first epoch, with the training data
``corrupt_batch(clouds, targets, model,         before each student step: the clouds the student sees
epoch, rng)``
``after_step(model, step, rng)``                after each student step (INTACT: teacher meta-step)
``end_epoch(model, epoch, rng)``                after each epoch (curriculum gate, student snapshot)
==============================================  ======================================================

:class:`CurriculumHooks` implements it for the plain curriculum baseline and for INTACT, on any
student reached through a :class:`StudentTask` adapter (the classifier's and the detector's live
beside their trainers). For INTACT, at every batch:

1. each cloud to corrupt draws a corruption family (drop / noise / displace);
2. per family, the meta-learned teacher is **adapted** (``meta.inner_steps`` Adam steps) to the
   current student's gradient saliency on those clouds under a random corruption of that family;
3. the adapted teacher's saliency aims :func:`~robokit.intact.adversarial.adversarial_corruption`,
   which chooses within the curriculum's budget the corruption that maximises the student's loss.

Every ``meta_every`` student steps the teacher takes a meta-step (:class:`~robokit.intact.meta.MetaLearner`)
over ``meta_tasks`` tasks = (class or scene subset) x (corruption family or clean, strength U(0.2, 1))
x (the student or one of its last ``snapshots`` per-epoch copies). After each corrupting epoch the
student's robust score on held-out data, corrupted in the method's own way at the current level,
is reported to the :class:`~robokit.intact.curriculum.Curriculum`; with ``gate="relative"`` its
clean score on the same data is measured and reported too (the gate then reads robust / clean).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from robokit.intact.adversarial import AdversarialConfig, LossOracle, adversarial_corruption
from robokit.intact.attacks import TargetedCorruptionConfig, choose
from robokit.intact.curriculum import DEFAULT_LEVELS, Curriculum
from robokit.intact.meta import MetaConfig, MetaLearner
from robokit.intact.saliency import (
    SaliencyTask,
    SaliencyTeacher,
    point_cloud_saliency_map,
    rank_normalise,
)

Corrupt = Callable[[list[np.ndarray], Sequence], list[np.ndarray]]


@runtime_checkable
class TrainingHooks(Protocol):
    """What a robustness method may change in a trainer's loop (see the module docstring)."""

    def begin(self, model: nn.Module, data: Any) -> None: ...

    def corrupt_batch(
        self, clouds: list[np.ndarray], targets: Sequence, model: nn.Module, epoch: int, rng: np.random.Generator
    ) -> list[np.ndarray]: ...

    def after_step(self, model: nn.Module, step: int, rng: np.random.Generator) -> dict[str, float]: ...

    def end_epoch(self, model: nn.Module, epoch: int, rng: np.random.Generator) -> dict[str, float]: ...

    def state_dict(self) -> dict:
        """Plain data for the trainer's checkpoint (``--resume``)."""
        ...

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output (called before :meth:`begin` on a resumed run)."""
        ...


class StudentTask(LossOracle, Protocol):
    """A trainer's student as INTACT sees it: losses, point gradients, tasks, a robust score."""

    coordinate_scale: float
    """cloud units per teacher input unit (1 for unit-sphere objects, 40 for KITTI metres)."""

    def attach(self, data: Any) -> None:
        """Take the trainer's data (what :meth:`TrainingHooks.begin` received)."""
        ...

    def task_clouds(self, rng: np.random.Generator) -> tuple[list[np.ndarray], list]:
        """Clouds and targets of one meta-learning task (a class or scene subset of the training data)."""
        ...

    def baseline_corruption(
        self, clouds: list[np.ndarray], strength: float, rng: np.random.Generator
    ) -> list[np.ndarray]:
        """The plain curriculum's untargeted corruption at ``strength``."""
        ...

    def robust_score(self, model: nn.Module, corrupt: Corrupt, rng: np.random.Generator) -> float:
        """Score in [0, 1] on held-out data corrupted by ``corrupt(clouds, targets)``."""
        ...


@dataclass(frozen=True)
class IntactConfig:
    """INTACT's settings shared by the classifier and the detector (sources in docs/intact.md)."""

    method: Literal["curriculum", "intact"] = "intact"
    warmup_epochs: int = 3
    clean_fraction: float = 0.5
    levels: tuple[float, ...] = DEFAULT_LEVELS
    threshold: float = 0.7
    gate: Literal["absolute", "relative"] = "absolute"
    """the curriculum's gate: robust score >= threshold, or robust / clean >= threshold (robokit's
    deviation for weak students; :mod:`robokit.intact.curriculum`)"""
    meta: MetaConfig = field(default_factory=MetaConfig)
    saliency_target: Literal["gradient", "removal"] = "gradient"
    """teacher target: the loss-gradient norm per point, or Zheng et al.'s removal saliency map"""
    adapt: bool = True
    """targeting uses the teacher adapted to the batch (False: the meta-learned initialisation)."""
    adapt_clouds: int = 8
    """clouds of the batch the teacher adapts on (its support set), per family"""
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    corruption: TargetedCorruptionConfig = field(default_factory=TargetedCorruptionConfig)
    meta_every: int = 2
    meta_tasks: int = 2
    snapshots: int = 3
    task_points: int = 2048
    """points per cloud in a teacher task (clouds are subsampled after their targets are computed)"""
    seed: int = 0


def flat_intact_config(flat: Any, method: str, levels: Sequence[float], threshold: float,
                       task_points: int, gate: Literal["absolute", "relative"] = "absolute") -> IntactConfig:
    """The shared settings from a trainer's flat (command-line) config.

    ``flat`` has the fields warmup_epochs, clean_fraction, meta_rule, adapt_steps, adapt_teacher,
    saliency_target, drop_candidates, attack_steps, meta_every, meta_tasks, snapshots and seed.
    """
    return IntactConfig(
        method="intact" if method == "intact" else "curriculum",
        warmup_epochs=flat.warmup_epochs,
        clean_fraction=flat.clean_fraction,
        levels=tuple(levels),
        threshold=threshold,
        gate=gate,
        meta=MetaConfig(rule=flat.meta_rule, inner_steps=flat.adapt_steps),
        saliency_target=flat.saliency_target,
        adapt=flat.adapt_teacher,
        adversarial=AdversarialConfig(drop_candidates=flat.drop_candidates, pgd_steps=flat.attack_steps),
        meta_every=flat.meta_every,
        meta_tasks=flat.meta_tasks,
        snapshots=flat.snapshots,
        task_points=task_points,
        seed=flat.seed,
    )


class CurriculumHooks:
    """The plain curriculum (``method="curriculum"``) or INTACT (``"intact"``) behind :class:`TrainingHooks`."""

    def __init__(self, task: StudentTask, config: IntactConfig = IntactConfig()) -> None:
        self.task = task
        self.config = config
        self.curriculum = Curriculum(config.levels, config.threshold, gate=config.gate)
        self.teacher: SaliencyTeacher | None = None
        self.meta: MetaLearner | None = None
        self.snapshots: list[nn.Module] = []
        self._pending_snapshots: list[dict] = []  # a resumed run's snapshot weights, until begin()
        if config.method == "intact":
            with torch.random.fork_rng():
                torch.manual_seed(config.seed)
                self.teacher = SaliencyTeacher()
            self.meta = MetaLearner(self.teacher, config.meta)

    # ----- the protocol ------------------------------------------------------------------------
    def begin(self, model: nn.Module, data: Any) -> None:
        self.task.attach(data)
        for weights in self._pending_snapshots:
            self.snapshot(model)
            self.snapshots[-1].load_state_dict(weights)
        self._pending_snapshots = []

    def active(self, epoch: int) -> bool:
        """Whether batches of ``epoch`` carry corrupted clouds (after the clean warm-up)."""
        return epoch >= self.config.warmup_epochs

    def corrupt_batch(self, clouds, targets, model, epoch, rng):
        if not self.active(epoch):
            return list(clouds)
        chosen = np.flatnonzero(rng.random(len(clouds)) >= self.config.clean_fraction)
        out = list(clouds)
        corrupted = self.corrupt(model, [clouds[i] for i in chosen], [targets[i] for i in chosen],
                                 self.curriculum.strength, rng)
        for i, cloud in zip(chosen, corrupted, strict=True):
            out[i] = cloud
        return out

    def after_step(self, model, step, rng):
        if self.meta is None or step % self.config.meta_every:
            return {}
        tasks = [self.sample_task(model, rng) for _ in range(self.config.meta_tasks)]
        return self.meta.outer_step(tasks)

    def end_epoch(self, model, epoch, rng):
        metrics: dict[str, float] = {"curriculum/strength": self.curriculum.strength if self.active(epoch) else 0.0}
        if self.active(epoch):
            level, strength = self.curriculum.level, self.curriculum.strength
            score = self.task.robust_score(
                model, lambda clouds, targets: self.corrupt(model, clouds, targets, strength, rng), rng
            )
            clean = None
            if self.curriculum.gate == "relative":  # the same data, uncorrupted
                clean = self.task.robust_score(model, lambda clouds, targets: list(clouds), rng)
                metrics.update({"curriculum/val_clean_score": clean,
                                "curriculum/gate_value": self.curriculum.gated_value(score, clean)})
            advanced = self.curriculum.report(score, clean)
            metrics.update({"curriculum/level": float(level), "curriculum/val_robust_score": score,
                            "curriculum/advanced": float(advanced)})
        if self.meta is not None:
            self.snapshot(model)
        return metrics

    # ----- corruption ----------------------------------------------------------------------------
    def corrupt(self, model: nn.Module, clouds: list[np.ndarray], targets: Sequence, strength: float,
                rng: np.random.Generator) -> list[np.ndarray]:
        """The method's corruption of ``clouds`` at ``strength`` (untargeted, or INTACT's adversarial one)."""
        if not clouds:
            return []
        if self.meta is None:
            return self.task.baseline_corruption(clouds, strength, rng)
        families = [choose(self.config.corruption.ops, rng) for _ in clouds]
        out = list(clouds)
        for family in dict.fromkeys(families):
            rows = [i for i, f in enumerate(families) if f == family]
            group, group_targets = [clouds[i] for i in rows], [targets[i] for i in rows]
            teacher = self.targeting_teacher(model, group, group_targets, family, strength, rng)
            saliency = self.teacher_scores(teacher, group)
            corrupted = adversarial_corruption(model, self.task, group, group_targets, saliency, family,
                                               strength, rng, self.config.corruption, self.config.adversarial)
            for i, cloud in zip(rows, corrupted, strict=True):
                out[i] = cloud
        return out

    def targeting_teacher(self, model, clouds, targets, family, strength, rng) -> nn.Module:
        """The teacher adapted to ``model`` under ``family`` on (up to ``adapt_clouds`` of) ``clouds``."""
        assert self.meta is not None and self.teacher is not None
        if not self.config.adapt or self.config.meta.inner_steps == 0:
            return self.teacher
        count = min(self.config.adapt_clouds, len(clouds))
        points, target = self.saliency_targets(model, clouds[:count], targets[:count], family, strength, rng)
        return self.meta.adapt(points, target)

    # ----- teacher tasks ------------------------------------------------------------------------
    def saliency_targets(self, model, clouds, targets, family, strength, rng) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher inputs (S,P,3) and rank-percentile gradient saliency (S,P) of ``model`` on ``clouds``
        under a random corruption of ``family`` ("clean": none) at ``strength``."""
        if family != "clean":
            random_search = AdversarialConfig(drop_candidates=1, pgd_steps=0)
            uniform = [np.full(len(c), 0.5) for c in clouds]
            clouds = adversarial_corruption(model, self.task, clouds, targets, uniform, family, strength, rng,
                                            self.config.corruption, random_search)
        grads = self.task.point_grads(model, clouds, targets)
        size = min(self.config.task_points, min(len(c) for c in clouds))
        points, scores = [], []
        for cloud, grad in zip(clouds, grads, strict=True):
            raw = (np.linalg.norm(grad, axis=1) if self.config.saliency_target == "gradient"
                   else point_cloud_saliency_map(cloud, grad))
            score = rank_normalise(torch.from_numpy(raw[None].astype(np.float32)))[0]
            keep = rng.choice(len(cloud), size=size, replace=False) if len(cloud) > size else np.arange(size)
            points.append(torch.from_numpy(cloud[keep, :3].astype(np.float32) / self.task.coordinate_scale))
            scores.append(score[keep])
        return torch.stack(points), torch.stack(scores)

    def sample_task(self, model: nn.Module, rng: np.random.Generator) -> SaliencyTask:
        """Task = (data subset) x (family or clean, strength U(0.2, 1)) x (student or a snapshot)."""
        clouds, targets = self.task.task_clouds(rng)
        if len(clouds) == 1:  # one scan: support and query are two corrupted subsamples of it
            clouds, targets = clouds * 2, targets * 2
        family = choose(("clean", *self.config.corruption.ops), rng)
        strength = float(rng.uniform(0.2, 1.0))
        models = [model, *self.snapshots]
        index = int(rng.integers(len(models)))
        points, target = self.saliency_targets(models[index], clouds, targets, family, strength, rng)
        name = f"family={family} strength={strength:.2f} model={'student' if index == 0 else f'snapshot{index}'}"
        half = len(points) // 2
        return SaliencyTask(points[:half], target[:half], points[half:], target[half:], name)

    def snapshot(self, model: nn.Module) -> None:
        """Keep a frozen copy of the student as an extra task model for the teacher."""
        frozen = copy.deepcopy(model).eval()
        for param in frozen.parameters():
            param.requires_grad_(False)
        self.snapshots = (self.snapshots + [frozen])[-self.config.snapshots:] if self.config.snapshots else []

    @torch.no_grad()
    def teacher_scores(self, teacher: nn.Module, clouds: list[np.ndarray]) -> list[np.ndarray]:
        """The teacher's (N_i,) saliency of each cloud (eval mode)."""
        was_training = teacher.training
        teacher.eval()
        try:
            scale = self.task.coordinate_scale
            if len({len(c) for c in clouds}) == 1:
                batch = torch.from_numpy(np.stack([c[:, :3] for c in clouds]).astype(np.float32) / scale)
                return list(teacher(batch).numpy())
            return [teacher(torch.from_numpy(c[None, :, :3].astype(np.float32) / scale))[0].numpy() for c in clouds]
        finally:
            teacher.train(was_training)

    def state_dict(self) -> dict:
        return {
            "teacher": None if self.teacher is None else self.teacher.state_dict(),
            "meta": None if self.meta is None else self.meta.state_dict(),
            "curriculum": self.curriculum.state_dict(),
            "snapshots": [snapshot.state_dict() for snapshot in self.snapshots],
        }

    def load_state_dict(self, state: dict) -> None:
        """Teacher, meta-learner, curriculum now; the student snapshots once :meth:`begin` gives the model."""
        if self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
        if self.meta is not None:
            self.meta.load_state_dict(state["meta"])
        self.curriculum = Curriculum.from_state_dict(state["curriculum"])
        self._pending_snapshots = list(state.get("snapshots", []))
