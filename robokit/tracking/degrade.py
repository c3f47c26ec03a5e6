"""Seeded degradations of 3D detections, for tracker robustness tables.

Three kinds, each at a rate in [0, 1]:

* ``miss``: every detection is dropped with probability ``rate``;
* ``jitter``: every detection is perturbed with probability ``rate``: centre by
  N(0, ``position_sigma`` m) on each axis, each size by a factor 1 + N(0, ``size_sigma``),
  heading by N(0, ``yaw_sigma`` rad); its 2D box and score are kept;
* ``false_positive``: ``rate`` x (number of detections) boxes are added, spread uniformly
  over the frames, with sizes, heights and scores resampled from the sequence's own
  detections (so a score threshold cannot tell them apart), centres uniform over
  x in [-20, 20] m, z in [5, 60] m in front of the camera, heading uniform, and a 2D box
  projected with nominal KITTI camera intrinsics.

All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robokit.pointcloud.boxes import boxes_to_corners3d, camera_to_upright_boxes
from robokit.tracking.io import TrackObjects

__all__ = [
    "DEGRADATIONS",
    "JitterScale",
    "degradation_table",
    "degrade_detections",
    "nominal_bbox2d",
]

DEGRADATIONS = ("miss", "jitter", "false_positive")

#: nominal KITTI left colour camera (focal length and principal point, pixels) and image size
_FOCAL, _CX, _CY = 721.5377, 609.5593, 172.854
_IMAGE_W, _IMAGE_H = 1242.0, 375.0


@dataclass(frozen=True)
class JitterScale:
    """Standard deviations of the ``jitter`` degradation."""

    position_sigma: float = 0.5
    size_sigma: float = 0.1
    yaw_sigma: float = 0.3


def nominal_bbox2d(boxes_cam: np.ndarray) -> np.ndarray:
    """Approximate image boxes ``(N, 4)`` of camera-frame boxes ``(N, 7)`` (nominal intrinsics)."""
    upright_corners = boxes_to_corners3d(camera_to_upright_boxes(boxes_cam))  # (N, 8, 3)
    x_cam, y_cam, z_cam = (
        -upright_corners[..., 1],
        -upright_corners[..., 2],
        upright_corners[..., 0],
    )
    z_cam = np.maximum(z_cam, 0.1)
    u = _FOCAL * x_cam / z_cam + _CX
    v = _FOCAL * y_cam / z_cam + _CY
    return np.stack(
        [
            np.clip(u.min(1), 0, _IMAGE_W),
            np.clip(v.min(1), 0, _IMAGE_H),
            np.clip(u.max(1), 0, _IMAGE_W),
            np.clip(v.max(1), 0, _IMAGE_H),
        ],
        axis=1,
    )


def degrade_detections(
    detections: TrackObjects,
    kind: str,
    rate: float,
    rng: np.random.Generator,
    jitter: JitterScale | None = None,
    num_frames: int | None = None,
) -> TrackObjects:
    """Return a degraded copy of one sequence's detections (see the module doc for ``kind``)."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; choose from {DEGRADATIONS}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if kind == "miss":
        return detections.select(rng.random(len(detections)) >= rate)
    if kind == "jitter":
        return _jitter(detections, rate, rng, jitter or JitterScale())
    return _add_false_positives(detections, rate, rng, num_frames)


def _jitter(
    detections: TrackObjects, rate: float, rng: np.random.Generator, scale: JitterScale
) -> TrackObjects:
    out = detections.select(np.arange(len(detections)))
    count = len(out)
    chosen = rng.random(count) < rate
    boxes = out.boxes.copy()
    boxes[:, :3] += chosen[:, None] * rng.normal(0.0, scale.position_sigma, (count, 3))
    boxes[:, 3:6] *= np.where(
        chosen[:, None],
        np.clip(1.0 + rng.normal(0.0, scale.size_sigma, (count, 3)), 0.2, None),
        1.0,
    )
    boxes[:, 6] += chosen * rng.normal(0.0, scale.yaw_sigma, count)
    out.boxes = boxes
    return out


