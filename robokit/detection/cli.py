"""``robokit kitti train-detector`` and ``robokit kitti eval-detection``.

Both are reached through ``robokit.tracking.cli`` and take the remaining ``argv``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from robokit.core.cli_errors import run_command
from robokit.core.config import ConfigError, check_ranges
from robokit.distributed.options import DistributedField, DistributedOptions

if TYPE_CHECKING:  # the detector's modules load when a command runs, not on import
    from robokit.detection.train import TrainDetectorConfig
    from robokit.intact.hooks import CurriculumHooks

__all__ = ["EvalDetectionConfig", "train_main", "eval_main", "run_eval"]


@dataclass(frozen=True)
class EvalDetectionConfig:
    """``robokit kitti eval-detection`` options."""

    checkpoint: Path
    """detector checkpoint written by train-detector (final.pt or checkpoints/step_*.pt)."""
    data: Path
    """KITTI object folder (holding training/{velodyne,label_2,calib})."""
    json: Path | None = None
    """write the AP table and run facts here (atomically)."""
    split: str = "val"
    """ImageSets split (all frames when ImageSets/<split>.txt is absent)."""
    corruption: str | None = None
    """a LiDAR corruption of robokit.pointcloud.corruptions (kitti-c suite), applied to every scan."""
    severity: int = 1
    """corruption severity (1..5) for --corruption"""
    seed: int = 0
    """corruption seed: frame i uses numpy Generator(seed + i)."""
    device: Literal["cpu", "cuda"] = "cpu"
    """run the detector on this device"""
    max_frames: int | None = None
    """evaluate only the first N frames of the split (quick runs)"""
    results_dir: Path | None = None
    """also write KITTI result files (one <frame>.txt per frame) here."""
    recall_sampling: Literal["exact", "devkit"] = "exact"
    """'exact' 40-point interpolation, or the devkit's 41 sampled thresholds (see kitti_eval)."""
    dontcare_all_metrics: bool = False
    """apply the 2D DontCare rule to BEV and 3D too (the devkit applies it to 2D only)."""
    sweep: bool = False
    """evaluate clean and under every kitti-c corruption at --sweep-severities; one table row each."""
    sweep_severities: tuple[int, ...] = (1, 3, 5)
    """severities of the --sweep (1..5)."""
    scale: DistributedField = DistributedOptions()

    def __post_init__(self) -> None:
        check_ranges(self, positive=("severity", "max_frames", "sweep_severities"))
        if self.scale.enabled and not self.sweep:
            raise ConfigError("--distributed ray fans out the rows of --sweep; add --sweep")


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def run_eval(config: EvalDetectionConfig, progress: bool = True) -> dict:
    """Evaluate a checkpoint; returns the JSON-ready report (AP in percent, None where no object)."""
    from robokit.detection.dataset import KittiObjectDataset
    from robokit.detection.evaluate import evaluate_detector
    from robokit.detection.postprocess import write_kitti_result
    from robokit.detection.train import load_detector

    model = load_detector(config.checkpoint, config.device)
    dataset = KittiObjectDataset(config.data, split=config.split, classes=model.config.classes)
    if config.max_frames:
        dataset = KittiObjectDataset(
            config.data,
            classes=model.config.classes,
            frame_ids=dataset.frame_ids[: config.max_frames],
        )
    started = time.perf_counter()
    result, detections = evaluate_detector(
        model,
        dataset,
        config.corruption,
        config.severity,
        config.seed,
        progress=progress,
        recall_sampling=config.recall_sampling,
        dontcare_all_metrics=config.dontcare_all_metrics,
    )
    seconds = time.perf_counter() - started
    if config.results_dir is not None:
        for frame_id, frame_detections in zip(dataset.frame_ids, detections, strict=True):
            write_kitti_result(Path(config.results_dir) / f"{frame_id}.txt", frame_detections)
    return _nan_to_none(
        {
            "checkpoint": str(config.checkpoint),
            "data": str(config.data),
            "frames": len(dataset),
            "corruption": config.corruption,
            "severity": config.severity if config.corruption else None,
            "recall_sampling": config.recall_sampling,
            "ap": result.ap,
            "num_gt": result.num_gt,
            "seconds": seconds,
            "frames_per_second": len(dataset) / seconds if seconds > 0 else None,
        }
    )


def _print_report(report: dict) -> None:
    from robokit.detection.kitti_eval import DetectionEvalResult, format_ap_table

    ap = {
        c: {
            m: {d: (float("nan") if v is None else v) for d, v in per_d.items()}
            for m, per_d in per_m.items()
        }
        for c, per_m in report["ap"].items()
    }
    corruption = (
        f", corruption {report['corruption']} severity {report['severity']}"
        if report["corruption"]
        else ""
    )
    print(
        f"KITTI detection AP on {report['frames']} frames{corruption} "
        f"({report['frames_per_second']:.2f} frames/s incl. evaluation)"
    )
    print(format_ap_table(DetectionEvalResult(ap=ap, num_gt=report["num_gt"])))


