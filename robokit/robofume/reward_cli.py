"""``robokit robofume reward {train, eval}``: fit a success reward model and print its confusion table.

Labelled frames come from either

- an ``.npz`` file with ``images`` (N, H, W, 3) uint8, ``instructions`` (N,) strings and
  ``labels`` (N,) 0/1 (1 = success), such as the ``failures.npz`` of ``robokit robofume make-data``; or
- a ``make-data`` output directory: its ``failures.npz`` (every frame, with its label) plus the
  last ``final_frames`` frames (default 1) of each target demo (forward and backward) as
  positives (the paper's positives: the final frames of successful demonstrations), the demo's
  instruction with each.

``train`` holds out a stratified ``holdout`` fraction, fits on the rest, writes the model
directory (``--out``) with ``reward_metrics.json`` (training metrics and the held-out confusion
table) and prints the table. ``eval`` prints (and with ``--json`` writes) the table of a saved
model on labelled frames.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robokit.core.cli_errors import run_command
from robokit.robofume.reward import RewardModelError

PROG = "robokit robofume reward"
METRICS_FILE = "reward_metrics.json"
Frames = tuple[np.ndarray, list[str], np.ndarray]


@dataclass(frozen=True)
class TrainConfig:
    """Fit a success classifier on labelled frames, save it, print its held-out confusion table."""

    data: Path
    """labelled frames: an .npz (images, instructions, labels) or a make-data output directory"""
    out: Path
    """model directory to write (refused when it exists, unless --overwrite)"""
    kind: Literal["vlm", "cnn"] = "vlm"
    """vlm: CLIP-style classifier (P(yes) > P(no)); cnn: the small conv baseline"""
    pretrained: Path | None = None
    """vlm only: a local CLIP folder (save_pretrained layout) to start from; default a tiny CLIP from a config"""
    final_frames: int = 1
    """demos of a directory: how many last frames of each demo are positives"""
    holdout: float = 0.3
    """stratified fraction of the frames held out for the confusion table (0: none)"""
    epochs: int = 30
    """training passes over the frames"""
    batch_size: int = 32
    """frames per optimiser step"""
    lr: float = 3e-4
    """AdamW learning rate"""
    augment_pad: int | None = None
    """DrQ random-shift pixels during training (0: off; default 4 per 64 pixels, none below 64: reward.default_augment_pad)"""
    seed: int = 0
    """seed of the hold-out split, initial weights and batches"""
    overwrite: bool = False
    """replace --out if it exists"""


@dataclass(frozen=True)
class EvalConfig:
    """Confusion table (FP rate, FN rate, accuracy, precision) of a saved model on labelled frames."""

    model: Path
    """a model directory written by `robokit robofume reward train` (or a local CLIP folder)"""
    data: Path
    """labelled frames: an .npz (images, instructions, labels) or a make-data output directory"""
    final_frames: int = 1
    """demos of a directory: how many last frames of each demo are positives"""
    json: Path | None = None
    """also write the table here (atomically)"""


def load_npz_frames(path: Path) -> Frames:
    """``images``, ``instructions``, ``labels`` of an .npz (no pickles); errors name the file and key."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("images", "instructions", "labels") if key not in data.files]
            if missing:
                raise RewardModelError(f"{path}: key '{missing[0]}' missing (needs images, instructions, labels)")
            images, texts, labels = data["images"], data["instructions"], data["labels"]
    except ValueError as err:
        raise RewardModelError(f"{path}: cannot read as .npz without pickles ({err})") from err
    if not (len(images) == len(texts) == len(labels)):
        raise RewardModelError(f"{path}: {len(images)} images, {len(texts)} instructions, {len(labels)} labels")
    return images, [str(text) for text in texts], np.asarray(labels).astype(np.int64)


def robofume_frames(directory: Path, final_frames: int) -> Frames:
    """Labelled frames of a ``robokit robofume make-data`` directory (read by
    :func:`robokit.robofume.data.load_robofume_data`): its failure frames with their labels, and as
    positives the last ``final_frames`` images of each target demo (forward and backward), the
    demo's instruction with each."""
    from robokit.robofume.data import load_robofume_data

    data = load_robofume_data(directory)
    images = [data.failures["images"]]
    texts = [str(text) for text in data.failures["instructions"]]
    labels = [np.asarray(data.failures["labels"]).astype(np.int64)]
    for episode in data.target_forward + data.target_backward:
        frames = episode.observations["image"][-final_frames:]
        images.append(frames)
        texts += [str(episode.task)] * len(frames)
        labels.append(np.ones(len(frames), np.int64))
    return np.concatenate(images), texts, np.concatenate(labels)


