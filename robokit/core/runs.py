"""One training-loop convention for every trainer (RL, INTACT classification, KITTI detection).

A run folder (``--out``) looks the same whichever trainer wrote it::

    config.yaml                      the run's config (written before the first step)
    metrics.csv                      one row per log call; columns are namespaced metric names
    checkpoints/step_<9 digits>.pt   resumable training state at that step (newest = resume point)
    final.pt                         the finished run's state (what eval commands load)

and every trainer starts through :func:`start_run`:

1. :func:`robokit.core.rundir.check_run_dir` refuses a non-empty ``--out`` without ``--resume``
   or ``--overwrite`` (``--overwrite`` empties it first);
2. :func:`robokit.core.seeding.seed_everything` seeds python, numpy and torch from ``config.seed``
   and returns the run's explicit generators;
3. with ``--resume``, :func:`resume_point` finds the newest intact checkpoint (damaged ones are
   moved aside) and drops the ``metrics.csv`` rows logged after it;
4. :func:`robokit.core.logging.make_logger` builds the ``config.logger`` adapters (console / csv /
   wandb) and saves ``config.yaml``. Metric names must start with one of :data:`NAMESPACES`
   (checked by the logger): ``train/`` (progress, rates, counters), ``eval/`` (held-out scores),
   ``losses/`` (optimised quantities) and ``curriculum/`` (curriculum level and gate).

A checkpoint's ``step`` is the step axis of ``metrics.csv`` (RL: offline gradient steps + online env steps; detection:
optimiser steps; INTACT classification: epochs).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from robokit.core.checkpoint import intact_checkpoints, save_checkpoint
from robokit.core.logging import METRICS_FILE, NAMESPACES, Logger, make_logger, truncate_metrics
from robokit.core.rundir import check_run_dir, clear_run_dir
from robokit.core.seeding import Seeds, seed_everything

__all__ = ["CHECKPOINT_DIR", "FINAL_CHECKPOINT", "NAMESPACES", "Run", "checkpoint_path", "resume_point",
           "save_step_checkpoint", "start_run"]

CHECKPOINT_DIR = "checkpoints"
FINAL_CHECKPOINT = "final.pt"


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """``run_dir/checkpoints/step_<step, 9 digits>.pt``."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{int(step):09d}.pt"


def save_step_checkpoint(run_dir: str | os.PathLike, step: int, state: dict[str, Any],
                         final: bool = False) -> Path:
    """Write ``state`` as the step's checkpoint (and as ``final.pt`` when ``final``); return its path."""
    path = save_checkpoint(checkpoint_path(run_dir, step), state)
    if final:
        save_checkpoint(Path(run_dir) / FINAL_CHECKPOINT, state)
    return path


def resume_point(run_dir: str | os.PathLike, prog: str, map_location: str | torch.device = "cpu",
                 step_of: Callable[[dict[str, Any]], int] = lambda state: int(state["step"]),
                 ) -> tuple[Path, dict[str, Any]] | None:
    """The newest intact checkpoint of ``run_dir`` as ``(path, state)``, or None (says which on stdout).

    ``metrics.csv`` keeps only the rows logged up to the checkpoint's step (all rows go when
    there is no checkpoint), so the resumed run never duplicates a row.
    """
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / CHECKPOINT_DIR
    metrics = run_dir / METRICS_FILE
    found = next(intact_checkpoints(ckpt_dir, map_location=map_location, prog=prog), None)
    if found is None:
        print(f"{prog}: --resume: no intact checkpoint in {ckpt_dir}; starting from step 0"
              + (f" (dropping the rows of {metrics})" if metrics.exists() else ""), flush=True)
        truncate_metrics(metrics, -1)
        return None
    path, state = found
    truncate_metrics(metrics, step_of(state))
    print(f"{prog}: resumed from {path} (step {step_of(state)})", flush=True)
    return found


@dataclass
class Run:
    """What :func:`start_run` hands a trainer: the folder, the generators, the logger, the resume state."""

    out: Path
    seeds: Seeds
    logger: Logger
    resumed: tuple[Path, dict[str, Any]] | None


def start_run(config: Any, prog: str, map_location: str | torch.device = "cpu",
              step_of: Callable[[dict[str, Any]], int] = lambda state: int(state["step"]),
              console_every: int = 0) -> Run:
    """Check/empty ``config.out``, seed, find the resume point, open the loggers (see the module doc).

    ``config`` needs ``out``, ``seed``, ``resume``, ``overwrite`` and ``logger`` (adapter names);
    ``step_of`` reads a checkpoint's position on the ``metrics.csv`` step axis.
    """
    out = check_run_dir(config.out, resume=config.resume, overwrite=config.overwrite)
    out = clear_run_dir(out) if config.overwrite else out
    out.mkdir(parents=True, exist_ok=True)
    seeds = seed_everything(config.seed)
    resumed = resume_point(out, prog, map_location, step_of) if config.resume else None
    logger = make_logger(config.logger, out, config, console_every=console_every)
    return Run(out=out, seeds=seeds, logger=logger, resumed=resumed)
