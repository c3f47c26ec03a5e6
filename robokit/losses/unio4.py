"""Uni-O4 losses (Lei et al., ICLR 2024; official code ``Lei-Kun/Uni-O4``): pure functions, shapes in docstrings.

- :func:`diversity_bc_loss`: the ensemble behaviour-cloning term with the code's "heuristic" diversity
  bonus (``BC_ensemble.py``, ``kl_type='heuristic'``, ``bc_kl='data'``).
- :func:`standardise_advantage` / :func:`asymmetric_weight`: the advantage of the policy-improvement step
  (``abppo.py``: ``(A - mean) / (std + 1e-10)`` then ``omega`` for A > 0, ``1 - omega`` otherwise).
- :func:`clipped_ratio_loss`: the clipped importance-ratio objective of each member against its
  behaviour policy (``abppo.py``, ``BehaviorProximalPolicyOptimization.loss``).
- :func:`mc_value_loss` and :func:`sarsa_q_loss`: the offline critics (``critic.py``: ``ValueLearner``
  regresses V to the Monte-Carlo return, ``QSarsaLearner`` regresses Q to r + gamma Q_target(s', a')).
"""

from __future__ import annotations

import torch

#: the official code's ``CONST_EPS`` (utils.py)
ADVANTAGE_EPS = 1e-10


def diversity_bc_loss(log_probs: torch.Tensor, alpha: float) -> torch.Tensor:
    """Joint BC of K members with the diversity term: each member is pushed to explain the data better
    than the best of the others.

    For member k on row b: ``-log pi_k(a|s) - alpha * (log pi_k(a|s) - max_{j != k} log pi_j(a|s))``,
    the maximum taken over the other members' (constant) log-probabilities; averaged over rows and
    summed over members (each member's optimizer sees only its own row mean, as in the code).

    Args:
        log_probs: (K, B) log-likelihood of the dataset actions under each member (K >= 2).
        alpha: weight of the diversity term (``alpha_bc``, 0.1 in the code).
    Returns:
        scalar loss; ``alpha = 0`` gives plain maximum likelihood per member.
    """
    members = log_probs.shape[0]
    if members < 2:
        return -log_probs.mean(-1).sum()
    others = log_probs.detach().unsqueeze(0).expand(members, -1, -1).clone()  # (K, K, B): [k, j]
    others[torch.arange(members), torch.arange(members)] = -torch.inf
    best_other = others.max(dim=1).values  # (K, B)
    loss = -log_probs - alpha * (log_probs - best_other)
    return loss.mean(-1).sum()


def standardise_advantage(advantage: torch.Tensor) -> torch.Tensor:
    """(A - mean(A)) / (std(A) + 1e-10) along the last axis: (..., B) -> (..., B) (unbiased std, as torch.std)."""
    return (advantage - advantage.mean(-1, keepdim=True)) / (advantage.std(-1, keepdim=True) + ADVANTAGE_EPS)


def asymmetric_weight(advantage: torch.Tensor, omega: float) -> torch.Tensor:
    """``omega * A`` where A > 0, ``(1 - omega) * A`` elsewhere (omega = 0.5 returns A unchanged): (...) -> (...)."""
    if omega == 0.5:
        return advantage
    return torch.where(advantage > 0, omega, 1.0 - omega) * advantage


def clipped_ratio_loss(log_prob: torch.Tensor, behaviour_log_prob: torch.Tensor, advantage: torch.Tensor,
                       clip_ratio: float) -> torch.Tensor:
    """Clipped surrogate of K members against their behaviour policies, summed over members.

    ``r = exp(log pi_k(a|s) - log pi_beta_k(a|s))``; member loss ``-mean_b min(r A, clip(r, 1 - eps, 1 + eps) A)``.

    Args:
        log_prob: (K, B) log pi_k of the actions sampled from member k's behaviour policy.
        behaviour_log_prob: (K, B) their log-probabilities under that behaviour policy (constants).
        advantage: (K, B) advantages (constants), already standardised / weighted.
        clip_ratio: eps.
    Returns:
        scalar.
    """
    ratio = torch.exp(log_prob - behaviour_log_prob.detach())
    advantage = advantage.detach()
    clipped = ratio.clamp(1.0 - clip_ratio, 1.0 + clip_ratio)
    return -torch.minimum(ratio * advantage, clipped * advantage).mean(-1).sum()


def mc_value_loss(value: torch.Tensor, mc_return: torch.Tensor) -> torch.Tensor:
    """mean((V(s) - G)^2), G the discounted Monte-Carlo return-to-go: (B,), (B,) -> scalar."""
    return (value - mc_return.detach()).pow(2).mean()


def sarsa_q_loss(q_pred: torch.Tensor, reward: torch.Tensor, next_q: torch.Tensor, not_done: torch.Tensor,
                 discount: float) -> torch.Tensor:
    """SARSA regression: mean over rows of (Q(s, a) - (r + gamma * not_done * Q_target(s', a')))^2, summed over members.

    Args:
        q_pred: (E, B); reward, next_q (target network on the dataset's next action), not_done: (B,).
    """
    target = (reward + discount * not_done * next_q).detach()
    return (q_pred - target).pow(2).mean(-1).sum()
