"""DGCNN (Wang et al., "Dynamic Graph CNN for Learning on Point Clouds", 2019): the ModelNet-C reference model.

Layout and defaults follow the official PyTorch model (``WangYueFt/dgcnn``,
``pytorch/model.py``, class ``DGCNN``; ``k=20``, ``emb_dims=1024``, ``dropout=0.5`` are the
defaults of its ``main.py``), which ModelNet-C uses as the reference of its mCE:

* four EdgeConv layers of widths 64, 64, 128, 256; each builds the k-nearest-neighbour graph
  **in the current feature space** (dynamic graph), forms the edge feature
  ``[x_j - x_i, x_i]`` for the k neighbours j of i, applies a shared 1x1 conv (no bias),
  BatchNorm and LeakyReLU(0.2), and max-pools over the k neighbours;
* the four outputs are concatenated (512 channels) and lifted to ``emb_dims`` by a 1x1 conv;
* global max pool and global average pool, concatenated (``2 * emb_dims``);
* head: Linear(no bias) 512 + BN + LeakyReLU + Dropout, Linear 256 + BN + LeakyReLU + Dropout,
  Linear to the classes.

robokit's only departures, both for clouds the official code never sees: the neighbourhood
size is ``min(k, N)`` so a cloud with fewer than ``k`` points (what a heavy corruption leaves)
still runs, and the neighbour search works on CPU (the official ``get_graph_feature`` hard-codes
``cuda``). Because the graph is built from the points themselves, DGCNN is sensitive to local
density and structure, which is why ModelNet-C uses it and why robokit's robustness table
includes it. Widths scale with ``build_classifier(..., width)`` and ``k`` can be made smaller
for quick CPU runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: the official defaults (WangYueFt/dgcnn pytorch/main.py and model.py)
DGCNN_K = 20
DGCNN_WIDTHS = (64, 64, 128, 256)
DGCNN_EMB_DIMS = 1024
DGCNN_HIDDEN = (512, 256)
DGCNN_DROPOUT = 0.5
LEAKY_SLOPE = 0.2


def knn_indices(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, N, k) of the k nearest neighbours (self included) of every point.

    Args:
        features: (B, C, N) per-point features; distances are Euclidean in C dimensions.
        k: neighbours per point, 1 <= k <= N.
    """
    squared = (features * features).sum(dim=1)  # (B, N)
    inner = torch.bmm(features.transpose(1, 2), features)  # (B, N, N)
    neg_dist = 2.0 * inner - squared[:, :, None] - squared[:, None, :]
    return neg_dist.topk(k, dim=-1).indices


def edge_features(features: torch.Tensor, k: int) -> torch.Tensor:
    """DGCNN edge features (B, 2C, N, k): ``[x_j - x_i, x_i]`` over the k nearest neighbours j of i."""
    batch, channels, num_points = features.shape
    index = knn_indices(features, k)  # (B, N, k)
    points = features.transpose(1, 2)  # (B, N, C)
    flat = points.reshape(batch * num_points, channels)
    offset = torch.arange(batch, device=features.device)[:, None, None] * num_points
    neighbours = flat[(index + offset).reshape(-1)].reshape(batch, num_points, k, channels)
    centre = points[:, :, None, :].expand(-1, -1, k, -1)
    return torch.cat([neighbours - centre, centre], dim=3).permute(0, 3, 1, 2)


class EdgeConv(nn.Module):
    """One EdgeConv layer: (B, C, N) -> (B, out, N), graph rebuilt from the input features."""

    def __init__(self, in_channels: int, out_channels: int, k: int) -> None:
        super().__init__()
        self.k = int(k)
        self.mlp = nn.Sequential(
            nn.Conv2d(2 * in_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(LEAKY_SLOPE),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        k = min(self.k, features.shape[2])
        return self.mlp(edge_features(features, k)).max(dim=-1).values


class DGCNNClassifier(nn.Module):
    """DGCNN classifier: ``forward(points (B, N, 3)) -> logits (B, num_classes)``, any N >= 1.

    Args:
        num_classes: K.
        k: graph neighbours per point (official 20; smaller is faster).
        widths: EdgeConv output widths (official 64, 64, 128, 256).
        emb_dims: width of the point-wise lift before pooling (official 1024).
        hidden: head widths (official 512, 256).
        dropout: head dropout (official 0.5).
    """

    def __init__(
        self,
        num_classes: int,
        k: int = DGCNN_K,
        widths: Sequence[int] = DGCNN_WIDTHS,
        emb_dims: int = DGCNN_EMB_DIMS,
        hidden: Sequence[int] = DGCNN_HIDDEN,
        dropout: float = DGCNN_DROPOUT,
    ) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"DGCNNClassifier: k must be >= 1, got {k}")
        if len(hidden) != 2:
            raise ValueError(f"DGCNNClassifier: hidden needs 2 widths, got {tuple(hidden)}")
        self.k = int(k)
        layers, in_ch = [], 3
        for width in widths:
            layers.append(EdgeConv(in_ch, int(width), self.k))
            in_ch = int(width)
        self.edge_convs = nn.ModuleList(layers)
        self.lift = nn.Sequential(
            nn.Conv1d(sum(int(w) for w in widths), emb_dims, kernel_size=1, bias=False),
            nn.BatchNorm1d(emb_dims),
            nn.LeakyReLU(LEAKY_SLOPE),
        )
        h1, h2 = (int(h) for h in hidden)
        self.head = nn.Sequential(
            nn.Linear(2 * emb_dims, h1, bias=False),
            nn.BatchNorm1d(h1),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Dropout(dropout),
            nn.Linear(h1, h2),
            nn.BatchNorm1d(h2),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Dropout(dropout),
            nn.Linear(h2, num_classes),
        )
        self.num_classes = num_classes

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        if points.ndim != 3 or points.shape[-1] != 3 or points.shape[1] < 1:
            raise ValueError(f"classifier input must be (B, N, 3) points with N >= 1, got {tuple(points.shape)}")
        x = points.transpose(1, 2)
        outputs = []
        for layer in self.edge_convs:
            x = layer(x)
            outputs.append(x)
        lifted = self.lift(torch.cat(outputs, dim=1))  # (B, emb, N)
        pooled = torch.cat([lifted.max(dim=2).values, lifted.mean(dim=2)], dim=1)
        return self.head(pooled)


__all__ = ["DGCNNClassifier", "EdgeConv", "edge_features", "knn_indices", "DGCNN_K"]
