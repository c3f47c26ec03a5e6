"""KITTI tracking evaluation on small hand-built sequences with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.tracking.evaluate import EvalConfig, evaluate_tracking, recall_thresholds
from robokit.tracking.io import TrackObjects

TALL = (100.0, 100.0, 200.0, 180.0)  # an 80 px tall 2D box
CAR = (0.0, 1.7, 20.0, 1.5, 1.6, 4.0, 0.0)  # camera box [x, y, z, h, w, l, ry]


def objects(rows):
    """rows: dicts with frame, id and optional type/trunc/occ/bbox/box/score."""
    return TrackObjects(
        frame=np.array([r["frame"] for r in rows], dtype=np.int64),
        track_id=np.array([r.get("id", -1) for r in rows], dtype=np.int64),
        obj_type=np.array([r.get("type", "Car") for r in rows], dtype=str),
        truncated=np.array([r.get("trunc", 0.0) for r in rows], dtype=np.float64),
        occluded=np.array([r.get("occ", 0) for r in rows], dtype=np.int64),
        alpha=np.zeros(len(rows)),
        bbox2d=np.array([r.get("bbox", TALL) for r in rows], dtype=np.float64).reshape(-1, 4),
        boxes=np.array([r.get("box", CAR) for r in rows], dtype=np.float64).reshape(-1, 7),
        score=np.array([r.get("score", np.nan) for r in rows], dtype=np.float64),
    )


def shifted(dx=0.0, dz=0.0):
    x, y, z, h, w, length, ry = CAR
    return (x + dx, y, z + dz, h, w, length, ry)


def evaluate(gt_rows, tracker_rows, **config):
    labels = {"0000": objects(gt_rows)}
    results = {"0000": objects(tracker_rows)}
    return evaluate_tracking(labels, results, EvalConfig(**config))


def one_track(frames, track_id=1, score=1.0, **extra):
    return [dict(frame=f, id=track_id, score=score, **extra) for f in frames]


def test_perfect_tracking_scores_one_everywhere():
    gt = [dict(frame=f, id=7) for f in range(50)]
    m = evaluate(gt, one_track(range(50)))
    assert (m.mota, m.motp, m.ids, m.frag, m.fp, m.fn, m.tp) == (
        1.0,
        pytest.approx(1.0),
        0,
        0,
        0,
        0,
        50,
    )
    assert m.samota == pytest.approx(1.0) and m.amota == pytest.approx(1.0)


def test_id_switch_counts_one_switch_and_one_fragment():
    gt = [dict(frame=f, id=7) for f in range(6)]
    tracks = one_track(range(3), track_id=1) + one_track(range(3, 6), track_id=2)
    m = evaluate(gt, tracks)
    assert (m.ids, m.frag, m.fp, m.fn) == (1, 1, 0, 0)
    assert m.mota == pytest.approx(1 - 1 / 6)


def test_missed_frame_is_a_false_negative_and_a_fragment():
    gt = [dict(frame=f, id=7) for f in range(6)]
    m = evaluate(gt, one_track([0, 1, 3, 4, 5]))
    assert (m.ids, m.frag, m.fp, m.fn) == (0, 1, 0, 1)
    assert m.mota == pytest.approx(1 - 1 / 6)


def test_switch_across_a_gap_kitti_rule_versus_clear_rule():
    gt = [dict(frame=f, id=7) for f in range(5)]
    tracks = one_track([0, 1], track_id=1) + one_track([3, 4], track_id=2)
    kitti = evaluate(gt, tracks)
    clear = evaluate(gt, tracks, id_switch_rule="clear")
    assert (kitti.ids, kitti.fn, kitti.frag) == (
        0,
        1,
        1,
    )  # devkit: a switch needs the previous frame matched
    assert (clear.ids, clear.fn) == (1, 1)
    assert clear.mota == pytest.approx(1 - 2 / 5)


def test_far_tracker_box_is_a_false_positive():
    gt = [dict(frame=0, id=7)]
    m = evaluate(gt, one_track([0]) + [dict(frame=0, id=2, score=1.0, box=shifted(dx=10))])
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    assert m.mota_all_tracks == pytest.approx(0.0)


def test_iou_threshold_decides_the_match():
    # a 4 m long box shifted 1.2 m along its length (camera x, since ry = 0): IoU = 2.8 / 5.2
    gt = [dict(frame=0, id=7)]
    tracks = [dict(frame=0, id=1, score=1.0, box=shifted(dx=1.2))]
    loose = evaluate(gt, tracks, iou_threshold=0.25)
    assert (loose.tp, loose.fp, loose.fn) == (1, 0, 0)
    assert loose.motp == pytest.approx(2.8 / 5.2)
    strict = evaluate(gt, tracks, iou_threshold=0.7)
    assert (strict.tp, strict.fp, strict.fn) == (0, 1, 1)


@pytest.mark.parametrize(
    ("gt_extra", "config"),
    [
        (dict(type="Van"), {}),
        (dict(trunc=1.0), {}),
        (dict(occ=3), {}),
        (dict(bbox=(100.0, 100.0, 200.0, 120.0)), dict(gt_height_rule=True)),
    ],
    ids=["van", "truncated", "occluded", "short-with-gt-height-rule"],
)
def test_ignored_ground_truth_is_neither_hit_nor_miss(gt_extra, config):
    gt = [dict(frame=0, id=7), dict(frame=0, id=8, box=shifted(dx=8), **gt_extra)]
    missed = evaluate(gt, one_track([0]), **config)  # the second object is not tracked
    assert (missed.tp, missed.fn, missed.fp, missed.num_gt, missed.ignored_fn) == (1, 0, 0, 1, 1)
    tracks = one_track([0]) + [dict(frame=0, id=2, score=1.0, box=shifted(dx=8))]
    hit = evaluate(gt, tracks, **config)
    assert (hit.tp, hit.fn, hit.fp, hit.ignored_tp) == (1, 0, 0, 1)  # matched to ignored GT: no FP


def test_short_ground_truth_counts_by_default_as_in_the_devkit():
    """The devkit / AB3DMOT apply the 25 px rule to tracker boxes only, never to GT."""
    gt = [
        dict(frame=0, id=7),
        dict(frame=0, id=8, box=shifted(dx=8), bbox=(100.0, 100.0, 200.0, 120.0)),
    ]
    m = evaluate(gt, one_track([0]))
    assert (m.tp, m.fn, m.num_gt) == (1, 1, 2)
    assert EvalConfig().gt_height_rule is False and EvalConfig().devkit_score_drift is True


def test_unmatched_tracker_in_dontcare_area_or_too_short_is_not_a_false_positive():
    dontcare = dict(
        frame=0,
        id=-1,
        type="DontCare",
        bbox=(90.0, 90.0, 210.0, 190.0),
        box=(-1000, -1000, -1000, -1, -1, -1, -10),
    )
    gt = [dict(frame=0, id=7, box=shifted(dx=-8)), dontcare]
    inside = evaluate(gt, one_track([0]))  # tracker's 2D box lies inside the DontCare area
    assert (inside.fp, inside.ignored_tracker, inside.fn) == (0, 1, 1)
    short = evaluate(
        [dict(frame=0, id=7, box=shifted(dx=-8))], one_track([0], bbox=(100.0, 100.0, 200.0, 110.0))
    )
    assert (short.fp, short.ignored_tracker) == (0, 1)
    visible = evaluate([dict(frame=0, id=7, box=shifted(dx=-8))], one_track([0]))
    assert visible.fp == 1


def test_score_threshold_drops_low_confidence_tracks_and_samota_counts_reached_recall():
    gt = [dict(frame=f, id=7) for f in range(40)]
    good = one_track(range(20), track_id=1, score=5.0)
    ghost = one_track(range(40), track_id=2, score=0.1, box=shifted(dx=10))  # a false track
    m = evaluate(gt, good + ghost)
    assert m.mota_all_tracks == pytest.approx(1 - (20 + 40) / 40)
    assert m.mota == pytest.approx(0.5) and m.score_threshold == 5.0  # ghost removed
    # recall 0.5 reached; the devkit's sampling yields targets 1/40..19/40, each sMOTA = 1
    assert m.samota == pytest.approx(19 / 40)
    assert m.amota == pytest.approx(19 * 0.5 / 40)


def test_recall_thresholds_follow_the_sorted_scores():
    thresholds, targets = recall_thresholds(np.linspace(1.0, 0.0, 80), num_gt=80)
    assert len(thresholds) == 40 and targets[0] == pytest.approx(1 / 40)
    assert np.all(np.diff(thresholds) < 0)
    assert recall_thresholds([], num_gt=10) == ([], [])


def test_missing_results_sequence_is_an_error():
    with pytest.raises(KeyError, match="0001"):
        evaluate_tracking({"0001": objects([dict(frame=0, id=1)])}, {}, EvalConfig())
    with pytest.raises(ValueError, match="score"):
        evaluate([dict(frame=0, id=7)], [dict(frame=0, id=1)])  # results without scores


def test_no_tracks_at_all_counts_every_object_as_missed():
    gt = [dict(frame=f, id=7) for f in range(4)] + [dict(frame=1, id=8, type="Pedestrian")]
    m = evaluate(gt, [])
    assert (m.tp, m.fn, m.fp, m.mota, m.samota) == (0, 4, 0, 0.0, 0.0)
    pedestrians = evaluate(gt, [], cls="Pedestrian")
    assert (pedestrians.fn, pedestrians.num_gt) == (1, 1)
    nobody = evaluate([dict(frame=0, id=7)], [], cls="Cyclist")
    assert nobody.num_gt == 0 and nobody.mota == float("-inf")


def test_person_sitting_is_neutral_for_pedestrians_only():
    gt = [
        dict(frame=0, id=7, type="Pedestrian"),
        dict(frame=0, id=8, type="Person_sitting", box=shifted(dx=8)),
    ]
    tracks = [dict(frame=0, id=1, score=1.0, type="Pedestrian")]
    pedestrians = evaluate(gt, tracks, cls="Pedestrian")
    assert (pedestrians.tp, pedestrians.fn, pedestrians.ignored_fn) == (1, 0, 1)
    cyclists = evaluate(
        [dict(frame=0, id=9, type="Cyclist")], [], cls="Cyclist"
    )  # no neutral class
    assert (cyclists.fn, cyclists.ignored_fn) == (1, 0)


def test_devkit_score_drift_reproduces_the_scripts_rounding_artefact():
    # mean of these six scores is 0.5666...67; re-averaging six copies gives 0.5666...65 < it,
    # so the devkit's sweep drops the very track whose score set the threshold
    scores = [0.1, 0.7, 0.6, 0.6, 0.4, 1.0]
    gt = [dict(frame=f, id=7) for f in range(6)]
    tracks = [dict(frame=f, id=1, score=score) for f, score in enumerate(scores)]
    plain = evaluate(gt, tracks, devkit_score_drift=False)
    drift = evaluate(gt, tracks)  # the default: the devkit's score handling
    assert plain.mota == 1.0 and plain.samota > 0
    assert (
        drift.samota == pytest.approx(0.0, abs=1e-12) and drift.amota == 0.0
    )  # every sweep pass lost it
    assert drift.mota == 1.0  # no threshold beat MOTA 0, so the final pass keeps everything
