"""benchmarks/sim_scene_robustness.py end to end at toy size: scenes -> train -> corrupted eval -> track.

Real parts throughout (MuJoCo scans, KITTI files, spconv detector, INTACT hooks, the tracker and
the devkit-protocol evaluator); only the sizes are tiny (2 sequences x 3 frames, one epoch).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "sim_scene_robustness.py"
_SPEC = importlib.util.spec_from_file_location("sim_scene_robustness", _PATH)
recipe = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = recipe  # dataclasses look their module up there
_SPEC.loader.exec_module(recipe)


def test_detections_become_track_objects_frame_by_frame():
    from robokit.pointcloud.frames import FrameDetections

    one = FrameDetections(np.array(["Car"], dtype=object), np.array([0.9]), np.zeros((1, 4)),
                          np.array([[1.0, 1.6, 10.0, 1.5, 1.6, 3.9, 0.1]]))
    objects = recipe.detections_to_track_objects([FrameDetections.empty(), one, FrameDetections.empty(), one])
    assert objects.frame.tolist() == [1, 3] and objects.obj_type.tolist() == ["Car", "Car"]
    assert np.array_equal(objects.boxes[1], one.boxes_cam[0]) and objects.score.tolist() == [0.9, 0.9]
    assert len(recipe.detections_to_track_objects([FrameDetections.empty()])) == 0


def test_summary_means_over_seeds_and_corruptions():
    rows = lambda bev: [{"corruption": "clean", "severity": 0, "bev": bev, "3d": 0.0, "mota": 0.5, "samota": 0.2},  # noqa: E731
                        {"corruption": "drop_points", "severity": 1, "bev": bev / 2, "3d": 0.0, "mota": 0.1,
                         "samota": 0.0},
                        {"corruption": "drop_points", "severity": 5, "bev": 0.0, "3d": 0.0, "mota": -0.1,
                         "samota": 0.0}]
    summary = recipe.summarise({"standard": [rows(40.0), rows(20.0)]})["standard"]
    assert summary["clean@0"]["bev"] == 30.0 and summary["drop_points@1"]["bev"] == 15.0
    assert summary["corrupted_mean"]["bev"] == 7.5 and summary["corrupted_mean"]["mota"] == pytest.approx(0.0)
    table = recipe.markdown_table({"standard": summary})
    assert "| drop_points | 5 | 0.0 | 0.0 | -10.0 | 0.0 |" in table


def test_seed_spread_pairs_the_methods_seed_by_seed():
    rows = lambda clean, corrupted: [  # noqa: E731
        {"corruption": "clean", "severity": 0, "bev": clean, "3d": 0.0, "mota": 0.5, "samota": 0.5},
        {"corruption": "drop_points", "severity": 1, "bev": corrupted, "3d": 0.0, "mota": 0.4, "samota": 0.5},
        {"corruption": "drop_points", "severity": 5, "bev": corrupted - 2.0, "3d": 0.0, "mota": 0.2, "samota": 0.5}]
    spread = recipe.seed_spread({"standard": [rows(10.0, 6.0), rows(20.0, 12.0), rows(30.0, 18.0)],
                                 "intact": [rows(10.0, 8.0), rows(20.0, 14.0), rows(30.0, 20.0)]})
    assert spread["standard"]["bev"]["corrupted_mean"]["seeds"] == [5.0, 11.0, 17.0]
    mean, low, high = spread["standard"]["bev"]["clean"]["mean_ci95"]
    # mean 20, sample std 10, t(0.975, 2) = 4.3027: half-width 4.3027 * 10 / sqrt(3) = 24.841
    assert mean == 20.0 and (low, high) == (pytest.approx(20.0 - 24.841, abs=1e-3), pytest.approx(20.0 + 24.841, abs=1e-3))
    gap = spread["intact - standard"]["bev"]
    assert gap["corrupted_mean"]["seeds"] == [2.0, 2.0, 2.0] and gap["corrupted_mean"]["mean_ci95"] == [2.0, 2.0, 2.0]
    assert gap["clean"]["seeds"] == [0.0, 0.0, 0.0]
    table = recipe.seed_table({"standard": [rows(10.0, 6.0)]}, [0])
    assert "| drop_points | 5 | 4.0 / 0.0 / 20.0 / 50.0 |" in table


def test_curriculum_trace_reads_the_epoch_rows_of_metrics_csv(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "step,train/loss,curriculum/strength,curriculum/level,curriculum/val_robust_score,"
        "curriculum/val_clean_score,curriculum/advanced\n"
        "25,1.5,,,,,\n"          # a training row: not an epoch's end
        "25,,0.0,,,,\n"          # epoch 1: clean warm-up
        "50,,0.2,0.0,0.3,0.4,1.0\n"
        "75,,0.4,1.0,0.1,0.4,0.0\n")
    assert recipe.curriculum_trace(tmp_path) == [
        {"epoch": 1, "strength": 0.0, "level": None, "robust": None, "clean": None, "advanced": None},
        {"epoch": 2, "strength": 0.2, "level": 0.0, "robust": 0.3, "clean": 0.4, "advanced": 1.0},
        {"epoch": 3, "strength": 0.4, "level": 1.0, "robust": 0.1, "clean": 0.4, "advanced": 0.0}]


@pytest.mark.slow
def test_toy_chain_scenes_train_corrupt_track(tmp_path, monkeypatch):
    budget = recipe.TOY
    split = recipe.make_scenes(tmp_path / "scenes", budget)
    assert split == {"train": ["0000"], "test": ["0001"], "frames": 3}
    assert (tmp_path / "scenes/object/ImageSets/test.txt").read_text().split() == ["000003", "000004", "000005"]
    for method in ("standard", "intact"):
        summary = recipe.train(tmp_path / "scenes", tmp_path / method, method, 0, budget)
        assert math.isfinite(summary["last_epoch_loss"]) and Path(summary["checkpoint"]).is_file()
    # the INTACT hooks ran (no warm-up): the curriculum logged its robust score, and (relative gate)
    # the clean score on the same scan
    (epoch,) = recipe.curriculum_trace(tmp_path / "intact")
    assert epoch["level"] == 0.0 and 0.0 <= epoch["robust"] <= 1.0 and 0.0 <= epoch["clean"] <= 1.0
    assert recipe.curriculum_trace(tmp_path / "standard") == []  # no hooks, no curriculum columns
    rows = recipe.evaluate_run(Path(summary["checkpoint"]), tmp_path / "scenes", split,
                               corruptions=("drop_points",))
    assert [(r["corruption"], r["severity"]) for r in rows] == [("clean", 0), ("drop_points", 1),
                                                               ("drop_points", 3), ("drop_points", 5)]
    for row in rows:  # every link produced its figures: AP in [0, 100], MOTA <= 1, ground truth counted
        assert 0.0 <= row["bev"] <= 100.0 and row["mota"] <= 1.0 and row["num_gt"] > 0
    json.dumps(rows)  # the recipe writes them as JSON
    monkeypatch.syspath_prepend(str(_PATH.parent))  # spawned workers import the recipe by name
    assert recipe.evaluate_run(Path(summary["checkpoint"]), tmp_path / "scenes", split,
                               corruptions=("drop_points",), jobs=2) == rows  # split over processes: same rows


def test_a_finished_run_is_only_evaluated_on_the_conditions_it_lacks(tmp_path, monkeypatch):
    """``--corruptions`` widened after a run: rows.json is reused, only the new conditions are evaluated.

    Training and evaluation are replaced here (the toy chain above runs the real ones); what is
    tested is the recipe's bookkeeping: which conditions it asks for, the order of the rows, the file.
    """
    row = lambda name, severity: {"corruption": name, "severity": severity, "bev": 1.0}  # noqa: E731
    run_dir = tmp_path / "intact_s0"
    run_dir.mkdir()
    old = [row("clean", 0)] + [row("drop_points", s) for s in recipe.SEVERITIES]
    (run_dir / "rows.json").write_text(json.dumps({"rows": old, "train_cpu_seconds": 5.0, "eval_wall_seconds": 1.0}))
    asked = []

    def fake_evaluate(checkpoint, data, split, todo, jobs=1):
        asked.extend(todo)
        return [row(name, severity) for name, severity in todo]

    monkeypatch.setattr(recipe, "trained", lambda *a: {"checkpoint": str(run_dir / "final.pt")})
    monkeypatch.setattr(recipe, "evaluate_conditions", fake_evaluate)
    args = recipe.parse_args(["--corruptions", "gaussian_noise", "drop_points"])
    record = recipe.evaluated(tmp_path, run_dir, {}, "intact", 0, recipe.QUICK, args)
    assert asked == [("gaussian_noise", s) for s in recipe.SEVERITIES]
    assert [(r["corruption"], r["severity"]) for r in record["rows"]] == [(n or "clean", s) for n, s in recipe.conditions(
        ("gaussian_noise", "drop_points"))]
    assert record["train_cpu_seconds"] == 5.0 and len(json.loads((run_dir / "rows.json").read_text())["rows"]) == 7
    asked.clear()
    narrow = recipe.evaluated(tmp_path, run_dir, {}, "intact", 0, recipe.QUICK, recipe.parse_args(["--corruptions", "drop_points"]))
    assert asked == [] and narrow["rows"] == old  # nothing to evaluate; rows of the asked conditions only
