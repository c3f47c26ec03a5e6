"""KITTI 3D multi-object tracking evaluation: CLEAR MOT, sAMOTA / AMOTA (40 recall points).

The protocol follows the KITTI tracking devkit as extended to 3D by AB3DMOT, written anew:

* per frame, ground truth (GT) of the evaluated class and its neutral class (Van for Car,
  Person_sitting for Pedestrian) is matched to tracker boxes by the Hungarian method on
  ``1 - IoU3D``; pairs with IoU below ``iou_threshold`` (0.25 / 0.5 / 0.7) are refused;
* a GT box is *ignored* (neither a miss nor a hit) when it belongs to the neutral class, or
  its truncation > ``max_truncation`` (0), or its occlusion > ``max_occlusion`` (2); a tracker
  box matched to an ignored GT is not a false positive. The devkit applies the 25 px minimum
  height to tracker boxes only; ``gt_height_rule=True`` (off by default) also ignores GT boxes
  <= ``min_height`` pixels tall;
* an unmatched tracker box is ignored when it is of the neutral class, or <= ``min_height``
  pixels tall, or more than half of its 2D box lies in a DontCare area;
* MOTA = 1 - (FN + FP + IDS) / GT, MOTP = mean IoU of matched pairs, IDS and FRAG from
  each GT trajectory (the devkit's rule: a switch needs the previous frame matched; the
  classic CLEAR MOT rule, any change of matched id, with ``id_switch_rule="clear"``);
* scores: each tracker trajectory gets its mean score (re-averaged on every pass, as the
  devkit does: ``devkit_score_drift``); for 40 recall targets r = 1/40..1
  the score threshold reaching r is found, MOTA and sMOTA_r = max(0, 1 - (FN + FP + IDS -
  (1 - r) GT) / (r GT)) are computed on the tracks above it; AMOTA / sAMOTA are their sums
  over 40 (unreached recalls count 0), and the reported MOTA is the best over thresholds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from numba import njit
from scipy.optimize import linear_sum_assignment

from robokit.pointcloud.boxes import camera_to_upright_boxes, overlaps_unchecked
from robokit.tracking.io import TrackObjects

__all__ = [
    "EvalConfig",
    "FrameAssociation",
    "clear_mot",
    "NEUTRAL_CLASS",
    "TrackingMetrics",
    "evaluate_tracking",
    "prepare_sequence",
    "recall_thresholds",
]

#: class evaluated -> neighbouring class that is neither rewarded nor punished
NEUTRAL_CLASS = {"Car": "Van", "Pedestrian": "Person_sitting"}
NUM_RECALL_POINTS = 40


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings; the defaults are AB3DMOT's ``scripts/KITTI/evaluate.py`` (the KITTI
    tracking devkit with 3D IoU), so default figures equal that script's.

    ``gt_height_rule`` (off by default, as in the devkit) also ignores GT boxes at most
    ``min_height`` pixels tall; the devkit applies that rule to tracker boxes only.
    ``devkit_score_drift`` (on by default, as in the devkit) replicates how the script handles
    scores: it overwrites each box's score with its track's mean and re-averages on every pass
    of the recall sweep, so a mean can drift one ulp below the threshold taken from it and that
    track is dropped. Off, each track's mean is computed once.
    """

    cls: str = "Car"
    iou_threshold: float = 0.25
    max_truncation: float = 0.0
    max_occlusion: int = 2
    min_height: float = 25.0
    gt_height_rule: bool = False
    dontcare_overlap: float = 0.5
    id_switch_rule: str = "kitti"
    devkit_score_drift: bool = True

    def __post_init__(self) -> None:
        if self.id_switch_rule not in ("kitti", "clear"):
            raise ValueError(
                f"id_switch_rule must be 'kitti' or 'clear', got {self.id_switch_rule!r}"
            )
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")


@dataclass
class TrackingMetrics:
    """Metrics of one evaluation; counts are over all sequences evaluated."""

    mota: float
    motp: float
    moda: float
    samota: float
    amota: float
    amotp: float
    ids: int
    frag: int
    fp: int
    fn: int
    tp: int
    ignored_tp: int
    ignored_fn: int
    ignored_tracker: int
    num_gt: int
    recall: float
    precision: float
    mt: float
    pt: float
    ml: float
    score_threshold: float
    mota_all_tracks: float
    iou_threshold: float
    cls: str
    per_sequence: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- preparation


