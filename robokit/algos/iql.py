"""Implicit Q-learning (Kostrikov et al. 2021), as the official code (ikostrikov/implicit_q_learning) runs it.

V is fitted by expectile regression to the min of two target Qs on dataset actions, the actor
by advantage-weighted regression with weights exp(beta (Q_target - V)) clipped at 100, and Q by
TD to r + gamma V(s'), so no out-of-distribution action is ever queried. One update runs, in the
official ``learner.py`` order: V step, actor step (reading the updated V), Q step (its target
reads the updated V), Polyak target update. Defaults from the official locomotion config
(``configs/mujoco_config.py``) and ``learner.py``; docs/algos/iql.md lists each with its source.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from robokit.algos.base import Agent, PhaseConfig, check_batch, freeze_, seeded_init, soft_update_
from robokit.losses import awr_actor_loss, iql_q_loss, iql_value_loss
from robokit.nets import GaussianPolicy, QEnsemble, TanhGaussianPolicy, ValueNet
from robokit.nets.encoders import unwrap
from robokit.nets.obs_spec import ObsSpec

BATCH_KEYS = ("obs", "action", "reward", "next_obs", "terminated")


@dataclasses.dataclass(frozen=True)
class IQLConfig(PhaseConfig):
    """IQL.

    expectile / awr_temperature / awr_max_weight: tau of the V expectile, beta of the AWR weights,
        the clip on exp(beta A).
    policy: "gaussian" (official: N(tanh mu(s), std), a state-independent log std clipped to
        [-5, 2], starting at 0) or "tanh_gaussian" (robokit's earlier actor: a tanh-transformed
        Gaussian whose log std is squashed into [-5, 2], starting at -1.5).
    actor_lr_schedule: "cosine" (official: the actor lr decays to 0 as lr (1 + cos(pi t / T)) / 2
        over T = cosine_decay_steps updates) or "constant".
    cosine_decay_steps: T; the official code sets it to the run's --max_steps (1e6 for D4RL), so
        pass the number of updates you will run.
    dropout_rate: dropout after each hidden layer of the actor in its training pass (official:
        None for locomotion and AntMaze, 0.1 for Kitchen, ``configs/*_config.py``).
    """

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
    policy: Literal["gaussian", "tanh_gaussian"] = "gaussian"
    """actor: IQL's N(tanh mu, std) with a clipped state-independent log std, or a tanh-Gaussian"""
    actor_lr_schedule: Literal["cosine", "constant"] = "cosine"
    """actor lr: IQL's cosine decay to 0 over cosine_decay_steps updates, or constant"""
    cosine_decay_steps: int = 1_000_000
    """updates over which the cosine actor lr decays (IQL: the run's --max_steps; set it to yours)"""
    dropout_rate: float = 0.0
    """dropout after each hidden layer of the actor while training (IQL: 0 locomotion, 0.1 Kitchen)"""
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


def cosine_lr(base_lr: float, step: int, decay_steps: int) -> float:
    """optax.cosine_decay_schedule(base_lr, decay_steps) at ``step``: base_lr (1 + cos(pi min(t, T) / T)) / 2."""
    progress = min(step, decay_steps) / max(decay_steps, 1)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def locomotion_reward_scale(episode_returns: Sequence[float]) -> float:
    """The official code's reward normalisation for MuJoCo locomotion data (``train_offline.py``,
    ``normalize``): rewards are multiplied by 1000 / (max episode return - min episode return).
    Pass the result as ``robokit train --reward-scale``."""
    returns = np.asarray(episode_returns, dtype=np.float64)
    spread = float(returns.max() - returns.min()) if returns.size else 0.0
    if spread <= 0:
        raise ValueError("locomotion_reward_scale: need episodes with different returns")
    return 1000.0 / spread


class IQL(Agent):
    name = "iql"

    def __init__(self, config: IQLConfig, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        super().__init__(config, obs_dim, action_dim, seed)
        if config.policy not in ("gaussian", "tanh_gaussian"):
            raise ValueError(f"policy must be 'gaussian' or 'tanh_gaussian', got {config.policy!r}")
        if config.actor_lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"actor_lr_schedule must be 'cosine' or 'constant', got {config.actor_lr_schedule!r}")
        with seeded_init(seed):
            features = self.feature_dim
            if config.policy == "gaussian":
                actor = GaussianPolicy(features, action_dim, config.hidden_dims, dropout_rate=config.dropout_rate)
            else:
                actor = TanhGaussianPolicy(features, action_dim, config.hidden_dims, state_independent_std=True)
            self.actor = self.on_features(actor, trains_encoder=False)
            self.critic = self.on_features(QEnsemble(features, action_dim, config.ensemble_size, config.hidden_dims,
                                                     config.layer_norm), trains_encoder=True)
            self.target_critic = freeze_(copy.deepcopy(self.critic))
            self.value = self.on_features(ValueNet(features, config.hidden_dims, config.layer_norm),
                                          trains_encoder=False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=config.value_lr)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """V, actor, then Q on every minibatch (IQL has no separate actor schedule)."""
        check_batch(batch, BATCH_KEYS, self.name)
        lr = self.actor_lr_now()
        for group in self.actor_optimizer.param_groups:
            group["lr"] = lr
        metrics: dict[str, float] = {}
        for part in self.minibatches(batch):
            with self.reusing_features():  # V encodes the batch, the actor reuses it; Q trains the body
                metrics = self._update_once(part)
        self.num_updates += 1
        metrics["train/actor_lr"] = lr
        return metrics

    def actor_lr_now(self) -> float:
        """The actor learning rate for update number ``num_updates`` (0-based, as optax counts)."""
        cfg = self.config
        if cfg.actor_lr_schedule == "constant":
            return cfg.actor_lr
        return cosine_lr(cfg.actor_lr, self.num_updates, cfg.cosine_decay_steps)

    def _update_once(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.config
        with torch.no_grad():
            q_target = self.target_critic(batch["obs"], batch["action"]).min(0).values
        value = self.value(batch["obs"])
        value_loss = iql_value_loss(q_target, value, cfg.expectile)
        self._step(self.value_optimizer, value_loss)

        with torch.no_grad():  # the actor's advantage and the Q target read the updated V
            new_value, next_value = self.value(torch.cat([batch["obs"], batch["next_obs"]])).split(len(value))
        advantage = q_target - new_value
        actor_loss = awr_actor_loss(self.actor_log_prob(batch["obs"], batch["action"]), advantage,
                                    cfg.awr_temperature, cfg.awr_max_weight)
        self._step(self.actor_optimizer, actor_loss)

        q_pred = self.critic(batch["obs"], batch["action"])
        q_loss = iql_q_loss(q_pred, batch["reward"], next_value, batch["terminated"], cfg.discount)
        self._step(self.critic_optimizer, q_loss)
        soft_update_(self.target_critic, self.critic, cfg.tau)
        return {"losses/value": value_loss.item(), "losses/critic": q_loss.item(), "losses/actor": actor_loss.item(),
                "train/q_mean": q_pred.mean().item(), "train/v_mean": value.mean().item(),
                "train/advantage_mean": advantage.mean().item()}

    def actor_log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(a_data | s) (B,) in the actor's training pass (with dropout when configured)."""
        if isinstance(unwrap(self.actor), GaussianPolicy):
            return self.actor.log_prob(obs, action, dropout=True)
        return self.actor.log_prob(obs, action)

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
