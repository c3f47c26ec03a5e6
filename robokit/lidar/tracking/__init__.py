"""3D multi-object tracking on KITTI: AB3DMOT-style tracker, file I/O, CLEAR MOT / sAMOTA evaluation.

Submodules: :mod:`.io` (detections, labels, results), :mod:`.kalman` (batched constant-velocity
Kalman filter), :mod:`.tracker` (association, birth/death), :mod:`.evaluate` (KITTI protocol
in 3D), :mod:`.degrade` (seeded detection degradations for robustness tables).
"""

from robokit.lidar.tracking.evaluate import EvalConfig, TrackingMetrics, evaluate_tracking
from robokit.lidar.tracking.io import (
    TrackObjects,
    read_detections,
    read_tracking_labels,
    read_tracking_results,
    write_tracking_results,
)
from robokit.lidar.tracking.tracker import Tracker, TrackerConfig, track_sequence

__all__ = [
    "EvalConfig",
    "TrackObjects",
    "Tracker",
    "TrackerConfig",
    "TrackingMetrics",
    "evaluate_tracking",
    "read_detections",
    "read_tracking_labels",
    "read_tracking_results",
    "track_sequence",
    "write_tracking_results",
]
