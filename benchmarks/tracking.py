"""KITTI 3D tracking: robokit's tracker against AB3DMOT's, per class, with an ablation and FPS.

On the ten shared KITTI tracking training sequences (0000 0002 0003 0004 0005 0007 0009 0011
0017 0020) with the PointRCNN Car, Pedestrian and Cyclist detections published with AB3DMOT:

1. ablation: starting from the AB3DMOT preset (today's tracker: the same boxes and tracks as
   AB3DMOT run without ego-motion compensation), each change of robokit's tracker is added one
   at a time; every row is tracked for the three classes and evaluated under the devkit
   protocol (AB3DMOT's evaluate.py: robokit's default evaluation flags) at 3D IoU 0.25 and
   0.5. ``--quick`` runs the first and the last row only.
2. speed: frames per second of each row's tracking loop (all three classes tracked on every
   frame; file reading excluded, JIT warmed up), the rows timed in turn, median of repeats.
3. evaluation speed: one CLEAR MOT pass at the chosen score threshold timed in robokit (3D
   IoU, matching, ignore rules, counting) and in motmetrics, which is handed robokit's
   association as a distance matrix; their MOTA, FP, FN and switches must agree exactly.

Development and evaluation use these same ten sequences (there is no held-out split here; the
validation half is reserved), so the margins are not a generalisation claim.

4. ``--per-class``: published per-class settings (AB3DMOT's PointRCNN rows, SimpleTrack's
   Waymo rows) on top of robokit's tracker, the whole table and one class's row at a time,
   evaluated like the ablation (then timed: the last row of the table is the chosen one).

Usage: python benchmarks/tracking.py [--quick] [--per-class]
The last line printed is the JSON object of the benchmark convention.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "kitti" / "tracking"
SEQUENCES = ("0000", "0002", "0003", "0004", "0005", "0007", "0009", "0011", "0017", "0020")
CLASSES = ("Car", "Pedestrian", "Cyclist")
IOUS = (0.25, 0.5)


def ablation_rows(quick: bool):
    """(name, settings) pairs: AB3DMOT, then robokit's changes added one at a time."""
    from robokit.tracking.tracker import TRACKER_PRESETS, preset_configs

    ab3dmot = TRACKER_PRESETS["ab3dmot"]
    two_stage = ab3dmot.replace(high_score=0.0, low_match_threshold=-0.2)
    birth = two_stage.replace(birth_score=0.0)
    keep = birth.replace(keep_high_score=True)
    rows = [
        ("AB3DMOT (today)", ab3dmot),
        ("+ two-stage matching", two_stage),
        ("+ high-score birth", birth),
        ("+ weak matches keep the score", keep),
        ("+ max_age 4", TRACKER_PRESETS["robokit"]),
        ("+ SimpleTrack's cyclist row (robokit)", preset_configs("robokit")),
    ]
    assert keep.replace(max_age=4, max_report_misses=1) == TRACKER_PRESETS["robokit"]
    return [rows[0], rows[-1]] if quick else rows


def per_class_rows():
    """(name, ClassConfigs) pairs: robokit, then each published per-class table, whole and by row."""
    from robokit.tracking.tracker import (
        AB3DMOT_POINTRCNN_CLASSES,
        SIMPLETRACK_WAYMO_CLASSES,
        ClassConfigs,
        TrackerConfig,
    )

    base = TrackerConfig()
    rows = [("robokit", ClassConfigs(base))]
    for source, table in (("AB3DMOT", AB3DMOT_POINTRCNN_CLASSES),
                          ("SimpleTrack", SIMPLETRACK_WAYMO_CLASSES)):  # fmt: skip
        configs = {name: base.replace(**changes) for name, changes in table.items()}
        rows.append((f"{source} rows, all classes", ClassConfigs(base, configs)))
        rows += [
            (f"{source} {name} row", ClassConfigs(base, {name: configs[name]})) for name in CLASSES
        ]
    return rows


