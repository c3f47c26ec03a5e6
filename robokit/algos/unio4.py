"""Uni-O4 (Lei et al., ICLR 2024, arXiv 2311.03351): one on-policy objective offline and online.

Offline, over the trainer's ``offline_steps`` (= ``critic_steps + bc_steps + improve_steps``):

1. critics (``critic_steps``): IQL's expectile V and double Q (``critic="iql"``, the code's ``--is_iql``,
   used in all its locomotion scripts), or V regressed to the Monte-Carlo return and Q by SARSA TD on
   the dataset's next action (``critic="sarsa"``);
2. an ensemble of K Gaussian policies cloned jointly with the diversity term (``bc_steps``);
3. multi-step policy improvement (``improve_steps``): each member k maximises the clipped ratio
   objective against its behaviour policy on actions sampled from that behaviour policy, with
   A = Q - V standardised (and asymmetrically weighted for SARSA critics); learning rate decays linearly
   to 0 and the clip ratio linearly over the first ``clip_decay_steps``; every ``ope_every`` steps each
   member is scored by offline policy evaluation (mean Q along deterministic rollouts from dataset
   states in a learned ensemble dynamics model, or the true simulator) and a member whose score beats
   its best so far becomes its own new behaviour policy.

At the switch to online (:meth:`UniO4.begin_online`, called by the trainer) the start policy is the
member with the best evaluation return among the ``start_top_k`` members with the highest last OPE
score (the fine-tuning code's ``load_pi_value``). Online, the trainer's on-policy loop runs PPO from
that policy and the offline V, with observations normalised by the offline data's mean and std.

Uni-O4 samples its own minibatches from the offline data handed over by the trainer
(:meth:`UniO4.attach_offline_data`), because its learners need fields a transition batch lacks (the
Monte-Carlo return, the next dataset action) and each has its own batch.
Defaults and their sources: docs/algos/unio4.md.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from robokit.algos.base import Agent, PhaseConfig, check_batch, freeze_, seeded_init, soft_update_
from robokit.losses import iql_q_loss, iql_value_loss, ppo_clip_loss
from robokit.losses.unio4 import (
    asymmetric_weight,
    clipped_ratio_loss,
    diversity_bc_loss,
    mc_value_loss,
    sarsa_q_loss,
    standardise_advantage,
)
from robokit.nets import QEnsemble, ValueNet
from robokit.nets.dynamics import EnsembleDynamics, termination_fn
from robokit.nets.policy_ensemble import (
    GaussianPolicyEnsemble,
    clip_grad_norm_per_member_,
    copy_members_,
)

ONLINE_KEYS = ("obs", "action", "log_prob", "advantage", "return", "value")
#: the official code's CONST_EPS, added to the state std
STATE_STD_EPS = 1e-10


@dataclasses.dataclass(frozen=True)
class UniO4Config(PhaseConfig):
    """Uni-O4's recipe; see docs/algos/unio4.md for the source of each default."""

    critic: Literal["iql", "sarsa"] = "iql"
    """offline critics: IQL expectile V and double Q (the code's --is_iql) or Monte-Carlo V with SARSA Q"""
    critic_steps: int = 2_000_000
    """gradient steps of the critics (main.py --v_steps)"""
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)
    """V network widths (main.py --v_hidden_dim 512, --v_depth 3)"""
    q_hidden_dims: tuple[int, ...] = (1024, 1024)
    """Q network widths (main.py --q_hidden_dim 1024, --q_depth 2)"""
    critic_lr: float = 1e-4
    """Adam learning rate of V and Q (main.py --v_lr, --q_lr)"""
    offline_batch_size: int = 512
    """minibatch of every offline learner (main.py --v/q/bc/bppo_batch_size)"""
    expectile: float = 0.7
    """IQL expectile (main.py --omega)"""
    tau: float = 0.005
    """Polyak rate of the target Q (transition_model default tau)"""
    target_update_every: int = 2
    """target Q update period in critic steps (main.py --target_update_freq)"""
    discount: float = 0.99
    """gamma offline and online"""
    num_policies: int = 4
    """K, members of the BC ensemble (main.py --num_policies)"""
    hidden_dims: tuple[int, ...] = (256, 256, 256)
    """policy widths (main.py --bc_hidden_dim 256, --bc_depth 3)"""
    bc_steps: int = 400_000
    """gradient steps of the joint BC (main.py --bc_steps)"""
    bc_lr: float = 1e-4
    """BC Adam learning rate (main.py --bc_lr)"""
    diversity_alpha: float = 0.1
    """weight of the BC diversity term (main.py --alpha_bc)"""
    improve_steps: int = 10_000
    """policy-improvement steps (main.py --bppo_steps)"""
    improve_lr: float = 1e-4
    """initial learning rate, decayed linearly to 0 (main.py --bppo_lr, --is_linear_decay)"""
    clip_ratio: float = 0.25
    """initial clip ratio (main.py --clip_ratio)"""
    clip_decay_steps: int = 200
    """the clip ratio decays linearly only while step <= this (main.py turns is_clip_decay off after 200)"""
    advantage_omega: float | None = None
    """asymmetric advantage weight; None = as the code: 0.7 (--omega) for SARSA critics, none (0.5) for IQL"""
    improve_grad_clip: float = 0.5
    """per-member gradient-norm clip (abppo.py)"""
    ope_every: int = 100
    """improvement steps between offline policy evaluations (main.py --eval_step)"""
    ope_model: Literal["learned", "simulator"] = "learned"
    """OPE in the learned dynamics ensemble, or in the true MuJoCo simulator (the env's own physics)"""
    ope_states: int = 512
    """dataset start states per OPE (main.py rollout_batch_size)"""
    ope_horizon: int = 1000
    """OPE rollout length, cut short by the termination function (main.py --rollout_step)"""
    replace_behaviour: bool = True
    """a member whose OPE score improves becomes its behaviour policy (main.py --is_update_old_policy)"""
    dynamics_hidden_dims: tuple[int, ...] = (200, 200, 200, 200)
    """dynamics member widths (transition_model/configs/gym/default.py)"""
    dynamics_ensemble: int = 7
    """dynamics members (n_ensemble)"""
    dynamics_elites: int = 5
    """elite members used for rollouts (n_elites)"""
    dynamics_lr: float = 1e-3
    """dynamics Adam learning rate (dynamics_lr)"""
    dynamics_batch_size: int = 256
    """dynamics minibatch (ensemble_dynamics.py train)"""
    dynamics_max_epochs: int | None = None
    """cap on dynamics epochs; None = until hold-out loss stalls (dynamics_max_epochs)"""
    dynamics_patience: int = 5
    """epochs without a 1 % hold-out improvement before stopping (max_epochs_since_update)"""
    start_top_k: int = 3
    """online start: best evaluated of the top-k members by last OPE score (ppo_finetune/ppo.py load_pi_value)"""
    start_eval_episodes: int = 10
    """evaluation episodes per candidate start policy (main.py --eval_episode)"""
    state_norm: bool = True
    """normalise observations by the offline data's mean and std (the scripts' --is_state_norm True)"""
    online_actor_lr: float = 2e-5
    """online PPO actor learning rate (ppo_finetune/main.py --lr_a)"""
    online_critic_lr: float = 2e-4
    """online value learning rate (ppo_finetune/main.py --lr_c)"""
    online_clip: float = 0.05
    """online PPO clip, also the value clip (ppo_finetune/main.py --epsilon)"""
    n_steps: int = 2048
    """env steps per rollout (ppo_finetune/main.py --batch_size)"""
    epochs: int = 30
    """passes over each rollout (ppo_finetune/main.py --K_epochs)"""
    batch_size: int = 128
    """online minibatch (ppo_finetune/main.py --mini_batch_size)"""
    ent_coef: float = 0.01
    """entropy bonus online (ppo_finetune/main.py --entropy_coef)"""
    gae_lambda: float = 0.95
    """GAE lambda (ppo_finetune/main.py --lamda)"""
    max_grad_norm: float = 0.5
    """online gradient-norm clip (ppo_finetune/ppo.py)"""
    clip_value: bool = True
    """clip the online value update around the rollout's values (ppo_finetune/main.py --is_clip_value)"""
    warmup_steps: int = 0
    """no warm-up: PPO acts with its policy from the first online step"""
    offline_fraction: float = 0.0
    """no offline rows in online batches (on-policy)"""


