"""RoboFuME's reset-free online loop: forward and backward instructions on one policy, a success model
as the reward and as the switch.

One env, never reset by the loop except through its own reset-free ``reset()`` (the env restores
its physical state only every ``reset_every`` steps, a "hard reset", see docs/robofume_envs.md):

1. act with the current instruction (``env.unwrapped.set_instruction``; the observation's
   ``"task"`` one-hot says which) until the success model says success, ``P(success | image,
   instruction) >= threshold`` (0.5: the paper's ``P(yes) > P(no)``), or the time limit;
2. store each transition with reward ``P`` (the model's output) and ``terminated`` = the model's
   success decision (``truncated`` at the time limit);
3. switch to the other instruction (forward <-> backward) and call ``env.reset()``, which keeps
   the state unless a hard reset is due;
4. after every env step, one agent update on a batch mixing online rows with the offline data
   (``offline_fraction`` of the agent's config; Cal-QL keeps ``mc_return`` on both).

The env's own reward (the simulator's truth) is never used for learning; ``info["success"]``
is used only to log the success model's false positives and false negatives
(:class:`Confusion`) and to score evaluations. ``fine_tune "calql"`` keeps the Cal-QL agent as
pretrained (penalty and calibration online, the paper's choice); ``"sac"`` switches the same
networks to plain SAC updates (no CQL penalty, no Cal-QL bound, no max-target backup), the
ablation. Evaluation: ``eval_episodes`` episodes of the forward instruction from a hard reset
(``reset_every 1``) in a second env instance, deterministic policy, success by the simulator.

Metrics: ``train/`` (env steps, sub-episodes, hard resets, forward success by model and by
truth, the model's FP/FN rates), ``eval/forward_success``, ``losses/`` from the agent.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robokit.core.atomic import atomic_write_text
from robokit.core.config import ConfigError, check_ranges

#: what ``--reward-model`` takes besides a saved model's path
ORACLE = "oracle"


def success_probability(model: Any, obs: dict[str, Any], info: dict[str, Any], instruction: str) -> float:
    """P(success) of one step from a :class:`~robokit.robofume.success.SuccessModel`:
    ``model.from_info(info)`` when the model reads the simulator (the oracle),
    else ``model.predict_proba(obs["image"][None], [instruction])[0]``."""
    from_info = getattr(model, "from_info", None)
    if from_info is not None:
        return float(from_info(info))
    return float(np.asarray(model.predict_proba(np.asarray(obs["image"])[None], [instruction])).reshape(-1)[0])


@dataclasses.dataclass
class Confusion:
    """The success model's decisions against the simulator's truth, per env step."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, predicted: bool, truth: bool) -> None:
        name = ("tp" if truth else "fp") if predicted else ("fn" if truth else "tn")
        setattr(self, name, getattr(self, name) + 1)

    def rates(self) -> dict[str, float]:
        """``fp_rate`` = FP / true negatives seen, ``fn_rate`` = FN / true positives seen (nan when none)."""
        from robokit.robofume.reward import confusion_rates

        rates = confusion_rates(self.tp, self.fp, self.tn, self.fn)
        return {"train/reward_fp_rate": rates["fp_rate"], "train/reward_fn_rate": rates["fn_rate"],
                "train/reward_fp": float(self.fp), "train/reward_fn": float(self.fn)}


