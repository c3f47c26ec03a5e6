"""One phase machine for every algorithm: offline -> warm-up -> online.

Phases (the algorithm's config decides their settings, see :class:`PhaseConfig`):

1. ``offline``: ``offline_steps`` gradient steps on batches of the offline dataset.
2. ``warmup``: the first ``warmup_steps`` online env steps, acting with uniform random
   actions or the (pretrained) policy, with no gradient updates.
3. ``online``: one env step, then one ``agent.update`` on ``batch_size * utd_ratio`` rows:
   ``utd_ratio`` minibatches of ``batch_size`` rows one after the other, each holding exactly
   ``round(offline_fraction * batch_size)`` offline rows (so every critic step, and the
   actor's batch, sees the configured share of offline data).

Every ``eval_every`` steps the deterministic policy is evaluated. Checkpoints (agent,
optimizers, replay buffers, RNG states, counters) are written atomically every
``checkpoint_every`` steps at an episode boundary, so ``resume`` continues exactly where
the checkpoint left off: the resumed run produces the same numbers as an uninterrupted one.

Metric keys: ``train/...`` (episode return, success, env steps, phase), ``eval/...``,
``losses/...``. The x-axis ``step`` is offline gradient steps + online env steps.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from robokit.algos import ALGOS, Agent, agent_from_state, make_agent
from robokit.core.atomic import atomic_write_text
from robokit.core.checkpoint import load_checkpoint
from robokit.core.config import check_ranges, to_dict
from robokit.core.logging import truncate_metrics  # noqa: F401  (re-exported for callers)
from robokit.core.rundir import check_run_dir, clear_run_dir
from robokit.core.runs import CHECKPOINT_DIR, resume_point, save_step_checkpoint
from robokit.core.seeding import restore_rng_state, rng_state, seed_everything
from robokit.distributed.options import DistributedField, DistributedOptions
from robokit.nets.obs_spec import spec_from_episodes, spec_from_space, stored_spec
from robokit.trainers.evaluation import evaluate

PHASE_CODES = {"offline": 0, "warmup": 1, "online": 2}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Run settings shared by every algorithm (the algorithm's own are under ``agent``)."""

    env: str = "robokit/ArmReach-v0"
    """gymnasium env id (robokit ids are registered automatically)"""
    dataset: Path | None = None
    """offline data (Minari dir, D4RL or robomimic HDF5) for offline phases and mixing"""
    offline_steps: int = 0
    """gradient steps on the dataset before going online"""
    online_steps: int = 10_000
    """env steps online (the warm-up included)"""
    seed: int = 0
    """seed of networks, env resets, sampling and exploration"""
    out: Path = Path("runs/train")
    """run folder: config.yaml, metrics.csv, checkpoints/, final.pt (refused when it holds files,
    unless --resume or --overwrite)"""
    logger: tuple[Literal["console", "csv", "wandb", "none"], ...] = ("console", "csv")
    """where metrics go (wandb runs offline unless WANDB_MODE says otherwise)"""
    eval_every: int = 5000
    """steps between evaluations, offline and online (0: only at the start and end of online)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    log_every: int = 1000
    """steps between training-metric rows"""
    checkpoint_every: int = 10_000
    """steps between checkpoints (taken at the next episode end when online)"""
    keep_checkpoints: int = 2
    """newest checkpoints kept in checkpoints/ (older ones are deleted)"""
    replay_capacity: int = 1_000_000
    """online replay size (capped at --online-steps)"""
    warmup_steps: int | None = None
    """override the algorithm's warm-up length (env steps without updates)"""
    offline_fraction: float | None = None
    """override the algorithm's share of offline rows in each online batch"""
    mix_mode: Literal["mixed", "append"] = "mixed"
    """'mixed': every batch holds exactly round(f * B) offline rows; 'append': one pool, rows
    drawn uniformly (Cal-QL's and WSRL's 'append online data to the dataset')"""
    reward_scale: float = 1.0
    """rewards are stored as scale * r + bias (offline and online data), as in the Cal-QL/WSRL code
    (e.g. 10 and -5 for sparse 0/1 tasks); logged returns stay raw"""
    reward_bias: float = 0.0
    """see --reward-scale"""
    sparse_reward_failure_value: float | None = None
    """Cal-QL's failure reward for mc_return, after scale and bias (0.0 for raw 0/1 sparse tasks;
    -5.0 with scale 10 and bias -5)"""
    resume: bool = False
    """continue the run in --out from its newest intact checkpoint"""
    init_from: Path | None = None
    """start from the agent (weights and optimizers) of this checkpoint, e.g. an offline
    pretraining run's final.pt, so several fine-tuning recipes share one pretraining"""
    progress: bool = True
    """show progress bars"""
    save_datasets: Path | None = None
    """when set, write the run's replay as 'medium-replay' and --dataset-episodes rollouts of the
    final policy as 'medium' (Minari) into this folder"""
    dataset_episodes: int = 10
    """rollouts of the final policy for --save-datasets"""
    threads: int = 1
    """torch intra-op threads"""
    overwrite: bool = False
    """delete everything in --out first (a folder holding files is refused without it or --resume)"""
    scale: DistributedField = DistributedOptions()
    rollout_envs: int = 1
    """with --distributed ray: envs per rollout actor, stepped together (one batched policy call)"""
    rollout_chunk: int = 200
    """with --distributed ray: env steps per actor request (only whole episodes are sent back)"""
    broadcast_every: int = 100
    """with --distributed ray: learner updates between weight broadcasts to the rollout actors"""
    max_update_lag: int | None = None
    """with --distributed ray: actors pause while the learner owes more updates than this
    (default: rollout_chunk x workers)"""
    intact_curriculum: bool = False
    """range-scan LiDAR envs: train on INTACT's saliency-targeted corruptions of the scan, strength
    on INTACT's gated curriculum (robokit.intact.scan.ScanCurriculum; evaluations stay clean)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("eval_episodes", "log_every", "checkpoint_every", "keep_checkpoints",
                                     "replay_capacity", "dataset_episodes", "threads", "rollout_envs",
                                     "rollout_chunk", "broadcast_every"),
                     non_negative=("offline_steps", "online_steps", "eval_every", "warmup_steps", "max_update_lag"),
                     unit_interval=("offline_fraction",))


def config_class_for(algo: str) -> type:
    """A frozen dataclass ``TrainConfig`` + ``agent: <the algorithm's config>`` for ``algo``."""
    agent_config_cls, _ = ALGOS.get(algo)
    cls = dataclasses.make_dataclass(
        f"Train{agent_config_cls.__name__}",
        [("agent", agent_config_cls, dataclasses.field(default_factory=agent_config_cls))],
        bases=(TrainConfig,), frozen=True)
    cls.__module__ = __name__
    return cls


