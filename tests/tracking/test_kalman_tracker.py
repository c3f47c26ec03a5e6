"""Kalman filter against hand-computed values; tracker birth, death, identity and orientation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robokit.tracking.kalman import (
    KalmanNoise,
    align_orientation,
    kalman_init,
    kalman_predict,
    kalman_update,
)
from robokit.tracking.tracker import TRACKER_PRESETS, Tracker, TrackerConfig

NOISE = KalmanNoise()  # AB3DMOT: P0 = 10 (velocities 10 * 1000), Q = 1 (velocities 0.01), R = 1
FIRST = np.array([[1.0, 2.0, 3.0, 0.1, 4.0, 2.0, 1.5]])  # [x, y, z, theta, l, w, h]


def test_predict_matches_hand_values():
    mean, cov = kalman_init(FIRST, NOISE)
    mean[0, 7:] = [0.5, 0.0, -1.0]  # give it a velocity
    mean, cov = kalman_predict(mean, cov, NOISE)
    np.testing.assert_allclose(mean[0, :3], [1.5, 2.0, 2.0])
    np.testing.assert_allclose(mean[0, 3:7], FIRST[0, 3:])
    # F P F^T + Q on the x / vx block: [[10 + 10000 + 1, 10000], [10000, 10000 + 0.01]]
    assert cov[0, 0, 0] == pytest.approx(10011.0)
    assert cov[0, 0, 7] == pytest.approx(10000.0)
    assert cov[0, 7, 7] == pytest.approx(10000.01)
    assert cov[0, 3, 3] == pytest.approx(11.0)  # constant terms: P + Q
    assert cov[0, 0, 1] == 0.0  # axes stay uncorrelated


def test_update_matches_hand_values():
    mean, cov = kalman_predict(*kalman_init(FIRST, NOISE), NOISE)
    moved = FIRST.copy()
    moved[0, 0] += 1.0  # the object moved 1 m along x
    mean, cov = kalman_update(mean, cov, moved, NOISE)
    innovation_var = 10011.0 + 1.0  # S = P + R
    assert mean[0, 0] == pytest.approx(1.0 + 10011.0 / innovation_var)
    assert mean[0, 7] == pytest.approx(10000.0 / innovation_var)  # velocity learnt from one step
    np.testing.assert_allclose(mean[0, 1:7], FIRST[0, 1:])
    assert cov[0, 0, 0] == pytest.approx(10011.0 - 10011.0**2 / innovation_var)
    assert cov[0, 7, 7] == pytest.approx(10000.01 - 10000.0**2 / innovation_var)
    np.testing.assert_allclose(cov[0], cov[0].T, atol=1e-9)


def test_orientation_correction_flips_state_by_pi():
    np.testing.assert_allclose(
        align_orientation(np.array([0.1]), np.array([math.pi - 0.1])), [math.pi + 0.1]
    )
    np.testing.assert_allclose(
        align_orientation(np.array([3.0]), np.array([-3.0])), [-3.0 - (2 * math.pi - 6.0)]
    )
    np.testing.assert_allclose(align_orientation(np.array([0.2]), np.array([0.5])), [0.2])
    mean, cov = kalman_predict(*kalman_init(FIRST, NOISE), NOISE)
    flipped = FIRST.copy()
    flipped[0, 3] = math.pi - 0.1  # the detector reports the opposite heading, off by 0.2 rad
    mean, _ = kalman_update(mean, cov, flipped, NOISE)
    gain = 11.0 / 12.0  # P / (P + R) on theta after one predict
    expected = math.pi + 0.1 - 0.2 * gain  # moves 0.2 * gain towards the flipped reading
    assert math.cos(mean[0, 3] - expected) == pytest.approx(1.0)
    assert -math.pi <= mean[0, 3] < math.pi


# ----------------------------------------------------------------------------- tracker


def camera_box(x, z, ry=0.0):
    """A 1.5 m tall, 1.6 m wide, 4 m long car on the ground at (x, 1.7, z), camera frame."""
    return [x, 1.7, z, 1.5, 1.6, 4.0, ry]


TALL = (100.0, 100.0, 200.0, 180.0)


def info_rows(count, score=5.0):
    return np.tile([0.0, 100.0, 100.0, 200.0, 180.0, score, 0.0], (count, 1))


def run(tracker, frames):
    outputs = []
    for boxes in frames:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
        outputs.append(tracker.update(boxes, info_rows(len(boxes))))
    return outputs


def test_two_moving_cars_keep_their_ids_and_learn_velocity():
    frames = [
        [camera_box(-4 + 0.3 * t, 20 + 1.0 * t), camera_box(5.0, 30 - 0.5 * t)] for t in range(12)
    ]
    tracker = Tracker(TrackerConfig())
    outputs = run(tracker, frames)
    for t, (boxes, ids, _) in enumerate(outputs):
        assert sorted(ids.tolist()) == [1, 2]
        np.testing.assert_allclose(boxes[np.argsort(ids)], np.asarray(frames[t]), atol=0.2)
    order = np.argsort(tracker.ids)
    np.testing.assert_allclose(
        tracker.mean[order][:, 7:10], [[0.3, 0, 1.0], [0, 0, -0.5]], atol=0.05
    )


def test_birth_needs_min_hits_after_the_first_frames():
    config = TrackerConfig(min_hits=3, max_age=2)
    frames = [[camera_box(0, 20)]] * 5 + [[camera_box(0, 20), camera_box(8, 40)]] * 3
    outputs = run(Tracker(config), frames)
    reported = [sorted(ids.tolist()) for _, ids, _ in outputs]
    # the newcomer at frame 5 is reported from its third hit (frame 7) on
    assert reported == [[1]] * 5 + [[1], [1], [1, 2]]


def test_death_after_max_age_misses_and_a_return_gets_a_new_id():
    config = TrackerConfig(min_hits=1, max_age=2)
    frames = [[camera_box(0, 20)]] * 4 + [[]] * 3 + [[camera_box(0, 20)]] * 2
    tracker = Tracker(config)
    outputs = run(tracker, frames)
    reported = [ids.tolist() for _, ids, _ in outputs]
    # one missed frame: still reported at the predicted position; two misses: gone
    assert reported == [[1]] * 4 + [[1], [], [], [2], [2]]


def test_flipped_detection_keeps_identity_and_heading():
    frames = [[camera_box(0, 20 + t, ry=0.3)] for t in range(5)]
    frames.append([camera_box(0, 25, ry=0.3 + math.pi)])  # detector flips the heading once
    frames += [[camera_box(0, 26 + t, ry=0.3)] for t in range(3)]
    tracker = Tracker(TrackerConfig())
    outputs = run(tracker, frames)
    assert {int(i) for _, ids, _ in outputs for i in ids} == {1}
    headings = np.array([boxes[0, 6] for boxes, _, _ in outputs])
    # the state stays within a small angle of 0.3 or 0.3 + pi: no 90-degree swing
    assert np.all(np.abs(np.sin(headings - 0.3)) < 0.05)


def test_gated_pairs_start_new_tracks():
    frames = [[camera_box(0, 20)], [camera_box(0, 20)], [camera_box(6, 20)]]  # jump of 6 m sideways
    tracker = Tracker(TrackerConfig(metric="iou3d", match_threshold=0.01, min_hits=1))
    outputs = run(tracker, frames)
    assert sorted(outputs[-1][1].tolist()) == [1, 2]  # the old track is still shown once
    assert len(tracker) == 2


def test_bad_config_and_bad_boxes_are_rejected():
    with pytest.raises(ValueError, match="metric"):
        TrackerConfig(metric="l2")
    with pytest.raises(ValueError, match="row 0"):
        Tracker().update(np.array([[0, 0, 10, 1.5, 1.6, np.nan, 0]]), info_rows(1))
    with pytest.raises(ValueError, match="info"):
        Tracker().update(np.array([camera_box(0, 20)]), info_rows(2))


def test_track_sequence_keeps_classes_apart_with_distinct_ids():
    from robokit.tracking.io import TrackObjects
    from robokit.tracking.tracker import track_sequence

    frames = np.repeat(np.arange(5), 2)
    kinds = np.array(["Car", "Pedestrian"] * 5)
    boxes = np.array(
        [
            camera_box(0, 20 + 0.1 * f)
            if k == "Car"
            else [0.0, 1.7, 20 + 0.1 * f, 1.7, 0.6, 0.8, 0.0]
            for f, k in zip(frames, kinds, strict=True)
        ]
    )
    detections = TrackObjects(
        frame=frames, track_id=np.full(10, -1), obj_type=kinds, truncated=np.zeros(10),
        occluded=np.zeros(10, dtype=np.int64), alpha=np.zeros(10), bbox2d=np.tile(list(TALL), (10, 1)),
        boxes=boxes, score=np.linspace(1, 2, 10),
    )  # fmt: skip
    result = track_sequence(detections, TrackerConfig(), classes=("Car", "Pedestrian"))
    # a car and a pedestrian on top of each other: one tracker per class, so no cross-class match
    by_class = {
        k: set(result.objects.track_id[result.objects.obj_type == k].tolist())
        for k in ("Car", "Pedestrian")
    }
    assert len(by_class["Car"]) == 1 and len(by_class["Pedestrian"]) == 1
    assert by_class["Car"].isdisjoint(by_class["Pedestrian"])
    assert result.num_frames == 5 and len(result.objects) == 10


# ----------------------------------------------------------------------------- robokit's additions


def run_scored(tracker, frames):
    """frames: lists of (box, score) pairs."""
    outputs = []
    for frame in frames:
        boxes = np.asarray([b for b, _ in frame], dtype=np.float64).reshape(-1, 7)
        info = info_rows(len(frame))
        info[:, 5] = [score for _, score in frame]
        outputs.append(tracker.update(boxes, info))
    return outputs


def test_low_score_detections_extend_tracks_but_start_none():
    config = TrackerConfig(min_hits=1)
    car, ghost = camera_box(0, 20), camera_box(8, 40)
    frames = [[(car, 5.0)], [(car, 5.0)], [(car, -0.5), (ghost, -0.5)], [(car, 5.0)]]
    outputs = run_scored(Tracker(config), frames)
    assert [ids.tolist() for _, ids, _ in outputs] == [[1], [1], [1], [1]]
    # the weak detection confirms the position, not the existence: the track keeps its score
    assert outputs[2][2][0, 5] == 5.0
    one_stage = run_scored(Tracker(TRACKER_PRESETS["ab3dmot"].replace(min_hits=1)), frames)
    assert sorted(one_stage[2][1].tolist()) == [1, 2]  # AB3DMOT starts a track on the ghost
    assert one_stage[2][2][np.argsort(one_stage[2][1])][0, 5] == -0.5


def test_second_stage_only_takes_tracks_the_first_left_free():
    config = TrackerConfig(min_hits=1)
    first, second = camera_box(0, 20), camera_box(0, 20.5)
    frames = [[(first, 5.0)], [(first, 5.0), (second, -0.2)]]
    outputs = run_scored(Tracker(config), frames)
    # the high-score box wins the track; the overlapping low-score one is dropped, not born
    assert outputs[1][1].tolist() == [1] and outputs[1][2][0, 5] == 5.0


def test_a_track_survives_max_age_misses_unreported_and_keeps_its_id():
    config = TrackerConfig(min_hits=1, max_age=4, max_report_misses=1)
    frames = [[camera_box(0, 20)]] * 3 + [[]] * 3 + [[camera_box(0, 20)]] * 2
    reported = [ids.tolist() for _, ids, _ in run(Tracker(config), frames)]
    # reported at its prediction for one missed frame, hidden for two more, then back as id 1
    assert reported == [[1]] * 3 + [[1], [], []] + [[1]] * 2
    short = TRACKER_PRESETS["ab3dmot"].replace(min_hits=1)  # max_age 2: a new id after the gap
    assert [ids.tolist() for _, ids, _ in run(Tracker(short), frames)][-1] == [2]


def test_lost_tracks_unwritten_with_zero_report_misses_as_in_centerpoint():
    """``max_report_misses=0``: only matched tracks are written (CenterPoint's output rule, one
    of the lost-track policies of ``benchmarks/tracking.py --select --lost-output``)."""
    frames = [[camera_box(0, 20)]] * 3 + [[]] * 3 + [[camera_box(0, 20)]] * 2
    config = TrackerConfig(min_hits=1, max_age=4, max_report_misses=0)
    reported = [ids.tolist() for _, ids, _ in run(Tracker(config), frames)]
    assert reported == [[1]] * 3 + [[], [], []] + [[1]] * 2
    two = [ids.tolist() for _, ids, _ in run(Tracker(config.replace(max_report_misses=2)), frames)]
    assert two == [[1]] * 3 + [[1], [1], []] + [[1]] * 2


def test_distance_metric_matches_within_its_radius():
    config = TrackerConfig(
        metric="dist3d", match_threshold=-2.0, low_match_threshold=-2.0, min_hits=1
    )
    frames = [[camera_box(0, 20)], [camera_box(1.5, 20)], [camera_box(5.0, 20)]]
    outputs = run(Tracker(config), frames)
    assert outputs[1][1].tolist() == [1]  # 1.5 m away: the same object
    assert sorted(outputs[2][1].tolist()) == [1, 2]  # 3.5 m away: a new one


def test_presets_differ_only_where_documented():
    robokit, ab3dmot = TRACKER_PRESETS["robokit"], TRACKER_PRESETS["ab3dmot"]
    assert robokit == TrackerConfig()
    assert (ab3dmot.metric, ab3dmot.match_threshold, ab3dmot.min_hits, ab3dmot.max_age) == (
        "giou3d", -0.2, 3, 2,
    )  # fmt: skip
    assert ab3dmot.high_score is None and ab3dmot.birth_score is None
    with pytest.raises(ValueError, match="max_report_misses"):
        TrackerConfig(max_report_misses=-1)


def test_distance_gate_refuses_far_pairs_a_loose_giou_would_accept():
    loose = TrackerConfig(match_threshold=-0.9, min_hits=1)
    frames = [[camera_box(0, 20)], [camera_box(3.0, 20)]]  # 3 m sideways: GIoU about -0.3
    assert run(Tracker(loose), frames)[1][1].tolist() == [1]
    gated = run(Tracker(loose.replace(max_distance=2.0)), frames)
    assert sorted(gated[1][1].tolist()) == [1, 2]


# ----------------------------------------------------------------------------- per-class settings


def test_greedy_takes_the_best_pair_first_where_hungarian_maximises_the_sum():
    from robokit.tracking.tracker import _greedy, _hungarian

    similarity = np.array([[0.9, 0.8], [0.7, -1.0]])
    # greedy: (0, 0) first, then row 1 has only a refused pair; Hungarian: 0.8 + 0.7 > 0.9
    rows, cols = _greedy(similarity, threshold=0.0)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0)]
    rows, cols = _hungarian(similarity, threshold=0.0)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]
    rows, _ = _greedy(np.array([[-np.inf, 0.1]]), threshold=0.2)
    assert len(rows) == 0
    with pytest.raises(ValueError, match="matching"):
        TrackerConfig(matching="auction")


def test_class_configs_give_each_class_its_own_settings():
    from robokit.tracking.io import TrackObjects
    from robokit.tracking.tracker import ClassConfigs, track_sequence

    # a car and a pedestrian, each seen in frames 0-3, missed in 4-5, seen again in 6-7
    seen = [f for f in range(8) if f not in (4, 5)]
    frames = np.repeat(seen, 2)
    kinds = np.array(["Car", "Pedestrian"] * len(seen))
    boxes = np.array([camera_box(0 if k == "Car" else 6, 20) for k in kinds])
    count = len(frames)
    detections = TrackObjects(
        frame=frames, track_id=np.full(count, -1), obj_type=kinds, truncated=np.zeros(count),
        occluded=np.zeros(count, dtype=np.int64), alpha=np.zeros(count),
        bbox2d=np.tile(list(TALL), (count, 1)), boxes=boxes, score=np.full(count, 3.0),
    )  # fmt: skip
    configs = ClassConfigs(
        TrackerConfig(min_hits=1, max_age=4), {"Pedestrian": TrackerConfig(min_hits=1, max_age=2)}
    )
    assert configs.for_class("Cyclist") == configs.default
    objects = track_sequence(detections, configs, ("Car", "Pedestrian"), 8).objects
    ids = {k: set(objects.track_id[objects.obj_type == k].tolist()) for k in ("Car", "Pedestrian")}
    # the car (max_age 4) survives the two-frame gap; the pedestrian (max_age 2) is re-born
    assert len(ids["Car"]) == 1 and len(ids["Pedestrian"]) == 2


def test_published_class_tables_build_valid_configs():
    from robokit.tracking.tracker import AB3DMOT_POINTRCNN_CLASSES, SIMPLETRACK_WAYMO_CLASSES

    for table in (AB3DMOT_POINTRCNN_CLASSES, SIMPLETRACK_WAYMO_CLASSES):
        assert set(table) == {"Car", "Pedestrian", "Cyclist"}
        for changes in table.values():
            TrackerConfig().replace(**changes)  # every field exists and passes the checks
    # probability 0.7 -> logit 0.847 (SimpleTrack's vehicle split, in PointRCNN's units)
    assert SIMPLETRACK_WAYMO_CLASSES["Car"]["high_score"] == pytest.approx(0.8473, abs=1e-4)


# ----------------------------------------------------------------------------- output and scores


def test_tentative_tracks_are_reported_with_a_lowered_score():
    car = camera_box(0, 20)
    ghost = camera_box(8, 40)
    frames = [[(car, 5.0)]] * 4 + [[(car, 5.0), (ghost, 4.0)], [(car, 5.0)]]
    hidden = run_scored(Tracker(TrackerConfig()), frames)
    assert [ids.tolist() for _, ids, _ in hidden][4] == [1]  # the one-hit ghost waits (min_hits)
    shown = run_scored(Tracker(TrackerConfig(tentative_penalty=20.0)), frames)
    boxes, ids, info = shown[4]
    order = np.argsort(ids)
    assert ids[order].tolist() == [1, 2]
    # the confirmed car keeps its score, the tentative ghost is ranked below every confirmed track
    np.testing.assert_allclose(info[order, 5], [5.0, 4.0 - 20.0])
    assert shown[5][1].tolist() == [1]  # missed while tentative: not reported
    with pytest.raises(ValueError, match="tentative_penalty"):
        TrackerConfig(tentative_penalty=-1.0)


def test_confirm_score_reports_a_confident_track_from_its_first_hit():
    car = camera_box(0, 20)
    late = camera_box(8, 40)
    frames = [[(car, 5.0)]] * 4 + [[(car, 5.0), (late, 9.0)]]
    assert run_scored(Tracker(TrackerConfig()), frames)[4][1].tolist() == [1]
    sure = run_scored(Tracker(TrackerConfig(confirm_score=8.0)), frames)[4]
    assert sorted(sure[1].tolist()) == [1, 2]
    assert sorted(sure[2][:, 5].tolist()) == [5.0, 9.0]  # confirmed: no penalty


def test_coast_penalty_lowers_the_score_per_missed_frame():
    config = TrackerConfig(min_hits=1, max_report_misses=2, coast_penalty=1.5)
    frames = [[(camera_box(0, 20), 5.0)]] * 3 + [[]] * 2
    outputs = run_scored(Tracker(config), frames)
    assert [info[0, 5] for _, _, info in outputs] == [5.0, 5.0, 5.0, 3.5, 2.0]


def test_report_detection_box_outputs_the_matched_detection():
    frames = [[camera_box(0, 20 + t)] for t in range(3)] + [[camera_box(0.5, 23.2)], []]
    filtered = run(Tracker(TrackerConfig(min_hits=1)), frames)
    raw = run(Tracker(TrackerConfig(min_hits=1, report_detection_box=True)), frames)
    np.testing.assert_allclose(raw[3][0][0], camera_box(0.5, 23.2))
    assert not np.allclose(filtered[3][0][0], camera_box(0.5, 23.2))  # the Kalman state
    np.testing.assert_allclose(raw[4][0], filtered[4][0])  # missed: the same prediction