def _add_false_positives(
    detections: TrackObjects, rate: float, rng: np.random.Generator, num_frames: int | None
) -> TrackObjects:
    count = int(round(rate * len(detections)))
    if count == 0 or len(detections) == 0:
        return detections.select(np.arange(len(detections)))
    frames = num_frames or detections.num_frames
    donors = rng.integers(0, len(detections), count)  # sizes, height and score come from real boxes
    boxes = detections.boxes[donors].copy()
    boxes[:, 0] = rng.uniform(-20.0, 20.0, count)
    boxes[:, 2] = rng.uniform(5.0, 60.0, count)
    boxes[:, 6] = rng.uniform(-np.pi, np.pi, count)
    fake = TrackObjects(
        frame=rng.integers(0, frames, count),
        track_id=np.full(count, -1),
        obj_type=detections.obj_type[donors],
        truncated=np.zeros(count),
        occluded=np.zeros(count, dtype=np.int64),
        alpha=np.zeros(count),
        bbox2d=nominal_bbox2d(boxes),
        boxes=boxes,
        score=detections.score[donors],
        source=detections.source,
    )
    return _concatenate(detections, fake)


def _concatenate(first: TrackObjects, second: TrackObjects) -> TrackObjects:
    fields = [name for name in first.__dataclass_fields__ if name != "source"]
    merged = {
        name: np.concatenate([getattr(first, name), getattr(second, name)]) for name in fields
    }
    return TrackObjects(**merged, source=first.source)


def degradation_table(
    labels: dict[str, TrackObjects],
    detections: dict[str, TrackObjects],
    kinds: tuple[str, ...] = DEGRADATIONS,
    rates: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5),
    seed: int = 0,
    tracker_config=None,
    eval_config=None,
    classes: tuple[str, ...] = ("Car",),
    progress: bool = False,
    options=None,
) -> list[dict]:
    """Track and evaluate every (kind, rate) pair; one row of headline metrics per pair.

    The generator of a (kind, rate, sequence) cell is seeded from ``(seed, kind, rate,
    sequence)``, so each cell is reproducible on its own. Rate 0 is the clean baseline.
    ``options`` (:class:`robokit.distributed.options.DistributedOptions`) fans the cells out
    over Ray workers (each gets the label and detection tables once); rows come back in order.
    """
    from tqdm import tqdm

    from robokit.distributed.fanout import fan_out, given

    cells = [(kind, rate) for kind in kinds for rate in rates]
    tables = (labels, detections, seed, tracker_config, eval_config, classes)
    with tqdm(total=len(cells), desc="degraded tracking", unit="cell", disable=not progress) as bar:
        return fan_out(given, (tables,), degraded_row, cells, options, progress=lambda _: bar.update(1))


def degraded_row(tables: tuple, cell: tuple[str, float]) -> dict:
    """Headline metrics of one (kind, rate) cell: degrade every sequence, track, evaluate."""
    from robokit.tracking.evaluate import evaluate_tracking
    from robokit.tracking.tracker import track_sequence

    labels, detections, seed, tracker_config, eval_config, classes = tables
    kind, rate = cell
    results = {}
    for name in sorted(labels):
        key = [
            seed,
            DEGRADATIONS.index(kind),
            int(round(rate * 1000)),
            int(name) if name.isdigit() else 0,
        ]
        frames = labels[name].num_frames
        degraded = degrade_detections(
            detections[name], kind, rate, np.random.default_rng(key), num_frames=frames
        )
        results[name] = track_sequence(degraded, tracker_config, classes, num_frames=frames).objects
    metrics = evaluate_tracking(labels, results, eval_config)
    return {
        "kind": kind,
        "rate": rate,
        "mota": metrics.mota,
        "samota": metrics.samota,
        "motp": metrics.motp,
        "ids": metrics.ids,
        "fp": metrics.fp,
        "fn": metrics.fn,
    }
