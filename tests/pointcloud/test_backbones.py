"""Sparse encoder and classifiers: shapes, CPU-safe layer choices, differentiable voxelization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("spconv")

from robokit.pointcloud.backbones import (  # noqa: E402
    PointNetClassifier,
    SparseClassifier,
    SparseEncoder8x,
    build_classifier,
    voxelize_torch,
)


def _cloud_batch(batch=2, n=200, seed=0):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-0.9, 0.9, size=(batch, n, 3)).astype(np.float32)
    return torch.from_numpy(points)


def test_encoder_reaches_stride_8_and_uses_cpu_safe_layers():
    spconv = pytest.importorskip("spconv.pytorch")
    encoder = SparseEncoder8x(3, (32, 32, 32), channels=(8, 8, 16, 16))
    features, coords, _ = voxelize_torch(_cloud_batch(), 2.0 / 32, 1.0)
    out = encoder(features, coords, batch_size=2)
    assert list(out.spatial_shape) == [4, 4, 4]
    assert out.features.shape[1] == encoder.out_channels == 16
    assert set(out.indices[:, 0].tolist()) == {0, 1}
    convs = [m for m in encoder.modules() if isinstance(m, spconv.SparseConv3d | spconv.SubMConv3d)]
    assert len(convs) == 2 + 3 * 3
    assert all(conv.bias is None for conv in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in encoder.modules()) == len(convs)


def test_encoder_rejects_bad_shapes():
    encoder = SparseEncoder8x(4, (16, 16, 16))
    with pytest.raises(ValueError, match=r"features must be \(V, 4\)"):
        encoder(torch.zeros(5, 3), torch.zeros(5, 4, dtype=torch.int32), 1)
    with pytest.raises(ValueError, match="coords must be"):
        encoder(torch.zeros(5, 4), torch.zeros(5, 3, dtype=torch.int32), 1)
    with pytest.raises(ValueError, match="4 widths"):
        SparseEncoder8x(4, (16, 16, 16), channels=(8, 8))


def test_voxelize_torch_hand_example():
    # two points share voxel (x=0,y=0,z=0) of a 2-cell cube grid of edge 1; one sits in (x=1,y=1,z=0)
    points = torch.tensor([[[-0.8, -0.6, -0.5], [-0.2, -0.4, -0.1], [0.5, 0.5, -0.5]]], requires_grad=True)
    features, coords, grid = voxelize_torch(points, voxel_size=1.0, extent=1.0)
    assert grid == (2, 2, 2)
    order = {tuple(c): i for i, c in enumerate(coords.tolist())}
    assert set(order) == {(0, 0, 0, 0), (0, 0, 1, 1)}  # [b, z, y, x]
    torch.testing.assert_close(features[order[(0, 0, 0, 0)]], torch.tensor([-0.5, -0.5, -0.3]))
    torch.testing.assert_close(features[order[(0, 0, 1, 1)]], torch.tensor([0.5, 0.5, -0.5]))
    features.sum().backward()  # mean features are differentiable in the points
    torch.testing.assert_close(points.grad[0, :, 0], torch.tensor([0.5, 0.5, 1.0]))


@pytest.mark.parametrize("backbone", ["sparse", "pointnet", "dgcnn"])
def test_classifiers_give_logits_and_point_gradients(backbone):
    torch.manual_seed(0)
    model = build_classifier(backbone, num_classes=5, width=0.25)
    points = _cloud_batch(batch=3).requires_grad_(True)
    logits = model(points)
    assert logits.shape == (3, 5)
    logits[:, 0].sum().backward()
    assert points.grad is not None and points.grad.abs().sum() > 0
    model.eval()
    assert model(points[:1].detach()).shape == (1, 5)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        model(points[0].detach())


def test_same_seed_same_model():
    def make():
        torch.manual_seed(3)
        return PointNetClassifier(4, widths=(8, 16))

    a, b = make(), make()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_build_classifier_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_classifier("pointnet++", 3)
    with pytest.raises(ValueError, match="divisible by 8"):
        SparseClassifier(3, voxel_size=2.0 / 30)


def test_sparse_classifier_fits_a_tiny_batch():
    """Real spconv kernels forward and backward on CPU: a few Adam steps overfit 6 labelled clouds."""
    torch.manual_seed(0)
    model = build_classifier("sparse", num_classes=3, width=0.25)
    points = _cloud_batch(batch=6, n=128, seed=1)
    points *= torch.tensor([1.0, 1.0, 0.5, 0.5, 0.2, 0.2])[:, None, None]  # class = extent of the cloud
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(points), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_sparse_classifier_deep_copies():
    """INTACT keeps deep-copied snapshots of the student as task models."""
    import copy

    model = build_classifier("sparse", num_classes=3, width=0.25).eval()
    twin = copy.deepcopy(model)
    points = _cloud_batch(batch=2, n=64)
    torch.testing.assert_close(model(points), twin(points))


def test_batchnorm_momentum_second_default_and_classifier_override():
    encoder = SparseEncoder8x(3, (16, 16, 16))
    classifier = SparseClassifier(3)
    assert {m.momentum for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm1d)} == {0.01}
    assert {m.momentum for m in classifier.encoder.modules() if isinstance(m, torch.nn.BatchNorm1d)} == {0.1}