@dataclasses.dataclass
class LoopCounters:
    """Progress of a fine-tuning run; saved in checkpoints."""

    env_step: int = 0
    sub_episodes: int = 0
    forward_attempts: int = 0
    forward_model_successes: int = 0
    forward_true_successes: int = 0
    switches_by_model: int = 0
    hard_resets: int = 0
    instruction: int = 0
    next_eval: int = 0
    next_checkpoint: int = 0
    confusion: dict[str, int] = dataclasses.field(default_factory=lambda: dataclasses.asdict(Confusion()))


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Reset-free fine-tuning of a pretrained RoboFuME policy (``robokit robofume finetune``)."""

    env: str = "robokit/PushBackForth-v0"
    """reset-free env id (dict observations with image, proprio, task; set_instruction)"""
    pretrained: Path | None = None
    """final.pt of `robokit robofume pretrain` (required on the command line)"""
    reward_model: str = ORACLE
    """a saved success model (`robokit robofume reward` output) or 'oracle' (the simulator's truth)"""
    datasets: tuple[Path, ...] = ()
    """offline data kept in the replay during fine-tuning (e.g. the target demos); none: online only"""
    fine_tune: Literal["calql", "sac"] = "calql"
    """'calql': keep the pretrained Cal-QL updates online (RoboFuME); 'sac': plain SAC updates (ablation)"""
    online_steps: int = 5_000
    """env steps of reset-free interaction"""
    threshold: float = 0.5
    """success when P(success) >= threshold (0.5 = P(yes) > P(no))"""
    forward: int = 0
    """index of the forward (task) instruction in env.unwrapped.instructions"""
    backward: int = 1
    """index of the backward (reset) instruction"""
    reset_every: int | None = None
    """override the env's hard-reset period in env steps (None: the env's default)"""
    image_size: int | None = None
    """override the env's image side in pixels (None: the env's default, 64)"""
    privileged_proprio: bool = False
    """append the object's state to proprio (the env's option; the datasets must be made with it too)"""
    eval_every: int = 1_000
    """env steps between forward-task evaluations (also at the start and the end)"""
    eval_episodes: int = 10
    """forward-task episodes per evaluation, each from a hard reset"""
    seed: int = 0
    """seed of env, exploration and sampling"""
    out: Path = Path("runs/robofume/finetune")
    """run folder (refused when it holds files, unless --resume or --overwrite)"""
    logger: tuple[Literal["console", "csv", "wandb", "none"], ...] = ("console", "csv")
    """where metrics go"""
    log_every: int = 250
    """env steps between training-metric rows"""
    checkpoint_every: int = 2_000
    """env steps between checkpoints (taken at the next sub-episode end)"""
    resume: bool = False
    """continue from the newest intact checkpoint (the env restarts from a hard reset)"""
    overwrite: bool = False
    """delete everything in --out first"""
    progress: bool = True
    """show a progress bar"""
    threads: int = 1
    """torch intra-op threads"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("eval_episodes", "log_every", "checkpoint_every", "threads", "reset_every",
                                     "image_size"),
                     non_negative=("online_steps", "eval_every", "forward", "backward"),
                     unit_interval=("threshold",))
        if self.forward == self.backward:
            raise ConfigError(f"--forward and --backward name the same instruction ({self.forward})")
        if self.fine_tune not in ("calql", "sac"):
            raise ConfigError(f"--fine-tune must be 'calql' or 'sac', got {self.fine_tune!r}")


def env_options(config: Any, **overrides: Any) -> dict[str, Any]:
    """Constructor arguments of the reset-free env from ``config.reset_every`` / ``config.image_size`` /
    ``config.privileged_proprio`` (only those set: None and False leave the env's defaults)."""
    options = {key: getattr(config, key, None) for key in ("reset_every", "image_size", "privileged_proprio")}
    return {key: value for key, value in {**options, **overrides}.items() if value not in (None, False)}


def forward_success(agent: Any, env: Any, forward: int, episodes: int, seed: int = 0) -> dict[str, float]:
    """``eval/forward_success`` (simulator truth) and ``eval/return_mean`` of ``agent``'s deterministic
    policy on instruction ``forward`` over ``episodes`` episodes; ``env`` must reset for real on every
    ``reset()`` (``reset_every 1``)."""
    from robokit.trainers.evaluation import evaluate

    env.unwrapped.set_instruction(forward)
    metrics = evaluate(agent, env, episodes, seed=seed)
    return {"eval/forward_success": metrics.get("eval/success_rate", float("nan")),
            "eval/return_mean": metrics["eval/return_mean"]}


def as_sac_fine_tuning(agent: Any) -> Any:
    """The plain-SAC ablation: the same networks, updated without CQL penalty, Cal-QL bound or
    max-target backup online (a CQL-family agent; its config is replaced, its weights kept)."""
    if not hasattr(agent.config, "online_cql"):
        raise ValueError(f"--fine-tune sac needs a CQL/Cal-QL-family pretrained agent, got '{agent.name}'")
    agent.config = dataclasses.replace(agent.config, online_cql=False, calql_online=False,
                                       cql_max_target_backup=False, bc_online=False)
    return agent


def load_success_model(spec: str) -> Any:
    """``"oracle"`` -> :class:`~robokit.robofume.reward.OracleReward`; a path -> the saved reward model."""
    from robokit.robofume.reward import OracleReward
    from robokit.robofume.reward import load_success_model as load_saved

    return OracleReward() if spec == ORACLE else load_saved(Path(spec))


class ResetFreeLoop:
    """The loop of the module docstring. ``agent``: a pretrained agent (or one built by the caller);
    ``success_model``: a :class:`~robokit.robofume.success.SuccessModel`, or the oracle (``from_info(info)``)."""

    def __init__(self, config: FinetuneConfig, agent: Any, success_model: Any, offline_buffer: Any = None) -> None:
        import torch

        from robokit.envs import make_env
        from robokit.nets.obs_spec import spec_from_space

        torch.set_num_threads(config.threads)
        self.config = config
        self.env = make_env(config.env, **env_options(config))
        self.eval_env = make_env(config.env, **env_options(config, reset_every=1))
        self.instructions = tuple(self.env.unwrapped.instructions)
        for flag in ("forward", "backward"):
            if getattr(config, flag) >= len(self.instructions):
                raise ValueError(f"--{flag} {getattr(config, flag)}: env '{config.env}' has "
                                 f"{len(self.instructions)} instructions {list(self.instructions)}")
        self.spec = spec_from_space(self.env.observation_space, key=f"env '{config.env}' observations")
        if agent.obs_spec != self.spec:
            raise ValueError(f"the pretrained agent expects observations {agent.obs_spec}, env '{config.env}' "
                             f"gives {self.spec}")
        self.agent = as_sac_fine_tuning(agent) if config.fine_tune == "sac" else agent
        self.model = success_model
        self.offline_buffer = offline_buffer
        self.counters = LoopCounters(instruction=config.forward, next_checkpoint=config.checkpoint_every)
        self.online_buffer = self._new_online_buffer()
        self.mixer = self._make_mixer()
        self._obs: Any = None
        self._episode = {"model_success": False, "true_success": False}
        self._hard_base = 0
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ replay
    def _new_online_buffer(self) -> Any:
        from robokit.data.replay import ReplayBuffer

        shape, dtype = self.spec.layout()
        return ReplayBuffer(max(self.config.online_steps, 1), shape, self.agent.action_dim,
                            seed=self.config.seed + 2, discount=float(getattr(self.agent.config, "discount", 0.99)),
                            store_mc_return=True, obs_dtype=dtype)

    def _make_mixer(self) -> Any:
        fraction = float(getattr(self.agent.config, "offline_fraction", 0.0))
        if self.offline_buffer is None or fraction <= 0:
            return None
        from robokit.data.mixed import MixedReplay

        return MixedReplay(self.offline_buffer, self.online_buffer, fraction, seed=self.config.seed + 3)

    def _batch(self) -> dict[str, Any] | None:
        size = int(self.agent.config.batch_size)
        if len(self.online_buffer) == 0:
            return self.offline_buffer.sample(size) if self.mixer is not None else None
        return self.mixer.sample(size) if self.mixer is not None else self.online_buffer.sample(size)

    # -------------------------------------------------------------------- env
    @property
    def instruction(self) -> str:
        return self.instructions[self.counters.instruction]

    def _env_hard_resets(self) -> int:
        return int(getattr(self.env.unwrapped, "hard_resets", 0))

    def _start_sub_episode(self, seed: int | None = None, hard: bool = False) -> None:
        self.env.unwrapped.set_instruction(self.counters.instruction)
        options = {"hard": True} if hard else None
        self._obs, _ = self.env.reset(seed=seed, options=options)
        self._episode = {"model_success": False, "true_success": False}

    def _sync_hard_resets(self) -> None:
        self.counters.hard_resets = self._hard_base + self._env_hard_resets()

    def step(self) -> tuple[bool, dict[str, float]]:
        """One env step, its transition, the sub-episode bookkeeping; returns (sub-episode ended, row)."""
        obs, instruction = self._obs, self.instruction
        action = self.agent.act(obs, deterministic=False)
        next_obs, _, env_terminated, truncated, info = self.env.step(action)
        probability = success_probability(self.model, next_obs, info, instruction)
        predicted, truth = probability >= self.config.threshold, bool(info.get("success", False))
        confusion = Confusion(**self.counters.confusion)
        confusion.add(predicted, truth)
        self.counters.confusion = dataclasses.asdict(confusion)
        ended = predicted or bool(env_terminated) or bool(truncated)
        self.online_buffer.add(self.spec.storable(obs), action, probability, self.spec.storable(next_obs),
                               terminated=predicted, truncated=ended and not predicted, task=instruction)
        self.counters.env_step += 1
        self._episode["model_success"] |= predicted
        self._episode["true_success"] |= truth
        self._obs = next_obs
        if not ended:
            return False, {}
        return True, self._end_sub_episode(predicted)

    def _end_sub_episode(self, by_model: bool) -> dict[str, float]:
        """Count the sub-episode, switch forward <-> backward, let the env soft-reset (or hard-reset when due)."""
        counters, forward = self.counters, self.counters.instruction == self.config.forward
        counters.sub_episodes += 1
        counters.switches_by_model += int(by_model)
        if forward:
            counters.forward_attempts += 1
            counters.forward_model_successes += int(self._episode["model_success"])
            counters.forward_true_successes += int(self._episode["true_success"])
        row = {"train/sub_episodes": counters.sub_episodes, "train/forward": float(forward),
               "train/success_by_model": float(self._episode["model_success"]),
               "train/success_true": float(self._episode["true_success"])}
        counters.instruction = self.config.backward if forward else self.config.forward
        self._start_sub_episode()
        self._sync_hard_resets()
        return {**row, "train/hard_resets": counters.hard_resets, "train/env_steps": counters.env_step}

    # ------------------------------------------------------------------- eval
    def evaluate(self) -> dict[str, float]:
        """Forward-instruction success of the deterministic policy from hard resets (simulator truth)."""
        metrics = forward_success(self.agent, self.eval_env, self.config.forward, self.config.eval_episodes,
                                  self.config.seed)
        return {**metrics, "eval/env_steps": float(self.counters.env_step),
                "eval/hard_resets": float(self.counters.hard_resets)}

    # -------------------------------------------------------------------- run
    def run(self, logger: Any, checkpoint: Any = None, progress: bool = False) -> dict[str, Any]:
        """Interact for ``online_steps`` env steps (from ``counters.env_step``); ``checkpoint(loop)`` is
        called at sub-episode ends when one is due. Returns the summary."""
        from tqdm import tqdm

        config, counters = self.config, self.counters
        self.agent.set_phase("online")
        self._hard_base = counters.hard_resets
        seed = int(np.random.default_rng(config.seed).integers(2**31 - 1))
        self._start_sub_episode(seed=seed, hard=True)  # a fresh (or resumed) run starts from a hard reset
        self._sync_hard_resets()
        if counters.env_step == 0:
            self._log_eval(logger)
        bar = tqdm(total=config.online_steps, initial=counters.env_step, desc=f"robofume finetune ({config.fine_tune})",
                   disable=not progress, leave=False, mininterval=2.0)
        metrics: dict[str, float] = {}
        started = time.perf_counter()
        while counters.env_step < config.online_steps:
            ended, row = self.step()
            bar.update(1)
            batch = self._batch()
            if batch is not None:
                metrics = self.agent.update(self.agent.torch_batch(batch))
            if ended:
                logger.log({**row, **Confusion(**counters.confusion).rates()}, counters.env_step)
            if counters.env_step % config.log_every == 0:
                logger.log({**metrics, "train/env_steps": counters.env_step}, counters.env_step)
            if config.eval_every and counters.env_step >= counters.next_eval and counters.env_step < config.online_steps:
                self._log_eval(logger)
            if ended and checkpoint is not None and counters.env_step >= counters.next_checkpoint:
                checkpoint(self)
                counters.next_checkpoint = (counters.env_step // config.checkpoint_every + 1) * config.checkpoint_every
        bar.close()
        final = self._log_eval(logger)
        return self.summary(final, time.perf_counter() - started)

    def _log_eval(self, logger: Any) -> dict[str, float]:
        metrics = self.evaluate()
        logger.log(metrics, self.counters.env_step)
        self.history.append({"env_steps": float(self.counters.env_step), **metrics})
        every = self.config.eval_every
        self.counters.next_eval = (self.counters.env_step // every + 1) * every if every else 2**62
        return metrics

    def summary(self, final: dict[str, float], seconds: float) -> dict[str, Any]:
        counters = self.counters
        confusion = Confusion(**counters.confusion)
        return {"env_steps": counters.env_step, "sub_episodes": counters.sub_episodes,
                "hard_resets": counters.hard_resets, "forward_attempts": counters.forward_attempts,
                "forward_true_successes": counters.forward_true_successes,
                "final_forward_success": final["eval/forward_success"],
                "initial_forward_success": self.history[0]["eval/forward_success"] if self.history else None,
                **{key.removeprefix("train/"): value for key, value in confusion.rates().items()},
                "reward_confusion": dataclasses.asdict(confusion),
                "seconds": round(seconds, 1)}

    # ------------------------------------------------------------- checkpoint
    def state(self, replay_path: Path) -> dict[str, Any]:
        """Checkpoint state: agent, counters, replay file name, sampler streams (the env itself restarts
        from a hard reset when resumed: a physical state cannot be saved)."""
        self.online_buffer.save(replay_path)
        return {"agent": self.agent.training_state(), "counters": dataclasses.asdict(self.counters),
                "online_replay": replay_path.name, "history": list(self.history),
                "offline_rng": self.offline_buffer.rng.bit_generator.state if self.offline_buffer is not None else None,
                "mixer_rng": self.mixer.rng_state() if self.mixer is not None else None,
                "step": self.counters.env_step}

    def restore(self, path: Path, state: dict[str, Any]) -> None:
        from robokit.algos import agent_from_state
        from robokit.data.replay import ReplayBuffer

        agent = agent_from_state(state["agent"])
        self.agent = as_sac_fine_tuning(agent) if self.config.fine_tune == "sac" else agent
        self.counters = LoopCounters(**state["counters"])
        self.online_buffer = ReplayBuffer.load(path.parent / state["online_replay"])
        self.history = list(state["history"])
        if self.offline_buffer is not None and state["offline_rng"] is not None:
            self.offline_buffer.rng.bit_generator.state = state["offline_rng"]
        self.mixer = self._make_mixer()
        if self.mixer is not None and state["mixer_rng"] is not None:
            self.mixer.set_rng_state(state["mixer_rng"])

    def close(self) -> None:
        self.env.close()
        self.eval_env.close()


def finetune(config: FinetuneConfig, agent: Any = None, success_model: Any = None) -> dict[str, Any]:
    """Run (or resume) a fine-tuning run in ``config.out``: loads ``config.pretrained`` and
    ``config.reward_model`` unless ``agent`` / ``success_model`` are given; returns the summary."""
    from robokit.algos import load_agent
    from robokit.core.runs import CHECKPOINT_DIR, save_step_checkpoint, start_run
    from robokit.core.seeding import restore_rng_state, rng_state

    if agent is None:
        if config.pretrained is None:
            raise ConfigError("--pretrained is required (final.pt of `robokit robofume pretrain`)")
        agent = load_agent(config.pretrained).train()
    success_model = success_model if success_model is not None else load_success_model(config.reward_model)
    offline = None
    if config.datasets:
        from robokit.robofume.pretrain import load_offline_data

        offline, _, _ = load_offline_data(config.datasets, float(getattr(agent.config, "discount", 0.99)),
                                          seed=config.seed + 1)
    loop = ResetFreeLoop(config, agent, success_model, offline)
    run = start_run(config, "robokit robofume finetune", console_every=config.log_every)
    if run.resumed is not None:
        path, state = run.resumed
        loop.restore(path, state)
        restore_rng_state(run.seeds, state["rng"])

    def checkpoint(current: ResetFreeLoop, final: bool = False) -> None:
        step = current.counters.env_step
        replay = run.out / CHECKPOINT_DIR / f"online_replay_{step:09d}.npz"
        replay.parent.mkdir(parents=True, exist_ok=True)
        save_step_checkpoint(run.out, step, {**current.state(replay), "rng": rng_state(run.seeds),
                                             "env_id": config.env, "algo": current.agent.name}, final=final)

    try:
        summary = loop.run(run.logger, checkpoint, progress=config.progress)
        checkpoint(loop, final=True)
    finally:
        run.logger.close()
        loop.close()
    atomic_write_text(run.out / "summary.json", json.dumps({**summary, "history": loop.history}, indent=1))
    return summary
