"""Soft actor-critic with a vectorised Q ensemble (SAC, REDQ-style subset targets, RLPD).

Defaults follow SAC v2 (Haarnoja et al. 2018): 2 critics, lr 3e-4, tau 0.005,
discount 0.99, automatic temperature with target entropy -A, 5000 random
start steps. ``ensemble_size``/``target_subset``/``layer_norm``/``utd_ratio``
turn it into the RLPD/WSRL critic (E=10, M=2, LayerNorm, UTD>1).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Literal

import torch

from robokit.algos.base import (
    Agent,
    PhaseConfig,
    WarmupActions,
    adam,
    check_batch,
    freeze_,
    seeded_init,
    soft_update_,
)
from robokit.losses import (
    ensemble_critic_loss,
    random_subset,
    sac_actor_loss,
    soft_target_value,
    td_target,
    temperature_loss,
)
from robokit.nets import QEnsemble, TanhGaussianPolicy
from robokit.nets.encoders import head_input, unwrap
from robokit.nets.obs_spec import ObsSpec

BATCH_KEYS = ("obs", "action", "reward", "next_obs", "terminated")
#: how the actor reads the critic ensemble
QReduction = Literal["mean", "min"]
ActorBatch = Literal["last", "full"]


@dataclasses.dataclass(frozen=True)
class SACConfig(PhaseConfig):
    """SAC with a Q ensemble.

    hidden_dims: widths of actor and critic MLPs.
    ensemble_size: E critics, evaluated in one batched pass.
    target_subset: M members whose min forms the TD target (M = E = 2 is clipped double-Q).
    layer_norm: LayerNorm in the critic (RLPD, WSRL).
    policy_layer_norm: LayerNorm in the policy MLP too (WSRL).
    actor_q_reduction: how the actor reads the ensemble: "mean" (REDQ/RLPD) or "min" over all
        members (SAC; WSRL's ``predicted_qs.min(axis=0)``).
    actor_batch: which rows the actor and temperature step on after the UTD critic steps:
        "last" (the last critic minibatch, RLPD's code) or "full" (all utd_ratio x batch_size
        rows, WSRL's ``update_high_utd``).
    backup_entropy: subtract alpha * log pi in the TD target.
    """

    hidden_dims: tuple[int, ...] = (256, 256)
    """widths of the actor and critic MLPs"""
    ensemble_size: int = 2
    """E critics, evaluated in one batched pass"""
    target_subset: int = 2
    """M members whose min forms the TD target (M = E = 2 is clipped double-Q)"""
    layer_norm: bool = False
    """LayerNorm in the critic (RLPD, WSRL)"""
    policy_layer_norm: bool = False
    """LayerNorm in the policy MLP too (WSRL)"""
    orthogonal_init: bool = False
    """orthogonal weight initialisation of actor and critic"""
    actor_q_reduction: QReduction = "min"
    """how the actor reads the ensemble: 'mean' (REDQ/RLPD) or 'min' over all members (SAC, WSRL)"""
    actor_batch: ActorBatch = "last"
    """rows of the actor/temperature step: 'last' critic minibatch (RLPD) or the 'full' UTD batch (WSRL)"""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor"""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics"""
    temperature_lr: float = 3e-4
    """Adam learning rate of log alpha (the entropy temperature)"""
    init_temperature: float = 1.0
    """initial entropy temperature alpha"""
    auto_temperature: bool = True
    """tune alpha towards --agent.target-entropy (else keep it fixed)"""
    target_entropy: float | None = None
    """entropy target of the temperature tuning (default: -action_dim)"""
    discount: float = 0.99
    """discount factor gamma"""
    tau: float = 0.005
    """Polyak rate of the target critics"""
    backup_entropy: bool = True
    """subtract alpha * log pi(a'|s') in the TD target"""


class SAC(Agent):
    """SAC agent; ``update`` takes k * batch_size rows: k critic steps, then one actor/temperature step
    (on the last minibatch or on all k * batch_size rows, ``actor_batch``)."""

    name = "sac"

    def __init__(self, config: SACConfig, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        super().__init__(config, obs_dim, action_dim, seed)
        if config.actor_q_reduction not in ("mean", "min"):
            raise ValueError(f"actor_q_reduction must be 'mean' or 'min', got {config.actor_q_reduction!r}")
        if config.actor_batch not in ("last", "full"):
            raise ValueError(f"actor_batch must be 'last' or 'full', got {config.actor_batch!r}")
        with seeded_init(seed):
            self.actor = self.on_features(
                TanhGaussianPolicy(self.feature_dim, action_dim, config.hidden_dims, config.policy_layer_norm,
                                   orthogonal_init=config.orthogonal_init), trains_encoder=False)
            self.critic = self.on_features(
                QEnsemble(self.feature_dim, action_dim, config.ensemble_size, config.hidden_dims,
                          config.layer_norm, config.orthogonal_init), trains_encoder=True)
            self.target_critic = freeze_(copy.deepcopy(self.critic))
            self.log_alpha = torch.nn.Parameter(torch.tensor(math.log(config.init_temperature)))
            self.target_entropy = (-float(action_dim) if config.target_entropy is None
                                   else float(config.target_entropy))
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optimizer = adam(self.critic.parameters(), config.critic_lr)
        self.temperature_optimizer = adam([self.log_alpha], config.temperature_lr)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    # -- critic ---------------------------------------------------------------
    @torch.no_grad()
    def td_targets(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) soft TD targets from the target ensemble (min over a random subset of M members)."""
        next_action, next_log_prob = self.actor.sample(batch["next_obs"], self.generator)
        members = random_subset(self.config.ensemble_size, self.config.target_subset, self.generator)
        next_q = self.target_critic(batch["next_obs"], next_action, members).min(dim=0).values
        next_value = soft_target_value(next_q, next_log_prob, self.alpha, self.config.backup_entropy)
        return td_target(batch["reward"], next_value, batch["terminated"], self.config.discount)

    def critic_regularizer(self, batch: dict[str, torch.Tensor], q_data: torch.Tensor,
                           critic_input: Any = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Extra critic loss term (CQL overrides); SAC adds nothing. ``critic_input``: the critic
        head's input on ``batch["obs"]`` (:func:`~robokit.nets.encoders.head_input`), already
        encoded for the TD term, so a regulariser does not run the encoder again."""
        return q_data.new_zeros(()), {}

    def update_critic(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        target = self.td_targets(batch)
        critic_input = head_input(self.critic, batch["obs"])  # one encoder pass (with graph) per step
        q_data = unwrap(self.critic)(critic_input, batch["action"])
        td_loss = ensemble_critic_loss(q_data, target)
        extra, metrics = self.critic_regularizer(batch, q_data, critic_input)
        loss = td_loss + extra
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        soft_update_(self.target_critic, self.critic, self.config.tau)
        return {"losses/critic": loss.item(), "losses/td": td_loss.item(),
                "train/q_mean": q_data.mean().item(), "train/target_mean": target.mean().item(), **metrics}

    # -- actor and temperature ------------------------------------------------
    def actor_regularizer(self, batch: dict[str, torch.Tensor], rl_loss: torch.Tensor
                          ) -> tuple[torch.Tensor, dict[str, float]]:
        """Extra actor loss term added to the SAC actor loss ``rl_loss`` (a scalar); SAC adds nothing
        (CQL's ``bc_weight`` adds a behaviour-cloning term)."""
        return rl_loss.new_zeros(()), {}

    def update_actor(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        action, log_prob = self.actor.sample(batch["obs"], self.generator)
        self.critic.requires_grad_(False)  # the actor loss must not reach the critic
        try:
            q_all = self.critic(batch["obs"], action)
        finally:
            self.critic.requires_grad_(True)
        q_value = q_all.mean(0) if self.config.actor_q_reduction == "mean" else q_all.min(0).values
        rl_loss = sac_actor_loss(log_prob, q_value, self.alpha)
        extra, metrics = self.actor_regularizer(batch, rl_loss)
        actor_loss = rl_loss + extra
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()
        metrics.update({"losses/actor": actor_loss.item(), "train/entropy": -log_prob.mean().item()})
        if self.config.auto_temperature:
            temp_loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy)
            self.temperature_optimizer.zero_grad(set_to_none=True)
            temp_loss.backward()
            self.temperature_optimizer.step()
            metrics["losses/temperature"] = temp_loss.item()
        metrics["train/alpha"] = self.alpha.item()
        return metrics

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Critic on each of k minibatches, then actor and temperature once (``actor_batch``).

        With a shared encoder the actor step reads the body output of the last critic step's batch
        (computed before that step's optimizer step, DrQ-v2; ``encoder.reuse_features``)."""
        check_batch(batch, BATCH_KEYS, self.name)
        metrics: dict[str, float] = {}
        parts = self.minibatches(batch)
        with self.reusing_features():
            for part in parts:
                metrics = self.update_critic(part)
            metrics.update(self.update_actor(batch if self.config.actor_batch == "full" else parts[-1]))
        self.num_updates += 1
        return metrics


@dataclasses.dataclass(frozen=True)
class RLPDConfig(SACConfig):
    """RLPD (Ball et al. 2023): SAC + E=10 LayerNorm critics, subset 2, UTD 20, 50/50 offline mix,
    no pretraining (the paper's defaults); everything else as SAC."""

    ensemble_size: int = 10
    target_subset: int = 2
    layer_norm: bool = True
    actor_q_reduction: QReduction = "mean"
    utd_ratio: int = 20
    offline_fraction: float = 0.5
    warmup_steps: int = 5000
    warmup_actions: WarmupActions = "random"


class RLPD(SAC):
    """SAC with RLPD's design choices; the 50/50 mixing is done by the trainer's MixedReplay."""

    name = "rlpd"
