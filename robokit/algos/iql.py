"""Implicit Q-learning (Kostrikov et al. 2021).

V is fitted by expectile regression to min of two target Qs on dataset actions,
Q by TD to r + gamma V(s'), and the actor by advantage-weighted regression, so
no out-of-distribution action is ever queried. Defaults from the IQL paper's
locomotion settings: expectile 0.7, inverse temperature 3, lr 3e-4, tau 0.005.
(The paper's cosine actor schedule and dropout are not used.)
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from robokit.algos.base import Agent, PhaseConfig, check_batch, freeze_, seeded_init, soft_update_
from robokit.losses import awr_actor_loss, iql_q_loss, iql_value_loss
from robokit.nets import QEnsemble, TanhGaussianPolicy, ValueNet

BATCH_KEYS = ("obs", "action", "reward", "next_obs", "terminated")


@dataclasses.dataclass(frozen=True)
class IQLConfig(PhaseConfig):
    hidden_dims: tuple[int, ...] = (256, 256)
    """widths of the actor, critic and value MLPs"""
    ensemble_size: int = 2
    """Q networks; V regresses to the min of their targets"""
    layer_norm: bool = False
    """LayerNorm in critic and value networks"""
    expectile: float = 0.7
    """expectile tau of the value regression"""
    awr_temperature: float = 3.0
    """inverse temperature beta of the advantage-weighted actor loss"""
    awr_max_weight: float = 100.0
    """clip of the actor weights exp(beta * advantage)"""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor"""
    critic_lr: float = 3e-4
    """Adam learning rate of the Q networks"""
    value_lr: float = 3e-4
    """Adam learning rate of V"""
    discount: float = 0.99
    """discount factor gamma"""
    tau: float = 0.005
    """Polyak rate of the target Q networks"""
    warmup_steps: int = 0
    offline_fraction: float = 0.5


class IQL(Agent):
    name = "iql"

    def __init__(self, config: IQLConfig, obs_dim: int, action_dim: int, seed: int = 0) -> None:
        super().__init__(config, obs_dim, action_dim, seed)
        with seeded_init(seed):
            self.actor = TanhGaussianPolicy(obs_dim, action_dim, config.hidden_dims, state_independent_std=True)
            self.critic = QEnsemble(obs_dim, action_dim, config.ensemble_size, config.hidden_dims, config.layer_norm)
            self.target_critic = freeze_(copy.deepcopy(self.critic))
            self.value = ValueNet(obs_dim, config.hidden_dims, config.layer_norm)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=config.value_lr)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Value, then Q, then actor on every minibatch (IQL has no separate actor schedule)."""
        check_batch(batch, BATCH_KEYS, self.name)
        metrics: dict[str, float] = {}
        for part in self.minibatches(batch):
            metrics = self._update_once(part)
        self.num_updates += 1
        return metrics

    def _update_once(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.config
        with torch.no_grad():
            q_target = self.target_critic(batch["obs"], batch["action"]).min(0).values
        value = self.value(batch["obs"])
        value_loss = iql_value_loss(q_target, value, cfg.expectile)
        self._step(self.value_optimizer, value_loss)

        with torch.no_grad():
            next_value = self.value(batch["next_obs"])
        q_pred = self.critic(batch["obs"], batch["action"])
        q_loss = iql_q_loss(q_pred, batch["reward"], next_value, batch["terminated"], cfg.discount)
        self._step(self.critic_optimizer, q_loss)
        soft_update_(self.target_critic, self.critic, cfg.tau)

        advantage = q_target - value.detach()
        log_prob = self.actor.log_prob(batch["obs"], batch["action"])
        actor_loss = awr_actor_loss(log_prob, advantage, cfg.awr_temperature, cfg.awr_max_weight)
        self._step(self.actor_optimizer, actor_loss)
        return {"losses/value": value_loss.item(), "losses/critic": q_loss.item(), "losses/actor": actor_loss.item(),
                "train/q_mean": q_pred.mean().item(), "train/v_mean": value.mean().item(),
                "train/advantage_mean": advantage.mean().item()}

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