def load_frames(path: Path, final_frames: int = 1) -> Frames:
    """Labelled frames (images (N, H, W, 3) uint8, N instructions, (N,) 0/1) of ``path`` (module docstring)."""
    path = Path(path)
    if final_frames < 1:
        raise RewardModelError(f"--final-frames {final_frames}: must be >= 1")
    if path.is_file():
        return load_npz_frames(path)
    if not path.is_dir():
        raise RewardModelError(f"{path}: no such file or directory")
    return robofume_frames(path, final_frames)


def split_frames(frames: Frames, holdout: float, seed: int) -> tuple[Frames, Frames]:
    """A stratified (per label) random split: (train, held out), ``holdout`` of each label held out."""
    images, texts, labels = frames
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), bool)
    for label in (0, 1):
        index = rng.permutation(np.flatnonzero(labels == label))
        held[index[:int(round(holdout * len(index)))]] = True

    def take(mask: np.ndarray) -> Frames:
        return images[mask], [texts[i] for i in np.flatnonzero(mask)], labels[mask]

    return take(~held), take(held)


def format_table(table: dict[str, float], title: str) -> str:
    """The paper's Table II columns on one line."""
    return (f"{title}: FP rate {table['fp_rate']:.3f}  FN rate {table['fn_rate']:.3f}  "
            f"accuracy {table['accuracy']:.3f}  precision {table['precision']:.3f}  "
            f"(n={table['n']}: tp {table['tp']} fp {table['fp']} tn {table['tn']} fn {table['fn']})")


def _train(cfg: TrainConfig) -> int:
    from robokit.robofume.reward import (
        TorchSuccessModel,
        build_success_model,
        by_label,
        confusion_table,
        fit_success_model,
    )

    if cfg.out.exists() and not cfg.overwrite:
        raise FileExistsError(f"{cfg.out} already exists (pass --overwrite to replace it)")
    if not 0.0 <= cfg.holdout < 1.0:
        raise RewardModelError(f"--holdout {cfg.holdout}: must be in [0, 1)")
    frames = load_frames(cfg.data, cfg.final_frames)
    train, held = split_frames(frames, cfg.holdout, cfg.seed)
    size = tuple(int(s) for s in frames[0].shape[1:3])
    instructions = sorted(set(frames[1]))
    options: dict = {"image_size": size, "instructions": instructions, "seed": cfg.seed}
    if cfg.kind == "vlm":
        options.update(pretrained=cfg.pretrained)
    model = build_success_model(cfg.kind, **options)
    assert isinstance(model, TorchSuccessModel)
    metrics = fit_success_model(
        model, *by_label(*train), epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, augment_pad=cfg.augment_pad)
    result: dict[str, Any] = {"kind": cfg.kind, "data": str(cfg.data), "seed": cfg.seed, "train": metrics,
              "train_table": confusion_table(model, *train)}
    print(format_table(result["train_table"], f"{cfg.kind} train ({len(train[2])} frames)"))
    if len(held[2]):
        result["heldout_table"] = confusion_table(model, *held)
        print(format_table(result["heldout_table"], f"{cfg.kind} held-out ({len(held[2])} frames)"))
    model.save(cfg.out, overwrite=cfg.overwrite, extra_files={METRICS_FILE: json.dumps(result, indent=1) + "\n"})
    print(f"wrote {cfg.out}")
    return 0


def _eval(cfg: EvalConfig) -> int:
    from robokit.core.atomic import atomic_write_text
    from robokit.robofume.reward import confusion_table, load_success_model

    model = load_success_model(cfg.model)
    frames = load_frames(cfg.data, cfg.final_frames)
    table = confusion_table(model, *frames)
    print(format_table(table, f"{cfg.model}"))
    if cfg.json is not None:
        atomic_write_text(cfg.json, json.dumps({"model": str(cfg.model), "data": str(cfg.data), **table}, indent=1))
    return 0


def reward_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit robofume reward`` (rfloop wires it into ``robokit robofume``)."""
    return run_command(PROG, argv, _main)


def _main(args: list[str]) -> int:
    import torch
    import tyro

    # small models on shared CPUs: one thread; override with ROBOKIT_TORCH_THREADS
    torch.set_num_threads(int(os.environ.get("ROBOKIT_TORCH_THREADS", "1")))
    commands: dict[str, Any] = {"train": TrainConfig, "eval": EvalConfig}
    cfg = tyro.extras.subcommand_cli_from_dict(
        commands, args=args, prog=PROG, description="Success reward models: train, eval.")
    return _train(cfg) if isinstance(cfg, TrainConfig) else _eval(cfg)
