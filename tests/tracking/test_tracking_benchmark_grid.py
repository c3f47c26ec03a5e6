"""benchmarks/tracking.py's selection grids (no shared data needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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


def test_size_grid_crosses_associations_with_size_fits():
    base = TrackerConfig(max_age=4)
    points = {
        label: (config, fit) for label, config, fit in bench.grid_points(base, bench.SIZE_GRID)
    }
    assert len(points) == 48
    config, fit = points[
        "association=dist<=1m, tentative_penalty=None, birth_score=2.0, size_fit=scale"
    ]
    assert fit == "scale"
    assert config == base.replace(
        metric="dist3d", match_threshold=-1.0, low_match_threshold=-1.0, birth_score=2.0,
        tentative_penalty=None,
    )  # fmt: skip
    greedy, fit = points[
        "association=giou>=-0.4 greedy, tentative_penalty=2.0, birth_score=0.0, size_fit=None"
    ]
    assert fit is None and greedy.matching == "greedy" and greedy.match_threshold == -0.4
    assert greedy.size_scale is None  # the fit is made per half by run_select, not here
    assert {fit for _, fit in points.values()} == {None, "scale", "offset"}
