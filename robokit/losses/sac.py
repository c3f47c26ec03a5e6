"""Soft actor-critic actor and temperature losses (Haarnoja et al. 2018, v2)."""

from __future__ import annotations

import torch


def sac_actor_loss(log_prob: torch.Tensor, q_value: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """mean(alpha * log pi(a|s) - Q(s, a)) with a ~ pi (reparameterised).

    Args:
        log_prob: (B,) log-probabilities of the sampled actions.
        q_value: (B,) critic value of those actions (e.g. ensemble mean).
        alpha: entropy temperature (treated as a constant).
    Returns:
        scalar loss.
    """
    alpha = alpha.detach() if torch.is_tensor(alpha) else alpha
    return (alpha * log_prob - q_value).mean()


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """-mean(log_alpha * (log pi(a|s) + target_entropy)), gradient only to ``log_alpha``.

    Raises alpha when the policy's entropy (-log pi) is below ``target_entropy``.

    Args:
        log_alpha: scalar parameter.
        log_prob: (B,) log-probabilities (treated as constants).
        target_entropy: usually -action_dim.
    """
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()
