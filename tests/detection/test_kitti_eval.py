"""KITTI AP|R40 on hand-built frames whose answer is known, and the devkit's ignore rules."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.detection.kitti_eval import (
    FrameDetections,
    FrameGroundTruth,
    ap_from_pr,
    devkit_thresholds,
    evaluate_kitti,
    format_ap_table,
    image_box_overlap,
)

EASY_BBOX = (100.0, 100.0, 200.0, 200.0)  # 100 px tall: passes every difficulty's height rule


def car(
    x: float, z: float = 20.0, h: float = 1.5, w: float = 1.6, length: float = 3.9, ry: float = 0.0
):
    """Camera-frame box [x, y_bottom, z, h, w, l, ry]."""
    return [x, 1.6, z, h, w, length, ry]


def gt_frame(boxes, names=None, truncated=None, occluded=None, bbox=None) -> FrameGroundTruth:
    n = len(boxes)
    return FrameGroundTruth(
        names=np.array(names or ["Car"] * n, dtype=object),
        truncated=np.asarray(truncated if truncated is not None else [0.0] * n, dtype=float),
        occluded=np.asarray(occluded if occluded is not None else [0] * n, dtype=int),
        bbox=np.asarray(bbox if bbox is not None else [EASY_BBOX] * n, dtype=float).reshape(-1, 4),
        boxes_cam=np.asarray(boxes, dtype=float).reshape(-1, 7),
    )


def det_frame(boxes, scores, names=None, bbox=None) -> FrameDetections:
    n = len(boxes)
    return FrameDetections(
        names=np.array(names or ["Car"] * n, dtype=object),
        scores=np.asarray(scores, dtype=float),
        bbox=np.asarray(bbox if bbox is not None else [EASY_BBOX] * n, dtype=float).reshape(-1, 4),
        boxes_cam=np.asarray(boxes, dtype=float).reshape(-1, 7),
    )


FOUR_CARS = [car(x) for x in (-15.0, -5.0, 5.0, 15.0)]


def car_ap(gt, det, metric="3d", difficulty="moderate", **kwargs) -> float:
    result = evaluate_kitti(gt, det, classes=["Car"], metrics=[metric], **kwargs)
    return result.ap["Car"][metric][difficulty]


@pytest.mark.parametrize("metric", ["bbox", "bev", "3d"])
def test_perfect_detections_score_100(metric):
    gt = [gt_frame(FOUR_CARS), gt_frame(FOUR_CARS[:2])]
    det = [det_frame(FOUR_CARS, [0.9, 0.8, 0.7, 0.6]), det_frame(FOUR_CARS[:2], [0.5, 0.4])]
    result = evaluate_kitti(gt, det, classes=["Car"], metrics=[metric])
    assert result.ap["Car"][metric] == {"easy": 100.0, "moderate": 100.0, "hard": 100.0}
    assert result.num_gt["Car"] == {"easy": 6, "moderate": 6, "hard": 6}


def test_no_detections_score_0_and_absent_class_is_nan():
    result = evaluate_kitti(
        [gt_frame(FOUR_CARS)], [FrameDetections.empty()], classes=["Car", "Cyclist"]
    )
    assert result.ap["Car"]["3d"]["moderate"] == 0.0
    assert np.isnan(result.ap["Cyclist"]["3d"]["moderate"])
    assert "-" in format_ap_table(result)


def test_half_found_with_false_positives_ranked_last_gives_50():
    """Recall reaches 0.5 at precision 1: 20 of the 40 recall points -> AP 50."""
    far_away = [car(x, z=60.0) for x in (-10.0, 10.0)]  # no overlap with any ground truth
    det = det_frame(FOUR_CARS[:2] + far_away, [0.9, 0.8, 0.3, 0.2])
    assert car_ap([gt_frame(FOUR_CARS)], [det]) == pytest.approx(50.0)


def test_interleaved_false_positive_gives_known_interpolated_value():
    """TP, FP, TP over 4 objects: precision 1 up to recall 1/4, then 2/3 up to recall 1/2.
    AP|R40 = (10 * 1 + 10 * 2/3) / 40 = 41.67."""
    det = det_frame([FOUR_CARS[0], car(0.0, z=60.0), FOUR_CARS[1]], [0.9, 0.8, 0.7])
    assert car_ap([gt_frame(FOUR_CARS)], [det]) == pytest.approx(100 * (10 + 20 / 3) / 40)


def test_wrong_ranking_lowers_ap_below_correct_ranking():
    good = det_frame([FOUR_CARS[0], car(0.0, z=60.0)], [0.9, 0.1])
    bad = det_frame([FOUR_CARS[0], car(0.0, z=60.0)], [0.1, 0.9])
    assert car_ap([gt_frame(FOUR_CARS)], [good]) == pytest.approx(25.0)
    assert car_ap([gt_frame(FOUR_CARS)], [bad]) == pytest.approx(100 * 10 * 0.5 / 40)


def test_iou_threshold_is_class_specific_and_strict():
    """A car shifted 0.6 m along its length: BEV IoU (3.3 / 4.5 = 0.733) passes 0.7 in BEV;
    shifted 1.0 m (IoU 2.9 / 4.9 = 0.59) it fails Car's 0.7 but would pass 0.5."""
    gt = [gt_frame([car(0.0)])]
    assert car_ap(gt, [det_frame([car(0.6)], [0.9])], metric="bev") == 100.0
    assert car_ap(gt, [det_frame([car(1.0)], [0.9])], metric="bev") == 0.0
    ped_box = [0.0, 1.6, 20.0, 1.7, 0.6, 3.9, 0.0]
    ped_shift = [1.0, 1.6, 20.0, 1.7, 0.6, 3.9, 0.0]
    result = evaluate_kitti(
        [gt_frame([ped_box], names=["Pedestrian"])],
        [det_frame([ped_shift], [0.9], names=["Pedestrian"])],
        classes=["Pedestrian"],
    )
    assert result.ap["Pedestrian"]["bev"]["moderate"] == 100.0


