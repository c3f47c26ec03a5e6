"""The optimisation loop shared by pretraining and BC from scratch on pixels.

Optimiser as the official code (``imitation_pretraining/algs/base.py``): AdamW (weight decay
1e-4, optax's default) at ``lr * batch_size / 256`` with a cosine decay to 0 over the run's
steps. Each step draws a :class:`~robokit.pretrain.data.PairSampler` batch, shifts the uint8
frames (when ``shift_pad > 0``) and takes one gradient step on ``objective.loss``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from robokit.core.config import ConfigError, check_ranges
from robokit.pretrain.data import Demos, PairSampler, load_demos, to_torch
from robokit.pretrain.objectives import (
    OBJECTIVES,
    EncoderOptions,
    ObjectiveName,
    ObjectiveOptions,
    PairBatch,
    PixelEncoder,
    augment_pair,
    build_objective,
    encoder_from_description,
)

WEIGHT_DECAY = 1e-4  # optax.adamw's default, used by the official code


def make_optimizer(parameters: Iterable[nn.Parameter], lr: float, batch_size: int, steps: int,
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW at ``lr * batch_size / 256`` and its cosine decay to 0 over ``steps`` (optax's
    ``cosine_decay_schedule``)."""
    optimizer = torch.optim.AdamW(parameters, lr=lr * batch_size / 256, weight_decay=WEIGHT_DECAY)
    total = max(1, int(steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)))
    return optimizer, schedule


