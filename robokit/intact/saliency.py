"""Per-point saliency: gradient targets from a task model, and a meta-learned teacher.

The INTACT paper publishes the idea (a teacher that learns which points a model
depends on, meta-trained so it transfers) but not its internals. robokit's
choices, all its own:

* **Target.** For a task model ``f`` and clouds ``x`` (B,N,3) with labels ``y``,
  the saliency of point ``i`` is the norm of the loss gradient at that point,
  ``||d CE(f(x), y) / d x_i||_2`` (a point-cloud saliency map). Norms are turned
  into per-cloud *rank percentiles* in [0, 1] (:func:`rank_normalise`), so the
  target does not depend on the model's gradient scale.
* **Teacher.** :class:`SaliencyTeacher` is a small PointNet segmentation network:
  a shared per-point MLP, a global max-pooled feature concatenated back to every
  point, and a per-point head with a sigmoid. ``teacher(points (B,N,3)) -> (B,N)``.
* **Meta-learning** of the teacher (first-order MAML or Reptile over tasks of
  :class:`SaliencyTask`) and its adaptation before targeting live in
  :mod:`robokit.intact.meta`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robokit.pointcloud.spconv_patch import eval_with_input_grads


@torch.enable_grad()
def loss_point_grads(model: nn.Module, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Gradient of the summed cross-entropy with respect to every point: (B,N,3), (B,) -> (B,N,3).

    The model is run in eval mode (its own mode is restored) and its parameters
    receive no gradient; gradients are on here even under ``torch.no_grad()``.
    """
    inputs = points.detach().clone().requires_grad_(True)
    with eval_with_input_grads(model):
        loss = F.cross_entropy(model(inputs), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, inputs)
    return grad


def gradient_saliency(model: nn.Module, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-point gradient norm of the cross-entropy loss: (B,N,3), (B,) -> (B,N) float32 >= 0."""
    return loss_point_grads(model, points, labels).norm(dim=-1)


def point_cloud_saliency_map(points: np.ndarray, grads: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Zheng et al.'s point-cloud saliency map: (N,3) points, (N,3) loss gradients -> (N,) scores.

    ``-(grad_i . (x_i - c)) * r_i ** power`` with ``c`` the median point and ``r_i = |x_i - c|``:
    the first-order loss increase from moving point i to the centre, i.e. from removing it
    ("PointCloud Saliency Maps", ICCV 2019; tianzheng4/PointCloud-Saliency-Maps ``saliency.py``,
    median centre, ``--power 1``). Higher = removing the point hurts more.
    """
    offset = points[:, :3] - np.median(points[:, :3], axis=0, keepdims=True)
    radius = np.linalg.norm(offset, axis=1)
    return -(grads * offset).sum(axis=1) * radius**power


def rank_normalise(scores: torch.Tensor) -> torch.Tensor:
    """Per-row rank percentiles: (B,N) -> (B,N) in [0,1], 1 for the largest score."""
    n = scores.shape[-1]
    ranks = scores.argsort(dim=-1).argsort(dim=-1).to(torch.float32)
    return ranks / max(n - 1, 1)


def saliency_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between predicted saliency and soft targets, both (B,N) in [0,1]."""
    return F.binary_cross_entropy(predicted.clamp(1e-6, 1 - 1e-6), target)


class SaliencyTeacher(nn.Module):
    """Per-point saliency network: ``teacher(points (B,N,3)) -> (B,N)`` in [0, 1].

    Args:
        widths: shared per-point MLP widths (the last one is the global feature size).
        head_width: hidden width of the per-point head.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128), head_width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for width in widths:
            layers += [nn.Conv1d(in_ch, width, 1), nn.ReLU()]
            in_ch = width
        self.point_mlp = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv1d(in_ch * 2, head_width, 1), nn.ReLU(), nn.Conv1d(head_width, 1, 1)
        )

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        if points.ndim != 3 or points.shape[-1] != 3:
            raise ValueError(
                f"SaliencyTeacher input must be (B, N, 3) points, got {tuple(points.shape)}"
            )
        local = self.point_mlp(points.transpose(1, 2))
        global_feature = local.max(dim=2, keepdim=True).values.expand_as(local)
        logits = self.head(torch.cat([local, global_feature], dim=1))
        return torch.sigmoid(logits.squeeze(1))


@dataclass
class SaliencyTask:
    """One meta-learning task: support and query clouds with target saliency.

    ``support_points`` (S,N,3), ``support_target`` (S,N); ``query_points`` (Q,N,3),
    ``query_target`` (Q,N); ``name`` says which classes/corruption/model it came from.
    """

    support_points: torch.Tensor
    support_target: torch.Tensor
    query_points: torch.Tensor
    query_target: torch.Tensor
    name: str = ""


def make_task(
    model: nn.Module, points: np.ndarray, labels: np.ndarray, support: int, name: str = ""
) -> SaliencyTask:
    """Split (corrupted) clouds (S+Q,N,3) into support/query with gradient-saliency targets."""
    clouds = torch.as_tensor(points, dtype=torch.float32)
    targets = rank_normalise(
        gradient_saliency(model, clouds, torch.as_tensor(labels, dtype=torch.long))
    )
    return SaliencyTask(
        clouds[:support], targets[:support], clouds[support:], targets[support:], name
    )


def saliency_agreement(
    teacher_saliency: torch.Tensor, target_saliency: torch.Tensor, top_fraction: float = 0.2
) -> float:
    """Fraction of the target's top-``top_fraction`` points that the teacher also ranks in its top set.

    Both inputs (B,N); 1.0 is perfect agreement, ``top_fraction`` is chance level.
    """
    k = max(1, int(round(top_fraction * teacher_saliency.shape[-1])))
    top_teacher = teacher_saliency.topk(k, dim=-1).indices
    top_target = target_saliency.topk(k, dim=-1).indices
    hits = (top_teacher[:, :, None] == top_target[:, None, :]).any(-1).float()
    return float(hits.mean())


@torch.no_grad()
def teacher_saliency(teacher: nn.Module | None, points: torch.Tensor) -> torch.Tensor:
    """The teacher's saliency in eval mode (B,N); a constant 0.5 when ``teacher`` is None."""
    if teacher is None:
        return torch.full(points.shape[:2], 0.5)
    was_training = teacher.training
    teacher.eval()
    try:
        return teacher(points)
    finally:
        teacher.train(was_training)
