"""KITTI tracking file formats: real files parse, round trips are exact, bad lines name file and line."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.tracking.io import (
    list_sequences,
    read_detections,
    read_tracking_labels,
    read_tracking_results,
    write_tracking_results,
)

GOOD_LABEL = "0 3 Car 0 1 -1.5 10 20 110 90 1.5 1.6 4.0 1.0 1.7 20.0 0.1"
GOOD_DETECTION = "0,2,10,20,110,90,7.5,1.5,1.6,4.0,1.0,1.7,20.0,0.1,-1.5"


def test_real_labels_and_detections_parse(shared_data):
    root = shared_data / "kitti" / "tracking"
    labels = read_tracking_labels(root / "training" / "label_02" / "0000.txt")
    assert len(labels) == 1089 and labels.num_frames == 154
    assert {"Car", "Van", "DontCare", "Pedestrian"} <= set(labels.obj_type.tolist())
    assert np.all(np.diff(labels.frame) >= 0)
    first_van = labels.select(labels.obj_type == "Van")
    np.testing.assert_allclose(
        first_van.boxes[0], [-4.552284, 1.858523, 13.410495, 2.0, 1.823255, 4.433886, -2.115488]
    )
    detections = read_detections(root / "detections" / "pointrcnn_Car" / "0000.txt")
    assert len(detections) == 1054 and set(detections.obj_type.tolist()) == {"Car"}
    assert detections.score[0] == pytest.approx(8.2981)
    np.testing.assert_allclose(detections.bbox2d[0], [298.3125, 165.1800, 458.2292, 293.4391])
    # the training half of the standard split; the validation half is reserved
    training = "0000 0002 0003 0004 0005 0007 0009 0011 0017 0020".split()
    assert list_sequences(root / "training" / "label_02") == training


def test_results_round_trip(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text(GOOD_LABEL + "\n" + GOOD_LABEL.replace("0 3 Car", "2 4 Van", 1) + "\n")
    labels = read_tracking_labels(path)
    labels.score = np.array([0.5, 2.25])
    written = write_tracking_results(tmp_path / "out" / "0000.txt", labels)
    back = read_tracking_results(written)
    for name in ("frame", "track_id", "obj_type", "occluded", "score"):
        np.testing.assert_array_equal(getattr(back, name), getattr(labels, name))
    np.testing.assert_allclose(back.boxes, labels.boxes, atol=1e-6)
    np.testing.assert_allclose(back.bbox2d, labels.bbox2d, atol=1e-4)


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("0 3 Car 0 1 -1.5 10 20 110 90 1.5 1.6 4.0 1.0 1.7", "expected 17 or 18"),
        ("0 3 Car 0 1 -1.5 10 20 110 90 1.5 abc 4.0 1.0 1.7 20.0 0.1", "not a number: 'abc'"),
        ("0 3 Car 0 1 -1.5 10 20 110 90 1.5 1.6 nan 1.0 1.7 20.0 0.1", "NaN or infinite"),
        ("0 3 Car 0 1 -1.5 10 20 110 90 1.5 -1.6 4.0 1.0 1.7 20.0 0.1", "negative size"),
        ("-1 3 Car 0 1 -1.5 10 20 110 90 1.5 1.6 4.0 1.0 1.7 20.0 0.1", "frame must be"),
        (GOOD_LABEL, "appears twice in frame 0"),
    ],
)
def test_malformed_label_line_names_file_and_line(tmp_path, bad_line, message):
    path = tmp_path / "0007.txt"
    path.write_text(GOOD_LABEL + "\n\n" + bad_line + "\n")
    with pytest.raises(ValueError, match=message) as info:
        read_tracking_labels(path)
    assert f"{path}:3:" in str(info.value)


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("0,2,10,20,110,90,7.5,1.5,1.6,4.0,1.0,1.7,20.0,0.1", "expected 15"),
        ("0,9,10,20,110,90,7.5,1.5,1.6,4.0,1.0,1.7,20.0,0.1,-1.5", "unknown type code"),
        ("0,2,10,20,110,90,inf,1.5,1.6,4.0,1.0,1.7,20.0,0.1,-1.5", "score is not finite"),
        ("0.5,2,10,20,110,90,7.5,1.5,1.6,4.0,1.0,1.7,20.0,0.1,-1.5", "frame must be"),
        ("0,2,10,20,110,90,7.5,1.5,1.6,4.0,1.0,1.7,20.0,x,-1.5", "field 14 is not a number"),
    ],
)
def test_malformed_detection_line_names_file_and_line(tmp_path, bad_line, message):
    path = tmp_path / "0000.txt"
    path.write_text(GOOD_DETECTION + "\n" + bad_line + "\n")
    with pytest.raises(ValueError, match=message) as info:
        read_detections(path)
    assert f"{path}:2:" in str(info.value)


def test_results_need_a_score_and_missing_files_are_named(tmp_path):
    path = tmp_path / "0000.txt"
    path.write_text(GOOD_LABEL + "\n")
    with pytest.raises(ValueError, match=rf"{path}:1: expected 18"):
        read_tracking_results(path)
    with pytest.raises(FileNotFoundError, match="0009.txt"):
        read_detections(tmp_path / "0009.txt")
    with pytest.raises(FileNotFoundError, match=r"sequence\(s\) \['0009'\]"):
        list_sequences(tmp_path, ["0000", "0009"])
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not a text file"):
        read_detections(tmp_path / "binary.txt")
