"""Behaviour cloning: maximum likelihood of dataset actions under a tanh-Gaussian policy."""

from __future__ import annotations

import dataclasses

import torch

from robokit.algos.base import Agent, PhaseConfig, check_batch, seeded_init
from robokit.nets import TanhGaussianPolicy
from robokit.nets.obs_spec import ObsSpec


@dataclasses.dataclass(frozen=True)
class BCConfig(PhaseConfig):
    hidden_dims: tuple[int, ...] = (256, 256)
    """widths of the policy MLP"""
    actor_lr: float = 1e-3
    """Adam learning rate of the policy"""
    warmup_steps: int = 0
    offline_fraction: float = 1.0


class BC(Agent):
    """Offline only: online steps collect data but the policy keeps cloning the offline set."""

    name = "bc"

    def __init__(self, config: BCConfig, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        super().__init__(config, obs_dim, action_dim, seed)
        with seeded_init(seed):
            self.actor = self.on_features(TanhGaussianPolicy(self.feature_dim, action_dim, config.hidden_dims),
                                          trains_encoder=True)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        check_batch(batch, ("obs", "action"), self.name)
        loss = -self.actor.log_prob(batch["obs"], batch["action"]).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_optimizer.step()
        self.num_updates += 1
        return {"losses/actor": loss.item()}
