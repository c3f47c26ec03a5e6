"""KITTI 3D object detection evaluation (2D box, BEV and 3D AP with 40 recall points).

The rules follow the official KITTI object devkit (``evaluate_object_3d_offline``):

* Difficulty filters on the ground truth: easy / moderate / hard keep objects with a 2D box
  height of at least 40 / 25 / 25 px, occlusion at most 0 / 1 / 2 and truncation at most
  0.15 / 0.3 / 0.5. A ground truth that fails them is *ignored*: it is not a miss, and a
  detection matched to it is neither a true nor a false positive.
* Neutral classes: ``Van`` for ``Car`` and ``Person_sitting`` for ``Pedestrian`` are ignored the
  same way. Other classes (Truck, Tram, Misc, ...) play no part for the class evaluated.
* Detections whose 2D box is lower than the difficulty's minimum height are ignored (the
  devkit truncates that height to an integer number of pixels first).
* DontCare regions: an unmatched detection whose 2D box lies inside a DontCare box by more
  than the IoU threshold (intersection over the *detection's* area) is not a false positive.
  The devkit computes this overlap with the metric's own box overlap; DontCare labels carry
  no 3D box (dimensions -1, location -1000), so in the official numbers only the 2D ``bbox``
  metric is affected. ``dontcare_all_metrics=True`` applies the 2D DontCare rule to BEV and 3D
  as well (off by default, to stay comparable with published figures).
* Matching: IoU strictly above 0.7 for Car, 0.5 for Pedestrian and Cyclist; each ground truth
  takes, among unassigned detections above the score threshold, the one of highest overlap.

AP with 40 recall points (Simonelli et al., 2019, "Disentangling Monocular 3D Object
Detection", adopted by the KITTI server in 2019): ``AP = 1/40 * sum_{r in {1/40, ..., 1}}
max_{r' >= r} precision(r')``. The precision/recall pairs are measured at score thresholds
taken from the true-positive scores. Two ways to pick those thresholds:

* ``"exact"`` (default): every true-positive score (up to ``max_thresholds``, then evenly
  spaced in recall), so the interpolated precision is exact for any number of objects.
* ``"devkit"``: the devkit's ``getThresholds`` (41 samples, AP = sum of precision[1:41] / 40).
  It agrees with ``"exact"`` when a class has many ground-truth objects, but with fewer than
  40 it under-counts (one object detected perfectly gives AP 0), which matters on tiny data.

Box conventions: ground truth and detections are camera-frame KITTI boxes ``(N, 7)`` ``[x,
y_bottom, z, h, w, l, rotation_y]`` with 2D image boxes ``(N, 4)`` ``[x1, y1, x2, y2]`` in pixels.
BEV and 3D overlaps are computed after the rigid turn :func:`robokit.pointcloud.boxes.camera_to_upright_boxes`,
which leaves IoU unchanged, so they equal the devkit's camera-frame overlaps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

from robokit.pointcloud.frames import FrameDetections, FrameGroundTruth

__all__ = [
    "CLASS_IOU",
    "DIFFICULTIES",
    "METRICS",
    "DetectionEvalResult",
    "FrameDetections",
    "FrameGroundTruth",
    "evaluate_kitti",
    "format_ap_table",
    "ap_from_pr",
]

DIFFICULTIES = ("easy", "moderate", "hard")
MIN_HEIGHT = (40.0, 25.0, 25.0)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
#: IoU a detection must exceed to match, per class (devkit's MIN_OVERLAP for box, BEV and 3D)
CLASS_IOU = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}
#: ground-truth class that is neutral (ignored, never a miss) when evaluating a class
NEUTRAL_CLASS = {"Car": "Van", "Pedestrian": "Person_sitting"}
METRICS = ("bbox", "bev", "3d")
NUM_RECALL_POINTS = 40


@dataclass
class DetectionEvalResult:
    """AP in percent: ``ap[class][metric][difficulty]`` (NaN when a class has no valid object).

    ``num_gt[class][difficulty]`` counts the ground truth that recall is measured against;
    ``curves[class][metric][difficulty]`` holds the measured (recall, precision) pairs.
    """

    ap: dict[str, dict[str, dict[str, float]]]
    num_gt: dict[str, dict[str, int]]
    curves: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {"ap": self.ap, "num_gt": self.num_gt}


# ----------------------------------------------------------------------------- overlaps


def image_box_overlap(a: np.ndarray, b: np.ndarray, over_first: bool = False) -> np.ndarray:
    """2D box overlap ``(len(a), len(b))``: IoU, or intersection / area of ``a`` when ``over_first``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    denominator = area_a[:, None] if over_first else area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denominator > 0, inter / denominator, 0.0)
    return out


