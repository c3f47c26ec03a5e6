"""Proximal policy optimisation losses (Schulman et al. 2017)."""

from __future__ import annotations

import torch


def ppo_clip_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantage: torch.Tensor,
                  clip_range: float) -> torch.Tensor:
    """Clipped surrogate: -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)), r = exp(log pi - log pi_old).

    Args:
        log_prob: (B,) log pi(a|s) under the current policy.
        old_log_prob: (B,) log-probabilities recorded when acting (constants).
        advantage: (B,) advantage estimates (constants).
        clip_range: eps.
    """
    ratio = torch.exp(log_prob - old_log_prob.detach())
    advantage = advantage.detach()
    unclipped = ratio * advantage
    clipped = ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * advantage
    return -torch.min(unclipped, clipped).mean()


def ppo_value_loss(value: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """0.5 * mean((V(s) - R)^2) with R the GAE return (constant): (B,), (B,) -> scalar."""
    return 0.5 * (value - returns.detach()).pow(2).mean()