def load():
    from robokit.tracking import read_detections, read_tracking_labels

    labels = {
        s: read_tracking_labels(DATA / "training" / "label_02" / f"{s}.txt") for s in SEQUENCES
    }
    detections = {
        (c, s): read_detections(DATA / "detections" / f"pointrcnn_{c}" / f"{s}.txt")
        for c in CLASSES
        for s in SEQUENCES
    }
    return labels, detections


def track_all(labels, detections, config):
    """Results per class and sequence, and the loop seconds summed over classes."""
    from robokit.tracking import track_sequence

    results, seconds = {}, 0.0
    for cls in CLASSES:
        for seq in SEQUENCES:
            run = track_sequence(detections[cls, seq], config, (cls,), labels[seq].num_frames)
            results[cls, seq] = run.objects
            seconds += run.seconds
    return results, seconds


def evaluate_row(labels, results) -> dict:
    """(class, IoU) -> headline metrics under the default (devkit) protocol."""
    from robokit.tracking.evaluate import EvalConfig, evaluate_tracking

    table = {}
    for cls in CLASSES:
        per_seq = {seq: results[cls, seq] for seq in SEQUENCES}
        for iou in IOUS:
            m = evaluate_tracking(labels, per_seq, EvalConfig(cls=cls, iou_threshold=iou))
            table[f"{cls}@{iou}"] = {
                "samota": round(100 * m.samota, 2), "mota": round(100 * m.mota, 2),
                "motp": round(100 * m.motp, 2),
                "ids": m.ids, "frag": m.frag, "fp": m.fp, "fn": m.fn, "num_gt": m.num_gt,
            }  # fmt: skip
    return table


def time_rows(labels, detections, rows, repeats: int) -> dict[str, float]:
    """Median frames/s of each row (rows timed in turn, so load changes hit all alike)."""
    frames = sum(labels[s].num_frames for s in SEQUENCES)
    rates: dict[str, list[float]] = {name: [] for name, _ in rows}
    for _ in range(repeats):
        for name, config in rows:
            _, seconds = track_all(labels, detections, config)
            rates[name].append(frames / seconds)
    return {name: statistics.median(values) for name, values in rates.items()}


def print_ablation(tables: dict, fps: dict) -> None:
    head = f"{'tracker':<32}" + "".join(f"{key:>16}" for key in tables[next(iter(tables))])
    print("sAMOTA / MOTA (devkit protocol, 10 training sequences)")
    print(head + f"{'frames/s':>10}")
    for name, table in tables.items():
        cells = "".join(f"{v['samota']:>8.2f}/{v['mota']:<7.2f}" for v in table.values())
        print(f"{name:<32}{cells}{fps[name]:>10.0f}")


def clear_mot_versus_motmetrics(labels, results, passes: int):
    """Seconds of one CLEAR MOT pass in robokit and in motmetrics on the same association."""
    from robokit.tracking.crosscheck import motmetrics_summary
    from robokit.tracking.evaluate import EvalConfig, clear_mot, evaluate_tracking

    cars = {seq: results["Car", seq] for seq in SEQUENCES}
    threshold = evaluate_tracking(labels, cars, EvalConfig()).score_threshold
    config = EvalConfig(id_switch_rule="clear")
    ours_times, associations = [], {}
    for _ in range(passes):
        associations = {}
        start = time.perf_counter()
        ours = clear_mot(labels, cars, config, threshold, associations)
        ours_times.append(time.perf_counter() - start)
    theirs_times = []
    for _ in range(passes):
        start = time.perf_counter()
        theirs = motmetrics_summary(associations)
        theirs_times.append(time.perf_counter() - start)
    same = all(theirs[k] == ours[k] for k in ("fp", "fn", "ids", "num_gt")) and math.isclose(
        theirs["mota"], ours["mota"], abs_tol=1e-12
    )
    return min(ours_times), min(theirs_times), same, ours["mota"]


