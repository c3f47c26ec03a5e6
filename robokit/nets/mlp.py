"""Multi-layer perceptrons with optional LayerNorm and orthogonal initialisation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

#: gain used for hidden layers followed by ReLU (He-style, as in most RL codebases)
HIDDEN_GAIN = math.sqrt(2.0)


def orthogonal_init_(module: nn.Module, gain: float = HIDDEN_GAIN, last_gain: float | None = 1e-2) -> None:
    """Orthogonal weights and zero biases for every ``nn.Linear`` in ``module``.

    Args:
        module: a network; its Linear layers are re-initialised in order.
        gain: orthogonal gain for hidden layers.
        last_gain: gain for the final Linear layer (small, so initial outputs are
            near zero); ``None`` keeps ``gain``.
    """
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    for index, layer in enumerate(linears):
        is_last = index == len(linears) - 1
        nn.init.orthogonal_(layer.weight, gain=last_gain if (is_last and last_gain is not None) else gain)
        nn.init.zeros_(layer.bias)


class MLP(nn.Module):
    """``in_dim -> hidden... -> out_dim`` with ReLU, optional LayerNorm after each hidden Linear.

    forward(x (..., in_dim)) -> (..., out_dim)
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: Sequence[int] = (256, 256),
                 layer_norm: bool = False, orthogonal_init: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for hidden in hidden_dims:
            layers.append(nn.Linear(width, hidden))
            if layer_norm:
                layers.append(nn.LayerNorm(hidden))
            layers.append(nn.ReLU())
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim
        if orthogonal_init:
            orthogonal_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ValueNet(nn.Module):
    """State value V(s): forward(obs (B, O)) -> (B,)."""

    def __init__(self, obs_dim: int, hidden_dims: Sequence[int] = (256, 256), layer_norm: bool = False,
                 orthogonal_init: bool = False) -> None:
        super().__init__()
        self.mlp = MLP(obs_dim, 1, hidden_dims, layer_norm, orthogonal_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mlp(obs).squeeze(-1)
