"""``robokit kitti``: KITTI 3D tracking (track, eval-tracking, degrade-tracking, fit-size-correction) and detection.

``train-detector`` and ``eval-detection`` are forwarded to :mod:`robokit.detection.cli`.

Examples::

    robokit kitti track --detections ../shared/data/kitti/tracking/detections/pointrcnn_Car \\
        --out runs/tracking/pointrcnn_Car --classes Car
    robokit kitti eval-tracking --labels ../shared/data/kitti/tracking/training/label_02 \\
        --results runs/tracking/pointrcnn_Car --iou 0.25 --classes Car --json runs/tracking/eval.json
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from robokit.core.atomic import atomic_write_text
from robokit.core.cli_errors import error_line, run_command
from robokit.distributed.options import DistributedField, DistributedOptions

PROG = "robokit kitti"
STATS_FILE = "tracking_stats.json"
#: the TrackerConfig fields a size correction file may set
SIZE_KEYS = frozenset({"size_scale", "size_offset"})
#: AB3DMOT's thresholds for the similarities other than GIoU
METRIC_THRESHOLDS = {"iou3d": 0.01, "dist3d": -2.0}
DETECTION_COMMANDS = {"train-detector": "train_main", "eval-detection": "eval_main"}


@dataclass(frozen=True)
class TrackArgs:
    """Run the 3D tracker on per-sequence detection files; write KITTI tracking results."""

    detections: Path
    """folder of <sequence>.txt detection files (frame,type,x1,y1,x2,y2,score,h,w,l,x,y,z,rot_y,alpha)"""
    out: Path
    """output folder: <sequence>.txt KITTI tracking results and tracking_stats.json"""
    classes: str = "Car"
    """comma-separated classes to track (Car, Pedestrian, Cyclist)"""
    seqs: str | None = None
    """comma-separated sequences (default: every file in --detections)"""
    preset: Literal["robokit", "ab3dmot"] = "robokit"
    """tracker settings: robokit's tracker (with its per-class rows: tentative tracks reported for cars and cyclists, SimpleTrack's settings for cyclists, a higher birth score for pedestrians), or AB3DMOT's released KITTI configuration"""
    metric: Literal["giou3d", "iou3d", "dist3d"] | None = None
    """association similarity; dist3d is minus the centre distance in metres (default: the preset's)"""
    match_threshold: float | None = None
    """smallest similarity for a match, both stages (default: the preset's; 0.01 with --metric iou3d as in AB3DMOT 2019, -2 with dist3d as AB3DMOT's cyclists)"""
    min_hits: int | None = None
    """hits before a track is reported (default: the preset's)"""
    max_age: int | None = None
    """missed frames before a track dies (default: the preset's)"""
    labels: Path | None = None
    """optional label folder: run each sequence up to its last labelled frame"""
    oxts: Path | None = None
    """folder of KITTI oxts/<sequence>.txt files: ego-motion compensation (needs --calib)"""
    calib: Path | None = None
    """folder of KITTI calib/<sequence>.txt files (R_rect, Tr_velo_cam, Tr_imu_velo), with --oxts"""
    poses: Path | None = None
    """folder of <sequence>.txt pose files (one 3x4 or 4x4 box-frame pose per frame): ego-motion compensation"""
    size_correction: str | None = None
    """detection box-size correction per class: a JSON file written by 'fit-size-correction' (it replaces the preset's correction for the classes it names), or 'none' to track every class at its detected sizes (default: the preset's; robokit's corrects PointRCNN's pedestrian sizes)"""
    overwrite: bool = False
    """write into a non-empty --out, first removing the *.txt and tracking_stats.json there"""