def run_per_class(labels, detections, repeats: int) -> int:
    """Evaluate and time every per-class row; print the table and the benchmark JSON line."""
    rows = per_class_rows()
    tables = {}
    for name, configs in rows:
        results, _ = track_all(labels, detections, configs)
        tables[name] = evaluate_row(labels, results)
    fps = time_rows(labels, detections, rows, repeats)
    print_ablation(tables, fps)
    base = tables[rows[0][0]]
    record = {
        "benchmark": "kitti_tracking_per_class",
        "unit": "frames per second of the tracking loop (robokit's tracker)",
        "higher_is_better": True,
        "robokit": round(fps[rows[0][0]], 1),
        "peers": {},
        "ratio": None,
        "bound": None,
        "notes": f"10 KITTI training seqs, devkit protocol; {repeats} timing repeats; rows vs robokit",
        "tracking": {
            "rows": {name: {"fps": round(fps[name], 1), **tables[name]} for name, _ in rows},
            "samota_change": {
                name: {
                    k: round(v["samota"] - base[k]["samota"], 2) for k, v in tables[name].items()
                }
                for name, _ in rows
            },
        },
    }
    print(json.dumps(record))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="before/after only, fewer repeats")
    parser.add_argument(
        "--per-class",
        action="store_true",
        help="published per-class settings instead of the ablation",
    )
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared KITTI tracking data not found at {DATA}", file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(1)
    from robokit.tracking.tracker import warm_up

    warm_up()
    labels, detections = load()
    if args.per_class:
        return run_per_class(labels, detections, repeats=1 if args.quick else 3)
    rows = ablation_rows(args.quick)
    tables, results = {}, {}
    for name, config in rows:
        results[name], _ = track_all(labels, detections, config)
        tables[name] = evaluate_row(labels, results[name])
    fps = time_rows(labels, detections, rows, repeats=3 if args.quick else 7)
    print_ablation(tables, fps)
    before, after = rows[0][0], rows[-1][0]
    cost = fps[before] / fps[after]
    print(f"cost of robokit's tracker: {cost:.2f}x AB3DMOT's tracking loop (goal: <= 2x)")

    notes, peers, robokit_seconds = [], {}, None
    try:
        robokit_seconds, peer_seconds, same, mota = clear_mot_versus_motmetrics(
            labels, results[before], passes=2 if args.quick else 5
        )
        peers["motmetrics"] = round(peer_seconds, 5)
        print(
            f"one CLEAR MOT pass (Car, AB3DMOT preset): robokit {robokit_seconds * 1e3:.1f} ms, "
            f"motmetrics {peer_seconds * 1e3:.1f} ms given the distances; identical: {same}"
        )
        notes.append(f"robokit and motmetrics CLEAR MOT identical={same} (MOTA {100 * mota:.2f})")
        if not same:
            print("MISMATCH between robokit and motmetrics", file=sys.stderr)
    except ImportError as err:  # robokit.optional.MissingOptionalDependency is one
        notes.append(f"motmetrics not installed ({err}); no peer")
    delta = {
        key: round(tables[after][key]["samota"] - tables[before][key]["samota"], 2)
        for key in tables[before]
    }
    notes += [
        "10 KITTI training seqs, PointRCNN Car/Pedestrian/Cyclist, devkit protocol",
        f"sAMOTA change AB3DMOT -> robokit: {delta}",
        f"tracking loop {fps[before]:.0f} -> {fps[after]:.0f} frames/s (3 classes per frame)",
    ]
    record = {
        "benchmark": "kitti_tracking",
        "unit": "seconds per CLEAR MOT pass (Car, 10 sequences)",
        "higher_is_better": False,
        "robokit": None if robokit_seconds is None else round(robokit_seconds, 5),
        "peers": peers,
        "ratio": round(peers["motmetrics"] / robokit_seconds, 2) if peers else None,
        "bound": None,
        "notes": "; ".join(notes),
        "tracking": {
            "rows": {name: {"fps": round(fps[name], 1), **tables[name]} for name, _ in rows},
            "cost_ratio": round(cost, 3),
        },
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
