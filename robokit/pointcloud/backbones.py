"""Point-cloud backbones: a SECOND-style sparse 3D encoder and two classifiers.

* :class:`SparseEncoder8x` follows the layout of SECOND's ``VoxelBackBone8x``:
  a submanifold stem, then three stages that each halve the grid with a strided
  sparse convolution followed by submanifold convolutions. Every convolution is
  ``bias=False`` followed by ``BatchNorm1d`` and ``ReLU`` (spconv's bias path and
  fused activations are not CPU-safe, see :mod:`robokit.pointcloud.spconv_patch`).
  It is shared with the KITTI detector (contract in the briefs).
* :class:`SparseClassifier` voxelizes a batch of clouds *in torch* (so the voxel
  features stay differentiable in the point coordinates, which PGD and gradient
  saliency need), runs the encoder and pools over the active voxels.
* :class:`~robokit.pointcloud.dgcnn.DGCNNClassifier` (in its own module) is ModelNet-C's
  reference model, built from kNN graphs of the points and so sensitive to density.
* :class:`PointNetClassifier` is the dense reference: a shared per-point MLP,
  a global max pool and a small classifier (PointNet without the T-Nets).

All classifiers take ``points`` of shape ``(B, N, 3)`` float32 and return
logits ``(B, num_classes)``, so attacks, saliency and training loops treat them
alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

BACKBONES = ("sparse", "pointnet", "dgcnn")


def _norm_act(channels: int, momentum: float) -> list[nn.Module]:
    return [nn.BatchNorm1d(channels, eps=1e-3, momentum=momentum), nn.ReLU()]


def _subm_block(spconv, in_ch: int, out_ch: int, key: str, momentum: float):
    return spconv.SparseSequential(
        spconv.SubMConv3d(in_ch, out_ch, 3, padding=1, bias=False, indice_key=key),
        *_norm_act(out_ch, momentum),
    )


def _down_block(spconv, in_ch: int, out_ch: int, key: str, momentum: float, padding=1):
    return spconv.SparseSequential(
        spconv.SparseConv3d(
            in_ch, out_ch, 3, stride=2, padding=padding, bias=False, indice_key=key
        ),
        *_norm_act(out_ch, momentum),
    )


class SparseEncoder8x(nn.Module):
    """Sparse 3D encoder to stride 8 in the style of SECOND's VoxelBackBone8x.

    Args:
        in_channels: voxel feature channels C.
        grid_shape_zyx: (nz, ny, nx) voxel grid of the input.
        channels: widths of the stem and the three downsampling stages.
        subm_per_stage: submanifold convolutions after each strided one (SECOND uses 2).
        last_z_padding: z padding of the last strided conv; SECOND uses 0 (its grid
            has 41 z cells), robokit's cube grids use 1.
        bn_momentum: BatchNorm running-statistics momentum. SECOND's 0.01 suits long
            training; after a few hundred steps the running statistics are still far from
            the batch statistics and eval-mode accuracy collapses, so short runs want 0.1.

    ``forward(features (V,C) float32, coords (V,4) int32 [b,z,y,x], batch_size)``
    returns a ``spconv.SparseConvTensor`` at stride 8 with ``out_channels`` features.
    """

    def __init__(
        self,
        in_channels: int,
        grid_shape_zyx: Sequence[int],
        channels: Sequence[int] = (16, 32, 64, 64),
        subm_per_stage: int = 2,
        last_z_padding: int = 1,
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        from robokit.pointcloud.spconv_patch import ensure_spconv_cpu

        spconv = ensure_spconv_cpu()
        if len(channels) != 4:
            raise ValueError(f"SparseEncoder8x: channels needs 4 widths, got {tuple(channels)}")
        self.grid_shape_zyx = [int(s) for s in grid_shape_zyx]
        self.in_channels = int(in_channels)
        c0, c1, c2, c3 = (int(c) for c in channels)
        self.stem = spconv.SparseSequential(
            _subm_block(spconv, in_channels, c0, "subm1", bn_momentum),
            _subm_block(spconv, c0, c0, "subm1", bn_momentum),
        )
        stages = []
        paddings = (1, 1, (last_z_padding, 1, 1))
        for index, (cin, cout, pad) in enumerate(
            zip((c0, c1, c2), (c1, c2, c3), paddings, strict=True)
        ):
            key = f"subm{index + 2}"
            layers = [_down_block(spconv, cin, cout, f"spconv{index + 2}", bn_momentum, pad)]
            layers += [
                _subm_block(spconv, cout, cout, key, bn_momentum) for _ in range(subm_per_stage)
            ]
            stages.append(spconv.SparseSequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.out_channels = c3
        # the class, not the module: modules cannot be deep-copied (INTACT snapshots the student)
        self._sparse_tensor = spconv.SparseConvTensor
        self._algorithms_on_cuda: bool | None = None  # device the conv algorithms were set for

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int):
        if features.ndim != 2 or features.shape[1] != self.in_channels:
            raise ValueError(
                f"SparseEncoder8x: features must be (V, {self.in_channels}), got {tuple(features.shape)}"
            )
        if coords.ndim != 2 or coords.shape[1] != 4:
            raise ValueError(
                f"SparseEncoder8x: coords must be (V, 4) [b,z,y,x], got {tuple(coords.shape)}"
            )
        if features.is_cuda != self._algorithms_on_cuda:
            from robokit.pointcloud.spconv_patch import match_algorithms_to_device

            match_algorithms_to_device(self, features.is_cuda)
            self._algorithms_on_cuda = features.is_cuda
        x = self._sparse_tensor(
            features, coords.int(), self.grid_shape_zyx, int(batch_size)
        )
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x


def voxelize_torch(points: torch.Tensor, voxel_size: float, extent: float):
    """Differentiable-in-features voxelization of a batch of clouds on a cube grid.

    Args:
        points: (B, N, 3) float32 xyz, expected inside [-extent, extent]^3 (others are clamped).
        voxel_size: edge of a cubic voxel, same units as points.
        extent: half-width of the cube.

    Returns:
        features (V, 3) float32: mean xyz of the points in each voxel (gradients flow
        back to ``points``); coords (V, 4) int32 [b, z, y, x]; grid (nz, ny, nx).
    """
    batch, num_points, _ = points.shape
    cells = int(round(2 * extent / voxel_size))
    with torch.no_grad():
        ijk = ((points.detach() + extent) / voxel_size).floor().long().clamp_(0, cells - 1)
        b = torch.arange(batch, device=points.device).repeat_interleave(num_points)
        x, y, z = ijk.reshape(-1, 3).unbind(1)
        linear = ((b * cells + z) * cells + y) * cells + x
        unique, inverse = torch.unique(linear, return_inverse=True)
    flat = points.reshape(-1, 3)
    sums = torch.zeros((len(unique), 3), dtype=flat.dtype, device=flat.device).index_add(
        0, inverse, flat
    )
    counts = torch.zeros(len(unique), dtype=flat.dtype, device=flat.device).index_add(
        0, inverse, torch.ones_like(flat[:, 0])
    )
    features = sums / counts[:, None]
    coords = torch.stack(
        [
            unique // cells**3,
            (unique // cells**2) % cells,
            (unique // cells) % cells,
            unique % cells,
        ],
        dim=1,
    ).int()
    return features, coords, (cells, cells, cells)


def _segment_pool(
    features: torch.Tensor, batch_index: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Max and mean of voxel features per sample: (V,C) -> (B, 2C)."""
    channels = features.shape[1]
    index = batch_index.long()[:, None].expand(-1, channels)
    maxed = torch.full(
        (batch_size, channels), -torch.inf, dtype=features.dtype, device=features.device
    )
    maxed = maxed.scatter_reduce(0, index, features, reduce="amax", include_self=True)
    maxed = torch.where(torch.isfinite(maxed), maxed, torch.zeros_like(maxed))
    summed = torch.zeros((batch_size, channels), dtype=features.dtype, device=features.device)
    summed = summed.index_add(0, batch_index.long(), features)
    counts = (
        torch.bincount(batch_index.long(), minlength=batch_size).clamp(min=1).to(features.dtype)
    )
    return torch.cat([maxed, summed / counts[:, None]], dim=1)


