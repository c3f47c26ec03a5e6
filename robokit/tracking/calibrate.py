"""Detection box-size calibration: a per-class correction of ``(h, w, l)`` fit on labelled data.

A detector can be biased in box size for a class (PointRCNN's pedestrian boxes on the KITTI
tracking sequences are about 0.15 m too wide and long: docs/kitti_tracking.md). No tracker
setting changes a box's size, so such a bias caps the figures at a strict IoU (0.5). This module
fits a correction on sequences *with labels* and returns it as :class:`TrackerConfig` changes
(``size_scale`` or ``size_offset``), which the tracker applies to every detection of that class
before tracking; it must be fit on other sequences than the ones it is scored on.

Fitting pairs every labelled box of the class with its best-overlapping detection of the same
frame (3D IoU >= ``min_iou``, nearest box: not one-to-one, no devkit ignore rules), then solves
least squares per dimension: ``label ~ s * detection`` (``"scale"``: ``s = sum(l d) / sum(d d)``)
or ``label ~ detection + o`` (``"offset"``: ``o = mean(l - d)``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from robokit.pointcloud.boxes import camera_to_upright_boxes, overlaps_unchecked
from robokit.tracking.io import TrackObjects

__all__ = ["SIZE_FITS", "fit_size_correction", "frame_overlaps", "matched_sizes", "paired_sizes",
           "solve_size_correction"]

#: the kinds of correction :func:`fit_size_correction` fits (None: no correction)
SIZE_FITS = ("scale", "offset")
_SIZES = slice(3, 6)  # h, w, l in the camera-frame box [x, y_bottom, z, h, w, l, rotation_y]


def frame_overlaps(labels: TrackObjects, objects: TrackObjects, cls: str, frame: int) -> np.ndarray:
    """``(G, N)`` 3D IoU of the ``cls`` label boxes of ``frame`` with ``objects``' boxes there."""
    gt = (labels.obj_type == cls) & (labels.frame == frame)
    mine = objects.frame == frame
    if not gt.any() or not mine.any():
        return np.zeros((int(gt.sum()), int(mine.sum())))
    return overlaps_unchecked(
        camera_to_upright_boxes(labels.boxes[gt]),
        camera_to_upright_boxes(objects.boxes[mine]),
        use_height=True,
        generalized=False,
    )


def matched_sizes(
    labels: TrackObjects, detections: TrackObjects, cls: str, min_iou: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """``(detected (M, 3), labelled (M, 3))`` sizes ``(h, w, l)`` of one sequence's pairs.

    Each ``cls`` label box is paired with the detection of its frame that overlaps it most, when
    that 3D IoU is at least ``min_iou``; label boxes without one are left out.
    """
    detected, labelled = [np.zeros((0, 3))], [np.zeros((0, 3))]
    for frame in np.unique(labels.frame[labels.obj_type == cls]):
        iou = frame_overlaps(labels, detections, cls, int(frame))
        if iou.size == 0:
            continue
        found = iou.max(1) >= min_iou
        label_boxes = labels.boxes[(labels.obj_type == cls) & (labels.frame == frame)]
        det_boxes = detections.boxes[detections.frame == frame]
        labelled.append(label_boxes[found, _SIZES])
        detected.append(det_boxes[iou.argmax(1)[found], _SIZES])
    return np.concatenate(detected), np.concatenate(labelled)


def fit_size_correction(
    sequences: Iterable[tuple[TrackObjects, TrackObjects]],
    cls: str,
    kind: str = "scale",
    min_iou: float = 0.25,
) -> dict[str, tuple[float, float, float]]:
    """Least-squares size correction of ``cls`` detections, as :class:`TrackerConfig` changes.

    Args:
        sequences: ``(labels, detections)`` per sequence (the fitting sequences only).
        cls: the class to fit ("Pedestrian").
        kind: "scale" (``{"size_scale": (sh, sw, sl)}``) or "offset"
            (``{"size_offset": (dh, dw, dl)}``, metres).
        min_iou: smallest 3D IoU for a detection to be paired with a label box.
    Returns:
        ``{"size_scale": ...}`` or ``{"size_offset": ...}`` (h, w, l order), rounded to 1e-4.
    Raises:
        ValueError: unknown ``kind``, or no label box of ``cls`` paired with a detection.
    """
    if kind not in SIZE_FITS:
        raise ValueError(f"size correction kind must be one of {SIZE_FITS}, got {kind!r}")
    return solve_size_correction(*paired_sizes(sequences, cls, min_iou), kind)


def paired_sizes(
    sequences: Iterable[tuple[TrackObjects, TrackObjects]], cls: str, min_iou: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`matched_sizes` over ``(labels, detections)`` sequences, concatenated: (M, 3) each.

    Raises:
        ValueError: no label box of ``cls`` paired with a detection.
    """
    pairs = [matched_sizes(labels, dets, cls, min_iou) for labels, dets in sequences]
    detected = np.concatenate([d for d, _ in pairs] or [np.zeros((0, 3))])
    labelled = np.concatenate([lab for _, lab in pairs] or [np.zeros((0, 3))])
    if len(detected) == 0:
        raise ValueError(f"no {cls} label box has a detection at 3D IoU >= {min_iou} to fit on")
    return detected, labelled


def solve_size_correction(detected: np.ndarray, labelled: np.ndarray, kind: str = "scale") -> dict:
    """The least-squares correction (see :func:`fit_size_correction`) of paired sizes (M, 3) h, w, l."""
    if kind == "scale":
        values = (labelled * detected).sum(0) / (detected * detected).sum(0)
        return {"size_scale": _rounded(values)}
    return {"size_offset": _rounded((labelled - detected).mean(0))}


def _rounded(values: np.ndarray) -> tuple[float, float, float]:
    h, w, length = (round(float(v), 4) for v in values)
    return h, w, length