@dataclass(frozen=True)
class FitSizeCorrectionArgs:
    """Fit a per-class detection box-size (h, w, l) correction on labelled sequences, for 'track --size-correction'."""

    detections: Path
    """folder of <sequence>.txt detection files"""
    labels: Path
    """folder of KITTI label_02 <sequence>.txt files"""
    out: Path
    """JSON file to write: {"classes": {class: {"size_scale" or "size_offset": [h, w, l]}}, ...}"""
    classes: str = "Pedestrian"
    """comma-separated classes to fit"""
    seqs: str | None = None
    """comma-separated sequences to fit on (default: every label file); score on others"""
    kind: Literal["scale", "offset"] = "scale"
    """least-squares fit of label sizes as detection sizes times a factor (scale) or plus metres (offset)"""
    min_iou: float = 0.25
    """a label box is paired with its best detection of the frame when their 3D IoU is at least this"""


@dataclass(frozen=True)
class EvalTrackingArgs:
    """Evaluate KITTI tracking results in 3D: CLEAR MOT (MOTA, MOTP, IDS, FRAG) and sAMOTA/AMOTA."""

    labels: Path
    """folder of KITTI label_02 <sequence>.txt files"""
    results: Path
    """folder of tracker result <sequence>.txt files (18 fields, the last the score)"""
    iou: float = 0.25
    """3D IoU threshold for a match (0.25, 0.5 or 0.7)"""
    classes: str = "Car"
    """comma-separated classes to evaluate"""
    seqs: str | None = None
    """comma-separated sequences (default: every label file)"""
    json: Path | None = None
    """write the metrics here as JSON"""
    gt_height_rule: bool = False
    """also ignore ground truth <= 25 px tall (off by default: the KITTI devkit and AB3DMOT apply the height rule to tracker boxes only)"""
    id_switch_rule: Literal["kitti", "clear"] = "kitti"
    """'kitti' (devkit) or 'clear' (any change of matched id is a switch)"""
    devkit_score_drift: bool = True
    """re-average track scores on every sweep pass as the AB3DMOT/KITTI script does (default: its figures exactly); --no-devkit-score-drift averages once"""


@dataclass(frozen=True)
class DegradeTrackingArgs:
    """Track degraded detections (missed, jittered, false positive boxes) and tabulate MOTA vs rate."""

    detections: Path
    """folder of <sequence>.txt detection files"""
    labels: Path
    """folder of KITTI label_02 <sequence>.txt files"""
    seqs: str | None = None
    """comma-separated sequences (default: every label file)"""
    kinds: str = "miss,jitter,false_positive"
    """comma-separated degradations"""
    rates: str = "0,0.1,0.2,0.3,0.5"
    """comma-separated rates in [0, 1]"""
    seed: int = 0
    """seed of every degradation"""
    iou: float = 0.25
    """3D IoU threshold of the evaluation"""
    classes: str = "Car"
    """tracked and evaluated class (one)"""
    json: Path | None = None
    """write the table here as JSON"""
    scale: DistributedField = DistributedOptions()


