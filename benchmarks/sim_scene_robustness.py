"""Detection and tracking on simulated LiDAR scenes under kitti-c corruptions: standard vs INTACT training.

The chain (every link is robokit's own code, nothing mocked):

1. scenes: ``robokit.simlidar.scenes.write_scene_dataset`` (the ``robokit sim-lidar
   make-scenes`` writer) makes ``--sequences`` moving street scenes of ``--frames`` frames
   (HDL-64E x 2048, seed ``--data-seed``), every frame also in the KITTI object layout; the
   first sequences are the training split, the last ``--test-sequences`` the test split
   (``object/ImageSets/{train,test}.txt``), so no test scene is seen in training.
2. training: ``robokit.detection.train.train_detector`` (the ``robokit kitti train-detector``
   trainer: SECOND-style detector, OpenPCDet's optimiser and augmentation) once per method and
   seed: ``standard`` (clean) and ``intact`` (the shared INTACT hooks of
   ``robokit.detection.intact.detection_hooks`` after ``--warmup`` clean epochs).
3. detection: the test scans, clean and under each kitti-c corruption
   (``robokit.pointcloud.corruptions``, frame i seeded ``i``) at severities 1, 3, 5, through
   ``robokit.detection.evaluate.detect_frames``; KITTI AP|R40 (BEV and 3D, moderate, IoU 0.7
   for Car) by ``robokit.detection.kitti_eval``.
4. tracking: the same detections, per test sequence, through ``robokit.tracking.track_sequence``
   (robokit's tracker preset, no ego-motion compensation: the ego drives straight at a constant
   speed), scored against the sequences' ``label_02`` by ``robokit.tracking.evaluate_tracking``
   (the KITTI devkit protocol as in AB3DMOT: MOTA at the best score threshold, sAMOTA; 3D IoU 0.25).

Reduced for a shared 2-core CPU: the ``cpu-tiny`` detector (grid 0..40 x -20..20 m, 0.1 x 0.1 x 0.2 m
voxels, encoder 8-16 channels, one BEV layer of 32 / 64), Car only, labels within 40 m, a third of
the training frames, 4 epochs by default (``--epochs`` changes it; 1 clean before INTACT's curriculum).
Not a KITTI-size experiment.

Usage: ``python benchmarks/sim_scene_robustness.py [--quick] [--seeds 0 1] [--epochs 12]
[--corruptions gaussian_noise drop_points] [--out runs/sim_scene]``; a finished run's ``rows.json``
is reused and only the conditions it lacks are evaluated. ``--png`` writes the figure. The last line printed is the benchmark JSON (robokit = INTACT's mean
corrupted BEV AP, peer = standard training's).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SEVERITIES = (1, 3, 5)
#: kitti-c corruptions evaluated (the INTACT paper's noise and point drop first); fov_filter is
#: left out: its narrowest level keeps +-45 deg, and the camera crop the KITTI labels need already
#: cuts every scan to +-40.7 deg, so it would change nothing.
CORRUPTIONS = ("gaussian_noise", "drop_points", "beam_missing", "crosstalk", "motion_blur", "local_cutout")
CLASS = "Car"
METHODS = ("standard", "intact")


@dataclass(frozen=True)
class Budget:
    """Sizes of one run (scene set, detector, training)."""

    sequences: int = 7
    test_sequences: int = 2
    frames: int = 30
    train_stride: int = 3
    """every train_stride-th frame of the training sequences is a training scan (more scenes, fewer look-alike frames)."""
    data_seed: int = 0
    preset: str = "cpu-tiny"
    epochs: int = 4
    warmup: int = 1
    batch_size: int = 2
    score_frames: int | None = 4
    """training scans the INTACT curriculum scores its robust AP on each epoch (None: all)."""
    gate: str = "absolute"
    """INTACT's curriculum gate: robust BEV AP >= 0.7 ("absolute", robokit's default), or robust / clean
    BEV AP on the same scans >= 0.7 ("relative", robokit's deviation for weak detectors)."""
    label_range: float = 40.0


QUICK = Budget()
#: the end-to-end test's size: seconds, not minutes
TOY = Budget(sequences=2, test_sequences=1, frames=3, train_stride=1, epochs=1, warmup=0, batch_size=1,
             score_frames=1, gate="relative")


# ----------------------------------------------------------------------------- 1. scenes
def make_scenes(out: Path, budget: Budget, progress: bool = False) -> dict:
    """Write the scene set and the by-sequence split; returns {"train": [seq], "test": [seq], "frames": F}."""
    from robokit.simlidar.scenes import SceneConfig, write_scene_dataset

    config = SceneConfig(frames=budget.frames, max_label_range=budget.label_range)
    summary = write_scene_dataset(out, config, budget.sequences, budget.data_seed, object_stride=1,
                                  progress=progress)
    names = [s["name"] for s in summary["sequences"]]
    split = {"train": names[: -budget.test_sequences], "test": names[-budget.test_sequences:],
             "frames": budget.frames}
    image_sets = out / "object" / "ImageSets"
    image_sets.mkdir(parents=True, exist_ok=True)
    for name, stride in (("train", budget.train_stride), ("test", 1)):
        ids = [f"{names.index(seq) * budget.frames + frame:06d}" for seq in split[name]
               for frame in range(0, budget.frames, stride)]
        (image_sets / f"{name}.txt").write_text("\n".join(ids) + "\n")
    return split


# ----------------------------------------------------------------------------- 2. training
def train(data: Path, run: Path, method: str, seed: int, budget: Budget, progress: bool = False) -> dict:
    """Train one detector (``method`` standard or intact); returns the trainer's summary."""
    from robokit.detection.intact import IntactDetectionConfig, detection_hooks
    from robokit.detection.train import TrainDetectorConfig, train_detector

    config = TrainDetectorConfig(
        data=data / "object", out=run, split="train", preset=budget.preset, classes=(CLASS,),
        epochs=budget.epochs, batch_size=budget.batch_size, seed=seed, robust_method=method,
        robust_warmup_epochs=budget.warmup, checkpoint_every=budget.epochs, eval_at_end=False,
        overwrite=True, logger=("csv",),
    )
    hooks = detection_hooks(IntactDetectionConfig(method=method, seed=seed, warmup_epochs=budget.warmup,
                                                  score_frames=budget.score_frames, curriculum_gate=budget.gate))
    started = time.process_time()
    summary = train_detector(config, progress=progress, hooks=hooks)
    summary["train_cpu_seconds"] = time.process_time() - started
    return summary


# ----------------------------------------------------------------------------- 3.-4. evaluation
def test_frames(data: Path) -> list:
    """The test split's ``KittiFrame`` list (decoded once, camera-FOV points)."""
    from robokit.detection.dataset import KittiObjectDataset

    dataset = KittiObjectDataset(data / "object", split="test", classes=(CLASS,))
    return [dataset[i] for i in range(len(dataset))]


def detections_to_track_objects(detections: list):
    """Per-frame ``FrameDetections`` of one sequence -> one ``TrackObjects`` (frame = list index)."""
    from robokit.tracking.io import TrackObjects

    kept = [(frame, d) for frame, d in enumerate(detections) if len(d.scores)]
    if not kept:
        return TrackObjects.empty()
    count = [len(d.scores) for _, d in kept]
    boxes = np.concatenate([d.boxes_cam for _, d in kept])
    return TrackObjects(
        frame=np.repeat([frame for frame, _ in kept], count).astype(np.int64),
        track_id=np.full(sum(count), -1, dtype=np.int64),
        obj_type=np.concatenate([np.asarray(d.names, dtype=str) for _, d in kept]),
        truncated=np.zeros(sum(count)),
        occluded=np.zeros(sum(count), dtype=np.int64),
        alpha=np.zeros(sum(count)),  # unused by the tracker and the 3D evaluation
        bbox2d=np.concatenate([d.bbox for _, d in kept]).astype(np.float64),
        boxes=boxes.astype(np.float64),
        score=np.concatenate([d.scores for _, d in kept]).astype(np.float64),
    )


def score_tracking(detections: list, split: dict, labels: dict) -> dict:
    """Track each test sequence's detections and score them; returns MOTA, sAMOTA, IDS, ..."""
    from robokit.tracking import EvalConfig, evaluate_tracking, track_sequence

    frames = split["frames"]
    results = {}
    for index, seq in enumerate(split["test"]):
        objects = detections_to_track_objects(detections[index * frames:(index + 1) * frames])
        results[seq] = track_sequence(objects, classes=(CLASS,), num_frames=frames).objects
    metrics = evaluate_tracking(labels, results, EvalConfig(cls=CLASS, iou_threshold=0.25)).to_dict()
    return {key: metrics[key] for key in ("mota", "samota", "motp", "ids", "fp", "fn", "num_gt")}


def evaluate_condition(model, frames: list, split: dict, labels: dict, corruption: str | None,
                       severity: int) -> dict:
    """BEV / 3D AP (moderate) and tracking metrics of ``model`` on the test scans under one condition."""
    from robokit.detection.evaluate import detect_frames
    from robokit.detection.kitti_eval import evaluate_kitti

    detections = detect_frames(model, frames, corruption, severity, seed=0, progress=False)
    ap = evaluate_kitti([f.annotations for f in frames], detections, classes=(CLASS,)).ap[CLASS]
    row = {"corruption": corruption or "clean", "severity": severity if corruption else 0,
           "bev": ap["bev"]["moderate"], "3d": ap["3d"]["moderate"],
           "detections": int(sum(len(d.scores) for d in detections))}
    row.update(score_tracking(detections, split, labels))
    return row


def conditions(corruptions=CORRUPTIONS, severities=SEVERITIES) -> list[tuple[str | None, int]]:
    return [(None, 0)] + [(name, severity) for name in corruptions for severity in severities]


def evaluate_run(checkpoint: Path, data: Path, split: dict, corruptions=CORRUPTIONS, jobs: int = 1) -> list[dict]:
    """Every condition's row for one trained detector (clean first), over ``jobs`` processes.

    Each condition is independent and deterministic (frame i of a corruption seeded ``i``), so
    ``jobs > 1`` gives the same rows as one process, in the same order.
    """
    return evaluate_conditions(checkpoint, data, split, conditions(corruptions), jobs)


def evaluate_conditions(checkpoint: Path, data: Path, split: dict, todo: list, jobs: int = 1) -> list[dict]:
    """The rows of the conditions ``todo`` ((name or None, severity) pairs), in that order, over ``jobs`` processes."""
    if not todo:
        return []
    if jobs <= 1:
        return _evaluate_conditions(checkpoint, data, split, todo)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    jobs = min(jobs, len(todo))
    chunks = [todo[i::jobs] for i in range(jobs)]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(_evaluate_conditions, *zip(*[(checkpoint, data, split, c) for c in chunks], strict=True)))
    by_condition = {(r["corruption"], r["severity"]): r for part in parts for r in part}
    return [by_condition[(name or "clean", severity if name else 0)] for name, severity in todo]