@dataclass
class _Sequence:
    """One sequence's evaluation inputs; rows of each array are sorted by frame.

    ``gt_slices[f]`` / ``tracker_slices[f]`` select frame f's rows, ``ious[f]`` is their
    ``(G_f, T_f)`` 3D IoU, ``trajectories`` lists the GT rows of each GT track in frame order.
    """

    name: str
    gt_ids: np.ndarray  # (G,) GT track ids
    gt_ignored: np.ndarray  # (G,) bool
    tracker_ids: np.ndarray  # (R,) track id per tracker row
    tracker_scores: np.ndarray  # (R,) mean score of the row's trajectory
    tracker_tracks: list[np.ndarray]  # rows of each tracker trajectory, in frame order
    tracker_ignorable: np.ndarray  # (R,) bool: ignored when left unmatched
    gt_slices: list[slice]
    tracker_slices: list[slice]
    ious: list[np.ndarray]
    trajectories: list[np.ndarray]


@njit(cache=True)
def _inside_dontcare(boxes, frames, areas, area_starts, area_stops, min_fraction):
    """``(T,)`` whether more than ``min_fraction`` of each 2D box lies in one DontCare area.

    boxes: ``(T, 4)`` ``[x1, y1, x2, y2]``; frames: ``(T,)`` their frame; areas: ``(D, 4)``
    DontCare boxes sorted by frame, ``area_starts / area_stops[f]`` bounding frame f's rows.
    """
    inside = np.zeros(boxes.shape[0], dtype=np.bool_)
    for i in range(boxes.shape[0]):
        frame = frames[i]
        if frame >= area_starts.shape[0]:
            continue
        own = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
        if own <= 0.0:
            continue
        for k in range(area_starts[frame], area_stops[frame]):
            width = min(boxes[i, 2], areas[k, 2]) - max(boxes[i, 0], areas[k, 0])
            height = min(boxes[i, 3], areas[k, 3]) - max(boxes[i, 1], areas[k, 1])
            if width > 0.0 and height > 0.0 and width * height / own > min_fraction:
                inside[i] = True
                break
    return inside