class ObjectiveTrainer:
    """Steps an objective on sampled pairs; its state (weights, optimiser, schedule, RNGs) resumes exactly."""

    def __init__(self, objective: nn.Module, sampler: PairSampler, batch_size: int, steps: int, lr: float,
                 shift_pad: int, seed: int) -> None:
        self.objective = objective
        self.sampler = sampler
        self.batch_size, self.steps, self.shift_pad = int(batch_size), int(steps), int(shift_pad)
        self.optimizer, self.schedule = make_optimizer(objective.parameters(), lr, batch_size, steps)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.step = 0

    def next_batch(self) -> PairBatch:
        """The data side of a step: a sampled batch of pairs as tensors, shifted when ``shift_pad > 0``."""
        return augment_pair(to_torch(self.sampler.sample(self.batch_size)), self.shift_pad, self.generator)

    def train_step(self) -> dict[str, float]:
        """One gradient step; returns the objective's metrics and ``train/lr``."""
        self.objective.train()
        loss, metrics = self.objective.loss(self.next_batch())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        self.step += 1
        return {**metrics, "train/lr": self.optimizer.param_groups[0]["lr"]}

    def run(self, until: int | None = None) -> dict[str, float]:
        """Step up to ``until`` (default: all steps); returns the last step's metrics."""
        metrics: dict[str, float] = {}
        while self.step < (self.steps if until is None else min(until, self.steps)):
            metrics = self.train_step()
        return metrics

    def state_dict(self) -> dict:
        return {"objective": self.objective.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "step": self.step,
                "torch_gen": self.generator.get_state(), "sampler_rng": self.sampler.rng_state(),
                "torch_global": torch.get_rng_state()}  # dropout draws from the global generator

    def load_state_dict(self, state: dict) -> None:
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.step = int(state["step"])
        self.generator.set_state(state["torch_gen"])
        self.sampler.set_rng_state(state["sampler_rng"])
        torch.set_rng_state(state["torch_global"])


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """``robokit pretrain``: fit an encoder with one objective on a multi-context demo corpus."""

    objective: ObjectiveName
    """inverse_dynamics | bc | contrastive | forward | reconstruction"""
    data: Path
    """the pretraining corpus: a robokit replay file of uint8-image demos (see docs/pretrain.md)"""
    out: Path
    """run folder (config.yaml, metrics.csv, checkpoints/, final.pt)"""
    steps: int = 10_000
    """gradient steps (official num_steps 10000)"""
    batch_size: int = 256
    """pairs per step (official 256; 128 for reconstruction)"""
    lr: float = 1e-3
    """AdamW learning rate before the batch-size scaling and cosine decay (official 1e-3)"""
    nstep: int | None = None
    """k of (o_t, o_{t+k}); default 1, and 0 (two augmentations of o_t) for SimCLR"""
    random_k: bool = False
    """draw each pair's k uniformly in [1, nstep]"""
    augment: Literal["auto", "shift", "none"] = "auto"
    """random shift of the frames (auto: shift, none for forward / reconstruction as the official code)"""
    shift_pad: int = 6
    """random-shift padding in pixels (official 8 at 84 px; 6 at 64 px keeps the ratio)"""
    encoder: EncoderOptions = EncoderOptions()
    objective_options: ObjectiveOptions = ObjectiveOptions()
    seed: int = 0
    """seeds weights, sampling and augmentation"""
    checkpoint_every: int = 1000
    """steps between checkpoints/step_*.pt (the last step always writes one, and final.pt)"""
    log_every: int = 50
    """steps between metrics.csv rows"""
    progress: bool = True
    """show a progress bar"""
    overwrite: bool = False
    """replace the files of a previous run in --out (without it, or --resume, a non-empty --out is refused)"""
    resume: bool = False
    """continue from the newest intact checkpoint in --out/checkpoints"""
    logger: tuple[Literal["console", "csv", "wandb", "none"], ...] = ("csv",)
    """logger adapters (as robokit train)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("steps", "batch_size", "lr", "checkpoint_every", "log_every"),
                     non_negative=("shift_pad", "nstep"))
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"--objective: unknown objective {self.objective!r}; choose from {', '.join(OBJECTIVES)}")

    @property
    def k(self) -> int:
        """The pair distance used."""
        if self.nstep is not None:
            return self.nstep
        simclr = self.objective == "contrastive" and not self.objective_options.include_action
        return 0 if simclr or self.objective == "reconstruction" else 1

    @property
    def pad(self) -> int:
        """The random-shift padding used (0: no augmentation)."""
        if self.augment == "none" or (self.augment == "auto" and self.objective in ("forward", "reconstruction")):
            return 0
        return self.shift_pad


def build(cfg: PretrainConfig, demos: Demos) -> tuple[PixelEncoder, nn.Module, ObjectiveTrainer]:
    """Encoder, objective and trainer for ``cfg`` on ``demos``."""
    options = cfg.objective_options
    if cfg.objective == "bc" and options.multihead:
        options = dataclasses.replace(options, num_tasks=demos.num_tasks)
    if cfg.objective == "contrastive" and not options.include_action and cfg.k == 0 and cfg.pad == 0:
        raise ValueError("--objective contrastive without actions (SimCLR) at --nstep 0 needs augmentation "
                         "(--augment shift): the two views would be identical")
    encoder = PixelEncoder(demos.frame, cfg.encoder)
    objective = build_objective(cfg.objective, encoder, demos.action_dim, options)
    sampler = PairSampler(demos, cfg.k, cfg.random_k)
    trainer = ObjectiveTrainer(objective, sampler, cfg.batch_size, cfg.steps, cfg.lr, cfg.pad, cfg.seed)
    return encoder, objective, trainer


def pretrain(cfg: PretrainConfig, demos: Demos | None = None) -> dict:
    """Train per ``cfg`` into ``cfg.out`` (:mod:`robokit.core.runs`; step = gradient step).

    Checkpoints hold ``encoder`` (state dict), ``encoder_description`` (to rebuild it),
    ``objective``, ``config``, ``step`` and ``training`` (objective, optimiser, schedule, RNGs),
    so ``--resume`` continues exactly; ``final.pt`` is what ``robokit finetune-bc --encoder`` loads.

    Returns:
        {"checkpoint": final.pt path, "metrics": last logged metrics, "seconds": float, "encoder": PixelEncoder}
    """
    from tqdm import tqdm

    from robokit.core.config import to_dict
    from robokit.core.runs import FINAL_CHECKPOINT, save_step_checkpoint, start_run

    demos = demos if demos is not None else load_demos(cfg.data)
    run = start_run(cfg, "robokit pretrain")
    demos.buffer.rng = np.random.default_rng(cfg.seed)
    encoder, objective, trainer = build(cfg, demos)
    if run.resumed is not None:
        trainer.load_state_dict(run.resumed[1]["training"])
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    bar = tqdm(range(trainer.step, cfg.steps), desc=f"pretrain {cfg.objective}", disable=not cfg.progress,
               leave=False)
    for _ in bar:
        metrics = trainer.train_step()
        if trainer.step % cfg.log_every == 0 or trainer.step == cfg.steps:
            run.logger.log(metrics, step=trainer.step)
            bar.set_postfix({key.split("/")[-1]: f"{value:.4f}" for key, value in metrics.items()})
        last = trainer.step == cfg.steps
        if trainer.step % cfg.checkpoint_every == 0 or last:
            state = {"objective": cfg.objective, "encoder": encoder.state_dict(),
                     "encoder_description": encoder.describe(), "config": to_dict(cfg), "step": trainer.step,
                     "training": trainer.state_dict()}
            save_step_checkpoint(run.out, trainer.step, state, final=last)
    run.logger.close()
    return {"checkpoint": run.out / FINAL_CHECKPOINT, "metrics": metrics,
            "seconds": time.perf_counter() - started, "encoder": encoder}


def load_encoder(path: str | os.PathLike) -> PixelEncoder:
    """The pretrained encoder of a ``robokit pretrain`` checkpoint (loaded with ``weights_only``).

    Raises:
        CheckpointError / KeyError: naming the file.
    """
    from robokit.core.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    for key in ("encoder", "encoder_description"):
        if key not in state:
            raise KeyError(f"--encoder {path}: not a robokit pretrain checkpoint (no '{key}' key)")
    encoder = encoder_from_description(state["encoder_description"])
    encoder.load_state_dict(state["encoder"])
    return encoder
