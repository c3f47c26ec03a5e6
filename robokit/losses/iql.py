"""Implicit Q-learning losses (Kostrikov et al. 2021)."""

from __future__ import annotations

import torch

from robokit.losses.td import td_target


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric squared loss |tau - 1(diff < 0)| * diff^2, elementwise: (...) -> (...)."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff.pow(2)


def iql_value_loss(q_target: torch.Tensor, value: torch.Tensor, expectile: float) -> torch.Tensor:
    """Expectile regression of V(s) towards min_e Q_target(s, a_data).

    Args:
        q_target: (B,) target-network Q of dataset actions (constants).
        value: (B,) V(s).
        expectile: tau in (0, 1); 0.7 for locomotion, 0.9 for AntMaze (IQL paper).
    Returns:
        scalar mean loss.
    """
    return expectile_loss(q_target.detach() - value, expectile).mean()


def iql_q_loss(q_pred: torch.Tensor, reward: torch.Tensor, next_value: torch.Tensor,
               terminated: torch.Tensor, discount: float) -> torch.Tensor:
    """Sum over members of mean (Q_e(s,a) - (r + gamma (1 - term) V(s')))^2.

    Args:
        q_pred: (E, B); reward, next_value, terminated: (B,).
    """
    target = td_target(reward, next_value.detach(), terminated, discount)
    return (q_pred - target).pow(2).mean(dim=-1).sum()


def awr_actor_loss(log_prob: torch.Tensor, advantage: torch.Tensor, temperature: float,
                   max_weight: float = 100.0) -> torch.Tensor:
    """Advantage-weighted regression: -mean(min(exp(beta * A), max_weight) * log pi(a_data|s)).

    Args:
        log_prob: (B,) log pi of dataset actions.
        advantage: (B,) Q - V (constants).
        temperature: beta (inverse temperature; 3.0 locomotion, 10.0 AntMaze in IQL).
        max_weight: clip on the exponentiated advantage (100 in IQL's code).
    """
    weight = torch.exp(temperature * advantage.detach()).clamp(max=max_weight)
    return -(weight * log_prob).mean()
