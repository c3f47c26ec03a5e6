"""PPO (Schulman et al. 2017) for continuous actions: clipped surrogate, GAE, value baseline.

Defaults follow Stable-Baselines3 / CleanRL continuous-control PPO: 2048 steps per rollout,
10 epochs of minibatches of 64, lr 3e-4, clip 0.2, GAE lambda 0.95, discount 0.99, value
coefficient 0.5, gradient-norm clip 0.5, normalised advantages, (64, 64) tanh-free ReLU MLPs with
orthogonal init. The policy is robokit's tanh-Gaussian with a state-independent log std that
starts at 0 (std 1, as SB3's ``log_std_init=0.0`` and CleanRL's zero-initialised ``actor_logstd``),
clamped to [-5, 2] rather than squashed; actions stay in [-1, 1] without clipping. The trainer collects rollouts into ``robokit.data.RolloutBuffer``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from robokit.algos.base import Agent, PhaseConfig, check_batch, seeded_init
from robokit.losses import ppo_clip_loss, ppo_value_loss
from robokit.nets import TanhGaussianPolicy, ValueNet
from robokit.nets.obs_spec import ObsSpec

BATCH_KEYS = ("obs", "action", "log_prob", "advantage", "return")


@dataclasses.dataclass(frozen=True)
class PPOConfig(PhaseConfig):
    hidden_dims: tuple[int, ...] = (64, 64)
    """widths of the policy and value MLPs"""
    lr: float = 3e-4
    """Adam learning rate (policy and value together)"""
    n_steps: int = 2048
    """env steps per rollout"""
    epochs: int = 10
    """passes over each rollout"""
    batch_size: int = 64
    clip_range: float = 0.2
    """PPO ratio clip epsilon"""
    ent_coef: float = 0.0
    """weight of the entropy bonus"""
    vf_coef: float = 0.5
    """weight of the value loss"""
    max_grad_norm: float = 0.5
    """gradient norm clip"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    discount: float = 0.99
    """discount factor gamma"""
    normalize_advantage: bool = True
    """normalise advantages per minibatch"""
    warmup_steps: int = 0
    offline_fraction: float = 0.0


class PPO(Agent):
    """On-policy agent: ``explore`` acts and records log-prob and value; ``update`` is one minibatch step."""

    name = "ppo"
    on_policy = True

    def __init__(self, config: PPOConfig, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        super().__init__(config, obs_dim, action_dim, seed)
        with seeded_init(seed):
            # one loss trains policy and value, so both train the shared encoder (SB3's
            # share_features_extractor=True for on-policy algorithms)
            self.actor = self.on_features(
                TanhGaussianPolicy(self.feature_dim, action_dim, config.hidden_dims, orthogonal_init=True,
                                   state_independent_std=True, squash_log_std=False), trains_encoder=True)
            self.value = self.on_features(ValueNet(self.feature_dim, config.hidden_dims, orthogonal_init=True),
                                          trains_encoder=True)
        self.optimizer = torch.optim.Adam(list(self.actor.parameters()) + list(self.value.parameters()),
                                          lr=config.lr, eps=1e-5)

    @torch.no_grad()
    def explore(self, obs: np.ndarray) -> tuple[np.ndarray, float, float]:
        """One observation -> (action (A,) float32, log pi(a|s), V(s))."""
        tensor, _ = self.obs_batch(obs)
        with self.acting():
            action, log_prob = self.actor.sample(tensor, self.generator)
            value = self.value(tensor)
        return action[0].cpu().numpy(), float(log_prob[0]), float(value[0])

    @torch.no_grad()
    def state_value(self, obs: np.ndarray) -> float:
        """V(s) of one observation."""
        tensor, _ = self.obs_batch(obs)
        with self.acting():
            return float(self.value(tensor)[0])

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step on a rollout minibatch (keys: obs, action, log_prob, advantage, return)."""
        check_batch(batch, BATCH_KEYS, self.name)
        cfg = self.config
        advantage = batch["advantage"]
        if cfg.normalize_advantage and len(advantage) > 1:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        log_prob = self.actor.log_prob(batch["obs"], batch["action"])
        policy_loss = ppo_clip_loss(log_prob, batch["log_prob"], advantage, cfg.clip_range)
        value_loss = ppo_value_loss(self.value(batch["obs"]), batch["return"])
        entropy = -log_prob.mean()  # sample estimate: the tanh-Gaussian has no closed-form entropy
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.actor.parameters()) + list(self.value.parameters()),
                                       cfg.max_grad_norm)
        self.optimizer.step()
        self.num_updates += 1
        with torch.no_grad():
            clip_fraction = ((log_prob - batch["log_prob"]).exp().sub(1).abs() > cfg.clip_range).float().mean()
        return {"losses/policy": policy_loss.item(), "losses/value": value_loss.item(),
                "train/entropy": entropy.item(), "train/clip_fraction": clip_fraction.item()}
