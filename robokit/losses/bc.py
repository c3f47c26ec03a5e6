"""Behaviour-cloning regulariser of an actor-critic actor, and the rule that scales it."""

from __future__ import annotations

import torch


def bc_mse_loss(policy_action: torch.Tensor, data_action: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the policy's action and the dataset's action.

    Args:
        policy_action: (B, A) the policy's (differentiable) action at the dataset states, in [-1, 1].
        data_action: (B, A) the dataset's actions.

    Returns:
        () the mean over rows of the squared distance summed over action dims.
    """
    return (policy_action - data_action).pow(2).sum(dim=-1).mean()


def matched_scale_weight(rl_magnitude: float, bc_magnitude: float, base_weight: float, eps: float = 1e-6) -> float:
    """The BC weight that gives ``weight * bc`` the magnitude of the RL actor loss, times ``base_weight``.

    ``base_weight * rl_magnitude / max(bc_magnitude, eps)``: with ``base_weight`` 1 the two terms of the
    actor loss have the same scale (RoboFuME: "the BC weight is chosen so that the two losses have a
    similar scale"). Magnitudes are non-negative running averages of ``|L_rl|`` and ``L_bc``.
    """
    return float(base_weight) * float(rl_magnitude) / max(float(bc_magnitude), eps)
