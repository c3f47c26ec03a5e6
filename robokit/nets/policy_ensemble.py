"""K Gaussian policies evaluated in one batched pass (Uni-O4's BC ensemble and its improved members).

The member network follows the official Uni-O4 ``GaussPolicyMLP`` (``net.py``): an MLP with ReLU hidden
layers and a final tanh on all 2A outputs; the first A are the mean (so means lie in [-1, 1]), the
last A are mapped linearly from [-1, 1] to a log-std in [-5, 0]; orthogonal weights (gain 1), zero
biases. The distribution is a plain diagonal Gaussian (no tanh squashing of samples): acting clips
samples to [-1, 1], log-probabilities are those of the Gaussian.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from robokit.nets.ensemble import EnsembleLinear, EnsembleMLP

LOG_STD_BOUNDS = (-5.0, 0.0)  # net.py, GaussPolicyMLP._log_std_bound


class GaussianPolicyEnsemble(nn.Module):
    """K policies pi_k(a|s) = N(mu_k(s), sigma_k(s)).

    params(obs (B, O) or (K, B, O)) -> mean (K, B, A), std (K, B, A)
    log_prob(obs, action (K, B, A) or (B, A)) -> (K, B)
    sample(obs, generator) -> (K, B, A) unclipped; mode(obs) -> (K, B, A); entropy(obs) -> (K, B)
    """

    def __init__(self, obs_dim: int, action_dim: int, members: int, hidden_dims: Sequence[int] = (256, 256, 256)) -> None:
        super().__init__()
        self.obs_dim, self.action_dim, self.members = int(obs_dim), int(action_dim), int(members)
        self.mlp = EnsembleMLP(obs_dim, 2 * action_dim, members, hidden_dims)
        for layer in self.mlp.net:
            if isinstance(layer, EnsembleLinear):
                layer.orthogonal_(1.0)

    def params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw_log_std = torch.tanh(self.mlp(obs)).chunk(2, dim=-1)
        low, high = LOG_STD_BOUNDS
        return mean, (low + 0.5 * (high - low) * (raw_log_std + 1.0)).exp()

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        mean, std = self.params(obs)
        z = (action - mean) / std
        return (-0.5 * z.pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean, std = self.params(obs)
        return mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.params(obs)[0]

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        _, std = self.params(obs)
        return (0.5 + 0.5 * math.log(2 * math.pi) + std.log()).sum(-1)


@torch.no_grad()
def copy_members_(target: GaussianPolicyEnsemble, source: GaussianPolicyEnsemble,
                  target_members: Sequence[int], source_members: Sequence[int]) -> None:
    """target member target_members[i] <- source member source_members[i] (same widths)."""
    for dst, src in zip(target.parameters(), source.parameters(), strict=True):
        dst[list(target_members)] = src[list(source_members)]


def clip_grad_norm_per_member_(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``clip_grad_norm_`` applied to each member separately (parameters with members on axis 0): returns (K,) norms."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(0)
    norms = torch.stack([g.pow(2).flatten(1).sum(1) for g in grads]).sum(0).sqrt()  # (K,)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for grad in grads:
        grad.mul_(scale.view(-1, *([1] * (grad.dim() - 1))))
    return norms
