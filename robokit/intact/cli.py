"""``robokit robustness {train, eval, saliency}``: robust training, corruption reports, saliency plots."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from robokit.core.cli_errors import run_command
from robokit.distributed.options import DistributedField, DistributedOptions
from robokit.intact.train import TrainConfig

PROG = "robokit robustness"


@dataclass(frozen=True)
class EvalConfig:
    """Accuracy per corruption x severity with CE/mCE/RmCE; writes JSON and a heatmap PNG."""

    checkpoint: Path
    """final.pt (or checkpoints/step_*.pt) written by `robokit robustness train`"""
    dataset: str = "procedural"
    """'procedural' (the checkpoint's own generated test split) or a ModelNet40-layout folder"""
    suite: Literal["modelnet-c", "modelnet40-c", "kitti-c"] = "modelnet-c"
    """corruption suite: modelnet-c (7 corruptions x 5 severities), modelnet40-c (13), kitti-c (7, metres)"""
    json: Path = Path("robustness.json")
    """write the accuracies, CE/mCE/RmCE and run facts here (atomically)"""
    heatmap: Path | None = None
    """PNG path (default: the JSON path with .png)"""
    reference: Path | None = None
    """a result JSON of the reference model for CE/mCE (default: DGCNN's published numbers on
    ModelNet40 + modelnet-c, else none)"""
    seed: int = 0
    """seed of the corruption streams (same seed -> same corrupted clouds for every model)"""
    protocol: Literal["modelnet-c", "resample"] = "modelnet-c"
    """modelnet-c: corrupt at 1,024 points and classify the survivors (variable size, thinned by
    num_points/1024); resample: robokit's old protocol (every cloud resampled to num_points)"""
    progress: bool = True
    """show a progress bar"""
    scale: DistributedField = DistributedOptions()


@dataclass(frozen=True)
class SaliencyConfig:
    """Draw test cloud K coloured by the INTACT teacher's saliency (gradient saliency without a teacher)."""

    checkpoint: Path
    """final.pt (or checkpoints/step_*.pt) written by `robokit robustness train`"""
    sample: int = 0
    """index of the cloud in the test split"""
    out: Path = Path("saliency.png")
    """PNG to write (atomically)"""
    dataset: str = "procedural"
    """'procedural' (the checkpoint's own generated test split) or a ModelNet40-layout folder"""


def _train(cfg: TrainConfig) -> int:
    from robokit.intact.train import train

    result = train(cfg)
    print(f"method {cfg.method}  backbone {cfg.backbone}  seed {cfg.seed}  epochs {cfg.epochs}")
    print(
        f"test clean accuracy {100 * result['test_clean_acc']:.1f}%   curriculum level "
        f"{result['final_level']}   {result['seconds']:.1f} s"
    )
    print(f"checkpoint: {result['checkpoint']}")
    return 0


def _test_split(state: dict, dataset: str):
    """(points (N,P,3), labels (N,), class names) of the test split the checkpoint refers to."""
    from robokit.core.config import from_dict
    from robokit.intact.train import load_dataset

    saved = from_dict(TrainConfig, state["config"])
    data = load_dataset(dataclasses.replace(saved, dataset=dataset))
    if int(data.test_labels.max()) >= int(state["num_classes"]):
        raise ValueError(
            f"{dataset}: labels go up to {int(data.test_labels.max())} but the checkpoint "
            f"has {state['num_classes']} classes"
        )
    return data.test_points, data.test_labels, data.class_names


def _reference_for(cfg: EvalConfig, num_classes: int):
    from robokit.intact.evaluate import DGCNN_MODELNET_C, read_result_json

    if cfg.reference is not None:
        return read_result_json(cfg.reference), str(cfg.reference)
    if cfg.suite == "modelnet-c" and num_classes == 40 and cfg.dataset != "procedural":
        return DGCNN_MODELNET_C, "DGCNN (ModelNet-C paper)"
    return None, None


def _eval(cfg: EvalConfig) -> int:
    from robokit.distributed.fanout import given
    from robokit.intact.evaluate import (
        error_metrics,
        evaluate_suite,
        format_table,
        load_classifier,
        plot_heatmap,
        suite_inputs,
        write_json,
    )

    model, state = load_classifier(cfg.checkpoint)
    points, labels, _ = _test_split(state, cfg.dataset)
    # Ray workers get the loaded model and clouds once each (a few MB), not paths to load again
    inputs = suite_inputs(model, points, labels, int(state["num_points"]), cfg.seed, cfg.protocol)
    result = evaluate_suite(given, (inputs,), cfg.suite, cfg.seed, cfg.scale, progress=cfg.progress)
    reference, reference_name = _reference_for(cfg, int(state["num_classes"]))
    metrics = error_metrics(result, reference) if reference is not None else None
    print(
        f"{cfg.checkpoint}: {state['config']['method']} / {state['backbone']}, suite {cfg.suite}, "
        f"{len(labels)} test clouds, model input {state['num_points']} points, protocol {cfg.protocol}"
    )
    print(format_table(result, metrics))
    if metrics is None:
        print("CE/mCE need a reference: pass --reference RESULT.json (e.g. the standard model's)")
    else:
        print(f"reference: {reference_name}")
    payload = {
        "checkpoint": str(cfg.checkpoint),
        "method": state["config"]["method"],
        "backbone": state["backbone"],
        "suite": cfg.suite,
        "dataset": cfg.dataset,
        "seed": cfg.seed,
        "protocol": cfg.protocol,
        "num_test": int(len(labels)),
        "num_points": int(state["num_points"]),
        **result,
        "reference": reference_name,
        "metrics": metrics,
    }
    write_json(payload, cfg.json)
    heatmap = cfg.heatmap or cfg.json.with_suffix(".png")
    plot_heatmap(
        result,
        heatmap,
        title=f"{state['config']['method']} on {cfg.suite}: clean {100 * result['clean']:.1f}%",
    )
    print(f"wrote {cfg.json} and {heatmap}")
    return 0


def _saliency(cfg: SaliencyConfig) -> int:
    import torch

    from robokit.intact.attacks import resample_to
    from robokit.intact.evaluate import load_classifier, load_teacher
    from robokit.intact.saliency import gradient_saliency, rank_normalise, teacher_saliency

    model, state = load_classifier(cfg.checkpoint)
    points, labels, names = _test_split(state, cfg.dataset)
    if not 0 <= cfg.sample < len(points):
        raise IndexError(
            f"--sample {cfg.sample} is out of range: the test split has {len(points)} clouds"
        )
    cloud = resample_to(
        points[cfg.sample], int(state["num_points"]), np.random.default_rng(cfg.sample)
    )
    batch = torch.from_numpy(cloud[None].astype(np.float32))
    teacher = load_teacher(state)
    if teacher is not None:
        scores, source = teacher_saliency(teacher, batch)[0].numpy(), "INTACT teacher"
    else:
        label = torch.tensor([int(labels[cfg.sample])])
        scores = rank_normalise(gradient_saliency(model, batch, label))[0].numpy()
        source = "gradient saliency (no teacher in checkpoint)"
    title = f"sample {cfg.sample} ({names[int(labels[cfg.sample])]}): {source}"
    draw_saliency(cloud, scores, cfg.out, title)
    print(
        f"wrote {cfg.out}: {title}; saliency min {scores.min():.2f} mean {scores.mean():.2f} "
        f"max {scores.max():.2f}"
    )
    return 0


def draw_saliency(cloud: np.ndarray, scores: np.ndarray, path: Path, title: str) -> Path:
    """3D scatter of (N,3) ``cloud`` coloured by (N,) ``scores``, saved atomically as PNG."""
    from robokit.intact.evaluate import new_figure, save_png

    fig = new_figure(figsize=(6, 5.5))
    ax = fig.add_subplot(projection="3d")
    # procedural and ModelNet40 clouds are y-up: draw y as the vertical axis
    # colours span this cloud's own range: a teacher's outputs often sit in a narrow band
    art = ax.scatter(
        cloud[:, 0],
        cloud[:, 2],
        cloud[:, 1],
        c=scores,
        cmap="inferno",
        s=8,
        vmin=float(scores.min()),
        vmax=float(max(scores.max(), scores.min() + 1e-6)),
    )
    ax.set_xlabel("x")
    ax.set_ylabel("z")
    ax.set_zlabel("y")
    fig.colorbar(art, ax=ax, shrink=0.7, label="saliency")
    ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit robustness``."""
    return run_command(PROG, argv, _main)


def _main(args: list[str]) -> int:
    import torch
    import tyro

    # small per-point networks: one thread is fastest on shared CPUs; override with ROBOKIT_TORCH_THREADS
    torch.set_num_threads(int(os.environ.get("ROBOKIT_TORCH_THREADS", "1")))
    commands = {"train": TrainConfig, "eval": EvalConfig, "saliency": SaliencyConfig}
    cfg = tyro.extras.subcommand_cli_from_dict(
        commands, args=args, prog=PROG, description="Point-cloud robustness: train, eval, saliency."
    )
    handlers = {TrainConfig: _train, EvalConfig: _eval, SaliencyConfig: _saliency}
    return handlers[type(cfg)](cfg)
