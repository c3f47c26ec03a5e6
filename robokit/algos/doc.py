"""Dichotomy of Control (DoC; Yang, Schuurmans, Abbeel, Nachum, ICLR 2023), neural version.

A latent z summarises the future. Training, per window of K context + F future steps, at a
decision step d drawn uniformly among the window's real context steps:

- context transformer over (r_{t-1}, s_t, a_t) tokens of steps <= d -> h_s (at s_d), h_a (at a_d);
- posterior q(z | steps d .. d+F-1 as (r_t, s_t, a_t) tokens) from a future transformer;
- prior p(z | steps <= d) from a separate prior transformer, read at s_d;
- action head pi(a_d | h_s, z) and value head V(h_s, z) ~ return-to-go from d (MSE each);
- KL(q || p) and an InfoNCE term on f(z, (s_{d+1}, r_d) | h_a): the contrastive estimate of
  MI(z; s_{t+1}, r_t | tau_{0:t}, a_t), which the energy f maximises and (``mi_gradient
  "reverse"``, the paper's min-max) the posterior minimises.

Acting: sample ``num_samples`` z from the prior at the current state, keep the one with the
highest predicted value (or, with a target return, the value closest to the remaining target),
act with the action head on it. See ``docs/algos/doc.md``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from robokit.algos.base import seeded_init
from robokit.algos.sequence import SequenceAgent, SequenceConfig, adamw
from robokit.losses.doc import gaussian_kl, info_nce, reverse_gradient
from robokit.nets import MLP
from robokit.nets.obs_spec import ObsSpec
from robokit.nets.sequence import (
    ACTION,
    STATE,
    CausalTransformer,
    TrajectoryEmbedding,
    step_outputs,
)

MI_GRADIENTS = ("reverse", "joint")
LOGVAR_RANGE = (-10.0, 4.0)


@dataclasses.dataclass(frozen=True)
class DoCConfig(SequenceConfig):
    """Defaults and their sources: ``docs/algos/doc.md``.

    future_length: F, future steps the posterior sees.
    latent_dim: size of z. num_samples: prior samples scored at each acting step.
    prior_weight / energy_weight: weights of KL(q || p) and of the InfoNCE term.
    mi_gradient: "reverse" (posterior minimises the MI estimate, the paper) or "joint"
        (everything minimises the InfoNCE loss, as the official code's single optimizer does).
    target_return: None acts on the highest-value latent; a number picks the latent whose
        value is closest to the remaining target.
    """

    future_length: int = 5
    """F, future steps the posterior sees"""
    latent_dim: int = 16
    """size of the latent z"""
    prior_weight: float = 0.1
    """weight of KL(posterior || prior)"""
    energy_weight: float = 1.0
    """weight of the InfoNCE (mutual-information) term"""
    num_samples: int = 100
    """prior samples scored at each acting step"""
    mi_gradient: str = "reverse"
    """'reverse': the posterior minimises the MI estimate (the paper); 'joint': one minimised loss (the code)"""
    target_return: float | None = None


def select_latent(values: torch.Tensor, latents: torch.Tensor, target: float | None = None) -> torch.Tensor:
    """Pick one latent per row: the highest value, or the value closest to ``target``.

    Args:
        values: (B, N) predicted values of N sampled latents.
        latents: (B, N, Z).
    Returns:
        (B, Z).
    """
    score = values if target is None else -(values - target).abs()
    best = score.argmax(dim=1)
    return latents[torch.arange(len(latents)), best]


class DoC(SequenceAgent):
    name = "doc"

    def __init__(self, config: DoCConfig, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        if config.mi_gradient not in MI_GRADIENTS:
            raise ValueError(f"doc: mi_gradient must be one of {MI_GRADIENTS}, got {config.mi_gradient!r}")
        if config.future_length < 1:
            raise ValueError(f"doc: future_length must be >= 1, got {config.future_length}")
        super().__init__(config, obs_dim, action_dim, seed)
        hidden, latent = config.hidden, config.latent_dim
        with seeded_init(seed):
            self.embed = TrajectoryEmbedding(self.feature_dim, action_dim, hidden, config.max_timestep)
            self.trunk, self.prior_trunk, self.future_trunk = (
                CausalTransformer(hidden, config.layers, config.heads, config.dropout) for _ in range(3))
            self.prior_head = nn.Linear(hidden, 2 * latent)
            self.posterior_head = nn.Linear(hidden, 2 * latent)
            self.action_head = MLP(hidden + latent, action_dim, (hidden,))
            self.value_head = MLP(hidden + latent, 1, (hidden,))
            self.energy = MLP(3 * hidden + latent, 1, (hidden,))
        self.optimizer = adamw(self, config)

    @property
    def window_length(self) -> int:
        return self.config.context_length + self.config.future_length

    # -- pieces ---------------------------------------------------------------
    def context_tokens(self, window: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, K, ...) window -> (B, 3K, H) tokens with the previous step's reward as scalar."""
        return self.embed(window["prev_reward"], window["obs"], window["action"], window["timestep"])

    def gaussian(self, head: nn.Module, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = head(features).chunk(2, dim=-1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def heads(self, h_state: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H), (B, Z) -> actions (B, A) in [-1, 1], values (B,)."""
        features = torch.cat([h_state, z], dim=-1)
        return torch.tanh(self.action_head(features)), self.value_head(features).squeeze(-1)

    def energies(self, h_action: torch.Tensor, z: torch.Tensor, next_obs: torch.Tensor,
                 reward: torch.Tensor) -> torch.Tensor:
        """f(z_i, (s'_j, r_j) | h_a_i) for all pairs: (B, H), (B, Z), (B, O), (B,) -> (B, B)."""
        outcome = torch.cat([self.embed.state(next_obs), self.embed.scalar(reward[:, None])], dim=-1)
        condition = torch.cat([h_action, z], dim=-1)
        batch = len(z)
        pairs = torch.cat([condition[:, None].expand(batch, batch, -1), outcome[None].expand(batch, batch, -1)], -1)
        return self.energy(pairs).squeeze(-1)

    # -- training -------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        self.check_window_batch(batch)
        self.train()
        losses = self.losses(batch)
        total = (losses["action"] + losses["value"] + self.config.prior_weight * losses["kl"]
                 + self.config.energy_weight * losses["energy"])
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(self.parameters(), 0.25)
        self.optimizer.step()
        self.num_updates += 1
        return {"losses/total": total.item(), **{f"losses/{k}": v.item() for k, v in losses.items()}}

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The four DoC terms on a (B, K+F) window batch (each a scalar tensor)."""
        cfg = self.config
        batch = {**batch, "obs": self.step_features(batch["obs"]), "next_obs": self.step_features(batch["next_obs"])}
        k, f = cfg.context_length, cfg.future_length
        mask = batch["mask"]
        if mask.shape[1] != k + f:
            raise ValueError(f"doc.update: windows of {mask.shape[1]} steps, expected context {k} + future {f}")
        rows = torch.arange(len(mask), device=mask.device)
        real_context = mask[:, :k].sum(dim=1).long().clamp_min(1)
        decision = (torch.rand(len(mask), generator=self.generator, device=mask.device) * real_context).long().clamp_max(k - 1)
        prev_reward = torch.cat([torch.zeros_like(batch["reward"][:, :1]), batch["reward"][:, :-1]], dim=1)
        context = {key: batch[key][:, :k] for key in ("obs", "action", "timestep")}
        tokens = self.context_tokens({**context, "prev_reward": prev_reward[:, :k]})
        hidden = self.trunk(tokens)
        h_state, h_action = step_outputs(hidden, STATE)[rows, decision], step_outputs(hidden, ACTION)[rows, decision]
        prior_mean, prior_logvar = self.gaussian(self.prior_head, step_outputs(self.prior_trunk(tokens),
                                                                                 STATE)[rows, decision])
        post_mean, post_logvar = self.posterior(batch, decision)
        noise = torch.randn(post_mean.shape, generator=self.generator, device=post_mean.device)
        z = post_mean + noise * torch.exp(0.5 * post_logvar)
        action, value = self.heads(h_state, z)
        z_energy = reverse_gradient(z) if cfg.mi_gradient == "reverse" else z
        energies = self.energies(h_action, z_energy, batch["next_obs"][rows, decision], batch["reward"][rows, decision])
        return {"action": ((action - batch["action"][rows, decision]) ** 2).mean(),
                "value": ((value - self.scaled_returns(batch)[rows, decision]) ** 2).mean(),
                "kl": gaussian_kl(post_mean, post_logvar, prior_mean, prior_logvar).mean(),
                "energy": info_nce(energies)}

    def posterior(self, batch: dict[str, torch.Tensor], decision: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | steps decision .. decision+F-1): (mean, logvar), each (B, Z)."""
        f = self.config.future_length
        index = decision[:, None] + torch.arange(f)[None]  # (B, F), inside the K+F window
        take = {key: torch.gather(batch[key], 1, index) for key in ("reward", "timestep", "mask")}
        for key in ("obs", "action"):
            value = batch[key]
            take[key] = torch.gather(value, 1, index[..., None].expand(-1, -1, value.shape[-1]))
        hidden = self.future_trunk(self.embed(take["reward"] * take["mask"], take["obs"], take["action"],
                                              take["timestep"]))
        last = take["mask"].sum(dim=1).long().clamp_min(1) - 1
        return self.gaussian(self.posterior_head, step_outputs(hidden, ACTION)[torch.arange(len(last)), last])

    # -- acting ---------------------------------------------------------------
    def predict_action(self, window: dict[str, torch.Tensor]) -> torch.Tensor:
        self.eval()
        tokens = self.context_tokens({**window, "obs": self.step_features(window["obs"])})
        h_state = step_outputs(self.trunk(tokens), STATE)[:, -1]
        mean, logvar = self.gaussian(self.prior_head, step_outputs(self.prior_trunk(tokens), STATE)[:, -1])
        count = self.config.num_samples
        noise = torch.randn((count, mean.shape[-1]), generator=self.generator, device=mean.device)
        z = mean + noise * torch.exp(0.5 * logvar)
        _, values = self.heads(h_state.expand(count, -1), z)
        target = None if self.aim is None else float(self.scaled_returns(window)[0, -1])
        chosen = select_latent(values[None], z[None], target)
        return self.heads(h_state, chosen)[0][0]
