"""A SECOND-style single-stage detector on spconv (Yan et al., 2018; layout of OpenPCDet's ``second.yaml``).

Mean voxel features -> :class:`robokit.pointcloud.backbones.SparseEncoder8x` (sparse 3D, stride 8)
-> height compression (the z cells stacked into channels) -> 2D BEV backbone (two conv blocks,
the second at stride 2, both upsampled back and concatenated) -> anchor head: per anchor a
score per class (sigmoid), 7 box residuals and 2 direction logits.

Presets: ``"second"`` is OpenPCDet's KITTI configuration (range 0..70.4 x -40..40 x -3..1 m,
voxels 0.05 x 0.05 x 0.1 m, BEV blocks of 5 layers with 128 / 256 filters); ``"cpu-small"`` is a
reduced model for CPU runs (range 0..40 x -20..20 m, 0.1 x 0.1 x 0.2 m voxels, 2 layers of 64 / 128);
``"cpu-tiny"`` narrows it further (encoder 8-16 channels, one BEV layer of 32 / 64) for tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from robokit.detection.anchors import DEFAULT_ANCHORS, AnchorClass, generate_anchors

__all__ = ["DetectorConfig", "PRESETS", "SecondDetector", "BevBackbone", "preset_config"]


@dataclass(frozen=True)
class DetectorConfig:
    """Network and grid settings (metres; ranges [xmin, ymin, zmin, xmax, ymax, zmax])."""

    point_range: tuple[float, float, float, float, float, float] = (
        0.0,
        -40.0,
        -3.0,
        70.4,
        40.0,
        1.0,
    )
    voxel_size: tuple[float, float, float] = (0.05, 0.05, 0.1)
    max_voxels: int = 40000
    classes: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")
    encoder_channels: tuple[int, int, int, int] = (16, 32, 64, 64)
    bev_layers: tuple[int, int] = (5, 5)
    bev_filters: tuple[int, int] = (128, 256)
    bev_upsample_filters: tuple[int, int] = (256, 256)
    dir_offset: float = math.pi / 4
    score_threshold: float = 0.1
    nms_iou: float = 0.01
    nms_pre_max: int = 4096
    nms_post_max: int = 500
    bn_momentum: float = 0.01
    """BatchNorm running-average momentum for every layer (OpenPCDet: 0.01); short runs need more."""

    def anchor_classes(self) -> tuple[AnchorClass, ...]:
        by_name = {spec.name: spec for spec in DEFAULT_ANCHORS}
        unknown = [c for c in self.classes if c not in by_name]
        if unknown:
            raise ValueError(f"no anchor settings for classes {unknown}; known: {sorted(by_name)}")
        return tuple(by_name[c] for c in self.classes)


PRESETS: dict[str, DetectorConfig] = {
    "second": DetectorConfig(),
    "cpu-small": DetectorConfig(
        point_range=(0.0, -20.0, -3.0, 40.0, 20.0, 1.0),
        voxel_size=(0.1, 0.1, 0.2),
        max_voxels=20000,
        bev_layers=(2, 2),
        bev_filters=(64, 128),
        bev_upsample_filters=(128, 128),
        bn_momentum=0.1,
    ),
    "cpu-tiny": DetectorConfig(
        point_range=(0.0, -20.0, -3.0, 40.0, 20.0, 1.0),
        voxel_size=(0.1, 0.1, 0.2),
        max_voxels=20000,
        encoder_channels=(8, 16, 16, 16),
        bev_layers=(1, 1),
        bev_filters=(32, 64),
        bev_upsample_filters=(64, 64),
        bn_momentum=0.1,
    ),
}


def preset_config(name: str, **overrides) -> DetectorConfig:
    """A preset by name with some fields replaced (``None`` values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"unknown detector preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
        nn.ReLU(),
    ]