def _evaluate_conditions(checkpoint: Path, data: Path, split: dict, todo: list) -> list[dict]:
    import torch

    from robokit.detection.train import load_detector
    from robokit.tracking import read_tracking_labels

    torch.set_num_threads(1)
    model = load_detector(checkpoint)
    frames = test_frames(data)
    labels = {seq: read_tracking_labels(data / "tracking" / "training" / "label_02" / f"{seq}.txt")
              for seq in split["test"]}
    return [evaluate_condition(model, frames, split, labels, name, severity) for name, severity in todo]


# ----------------------------------------------------------------------------- tables
def _mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def summarise(runs: dict[str, list[list[dict]]]) -> dict:
    """Per method: {condition: {metric: mean over seeds}} and the corrupted means."""
    out = {}
    for method, seed_rows in runs.items():
        table = {}
        for index, row in enumerate(seed_rows[0]):
            key = f"{row['corruption']}@{row['severity']}"
            table[key] = {m: _mean([rows[index][m] for rows in seed_rows]) for m in ("bev", "3d", "mota", "samota")}
        corrupted = [v for k, v in table.items() if not k.startswith("clean")]
        table["corrupted_mean"] = {m: _mean([v[m] for v in corrupted]) for m in ("bev", "3d", "mota", "samota")}
        out[method] = table
    return out


