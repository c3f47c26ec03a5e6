"""Decision Transformer (Chen et al. 2021): a causal transformer over (return-to-go, state,
action) tokens predicts each action from its state token; at evaluation it is conditioned on a
target return that falls by the rewards received."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from robokit.algos.base import seeded_init
from robokit.algos.sequence import SequenceAgent, SequenceConfig, adamw
from robokit.losses.doc import masked_mse
from robokit.nets.obs_spec import ObsSpec
from robokit.nets.sequence import STATE, CausalTransformer, TrajectoryEmbedding, step_outputs


@dataclasses.dataclass(frozen=True)
class DTConfig(SequenceConfig):
    """Defaults: ``docs/algos/dt.md`` (Chen et al. 2021 / the DoC code, shrunk for CPU)."""


class DT(SequenceAgent):
    name = "dt"

    def __init__(self, config: DTConfig, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        super().__init__(config, obs_dim, action_dim, seed)
        with seeded_init(seed):
            self.embed = TrajectoryEmbedding(self.feature_dim, action_dim, config.hidden, config.max_timestep)
            self.trunk = CausalTransformer(config.hidden, config.layers, config.heads, config.dropout)
            self.action_head = nn.Sequential(nn.Linear(config.hidden, action_dim), nn.Tanh())
        self.optimizer = adamw(self, config)

    def forward_actions(self, window: dict[str, torch.Tensor]) -> torch.Tensor:
        """Window (B, L, ...) -> predicted actions (B, L, A), a_t read from the state token s_t."""
        tokens = self.embed(self.scaled_returns(window), self.step_features(window["obs"]), window["action"],
                            window["timestep"])
        return self.action_head(step_outputs(self.trunk(tokens), STATE))

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        self.check_window_batch(batch)
        self.train()
        loss = masked_mse(self.forward_actions(batch), batch["action"], batch["mask"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters(), 0.25)
        self.optimizer.step()
        self.num_updates += 1
        return {"losses/action": loss.item()}

    def predict_action(self, window: dict[str, torch.Tensor]) -> torch.Tensor:
        self.eval()
        return self.forward_actions(window)[0, -1]
