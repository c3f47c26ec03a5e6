"""SECOND's losses as pure functions (no modules, no optimizer steps).

* classification: sigmoid focal loss (alpha 0.25, gamma 2) over positive and negative anchors;
* box regression: smooth L1 (beta 1/9) on the residuals of positive anchors, with the yaw
  residual replaced by ``sin(pred - target)`` split as ``sin(p)cos(t)`` vs ``cos(p)sin(t)``;
* direction: cross-entropy of the heading's half-turn bin on positive anchors.

Each term is normalised by the number of positive anchors (at least 1). Weights 1.0 / 2.0 /
0.2 are OpenPCDet's SECOND defaults.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sigmoid_focal_loss", "box_regression_loss", "direction_loss", "detection_loss"]


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> torch.Tensor:
    """Summed weighted focal loss.

    Args:
        logits: (B, A, K); targets: (B, A, K) one-hot in {0, 1} (all zero for background);
        weights: (B, A) per-anchor weight (0 for ignored anchors).
    """
    probability = torch.sigmoid(logits)
    p_t = targets * probability + (1 - targets) * (1 - probability)
    alpha_t = targets * alpha + (1 - targets) * (1 - alpha)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (alpha_t * (1 - p_t) ** gamma * cross_entropy * weights[..., None]).sum()


def _sin_difference(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    sin_pred_cos_target = torch.sin(pred[..., 6:7]) * torch.cos(target[..., 6:7])
    cos_pred_sin_target = torch.cos(pred[..., 6:7]) * torch.sin(target[..., 6:7])
    return (
        torch.cat([pred[..., :6], sin_pred_cos_target], dim=-1),
        torch.cat([target[..., :6], cos_pred_sin_target], dim=-1),
    )


def box_regression_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, beta: float = 1.0 / 9.0
) -> torch.Tensor:
    """Summed weighted smooth-L1 of (B, A, 7) residuals with the sine yaw term; weights (B, A)."""
    pred_sin, target_sin = _sin_difference(pred, target)
    diff = (pred_sin - target_sin).abs()
    per_value = torch.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta)
    return (per_value.sum(dim=-1) * weights).sum()


def direction_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Summed weighted cross-entropy: logits (B, A, 2), targets (B, A) int64 in {0, 1}, weights (B, A)."""
    per_anchor = F.cross_entropy(logits.reshape(-1, 2), targets.reshape(-1), reduction="none")
    return (per_anchor * weights.reshape(-1)).sum()


def detection_loss(
    outputs: dict[str, torch.Tensor],
    labels: torch.Tensor,
    box_targets: torch.Tensor,
    dir_targets: torch.Tensor,
    num_classes: int,
    cls_weight: float = 1.0,
    loc_weight: float = 2.0,
    dir_weight: float = 0.2,
) -> dict[str, torch.Tensor]:
    """The total loss and its terms.

    Args:
        outputs: ``cls`` (B, A, K), ``box`` (B, A, 7), ``dir`` (B, A, 2) from the detector.
        labels: (B, A) int64, 0 background, k + 1 for class k, -1 ignored.
        box_targets: (B, A, 7) encoded residuals; dir_targets: (B, A) int64.

    Returns:
        ``loss`` (scalar to backpropagate), ``cls``, ``loc``, ``dir`` (detached terms) and
        ``num_positive``.
    """
    positive = (labels > 0).float()
    cared = (labels >= 0).float()
    normaliser = positive.sum().clamp(min=1.0)
    one_hot = F.one_hot(labels.clamp(min=0), num_classes + 1)[..., 1:].float()
    cls = sigmoid_focal_loss(outputs["cls"], one_hot, cared) / normaliser
    loc = box_regression_loss(outputs["box"], box_targets, positive) / normaliser
    direction = direction_loss(outputs["dir"], dir_targets, positive) / normaliser
    total = cls_weight * cls + loc_weight * loc + dir_weight * direction
    return {
        "loss": total,
        "cls": cls.detach(),
        "loc": loc.detach(),
        "dir": direction.detach(),
        "num_positive": positive.sum().detach(),
    }
