"""RoboFuME pretraining: Cal-QL + a matched-scale BC term on prior + target data, task-conditioned.

The offline data are robokit datasets (Minari folders) whose observations are dicts
``{"image": (H, W, 3) uint8, "proprio": (P,), "task": (K,) one-hot}``; every dataset named in
``--datasets`` (prior tasks, target forward, target backward) goes into one replay with its
episodes' task tags and Monte-Carlo returns (Cal-QL's bound). The agent is robokit's
``robofume`` algorithm (:class:`robokit.algos.cql.RoboFuME`: Cal-QL with ``bc_weight 1``,
``bc_scale matched``), whose dict encoder reads the task one-hot, so one policy serves every
instruction. ``--algo calql`` (no BC) and ``--algo bc`` (BC on the same demos, the paper's
baseline) train on the same replay.

The run folder follows :mod:`robokit.core.runs` (config.yaml, metrics.csv, checkpoints/,
final.pt; ``--resume``, ``--overwrite``); ``final.pt`` holds the agent, so ``robokit eval`` and
``robokit robofume finetune --pretrained`` load it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robokit.core.config import ConfigError, check_ranges

#: algorithms ``robokit robofume pretrain --algo`` accepts
PRETRAIN_ALGOS = ("robofume", "calql", "bc")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Offline pretraining of the RoboFuME policy (the agent's own options are under ``--agent.``)."""

    datasets: tuple[Path, ...] = ()
    """Minari dataset folders (prior data, target forward/backward demos) or a make-data folder (all its parts)"""
    steps: int = 20_000
    """gradient steps"""
    seed: int = 0
    """seed of networks and batch sampling"""
    out: Path = Path("runs/robofume/pretrain")
    """run folder (refused when it holds files, unless --resume or --overwrite)"""
    logger: tuple[Literal["console", "csv", "wandb", "none"], ...] = ("console", "csv")
    """where metrics go"""
    log_every: int = 500
    """steps between metric rows"""
    checkpoint_every: int = 5_000
    """steps between checkpoints"""
    resume: bool = False
    """continue from the newest intact checkpoint in --out"""
    overwrite: bool = False
    """delete everything in --out first"""
    progress: bool = True
    """show a progress bar"""
    threads: int = 1
    """torch intra-op threads"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("steps", "log_every", "checkpoint_every", "threads"))
        if not self.datasets:
            raise ConfigError("--datasets needs at least one dataset folder (prior and target data)")


def pretrain_config_class(algo: str) -> type:
    """``PretrainConfig`` + ``agent: <the algorithm's config>`` for ``algo`` (one of :data:`PRETRAIN_ALGOS`)."""
    from robokit.algos import ALGOS

    if algo not in PRETRAIN_ALGOS:
        raise ConfigError(f"unknown --algo '{algo}' (one of {', '.join(PRETRAIN_ALGOS)})")
    agent_cls, _ = ALGOS.get(algo)
    cls = dataclasses.make_dataclass(f"Pretrain{agent_cls.__name__}",
                                     [("agent", agent_cls, dataclasses.field(default_factory=agent_cls))],
                                     bases=(PretrainConfig,), frozen=True)
    cls.__module__ = __name__
    return cls


def expand_datasets(paths: Sequence[Path]) -> list[Path]:
    """Dataset folders, with a ``robokit robofume make-data`` root (it holds ``manifest.json``) replaced
    by its parts (prior, target_forward, target_backward: those present)."""
    from robokit.robofume.data import PARTS

    out: list[Path] = []
    for path in map(Path, paths):
        is_root = (path / "manifest.json").is_file()
        out += [path / part for part in PARTS if (path / part).is_dir()] if is_root else [path]
    return out


