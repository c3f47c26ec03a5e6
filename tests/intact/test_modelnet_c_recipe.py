"""The result recipe's bookkeeping (benchmarks/intact_modelnet_c.py): goal check, baseline reuse."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from robokit.intact.protocol import mean_ci95

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "intact_modelnet_c.py"
_SPEC = importlib.util.spec_from_file_location("intact_modelnet_c", _PATH)
recipe = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(recipe)


def _row(mces, cleans):
    return {"mCE": mean_ci95(mces), "clean": mean_ci95(cleans)}


def test_goal_needs_separate_intervals_and_clean_accuracy_within_a_point():
    rows = {"standard": _row([1.0, 1.02, 0.98], [0.90, 0.90, 0.90]),
            "adversarial": _row([0.95, 0.96, 0.94], [0.88, 0.88, 0.88]),
            "curriculum": _row([0.97, 0.99, 0.98], [0.89, 0.89, 0.89]),
            "intact": _row([0.80, 0.81, 0.79], [0.895, 0.895, 0.895])}
    goal = recipe.goal_check(rows)
    assert goal["best_baseline"] == "adversarial" and goal["ratio"] == pytest.approx(0.95 / 0.80)
    assert goal["mCE_intervals_separate"] and goal["met"]
    rows["intact"] = _row([0.80, 0.81, 0.79], [0.85, 0.85, 0.85])  # 5 points below standard clean
    assert not recipe.goal_check(rows)["met"]
    rows["intact"] = _row([0.80, 0.99, 0.90], [0.90, 0.90, 0.90])  # interval reaches adversarial's
    assert not recipe.goal_check(rows)["mCE_intervals_separate"]


def test_baselines_are_reused_only_under_the_same_settings(tmp_path):
    args = recipe.parse_args(["--backbones", "pointnet"])
    key = json.dumps([{"width": 0.5, "epochs": 10, "method": "intact", "seed": 0, "out": "x"}, "modelnet-c"])
    intact_changed = json.dumps([{"width": 0.5, "epochs": 10, "method": "intact", "seed": 3, "out": "y",
                                  "adapt_steps": 4}, "modelnet-c"])
    earlier = {"_config": {"pointnet": key}, "pointnet/standard/seed0": {"mCE": 1.0},
               "pointnet/intact/seed0": {"mCE": 0.9}}
    source = tmp_path / "runs.json"
    source.write_text(json.dumps(earlier))
    done = {"_config": {"pointnet": intact_changed}}
    assert recipe.reuse_baselines(source, done, args.backbones, [0]) == 1
    assert "pointnet/standard/seed0" in done and "pointnet/intact/seed0" not in done
    other = {"_config": {"pointnet": json.dumps([{"width": 0.25, "epochs": 10}, "modelnet-c"])}}
    assert recipe.reuse_baselines(source, other, args.backbones, [0]) == 0
