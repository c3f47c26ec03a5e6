"""Box geometry: conversions, rotated BEV / 3D IoU against hand-computed cases, NMS, point tests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robokit.pointcloud.boxes import (
    bev_corners,
    bev_giou,
    bev_iou,
    boxes_to_corners3d,
    camera_to_lidar_boxes,
    camera_to_upright_boxes,
    giou3d,
    iou3d,
    lidar_to_camera_boxes,
    nms_bev,
    points_in_boxes,
    upright_to_camera_boxes,
)

CAR = [0.0, 0.0, 0.0, 4.0, 2.0, 2.0, 0.0]  # 4 m long, 2 m wide, 2 m tall, at the origin


def box(x=0.0, y=0.0, z=0.0, length=4.0, width=2.0, height=2.0, yaw=0.0):
    return [x, y, z, length, width, height, yaw]


# ----------------------------------------------------------------------------- IoU known cases


def test_identical_boxes_have_iou_one_at_any_yaw():
    boxes = np.array([box(yaw=yaw, x=3.0, y=-1.0) for yaw in (0.0, 0.3, 1.2, -2.5, math.pi)])
    np.testing.assert_allclose(np.diag(iou3d(boxes, boxes)), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(bev_iou(boxes, boxes)), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(giou3d(boxes, boxes)), 1.0, atol=1e-12)


def test_disjoint_boxes_have_iou_zero_and_negative_giou():
    a, b = np.array([CAR]), np.array([box(x=10.0)])
    assert iou3d(a, b)[0, 0] == 0.0
    assert bev_iou(a, b)[0, 0] == 0.0
    # hull: x from -2 to 12, y from -1 to 1 -> 28 m^2; union 16 m^2
    assert bev_giou(a, b)[0, 0] == pytest.approx(-(28 - 16) / 28)


def test_same_footprint_but_separated_in_height_is_zero_in_3d_only():
    a, b = np.array([CAR]), np.array([box(z=5.0)])
    assert bev_iou(a, b)[0, 0] == pytest.approx(1.0)
    assert iou3d(a, b)[0, 0] == 0.0


def test_giou3d_of_stacked_boxes_by_hand():
    # same 4x2 footprint, 2 m tall, centres 5 m apart vertically: a 1 m gap
    a, b = np.array([CAR]), np.array([box(z=5.0)])
    enclosing = 8.0 * 7.0  # footprint x height span from -1 to 6
    assert giou3d(a, b)[0, 0] == pytest.approx(-(enclosing - 32.0) / enclosing)
    half = np.array([box(z=1.0)])  # overlapping by 1 m: IoU 8 / 24, hull 8 x 3 = 24
    assert giou3d(a, half)[0, 0] == pytest.approx(8 / 24)


def test_rotated_90_degrees_cross_shape():
    # 4x2 and 2x4 at one centre: intersection 2x2 = 4, union 8 + 8 - 4 = 12
    a, b = np.array([CAR]), np.array([box(yaw=math.pi / 2)])
    assert bev_iou(a, b)[0, 0] == pytest.approx(4 / 12)
    assert iou3d(a, b)[0, 0] == pytest.approx(4 / 12)
    # convex hull of the cross is a 4x4 square minus four corner triangles of area 0.5 -> 14
    assert bev_giou(a, b)[0, 0] == pytest.approx(4 / 12 - (14 - 12) / 14)


def test_partial_overlap_by_hand():
    # shifted 1 m along x and 0.5 m along y: overlap 3 x 1.5 = 4.5 m^2; 0.5 m up: height overlap 1.5
    a, b = np.array([CAR]), np.array([box(x=1.0, y=0.5, z=0.5)])
    inter_bev = 3.0 * 1.5
    assert bev_iou(a, b)[0, 0] == pytest.approx(inter_bev / (16 - inter_bev))
    inter_3d = inter_bev * 1.5
    assert iou3d(a, b)[0, 0] == pytest.approx(inter_3d / (32 - inter_3d))


def test_square_rotated_45_degrees_gives_regular_octagon():
    # 2x2 squares, one turned 45 degrees: octagon area 8*sqrt(2) - 8, IoU = 1/sqrt(2)
    a = np.array([box(length=2, width=2)])
    b = np.array([box(length=2, width=2, yaw=math.pi / 4)])
    assert bev_iou(a, b)[0, 0] == pytest.approx(1 / math.sqrt(2))


def test_iou_matches_dense_sampling_on_random_boxes():
    rng = np.random.default_rng(0)
    boxes = np.column_stack(
        [
            rng.uniform(-1.5, 1.5, (12, 2)),
            rng.uniform(-0.5, 0.5, 12),
            rng.uniform(1.0, 4.0, (12, 3)),
            rng.uniform(-math.pi, math.pi, 12),
        ]
    )
    grid = np.stack(np.meshgrid(*(np.linspace(-4, 4, 101),) * 3, indexing="ij"), -1).reshape(-1, 3)
    inside = points_in_boxes(grid, boxes)  # (G, 12)
    cell = (8 / 100) ** 3
    expected = np.zeros((6, 6))
    for i in range(6):
        for j in range(6, 12):
            inter = (inside[:, i] & inside[:, j]).sum() * cell
            union = np.prod(boxes[i, 3:6]) + np.prod(boxes[j, 3:6]) - inter
            expected[i, j - 6] = inter / union
    np.testing.assert_allclose(iou3d(boxes[:6], boxes[6:]), expected, atol=0.02)


def test_iou_is_symmetric_and_bounded():
    rng = np.random.default_rng(1)
    boxes = np.column_stack(
        [rng.uniform(-3, 3, (30, 3)), rng.uniform(0.5, 4, (30, 3)), rng.uniform(-4, 4, 30)]
    )
    ious = iou3d(boxes, boxes)
    np.testing.assert_allclose(ious, ious.T, atol=1e-9)
    assert (ious >= 0).all() and (ious <= 1 + 1e-9).all()
    gious = giou3d(boxes, boxes)
    assert (gious <= ious + 1e-9).all() and (gious >= -1 - 1e-9).all()


def test_empty_inputs_give_empty_matrices():
    assert iou3d(np.zeros((0, 7)), np.array([CAR])).shape == (0, 1)
    assert bev_iou(np.array([CAR]), np.zeros((0, 7))).shape == (1, 0)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((2, 6)), "shape"),
        (np.array([box(x=float("nan"))]), "row 0"),
        (np.array([CAR, box(length=-1.0)]), "row 1"),
    ],
)
def test_bad_boxes_raise_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        iou3d(bad, np.array([CAR]))


# ----------------------------------------------------------------------------- corners, points, NMS


def test_bev_corners_counter_clockwise_and_rotated():
    corners = bev_corners(np.array([box(yaw=math.pi / 2)]))[0]
    np.testing.assert_allclose(corners, [[-1, 2], [-1, -2], [1, -2], [1, 2]], atol=1e-12)
    x, y = corners[:, 0], corners[:, 1]
    signed_area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    assert signed_area == pytest.approx(8.0)  # positive: counter-clockwise
    corners3d = boxes_to_corners3d(np.array([box(z=1.0)]))[0]
    np.testing.assert_allclose(corners3d[:4, 2], 0.0)
    np.testing.assert_allclose(corners3d[4:, 2], 2.0)


def test_points_in_boxes_respects_yaw_and_height():
    boxes = np.array([box(yaw=math.pi / 2)])  # long side along y now
    points = np.array([[0, 1.9, 0], [1.9, 0, 0], [0, 0, 1.1], [0.9, -1.9, -0.9]], dtype=np.float32)
    np.testing.assert_array_equal(points_in_boxes(points, boxes)[:, 0], [True, False, False, True])


def test_nms_keeps_best_of_overlapping_and_all_disjoint():
    boxes = np.array([box(), box(x=0.2), box(x=10.0), box(x=0.1, yaw=0.05)])
    scores = np.array([0.5, 0.9, 0.3, 0.8])
    np.testing.assert_array_equal(nms_bev(boxes, scores, 0.5), [1, 2])
    np.testing.assert_array_equal(nms_bev(boxes, scores, 0.99), [1, 3, 0, 2])
    assert nms_bev(np.zeros((0, 7)), np.zeros(0), 0.5).dtype == np.int64
    with pytest.raises(ValueError, match="scores"):
        nms_bev(boxes, scores[:2], 0.5)


# ----------------------------------------------------------------------------- frames


def _read_calib(path):
    values = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, rest = line.split(":", 1)
            values[key] = np.array(rest.split(), dtype=np.float64)
    return values["R0_rect"].reshape(3, 3), values["Tr_velo_to_cam"].reshape(3, 4)


def _read_label_boxes(path, kinds=("Car", "Van", "Truck", "Pedestrian", "Cyclist")):
    rows = [line.split() for line in path.read_text().splitlines()]
    return np.array(
        [
            [float(v) for v in r[11:14]] + [float(v) for v in r[8:11]] + [float(r[14])]
            for r in rows
            if r[0] in kinds
        ]
    )  # [x, y, z, h, w, l, ry]


def test_camera_upright_round_trip_and_rigid_invariance():
    rng = np.random.default_rng(2)
    cam = np.column_stack(
        [rng.uniform(-10, 10, (20, 3)), rng.uniform(1, 4, (20, 3)), rng.uniform(-3, 3, 20)]
    )
    back = upright_to_camera_boxes(camera_to_upright_boxes(cam))
    np.testing.assert_allclose(back[:, :6], cam[:, :6], atol=1e-9)
    np.testing.assert_allclose(np.cos(back[:, 6] - cam[:, 6]), 1.0, atol=1e-9)
    # a car facing +x in the camera (rotation_y = 0) faces -y (right) in the upright frame
    up = camera_to_upright_boxes(np.array([[1.0, 1.5, 10.0, 1.5, 1.6, 4.0, 0.0]]))[0]
    np.testing.assert_allclose(up, [10.0, -1.0, -0.75, 4.0, 1.6, 1.5, -math.pi / 2], atol=1e-12)


def test_camera_lidar_round_trip_and_points_in_real_labelled_cars(shared_data):
    training = shared_data / "kitti" / "object" / "training"
    for frame in ("000000", "000001", "000002"):
        r0, tr = _read_calib(training / "calib" / f"{frame}.txt")
        cam = _read_label_boxes(training / "label_2" / f"{frame}.txt")
        lidar = camera_to_lidar_boxes(cam, r0, tr)
        np.testing.assert_allclose(
            lidar_to_camera_boxes(lidar, r0, tr)[:, :6], cam[:, :6], atol=1e-6
        )
        # the calibrated frame differs from the upright one by a small rigid motion: IoU agrees
        up = camera_to_upright_boxes(cam)
        np.testing.assert_allclose(iou3d(lidar, lidar), iou3d(up, up), atol=1e-9)
        points = np.fromfile(training / "velodyne" / f"{frame}.bin", dtype=np.float32).reshape(
            -1, 4
        )
        counts = points_in_boxes(points, lidar).sum(axis=0)
        assert (counts >= 5).all(), (frame, counts, lidar[:, :2])
        # the same boxes shifted sideways by 20 m hold far fewer points
        shifted = lidar.copy()
        shifted[:, 1] += 20
        assert points_in_boxes(points, shifted).sum() < counts.sum() / 3


def test_iou_is_invariant_under_a_common_rigid_motion():
    rng = np.random.default_rng(4)
    a = np.column_stack(
        [rng.uniform(-2, 2, (15, 3)), rng.uniform(0.5, 4, (15, 3)), rng.uniform(-4, 4, 15)]
    )
    b = np.column_stack(
        [rng.uniform(-2, 2, (15, 3)), rng.uniform(0.5, 4, (15, 3)), rng.uniform(-4, 4, 15)]
    )

    def moved(boxes, angle, shift):
        out = boxes.copy()
        cos, sin = math.cos(angle), math.sin(angle)
        out[:, 0] = cos * boxes[:, 0] - sin * boxes[:, 1] + shift[0]
        out[:, 1] = sin * boxes[:, 0] + cos * boxes[:, 1] + shift[1]
        out[:, 2] += shift[2]
        out[:, 6] += angle
        return out

    for angle, shift in [(0.7, (10.0, -3.0, 1.0)), (-2.9, (-50.0, 20.0, -2.0))]:
        np.testing.assert_allclose(
            iou3d(moved(a, angle, shift), moved(b, angle, shift)), iou3d(a, b), atol=1e-9
        )
        np.testing.assert_allclose(
            giou3d(moved(a, angle, shift), moved(b, angle, shift)), giou3d(a, b), atol=1e-9
        )
    assert (iou3d(a, b) > 0).sum() >= 20  # the case exercises real overlaps