def test_difficulty_filters_height_occlusion_truncation():
    boxes = [car(x) for x in (-15.0, -5.0, 5.0, 15.0)]
    gt = gt_frame(
        boxes,
        bbox=[EASY_BBOX, (0, 100, 50, 130), EASY_BBOX, EASY_BBOX],  # second: 30 px tall -> not easy
        occluded=[0, 0, 2, 0],  # third: occlusion 2 -> hard only
        truncated=[0.0, 0.0, 0.0, 0.4],  # fourth: truncation 0.4 -> hard only
    )
    result = evaluate_kitti(
        [gt], [det_frame(boxes, [0.9, 0.8, 0.7, 0.6])], classes=["Car"], metrics=["3d"]
    )
    assert result.num_gt["Car"] == {"easy": 1, "moderate": 2, "hard": 4}
    # matched-but-ignored objects are neither TP nor FP: every level stays perfect
    assert result.ap["Car"]["3d"] == {"easy": 100.0, "moderate": 100.0, "hard": 100.0}
    # a 25 px tall object fails moderate (the devkit keeps heights >= 25 only) ... 24.9 px does
    gt_small = gt_frame([car(0.0)], bbox=[(0, 100, 50, 124.9)])
    assert (
        evaluate_kitti([gt_small], [FrameDetections.empty()], classes=["Car"]).num_gt["Car"]["hard"]
        == 0
    )


def test_neutral_van_is_not_a_false_positive_but_truck_is():
    boxes = [car(-5.0), car(5.0)]
    det = det_frame(boxes, [0.9, 0.8])
    with_van = gt_frame(boxes, names=["Car", "Van"])
    with_truck = gt_frame(boxes, names=["Car", "Truck"])
    assert car_ap([with_van], [det]) == 100.0
    # the truck detection ranks below the car: precision 1 at recall 1 is still reached
    assert car_ap([with_truck], [det]) == 100.0
    det_truck_first = det_frame(boxes, [0.8, 0.9])
    assert car_ap([with_van], [det_truck_first]) == 100.0
    assert car_ap([with_truck], [det_truck_first]) == pytest.approx(50.0)


def test_person_sitting_is_neutral_for_pedestrian():
    ped = [0.0, 1.6, 10.0, 1.2, 0.6, 0.8, 0.0]
    gt = gt_frame([ped], names=["Person_sitting"])
    result = evaluate_kitti(
        [gt, gt_frame([ped], names=["Pedestrian"])],
        [
            det_frame([ped], [0.9], names=["Pedestrian"]),
            det_frame([ped], [0.5], names=["Pedestrian"]),
        ],
        classes=["Pedestrian"],
    )
    assert result.num_gt["Pedestrian"]["moderate"] == 1
    assert result.ap["Pedestrian"]["3d"]["moderate"] == 100.0


def test_dontcare_region_absorbs_detections_in_2d_and_optionally_in_3d():
    dontcare = [-1, -1, -1000, -1, -1, -1, -10]  # KITTI's DontCare lines carry no 3D box
    gt = gt_frame(
        [car(0.0), dontcare], names=["Car", "DontCare"], bbox=[EASY_BBOX, (600, 100, 700, 200)]
    )
    stray = car(8.0, z=40.0)
    det = det_frame([stray, car(0.0)], [0.9, 0.5], bbox=[(610, 110, 690, 190), EASY_BBOX])
    assert (
        car_ap([gt], [det], metric="bbox") == 100.0
    )  # the stray box lies inside the DontCare area
    assert car_ap([gt], [det], metric="3d") == pytest.approx(
        50.0
    )  # the devkit's 3D numbers keep it an FP
    assert car_ap([gt], [det], metric="3d", dontcare_all_metrics=True) == 100.0
    outside = det_frame([stray, car(0.0)], [0.9, 0.5], bbox=[(300, 110, 390, 190), EASY_BBOX])
    assert car_ap([gt], [outside], metric="bbox") == pytest.approx(50.0)