def _split(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def _tracker_config(args: TrackArgs):
    """The preset's settings with the flags given on the command line."""
    from robokit.tracking.tracker import preset_configs

    changes = {
        name: getattr(args, name)
        for name in ("metric", "match_threshold", "min_hits", "max_age")
        if getattr(args, name) is not None
    }
    if args.match_threshold is None and args.metric in METRIC_THRESHOLDS:
        changes["match_threshold"] = METRIC_THRESHOLDS[args.metric]
    if "match_threshold" in changes:
        changes["low_match_threshold"] = changes["match_threshold"]
    if args.size_correction is not None and args.size_correction.lower() == "none":
        changes.update(size_scale=None, size_offset=None)
    configs = preset_configs(args.preset, **changes)
    if args.size_correction is None or args.size_correction.lower() == "none":
        return configs
    rows = dict(configs.by_class)
    for name, correction in read_size_correction(Path(args.size_correction)).items():
        cleared = configs.for_class(name).replace(size_scale=None, size_offset=None)
        rows[name] = cleared.replace(**correction)
    return dataclasses.replace(configs, by_class=rows)


def read_size_correction(path: Path) -> dict[str, dict]:
    """``{class: {"size_scale" or "size_offset": (h, w, l)}}`` from a 'fit-size-correction' JSON file."""
    from robokit.tracking.tracker import TrackerConfig

    try:
        classes = json.loads(path.read_text())["classes"]
        if not isinstance(classes, dict):
            raise TypeError("'classes' is not an object")
        out = {}
        for name, correction in classes.items():
            if not isinstance(correction, dict) or not set(correction) <= SIZE_KEYS:
                raise TypeError(f"classes.{name} must hold only {sorted(SIZE_KEYS)}")
            TrackerConfig(**correction)  # checks the values
            out[name] = {key: tuple(value) for key, value in correction.items()}
        return out
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: size correction file not found") from err
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a size correction file ({error_line(err)})") from err


def _fit_size_correction(args: FitSizeCorrectionArgs) -> int:
    from robokit.tracking import read_detections, read_tracking_labels
    from robokit.tracking.calibrate import paired_sizes, solve_size_correction
    from robokit.tracking.io import list_sequences

    seqs = list_sequences(args.labels, _split(args.seqs))
    data = [
        (
            read_tracking_labels(args.labels / f"{s}.txt"),
            read_detections(args.detections / f"{s}.txt"),
        )
        for s in seqs
    ]
    classes, pairs = {}, {}
    for cls in _split(args.classes) or ["Pedestrian"]:
        detected, labelled = paired_sizes(data, cls, args.min_iou)  # the IoU pairing, once per class
        classes[cls] = solve_size_correction(detected, labelled, args.kind)
        pairs[cls] = len(detected)
        print(f"{cls}: {classes[cls]} from {pairs[cls]} label boxes with a detection")
    report = {
        "classes": classes, "kind": args.kind, "min_iou": args.min_iou, "sequences": seqs,
        "pairs": pairs, "detections": str(args.detections),
    }  # fmt: skip
    atomic_write_text(args.out, json.dumps(report, indent=2))
    print(
        f"size correction written to {args.out} (use it on other sequences than {','.join(seqs)})"
    )
    return 0


def _sequence_poses(args: TrackArgs, seq: str):
    """Ego poses of one sequence from --oxts/--calib or --poses, or None."""
    from robokit.tracking.ego import camera_poses_from_oxts, read_pose_file

    if args.oxts is not None:
        return camera_poses_from_oxts(args.oxts / f"{seq}.txt", args.calib / f"{seq}.txt")
    if args.poses is not None:
        return read_pose_file(args.poses / f"{seq}.txt")
    return None


def _check_out(args: TrackArgs) -> None:
    """Refuse a non-empty --out without --overwrite; refuse contradicting ego-motion flags."""
    if args.oxts is not None and args.poses is not None:
        raise ValueError("give --oxts (with --calib) or --poses, not both")
    if (args.oxts is None) != (args.calib is None):
        raise ValueError("--oxts and --calib go together (oxts poses need the IMU calibration)")
    if args.out.exists() and not args.out.is_dir():
        raise FileExistsError(f"{args.out}: exists and is not a folder")
    if args.out.is_dir() and any(args.out.iterdir()) and not args.overwrite:
        raise FileExistsError(
            f"{args.out}: not empty (pass --overwrite to replace its tracking results)"
        )


def _clear_results(out: Path) -> None:
    """Remove what ``track`` writes (``*.txt`` results and the stats file) from ``out``."""
    for path in [*out.glob("*.txt"), out / STATS_FILE]:
        if path.is_file():
            path.unlink()


def _track(args: TrackArgs) -> int:
    from tqdm import tqdm

    from robokit.tracking import read_detections, track_sequence, write_tracking_results
    from robokit.tracking.io import list_sequences, read_tracking_labels

    _check_out(args)
    config = _tracker_config(args)
    classes = tuple(_split(args.classes) or ["Car"])
    seqs = list_sequences(args.detections, _split(args.seqs))
    rows, results, total_frames, total_seconds = [], {}, 0, 0.0
    for seq in tqdm(seqs, desc="tracking", unit="seq"):
        detections = read_detections(args.detections / f"{seq}.txt")
        frames = None
        if args.labels is not None:
            frames = max(
                read_tracking_labels(args.labels / f"{seq}.txt").num_frames, detections.num_frames
            )
        result = track_sequence(detections, config, classes, frames, _sequence_poses(args, seq))
        results[seq] = result.objects
        tracks = len(set(result.objects.track_id.tolist()))
        rows.append((seq, result.num_frames, len(detections), tracks, result.fps))
        total_frames += result.num_frames
        total_seconds += result.seconds
    fps = total_frames / total_seconds if total_seconds > 0 else math.inf
    stats = {
        "fps": fps,
        "frames": total_frames,
        "seconds": total_seconds,
        "preset": args.preset,
        "ego_motion": "oxts" if args.oxts else "poses" if args.poses else None,
        "tracker": _finite(dataclasses.asdict(config.default)),
        "tracker_by_class": {
            name: _finite(dataclasses.asdict(config.for_class(name))) for name in config.by_class
        },
        "per_sequence": {
            seq: {"frames": f, "detections": d, "tracks": t, "fps": r} for seq, f, d, t, r in rows
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    _clear_results(args.out)  # every input was read and tracked: only now replace old results
    for seq, objects in results.items():
        write_tracking_results(args.out / f"{seq}.txt", objects)
    atomic_write_text(args.out / STATS_FILE, json.dumps(stats, indent=2))
    print(
        _table(
            ["seq", "frames", "detections", "tracks", "fps"],
            rows + [("all", total_frames, sum(r[2] for r in rows), sum(r[3] for r in rows), fps)],
        )
    )
    print(f"results in {args.out}  (tracker loop only, file I/O excluded: {fps:.0f} frames/s)")
    return 0


def _eval_tracking(args: EvalTrackingArgs) -> int:
    from robokit.tracking import (
        EvalConfig,
        evaluate_tracking,
        read_tracking_labels,
        read_tracking_results,
    )
    from robokit.tracking.io import list_sequences

    seqs = list_sequences(args.labels, _split(args.seqs))
    list_sequences(args.results, seqs)  # every sequence needs a result file
    labels = {seq: read_tracking_labels(args.labels / f"{seq}.txt") for seq in seqs}
    results = {seq: read_tracking_results(args.results / f"{seq}.txt") for seq in seqs}
    fps = _read_fps(args.results)
    per_class, without_gt = {}, []
    for cls in _split(args.classes) or ["Car"]:
        config = EvalConfig(
            cls=cls,
            iou_threshold=args.iou,
            gt_height_rule=args.gt_height_rule,
            id_switch_rule=args.id_switch_rule,
            devkit_score_drift=args.devkit_score_drift,
        )
        metrics = evaluate_tracking(labels, results, config, progress=True).to_dict()
        if metrics["num_gt"] == 0:  # MOTA is undefined (the devkit prints -inf)
            without_gt.append(cls)
            print(
                f"{PROG}: warning: no {cls} ground-truth objects that count in {args.labels} "
                f"(sequences {','.join(seqs)}): {cls} not evaluated",
                file=sys.stderr,
            )
            continue
        metrics["fps"] = fps
        per_class[cls] = metrics
        _print_metrics(metrics, seqs)
    if not per_class:
        raise ValueError(
            f"{args.labels}: no ground-truth objects of {', '.join(without_gt)} in sequences "
            f"{','.join(seqs)}; nothing to evaluate (MOTA is undefined without ground truth)"
        )
    report = dict(next(iter(per_class.values())))
    if len(per_class) > 1 or without_gt:
        report["per_class"] = per_class
        report["without_ground_truth"] = without_gt
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(_finite(report), indent=2))
        print(f"metrics written to {args.json}")
    return 0


def _degrade_tracking(args: DegradeTrackingArgs) -> int:
    from robokit.tracking import EvalConfig, read_detections, read_tracking_labels
    from robokit.tracking.degrade import degradation_table
    from robokit.tracking.io import list_sequences

    seqs = list_sequences(args.labels, _split(args.seqs))
    labels = {seq: read_tracking_labels(args.labels / f"{seq}.txt") for seq in seqs}
    detections = {seq: read_detections(args.detections / f"{seq}.txt") for seq in seqs}
    cls = (_split(args.classes) or ["Car"])[0]
    rows = degradation_table(
        labels,
        detections,
        kinds=tuple(_split(args.kinds)),
        rates=tuple(float(rate) for rate in _split(args.rates)),
        seed=args.seed,
        eval_config=EvalConfig(cls=cls, iou_threshold=args.iou),
        classes=(cls,),
        progress=True,
        options=args.scale,
    )
    print(
        _table(
            ["degradation", "rate", "MOTA", "sAMOTA", "MOTP", "IDS", "FP", "FN"],
            [
                (
                    r["kind"],
                    r["rate"],
                    100 * r["mota"],
                    100 * r["samota"],
                    100 * r["motp"],
                    r["ids"],
                    r["fp"],
                    r["fn"],
                )
                for r in rows
            ],
        )
    )
    if args.json is not None:
        atomic_write_text(
            args.json,
            json.dumps(_finite({"sequences": seqs, "seed": args.seed, "rows": rows}), indent=2),
        )
        print(f"table written to {args.json}")
    return 0


def _read_fps(results_dir: Path) -> float | None:
    stats = results_dir / STATS_FILE
    if not stats.is_file():
        return None
    try:
        return float(json.loads(stats.read_text())["fps"])
    except (ValueError, KeyError, TypeError) as err:
        print(f"{PROG}: warning: ignoring unreadable {stats} ({err})", file=sys.stderr)
        return None


def _print_metrics(metrics: dict, seqs: list[str]) -> None:
    head = [
        "class",
        "IoU",
        "sAMOTA",
        "AMOTA",
        "MOTA",
        "MOTP",
        "IDS",
        "FRAG",
        "FP",
        "FN",
        "GT",
        "fps",
    ]
    fps = metrics["fps"]
    row = (
        metrics["cls"], metrics["iou_threshold"], 100 * metrics["samota"], 100 * metrics["amota"],
        100 * metrics["mota"], 100 * metrics["motp"], metrics["ids"], metrics["frag"],
        metrics["fp"], metrics["fn"], metrics["num_gt"], "n/a" if fps is None else fps,
    )  # fmt: skip
    print(_table(head, [row]))
    per_seq = [
        (seq, 100 * v["mota"], 100 * v["motp"], v["ids"], v["frag"], v["fp"], v["fn"], v["num_gt"])
        for seq, v in metrics["per_sequence"].items()
    ]
    print(_table(["seq", "MOTA", "MOTP", "IDS", "FRAG", "FP", "FN", "GT"], per_seq))
    threshold = metrics["score_threshold"]
    threshold = f"{threshold:.4g}" if math.isfinite(threshold) else "none (every track kept)"
    print(
        f"score threshold {threshold} (best MOTA over the 40-point recall sweep; MOTA without it: {100 * metrics['mota_all_tracks']:.2f}); sequences {','.join(seqs)}"
    )


def _table(head: list[str], rows: list[tuple]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if math.isfinite(value) else str(value)
    return str(value)


def _finite(value):
    """Plain JSON values: numpy scalars become Python numbers, inf/nan become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit kitti``."""
    return run_command(PROG, argv, _main)


def _main(args: list[str]) -> int:
    if args and args[0] in DETECTION_COMMANDS:
        import importlib

        detection_cli = importlib.import_module("robokit.detection.cli")
        return int(getattr(detection_cli, DETECTION_COMMANDS[args[0]])(args[1:]) or 0)
    import tyro

    commands = {
        "track": TrackArgs,
        "eval-tracking": EvalTrackingArgs,
        "degrade-tracking": DegradeTrackingArgs,
        "fit-size-correction": FitSizeCorrectionArgs,
    }
    description = (
        "KITTI 3D tracking and detection. Also: 'robokit kitti train-detector --help' and "
        "'robokit kitti eval-detection --help'."
    )
    config = tyro.extras.subcommand_cli_from_dict(
        commands, args=args, prog=PROG, description=description
    )
    handlers = {
        TrackArgs: _track,
        EvalTrackingArgs: _eval_tracking,
        DegradeTrackingArgs: _degrade_tracking,
        FitSizeCorrectionArgs: _fit_size_correction,
    }
    return handlers[type(config)](config)
