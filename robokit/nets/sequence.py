"""Sequence models over trajectory windows: interleaved (scalar, state, action) tokens and a
small causal transformer (GPT-style, pre-norm), as in Decision Transformer and DoC.

Tokens of step t are ``(c_t, s_t, a_t)`` where ``c_t`` is a per-step scalar: the return-to-go
(DT) or the reward (DoC); each gets its own linear embedding plus a learned timestep embedding,
and the 3L tokens are layer-normalised and fed to the transformer.
"""

from __future__ import annotations

import torch
from torch import nn

#: token index of each modality inside a step's triple
SCALAR, STATE, ACTION = 0, 1, 2


class TrajectoryEmbedding(nn.Module):
    """(B, L) scalars, (B, L, O) states, (B, L, A) actions, (B, L) timesteps -> (B, 3L, H) tokens."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: int, max_timestep: int):
        super().__init__()
        self.max_timestep = int(max_timestep)
        self.scalar = nn.Linear(1, hidden)
        self.state = nn.Linear(obs_dim, hidden)
        self.action = nn.Linear(action_dim, hidden)
        self.timestep = nn.Embedding(self.max_timestep, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, scalars: torch.Tensor, states: torch.Tensor, actions: torch.Tensor,
                timesteps: torch.Tensor) -> torch.Tensor:
        time = self.timestep(timesteps.clamp(0, self.max_timestep - 1))
        parts = (self.scalar(scalars.unsqueeze(-1)) + time, self.state(states) + time, self.action(actions) + time)
        batch, length = states.shape[:2]
        return self.norm(torch.stack(parts, dim=2).reshape(batch, 3 * length, -1))


class CausalTransformer(nn.Module):
    """Pre-norm transformer encoder with a causal mask: token i sees tokens <= i.

    Right padding (after an episode's end) never reaches real tokens under the causal mask,
    so no key-padding mask is needed; losses mask padded positions instead.

    Args:
        hidden: H; layers; heads; dropout.
    Input (B, T, H) -> output (B, T, H).
    """

    def __init__(self, hidden: int = 64, layers: int = 1, heads: int = 1, dropout: float = 0.0):
        super().__init__()
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=4 * hidden, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        causal = torch.triu(torch.full((length, length), float("-inf")), diagonal=1)
        return self.norm(self.blocks(tokens, mask=causal, is_causal=True))


def step_outputs(hidden: torch.Tensor, modality: int) -> torch.Tensor:
    """(B, 3L, H) transformer outputs -> (B, L, H) outputs at one modality's tokens."""
    batch, tokens, size = hidden.shape
    return hidden.reshape(batch, tokens // 3, 3, size)[:, :, modality]