class BevBackbone(nn.Module):
    """SECOND's 2D BEV network: per block a strided conv + ``layers`` convs, then an upsampling
    deconvolution back to the input stride; outputs are concatenated.

    ``forward((B, C_in, H, W)) -> (B, sum(upsample_filters), H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        layers: Sequence[int],
        filters: Sequence[int],
        upsample_filters: Sequence[int],
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        self.deblocks = nn.ModuleList()
        cin = in_channels
        for index, (num_layers, cout, up) in enumerate(
            zip(layers, filters, upsample_filters, strict=True)
        ):
            stride = 1 if index == 0 else 2
            block = _conv_bn_relu(cin, cout, stride)
            for _ in range(num_layers):
                block += _conv_bn_relu(cout, cout)
            self.blocks.append(nn.Sequential(*block))
            self.deblocks.append(
                nn.Sequential(
                    nn.ConvTranspose2d(cout, up, stride, stride=stride, bias=False),
                    nn.BatchNorm2d(up, eps=1e-3, momentum=0.01),
                    nn.ReLU(),
                )
            )
            cin = cout
        self.out_channels = int(sum(upsample_filters))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for block, deblock in zip(self.blocks, self.deblocks, strict=True):
            x = block(x)
            outputs.append(deblock(x))
        return torch.cat(outputs, dim=1)


class SecondDetector(nn.Module):
    """Voxels -> sparse encoder -> BEV -> anchor head.

    ``forward(features (V, C) float32, coords (V, 4) int32 [b, z, y, x], batch_size)`` returns a
    dict with ``cls`` (B, A, K) logits, ``box`` (B, A, 7) residuals and ``dir`` (B, A, 2) logits,
    where A = ny * nx * anchors_per_location, in the order of :attr:`anchors` ``(A, 7)``.
    """

    def __init__(self, config: DetectorConfig, in_channels: int = 4) -> None:
        super().__init__()
        from robokit.pointcloud.backbones import SparseEncoder8x
        from robokit.pointcloud.voxelizer import grid_shape

        self.config = config
        self.in_channels = in_channels
        nz, ny, nx = (int(v) for v in grid_shape(config.voxel_size, config.point_range))
        # one extra z cell, as OpenPCDet does for SECOND, so z shrinks 41 -> 21 -> 11 -> 5 at stride 8
        self.encoder = SparseEncoder8x(
            in_channels, (nz + 1, ny, nx), config.encoder_channels, last_z_padding=0
        )
        depth, bev_y, bev_x = self._encoder_output_shape(in_channels)
        self.bev_shape = (bev_y, bev_x)
        self.bev = BevBackbone(
            self.encoder.out_channels * depth,
            config.bev_layers,
            config.bev_filters,
            config.bev_upsample_filters,
        )
        anchor_classes = config.anchor_classes()
        anchors = generate_anchors(config.point_range, self.bev_shape, anchor_classes)
        self.anchors_per_location = anchors.shape[2]
        self.num_classes = len(anchor_classes)
        self.register_buffer(
            "anchors", torch.from_numpy(anchors.reshape(-1, 7).copy()), persistent=False
        )
        channels = self.bev.out_channels
        self.cls_head = nn.Conv2d(channels, self.anchors_per_location * self.num_classes, 1)
        self.box_head = nn.Conv2d(channels, self.anchors_per_location * 7, 1)
        self.dir_head = nn.Conv2d(channels, self.anchors_per_location * 2, 1)
        nn.init.constant_(
            self.cls_head.bias, -math.log((1 - 0.01) / 0.01)
        )  # prior probability 0.01
        nn.init.normal_(self.box_head.weight, std=0.001)
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = config.bn_momentum

    @torch.no_grad()
    def _encoder_output_shape(self, in_channels: int) -> tuple[int, int, int]:
        was_training = self.encoder.training
        self.encoder.eval()
        probe = self.encoder(torch.zeros(1, in_channels), torch.zeros(1, 4, dtype=torch.int32), 1)
        self.encoder.train(was_training)
        depth, bev_y, bev_x = (int(v) for v in probe.spatial_shape)
        return depth, bev_y, bev_x

    def forward(
        self, features: torch.Tensor, coords: torch.Tensor, batch_size: int
    ) -> dict[str, torch.Tensor]:
        sparse = self.encoder(features, coords, batch_size)
        dense = sparse.dense()  # (B, C, D, H, W)
        bev = dense.reshape(dense.shape[0], -1, dense.shape[3], dense.shape[4])
        x = self.bev(bev)
        b = x.shape[0]

        def per_anchor(head: nn.Conv2d, width: int) -> torch.Tensor:
            out = head(x).permute(0, 2, 3, 1).contiguous()  # (B, H, W, A_loc * width)
            return out.view(b, -1, width)

        return {
            "cls": per_anchor(self.cls_head, self.num_classes),
            "box": per_anchor(self.box_head, 7),
            "dir": per_anchor(self.dir_head, 2),
        }

    def voxelize(self, clouds: Sequence[np.ndarray], device: torch.device | str = "cpu"):
        """Mean-feature voxels of B clouds -> (features (V, C), coords (V, 4) int32) tensors."""
        from robokit.pointcloud.voxelizer import voxelize_batch

        features, coords, _ = voxelize_batch(
            list(clouds), self.config.voxel_size, self.config.point_range, self.config.max_voxels
        )
        return torch.from_numpy(features).to(device), torch.from_numpy(coords).to(device)
