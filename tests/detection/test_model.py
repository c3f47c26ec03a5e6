"""The detector network on a real scan, its losses by hand, and decoding back to boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robokit.detection.box_coder import encode_boxes
from robokit.detection.losses import (
    box_regression_loss,
    detection_loss,
    direction_loss,
    sigmoid_focal_loss,
)
from robokit.detection.model import SecondDetector, preset_config

pytest.importorskip("spconv")


@pytest.fixture(scope="module")
def kitti(shared_data):
    from robokit.detection.dataset import KittiObjectDataset

    return KittiObjectDataset(shared_data / "kitti" / "object")


def small_config():
    return preset_config(
        "cpu-small",
        bev_layers=(1, 1),
        bev_filters=(16, 32),
        bev_upsample_filters=(16, 16),
        encoder_channels=(8, 16, 16, 16),
    )


def test_forward_backward_on_a_real_scan_reaches_every_parameter(kitti):
    from robokit.detection.train import build_targets

    torch.manual_seed(0)
    model = SecondDetector(small_config())
    frames = [kitti[0], kitti[2]]
    features, coords = model.voxelize([f.points for f in frames])
    assert features.shape[1] == 4 and coords.dtype == torch.int32 and len(features) > 5000
    outputs = model(features, coords, 2)
    num_anchors = model.bev_shape[0] * model.bev_shape[1] * 6
    assert outputs["cls"].shape == (2, num_anchors, 3)
    assert outputs["box"].shape == (2, num_anchors, 7) and outputs["dir"].shape == (
        2,
        num_anchors,
        2,
    )
    labels, residuals, directions = build_targets(
        model, [f.gt_boxes for f in frames], [f.gt_classes for f in frames]
    )
    assert (labels[0] == 2).any() and (
        labels[1] == 1
    ).any()  # the pedestrian of 000000, the car of 000002
    losses = detection_loss(outputs, labels, residuals, directions, model.num_classes)
    assert torch.isfinite(losses["loss"]) and losses["num_positive"] >= 2
    losses["loss"].backward()
    missing = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not missing, f"parameters without gradient: {missing}"


def test_focal_loss_by_hand():
    logits = torch.tensor([[[0.0, 2.0]]])
    targets = torch.tensor([[[1.0, 0.0]]])
    # class 0: positive, p = 0.5 -> 0.25 * 0.5^2 * ln 2 ; class 1: negative, p = sigmoid(2)
    p1 = 1 / (1 + math.exp(-2.0))
    expected = 0.25 * 0.25 * math.log(2) + 0.75 * p1**2 * -math.log(1 - p1)
    value = sigmoid_focal_loss(logits, targets, torch.ones(1, 1))
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert (
        sigmoid_focal_loss(logits, targets, torch.zeros(1, 1)).item() == 0.0
    )  # ignored anchors cost nothing


def test_box_loss_by_hand_and_yaw_is_periodic():
    target = torch.zeros(1, 1, 7)
    pred = torch.zeros(1, 1, 7)
    pred[0, 0, 0] = 1.0  # |d| = 1 >= beta: 1 - beta / 2
    pred[0, 0, 1] = 0.05  # |d| < beta: 0.5 d^2 / beta
    beta = 1 / 9
    expected = (1 - beta / 2) + 0.5 * 0.05**2 / beta
    assert box_regression_loss(pred, target, torch.ones(1, 1)).item() == pytest.approx(
        expected, rel=1e-5
    )
    flipped = torch.zeros(1, 1, 7)
    flipped[0, 0, 6] = math.pi  # sin(pi - 0) = 0: a reversed heading is the direction head's job
    assert box_regression_loss(flipped, target, torch.ones(1, 1)).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_direction_loss_by_hand():
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])
    targets = torch.tensor([[1, 0]])
    expected = math.log(2) + -math.log(math.exp(2) / (math.exp(2) + 1))
    assert direction_loss(logits, targets, torch.ones(1, 2)).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_decoding_perfect_outputs_recovers_the_boxes():
    from robokit.detection.postprocess import decode_predictions
    from robokit.detection.target_assign import assign_targets, direction_targets

    config = preset_config("cpu-small")
    from robokit.detection.anchors import generate_anchors

    anchors = generate_anchors(config.point_range, (50, 50), config.anchor_classes())
    gt = np.array([[20.3, 4.1, -0.9, 4.2, 1.7, 1.5, 2.9], [8.0, -3.3, -0.7, 0.7, 0.6, 1.8, -0.4]])
    targets = assign_targets(anchors, gt, np.array([0, 1]), config.anchor_classes())
    flat = torch.from_numpy(anchors.reshape(-1, 7))
    num = len(flat)
    cls = torch.full((1, num, 3), -10.0)
    box = torch.zeros(1, num, 7)
    direction = torch.zeros(1, num, 2)
    for k, gt_index in enumerate([0, 1]):
        best = int(np.flatnonzero(targets.matched_gt == gt_index)[0])
        cls[0, best, k] = 5.0 + k
        box[0, best] = torch.from_numpy(
            encode_boxes(
                gt[gt_index : gt_index + 1],
                anchors.reshape(-1, 7)[best : best + 1].astype(np.float64),
            )[0]
        )
        direction[0, best, direction_targets(gt[gt_index, 6:7])[0]] = 5.0
    detections = decode_predictions({"cls": cls, "box": box, "dir": direction}, flat, config)[0]
    assert list(detections.labels) == [1, 0]
    np.testing.assert_allclose(detections.boxes[[1, 0]], gt, atol=1e-5)


def test_projected_gt_boxes_match_the_labelled_2d_boxes(kitti):
    """Real calibration: the projection of each labelled 3D box agrees with its 2D box."""
    from robokit.detection.kitti_eval import image_box_overlap
    from robokit.detection.postprocess import project_boxes_to_image

    for index in range(len(kitti)):
        frame = kitti[index]
        annotations = frame.annotations
        rows = [i for i, name in enumerate(annotations.names) if name != "DontCare"]
        projected = project_boxes_to_image(annotations.boxes_cam[rows], frame.calib.P2)
        overlaps = np.diag(image_box_overlap(projected, annotations.bbox[rows]))
        assert (overlaps > 0.7).all(), (frame.frame_id, overlaps)


def test_ground_truth_through_the_output_path_scores_100(kitti):
    """LiDAR-frame ground truth sent through the detector's output path (camera frame, projected
    2D box, devkit rules) is a perfect detection set: every countable object is found."""
    from robokit.detection.kitti_eval import evaluate_kitti
    from robokit.detection.postprocess import LidarDetections, to_kitti_detections

    frames = [kitti[i] for i in range(len(kitti))]
    detections = [
        to_kitti_detections(
            LidarDetections(
                f.gt_boxes.astype(np.float64), np.linspace(0.9, 0.5, len(f.gt_boxes)), f.gt_classes
            ),
            f.calib,
            kitti.classes,
        )
        for f in frames
    ]
    result = evaluate_kitti([f.annotations for f in frames], detections)
    for metric in ("bbox", "bev", "3d"):
        assert result.ap["Car"][metric]["moderate"] == 100.0
        assert result.ap["Pedestrian"][metric]["easy"] == 100.0
    assert np.isnan(
        result.ap["Cyclist"]["3d"]["moderate"]
    )  # its only cyclist is occluded (level 3)


@pytest.mark.slow
def test_full_second_preset_runs_a_real_scan(kitti):
    """The full-size configuration (OpenPCDet's KITTI SECOND grid) on CPU: 1408 x 1600 x 41 voxels
    -> a 176 x 200 BEV map with 6 anchors per cell (211 200 anchors), forward pass only."""
    model = SecondDetector(preset_config("second")).eval()
    assert model.bev_shape == (200, 176)
    assert model.anchors.shape == (200 * 176 * 6, 7)
    with torch.no_grad():
        features, coords = model.voxelize([kitti[2].points])
        outputs = model(features, coords, 1)
    assert outputs["cls"].shape == (1, 211200, 3) and torch.isfinite(outputs["box"]).all()
