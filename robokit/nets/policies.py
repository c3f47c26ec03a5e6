"""Policies over box action spaces in [-1, 1]^A (the trainer rescales to env bounds)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robokit.nets.mlp import MLP

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # SAC reference code (Haarnoja et al.) / CleanRL


def tanh_log_det_jacobian(pre_tanh: torch.Tensor) -> torch.Tensor:
    """log |d tanh(u) / du| summed over the last axis, computed stably: (..., A) -> (...).

    Uses log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)).
    """
    return (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)


class TanhGaussianPolicy(nn.Module):
    """a = tanh(u), u ~ N(mu(s), sigma(s)); the SAC actor.

    sample(obs (B, O)) -> (action (B, A) in (-1, 1), log_prob (B,))
    log_prob(obs (B, O), action (B, A)) -> (B,)  (for IQL's AWR on dataset actions)
    mode(obs) -> tanh(mu) (B, A), the deterministic action.

    The raw log std (a head output, or a parameter with ``state_independent_std``) is squashed
    into [LOG_STD_MIN, LOG_STD_MAX] by a scaled tanh, or with ``squash_log_std=False`` used as
    it is, clamped to those bounds (so a state-independent log std starts at 0: std 1, as in
    SB3/CleanRL PPO).
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: Sequence[int] = (256, 256),
                 layer_norm: bool = False, orthogonal_init: bool = False,
                 state_independent_std: bool = False, squash_log_std: bool = True) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.state_independent_std = state_independent_std
        self.squash_log_std = squash_log_std
        out = action_dim if state_independent_std else 2 * action_dim
        self.trunk = MLP(obs_dim, out, hidden_dims, layer_norm, orthogonal_init)
        if state_independent_std:
            self.log_std = nn.Parameter(torch.zeros(action_dim))

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mean (B, A) and log_std (B, A) of the pre-tanh Gaussian."""
        out = self.trunk(obs)
        if self.state_independent_std:
            mean, log_std = out, self.log_std.expand_as(out)
        else:
            mean, log_std = out.chunk(2, dim=-1)
        if self.squash_log_std:
            log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1.0)
        else:
            log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        return mean, log_std

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample and its log-probability (change of variables through tanh)."""
        mean, log_std = self.distribution_params(obs)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return self._squashed(mean, log_std, noise)

    def sample_n(self, obs: torch.Tensor, count: int, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` samples per state from one network pass: obs (B, O) -> actions (B, count, A),
        log-probs (B, count) (CQL's N actions per state)."""
        mean, log_std = self.distribution_params(obs)
        noise = torch.randn((mean.shape[0], count, mean.shape[1]), generator=generator, dtype=mean.dtype,
                            device=mean.device)
        return self._squashed(mean.unsqueeze(1), log_std.unsqueeze(1), noise)

    @staticmethod
    def _squashed(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tanh(mean + std * noise) and its log-probability; shapes broadcast to noise's (..., A)."""
        pre_tanh = mean + log_std.exp() * noise
        gaussian_log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return torch.tanh(pre_tanh), gaussian_log_prob - tanh_log_det_jacobian(pre_tanh)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """log pi(a|s) for given actions in [-1, 1] (clipped to +-(1-eps) before atanh)."""
        mean, log_std = self.distribution_params(obs)
        clipped = action.clamp(-1.0 + eps, 1.0 - eps)
        pre_tanh = torch.atanh(clipped)
        z = (pre_tanh - mean) / log_std.exp()
        gaussian_log_prob = (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return gaussian_log_prob - tanh_log_det_jacobian(pre_tanh)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _ = self.distribution_params(obs)
        return torch.tanh(mean)


class DeterministicPolicy(nn.Module):
    """a = tanh(f(s)) (TD3/BC-style): forward(obs (B, O)) -> (B, A) in (-1, 1)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: Sequence[int] = (256, 256),
                 layer_norm: bool = False, orthogonal_init: bool = False) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.trunk = MLP(obs_dim, action_dim, hidden_dims, layer_norm, orthogonal_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.trunk(obs))

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)


class GaussianPolicy(nn.Module):
    """a ~ N(tanh(mu(s)), exp(log_std)^2), a state-independent log std clipped to a range; the
    official IQL actor (``NormalTanhPolicy(state_dependent_std=False, tanh_squash_distribution=False,
    log_std_min=-5)``): the mean is squashed, the distribution is not, so dataset actions at +-1
    have an ordinary density (no atanh).

    log_prob(obs (B, O), action (B, A), dropout=False) -> (B,); sample(obs) -> ((B, A) clipped to
    [-1, 1], (B,)); mode(obs) -> tanh(mu) (B, A), IQL's evaluation action (temperature 0).
    ``dropout_rate`` > 0 applies dropout after every hidden activation in ``log_prob(...,
    dropout=True)`` only (IQL's training pass), never when acting.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: Sequence[int] = (256, 256),
                 log_std_min: float = -5.0, log_std_max: float = 2.0, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.log_std_min, self.log_std_max, self.dropout_rate = log_std_min, log_std_max, dropout_rate
        self.hidden = nn.ModuleList()
        width = obs_dim
        for size in hidden_dims:
            self.hidden.append(nn.Linear(width, size))
            width = size
        self.mean_head = nn.Linear(width, action_dim)
        self.log_std = nn.Parameter(torch.zeros(action_dim))

    def distribution_params(self, obs: torch.Tensor, dropout: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """mean tanh(mu) (B, A) and clipped log_std (A,) broadcast to (B, A)."""
        h = obs
        for layer in self.hidden:
            h = F.relu(layer(h))
            if dropout and self.dropout_rate > 0:
                h = F.dropout(h, self.dropout_rate, training=True)
        mean = torch.tanh(self.mean_head(h))
        return mean, self.log_std.clamp(self.log_std_min, self.log_std_max).expand_as(mean)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor, dropout: bool = False) -> torch.Tensor:
        mean, log_std = self.distribution_params(obs, dropout)
        z = (action - mean) / log_std.exp()
        return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A Gaussian draw clipped to [-1, 1] (as IQL's ``sample_actions``) and the log-density of
        the unclipped draw."""
        mean, log_std = self.distribution_params(obs)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return (mean + log_std.exp() * noise).clamp(-1.0, 1.0), log_prob

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.distribution_params(obs)[0]
