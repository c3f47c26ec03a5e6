"""CQL (Kumar et al. 2020) and Cal-QL (Nakamoto et al. 2023) on the ensemble SAC.

The critic loss adds ``cql_alpha * penalty`` (or, with ``cql_lagrange``,
``alpha' * cql_alpha * (penalty - gap)`` with a dual-tuned alpha') to the TD loss, with
the penalty's log-sum-exp estimated from uniform, current-policy and next-policy actions
(importance weighted) and each state's difference clipped to
[``cql_clip_diff_min``, ``cql_clip_diff_max``]. Cal-QL clamps the policy-action Q values
from below by the Monte-Carlo return-to-go ``mc_return`` of the batch. Defaults follow the
Cal-QL/JaxCQL code: cql_alpha 5, 10 sampled actions, temperature 1, no entropy backup,
policy lr 1e-4, critic lr 3e-4; Cal-QL (and WSRL's pretraining) also the max-target backup.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import torch

from robokit.algos.base import WarmupActions, check_batch
from robokit.algos.sac import SAC, ActorBatch, QReduction, SACConfig
from robokit.core.config import ConfigError, check_ranges
from robokit.losses import (
    bc_mse_loss,
    calql_lower_bound,
    cql_penalty,
    lagrange_cql_terms,
    matched_scale_weight,
    max_target_backup,
    random_subset,
    soft_target_value,
    td_target,
)
from robokit.nets.encoders import head_input, unwrap
from robokit.nets.obs_spec import ObsSpec


@dataclasses.dataclass(frozen=True)
class CQLConfig(SACConfig):
    """CQL on SAC.

    cql_alpha: weight of the conservative penalty (fixed unless cql_lagrange).
    cql_n_actions: N actions per proposal (uniform, pi(.|s), pi(.|s')).
    cql_lagrange / cql_target_action_gap: tune a multiplier alpha' of cql_alpha by dual ascent
        to keep penalty ~ gap (log alpha' starts at 1.0, as in the Cal-QL and CORL code).
    cql_clip_diff_min / cql_clip_diff_max: clamp each state's penalty term (default: no clip).
    cql_max_target_backup: target from the best of N next actions (Cal-QL's default; off in CQL).
    calql: clamp policy Q values by ``mc_return`` (Cal-QL); batches must carry ``mc_return``.
    calql_online: keep that clamp during online fine-tuning (True: the official Cal-QL code;
        False: CORL's cal_ql.py, which switches calibration off when online tuning starts).
    online_cql: keep the penalty during online fine-tuning (True for CQL/Cal-QL fine-tuning;
        WSRL turns it off and fine-tunes with plain SAC).
    bc_weight / bc_scale / bc_scale_decay / bc_online: a behaviour-cloning term
        ``w * ||mode pi(s) - a||^2`` on the batch's actions added to the actor loss (RoboFuME's
        pretraining); ``bc_scale "matched"`` sets ``w = bc_weight * avg|L_actor| / avg L_bc`` from
        running averages (decay ``bc_scale_decay``), so that the two terms have a similar scale.
    """

    actor_lr: float = 1e-4
    backup_entropy: bool = False
    cql_alpha: float = 5.0
    """weight of the conservative penalty (fixed unless --agent.cql-lagrange)"""
    cql_n_actions: int = 10
    """N actions per proposal (uniform, pi(.|s), pi(.|s'))"""
    cql_temperature: float = 1.0
    """temperature of the logsumexp over the proposed actions"""
    cql_lagrange: bool = False
    """tune the penalty weight by dual ascent to keep the gap near --agent.cql-target-action-gap"""
    cql_target_action_gap: float = 0.8
    """Lagrange target of the CQL gap"""
    cql_clip_diff_min: float = -math.inf
    """clamp each state's penalty term from below (-inf: no clip)"""
    cql_clip_diff_max: float = math.inf
    """clamp each state's penalty term from above (inf: no clip)"""
    cql_max_target_backup: bool = False
    """TD target from the best of N next actions (CQL's AntMaze option)"""
    calql: bool = False
    """clamp policy Q values from below by mc_return (Cal-QL); batches carry mc_return"""
    calql_online: bool = True
    """keep the Cal-QL clamp online (official Cal-QL); False: CORL's cal_ql.py, off online"""
    online_cql: bool = True
    """keep the penalty during online fine-tuning (CQL/Cal-QL do; WSRL fine-tunes with plain SAC)"""
    bc_weight: float = 0.0
    """weight of a BC term (squared error of the policy's mean action to the batch action) in the actor
    loss; 0: none (CQL, Cal-QL)"""
    bc_scale: Literal["fixed", "matched"] = "fixed"
    """'fixed': the BC weight is --agent.bc-weight; 'matched': --agent.bc-weight x running |actor loss| /
    running BC loss, so both terms have a similar scale (RoboFuME)"""
    bc_scale_decay: float = 0.99
    """decay of the running loss magnitudes of --agent.bc-scale matched"""
    bc_online: bool = False
    """keep the BC term during online fine-tuning (default: pretraining only)"""
    warmup_steps: int = 0
    offline_fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(self, non_negative=("bc_weight",), unit_interval=("bc_scale_decay",), prefix="agent.")
        if self.bc_scale not in ("fixed", "matched"):
            raise ConfigError(f"agent.bc_scale must be 'fixed' or 'matched', got {self.bc_scale!r}")


@dataclasses.dataclass(frozen=True)
class CalQLConfig(CQLConfig):
    """Cal-QL: CQL with the Monte-Carlo lower bound and the max-target backup (both on in the
    official code's ``ConservativeSAC.get_default_config``)."""

    calql: bool = True
    cql_max_target_backup: bool = True


#: initial log alpha' of the Lagrange version (``Scalar(1.0)`` in Cal-QL's conservative_sac.py
#: and CORL's cql.py / cal_ql.py)
LOG_ALPHA_PRIME_INIT = 1.0


class CQL(SAC):
    """CQL / Cal-QL agent (the same class; ``config.calql`` switches the bound)."""

    name = "cql"

    def __init__(self, config: CQLConfig, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        super().__init__(config, obs_dim, action_dim, seed)
        if config.cql_lagrange:
            self.log_alpha_prime = torch.nn.Parameter(torch.tensor(LOG_ALPHA_PRIME_INIT))
            self.alpha_prime_optimizer = torch.optim.Adam([self.log_alpha_prime], lr=config.critic_lr)
        if config.bc_weight > 0 and config.bc_scale == "matched":
            # running |actor RL loss|, running BC loss, updates seen (saved with the weights)
            self.register_buffer("bc_magnitudes", torch.zeros(3))

    @property
    def needs_mc_return(self) -> bool:  # type: ignore[override]
        return self.calibrating

    @property
    def penalty_active(self) -> bool:
        return self.phase == "offline" or self.config.online_cql

    @property
    def calibrating(self) -> bool:
        """Whether the Cal-QL bound applies now (offline; online unless ``calql_online`` is off)."""
        return self.config.calql and self.penalty_active and (self.phase == "offline" or self.config.calql_online)

    @property
    def max_target_active(self) -> bool:
        return self.config.cql_max_target_backup

    @torch.no_grad()
    def td_targets(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if not self.max_target_active:
            return super().td_targets(batch)
        n_actions = self.config.cql_n_actions
        next_obs = batch["next_obs"].repeat_interleave(n_actions, dim=0)
        next_action, next_log_prob = self.actor.sample(next_obs, self.generator)
        members = random_subset(self.config.ensemble_size, self.config.target_subset, self.generator)
        next_q = self.target_critic(next_obs, next_action, members)
        next_q = next_q.view(next_q.shape[0], -1, n_actions)
        next_value, chosen_log_prob = max_target_backup(next_q, next_log_prob.view(-1, n_actions))
        next_value = soft_target_value(next_value, chosen_log_prob, self.alpha, self.config.backup_entropy)
        return td_target(batch["reward"], next_value, batch["terminated"], self.config.discount)

    def policy_q_samples(self, batch: dict[str, torch.Tensor], critic_input: Any = None
                         ) -> dict[str, torch.Tensor]:
        """Q of N uniform / current-policy / next-policy actions at s: each (E, B, N), plus log-probs
        (B, N) and the actions themselves, ``actions`` (B, 3N, A) in that order.

        The policy actions (constants for the critic, as in the CQL code) are N draws per state
        from one actor head pass over the B states s and B states s'; all 3N actions of every state
        then go through the critic in one pass per layer (``QEnsemble.many_actions``), not one pass
        per proposal. With an encoder, no observation is encoded again: the critic reads
        ``critic_input`` (the TD term's encoding of s, with its graph; encoded here when None) and
        the actor the update's cached encodings of s and s' (:class:`~robokit.nets.encoders.FeatureCache`).
        """
        obs, n_actions = batch["obs"], self.config.cql_n_actions
        batch_size = len(obs)
        if critic_input is None:
            critic_input = head_input(self.critic, obs)
        with torch.no_grad():
            random_action = torch.rand((batch_size * n_actions, self.action_dim), generator=self.generator,
                                       device=batch["action"].device) * 2 - 1
            actor_input = torch.cat([head_input(self.actor, obs), head_input(self.actor, batch["next_obs"])])
            policy_action, policy_log_prob = unwrap(self.actor).sample_n(actor_input, n_actions, self.generator)
        current_action, next_action = policy_action.split(batch_size)
        actions = torch.cat([random_action.view(batch_size, n_actions, -1), current_action, next_action], dim=1)
        q_random, q_current, q_next = unwrap(self.critic).many_actions(critic_input, actions).split(n_actions, dim=-1)
        current_log_prob, next_log_prob = policy_log_prob.split(batch_size)
        return {"random": q_random, "current": q_current, "next": q_next, "actions": actions,
                "current_log_prob": current_log_prob, "next_log_prob": next_log_prob}

    def critic_regularizer(self, batch: dict[str, torch.Tensor], q_data: torch.Tensor,
                           critic_input: Any = None) -> tuple[torch.Tensor, dict[str, float]]:
        if not self.penalty_active:
            return q_data.new_zeros(()), {}
        samples = self.policy_q_samples(batch, critic_input)
        q_current, q_next = samples["current"], samples["next"]
        metrics: dict[str, float] = {}
        if self.calibrating:
            check_batch(batch, ("mc_return",), "calql")
            q_current = calql_lower_bound(q_current, batch["mc_return"])
            q_next = calql_lower_bound(q_next, batch["mc_return"])
            metrics["train/calql_bound_rate"] = (samples["current"] < batch["mc_return"].view(1, -1, 1)
                                                 ).float().mean().item()
        penalty = cql_penalty(q_data, samples["random"], q_current, q_next, samples["current_log_prob"],
                              samples["next_log_prob"], self.action_dim, self.config.cql_temperature,
                              self.config.cql_clip_diff_min, self.config.cql_clip_diff_max)
        metrics["losses/cql_penalty"] = penalty.mean().item()
        if self.config.cql_lagrange:
            term, alpha_prime_loss = lagrange_cql_terms(self.log_alpha_prime, penalty,
                                                        self.config.cql_target_action_gap, self.config.cql_alpha)
            self.alpha_prime_optimizer.zero_grad(set_to_none=True)
            alpha_prime_loss.backward()
            self.alpha_prime_optimizer.step()
            metrics["train/cql_alpha_prime"] = self.log_alpha_prime.exp().item()
            return term, metrics
        return self.config.cql_alpha * penalty.sum(), metrics


    # -- behaviour cloning ------------------------------------------------------
    @property
    def bc_active(self) -> bool:
        return self.config.bc_weight > 0 and (self.phase == "offline" or self.config.bc_online)

    def actor_regularizer(self, batch: dict[str, torch.Tensor], rl_loss: torch.Tensor
                          ) -> tuple[torch.Tensor, dict[str, float]]:
        """``w * bc_mse_loss(mode pi(s), a)`` on the batch (B rows) while BC is active (see the config)."""
        if not self.bc_active:
            return super().actor_regularizer(batch, rl_loss)
        bc = bc_mse_loss(self.actor.mode(batch["obs"]), batch["action"])
        weight = self.bc_weight_now(abs(rl_loss.item()), bc.item())
        return weight * bc, {"losses/actor_rl": rl_loss.item(), "losses/bc": bc.item(), "train/bc_weight": weight}

    def bc_weight_now(self, rl_magnitude: float, bc_magnitude: float) -> float:
        """The BC weight of this update: fixed, or matched to running averages of the two magnitudes
        (the first update starts both averages at its own values)."""
        if self.config.bc_scale == "fixed":
            return float(self.config.bc_weight)
        mags, decay = self.bc_magnitudes, self.config.bc_scale_decay
        new = torch.tensor([rl_magnitude, bc_magnitude], dtype=mags.dtype, device=mags.device)
        mags[:2] = new if mags[2] == 0 else decay * mags[:2] + (1 - decay) * new
        mags[2] += 1
        return matched_scale_weight(mags[0].item(), mags[1].item(), self.config.bc_weight)


class CalQL(CQL):
    name = "calql"


@dataclasses.dataclass(frozen=True)
class RoboFuMEConfig(CalQLConfig):
    """RoboFuME's policy learning (Yang et al. 2024, arXiv 2310.15145): Cal-QL plus a BC term whose
    weight matches the two losses' scale (the paper's rule; no public code, so the matching rule is
    robokit's, see docs/robofume.md), pretrained on prior + target data and fine-tuned with Cal-QL."""

    bc_weight: float = 1.0
    bc_scale: Literal["fixed", "matched"] = "matched"


class RoboFuME(CalQL):
    """Cal-QL + matched-scale BC (the config's defaults); task conditioning comes from the dict encoder."""

    name = "robofume"


@dataclasses.dataclass(frozen=True)
class WSRLConfig(CQLConfig):
    """WSRL (Zhou et al. 2024): Cal-QL pretraining on a 10-member LayerNorm ensemble (LayerNorm in
    the policy too), then a 5000-step warm-up by the pretrained policy with no updates, then SAC
    fine-tuning (no CQL penalty, no max-target backup) with no offline data retained, UTD 4: a
    batch of 1024 split into 4 critic minibatches of 256, then one actor and temperature step on
    all 1024 rows; the actor reads the min over all 10 critics. Defaults from the WSRL code
    (zhouzypaul/wsrl: experiments/configs/sac_config.py, wsrl_config.py, cql_config.py,
    wsrl/agents/sac.py) and its locomotion launch script (--utd 4 --batch_size 1024
    --warmup_steps 5000); see docs/algos/wsrl.md. For dense-reward locomotion pass
    ``--agent.calql False`` (CQL)."""

    ensemble_size: int = 10
    target_subset: int = 2
    layer_norm: bool = True
    policy_layer_norm: bool = True
    actor_q_reduction: QReduction = "min"
    actor_batch: ActorBatch = "full"
    temperature_lr: float = 1e-4
    cql_max_target_backup: bool = True
    calql: bool = True
    online_cql: bool = False
    utd_ratio: int = 4
    batch_size: int = 256
    warmup_steps: int = 5000
    warmup_actions: WarmupActions = "policy"
    offline_fraction: float = 0.0


class WSRL(CQL):
    """WSRL's pretraining is its CQL/Cal-QL agent; its fine-tuning is its SAC agent, which has no
    max-target backup (so the backup applies offline only)."""

    name = "wsrl"

    @property
    def max_target_active(self) -> bool:
        return self.config.cql_max_target_backup and self.phase == "offline"
