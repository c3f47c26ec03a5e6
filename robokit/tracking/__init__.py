"""3D multi-object tracking on KITTI: tracker (robokit's, AB3DMOT preset), I/O, CLEAR MOT / sAMOTA.

Submodules: :mod:`.io` (detections, labels, results), :mod:`.kalman` (batched constant-velocity
Kalman filter), :mod:`.tracker` (two-stage association, birth/death, presets), :mod:`.ego`
(ego-motion poses from oxts, pose files, ROS odometry), :mod:`.evaluate` (KITTI protocol in 3D),
:mod:`.degrade` (seeded detection degradations for robustness tables).
"""

from robokit.tracking.evaluate import EvalConfig, TrackingMetrics, evaluate_tracking
from robokit.tracking.io import (
    TrackObjects,
    read_detections,
    read_tracking_labels,
    read_tracking_results,
    write_tracking_results,
)
from robokit.tracking.tracker import (
    TRACKER_PRESETS,
    ClassConfigs,
    Tracker,
    TrackerConfig,
    preset_configs,
    track_sequence,
)

__all__ = [
    "TRACKER_PRESETS",
    "ClassConfigs",
    "EvalConfig",
    "TrackObjects",
    "Tracker",
    "TrackerConfig",
    "TrackingMetrics",
    "evaluate_tracking",
    "preset_configs",
    "read_detections",
    "read_tracking_labels",
    "read_tracking_results",
    "track_sequence",
    "write_tracking_results",
]
