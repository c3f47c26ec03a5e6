"""Return-conditioned supervised learning (RvS-R, Emmons et al. 2022): an MLP maps (state,
return-to-go) to the action; at evaluation the target return falls by the rewards received."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from robokit.algos.base import check_batch, seeded_init
from robokit.algos.sequence import SequenceAgent, SequenceConfig, adamw
from robokit.nets import MLP
from robokit.nets.obs_spec import ObsSpec


@dataclasses.dataclass(frozen=True)
class RCSLConfig(SequenceConfig):
    """Defaults: ``docs/algos/rcsl.md``."""

    context_length: int = 1
    hidden_dims: tuple[int, ...] = (256, 256)
    """widths of the MLP"""
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    dropout: float = 0.0


class RCSL(SequenceAgent):
    name = "rcsl"

    def __init__(self, config: RCSLConfig, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        if config.context_length != 1:
            raise ValueError(f"rcsl conditions on the current step only: context_length must be 1, "
                             f"got {config.context_length}")
        super().__init__(config, obs_dim, action_dim, seed)
        with seeded_init(seed):
            self.net = MLP(self.feature_dim + 1, action_dim, config.hidden_dims)
        self.optimizer = adamw(self, config)

    def replay_view(self) -> Any:
        from robokit.data.views import ReturnToGoView

        return ReturnToGoView()

    def forward_actions(self, obs: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
        """obs (B, O) (or a batch of any observation kind), scaled returns-to-go (B,) -> actions (B, A) in [-1, 1]."""
        return torch.tanh(self.net(torch.cat([self.step_features(obs), returns[:, None]], dim=-1)))

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        check_batch(batch, ("obs", "action"), self.name)
        if "mc_return" not in batch:
            raise KeyError("rcsl.update: batch has no 'mc_return' (returns-to-go); build the replay with "
                           "store_mc_return=True")
        loss = ((self.forward_actions(batch["obs"], self.scaled_returns(batch)) - batch["action"]) ** 2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.num_updates += 1
        return {"losses/action": loss.item()}

    def predict_action(self, window: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.forward_actions(window["obs"][:, -1], self.scaled_returns(window)[:, -1])[0]