def _track_mean_scores(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each row's trajectory mean score ``(R,)``."""
    if len(ids) == 0:
        return np.zeros(0)
    unique, inverse = np.unique(ids, return_inverse=True)
    totals = np.bincount(inverse, weights=scores, minlength=len(unique))
    counts = np.bincount(inverse, minlength=len(unique))
    return (totals / counts)[inverse]


def _group_rows(ids: np.ndarray) -> list[np.ndarray]:
    """Rows of each distinct id, in row (frame) order."""
    if len(ids) == 0:
        return []
    by_id = np.lexsort((np.arange(len(ids)), ids))
    return np.split(by_id, np.flatnonzero(np.diff(ids[by_id])) + 1)


def _reaverage_scores(sequence: _Sequence) -> None:
    """The devkit's per-pass step: every box's score becomes its track's mean (Python ``sum``)."""
    scores = sequence.tracker_scores.copy()
    for rows in sequence.tracker_tracks:
        values = sequence.tracker_scores[rows].tolist()
        scores[rows] = sum(values) / float(len(values))
    sequence.tracker_scores = scores


def prepare_sequence(
    name: str, labels: TrackObjects, results: TrackObjects, config: EvalConfig
) -> _Sequence:
    """Split a sequence into frames with ignore flags and GT x tracker 3D IoU matrices."""
    neutral = NEUTRAL_CLASS.get(config.cls)
    relevant = {config.cls} | ({neutral} if neutral else set())
    gt = labels.select(np.isin(labels.obj_type, list(relevant)))
    dontcare = labels.select(labels.obj_type == "DontCare")
    tracker = results.select(np.isin(results.obj_type, list(relevant)))
    if np.isnan(tracker.score).any():
        raise ValueError(
            f"{results.source}: tracker results need a score (18th field) on every line"
        )

    gt_height = gt.bbox2d[:, 3] - gt.bbox2d[:, 1]
    gt_ignored = (
        (gt.obj_type == neutral)
        | (gt.truncated > config.max_truncation)
        | (gt.occluded > config.max_occlusion)
    )
    if config.gt_height_rule:
        gt_ignored |= gt_height <= config.min_height
    num_frames = max(gt.num_frames, tracker.num_frames, dontcare.num_frames)
    tracker_height = np.abs(tracker.bbox2d[:, 3] - tracker.bbox2d[:, 1])
    area_slices = dontcare.frame_slices(num_frames)
    tracker_ignorable = (
        (tracker.obj_type == neutral)
        | (tracker_height <= config.min_height)
        | _inside_dontcare(
            tracker.bbox2d,
            tracker.frame,
            dontcare.bbox2d,
            np.array([a.start for a in area_slices], dtype=np.int64),
            np.array([a.stop for a in area_slices], dtype=np.int64),
            config.dontcare_overlap,
        )
    )

    gt_upright = camera_to_upright_boxes(gt.boxes)
    tracker_upright = camera_to_upright_boxes(tracker.boxes)
    gt_slices = gt.frame_slices(num_frames)
    tracker_slices = tracker.frame_slices(num_frames)
    ious = [
        overlaps_unchecked(gt_upright[g], tracker_upright[t], True, False)
        for g, t in zip(gt_slices, tracker_slices, strict=True)
    ]
    return _Sequence(
        name=name,
        gt_ids=gt.track_id,
        gt_ignored=gt_ignored,
        tracker_ids=tracker.track_id,
        tracker_scores=tracker.score.copy()
        if config.devkit_score_drift
        else _track_mean_scores(tracker.track_id, tracker.score),
        tracker_tracks=_group_rows(tracker.track_id),
        tracker_ignorable=tracker_ignorable,
        gt_slices=gt_slices,
        tracker_slices=tracker_slices,
        ious=ious,
        trajectories=_group_rows(gt.track_id),
    )


# ----------------------------------------------------------------------------- one pass


@dataclass
class _Counts:
    tp: int = 0  # matched pairs with a GT that is not ignored
    matched: int = 0  # all matched pairs (the devkit's TP incl. ignored, used for recall and MOTP)
    overlap: float = 0.0  # summed IoU of all matched pairs
    fn: int = 0
    fp: int = 0
    ignored_tp: int = 0
    ignored_fn: int = 0
    ignored_tracker: int = 0
    num_gt: int = 0  # GT not ignored
    ids: int = 0
    frag: int = 0
    mostly_tracked: int = 0
    partly_tracked: int = 0
    mostly_lost: int = 0
    trajectories: int = 0
    matched_scores: list = field(default_factory=list)

    def add(self, other: _Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def mota(self) -> float:
        return 1.0 - (self.fn + self.fp + self.ids) / self.num_gt if self.num_gt else -math.inf

    @property
    def moda(self) -> float:
        return 1.0 - (self.fn + self.fp) / self.num_gt if self.num_gt else -math.inf

    @property
    def motp(self) -> float:
        return self.overlap / self.matched if self.matched else 0.0

    @property
    def recall(self) -> float:
        denominator = self.matched + self.fn
        return self.matched / denominator if denominator else 0.0

    @property
    def precision(self) -> float:
        denominator = self.matched + self.fp
        return self.matched / denominator if denominator else 0.0

    def smota(self, recall_target: float) -> float:
        if not self.num_gt:
            return -math.inf
        errors = self.fn + self.fp + self.ids - (1.0 - recall_target) * self.num_gt
        return min(1.0, max(0.0, 1.0 - errors / (recall_target * self.num_gt)))


def _match_frame(
    iou: np.ndarray, columns: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of GT rows to the kept tracker ``columns``; returns accepted pairs."""
    if iou.shape[0] == 0 or len(columns) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    sub = iou[:, columns]
    cost = np.where(sub >= threshold, 1.0 - sub, 1e9)
    rows, cols = linear_sum_assignment(cost)
    accepted = cost[rows, cols] < 1e9
    return rows[accepted], columns[cols[accepted]]


@dataclass
class FrameAssociation:
    """What one frame counts, after matching and ignore rules (for cross-checks with other tools).

    Attributes:
        frame: frame index.
        gt_ids: ``(G,)`` ids of GT boxes that count (not ignored).
        tracker_ids: ``(T,)`` ids of tracker boxes that count (kept by the score threshold,
            not ignored, not matched to an ignored GT).
        pairs: ``(P, 2)`` matched ``(gt_id, tracker_id)`` among those.
        ious: ``(P,)`` 3D IoU of each pair.
    """

    frame: int
    gt_ids: np.ndarray
    tracker_ids: np.ndarray
    pairs: np.ndarray
    ious: np.ndarray


def _evaluate_sequence(
    sequence: _Sequence,
    config: EvalConfig,
    score_threshold: float,
    associations: list[FrameAssociation] | None = None,
) -> _Counts:
    """Match every frame on the tracks kept by ``score_threshold``, then count."""
    kept = sequence.tracker_scores >= score_threshold
    match_row = np.full(len(sequence.gt_ids), -1, dtype=np.int64)  # tracker row per GT row
    match_iou = np.zeros(len(sequence.gt_ids))
    for g, t, iou in zip(sequence.gt_slices, sequence.tracker_slices, sequence.ious, strict=True):
        if g.start == g.stop or t.start == t.stop:
            continue
        gt_index, tracker_col = _match_frame(iou, np.flatnonzero(kept[t]), config.iou_threshold)
        match_row[g.start + gt_index] = t.start + tracker_col
        match_iou[g.start + gt_index] = iou[gt_index, tracker_col]
    counts, tracker_matched = _count(sequence, kept, match_row, match_iou)
    assigned = np.full(len(match_row), -1, dtype=np.int64)
    assigned[match_row >= 0] = sequence.tracker_ids[match_row[match_row >= 0]]
    for rows in sequence.trajectories:
        _score_trajectory(
            assigned[rows].tolist(),
            sequence.gt_ignored[rows].tolist(),
            counts,
            config.id_switch_rule,
        )
    if associations is not None:
        counted_tracker = kept & ~tracker_matched & ~sequence.tracker_ignorable
        associations.extend(_associations(sequence, match_row, match_iou, counted_tracker))
    return counts


def _count(sequence: _Sequence, kept, match_row, match_iou) -> tuple[_Counts, np.ndarray]:
    """Hits, misses and false positives of one matched sequence (no trajectories yet)."""
    matched = match_row >= 0
    ignored = sequence.gt_ignored
    tracker_matched = np.zeros(len(sequence.tracker_ids), dtype=bool)
    tracker_matched[match_row[matched]] = True
    unmatched_tracker = kept & ~tracker_matched
    counts = _Counts(
        tp=int(np.count_nonzero(matched & ~ignored)),
        matched=int(np.count_nonzero(matched)),
        overlap=float(match_iou[matched].sum()),
        fn=int(np.count_nonzero(~matched & ~ignored)),
        fp=int(np.count_nonzero(unmatched_tracker & ~sequence.tracker_ignorable)),
        ignored_tp=int(np.count_nonzero(matched & ignored)),
        ignored_fn=int(np.count_nonzero(~matched & ignored)),
        ignored_tracker=int(np.count_nonzero(unmatched_tracker & sequence.tracker_ignorable)),
        num_gt=int(np.count_nonzero(~ignored)),
        matched_scores=sequence.tracker_scores[match_row[matched]].tolist(),
    )
    return counts, tracker_matched


def _associations(
    sequence: _Sequence, match_row, match_iou, counted_tracker
) -> list[FrameAssociation]:
    """Per frame: the GT and tracker ids that count and the matched pairs among them."""
    frames = []
    for index, (g, t) in enumerate(zip(sequence.gt_slices, sequence.tracker_slices, strict=True)):
        counted_gt = ~sequence.gt_ignored[g]
        rows = match_row[g]
        paired = counted_gt & (rows >= 0)
        pair_tracker = sequence.tracker_ids[rows[paired]]
        unmatched = sequence.tracker_ids[t][counted_tracker[t]]
        frames.append(
            FrameAssociation(
                frame=index,
                gt_ids=sequence.gt_ids[g][counted_gt],
                tracker_ids=np.concatenate([pair_tracker, unmatched]),
                pairs=np.column_stack([sequence.gt_ids[g][paired], pair_tracker]).astype(np.int64),
                ious=match_iou[g][paired],
            )
        )
    return frames


def _score_trajectory(assigned: list[int], ignored: list[bool], counts: _Counts, rule: str) -> None:
    """Add one GT trajectory's IDS, FRAG and MT/PT/ML to ``counts``.

    ``assigned[k]`` is the tracker id matched in the trajectory's k-th frame (-1: missed).
    The "kitti" rule is the devkit's: an id switch needs a match in the previous frame too,
    and ignored frames break the chain. The "clear" rule counts any change of matched id.
    """
    if all(ignored):
        return
    counts.trajectories += 1
    if all(a == -1 for a in assigned):
        counts.mostly_lost += 1
        return
    n = len(assigned)
    if rule == "clear":
        counts.ids += _clear_switches(assigned, ignored)
    last = assigned[0]
    tracked = 1 if assigned[0] >= 0 else 0
    for k in range(1, n):
        current, previous = assigned[k], assigned[k - 1]
        if ignored[k]:
            last = -1
            continue
        if rule == "kitti" and last not in (-1, current) and current != -1 and previous != -1:
            counts.ids += 1
        if (
            k < n - 1
            and previous != current
            and last != -1
            and current != -1
            and assigned[k + 1] != -1
        ):
            counts.frag += 1
        if current != -1:
            tracked += 1
            last = current
    if (
        n > 1
        and assigned[n - 2] != assigned[n - 1]
        and last != -1
        and assigned[n - 1] != -1
        and not ignored[n - 1]
    ):
        counts.frag += 1
    ratio = tracked / (n - sum(ignored))
    if ratio > 0.8:
        counts.mostly_tracked += 1
    elif ratio < 0.2:
        counts.mostly_lost += 1
    else:
        counts.partly_tracked += 1


def _clear_switches(assigned: list[int], ignored: list[bool]) -> int:
    """Classic CLEAR MOT switches: matched id differs from the last matched id (gaps allowed)."""
    switches, last = 0, -1
    for current, skip in zip(assigned, ignored, strict=True):
        if skip or current == -1:
            continue
        if last != -1 and current != last:
            switches += 1
        last = current
    return switches


def clear_mot(
    labels: dict[str, TrackObjects],
    results: dict[str, TrackObjects],
    config: EvalConfig | None = None,
    score_threshold: float = -math.inf,
    associations: dict[str, list[FrameAssociation]] | None = None,
) -> dict[str, float]:
    """One CLEAR MOT pass (no recall sweep) on the tracks whose mean score >= ``score_threshold``.

    Args:
        labels, results: as in :func:`evaluate_tracking`.
        associations: if given, filled with sequence -> per-frame :class:`FrameAssociation`.
    Returns:
        dict with mota, motp, ids, frag, fp, fn, tp, num_gt.
    """
    config = config or EvalConfig()
    sequences = _prepare_all(labels, results, config)
    total, _ = _evaluate_all(sequences, config, score_threshold, associations)
    return {
        "mota": total.mota,
        "motp": total.motp,
        "ids": total.ids,
        "frag": total.frag,
        "fp": total.fp,
        "fn": total.fn,
        "tp": total.tp,
        "num_gt": total.num_gt,
    }


def _prepare_all(labels, results, config: EvalConfig) -> list[_Sequence]:
    missing = sorted(set(labels) - set(results))
    if missing:
        raise KeyError(f"no tracker results for sequence(s) {missing}")
    return [prepare_sequence(name, labels[name], results[name], config) for name in sorted(labels)]


def _evaluate_all(
    sequences: list[_Sequence],
    config: EvalConfig,
    score_threshold: float,
    associations: dict[str, list[FrameAssociation]] | None = None,
) -> tuple[_Counts, dict[str, _Counts]]:
    """Counts summed over ``sequences`` and per sequence."""
    total = _Counts()
    per_sequence = {}
    for sequence in sequences:
        if config.devkit_score_drift:
            _reaverage_scores(sequence)
        record = associations.setdefault(sequence.name, []) if associations is not None else None
        counts = _evaluate_sequence(sequence, config, score_threshold, record)
        per_sequence[sequence.name] = counts
        total.add(counts)
    return total, per_sequence


# ----------------------------------------------------------------------------- recall sweep


def recall_thresholds(
    scores, num_gt: int, num_points: int = NUM_RECALL_POINTS
) -> tuple[list[float], list[float]]:
    """Score thresholds reaching recall ``1/num_points, 2/num_points, ...`` (AB3DMOT's sampling).

    Walks the matched scores from high to low; the k-th target recall takes the first score
    whose recall is at least as close to the target as the next score's. Targets beyond
    the largest recall reached get no threshold.

    Args:
        scores: matched tracker scores from an evaluation without a threshold.
        num_gt: GT count the recall is relative to (matched + missed).
    Returns:
        ``(thresholds, recall_targets)``, equal lengths, at most ``num_points``.
    """
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    thresholds, targets = [], []
    target = 0.0
    count = len(ordered)
    for i, score in enumerate(ordered):
        recall_here = (i + 1) / num_gt
        recall_next = (i + 2) / num_gt if i < count - 1 else recall_here
        if i < count - 1 and (recall_next - target) < (target - recall_here):
            continue
        thresholds.append(float(score))
        targets.append(target)
        target += 1.0 / num_points
    return thresholds[1:], targets[1:]  # the first one is the recall-0 target


def evaluate_tracking(
    labels: dict[str, TrackObjects],
    results: dict[str, TrackObjects],
    config: EvalConfig | None = None,
    progress: bool = False,
) -> TrackingMetrics:
    """Evaluate tracker results against KITTI tracking labels.

    Args:
        labels: sequence name -> ground truth (:func:`read_tracking_labels`).
        results: sequence name -> tracker output with scores; every labelled sequence
            must be present (an empty :class:`TrackObjects` for a sequence with no tracks).
        config: protocol settings.
        progress: show a progress bar over the recall sweep.
    Returns:
        :class:`TrackingMetrics`; MOTA, MOTP, counts and per-sequence figures are at the
        score threshold that maximises MOTA, as the devkit reports them.
    """
    config = config or EvalConfig()
    sequences = _prepare_all(labels, results, config)
    first, _ = _evaluate_all(sequences, config, -math.inf)
    thresholds, targets = recall_thresholds(first.matched_scores, first.matched + first.fn)
    sweep = zip(thresholds, targets, strict=True)
    if progress:
        from tqdm import tqdm

        sweep = tqdm(list(sweep), desc=f"recall sweep {config.cls}", unit="thr", leave=False)
    smota_sum = mota_sum = motp_sum = 0.0
    best_mota, best_threshold = 0.0, -math.inf
    for threshold, target in sweep:
        counts, _ = _evaluate_all(sequences, config, threshold)
        smota_sum += counts.smota(target)
        mota_sum += counts.mota
        motp_sum += counts.motp
        if counts.mota > best_mota:
            best_mota, best_threshold = counts.mota, threshold
    final, per_sequence = _evaluate_all(sequences, config, best_threshold)
    return _metrics(
        final, per_sequence, config, best_threshold, first.mota, smota_sum, mota_sum, motp_sum
    )


def _metrics(final, per_sequence, config, threshold, mota_all, smota_sum, mota_sum, motp_sum):
    trajectories = max(final.trajectories, 1)
    return TrackingMetrics(
        mota=final.mota,
        motp=final.motp,
        moda=final.moda,
        samota=smota_sum / NUM_RECALL_POINTS,
        amota=mota_sum / NUM_RECALL_POINTS,
        amotp=motp_sum / NUM_RECALL_POINTS,
        ids=final.ids,
        frag=final.frag,
        fp=final.fp,
        fn=final.fn,
        tp=final.tp,
        ignored_tp=final.ignored_tp,
        ignored_fn=final.ignored_fn,
        ignored_tracker=final.ignored_tracker,
        num_gt=final.num_gt,
        recall=final.recall,
        precision=final.precision,
        mt=final.mostly_tracked / trajectories,
        pt=final.partly_tracked / trajectories,
        ml=final.mostly_lost / trajectories,
        score_threshold=threshold,
        mota_all_tracks=mota_all,
        iou_threshold=config.iou_threshold,
        cls=config.cls,
        per_sequence={
            name: {
                "mota": c.mota,
                "motp": c.motp,
                "ids": c.ids,
                "frag": c.frag,
                "fp": c.fp,
                "fn": c.fn,
                "num_gt": c.num_gt,
            }
            for name, c in per_sequence.items()
        },
    )
