"""Hand robokit's per-frame associations to ``motmetrics`` (an independent CLEAR MOT counter).

Used by ``benchmarks/tracking.py`` and the tests to check that robokit's FP / FN / switch
counts equal those motmetrics computes on the same association. motmetrics is a dev extra and
is imported lazily.
"""

from __future__ import annotations

import numpy as np

from robokit.tracking.evaluate import FrameAssociation

__all__ = ["motmetrics_summary"]


def _accumulator(mm, frames: list[FrameAssociation]):
    """One ``MOTAccumulator`` whose only finite distances are robokit's matched pairs."""
    accumulator = mm.MOTAccumulator(auto_id=False)
    for frame in frames:
        distances = np.full((len(frame.gt_ids), len(frame.tracker_ids)), np.nan)
        rows = {int(g): i for i, g in enumerate(frame.gt_ids)}
        cols = {int(t): j for j, t in enumerate(frame.tracker_ids)}
        for (gt_id, tracker_id), iou in zip(frame.pairs, frame.ious, strict=True):
            distances[rows[int(gt_id)], cols[int(tracker_id)]] = 1.0 - iou
        accumulator.update(
            frame.gt_ids.tolist(), frame.tracker_ids.tolist(), distances, frameid=frame.frame
        )
    return accumulator


def motmetrics_summary(associations: dict[str, list[FrameAssociation]]) -> dict[str, float]:
    """motmetrics' overall MOTA, FP, misses, switches and GT count for these associations.

    Args:
        associations: sequence -> per-frame records from
            :func:`robokit.tracking.evaluate.clear_mot`.
    """
    from robokit.optional import require

    mm = require("motmetrics")
    names = sorted(associations)
    summary = mm.metrics.create().compute_many(
        [_accumulator(mm, associations[name]) for name in names],
        metrics=["mota", "num_false_positives", "num_misses", "num_switches", "num_objects"],
        names=names,
        generate_overall=True,
    )
    overall = summary.loc["OVERALL"]
    return {
        "mota": float(overall["mota"]),
        "fp": int(overall["num_false_positives"]),
        "fn": int(overall["num_misses"]),
        "ids": int(overall["num_switches"]),
        "num_gt": int(overall["num_objects"]),
    }