def _metric_overlap(
    metric: str, det: FrameDetections, gt_rows: np.ndarray, gt: FrameGroundTruth
) -> np.ndarray:
    """Overlap ``(D, len(gt_rows))`` between all detections and the selected ground truth."""
    from robokit.pointcloud.boxes import bev_iou, camera_to_upright_boxes, iou3d

    if len(det.scores) == 0 or len(gt_rows) == 0:
        return np.zeros((len(det.scores), len(gt_rows)))
    if metric == "bbox":
        return image_box_overlap(det.bbox, gt.bbox[gt_rows])
    det_up = camera_to_upright_boxes(det.boxes_cam)
    gt_up = camera_to_upright_boxes(gt.boxes_cam[gt_rows])
    return bev_iou(det_up, gt_up) if metric == "bev" else iou3d(det_up, gt_up)


# ----------------------------------------------------------------------------- devkit rules


def ignore_flags(gt: FrameGroundTruth, det: FrameDetections, class_name: str, difficulty: int):
    """The devkit's ``cleanData`` for one frame.

    Returns:
        gt_flag (G,) int: 0 counted, 1 ignored (neutral class or failing the difficulty),
        -1 not part of this evaluation; det_flag (D,) int: 0 counted, 1 ignored (too low a
        2D box), -1 other class; dontcare_rows (K,) indices of DontCare ground truth.
    """
    names_lower = np.array([str(n).lower() for n in gt.names], dtype=object)
    height = gt.bbox[:, 3] - gt.bbox[:, 1]
    too_hard = (
        (gt.occluded > MAX_OCCLUSION[difficulty])
        | (gt.truncated > MAX_TRUNCATION[difficulty])
        | (height < MIN_HEIGHT[difficulty])
    )
    same = names_lower == class_name.lower()
    neutral_name = NEUTRAL_CLASS.get(class_name, "").lower()
    neutral = (names_lower == neutral_name) if neutral_name else np.zeros(len(gt.names), bool)
    gt_flag = np.full(len(gt.names), -1, dtype=np.int64)
    gt_flag[neutral | (same & too_hard)] = 1
    gt_flag[same & ~too_hard] = 0
    dontcare_rows = np.flatnonzero(names_lower == "dontcare")

    det_same = np.array([str(n).lower() == class_name.lower() for n in det.names], dtype=bool)
    det_height = np.trunc(np.abs(det.bbox[:, 3] - det.bbox[:, 1]))  # devkit: int32_t height
    det_flag = np.where(det_same, 0, -1).astype(np.int64)
    det_flag[det_height < MIN_HEIGHT[difficulty]] = 1
    return gt_flag, det_flag, dontcare_rows