def run_sweep(config: EvalDetectionConfig, progress: bool = True) -> dict:
    """Clean and corrupted AP for every kitti-c corruption x severity; returns the JSON-ready report.

    Each row is one :func:`run_eval` (frame i of a corruption seeded ``seed + i``), so the rows
    are independent; ``config.scale`` fans them out over Ray workers, gathered in row order.
    """
    from dataclasses import replace

    from robokit.distributed.fanout import fan_out, given
    from robokit.pointcloud.corruptions import SUITES

    rows = [replace(config, corruption=None, results_dir=None)]
    rows += [replace(config, corruption=name, severity=severity, results_dir=None)
             for name in SUITES["kitti-c"] for severity in config.sweep_severities]
    progress = progress and not config.scale.enabled  # per-frame bars of several workers would interleave
    rows = fan_out(given, (None,), _eval_row, [(row, progress) for row in rows], config.scale)
    return {"checkpoint": str(config.checkpoint), "data": str(config.data), "rows": rows}


def _eval_row(_state: None, item: tuple[EvalDetectionConfig, bool]) -> dict:
    return run_eval(*item)


def format_sweep_table(report: dict, metric: str = "3d") -> str:
    """Rows: corruption and severity; columns: AP of each class with objects (moderate, or easy)."""
    first = report["rows"][0]
    columns = []
    for class_name, counts in first["num_gt"].items():
        difficulty = "moderate" if counts["moderate"] else "easy" if counts["easy"] else None
        if difficulty:
            columns.append((class_name, difficulty))
    header = f"{'corruption':<16} {'sev':>3}  " + "  ".join(
        f"{c[:3]} {metric} {d[:3]:>3}" for c, d in columns
    )
    lines = [header]
    for row in report["rows"]:
        name = row["corruption"] or "clean"
        severity = "-" if row["severity"] is None else str(row["severity"])
        cells = []
        for class_name, difficulty in columns:
            value = row["ap"][class_name][metric][difficulty]
            cells.append(
                f"{'-' if value is None else f'{value:.1f}':>{len(class_name[:3]) + len(metric) + 5}}"
            )
        lines.append(f"{name:<16} {severity:>3}  " + "  ".join(cells))
    return "\n".join(lines)


def eval_main(argv: list[str]) -> int:
    """Entry point of ``robokit kitti eval-detection``."""
    return run_command("robokit kitti eval-detection", argv, _eval_main)


def _eval_main(argv: list[str]) -> int:
    from robokit.core.atomic import atomic_write_text
    from robokit.core.config import parse

    config = parse(
        EvalDetectionConfig,
        argv,
        prog="robokit kitti eval-detection",
        description="KITTI AP|R40 (2D box, BEV, 3D; easy/moderate/hard) of a detector checkpoint, "
        "optionally under a LiDAR corruption.",
    )
    if config.sweep:
        report = run_sweep(config)
        for metric in ("bev", "3d"):
            print(
                f"AP|R40 ({metric}) under kitti-c corruptions, {report['rows'][0]['frames']} frames:"
            )
            print(format_sweep_table(report, metric))
    else:
        report = run_eval(config)
        _print_report(report)
    if config.json is not None:
        atomic_write_text(Path(config.json), json.dumps(report, indent=2) + "\n")
        print(f"wrote {config.json}")
    return 0


def robust_hooks(config: TrainDetectorConfig) -> CurriculumHooks | None:
    """The INTACT / random-curriculum hooks a :class:`~robokit.detection.train.TrainDetectorConfig`
    asks for (``--robust-method``, ``--robust-warmup-epochs``, ``--robust-gate``); None for standard."""
    from robokit.detection.intact import IntactDetectionConfig, detection_hooks

    return detection_hooks(
        IntactDetectionConfig(
            method=config.robust_method, seed=config.seed, warmup_epochs=config.robust_warmup_epochs,
            curriculum_gate=config.robust_gate,
        )
    )


def train_main(argv: list[str]) -> int:
    """Entry point of ``robokit kitti train-detector``."""
    return run_command("robokit kitti train-detector", argv, _train_main)


def _train_main(argv: list[str]) -> int:
    from robokit.core.atomic import atomic_write_text
    from robokit.core.config import parse
    from robokit.detection.kitti_eval import DetectionEvalResult, format_ap_table
    from robokit.detection.train import TrainDetectorConfig, train_detector

    config = parse(
        TrainDetectorConfig,
        argv,
        prog="robokit kitti train-detector",
        description="Train the SECOND-style sparse-conv detector on a KITTI object split.",
    )
    summary = train_detector(config, hooks=robust_hooks(config))
    print(
        f"trained {summary['epochs']} epochs on {summary['frames']} frames in {summary['train_seconds']:.0f} s: "
        f"loss {summary['first_epoch_loss']:.3f} -> {summary['last_epoch_loss']:.3f}; checkpoint {summary['checkpoint']}"
    )
    if "ap" in summary:
        print("AP on the training frames:")
        print(format_ap_table(DetectionEvalResult(ap=summary["ap"], num_gt=summary["num_gt"])))
    atomic_write_text(
        Path(config.out) / "summary.json", json.dumps(_nan_to_none(summary), indent=2) + "\n"
    )
    return 0
