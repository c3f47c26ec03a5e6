"""Conservative Q-learning terms (Kumar et al. 2020) and Cal-QL's calibration (Nakamoto et al. 2023)."""

from __future__ import annotations

import math

import torch


def cql_penalty(q_data: torch.Tensor, q_random: torch.Tensor, q_current: torch.Tensor, q_next: torch.Tensor,
                log_prob_current: torch.Tensor, log_prob_next: torch.Tensor, action_dim: int,
                temperature: float = 1.0, clip_min: float = -math.inf,
                clip_max: float = math.inf) -> torch.Tensor:
    """CQL(H) penalty per member: T * logsumexp(Q(s, a~mu) / T) - Q(s, a_data), with importance weights.

    The log-sum-exp is estimated from N uniform actions on [-1, 1]^A (density 0.5^A),
    N actions from pi(.|s) and N actions from pi(.|s'), each divided by its proposal
    density: Q - log q(a). Cal-QL passes ``q_current``/``q_next`` already clamped by
    :func:`calql_lower_bound`.

    Args:
        q_data: (E, B) Q of dataset actions.
        q_random: (E, B, N) Q of uniform actions.
        q_current: (E, B, N) Q(s, a ~ pi(.|s)).
        q_next: (E, B, N) Q(s, a' ~ pi(.|s')).
        log_prob_current: (B, N) log pi of the current-state actions (constants).
        log_prob_next: (B, N) log pi of the next-state actions (constants).
        action_dim: A, for the uniform density.
        temperature: T of the log-sum-exp.
        clip_min, clip_max: each state's difference is clamped to [clip_min, clip_max] before the
            batch mean (``cql_clip_diff_min/max`` of the CQL, Cal-QL and CORL code; +-inf = off).
    Returns:
        (E,) penalty per member, averaged over the batch.
    """
    log_uniform_density = action_dim * math.log(0.5)
    stacked = torch.cat([
        q_random - log_uniform_density,
        q_next - log_prob_next.detach().unsqueeze(0),
        q_current - log_prob_current.detach().unsqueeze(0),
    ], dim=-1)
    soft_max = temperature * torch.logsumexp(stacked / temperature, dim=-1)
    return (soft_max - q_data).clamp(clip_min, clip_max).mean(dim=-1)


def calql_lower_bound(q_policy: torch.Tensor, mc_return: torch.Tensor) -> torch.Tensor:
    """Cal-QL: clamp policy-action Q values from below by the Monte-Carlo return-to-go.

    max(Q(s, a~pi), V^mu(s)) so the CQL push-down never drives Q below the
    behaviour policy's value, keeping the critic calibrated.

    Args:
        q_policy: (E, B, N) Q of policy actions.
        mc_return: (B,) discounted return-to-go of the dataset trajectory at s.
    Returns:
        (E, B, N) clamped values (gradient flows where Q is above the bound).
    """
    return torch.maximum(q_policy, mc_return.view(1, -1, 1).to(q_policy.dtype))


def lagrange_cql_terms(log_alpha_prime: torch.Tensor, penalty: torch.Tensor, target_action_gap: float,
                       cql_alpha: float = 1.0, max_alpha: float = 1e6) -> tuple[torch.Tensor, torch.Tensor]:
    """Lagrange-tuned CQL weight (CQL paper, Eq. 5 dual), as the Cal-QL and CORL code write it.

    alpha' = clamp(exp(log_alpha'), 0, max_alpha). Each member's conservative term is
    alpha' * cql_alpha * (penalty_e - gap), which the critic minimises (summed over members, as
    its TD losses are); alpha' maximises the members' mean of it (Cal-QL's and CORL's
    ``(-cql_min_qf1_loss - cql_min_qf2_loss) * 0.5``).

    Args:
        log_alpha_prime: scalar parameter.
        penalty: (E,) CQL penalty per member.
        target_action_gap: tau, the allowed gap.
        cql_alpha: the fixed CQL weight, a multiplier of alpha'.
    Returns:
        (critic_term scalar with gradient to the critic only,
         alpha_prime_loss scalar with gradient to log_alpha_prime only)
    """
    alpha_prime = log_alpha_prime.exp().clamp(0.0, max_alpha)
    gap = cql_alpha * (penalty - target_action_gap)
    critic_term = (alpha_prime.detach() * gap).sum()
    alpha_prime_loss = -(alpha_prime * gap.detach()).mean()
    return critic_term, alpha_prime_loss


def max_target_backup(next_q: torch.Tensor, next_log_prob: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CQL's max-target backup: of N sampled next actions take the one with the highest min-Q.

    Args:
        next_q: (M, B, N) target Q of N next actions under M ensemble members.
        next_log_prob: (B, N) log pi of those actions.
    Returns:
        (value (B,), log_prob (B,)): min over members of the chosen action, and its log-prob.
    """
    min_q = next_q.min(dim=0).values  # (B, N)
    best = min_q.argmax(dim=-1, keepdim=True)
    return min_q.gather(-1, best).squeeze(-1), next_log_prob.gather(-1, best).squeeze(-1)