@numba.njit(cache=True)
def _frame_statistics(
    overlaps, gt_flag, det_flag, scores, dontcare_overlap, min_overlap, compute_fp, threshold
):
    """The devkit's ``computeStatistics`` for one frame and one score threshold.

    Args:
        overlaps: (D, G) detection x ground-truth overlap (IoU) for the metric.
        gt_flag, det_flag: from :func:`ignore_flags`; scores: (D,).
        dontcare_overlap: (D, K) fraction of each detection's 2D box inside each DontCare box
            (K = 0 disables the DontCare rule).
        compute_fp: False for the recall pass (highest score wins a ground truth), True for a
            precision pass (highest overlap wins, only detections with score >= threshold).
    Returns:
        tp, fp, fn and the (tp,) scores of the true positives.
    """
    num_det, num_gt = overlaps.shape
    no_detection = -1e18
    assigned = np.zeros(num_det, dtype=np.bool_)
    below = np.zeros(num_det, dtype=np.bool_)
    if compute_fp:
        for j in range(num_det):
            below[j] = scores[j] < threshold
    tp = 0
    fn = 0
    tp_scores = np.empty(num_gt, dtype=np.float64)
    for i in range(num_gt):
        if gt_flag[i] == -1:
            continue
        det_index = -1
        valid = no_detection
        max_overlap = 0.0
        took_ignored_det = False
        for j in range(num_det):
            if det_flag[j] == -1 or assigned[j] or below[j]:
                continue
            overlap = overlaps[j, i]
            if overlap <= min_overlap:
                continue
            if not compute_fp:
                if scores[j] > valid:
                    det_index = j
                    valid = scores[j]
            elif (overlap > max_overlap or took_ignored_det) and det_flag[j] == 0:
                max_overlap = overlap
                det_index = j
                valid = 1.0
                took_ignored_det = False
            elif valid == no_detection and det_flag[j] == 1:
                det_index = j
                valid = 1.0
                took_ignored_det = True
        if valid == no_detection:
            if gt_flag[i] == 0:
                fn += 1
        elif gt_flag[i] == 1 or det_flag[det_index] == 1:
            assigned[det_index] = True
        else:
            tp_scores[tp] = scores[det_index]
            tp += 1
            assigned[det_index] = True
    fp = 0
    if compute_fp:
        for j in range(num_det):
            if not (assigned[j] or det_flag[j] != 0 or below[j]):
                fp += 1
        for k in range(dontcare_overlap.shape[1]):
            for j in range(num_det):
                if assigned[j] or det_flag[j] != 0 or below[j]:
                    continue
                if dontcare_overlap[j, k] > min_overlap:
                    assigned[j] = True
                    fp -= 1
    return tp, fp, fn, tp_scores[:tp]


# ----------------------------------------------------------------------------- AP


def devkit_thresholds(
    tp_scores: np.ndarray, num_gt: int, num_sample_points: int = 41
) -> np.ndarray:
    """The devkit's ``getThresholds``: TP scores nearest to evenly spaced recall levels."""
    scores = np.sort(np.asarray(tp_scores, dtype=np.float64))[::-1]
    chosen = []
    current_recall = 0.0
    for i, score in enumerate(scores):
        left = (i + 1) / num_gt
        right = (i + 2) / num_gt if i < len(scores) - 1 else left
        if (right - current_recall) < (current_recall - left) and i < len(scores) - 1:
            continue
        chosen.append(score)
        current_recall += 1.0 / (num_sample_points - 1.0)
    return np.asarray(chosen, dtype=np.float64)


