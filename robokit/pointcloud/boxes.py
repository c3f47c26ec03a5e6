"""3D box geometry shared by detection and tracking.

Two box conventions are used in robokit:

* LiDAR-frame boxes, ``(N, 7)`` float ``[x, y, z_center, l, w, h, yaw]`` in metres and
  radians (the OpenPCDet convention): ``l`` lies along the heading, ``yaw`` turns about +z
  (up), counter-clockwise from +x (forward).
* Camera-frame KITTI boxes, ``(N, 7)`` float ``[x, y_bottom, z, h, w, l, rotation_y]`` in the
  rectified camera frame (x right, y down, z forward); ``(x, y_bottom, z)`` is the centre of
  the box's bottom face and ``rotation_y`` turns about +y (down).

All overlap functions take LiDAR-frame boxes (or any right-handed z-up frame, see
:func:`camera_to_upright_boxes`). The rotated bird's-eye-view (BEV) intersection is the
area of the intersection of two convex quadrilaterals, computed by clipping one against
the other's four edges (Sutherland-Hodgman) in a numba kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "bev_corners",
    "bev_giou",
    "bev_iou",
    "boxes_to_corners3d",
    "camera_to_lidar_boxes",
    "camera_to_upright_boxes",
    "check_boxes",
    "giou3d",
    "iou3d",
    "lidar_to_camera_boxes",
    "limit_period",
    "nms_bev",
    "points_in_boxes",
    "upright_to_camera_boxes",
]


# ----------------------------------------------------------------------------- validation


def check_boxes(boxes, name: str = "boxes") -> np.ndarray:
    """Return ``boxes`` as a float64 ``(N, 7)`` array; raise ``ValueError`` on bad input.

    Rejects a wrong shape, NaN/inf values and negative sizes (columns 3-5), naming the
    argument and the first offending row.
    """
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 7)
    if array.ndim != 2 or array.shape[1] != 7:
        raise ValueError(f"{name}: expected shape (N, 7), got {array.shape}")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{name}: row {row} has a NaN or infinite value: {array[row].tolist()}")
    negative = (array[:, 3:6] < 0).any(axis=1)
    if negative.any():
        row = int(np.flatnonzero(negative)[0])
        raise ValueError(f"{name}: row {row} has a negative size: {array[row].tolist()}")
    return array


def limit_period(angle, offset: float = 0.5, period: float = 2 * np.pi):
    """Wrap ``angle`` into ``[-offset * period, (1 - offset) * period)``."""
    return angle - np.floor(angle / period + offset) * period


# ----------------------------------------------------------------------------- frames

#: rotation taking rectified-camera axes (x right, y down, z forward) to an upright frame
#: (x forward, y left, z up): X = z_cam, Y = -x_cam, Z = -y_cam (determinant +1).
_CAMERA_TO_UPRIGHT = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_to_upright_boxes(boxes_cam) -> np.ndarray:
    """Camera-frame KITTI boxes -> the same boxes in an upright frame, no calibration needed.

    The upright frame is the rectified camera frame turned so that z points up (a rigid
    rotation), so IoU, distances and volumes are unchanged. Tracking uses this frame.

    Args:
        boxes_cam: ``(N, 7)`` ``[x, y_bottom, z, h, w, l, rotation_y]``.
    Returns:
        ``(N, 7)`` ``[x, y, z_center, l, w, h, yaw]`` with ``yaw = -rotation_y - pi/2``.
    """
    return camera_to_upright_unchecked(check_boxes(boxes_cam, "boxes_cam"))


@njit(cache=True)
def camera_to_upright_unchecked(cam: np.ndarray) -> np.ndarray:
    """:func:`camera_to_upright_boxes` without input checks, for validated float64 ``(N, 7)``."""
    out = np.empty_like(cam)
    for i in range(cam.shape[0]):
        out[i, 0] = cam[i, 2]
        out[i, 1] = -cam[i, 0]
        out[i, 2] = cam[i, 3] / 2.0 - cam[i, 1]  # bottom centre -> geometric centre (up is +z)
        out[i, 3] = cam[i, 5]
        out[i, 4] = cam[i, 4]
        out[i, 5] = cam[i, 3]
        yaw = -cam[i, 6] - np.pi / 2
        out[i, 6] = yaw - np.floor(yaw / (2 * np.pi) + 0.5) * 2 * np.pi
    return out


def upright_to_camera_boxes(boxes_up) -> np.ndarray:
    """Inverse of :func:`camera_to_upright_boxes`."""
    up = check_boxes(boxes_up, "boxes_up")
    length, w, h = up[:, 3], up[:, 4], up[:, 5]
    bottom = up[:, :3].copy()
    bottom[:, 2] -= h / 2.0
    xyz_cam = bottom @ _CAMERA_TO_UPRIGHT  # inverse of a rotation is its transpose
    rotation_y = limit_period(-up[:, 6] - np.pi / 2)
    return np.column_stack([xyz_cam, h, w, length, rotation_y])


def _velo_to_rect_matrix(R0_rect, Tr_velo_to_cam) -> np.ndarray:
    """4x4 homogeneous transform LiDAR -> rectified camera."""
    r0 = np.eye(4)
    r0[:3, :3] = np.asarray(R0_rect, dtype=np.float64).reshape(3, 3)
    tr = np.eye(4)
    tr[:3, :4] = np.asarray(Tr_velo_to_cam, dtype=np.float64).reshape(3, 4)
    return r0 @ tr


def camera_to_lidar_boxes(boxes_cam, R0_rect, Tr_velo_to_cam) -> np.ndarray:
    """Camera-frame KITTI boxes -> LiDAR-frame boxes using the frame's calibration.

    Args:
        boxes_cam: ``(N, 7)`` ``[x, y_bottom, z, h, w, l, rotation_y]`` (rectified camera).
        R0_rect: ``(3, 3)`` rectifying rotation.
        Tr_velo_to_cam: ``(3, 4)`` LiDAR -> camera transform.
    Returns:
        ``(N, 7)`` ``[x, y, z_center, l, w, h, yaw]`` with ``yaw = -rotation_y - pi/2``.
    """
    cam = check_boxes(boxes_cam, "boxes_cam")
    rect_to_velo = np.linalg.inv(_velo_to_rect_matrix(R0_rect, Tr_velo_to_cam))
    bottom = cam[:, :3] @ rect_to_velo[:3, :3].T + rect_to_velo[:3, 3]
    h, w, length = cam[:, 3], cam[:, 4], cam[:, 5]
    centre = bottom.copy()
    centre[:, 2] += h / 2.0
    yaw = limit_period(-cam[:, 6] - np.pi / 2)
    return np.column_stack([centre, length, w, h, yaw])


def lidar_to_camera_boxes(boxes_lidar, R0_rect, Tr_velo_to_cam) -> np.ndarray:
    """LiDAR-frame boxes -> camera-frame KITTI boxes (inverse of :func:`camera_to_lidar_boxes`)."""
    lidar = check_boxes(boxes_lidar, "boxes_lidar")
    velo_to_rect = _velo_to_rect_matrix(R0_rect, Tr_velo_to_cam)
    length, w, h = lidar[:, 3], lidar[:, 4], lidar[:, 5]
    bottom = lidar[:, :3].copy()
    bottom[:, 2] -= h / 2.0
    xyz_cam = bottom @ velo_to_rect[:3, :3].T + velo_to_rect[:3, 3]
    rotation_y = limit_period(-lidar[:, 6] - np.pi / 2)
    return np.column_stack([xyz_cam, h, w, length, rotation_y])


# ----------------------------------------------------------------------------- corners


def bev_corners(boxes) -> np.ndarray:
    """BEV corners of boxes, counter-clockwise.

    Args:
        boxes: ``(N, 7)`` LiDAR-frame boxes.
    Returns:
        ``(N, 4, 2)`` xy corners (front-left, rear-left, rear-right, front-right), metres.
    """
    b = check_boxes(boxes)
    half_l, half_w = b[:, 3:4] / 2.0, b[:, 4:5] / 2.0
    local_x = np.concatenate([half_l, -half_l, -half_l, half_l], axis=1)  # (N, 4)
    local_y = np.concatenate([half_w, half_w, -half_w, -half_w], axis=1)
    cos, sin = np.cos(b[:, 6:7]), np.sin(b[:, 6:7])
    x = b[:, 0:1] + local_x * cos - local_y * sin
    y = b[:, 1:2] + local_x * sin + local_y * cos
    return np.stack([x, y], axis=-1)


def boxes_to_corners3d(boxes) -> np.ndarray:
    """3D corners ``(N, 8, 3)``: the 4 BEV corners at the bottom, then the same 4 at the top."""
    b = check_boxes(boxes)
    corners = bev_corners(b)
    bottom = (b[:, 2] - b[:, 5] / 2.0)[:, None, None] * np.ones((1, 4, 1))
    top = bottom + b[:, 5][:, None, None]
    return np.concatenate(
        [np.concatenate([corners, bottom], axis=2), np.concatenate([corners, top], axis=2)], axis=1
    )


# ----------------------------------------------------------------------------- numba kernels


@njit(cache=True)
def _cross(ax, ay, bx, by, px, py):
    """z of (b - a) x (p - a): > 0 when p lies left of the directed line a -> b."""
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


@njit(cache=True)
def _polygon_area(xs, ys, n):
    """Shoelace area of a simple polygon given by its first ``n`` vertices."""
    area = 0.0
    for i in range(n):
        j = (i + 1) % n
        area += xs[i] * ys[j] - xs[j] * ys[i]
    return abs(area) / 2.0


@njit(cache=True)
def _quad_intersection_area(quad_a, quad_b):
    """Area of the intersection of two convex counter-clockwise quadrilaterals ``(4, 2)``."""
    xs = np.empty(16)
    ys = np.empty(16)
    out_x = np.empty(16)
    out_y = np.empty(16)
    n = 4
    for i in range(4):
        xs[i] = quad_a[i, 0]
        ys[i] = quad_a[i, 1]
    for edge in range(4):
        ax, ay = quad_b[edge, 0], quad_b[edge, 1]
        bx, by = quad_b[(edge + 1) % 4, 0], quad_b[(edge + 1) % 4, 1]
        m = 0
        for i in range(n):
            j = (i + 1) % n
            side_i = _cross(ax, ay, bx, by, xs[i], ys[i])
            side_j = _cross(ax, ay, bx, by, xs[j], ys[j])
            if side_i >= 0.0:
                out_x[m] = xs[i]
                out_y[m] = ys[i]
                m += 1
            if (side_i >= 0.0) != (side_j >= 0.0):
                t = side_i / (side_i - side_j)
                out_x[m] = xs[i] + t * (xs[j] - xs[i])
                out_y[m] = ys[i] + t * (ys[j] - ys[i])
                m += 1
        n = m
        if n < 3:
            return 0.0
        for i in range(n):
            xs[i] = out_x[i]
            ys[i] = out_y[i]
    return _polygon_area(xs, ys, n)


@njit(cache=True)
def _convex_hull_area(xs, ys):
    """Area of the convex hull of a small point set (Andrew's monotone chain)."""
    n = xs.shape[0]
    order = np.arange(n)
    for i in range(1, n):  # insertion sort by (x, y): n is 8
        current = order[i]
        j = i - 1
        while j >= 0 and (
            xs[order[j]] > xs[current]
            or (xs[order[j]] == xs[current] and ys[order[j]] > ys[current])
        ):
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = current
    hull_x = np.empty(2 * n)
    hull_y = np.empty(2 * n)
    k = 0
    for pass_index in range(2):
        start = k
        for idx in range(n):
            i = order[idx] if pass_index == 0 else order[n - 1 - idx]
            while (
                k >= start + 2
                and _cross(hull_x[k - 2], hull_y[k - 2], hull_x[k - 1], hull_y[k - 1], xs[i], ys[i])
                <= 0.0
            ):
                k -= 1
            hull_x[k] = xs[i]
            hull_y[k] = ys[i]
            k += 1
        k -= 1  # the last point of each chain starts the other
    if k < 3:
        return 0.0
    return _polygon_area(hull_x, hull_y, k)


@njit(cache=True)
def _corners_kernel(boxes):
    """``(N, 4, 2)`` counter-clockwise BEV corners (same order as :func:`bev_corners`)."""
    n = boxes.shape[0]
    corners = np.empty((n, 4, 2))
    signs_x = (0.5, -0.5, -0.5, 0.5)
    signs_y = (0.5, 0.5, -0.5, -0.5)
    for i in range(n):
        cos, sin = np.cos(boxes[i, 6]), np.sin(boxes[i, 6])
        for k in range(4):
            local_x = signs_x[k] * boxes[i, 3]
            local_y = signs_y[k] * boxes[i, 4]
            corners[i, k, 0] = boxes[i, 0] + local_x * cos - local_y * sin
            corners[i, k, 1] = boxes[i, 1] + local_x * sin + local_y * cos
    return corners


@njit(cache=True)
def _pairwise_overlaps(boxes_a, boxes_b, use_height, generalized):
    """Pairwise (G)IoU of ``(N, 7)`` and ``(M, 7)`` boxes; BEV when ``use_height`` is False, else 3D."""
    corners_a = _corners_kernel(boxes_a)
    corners_b = _corners_kernel(boxes_b)
    n, m = boxes_a.shape[0], boxes_b.shape[0]
    out = np.zeros((n, m))
    hull_x = np.empty(8)
    hull_y = np.empty(8)
    for i in range(n):
        la, wa, ha = boxes_a[i, 3], boxes_a[i, 4], boxes_a[i, 5]
        radius_a = 0.5 * np.sqrt(la * la + wa * wa)
        bottom_a = boxes_a[i, 2] - ha / 2.0
        top_a = boxes_a[i, 2] + ha / 2.0
        for j in range(m):
            lb, wb, hb = boxes_b[j, 3], boxes_b[j, 4], boxes_b[j, 5]
            dx = boxes_a[i, 0] - boxes_b[j, 0]
            dy = boxes_a[i, 1] - boxes_b[j, 1]
            radius_b = 0.5 * np.sqrt(lb * lb + wb * wb)
            far_apart = dx * dx + dy * dy > (radius_a + radius_b) ** 2
            if far_apart and not generalized:
                continue
            area = 0.0 if far_apart else _quad_intersection_area(corners_a[i], corners_b[j])
            size_a = la * wa
            size_b = lb * wb
            enclose_height = 1.0
            if use_height:
                bottom_b = boxes_b[j, 2] - hb / 2.0
                top_b = boxes_b[j, 2] + hb / 2.0
                overlap_h = min(top_a, top_b) - max(bottom_a, bottom_b)
                area *= max(overlap_h, 0.0)
                size_a *= ha
                size_b *= hb
                enclose_height = max(top_a, top_b) - min(bottom_a, bottom_b)
            union = size_a + size_b - area
            iou = area / union if union > 0.0 else 0.0
            if generalized:
                for k in range(4):
                    hull_x[k] = corners_a[i, k, 0]
                    hull_y[k] = corners_a[i, k, 1]
                    hull_x[k + 4] = corners_b[j, k, 0]
                    hull_y[k + 4] = corners_b[j, k, 1]
                enclosing = _convex_hull_area(hull_x, hull_y) * enclose_height
                if enclosing > 0.0:
                    iou -= (enclosing - union) / enclosing
            out[i, j] = iou
    return out


# ----------------------------------------------------------------------------- public overlaps


def _overlaps(a, b, use_height: bool, generalized: bool) -> np.ndarray:
    boxes_a, boxes_b = check_boxes(a, "a"), check_boxes(b, "b")
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.zeros((len(boxes_a), len(boxes_b)))
    return _pairwise_overlaps(boxes_a, boxes_b, use_height, generalized)


def overlaps_unchecked(
    a: np.ndarray, b: np.ndarray, use_height: bool, generalized: bool
) -> np.ndarray:
    """(G)IoU matrix without input checks, for validated float64 ``(N, 7)`` / ``(M, 7)`` boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return _pairwise_overlaps(a, b, use_height, generalized)


def bev_iou(a, b) -> np.ndarray:
    """Rotated bird's-eye-view IoU.

    Args:
        a: ``(N, 7)`` LiDAR-frame boxes; b: ``(M, 7)``.
    Returns:
        ``(N, M)`` float64 IoU in ``[0, 1]``.
    """
    return _overlaps(a, b, use_height=False, generalized=False)


def iou3d(a, b) -> np.ndarray:
    """3D IoU of rotated (yaw-only) boxes: BEV intersection x height overlap / union volume.

    Args:
        a: ``(N, 7)`` LiDAR-frame boxes; b: ``(M, 7)``.
    Returns:
        ``(N, M)`` float64 IoU in ``[0, 1]``.
    """
    return _overlaps(a, b, use_height=True, generalized=False)


def bev_giou(a, b) -> np.ndarray:
    """Generalized BEV IoU, ``IoU - (hull - union) / hull`` with the convex hull, in ``[-1, 1]``."""
    return _overlaps(a, b, use_height=False, generalized=True)


def giou3d(a, b) -> np.ndarray:
    """Generalized 3D IoU: enclosing volume = BEV convex hull area x joint height span."""
    return _overlaps(a, b, use_height=True, generalized=True)


def nms_bev(boxes, scores, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression on rotated BEV IoU.

    Args:
        boxes: ``(N, 7)`` LiDAR-frame boxes.
        scores: ``(N,)`` confidences; higher is kept first (ties keep the lower index).
        iou_threshold: a box is dropped when its BEV IoU with a kept box is above this.
    Returns:
        ``(K,)`` int64 indices of kept boxes, in decreasing score order.
    """
    b = check_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != b.shape[0]:
        raise ValueError(f"scores: expected {b.shape[0]} values (one per box), got {s.shape[0]}")
    if not np.isfinite(s).all():
        raise ValueError(
            f"scores: index {int(np.flatnonzero(~np.isfinite(s))[0])} is NaN or infinite"
        )
    order = np.argsort(-s, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(b), dtype=bool)
    for position, index in enumerate(order):
        if suppressed[index]:
            continue
        keep.append(int(index))
        rest = order[position + 1 :]
        rest = rest[~suppressed[rest]]
        if len(rest) == 0:
            break
        ious = _pairwise_overlaps(b[index : index + 1], b[rest], False, False)[0]
        suppressed[rest[ious > iou_threshold]] = True
    return np.asarray(keep, dtype=np.int64)


def points_in_boxes(points, boxes) -> np.ndarray:
    """Which points lie inside which boxes (boundaries included).

    Args:
        points: ``(N, 3+)`` xyz first, LiDAR frame (extra columns ignored).
        boxes: ``(M, 7)`` LiDAR-frame boxes.
    Returns:
        ``(N, M)`` bool.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"points: expected shape (N, >=3), got {pts.shape}")
    b = check_boxes(boxes)
    offset = pts[:, None, :3] - b[None, :, :3]  # (N, M, 3)
    cos, sin = np.cos(b[:, 6]), np.sin(b[:, 6])
    local_x = offset[..., 0] * cos + offset[..., 1] * sin
    local_y = -offset[..., 0] * sin + offset[..., 1] * cos
    return (
        (np.abs(local_x) <= b[:, 3] / 2.0)
        & (np.abs(local_y) <= b[:, 4] / 2.0)
        & (np.abs(offset[..., 2]) <= b[:, 5] / 2.0)
    )