def _classifier_head(
    in_features: int, hidden: int, num_classes: int, dropout: float
) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


class SparseClassifier(nn.Module):
    """Voxelize -> :class:`SparseEncoder8x` -> max+mean pool over active voxels -> MLP.

    Args:
        num_classes: K.
        voxel_size: cube edge; clouds are expected in the unit sphere (extent 1).
        channels: encoder widths (see :class:`SparseEncoder8x`).
    """

    def __init__(
        self,
        num_classes: int,
        voxel_size: float = 2.0 / 32,
        extent: float = 1.0,
        channels: Sequence[int] = (16, 32, 64, 64),
        hidden: int = 128,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.voxel_size = float(voxel_size)
        self.extent = float(extent)
        cells = int(round(2 * extent / voxel_size))
        if cells % 8:
            raise ValueError(
                f"SparseClassifier: 2*extent/voxel_size = {cells} cells must be divisible by 8"
            )
        # classifier runs are short: BN momentum 0.1 (torch's default), see SparseEncoder8x
        self.encoder = SparseEncoder8x(3, (cells, cells, cells), channels, bn_momentum=0.1)
        self.head = _classifier_head(2 * self.encoder.out_channels, hidden, num_classes, dropout)
        self.num_classes = num_classes

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        _check_points(points)
        features, coords, _ = voxelize_torch(points, self.voxel_size, self.extent)
        out = self.encoder(features, coords, points.shape[0])
        pooled = _segment_pool(out.features, out.indices[:, 0], points.shape[0])
        return self.head(pooled)


class PointNetClassifier(nn.Module):
    """PointNet (no T-Nets): shared MLP per point, global max pool, classifier MLP.

    ``forward(points (B,N,3)) -> logits (B,K)``. ``widths`` are the shared-MLP widths.
    """

    def __init__(
        self,
        num_classes: int,
        widths: Sequence[int] = (64, 128, 256),
        hidden: int = 128,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for width in widths:
            layers += [nn.Conv1d(in_ch, width, 1, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
            in_ch = width
        self.point_mlp = nn.Sequential(*layers)
        self.head = _classifier_head(in_ch, hidden, num_classes, dropout)
        self.num_classes = num_classes

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        _check_points(points)
        per_point = self.point_mlp(points.transpose(1, 2))
        return self.head(per_point.max(dim=2).values)


def _check_points(points: torch.Tensor) -> None:
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"classifier input must be (B, N, 3) points, got {tuple(points.shape)}")


def build_classifier(backbone: str, num_classes: int, width: float = 1.0, k: int = 20) -> nn.Module:
    """A classifier by name (one of :data:`BACKBONES`); ``width`` scales the channels.

    ``k`` is DGCNN's graph size (official 20, see :mod:`robokit.pointcloud.dgcnn`); the others ignore it.
    """

    def scale(values):
        return tuple(max(4, int(round(v * width))) for v in values)

    if backbone == "sparse":
        return SparseClassifier(
            num_classes, channels=scale((16, 32, 64, 64)), hidden=scale((128,))[0]
        )
    if backbone == "pointnet":
        return PointNetClassifier(
            num_classes, widths=scale((64, 128, 256)), hidden=scale((128,))[0]
        )
    if backbone == "dgcnn":
        from robokit.pointcloud.dgcnn import (
            DGCNN_EMB_DIMS,
            DGCNN_HIDDEN,
            DGCNN_WIDTHS,
            DGCNNClassifier,
        )

        return DGCNNClassifier(
            num_classes, k=k, widths=scale(DGCNN_WIDTHS), emb_dims=scale((DGCNN_EMB_DIMS,))[0],
            hidden=scale(DGCNN_HIDDEN),
        )
    raise ValueError(f"unknown backbone {backbone!r}; choose from {BACKBONES}")