def test_detections_lower_than_the_height_rule_are_ignored():
    det = det_frame([car(0.0), car(9.0, z=40.0)], [0.5, 0.9], bbox=[EASY_BBOX, (0, 0, 10, 24.5)])
    assert car_ap([gt_frame([car(0.0)])], [det], metric="3d") == 100.0  # 24 px: ignored, not an FP


def test_exact_and_devkit_sampling_agree_with_many_objects_and_differ_with_one():
    rng = np.random.default_rng(0)
    boxes = [
        car(x, z=z) for x in np.arange(-20.0, 21.0, 5.0) for z in np.arange(10.0, 60.0, 5.0)
    ]  # 90 cars
    found = rng.permutation(len(boxes))[:70]
    misses = [car(x + 2.5, z=z + 2.5) for x, z in rng.uniform([-20, 10], [20, 55], size=(15, 2))]
    det_boxes = [boxes[i] for i in found] + misses
    scores = rng.permutation(len(det_boxes)) / len(det_boxes)
    gt, det = [gt_frame(boxes)], [det_frame(det_boxes, scores)]
    exact = car_ap(gt, det, metric="bev")
    devkit = car_ap(gt, det, metric="bev", recall_sampling="devkit")
    assert 30.0 < exact < 78.0 and abs(exact - devkit) < 2.5
    one = ([gt_frame([car(0.0)])], [det_frame([car(0.0)], [0.9])])
    assert car_ap(*one) == 100.0
    assert car_ap(*one, recall_sampling="devkit") == 0.0  # the devkit's known small-sample floor


def test_ap_from_pr_and_devkit_thresholds_by_hand():
    assert ap_from_pr(np.array([0.5]), np.array([1.0])) == pytest.approx(50.0)
    assert ap_from_pr(np.array([0.25, 1.0]), np.array([1.0, 0.5])) == pytest.approx(
        100 * (10 + 30 * 0.5) / 40
    )
    np.testing.assert_allclose(devkit_thresholds(np.array([0.2, 0.9, 0.5]), 3), [0.9, 0.5, 0.2])
    assert len(devkit_thresholds(np.linspace(0, 1, 400), 400)) == 41


def test_image_box_overlap_by_hand():
    a = np.array([[0, 0, 10, 10.0]])
    b = np.array([[5, 0, 15, 10.0], [0, 0, 20, 20.0]])
    np.testing.assert_allclose(image_box_overlap(a, b), [[50 / 150, 100 / 400]])
    np.testing.assert_allclose(image_box_overlap(a, b, over_first=True), [[0.5, 1.0]])


def test_bad_input_names_the_frame():
    with pytest.raises(ValueError, match="1 ground-truth frames but 2"):
        evaluate_kitti([gt_frame(FOUR_CARS)], [FrameDetections.empty()] * 2)
    with pytest.raises(ValueError, match="frame 0: a detection score is NaN"):
        evaluate_kitti([gt_frame(FOUR_CARS)], [det_frame([car(0.0)], [np.nan])])
    with pytest.raises(ValueError, match="frame 0: det.boxes_cam must be"):
        bad = FrameDetections(
            np.array(["Car"], dtype=object), np.array([0.5]), np.zeros((1, 4)), np.zeros((1, 6))
        )
        evaluate_kitti([gt_frame(FOUR_CARS)], [bad])
    with pytest.raises(ValueError, match="frame 0: detection 1 has a size <= 0"):
        evaluate_kitti([gt_frame(FOUR_CARS)], [det_frame([car(0.0), car(5.0, h=-1.5)], [0.5, 0.4])])
    with pytest.raises(ValueError, match="unknown class 'Truck'"):
        evaluate_kitti([gt_frame(FOUR_CARS)], [FrameDetections.empty()], classes=["Truck"])


def test_result_files_round_trip_through_the_label_reader(tmp_path):
    """Detections written in the KITTI result format and read back score the same AP."""
    from robokit.detection.postprocess import write_kitti_result
    from robokit.pointcloud.io import read_kitti_labels

    det = det_frame([FOUR_CARS[0], car(0.0, z=60.0), FOUR_CARS[1]], [0.9, 0.8, 0.7])
    path = write_kitti_result(tmp_path / "000000.txt", det)
    back = FrameDetections.from_objects(read_kitti_labels(path))
    np.testing.assert_allclose(back.boxes_cam, det.boxes_cam, atol=1e-4)
    np.testing.assert_allclose(back.scores, det.scores, atol=1e-6)
    assert car_ap([gt_frame(FOUR_CARS)], [back]) == car_ap([gt_frame(FOUR_CARS)], [det])
    assert FrameDetections.from_objects([]).scores.shape == (0,)
    empty = write_kitti_result(tmp_path / "000001.txt", FrameDetections.empty())
    assert empty.read_text() == "" and read_kitti_labels(empty) == []