def ap_from_pr(
    recall: np.ndarray, precision: np.ndarray, num_points: int = NUM_RECALL_POINTS
) -> float:
    """Interpolated AP in percent: mean over r in {1/n, ..., 1} of max precision at recall >= r.

    Args:
        recall, precision: (T,) measured pairs (any order).
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    levels = np.arange(1, num_points + 1) / num_points
    total = 0.0
    for level in levels:
        reached = precision[recall >= level - 1e-12]
        total += reached.max() if reached.size else 0.0
    return 100.0 * total / num_points


def _pack(prepared):
    """Concatenate per-frame arrays (flattened) with offsets, for :func:`_threshold_counts`."""
    num_det = np.array([len(item[3]) for item in prepared], dtype=np.int64)
    num_gt = np.array([len(item[1]) for item in prepared], dtype=np.int64)
    num_dc = np.array([item[4].shape[1] for item in prepared], dtype=np.int64)

    def offsets(sizes):
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def flat(index, dtype):
        parts = [np.ascontiguousarray(item[index], dtype=dtype).ravel() for item in prepared]
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    return (
        flat(0, np.float64),
        flat(1, np.int64),
        flat(2, np.int64),
        flat(3, np.float64),
        flat(4, np.float64),
        num_det,
        num_gt,
        num_dc,
        offsets(num_det),
        offsets(num_gt),
        offsets(num_det * num_gt),
        offsets(num_det * num_dc),
    )


@numba.njit(cache=True)
def _threshold_counts(packed, thresholds, min_overlap):
    """Summed (tp, fp, fn) over all frames for each score threshold (the precision passes)."""
    (
        overlaps,
        gt_flag,
        det_flag,
        scores,
        dontcare,
        num_det,
        num_gt,
        num_dc,
        det_at,
        gt_at,
        overlap_at,
        dontcare_at,
    ) = packed
    tp = np.zeros(len(thresholds))
    fp = np.zeros(len(thresholds))
    fn = np.zeros(len(thresholds))
    for f in range(len(num_det)):
        d, g, k = num_det[f], num_gt[f], num_dc[f]
        frame_overlaps = overlaps[overlap_at[f] : overlap_at[f + 1]].reshape(d, g)
        frame_dontcare = dontcare[dontcare_at[f] : dontcare_at[f + 1]].reshape(d, k)
        for t in range(len(thresholds)):
            a, b, c, _ = _frame_statistics(
                frame_overlaps,
                gt_flag[gt_at[f] : gt_at[f + 1]],
                det_flag[det_at[f] : det_at[f + 1]],
                scores[det_at[f] : det_at[f + 1]],
                frame_dontcare,
                min_overlap,
                True,
                thresholds[t],
            )
            tp[t] += a
            fp[t] += b
            fn[t] += c
    return tp, fp, fn


def _class_metric_ap(
    frames, class_name, metric, difficulty, recall_sampling, max_thresholds, dontcare_all_metrics
):
    """AP (percent), number of counted ground truth and the (recall, precision) curve."""
    min_overlap = CLASS_IOU[class_name]
    prepared = []
    tp_scores = []
    num_gt = 0
    for gt, det, overlap_cache in frames:
        gt_flag, det_flag, dontcare_rows = ignore_flags(gt, det, class_name, difficulty)
        num_gt += int((gt_flag == 0).sum())
        overlaps = overlap_cache(metric)
        use_dontcare = metric == "bbox" or dontcare_all_metrics
        if use_dontcare and len(dontcare_rows):
            dc = image_box_overlap(det.bbox, gt.bbox[dontcare_rows], over_first=True)
        else:
            dc = np.zeros((len(det.scores), 0))
        item = (overlaps, gt_flag, det_flag, det.scores.astype(np.float64), dc)
        prepared.append(item)
        tp_scores.append(_frame_statistics(*item, min_overlap, False, 0.0)[3])
    if num_gt == 0:
        return float("nan"), 0, (np.zeros(0), np.zeros(0))
    scores = np.concatenate(tp_scores) if tp_scores else np.zeros(0)
    if recall_sampling == "devkit":
        thresholds = devkit_thresholds(scores, num_gt)
    else:
        thresholds = np.unique(scores)[::-1]
        if len(thresholds) > max_thresholds:
            thresholds = devkit_thresholds(scores, num_gt, max_thresholds)
    tp, fp, fn = _threshold_counts(
        _pack(prepared), np.ascontiguousarray(thresholds, np.float64), min_overlap
    )
    recall = tp / np.maximum(tp + fn, 1)
    precision = tp / np.maximum(tp + fp, 1)
    if recall_sampling == "devkit":
        padded = np.zeros(NUM_RECALL_POINTS + 1)
        padded[: len(precision)] = precision[: NUM_RECALL_POINTS + 1]
        interpolated = np.maximum.accumulate(padded[::-1])[::-1]
        ap = 100.0 * interpolated[1:].sum() / NUM_RECALL_POINTS
    else:
        ap = ap_from_pr(recall, precision)
    return ap, num_gt, (recall, precision)


def _check_frame(index: int, gt: FrameGroundTruth, det: FrameDetections) -> None:
    for name, arr, width in (
        ("gt.bbox", gt.bbox, 4),
        ("gt.boxes_cam", gt.boxes_cam, 7),
        ("det.bbox", det.bbox, 4),
        ("det.boxes_cam", det.boxes_cam, 7),
    ):
        if arr.ndim != 2 or arr.shape[1] != width:
            raise ValueError(f"frame {index}: {name} must be (N, {width}), got {arr.shape}")
    if (
        len(det.scores) != len(det.names)
        or len(det.bbox) != len(det.names)
        or len(det.boxes_cam) != len(det.names)
    ):
        raise ValueError(f"frame {index}: detections have inconsistent lengths")
    if not np.isfinite(det.scores).all():
        raise ValueError(f"frame {index}: a detection score is NaN or infinite")
    counted = np.array([str(n) != "DontCare" for n in det.names], dtype=bool)
    if not np.isfinite(det.boxes_cam[counted]).all() or not np.isfinite(det.bbox).all():
        raise ValueError(f"frame {index}: a detection box has a NaN or infinite value")
    negative = np.flatnonzero((det.boxes_cam[:, 3:6] <= 0).any(axis=1))
    if len(negative):
        raise ValueError(
            f"frame {index}: detection {int(negative[0])} has a size <= 0: {det.boxes_cam[negative[0]].tolist()}"
        )


def evaluate_kitti(
    ground_truth: Sequence[FrameGroundTruth],
    detections: Sequence[FrameDetections],
    classes: Iterable[str] = ("Car", "Pedestrian", "Cyclist"),
    metrics: Iterable[str] = METRICS,
    recall_sampling: str = "exact",
    max_thresholds: int = 1001,
    dontcare_all_metrics: bool = False,
) -> DetectionEvalResult:
    """KITTI AP|R40 for each class, metric (``bbox``, ``bev``, ``3d``) and difficulty.

    Args:
        ground_truth, detections: one entry per frame, same order and length.
        recall_sampling: ``"exact"`` or ``"devkit"`` (see the module docstring).
        dontcare_all_metrics: apply the 2D DontCare rule to BEV and 3D too.
    """
    if len(ground_truth) != len(detections):
        raise ValueError(
            f"{len(ground_truth)} ground-truth frames but {len(detections)} detection frames"
        )
    if recall_sampling not in ("exact", "devkit"):
        raise ValueError(f"recall_sampling must be 'exact' or 'devkit', got {recall_sampling!r}")
    classes, metrics = list(classes), list(metrics)
    for name in classes:
        if name not in CLASS_IOU:
            raise ValueError(f"unknown class {name!r}; KITTI evaluates {sorted(CLASS_IOU)}")
    for metric in metrics:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {METRICS}")
    frames = []
    for index, (gt, det) in enumerate(zip(ground_truth, detections, strict=True)):
        _check_frame(index, gt, det)
        frames.append((gt, det, _overlap_cache(gt, det)))
    ap: dict = {c: {m: {} for m in metrics} for c in classes}
    num_gt: dict = {c: {} for c in classes}
    curves: dict = {c: {m: {} for m in metrics} for c in classes}
    for class_name in classes:
        for metric in metrics:
            for level, difficulty in enumerate(DIFFICULTIES):
                value, count, curve = _class_metric_ap(
                    frames,
                    class_name,
                    metric,
                    level,
                    recall_sampling,
                    max_thresholds,
                    dontcare_all_metrics,
                )
                ap[class_name][metric][difficulty] = value
                num_gt[class_name][difficulty] = count
                curves[class_name][metric][difficulty] = curve
    return DetectionEvalResult(ap=ap, num_gt=num_gt, curves=curves)


def _overlap_cache(gt: FrameGroundTruth, det: FrameDetections):
    """Per-frame overlaps for each metric, computed once against the non-DontCare ground truth."""
    rows = np.flatnonzero(np.array([str(n) != "DontCare" for n in gt.names], dtype=bool))
    cache: dict[str, np.ndarray] = {}

    def get(metric: str) -> np.ndarray:
        if metric not in cache:
            full = np.zeros((len(det.scores), len(gt.names)))
            full[:, rows] = _metric_overlap(metric, det, rows, gt)
            cache[metric] = full
        return cache[metric]

    return get


def format_ap_table(result: DetectionEvalResult) -> str:
    """A readable table: one row per class and metric, columns easy / moderate / hard."""
    lines = [
        f"{'class':<11} {'metric':<6} {'IoU':>4}  {'easy':>7} {'moderate':>9} {'hard':>7}   (AP|R40, %)"
    ]
    for class_name, per_metric in result.ap.items():
        for metric, per_difficulty in per_metric.items():
            cells = []
            for difficulty, width in zip(DIFFICULTIES, (7, 9, 7), strict=True):
                value = per_difficulty[difficulty]
                cells.append(f"{'-':>{width}}" if np.isnan(value) else f"{value:>{width}.2f}")
            lines.append(
                f"{class_name:<11} {metric:<6} {CLASS_IOU[class_name]:>4.2f}  " + " ".join(cells)
            )
        counts = result.num_gt[class_name]
        lines.append(
            f"{'':<11} {'#gt':<6} {'':>4}  {counts['easy']:>7} {counts['moderate']:>9} {counts['hard']:>7}"
        )
    return "\n".join(lines)