def load_offline_data(paths: Sequence[Path], discount: float, seed: int = 0,
                      store_mc_return: bool = True) -> tuple[Any, Any, int]:
    """All episodes of ``paths`` in one replay: returns ``(ReplayBuffer, ObsSpec, action_dim)``.

    Raises:
        ValueError: naming the dataset whose observations or actions differ from the first one's,
            or an empty dataset.
    """
    from robokit.data import load_episodes
    from robokit.data.replay import ReplayBuffer
    from robokit.nets.obs_spec import spec_from_episodes

    paths = expand_datasets(paths)
    loaded, spec, action_dim = [], None, None
    for path in paths:
        episodes = load_episodes(path)
        if not episodes or sum(len(ep) for ep in episodes) == 0:
            raise ValueError(f"{path}: the dataset has no transitions")
        this_spec, this_dim = spec_from_episodes(episodes), episodes[0].action_dim
        if spec is None:
            spec, action_dim = this_spec, this_dim
        elif (this_spec, this_dim) != (spec, action_dim):
            raise ValueError(f"{path}: observations {this_spec} with {this_dim}-dim actions, but {paths[0]} has "
                             f"{spec} with {action_dim}-dim actions")
        loaded.extend(episodes)
    shape, dtype = spec.layout()
    buffer = ReplayBuffer(sum(len(ep) for ep in loaded), shape, action_dim, seed=seed, discount=discount,
                          store_mc_return=store_mc_return, sparse_reward_failure_value=None, obs_dtype=dtype)
    for episode in loaded:
        buffer.add_episode(episode)
    return buffer, spec, int(action_dim)


def pretrain(algo: str, config: Any) -> dict[str, Any]:
    """Run (or resume) ``config.steps`` offline updates of ``algo`` on ``config.datasets``; returns a summary.

    Writes ``checkpoints/step_*.pt`` every ``checkpoint_every`` steps and ``final.pt`` at the end
    (``{"agent", "step", "rng", "offline_rng", "algo", "datasets"}``).
    """
    import torch
    from tqdm import tqdm

    from robokit.algos import agent_from_state, make_agent
    from robokit.core.runs import save_step_checkpoint, start_run
    from robokit.core.seeding import restore_rng_state, rng_state

    torch.set_num_threads(config.threads)
    discount = float(getattr(config.agent, "discount", 0.99))
    buffer, spec, action_dim = load_offline_data(config.datasets, discount, seed=config.seed + 1,
                                                 store_mc_return=algo != "bc")
    agent, step = make_agent(algo, spec, action_dim, config.agent, seed=config.seed), 0
    run = start_run(config, "robokit robofume pretrain", console_every=config.log_every)  # bad data: nothing written
    if run.resumed is not None:
        _, state = run.resumed
        agent, step = agent_from_state(state["agent"]), int(state["step"])
        restore_rng_state(run.seeds, state["rng"])
        buffer.rng.bit_generator.state = state["offline_rng"]
    agent.set_phase("offline")

    def state() -> dict[str, Any]:
        return {"agent": agent.training_state(), "step": step, "rng": rng_state(run.seeds),
                "offline_rng": buffer.rng.bit_generator.state, "algo": algo,
                "datasets": [str(p) for p in config.datasets]}

    started, metrics = time.perf_counter(), {}
    bar = tqdm(total=config.steps, initial=step, desc=f"robofume pretrain ({algo})", disable=not config.progress,
               leave=False, mininterval=2.0)
    try:
        while step < config.steps:
            metrics = agent.update(agent.torch_batch(buffer.sample(config.agent.batch_size)))
            step += 1
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                run.logger.log({**metrics, "train/offline_steps": step}, step)
            if step % config.checkpoint_every == 0 and step < config.steps:
                save_step_checkpoint(run.out, step, state())
        save_step_checkpoint(run.out, step, state(), final=True)
    finally:
        bar.close()
        run.logger.close()
    return {"algo": algo, "steps": step, "transitions": len(buffer), "final": str(run.out / "final.pt"),
            "seconds": round(time.perf_counter() - started, 1),
            **{key: float(np.round(value, 4)) for key, value in metrics.items() if key.startswith("losses/")}}
