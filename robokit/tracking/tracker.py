"""3D multi-object tracker: Kalman prediction, two-stage Hungarian matching on 3D GIoU.

Per frame: every live track is predicted one frame ahead (and, given the ego motion, moved
into the current frame); detections are split by score into high and low (``high_score``);
high-score detections are matched to all tracks by the Hungarian method
(``scipy.optimize.linear_sum_assignment``) on 3D GIoU (or IoU), pairs below
``match_threshold`` or farther apart than ``max_distance`` are refused; the tracks left
unmatched are then matched to the low-score detections with ``low_match_threshold``
(ByteTrack's second stage, as in SimpleTrack). Matched tracks are corrected with their
detection; unmatched detections scoring at least ``birth_score`` start new tracks; tracks
unmatched for ``max_age`` frames die. A track is reported once it has ``min_hits`` hits
(or during the first ``min_hits`` frames of the sequence) and while it was matched at most
``max_report_misses`` frames ago, at its predicted position when missed.

``TrackerConfig()`` is robokit's tracker before its per-class rows (``preset_configs("robokit")``
adds them: :data:`ROBOKIT_CLASSES`); ``TRACKER_PRESETS["ab3dmot"]`` is AB3DMOT's
released KITTI configuration (one stage, any detection starts a track, ``max_age`` 2) and
writes the same boxes and tracks as AB3DMOT run without ego-motion compensation.

All tracks live in arrays (state ``(K, 10)``, covariance ``(K, 10, 10)``), so a frame
costs a fixed number of numpy calls however many objects it holds. Boxes are camera-frame
KITTI boxes ``[x, y_bottom, z, h, w, l, rotation_y]``; the overlap is computed in the
upright frame of :func:`robokit.pointcloud.boxes.camera_to_upright_boxes` (no calibration).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from robokit.pointcloud.boxes import camera_to_upright_unchecked, check_boxes, overlaps_unchecked
from robokit.tracking.ego import frame_to_frame, transform_states
from robokit.tracking.io import TrackObjects
from robokit.tracking.kalman import (
    STATE_DIM,
    KalmanNoise,
    kalman_init,
    kalman_update,
    predict_inplace,
)

__all__ = [
    "TRACKER_PRESETS",
    "TrackerConfig",
    "ClassConfigs",
    "AB3DMOT_POINTRCNN_CLASSES",
    "SIMPLETRACK_WAYMO_CLASSES",
    "PRESET_CLASS_ROWS",
    "ROBOKIT_CLASSES",
    "POINTRCNN_PEDESTRIAN_SIZE_SCALE",
    "preset_configs",
    "Tracker",
    "track_sequence",
    "SequenceTrackingResult",
    "warm_up",
]

#: measurement order [x, y, z, theta, l, w, h] <- camera box order [x, y, z, h, w, l, theta]
_BOX_TO_MEASUREMENT = [0, 1, 2, 6, 5, 4, 3]
_MEASUREMENT_TO_BOX = [0, 1, 2, 6, 5, 4, 3]  # the permutation is its own inverse
_REFUSED = -np.inf
_MIN_SIZE = 0.01  # metres: the floor of a size-corrected detection's h, w, l
#: similarities: 3D GIoU, 3D IoU, or minus the 3D centre distance in metres (AB3DMOT's dist_3d)
METRICS = ("giou3d", "iou3d", "dist3d")
#: assignment: optimal (Hungarian) or greedy (best pair first, AB3DMOT's ``greedy``)
MATCHINGS = ("hungarian", "greedy")


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings; the defaults are robokit's tracker (sources in docs/kitti_tracking.md).

    Scores are in the detector's own units (PointRCNN's are logits: 0 is probability 0.5).

    Attributes:
        metric: "giou3d", "iou3d" or "dist3d" (minus the centre distance), the similarity.
        match_threshold: smallest similarity accepted as a match (first stage).
        min_hits: hits before a track is reported (birth).
        max_age: frames without a match before a track is dropped (death).
        score_threshold: detections below this confidence are discarded before tracking.
        noise: Kalman noise levels.
        high_score: detections scoring at least this are "high" (first stage); the others
            only extend tracks the first stage left unmatched (second stage). None: one
            stage with every detection (AB3DMOT).
        low_match_threshold: smallest similarity for a second-stage match.
        birth_score: unmatched detections start a track only when scoring at least this
            (None: any detection, AB3DMOT).
        max_report_misses: a missed track is still reported (at its prediction) while it
            was missed at most this many frames in a row (None: ``max_age - 1``, AB3DMOT).
        max_distance: refuse pairs whose centres are farther apart than this, metres (None:
            no distance gate).
        keep_high_score: a track matched by a low-score detection keeps the score of its last
            high-score detection (the detection confirms where the object is, not that it
            exists); False: every match sets the track's score (AB3DMOT).
        matching: "hungarian" (optimal assignment) or "greedy" (pairs taken best first).
        confirm_score: a track whose detection scores at least this is reported from that
            hit on, without waiting for ``min_hits`` (None: never; only ``min_hits`` counts).
        tentative_penalty: tracks not yet confirmed are reported too, on the frames they are
            matched, with their score lowered by this much (None: not reported, AB3DMOT).
            The devkit ranks whole tracks by their mean score, so a track that never gets
            confirmed falls to the end of the recall sweep while a confirmed one keeps its rank.
        coast_penalty: the score of a missed track reported at its prediction is lowered by
            this much per missed frame (0: the last detection's score, AB3DMOT).
        report_detection_box: a matched track is reported at its detection's box rather than
            at the Kalman filter's corrected state (missed tracks: the prediction either way).
        size_scale: every detection's ``(h, w, l)`` is multiplied by these before tracking (a
            detector's size bias, fit on other labelled sequences by
            :func:`robokit.tracking.calibrate.fit_size_correction`; None: sizes as detected).
        size_offset: metres added to every detection's ``(h, w, l)`` (after ``size_scale``);
            None: none. Corrected sizes are floored at 1 cm.
    """

    metric: str = "giou3d"
    match_threshold: float = -0.2
    min_hits: int = 3
    max_age: int = 4
    score_threshold: float = -float("inf")
    noise: KalmanNoise = field(default_factory=KalmanNoise)
    high_score: float | None = 0.0
    low_match_threshold: float = -0.2
    birth_score: float | None = 0.0
    max_report_misses: int | None = 1
    max_distance: float | None = None
    keep_high_score: bool = True
    matching: str = "hungarian"
    confirm_score: float | None = None
    tentative_penalty: float | None = None
    coast_penalty: float = 0.0
    report_detection_box: bool = False
    size_scale: tuple[float, float, float] | None = None
    size_offset: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if self.matching not in MATCHINGS:
            raise ValueError(f"matching must be one of {MATCHINGS}, got {self.matching!r}")
        if self.min_hits < 1 or self.max_age < 1:
            raise ValueError(
                f"min_hits and max_age must be >= 1, got {self.min_hits}, {self.max_age}"
            )
        if self.max_report_misses is not None and self.max_report_misses < 0:
            raise ValueError(f"max_report_misses must be >= 0, got {self.max_report_misses}")
        if self.max_distance is not None and self.max_distance <= 0:
            raise ValueError(f"max_distance must be > 0, got {self.max_distance}")
        if self.coast_penalty < 0 or (self.tentative_penalty or 0.0) < 0:
            raise ValueError(
                f"coast_penalty and tentative_penalty must be >= 0, got "
                f"{self.coast_penalty}, {self.tentative_penalty}"
            )
        for name in ("size_scale", "size_offset"):
            value = getattr(self, name)
            if value is None:
                continue
            value = tuple(float(v) for v in value)
            if len(value) != 3 or not all(np.isfinite(value)):
                raise ValueError(f"{name} must be 3 finite numbers (h, w, l), got {value}")
            if name == "size_scale" and min(value) <= 0:
                raise ValueError(f"size_scale must be > 0, got {value}")
            object.__setattr__(self, name, value)

    @property
    def corrects_sizes(self) -> bool:
        """Whether detection sizes are changed before tracking (``size_scale`` / ``size_offset``)."""
        return self.size_scale is not None or self.size_offset is not None

    def corrected_sizes(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, 7)`` camera-frame boxes with ``(h, w, l)`` scaled, offset and floored at 1 cm (a copy)."""
        boxes = np.array(boxes, dtype=np.float64)
        sizes = boxes[:, 3:6]
        if self.size_scale is not None:
            sizes *= self.size_scale
        if self.size_offset is not None:
            sizes += self.size_offset
        np.maximum(sizes, _MIN_SIZE, out=sizes)
        return boxes

    @property
    def report_misses(self) -> int:
        """The most missed frames in a row at which a track is still reported."""
        if self.max_report_misses is None:
            return self.max_age - 1
        return min(self.max_report_misses, self.max_age - 1)

    def replace(self, **changes) -> TrackerConfig:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)


#: AB3DMOT's released KITTI configuration for PointRCNN cars (AB3DMOT_libs/model.py):
#: Hungarian on 3D GIoU >= -0.2, min_hits 3, max_age 2, every detection matches and births.
AB3DMOT = TrackerConfig(
    match_threshold=-0.2,
    min_hits=3,
    max_age=2,
    high_score=None,
    birth_score=None,
    max_report_misses=None,
    keep_high_score=False,
)
TRACKER_PRESETS: dict[str, TrackerConfig] = {"robokit": TrackerConfig(), "ab3dmot": AB3DMOT}


@dataclass(frozen=True)
class ClassConfigs:
    """Tracker settings per class: ``by_class[name]`` where given, else ``default``."""

    default: TrackerConfig = field(default_factory=TrackerConfig)
    by_class: Mapping[str, TrackerConfig] = field(default_factory=dict)

    def for_class(self, name: str) -> TrackerConfig:
        """The settings that track class ``name``."""
        return self.by_class.get(name, self.default)


def _logit(probability: float) -> float:
    return float(np.log(probability / (1.0 - probability)))


#: AB3DMOT's per-class rows for PointRCNN on KITTI (``get_param`` in ``AB3DMOT_libs/model.py``,
#: lines 54-56 at commit 61f3bd7; ``algm, metric, thres, min_hits, max_age``): Car hungar,
#: giou_3d -0.2, 3, 2; Pedestrian greedy, giou_3d -0.4, 1, 4; Cyclist hungar, dist_3d 2 m, 3, 4.
#: Here on top of robokit's two-stage matching, the low stage using the same threshold.
AB3DMOT_POINTRCNN_CLASSES: dict[str, dict] = {
    "Car": dict(metric="giou3d", match_threshold=-0.2, low_match_threshold=-0.2,
                min_hits=3, max_age=2),
    "Pedestrian": dict(metric="giou3d", match_threshold=-0.4, low_match_threshold=-0.4,
                       min_hits=1, max_age=4, matching="greedy"),
    "Cyclist": dict(metric="dist3d", match_threshold=-2.0, low_match_threshold=-2.0,
                    min_hits=3, max_age=4),
}  # fmt: skip

#: SimpleTrack's Waymo GIoU configurations (``configs/waymo_configs/vc_kf_giou.yaml`` for
#: vehicles, ``pd_kf_giou.yaml`` for pedestrians; no cyclist file, so cyclists take the
#: pedestrian one): two-stage split at probability 0.7 / 0.5 (``score_threshold``), second-stage
#: floor 0.1 (``det_score_threshold``), GIoU >= -0.5 in both stages (``asso_thres`` 1.5 = 1 -
#: GIoU; ``det_dist_threshold`` -0.5), ``max_age_since_update`` 2, ``min_hits_to_birth`` 3,
#: bipartite matching. Probabilities become logits for PointRCNN's scores.
SIMPLETRACK_WAYMO_CLASSES: dict[str, dict] = {
    name: dict(high_score=_logit(split), birth_score=_logit(split), score_threshold=_logit(0.1),
               match_threshold=-0.5, low_match_threshold=-0.5, min_hits=3, max_age=2)
    for name, split in (("Car", 0.7), ("Pedestrian", 0.5), ("Cyclist", 0.5))
}  # fmt: skip

#: PointRCNN's pedestrian boxes (the detections published with AB3DMOT) are too wide and long:
#: least-squares size factors (h, w, l) fit on the labels of the ten shared KITTI tracking
#: training sequences (``robokit kitti fit-size-correction --kind scale``, 1035 label boxes with a
#: detection at 3D IoU >= 0.25). Fit on either half and scored on the other, the correction wins
#: over AB3DMOT on both halves (``benchmarks/tracking.py --select --size-grid``). A property of
#: that detector: fit your own for another one, or track with ``--size-correction none``.
POINTRCNN_PEDESTRIAN_SIZE_SCALE = (0.9925, 0.8313, 0.8067)

#: robokit's own per-class rows, chosen by ``benchmarks/tracking.py --select`` (a small grid
#: scored on two halves of the ten KITTI training sequences; docs/kitti_tracking.md): cars and
#: cyclists report tentative tracks with a score penalty, pedestrians start tracks only from
#: detections scoring at least logit 2 and have their box sizes corrected; cyclists keep
#: SimpleTrack's row under that.
ROBOKIT_CLASSES: dict[str, dict] = {
    "Car": dict(tentative_penalty=2.0, max_age=6),
    "Pedestrian": dict(birth_score=2.0, size_scale=POINTRCNN_PEDESTRIAN_SIZE_SCALE),
    "Cyclist": dict(SIMPLETRACK_WAYMO_CLASSES["Cyclist"], tentative_penalty=20.0),
}

#: Per-class rows each preset applies on top of its :data:`TRACKER_PRESETS` entry.
PRESET_CLASS_ROWS: dict[str, dict[str, dict]] = {
    "robokit": ROBOKIT_CLASSES,
    "ab3dmot": {},
}


def preset_configs(preset: str = "robokit", **changes) -> ClassConfigs:
    """A preset's per-class settings, with ``changes`` (TrackerConfig fields) applied to every class."""
    base = TRACKER_PRESETS[preset]
    rows = PRESET_CLASS_ROWS[preset]
    return ClassConfigs(
        base.replace(**changes),
        {name: base.replace(**row).replace(**changes) for name, row in rows.items()},
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
        self.last_box = np.zeros((0, 7))  # the last matched detection's camera-frame box

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def update(
        self, boxes: np.ndarray, info: np.ndarray, ego: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance one frame with this frame's detections.

        Args:
            boxes: ``(N, 7)`` camera-frame boxes ``[x, y_bottom, z, h, w, l, rotation_y]``.
            info: ``(N, 7)`` per-detection ``[alpha, x1, y1, x2, y2, score, type_index]``,
                carried along to the output of the track it feeds.
            ego: optional ``(4, 4)`` rigid transform taking points from the previous frame's
                box coordinates to this frame's (ego-motion compensation; see
                :mod:`robokit.tracking.ego`).
        Returns:
            ``(boxes (R, 7), ids (R,), info (R, 7))`` of the reported tracks.
        """
        self.frame_count += 1
        config = self.config
        boxes = check_boxes(boxes)
        if config.corrects_sizes:
            boxes = config.corrected_sizes(boxes)
        info = np.asarray(info, dtype=np.float64)
        if info.shape != (len(boxes), 7):
            raise ValueError(f"info: expected shape ({len(boxes)}, 7), got {info.shape}")
        if len(self):
            predict_inplace(self.mean, self.cov, config.noise)
            if ego is not None:
                transform_states(self.mean, self.cov, ego)
            self.misses += 1
        det_index, track_index = self._associate(boxes, info[:, 5])
        if len(det_index):
            measurements = boxes[det_index][:, _BOX_TO_MEASUREMENT]
            self.mean[track_index], self.cov[track_index] = kalman_update(
                self.mean[track_index], self.cov[track_index], measurements, config.noise
            )
            previous = self.info[track_index, 5].copy()
            self.hits[track_index] += 1
            if config.confirm_score is not None:
                sure = track_index[info[det_index, 5] >= config.confirm_score]
                self.hits[sure] = np.maximum(self.hits[sure], config.min_hits)
            self.misses[track_index] = 0
            self.info[track_index] = info[det_index]
            self.last_box[track_index] = boxes[det_index]
            if config.keep_high_score and config.high_score is not None:
                weak = info[det_index, 5] < config.high_score
                self.info[track_index[weak], 5] = previous[weak]
        born = np.ones(len(boxes), dtype=bool)
        born[det_index] = False
        if config.birth_score is not None:
            born &= info[:, 5] >= config.birth_score
        self._start_tracks(boxes[born], info[born])
        output = self._report()
        self._drop(self.misses >= config.max_age)
        return output

    def _report(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(boxes, ids, info)`` of the tracks reported this frame, with their output scores."""
        config = self.config
        confirmed = (self.hits >= config.min_hits) | (self.frame_count <= config.min_hits)
        reported = confirmed & (self.misses <= config.report_misses)
        if config.tentative_penalty is not None:
            tentative = ~confirmed & (self.misses == 0)
            reported |= tentative
        info = self.info[reported].copy()
        if config.coast_penalty:
            info[:, 5] -= config.coast_penalty * self.misses[reported]
        if config.tentative_penalty is not None:
            info[tentative[reported], 5] -= config.tentative_penalty
        boxes = self.mean[reported][:, :7][:, _MEASUREMENT_TO_BOX]
        if config.report_detection_box:
            matched = self.misses[reported] == 0
            boxes[matched] = self.last_box[reported][matched]
        return boxes, self.ids[reported].copy(), info

    def _similarity(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, K)`` similarity of detections to predicted tracks; gated pairs are -inf."""
        predicted = self.mean[:, :7][:, _MEASUREMENT_TO_BOX]
        if self.config.metric == "dist3d":
            gap = boxes[:, None, :3] - predicted[None, :, :3]
            return -np.sqrt(np.einsum("nkd,nkd->nk", gap, gap))
        similarity = overlaps_unchecked(
            camera_to_upright_unchecked(boxes),
            camera_to_upright_unchecked(predicted),
            use_height=True,
            generalized=self._generalized,
        )
        if self.config.max_distance is not None:
            gap = boxes[:, None, :3] - predicted[None, :, :3]
            similarity[np.einsum("nkd,nkd->nk", gap, gap) > self.config.max_distance**2] = _REFUSED
        return similarity

    def _associate(self, boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two-stage matching -> (detection indices, track indices) of accepted pairs."""
        empty = np.zeros(0, dtype=np.int64)
        if len(boxes) == 0 or len(self) == 0:
            return empty, empty
        config = self.config
        similarity = self._similarity(boxes)
        assign = _greedy if config.matching == "greedy" else _hungarian
        if config.high_score is None:
            return assign(similarity, config.match_threshold)
        high = np.flatnonzero(scores >= config.high_score)
        low = np.flatnonzero(scores < config.high_score)
        rows, cols = assign(similarity[high], config.match_threshold)
        det_index, track_index = high[rows], cols
        if len(low):
            free = np.ones(len(self), dtype=bool)
            free[track_index] = False
            free = np.flatnonzero(free)
            rows, cols = assign(similarity[np.ix_(low, free)], config.low_match_threshold)
            det_index = np.concatenate([det_index, low[rows]])
            track_index = np.concatenate([track_index, free[cols]])
        return det_index, track_index

    def _start_tracks(self, boxes: np.ndarray, info: np.ndarray) -> None:
        count = len(boxes)
        if count == 0:
            return
        mean, cov = kalman_init(boxes[:, _BOX_TO_MEASUREMENT], self.config.noise)
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.ids = np.concatenate([self.ids, np.arange(self.next_id, self.next_id + count)])
        self.next_id += count
        hits = np.ones(count, dtype=np.int64)
        if self.config.confirm_score is not None:
            hits[info[:, 5] >= self.config.confirm_score] = self.config.min_hits
        self.hits = np.concatenate([self.hits, hits])
        self.misses = np.concatenate([self.misses, np.zeros(count, dtype=np.int64)])
        self.info = np.concatenate([self.info, info])
        self.last_box = np.concatenate([self.last_box, boxes])

    def _drop(self, dead: np.ndarray) -> None:
        if not dead.any():
            return
        alive = ~dead
        self.mean, self.cov = self.mean[alive], self.cov[alive]
        self.ids, self.hits, self.misses = self.ids[alive], self.hits[alive], self.misses[alive]
        self.info, self.last_box = self.info[alive], self.last_box[alive]


def _hungarian(similarity: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-similarity assignment of rows to columns; pairs below ``threshold`` refused."""
    if similarity.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    finite = np.where(np.isfinite(similarity), similarity, -1e6)
    rows, cols = linear_sum_assignment(finite, maximize=True)
    accepted = similarity[rows, cols] >= threshold
    return rows[accepted], cols[accepted]


def _greedy(similarity: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy assignment: the most similar free pair first, down to ``threshold``.

    AB3DMOT's ``greedy_matching`` (``AB3DMOT_libs/matching.py``) on ``similarity`` ``(N, K)``.
    """
    rows_taken = np.zeros(similarity.shape[0], dtype=bool)
    cols_taken = np.zeros(similarity.shape[1], dtype=bool)
    rows, cols = [], []
    for flat in np.argsort(-similarity, axis=None, kind="stable"):
        row, col = divmod(int(flat), similarity.shape[1])
        if similarity[row, col] < threshold:
            break
        if not (rows_taken[row] or cols_taken[col]):
            rows_taken[row] = cols_taken[col] = True
            rows.append(row)
            cols.append(col)
    return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)


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
    config: TrackerConfig | ClassConfigs | None = None,
    classes: tuple[str, ...] = ("Car",),
    num_frames: int | None = None,
    poses: np.ndarray | None = None,
) -> SequenceTrackingResult:
    """Track the detections of ``classes`` (one tracker per class) through a sequence.

    Args:
        detections: one sequence's detections (see :func:`robokit.tracking.io.read_detections`).
        config: tracker settings, for every class or per class (:class:`ClassConfigs`);
            default: robokit's, ``preset_configs("robokit")``.
        classes: class names to track, each with its own tracker and id range.
        num_frames: frames to run (default: up to the last detection's frame).
        poses: optional ``(F, 4, 4)`` pose of the box frame in a fixed world frame per frame
            (``F >= num_frames``), for ego-motion compensation (:mod:`robokit.tracking.ego`).
    Returns:
        :class:`SequenceTrackingResult` with KITTI result rows (score = the last matched
        detection's score) and the time spent in the tracking loop.
    """
    if config is None:
        configs = preset_configs("robokit")
    else:
        configs = config if isinstance(config, ClassConfigs) else ClassConfigs(config)
    warm_up()
    frames = detections.num_frames if num_frames is None else num_frames
    egos = frame_to_frame(poses, frames) if poses is not None else [None] * frames
    pieces: list[tuple] = []
    seconds = 0.0
    id_offset = 0
    for class_index, name in enumerate(classes):
        config = configs.for_class(name)
        keep = (detections.obj_type == name) & (detections.score >= config.score_threshold)
        dets = detections.select(keep)
        info = np.column_stack(
            [dets.alpha, dets.bbox2d, dets.score, np.full(len(dets), class_index)]
        )
        slices = dets.frame_slices(frames)
        tracker = Tracker(config)
        start = time.perf_counter()
        for frame, rows in enumerate(slices):
            boxes, ids, out_info = tracker.update(dets.boxes[rows], info[rows], egos[frame])
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
