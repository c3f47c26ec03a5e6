"""``robokit kitti track / eval-tracking / degrade-tracking`` end to end on the shared KITTI sequences."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robokit.cli import main as robokit_main
from robokit.lidar.tracking import read_tracking_results


def kitti(*args) -> int:
    """Run ``robokit kitti <args>`` in-process; returns the exit code."""
    return robokit_main(["kitti", *map(str, args)])


@pytest.fixture(scope="module")
def tracking_root(shared_data):
    return shared_data / "kitti" / "tracking"


def test_track_then_evaluate_sequence_0000(tracking_root, tmp_path, capsys):
    detections = tracking_root / "detections" / "pointrcnn_Car"
    labels = tracking_root / "training" / "label_02"
    out = tmp_path / "results"
    assert (
        kitti(
            "track", "--detections", detections, "--out", out, "--seqs", "0000", "--labels", labels
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "fps" in printed and "0000" in printed
    results = read_tracking_results(out / "0000.txt")
    assert results.num_frames == 154 and len(set(results.track_id.tolist())) > 10
    assert set(results.obj_type.tolist()) == {"Car"}
    stats = json.loads((out / "tracking_stats.json").read_text())
    assert stats["frames"] == 154 and stats["fps"] > 0

    def evaluate(iou: str, name: str) -> dict:
        path = tmp_path / name
        code = kitti("eval-tracking", "--labels", labels, "--results", out, "--iou", iou,
                     "--classes", "Car", "--seqs", "0000", "--json", path)  # fmt: skip
        assert code == 0
        return json.loads(path.read_text())

    metrics = evaluate("0.25", "eval.json")
    for key in ("mota", "motp", "samota", "amota", "ids", "frag", "fp", "fn", "fps"):
        assert key in metrics
    assert metrics["fps"] == pytest.approx(stats["fps"])
    # PointRCNN + this tracker on sequence 0000 (measured 81.4 MOTA, 0 IDS); a broken chain scores far lower
    assert metrics["mota"] > 0.7 and metrics["ids"] <= 2 and metrics["samota"] > 0.8
    assert "MOTA" in capsys.readouterr().out
    assert evaluate("0.7", "strict.json")["mota"] < metrics["mota"]


def test_degrade_tracking_table(tracking_root, tmp_path, capsys):
    out = tmp_path / "degraded.json"
    code = kitti("degrade-tracking", "--detections", tracking_root / "detections" / "pointrcnn_Car",
                 "--labels", tracking_root / "training" / "label_02", "--seqs", "0003",
                 "--kinds", "miss,false_positive", "--rates", "0,0.5", "--json", out)  # fmt: skip
    assert code == 0
    rows = {(r["kind"], r["rate"]): r for r in json.loads(out.read_text())["rows"]}
    assert rows["miss", 0.5]["mota"] < rows["miss", 0.0]["mota"] - 0.2
    assert rows["miss", 0.5]["fn"] > rows["miss", 0.0]["fn"]
    assert rows["miss", 0.0]["mota"] == rows["false_positive", 0.0]["mota"]
    assert "degradation" in capsys.readouterr().out


def test_errors_are_reported_with_the_file(tmp_path, capsys):
    bad = tmp_path / "dets"
    bad.mkdir()
    (bad / "0000.txt").write_text("0,2,1,2,3,4,5,1.5,1.6,4.0,1.0,1.7,20.0,0.1\n")
    assert kitti("track", "--detections", bad, "--out", tmp_path / "out") == 2
    assert f"{bad / '0000.txt'}:1: expected 15" in capsys.readouterr().err
    assert kitti("eval-tracking", "--labels", bad, "--results", tmp_path / "missing") == 2
    assert "not a directory" in capsys.readouterr().err


def test_degradations_are_seeded_and_do_what_they_say(tracking_root):
    from robokit.lidar.tracking import read_detections
    from robokit.lidar.tracking.degrade import degrade_detections

    dets = read_detections(tracking_root / "detections" / "pointrcnn_Car" / "0003.txt")
    missed = degrade_detections(dets, "miss", 0.3, np.random.default_rng(1))
    again = degrade_detections(dets, "miss", 0.3, np.random.default_rng(1))
    np.testing.assert_array_equal(missed.boxes, again.boxes)
    assert 0.6 * len(dets) < len(missed) < 0.8 * len(dets)
    jittered = degrade_detections(dets, "jitter", 1.0, np.random.default_rng(2))
    moved = np.linalg.norm(jittered.boxes[:, :3] - dets.boxes[:, :3], axis=1)
    assert len(jittered) == len(dets) and 0.5 < np.median(moved) < 1.5  # 0.5 m per axis -> ~0.77 m
    extra = degrade_detections(
        dets, "false_positive", 0.2, np.random.default_rng(3), num_frames=144
    )
    assert len(extra) == len(dets) + round(0.2 * len(dets)) and extra.frame.max() < 144
    heights = extra.bbox2d[:, 3] - extra.bbox2d[:, 1]
    assert np.all(heights >= 0) and np.isin(extra.score, dets.score).all()
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade_detections(dets, "blur", 0.1, np.random.default_rng(0))
