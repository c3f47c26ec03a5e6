"""Detection-size calibration: the tracker's size correction and its cross-fitted least squares."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.tracking import read_detections, read_tracking_labels, track_sequence
from robokit.tracking.calibrate import fit_size_correction, frame_overlaps, matched_sizes
from robokit.tracking.evaluate import EvalConfig, evaluate_tracking
from robokit.tracking.io import TrackObjects
from robokit.tracking.tracker import Tracker, TrackerConfig

PERSON = (1.7, 0.55, 0.7)  # h, w, l of the labelled pedestrians (metres)
BIAS = (1.0, 1.5, 1.5)  # the synthetic detector's boxes: as tall, 1.5x as wide and long


def _objects(frames, types, boxes, scores=None, track_ids=None):
    count = len(frames)
    return TrackObjects(
        frame=np.asarray(frames, dtype=np.int64),
        track_id=np.asarray(track_ids if track_ids is not None else [-1] * count, dtype=np.int64),
        obj_type=np.asarray(types),
        truncated=np.zeros(count),
        occluded=np.zeros(count, dtype=np.int64),
        alpha=np.zeros(count),
        bbox2d=np.tile([100.0, 100.0, 140.0, 200.0], (count, 1)),
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 7),
        score=np.asarray(scores if scores is not None else [np.nan] * count, dtype=np.float64),
    )


def walk(start_x: float, frames: int = 20, size=PERSON) -> np.ndarray:
    """``(frames, 7)`` camera boxes of a pedestrian walking 0.1 m a frame across at z = 12 m."""
    return np.array([[start_x + 0.1 * t, 1.7, 12.0, *size, 0.0] for t in range(frames)])


def sequence(start_xs) -> tuple[TrackObjects, TrackObjects]:
    """(labels, detections) of pedestrians walking from ``start_xs``; detections biased by BIAS."""
    frames, boxes, ids = [], [], []
    for track_id, x in enumerate(start_xs, start=1):
        path = walk(x)
        frames += list(range(len(path)))
        boxes.append(path)
        ids += [track_id] * len(path)
    boxes = np.concatenate(boxes)
    labels = _objects(frames, ["Pedestrian"] * len(frames), boxes, track_ids=ids)
    detected = boxes.copy()
    detected[:, 3:6] *= BIAS
    detections = _objects(frames, ["Pedestrian"] * len(frames), detected, [5.0] * len(frames))
    return labels, detections


def test_frame_overlaps_compares_one_class_in_one_frame():
    person = [0.0, 1.7, 10.0, 1.8, 0.6, 0.8, 0.0]
    labels = _objects([0, 0, 1], ["Pedestrian", "Car", "Pedestrian"], [person, person, person])
    wider = [0.0, 1.7, 10.0, 1.8, 1.2, 0.8, 0.0]  # twice as wide, same centre: IoU 0.5
    found = _objects([0, 0], ["Pedestrian", "Pedestrian"], [person, wider])
    iou = frame_overlaps(labels, found, "Pedestrian", 0)
    assert iou.shape == (1, 2)  # the car label is left out
    assert iou[0] == pytest.approx([1.0, 0.5])
    assert frame_overlaps(labels, found, "Pedestrian", 1).shape == (1, 0)


def test_matched_sizes_pairs_each_label_with_its_best_detection_above_min_iou():
    labels, detections = sequence([0.0, 3.0])
    detected, labelled = matched_sizes(labels, detections, "Pedestrian")
    assert detected.shape == labelled.shape == (40, 3)
    np.testing.assert_allclose(detected, np.array(PERSON) * BIAS + np.zeros((40, 3)))
    # IoU of the 1.5 x 1.5 box with the label is 1 / 2.25 = 0.44: none pass 0.5
    assert matched_sizes(labels, detections, "Pedestrian", min_iou=0.5)[0].shape == (0, 3)
    assert matched_sizes(labels, detections, "Car")[0].shape == (0, 3)


def test_fit_recovers_a_known_size_bias_as_scale_or_offset():
    fit_on = [sequence([0.0, 3.0]), sequence([-2.0])]
    scale = fit_size_correction(fit_on, "Pedestrian", "scale")["size_scale"]
    np.testing.assert_allclose(scale, 1 / np.array(BIAS), atol=1e-4)
    offset = fit_size_correction(fit_on, "Pedestrian", "offset")["size_offset"]
    np.testing.assert_allclose(offset, np.array(PERSON) * (1 - np.array(BIAS)), atol=1e-4)
    with pytest.raises(ValueError, match="kind"):
        fit_size_correction(fit_on, "Pedestrian", "median")
    with pytest.raises(ValueError, match="no Cyclist label box"):
        fit_size_correction(fit_on, "Cyclist", "scale")


def test_a_correction_fit_on_other_sequences_lifts_mota_at_iou_half():
    """Fit on one sequence, score on another: the biased boxes fail IoU 0.5, corrected ones pass."""
    correction = fit_size_correction([sequence([0.0, 3.0])], "Pedestrian", "scale")
    labels, detections = sequence([-1.0, 2.0, 5.0])  # held out
    config = TrackerConfig(min_hits=1)
    mota = {}
    for name, tracker_config in (("raw", config), ("corrected", config.replace(**correction))):
        results = track_sequence(detections, tracker_config, ("Pedestrian",)).objects
        metrics = evaluate_tracking(
            {"s": labels}, {"s": results}, EvalConfig(cls="Pedestrian", iou_threshold=0.5)
        )
        mota[name] = metrics.mota
    assert mota["raw"] < 0  # every box a miss and a false positive
    assert mota["corrected"] == pytest.approx(1.0)


def test_tracker_applies_scale_then_offset_floored_at_a_centimetre():
    box = np.array([[0.0, 1.7, 12.0, 1.8, 0.8, 1.0, 0.0]])
    info = np.array([[0.0, 100.0, 100.0, 140.0, 200.0, 5.0, 0.0]])
    config = TrackerConfig(min_hits=1, size_scale=(1.0, 0.5, 0.8), size_offset=(0.1, -0.5, 0.0))
    boxes, _, _ = Tracker(config).update(box, info)
    np.testing.assert_allclose(boxes[0, 3:6], [1.9, 0.01, 0.8])
    np.testing.assert_allclose(box[0, 3:6], [1.8, 0.8, 1.0])  # the caller's array is untouched
    plain, _, _ = Tracker(TrackerConfig(min_hits=1)).update(box, info)
    np.testing.assert_allclose(plain[0, 3:6], [1.8, 0.8, 1.0])


@pytest.mark.parametrize(
    "changes",
    [
        dict(size_scale=(1.0, 0.8)),
        dict(size_scale=(1.0, 0.0, 0.8)),
        dict(size_offset=(0.0, float("nan"), 0.0)),
    ],
)
def test_bad_size_corrections_are_refused(changes):
    with pytest.raises(ValueError, match="size_"):
        TrackerConfig(**changes)


def test_real_pedestrian_boxes_of_0017_are_too_wide_and_long(shared_data):
    """The bias docs/kitti_tracking.md reports, fit on the one sequence that holds most of it."""
    root = shared_data / "kitti" / "tracking"
    labels = read_tracking_labels(root / "training" / "label_02" / "0017.txt")
    detections = read_detections(root / "detections" / "pointrcnn_Pedestrian" / "0017.txt")
    detected, labelled = matched_sizes(labels, detections, "Pedestrian")
    assert len(detected) == 660  # the --diagnose count at IoU >= 0.25
    scale = fit_size_correction([(labels, detections)], "Pedestrian", "scale")["size_scale"]
    assert 0.95 < scale[0] < 1.05  # height about right
    assert scale[1] < 0.85 and scale[2] < 0.85  # width and length too large by > 15%


def _benchmark():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "tracking.py"
    spec = importlib.util.spec_from_file_location("tracking_benchmark_sizes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_select_scores_each_half_with_the_correction_fit_on_the_other(monkeypatch, capsys):
    """``--select``: a size-fit point's held-out figures use the other half's fit, never its own."""
    import json

    bench = _benchmark()
    biased, exact = sequence([0.0, 3.0]), sequence([-1.0, 2.0])
    exact = (exact[0], exact[0].select(np.arange(len(exact[0]))))  # detections = the labels
    exact[1].score[:] = 5.0
    monkeypatch.setattr(bench, "SEQUENCES", ("a", "b"))
    monkeypatch.setattr(bench, "HALVES", {"A": ("a",), "B": ("b",)})
    labels = {"a": biased[0], "b": exact[0]}
    detections = {("Pedestrian", "a"): biased[1], ("Pedestrian", "b"): exact[1]}
    grid = {"size_fit": (None, "scale"), "min_hits": (1,)}
    assert bench.run_select(labels, detections, ("Pedestrian",), grid) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    fits = record["size_fits"]
    np.testing.assert_allclose(
        fits["Pedestrian scale on A"]["size_scale"], 1 / np.array(BIAS), atol=1e-4
    )
    np.testing.assert_allclose(fits["Pedestrian scale on B"]["size_scale"], 1.0)
    point = record["tracking"]["Pedestrian"]["points"]["min_hits=1, size_fit=scale"]
    assert point["in"]["A"]["mota@0.5"] == pytest.approx(100.0)  # A with A's fit: exact boxes
    assert point["out"]["A"]["mota@0.5"] < 0  # A with B's fit (none needed there): all missed
    assert point["in"]["B"]["mota@0.5"] == pytest.approx(100.0)
    assert point["out"]["B"]["mota@0.5"] < 0  # B's exact boxes shrunk by A's fit


def test_cross_fitted_results_track_each_fold_with_the_other_folds_fit(monkeypatch):
    """``--size-check``: sequence a is tracked with b's fit, b with a's, never with its own."""
    bench = _benchmark()
    biased, other = sequence([0.0, 3.0]), sequence([-1.0, 2.0])
    monkeypatch.setattr(bench, "SEQUENCES", ("a", "b"))
    labels = {"a": biased[0], "b": other[0]}
    detections = {("Pedestrian", "a"): biased[1], ("Pedestrian", "b"): other[1]}
    config = TrackerConfig(min_hits=1)
    folds = (("a",), ("b",))
    fitted = bench.cross_fitted_results(labels, detections, "Pedestrian", config, "scale", folds)
    plain = bench.cross_fitted_results(labels, detections, "Pedestrian", config, None, folds)
    # both sequences share the bias, so each is corrected by the other's fit
    np.testing.assert_allclose(fitted["a"].boxes[:, 3:6], labels["a"].boxes[:, 3:6], atol=1e-3)
    np.testing.assert_allclose(
        plain["b"].boxes[:, 3:6], detections["Pedestrian", "b"].boxes[:, 3:6]
    )
    detections["Pedestrian", "b"] = other[0].select(np.arange(len(other[0])))  # b: exact boxes
    detections["Pedestrian", "b"].score[:] = 5.0
    fitted = bench.cross_fitted_results(labels, detections, "Pedestrian", config, "scale", folds)
    np.testing.assert_allclose(
        fitted["a"].boxes[:, 3:6], detections["Pedestrian", "a"].boxes[:, 3:6]
    )
    np.testing.assert_allclose(
        fitted["b"].boxes[:, 3:6], labels["b"].boxes[:, 3:6] / BIAS, atol=1e-3
    )  # a's fit shrinks b's exact boxes


TEN = ("0000", "0002", "0003", "0004", "0005", "0007", "0009", "0011", "0017", "0020")


@pytest.mark.slow
def test_pedestrian_row_with_its_size_correction_at_iou_half_on_the_ten_sequences(shared_data):
    """docs/kitti_tracking.md: the Pedestrian row's correction lifts IoU 0.5 (AB3DMOT 25.25 / 23.15)."""
    from robokit.tracking.tracker import POINTRCNN_PEDESTRIAN_SIZE_SCALE, preset_configs

    root = shared_data / "kitti" / "tracking"
    labels = {s: read_tracking_labels(root / "training" / "label_02" / f"{s}.txt") for s in TEN}
    detections = {
        s: read_detections(root / "detections" / "pointrcnn_Pedestrian" / f"{s}.txt") for s in TEN
    }
    fit = fit_size_correction([(labels[s], detections[s]) for s in TEN], "Pedestrian")
    assert fit["size_scale"] == POINTRCNN_PEDESTRIAN_SIZE_SCALE  # the shipped constant's source
    figures = {}
    for name, configs in (
        ("robokit", preset_configs("robokit")),
        ("sizes as detected", preset_configs("robokit", size_scale=None)),
    ):
        results = {
            s: track_sequence(detections[s], configs, ("Pedestrian",), labels[s].num_frames).objects
            for s in TEN
        }
        m = evaluate_tracking(labels, results, EvalConfig(cls="Pedestrian", iou_threshold=0.5))
        figures[name] = (round(100 * m.samota, 2), round(100 * m.mota, 2))
    assert figures == {"robokit": (56.06, 47.88), "sizes as detected": (33.38, 23.22)}