class OfflineData:
    """The offline dataset as tensors for Uni-O4's learners.

    Fields (N rows): ``obs``, ``next_obs`` (N, O) raw; ``action`` (N, A); ``reward``, ``terminated``,
    ``mc_return`` (N,) float32; ``next_action`` (N, A) and ``has_next`` (N,) (False on an episode's last step).
    """

    def __init__(self, episodes: list, discount: float) -> None:
        from robokit.data.returns import discounted_returns

        if not episodes:
            raise ValueError("unio4: the offline dataset has no episodes")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "next_obs", "action", "reward", "terminated",
                                                               "mc_return", "next_action", "has_next")}
        for ep in episodes:
            steps = len(ep.actions)
            if steps == 0:
                continue
            terminated = np.asarray(ep.terminated, np.float32).reshape(steps)
            parts["obs"].append(ep.observations[:-1])
            parts["next_obs"].append(ep.observations[1:])
            parts["action"].append(ep.actions)
            parts["reward"].append(np.asarray(ep.rewards, np.float32))
            parts["terminated"].append(terminated)
            parts["mc_return"].append(discounted_returns(ep.rewards, terminated, discount))
            parts["next_action"].append(np.concatenate([ep.actions[1:], ep.actions[-1:]]))
            parts["has_next"].append(np.arange(steps) < steps - 1)
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        for key, value in arrays.items():
            if not np.isfinite(value.astype(np.float64)).all():
                raise ValueError(f"unio4: the offline dataset's '{key}' has non-finite values")
        self.tensors = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in arrays.items()}
        self.size = len(arrays["obs"])

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.tensors[key]

    def sample(self, count: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        rows = torch.randint(self.size, (count,), generator=generator)
        return {key: value[rows] for key, value in self.tensors.items()}


class MemberPolicy:
    """``act(obs, deterministic)`` of one ensemble member (for evaluation): mean action, clipped to [-1, 1]."""

    def __init__(self, agent: UniO4, ensemble: GaussianPolicyEnsemble, member: int) -> None:
        self.agent, self.ensemble, self.member = agent, ensemble, member

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        tensor = self.agent.normalise(torch.as_tensor(np.asarray(obs, np.float32)).reshape(-1, self.agent.obs_dim))
        mean = self.ensemble.mode(tensor)[self.member]
        action = mean.clamp(-1.0, 1.0).numpy()
        return action[0] if np.asarray(obs).ndim == 1 else action


class UniO4(Agent):
    """Offline stages inside ``update`` (counted by ``num_updates``), then on-policy PPO online."""

    name = "unio4"
    on_policy = True
    #: its dynamics model predicts next observations as vectors
    obs_kinds = ("vector",)

    def __init__(self, config: UniO4Config, obs_dim: int, action_dim: int, seed: int = 0) -> None:
        super().__init__(config, obs_dim, action_dim, seed)
        cfg = config
        if cfg.num_policies < 1 or not 1 <= cfg.start_top_k:
            raise ValueError(f"unio4: num_policies ({cfg.num_policies}) and start_top_k ({cfg.start_top_k}) must be >= 1")
        with seeded_init(seed):
            self.value = ValueNet(obs_dim, cfg.value_hidden_dims)
            self.critic = QEnsemble(obs_dim, action_dim, 2 if cfg.critic == "iql" else 1, cfg.q_hidden_dims)
            self.target_critic = freeze_(copy.deepcopy(self.critic))
            self.bc = GaussianPolicyEnsemble(obs_dim, action_dim, cfg.num_policies, cfg.hidden_dims)
            self.policy = GaussianPolicyEnsemble(obs_dim, action_dim, cfg.num_policies, cfg.hidden_dims)
            self.behaviour = freeze_(copy.deepcopy(self.policy))
            self.actor = GaussianPolicyEnsemble(obs_dim, action_dim, 1, cfg.hidden_dims)
            self.dynamics = EnsembleDynamics(obs_dim, action_dim, cfg.dynamics_hidden_dims, cfg.dynamics_ensemble,
                                             cfg.dynamics_elites, (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)
                                             if len(cfg.dynamics_hidden_dims) == 4 else None)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        self.register_buffer("best_ope", torch.full((cfg.num_policies,), -torch.inf))
        self.register_buffer("last_ope", torch.full((cfg.num_policies,), torch.nan))
        #: OPE scores (evaluations, K): row 0 the BC members, then every ope_every improvement steps (NaN: not yet)
        self.register_buffer("ope_history", torch.full((cfg.improve_steps // max(cfg.ope_every, 1) + 1,
                                                         cfg.num_policies), torch.nan))
        self.register_buffer("replacements", torch.zeros(cfg.num_policies, dtype=torch.long))
        self.register_buffer("improve_started", torch.zeros((), dtype=torch.bool))
        self.register_buffer("start_member", torch.full((), -1, dtype=torch.long))
        self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=cfg.critic_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.bc_optimizer = torch.optim.Adam(self.bc.parameters(), lr=cfg.bc_lr)
        self.improve_optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.improve_lr)
        self.online_actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.online_actor_lr, eps=1e-5)
        self.online_value_optimizer = torch.optim.Adam(self.value.parameters(), lr=cfg.online_critic_lr, eps=1e-5)
        self.data: OfflineData | None = None
        self.env_id: str | None = None
        self._simulator: Any = None

    # ------------------------------------------------------------------ schedule
    @property
    def offline_schedule(self) -> int:
        """Offline gradient steps the recipe needs: critic_steps + bc_steps + improve_steps."""
        cfg = self.config
        return cfg.critic_steps + cfg.bc_steps + cfg.improve_steps

    def attach_offline_data(self, buffer: Any, env_id: str, offline_steps: int) -> None:
        """Receive the offline dataset (a robokit ReplayBuffer) and the env id (for the termination function).

        Raises:
            ValueError: ``offline_steps`` is not the recipe's schedule, or the data is unusable.
        """
        from robokit.data.formats.common import buffer_to_episodes

        if offline_steps and offline_steps != self.offline_schedule:
            cfg = self.config
            raise ValueError(f"unio4: --offline-steps must be critic_steps + bc_steps + improve_steps = "
                             f"{cfg.critic_steps} + {cfg.bc_steps} + {cfg.improve_steps} = {self.offline_schedule}, "
                             f"got {offline_steps}")
        self.data = OfflineData(buffer_to_episodes(buffer), self.config.discount)
        self.env_id = env_id
        if self.config.state_norm and self.num_updates == 0 and not bool(self.improve_started):
            with torch.no_grad():
                self.obs_mean.copy_(self.data["obs"].mean(0))
                self.obs_std.copy_(self.data["obs"].std(0, unbiased=False) + STATE_STD_EPS)
        if self.config.improve_steps and self.config.ope_model == "learned":
            termination_fn(env_id)  # fail now, not after hours of critic training
        self.check_finite()

    def normalise(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Offline: one step of the current stage on the agent's own minibatch (``batch`` is not used).
        Online: one PPO minibatch step (keys obs, action, log_prob, advantage, return, value)."""
        if self.phase != "offline":
            return self._online_update(batch)
        if self.data is None:
            raise ValueError("unio4: no offline data attached; train with --dataset (the trainer attaches it)")
        cfg, step = self.config, self.num_updates
        if step < cfg.critic_steps:
            metrics = self._critic_step(step)
        elif step < cfg.critic_steps + cfg.bc_steps:
            metrics = self._bc_step()
        elif step < self.offline_schedule:
            metrics = self._improve_step(step - cfg.critic_steps - cfg.bc_steps)
        else:
            metrics = {}
        self.num_updates += 1
        return metrics

    # ------------------------------------------------------------------ critics
    def _critic_step(self, step: int) -> dict[str, float]:
        cfg = self.config
        batch = self.data.sample(cfg.offline_batch_size, self.generator)
        obs, next_obs = self.normalise(batch["obs"]), self.normalise(batch["next_obs"])
        if cfg.critic == "iql":
            with torch.no_grad():
                q_target = self.target_critic(obs, batch["action"]).min(0).values
            value = self.value(obs)
            value_loss = iql_value_loss(q_target, value, cfg.expectile)
            _step(self.value_optimizer, value_loss)
            with torch.no_grad():
                next_value = self.value(next_obs)
            q_pred = self.critic(obs, batch["action"])
            q_loss = iql_q_loss(q_pred, batch["reward"], next_value, batch["terminated"], cfg.discount)
        else:
            value_loss = mc_value_loss(self.value(obs), batch["mc_return"])
            _step(self.value_optimizer, value_loss)
            with torch.no_grad():
                next_q = self.target_critic(next_obs, batch["next_action"])[0]
            q_pred = self.critic(obs, batch["action"])
            not_done = (1.0 - batch["terminated"]) * batch["has_next"]
            q_loss = sarsa_q_loss(q_pred, batch["reward"], next_q, not_done, cfg.discount)
        _step(self.critic_optimizer, q_loss)
        if (step + 1) % cfg.target_update_every == 0:
            soft_update_(self.target_critic, self.critic, cfg.tau)
        return {"losses/value": value_loss.item(), "losses/critic": q_loss.item(),
                "train/q_mean": q_pred.mean().item(), "train/stage": 0.0}

    def q_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q used for advantages and OPE: min of the IQL pair, or the SARSA Q. obs normalised (B, O) -> (B,)."""
        return self.critic(obs, action).min(0).values

    # ------------------------------------------------------------------ BC ensemble
    def _bc_step(self) -> dict[str, float]:
        batch = self.data.sample(self.config.offline_batch_size, self.generator)
        log_probs = self.bc.log_prob(self.normalise(batch["obs"]), batch["action"])  # (K, B)
        loss = diversity_bc_loss(log_probs, self.config.diversity_alpha)
        _step(self.bc_optimizer, loss)
        return {"losses/bc": loss.item() / self.config.num_policies, "train/stage": 1.0}

    # ------------------------------------------------------------------ policy improvement
    @property
    def omega(self) -> float:
        cfg = self.config
        if cfg.advantage_omega is not None:
            return cfg.advantage_omega
        return cfg.expectile if cfg.critic == "sarsa" else 0.5

    def start_improvement(self) -> dict[str, float]:
        """Fit the dynamics (learned OPE), copy BC into the members and their behaviour policies, score them."""
        metrics: dict[str, float] = {}
        cfg = self.config
        if cfg.ope_model == "learned" and not bool(self.dynamics.fitted):
            report = self.dynamics.fit(self.data["obs"], self.data["action"], self.data["reward"],
                                       self.data["next_obs"], lr=cfg.dynamics_lr, batch_size=cfg.dynamics_batch_size,
                                       max_epochs=cfg.dynamics_max_epochs, max_epochs_since_update=cfg.dynamics_patience,
                                       generator=self.generator)
            metrics.update({"train/dynamics_epochs": float(report.epochs),
                            "train/dynamics_holdout_mse": report.elite_mse})
        members = list(range(cfg.num_policies))
        copy_members_(self.policy, self.bc, members, members)
        copy_members_(self.behaviour, self.bc, members, members)
        scores = self.ope_scores()
        with torch.no_grad():
            self.best_ope.copy_(scores)
            self.last_ope.copy_(scores)
            self.ope_history[0] = scores
            self.improve_started.fill_(True)
        return metrics

    def _improve_step(self, step: int) -> dict[str, float]:
        cfg = self.config
        metrics = self.start_improvement() if not bool(self.improve_started) else {}
        fraction = 1.0 - step / cfg.improve_steps
        lr = cfg.improve_lr * fraction
        clip = cfg.clip_ratio * (1.0 - min(step, cfg.clip_decay_steps) / cfg.improve_steps)
        for group in self.improve_optimizer.param_groups:
            group["lr"] = lr
        obs = self.normalise(self.data.sample(cfg.offline_batch_size, self.generator)["obs"])
        with torch.no_grad():
            actions = self.behaviour.sample(obs, self.generator)  # (K, B, A)
            behaviour_log_prob = self.behaviour.log_prob(obs, actions)
            q = self.q_value(obs.repeat(cfg.num_policies, 1), actions.reshape(-1, self.action_dim))
            advantage = q.view(cfg.num_policies, -1) - self.value(obs).unsqueeze(0)
            advantage = asymmetric_weight(standardise_advantage(advantage), self.omega)
        loss = clipped_ratio_loss(self.policy.log_prob(obs, actions), behaviour_log_prob, advantage, clip)
        self.improve_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm_per_member_(list(self.policy.parameters()), cfg.improve_grad_clip)
        self.improve_optimizer.step()
        metrics.update({"losses/improve": loss.item() / cfg.num_policies, "train/clip_ratio": clip,
                        "train/improve_lr": lr, "train/stage": 2.0})
        if (step + 1) % cfg.ope_every == 0:
            metrics.update(self.evaluate_and_replace())
            with torch.no_grad():
                self.ope_history[(step + 1) // cfg.ope_every] = self.last_ope
        return metrics

    def evaluate_and_replace(self) -> dict[str, float]:
        """Score every member by OPE; a member whose score beats its best becomes its behaviour policy."""
        scores = self.ope_scores()
        improved = [k for k in range(self.config.num_policies) if bool(scores[k] > self.best_ope[k])]
        with torch.no_grad():
            self.last_ope.copy_(scores)
            for k in improved:
                self.best_ope[k] = scores[k]
                if self.config.replace_behaviour:
                    self.replacements[k] += 1
            if self.config.replace_behaviour and improved:
                copy_members_(self.behaviour, self.policy, improved, improved)
        out = {f"train/ope_{k}": float(scores[k]) for k in range(self.config.num_policies)}
        out.update({"train/ope_replaced": float(len(improved)), "train/ope_replacements": float(self.replacements.sum())})
        return out

    # ------------------------------------------------------------------ OPE
    @torch.no_grad()
    def ope_scores(self) -> torch.Tensor:
        """(K,) mean Q(s, pi_k(s)) over every state of deterministic rollouts of each member from the same
        ``ope_states`` dataset states, up to ``ope_horizon`` steps or termination (dynamics_eval.py)."""
        cfg = self.config
        self.check_finite()
        members, count = cfg.num_policies, min(cfg.ope_states, self.data.size)
        rows = torch.randint(self.data.size, (count,), generator=self.generator)
        obs = self.data["obs"][rows].repeat(members, 1)  # (K * S, O), member-major
        alive = torch.ones(len(obs), dtype=torch.bool)
        q_sum, visits = torch.zeros(members), torch.zeros(members)
        step_fn, done_fn = self._ope_step_fn()
        for _ in range(cfg.ope_horizon):
            normalised = self.normalise(obs)
            actions = self.policy.mode(normalised.view(members, count, -1)).reshape(len(obs), -1)
            q = torch.where(alive, self.q_value(normalised, actions), 0.0).view(members, count)
            q_sum += q.sum(1)
            visits += alive.view(members, count).sum(1)
            next_obs, _, done = step_fn(obs, actions.clamp(-1.0, 1.0) if cfg.ope_model == "simulator" else actions,
                                        done_fn, self.generator)
            obs = torch.where(alive.unsqueeze(1), next_obs, obs)
            alive = alive & ~done
            if not alive.any():
                break
        return q_sum / visits.clamp(min=1)

    def _ope_step_fn(self) -> tuple[Callable, Callable | None]:
        if self.config.ope_model == "simulator":
            if self._simulator is None:
                from robokit.envs.simulator_dynamics import SimulatorDynamics

                self._simulator = SimulatorDynamics(self.env_id)
            return self._simulator.step, None
        return self.dynamics.step, termination_fn(self.env_id)

    # ------------------------------------------------------------------ acting
    def check_finite(self) -> None:
        """Raise a ValueError naming the module (and member) whose parameters are NaN or infinite."""
        for name in ("bc", "policy", "behaviour", "actor", "value", "critic"):
            for pname, param in getattr(self, name).named_parameters():
                bad = ~torch.isfinite(param)
                if bad.any():
                    members = sorted({int(i) for i in bad.nonzero()[:, 0]}) if param.dim() >= 2 else []
                    where = f" (member(s) {members})" if name in ("bc", "policy", "behaviour") and members else ""
                    raise ValueError(f"unio4: {name}.{pname} has non-finite parameters{where}")

    def begin_online(self, score: Callable[[Any, int], float]) -> dict[str, float]:
        """Choose the online start policy once: of the ``start_top_k`` members with the highest last OPE
        score, the one with the best ``score(policy, episodes)`` (mean evaluation return); copy it into the
        online actor. Does nothing when the choice is already made (e.g. after ``--resume``)."""
        cfg = self.config
        self.check_finite()
        if int(self.start_member) >= 0:
            return {}
        source = self.policy if bool(self.improve_started) else self.bc
        ope = self.last_ope if bool(self.improve_started) else torch.zeros(cfg.num_policies)
        ope = torch.nan_to_num(ope, nan=-torch.inf)
        candidates = torch.argsort(ope, descending=True, stable=True)[:min(cfg.start_top_k, cfg.num_policies)].tolist()
        returns = {k: float(score(MemberPolicy(self, source, k), cfg.start_eval_episodes)) for k in candidates}
        chosen = max(candidates, key=lambda k: returns[k])
        copy_members_(self.actor, source, [0], [chosen])
        with torch.no_grad():
            self.start_member.fill_(chosen)
        return {"train/start_member": float(chosen), **{f"train/start_return_{k}": v for k, v in returns.items()}}

    def _acting_policy(self) -> tuple[GaussianPolicyEnsemble, int]:
        if int(self.start_member) >= 0:
            return self.actor, 0
        if bool(self.improve_started):
            return self.policy, int(torch.nan_to_num(self.last_ope, nan=-torch.inf).argmax())
        return self.bc, 0

    def policy_action(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """(B, O) raw -> (B, A) in [-1, 1]: the online actor, or before the switch the best member by last OPE."""
        ensemble, member = self._acting_policy()
        normalised = self.normalise(obs)
        action = ensemble.mode(normalised) if deterministic else ensemble.sample(normalised, self.generator)
        return action[member].clamp(-1.0, 1.0)

    @torch.no_grad()
    def explore(self, obs: np.ndarray) -> tuple[np.ndarray, float, float]:
        """obs (O,) -> (action (A,) clipped sample, log pi(clipped action | s), V(s)) of the online actor."""
        tensor = self.normalise(torch.as_tensor(np.asarray(obs, np.float32))[None])
        action = self.actor.sample(tensor, self.generator)[0].clamp(-1.0, 1.0)  # (1, A)
        log_prob = self.actor.log_prob(tensor, action)[0]
        return action[0].numpy(), float(log_prob[0]), float(self.value(tensor)[0])

    @torch.no_grad()
    def state_value(self, obs: np.ndarray) -> float:
        return float(self.value(self.normalise(torch.as_tensor(np.asarray(obs, np.float32))[None]))[0])

    # ------------------------------------------------------------------ online PPO
    def _online_update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One PPO minibatch step of actor and value (ppo_finetune/ppo.py ``update``)."""
        check_batch(batch, ONLINE_KEYS, self.name)
        cfg = self.config
        obs = self.normalise(batch["obs"])
        advantage = batch["advantage"]
        if len(advantage) > 1:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-5)
        log_prob = self.actor.log_prob(obs, batch["action"])[0]
        entropy = self.actor.entropy(obs)[0].mean()
        policy_loss = ppo_clip_loss(log_prob, batch["log_prob"], advantage, cfg.online_clip) - cfg.ent_coef * entropy
        self.online_actor_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
        self.online_actor_optimizer.step()
        value = self.value(obs)
        value_loss = (value - batch["return"]).pow(2)
        if cfg.clip_value:
            clipped = batch["value"] + (value - batch["value"]).clamp(-cfg.online_clip, cfg.online_clip)
            value_loss = torch.maximum(value_loss, (clipped - batch["return"]).pow(2))
        value_loss = value_loss.mean()
        self.online_value_optimizer.zero_grad(set_to_none=True)
        value_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.value.parameters(), cfg.max_grad_norm)
        self.online_value_optimizer.step()
        with torch.no_grad():
            clip_fraction = ((log_prob - batch["log_prob"]).exp().sub(1).abs() > cfg.online_clip).float().mean()
        return {"losses/policy": policy_loss.item(), "losses/value": value_loss.item(),
                "train/entropy": entropy.item(), "train/clip_fraction": clip_fraction.item()}


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
