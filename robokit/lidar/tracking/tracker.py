"""AB3DMOT-style 3D multi-object tracker: Kalman prediction + Hungarian matching on 3D (G)IoU.

Per frame: every live track is predicted one frame ahead; detections and predictions are
matched by the Hungarian method (``scipy.optimize.linear_sum_assignment``) on 3D IoU or
GIoU, pairs below ``match_threshold`` are refused; matched tracks are corrected with their
detection, unmatched detections start new tracks, and tracks unmatched for ``max_age``
frames die. A track is reported once it has ``min_hits`` hits (or during the first
``min_hits`` frames of the sequence) and while it was matched less than ``max_age`` frames
ago, so a track missed for one frame is reported at its predicted position.

All tracks live in arrays (state ``(K, 10)``, covariance ``(K, 10, 10)``), so a frame
costs a fixed number of numpy calls however many objects it holds. Boxes are camera-frame
KITTI boxes ``[x, y_bottom, z, h, w, l, rotation_y]``; the overlap is computed in the
upright frame of :func:`robokit.lidar.boxes.camera_to_upright_boxes` (no calibration).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from robokit.lidar.boxes import camera_to_upright_unchecked, check_boxes, overlaps_unchecked
from robokit.lidar.tracking.io import TrackObjects
from robokit.lidar.tracking.kalman import (
    STATE_DIM,
    KalmanNoise,
    kalman_init,
    kalman_update,
    predict_inplace,
)

__all__ = ["TrackerConfig", "Tracker", "track_sequence", "SequenceTrackingResult", "warm_up"]

#: measurement order [x, y, z, theta, l, w, h] <- camera box order [x, y, z, h, w, l, theta]
_BOX_TO_MEASUREMENT = [0, 1, 2, 6, 5, 4, 3]
_MEASUREMENT_TO_BOX = [0, 1, 2, 6, 5, 4, 3]  # the permutation is its own inverse


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings; defaults are AB3DMOT's for KITTI cars (see docs/kitti_tracking.md).

    Attributes:
        metric: "giou3d" or "iou3d", the similarity used for matching.
        match_threshold: smallest similarity accepted as a match.
        min_hits: hits before a track is reported (birth).
        max_age: frames without a match before a track is dropped (death).
        score_threshold: detections below this confidence are discarded before tracking.
        noise: Kalman noise levels.
    """

    metric: str = "giou3d"
    match_threshold: float = -0.2
    min_hits: int = 3
    max_age: int = 2
    score_threshold: float = -float("inf")
    noise: KalmanNoise = field(default_factory=KalmanNoise)

    def __post_init__(self) -> None:
        if self.metric not in ("giou3d", "iou3d"):
            raise ValueError(f"metric must be 'giou3d' or 'iou3d', got {self.metric!r}")
        if self.min_hits < 1 or self.max_age < 1:
            raise ValueError(
                f"min_hits and max_age must be >= 1, got {self.min_hits}, {self.max_age}"
            )