def markdown_table(summary: dict) -> str:
    """Rows: condition; per method BEV AP, 3D AP, MOTA, sAMOTA (percent / x100)."""
    methods = list(summary)
    head = "| corruption | sev | " + " | ".join(
        f"{m} BEV AP | {m} 3D AP | {m} MOTA | {m} sAMOTA" for m in methods) + " |"
    lines = [head, "|" + "---|" * (2 + 4 * len(methods))]
    for key in summary[methods[0]]:
        name, _, severity = key.partition("@")
        cells = []
        for method in methods:
            v = summary[method][key]
            cells += [f"{v['bev']:.1f}", f"{v['3d']:.1f}", f"{100 * v['mota']:.1f}", f"{100 * v['samota']:.1f}"]
        lines.append(f"| {name} | {severity or '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_table(runs: dict[str, list[list[dict]]], seeds) -> str:
    """Per condition, each method x seed as ``BEV / 3D / MOTA / sAMOTA`` (percent / x100)."""
    methods = list(runs)
    head = "| corruption | sev | " + " | ".join(f"{m} s{s}" for m in methods for s in seeds) + " |"
    lines = [head, "|" + "---|" * (2 + len(methods) * len(seeds))]
    for index, row in enumerate(runs[methods[0]][0]):
        cells = [f"{r[index]['bev']:.1f} / {r[index]['3d']:.1f} / {100 * r[index]['mota']:.1f} / "
                 f"{100 * r[index]['samota']:.1f}" for m in methods for r in runs[m]]
        lines.append(f"| {row['corruption']} | {row['severity'] or '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_spread(runs: dict[str, list[list[dict]]]) -> dict:
    """Per method and metric: the clean and the corrupted-mean value of each seed, their mean and 95% t interval.

    With the two methods run on the same seeds, ``"intact - standard"`` holds the per-seed differences
    (same seed: same initialisation and data order) and their interval.
    """
    from robokit.pretrain.finetune import mean_interval

    def per_seed(rows: list[dict], metric: str) -> dict[str, float]:
        corrupted = [r[metric] for r in rows if r["corruption"] != "clean"]
        return {"clean": rows[0][metric], "corrupted_mean": _mean(corrupted)}

    values = {m: {metric: [per_seed(rows, metric) for rows in seed_rows] for metric in ("bev", "3d", "mota", "samota")}
              for m, seed_rows in runs.items()}
    if {"standard", "intact"} <= set(values) and len(runs["standard"]) == len(runs["intact"]):
        values["intact - standard"] = {
            metric: [{k: a[k] - b[k] for k in a} for a, b in zip(values["intact"][metric], values["standard"][metric],
                                                                 strict=True)]
            for metric in values["intact"]}
    out = {}
    for name, by_metric in values.items():
        out[name] = {metric: {key: {"seeds": [v[key] for v in seeds],
                                    "mean_ci95": list(mean_interval([v[key] for v in seeds]))}
                              for key in ("clean", "corrupted_mean")}
                     for metric, seeds in by_metric.items()}
    return out


def curriculum_trace(run_dir: Path) -> list[dict]:
    """INTACT's curriculum per epoch from the run's ``metrics.csv``: epoch (1-based), level, strength, scores.

    Each epoch's hook row carries ``curriculum/strength`` (0 in the clean warm-up); after the warm-up
    also the level it trained at, the robust score (and the clean one with the relative gate) and
    whether it advanced. Empty when the file is missing (standard training has no hooks).
    """
    from robokit.trainers.plotting import metric_rows

    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    rows = metric_rows(path, "curriculum/strength")
    names = {"level": "curriculum/level", "robust": "curriculum/val_robust_score",
             "clean": "curriculum/val_clean_score", "advanced": "curriculum/advanced"}
    return [{"epoch": epoch, "strength": float(row["curriculum/strength"]),
             **{key: float(row[col]) if row.get(col) else None for key, col in names.items()}}
            for epoch, row in enumerate(rows, start=1)]


def plot(summary: dict, path: Path, corruptions=CORRUPTIONS) -> None:
    """BEV AP and MOTA against severity, one panel per metric, a line per method x corruption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (metric, label, scale) in zip(axes, (("bev", "Car BEV AP|R40 (moderate)", 1.0),
                                                 ("mota", "Car MOTA (x100, 3D IoU 0.25)", 100.0)), strict=True):
        for method, style in zip(summary, ("-", "--"), strict=False):
            clean = scale * summary[method]["clean@0"][metric]
            for index, name in enumerate(corruptions):
                values = [clean] + [scale * summary[method][f"{name}@{s}"][metric] for s in SEVERITIES]
                ax.plot([0, *SEVERITIES], values, style, color=f"C{index}", marker="o",
                        label=f"{method} {name}")
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle("Simulated street scenes: SECOND-style detector + tracker under kitti-c")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the reduced CPU budget (the only one run so far)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--epochs", type=int, default=None, help="override the budget's epochs")
    parser.add_argument("--gate", choices=("absolute", "relative"), default=None,
                        help="INTACT's curriculum gate (default: the budget's, absolute)")
    parser.add_argument("--score-frames", type=int, default=None,
                        help="training scans of INTACT's per-epoch curriculum score (default: the budget's, 4)")
    parser.add_argument("--corruptions", nargs="+", default=list(CORRUPTIONS), choices=CORRUPTIONS,
                        help="kitti-c corruptions to evaluate (each at severities 1, 3, 5; clean always)")
    parser.add_argument("--out", type=Path, default=Path("runs/sim_scene_robustness"))
    parser.add_argument("--data", type=Path, default=None, help="reuse a scene set made by an earlier run")
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the evaluation (same rows as one)")
    return parser.parse_args(argv)


def trained(data: Path, run_dir: Path, method: str, seed: int, budget: Budget, progress: bool) -> dict:
    """Train, or reuse a finished training in ``run_dir`` (its ``final.pt``; ``train.json`` if written)."""
    summary_file = run_dir / "train.json"
    if (run_dir / "final.pt").is_file():
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        return {**summary, "checkpoint": str(run_dir / "final.pt")}
    summary = train(data, run_dir, method, seed, budget, progress)
    summary_file.write_text(json.dumps(summary, indent=1))
    return summary


def evaluated(data: Path, run_dir: Path, split: dict, method: str, seed: int, budget: Budget,
              args: argparse.Namespace) -> dict:
    """Train (or reuse) one run and evaluate the conditions its ``rows.json`` lacks; rows in ``args.corruptions`` order."""
    rows_file = run_dir / "rows.json"
    record = json.loads(rows_file.read_text()) if rows_file.is_file() else None
    todo = conditions(args.corruptions)
    done = {(r["corruption"], r["severity"]): r for r in (record or {}).get("rows", [])}
    missing = [(name, severity) for name, severity in todo if (name or "clean", severity) not in done]
    if missing:
        summary = trained(data, run_dir, method, seed, budget, args.progress)
        started = time.perf_counter()
        for row in evaluate_conditions(Path(summary["checkpoint"]), data, split, missing, args.jobs):
            done[(row["corruption"], row["severity"])] = row
        if record is None:
            record = {"train_cpu_seconds": summary.get("train_cpu_seconds"), "eval_wall_seconds": 0.0,
                      "eval_jobs": args.jobs, "loss": [summary.get("first_epoch_loss"), summary.get("last_epoch_loss")]}
        record["eval_wall_seconds"] = record.get("eval_wall_seconds", 0.0) + time.perf_counter() - started
        record["rows"] = list(done.values())
        rows_file.write_text(json.dumps(record, indent=1))
    return {**record, "rows": [done[(name or "clean", severity)] for name, severity in todo]}


def run(args: argparse.Namespace, budget: Budget) -> dict:
    """Scenes (or reuse), train every method x seed (reusing finished runs), evaluate; returns the report."""
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data or args.out / "scenes"
    split_file = data / "split.json"
    if not split_file.is_file():
        split_file.parent.mkdir(parents=True, exist_ok=True)
        split_file.write_text(json.dumps(make_scenes(data, budget, args.progress)))
    split = json.loads(split_file.read_text())
    runs: dict[str, list[list[dict]]] = {}
    facts = []
    for method in args.methods:
        runs[method] = []
        for seed in args.seeds:
            run_dir = args.out / f"{method}_s{seed}"
            record = evaluated(data, run_dir, split, method, seed, budget, args)
            runs[method].append(record["rows"])
            trace = curriculum_trace(run_dir)
            facts.append({"method": method, "seed": seed, **{k: v for k, v in record.items() if k != "rows"},
                          "curriculum": trace})
            if trace:
                print(f"{method} seed {seed}: curriculum level per epoch "
                      + " ".join("w" if t["level"] is None else str(int(t["level"])) for t in trace), flush=True)
            clean = record["rows"][0]
            print(f"{method} seed {seed}: clean BEV AP {clean['bev']:.1f}, 3D AP {clean['3d']:.1f}, "
                  f"MOTA {clean['mota']:.3f}, sAMOTA {clean['samota']:.3f}; "
                  f"train {record['train_cpu_seconds'] or float('nan'):.0f} CPU-s, "
                  f"eval {record.get('eval_wall_seconds', float('nan')):.0f} s wall",
                  flush=True)
    summary = summarise(runs)
    return {"split": split, "budget": budget.__dict__, "seeds": args.seeds, "runs": facts, "summary": summary,
            "spread": seed_spread(runs), "per_seed_table": seed_table(runs, args.seeds)}


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = {"epochs": args.epochs, "gate": args.gate, "score_frames": args.score_frames}
    budget = replace(QUICK, **{k: v for k, v in overrides.items() if v is not None})
    started = time.perf_counter()
    report = run(args, budget)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(markdown_table(report["summary"]))
    print(report["per_seed_table"])
    for name, by_metric in report["spread"].items():
        print(name + ": " + "; ".join(
            f"{metric} {key} {v['mean_ci95'][0]:.3g} [{v['mean_ci95'][1]:.3g}, {v['mean_ci95'][2]:.3g}]"
            for metric in ("bev", "mota") for key, v in by_metric[metric].items()))
    if args.png is not None:
        plot(report["summary"], args.png, args.corruptions)
    summary = report["summary"]
    line = {
        "benchmark": "sim_scene_robustness",
        "metric": "Car BEV AP|R40 moderate, mean over kitti-c corruptions x severities 1/3/5",
        "robokit": summary.get("intact", {}).get("corrupted_mean", {}).get("bev"),
        "peers": {"standard": summary.get("standard", {}).get("corrupted_mean", {}).get("bev")},
        "mota": {m: summary[m]["corrupted_mean"]["mota"] for m in summary},
        "clean_bev": {m: summary[m]["clean@0"]["bev"] for m in summary},
        "gap_bev_ci95": report["spread"].get("intact - standard", {}).get("bev", {}).get("corrupted_mean", {}).get(
            "mean_ci95"),
        "gate": budget.gate,
        "seeds": args.seeds,
        "wall_seconds": time.perf_counter() - started,
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
