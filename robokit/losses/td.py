"""Temporal-difference targets and the ensemble critic regression loss."""

from __future__ import annotations

import torch


def td_target(reward: torch.Tensor, next_value: torch.Tensor, terminated: torch.Tensor,
              discount: float) -> torch.Tensor:
    """One-step target y = r + discount * (1 - terminated) * V(s').

    Only true terminations stop bootstrapping; a time-limit truncation still
    bootstraps (its transition has terminated = 0).

    Args:
        reward: (B,) rewards.
        next_value: (B,) or (E, B) value of the next state (already a target estimate).
        terminated: (B,) 1.0 where the episode ended in a terminal state.
        discount: gamma in [0, 1].
    Returns:
        (B,) or (E, B) targets, with no gradient path to anything but the inputs.
    """
    return reward + discount * (1.0 - terminated) * next_value


def random_subset(ensemble_size: int, subset_size: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
    """M member indices drawn without replacement, or None when M == E (use all)."""
    if subset_size > ensemble_size or subset_size < 1:
        raise ValueError(f"subset_size {subset_size} must be in [1, {ensemble_size}]")
    if subset_size == ensemble_size:
        return None
    device = None if generator is None else generator.device  # a CUDA generator draws on CUDA
    return torch.randperm(ensemble_size, generator=generator, device=device)[:subset_size]


def subset_min(q_values: torch.Tensor, subset_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Min over a random subset of ensemble members (REDQ / RLPD target).

    Args:
        q_values: (E, ...) ensemble predictions.
        subset_size: M <= E members drawn without replacement (M == E uses all).
        generator: torch RNG for the draw.
    Returns:
        (...) elementwise min over the chosen members.
    """
    ensemble = q_values.shape[0]
    if subset_size > ensemble or subset_size < 1:
        raise ValueError(f"subset_size {subset_size} must be in [1, {ensemble}]")
    if subset_size < ensemble:
        chosen = torch.randperm(ensemble, generator=generator, device=q_values.device)[:subset_size]
        q_values = q_values[chosen]
    return q_values.min(dim=0).values


def soft_target_value(next_q: torch.Tensor, next_log_prob: torch.Tensor, alpha: float | torch.Tensor,
                      backup_entropy: bool = True) -> torch.Tensor:
    """Soft state value V(s') = Q(s', a') - alpha * log pi(a'|s'): (B,), (B,) -> (B,)."""
    return next_q - alpha * next_log_prob if backup_entropy else next_q


def ensemble_critic_loss(q_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over members of each member's mean squared TD error.

    Matches two-critic SAC's ``loss_q1 + loss_q2`` for E = 2, so each member gets
    the gradient of its own regression whatever E is.

    Args:
        q_pred: (E, B) predictions.
        target: (B,) or (E, B) targets (treated as constants).
    Returns:
        scalar loss.
    """
    return (q_pred - target.detach()).pow(2).mean(dim=-1).sum()