@dataclasses.dataclass
class Counters:
    """Progress of a run; saved in checkpoints."""

    offline_step: int = 0
    env_step: int = 0
    episodes: int = 0
    next_eval: float = 0
    next_checkpoint: int = 0
    evals_done: int = 0

    @property
    def step(self) -> int:
        """The logging x-axis: offline gradient steps + online env steps."""
        return self.offline_step + self.env_step


class Trainer:
    """Runs one algorithm through the phases; owns env, replay, logger and checkpoints."""

    def __init__(self, algo: str, config: Any) -> None:
        from robokit.envs import make_env

        torch.set_num_threads(config.threads)
        self.algo, self.config = algo, config
        self.run_dir = check_run_dir(config.out, resume=config.resume, overwrite=config.overwrite)
        self.seeds = seed_everything(config.seed)
        self.env = make_env(config.env)
        self.eval_env = make_env(config.env)
        self.obs_spec = spec_from_space(self.env.observation_space, key=f"env '{config.env}' observations")
        self.action_dim = int(self.env.action_space.shape[0])
        self.agent: Agent = make_agent(algo, self.obs_spec, self.action_dim, config.agent, seed=config.seed)
        self.obs_dim = self.agent.obs_dim
        self.phase_cfg = self._phase_settings()
        self.curriculum = self._make_curriculum()
        first_eval = config.eval_every if config.eval_every > 0 else math.inf  # eval_every 0: start and end only
        self.counters = Counters(next_eval=first_eval, next_checkpoint=config.checkpoint_every)
        self.offline_buffer = self._load_offline_buffer()
        self.online_buffer = self._new_online_buffer()
        self.mixer = self._make_mixer()
        self._episode = {"return": 0.0, "length": 0, "success": False}
        self._obs: np.ndarray | None = None
        self.summary: dict[str, Any] = {}

    # ------------------------------------------------------------------ setup
    def _phase_settings(self) -> dict[str, Any]:
        agent_cfg, cfg = self.config.agent, self.config
        fraction = agent_cfg.offline_fraction if cfg.offline_fraction is None else cfg.offline_fraction
        warmup = agent_cfg.warmup_steps if cfg.warmup_steps is None else cfg.warmup_steps
        if getattr(self.agent, "offline_only", False) and cfg.online_steps > 0:
            raise ValueError(f"--algo {self.algo} is trained offline only; pass --online-steps 0")
        if cfg.scale.enabled and getattr(self.agent, "on_policy", False):
            raise ValueError(f"--algo {self.algo} is on-policy; --distributed ray rollouts feed off-policy replay")
        if agent_cfg.warmup_actions not in ("random", "policy"):
            raise ValueError(f"warmup_actions must be 'random' or 'policy', got {agent_cfg.warmup_actions!r}")
        return {"offline_fraction": float(fraction), "warmup_steps": int(warmup),
                "warmup_actions": agent_cfg.warmup_actions,
                "batch_size": int(agent_cfg.batch_size), "utd_ratio": int(agent_cfg.utd_ratio)}

    def _make_curriculum(self) -> Any:
        """``--intact-curriculum``: wrap the training env in INTACT's scan curriculum, aimed by the
        current agent's deterministic actions; None otherwise."""
        if not self.config.intact_curriculum:
            return None
        if self.config.scale.enabled:
            raise ValueError("--intact-curriculum corrupts the trainer's own env; it does not reach --distributed ray rollouts")
        from robokit.intact.scan import ScanCurriculum, ScanCurriculumConfig

        curriculum = ScanCurriculum(lambda batch: self.agent.act(batch),
                                    ScanCurriculumConfig(start_step=self.phase_cfg["warmup_steps"]),
                                    seed=self.config.seed)
        self.env = curriculum.wrap(self.env)
        return curriculum

    @property
    def discount(self) -> float:
        return float(getattr(self.config.agent, "discount", 0.99))

    @property
    def calql(self) -> bool:
        return bool(getattr(self.config.agent, "calql", False))

    def _online_stores_mc_return(self) -> bool:
        """Online data needs mc_return when it is mixed with (mc_return-carrying) offline data,
        or when the Cal-QL bound stays on online (penalty and calibration both kept)."""
        if self._needs_mixer():
            return self.calql
        agent = self.config.agent
        return self.calql and bool(getattr(agent, "online_cql", False)) and bool(getattr(agent, "calql_online", True))

    def _load_offline_buffer(self) -> Any:
        if self.config.dataset is None:
            if self.config.offline_steps > 0 or self.phase_cfg["offline_fraction"] > 0:
                raise ValueError(f"--algo {self.algo}: offline steps ({self.config.offline_steps}) or an offline "
                                 f"fraction ({self.phase_cfg['offline_fraction']}) need --dataset")
            return None
        from robokit.data import load_episodes
        from robokit.data.replay import ReplayBuffer

        episodes = load_episodes(self.config.dataset)
        size = sum(len(ep) for ep in episodes)
        if size == 0:
            raise ValueError(f"{self.config.dataset}: the dataset has no transitions")
        if episodes[0].action_dim != self.action_dim:
            raise ValueError(f"{self.config.dataset}: actions have {episodes[0].action_dim} dims, "
                             f"env '{self.config.env}' has {self.action_dim}")
        dataset_spec = spec_from_episodes(episodes)
        if dataset_spec != stored_spec(self.obs_spec):
            raise ValueError(f"{self.config.dataset}: observations are {dataset_spec}, env '{self.config.env}' "
                             f"gives {self.obs_spec}")
        check_episodes = getattr(self.agent, "check_episodes", None)
        if check_episodes is not None:
            check_episodes([len(ep) for ep in episodes], source=self.config.dataset)
        store_returns = self.calql or getattr(self.agent, "needs_returns_to_go", False)
        obs_shape, obs_dtype = self.obs_spec.layout()
        buffer = ReplayBuffer(size, obs_shape, self.action_dim, seed=self.config.seed + 1,
                              discount=self.discount, store_mc_return=store_returns,
                              sparse_reward_failure_value=self.config.sparse_reward_failure_value,
                              obs_dtype=obs_dtype)
        for episode in episodes:
            buffer.add_episode(self._scaled(episode))
        return buffer

    def _scaled(self, episode: Any) -> Any:
        """The episode with rewards ``scale * r + bias`` (itself when the transform is the identity)."""
        if self.config.reward_scale == 1.0 and self.config.reward_bias == 0.0:
            return episode
        from robokit.data import Episode

        rewards = episode.rewards * np.float32(self.config.reward_scale) + np.float32(self.config.reward_bias)
        return Episode(episode.observations, episode.actions, rewards, episode.terminated, episode.truncated,
                       episode.infos)

    def _new_online_buffer(self) -> Any:
        from robokit.data.replay import ReplayBuffer

        obs_shape, obs_dtype = self.obs_spec.layout()
        return ReplayBuffer(min(self.config.replay_capacity, max(self.config.online_steps, 1)), obs_shape,
                            self.action_dim, seed=self.config.seed + 2, discount=self.discount,
                            store_mc_return=self._online_stores_mc_return(),
                            sparse_reward_failure_value=self.config.sparse_reward_failure_value,
                            obs_dtype=obs_dtype)

    def _storable(self, obs: Any) -> Any:
        """One step's observation as the replay stores it (text parts embedded)."""
        storable = getattr(self.obs_spec, "storable", None)
        return obs if storable is None else storable(obs)

    def _needs_mixer(self) -> bool:
        return self.offline_buffer is not None and self.phase_cfg["offline_fraction"] > 0

    def _make_mixer(self) -> Any:
        if not self._needs_mixer():
            return None
        from robokit.data.mixed import MixedReplay

        return MixedReplay(self.offline_buffer, self.online_buffer, self.phase_cfg["offline_fraction"],
                           mode=self.config.mix_mode, seed=self.config.seed + 3)

    # ------------------------------------------------------------------- loop
    def run(self) -> dict[str, Any]:
        """Run (or resume) the whole schedule; returns a summary of headline numbers."""
        from robokit.core.logging import make_logger

        if self.config.overwrite:
            clear_run_dir(self.run_dir)
        resumed_from = self._maybe_resume()
        if resumed_from is None and self.config.init_from is not None:
            self._init_agent_from(Path(self.config.init_from))
        self._attach_offline_data()
        self.logger = make_logger(self.config.logger, self.run_dir, self.config, console_every=self.config.log_every)
        started = time.perf_counter()
        try:
            self._run_offline()
            self._begin_online()
            if self.counters.env_step == 0:
                self._evaluate(force=True)  # the pretrained (or initial) policy, at env step 0
                self.summary["pretrained_return"] = self.last_eval.get("eval/return_mean")
            self._run_online()
            self._evaluate(force=True)
            self._checkpoint(final=True)
        finally:
            self.logger.close()
        self.summary.update(seconds=round(time.perf_counter() - started, 1), resumed_from=resumed_from,
                            run_dir=str(self.run_dir))
        from robokit.trainers.plotting import plot_learning_curve

        plot_learning_curve(self.run_dir / "metrics.csv", self.run_dir / "learning_curve.png",
                            title=f"{self.algo} on {self.config.env} (seed {self.config.seed})")
        if self.config.save_datasets is not None:
            self.summary["datasets"] = self.save_datasets(Path(self.config.save_datasets))
        return self.summary

    def _attach_offline_data(self) -> None:
        """Hand the whole offline dataset to agents that train several learners on it (Uni-O4)."""
        attach = getattr(self.agent, "attach_offline_data", None)
        if attach is not None and self.offline_buffer is not None:
            attach(self.offline_buffer, self.config.env, self.config.offline_steps)

    def _begin_online(self) -> None:
        """Let an agent prepare its online policy (Uni-O4 picks its start member by evaluation returns)."""
        begin = getattr(self.agent, "begin_online", None)
        if begin is None:
            return
        def score(policy: Any, episodes: int) -> float:
            return evaluate(policy, self.eval_env, episodes, seed=self.config.seed + 1)["eval/return_mean"]
        metrics = begin(score)
        if metrics:
            self.logger.log(metrics, self.counters.step)

    def _progress(self, total: int, initial: int, desc: str) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, disable=not self.config.progress, leave=False,
                    mininterval=2.0)

    def _run_offline(self) -> None:
        total = self.config.offline_steps
        if self.counters.offline_step >= total:
            return
        self.agent.set_phase("offline")
        bar = self._progress(total, self.counters.offline_step, f"{self.algo} offline")
        view = self.agent.replay_view() if hasattr(self.agent, "replay_view") else None  # windows for DT/DoC
        while self.counters.offline_step < total:
            batch = self.agent.torch_batch(self.offline_buffer.sample(self.phase_cfg["batch_size"], view=view))
            metrics = self.agent.update(batch)
            self.counters.offline_step += 1
            bar.update(1)
            step = self.counters.offline_step
            if step % self.config.log_every == 0 or step == total:
                self.logger.log({**metrics, "train/phase": PHASE_CODES["offline"], "train/env_steps": 0}, step)
            if step >= self.counters.next_eval and step < total:
                self._evaluate()
            if step >= self.counters.next_checkpoint:
                self._checkpoint()
        bar.close()
        self._checkpoint()

    def _run_online(self) -> None:
        if getattr(self.agent, "on_policy", False):
            self._run_online_on_policy()
            return
        if self.config.scale.enabled:
            from robokit.distributed.rollouts import run_distributed_online

            run_distributed_online(self)
            return
        total = self.config.online_steps
        bar = self._progress(total, self.counters.env_step, f"{self.algo} online")
        metrics: dict[str, float] = {}
        while self.counters.env_step < total:
            in_warmup = self.counters.env_step < self.phase_cfg["warmup_steps"]
            self.agent.set_phase("warmup" if in_warmup else "online")
            episode_ended = self._env_step(in_warmup)
            bar.update(1)
            if not in_warmup:
                batch = self._sample_online_batch()
                if batch is not None:
                    metrics = self.agent.update(self.agent.torch_batch(batch))
            if self.counters.env_step % self.config.log_every == 0:
                self.logger.log({**metrics, "train/phase": PHASE_CODES[self.agent.phase],
                                 "train/env_steps": self.counters.env_step}, self.counters.step)
            self._maybe_evaluate()
            if episode_ended and self.counters.step >= self.counters.next_checkpoint:
                self._checkpoint()
        bar.close()

    def _maybe_evaluate(self) -> None:
        if self.counters.next_eval <= self.counters.env_step < self.config.online_steps:
            self._evaluate()

    def _run_online_on_policy(self) -> None:
        """PPO-style loop: collect ``n_steps`` into a RolloutBuffer, GAE, ``epochs`` passes of minibatches.

        Checkpoints are taken between rollouts; a resumed run starts a fresh episode there (the
        rollout data of an on-policy agent is discarded after its update anyway).
        """
        from robokit.data.rollout import RolloutBuffer

        cfg, total = self.config.agent, self.config.online_steps
        if self.obs_spec.kind not in ("vector", "image"):
            raise ValueError(f"--algo {self.algo}: on-policy rollouts hold vector or image observations, "
                             f"env '{self.config.env}' gives {self.obs_spec.kind} observations")
        obs_shape, obs_dtype = self.obs_spec.layout()
        self.agent.set_phase("online")
        bar = self._progress(total, self.counters.env_step, f"{self.algo} online")
        while self.counters.env_step < total:
            rollout = RolloutBuffer(min(cfg.n_steps, total - self.counters.env_step), 1, obs_shape,
                                    self.action_dim, cfg.discount, cfg.gae_lambda, obs_dtype)
            while not rollout.full:
                self._collect_on_policy_step(rollout)
                bar.update(1)
                self._maybe_evaluate()
            last_value = self.agent.state_value(self._obs) if self._obs is not None else 0.0
            rollout.compute_returns_and_advantages(np.array([last_value], np.float32))
            metrics: dict[str, float] = {}
            for _ in range(cfg.epochs):
                for minibatch in rollout.minibatches(cfg.batch_size, self.seeds.np_rng):
                    metrics = self.agent.update(self.agent.torch_batch(minibatch))
            self.logger.log({**metrics, "train/phase": PHASE_CODES["online"],
                             "train/env_steps": self.counters.env_step}, self.counters.step)
            if self.counters.step >= self.counters.next_checkpoint:
                self._checkpoint()
        bar.close()

    def _collect_on_policy_step(self, rollout: Any) -> None:
        obs = self._current_obs()
        action, log_prob, value = self.agent.explore(obs)
        next_obs, reward, terminated, truncated = self._advance(action)
        time_limit = truncated and not terminated
        final_value = [self.agent.state_value(next_obs)] if time_limit else None
        rollout.add(obs[None], action[None], [self._stored_reward(reward)], [terminated], [time_limit], [value],
                    [log_prob], final_value)

    def _sample_online_batch(self) -> dict[str, Any] | None:
        """A batch for one online update, or None while there is nothing to sample.

        ``utd_ratio`` minibatches of ``batch_size`` rows one after the other; with a mixer each
        minibatch is mixed on its own (see :meth:`MixedReplay.sample`). The online buffer can be
        empty after the warm-up when it stores ``mc_return`` (Cal-QL): transitions then wait for
        their episode's end. Mixed runs then use offline rows only.
        """
        minibatch = self.phase_cfg["batch_size"]
        rows = minibatch * self.phase_cfg["utd_ratio"]
        if len(self.online_buffer) == 0:
            return self.offline_buffer.sample(rows) if self.mixer is not None else None
        if self.mixer is not None:
            return self.mixer.sample(rows, minibatch_size=minibatch)
        return self.online_buffer.sample(rows)

    def _stored_reward(self, reward: float) -> float:
        return float(reward) * self.config.reward_scale + self.config.reward_bias

    def _current_obs(self) -> np.ndarray:
        """The training env's observation, resetting it (seed from the run's RNG) between episodes."""
        if self._obs is None:
            self._obs, _ = self.env.reset(seed=int(self.seeds.np_rng.integers(2**31 - 1)))
        return self._obs

    def _env_step(self, in_warmup: bool) -> bool:
        """Act once in the training env and store the transition; True when the episode ended."""
        obs = self._current_obs()
        if in_warmup and self.phase_cfg["warmup_actions"] == "random":
            action = self.seeds.np_rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
        else:
            action = self.agent.act(obs, deterministic=False)
        next_obs, reward, terminated, truncated = self._advance(action)
        self.online_buffer.add(self._storable(obs), action, self._stored_reward(reward), self._storable(next_obs),
                               terminated, truncated)
        return terminated or truncated

    def _advance(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        """Step the training env; keep episode statistics and log them when the episode ends."""
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        terminated, truncated = bool(terminated), bool(truncated)
        self.counters.env_step += 1
        self._episode["return"] += float(reward)
        self._episode["length"] += 1
        self._episode["success"] = self._episode["success"] or bool(info.get("success", False))
        self._obs = next_obs
        if terminated or truncated:
            self.counters.episodes += 1
            row = {"train/episode_return": self._episode["return"], "train/episode_length": self._episode["length"],
                   "train/episodes": self.counters.episodes, "train/env_steps": self.counters.env_step}
            if "success" in info:
                row["train/success"] = float(self._episode["success"])
            if self.curriculum is not None:
                row.update(self.curriculum.end_episode(self._episode["success"]))
            self.logger.log(row, self.counters.step)
            self._episode = {"return": 0.0, "length": 0, "success": False}
            self._obs = None
        return next_obs, float(reward), terminated, truncated

    def _evaluate(self, force: bool = False) -> None:
        step = self.counters.step
        if not force and self.config.eval_every <= 0:
            return
        if force and getattr(self, "_last_eval_step", None) == step:
            return
        metrics = evaluate(self.agent, self.eval_env, self.config.eval_episodes, seed=self.config.seed)
        metrics["eval/env_steps"] = self.counters.env_step
        metrics["eval/offline_steps"] = self.counters.offline_step
        self.logger.log(metrics, step)
        self.last_eval, self._last_eval_step = metrics, step
        self.summary["final_return"] = metrics["eval/return_mean"]
        if "eval/success_rate" in metrics:
            self.summary["final_success_rate"] = metrics["eval/success_rate"]
        self.counters.evals_done += 1
        offline_done = self.counters.offline_step >= self.config.offline_steps
        progress = self.counters.env_step if offline_done else self.counters.offline_step
        self.counters.next_eval = (progress // self.config.eval_every + 1) * self.config.eval_every \
            if self.config.eval_every > 0 else math.inf

    # ------------------------------------------------------------ checkpoints
    def _checkpoint(self, final: bool = False) -> Path:
        step = self.counters.step
        ckpt_dir = self.run_dir / CHECKPOINT_DIR
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        replay_path = ckpt_dir / f"online_replay_{step:09d}.npz"
        self.online_buffer.save(replay_path)
        state = {
            "agent": self.agent.training_state(),
            "algo": self.algo,
            "env_id": self.config.env,
            "train_config": to_dict(self.config),
            "counters": dataclasses.asdict(self.counters),
            "rng": rng_state(self.seeds),
            "online_replay": replay_path.name,
            "offline_rng": (self.offline_buffer.rng.bit_generator.state if self.offline_buffer is not None else None),
            "mixer_rng": self.mixer.rng_state() if self.mixer is not None else None,
            "last_eval": getattr(self, "last_eval", {}),
            "last_eval_step": getattr(self, "_last_eval_step", None),
            "summary": dict(self.summary),
            **({"curriculum": self.curriculum.state_dict()} if self.curriculum is not None else {}),
        }
        path = save_step_checkpoint(self.run_dir, step, state, final=final)
        self._prune_checkpoints(ckpt_dir)
        self.counters.next_checkpoint = (step // self.config.checkpoint_every + 1) * self.config.checkpoint_every
        return path

    def _prune_checkpoints(self, ckpt_dir: Path) -> None:
        checkpoints = sorted(ckpt_dir.glob("step_*.pt"))
        keep = {p.name for p in checkpoints[-max(1, self.config.keep_checkpoints):]}
        for old in checkpoints:
            if old.name not in keep:
                old.unlink(missing_ok=True)
        live = {load_name for load_name in (p.name.replace("step_", "online_replay_").replace(".pt", ".npz")
                                            for p in ckpt_dir.glob("step_*.pt"))}
        for replay in ckpt_dir.glob("online_replay_*.npz"):
            if replay.name not in live:
                replay.unlink(missing_ok=True)

    def _maybe_resume(self) -> str | None:
        """Continue from the newest intact checkpoint (damaged ones are moved aside); say what happens."""
        if not self.config.resume:
            return None
        found = resume_point(self.run_dir, "robokit train", step_of=lambda state: Counters(**state["counters"]).step)
        if found is None:
            return None
        path, state = found
        self._restore(path, state)
        return str(path)

    def _restore(self, path: Path, state: dict[str, Any]) -> None:
        """Load agent, counters, RNG streams and replay of checkpoint ``state`` (read from ``path``)."""
        from robokit.data.replay import ReplayBuffer

        missing = [key for key in ("agent", "counters", "rng", "online_replay") if key not in state]
        if missing:
            raise KeyError(f"{path}: not a trainer checkpoint (no {', '.join(repr(k) for k in missing)} entry)")
        self.agent = agent_from_state(state["agent"])
        self.counters = Counters(**state["counters"])
        restore_rng_state(self.seeds, state["rng"])
        self.online_buffer = ReplayBuffer.load(path.parent / state["online_replay"])
        if self.offline_buffer is not None and state["offline_rng"] is not None:
            self.offline_buffer.rng.bit_generator.state = state["offline_rng"]
        self.mixer = self._make_mixer()
        if self.mixer is not None and state["mixer_rng"] is not None:
            self.mixer.set_rng_state(state["mixer_rng"])
        self.last_eval, self._last_eval_step = state["last_eval"], state["last_eval_step"]
        self.summary = dict(state["summary"])
        if self.curriculum is not None and state.get("curriculum") is not None:
            self.curriculum.load_state_dict(state["curriculum"])

    def _init_agent_from(self, path: Path) -> None:
        """Copy weights and optimizer states of a checkpoint's agent (same network shapes)."""
        state = load_checkpoint(path)
        if "agent" not in state:
            raise KeyError(f"{path}: checkpoint has no 'agent' entry")
        try:
            self.agent.load_state_dict(state["agent"]["modules"])
        except RuntimeError as err:
            raise ValueError(f"{path}: its networks do not fit --algo {self.algo} with this config: {err}") from err
        for name, optimizer in self.agent.optimizers().items():
            if name in state["agent"]["optimizers"]:
                optimizer.load_state_dict(state["agent"]["optimizers"][name])
        self.summary["initialised_from"] = str(path)

    # ---------------------------------------------------------------- datasets
    def save_datasets(self, out_dir: Path) -> dict[str, str]:
        """Write the online replay as ``medium-replay`` and final-policy rollouts as ``medium`` (Minari)."""
        from robokit.data import save_minari
        from robokit.trainers.datasets import replay_to_episodes, rollout_episodes

        out_dir = out_dir.resolve()  # absolute paths in the summary and the dataset card

        replay = replay_to_episodes(self.online_buffer, self.config.reward_scale, self.config.reward_bias)
        medium = rollout_episodes(self.agent, self.eval_env, self.config.dataset_episodes,
                                  seed=self.config.seed + 777)
        paths = {}
        for name, episodes in (("medium-replay", replay), ("medium", medium)):
            paths[name] = str(save_minari(episodes, out_dir / name, env_id=self.config.env))
        atomic_write_text(out_dir / "README.md", dataset_card(self.algo, self.config, replay, medium))
        return paths


def dataset_card(algo: str, config: Any, replay: list, medium: list) -> str:
    """A short Markdown card describing the two datasets of the recipe."""
    def stats(episodes: list) -> str:
        returns = np.array([ep.total_return for ep in episodes])
        return (f"{len(episodes)} episodes, {sum(len(ep) for ep in episodes)} transitions, "
                f"return mean {returns.mean():.2f} +- {returns.std():.2f}")

    return (f"# Datasets for {config.env}\n\nMade by `robokit train --algo {algo} --save-datasets` "
            f"with seed {config.seed}, {config.online_steps} online steps (config.yaml of the run has the rest).\n\n"
            f"- `medium-replay`: the whole online replay of that run: {stats(replay)}\n"
            f"- `medium`: {len(medium)} rollouts of the final stochastic policy: {stats(medium)}\n")


def train(algo: str, config: Any) -> dict[str, Any]:
    """Build a :class:`Trainer` for ``algo`` and run it."""
    return Trainer(algo, config).run()
