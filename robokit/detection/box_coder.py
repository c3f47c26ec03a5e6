"""SECOND's residual box encoding (numpy and torch share the formulas).

For a ground-truth box ``g`` and an anchor ``a`` (both ``[x, y, z, l, w, h, yaw]``) with BEV
diagonal ``d = sqrt(l_a^2 + w_a^2)``::

    dx = (x_g - x_a) / d     dy = (y_g - y_a) / d     dz = (z_g - z_a) / h_a
    dl = log(l_g / l_a)      dw = log(w_g / w_a)      dh = log(h_g / h_a)
    dyaw = yaw_g - yaw_a

Decoding inverts it exactly. Works on any leading shape ``(..., 7)``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["encode_boxes", "decode_boxes"]


def _backend(array):
    return torch if isinstance(array, torch.Tensor) else np


def encode_boxes(boxes, anchors):
    """Residuals ``(..., 7)`` of ``boxes`` relative to ``anchors`` (same shape, numpy or torch)."""
    xp = _backend(boxes)
    diagonal = xp.sqrt(anchors[..., 3] ** 2 + anchors[..., 4] ** 2)
    parts = [
        (boxes[..., 0] - anchors[..., 0]) / diagonal,
        (boxes[..., 1] - anchors[..., 1]) / diagonal,
        (boxes[..., 2] - anchors[..., 2]) / anchors[..., 5],
        xp.log(boxes[..., 3] / anchors[..., 3]),
        xp.log(boxes[..., 4] / anchors[..., 4]),
        xp.log(boxes[..., 5] / anchors[..., 5]),
        boxes[..., 6] - anchors[..., 6],
    ]
    return xp.stack(parts, -1) if xp is torch else np.stack(parts, axis=-1)


def decode_boxes(residuals, anchors):
    """Boxes ``(..., 7)`` from residuals and anchors (inverse of :func:`encode_boxes`)."""
    xp = _backend(residuals)
    diagonal = xp.sqrt(anchors[..., 3] ** 2 + anchors[..., 4] ** 2)
    parts = [
        residuals[..., 0] * diagonal + anchors[..., 0],
        residuals[..., 1] * diagonal + anchors[..., 1],
        residuals[..., 2] * anchors[..., 5] + anchors[..., 2],
        xp.exp(residuals[..., 3]) * anchors[..., 3],
        xp.exp(residuals[..., 4]) * anchors[..., 4],
        xp.exp(residuals[..., 5]) * anchors[..., 5],
        residuals[..., 6] + anchors[..., 6],
    ]
    return xp.stack(parts, -1) if xp is torch else np.stack(parts, axis=-1)