class Tracker:
    """Online tracker for one sequence; call :meth:`update` once per frame, in order."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self._generalized = self.config.metric == "giou3d"
        self.frame_count = 0
        self.next_id = 1  # KITTI results use positive ids
        self.mean = np.zeros((0, STATE_DIM))
        self.cov = np.zeros((0, STATE_DIM, STATE_DIM))
        self.ids = np.zeros(0, dtype=np.int64)
        self.hits = np.zeros(0, dtype=np.int64)
        self.misses = np.zeros(0, dtype=np.int64)  # frames since the last match
        self.info = np.zeros((0, 7))  # alpha, x1, y1, x2, y2, score, type index

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def update(
        self, boxes: np.ndarray, info: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance one frame with this frame's detections.

        Args:
            boxes: ``(N, 7)`` camera-frame boxes ``[x, y_bottom, z, h, w, l, rotation_y]``.
            info: ``(N, 7)`` per-detection ``[alpha, x1, y1, x2, y2, score, type_index]``,
                carried along to the output of the track it feeds.
        Returns:
            ``(boxes (R, 7), ids (R,), info (R, 7))`` of the reported tracks.
        """
        self.frame_count += 1
        config = self.config
        boxes = check_boxes(boxes)
        info = np.asarray(info, dtype=np.float64)
        if info.shape != (len(boxes), 7):
            raise ValueError(f"info: expected shape ({len(boxes)}, 7), got {info.shape}")
        if len(self):
            predict_inplace(self.mean, self.cov, config.noise)
            self.misses += 1
        det_index, track_index = self._associate(boxes)
        if len(det_index):
            measurements = boxes[det_index][:, _BOX_TO_MEASUREMENT]
            self.mean[track_index], self.cov[track_index] = kalman_update(
                self.mean[track_index], self.cov[track_index], measurements, config.noise
            )
            self.hits[track_index] += 1
            self.misses[track_index] = 0
            self.info[track_index] = info[det_index]
        unmatched = np.ones(len(boxes), dtype=bool)
        unmatched[det_index] = False
        self._start_tracks(boxes[unmatched], info[unmatched])
        reported = (self.misses < config.max_age) & (
            (self.hits >= config.min_hits) | (self.frame_count <= config.min_hits)
        )
        output = (
            self.mean[reported][:, :7][:, _MEASUREMENT_TO_BOX],
            self.ids[reported].copy(),
            self.info[reported].copy(),
        )
        self._drop(self.misses >= config.max_age)
        return output

    def _associate(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hungarian matching -> (detection indices, track indices) of accepted pairs."""
        if len(boxes) == 0 or len(self) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        predicted = self.mean[:, :7][:, _MEASUREMENT_TO_BOX]
        similarity = overlaps_unchecked(
            camera_to_upright_unchecked(boxes),
            camera_to_upright_unchecked(predicted),
            use_height=True,
            generalized=self._generalized,
        )
        rows, cols = linear_sum_assignment(similarity, maximize=True)
        accepted = similarity[rows, cols] >= self.config.match_threshold
        return rows[accepted], cols[accepted]

    def _start_tracks(self, boxes: np.ndarray, info: np.ndarray) -> None:
        count = len(boxes)
        if count == 0:
            return
        mean, cov = kalman_init(boxes[:, _BOX_TO_MEASUREMENT], self.config.noise)
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.ids = np.concatenate([self.ids, np.arange(self.next_id, self.next_id + count)])
        self.next_id += count
        self.hits = np.concatenate([self.hits, np.ones(count, dtype=np.int64)])
        self.misses = np.concatenate([self.misses, np.zeros(count, dtype=np.int64)])
        self.info = np.concatenate([self.info, info])

    def _drop(self, dead: np.ndarray) -> None:
        if not dead.any():
            return
        alive = ~dead
        self.mean, self.cov = self.mean[alive], self.cov[alive]
        self.ids, self.hits, self.misses = self.ids[alive], self.hits[alive], self.misses[alive]
        self.info = self.info[alive]


@dataclass
class SequenceTrackingResult:
    """Tracker output for one sequence plus timing (tracking loop only, no file I/O)."""

    objects: TrackObjects
    num_frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.num_frames / self.seconds if self.seconds > 0 else float("inf")


_WARM = False


def warm_up() -> None:
    """Compile (or load from numba's cache) the tracker's kernels once per process.

    Called before the timed loop of :func:`track_sequence`, so frames per second measure
    tracking rather than one-time JIT compilation (a few seconds the first time, then cached).
    """
    global _WARM
    if _WARM:
        return
    tracker = Tracker(TrackerConfig(min_hits=1))
    box = np.array([[0.0, 1.7, 20.0, 1.5, 1.6, 4.0, 0.1]])
    info = np.zeros((1, 7))
    for step in range(3):
        moved = box.copy()
        moved[0, 2] += step
        tracker.update(moved, info)
    tracker.update(np.zeros((0, 7)), np.zeros((0, 7)))
    _WARM = True


def track_sequence(
    detections: TrackObjects,
    config: TrackerConfig | None = None,
    classes: tuple[str, ...] = ("Car",),
    num_frames: int | None = None,
) -> SequenceTrackingResult:
    """Track the detections of ``classes`` (one tracker per class) through a sequence.

    Args:
        detections: one sequence's detections (see :func:`robokit.lidar.tracking.io.read_detections`).
        config: tracker settings.
        classes: class names to track, each with its own tracker and id range.
        num_frames: frames to run (default: up to the last detection's frame).
    Returns:
        :class:`SequenceTrackingResult` with KITTI result rows (score = the last matched
        detection's score) and the time spent in the tracking loop.
    """
    config = config or TrackerConfig()
    warm_up()
    frames = detections.num_frames if num_frames is None else num_frames
    pieces: list[tuple] = []
    seconds = 0.0
    id_offset = 0
    for class_index, name in enumerate(classes):
        keep = (detections.obj_type == name) & (detections.score >= config.score_threshold)
        dets = detections.select(keep)
        info = np.column_stack(
            [dets.alpha, dets.bbox2d, dets.score, np.full(len(dets), class_index)]
        )
        slices = dets.frame_slices(frames)
        tracker = Tracker(config)
        start = time.perf_counter()
        for frame, rows in enumerate(slices):
            boxes, ids, out_info = tracker.update(dets.boxes[rows], info[rows])
            if len(ids):
                pieces.append((frame, boxes, ids + id_offset, out_info))
        seconds += time.perf_counter() - start
        id_offset += tracker.next_id
    return SequenceTrackingResult(_to_objects(pieces, classes, detections.source), frames, seconds)


def _to_objects(pieces: list[tuple], classes: tuple[str, ...], source: str) -> TrackObjects:
    if not pieces:
        return TrackObjects.empty(source)
    frame = np.concatenate([np.full(len(ids), f) for f, _, ids, _ in pieces])
    boxes = np.concatenate([b for _, b, _, _ in pieces])
    ids = np.concatenate([i for _, _, i, _ in pieces])
    info = np.concatenate([inf for _, _, _, inf in pieces])
    order = np.argsort(frame, kind="stable")
    names = np.asarray(classes)[info[:, 6].astype(np.int64)]
    objects = TrackObjects(
        frame=frame.astype(np.int64),
        track_id=ids.astype(np.int64),
        obj_type=names,
        truncated=np.zeros(len(ids)),
        occluded=np.zeros(len(ids), dtype=np.int64),
        alpha=info[:, 0],
        bbox2d=info[:, 1:5],
        boxes=boxes,
        score=info[:, 5],
        source=source,
    )
    return objects.select(order)
