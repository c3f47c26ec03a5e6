"""KITTI 3D tracking: tracker frames/s and CLEAR MOT evaluation time against motmetrics.

On the four shared KITTI training sequences (0000, 0002, 0003, 0004) with the PointRCNN
car detections published with AB3DMOT:

1. tracker speed: robokit's tracker over all 845 frames, repeated; median frames/s of the
   tracking loop (file reading excluded, JIT warmed up). AB3DMOT's published 108.7 FPS is
   quoted for reference only: it was measured on other hardware and is not re-run here.
2. evaluation: full KITTI-protocol evaluation (40-point recall sweep) for the headline
   metrics, then one CLEAR MOT pass at the chosen score threshold timed in robokit (3D IoU,
   matching, ignore rules, counting) and in motmetrics (the pure-Python/pandas CLEAR MOT
   accumulator), which is given robokit's association as a distance matrix (finite only
   on robokit's matched pairs, ignored objects removed), so both count the same thing;
   their MOTA, FP, FN and switches must agree exactly (robokit with the classic CLEAR MOT
   switch rule, which is motmetrics').

Usage: python benchmarks/tracking.py [--quick]
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
SEQUENCES = ("0000", "0002", "0003", "0004")
AB3DMOT_PUBLISHED_FPS = 108.7  # AB3DMOT README, KITTI val split, their hardware


def load():
    from robokit.lidar.tracking import read_detections, read_tracking_labels

    labels = {
        s: read_tracking_labels(DATA / "training" / "label_02" / f"{s}.txt") for s in SEQUENCES
    }
    detections = {
        s: read_detections(DATA / "detections" / "pointrcnn_Car" / f"{s}.txt") for s in SEQUENCES
    }
    return labels, detections


def time_tracker(labels, detections, repeats: int):
    """Median frames/s over ``repeats`` runs of all sequences; also returns the last results."""
    from robokit.lidar.tracking import track_sequence

    rates, results = [], {}
    for _ in range(repeats):
        frames, seconds = 0, 0.0
        for seq in SEQUENCES:
            run = track_sequence(detections[seq], num_frames=labels[seq].num_frames)
            frames += run.num_frames
            seconds += run.seconds
            results[seq] = run.objects
        rates.append(frames / seconds)
    return statistics.median(rates), rates, results


def motmetrics_pass(associations):
    """Feed robokit's per-frame association to motmetrics; return (summary, seconds)."""
    from robokit.lidar.tracking.crosscheck import motmetrics_summary

    start = time.perf_counter()
    summary = motmetrics_summary(associations)
    return summary, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (well under 2 minutes)")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared KITTI tracking data not found at {DATA}", file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(1)
    from robokit.lidar.tracking.evaluate import EvalConfig, clear_mot, evaluate_tracking

    repeats = 3 if args.quick else 10
    labels, detections = load()
    fps, all_rates, results = time_tracker(labels, detections, repeats)
    print(
        f"tracker: {fps:.0f} frames/s (median of {repeats}: {', '.join(f'{r:.0f}' for r in all_rates)})"
    )

    start = time.perf_counter()
    full = evaluate_tracking(labels, results, EvalConfig())
    sweep_seconds = time.perf_counter() - start
    print(
        f"KITTI protocol (3D IoU 0.25, Car): sAMOTA {100 * full.samota:.2f}  MOTA {100 * full.mota:.2f}  "
        f"MOTP {100 * full.motp:.2f}  IDS {full.ids}  FRAG {full.frag}  FP {full.fp}  FN {full.fn}  "
        f"(full sweep {sweep_seconds:.2f} s)"
    )

    clear_config = EvalConfig(id_switch_rule="clear")
    passes = 2 if args.quick else 5
    robokit_times, associations = [], {}
    for _ in range(passes):
        associations = {}
        start = time.perf_counter()
        ours = clear_mot(labels, results, clear_config, full.score_threshold, associations)
        robokit_times.append(time.perf_counter() - start)
    robokit_seconds = min(robokit_times)
    peers, notes = {}, []
    try:
        peer_times = []
        for _ in range(passes):
            theirs, seconds = motmetrics_pass(associations)
            peer_times.append(seconds)
        peers["motmetrics"] = min(peer_times)
        same = all(
            theirs[key] == ours[key] for key in ("fp", "fn", "ids", "num_gt")
        ) and math.isclose(theirs["mota"], ours["mota"], abs_tol=1e-12)
        print(
            f"one CLEAR MOT pass: robokit {robokit_seconds * 1000:.1f} ms (incl. 3D IoU + matching), "
            f"motmetrics {peers['motmetrics'] * 1000:.1f} ms (given the distances); "
            f"MOTA robokit {100 * ours['mota']:.4f} vs motmetrics {100 * theirs['mota']:.4f}; "
            f"FP {ours['fp']}/{theirs['fp']} FN {ours['fn']}/{theirs['fn']} "
            f"IDS {ours['ids']}/{theirs['ids']} -> identical: {same}"
        )
        notes.append(
            f"same association: robokit and motmetrics MOTA identical={same} ({100 * ours['mota']:.2f})"
        )
        if not same:
            print("MISMATCH between robokit and motmetrics", file=sys.stderr)
    except ImportError as err:  # robokit.optional.MissingOptionalDependency is one
        notes.append(f"motmetrics not installed ({err}); no peer")
    ratio = peers["motmetrics"] / robokit_seconds if peers else None
    notes += [
        "4 KITTI training seqs (0000,0002,0003,0004), PointRCNN Car detections, 845 frames",
        f"tracker {fps:.0f} frames/s median of {repeats} (loop only, JIT warm; {fps / AB3DMOT_PUBLISHED_FPS:.1f}x "
        f"AB3DMOT's published {AB3DMOT_PUBLISHED_FPS} FPS, measured by them on other hardware, not re-run)",
        f"KITTI 3D IoU 0.25: MOTA {100 * full.mota:.2f}, sAMOTA {100 * full.samota:.2f}, IDS {full.ids}",
        "robokit time includes 3D IoU and Hungarian matching; motmetrics is handed the distances",
    ]
    record = {
        "benchmark": "kitti_tracking_clear_mot",
        "unit": "seconds per CLEAR MOT pass (845 frames)",
        "higher_is_better": False,
        "robokit": round(robokit_seconds, 5),
        "peers": {k: round(v, 5) for k, v in peers.items()},
        "ratio": None if ratio is None else round(ratio, 2),
        "bound": None,
        "notes": "; ".join(notes),
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
