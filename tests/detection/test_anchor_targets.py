"""Anchors, residual box coding and target assignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robokit.detection.anchors import DEFAULT_ANCHORS, AnchorClass, generate_anchors
from robokit.detection.box_coder import decode_boxes, encode_boxes
from robokit.detection.target_assign import assign_targets, direction_targets, nearest_bev_iou

RANGE = (0.0, -8.0, -3.0, 16.0, 8.0, 1.0)


def test_anchor_shapes_centres_and_sizes():
    anchors = generate_anchors(RANGE, (4, 8), DEFAULT_ANCHORS)
    assert anchors.shape == (4, 8, 6, 7) and anchors.dtype == np.float32
    np.testing.assert_allclose(anchors[0, 0, 0, :2], [1.0, -6.0])  # cell (0, 0) of 2 m x 4 m cells
    np.testing.assert_allclose(anchors[3, 7, 0, :2], [15.0, 6.0])
    car0, car90, ped0 = anchors[0, 0, 0], anchors[0, 0, 1], anchors[0, 0, 2]
    np.testing.assert_allclose(car0[2:6], [-1.78 + 1.56 / 2, 3.9, 1.6, 1.56], rtol=1e-6)
    assert car0[6] == 0.0 and car90[6] == pytest.approx(np.pi / 2)
    np.testing.assert_allclose(ped0[3:6], [0.8, 0.6, 1.73], rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_encode_then_decode_is_identity(backend):
    rng = np.random.default_rng(0)
    anchors = np.column_stack(
        [
            rng.uniform(0, 40, 50),
            rng.uniform(-20, 20, 50),
            rng.uniform(-2, 0, 50),
            rng.uniform(0.5, 4, (50, 3)),
            rng.uniform(-np.pi, np.pi, 50),
        ]
    )
    boxes = anchors + np.column_stack(
        [rng.normal(0, 1, (50, 3)), np.zeros((50, 3)), rng.normal(0, 1, 50)]
    )
    boxes[:, 3:6] = anchors[:, 3:6] * rng.uniform(0.5, 2.0, (50, 3))
    if backend == "torch":
        anchors_t, boxes_t = torch.from_numpy(anchors), torch.from_numpy(boxes)
        decoded = decode_boxes(encode_boxes(boxes_t, anchors_t), anchors_t).numpy()
    else:
        decoded = decode_boxes(encode_boxes(boxes, anchors), anchors)
    np.testing.assert_allclose(decoded, boxes, atol=1e-9)


def test_encoding_by_hand():
    anchor = np.array([[10.0, 0.0, -1.0, 4.0, 3.0, 1.5, 0.0]])
    box = np.array([[15.0, 2.5, -0.25, 8.0, 3.0, 1.5, 0.5]])
    np.testing.assert_allclose(
        encode_boxes(box, anchor), [[1.0, 0.5, 0.5, np.log(2), 0.0, 0.0, 0.5]]
    )


def test_assignment_positive_ignored_negative_and_per_class():
    classes = (
        AnchorClass("Car", (3.9, 1.6, 1.56), -1.78, matched_iou=0.6, unmatched_iou=0.45),
        AnchorClass("Pedestrian", (0.8, 0.6, 1.73), -0.6),
    )
    anchors = generate_anchors(RANGE, (16, 16), classes)  # 1 m x 1 m cells, 4 anchors per cell
    gt = np.array(
        [[3.5, -0.5, -1.0, 3.9, 1.6, 1.56, 0.0]]
    )  # exactly on the yaw-0 car anchor of cell (7, 3)
    targets = assign_targets(anchors, gt, np.array([0]), classes)
    labels = targets.labels.reshape(16, 16, 4)
    assert labels[7, 3, 0] == 1  # the matching anchor is a Car positive, with zero residuals
    np.testing.assert_allclose(targets.box_residuals.reshape(16, 16, 4, 7)[7, 3, 0], 0.0, atol=1e-6)
    assert (labels[..., 2:] == 0).all()  # pedestrian anchors never take a car
    # 1 m along x: IoU 2.9 * 1.6 / (2 * 6.24 - 4.64) = 0.59, inside the ignore band [0.45, 0.6)
    assert labels[7, 4, 0] == -1 and labels[7, 2, 0] == -1
    # 1 m along y: IoU 3.9 * 0.6 / (12.48 - 2.34) = 0.23 < 0.45 -> background; so is the 90-degree anchor
    assert labels[8, 3, 0] == 0 and labels[7, 3, 1] == 0
    assert (labels == 1).sum() == 1
    assert (targets.matched_gt[targets.labels > 0] == 0).all()


def test_forced_best_anchor_for_a_box_between_cells():
    classes = (DEFAULT_ANCHORS[1],)
    anchors = generate_anchors(
        RANGE, (4, 8), classes
    )  # 2 m x 4 m cells: a pedestrian overlaps no anchor well
    gt = np.array(
        [[5.2, -5.8, -0.6, 0.8, 0.6, 1.73, 0.3]]
    )  # IoU 0.24 / 0.72 = 0.33 with the best anchor
    targets = assign_targets(anchors, gt, np.array([0]), classes)
    assert (targets.labels == 1).sum() >= 1  # the best anchor is taken even below the 0.5 threshold
    unreachable = assign_targets(
        anchors, np.array([[100.0, 0, 0, 0.8, 0.6, 1.7, 0]]), np.array([0]), classes
    )
    assert (unreachable.labels == 1).sum() == 0  # zero overlap everywhere: no forced match


def test_nearest_bev_iou_matches_rotated_iou_for_axis_aligned_boxes():
    from robokit.pointcloud.boxes import bev_iou

    a = np.array([[0.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0], [1.0, 1.0, 0.0, 4.0, 2.0, 1.5, np.pi / 2]])
    b = np.array([[1.0, 0.5, 0.0, 4.0, 2.0, 1.5, np.pi], [0.0, 0.0, 0.0, 2.0, 4.0, 1.5, 0.0]])
    np.testing.assert_allclose(nearest_bev_iou(a, b), bev_iou(a, b), atol=1e-9)


def test_direction_bins():
    np.testing.assert_array_equal(
        direction_targets(np.array([0.0, np.pi, np.pi / 2, -np.pi / 2])), [1, 0, 0, 1]
    )
    # yaw - pi/4 wrapped to [0, 2 pi): 7pi/4 -> 1, 3pi/4 -> 0, pi/4 -> 0, 5pi/4 -> 1
    # a heading and its reverse always fall in different bins
    yaw = np.random.default_rng(0).uniform(-np.pi, np.pi, 100)
    assert (direction_targets(yaw) != direction_targets(yaw + np.pi)).all()
