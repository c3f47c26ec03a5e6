"""``robokit kitti track / eval-tracking / degrade-tracking`` end to end on the shared KITTI sequences."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robokit.cli import main as robokit_main
from robokit.tracking import read_tracking_results


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
    # sequence 0003: MOTA 0.89 -> 0.69 with the default tracker (which bridges gaps of 5 frames)
    assert rows["miss", 0.5]["mota"] < rows["miss", 0.0]["mota"] - 0.1
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
    from robokit.tracking import read_detections
    from robokit.tracking.degrade import degrade_detections

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


SCRIPT_SEQUENCES = "0000,0002,0003,0004"


def test_default_eval_flags_give_ab3dmot_evaluate_py_figures(tracking_root, tmp_path, capsys):
    """``eval-tracking`` with no protocol flags = AB3DMOT's scripts/KITTI/evaluate.py.

    The reference figures are those of a local run of that script's evaluation logic on the
    AB3DMOT-preset results of these four sequences (docs/kitti_tracking.md).
    """
    out, path = tmp_path / "ab3dmot", tmp_path / "eval.json"
    labels = tracking_root / "training" / "label_02"
    assert kitti("track", "--detections", tracking_root / "detections" / "pointrcnn_Car",
                 "--out", out, "--seqs", SCRIPT_SEQUENCES, "--labels", labels,
                 "--preset", "ab3dmot") == 0  # fmt: skip
    assert kitti("eval-tracking", "--labels", labels, "--results", out,
                 "--seqs", SCRIPT_SEQUENCES, "--json", path) == 0  # fmt: skip
    metrics = json.loads(path.read_text())
    assert metrics["samota"] == pytest.approx(0.7179119, abs=1e-6)
    assert metrics["amota"] == pytest.approx(0.2844411, abs=1e-6)
    assert (metrics["fp"], metrics["fn"], metrics["frag"], metrics["num_gt"]) == (113, 703, 7, 2317)
    capsys.readouterr()


def test_track_refuses_a_used_out_folder_and_overwrite_removes_stale_sequences(
    tracking_root, tmp_path, capsys
):
    detections = tracking_root / "detections" / "pointrcnn_Car"
    out = tmp_path / "results"
    out.mkdir()
    (out / "0017.txt").write_text("stale results of another run\n")
    assert kitti("track", "--detections", detections, "--out", out, "--seqs", "0003") == 2
    err = capsys.readouterr().err
    assert f"{out}: not empty" in err and "--overwrite" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["0017.txt"]  # nothing written
    keep = out / "notes.md"
    keep.write_text("not ours")
    assert kitti("track", "--detections", detections, "--out", out, "--seqs", "0003",
                 "--overwrite") == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["0003.txt", "notes.md", "tracking_stats.json"]
    assert json.loads((out / "tracking_stats.json").read_text())["preset"] == "robokit"


def test_bad_input_writes_nothing_into_out(tmp_path, capsys):
    good_and_bad = tmp_path / "dets"
    good_and_bad.mkdir()
    (good_and_bad / "0000.txt").write_text("0,2,1,2,3,40,5,1.5,1.6,4.0,1.0,1.7,20.0,0.1,0.0\n")
    (good_and_bad / "0001.txt").write_text("0,2,1,2,3,40\n")
    out = tmp_path / "out"
    assert kitti("track", "--detections", good_and_bad, "--out", out) == 2
    assert "0001.txt:1: expected 15" in capsys.readouterr().err
    assert not out.exists()
    assert kitti("track", "--detections", good_and_bad, "--out", out, "--oxts", tmp_path) == 2
    assert "--oxts and --calib go together" in capsys.readouterr().err


def test_empty_label_file_says_there_is_no_ground_truth(tmp_path, capsys):
    labels, results = tmp_path / "labels", tmp_path / "results"
    labels.mkdir()
    results.mkdir()
    (labels / "0000.txt").write_text("")
    (results / "0000.txt").write_text(
        "0 1 Car 0 0 0.0 100 100 200 180 1.5 1.6 4.0 0.0 1.7 20.0 0.0 3.0\n"
    )
    path = tmp_path / "eval.json"
    assert kitti("eval-tracking", "--labels", labels, "--results", results, "--json", path) == 2
    captured = capsys.readouterr()
    assert "no ground-truth objects of Car" in captured.err and "inf" not in captured.out
    assert not path.exists()
    (labels / "0000.txt").write_text(
        "0 7 Car 0 0 0.0 100 100 200 180 1.5 1.6 4.0 0.0 1.7 20.0 0.0\n"
    )
    assert kitti("eval-tracking", "--labels", labels, "--results", results,
                 "--classes", "Car,Cyclist", "--json", path) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "no Cyclist ground-truth objects" in captured.err and "-inf" not in captured.out
    assert json.loads(path.read_text())["without_ground_truth"] == ["Cyclist"]


def test_flags_override_the_preset(tmp_path):
    from robokit.tracking.cli import TrackArgs, _tracker_config
    from robokit.tracking.tracker import ROBOKIT_CLASSES, SIMPLETRACK_WAYMO_CLASSES, TRACKER_PRESETS

    args = dict(detections=tmp_path, out=tmp_path)
    robokit = _tracker_config(TrackArgs(**args))
    assert robokit.default == TRACKER_PRESETS["robokit"]
    for name in ("Car", "Pedestrian", "Cyclist"):  # robokit's per-class rows
        assert robokit.for_class(name) == TRACKER_PRESETS["robokit"].replace(
            **ROBOKIT_CLASSES[name]
        )
    cyclist = robokit.for_class("Cyclist")
    assert cyclist == cyclist.replace(**SIMPLETRACK_WAYMO_CLASSES["Cyclist"])  # SimpleTrack's row
    assert cyclist.tentative_penalty == 20.0 and robokit.for_class("Pedestrian").birth_score == 2.0
    ab3dmot = _tracker_config(TrackArgs(**args, preset="ab3dmot", max_age=3))
    assert ab3dmot.default == TRACKER_PRESETS["ab3dmot"].replace(max_age=3)
    assert ab3dmot.for_class("Cyclist") == ab3dmot.default  # AB3DMOT: one setting for all
    assert _tracker_config(TrackArgs(**args, max_age=3)).for_class("Cyclist").max_age == 3
    distance = _tracker_config(TrackArgs(**args, metric="dist3d")).default
    assert (distance.metric, distance.match_threshold, distance.low_match_threshold) == (
        "dist3d", -2.0, -2.0,
    )  # fmt: skip
    iou = _tracker_config(TrackArgs(**args, metric="iou3d", match_threshold=0.1)).default
    assert (iou.match_threshold, iou.low_match_threshold) == (0.1, 0.1)


def test_fit_size_correction_then_track_other_sequences_with_it(tracking_root, tmp_path, capsys):
    detections = tracking_root / "detections" / "pointrcnn_Pedestrian"
    labels = tracking_root / "training" / "label_02"
    sizes = tmp_path / "sizes.json"
    assert kitti("fit-size-correction", "--detections", detections, "--labels", labels,
                 "--seqs", "0002", "--out", sizes) == 0  # fmt: skip
    fitted = json.loads(sizes.read_text())
    assert fitted["sequences"] == ["0002"] and fitted["pairs"]["Pedestrian"] == 152
    scale = fitted["classes"]["Pedestrian"]["size_scale"]
    out = tmp_path / "tracks"
    assert kitti("track", "--detections", detections, "--classes", "Pedestrian", "--seqs", "0000",
                 "--out", out, "--size-correction", sizes) == 0  # fmt: skip
    stats = json.loads((out / "tracking_stats.json").read_text())
    assert stats["tracker_by_class"]["Pedestrian"]["size_scale"] == scale
    plain = tmp_path / "plain"
    assert kitti("track", "--detections", detections, "--classes", "Pedestrian", "--seqs", "0000",
                 "--out", plain, "--size-correction", "none") == 0  # fmt: skip
    stats = json.loads((plain / "tracking_stats.json").read_text())
    assert stats["tracker_by_class"]["Pedestrian"]["size_scale"] is None
    widths = [read_tracking_results(d / "0000.txt").boxes[:, 4].mean() for d in (out, plain)]
    assert widths[0] == pytest.approx(widths[1] * scale[1], rel=0.02)
    assert kitti("fit-size-correction", "--detections", detections, "--labels", labels,
                 "--seqs", "0002", "--classes", "Tram", "--out", tmp_path / "tram.json") == 2  # fmt: skip
    assert "no Tram label box" in capsys.readouterr().err
    assert not (tmp_path / "tram.json").exists()
