"""Loss terms of Dichotomy of Control (DoC) and return-conditioned supervised learning.

DoC (Yang, Schuurmans, Abbeel, Nachum, ICLR 2023) trains, from offline trajectories,

- an action head pi(a_t | tau_{0:t-1}, s_t, z)            -> :func:`masked_mse` (neural) / cross-entropy (tabular)
- a value head V(tau_{0:t-1}, s_t, z) ~ return-to-go       -> :func:`masked_mse` / cross-entropy
- a posterior q(z | future) and a prior p(z | past)         -> :func:`gaussian_kl`  (KL(q || p))
- an energy f(z, s_{t+1}, r_t | tau_{0:t}, a_t) whose contrastive (InfoNCE) bound
  estimates MI(z; s_{t+1}, r_t | tau_{0:t}, a_t)            -> :func:`info_nce` / :func:`weighted_info_nce`

The MI constraint is a min-max: the energy maximises the bound (minimises the InfoNCE loss)
while the posterior minimises it; :func:`reverse_gradient` turns that into one minimised loss
(see ``docs/algos/doc.md`` for the sign discussion against the official code).

All functions are pure: no modules, no optimizer steps.
"""

from __future__ import annotations

import torch


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real (mask 1) steps only; padding contributes nothing.

    Args:
        pred, target: (B, L, D) or (B, L).
        mask: (B, L), 1 for real steps, 0 for padding.

    Returns:
        scalar: sum over real steps and D of squared errors / (real steps * D); 0 when no step is real.
    """
    if pred.shape != target.shape:
        raise ValueError(f"masked_mse: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    error = (pred - target) ** 2
    if error.dim() == mask.dim() + 1:
        error = error.mean(dim=-1)
    real = mask.sum()
    return (error * mask).sum() / real.clamp_min(1.0)


def gaussian_kl(mean_q: torch.Tensor, logvar_q: torch.Tensor, mean_p: torch.Tensor,
                logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_q, exp logvar_q) || N(mean_p, exp logvar_p)) for diagonal Gaussians.

    Args: each (B, Z).
    Returns: (B,) KL summed over the Z latent dimensions.
    """
    var_ratio = torch.exp(logvar_q - logvar_p)
    mahalanobis = (mean_q - mean_p) ** 2 * torch.exp(-logvar_p)
    return 0.5 * (var_ratio + mahalanobis - 1.0 - (logvar_q - logvar_p)).sum(dim=-1)


def info_nce(energies: torch.Tensor) -> torch.Tensor:
    """InfoNCE loss over a batch: row i's positive is column i, the other columns are negatives.

    Args:
        energies: (B, B), ``energies[i, j] = f(z_i, outcome_j | context_i)``.

    Returns:
        scalar mean over rows of ``-energies[i, i] + logsumexp_j energies[i, j]``
        (= log B minus the InfoNCE lower bound on the mutual information).
    """
    if energies.dim() != 2 or energies.shape[0] != energies.shape[1]:
        raise ValueError(f"info_nce: energies must be (B, B), got {tuple(energies.shape)}")
    return (-energies.diagonal() + torch.logsumexp(energies, dim=-1)).mean()


def weighted_info_nce(positive: torch.Tensor, candidates: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Contrastive loss with the negatives enumerated and weighted by their marginal (tabular DoC).

    Args:
        positive: (B,) energy of the observed outcome, f(z_i, r_i | s_i, a_i).
        candidates: (B, R) energy of every outcome value, f(z_i, r | s_i, a_i).
        weights: (R,) probabilities rho(r) of the outcome values (sum to 1).

    Returns:
        scalar mean of ``-positive + log sum_r weights[r] exp(candidates[:, r])``.
    """
    log_weights = torch.log(weights.clamp_min(1e-12))
    return (-positive + torch.logsumexp(candidates + log_weights, dim=-1)).mean()


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return -grad


def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    """Identity forward, negated gradient backward: what comes before it maximises the loss
    that what comes after it minimises (the posterior's side of the MI min-max)."""
    return _ReverseGradient.apply(x)
