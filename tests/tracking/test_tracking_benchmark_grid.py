"""benchmarks/tracking.py's selection grids and its diagnosis overlap (no shared data needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from robokit.tracking.io import TrackObjects
from robokit.tracking.tracker import TrackerConfig

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "tracking.py"
_SPEC = importlib.util.spec_from_file_location("tracking_benchmark", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_default_grid_keeps_its_twelve_documented_points():
    points = bench.grid_configs(TrackerConfig(max_age=2))
    assert len(points) == 12
    labels = [label for label, _ in points]
    assert labels[0] == "tentative_penalty=None, birth_score=0.0"
    assert "tentative_penalty=2.0, max_age=6, birth_score=2.0" in labels
    assert {config.max_report_misses for _, config in points} == {1}


def test_lost_output_grid_adds_the_lost_track_policy_and_keeps_the_rows_own_when_none():
    base = TrackerConfig(max_age=4)
    points = dict(bench.grid_configs(base, bench.LOST_OUTPUT_GRID))
    assert len(points) == 36
    assert points["tentative_penalty=None, birth_score=2.0"] == base.replace(
        tentative_penalty=None, birth_score=2.0
    )
    assert points["tentative_penalty=20.0, birth_score=0.0, max_report_misses=0"].report_misses == 0
    coasting = points["tentative_penalty=None, max_age=6, birth_score=0.0, max_report_misses=2"]
    assert (coasting.max_age, coasting.report_misses) == (6, 2)


def _objects(frames, types, boxes):
    count = len(frames)
    return TrackObjects(
        frame=np.asarray(frames, dtype=np.int64),
        track_id=np.arange(count, dtype=np.int64),
        obj_type=np.asarray(types),
        truncated=np.zeros(count),
        occluded=np.zeros(count, dtype=np.int64),
        alpha=np.zeros(count),
        bbox2d=np.zeros((count, 4)),
        boxes=np.asarray(boxes, dtype=np.float64),
        score=np.zeros(count),
    )


def test_frame_overlaps_compares_one_class_in_one_frame():
    person = [0.0, 1.7, 10.0, 1.8, 0.6, 0.8, 0.0]
    labels = _objects([0, 0, 1], ["Pedestrian", "Car", "Pedestrian"], [person, person, person])
    wider = [0.0, 1.7, 10.0, 1.8, 1.2, 0.8, 0.0]  # twice as wide, same centre: IoU 0.5
    found = _objects([0, 0], ["Pedestrian", "Pedestrian"], [person, wider])
    iou = bench.frame_overlaps(labels, found, "Pedestrian", 0)
    assert iou.shape == (1, 2)  # the car label is left out
    assert iou[0] == pytest.approx([1.0, 0.5])
    assert bench.frame_overlaps(labels, found, "Pedestrian", 1).shape == (1, 0)
